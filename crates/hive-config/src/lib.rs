//! The YAML configuration of the hive gateway: two files, a strict schema, every problem at
//! once with its file, line, column and key path, secrets from the environment or files,
//! a stable hash, diffs for hot reload and an audit log.
//!
//! ```no_run
//! let config = match hive_config::load("config") {
//!     Ok(config) => config,
//!     Err(problems) => {
//!         eprint!("{problems}"); // each with its line, a caret under the spot, and help
//!         std::process::exit(1);
//!     }
//! };
//! println!("{} models, config {}", config.models.len(), config.hash());
//! ```
//!
//! # The files
//!
//! A config directory holds two files, both optional: a missing file (or an empty one)
//! means the defaults of everything it would hold. A file named `.yaml` instead of `.yml`
//! is an error rather than silently ignored.
//!
//! * `resilience.yml`: `server`, `admin`, `metrics`, `defaults` (the `retry`, `breaker`,
//!   `health`, `timeouts` and `slow_start` of every model), `fallback`, `alerts`, `audit`.
//! * `models-resilience.yml`: `models` (each an `id`, or a `pattern` such as `openai/*`
//!   whose every matching name gets a stack of its own) and `routes`.
//!
//! `config/` at the root of the repository documents every key with a comment; the field
//! docs of [`Config`] and of the types it holds give each key's default and range. A key
//! with nothing after it (its lines commented out) is an empty section or list. The defaults are the
//! libraries' (their builders' docs argue them), except health checks every 30 s instead
//! of 10 s, as the governance system runs them; retries are 3 attempts in all (the first
//! call included), and alerts escalate after 5 minutes.
//!
//! # Values
//!
//! * **Durations**: a number and a unit, `250ms`, `30s`, `5m`, `1h`, `1d`, combined as
//!   `1h30m`, decimals allowed (`1.5s`); `0` alone is zero. A plain number such as `30`
//!   is refused: it could mean seconds or milliseconds, and a wrong guess is a timeout a
//!   thousand times off. At most a year ([`hive_core::MAX_DURATION`]). Settings that can
//!   be turned off take `off`.
//! * **Rates**: `20%` or `0.2`.
//! * **Sizes**: `512B`, `64KiB`, `1MiB`, `1GiB` (powers of 1024), `1MB` (powers of 1000),
//!   or a plain number of bytes (a byte count has one meaning).
//! * **Secrets**: `{ env: OPENAI_API_KEY }` or `{ file: secrets/openai.key }` (relative to
//!   the config directory; trailing line breaks dropped), read when the config is loaded:
//!   a variable that is not set or a file that does not exist is an error. A secret written
//!   in the file itself is refused, and never shown, not even in the error's source line.
//!   [`Secret`] shows its source in `Debug`, `Display`, the canonical JSON and the hash,
//!   never its value.
//!
//! # Strictness
//!
//! The files are walked by hand, not deserialised, so that one pass reports every problem:
//! unknown keys (with the closest valid key), wrong types, values out of the range the
//! library would refuse (the same bounds, [`hive_core::check_duration`] for durations),
//! settings that contradict each other, and references across the files: a route naming a
//! model no id or pattern covers, a rule notifying a channel that does not exist, a secret
//! whose variable is not set or whose file is missing, two models or routes of one name, a
//! pattern that an earlier pattern leaves nothing to. [`Diagnostics::render`] shows them the
//! way a compiler does (with annotate-snippets):
//!
//! ```text
//! error: unknown key `failure_rat`
//!  --> config/resilience.yml:4:5
//!   |
//! 4 |     failure_rat: 50%
//!   |     ^^^^^^^^^^^ defaults.breaker.failure_rat
//!   |
//!   = help: did you mean `failure_rate`?
//! ```
//!
//! # Why saphyr
//!
//! `serde_yaml` is archived (its last release is marked deprecated) and `yaml-rust` is
//! unmaintained. saphyr is their maintained successor (a fork of `yaml-rust`; its 0.3
//! releases keep fixing parser conformance and guard alias expansion against "billion
//! laughs"), is YAML 1.2 compliant and tested against the YAML test suite, and its
//! `MarkedYaml` tree gives every node, keys included, a span of markers (line, column,
//! character index): what an error needs to point at a line with a caret. Being YAML 1.2,
//! `on`, `yes` and `no` are text, not booleans (no "Norway problem"); its loader refuses a
//! key given twice in a mapping. Serde layers over it exist, but deserialising stops at
//! the first error, and this crate wants all of them: it walks the marked tree by hand.
//!
//! # For the gateway
//!
//! * [`load`] / [`Loader`]: the [`Config`], or [`Diagnostics`].
//! * [`Config::hash`]: a [`ConfigHash`] of the canonical form, stable across comments, key
//!   order and spelling; secrets count by source.
//! * [`diff`]: a [`ConfigDiff`] saying which models were added, removed or changed (and
//!   whether a change [keeps the model's state](ConfigDiff::keeps_stack)), which routes
//!   changed, and which global settings changed. Reloading is the gateway's: watch
//!   [`Config::watched_paths`] and SIGHUP, load, refuse an invalid config (keep the old
//!   one, record [`CONFIG_REJECTED`], raise an alert), else apply the diff and record it.
//! * [`AuditLog`]: appends [`AuditEntry`] JSON lines (`time`, `actor`, `action`,
//!   `changes`, `config_hash`).
//! * [`Config::resolve_model`] (an id first, then the first pattern that matches),
//!   [`ModelConfig::upstream_name`], [`Config::models_by_priority`], [`Config::route`].
//!
//! What the settings map onto, and where the libraries draw lines:
//!
//! * `retry` → `RetryConfigBuilder`; `breaker` → `CircuitBreakerConfigBuilder`;
//!   `timeouts.attempt` and `slow_start` → `ModelSpec`; `timeouts.first_token`, `idle`,
//!   `total`, `headers`, `secret_headers`, `aliases`, `api_key` → `OpenAiClientBuilder`;
//!   `timeouts.request` and a route's `timeout`, `strategy` → `RouteSpec`; `commit` →
//!   hive-openai's `Commit`; `alerts` → `AlertManagerBuilder` and its channels.
//! * `health.interval`, `fast_interval`, `timeout` and `jitter` may differ per model, but
//!   hive-health's `CheckerConfig` is one per checker: run one checker per distinct
//!   setting, all feeding the one registry. The thresholds are the registry's, so they are
//!   set in `defaults.health` only.
//! * `alerts.rules: []` means no rule, while hive-monitor's builder falls back to its own
//!   defaults when given none (which notify `slack` and `email`): with no rule, start no
//!   alert manager.
//! * `weight` is read and checked, but hive-fallback's weighted strategy scores models by
//!   live statistics only: it is for the gateway to use (or pass on) as a prior.
//! * [`check_config`]: the text and exit status of `hive check-config [DIR]`.
#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod audit;
mod check;
mod diag;
mod diff;
mod hash;
mod json;
mod loader;
mod pattern;
mod read;
mod schema;
mod secret;
mod value;
mod yaml;

