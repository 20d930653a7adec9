//! [`Sharing`]: what a fleet of model stacks tells the other replicas of its cluster, and
//! how it applies what they tell it — over any [`ShareState`] (`hive-cluster`'s Redis link,
//! or nothing).
//!
//! Told: a breaker that opened here (with the break left) or closed after its trial, and a
//! provider's `Retry-After` (every replica, this one included, holds that model off until
//! then). Applied: the same, to this replica's breakers ([`BreakerHandle::hold_open`],
//! [`BreakerHandle::close_if_tripped`]). A transition caused by applying another replica's
//! change is not told back.
//!
//! An operator's action on one replica (forcing a breaker, draining a model …) is taken on
//! every replica, audited by the one where it was taken ([`Actor::Cluster`] elsewhere).
//!
//! Health checks are shared too: the replica whose duty a model's checks are (a lease, in
//! `hive-cluster`) runs them, and the others record its results as their own
//! ([`SharedChange::Checked`]).
//!
//! One trial for the cluster: a break heard from another replica is held [`TRIAL_GRACE`]
//! longer than the replica that opened it holds it, so that replica's trial goes first and
//! its verdict — closed, or open again — reaches the others before their own break ends. If
//! that replica is gone, the others try after the grace.
//!
//! [`BreakerHandle::hold_open`]: hive_breaker::BreakerHandle::hold_open
//! [`BreakerHandle::close_if_tripped`]: hive_breaker::BreakerHandle::close_if_tripped

use std::{
    collections::HashMap,
    fmt,
    sync::{Arc, RwLock},
    time::Duration,
};

use hive_core::{
    Actor, ApplyShared, CircuitState, FailureClass, ModelId, Outcome, ResilienceEvent, ShareState,
    SharedChange,
};

use crate::ModelControl;

/// How much longer than the replica that opened it the others hold a break: time for its
/// trial to go and its verdict to arrive.
pub const TRIAL_GRACE: Duration = Duration::from_secs(2);

/// A fleet's side of the sharing: feed it the fleet's events and attempts, attach it to the
/// link as the [`ApplyShared`] target.
pub struct Sharing {
    share: Arc<dyn ShareState>,
    controls: RwLock<Arc<HashMap<ModelId, ModelControl>>>,
    /// Per model, the breaker generation the last applied change moved it to.
    caused: RwLock<HashMap<ModelId, u64>>,
}

impl Sharing {
    /// Sharing over `share`, with no models yet ([`serve`](Self::serve) them).
    pub fn new(share: Arc<dyn ShareState>) -> Arc<Self> {
        Arc::new(Self {
            share,
            controls: RwLock::default(),
            caused: RwLock::default(),
        })
    }

    /// The models whose breakers it tells of and applies to (all of a fleet's, again after
    /// a reload rebuilt some).
    pub fn serve(&self, controls: impl IntoIterator<Item = ModelControl>) {
        let map = controls.into_iter().map(|c| (c.model(), c)).collect();
        if let Ok(mut slot) = self.controls.write() {
            *slot = Arc::new(map);
        }
    }

    fn control(&self, model: ModelId) -> Option<ModelControl> {
        self.controls.read().ok()?.get(&model).cloned()
    }

    fn was_caused(&self, model: ModelId, generation: u64) -> bool {
        self.caused
            .read()
            .is_ok_and(|c| c.get(&model) == Some(&generation))
    }

    fn record(&self, model: ModelId, generation: Option<u64>) -> Option<u64> {
        if let (Some(generation), Ok(mut caused)) = (generation, self.caused.write()) {
            caused.insert(model, generation);
        }
        generation
    }

