//! [`OpenAiError`]: every way a provider call fails, each with its resilience class.
//!
//! Provider text is untrusted: it never reaches `Display` (which says model, status and
//! class), and what is kept of it for debug logs is cut to a few hundred bytes with control
//! characters removed ([`untrusted_text`]).

use std::{
    fmt,
    time::{Duration, SystemTime},
};

use hive_core::{
    AsError, BoxError, ClientErrorClass, FailureClass, ModelId, Outcome, classify_status_hinted,
    parse_retry_after, status_carries_retry_after,
};
use http::{HeaderMap, StatusCode};

/// The most bytes kept of a provider's error message ([`OpenAiError::Status`]).
pub(crate) const MAX_PROVIDER_MESSAGE: usize = 512;
/// The most bytes kept of a provider's error code.
pub(crate) const MAX_PROVIDER_CODE: usize = 64;
/// The most bytes kept of the model name a provider answered as.
pub(crate) const MAX_ANSWERED_NAME: usize = 128;
/// The most bytes kept of a parse error's text (serde quotes pieces of the input in it).
pub(crate) const MAX_MALFORMED_DETAIL: usize = 256;

/// Why a call to an OpenAI-compatible provider failed. Never carries the API key.
///
/// `Display` never shows text the provider chose (a message, a body, a long model name): a
/// server may pass it on to its own callers, and a log line must stay one short line. The
/// provider's own words are kept, cut and cleaned, in [`Status::provider_message`]
/// (`OpenAiError::Status { provider_message, .. }`) for debug logs.
///
/// [`Status::provider_message`]: OpenAiError::Status::provider_message
#[derive(Debug, thiserror::Error)]
pub enum OpenAiError {
    /// The provider answered with an error status.
    #[error(
        "model `{model}` answered HTTP {} ({})",
        StatusText(*.status),
        outcome_label(&status_outcome(*.status, .code.as_deref(), None))
    )]
    Status {
        /// The model asked.
        model: ModelId,
        /// The status.
        status: StatusCode,
        /// The provider's error code (`rate_limit_exceeded`, `context_length_exceeded` …),
        /// at most 64 bytes, control characters removed.
        code: Option<String>,
        /// The provider's message (its error message, else the start of the error body; for
        /// a content-policy refusal, its reason). Untrusted: for debug logs, never shown by
        /// `Display`. At most 512 bytes, cut at a character boundary, control characters
        /// removed.
        provider_message: String,
        /// How long the provider asked to wait (`Retry-After`, else the longest
        /// `x-ratelimit-reset-*`), kept only on the statuses that carry a wait (429, 503,
        /// 529: [`hive_core::status_carries_retry_after`]).
        retry_after: Option<Duration>,
    },
    /// The provider could not be reached, or the connection broke before the answer's
    /// headers.
    #[error("could not reach model `{model}`")]
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
    /// The answer stopped after its headers and before its end: a stream that ended without
    /// a finish reason, or a connection that broke in the middle of a body (streamed or
    /// not). The answer is truncated.
    #[error("model `{model}`'s answer was cut short after {chunks} chunks")]
    StreamCut {
        /// The model asked.
        model: ModelId,
        /// Chunks received before the cut (0 for an unstreamed answer).
        chunks: usize,
        /// The transport's error when the connection broke; `None` when the provider ended
        /// the body cleanly but early.
        #[source]
        source: Option<BoxError>,
    },
    /// The answer could not be parsed.
    #[error("model `{model}` sent a malformed answer: {detail}")]
    Malformed {
        /// The model asked.
        model: ModelId,
        /// What was wrong (at most 256 bytes, control characters removed).
        detail: String,
    },
    /// Part of the answer was larger than its cap (see the `max_*_bytes` settings of
    /// [`OpenAiClientBuilder`](crate::OpenAiClientBuilder)): the provider is not trusted
    /// with unbounded memory. Classed as malformed.
    #[error("model `{model}` sent {what} larger than {limit} bytes")]
    TooLarge {
        /// The model asked.
        model: ModelId,
        /// What was too large: `"an event"`, `"a streamed answer"`, `"an answer"`,
        /// `"a model list"`.
        what: &'static str,
        /// The cap.
        limit: usize,
    },
    /// The provider sent an error event in the stream (`data: {"error": {"message", "type",
    /// "code"}}`, or `{"error": "…"}`), as OpenAI, vLLM, LiteLLM's proxy and this crate's
    /// own [`SseEncoder`](crate::server::SseEncoder) do when a stream fails after its
    /// headers. The answer is not whole, whatever came before.
    ///
    /// Its class comes from the event's code, else its type ([`OpenAiError::outcome`]): an
    /// HTTP status as code (LiteLLM writes `"500"`) goes through the status table; the
    /// class names this crate writes (`stream_cut`, `stream_stalled`, `rate_limited`,
    /// `context_length_exceeded` …) are read back as those classes; OpenAI's
    /// `rate_limit_exceeded`, `context_length_exceeded`, `content_policy_violation` … as
    /// theirs; then the type (`rate_limit_error`, `overloaded_error`,
    /// `invalid_request_error`, `authentication_error` …); anything else is a server error
    /// (unavailable).
    #[error(
        "model `{model}` sent an error event after {chunks} chunks ({})",
        outcome_label(&event_outcome(.code.as_deref(), .kind.as_deref()))
    )]
    ErrorEvent {
        /// The model asked.
        model: ModelId,
        /// Chunks received before the error event.
        chunks: usize,
        /// The event's `code` (a number is kept as its digits), at most 64 bytes, control
        /// characters removed.
        code: Option<String>,
        /// The event's `type`, at most 64 bytes, control characters removed.
        kind: Option<String>,
        /// The event's message. Untrusted: for debug logs, never shown by `Display`. At
        /// most 512 bytes, control characters removed.
        provider_message: String,
    },
    /// The answer came from another model than the one asked, or a stream named no model
    /// (see [`accept_unnamed_stream`](crate::OpenAiClientBuilder::accept_unnamed_stream)).
    #[error("asked model `{expected}`, {}", AnsweredAs(.answered.as_deref()))]
    IdentityMismatch {
        /// The model asked.
        expected: ModelId,
        /// The model that answered (at most 128 bytes, control characters removed); `None`
        /// when the answer named none (a stream: on its first chunk).
        answered: Option<String>,
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
            Self::Malformed { .. } | Self::TooLarge { .. } => {
                Outcome::failure(FailureClass::Malformed)
            }
            Self::IdentityMismatch { .. } => Outcome::failure(FailureClass::IdentityMismatch),
            Self::ErrorEvent { code, kind, .. } => event_outcome(code.as_deref(), kind.as_deref()),
        }
    }

    /// The HTTP status the provider answered with, for an [`OpenAiError::Status`].
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            Self::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// A malformed-answer error, its detail cut and cleaned (serde quotes the input).
    pub(crate) fn malformed(model: ModelId, detail: impl fmt::Display) -> Self {
        Self::Malformed {
            model,
            detail: untrusted_text(&detail.to_string(), MAX_MALFORMED_DETAIL),
        }
    }

    /// An error event received after `chunks` chunks: `error` is the event's `error` value
    /// (an object with `message`, `type` and `code`, or a string).
    pub(crate) fn error_event(model: ModelId, chunks: usize, error: &serde_json::Value) -> Self {
        let word = |value: &serde_json::Value| match value {
            serde_json::Value::String(text) => Some(untrusted_text(text, MAX_PROVIDER_CODE)),
            serde_json::Value::Number(number) => Some(number.to_string()),
            _ => None,
        };
        let message = error["message"].as_str().or_else(|| error.as_str());
        Self::ErrorEvent {
            model,
            chunks,
            code: word(&error["code"]),
            kind: word(&error["type"]),
            provider_message: untrusted_text(message.unwrap_or(""), MAX_PROVIDER_MESSAGE),
        }
    }

    /// An identity failure: `answered` is the name the provider gave (empty: none).
    pub(crate) fn identity_mismatch(expected: ModelId, answered: &str) -> Self {
        Self::IdentityMismatch {
            expected,
            answered: (!answered.is_empty()).then(|| untrusted_text(answered, MAX_ANSWERED_NAME)),
        }
    }
}

