//! The seam through which the replicas of a gateway share what one of them learns about a
//! model: a breaker that opened or closed, a provider's request to wait. Alone (the
//! default) there is nothing to share; `hive-cluster` shares it over Redis.
//!
//! Nothing here is on a request's path: changes are published when a breaker changes
//! state or a provider says `Retry-After`, into a queue that never blocks.

use std::{fmt, future::Future, pin::Pin, time::Duration};

use crate::ModelId;

/// Whether `text` may name a cluster's key prefix or a replica: 1 to 64 characters
/// without spaces, control characters or Redis glob characters (a prefix `hive*` would
/// match other deployments' keys).
pub fn is_cluster_name(text: &str) -> bool {
    (1..=64).contains(&text.len())
        && !text
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || "*?[]\\".contains(c))
}

/// A change of one model's state that every replica should apply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SharedChange {
    /// The model's breaker opened: hold the model off for `open_for` from now.
    BreakerOpened {
        /// The model.
        model: ModelId,
        /// The break left.
        open_for: Duration,
    },
    /// The model's breaker closed after a successful trial: let calls through again.
    BreakerClosed {
        /// The model.
        model: ModelId,
    },
    /// The provider asked to wait (a 429 with `Retry-After`): hold the model off for
    /// `wait` from now, and let no early probe cut it short.
    CoolDown {
        /// The model.
        model: ModelId,
        /// The wait left.
        wait: Duration,
    },
    /// An operator acted on the model on another replica (forced its breaker, drained it
    /// …): the same here, not audited again.
    Control {
        /// The model.
        model: ModelId,
        /// What was done.
        action: crate::ControlAction,
    },
    /// The replica that checks the model's health ran a check: record it as if it were
    /// this replica's own.
    Checked {
        /// The model.
        model: ModelId,
        /// Whether it passed.
        ok: bool,
        /// How long it took.
        latency: Duration,
        /// When the next check runs, from now: while checks fail, the others hold an open
        /// breaker until then (and the trial grace), so that the replica checking the model
        /// sends the one trial when it comes back.
        next: Duration,
    },
}

impl SharedChange {
    /// The model it is about.
    pub fn model(&self) -> ModelId {
        match *self {
            Self::BreakerOpened { model, .. }
            | Self::BreakerClosed { model }
            | Self::CoolDown { model, .. }
            | Self::Control { model, .. }
            | Self::Checked { model, .. } => model,
        }
    }
}

/// Where a replica publishes the changes the others should apply.
pub trait ShareState: Send + Sync + 'static {
    /// Tells the other replicas; never blocks and never fails the caller (a change that
    /// cannot be sent is counted and dropped: the others learn by themselves, as alone).
    fn publish(&self, change: SharedChange);
}

/// No other replica: nothing is shared (the default).
#[derive(Clone, Copy, Debug, Default)]
pub struct NotShared;

impl ShareState for NotShared {
    fn publish(&self, _: SharedChange) {}
}

/// Applies the changes other replicas publish to this replica's own state.
pub trait ApplyShared: Send + Sync + 'static {
    /// Applies `change`; returns the breaker generation it moved the model's breaker to,
    /// when it did (so that the transition it caused is not published back).
    fn apply(&self, change: SharedChange) -> Option<u64>;

    /// Whether this replica serves `name` (a change about a model it does not know is
    /// ignored, never interned).
    fn model(&self, name: &str) -> Option<ModelId>;

    /// What this replica holds off now (its open breakers, with the break left), told to
    /// the others when its link to them (re)starts.
    fn holding(&self) -> Vec<SharedChange>;

    /// The models it serves (each one's health checks are one replica's duty).
    fn models(&self) -> Vec<ModelId>;
}

/// Which replica runs each model's health checks, and where their results go, so that N
/// replicas cost a provider one stream of checks, not N. Alone (no duty set), a replica
/// checks every model itself.
pub trait ProbeDuty: Send + Sync + 'static {
    /// Whether this replica checks `model` now (one atomic load: it is asked before every
    /// check).
    fn mine(&self, model: ModelId) -> bool;

    /// A check this replica ran, for the others to record as theirs; the next runs `next`
    /// from now.
    fn checked(&self, model: ModelId, ok: bool, latency: Duration, next: Duration);
}

/// "First one wins" across the replicas of a cluster: the replica that claims a key first
/// does the work it stands for (sends the Slack message of an incident), the others do not.
/// Alone — or with the cluster unreachable — every claim wins: a duplicate beats silence.
pub trait ClaimOnce: Send + Sync + 'static {
    /// Whether this replica is the first to claim `key` in the last `ttl`.
    fn claim(&self, key: String, ttl: Duration) -> Pin<Box<dyn Future<Output = bool> + Send + '_>>;

    /// Gives back a claim this replica won but could not honour (a notification whose
    /// delivery failed), so that another replica may. Nothing by default.
    fn release(&self, key: String) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        let _ = key;
        Box::pin(async {})
    }
}

impl fmt::Debug for dyn ClaimOnce {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ClaimOnce")
    }
}

impl fmt::Debug for dyn ProbeDuty {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ProbeDuty")
    }
}

impl fmt::Debug for dyn ShareState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ShareState")
    }
}