pub use audit::{AuditEntry, AuditError, AuditLog, CONFIG_CHANGE, CONFIG_REJECTED};
pub use check::{CheckReport, check_config, check_config_with};
pub use diag::{Diagnostic, DiagnosticKind, Diagnostics};
pub use diff::{Change, ConfigDiff, ModelChange, ROUTING_ONLY, RouteChange, diff};
pub use hash::{ConfigHash, HashParseError};
pub use json::{YamlJson, notation};
pub use loader::{Loader, MODELS_FILE, RESILIENCE_FILE, load};
pub use schema::{
    AdminConfig, AlertWindow, AlertsConfig, AuditConfig, BackoffSettings, BreakerSettings,
    BudgetSettings, CLUSTER_LINK_DOWN_RULE, CONFIG_REJECTED_RULE, ChannelConfig, ClusterConfig,
    CommitPolicy, Condition, Config, DEFAULT_CLUSTER_PREFIX, DEFAULT_HISTORY_RETENTION, Defaults,
    EmailConfig, EscalationConfig, FallbackConfig, HIGH_FAILURE_RATE, HealthSettings, HedgeDelay,
    HistoryConfig, Jitter, LatencyPercentile, MODEL_UNAVAILABLE, ModelConfig, ModelName,
    ModelSettings, OpenDurationSettings, Probe, ProviderKind, RetryAfterSettings, RetrySettings,
    RouteConfig, RuleConfig, ServerConfig, Severity, SmtpSecurity, Strategy, Timeouts,
    WindowSettings,
};
pub use secret::{Environment, Secret, SecretSource};
pub use value::{ByteSize, Rate, ValueError, format_duration, parse_duration};
