//! hive-resilience: keep software that calls AI models alive when those models fail.
//!
//! Add this crate alone: every layer, config, classifier and event is here, at the top
//! level and in the [`prelude`], and the OpenAI-compatible client with the `openai` feature
//! (the `openai` module). Each crate is also re-exported whole ([`core`], [`retry`], [`breaker`],
//! [`health`], [`fallback`], [`monitor`]).
//!
//! On top, the [`ModelManager`] builds each model's stack **once** — health gate → retry →
//! circuit breaker → attempt timeout → model — and routes requests over them with
//! [`FallbackRouter`]s: the default route over every model, named routes ([`RouteSpec`]),
//! and per-request lists, all sharing each model's breaker, health and budgets. It recovers
//! models by hand through [`ModelControl`] (each action an audit event), and automatically
//! when the health checker sees a model come back (its breaker goes half-open at once, and
//! traffic ramps back over a slow start).
//!
//! Its defaults are the mature ones, each argued where it is set: a 2-minute deadline per
//! request ([`DEFAULT_REQUEST_TIMEOUT`]), 60 s per attempt, breakers that trip on 5
//! failures in a row and break for 5 s doubling to 30 s with one probe
//! ([`CircuitBreakerConfig::builder`]), retries that never repeat a timeout and stop as soon
//! as the breaker opens ([`RetryConfig::builder`]), and one last-resort probe per second
//! when every model is unavailable ([`FallbackRouterBuilder::last_resort`]).
//!
//! ```
//! use std::time::Duration;
//! use hive_resilience::prelude::*;
//! use tower::{ServiceExt, service_fn, util::BoxCloneService};
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
//! type Model = BoxCloneService<String, String, std::io::Error>;
//! let down: Model = BoxCloneService::new(service_fn(|_: String| async {
//!     Err(std::io::Error::from(std::io::ErrorKind::ConnectionRefused))
//! }));
//! let up: Model = BoxCloneService::new(service_fn(|p: String| async move { Ok(format!("re: {p}")) }));
//! let manager = ModelManager::builder()
//!     .model(ModelSpec::new("gpt-4o", down).retry(|r| r.max_attempts(2)))
//!     .model(ModelSpec::new("claude-4-sonnet", up))
//!     .timeout(Duration::from_secs(30))
//!     .build()?;
//! let routed = manager.service().oneshot("BIP-01".to_string()).await?;
//! assert_eq!(routed.model.unwrap().as_str(), "claude-4-sonnet");
//! assert_eq!(manager.availability().up(), 2);
//! # Ok(())
//! # }
//! ```
#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod control;
mod entry;
mod manager;
mod recovery;
mod sharing;
mod spec;
mod window;

pub use control::ModelControl;
pub use entry::ModelStack;
pub use manager::{
    Availability, DEFAULT_REQUEST_TIMEOUT, DEFAULT_ROUTE, ManagedRouter, ManagerError,
    ModelAvailability, ModelManager, ModelManagerBuilder, REQUEST_ROUTE, Running,
};
pub use sharing::{MAX_SHARED_HOLD, Sharing, TRIAL_GRACE};
pub use spec::{ModelSpec, RouteSpec};

pub use hive_breaker as breaker;
pub use hive_core as core;
pub use hive_fallback as fallback;
pub use hive_health as health;
pub use hive_monitor as monitor;
#[cfg(feature = "openai")]
pub use hive_openai as openai;
pub use hive_retry as retry;

pub use hive_breaker::{
    BreakerHandle, BreakerMetrics, CircuitBreaker, CircuitBreakerConfig,
    CircuitBreakerConfigBuilder, CircuitBreakerLayer, OpenDuration, SlidingWindow,
};
pub use hive_core::{
    Actor, Available, BoxError, CircuitState, Classified, Classify, ClassifyFn, ClientErrorClass,
    ConfigError, ControlAction, Deadline, EosRecorder, ErrorClassifier, EventReceiver, EventSink,
    FailureClass, FailureClassSet, HealthStatus, HttpClassifier, ModelId, Outcome, RejectReason,
    Rejected, ResilienceEvent, RetryStop, classify_fn,
};
pub use hive_fallback::{
    AttemptMetrics, ClientErrorAction, FailedAttempt, FallbackError, FallbackPolicy,
    FallbackRouter, FallbackRouterBuilder, HedgeDelay, LastResort, RequestEnd, Route, RouteStats,
    Routed, RouterMetrics, Strategy,
};
pub use hive_health::{
    CheckerConfig, HealthChange, HealthChecker, HealthGate, HealthGateLayer, HealthHandle,
    HealthRegistry, HealthSnapshot, ProbeRequest, RegistryConfig, RunningChecker,
};
pub use hive_monitor::{Monitor, MonitorConfig, ResilienceMetrics};
pub use hive_retry::{
    Backoff, DEFAULT_RETRYABLE, Jitter, Retry, RetryBudget, RetryConfig, RetryConfigBuilder,
    RetryLayer,
};

/// The names most programs need, in one import: `use hive_resilience::prelude::*;`.
pub mod prelude {
    pub use crate::{
        BoxError, CheckerConfig, CircuitBreakerConfig, CircuitBreakerLayer, ErrorClassifier,
        EventSink, FallbackPolicy, FallbackRouter, HealthGateLayer, HealthRegistry, HedgeDelay,
        HttpClassifier, Jitter, ModelId, ModelManager, ModelSpec, Monitor, MonitorConfig, Outcome,
        ResilienceEvent, RetryBudget, RetryConfig, RetryLayer, Route, RouteSpec, Routed, Strategy,
        classify_fn,
    };
    #[cfg(feature = "openai")]
    pub use hive_openai::{
        ApiKey, ChatRequest, ChatResponse, Commit, CommitLayer, OpenAiClassifier, OpenAiClient,
    };
}
