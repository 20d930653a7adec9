//! The typed config: what `resilience.yml` and `models-resilience.yml` say, every default
//! filled in, every model's settings merged over the defaults.
//!
//! Each struct's `Default` is the value of its section when the files leave it out; the
//! defaults follow the libraries' builders (see each field) except where the governance
//! system says otherwise (health checks every 30 s).

use std::{
    collections::BTreeMap,
    net::{Ipv4Addr, SocketAddr},
    path::PathBuf,
    time::Duration,
};

use hive_core::{FailureClass, FailureClassSet};
use serde::{Serialize, Serializer};

use crate::{Secret, pattern, value::format_duration};

/// Serialisers for the canonical JSON form: durations as `"30s"`, optional durations as
/// `"off"`, failure classes by name.
mod ser {
    use super::*;

    pub(super) fn duration<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format_duration(*d))
    }

    pub(super) fn duration_or_off<S: Serializer>(
        d: &Option<Duration>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_str(&format_duration(*d)),
            None => s.serialize_str("off"),
        }
    }

    pub(super) fn classes<S: Serializer>(set: &FailureClassSet, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(set.iter().map(FailureClass::as_str))
    }
}

/// The whole config of a gateway: both files, defaults filled in.
///
/// `Debug` and the serialised form show secrets by their source only. Serialised (see
/// [`Config::to_json`]) it is the canonical form that [`Config::hash`] digests.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Config {
    /// `server`: the gateway's HTTP listener.
    pub server: ServerConfig,
    /// `admin`: the dashboard and admin API.
    pub admin: AdminConfig,
    /// `metrics`: whether every layer records metrics and `/metrics` serves them.
    pub metrics: bool,
    /// `defaults`: the settings of every model that does not override them.
    pub defaults: Defaults,
    /// `fallback`: how routes spread requests unless they say otherwise.
    pub fallback: FallbackConfig,
    /// `alerts`: channels and rules.
    pub alerts: AlertsConfig,
    /// `audit`: where config changes and recovery actions are recorded.
    pub audit: AuditConfig,
    /// `history`: the per-minute history the dashboard and reports read.
    pub history: HistoryConfig,
    /// `cluster`: share breakers and cooldowns with the other replicas over Redis; `None`
    /// (the default) for a gateway alone.
    pub cluster: Option<ClusterConfig>,
    /// `models`: every model (or pattern of models), in file order.
    pub models: Vec<ModelConfig>,
    /// `routes`: the names clients ask for, in file order.
    pub routes: Vec<RouteConfig>,
    /// Where it was loaded from (not part of the hash).
    #[serde(skip)]
    pub(crate) origin: Origin,
}

/// Where a config was loaded from: what a reloader watches.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Origin {
    pub(crate) dir: PathBuf,
    pub(crate) files: Vec<PathBuf>,
    pub(crate) present: Vec<bool>,
    pub(crate) secret_files: Vec<PathBuf>,
}

/// `server`: the gateway's OpenAI-compatible HTTP listener.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ServerConfig {
    /// `listen`: the address and port. Default `127.0.0.1:8080` (loopback: expose it on
    /// purpose, with `0.0.0.0:8080`).
    pub listen: SocketAddr,
    /// `body_limit`: the largest request body, in bytes (413 above it). Default `4MiB`: a
    /// long prompt near a 200 000-token context fits.
    pub body_limit: u64,
    /// `shutdown_grace`: how long in-flight requests may finish after a shutdown signal.
    /// Default `30s`.
    #[serde(serialize_with = "ser::duration")]
    pub shutdown_grace: Duration,
    /// `api_keys`: keys the gateway's own clients must send as `Authorization: Bearer …`.
    /// Empty (the default): no key needed.
    pub api_keys: Vec<Secret>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 8080)),
            body_limit: 4 << 20,
            shutdown_grace: Duration::from_secs(30),
            api_keys: Vec::new(),
        }
    }
}

/// `admin`: the dashboard and the admin API.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct AdminConfig {
    /// `token`: the bearer token of admin actions (force a breaker open, reset it, silence
    /// an alert). Without one (the default) every admin action is refused.
    pub token: Option<Secret>,
    /// `read_token`: a bearer token that opens the read-only views (dashboard, status,
    /// audit) but acts on nothing. The admin token opens them too.
    pub read_token: Option<Secret>,
    /// `public_read`: whether the read-only views (dashboard, status, history) need no
    /// token. Default `false`.
    pub public_read: bool,
}

