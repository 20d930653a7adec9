//! [`Rule`]s: a [`Condition`] over the monitor's snapshots and events, the channels told
//! when it holds, its severity, and an optional [`Escalation`].

use std::{collections::BTreeMap, fmt, time::Duration};

use hive_core::{CircuitState, FailureClass, HealthStatus, ModelId};
use tokio::time::Instant;

use crate::{
    alert::{
        error::AlertError,
        types::{Figures, Severity, Subject, human, percent},
    },
    snapshot::{
        ConfigStatus, ModelMetrics, RequestCounts, RequestWindows, ResilienceMetrics, WindowStats,
        Windows,
    },
};

/// One of the monitor's three windows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Window {
    /// The last minute.
    LastMinute,
    /// The last five minutes.
    Last5Minutes,
    /// The last hour.
    LastHour,
}

impl Window {
    fn of(self, windows: &Windows) -> &WindowStats {
        match self {
            Self::LastMinute => &windows.last_minute,
            Self::Last5Minutes => &windows.last_5_minutes,
            Self::LastHour => &windows.last_hour,
        }
    }

    fn requests(self, windows: &RequestWindows) -> &RequestCounts {
        match self {
            Self::LastMinute => &windows.last_minute,
            Self::Last5Minutes => &windows.last_5_minutes,
            Self::LastHour => &windows.last_hour,
        }
    }
}

impl fmt::Display for Window {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::LastMinute => "the last minute",
            Self::Last5Minutes => "the last 5 minutes",
            Self::LastHour => "the last hour",
        })
    }
}

/// A latency percentile of a window.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Percentile {
    /// The median.
    P50,
    /// The 95th percentile.
    P95,
    /// The 99th percentile.
    P99,
}

impl Percentile {
    fn name(self) -> &'static str {
        match self {
            Self::P50 => "p50",
            Self::P95 => "p95",
            Self::P99 => "p99",
        }
    }
}

/// When a rule fires. Each condition is checked per model (or per route, or for the
/// gateway's configuration) at every evaluation; the alert resolves at the first evaluation
/// where it no longer holds.
#[derive(Clone, Debug, PartialEq)]
pub enum Condition {
    /// The model failed at least `at_least` attempts in a row (an answer resets the count;
    /// calls refused by its open breaker do not).
    ConsecutiveFailures {
        /// Failures in a row that fire (at least 1).
        at_least: u64,
    },
    /// The model's failures over `window` are **above** `above` (0 to 1) of its calls, and
    /// it had at least `min_calls` calls.
    FailureRate {
        /// The share of failed calls that fires when exceeded (0 ≤ above < 1).
        above: f64,
        /// Over which window.
        window: Window,
        /// Calls needed before the rate counts (at least 1).
        min_calls: u64,
    },
    /// The model's breaker is open, forced open, or half-open (probing) — from the moment
    /// it opens until it closes.
    BreakerOpen,
    /// The model's breaker has been open (half-open probes and reopenings included) for at
    /// least `longer_than`.
    BreakerStuckOpen {
        /// How long an open incident lasts before it fires.
        longer_than: Duration,
    },
    /// Every model of a route (as given to
    /// [`AlertManagerBuilder::route`](crate::alert::AlertManagerBuilder::route)) is down: its
    /// breaker is not closed, or its health is unhealthy. While it fires, it **inhibits**
    /// every other alert about the route's models.
    RouteDown,
    /// The model answered as another model at least once over `window`.
    IdentityMismatch {
        /// Over which window.
        window: Window,
    },
    /// The model's provider refused the credentials (HTTP 401/403). Fires at the
    /// [`CredentialsRejected`](hive_core::ResilienceEvent::CredentialsRejected) event and
    /// resolves once no refusal came for `quiet_for`.
    CredentialsRejected {
        /// How long without a refusal before it resolves.
        quiet_for: Duration,
    },
    /// The model's latency `percentile` over `window` is **above** `above`, with at least
    /// `min_calls` calls.
    Latency {
        /// Which percentile.
        percentile: Percentile,
        /// The bound.
        above: Duration,
        /// Over which window.
        window: Window,
        /// Calls needed before the percentile counts (at least 1).
        min_calls: u64,
    },
    /// A route answered **below** `below` (0 to 1) of its requests over `window`, with at
    /// least `min_requests` requests (routes as the monitor records them).
    Availability {
        /// The target share of answered requests.
        below: f64,
        /// Over which window.
        window: Window,
        /// Requests needed before the share counts (at least 1).
        min_requests: u64,
    },
    /// The gateway refused a new configuration (it had problems) and the old one keeps
    /// serving: one alert about [`Subject::Config`], from the refused
    /// [`ConfigReload`](hive_core::ResilienceEvent::ConfigReload) event until the next
    /// accepted one (further refusals update it, never make a second one). Read from the
    /// snapshot's [`config`](ResilienceMetrics::config).
    ConfigRejected,
    /// This replica's link to its cluster is down (cluster mode: Redis unreachable): it
    /// serves on its own state and shares nothing. One alert about [`Subject::Cluster`],
    /// resolved when the link is back. Read from the snapshot's
    /// [`cluster`](ResilienceMetrics::cluster).
    ClusterLinkDown,
}