    /// Tells the others of a breaker transition of this replica's own: an opening (with the
    /// break left) or a close after a trial. Other events are not shared.
    pub fn on_event(&self, event: &ResilienceEvent) {
        if let ResilienceEvent::Control {
            model,
            action,
            by: Actor::Operator,
        } = *event
        {
            self.share.publish(SharedChange::Control { model, action });
            return;
        }
        let ResilienceEvent::CircuitTransition {
            model,
            from,
            to,
            generation,
            ..
        } = *event
        else {
            return;
        };
        if self.was_caused(model, generation) {
            return;
        }
        match (from, to) {
            (_, CircuitState::Open) => {
                let Some(control) = self.control(model) else {
                    return;
                };
                let metrics = control.breaker().metrics();
                // Still the opening told of (not one closed since), with its break left.
                if metrics.generation != generation {
                    return;
                }
                if let Some(open_for) = metrics.open_remaining.filter(|d| !d.is_zero()) {
                    self.share
                        .publish(SharedChange::BreakerOpened { model, open_for });
                }
            }
            (CircuitState::HalfOpen, CircuitState::Closed) => {
                self.share.publish(SharedChange::BreakerClosed { model });
            }
            _ => {}
        }
    }

    /// A provider asked to wait (a 429 with `Retry-After`): every replica holds the model
    /// off until then, this one first.
    pub fn on_attempt(&self, model: ModelId, outcome: &Outcome) {
        let Outcome::Failure {
            class: FailureClass::RateLimited,
            retry_after: Some(wait),
        } = *outcome
        else {
            return;
        };
        if wait.is_zero() {
            return;
        }
        let change = SharedChange::CoolDown { model, wait };
        self.hold(change, Duration::ZERO);
        self.share.publish(change);
    }

    /// Applies `change` to the model's breaker, a break lengthened by `grace`.
    fn hold(&self, change: SharedChange, grace: Duration) -> Option<u64> {
        let model = change.model();
        let control = self.control(model)?;
        let breaker = control.breaker();
        let moved = match change {
            SharedChange::BreakerOpened { open_for, .. } => {
                breaker.hold_open(open_for.saturating_add(grace), false)
            }
            SharedChange::CoolDown { wait, .. } => {
                // The provider's wait, which no early probe cuts short; then the grace.
                let moved = breaker.hold_open(wait.saturating_add(grace), false);
                breaker.hold_open(wait, true);
                moved
            }
            SharedChange::BreakerClosed { .. } => breaker.close_if_tripped(),
            SharedChange::Checked { ok, latency, .. } => {
                control.health().record_check(ok, latency);
                None
            }
            SharedChange::Control { action, .. } => {
                control.act(action, Actor::Cluster);
                None
            }
        };
        self.record(model, moved)
    }
}

impl ApplyShared for Sharing {
    /// Another replica's change: its break held [`TRIAL_GRACE`] longer.
    fn apply(&self, change: SharedChange) -> Option<u64> {
        self.hold(change, TRIAL_GRACE)
    }

    fn model(&self, name: &str) -> Option<ModelId> {
        let controls = self.controls.read().ok()?;
        controls.keys().find(|m| m.as_str() == name).copied()
    }

    fn models(&self) -> Vec<ModelId> {
        self.controls
            .read()
            .map(|c| c.keys().copied().collect())
            .unwrap_or_default()
    }

    fn holding(&self) -> Vec<SharedChange> {
        let Ok(controls) = self.controls.read() else {
            return Vec::new();
        };
        controls
            .values()
            .filter_map(|control| {
                let metrics = control.breaker().metrics();
                let left = metrics.open_remaining.filter(|d| !d.is_zero())?;
                let model = control.model();
                Some(match metrics.retry_after_remaining {
                    Some(wait) if wait >= left => SharedChange::CoolDown { model, wait },
                    _ => SharedChange::BreakerOpened {
                        model,
                        open_for: left,
                    },
                })
            })
            .collect()
    }
}

impl fmt::Debug for Sharing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let models = self.controls.read().map_or(0, |c| c.len());
        f.debug_struct("Sharing")
            .field("models", &models)
            .finish_non_exhaustive()
    }
}
