//! The router's own errors.

use std::fmt;

use hive_core::{BoxError, ModelId, Outcome};
use http::StatusCode;

/// One attempt that did not answer.
pub struct FailedAttempt {
    /// The model tried (or skipped).
    pub model: ModelId,
    /// What happened: the failure class, the client-error class or the rejection.
    pub outcome: Outcome,
    /// The HTTP status the model answered with, when its classifier knows it (see
    /// [`Classify::status`](hive_core::Classify::status)): a server in front can map the
    /// error to the right status of its own.
    pub status: Option<StatusCode>,
    /// The model's error, when it returned one (a failed answer such as an HTTP 503 is
    /// dropped and only its outcome and status kept). Its text may come from the provider:
    /// log it at debug level, do not show it to callers.
    pub error: Option<BoxError>,
}

impl fmt::Debug for FailedAttempt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FailedAttempt")
            .field("model", &self.model)
            .field("outcome", &self.outcome)
            .field("status", &self.status)
            .field("error", &self.error.as_ref().map(ToString::to_string))
            .finish()
    }
}

/// Model, status and class only: never the provider's text.
impl fmt::Display for FailedAttempt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", self.model)?;
        match self.outcome {
            Outcome::Failure { class, .. } => write!(f, "{class}")?,
            Outcome::ClientError(class) => write!(f, "{class}")?,
            Outcome::Rejected(reason) => write!(f, "{reason}")?,
            Outcome::Success => f.write_str("answered")?,
            Outcome::Ignored => f.write_str("ignored")?,
        }
        if let Some(status) = self.status {
            write!(f, " (HTTP {})", status.as_u16())?;
        }
        Ok(())
    }
}

fn list(attempts: &[FailedAttempt]) -> String {
    attempts
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// Why the router returned no answer. Boxed into the router's `BoxError`; check with
/// `err.downcast_ref::<FallbackError>()`. Its `Display` names each model with its status
/// and class, never a provider's text (which stays in each attempt's `error`).
#[derive(Debug, thiserror::Error)]
pub enum FallbackError {
    /// Every model was tried or skipped and none answered.
    #[error("no model answered: {}", list(.attempts))]
    Exhausted {
        /// Every attempt, in order; the first is the primary's.
        attempts: Vec<FailedAttempt>,
    },
    /// The request's deadline passed (or too little of it was left to start an attempt).
    #[error("deadline reached after {} attempt(s): {}", .attempts.len(), list(.attempts))]
    DeadlineExceeded {
        /// The attempts made before it, in order.
        attempts: Vec<FailedAttempt>,
    },
}

impl FallbackError {
    /// The attempts made, in order.
    pub fn attempts(&self) -> &[FailedAttempt] {
        match self {
            Self::Exhausted { attempts } | Self::DeadlineExceeded { attempts } => attempts,
        }
    }
}