/// `defaults`: the per-model settings every model starts from, and the request deadline.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Defaults {
    /// `retry`, `breaker`, `health`, `timeouts` (but `request`), `slow_start`.
    #[serde(flatten)]
    pub settings: ModelSettings,
    /// `timeouts.request`: the deadline of a whole request, every attempt and fallback
    /// included, for routes that do not set their own; `off` for none. Default `2m`
    /// (`hive_resilience::DEFAULT_REQUEST_TIMEOUT`).
    #[serde(serialize_with = "ser::duration_or_off")]
    pub request_timeout: Option<Duration>,
}

/// The settings of one model's stack: `defaults` merged with the model's overrides.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ModelSettings {
    /// `retry`.
    pub retry: RetrySettings,
    /// `breaker`.
    pub breaker: BreakerSettings,
    /// `health`.
    pub health: HealthSettings,
    /// `timeouts`.
    pub timeouts: Timeouts,
    /// `slow_start`: how long traffic takes to ramp back after a recovery (`0s` or `off`:
    /// at once). Default `10s` (`ModelSpec::slow_start`).
    #[serde(serialize_with = "ser::duration")]
    pub slow_start: Duration,
}

/// `retry`: hive-retry's `RetryConfigBuilder`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RetrySettings {
    /// `max_attempts`: attempts in all, **the first call included** (1 never retries), in
    /// 1..=100. Default 3.
    pub max_attempts: u32,
    /// `backoff`.
    pub backoff: BackoffSettings,
    /// `retry_after`.
    pub retry_after: RetryAfterSettings,
    /// `retry_on`: the failure classes retried on the same model. Default every class but
    /// `timeout` and `identity_mismatch` (`hive_retry::DEFAULT_RETRYABLE`).
    #[serde(serialize_with = "ser::classes")]
    pub retry_on: FailureClassSet,
    /// `min_attempt_time`: no attempt starts with less than this left of the request's
    /// deadline. Default `0s`.
    #[serde(serialize_with = "ser::duration")]
    pub min_attempt_time: Duration,
    /// `budget`: caps retries to a share of requests; `off` (the default) for no cap.
    pub budget: Option<BudgetSettings>,
}

impl Default for RetrySettings {
    fn default() -> Self {
        Self {
            max_attempts: 3,
            backoff: BackoffSettings::default(),
            retry_after: RetryAfterSettings::default(),
            retry_on: FailureClassSet::ALL
                .without(FailureClass::IdentityMismatch)
                .without(FailureClass::Timeout),
            min_attempt_time: Duration::ZERO,
            budget: None,
        }
    }
}

/// `retry.backoff`: exponential backoff, `base · multiplier^(n−1)` before retry `n`, at most
/// `max`, randomised by `jitter`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct BackoffSettings {
    /// `base`: the first delay. Default `200ms`.
    #[serde(serialize_with = "ser::duration")]
    pub base: Duration,
    /// `max`: the longest delay (at least `base`). Default `10s`.
    #[serde(serialize_with = "ser::duration")]
    pub max: Duration,
    /// `multiplier`: growth per retry, at least 1. Default 2.
    pub multiplier: f64,
    /// `jitter`. Default `full`.
    pub jitter: Jitter,
}

impl Default for BackoffSettings {
    fn default() -> Self {
        Self {
            base: Duration::from_millis(200),
            max: Duration::from_secs(10),
            multiplier: 2.0,
            jitter: Jitter::Full,
        }
    }
}

/// `retry.backoff.jitter`: `none`, `full`, `decorrelated` or `{ proportional: 10% }`
/// (hive-retry's `Jitter`).
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Jitter {
    /// The exact delay.
    None,
    /// Uniform in `[0, delay]`.
    Full,
    /// Uniform in `[delay·(1−f), delay·(1+f)]`, `f` in `[0, 1]`.
    Proportional(f64),
    /// Uniform in `[base, 3·previous]`.
    Decorrelated,
}

/// `retry.retry_after`: whether a provider's `Retry-After` replaces the backoff.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct RetryAfterSettings {
    /// `honour`: wait what the provider asks. Default `true`.
    pub honour: bool,
    /// `max`: a longer hint stops retrying at once (the router falls back). Default `30s`.
    #[serde(serialize_with = "ser::duration")]
    pub max: Duration,
}

impl Default for RetryAfterSettings {
    fn default() -> Self {
        Self {
            honour: true,
            max: Duration::from_secs(30),
        }
    }
}

