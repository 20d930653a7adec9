//! [`ChaosError`]: an invalid rule, and [`InjectedError`]: the error of an injected failure
//! when no model-specific [`Faults`](crate::Faults) is given.

use std::{error::Error, fmt, io};

use hive_core::{
    BoxError, ClientErrorClass, FailureClass, ModelId, Outcome, classify_status_hinted,
};

use crate::Fault;

/// An invalid rule: its index in [`ChaosRules::rules`](crate::ChaosRules::rules), the field
/// and what is wrong with it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("chaos rule {rule}: invalid `{field}`: {problem}")]
pub struct ChaosError {
    /// The rule's index.
    pub rule: usize,
    /// The field, as its builder method or serde key (without `_ms`) is named.
    pub field: &'static str,
    /// What is wrong with the value given.
    pub problem: String,
}

/// The error of an injected failure, from [`InjectedFaults`](crate::InjectedFaults).
///
/// Its [`outcome`](Self::outcome) is the class the real failure has. Through hive-core's
/// [`classify_error`](hive_core::classify_error) (the `ErrorClassifier` of the layers), a
/// timeout classifies as a timeout and a connection reset as a connect failure, by their
/// causes (tower's `Elapsed`, an `io::Error` of kind `ConnectionReset`); the other faults
/// have no standard error type and classify as `Unavailable` there: give the layers a
/// classifier that asks [`InjectedError::outcome`], or use a [`Faults`](crate::Faults) of
/// your model's own error type.
#[derive(Debug)]
pub struct InjectedError {
    model: ModelId,
    fault: Fault,
    cause: Option<BoxError>,
}

impl InjectedError {
    /// The error injected for `fault` on a call to `model`.
    pub fn new(fault: Fault, model: ModelId) -> Self {
        let cause: Option<BoxError> = match fault {
            Fault::Timeout { .. } | Fault::Hang => {
                Some(Box::new(tower::timeout::error::Elapsed::new()))
            }
            Fault::ConnectionReset => {
                Some(Box::new(io::Error::from(io::ErrorKind::ConnectionReset)))
            }
            _ => None,
        };
        Self {
            model,
            fault,
            cause,
        }
    }

    /// The fault injected.
    pub fn fault(&self) -> &Fault {
        &self.fault
    }

    /// The model called.
    pub fn model(&self) -> ModelId {
        self.model
    }

    /// What the real failure means for retry, breaker and fallback: a status by hive-core's
    /// status table (with its wait hint where it counts), a timeout, a connect failure, an
    /// identity mismatch, or the client errors.
    pub fn outcome(&self) -> Outcome {
        match &self.fault {
            Fault::Status {
                status,
                retry_after,
            } => http::StatusCode::from_u16(*status)
                .map(|s| classify_status_hinted(s, *retry_after))
                .unwrap_or(Outcome::failure(FailureClass::Unavailable)),
            Fault::Timeout { .. } | Fault::Hang => Outcome::failure(FailureClass::Timeout),
            Fault::ConnectionReset => Outcome::failure(FailureClass::Connect),
            Fault::WrongModel { .. } => Outcome::failure(FailureClass::IdentityMismatch),
            Fault::ContextLengthExceeded => {
                Outcome::ClientError(ClientErrorClass::ContextLengthExceeded)
            }
            Fault::ContentPolicy => Outcome::ClientError(ClientErrorClass::ContentPolicy),
            Fault::Latency(_) | Fault::Stream(_) => Outcome::Success,
        }
    }
}

impl fmt::Display for InjectedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "chaos: injected ")?;
        match &self.fault {
            Fault::Status { status, .. } => write!(f, "HTTP {status}")?,
            Fault::Timeout { after } => write!(f, "timeout after {after:?}")?,
            Fault::Hang => f.write_str("hang")?,
            Fault::ConnectionReset => f.write_str("connection reset")?,
            Fault::WrongModel { answered } => write!(f, "answer from model `{answered}`")?,
            Fault::ContextLengthExceeded => f.write_str("context length exceeded")?,
            Fault::ContentPolicy => f.write_str("content-policy refusal")?,
            Fault::Latency(_) => f.write_str("latency")?,
            Fault::Stream(_) => f.write_str("stream fault")?,
        }
        write!(f, " on model `{}`", self.model)
    }
}

impl Error for InjectedError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        self.cause.as_deref().map(|e| e as &(dyn Error + 'static))
    }
}
