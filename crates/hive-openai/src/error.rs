//! [`OpenAiError`]: every way a provider call fails, each with its resilience class.

use std::time::{Duration, SystemTime};

use hive_core::{
    AsError, BoxError, ClientErrorClass, FailureClass, ModelId, Outcome, parse_retry_after,
};
use http::{HeaderMap, StatusCode};

/// Why a call to an OpenAI-compatible provider failed. Never carries the API key.
#[derive(Debug, thiserror::Error)]
pub enum OpenAiError {
    /// The provider answered with an error status.
    #[error("model `{model}` answered HTTP {status}{}: {message}", code.as_deref().map(|c| format!(" ({c})")).unwrap_or_default())]
    Status {
        /// The model asked.
        model: ModelId,
        /// The status.
        status: StatusCode,
        /// The provider's error code (`rate_limit_exceeded`, `context_length_exceeded` …).
        code: Option<String>,
        /// The provider's message (for a content-policy refusal, its reason).
        message: String,
        /// How long the provider asked to wait (`Retry-After`, `x-ratelimit-reset-*`).
        retry_after: Option<Duration>,
    },
    /// The provider could not be reached, or the connection broke before an answer.
    #[error("could not reach model `{model}`: {source}")]
    Connect {
        /// The model asked.
        model: ModelId,
        /// The transport's error.
        #[source]
        source: BoxError,
    },
    /// No answer (or no first token) within the limit.
    #[error("model `{model}` sent nothing within {limit:?}")]
    FirstToken {
        /// The model asked.
        model: ModelId,
        /// The limit.
        limit: Duration,
    },
    /// A stream sent no chunk within the idle limit.
    #[error("model `{model}` stalled: no chunk for {limit:?}")]
    Stalled {
        /// The model asked.
        model: ModelId,
        /// The limit.
        limit: Duration,
    },
    /// The whole answer took longer than the limit.
    #[error("model `{model}` took longer than {limit:?}")]
    TotalTime {
        /// The model asked.
        model: ModelId,
        /// The limit.
        limit: Duration,
    },
    /// A stream ended before its finish reason: the answer is truncated.
    #[error("model `{model}`'s stream ended without a finish reason after {chunks} chunks")]
    StreamCut {
        /// The model asked.
        model: ModelId,
        /// Chunks received.
        chunks: usize,
    },
    /// The answer could not be parsed.
    #[error("model `{model}` sent a malformed answer: {detail}")]
    Malformed {
        /// The model asked.
        model: ModelId,
        /// What was wrong.
        detail: String,
    },
    /// The answer came from another model than the one asked.
    #[error("asked model `{expected}`, answered by `{answered}`")]
    IdentityMismatch {
        /// The model asked.
        expected: ModelId,
        /// The model that answered.
        answered: String,
    },
}

impl OpenAiError {
    /// What this failure means for retry, breaker and fallback.
    pub fn outcome(&self) -> Outcome {
        match self {
            Self::Status {
                status,
                code,
                retry_after,
                ..
            } => status_outcome(*status, code.as_deref(), *retry_after),
            Self::Connect { .. } => Outcome::failure(FailureClass::Connect),
            Self::FirstToken { .. } | Self::TotalTime { .. } => {
                Outcome::failure(FailureClass::Timeout)
            }
            Self::Stalled { .. } => Outcome::failure(FailureClass::StreamStalled),
            Self::StreamCut { .. } => Outcome::failure(FailureClass::StreamCut),
            Self::Malformed { .. } => Outcome::failure(FailureClass::Malformed),
            Self::IdentityMismatch { .. } => Outcome::failure(FailureClass::IdentityMismatch),
        }
    }
}

impl AsError for OpenAiError {
    fn as_error(&self) -> &(dyn std::error::Error + 'static) {
        self
    }
}