impl AsError for OpenAiError {
    fn as_error(&self) -> &(dyn std::error::Error + 'static) {
        self
    }
}

/// A status as `429 Too Many Requests`, or `529` alone when it has no standard reason
/// (`http` would write `529 <unknown status code>`).
struct StatusText(StatusCode);

impl fmt::Display for StatusText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.canonical_reason() {
            Some(reason) => write!(f, "{} {reason}", self.0.as_u16()),
            None => write!(f, "{}", self.0.as_u16()),
        }
    }
}

/// The end of an identity failure's message: who answered.
struct AnsweredAs<'a>(Option<&'a str>);

impl fmt::Display for AnsweredAs<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(name) => write!(f, "answered by `{name}`"),
            None => f.write_str("but the answer named no model"),
        }
    }
}

/// The short name of an outcome's class, for messages: `rate_limited`, `bad_request` …
fn outcome_label(outcome: &Outcome) -> &'static str {
    match outcome {
        Outcome::Failure { class, .. } => class.as_str(),
        Outcome::ClientError(class) => class.as_str(),
        Outcome::Success => "success",
        Outcome::Rejected(_) => "rejected",
        Outcome::Ignored => "ignored",
    }
}

/// The class a provider's error code gives a client error, when the status alone does not
/// say it (OpenAI answers both with a plain 400).
fn code_class(code: &str) -> Option<ClientErrorClass> {
    match code {
        "context_length_exceeded" | "string_above_max_length" => {
            Some(ClientErrorClass::ContextLengthExceeded)
        }
        "content_policy_violation" | "content_filter" => Some(ClientErrorClass::ContentPolicy),
        _ => None,
    }
}

