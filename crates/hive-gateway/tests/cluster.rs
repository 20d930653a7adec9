//! Cluster mode end to end: three gateway replicas (in this process, each its own server
//! and config) over one simulated provider, sharing through a real `redis-server`.

#![allow(clippy::unwrap_used)]

mod support;

use std::{sync::Arc, time::Duration};

use hive_config::Environment;
use hive_core::{Actor, CircuitState, ResilienceEvent};
use hive_gateway::server::{ConfigSource, Options, Server};
use hive_sim::{Behaviour, RedisServer, RetryAfter, Script, Simulator};
use http::StatusCode;
use support::{HttpClient, TWO_MODELS as MODELS, ask, chat_at, config_dir, http_client, write};
use tokio::time::{Instant, sleep, timeout};

/// Breakers that open after three failures in a row for one second (no growth), one
/// attempt per model, these `health` settings (`probe: none`: the breakers alone decide).
fn resilience(replica: &str, health: &str, alerts: &str) -> String {
    format!(
        r#"
defaults:
  retry:
    max_attempts: 1
  breaker:
    consecutive_failures: 3
    open_duration: {{ base: 1s, multiplier: 1, max: 1s }}
  health:
    {health}
  timeouts:
    attempt: 2s
    request: 5s
cluster:
  redis: {{ env: HIVE_REDIS_URL }}
  prefix: hive:test
  replica: {replica}
alerts:
  {alerts}
audit:
  path: audit.jsonl
history:
  path: off
"#
    )
}

struct Cluster {
    sim: Simulator,
    redis: RedisServer,
    replicas: Vec<Arc<Server>>,
    /// Each replica's config directory.
    dirs: Vec<std::path::PathBuf>,
    http: HttpClient,
}

async fn cluster(test: &str, primary: Script) -> Cluster {
    cluster_with(test, primary, "probe: none", NO_ALERTS).await
}

/// No alert rules.
const NO_ALERTS: &str = "rules: []";

/// Starts replica `name` of a cluster: its own config directory, the shared simulator and
/// Redis.
async fn replica(
    test: &str,
    name: &str,
    sim: &Simulator,
    redis: &RedisServer,
    health: &str,
    alerts: &str,
) -> (Arc<Server>, std::path::PathBuf) {
    let dir = config_dir(&format!("{test}-{name}"));
    write(&dir, "resilience.yml", &resilience(name, health, alerts));
    write(
        &dir,
        "models-resilience.yml",
        &MODELS.replace("{sim}", &sim.base_url()),
    );
    let options = Options {
        listen: Some("127.0.0.1:0".parse().unwrap()),
        env: Environment::vars([("HIVE_REDIS_URL", redis.url())]),
        watch: false,
        ..Options::default()
    };
    let server = Server::start(ConfigSource::Dir(dir.clone()), options)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    (server, dir)
}

async fn cluster_with(test: &str, primary: Script, health: &str, alerts: &str) -> Cluster {
    let redis = RedisServer::start().unwrap();
    let sim = Simulator::start(vec![
        ("gpt-4o", primary),
        ("claude-4-sonnet", Script::new()),
    ])
    .await
    .unwrap();
    let mut replicas = Vec::new();
    let mut dirs = Vec::new();
    for name in ["r1", "r2", "r3"] {
        let (server, dir) = replica(test, name, &sim, &redis, health, alerts).await;
        replicas.push(server);
        dirs.push(dir);
    }
    let cluster = Cluster {
        sim,
        redis,
        replicas,
        dirs,
        http: http_client(),
    };
    cluster.linked(1).await;
    cluster
}

impl Cluster {
    /// Waits until every replica's link is up, `connects` times at least.
    async fn linked(&self, connects: u64) {
        timeout(Duration::from_secs(15), async {
            loop {
                let mut all = true;
                for replica in &self.replicas {
                    let status = replica.cluster_status().await.expect("cluster mode");
                    all &= status.connected && status.connects >= connects;
                }
                if all {
                    return;
                }
                sleep(Duration::from_millis(10)).await;
            }
        })
        .await
        .expect("every replica linked");
    }

