//! [`Outcome`]: what one call to a model meant for resilience decisions.

use std::{fmt, time::Duration};

/// What one call meant: the input of every retry, breaker, health and fallback decision.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The model answered well.
    Success,
    /// The model (or the way to it) failed; another attempt may succeed.
    Failure {
        /// Why it failed.
        class: FailureClass,
        /// How long the provider asked us to wait (`Retry-After` and kin), if it said.
        retry_after: Option<Duration>,
    },
    /// The request itself was wrong; the same request fails on the same model again.
    ClientError(ClientErrorClass),
    /// A layer refused the call before it reached the model (open breaker, unhealthy model).
    /// Not retried on the same model, not counted by breakers; a reason to fall back.
    Rejected(RejectReason),
    /// Neither success nor failure (for example a cancelled call); counted nowhere.
    Ignored,
}

impl Outcome {
    /// A failure of `class` without a retry-after hint.
    pub const fn failure(class: FailureClass) -> Self {
        Self::Failure {
            class,
            retry_after: None,
        }
    }

    /// Whether this outcome counts as a failure of the model.
    pub const fn is_failure(&self) -> bool {
        matches!(self, Self::Failure { .. })
    }

    /// The retry-after hint of a failure, if any.
    pub const fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Failure { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// The failure class, if this is a failure.
    pub const fn failure_class(&self) -> Option<FailureClass> {
        match self {
            Self::Failure { class, .. } => Some(*class),
            _ => None,
        }
    }

    /// Every label [`label`](Self::label) gives, in the order of
    /// [`label_index`](Self::label_index): `success`, the client-error classes, the failure
    /// classes, `rejected`, `ignored`. A metric with an `outcome` label registers one
    /// handle per entry, once.
    pub const LABELS: [&'static str; 16] = [
        "success",
        ClientErrorClass::ALL[0].as_str(),
        ClientErrorClass::ALL[1].as_str(),
        ClientErrorClass::ALL[2].as_str(),
        ClientErrorClass::ALL[3].as_str(),
        FailureClass::ALL[0].as_str(),
        FailureClass::ALL[1].as_str(),
        FailureClass::ALL[2].as_str(),
        FailureClass::ALL[3].as_str(),
        FailureClass::ALL[4].as_str(),
        FailureClass::ALL[5].as_str(),
        FailureClass::ALL[6].as_str(),
        FailureClass::ALL[7].as_str(),
        FailureClass::ALL[8].as_str(),
        "rejected",
        "ignored",
    ];

    /// The outcome's place in [`LABELS`](Self::LABELS).
    pub const fn label_index(&self) -> usize {
        match self {
            Self::Success => 0,
            Self::ClientError(class) => 1 + *class as usize,
            Self::Failure { class, .. } => 1 + ClientErrorClass::ALL.len() + *class as usize,
            Self::Rejected(_) => 1 + ClientErrorClass::ALL.len() + FailureClass::ALL.len(),
            Self::Ignored => 2 + ClientErrorClass::ALL.len() + FailureClass::ALL.len(),
        }
    }

    /// A short stable name for metric labels and logs: `success`, the class of a failure or
    /// client error, `rejected` or `ignored`.
    pub const fn label(&self) -> &'static str {
        Self::LABELS[self.label_index()]
    }
}

/// Why a model failed. Every class is an availability problem: retry or fallback may help.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum FailureClass {
    /// HTTP 429 or a provider's rate-limit error.
    RateLimited = 0,
    /// No answer in time (HTTP 408/504, an attempt timeout).
    Timeout = 1,
    /// HTTP 500/502/503 and other server errors.
    Unavailable = 2,
    /// Connection refused or reset before the response started.
    Connect = 3,
    /// The provider says it is overloaded (HTTP 529).
    Overloaded = 4,
    /// The answer came from a different model than the one asked.
    IdentityMismatch = 5,
    /// A streamed answer ended before it was complete.
    StreamCut = 6,
    /// A streamed answer stopped sending chunks.
    StreamStalled = 7,
    /// The answer could not be parsed.
    Malformed = 8,
}

impl FailureClass {
    /// Every failure class, in declaration order.
    pub const ALL: [FailureClass; 9] = [
        Self::RateLimited,
        Self::Timeout,
        Self::Unavailable,
        Self::Connect,
        Self::Overloaded,
        Self::IdentityMismatch,
        Self::StreamCut,
        Self::StreamStalled,
        Self::Malformed,
    ];