/// The class of an error event (see [`OpenAiError::ErrorEvent`]): by its code, else its
/// type, else a server error.
pub(crate) fn event_outcome(code: Option<&str>, kind: Option<&str>) -> Outcome {
    if let Some(outcome) = code.and_then(code_outcome) {
        return outcome;
    }
    match kind.unwrap_or("") {
        "rate_limit_error" | "requests" | "tokens" => Outcome::failure(FailureClass::RateLimited),
        "overloaded_error" => Outcome::failure(FailureClass::Overloaded),
        "timeout" | "timeout_error" => Outcome::failure(FailureClass::Timeout),
        "invalid_request_error" => Outcome::ClientError(ClientErrorClass::BadRequest),
        "authentication_error" | "permission_error" => {
            Outcome::ClientError(ClientErrorClass::Unauthorized)
        }
        _ => Outcome::failure(FailureClass::Unavailable),
    }
}

/// The class an error event's code names, if it names one: an HTTP error status, one of
/// hive-core's class names, or a provider's code.
fn code_outcome(code: &str) -> Option<Outcome> {
    if let Ok(status) = code.parse::<u16>().map(StatusCode::from_u16) {
        return status
            .ok()
            .filter(|s| s.is_client_error() || s.is_server_error())
            .map(|s| status_outcome(s, None, None));
    }
    if let Some(class) = FailureClass::ALL.into_iter().find(|c| c.as_str() == code) {
        return Some(Outcome::failure(class));
    }
    if let Some(class) = ClientErrorClass::ALL
        .into_iter()
        .find(|c| c.as_str() == code)
    {
        return Some(Outcome::ClientError(class));
    }
    match code {
        "rate_limit_exceeded" | "insufficient_quota" => {
            Some(Outcome::failure(FailureClass::RateLimited))
        }
        "server_is_overloaded" | "overloaded" => Some(Outcome::failure(FailureClass::Overloaded)),
        "invalid_api_key" => Some(Outcome::ClientError(ClientErrorClass::Unauthorized)),
        _ => code_class(code).map(Outcome::ClientError),
    }
}

/// Classifies a provider's error status and code: hive-core's one status table
/// ([`classify_status_hinted`], which also keeps the wait hint only where it counts), with
/// the provider's code refining a client error (a 400 that is a context-length or
/// content-policy refusal). Credentials refused (401/403) stay unauthorized whatever the
/// code. A redirect (3xx, which the client does not follow) is a bad request: the base URL
/// is wrong, and the model gave no answer.
pub(crate) fn status_outcome(
    status: StatusCode,
    code: Option<&str>,
    retry_after: Option<Duration>,
) -> Outcome {
    if !status.is_client_error() && !status.is_server_error() {
        return Outcome::ClientError(ClientErrorClass::BadRequest);
    }
    match classify_status_hinted(status, retry_after) {
        Outcome::ClientError(class) if class != ClientErrorClass::Unauthorized => {
            Outcome::ClientError(code.and_then(code_class).unwrap_or(class))
        }
        outcome => outcome,
    }
}