    fn breaker(&self, replica: usize) -> CircuitState {
        self.replicas[replica]
            .gateway()
            .fleet()
            .manager()
            .control("gpt-4o")
            .expect("gpt-4o")
            .breaker()
            .state()
    }

    /// One request through replica `replica`'s route: (status, the model that answered).
    async fn ask(&self, replica: usize) -> (StatusCode, String) {
        let base_url = self.replicas[replica].base_url();
        let answer = chat_at(&self.http, &base_url, &ask("council", false), None).await;
        let model = answer.header("x-hive-model").unwrap_or("").to_owned();
        (answer.status, model)
    }

    /// The latencies of `n` requests through replica `replica`, one after another, each
    /// answered.
    async fn timed_asks(&self, replica: usize, n: usize) -> Vec<Duration> {
        let mut latencies = Vec::with_capacity(n);
        for _ in 0..n {
            let started = Instant::now();
            assert_eq!(self.ask(replica).await.0, StatusCode::OK);
            latencies.push(started.elapsed());
        }
        latencies
    }

    /// Waits (5 s at most) until every replica has `count` alerts of `rule` firing.
    async fn firing_everywhere(&self, rule: &str, count: usize) {
        timeout(Duration::from_secs(5), async {
            loop {
                let mut all = true;
                for replica in &self.replicas {
                    let alerts = replica.alerts().await;
                    all &= alerts.iter().filter(|a| a.rule == rule).count() == count;
                }
                if all {
                    return;
                }
                sleep(Duration::from_millis(50)).await;
            }
        })
        .await
        .unwrap_or_else(|_| panic!("not {count} {rule} alert(s) on every replica"));
    }

    fn primary_calls(&self) -> usize {
        self.sim.attempts_of("gpt-4o").len()
    }
}

/// The primary down on one replica: every replica stops sending to it within the bound,
/// the replica that opened it alone tries it again (once per break), and its verdict
/// closes the others when the primary is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_opening_on_one_replica_holds_every_replica_off_and_one_replica_probes() {
    let c = cluster(
        "open",
        Script::new().until(Duration::from_secs(5), Behaviour::Status(503)),
    )
    .await;
    let mut transitions: Vec<_> = c.replicas.iter().map(|r| r.monitor().subscribe()).collect();
    for _ in 0..3 {
        assert_eq!(
            c.ask(0).await,
            (StatusCode::OK, "claude-4-sonnet".to_owned())
        );
    }
    assert_eq!(c.breaker(0), CircuitState::Open);
    for other in [1, 2] {
        timeout(Duration::from_secs(1), async {
            while c.breaker(other) != CircuitState::Open {
                sleep(Duration::from_millis(1)).await;
            }
        })
        .await
        .unwrap_or_else(|_| panic!("replica {other} still lets gpt-4o through"));
    }
    assert_eq!(c.primary_calls(), 3);
    for other in [1, 2] {
        for _ in 0..5 {
            assert_eq!(
                c.ask(other).await,
                (StatusCode::OK, "claude-4-sonnet".to_owned())
            );
        }
    }
    assert_eq!(
        c.primary_calls(),
        3,
        "no replica sent gpt-4o a call while it was held off"
    );

    // Traffic on every replica until well after the primary is back.
    let end = Instant::now() + Duration::from_secs(8);
    while Instant::now() < end {
        for replica in 0..3 {
            assert_eq!(c.ask(replica).await.0, StatusCode::OK);
        }
        sleep(Duration::from_millis(50)).await;
    }
    for replica in 0..3 {
        assert_eq!(
            c.breaker(replica),
            CircuitState::Closed,
            "replica {replica}"
        );
    }
    // Only r1 ever tried gpt-4o while it was held off: r2 and r3 went from open straight
    // to closed, on r1's verdict.
    let mut first_open = Vec::new();
    for (replica, events) in transitions.iter_mut().enumerate() {
        let mut seen = Vec::new();
        while let Ok(event) = events.try_recv() {
            if let ResilienceEvent::CircuitTransition {
                model, from, to, ..
            } = event.event
                && model.as_str() == "gpt-4o"
            {
                if seen.is_empty() {
                    first_open.push(event.at_unix_ms);
                }
                seen.push((from, to));
            }
        }
        if replica == 0 {
            assert!(
                seen.contains(&(CircuitState::HalfOpen, CircuitState::Closed)),
                "{seen:?}"
            );
        } else {
            assert!(
                !seen.iter().any(|(_, to)| *to == CircuitState::HalfOpen),
                "replica {replica} tried gpt-4o itself: {seen:?}"
            );
            assert_eq!(
                seen.last(),
                Some(&(CircuitState::Open, CircuitState::Closed)),
                "{seen:?}"
            );
        }
    }
    // The opening reached the others within the bound (monitor clocks, in milliseconds).
    let lags: Vec<u64> = first_open[1..]
        .iter()
        .map(|at| at.saturating_sub(first_open[0]))
        .collect();
    eprintln!("the opening reached r2 and r3 after {lags:?} ms");
    assert!(lags.iter().all(|lag| *lag <= 100), "{lags:?} ms");
}

