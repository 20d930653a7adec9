//! The rules as the call path reads them: compiled once when set, swapped whole, never
//! locked. At the bottom of the crate: the handle and the service both use it.

use std::{
    sync::atomic::{AtomicBool, AtomicU64, Ordering},
    time::Duration,
};

use arc_swap::ArcSwap;
use hive_core::{ModelId, SharedRandom};
use serde::Serialize;
use tokio::time::Instant;

use crate::{
    ChaosError, ChaosRules, Fault, Schedule, StreamFault,
    rules::{Role, Rule},
};

/// State shared by a layer, every service it made and every handle: the switch and the
/// compiled rules.
#[derive(Debug)]
pub(crate) struct Shared {
    /// Read once per call, relaxed: the whole cost of a disabled layer.
    pub(crate) enabled: AtomicBool,
    pub(crate) rules: ArcSwap<Compiled>,
}

impl Shared {
    pub(crate) fn new(rules: ChaosRules) -> Result<Self, ChaosError> {
        let enabled = rules.enabled;
        Ok(Self {
            enabled: AtomicBool::new(enabled),
            rules: ArcSwap::from_pointee(Compiled::new(rules)?),
        })
    }
}

/// The rules set at one moment: their description, their clock's start, their random
/// sequence and their counters.
#[derive(Debug)]
pub(crate) struct Compiled {
    pub(crate) description: ChaosRules,
    started: Instant,
    random: SharedRandom,
    rules: Box<[Armed]>,
}

/// Which calls a rule applies to.
#[derive(Debug)]
enum Target {
    Every,
    Model(ModelId),
}

#[derive(Debug)]
struct Armed {
    target: Target,
    role: Role,
    rule: Rule,
    /// `Flapping`: the time on in each period, in nanoseconds.
    on_nanos: u128,
    matched: AtomicU64,
    injected: AtomicU64,
}

/// How often a rule applied and fired since its rules were set.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct RuleStats {
    /// Calls of the rule's model(s) it was tried on.
    pub matched: u64,
    /// Calls it injected its fault into.
    pub injected: u64,
}

/// What the rules decided for one call.
#[derive(Debug, Default)]
pub(crate) struct Plan<'a> {
    /// The sum of the latencies that fired.
    pub(crate) delay: Duration,
    /// The first failure that fired.
    pub(crate) failure: Option<&'a Fault>,
    /// The first stream fault that fired (only when no failure did).
    pub(crate) stream: Option<StreamFault>,
}

impl Compiled {
    pub(crate) fn new(description: ChaosRules) -> Result<Self, ChaosError> {
        description.validate()?;
        let rules = description
            .rules
            .iter()
            .map(|rule| Armed {
                target: match &rule.model {
                    None => Target::Every,
                    // Interned: rules come from configuration or the admin API, not from
                    // requests, and may name a model before its layer is built.
                    Some(name) => Target::Model(ModelId::new(name)),
                },
                role: rule.fault.role(),
                on_nanos: match rule.schedule {
                    Schedule::Flapping { period, duty } => period.mul_f64(duty).as_nanos(),
                    _ => 0,
                },
                rule: rule.clone(),
                matched: AtomicU64::new(0),
                injected: AtomicU64::new(0),
            })
            .collect();
        Ok(Self {
            random: SharedRandom::new(description.seed),
            description,
            started: Instant::now(),
            rules,
        })
    }

    pub(crate) fn stats(&self) -> Vec<RuleStats> {
        self.rules
            .iter()
            .map(|armed| RuleStats {
                matched: armed.matched.load(Ordering::Relaxed),
                injected: armed.injected.load(Ordering::Relaxed),
            })
            .collect()
    }

    /// Decides one call of `model` at `now`: failures first, then (if none fired) stream
    /// faults, then latencies, each in the rules' order. Random draws are made only for
    /// rules whose rate is strictly between 0 and 1, in that order.
    pub(crate) fn plan(&self, model: ModelId, now: Instant) -> Plan<'_> {
        let elapsed = now.saturating_duration_since(self.started);
        let mut plan = Plan {
            failure: None,
            stream: None,
            delay: Duration::ZERO,
        };
        plan.failure = self
            .applying(model, Role::Failure)
            .find(|armed| armed.fires(elapsed, &self.random))
            .map(|armed| &armed.rule.fault);
        if plan.failure.is_none() {
            plan.stream = self
                .applying(model, Role::Stream)
                .find(|armed| armed.fires(elapsed, &self.random))
                .and_then(|armed| match armed.rule.fault {
                    Fault::Stream(fault) => Some(fault),
                    _ => None,
                });
        }
        for armed in self.applying(model, Role::Delay) {
            if armed.fires(elapsed, &self.random)
                && let Fault::Latency(latency) = &armed.rule.fault
            {
                plan.delay = plan.delay.saturating_add(latency.sample(&self.random));
            }
        }
        plan
    }

    fn applying(&self, model: ModelId, role: Role) -> impl Iterator<Item = &Armed> {
        self.rules.iter().filter(move |armed| {
            armed.role == role
                && match armed.target {
                    Target::Every => true,
                    Target::Model(target) => target == model,
                }
        })
    }
}

impl Armed {
    /// Whether the rule injects into this call, `elapsed` after the rules were set; counts.
    fn fires(&self, elapsed: Duration, random: &SharedRandom) -> bool {
        self.matched.fetch_add(1, Ordering::Relaxed);
        let rate = self.rate_at(elapsed);
        let hit = rate >= 1.0 || (rate > 0.0 && random.unit() < rate);
        if !hit {
            return false;
        }
        match self.rule.schedule {
            // Exactly `calls` injections, however many callers race for the last one.
            Schedule::FailFirst { calls } => self
                .injected
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                    (n < calls).then_some(n + 1)
                })
                .is_ok(),
            _ => {
                self.injected.fetch_add(1, Ordering::Relaxed);
                true
            }
        }
    }

    /// The rule's rate `elapsed` after the rules were set: its rate while its schedule is
    /// on, 0 while off, in between on a ramp.
    fn rate_at(&self, elapsed: Duration) -> f64 {
        let rate = self.rule.rate;
        match self.rule.schedule {
            Schedule::Always => rate,
            Schedule::FailFirst { calls } => {
                if self.injected.load(Ordering::Relaxed) < calls {
                    rate
                } else {
                    0.0
                }
            }
            Schedule::Window { from, to } => {
                if from <= elapsed && elapsed < to {
                    rate
                } else {
                    0.0
                }
            }
            Schedule::Flapping { period, .. } => {
                if elapsed.as_nanos() % period.as_nanos() < self.on_nanos {
                    rate
                } else {
                    0.0
                }
            }
            Schedule::Ramp { from, over } => match elapsed.checked_sub(from) {
                None => 0.0,
                Some(into) if into >= over => rate,
                Some(into) => rate * (into.as_secs_f64() / over.as_secs_f64()),
            },
        }
    }
}
