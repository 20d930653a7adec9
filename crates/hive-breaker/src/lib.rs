//! A circuit breaker [`Layer`](tower_layer::Layer) for model calls, with the semantics of
//! Resilience4j and a success path of one atomic load (plus one slot swap in a count window).
//!
//! * States: closed, open, half-open, and the operator states forced-open, disabled and
//!   metrics-only ([`BreakerHandle`]).
//! * Count-based or time-based [`SlidingWindow`] with O(1) aggregates; a minimum number of
//!   calls before any rate is computed; failure-rate and slow-call-rate thresholds. A rate
//!   **equal** to its threshold trips; a duration **equal** to the slow threshold is not slow.
//! * Open for a fixed or growing [`OpenDuration`] (reset when the breaker closes), and never
//!   shorter than the longest `Retry-After` hint seen in the failures that tripped it.
//! * Half-open lets `half_open_permits` probes through; when all of them have finished, their
//!   failure rate decides between closed and open. A probe whose outcome is ignored, or
//!   whose future is dropped, gives its permit back.
//! * Generations: every transition starts a new generation; a call's result counts only in
//!   the generation it started in. Results that arrive after a transition are dropped and
//!   counted in [`BreakerMetrics::late_results`], so a slow call started before the breaker
//!   opened can neither extend the break nor close a half-open breaker.
//! * Exactly one [`ResilienceEvent::CircuitTransition`](hive_core::ResilienceEvent) per
//!   transition, and a `CallRejected` event per refused call.
//! * Client errors (HTTP 4xx) count as successes: the model answered. Rejections by inner
//!   layers and ignored outcomes are not counted.
//!
//! `poll_ready` forwards the inner service's readiness; an open breaker answers from `call`
//! with a boxed [`Rejected`](hive_core::Rejected) carrying the model and the time until the
//! next probe, without touching the inner service.
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
//! let layer = CircuitBreakerLayer::new(config);
//! let handle = layer.handle();
//! let svc = ServiceBuilder::new()
//!     .layer(layer)
//!     .service(service_fn(|_: ()| async { Err::<(), _>(std::io::Error::other("503")) }));
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
mod spin;
mod window;

pub use config::{
    CircuitBreakerConfig, CircuitBreakerConfigBuilder, MAX_HALF_OPEN_PERMITS, MAX_WINDOW_SIZE,
    OpenDuration, SlidingWindow,
};
pub use future::ResponseFuture;
pub use handle::{BreakerHandle, BreakerMetrics};
pub use layer::CircuitBreakerLayer;
pub use service::CircuitBreaker;
pub use window::WindowCounts;
