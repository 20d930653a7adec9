//! Cluster mode in the gateway (`cluster:` in resilience.yml): the Redis link
//! (`hive-cluster`) and the fleet's side of the sharing ([`Sharing`]), fed by the monitor's
//! events (breaker transitions) and attempts (a provider's `Retry-After`). The fleet's
//! models are served again after every reload.

use std::{sync::Arc, time::Duration};

use hive_cluster::{Cluster, ClusterError, ClusterSettings, ClusterStatus};
use hive_config::ClusterConfig;
use hive_core::{ModelId, Outcome, ResilienceEvent};
use hive_monitor::{AttemptTap, Monitor, TimedEvent};
use hive_resilience::Sharing;
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
            stopping,
        )));
    }

    /// Serves the models of the fleet `gateway` serves now (after a reload).
    pub(crate) fn serve(&self, gateway: &Gateway) {
        self.sharing.serve(gateway.fleet().manager().controls());
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
        if let Some(feed) = &self.feed {
            feed.abort();
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