/// A token bucket over extra calls (hive-core's `Budget`): retries (or hedges) are capped at
/// `ratio` of the requests of the last `ttl`, plus `min_per_second`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct BudgetSettings {
    /// `ratio`: extra calls per request, 0 to 1000 (`20%` = one retry per five requests).
    pub ratio: f64,
    /// `min_per_second`: extra calls always allowed per second. Default 10.
    pub min_per_second: u32,
    /// `ttl`: how long a request counts, 1 s to 60 s. Default `10s`.
    #[serde(serialize_with = "ser::duration")]
    pub ttl: Duration,
}

/// `breaker`: hive-breaker's `CircuitBreakerConfigBuilder`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct BreakerSettings {
    /// `window`. Default `{ count: 20 }`.
    pub window: WindowSettings,
    /// `minimum_calls`: calls the window must hold before a rate counts (at least 1, at
    /// most a count window's size). Default 10.
    pub minimum_calls: u32,
    /// `failure_rate`: the failure rate, in (0, 1], at which the breaker opens. Default 50%.
    pub failure_rate: f64,
    /// `slow_call_duration`: a call longer than this is slow; `off` (the default) turns
    /// slow-call detection off.
    #[serde(serialize_with = "ser::duration_or_off")]
    pub slow_call_duration: Option<Duration>,
    /// `slow_call_rate`: the slow-call rate, in (0, 1], at which the breaker opens.
    /// Default 100%.
    pub slow_call_rate: f64,
    /// `consecutive_failures`: opens after this many failures in a row whatever the window
    /// says; `off` for rates only. Default 5.
    pub consecutive_failures: Option<u32>,
    /// `open_duration`. Default growing from `5s`, doubling, at most `30s`.
    pub open_duration: OpenDurationSettings,
    /// `half_open_permits`: probe calls let through while half-open, 1..=1000. Default 1.
    pub half_open_permits: u32,
    /// `max_wait_in_half_open`: unanswered probes count as failed after this. Default
    /// `60s`.
    #[serde(serialize_with = "ser::duration")]
    pub max_wait_in_half_open: Duration,
    /// `max_retry_after_open`: the longest a provider's `Retry-After` keeps the breaker
    /// open. Default `5m`.
    #[serde(serialize_with = "ser::duration")]
    pub max_retry_after_open: Duration,
}

impl Default for BreakerSettings {
    fn default() -> Self {
        Self {
            window: WindowSettings::Count { size: 20 },
            minimum_calls: 10,
            failure_rate: 0.5,
            slow_call_duration: None,
            slow_call_rate: 1.0,
            consecutive_failures: Some(5),
            open_duration: OpenDurationSettings::Growing {
                base: Duration::from_secs(5),
                multiplier: 2.0,
                max: Duration::from_secs(30),
            },
            half_open_permits: 1,
            max_wait_in_half_open: Duration::from_secs(60),
            max_retry_after_open: Duration::from_secs(5 * 60),
        }
    }
}

/// `breaker.window`: `{ count: 20 }` (the last 20 calls) or `{ time: 60s, buckets: 10 }`
/// (the calls of the last minute, in 10 slices).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WindowSettings {
    /// The last `size` calls, 1..=1 000 000.
    Count {
        /// Calls remembered.
        size: u32,
    },
    /// The calls of the last `duration`, in `buckets` slices (1..=10 000; the duration
    /// must split into whole microseconds). `buckets` defaults to 10.
    Time {
        /// Length of the window.
        #[serde(serialize_with = "ser::duration")]
        duration: Duration,
        /// Number of slices.
        buckets: u32,
    },
}