/// A 429 with `Retry-After` seen by one replica holds every replica off that model until
/// then.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_after_seen_by_one_replica_holds_off_all() {
    let c = cluster(
        "cooldown",
        Script::new().until_call(1, Behaviour::RateLimited(Some(RetryAfter::Seconds(3)))),
    )
    .await;
    assert_eq!(
        c.ask(0).await,
        (StatusCode::OK, "claude-4-sonnet".to_owned())
    );
    assert_eq!(c.primary_calls(), 1);
    sleep(Duration::from_millis(200)).await;
    for replica in 0..3 {
        for _ in 0..3 {
            let states: Vec<_> = (0..3).map(|r| c.breaker(r)).collect();
            assert_eq!(
                c.ask(replica).await,
                (StatusCode::OK, "claude-4-sonnet".to_owned()),
                "replica {replica}, breakers {states:?}"
            );
        }
    }
    assert_eq!(
        c.primary_calls(),
        1,
        "every replica waited out the provider's 3 s"
    );
}

/// Redis killed mid-run: no request fails, each replica says the link is down; Redis back
/// (empty): the links come back, and an opening is shared again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_redis_killed_no_request_fails_and_sharing_resumes_after_restart() {
    let mut c = cluster(
        "redis-down",
        Script::new()
            .until_call(30, Behaviour::Healthy)
            .always(Behaviour::Status(503)),
    )
    .await;
    c.redis.kill();
    for round in 0..10 {
        for replica in 0..3 {
            let (status, _) = c.ask(replica).await;
            assert_eq!(status, StatusCode::OK, "round {round}, replica {replica}");
        }
    }
    for replica in &c.replicas {
        assert!(!replica.cluster_status().await.unwrap().connected);
    }
    c.redis.restart().unwrap();
    c.linked(2).await;
    // gpt-4o now fails: r1 opens it, the others follow.
    for _ in 0..6 {
        assert_eq!(c.ask(0).await.0, StatusCode::OK);
    }
    assert_eq!(c.breaker(0), CircuitState::Open);
    timeout(Duration::from_secs(2), async {
        while c.breaker(1) != CircuitState::Open || c.breaker(2) != CircuitState::Open {
            sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("shared again after Redis came back");
}

/// Health checks: each model is checked by one replica at a time (N replicas cost the
/// provider one stream of checks), every replica records the results, and a replica that
/// stops is replaced within one interval.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_model_is_checked_by_one_replica_and_a_stopped_checker_is_replaced() {
    let health = "probe: completion\n    interval: 300ms\n    fast_interval: 300ms\n    jitter: 0%";
    let c = cluster_with("checks", Script::new(), health, NO_ALERTS).await;
    let probes = |c: &Cluster| c.sim.attempts_of("gpt-4o").len();
    sleep(Duration::from_millis(500)).await; // the first lease round
    let before = probes(&c);
    sleep(Duration::from_secs(3)).await;
    let checked = probes(&c) - before;
    // One replica's stream: ~10 checks in 3 s at 300 ms (3 replicas alone: ~30).
    assert!(
        (7..=14).contains(&checked),
        "{checked} checks of gpt-4o in 3 s"
    );
    let mut duties = 0;
    let mut holder = None;
    for (n, replica) in c.replicas.iter().enumerate() {
        let checking = replica.cluster_status().await.unwrap().checking;
        duties += checking;
        if checking > 0 && holder.is_none() {
            holder = Some(n);
        }
        // Every replica records the checks, its own or another's.
        let snapshot = replica.gateway().fleet().manager().registry().snapshot();
        let gpt = snapshot
            .iter()
            .find(|s| s.model.as_str() == "gpt-4o")
            .unwrap();
        assert!(
            gpt.since_last_check
                .is_some_and(|d| d < Duration::from_secs(1)),
            "replica {n}: {gpt:?}"
        );
    }
    assert_eq!(duties, 2, "each of the two models is one replica's duty");

    // The replica checking gpt-4o stops: another takes its checks over within an interval.
    let holder = holder.unwrap();
    let checker = &c.replicas[holder];
    assert!(checker.shutdown().await);
    let stopped = probes(&c);
    sleep(Duration::from_millis(1500)).await;
    let after = probes(&c) - stopped;
    assert!(
        after >= 2,
        "{after} checks of gpt-4o in the 1.5 s after its checker stopped"
    );
    let mut duties = 0;
    for (n, replica) in c.replicas.iter().enumerate() {
        if n != holder {
            duties += replica.cluster_status().await.unwrap().checking;
        }
    }
    assert_eq!(duties, 2, "the two models are the survivors' duty now");
}

/// Redis frozen (answering nothing, connections open): requests take no longer than with
/// Redis up, and a provider's 429 with `Retry-After` — the one change a request itself
/// publishes — holds the model off here and is queued without waiting; no request fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_redis_adds_no_latency_to_requests() {
    let c = cluster(
        "frozen",
        Script::new()
            .until_call(160, Behaviour::Healthy)
            .always(Behaviour::RateLimited(Some(RetryAfter::Seconds(30)))),
    )
    .await;
    let mut up = c.timed_asks(0, 80).await;
    c.redis.freeze();
    let mut frozen = c.timed_asks(0, 80).await;
    // The primary is rate limited now: r1 holds it off and publishes, with Redis frozen.
    for _ in 0..10 {
        let started = Instant::now();
        assert_eq!(
            c.ask(0).await,
            (StatusCode::OK, "claude-4-sonnet".to_owned())
        );
        assert!(started.elapsed() < Duration::from_millis(500));
    }
    assert_eq!(c.breaker(0), CircuitState::Open);
    c.redis.thaw();
    up.sort();
    frozen.sort();
    let p = |v: &[Duration], q: usize| v[v.len() * q / 100];
    eprintln!(
        "through r1 with Redis up: p50 {:?} p99 {:?}; frozen: p50 {:?} p99 {:?}",
        p(&up, 50),
        p(&up, 99),
        p(&frozen, 50),
        p(&frozen, 99)
    );
    assert!(
        p(&frozen, 50) < p(&up, 50) * 3 + Duration::from_millis(10),
        "p50 {:?} frozen against {:?}",
        p(&frozen, 50),
        p(&up, 50)
    );
    assert!(
        p(&frozen, 99) < Duration::from_millis(100),
        "{:?}",
        p(&frozen, 99)
    );
}

