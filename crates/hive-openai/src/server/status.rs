//! [`GatewayError`]: the one table from "no answer" to an HTTP status, OpenAI's error JSON
//! and headers.

use std::{error::Error, fmt, time::Duration};

use bytes::Bytes;
use hive_core::{ClientErrorClass, FailureClass, Outcome, RejectReason, Rejected, classify_error};
use http::{HeaderMap, HeaderValue, Response, StatusCode, header};
use http_body_util::Full;
use serde::Serialize;

use crate::{ContinuationError, OpenAiError, error::untrusted_text};

/// The most bytes of a route (or model) name kept in a message: the name comes from the
/// caller's request.
const MAX_NAME: usize = 128;
/// The most bytes of an invalid request's detail kept in a message.
const MAX_DETAIL: usize = 256;
/// The most bytes of a parameter's name.
const MAX_PARAM: usize = 64;

/// What went wrong, and so the status, `type` and `code` of the answer. The table:
///
/// | Kind | Status | `type` | `code` | Headers |
/// |---|---|---|---|---|
/// | [`Unauthorized`](Self::Unauthorized) | 401 | `invalid_request_error` | `invalid_api_key` | `WWW-Authenticate: Bearer` |
/// | [`InvalidRequest`](Self::InvalidRequest) | 400 | `invalid_request_error` | – (`param` names the field) | |
/// | [`ModelNotFound`](Self::ModelNotFound) | 404 | `invalid_request_error` | `model_not_found` | |
/// | [`TooLarge`](Self::TooLarge) | 413 | `invalid_request_error` | `request_too_large` | |
/// | [`Refused`](Self::Refused) | the model's 400, 413, 415, 422 or 451; else 400 | `invalid_request_error` | `context_length_exceeded`, `content_policy_violation`, – | |
/// | [`CoolingDown`](Self::CoolingDown) | 429 | `rate_limit_error` | `rate_limit_exceeded` | `Retry-After`: the shortest known wait |
/// | [`Unavailable`](Self::Unavailable) | 503 | `server_error` | `model_unavailable` | `Retry-After` when a model's return is known |
/// | [`UpstreamUnauthorized`](Self::UpstreamUnauthorized) | 502 | `server_error` | `upstream_unauthorized` | |
/// | [`DeadlineExceeded`](Self::DeadlineExceeded) | 504 | `server_error` | `deadline_exceeded` | |
/// | [`StreamFailed`](Self::StreamFailed) | in-band event (502 if ever sent as a status) | `server_error` | the class: `stream_cut`, `stream_stalled`, `timeout` … | |
///
/// Every answer has `Content-Type: application/json` and OpenAI's shape,
/// `{"error": {"message", "type", "param", "code"}}`. Its message names the class and the
/// route only: never a provider's words, a model's URL or a key.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The gateway's own API key is missing or wrong (not a provider's: see
    /// [`UpstreamUnauthorized`](Self::UpstreamUnauthorized)).
    Unauthorized,
    /// The request is not a valid chat-completion request (the gateway's own checks).
    InvalidRequest {
        /// What is wrong (cut to 256 bytes, control characters removed).
        detail: String,
        /// The field at fault, when one is.
        param: Option<String>,
    },
    /// The request's `model` names neither a route nor a model.
    ModelNotFound,
    /// The request body is larger than the gateway accepts.
    TooLarge {
        /// The limit, in bytes.
        limit: usize,
    },
    /// A model refused the request itself: the prompt does not fit its context, its
    /// content policy refused it, or it is invalid for it. Passed on with the model's own
    /// status when it is one that says the request's content is wrong (400, 413, 415, 422,
    /// 451), else 400. In a stream that already started (a content filter stopping an answer),
    /// the in-band event.
    Refused {
        /// Why.
        class: ClientErrorClass,
        /// The status answered.
        status: StatusCode,
    },
    /// Every model of the route is rate limited or cooling down at its provider's request
    /// (a `Retry-After` still running, a breaker open inside one): come back later.
    CoolingDown,
    /// No model of the route could answer: down, open breakers, failures.
    Unavailable,
    /// The providers refused the gateway's own credentials: an operator must act; the
    /// caller's request is not at fault.
    UpstreamUnauthorized,
    /// The request's deadline passed before any model answered.
    DeadlineExceeded,
    /// A stream already committed to the caller (status 200 and chunks sent) failed, and
    /// was not continued: only ever sent in-band ([`GatewayError::sse_event`]), so that
    /// the caller never takes the truncated answer for a whole one.
    StreamFailed {
        /// The class of the failure that cut it (never a continuation's refusal).
        class: FailureClass,
        /// Chunks the caller received before it.
        chunks: usize,
    },
}

