//! A retry [`Layer`](tower_layer::Layer) for model calls.
//!
//! * **Attempts count the first call**: `max_attempts(3)` is one call and at most two
//!   retries.
//! * Exponential [`Backoff`] with a cap and [`Jitter`] (full, proportional or decorrelated),
//!   seedable for exact tests.
//! * `Retry-After` hints are honoured exactly, up to their own cap; a longer hint stops
//!   retrying at once so the router can fall back to another model instead of waiting.
//! * Retryability per [`FailureClass`](hive_core::FailureClass); client errors (bad request,
//!   context length, content policy, unauthorized), rejections (open breaker, unhealthy
//!   model) and ignored outcomes are never retried. By default ([`DEFAULT_RETRYABLE`]) an
//!   attempt that timed out with no answer is not retried on the same model either: a
//!   silent provider only multiplies the wait, and the router fails over instead.
//! * [`retry_only_while`](RetryConfigBuilder::retry_only_while) the model can take a call:
//!   given the breaker's handle, a failure that opened the breaker or a failed half-open
//!   probe ends the retries at once, so the request moves on to the next model.
//! * A shared [`RetryBudget`] (token bucket with a floor) keeps retries to a share of traffic.
//! * The request's [`Deadline`](hive_core::Deadline) is respected: no attempt starts that
//!   could not begin (backoff plus `min_attempt_time`) before it.
//! * Dropping the future cancels a pending backoff; the failed response is dropped before the
//!   next attempt; the inner service is polled ready before every retry.
//! * Events: [`Retry`](hive_core::ResilienceEvent::Retry) per retry and
//!   [`RetryStopped`](hive_core::ResilienceEvent::RetryStopped) with the reason when a
//!   retryable failure is returned (exhausted, budget denied, deadline, retry-after too long,
//!   model unavailable).
//!
//! No boxed future, no lock: the response future is a named state machine.
//!
//! # Order of layers
//!
//! Retry goes **outside** the circuit breaker, so that every attempt is recorded by the
//! breaker and an open breaker (a [`Rejected`](hive_core::Rejected) error) ends the retries:
//! `HealthGate → Retry → CircuitBreaker → timeout → model`.
//!
//! ```
//! use std::{sync::{Arc, atomic::{AtomicU32, Ordering}}, time::Duration};
//! use hive_retry::{Jitter, RetryConfig, RetryLayer};
//! use tower::{ServiceBuilder, ServiceExt, service_fn};
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
//! let calls = Arc::new(AtomicU32::new(0));
//! let config = RetryConfig::builder()
//!     .model("gpt-4o")
//!     .max_attempts(3)
//!     .backoff(Duration::from_millis(100), Duration::from_secs(2))
//!     .jitter(Jitter::None)
//!     .build()?;
//! let svc = ServiceBuilder::new()
//!     .layer(RetryLayer::new(config))
//!     .service(service_fn({
//!         let calls = calls.clone();
//!         move |prompt: &'static str| {
//!             let n = calls.fetch_add(1, Ordering::SeqCst);
//!             async move {
//!                 if n < 2 { Err(std::io::Error::other("503")) } else { Ok(prompt.len()) }
//!             }
//!         }
//!     }));
//! assert_eq!(svc.oneshot("hello").await?, 5);
//! assert_eq!(calls.load(Ordering::SeqCst), 3);
//! # Ok(())
//! # }
//! ```
#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod backoff;
mod config;
mod future;
mod layer;
mod service;
mod telemetry;

pub use backoff::{Backoff, Jitter};
pub use config::{DEFAULT_RETRYABLE, RetryConfig, RetryConfigBuilder};
pub use future::ResponseFuture;
/// The retry budget: a [`Budget`](hive_core::Budget) whose extra calls are retries.
pub use hive_core::Budget as RetryBudget;
pub use layer::RetryLayer;
pub use service::Retry;
