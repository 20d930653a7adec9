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
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ClientErrorClass {
    /// HTTP 400 and other 4xx not listed below.
    BadRequest,
    /// The prompt does not fit the model's context window; a larger model may take it.
    ContextLengthExceeded,
    /// The provider's content policy refused the request.
    ContentPolicy,
    /// HTTP 401/403: the credentials are wrong; an operator must act.
    Unauthorized,
}

impl ClientErrorClass {
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