impl ErrorKind {
    /// The HTTP status of the answer.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::InvalidRequest { .. } => StatusCode::BAD_REQUEST,
            Self::ModelNotFound => StatusCode::NOT_FOUND,
            Self::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Refused { status, .. } => *status,
            Self::CoolingDown => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::UpstreamUnauthorized | Self::StreamFailed { .. } => StatusCode::BAD_GATEWAY,
            Self::DeadlineExceeded => StatusCode::GATEWAY_TIMEOUT,
        }
    }

    /// OpenAI's `type` of the error.
    pub fn error_type(&self) -> &'static str {
        match self {
            Self::Unauthorized
            | Self::InvalidRequest { .. }
            | Self::ModelNotFound
            | Self::TooLarge { .. }
            | Self::Refused { .. } => "invalid_request_error",
            Self::CoolingDown => "rate_limit_error",
            Self::Unavailable
            | Self::UpstreamUnauthorized
            | Self::DeadlineExceeded
            | Self::StreamFailed { .. } => "server_error",
        }
    }

    /// OpenAI's `code` of the error, when it has one.
    pub fn code(&self) -> Option<&'static str> {
        match self {
            Self::Unauthorized => Some("invalid_api_key"),
            Self::InvalidRequest { .. } => None,
            Self::ModelNotFound => Some("model_not_found"),
            Self::TooLarge { .. } => Some("request_too_large"),
            Self::Refused { class, .. } => match class {
                ClientErrorClass::ContextLengthExceeded => Some("context_length_exceeded"),
                ClientErrorClass::ContentPolicy => Some("content_policy_violation"),
                ClientErrorClass::BadRequest | ClientErrorClass::Unauthorized => None,
            },
            Self::CoolingDown => Some("rate_limit_exceeded"),
            Self::Unavailable => Some("model_unavailable"),
            Self::UpstreamUnauthorized => Some("upstream_unauthorized"),
            Self::DeadlineExceeded => Some("deadline_exceeded"),
            Self::StreamFailed { class, .. } => Some(class.as_str()),
        }
    }
}

/// One attempt of a route that gave no answer, as the router recorded it
/// (`hive_fallback::FailedAttempt` gives `outcome` and `status`), and what the gateway knows
/// of the model's cooldown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RouteAttempt {
    /// What happened: a failure (with the provider's wait hint, if any), a client error, a
    /// rejection (a model skipped: open breaker, unhealthy).
    pub outcome: Outcome,
    /// The HTTP status the model answered with, when known.
    pub status: Option<StatusCode>,
    /// How long the model stays cooling down at its provider's request, when the gateway
    /// knows it: a `Retry-After` still running, as the model's breaker or the gateway's own
    /// cooldown table has it. `Some` marks the model as cooling down (a reason for 429)
    /// rather than down (503). Needed for models the router skipped (their outcome is a
    /// bare rejection) and for rate limits that came without a hint.
    pub cooldown: Option<Duration>,
}

impl RouteAttempt {
    /// An attempt with this outcome and status, and no cooldown known.
    pub fn new(outcome: Outcome, status: Option<StatusCode>) -> Self {
        Self {
            outcome,
            status,
            cooldown: None,
        }
    }

    /// The same attempt, the model cooling down for `wait` more (`None`: not known to be).
    #[must_use]
    pub fn cooldown(mut self, wait: Option<Duration>) -> Self {
        self.cooldown = wait;
        self
    }

    /// The wait this attempt says the model asked for, when it is cooling down at its
    /// provider's request: a rate limit (its hint, else the gateway's cooldown, else
    /// unknown), a 503 or 529 that came with a hint, or a skipped model the gateway knows
    /// to be cooling down. `None` when the model is not cooling down; `Some(None)` when it
    /// is, for a time not known.
    fn cooling(&self) -> Option<Option<Duration>> {
        match self.outcome {
            Outcome::Failure {
                class: FailureClass::RateLimited,
                retry_after,
            } => Some(retry_after.or(self.cooldown)),
            Outcome::Failure {
                class: FailureClass::Overloaded | FailureClass::Unavailable,
                retry_after: Some(wait),
            } => Some(Some(wait)),
            Outcome::Rejected(_) | Outcome::Failure { .. } => self.cooldown.map(Some),
            _ => None,
        }
    }

    /// When the model takes calls again, if anything says: a cooldown, or the rest of an
    /// open breaker's break.
    fn known_wait(&self) -> Option<Duration> {
        match self.outcome {
            Outcome::Rejected(RejectReason::CircuitOpen { retry_in }) => {
                Some(self.cooldown.map_or(retry_in, |c| c.min(retry_in)))
            }
            _ => self.cooling().flatten(),
        }
    }
}