/// `breaker.open_duration`: `30s` (fixed) or `{ base: 5s, multiplier: 2, max: 30s }`
/// (growing on each reopening, back to `base` once closed).
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OpenDurationSettings {
    /// Always the same.
    Fixed(#[serde(serialize_with = "ser::duration")] Duration),
    /// Growing.
    Growing {
        /// First open duration.
        #[serde(serialize_with = "ser::duration")]
        base: Duration,
        /// Growth per reopening, at least 1.
        multiplier: f64,
        /// Upper bound, at least `base`.
        #[serde(serialize_with = "ser::duration")]
        max: Duration,
    },
}

/// `health`: hive-health's `CheckerConfig` and `RegistryConfig`, and the probe.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct HealthSettings {
    /// `probe`. Default `models`.
    pub probe: Probe,
    /// `interval`: time from the end of a check to the next. Default `30s` (the governance
    /// system's; the library's is 10 s).
    #[serde(serialize_with = "ser::duration")]
    pub interval: Duration,
    /// `fast_interval`: the wait after a status change, at most `interval`. Default `1s`.
    #[serde(serialize_with = "ser::duration")]
    pub fast_interval: Duration,
    /// `timeout`: a check not answered by then failed. Default `5s`.
    #[serde(serialize_with = "ser::duration")]
    pub timeout: Duration,
    /// `jitter`: each wait spread by ±this share, in [0, 1]. Default 10%.
    pub jitter: f64,
    /// `healthy_threshold`: good checks in a row that make a model healthy again. Only in
    /// `defaults.health`: the health registry's thresholds are shared by every model.
    /// Default 2.
    pub healthy_threshold: u32,
    /// `unhealthy_threshold`: failed checks in a row that make a model unhealthy. Only in
    /// `defaults.health`. Default 3.
    pub unhealthy_threshold: u32,
}

impl Default for HealthSettings {
    fn default() -> Self {
        Self {
            probe: Probe::Models,
            interval: Duration::from_secs(30),
            fast_interval: Duration::from_secs(1),
            timeout: Duration::from_secs(5),
            jitter: 0.1,
            healthy_threshold: 2,
            unhealthy_threshold: 3,
        }
    }
}

/// `health.probe`: how a model is checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Probe {
    /// `models`: `GET /v1/models`, which costs no tokens.
    Models,
    /// `completion`: a chat completion with `max_tokens: 1`, which sees what callers see.
    Completion,
    /// `none`: no active check; live traffic and the breaker still feed its health.
    None,
}

/// `timeouts`: per attempt (hive-resilience's `ModelSpec::attempt_timeout`) and per stream
/// read (hive-openai's client builder).
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Timeouts {
    /// `attempt`: the longest one attempt may take until its answer (or the start of its
    /// stream). Default `60s`.
    #[serde(serialize_with = "ser::duration")]
    pub attempt: Duration,
    /// `first_token`: the longest wait for a stream's first token (or a whole answer's
    /// headers). Default `30s`.
    #[serde(serialize_with = "ser::duration")]
    pub first_token: Duration,
    /// `idle`: the longest wait between two chunks of a stream. Default `30s`.
    #[serde(serialize_with = "ser::duration")]
    pub idle: Duration,
    /// `total`: the longest a whole attempt may take, body included. Default `5m`.
    #[serde(serialize_with = "ser::duration")]
    pub total: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            attempt: Duration::from_secs(60),
            first_token: Duration::from_secs(30),
            idle: Duration::from_secs(30),
            total: Duration::from_secs(300),
        }
    }
}

impl Default for Defaults {
    fn default() -> Self {
        Self {
            settings: ModelSettings::default(),
            request_timeout: Some(Duration::from_secs(120)),
        }
    }
}

impl Default for ModelSettings {
    fn default() -> Self {
        Self {
            retry: RetrySettings::default(),
            breaker: BreakerSettings::default(),
            health: HealthSettings::default(),
            timeouts: Timeouts::default(),
            slow_start: Duration::from_secs(10),
        }
    }
}

/// `fallback`: how routes spread requests over their models unless they say otherwise.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FallbackConfig {
    /// `strategy`. Default `sequential`.
    pub strategy: Strategy,
    /// `last_resort`: when every model of a route is unavailable, one probe per this
    /// interval goes to the model whose break ends first; `off` fails such requests at
    /// once. Default `1s` (`hive_fallback::DEFAULT_LAST_RESORT_INTERVAL`).
    #[serde(serialize_with = "ser::duration_or_off")]
    pub last_resort: Option<Duration>,
}

impl Default for FallbackConfig {
    fn default() -> Self {
        Self {
            strategy: Strategy::Sequential,
            last_resort: Some(Duration::from_secs(1)),
        }
    }
}

/// A routing strategy (hive-fallback's `Strategy`): `sequential`, `parallel` (or
/// `{ parallel: { first: 2 } }`), `{ hedged: { delay: 2s, max_hedges: 1 } }`, `weighted`.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// One model at a time in priority order.
    Sequential,
    /// Race the first `first` available models (all when `None`).
    Parallel {
        /// How many models to start at once (at least 1).
        first: Option<u32>,
    },
    /// Start the next model when the first has not answered after `delay`.
    Hedged {
        /// When to start another model.
        delay: HedgeDelay,
        /// Most extra models per request (at least 1). Default 1.
        max_hedges: u32,
        /// Caps hedges to a share of requests; none by default.
        budget: Option<BudgetSettings>,
    },
    /// Start with a model drawn by its live score, then fall back in priority order.
    Weighted,
}

