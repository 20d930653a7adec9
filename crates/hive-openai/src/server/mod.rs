//! The server half of the OpenAI wire, for a gateway that answers OpenAI's clients: the
//! counterpart of the client, tested against it.
//!
//! * [`SseEncoder`]: a stream of chunks as the `text/event-stream` body OpenAI sends
//!   (`data: {json}` events, `data: [DONE]` at a whole answer's end, keep-alive comments on
//!   a timer), an `http_body::Body` and a `futures` `Stream` of bytes.
//! * The in-band error event of a stream that fails after its first chunk
//!   ([`GatewayError::sse_event`]): `data: {"error": {"message", "type", "param", "code"}}`,
//!   as OpenAI and LiteLLM's proxy send it, and then the end of the stream, never
//!   `[DONE]`: a client (this crate's own, OpenAI's SDKs) reads it as a failure
//!   ([`OpenAiError::ErrorEvent`](crate::OpenAiError::ErrorEvent)), never as a whole
//!   answer.
//! * The error-to-status table ([`GatewayError`], [`ErrorKind`]): from what the router
//!   returns (its attempts as [`RouteAttempt`]s, the deadline, a model's own error) or the
//!   gateway's own checks, to an HTTP status, OpenAI's error JSON with a sanitised message
//!   (class and route only), and headers (`Retry-After` with the shortest wait known).
//!
//! No web framework is used: axum takes the encoder as `axum::body::Body::new(encoder)`
//! and an error as its `into_response()` (an `http::Response<Full<Bytes>>`).
//!
//! ```
//! use hive_openai::server::{GatewayError, RouteAttempt};
//! use hive_core::{FailureClass, Outcome};
//! use std::time::Duration;
//!
//! // Both models of route `chat` rate limited, one for 7 s, the other for 30 s.
//! let limited = |secs| Outcome::Failure {
//!     class: FailureClass::RateLimited,
//!     retry_after: Some(Duration::from_secs(secs)),
//! };
//! let error = GatewayError::exhausted(
//!     "chat",
//!     [RouteAttempt::new(limited(30), None), RouteAttempt::new(limited(7), None)],
//! );
//! assert_eq!(error.status(), 429);
//! assert_eq!(error.headers()["retry-after"], "7");
//! assert_eq!(
//!     error.body(),
//!     r#"{"error":{"message":"every model of route `chat` is rate limited or cooling down; retry after 7 s","type":"rate_limit_error","param":null,"code":"rate_limit_exceeded"}}"#
//! );
//! ```

mod encode;
mod status;

pub use encode::{SseEncoder, sse_headers};
pub use status::{ErrorKind, GatewayError, RouteAttempt};