/// Raise an alert that stays unresolved: after `after`, it is sent again at `severity` to
/// the rule's channels and to `channels`, which are then told of its resolution too.
#[derive(Clone, Debug, PartialEq)]
pub struct Escalation {
    /// How long the alert must stay unresolved.
    pub after: Duration,
    /// The severity once escalated.
    pub severity: Severity,
    /// Channels told in addition to the rule's own.
    pub channels: Vec<String>,
}

/// An alerting rule: a name (the group of its alerts, and the `rule` label of the metrics),
/// a [`Condition`], a severity, the channels it notifies and an optional [`Escalation`].
///
/// ```
/// use std::time::Duration;
/// use hive_monitor::alert::{Condition, Rule, Severity, Window};
///
/// let slow = Rule::new(
///     "slow_model",
///     Condition::Latency {
///         percentile: hive_monitor::alert::Percentile::P95,
///         above: Duration::from_secs(20),
///         window: Window::Last5Minutes,
///         min_calls: 20,
///     },
/// )
/// .severity(Severity::Info)
/// .notify(["slack"]);
/// assert_eq!(slow.name, "slow_model");
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Rule {
    /// The rule's name: unique, used as the group of its alerts and as a metric label.
    pub name: String,
    /// When it fires.
    pub condition: Condition,
    /// The severity of its alerts until escalated. Default [`Severity::Warning`].
    pub severity: Severity,
    /// The channels it notifies, by name.
    pub channels: Vec<String>,
    /// Its escalation, if any.
    pub escalation: Option<Escalation>,
}

/// A model is down when its breaker is not closed (open, forced open, half-open) or its
/// health is unhealthy.
pub(crate) fn is_down(model: &ModelMetrics) -> bool {
    matches!(
        model.breaker,
        CircuitState::Open | CircuitState::ForcedOpen | CircuitState::HalfOpen
    ) || model.health == HealthStatus::Unhealthy
}

fn why_down(model: &ModelMetrics) -> &'static str {
    match (model.breaker, model.health) {
        (CircuitState::Open, _) => "breaker open",
        (CircuitState::ForcedOpen, _) => "breaker forced open",
        (CircuitState::HalfOpen, _) => "breaker half-open",
        _ => "unhealthy",
    }
}

/// The name of the default rule "model unavailable after 3 consecutive failures".
pub const MODEL_UNAVAILABLE: &str = "model_unavailable";
/// The name of the default rule "failure rate above 20% over 5 minutes".
pub const HIGH_FAILURE_RATE: &str = "high_failure_rate";
/// The name of [`Rule::config_rejected`]'s rule.
pub const CONFIG_REJECTED: &str = "config_rejected";

/// The name of [`Rule::cluster_link_down`]'s rule.
pub const CLUSTER_LINK_DOWN: &str = "cluster_link_down";

impl Rule {
    /// A rule of [`Severity::Warning`] that notifies no channel yet (add them with
    /// [`notify`](Self::notify)).
    pub fn new(name: impl Into<String>, condition: Condition) -> Self {
        Self {
            name: name.into(),
            condition,
            severity: Severity::Warning,
            channels: Vec::new(),
            escalation: None,
        }
    }

    /// Sets the severity of its alerts.
    #[must_use]
    pub fn severity(mut self, severity: Severity) -> Self {
        self.severity = severity;
        self
    }

    /// Adds channels it notifies, by name.
    #[must_use]
    pub fn notify<I, S>(mut self, channels: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.channels.extend(channels.into_iter().map(Into::into));
        self
    }

    /// Escalates alerts unresolved after `after`: sent again at `severity` to the rule's
    /// channels and to `channels` (which may be empty).
    #[must_use]
    pub fn escalate<I, S>(mut self, after: Duration, severity: Severity, channels: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.escalation = Some(Escalation {
            after,
            severity,
            channels: channels.into_iter().map(Into::into).collect(),
        });
        self
    }