/// An answer for a request that got none: its [`ErrorKind`] (so its status, `type` and
/// `code`), the route, and the wait to tell the caller. Built from what the router returned
/// ([`exhausted`](Self::exhausted), [`deadline_exceeded`](Self::deadline_exceeded),
/// [`from_error`](Self::from_error)), from the gateway's own checks
/// ([`unauthorized`](Self::unauthorized), [`invalid_request`](Self::invalid_request),
/// [`model_not_found`](Self::model_not_found), [`too_large`](Self::too_large)), or from a
/// committed stream that failed ([`stream_failed`](Self::stream_failed), sent in-band).
///
/// The message says the class and the route, never a provider's words, a URL or a key;
/// the route (it comes from the request) is cut to 128 bytes and cleaned of control
/// characters. `Display` is the message.
///
/// From a router's error (hive-fallback's `FallbackError`; this crate does not depend on
/// the router):
///
/// ```text
/// match error.downcast_ref::<FallbackError>() {
///     Some(FallbackError::DeadlineExceeded { .. }) => GatewayError::deadline_exceeded(route),
///     Some(FallbackError::Exhausted { attempts }) => GatewayError::exhausted(
///         route,
///         attempts.iter().map(|a| {
///             RouteAttempt::new(a.outcome, a.status).cooldown(cooldown_of(a.model))
///         }),
///     ),
///     // The error of the model whose outcome the policy returned (a 400, a rejection).
///     None => GatewayError::from_error(route, &*error),
/// }
/// ```
///
/// where `cooldown_of(model)` is what the gateway knows of the model's provider-requested
/// wait (the time left of a `Retry-After`, kept per model, or read from its breaker), or
/// `None`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GatewayError {
    kind: ErrorKind,
    route: Option<String>,
    retry_after: Option<Duration>,
    /// The outcome labels seen among the attempts ([`Outcome::label_index`] bits), for the
    /// message of [`ErrorKind::Unavailable`].
    seen: u32,
}

impl GatewayError {
    /// An error of this kind, for no route and with no wait.
    pub fn new(kind: ErrorKind) -> Self {
        Self {
            kind,
            route: None,
            retry_after: None,
            seen: 0,
        }
    }

    /// The same error, about `route` (the name the caller asked for).
    #[must_use]
    pub fn route(mut self, route: &str) -> Self {
        self.route = Some(untrusted_text(route, MAX_NAME));
        self
    }

    /// 401: the gateway's own API key is missing or wrong.
    pub fn unauthorized() -> Self {
        Self::new(ErrorKind::Unauthorized)
    }

    /// 400: the request is not valid; `detail` says why (it may quote the caller's own
    /// request; it is cut to 256 bytes and cleaned), `param` names the field.
    pub fn invalid_request(detail: &str, param: Option<&str>) -> Self {
        Self::new(ErrorKind::InvalidRequest {
            detail: untrusted_text(detail, MAX_DETAIL),
            param: param.map(|p| untrusted_text(p, MAX_PARAM)),
        })
    }

    /// 404: `name` is neither a route nor a model.
    pub fn model_not_found(name: &str) -> Self {
        Self::new(ErrorKind::ModelNotFound).route(name)
    }

    /// 413: the body is larger than `limit` bytes.
    pub fn too_large(limit: usize) -> Self {
        Self::new(ErrorKind::TooLarge { limit })
    }

    /// 504: the deadline of a request to `route` passed.
    pub fn deadline_exceeded(route: &str) -> Self {
        Self::new(ErrorKind::DeadlineExceeded).route(route)
    }

