//! The router's own errors.

use std::fmt;

use hive_core::{BoxError, ModelId, Outcome};

/// One attempt that did not answer.
pub struct FailedAttempt {
    /// The model tried (or skipped).
    pub model: ModelId,
    /// What happened.
    pub outcome: Outcome,
    /// The model's error, when it returned one (a failed answer such as an HTTP 503 is
    /// dropped and only its outcome kept).
    pub error: Option<BoxError>,
}

impl fmt::Debug for FailedAttempt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FailedAttempt")
            .field("model", &self.model)
            .field("outcome", &self.outcome)
            .field("error", &self.error.as_ref().map(ToString::to_string))
            .finish()
    }
}

impl fmt::Display for FailedAttempt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {:?}", self.model, self.outcome)?;
        if let Some(error) = &self.error {
            write!(f, " ({error})")?;
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
/// `err.downcast_ref::<FallbackError>()`.
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