impl Strategy {
    /// Its name in the config: `sequential`, `parallel`, `hedged`, `weighted`.
    pub const fn name(&self) -> &'static str {
        match self {
            Self::Sequential => "sequential",
            Self::Parallel { .. } => "parallel",
            Self::Hedged { .. } => "hedged",
            Self::Weighted => "weighted",
        }
    }
}

/// `hedged.delay`: `2s`, or `{ percentile: 95%, min_samples: 20, otherwise: 2s }`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HedgeDelay {
    /// After a fixed time.
    Fixed(#[serde(serialize_with = "ser::duration")] Duration),
    /// After the first model's latency percentile, once known.
    Percentile {
        /// The percentile, in (0, 1).
        percentile: f64,
        /// Answers needed before it is trusted. Default 20.
        min_samples: u64,
        /// The delay until then.
        #[serde(serialize_with = "ser::duration")]
        otherwise: Duration,
    },
}

/// `alerts`: hive-monitor's `AlertManagerBuilder`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AlertsConfig {
    /// `channels`, by name. Default one channel, `log`, of kind `log`.
    pub channels: BTreeMap<String, ChannelConfig>,
    /// `rules`, in file order. Default the governance system's rules (hive-monitor's
    /// `Rule::defaults`), notifying every channel: `model_unavailable` (3 failures in a
    /// row, warning, escalated to critical after 5 minutes) and `high_failure_rate` (more
    /// than 20% of at least 10 calls over 5 minutes, warning); and `config_rejected`
    /// (a reload refused, warning).
    pub rules: Vec<RuleConfig>,
    /// `group_wait`. Default `30s`.
    #[serde(serialize_with = "ser::duration")]
    pub group_wait: Duration,
    /// `group_interval`. Default `5m`.
    #[serde(serialize_with = "ser::duration")]
    pub group_interval: Duration,
    /// `repeat_interval`. Default `4h`.
    #[serde(serialize_with = "ser::duration")]
    pub repeat_interval: Duration,
    /// `evaluation_interval`: how often the rules read a snapshot. Default `5s`.
    #[serde(serialize_with = "ser::duration")]
    pub evaluation_interval: Duration,
    /// `dashboard_url`: linked from every notification. None by default.
    pub dashboard_url: Option<String>,
}

/// The rule name of the governance system's "model unavailable" rule.
pub const MODEL_UNAVAILABLE: &str = "model_unavailable";
/// The rule name of the governance system's "high failure rate" rule.
pub const HIGH_FAILURE_RATE: &str = "high_failure_rate";
/// The rule name of the default "config rejected" rule.
pub const CONFIG_REJECTED_RULE: &str = "config_rejected";
/// The rule name of the default "cluster link down" rule.
pub const CLUSTER_LINK_DOWN_RULE: &str = "cluster_link_down";

impl AlertsConfig {
    /// The default rules, notifying `channels`: the governance system's (hive-monitor's
    /// `Rule::defaults`), `config_rejected` (hive-monitor's `Rule::config_rejected`) and
    /// `cluster_link_down` (`Rule::cluster_link_down`, which fires only in cluster mode).
    pub fn default_rules(channels: &[String]) -> Vec<RuleConfig> {
        vec![
            RuleConfig {
                name: MODEL_UNAVAILABLE.to_owned(),
                condition: Condition::ConsecutiveFailures { at_least: 3 },
                severity: Severity::Warning,
                notify: channels.to_vec(),
                escalate: Some(EscalationConfig {
                    after: Duration::from_secs(5 * 60),
                    severity: Severity::Critical,
                    notify: Vec::new(),
                }),
            },
            RuleConfig {
                name: HIGH_FAILURE_RATE.to_owned(),
                condition: Condition::FailureRate {
                    above: 0.2,
                    window: AlertWindow::Last5Minutes,
                    min_calls: 10,
                },
                severity: Severity::Warning,
                notify: channels.to_vec(),
                escalate: None,
            },
            RuleConfig {
                name: CONFIG_REJECTED_RULE.to_owned(),
                condition: Condition::ConfigRejected,
                severity: Severity::Warning,
                notify: channels.to_vec(),
                escalate: None,
            },
            RuleConfig {
                name: CLUSTER_LINK_DOWN_RULE.to_owned(),
                condition: Condition::ClusterLinkDown,
                severity: Severity::Warning,
                notify: channels.to_vec(),
                escalate: None,
            },
        ]
    }
}

