//! The router's metrics. Handles for every request and every attempt are registered once
//! (per route name, per model) and can be shared by the routers of one process; failovers,
//! hedges and last-resort probes happen only on failures and are counted by name.

use std::{sync::Arc, time::Duration};

use hive_core::{ModelId, Outcome, metric};
use metrics::{Counter, Histogram};

use crate::RequestEnd;

#[derive(Debug)]
struct RouterHandles {
    route: String,
    requests: [Counter; 3],
    duration: Histogram,
    hedges_fired: Counter,
    hedges_won: Counter,
}

/// A route's metric handles (`hive_requests_total`, `hive_request_duration_seconds`,
/// `hive_hedges_total`, labelled with the route), registered once with the installed
/// `metrics` recorder. Cheap to clone: give one to every router of that route
/// ([`FallbackRouterBuilder::metrics`](crate::FallbackRouterBuilder::metrics)).
#[derive(Clone, Debug)]
pub struct RouterMetrics {
    handles: Arc<RouterHandles>,
}

impl RouterMetrics {
    /// Registers the handles of route `route`.
    pub fn register(route: impl Into<String>) -> Self {
        let route = route.into();
        let label = route.clone();
        let requests = [RequestEnd::Answered, RequestEnd::Degraded, RequestEnd::Failed].map(|end| {
            metrics::counter!(metric::REQUESTS_TOTAL, "route" => label.clone(), "result" => end.as_str())
        });
        let hedges = |result: &'static str| metrics::counter!(metric::HEDGES_TOTAL, "route" => label.clone(), "result" => result);
        Self {
            handles: Arc::new(RouterHandles {
                requests,
                duration: metrics::histogram!(metric::REQUEST_DURATION_SECONDS, "route" => label.clone()),
                hedges_fired: hedges("fired"),
                hedges_won: hedges("won"),
                route,
            }),
        }
    }

    /// The route the handles are labelled with.
    pub fn route(&self) -> &str {
        &self.handles.route
    }

    pub(crate) fn request(&self, end: RequestEnd, took: Option<Duration>) {
        self.handles.requests[end as usize].increment(1);
        if let Some(took) = took {
            self.handles.duration.record(took.as_secs_f64());
        }
    }

    pub(crate) fn hedge_fired(&self) {
        self.handles.hedges_fired.increment(1);
    }

    pub(crate) fn hedge_won(&self) {
        self.handles.hedges_won.increment(1);
    }
}

/// A model's attempt-duration handle (`hive_attempt_duration_seconds`, labelled with the
/// model), registered once. Cheap to clone: give one to every route to that model
/// ([`Route::metrics`](crate::Route::metrics)).
#[derive(Clone, Debug)]
pub struct AttemptMetrics {
    duration: Histogram,
}

impl AttemptMetrics {
    /// Registers the handle of `model`.
    pub fn register(model: ModelId) -> Self {
        Self {
            duration: metrics::histogram!(metric::ATTEMPT_DURATION_SECONDS, "model" => model.as_str()),
        }
    }

    pub(crate) fn attempt(&self, took: Duration) {
        self.duration.record(took.as_secs_f64());
    }
}

/// Counts a failover (a failure path: resolved by name).
pub(crate) fn failover(from: ModelId, to: ModelId, reason: &Outcome) {
    metrics::counter!(
        metric::FAILOVERS_TOTAL,
        "from" => from.as_str(),
        "to" => to.as_str(),
        "reason" => reason.label()
    )
    .increment(1);
}

/// Counts a last-resort probe (a failure path: resolved by name).
pub(crate) fn last_resort(model: ModelId) {
    metrics::counter!(metric::LAST_RESORT_PROBES_TOTAL, "model" => model.as_str()).increment(1);
}
