//! The link's background task: connect, read the holds in force, tell this replica's own,
//! then publish this replica's changes and apply the others' until the link drops; after a
//! growing wait, again. While it is down, what is published is dropped (counted): the
//! reconnect tells the others what still holds.

use std::{sync::atomic::Ordering, time::Duration};

use futures_util::StreamExt;
use hive_core::SharedChange;
use tokio::{
    sync::{mpsc, watch},
    time::{Instant, timeout},
};

use crate::{ClusterSettings, Counters, Leases, Target, wire};

/// The first wait before reconnecting, doubled up to [`MAX_RETRY`].
const FIRST_RETRY: Duration = Duration::from_millis(100);
const MAX_RETRY: Duration = Duration::from_secs(5);
/// How long connecting and each command may take before the link counts as down.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
const COMMAND_TIMEOUT: Duration = Duration::from_secs(1);
/// The most holds read at a reconnect (a cluster holds off a handful of models).
const MAX_HOLDS: usize = 10_000;
/// How often a replica renews its report and reads the others'; a report lives three times
/// as long.
const REPORT_EVERY: Duration = Duration::from_secs(2);
/// The most replicas' reports read, and the largest read.
const MAX_REPLICAS: usize = 1_000;
const MAX_REPORT: usize = 64 * 1024;

pub(crate) struct Link {
    pub(crate) reloads: tokio::sync::broadcast::Sender<String>,
    pub(crate) connection: crate::Connection,
    pub(crate) reports: std::sync::Arc<crate::Reports>,
    pub(crate) settings: ClusterSettings,
    pub(crate) leases: std::sync::Arc<Leases>,
    pub(crate) queued: mpsc::Receiver<(Instant, SharedChange)>,
    pub(crate) resync: std::sync::Arc<tokio::sync::Notify>,
    pub(crate) target: Target,
    pub(crate) counters: std::sync::Arc<Counters>,
    pub(crate) stopping: watch::Receiver<bool>,
}

/// Why a session with Redis ended.
enum Ended {
    /// The cluster was stopped.
    Stopped,
    /// Redis could not be reached, or the link broke (what happened, never the URL).
    Down(String),
}

fn down(what: &str, error: impl std::fmt::Display) -> Ended {
    Ended::Down(format!("{what}: {error}"))
}

fn timed_out(what: &str) -> Ended {
    Ended::Down(format!("{what}: no answer within {COMMAND_TIMEOUT:?}"))
}

pub(crate) async fn run(mut link: Link) {
    let client = match link.settings.client() {
        Ok(client) => client,
        Err(e) => {
            tracing::error!(error = ?e.kind(), "cluster mode off: the Redis client could not be made");
            return;
        }
    };
    let mut wait = FIRST_RETRY;
    let mut down_since: Option<Instant> = None;
    loop {
        let mut stopping = link.stopping.clone();
        if *stopping.borrow() {
            return;
        }
        let ended = tokio::select! {
            ended = session(&client, &mut link, &mut down_since) => ended,
            _ = stopping.changed() => Ended::Stopped,
        };
        link.counters.set_link(false);
        link.leases.set([], None);
        if let Ok(mut shared) = link.connection.write() {
            *shared = None;
        }
        if let Ok(mut all) = link.reports.all.write() {
            all.clear();
        }
        match ended {
            Ended::Stopped => return,
            Ended::Down(why) => {
                if down_since.is_none() {
                    tracing::warn!(
                        why,
                        "cluster link to Redis down: this replica serves on its own state and shares nothing until it is back"
                    );
                    down_since = Some(Instant::now());
                    wait = FIRST_RETRY;
                } else {
                    tracing::debug!(why, "cluster link to Redis still down");
                }
            }
        }
        let sleep = tokio::time::sleep(wait);
        tokio::pin!(sleep);
        loop {
            tokio::select! {
                () = &mut sleep => break,
                change = link.queued.recv() => match change {
                    Some(_) => {
                        link.counters.dropped.fetch_add(1, Ordering::Relaxed);
                    }
                    None => return,
                },
                _ = stopping.changed() => return,
            }
        }
        wait = (wait * 2).min(MAX_RETRY);
    }
}

