//! [`AlertError`] (building and managing alerts) and [`DeliveryError`] (one attempt to deliver
//! a notification). Neither ever carries a webhook URL, a password or a signing key: a
//! receiver's own words are kept out too, since a receiver may echo what it was sent.

use std::time::Duration;

use crate::alert::types::SilenceId;

/// What is wrong with an alert setting, or with a call to the silence API.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AlertError {
    /// A setting has a value it cannot take.
    #[error("invalid alert setting `{field}`: {problem}")]
    Invalid {
        /// The setting, as its builder method is named (`slack.webhook_url`, `group_wait`).
        field: &'static str,
        /// What is wrong with the value given (never the value itself when it is a secret).
        problem: String,
    },
    /// A rule notifies (or escalates to) a channel that was not configured.
    #[error("rule `{rule}` notifies channel `{channel}`, which is not configured")]
    UnknownChannel {
        /// The rule.
        rule: String,
        /// The channel it names.
        channel: String,
    },
    /// A rule is invalid.
    #[error("rule `{rule}`: {problem}")]
    InvalidRule {
        /// The rule.
        rule: String,
        /// What is wrong with it.
        problem: String,
    },
    /// Two rules, or two channels, have one name.
    #[error("two {what} are named `{name}`")]
    Duplicate {
        /// `rules` or `channels`.
        what: &'static str,
        /// The name.
        name: String,
    },
    /// A silence matches nothing in particular: it needs a rule, a model or a route.
    #[error("a silence needs at least one matcher: a rule, a model or a route")]
    EmptySilence,
    /// No silence has this id (it may have been removed long after it expired).
    #[error("no silence has id {0}")]
    UnknownSilence(SilenceId),
}

impl AlertError {
    pub(crate) fn invalid(field: &'static str, problem: impl Into<String>) -> Self {
        Self::Invalid {
            field,
            problem: problem.into(),
        }
    }

    pub(crate) fn rule(rule: &str, problem: impl Into<String>) -> Self {
        Self::InvalidRule {
            rule: rule.to_owned(),
            problem: problem.into(),
        }
    }
}

/// Why one attempt to deliver a notification failed.
///
/// [`is_permanent`](Self::is_permanent) errors are not retried (the receiver refused the
/// notification itself); the others are, through the channel's retry layer and breaker.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DeliveryError {
    /// The receiver answered with an HTTP status other than 2xx.
    #[error("the receiver answered HTTP {status}")]
    Status {
        /// The status.
        status: u16,
        /// How long the receiver asked us to wait (`Retry-After`), if it did.
        retry_after: Option<Duration>,
    },
    /// The receiver could not be reached, or the connection broke.
    #[error("could not reach the receiver: {reason}")]
    Connect {
        /// What failed (redacted: no URL, no credential).
        reason: String,
    },
    /// The attempt took longer than the channel's attempt timeout.
    #[error("the receiver did not answer within {0:?}")]
    Timeout(Duration),
    /// The SMTP server refused, or the SMTP dialogue failed.
    #[error("SMTP: {reason}")]
    Smtp {
        /// What failed (redacted: no credential).
        reason: String,
        /// Whether the server refused for good (a 5xx reply).
        permanent: bool,
    },
    /// The notification could not be turned into a message (an address, a header).
    #[error("the notification could not be built: {reason}")]
    Build {
        /// What could not be built.
        reason: String,
    },
}

impl DeliveryError {
    /// Whether another attempt cannot help: a refusal of the notification itself (HTTP 4xx
    /// other than 408 and 429, an SMTP 5xx reply, a message that cannot be built).
    pub fn is_permanent(&self) -> bool {
        match self {
            Self::Status { status, .. } => {
                (400..500).contains(status) && *status != 408 && *status != 429
            }
            Self::Smtp { permanent, .. } => *permanent,
            Self::Build { .. } => true,
            Self::Connect { .. } | Self::Timeout(_) => false,
        }
    }

    /// The receiver's wait hint, if it gave one.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Status { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}
