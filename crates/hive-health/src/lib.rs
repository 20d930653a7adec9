//! Knowing which models are up: active health checks, a registry fed by checks and live
//! traffic, and a gate layer that fails fast on an unhealthy model.
//!
//! * [`HealthRegistry`]: per model a [`HealthStatus`](hive_core::HealthStatus) (unknown,
//!   healthy, degraded, unhealthy), the last check, consecutive counts, latency EWMA and
//!   error rate; [`subscribe`](HealthRegistry::subscribe) to changes. Passive signals feed
//!   it too: breaker transitions ([`HealthRegistry::event_sink`], each applied only if newer
//!   than the last, as they may arrive out of order) and live outcomes
//!   ([`HealthHandle::record_outcome`]). Operators can force a status.
//! * [`HealthChecker`]: one task per model calling a probe `Service`; interval with jitter
//!   (the first check too), timeout, healthy/unhealthy thresholds of consecutive results, a
//!   faster interval right after a change, no overlapping checks (the interval counts from
//!   the end of a check, whatever the timeout), [`RunningChecker::stop`] ends every task.
//! * [`HealthGateLayer`]: one atomic load per call.
//!
//! Rules, applied to active checks:
//!
//! | status now | check passes | check fails |
//! |---|---|---|
//! | unknown | healthy (one success is enough for a new model) | unhealthy after `unhealthy_threshold` in a row, else unknown |
//! | healthy | healthy | degraded, unhealthy after `unhealthy_threshold` in a row |
//! | degraded | healthy after `healthy_threshold` in a row, else degraded | degraded, unhealthy after `unhealthy_threshold` in a row |
//! | unhealthy | healthy after `healthy_threshold` in a row, else unhealthy | unhealthy |
//!
//! On top of that, passive signals make a healthy (or unknown) model degraded: an open
//! breaker, a latency EWMA above `degraded_latency`, or a failure EWMA (of checks and live
//! calls) above `degraded_error_rate` (0.5 by default). Degraded is informative: the gate
//! lets it through. A forced status wins over everything.
//!
//! ```
//! use std::time::Duration;
//! use hive_core::{HealthStatus, Rejected};
//! use hive_health::{CheckerConfig, HealthChecker, HealthGateLayer, HealthRegistry, ProbeRequest};
//! use tower::{ServiceBuilder, ServiceExt, service_fn};
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
//! let registry = HealthRegistry::builder().unhealthy_threshold(2).build()?;
//! let probe = service_fn(|_: ProbeRequest| async { Err::<(), _>(std::io::Error::other("503")) });
//! let config = CheckerConfig::default().interval(Duration::from_secs(5)).jitter(0.0);
//! let checker = HealthChecker::new(registry.clone(), config)?.probe("gpt-4o", probe).start();
//! tokio::time::sleep(Duration::from_secs(6)).await; // checks at 0 s and 5 s fail
//! assert_eq!(registry.status("gpt-4o"), HealthStatus::Unhealthy);
//!
//! let model = ServiceBuilder::new()
//!     .layer(HealthGateLayer::new(registry.register("gpt-4o")))
//!     .service(service_fn(|_: ()| async { Ok::<_, std::io::Error>("answer") }));
//! assert!(model.oneshot(()).await.unwrap_err().is::<Rejected>());
//! checker.stop().await;
//! # Ok(())
//! # }
//! ```
#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod checker;
mod gate;
mod registry;
mod telemetry;

pub use checker::{CheckerConfig, HealthChecker, ProbeRequest, RunningChecker};
pub use gate::{GateFuture, HealthGate, HealthGateLayer};
pub use registry::{
    ChangeCause, HealthChange, HealthHandle, HealthRegistry, HealthSnapshot, RegistryConfig,
};