/// An operator's action on one replica is taken on every replica, and audited by the one
/// where it was taken ([`Actor::Cluster`] elsewhere).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operators_action_on_one_replica_is_taken_on_all() {
    let c = cluster("control", Script::new()).await;
    let mut events = c.replicas[1].monitor().subscribe();
    let control = |n: usize| {
        c.replicas[n]
            .gateway()
            .fleet()
            .manager()
            .control("gpt-4o")
            .unwrap()
    };
    control(0).force_open();
    timeout(Duration::from_secs(2), async {
        while c.breaker(1) != CircuitState::ForcedOpen || c.breaker(2) != CircuitState::ForcedOpen {
            sleep(Duration::from_millis(2)).await;
        }
    })
    .await
    .expect("forced open everywhere");
    for replica in 0..3 {
        assert_eq!(
            c.ask(replica).await,
            (StatusCode::OK, "claude-4-sonnet".to_owned())
        );
    }
    control(2).drain();
    control(0).force_close();
    timeout(Duration::from_secs(2), async {
        while !(control(0).is_drained() && control(1).is_drained())
            || c.breaker(1) != CircuitState::Closed
        {
            sleep(Duration::from_millis(2)).await;
        }
    })
    .await
    .expect("drained and closed everywhere");
    let mut seen = Vec::new();
    while let Ok(event) = events.try_recv() {
        if let ResilienceEvent::Control { action, by, .. } = event.event {
            seen.push((action.as_str(), by));
        }
    }
    // Two replicas acted: their actions may arrive in either order.
    seen.sort_by_key(|(action, _)| *action);
    assert_eq!(
        seen,
        [
            ("drain", Actor::Cluster),
            ("force_close", Actor::Cluster),
            ("force_open", Actor::Cluster)
        ]
    );
}