impl Default for AlertsConfig {
    fn default() -> Self {
        let channels = BTreeMap::from([("log".to_owned(), ChannelConfig::Log)]);
        Self {
            rules: Self::default_rules(&["log".to_owned()]),
            channels,
            group_wait: Duration::from_secs(30),
            group_interval: Duration::from_secs(5 * 60),
            repeat_interval: Duration::from_secs(4 * 3600),
            evaluation_interval: Duration::from_secs(5),
            dashboard_url: None,
        }
    }
}

/// One alert channel (`kind:` says which).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ChannelConfig {
    /// `kind: slack`: a Slack incoming webhook.
    Slack {
        /// `webhook`: the webhook URL (its path is the token).
        webhook: Secret,
    },
    /// `kind: email`: SMTP.
    Email(EmailConfig),
    /// `kind: webhook`: signed JSON to a URL.
    Webhook {
        /// `url`: where to post (a secret: URLs often carry tokens).
        url: Secret,
        /// `signing_key`: HMAC-SHA256 key, at least 16 bytes; unsigned without one.
        signing_key: Option<Secret>,
    },
    /// `kind: log`: a `tracing` event per alert.
    Log,
}

impl ChannelConfig {
    /// `slack`, `email`, `webhook` or `log`.
    pub const fn kind(&self) -> &'static str {
        match self {
            Self::Slack { .. } => "slack",
            Self::Email(_) => "email",
            Self::Webhook { .. } => "webhook",
            Self::Log => "log",
        }
    }
}

/// `kind: email`: hive-monitor's `EmailChannelBuilder`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct EmailConfig {
    /// `host`: the SMTP server. Required.
    pub host: String,
    /// `port`: default 465 for `implicit_tls`, 587 for `starttls`, 25 for `plain`.
    pub port: Option<u16>,
    /// `security`. Default `starttls`.
    pub security: SmtpSecurity,
    /// `username`: given with `password`, or neither.
    pub username: Option<String>,
    /// `password`.
    pub password: Option<Secret>,
    /// `from`: the sender (`Hive alerts <alerts@example.com>`). Required.
    pub from: String,
    /// `to`: recipients, at least one.
    pub to: Vec<String>,
    /// `timeout`: the longest wait for the connection; a whole delivery (every step of the
    /// dialogue) may take at most three times it. Default `10s`.
    #[serde(serialize_with = "ser::duration")]
    pub timeout: Duration,
}

/// `security` of an email channel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SmtpSecurity {
    /// `implicit_tls`: TLS from the first byte.
    ImplicitTls,
    /// `starttls`: upgraded before anything is sent; refused if the server cannot.
    #[serde(rename = "starttls")]
    StartTls,
    /// `plain`: no encryption, for a local relay only.
    Plain,
}

/// One alerting rule (hive-monitor's `Rule`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RuleConfig {
    /// `name`: unique.
    pub name: String,
    /// `condition`.
    pub condition: Condition,
    /// `severity`: `info`, `warning` or `critical`. Default `warning`.
    pub severity: Severity,
    /// `notify`: channel names, at least one.
    pub notify: Vec<String>,
    /// `escalate`: none by default.
    pub escalate: Option<EscalationConfig>,
}

/// `escalate`: sent again at `severity` to the rule's channels and `notify` when unresolved
/// after `after`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct EscalationConfig {
    /// `after`. Default `5m`.
    #[serde(serialize_with = "ser::duration")]
    pub after: Duration,
    /// `severity`. Default `critical`.
    pub severity: Severity,
    /// `notify`: channels told in addition. Default none.
    pub notify: Vec<String>,
}

/// How urgent an alert is (hive-monitor's `Severity`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// `info`.
    Info,
    /// `warning`.
    Warning,
    /// `critical`.
    Critical,
}

