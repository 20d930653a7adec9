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

/// The longest hold a replica applies or tells of (a provider's wait included): beyond it,
/// each replica's own breaker and checks decide.
pub const MAX_SHARED_HOLD: Duration = Duration::from_secs(10 * 60);

/// How many caused generations are kept per model.
const CAUSED_KEPT: usize = 8;

/// A fleet's side of the sharing: feed it the fleet's events and attempts, attach it to the
/// link as the [`ApplyShared`] target.
pub struct Sharing {
    share: Arc<dyn ShareState>,
    controls: RwLock<Arc<HashMap<ModelId, ModelControl>>>,
    /// Per model, the breaker generations applied changes moved it to (the last few: two
    /// changes applied back to back must both stay unannounced).
    /// Each with whether the change came from another replica.
    caused: RwLock<HashMap<ModelId, Vec<(u64, bool)>>>,
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
        let map: HashMap<ModelId, ModelControl> =
            controls.into_iter().map(|c| (c.model(), c)).collect();
        // A breaker a reload rebuilt starts its generations again: forget its old ones.
        if let Ok(mut caused) = self.caused.write() {
            caused.retain(|model, generations| {
                map.get(model).is_some_and(|control| {
                    let now = control.breaker().metrics().generation;
                    generations.retain(|(g, _)| *g <= now);
                    !generations.is_empty()
                })
            });
        }
        if let Ok(mut slot) = self.controls.write() {
            *slot = Arc::new(map);
        }
    }

    fn control(&self, model: ModelId) -> Option<ModelControl> {
        self.controls.read().ok()?.get(&model).cloned()
    }

    /// Whether applying a change moved the breaker to `generation` (from another replica
    /// only, with `from_others`).
    fn was_caused(&self, model: ModelId, generation: u64, from_others: bool) -> bool {
        self.caused.read().is_ok_and(|c| {
            c.get(&model).is_some_and(|g| {
                g.iter()
                    .any(|(gen_, others)| *gen_ == generation && (*others || !from_others))
            })
        })
    }

    fn record(&self, model: ModelId, generation: Option<u64>, from_others: bool) -> Option<u64> {
        if let (Some(generation), Ok(mut caused)) = (generation, self.caused.write()) {
            let generations = caused.entry(model).or_default();
            if generations.len() >= CAUSED_KEPT {
                generations.remove(0);
            }
            generations.push((generation, from_others));
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
        if self.was_caused(model, generation, false) {
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
                // Still closed by this trial (not opened again since by another's change).
                let current = self
                    .control(model)
                    .map(|c| c.breaker().metrics().generation);
                if current == Some(generation) {
                    self.share.publish(SharedChange::BreakerClosed { model });
                }
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
        // A provider's wait beyond this is held this long, then the breaker decides (a buggy
        // `Retry-After: 86400` must not take a model from every replica for a day).
        let wait = wait.min(MAX_SHARED_HOLD);
        // Already held off at least as long (a burst of 429s): nothing new to tell.
        let control = self.control(model);
        if control
            .as_ref()
            .and_then(|c| c.breaker().metrics().retry_after_remaining)
            .is_some_and(|held| held >= wait)
        {
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
                breaker.hold_open(open_for.min(MAX_SHARED_HOLD).saturating_add(grace), false)
            }
            SharedChange::CoolDown { wait, .. } => {
                // The provider's wait, which no early probe cuts short; then the grace.
                let wait = wait.min(MAX_SHARED_HOLD);
                let moved = breaker.hold_open(wait.saturating_add(grace), false);
                breaker.hold_open(wait, true);
                moved
            }
            SharedChange::BreakerClosed { .. } => breaker.close_if_tripped(),
            SharedChange::Checked {
                ok, latency, next, ..
            } => {
                control.health().record_check(ok, latency);
                // Still down: an open breaker here waits for the checking replica's next
                // check (and its trial), not for its own break to run out.
                if !ok && breaker.state() == hive_core::CircuitState::Open {
                    breaker.hold_open(next.min(MAX_SHARED_HOLD).saturating_add(grace), false)
                } else {
                    None
                }
            }
            SharedChange::Control { action, .. } => {
                let before = breaker.metrics().generation;
                control.act(action, Actor::Cluster);
                let after = breaker.metrics().generation;
                (after != before).then_some(after)
            }
        };
        // A change heard from another replica comes with the trial grace.
        self.record(model, moved, !grace.is_zero())
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

    /// The holds this replica started (a hold it applied from another replica is that
    /// replica's to tell: telling it again would add the trial grace once more).
    fn holding(&self) -> Vec<SharedChange> {
        let Ok(controls) = self.controls.read() else {
            return Vec::new();
        };
        controls
            .values()
            .filter_map(|control| {
                let metrics = control.breaker().metrics();
                let model = control.model();
                if self.was_caused(model, metrics.generation, true) {
                    return None;
                }
                let left = metrics.open_remaining.filter(|d| !d.is_zero())?;
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