/// An incident seen by every replica is notified once: the replicas claim each
/// notification, the first sends it, the others count it as sent elsewhere.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_incident_on_every_replica_is_notified_once() {
    let alerts = "group_wait: 100ms\n  group_interval: 200ms\n  evaluation_interval: 100ms\n  \
                  channels:\n    log: { kind: log }\n  rules:\n    - { name: model_down, \
                  condition: breaker_open, notify: [log] }";
    let c = cluster_with(
        "incident",
        Script::new().always(Behaviour::Status(503)),
        "probe: none",
        alerts,
    )
    .await;
    for _ in 0..3 {
        assert_eq!(c.ask(0).await.0, StatusCode::OK);
    }
    timeout(Duration::from_secs(2), async {
        while c.breaker(1) != CircuitState::Open || c.breaker(2) != CircuitState::Open {
            sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("shared");
    // Every replica sees the incident; one tells the channel.
    let (mut sent, mut elsewhere) = (0, 0);
    timeout(Duration::from_secs(5), async {
        loop {
            (sent, elsewhere) = (0, 0);
            for replica in &c.replicas {
                let stats = replica.alert_channels().await["log"];
                sent += stats.sent;
                elsewhere += stats.deduplicated;
            }
            if sent + elsewhere >= 3 {
                return;
            }
            sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{sent} sent, {elsewhere} sent elsewhere"));
    assert_eq!((sent, elsewhere), (1, 2));
}

/// The status (and the dashboard) shows the cluster: every live replica, and every route's
/// requests summed over them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_status_sums_every_replicas_requests() {
    let c = cluster("summary", Script::new()).await;
    for replica in 0..3 {
        for _ in 0..=replica {
            assert_eq!(c.ask(replica).await.0, StatusCode::OK);
        }
    }
    let summary = timeout(Duration::from_secs(10), async {
        loop {
            let summary = c.replicas[2].admin().status()["cluster"].clone();
            if summary["requests"] == 6 && summary["replicas"].as_array().map(Vec::len) == Some(3) {
                return summary;
            }
            sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .expect("the reports of three replicas, six requests");
    // Each replica's name: the one configured, and a random part of its process's.
    let name = |v: &serde_json::Value| v.as_str().unwrap_or("").to_owned();
    assert!(name(&summary["replica"]).starts_with("r3-"), "{summary}");
    assert_eq!(summary["connected"], true);
    let replicas: Vec<String> = summary["replicas"]
        .as_array()
        .unwrap()
        .iter()
        .map(name)
        .collect();
    assert!(
        replicas[0].starts_with("r1-")
            && replicas[1].starts_with("r2-")
            && replicas[2].starts_with("r3-"),
        "{replicas:?}"
    );
    assert_eq!(summary["routes"]["council"]["answered"], 6);
    assert_eq!(summary["availability"], 1.0);
}

/// Redis unreachable: each replica raises `cluster_link_down` (and says so in its status),
/// resolved when Redis is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_that_cannot_reach_redis_raises_an_alert_resolved_when_it_is_back() {
    let alerts = "group_wait: 100ms\n  group_interval: 200ms\n  evaluation_interval: 100ms\n  \
                  channels:\n    log: { kind: log }\n  rules:\n    - { name: cluster_link_down, \
                  condition: cluster_link_down, notify: [log] }";
    let mut c = cluster_with("link-alert", Script::new(), "probe: none", alerts).await;
    c.firing_everywhere("cluster_link_down", 0).await;
    c.redis.kill();
    c.firing_everywhere("cluster_link_down", 1).await;
    let status = c.replicas[0].admin().status();
    assert_eq!(status["cluster"]["connected"], false);
    assert_eq!(status["metrics"]["cluster"]["up"], false);
    assert_eq!(c.ask(0).await.0, StatusCode::OK, "still serving");
    c.redis.restart().unwrap();
    c.linked(2).await;
    c.firing_everywhere("cluster_link_down", 0).await;
}

/// A reload on one replica makes every replica read its files again; the change is audited
/// once in the cluster, by the replica that claimed it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_on_one_replica_reloads_all_and_is_audited_once() {
    let c = cluster("reload", Script::new()).await;
    let watching: Vec<_> = c.replicas.iter().map(|r| r.watch()).collect();
    // The new config reaches every replica's files (as a ConfigMap update would) …
    let with_fast = format!("{MODELS}  - name: fast\n    models: [claude-4-sonnet]\n")
        .replace("{sim}", &c.sim.base_url());
    for dir in &c.dirs {
        write(dir, "models-resilience.yml", &with_fast);
    }
    // … and an operator reloads one replica.
    c.replicas[0].reload("admin").await.unwrap();
    timeout(Duration::from_secs(5), async {
        while !c
            .replicas
            .iter()
            .all(|r| r.gateway().fleet().routes().contains_key("fast"))
        {
            sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("every replica serves the new route");
    sleep(Duration::from_millis(300)).await;
    let changes: usize = c
        .dirs
        .iter()
        .map(|dir| {
            std::fs::read_to_string(dir.join("audit.jsonl"))
                .unwrap_or_default()
                .lines()
                .filter(|line| line.contains("\"config_change\""))
                .count()
        })
        .sum();
    assert_eq!(changes, 1, "the change is audited once in the cluster");
    for task in watching {
        task.abort();
    }
}

/// A replica that starts while a model is held off (a rolling deploy) holds it off too,
/// from the holds kept in Redis.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_that_starts_late_holds_off_what_the_cluster_holds_off() {
    let c = cluster("late", Script::new().always(Behaviour::Status(503))).await;
    for _ in 0..3 {
        assert_eq!(c.ask(0).await.0, StatusCode::OK);
    }
    assert_eq!(c.breaker(0), CircuitState::Open);
    let (late, _) = replica("late", "r4", &c.sim, &c.redis, "probe: none", NO_ALERTS).await;
    let control = late.gateway().fleet().manager().control("gpt-4o").unwrap();
    timeout(Duration::from_secs(3), async {
        while control.breaker().state() != CircuitState::Open {
            sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the late replica holds gpt-4o off");
}