/// When a rule fires (hive-monitor's `Condition`), written `breaker_open` or
/// `{ failure_rate: { above: 20%, window: 5m, min_calls: 10 } }`.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Condition {
    /// `{ consecutive_failures: { at_least: 3 } }`.
    ConsecutiveFailures {
        /// At least 1.
        at_least: u64,
    },
    /// `{ failure_rate: { above, window, min_calls } }`: failures above a share of calls.
    FailureRate {
        /// In [0, 1).
        above: f64,
        /// Default `5m`.
        window: AlertWindow,
        /// At least 1; default 10.
        min_calls: u64,
    },
    /// `breaker_open`.
    BreakerOpen,
    /// `{ breaker_stuck_open: { longer_than: 10m } }`.
    BreakerStuckOpen {
        /// Above zero.
        #[serde(serialize_with = "ser::duration")]
        longer_than: Duration,
    },
    /// `route_down`: every model of a route is down.
    RouteDown,
    /// `config_rejected`: the last reload of the config was refused (the old config keeps
    /// serving); resolved by the next accepted one.
    ConfigRejected,
    /// `cluster_link_down`: this replica's link to its cluster (Redis) is down; resolved
    /// when it is back. Fires only in cluster mode.
    ClusterLinkDown,
    /// `identity_mismatch` or `{ identity_mismatch: { window: 1h } }`.
    IdentityMismatch {
        /// Default `5m`.
        window: AlertWindow,
    },
    /// `{ credentials_rejected: { quiet_for: 10m } }`.
    CredentialsRejected {
        /// Above zero.
        #[serde(serialize_with = "ser::duration")]
        quiet_for: Duration,
    },
    /// `{ latency: { percentile: p95, above: 20s, window: 5m, min_calls: 20 } }`.
    Latency {
        /// `p50`, `p95` or `p99`.
        percentile: LatencyPercentile,
        /// Above zero.
        #[serde(serialize_with = "ser::duration")]
        above: Duration,
        /// Default `5m`.
        window: AlertWindow,
        /// At least 1; default 10.
        min_calls: u64,
    },
    /// `{ availability: { below: 99%, window: 1h, min_requests: 100 } }`: a route answered
    /// below a share of its requests.
    Availability {
        /// In (0, 1].
        below: f64,
        /// Default `5m`.
        window: AlertWindow,
        /// At least 1; default 10.
        min_requests: u64,
    },
}

/// The monitor's windows: `1m`, `5m`, `1h`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum AlertWindow {
    /// `1m`.
    #[serde(rename = "1m")]
    LastMinute,
    /// `5m`.
    #[serde(rename = "5m")]
    Last5Minutes,
    /// `1h`.
    #[serde(rename = "1h")]
    LastHour,
}

/// `p50`, `p95`, `p99`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LatencyPercentile {
    /// The median.
    P50,
    /// The 95th percentile.
    P95,
    /// The 99th percentile.
    P99,
}

/// `audit`: the JSON-lines log of config changes and manual recovery actions.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AuditConfig {
    /// `path`, relative to the config directory, as written; `off` for no audit log.
    /// Default `audit.jsonl`.
    pub written: Option<String>,
    /// The path the log is written to (the config directory joined with `written`).
    #[serde(skip)]
    pub path: Option<PathBuf>,
}

/// `history`: the SQLite file of per-minute figures, incidents and audit actions that the
/// dashboard shows after a restart and `hive report` reads.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct HistoryConfig {
    /// `path`, relative to the config directory, as written; `off` for no history.
    /// Default `hive.db`.
    pub written: Option<String>,
    /// The file's path (the config directory joined with `written`).
    #[serde(skip)]
    pub path: Option<PathBuf>,
    /// `retention`: how long minutes, incidents and audit lines are kept. Default `30d`.
    #[serde(serialize_with = "ser::duration")]
    pub retention: Duration,
}

/// `cluster`: this gateway is one replica of several, which share breaker openings and
/// providers' `Retry-After` waits through Redis (never on a request's path).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ClusterConfig {
    /// `redis`: the Redis URL (`redis://[user:password@]host:port[/db]`, `rediss://` for
    /// TLS), from `{ env: NAME }` or `{ file: path }`: it may hold a password, so it is never
    /// written in the file, and never logged.
    pub redis: Secret,
    /// `prefix`: the start of every key and channel, one per deployment (`hive:prod`).
    /// Default `hive`.
    pub prefix: String,
    /// `replica`: this replica's name, unique in the cluster. Default: the host's name, the
    /// process id and a random part.
    pub replica: Option<String>,
    /// `tls_ca`: the CA certificates (PEM) a `rediss://` server's certificate must chain to,
    /// from `{ file: path }` (or `{ env: NAME }`); default the public web roots.
    pub tls_ca: Option<Secret>,
}

/// The default cluster key prefix.
pub const DEFAULT_CLUSTER_PREFIX: &str = "hive";

