//! Cluster mode in the gateway (`cluster:` in resilience.yml): the Redis link
//! (`hive-cluster`) and the fleet's side of the sharing ([`Sharing`]), fed by the monitor's
//! events (breaker transitions) and attempts (a provider's `Retry-After`). The fleet's
//! models are served again after every reload.

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use hive_cluster::{Cluster, ClusterError, ClusterSettings, ClusterStatus};
use hive_config::ClusterConfig;
use hive_core::{ModelId, Outcome, ResilienceEvent};
use hive_monitor::{AttemptTap, Monitor, RequestCounts, TimedEvent};
use hive_resilience::Sharing;
use serde_json::{Value, json};
use tokio::{
    sync::{broadcast, watch},
    task::JoinHandle,
};

use crate::{http::Gateway, server::next_event};

/// A running cluster link and what feeds it.
pub(crate) struct ClusterLink {
    cluster: Arc<Cluster>,
    sharing: Arc<Sharing>,
    feed: Option<JoinHandle<()>>,
    reporter: Option<JoinHandle<()>>,
    watcher: Option<JoinHandle<()>>,
}

/// How often this replica tells the cluster of its traffic.
const REPORT_EVERY: Duration = Duration::from_secs(2);

/// The cluster as the admin API and the dashboard show it: every live replica's requests
/// summed, from the reports the link last read. Cheap to clone.
#[derive(Clone)]
pub(crate) struct ClusterView(Arc<Cluster>);

/// The actor of a reload another replica of the cluster asked for.
pub(crate) const CLUSTER_ACTOR: &str = "cluster";

/// How long a claim on a config change's audit line holds: the replicas that make the same
/// change within it record it once (announced reloads take milliseconds). Short, so that
/// the same change made again soon after (a secret rotated twice) is recorded again; a
/// replica that sees it later (a Kubernetes ConfigMap takes up to a minute or so) records
/// it too — a duplicate line rather than none.
const AUDIT_CLAIM: Duration = Duration::from_secs(30);

impl ClusterView {
    /// Whether this replica is the first of the cluster to record the config change
    /// `diff` (the same diff on every replica, whatever else differs in their configs).
    pub(crate) async fn claim_change(&self, diff: &hive_config::ConfigDiff) -> bool {
        let hash = hive_core::fnv1a64(diff.to_json().to_string().as_bytes());
        let key = format!("audit:config:{hash:016x}");
        hive_core::ClaimOnce::claim(self.0.as_ref(), key, AUDIT_CLAIM).await
    }

    /// Tells the other replicas this one reloaded (to `hash`).
    pub(crate) async fn announce_reload(&self, hash: &str) {
        self.0.announce_reload(hash).await;
    }

    /// The reloads the other replicas announce.
    pub(crate) fn reloads(&self) -> tokio::sync::broadcast::Receiver<String> {
        self.0.reloads()
    }

    /// The replicas, the link, and every route's requests over the last five minutes,
    /// summed over the replicas (with the share answered).
    pub(crate) fn summary(&self) -> Value {
        let status = self.0.status();
        let mut replicas = Vec::new();
        let mut routes: BTreeMap<String, RequestCounts> = BTreeMap::new();
        for (replica, text) in self.0.reports() {
            let Ok(report) = serde_json::from_str::<Report>(&text) else {
                continue;
            };
            for (name, counts) in &report.routes {
                routes.entry(name.clone()).or_default().add(counts);
            }
            replicas.push(replica);
        }
        let mut total = RequestCounts::default();
        let routes: serde_json::Map<String, Value> = routes
            .into_iter()
            .map(|(name, counts)| {
                total.add(&counts);
                let value = json!({
                    "answered": counts.answered,
                    "degraded": counts.degraded,
                    "failed": counts.failed,
                    "availability": counts.availability(),
                });
                (name, value)
            })
            .collect();
        json!({
            "replica": self.0.replica(),
            "connected": status.connected,
            "replicas": replicas,
            "checking": status.checking,
            "window": "last 5 minutes",
            "requests": total.total(),
            "availability": total.availability(),
            "routes": routes,
        })
    }
}

/// Tells the sharing of every attempt (a 429 with `Retry-After` holds the model off
/// everywhere).
struct RetryAfterTap(Arc<Sharing>);

impl AttemptTap for RetryAfterTap {
    fn attempt(&self, model: ModelId, outcome: &Outcome, _: Duration) {
        self.0.on_attempt(model, outcome);
    }
}