/// One connection's life: set up, catch up, then relay until it breaks or the cluster
/// stops.
async fn session(
    client: &redis::Client,
    link: &mut Link,
    down_since: &mut Option<Instant>,
) -> Ended {
    let config = redis::AsyncConnectionConfig::new()
        .set_connection_timeout(Some(CONNECT_TIMEOUT))
        .set_response_timeout(Some(COMMAND_TIMEOUT));
    let mut connection = match timeout(
        CONNECT_TIMEOUT,
        client.get_multiplexed_async_connection_with_config(&config),
    )
    .await
    {
        Ok(Ok(connection)) => connection,
        Ok(Err(e)) => return down("connecting", e),
        Err(_) => return timed_out("connecting"),
    };
    let mut pubsub = match timeout(CONNECT_TIMEOUT, client.get_async_pubsub()).await {
        Ok(Ok(pubsub)) => pubsub,
        Ok(Err(e)) => return down("subscribing", e),
        Err(_) => return timed_out("subscribing"),
    };
    let channels = [link.settings.channel(), link.settings.reload_channel()];
    match timeout(COMMAND_TIMEOUT, pubsub.subscribe(&channels)).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return down("subscribing", e),
        Err(_) => return timed_out("subscribing"),
    }
    link.counters.connects.fetch_add(1, Ordering::Relaxed);
    link.counters.set_link(true);
    if let Ok(mut shared) = link.connection.write() {
        *shared = Some(connection.clone());
    }
    match down_since.take() {
        Some(since) => tracing::info!(
            down_for = ?since.elapsed(),
            replica = link.settings.replica,
            "cluster link to Redis back: sharing again"
        ),
        None => tracing::info!(replica = link.settings.replica, "cluster link to Redis up"),
    }
    if let Err(ended) = catch_up(&mut connection, link).await {
        return ended;
    }
    let mut messages = pubsub.on_message();
    let mut leases = tokio::time::interval(link.settings.lease_ttl / 3);
    leases.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut reports = tokio::time::interval(REPORT_EVERY);
    reports.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = reports.tick() => {
                if let Err(ended) = exchange_reports(&mut connection, link).await {
                    return ended;
                }
            }
            _ = leases.tick() => {
                if let Err(ended) = renew_leases(&mut connection, link).await {
                    return ended;
                }
            }
            () = link.resync.notified() => {
                if let Err(ended) = catch_up(&mut connection, link).await {
                    return ended;
                }
            }
            message = messages.next() => match message {
                Some(message) if message.get_channel_name() == channels[1] => {
                    reloaded(link, message.get_payload_bytes());
                }
                Some(message) => receive(link, message.get_payload_bytes(), None),
                None => return Ended::Down("the subscription ended".to_owned()),
            },
            change = link.queued.recv() => match change {
                Some((queued, change)) => {
                    let Some(change) = still_news(queued.elapsed(), change) else {
                        link.counters.dropped.fetch_add(1, Ordering::Relaxed);
                        continue;
                    };
                    if let Err(ended) = publish(&mut connection, link, change).await {
                        return ended;
                    }
                }
                None => return Ended::Stopped,
            },
        }
    }
}

/// A check result older than this when it could be sent is not news any more.
const STALE_CHECK: Duration = Duration::from_secs(10);

/// `change` as it stands after `waited` in the queue: a hold shortened by the wait (gone
/// if it ended meanwhile), a stale check result dropped.
fn still_news(waited: Duration, change: SharedChange) -> Option<SharedChange> {
    let left = |hold: Duration| Some(hold.saturating_sub(waited)).filter(|d| !d.is_zero());
    match change {
        SharedChange::BreakerOpened { model, open_for } => Some(SharedChange::BreakerOpened {
            model,
            open_for: left(open_for)?,
        }),
        SharedChange::CoolDown { model, wait } => Some(SharedChange::CoolDown {
            model,
            wait: left(wait)?,
        }),
        SharedChange::Checked { .. } if waited > STALE_CHECK => None,
        other => Some(other),
    }
}

