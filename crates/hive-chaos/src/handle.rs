//! [`ChaosHandle`]: switches a chaos layer on and off and replaces its rules at runtime.

use std::sync::{Arc, atomic::Ordering};

use crate::{
    ChaosError, ChaosRules, RuleStats,
    engine::{Compiled, Shared},
};

/// Controls a [`ChaosLayer`](crate::ChaosLayer), its clones and every service they made:
/// cheap to clone, safe to use from any task. Switching is one atomic store; new rules are
/// compiled here and swapped in whole, so calls never wait on the handle.
#[derive(Clone, Debug)]
pub struct ChaosHandle {
    pub(crate) shared: Arc<Shared>,
}

impl ChaosHandle {
    /// Switches injection on.
    pub fn enable(&self) {
        self.set_enabled(true);
    }

    /// Switches injection off: calls pass straight through (one relaxed atomic load).
    pub fn disable(&self) {
        self.set_enabled(false);
    }

    /// Switches injection on or off.
    pub fn set_enabled(&self, enabled: bool) {
        self.shared.enabled.store(enabled, Ordering::Relaxed);
    }

    /// Whether injection is on.
    pub fn is_enabled(&self) -> bool {
        self.shared.enabled.load(Ordering::Relaxed)
    }

    /// Replaces the rules, once valid (nothing changes otherwise), and switches injection
    /// as they say ([`ChaosRules::enabled`]). Their schedules start now, their counters at
    /// zero, their random sequence at their seed.
    pub fn set_rules(&self, rules: ChaosRules) -> Result<(), ChaosError> {
        let enabled = rules.enabled;
        self.shared.rules.store(Arc::new(Compiled::new(rules)?));
        self.set_enabled(enabled);
        Ok(())
    }

    /// Starts the current rules again: schedules from now, counters at zero, random
    /// sequence at the seed.
    pub fn restart(&self) {
        let mut description = self.shared.rules.load().description.clone();
        description.enabled = self.is_enabled();
        // Valid already: it was compiled once.
        if let Ok(compiled) = Compiled::new(description) {
            self.shared.rules.store(Arc::new(compiled));
        }
    }

    /// The rules in force, with the switch as it is now: what an admin API shows.
    pub fn rules(&self) -> ChaosRules {
        let mut rules = self.shared.rules.load().description.clone();
        rules.enabled = self.is_enabled();
        rules
    }

    /// How often each rule (in order) applied and fired since the rules were set.
    pub fn stats(&self) -> Vec<RuleStats> {
        self.shared.rules.load().stats()
    }
}