    /// A short stable name, for logs and metric labels.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::RateLimited => "rate_limited",
            Self::Timeout => "timeout",
            Self::Unavailable => "unavailable",
            Self::Connect => "connect",
            Self::Overloaded => "overloaded",
            Self::IdentityMismatch => "identity_mismatch",
            Self::StreamCut => "stream_cut",
            Self::StreamStalled => "stream_stalled",
            Self::Malformed => "malformed",
        }
    }
}

impl fmt::Display for FailureClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A set of [`FailureClass`]es in one word, for per-class settings (which classes retry,
/// which fall back).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct FailureClassSet(u16);

impl FailureClassSet {
    /// No class.
    pub const EMPTY: Self = Self(0);
    /// Every class.
    pub const ALL: Self = Self((1 << FailureClass::ALL.len()) - 1);

    /// Whether `class` is in the set.
    pub const fn contains(self, class: FailureClass) -> bool {
        self.0 & (1 << class as u8) != 0
    }

    /// The set with `class` added.
    #[must_use]
    pub const fn with(self, class: FailureClass) -> Self {
        Self(self.0 | (1 << class as u8))
    }

    /// The set with `class` removed.
    #[must_use]
    pub const fn without(self, class: FailureClass) -> Self {
        Self(self.0 & !(1 << class as u8))
    }

    /// The classes in the set, in declaration order.
    pub fn iter(self) -> impl Iterator<Item = FailureClass> {
        FailureClass::ALL
            .into_iter()
            .filter(move |c| self.contains(*c))
    }
}

impl FromIterator<FailureClass> for FailureClassSet {
    fn from_iter<I: IntoIterator<Item = FailureClass>>(iter: I) -> Self {
        iter.into_iter().fold(Self::EMPTY, Self::with)
    }
}

impl fmt::Debug for FailureClassSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

/// Why the request itself was refused. Never retried on the same model.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum ClientErrorClass {
    /// HTTP 400 and other 4xx not listed below.
    BadRequest = 0,
    /// The prompt does not fit the model's context window; a larger model may take it.
    ContextLengthExceeded = 1,
    /// The provider's content policy refused the request.
    ContentPolicy = 2,
    /// HTTP 401/403: the credentials are wrong; an operator must act.
    Unauthorized = 3,
}

impl ClientErrorClass {
    /// Every client-error class, in declaration order.
    pub const ALL: [ClientErrorClass; 4] = [
        Self::BadRequest,
        Self::ContextLengthExceeded,
        Self::ContentPolicy,
        Self::Unauthorized,
    ];

    /// A short stable name, for logs and metric labels.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::BadRequest => "bad_request",
            Self::ContextLengthExceeded => "context_length_exceeded",
            Self::ContentPolicy => "content_policy",
            Self::Unauthorized => "unauthorized",
        }
    }
}

impl fmt::Display for ClientErrorClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a layer refused a call without reaching the model.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RejectReason {
    /// The circuit breaker is open; the next probe may go after the given time.
    CircuitOpen {
        /// Time until the breaker lets a probe through.
        retry_in: Duration,
    },
    /// An operator forced the breaker open.
    ForcedOpen,
    /// The breaker is half-open and every probe permit is taken.
    HalfOpenBusy,
    /// The health checker marked the model unhealthy.
    Unhealthy,
    /// A router skipped the model: its breaker or health said it cannot take a call now.
    Unavailable,
}

impl fmt::Display for RejectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::CircuitOpen { retry_in } => {
                write!(f, "circuit open, next probe in {retry_in:?}")
            }
            Self::ForcedOpen => f.write_str("circuit forced open"),
            Self::HalfOpenBusy => f.write_str("circuit half-open, all probe permits taken"),
            Self::Unhealthy => f.write_str("model unhealthy"),
            Self::Unavailable => f.write_str("model unavailable, skipped"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_outcome_has_its_own_label() {
        let mut outcomes = vec![
            Outcome::Success,
            Outcome::Rejected(RejectReason::Unhealthy),
            Outcome::Ignored,
        ];
        outcomes.extend(ClientErrorClass::ALL.map(Outcome::ClientError));
        outcomes.extend(FailureClass::ALL.map(Outcome::failure));
        let mut seen: Vec<usize> = outcomes.iter().map(Outcome::label_index).collect();
        seen.sort_unstable();
        assert_eq!(seen, (0..Outcome::LABELS.len()).collect::<Vec<_>>());
        assert_eq!(
            Outcome::failure(FailureClass::RateLimited).label(),
            "rate_limited"
        );
        assert_eq!(
            Outcome::ClientError(ClientErrorClass::ContentPolicy).label(),
            "content_policy"
        );
        assert_eq!(
            Outcome::Rejected(RejectReason::ForcedOpen).label(),
            "rejected"
        );
    }
}