    /// The governance system's rules, used when none is given:
    ///
    /// * [`MODEL_UNAVAILABLE`]: a model failed 3 attempts in a row → `slack` and `email`
    ///   at warning; still unresolved after 5 minutes → escalated to critical (both told
    ///   again).
    /// * [`HIGH_FAILURE_RATE`]: a model failed more than 20% of at least 10 calls over the
    ///   last 5 minutes → `slack` at warning.
    pub fn defaults() -> Vec<Rule> {
        vec![
            Rule::new(
                MODEL_UNAVAILABLE,
                Condition::ConsecutiveFailures { at_least: 3 },
            )
            .notify(["slack", "email"])
            .escalate(
                Duration::from_secs(5 * 60),
                Severity::Critical,
                Vec::<String>::new(),
            ),
            Rule::new(
                HIGH_FAILURE_RATE,
                Condition::FailureRate {
                    above: 0.20,
                    window: Window::Last5Minutes,
                    min_calls: 10,
                },
            )
            .notify(["slack"]),
        ]
    }

    /// [`CONFIG_REJECTED`]: a refused config reload ([`Condition::ConfigRejected`]), at
    /// warning. Not among the [`defaults`](Self::defaults): add it with the channels to
    /// tell.
    ///
    /// ```
    /// use hive_monitor::alert::{AlertManager, Rule};
    ///
    /// let builder = AlertManager::builder().rule(Rule::config_rejected().notify(["slack"]));
    /// ```
    pub fn config_rejected() -> Rule {
        Rule::new(CONFIG_REJECTED, Condition::ConfigRejected).severity(Severity::Warning)
    }

    /// [`CLUSTER_LINK_DOWN`]: this replica's link to its cluster is down
    /// ([`Condition::ClusterLinkDown`]), at warning (requests are still served). Fires only
    /// in cluster mode.
    pub fn cluster_link_down() -> Rule {
        Rule::new(CLUSTER_LINK_DOWN, Condition::ClusterLinkDown).severity(Severity::Warning)
    }

    /// Every channel it may notify: its own, then its escalation's.
    pub(crate) fn all_channels(&self) -> impl Iterator<Item = &String> {
        self.channels.iter().chain(
            self.escalation
                .iter()
                .flat_map(|escalation| escalation.channels.iter()),
        )
    }

    /// Checks the thresholds and durations (channels are checked by the builder).
    pub(crate) fn validate(&self) -> Result<(), AlertError> {
        let bad = |problem: &str| Err(AlertError::rule(&self.name, problem));
        if self.name.trim().is_empty() {
            return Err(AlertError::invalid("rule", "a rule needs a name"));
        }
        if self.channels.is_empty() {
            return bad("notifies no channel");
        }
        match &self.condition {
            Condition::ConsecutiveFailures { at_least: 0 } => {
                return bad("at_least must be 1 or more");
            }
            Condition::FailureRate {
                above, min_calls, ..
            } => {
                if !(0.0..1.0).contains(above) {
                    return bad("the failure rate must be at least 0 and below 1");
                }
                if *min_calls == 0 {
                    return bad("min_calls must be 1 or more");
                }
            }
            Condition::BreakerStuckOpen { longer_than } if longer_than.is_zero() => {
                return bad("longer_than must be above zero");
            }
            Condition::CredentialsRejected { quiet_for } if quiet_for.is_zero() => {
                return bad("quiet_for must be above zero");
            }
            Condition::Latency {
                above, min_calls, ..
            } => {
                if above.is_zero() {
                    return bad("the latency bound must be above zero");
                }
                if *min_calls == 0 {
                    return bad("min_calls must be 1 or more");
                }
            }
            Condition::Availability {
                below,
                min_requests,
                ..
            } => {
                if !(*below > 0.0 && *below <= 1.0) {
                    return bad("the availability target must be above 0 and at most 1");
                }
                if *min_requests == 0 {
                    return bad("min_requests must be 1 or more");
                }
            }
            _ => {}
        }
        if let Some(escalation) = &self.escalation
            && escalation.after.is_zero()
        {
            return bad("escalation after must be above zero");
        }
        Ok(())
    }

    /// Whether this rule's alerts silence the per-model alerts of a route.
    pub(crate) fn inhibits(&self) -> bool {
        self.condition == Condition::RouteDown
    }