impl ClusterLink {
    /// Starts the link for `config`, and taps `monitor`'s attempts: before the fleet's
    /// stacks are built, so that every attempt is seen from the first.
    pub(crate) fn start(
        config: &ClusterConfig,
        health_interval: Duration,
        monitor: &Monitor,
    ) -> Result<Self, ClusterError> {
        // A replica that stops checking is replaced within two thirds of an interval.
        let lease = health_interval.mul_f64(2.0 / 3.0);
        let mut settings =
            ClusterSettings::new(config.redis.expose(), &config.prefix)?.lease_ttl(lease);
        if let Some(name) = &config.replica {
            settings = settings.replica(name)?;
        }
        if let Some(ca) = &config.tls_ca {
            settings = settings.root_certificates(ca.expose().as_bytes())?;
        }
        tracing::info!(
            replica = settings.replica_name(),
            prefix = config.prefix,
            redis = %config.redis.source(),
            "cluster mode: sharing breakers and cooldowns through Redis"
        );
        let cluster = Arc::new(Cluster::start(settings));
        let sharing = Sharing::new(Arc::clone(&cluster) as Arc<dyn hive_core::ShareState>);
        monitor.tap_attempts(Arc::new(RetryAfterTap(Arc::clone(&sharing))));
        Ok(Self {
            cluster,
            sharing,
            feed: None,
            reporter: None,
            watcher: None,
        })
    }

    /// Shares the fleet `gateway` serves: applies the others' changes to it, and tells
    /// them of its breakers' (from `monitor`'s events) until `stopping`.
    pub(crate) fn share(
        &mut self,
        gateway: &Gateway,
        monitor: &Monitor,
        stopping: watch::Receiver<bool>,
    ) {
        self.serve(gateway);
        self.cluster
            .attach(Arc::clone(&self.sharing) as Arc<dyn hive_core::ApplyShared>);
        self.feed = Some(tokio::spawn(feed(
            Arc::clone(&self.sharing),
            gateway.clone(),
            monitor.subscribe(),
            stopping.clone(),
        )));
        self.reporter = Some(tokio::spawn(report(
            Arc::clone(&self.cluster),
            monitor.clone(),
            stopping,
        )));
        self.watcher = Some(tokio::spawn(watch_link(
            self.cluster.link_changes(),
            monitor.event_sink(),
        )));
    }

    /// Serves the models of the fleet `gateway` serves now (after a reload).
    pub(crate) fn serve(&self, gateway: &Gateway) {
        self.sharing.serve(gateway.fleet().manager().controls());
    }

    /// The cluster as the admin API shows it.
    pub(crate) fn view(&self) -> ClusterView {
        ClusterView(Arc::clone(&self.cluster))
    }

    /// Whose duty each model's health checks are.
    pub(crate) fn duty(&self) -> Arc<dyn hive_core::ProbeDuty> {
        Arc::clone(&self.cluster) as Arc<dyn hive_core::ProbeDuty>
    }

    /// The cluster's "first one wins", for alert notifications.
    pub(crate) fn claims(&self) -> Arc<dyn hive_core::ClaimOnce> {
        Arc::clone(&self.cluster) as Arc<dyn hive_core::ClaimOnce>
    }

    /// What the link has done.
    pub(crate) fn status(&self) -> ClusterStatus {
        self.cluster.status()
    }

    /// Ends the link.
    pub(crate) fn stop(self) {
        for task in [&self.feed, &self.reporter, &self.watcher]
            .into_iter()
            .flatten()
        {
            task.abort();
        }
        self.cluster.close();
    }
}

/// Tells the sharing of every event until the gateway stops; a model it does not know yet
/// (one a pattern added) makes it serve the fleet's models again.
async fn feed(
    sharing: Arc<Sharing>,
    gateway: Gateway,
    mut events: broadcast::Receiver<TimedEvent>,
    mut stopping: watch::Receiver<bool>,
) {
    let lost = "some breaker changes were not shared";
    while let Some(TimedEvent { event, .. }) = next_event(&mut events, &mut stopping, lost).await {
        if let ResilienceEvent::CircuitTransition { model, .. }
        | ResilienceEvent::BreakerReplaced { model } = &event
            && (matches!(event, ResilienceEvent::BreakerReplaced { .. })
                || hive_core::ApplyShared::model(sharing.as_ref(), model.as_str()).is_none())
        {
            sharing.serve(gateway.fleet().manager().controls());
        }
        sharing.on_event(&event);
    }
}

/// What a replica tells the cluster of its traffic: every route's requests over the last
/// five minutes.
#[derive(serde::Serialize, serde::Deserialize)]
struct Report {
    routes: BTreeMap<String, RequestCounts>,
}

/// Tells the cluster of this replica's traffic every [`REPORT_EVERY`], until the gateway
/// stops.
async fn report(cluster: Arc<Cluster>, monitor: Monitor, mut stopping: watch::Receiver<bool>) {
    let mut every = tokio::time::interval(REPORT_EVERY);
    loop {
        tokio::select! {
            _ = stopping.changed() => return,
            _ = every.tick() => {}
        }
        let report = Report {
            routes: monitor
                .snapshot()
                .routes
                .into_iter()
                .map(|(name, windows)| (name, windows.last_5_minutes))
                .collect(),
        };
        if let Ok(text) = serde_json::to_string(&report) {
            cluster.report(text);
        }
    }
}

/// Tells the monitor (and so the `cluster_link_down` alert and the dashboard) each time the
/// link to the cluster goes down or comes back.
async fn watch_link(mut link: watch::Receiver<Option<bool>>, events: hive_core::EventSink) {
    while link.changed().await.is_ok() {
        let state = *link.borrow_and_update();
        if let Some(up) = state {
            events.emit(|| ResilienceEvent::ClusterLink { up });
        }
    }
}