    /// Every model of `route` was tried or skipped and none answered. In this order:
    ///
    /// 1. every attempt a client error of the request itself (not credentials): the model
    ///    refused it ([`ErrorKind::Refused`], the first such attempt's class and status);
    /// 2. some attempts cooling down ([`RouteAttempt::cooldown`], a rate limit, a 503 or 529
    ///    with a wait) and every other one a refusal of the request (those models cannot
    ///    take it anyway): 429 with `Retry-After`, the shortest wait known among those
    ///    cooling down (none known, no header);
    /// 3. some attempts refused the gateway's credentials and every other one the request:
    ///    502;
    /// 4. otherwise (no attempt at all included): 503, with `Retry-After` when some model's
    ///    return is known (a cooldown, the rest of an open breaker's break): the shortest.
    ///
    /// Waits are written in whole seconds, rounded up, at least 1.
    pub fn exhausted(route: &str, attempts: impl IntoIterator<Item = RouteAttempt>) -> Self {
        let (mut total, mut refusals, mut cooling, mut unauthorized) = (0usize, 0, 0, 0);
        let mut refused: Option<(ClientErrorClass, StatusCode)> = None;
        let (mut cooling_wait, mut known_wait) = (None, None);
        let mut seen = 0u32;
        for attempt in attempts {
            total += 1;
            seen |= 1 << attempt.outcome.label_index();
            match attempt.outcome {
                Outcome::ClientError(ClientErrorClass::Unauthorized) => unauthorized += 1,
                Outcome::ClientError(class) => {
                    refusals += 1;
                    refused.get_or_insert((class, refused_status(attempt.status)));
                }
                _ => {}
            }
            if let Some(wait) = attempt.cooling() {
                cooling += 1;
                cooling_wait = shortest(cooling_wait, wait);
            }
            known_wait = shortest(known_wait, attempt.known_wait());
        }
        let (kind, retry_after) = match refused {
            Some((class, status)) if refusals == total => {
                (ErrorKind::Refused { class, status }, None)
            }
            _ if cooling > 0 && cooling + refusals == total => {
                (ErrorKind::CoolingDown, cooling_wait)
            }
            _ if unauthorized > 0 && unauthorized + refusals == total => {
                (ErrorKind::UpstreamUnauthorized, None)
            }
            _ => (ErrorKind::Unavailable, known_wait),
        };
        Self {
            retry_after,
            seen,
            ..Self::new(kind).route(route)
        }
    }

    /// The error a router returned as it was (the model's own, when the fallback policy
    /// returns it: a 400, a content-policy refusal, a rejection when rejections do not fall
    /// back), found in the error's cause chain: an [`OpenAiError`] by its outcome and
    /// status, a [`Rejected`] by its reason, anything else by hive-core's
    /// [`classify_error`]. Mapped as one attempt by [`exhausted`](Self::exhausted).
    pub fn from_error(route: &str, error: &(dyn Error + 'static)) -> Self {
        let attempt = cause::<OpenAiError>(error)
            .map(|e| RouteAttempt::new(e.outcome(), e.status()))
            .or_else(|| {
                cause::<Rejected>(error)
                    .map(|r| RouteAttempt::new(Outcome::Rejected(r.reason), None))
            })
            .unwrap_or_else(|| RouteAttempt::new(classify_error(error), None));
        Self::exhausted(route, [attempt])
    }

    /// The in-band error of a stream already committed to the caller that failed after
    /// `chunks` chunks: [`ErrorKind::StreamFailed`] with the class of the failure that cut
    /// it (for a [`ContinuationError::Cut`], the cut, never the continuation's refusal), or
    /// [`ErrorKind::Refused`] when the model stopped it as a client error (a content filter
    /// mid-answer). Send it with [`sse_event`](Self::sse_event).
    pub fn stream_failed(
        route: Option<&str>,
        chunks: usize,
        error: &(dyn Error + 'static),
    ) -> Self {
        let outcome = match cause::<ContinuationError>(error) {
            Some(ContinuationError::Cut { cut, .. }) => cut.outcome(),
            Some(ContinuationError::Failed(error)) => error.outcome(),
            None => cause::<OpenAiError>(error)
                .map_or_else(|| classify_error(error), OpenAiError::outcome),
        };
        let kind = match outcome {
            Outcome::ClientError(class) if class != ClientErrorClass::Unauthorized => {
                ErrorKind::Refused {
                    class,
                    status: StatusCode::BAD_REQUEST,
                }
            }
            Outcome::Failure { class, .. } => ErrorKind::StreamFailed { class, chunks },
            _ => ErrorKind::StreamFailed {
                class: FailureClass::StreamCut,
                chunks,
            },
        };
        let error = Self::new(kind);
        match route {
            Some(route) => error.route(route),
            None => error,
        }
    }

    /// What went wrong.
    pub fn kind(&self) -> &ErrorKind {
        &self.kind
    }

    /// The HTTP status of the answer.
    pub fn status(&self) -> StatusCode {
        self.kind.status()
    }

    /// The wait sent as `Retry-After` (429 and 503 only).
    pub fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }

    /// The headers of the answer: `Content-Type: application/json`; `Retry-After` in
    /// whole seconds (rounded up, at least 1) when a wait is known; `WWW-Authenticate:
    /// Bearer` on a 401.
    pub fn headers(&self) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if let Some(wait) = self.retry_after {
            headers.insert(
                header::RETRY_AFTER,
                HeaderValue::from(retry_after_seconds(wait)),
            );
        }
        if self.kind == ErrorKind::Unauthorized {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        headers
    }

    /// The message: the class and the route, nothing a provider said.
    pub fn message(&self) -> String {
        self.to_string()
    }

    /// The field at fault, for an invalid request.
    pub fn param(&self) -> Option<&str> {
        match &self.kind {
            ErrorKind::InvalidRequest { param, .. } => param.as_deref(),
            _ => None,
        }
    }

    /// The body: `{"error": {"message", "type", "param", "code"}}`.
    pub fn body(&self) -> Bytes {
        Bytes::from(self.json())
    }

    /// The in-band event of a stream that fails after its first chunk:
    /// `data: {"error": {…}}` and a blank line, as OpenAI and LiteLLM's proxy send it. A
    /// stream that carries it must end right after, without `data: [DONE]`.
    pub fn sse_event(&self) -> Bytes {
        Bytes::from(format!("data: {}\n\n", self.json()))
    }

    /// The whole answer: status, headers and body.
    pub fn into_response(self) -> Response<Full<Bytes>> {
        let mut response = Response::new(Full::new(self.body()));
        *response.status_mut() = self.status();
        *response.headers_mut() = self.headers();
        response
    }

    fn json(&self) -> String {
        #[derive(Serialize)]
        struct Body<'a> {
            error: Object<'a>,
        }
        #[derive(Serialize)]
        struct Object<'a> {
            message: String,
            #[serde(rename = "type")]
            kind: &'static str,
            param: Option<&'a str>,
            code: Option<&'static str>,
        }
        let body = Body {
            error: Object {
                message: self.message(),
                kind: self.kind.error_type(),
                param: self.param(),
                code: self.kind.code(),
            },
        };
        // Strings and options only: serialising cannot fail.
        serde_json::to_string(&body).unwrap_or_default()
    }
}

