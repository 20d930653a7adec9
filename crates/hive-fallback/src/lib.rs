//! A fallback router over per-model services: the request goes to the models in priority
//! order until one answers.
//!
//! * The first answer wins; every move to the next model is a
//!   [`Failover`](hive_core::ResilienceEvent::Failover) event (from, to, reason, latency).
//! * Which outcomes move on is the [`FallbackPolicy`]: availability failures and rejections
//!   do; a bad request and a content-policy refusal do not; context length exceeded goes to a
//!   model with a larger context window, when one is configured.
//! * A model whose breaker is open or that is unhealthy is skipped without a call
//!   ([`Route::available_when`]).
//! * One deadline covers every attempt ([`FallbackRouterBuilder::timeout`]); each attempt
//!   runs under it as its [`Deadline`](hive_core::Deadline), so retries below never outlive
//!   it, and an attempt that cannot fit is not started.
//! * When every model is unavailable (every breaker open after a blip), one last-resort
//!   probe goes to the model whose break ends first, never inside a `Retry-After`, at most
//!   once per interval ([`FallbackRouterBuilder::last_resort`]).
//! * When no model answers: a degraded answer (static or last good), marked
//!   [`Routed::degraded`], or a [`FallbackError`] listing every attempt with its status and
//!   class (never the provider's text in its `Display`).
//! * The answer tells which model gave it and after how many attempts ([`Routed`]).
//!
//! ```
//! use std::time::Duration;
//! use hive_fallback::{FallbackRouter, Route};
//! use tower::{ServiceExt, service_fn, util::BoxCloneService};
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
//! type Model = BoxCloneService<&'static str, String, std::io::Error>;
//! let down: Model = BoxCloneService::new(service_fn(|_| async {
//!     Err(std::io::Error::from(std::io::ErrorKind::ConnectionRefused))
//! }));
//! let up: Model = BoxCloneService::new(service_fn(|q: &'static str| async move {
//!     Ok(format!("answer to {q}"))
//! }));
//! let router = FallbackRouter::builder()
//!     .route(Route::new("primary", down))
//!     .route(Route::new("backup", up))
//!     .timeout(Duration::from_secs(30))
//!     .build()?;
//! let routed = router.oneshot("the proposal").await?;
//! assert_eq!(routed.response, "answer to the proposal");
//! assert_eq!((routed.model.unwrap().as_str(), routed.attempts), ("backup", 2));
//! # Ok(())
//! # }
//! ```
#![deny(missing_docs)]
#![forbid(unsafe_code)]

// The modules form a line, each using only those before it: error, policy, stats, strategy;
// telemetry, trace; route; shared; cursor; sequential and race; future; router.
mod cursor;
mod error;
mod future;
mod policy;
mod race;
mod route;
mod router;
mod sequential;
mod shared;
mod stats;
mod strategy;
mod telemetry;
mod trace;

pub use error::{FailedAttempt, FallbackError};
pub use future::ResponseFuture;
pub use policy::{ClientErrorAction, FallbackPolicy};
pub use route::Route;
pub use router::{DEFAULT_LAST_RESORT_INTERVAL, FallbackRouter, FallbackRouterBuilder};
pub use shared::{LastResort, RequestEnd, Routed};
pub use stats::RouteStats;
pub use strategy::{HedgeDelay, Strategy};
pub use telemetry::{AttemptMetrics, RouterMetrics};