/// Applies the holds the others keep in force, then tells them this replica's own.
async fn catch_up(
    connection: &mut redis::aio::MultiplexedConnection,
    link: &Link,
) -> Result<(), Ended> {
    // The models with a hold are kept in one set: no scan of the keyspace (a Redis other
    // applications share may hold millions of keys).
    let models: Vec<String> = timed(
        redis::cmd("SRANDMEMBER")
            .arg(link.settings.held_key())
            .arg(MAX_HOLDS)
            .query_async(connection),
        "reading the holds",
    )
    .await?;
    for model in models {
        let key = link.settings.hold_key(&model);
        let read: redis::RedisResult<(Option<Vec<u8>>, i64)> = match timeout(
            COMMAND_TIMEOUT,
            redis::pipe().get(&key).pttl(&key).query_async(connection),
        )
        .await
        {
            Ok(read) => read,
            Err(_) => return Err(timed_out("reading a hold")),
        };
        match read {
            Ok((Some(value), left)) if left > 0 && value.len() <= wire::MAX_MESSAGE => {
                receive(
                    link,
                    &value,
                    Some(Duration::from_millis(left.unsigned_abs())),
                );
            }
            // Ended: forget its name.
            Ok(_) => {
                timed::<()>(
                    redis::cmd("SREM")
                        .arg(link.settings.held_key())
                        .arg(&model)
                        .query_async(connection),
                    "forgetting an ended hold",
                )
                .await?;
            }
            // A key of another type (another application's): skipped, not fatal.
            Err(e) if !e.is_io_error() && !e.is_timeout() => {
                tracing::debug!(key, error = %e, "a cluster hold could not be read");
            }
            Err(e) => return Err(down("reading a hold", e)),
        }
    }
    let holding = target(link).map(|t| t.holding()).unwrap_or_default();
    for change in holding {
        publish(connection, link, change).await?;
    }
    Ok(())
}

/// Waits for one command (or pipeline) at most [`COMMAND_TIMEOUT`].
async fn timed<T>(
    command: impl Future<Output = redis::RedisResult<T>>,
    what: &str,
) -> Result<T, Ended> {
    match timeout(COMMAND_TIMEOUT, command).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(down(what, e)),
        Err(_) => Err(timed_out(what)),
    }
}

/// Publishes `change` and keeps (or clears) the model's hold for replicas that connect
/// later.
async fn publish(
    connection: &mut redis::aio::MultiplexedConnection,
    link: &Link,
    change: SharedChange,
) -> Result<(), Ended> {
    let settings = &link.settings;
    let text = wire::encode(&settings.replica, change);
    let key = settings.hold_key(change.model().as_str());
    let mut pipe = redis::pipe();
    pipe.publish(settings.channel(), &text).ignore();
    match change {
        SharedChange::BreakerOpened { open_for: hold, .. }
        | SharedChange::CoolDown { wait: hold, .. } => {
            let ms = u64::try_from(hold.as_millis()).unwrap_or(u64::MAX).max(1);
            pipe.cmd("SET")
                .arg(&key)
                .arg(&text)
                .arg("PX")
                .arg(ms)
                .ignore();
            pipe.cmd("SADD")
                .arg(settings.held_key())
                .arg(change.model().as_str())
                .ignore();
        }
        SharedChange::BreakerClosed { .. } => {
            pipe.del(&key).ignore();
            pipe.cmd("SREM")
                .arg(settings.held_key())
                .arg(change.model().as_str())
                .ignore();
        }
        // News, not a state to keep (a forced state lasts until an operator ends it, which
        // is news too).
        SharedChange::Checked { .. } | SharedChange::Control { .. } => {}
    }
    timed::<()>(pipe.query_async(connection), "publishing").await?;
    link.counters.published.fetch_add(1, Ordering::Relaxed);
    Ok(())
}

/// Takes, or keeps, the lease of each model's health checks whose holder is this replica
/// or nobody (one script per model, all in one round trip); notes which are this
/// replica's.
async fn renew_leases(
    connection: &mut redis::aio::MultiplexedConnection,
    link: &Link,
) -> Result<(), Ended> {
    let models = target(link).map(|t| t.models()).unwrap_or_default();
    if models.is_empty() {
        return Ok(());
    }
    let ttl = u64::try_from(link.settings.lease_ttl.as_millis())
        .unwrap_or(u64::MAX)
        .max(1);
    let mut pipe = redis::pipe();
    for model in &models {
        pipe.cmd("EVAL")
            .arg(LEASE_SCRIPT)
            .arg(1)
            .arg(link.settings.lease_key(model.as_str()))
            .arg(&link.settings.replica)
            .arg(ttl);
    }
    // The leases last from when the round was sent, less a margin for the clocks' drift.
    let sent = Instant::now();
    let held: Vec<i64> = timed(pipe.query_async(connection), "renewing the check leases").await?;
    let until = sent + link.settings.lease_ttl.mul_f64(0.9);
    let held = models.iter().copied().zip(held.iter().map(|h| *h == 1));
    link.leases.set(held, Some(until));
    Ok(())
}