/// The default history retention: 30 days.
pub const DEFAULT_HISTORY_RETENTION: Duration = Duration::from_secs(30 * 86_400);

/// What a model entry names: one model, or every model whose name matches a pattern.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ModelName {
    /// `id: gpt-4o`: exactly this name.
    Id(String),
    /// `pattern: openai/*`: any name `*` (any run of characters) makes match. Each
    /// concrete name gets its own stack.
    Pattern(String),
}

impl ModelName {
    /// The id or the pattern, as written: the model's key in diffs and logs.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Id(name) | Self::Pattern(name) => name,
        }
    }

    /// Whether a request for `name` goes to this entry.
    pub fn matches(&self, name: &str) -> bool {
        match self {
            Self::Id(id) => id == name,
            Self::Pattern(pattern) => pattern::matches(pattern, name),
        }
    }
}

/// `provider`: how a model is called.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum ProviderKind {
    /// `openai-compatible`: `POST {base_url}/v1/chat/completions` (hive-openai's client).
    #[serde(rename = "openai-compatible")]
    OpenAiCompatible,
}

/// One entry of `models`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ModelConfig {
    /// `id` or `pattern`.
    pub name: ModelName,
    /// `provider`. Default `openai-compatible`.
    pub provider: ProviderKind,
    /// `strip_prefix`: removed from a name before it is sent to the provider
    /// (`openrouter/` makes `openrouter/meta-llama/llama-3.1-70b` asked for as
    /// `meta-llama/llama-3.1-70b`). The id or pattern starts with it. None by default.
    pub strip_prefix: Option<String>,
    /// `base_url`: `https://api.openai.com`, `http://127.0.0.1:8000` (`/v1/…` is appended).
    /// Required; no credentials in it.
    pub base_url: String,
    /// `api_key`: sent as `Authorization: Bearer …`. None for providers that need none.
    pub api_key: Option<Secret>,
    /// `priority`: lower is tried first; ties keep file order. Default 100.
    pub priority: u32,
    /// `weight`: the model's share relative to others, above zero. Default 1.
    pub weight: f64,
    /// `context_window`: in tokens, for context-length fallbacks. Unknown by default.
    pub context_window: Option<u64>,
    /// `accepts_prefill`: whether a cut stream may be continued on this model with the
    /// partial answer as an assistant prefill. Default `false`.
    pub accepts_prefill: bool,
    /// `aliases`: other names the provider may answer as (a dated version).
    pub aliases: Vec<String>,
    /// `headers`: sent with every request.
    pub headers: BTreeMap<String, String>,
    /// `secret_headers`: sent with every request, marked sensitive.
    pub secret_headers: BTreeMap<String, Secret>,
    /// `retry`, `breaker`, `health`, `timeouts`, `slow_start`: `defaults` with this model's
    /// overrides applied.
    #[serde(flatten)]
    pub settings: ModelSettings,
}

impl ModelConfig {
    /// The id or pattern: the model's key.
    pub fn key(&self) -> &str {
        self.name.as_str()
    }

    /// The name the provider is asked for when a request names `name` (one this entry
    /// matches): `name` without [`strip_prefix`](Self::strip_prefix).
    pub fn upstream_name<'n>(&self, name: &'n str) -> &'n str {
        self.strip_prefix
            .as_deref()
            .and_then(|prefix| name.strip_prefix(prefix))
            .unwrap_or(name)
    }
}

/// One entry of `routes`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RouteConfig {
    /// `name`: what clients ask for in `model`. A route wins over a model of the same name.
    pub name: String,
    /// `models`: model names (ids, or names a pattern matches), in order.
    pub models: Vec<String>,
    /// `strategy`. Default `fallback.strategy`.
    pub strategy: Strategy,
    /// `commit`. Default `first_chunk`.
    pub commit: CommitPolicy,
    /// `degraded`: the answer, marked degraded, when every model fails. None by default.
    pub degraded: Option<String>,
    /// `timeout`: the deadline of each request of the route; `off` for none. Default
    /// `defaults.timeouts.request`.
    #[serde(serialize_with = "ser::duration_or_off")]
    pub timeout: Option<Duration>,
}

/// `commit`: when a streamed answer is committed to the caller (hive-openai's `Commit`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CommitPolicy {
    /// `first_chunk`: after the first chunk; failing before it is free.
    FirstChunk,
    /// `pass_through`: at once.
    PassThrough,
    /// `buffered`: only whole answers reach the caller.
    Buffered,
}
