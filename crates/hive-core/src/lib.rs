//! Shared vocabulary of hive-resilience.
//!
//! Every layer speaks in these types: a [`ModelId`] names the model a layer guards; a
//! [`Classify`] implementation turns each call's result into an [`Outcome`]; layers report
//! what they do as [`ResilienceEvent`]s through an [`EventSink`]; and a [`Deadline`] set by
//! the router bounds the whole request.
//!
//! ```
//! use hive_core::{Classified, Classify, FailureClass, HttpClassifier, Outcome, BoxError};
//!
//! let response = http::Response::builder()
//!     .status(429)
//!     .header("retry-after", "3")
//!     .body(())
//!     .unwrap();
//! let verdict = Classify::<_, BoxError>::classify(&HttpClassifier, &Ok(response));
//! assert_eq!(
//!     verdict,
//!     Classified::Now(Outcome::Failure {
//!         class: FailureClass::RateLimited,
//!         retry_after: Some(std::time::Duration::from_secs(3)),
//!     })
//! );
//! ```
#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod availability;
mod budget;
pub mod civil;
mod classify;
mod deadline;
mod error;
mod event;
mod ewma;
mod fault;
mod limits;
pub mod metric;
mod model;
mod outcome;
mod random;
mod retry_after;
#[cfg(feature = "serde")]
mod serde_impls;
mod shared;
mod sliding;
pub mod worker;

pub use availability::Available;
pub use budget::Budget;
pub use classify::{
    AsError, Classified, Classify, ClassifyFn, EosRecorder, ErrorClassifier, HttpClassifier,
    classify_error, classify_fn, classify_status, classify_status_hinted,
    status_carries_retry_after,
};
pub use deadline::{Deadline, Scoped};
pub use error::{BoxError, ConfigError, Rejected};
pub use event::{
    Actor, CircuitState, ControlAction, EventReceiver, EventSink, HealthStatus, ResilienceEvent,
    RetryStop,
};
pub use ewma::AtomicEwma;
pub use fault::StreamFault;
pub use limits::{CREDENTIAL_HEADERS, MAX_DURATION, check_duration, micros};
pub use model::ModelId;
pub use outcome::{ClientErrorClass, FailureClass, FailureClassSet, Outcome, RejectReason};
pub use random::{SharedRandom, fnv1a64, splitmix64, unit_from};
pub use retry_after::{MAX_RETRY_AFTER, parse_retry_after};
pub use shared::{
    ApplyShared, ClaimOnce, NotShared, ProbeDuty, ShareState, SharedChange, is_cluster_name,
};
pub use sliding::SlidingCounters;