/// Classifies a provider's error status and code.
pub(crate) fn status_outcome(
    status: StatusCode,
    code: Option<&str>,
    retry_after: Option<Duration>,
) -> Outcome {
    let failure = |class| Outcome::Failure { class, retry_after };
    match (status.as_u16(), code) {
        (429, _) => failure(FailureClass::RateLimited),
        (408 | 504, _) => failure(FailureClass::Timeout),
        (529, _) => failure(FailureClass::Overloaded),
        (500..=599, _) => failure(FailureClass::Unavailable),
        (401 | 403, _) => Outcome::ClientError(ClientErrorClass::Unauthorized),
        (_, Some("context_length_exceeded" | "string_above_max_length")) | (413, _) => {
            Outcome::ClientError(ClientErrorClass::ContextLengthExceeded)
        }
        (_, Some("content_policy_violation" | "content_filter")) | (451, _) => {
            Outcome::ClientError(ClientErrorClass::ContentPolicy)
        }
        _ => Outcome::ClientError(ClientErrorClass::BadRequest),
    }
}

/// The wait a provider asked for: `Retry-After`, else the longest `x-ratelimit-reset-*`.
pub(crate) fn retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    if let Some(value) = headers.get(http::header::RETRY_AFTER) {
        return parse_retry_after(value, now);
    }
    ["x-ratelimit-reset-requests", "x-ratelimit-reset-tokens"]
        .iter()
        .filter_map(|name| headers.get(*name)?.to_str().ok())
        .filter_map(parse_reset)
        .max()
}

/// Parses OpenAI's reset durations: `1s`, `6m0s`, `20ms`, `1h2m3.5s`.
pub(crate) fn parse_reset(text: &str) -> Option<Duration> {
    let mut total = Duration::ZERO;
    let mut rest = text.trim();
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let number: f64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let seconds = match &rest[..unit_len] {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 0.001,
            _ => return None,
        };
        rest = &rest[unit_len..];
        let part = number * seconds;
        if !part.is_finite() || part > hive_core::MAX_RETRY_AFTER.as_secs_f64() {
            return Some(hive_core::MAX_RETRY_AFTER);
        }
        total += Duration::from_secs_f64(part);
    }
    Some(total.min(hive_core::MAX_RETRY_AFTER))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reset_durations_parse_like_openai_writes_them() {
        assert_eq!(parse_reset("1s"), Some(Duration::from_secs(1)));
        assert_eq!(parse_reset("6m0s"), Some(Duration::from_secs(360)));
        assert_eq!(parse_reset("20ms"), Some(Duration::from_millis(20)));
        assert_eq!(
            parse_reset("1h2m3.5s"),
            Some(Duration::from_secs_f64(3723.5))
        );
        assert_eq!(parse_reset("soon"), None);
        assert_eq!(parse_reset(""), None);
        assert_eq!(parse_reset("9999999h"), Some(hive_core::MAX_RETRY_AFTER));
    }

    #[test]
    fn statuses_and_codes_map_to_classes() {
        let c = |s: u16, code| status_outcome(StatusCode::from_u16(s).unwrap(), code, None);
        assert_eq!(c(429, None), Outcome::failure(FailureClass::RateLimited));
        assert_eq!(c(529, None), Outcome::failure(FailureClass::Overloaded));
        assert_eq!(c(503, None), Outcome::failure(FailureClass::Unavailable));
        assert_eq!(c(504, None), Outcome::failure(FailureClass::Timeout));
        assert_eq!(
            c(400, Some("context_length_exceeded")),
            Outcome::ClientError(ClientErrorClass::ContextLengthExceeded)
        );
        assert_eq!(
            c(400, Some("content_policy_violation")),
            Outcome::ClientError(ClientErrorClass::ContentPolicy)
        );
        assert_eq!(
            c(401, None),
            Outcome::ClientError(ClientErrorClass::Unauthorized)
        );
        assert_eq!(
            c(400, None),
            Outcome::ClientError(ClientErrorClass::BadRequest)
        );
    }
}