    /// What holds now: one finding per model or route for which the condition holds.
    pub(crate) fn evaluate(&self, facts: &Facts<'_>) -> Vec<Finding> {
        let models = facts.snapshot.models.iter();
        match &self.condition {
            Condition::ConsecutiveFailures { at_least } => models
                .filter(|m| m.consecutive_failures >= *at_least)
                .map(|m| {
                    let mut summary = format!(
                        "{} failed {} times in a row",
                        m.model, m.consecutive_failures
                    );
                    if is_down(m) {
                        summary.push_str(&format!(" ({})", why_down(m)));
                    }
                    Finding::model(m.model, summary)
                        .figure("consecutive_failures", m.consecutive_failures as f64)
                })
                .collect(),
            Condition::FailureRate {
                above,
                window,
                min_calls,
            } => models
                .filter_map(|m| {
                    let counts = &window.of(&m.windows).counts;
                    let rate = counts.failure_rate()?;
                    (counts.calls() >= *min_calls && rate > *above).then(|| {
                        Finding::model(
                            m.model,
                            format!(
                                "{} failed {} of {} calls over {window} ({}, threshold {})",
                                m.model,
                                counts.failed(),
                                counts.calls(),
                                percent(rate),
                                percent(*above)
                            ),
                        )
                        .figure("failure_ratio", rate)
                        .figure("calls", counts.calls() as f64)
                        .figure("failures", counts.failed() as f64)
                    })
                })
                .collect(),
            Condition::BreakerOpen => models
                .filter(|m| {
                    matches!(
                        m.breaker,
                        CircuitState::Open | CircuitState::ForcedOpen | CircuitState::HalfOpen
                    )
                })
                .map(|m| {
                    let open_for = m.open_incident_for.unwrap_or(m.breaker_for);
                    Finding::model(
                        m.model,
                        format!(
                            "{}'s circuit breaker is {} (out for {})",
                            m.model,
                            match m.breaker {
                                CircuitState::ForcedOpen => "forced open by an operator",
                                CircuitState::HalfOpen => "half-open, probing",
                                _ => "open",
                            },
                            human(open_for)
                        ),
                    )
                    .figure("open_seconds", open_for.as_secs_f64())
                    .figure("consecutive_failures", m.consecutive_failures as f64)
                })
                .collect(),
            Condition::BreakerStuckOpen { longer_than } => models
                .filter_map(|m| {
                    let open_for = m.open_incident_for?;
                    (open_for >= *longer_than).then(|| {
                        Finding::model(
                            m.model,
                            format!(
                                "{}'s circuit breaker has been open for {} (limit {})",
                                m.model,
                                human(open_for),
                                human(*longer_than)
                            ),
                        )
                        .figure("open_seconds", open_for.as_secs_f64())
                    })
                })
                .collect(),
            Condition::RouteDown => facts
                .routes
                .iter()
                .filter_map(|(route, members)| {
                    let down: Vec<&ModelMetrics> = members
                        .iter()
                        .filter_map(|model| facts.snapshot.model(model.as_str()))
                        .filter(|m| is_down(m))
                        .collect();
                    (!members.is_empty() && down.len() == members.len()).then(|| {
                        let list: Vec<String> = down
                            .iter()
                            .map(|m| format!("{} ({})", m.model, why_down(m)))
                            .collect();
                        Finding {
                            subject: Subject::Route(route.clone()),
                            summary: format!(
                                "every model of route {route} is down: {}",
                                list.join(", ")
                            ),
                            figures: Figures::from([("models_down", down.len() as f64)]),
                        }
                    })
                })
                .collect(),
            Condition::IdentityMismatch { window } => models
                .filter_map(|m| {
                    let n = window
                        .of(&m.windows)
                        .counts
                        .failures
                        .get(&FailureClass::IdentityMismatch)
                        .copied()
                        .unwrap_or(0);
                    (n > 0).then(|| {
                        Finding::model(
                            m.model,
                            format!(
                                "{} answered as another model {n} time{} over {window}",
                                m.model,
                                if n == 1 { "" } else { "s" }
                            ),
                        )
                        .figure("identity_mismatches", n as f64)
                    })
                })
                .collect(),
            Condition::CredentialsRejected { quiet_for } => facts
                .credentials
                .iter()
                .filter(|(_, seen)| facts.now.saturating_duration_since(seen.last) < *quiet_for)
                .map(|(model, seen)| {
                    Finding::model(
                        *model,
                        format!(
                            "{model}'s provider rejected the credentials (HTTP 401/403) {} time{}: an operator must act",
                            seen.count,
                            if seen.count == 1 { "" } else { "s" }
                        ),
                    )
                    .figure("credentials_rejected", seen.count as f64)
                })
                .collect(),
            Condition::Latency {
                percentile,
                above,
                window,
                min_calls,
            } => models
                .filter_map(|m| {
                    let stats = window.of(&m.windows);
                    let latency = stats.latency?;
                    let value = match percentile {
                        Percentile::P50 => latency.p50,
                        Percentile::P95 => latency.p95,
                        Percentile::P99 => latency.p99,
                    };
                    (stats.counts.calls() >= *min_calls && value > *above).then(|| {
                        Finding::model(
                            m.model,
                            format!(
                                "{}'s {} latency is {} over {window} (bound {})",
                                m.model,
                                percentile.name(),
                                human(value),
                                human(*above)
                            ),
                        )
                        .figure(
                            match percentile {
                                Percentile::P50 => "latency_p50_seconds",
                                Percentile::P95 => "latency_p95_seconds",
                                Percentile::P99 => "latency_p99_seconds",
                            },
                            value.as_secs_f64(),
                        )
                        .figure("calls", stats.counts.calls() as f64)
                    })
                })
                .collect(),
            Condition::Availability {
                below,
                window,
                min_requests,
            } => facts
                .snapshot
                .routes
                .iter()
                .filter_map(|(route, windows)| {
                    let counts = window.requests(windows);
                    let share = counts.availability()?;
                    (counts.total() >= *min_requests && share < *below).then(|| Finding {
                        subject: Subject::Route(route.clone()),
                        summary: format!(
                            "route {route} answered {} of {} requests over {window} (target {})",
                            percent(share),
                            counts.total(),
                            percent(*below)
                        ),
                        figures: Figures::from([
                            ("availability_ratio", share),
                            ("requests", counts.total() as f64),
                            ("degraded", counts.degraded as f64),
                            ("failed", counts.failed as f64),
                        ]),
                    })
                })
                .collect(),
            Condition::ClusterLinkDown => facts
                .snapshot
                .cluster
                .iter()
                .filter(|link| !link.up)
                .map(|link| Finding {
                    subject: Subject::Cluster,
                    summary: "this replica's link to its cluster (Redis) is down: it serves on \
                              its own state and shares nothing until the link is back"
                        .to_owned(),
                    figures: Figures::from([(
                        "down_since_unix_ms",
                        link.since_unix_ms as f64,
                    )]),
                })
                .collect(),
            Condition::ConfigRejected => facts
                .snapshot
                .config
                .iter()
                .filter(|config| !config.accepted)
                .map(|config| Finding {
                    subject: Subject::Config,
                    summary: config_refused(config),
                    figures: Figures::from([
                        ("problems", f64::from(config.problems)),
                        ("refused_in_a_row", f64::from(config.refused_in_a_row)),
                    ]),
                })
                .collect(),
        }
    }
}

