//! Errors shared by every layer.

use crate::{ModelId, RejectReason};

/// Boxed error, as tower layers return it. Check the cause with `err.is::<T>()`.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// A layer refused the call before it reached the model.
///
/// Returned (boxed) by the circuit breaker when open and by the health gate when the model is
/// unhealthy. The default classifiers map it to [`Outcome::Rejected`](crate::Outcome::Rejected):
/// not retried on the same model, not counted by a breaker, a reason to fall back.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("call to model `{model}` rejected: {reason}")]
pub struct Rejected {
    /// The model that was not called.
    pub model: ModelId,
    /// Why.
    pub reason: RejectReason,
}

/// An invalid setting given to a builder: names the field and what is wrong with it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid `{field}`: {problem}")]
pub struct ConfigError {
    /// The setting, as its builder method is named.
    pub field: &'static str,
    /// What is wrong with the value given.
    pub problem: String,
}

impl ConfigError {
    /// A config error for `field`.
    pub fn new(field: &'static str, problem: impl Into<String>) -> Self {
        Self {
            field,
            problem: problem.into(),
        }
    }
}