impl fmt::Display for GatewayError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let route = Route(self.route.as_deref());
        match &self.kind {
            ErrorKind::Unauthorized => f.write_str("missing or invalid API key"),
            ErrorKind::InvalidRequest { detail, .. } => write!(f, "invalid request: {detail}"),
            ErrorKind::ModelNotFound => match &self.route {
                Some(name) => write!(f, "no route or model is named `{name}`"),
                None => f.write_str("no such route or model"),
            },
            ErrorKind::TooLarge { limit } => {
                write!(f, "the request body is larger than {limit} bytes")
            }
            ErrorKind::Refused { class, .. } => {
                write!(f, "a model of {route} refused the request ({class})")
            }
            ErrorKind::CoolingDown => {
                write!(f, "every model of {route} is rate limited or cooling down")?;
                if let Some(wait) = self.retry_after {
                    write!(f, "; retry after {} s", retry_after_seconds(wait))?;
                }
                Ok(())
            }
            ErrorKind::Unavailable => {
                write!(f, "no model of {route} is available")?;
                let mut labels = Outcome::LABELS
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| self.seen & (1 << i) != 0)
                    .map(|(_, label)| *label);
                if let Some(first) = labels.next() {
                    write!(f, " ({first}")?;
                    for label in labels {
                        write!(f, ", {label}")?;
                    }
                    f.write_str(")")?;
                }
                Ok(())
            }
            ErrorKind::UpstreamUnauthorized => {
                write!(
                    f,
                    "the providers of {route} refused the gateway's credentials"
                )
            }
            ErrorKind::DeadlineExceeded => {
                write!(f, "{route} found no answer within the request's deadline")
            }
            ErrorKind::StreamFailed { class, chunks } => write!(
                f,
                "the answer of {route} broke off after {chunks} chunks ({class}) and is incomplete"
            ),
        }
    }
}

impl Error for GatewayError {}

/// `route `name`` or `the route`.
struct Route<'a>(Option<&'a str>);

impl fmt::Display for Route<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(name) => write!(f, "route `{name}`"),
            None => f.write_str("the route"),
        }
    }
}

/// The first error of type `T` in `error`'s cause chain.
fn cause<'a, T: Error + 'static>(error: &'a (dyn Error + 'static)) -> Option<&'a T> {
    let mut next = Some(error);
    while let Some(error) = next {
        if let Some(found) = error.downcast_ref::<T>() {
            return Some(found);
        }
        next = error.source();
    }
    None
}

/// The status a model's refusal is passed on with: its own when it says the request's
/// content is wrong (400, 413, 415, 422, 451), else 400 (a 404 or 405 says the gateway's
/// configuration is wrong, not the request).
fn refused_status(status: Option<StatusCode>) -> StatusCode {
    match status {
        Some(status) if matches!(status.as_u16(), 413 | 415 | 422 | 451) => status,
        _ => StatusCode::BAD_REQUEST,
    }
}

/// The shorter of two waits, either unknown.
fn shortest(a: Option<Duration>, b: Option<Duration>) -> Option<Duration> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// A wait in whole seconds, rounded up, at least 1 (a zero would say "now").
fn retry_after_seconds(wait: Duration) -> u64 {
    let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    seconds.max(1)
}