/// The summary of a refused reload: `a config reload was refused (3 problems): the old
/// config 0123456789ab keeps serving`.
fn config_refused(config: &ConfigStatus) -> String {
    let count = |n: u32, what: &str| format!("{n} {what}{}", if n == 1 { "" } else { "s" });
    let mut why = count(config.problems, "problem");
    if config.refused_in_a_row > 1 {
        why.push_str(&format!(
            "; {} in a row",
            count(config.refused_in_a_row, "refusal")
        ));
    }
    let serving = match config.short_hash() {
        "" => String::new(),
        hash => format!(" {hash}"),
    };
    format!("a config reload was refused ({why}): the old config{serving} keeps serving")
}

/// Credentials refusals the manager saw for one model.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Refusals {
    /// When the last one came.
    pub(crate) last: Instant,
    /// How many came since the manager started.
    pub(crate) count: u64,
}

/// What rules read at one evaluation.
#[derive(Debug)]
pub(crate) struct Facts<'a> {
    pub(crate) snapshot: &'a ResilienceMetrics,
    pub(crate) routes: &'a BTreeMap<String, Vec<ModelId>>,
    pub(crate) credentials: &'a BTreeMap<ModelId, Refusals>,
    pub(crate) now: Instant,
}

/// A condition that holds for one subject, with what it read.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Finding {
    pub(crate) subject: Subject,
    pub(crate) summary: String,
    pub(crate) figures: Figures,
}

impl Finding {
    fn model(model: ModelId, summary: String) -> Self {
        Self {
            subject: Subject::Model(model),
            summary,
            figures: Figures::new(),
        }
    }

    fn figure(mut self, name: &'static str, value: f64) -> Self {
        self.figures.insert(name, value);
        self
    }
}