/// Renews this replica's report and reads every live replica's.
async fn exchange_reports(
    connection: &mut redis::aio::MultiplexedConnection,
    link: &Link,
) -> Result<(), Ended> {
    let settings = &link.settings;
    let own = link.reports.own.read().ok().and_then(|r| r.clone());
    if let Some(own) = own {
        let ms = u64::try_from((REPORT_EVERY * 3).as_millis()).unwrap_or(u64::MAX);
        timed::<()>(
            redis::cmd("SET")
                .arg(settings.report_key(&settings.replica))
                .arg(own)
                .arg("PX")
                .arg(ms)
                .query_async(connection),
            "renewing the report",
        )
        .await?;
    }
    // The replicas' names are kept in one set (no scan of the keyspace); a name whose
    // report expired is forgotten below.
    timed::<i64>(
        redis::cmd("SADD")
            .arg(settings.replicas_key())
            .arg(&settings.replica)
            .query_async(connection),
        "naming this replica",
    )
    .await?;
    let mut names: Vec<String> = timed(
        redis::cmd("SRANDMEMBER")
            .arg(settings.replicas_key())
            .arg(MAX_REPLICAS)
            .query_async(connection),
        "reading the replicas",
    )
    .await?;
    names.sort();
    let keys: Vec<String> = names.iter().map(|n| settings.report_key(n)).collect();
    let texts: Vec<Option<Vec<u8>>> = if keys.is_empty() {
        Vec::new()
    } else {
        timed(
            redis::cmd("MGET").arg(&keys).query_async(connection),
            "reading the reports",
        )
        .await?
    };
    let mut all = Vec::new();
    let mut gone = Vec::new();
    for (name, text) in names.into_iter().zip(texts) {
        match text {
            Some(text) if text.len() <= MAX_REPORT => {
                if let Ok(text) = String::from_utf8(text) {
                    all.push((name, text));
                }
            }
            Some(_) => {}
            None => gone.push(name),
        }
    }
    if !gone.is_empty() {
        timed::<i64>(
            redis::cmd("SREM")
                .arg(settings.replicas_key())
                .arg(&gone)
                .query_async(connection),
            "forgetting stopped replicas",
        )
        .await?;
    }
    if let Ok(mut reports) = link.reports.all.write() {
        *reports = all;
    }
    Ok(())
}

/// Keeps the lease (`KEYS[1]`) for this replica (`ARGV[1]`) for `ARGV[2]` ms if it holds it
/// or nobody does; 1 when it is this replica's.
const LEASE_SCRIPT: &str = "local v = redis.call('GET', KEYS[1]) \
    if v == ARGV[1] then redis.call('PEXPIRE', KEYS[1], ARGV[2]) return 1 end \
    if v then return 0 end \
    redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) return 1";

/// Another replica announced a reload: told to this replica's listeners (a message of
/// this replica, too large or malformed is ignored).
fn reloaded(link: &Link, payload: &[u8]) {
    #[derive(serde::Deserialize)]
    struct Reload {
        v: u8,
        replica: String,
        hash: String,
    }
    let Ok(reload) =
        serde_json::from_slice::<Reload>(&payload[..payload.len().min(wire::MAX_MESSAGE)])
    else {
        return;
    };
    let plain = reload.hash.len() <= 100 && !reload.hash.chars().any(char::is_control);
    if reload.v == 1 && reload.replica != link.settings.replica && plain {
        tracing::info!(
            from = reload.replica,
            config = reload.hash,
            "another replica reloaded its config"
        );
        let _ = link.reloads.send(reload.hash);
    }
}

/// The local state the others' changes go to, once attached.
fn target(link: &Link) -> Option<std::sync::Arc<dyn hive_core::ApplyShared>> {
    link.target.read().ok().and_then(|t| t.clone())
}

/// Applies one message of another replica (`left`: the hold left, when its key said).
fn receive(link: &Link, payload: &[u8], left: Option<Duration>) {
    let target = target(link);
    let decoded = match &target {
        Some(target) => wire::decode(payload, &link.settings.replica, target.as_ref(), left),
        None => Err(wire::Skip::UnknownModel),
    };
    match (decoded, target) {
        (Ok(change), Some(target)) => {
            tracing::debug!(?change, "applying a change from another replica");
            target.apply(change);
            link.counters.applied.fetch_add(1, Ordering::Relaxed);
        }
        (skipped, _) => {
            if let Err(wire::Skip::Malformed) = skipped {
                tracing::debug!(bytes = payload.len(), "a malformed cluster message ignored");
            }
            link.counters.skipped.fetch_add(1, Ordering::Relaxed);
        }
    }
}
