//! Fault injection for model calls: a [`ChaosLayer`] that makes a model fail the ways real
//! providers fail, when and as often as its rules say, so the real resilience layers meet
//! the faults.
//!
//! * **Failures by class** ([`Fault`]): an error status (429 with or without `Retry-After`,
//!   500, 502, 503, 529 …), a timeout (the call waits, then fails as the client's timeout
//!   does), a hang (only a timeout outside ends it), a connection reset, an answer from the
//!   wrong model, context length exceeded, a content-policy refusal.
//! * **Latency** ([`Latency`]): fixed, uniform, log-normal or Pareto, seeded.
//! * **Stream faults** ([`StreamFault`]): a cut, a reset, a stall, or a malformed chunk
//!   after N chunks, a missing `[DONE]`.
//! * **Rules** ([`Rule`]): a fault, a rate (`0..=1`), a model (or all), a [`Schedule`]:
//!   always, fail N then recover, an outage window, flapping with a period and duty, a
//!   ramp. Times run on tokio's clock from when the rules were set, so paused-time tests
//!   are exact; random draws come from one seeded SplitMix64 sequence
//!   ([`SharedRandom`](hive_core::SharedRandom)), so a seeded run repeats.
//! * **At runtime** ([`ChaosHandle`]): switched on and off, rules replaced and read back
//!   as a serde description ([`ChaosRules`]), counters per rule ([`RuleStats`]). No lock:
//!   an atomic switch and rules swapped whole (`arc-swap`).
//! * **What a fault becomes** is a [`Faults`] implementation: [`InjectedFaults`] (an
//!   [`InjectedError`], for `BoxError` services) or, with the feature `openai`,
//!   `OpenAiFaults`: hive-openai's own errors and stream failures, classified by
//!   `OpenAiClassifier` exactly as the real ones.
//!
//! Switched off, a call costs one relaxed atomic load more than the model's own: the
//! inner future is returned wrapped, with no allocation and no boxing (the bench
//! `hive_chaos_disabled`).
//!
//! # Order of layers
//!
//! Chaos goes **innermost**, right in front of the model, so that every real layer meets
//! the injected faults as it would meet the model's own:
//! `HealthGate → Retry → CircuitBreaker → attempt timeout → Chaos → model`. A
//! [`Hang`](Fault::Hang) needs the attempt timeout outside it.
//!
//! ```
//! use std::time::Duration;
//! use hive_chaos::{ChaosLayer, ChaosRules, Fault, InjectedError, Rule, Schedule};
//! use hive_core::BoxError;
//! use tower::{ServiceBuilder, ServiceExt, service_fn};
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() -> Result<(), BoxError> {
//! // gpt-4o fails its first two calls with 503, then recovers.
//! let chaos = ChaosLayer::new(
//!     ChaosRules::new()
//!         .seed(7)
//!         .rule(Rule::new(Fault::status(503)).model("gpt-4o").schedule(Schedule::fail_first(2))),
//! )?
//! .model("gpt-4o");
//! let handle = chaos.handle();
//! let model = ServiceBuilder::new()
//!     .timeout(Duration::from_secs(30)) // the attempt timeout, outside chaos
//!     .layer(chaos)
//!     .service(service_fn(|prompt: &'static str| async move { Ok::<_, BoxError>(prompt.len()) }));
//!
//! for _ in 0..2 {
//!     let err = model.clone().oneshot("vote").await.unwrap_err();
//!     assert!(err.is::<InjectedError>());
//! }
//! assert_eq!(model.clone().oneshot("vote").await?, 4);
//! assert_eq!(handle.stats()[0].injected, 2);
//!
//! // Off: calls pass straight through.
//! handle.disable();
//! assert_eq!(model.oneshot("vote").await?, 4);
//! # Ok(())
//! # }
//! ```
#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod engine;
mod error;
mod faults;
mod future;
mod handle;
mod layer;
mod millis;
#[cfg(feature = "openai")]
mod openai;
mod rules;
mod service;

pub use engine::RuleStats;
pub use error::{ChaosError, InjectedError};
pub use faults::{Faults, InjectedFaults};
pub use future::ResponseFuture;
pub use handle::ChaosHandle;
pub use hive_core::StreamFault;
pub use layer::ChaosLayer;
#[cfg(feature = "openai")]
pub use openai::OpenAiFaults;
pub use rules::{ChaosRules, Fault, Latency, Rule, Schedule};
pub use service::ChaosService;
