//! A circuit breaker [`Layer`](tower_layer::Layer) for model calls, with the semantics of
//! Resilience4j and Envoy and a success path of one atomic load (plus one slot swap in a
//! count window).
//!
//! * States: closed, open, half-open, and the operator states forced-open, disabled and
//!   metrics-only ([`BreakerHandle`]).
//! * Trips on `consecutive_failures` in a row (Envoy's `consecutive_5xx`; default 5), or on
//!   the rates of a count-based or time-based [`SlidingWindow`] with O(1) aggregates: a
//!   minimum number of calls before any rate is computed, failure-rate and slow-call-rate
//!   thresholds. A rate **equal** to its threshold trips; a duration **equal** to the slow
//!   threshold is not slow.
//! * Open for a growing [`OpenDuration`] by default (5 s, doubling on each reopening up to
//!   30 s, back to 5 s once closed) or a fixed one, and never shorter than the longest
//!   `Retry-After` hint of the failures that tripped it — only those still in its window,
//!   or the probes that failed — up to `max_retry_after_open` (5 minutes).
//! * Half-open lets `half_open_permits` probes through (default 1). The verdict comes as
//!   soon as it is certain: reopen once the failures already reach the threshold over all
//!   the probes, close once they cannot. A probe whose outcome is ignored, or whose future
//!   is dropped (or whose service panics in `call`), gives its permit back. After
//!   `max_wait_in_half_open` (default 60 s) the probes still out count as failed and the
//!   breaker decides, so a hung probe or a stream nobody reads cannot hold it half-open.
//! * Generations: every transition starts a new generation; a call's result counts only in
//!   the generation it started in. Results that arrive after a transition are dropped and
//!   counted in [`BreakerMetrics::late_results`], so a slow call started before the breaker
//!   opened can neither extend the break nor close a half-open breaker.
//! * Exactly one [`ResilienceEvent::CircuitTransition`](hive_core::ResilienceEvent) per
//!   transition, carrying the new generation. Events are emitted after the state changed,
//!   outside the breaker's lock: under concurrency a listener may receive two transitions
//!   out of order, and orders them by generation. A `CallRejected` event per refused call.
//!   Forcing the state the breaker is already in emits nothing and starts no generation.
//! * Client errors (HTTP 4xx) count as successes: the model answered. Rejections by inner
//!   layers and ignored outcomes are not counted.
//!
//! `poll_ready` forwards the inner service's readiness; an open breaker answers from `call`
//! with a boxed [`Rejected`](hive_core::Rejected) carrying the model and the time until the
//! next probe, without touching the inner service.
//!
//! Each service a [`CircuitBreakerLayer`] builds has its own breaker (clones of the service
//! share it), as tower layers do with state; [`CircuitBreakerLayer::shared`] shares one on
//! purpose and hands out its [`BreakerHandle`].
//!
//! # Order of layers
//!
//! Put the breaker **inside** retry, so that every attempt is recorded and an open breaker
//! stops the retries: `HealthGate → Retry → CircuitBreaker → timeout → model`.
//!
//! ```
//! use std::time::Duration;
//! use hive_breaker::{CircuitBreakerConfig, CircuitBreakerLayer};
//! use hive_core::{CircuitState, Rejected};
//! use tower::{ServiceBuilder, ServiceExt, service_fn};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let config = CircuitBreakerConfig::builder()
//!     .model("gpt-4o")
//!     .count_window(4)
//!     .minimum_calls(2)
//!     .failure_rate_threshold(0.5)
//!     .open_duration(Duration::from_secs(30))
//!     .build()?;
//! let svc = ServiceBuilder::new()
//!     .layer(CircuitBreakerLayer::new(config))
//!     .service(service_fn(|_: ()| async { Err::<(), _>(std::io::Error::other("503")) }));
//! let handle = svc.handle();
//!
//! for _ in 0..2 {
//!     assert!(svc.clone().oneshot(()).await.is_err());
//! }
//! assert_eq!(handle.state(), CircuitState::Open);
//! let err = svc.oneshot(()).await.unwrap_err();
//! assert!(err.is::<Rejected>());
//! # Ok(())
//! # }
//! ```
#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod breaker;
mod config;
mod future;
mod handle;
mod layer;
mod service;
mod snapshot;
mod spin;
mod telemetry;
mod trial;
mod window;

pub use config::{
    CircuitBreakerConfig, CircuitBreakerConfigBuilder, MAX_HALF_OPEN_PERMITS, MAX_WINDOW_SIZE,
    OpenDuration, SlidingWindow,
};
pub use future::ResponseFuture;
pub use handle::BreakerHandle;
pub use layer::CircuitBreakerLayer;
pub use service::CircuitBreaker;
pub use snapshot::BreakerMetrics;
pub use window::WindowCounts;