/// The wait a provider asked for with an error status: `Retry-After`, else the longest
/// `x-ratelimit-reset-*`; only on the statuses that carry a wait
/// ([`status_carries_retry_after`]), `None` on every other.
pub(crate) fn wait_hint(
    status: StatusCode,
    headers: &HeaderMap,
    now: SystemTime,
) -> Option<Duration> {
    if !status_carries_retry_after(status) {
        return None;
    }
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

/// Text from the provider, made safe to keep in an error: whitespace controls (newlines,
/// tabs) become spaces, other control characters and bidirectional overrides are removed,
/// and the result is cut to at most `max_bytes` at a character boundary.
pub(crate) fn untrusted_text(text: &str, max_bytes: usize) -> String {
    let mut clean = String::with_capacity(text.len().min(max_bytes));
    for c in text.chars() {
        let c = match c {
            '\n' | '\r' | '\t' => ' ',
            c if c.is_control() || is_bidi_control(c) => continue,
            c => c,
        };
        if clean.len() + c.len_utf8() > max_bytes {
            break;
        }
        clean.push(c);
    }
    clean
}

/// Characters that reorder text on screen (log spoofing), though not controls to Unicode.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}')
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
            c(400, Some("string_above_max_length")),
            Outcome::ClientError(ClientErrorClass::ContextLengthExceeded)
        );
        assert_eq!(
            c(400, Some("content_policy_violation")),
            Outcome::ClientError(ClientErrorClass::ContentPolicy)
        );
        assert_eq!(
            c(400, Some("content_filter")),
            Outcome::ClientError(ClientErrorClass::ContentPolicy)
        );
        assert_eq!(
            c(401, Some("content_filter")),
            Outcome::ClientError(ClientErrorClass::Unauthorized),
            "refused credentials stay unauthorized"
        );
        assert_eq!(
            c(429, Some("context_length_exceeded")),
            Outcome::failure(FailureClass::RateLimited),
            "codes refine client errors only"
        );
        assert_eq!(
            c(500, Some("content_filter")),
            Outcome::failure(FailureClass::Unavailable)
        );
        assert_eq!(
            c(400, None),
            Outcome::ClientError(ClientErrorClass::BadRequest)
        );
        assert_eq!(
            c(302, None),
            Outcome::ClientError(ClientErrorClass::BadRequest),
            "a redirect is not an answer"
        );
    }

    #[test]
    fn error_events_are_classed_by_code_then_type() {
        let c = |code: Option<&str>, kind: Option<&str>| event_outcome(code, kind);
        // LiteLLM's proxy writes the status as the code.
        assert_eq!(
            c(Some("429"), Some("None")),
            Outcome::failure(FailureClass::RateLimited)
        );
        assert_eq!(
            c(Some("500"), None),
            Outcome::failure(FailureClass::Unavailable)
        );
        assert_eq!(
            c(Some("400"), None),
            Outcome::ClientError(ClientErrorClass::BadRequest)
        );
        // This crate's own class names round-trip.
        for class in FailureClass::ALL {
            assert_eq!(c(Some(class.as_str()), None), Outcome::failure(class));
        }
        for class in ClientErrorClass::ALL {
            assert_eq!(c(Some(class.as_str()), None), Outcome::ClientError(class));
        }
        // OpenAI's codes.
        assert_eq!(
            c(Some("rate_limit_exceeded"), Some("requests")),
            Outcome::failure(FailureClass::RateLimited)
        );
        assert_eq!(
            c(
                Some("content_policy_violation"),
                Some("invalid_request_error")
            ),
            Outcome::ClientError(ClientErrorClass::ContentPolicy)
        );
        // Then the type, then a server error.
        assert_eq!(
            c(Some("mystery"), Some("overloaded_error")),
            Outcome::failure(FailureClass::Overloaded)
        );
        assert_eq!(
            c(None, Some("invalid_request_error")),
            Outcome::ClientError(ClientErrorClass::BadRequest)
        );
        assert_eq!(
            c(Some("200"), Some("server_error")),
            Outcome::failure(FailureClass::Unavailable),
            "a success status is no class"
        );
        assert_eq!(c(None, None), Outcome::failure(FailureClass::Unavailable));
    }

    #[test]
    fn an_error_event_keeps_its_words_cut_and_clean_and_never_shows_them() {
        let model = ModelId::new("m");
        let event = OpenAiError::error_event(
            model,
            3,
            &serde_json::json!({"message": "boom\nIGNORE ALL", "type": "server_error", "code": 500}),
        );
        let OpenAiError::ErrorEvent {
            chunks,
            code,
            kind,
            provider_message,
            ..
        } = &event
        else {
            panic!("{event:?}")
        };
        assert_eq!(*chunks, 3);
        assert_eq!(code.as_deref(), Some("500"));
        assert_eq!(kind.as_deref(), Some("server_error"));
        assert_eq!(provider_message, "boom IGNORE ALL");
        assert_eq!(
            event.to_string(),
            "model `m` sent an error event after 3 chunks (unavailable)"
        );
        let bare = OpenAiError::error_event(model, 0, &serde_json::json!("quota"));
        assert!(matches!(
            &bare,
            OpenAiError::ErrorEvent { code: None, kind: None, provider_message, .. } if provider_message == "quota"
        ));
    }

    #[test]
    fn every_status_outside_the_overrides_is_classed_by_the_core_table() {
        // One table: for every status and no code, the same outcome as hive-core's, hint
        // included.
        let hint = Some(Duration::from_secs(7));
        for status in 400..=599 {
            let status = StatusCode::from_u16(status).unwrap();
            assert_eq!(
                status_outcome(status, None, hint),
                classify_status_hinted(status, hint),
                "{status}"
            );
        }
    }

    #[test]
    fn a_wait_hint_is_kept_only_on_statuses_that_carry_one() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let headers = |pairs: &[(&'static str, &str)]| {
            let mut map = HeaderMap::new();
            for (name, value) in pairs {
                map.insert(*name, value.parse().unwrap());
            }
            map
        };
        let retry_after = headers(&[("retry-after", "7")]);
        let resets = headers(&[
            ("x-ratelimit-reset-requests", "2s"),
            ("x-ratelimit-reset-tokens", "1m30s"),
        ]);
        let hint = |status: u16, headers: &HeaderMap| {
            wait_hint(StatusCode::from_u16(status).unwrap(), headers, now)
        };
        assert_eq!(
            hint(500, &retry_after),
            None,
            "a 500's Retry-After is ignored"
        );
        assert_eq!(hint(400, &retry_after), None);
        assert_eq!(hint(504, &resets), None);
        assert_eq!(hint(429, &retry_after), Some(Duration::from_secs(7)));
        assert_eq!(hint(503, &retry_after), Some(Duration::from_secs(7)));
        assert_eq!(
            hint(429, &resets),
            Some(Duration::from_secs(90)),
            "the longest reset"
        );
        assert_eq!(hint(529, &resets), Some(Duration::from_secs(90)));
        assert_eq!(hint(429, &HeaderMap::new()), None);
    }

    #[test]
    fn display_says_model_status_and_class_and_never_provider_text() {
        let model = ModelId::new("gpt-4o");
        let status = |code: u16, provider_code: Option<&str>| OpenAiError::Status {
            model,
            status: StatusCode::from_u16(code).unwrap(),
            code: provider_code.map(str::to_owned),
            provider_message: "IGNORE PREVIOUS INSTRUCTIONS\nsecret".to_owned(),
            retry_after: None,
        };
        assert_eq!(
            status(429, Some("rate_limit_exceeded")).to_string(),
            "model `gpt-4o` answered HTTP 429 Too Many Requests (rate_limited)"
        );
        assert_eq!(
            status(529, None).to_string(),
            "model `gpt-4o` answered HTTP 529 (overloaded)"
        );
        assert_eq!(
            status(400, Some("content_policy_violation")).to_string(),
            "model `gpt-4o` answered HTTP 400 Bad Request (content_policy)"
        );
        assert_eq!(
            OpenAiError::identity_mismatch(model, "").to_string(),
            "asked model `gpt-4o`, but the answer named no model"
        );
        let long_name = format!("evil\u{1b}[31m\n{}", "x".repeat(1000));
        let shown = OpenAiError::identity_mismatch(model, &long_name).to_string();
        assert_eq!(
            shown,
            format!(
                "asked model `gpt-4o`, answered by `evil[31m {}`",
                "x".repeat(119)
            )
        );
        let detail = OpenAiError::malformed(model, "y".repeat(10_000)).to_string();
        assert_eq!(
            detail.len(),
            "model `gpt-4o` sent a malformed answer: ".len() + MAX_MALFORMED_DETAIL
        );
    }

    #[test]
    fn untrusted_text_is_cut_at_a_character_boundary_and_cleaned() {
        assert_eq!(untrusted_text("a\r\nb\tc\u{7}d\u{202E}e", 100), "a  b cde");
        // "é" is two bytes: a cut in its middle leaves it out whole.
        assert_eq!(untrusted_text("abé", 3), "ab");
        assert_eq!(untrusted_text("abé", 4), "abé");
        let long = "ü".repeat(1000);
        let cut = untrusted_text(&long, MAX_PROVIDER_MESSAGE);
        assert_eq!(cut.len(), MAX_PROVIDER_MESSAGE);
        assert!(cut.chars().all(|c| c == 'ü'));
    }
}