#[cfg(test)]
mod tests {
    use hive_core::{BoxError, ModelId};

    use super::*;
    use crate::NotContinued;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    fn limited(wait: Option<Duration>) -> RouteAttempt {
        RouteAttempt::new(
            Outcome::Failure {
                class: FailureClass::RateLimited,
                retry_after: wait,
            },
            Some(StatusCode::TOO_MANY_REQUESTS),
        )
    }

    fn failed(class: FailureClass) -> RouteAttempt {
        RouteAttempt::new(Outcome::failure(class), None)
    }

    fn refused(class: ClientErrorClass, status: u16) -> RouteAttempt {
        RouteAttempt::new(
            Outcome::ClientError(class),
            Some(StatusCode::from_u16(status).unwrap()),
        )
    }

    fn skipped(reason: RejectReason) -> RouteAttempt {
        RouteAttempt::new(Outcome::Rejected(reason), None)
    }

    /// Status, type, code and `Retry-After` of an error.
    fn row(error: &GatewayError) -> (u16, &'static str, Option<&'static str>, Option<String>) {
        (
            error.status().as_u16(),
            error.kind().error_type(),
            error.kind().code(),
            error
                .headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap().to_owned()),
        )
    }

    #[test]
    fn the_table() {
        let ra = |s: &str| Some(s.to_owned());
        let rows = [
            (
                GatewayError::unauthorized(),
                (401, "invalid_request_error", Some("invalid_api_key"), None),
            ),
            (
                GatewayError::invalid_request("`messages` is missing", Some("messages")),
                (400, "invalid_request_error", None, None),
            ),
            (
                GatewayError::model_not_found("gpt-9"),
                (404, "invalid_request_error", Some("model_not_found"), None),
            ),
            (
                GatewayError::too_large(1 << 20),
                (
                    413,
                    "invalid_request_error",
                    Some("request_too_large"),
                    None,
                ),
            ),
            (
                GatewayError::exhausted(
                    "r",
                    [refused(ClientErrorClass::ContextLengthExceeded, 400)],
                ),
                (
                    400,
                    "invalid_request_error",
                    Some("context_length_exceeded"),
                    None,
                ),
            ),
            (
                GatewayError::exhausted("r", [refused(ClientErrorClass::ContentPolicy, 400)]),
                (
                    400,
                    "invalid_request_error",
                    Some("content_policy_violation"),
                    None,
                ),
            ),
            (
                GatewayError::exhausted("r", [refused(ClientErrorClass::BadRequest, 422)]),
                (422, "invalid_request_error", None, None),
            ),
            (
                GatewayError::exhausted("r", [refused(ClientErrorClass::BadRequest, 413)]),
                (413, "invalid_request_error", None, None),
            ),
            (
                GatewayError::exhausted("r", [refused(ClientErrorClass::BadRequest, 404)]),
                (400, "invalid_request_error", None, None),
            ),
            (
                GatewayError::exhausted("r", [limited(Some(secs(7)))]),
                (
                    429,
                    "rate_limit_error",
                    Some("rate_limit_exceeded"),
                    ra("7"),
                ),
            ),
            (
                GatewayError::exhausted("r", [failed(FailureClass::Unavailable)]),
                (503, "server_error", Some("model_unavailable"), None),
            ),
            (
                GatewayError::exhausted("r", [refused(ClientErrorClass::Unauthorized, 401)]),
                (502, "server_error", Some("upstream_unauthorized"), None),
            ),
            (
                GatewayError::deadline_exceeded("r"),
                (504, "server_error", Some("deadline_exceeded"), None),
            ),
            (
                GatewayError::new(ErrorKind::StreamFailed {
                    class: FailureClass::StreamStalled,
                    chunks: 3,
                }),
                (502, "server_error", Some("stream_stalled"), None),
            ),
        ];
        for (error, expected) in rows {
            assert_eq!(row(&error), expected, "{error:?}");
            assert_eq!(error.headers()["content-type"], "application/json");
            let body: serde_json::Value = serde_json::from_slice(&error.body()).unwrap();
            let object = body["error"].as_object().unwrap();
            assert_eq!(object.len(), 4, "message, type, param, code: {body}");
            assert_eq!(body["error"]["message"], error.message());
            assert_eq!(body["error"]["type"], expected.1);
            assert_eq!(body["error"]["code"].as_str(), expected.2);
        }
        let unauthorized = GatewayError::unauthorized();
        assert_eq!(unauthorized.headers()["www-authenticate"], "Bearer");
        let invalid = GatewayError::invalid_request("`messages` is missing", Some("messages"));
        let body: serde_json::Value = serde_json::from_slice(&invalid.body()).unwrap();
        assert_eq!(body["error"]["param"], "messages");
        assert_eq!(
            body["error"]["message"],
            "invalid request: `messages` is missing"
        );
    }

    #[test]
    fn every_model_cooling_down_is_a_429_with_the_shortest_known_wait() {
        // Rate limits with hints: the shortest.
        let e = GatewayError::exhausted("r", [limited(Some(secs(30))), limited(Some(secs(7)))]);
        assert_eq!(row(&e).3.as_deref(), Some("7"));
        // A skipped model the gateway knows to be cooling down (a breaker open inside a
        // Retry-After, whose hint the router does not keep) counts, with its wait.
        let e = GatewayError::exhausted(
            "r",
            [
                limited(Some(secs(30))),
                skipped(RejectReason::Unavailable).cooldown(Some(secs(3))),
            ],
        );
        assert_eq!(row(&e).0, 429);
        assert_eq!(e.retry_after(), Some(secs(3)));
        // A rate limit without a hint takes the gateway's cooldown; none known, no header.
        let e = GatewayError::exhausted("r", [limited(None).cooldown(Some(secs(12)))]);
        assert_eq!(row(&e).3.as_deref(), Some("12"));
        let e = GatewayError::exhausted("r", [limited(None), limited(None)]);
        assert_eq!(
            row(&e),
            (429, "rate_limit_error", Some("rate_limit_exceeded"), None)
        );
        assert_eq!(
            e.message(),
            "every model of route `r` is rate limited or cooling down"
        );
        // A 503 or 529 that asked for a wait is a cooldown too.
        let e = GatewayError::exhausted(
            "r",
            [
                limited(Some(secs(9))),
                RouteAttempt::new(
                    Outcome::Failure {
                        class: FailureClass::Overloaded,
                        retry_after: Some(secs(4)),
                    },
                    None,
                ),
            ],
        );
        assert_eq!(row(&e).3.as_deref(), Some("4"));
        // Models that refused the request itself cannot take it anyway.
        let e = GatewayError::exhausted(
            "r",
            [
                refused(ClientErrorClass::ContextLengthExceeded, 400),
                limited(Some(secs(5))),
            ],
        );
        assert_eq!(row(&e).0, 429);
        // Waits are whole seconds, rounded up, at least 1.
        let e = GatewayError::exhausted("r", [limited(Some(Duration::from_millis(6200)))]);
        assert_eq!(row(&e).3.as_deref(), Some("7"));
        let e = GatewayError::exhausted("r", [limited(Some(Duration::from_millis(300)))]);
        assert_eq!(row(&e).3.as_deref(), Some("1"));
        assert_eq!(
            e.message(),
            "every model of route `r` is rate limited or cooling down; retry after 1 s"
        );
    }

    #[test]
    fn a_model_down_makes_it_a_503_with_the_soonest_return_when_known() {
        // One model down (no wait known), one rate limited: not every model is cooling down.
        let e = GatewayError::exhausted(
            "chat",
            [failed(FailureClass::Unavailable), limited(Some(secs(8)))],
        );
        assert_eq!(
            row(&e),
            (
                503,
                "server_error",
                Some("model_unavailable"),
                Some("8".into())
            )
        );
        assert_eq!(
            e.message(),
            "no model of route `chat` is available (rate_limited, unavailable)"
        );
        // An open breaker's rest of break is a known return, not a cooldown.
        let e = GatewayError::exhausted(
            "chat",
            [
                skipped(RejectReason::CircuitOpen { retry_in: secs(12) }),
                failed(FailureClass::Timeout),
            ],
        );
        assert_eq!(row(&e).3.as_deref(), Some("12"));
        let e = GatewayError::exhausted(
            "chat",
            [skipped(RejectReason::CircuitOpen { retry_in: secs(12) })],
        );
        assert_eq!(
            row(&e).0,
            503,
            "an open breaker without a provider's wait is down"
        );
        // Skipped models with nothing known, and no model at all.
        let e = GatewayError::exhausted(
            "chat",
            [
                skipped(RejectReason::Unavailable),
                skipped(RejectReason::Unhealthy),
            ],
        );
        assert_eq!(
            row(&e),
            (503, "server_error", Some("model_unavailable"), None)
        );
        assert_eq!(
            e.message(),
            "no model of route `chat` is available (rejected)"
        );
        let e = GatewayError::exhausted("chat", []);
        assert_eq!(row(&e).0, 503);
        assert_eq!(e.message(), "no model of route `chat` is available");
        // A refusal and an outage: the other model might have answered.
        let e = GatewayError::exhausted(
            "chat",
            [
                refused(ClientErrorClass::ContextLengthExceeded, 400),
                failed(FailureClass::Connect),
            ],
        );
        assert_eq!(row(&e).0, 503);
        // The gateway's credentials refused by one, the request by the other: 502.
        let e = GatewayError::exhausted(
            "chat",
            [
                refused(ClientErrorClass::Unauthorized, 401),
                refused(ClientErrorClass::ContentPolicy, 400),
            ],
        );
        assert_eq!(row(&e).0, 502);
    }

    #[test]
    fn messages_name_the_class_and_route_only_and_the_route_is_cleaned() {
        let route = format!("chat\n\u{1b}[31m{}", "x".repeat(500));
        let e = GatewayError::exhausted(&route, [refused(ClientErrorClass::ContentPolicy, 400)]);
        let message = e.message();
        assert!(!message.contains('\n') && !message.contains('\u{1b}'));
        assert!(message.len() < 128 + 60, "{message}");
        assert!(
            message.starts_with("a model of route `chat [31mxxx"),
            "{message}"
        );
        let json = String::from_utf8(e.body().to_vec()).unwrap();
        assert!(!json.contains("\\n"), "{json}");
        assert_eq!(
            GatewayError::model_not_found("gpt-9").message(),
            "no route or model is named `gpt-9`"
        );
        assert_eq!(
            GatewayError::deadline_exceeded("vote").message(),
            "route `vote` found no answer within the request's deadline"
        );
    }

    #[test]
    fn a_routers_own_error_is_found_in_its_cause_chain() {
        #[derive(Debug, thiserror::Error)]
        #[error("wrapped")]
        struct Wrapper(#[source] BoxError);

        let policy = OpenAiError::Status {
            model: ModelId::new("m"),
            status: StatusCode::BAD_REQUEST,
            code: Some("content_policy_violation".into()),
            provider_message: "SECRET provider words".into(),
            retry_after: None,
        };
        let e = GatewayError::from_error("r", &Wrapper(Box::new(policy)));
        assert_eq!(row(&e).0, 400);
        assert_eq!(e.kind().code(), Some("content_policy_violation"));
        assert!(!String::from_utf8_lossy(&e.body()).contains("SECRET"));

        let rejected = Rejected {
            model: ModelId::new("m"),
            reason: RejectReason::CircuitOpen { retry_in: secs(20) },
        };
        let e = GatewayError::from_error("r", &rejected);
        assert_eq!(
            row(&e),
            (
                503,
                "server_error",
                Some("model_unavailable"),
                Some("20".into())
            )
        );

        let limited = OpenAiError::Status {
            model: ModelId::new("m"),
            status: StatusCode::TOO_MANY_REQUESTS,
            code: None,
            provider_message: String::new(),
            retry_after: Some(secs(2)),
        };
        let e = GatewayError::from_error("r", &limited);
        assert_eq!(row(&e).0, 429);
        assert_eq!(e.retry_after(), Some(secs(2)));
    }

    #[test]
    fn a_failed_stream_shows_its_cut_never_a_continuations_refusal() {
        let cut = || OpenAiError::StreamCut {
            model: ModelId::new("a"),
            chunks: 40,
            source: None,
        };
        let refusal: BoxError = Box::new(OpenAiError::Status {
            model: ModelId::new("b"),
            status: StatusCode::BAD_REQUEST,
            code: None,
            provider_message: "prefill not supported".into(),
            retry_after: None,
        });
        let error = ContinuationError::Cut {
            cut: cut(),
            chunks: 40,
            reason: NotContinued::PrefillRefused {
                model: ModelId::new("b"),
                error: refusal,
            },
        };
        let e = GatewayError::stream_failed(Some("chat"), 40, &error);
        assert_eq!(
            e.kind(),
            &ErrorKind::StreamFailed {
                class: FailureClass::StreamCut,
                chunks: 40
            }
        );
        assert_eq!(
            e.sse_event(),
            "data: {\"error\":{\"message\":\"the answer of route `chat` broke off after 40 chunks (stream_cut) and is incomplete\",\"type\":\"server_error\",\"param\":null,\"code\":\"stream_cut\"}}\n\n"
        );
        let stalled = OpenAiError::Stalled {
            model: ModelId::new("a"),
            limit: secs(30),
        };
        assert_eq!(
            GatewayError::stream_failed(None, 2, &stalled).kind().code(),
            Some("stream_stalled")
        );
        let filtered = OpenAiError::error_event(
            ModelId::new("a"),
            2,
            &serde_json::json!({"code": "content_filter"}),
        );
        let e = GatewayError::stream_failed(None, 2, &ContinuationError::Failed(filtered));
        assert_eq!(e.kind().code(), Some("content_policy_violation"));
        assert_eq!(e.kind().error_type(), "invalid_request_error");
        assert_eq!(
            e.message(),
            "a model of the route refused the request (content_policy)"
        );
    }
}
