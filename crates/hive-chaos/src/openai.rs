//! [`OpenAiFaults`]: injected faults as hive-openai's client gives the real ones.

use std::io;

use hive_core::{ModelId, status_carries_retry_after};
use hive_openai::{ChatResponse, OpenAiError};
use http::StatusCode;

use crate::{Fault, Faults, StreamFault};

/// The most bytes kept of the model name a wrong-identity fault answers as (as the client
/// keeps of a real one).
const MAX_ANSWERED_NAME: usize = 128;

/// What the provider's message says of an injected failure (never shown by `Display`).
const MESSAGE: &str = "injected by hive-chaos";

/// Injected faults for hive-openai's [`OpenAiClient`](hive_openai::OpenAiClient): each
/// failure is the [`OpenAiError`] the client gives for the real one (any error type that
/// takes an `OpenAiError`: itself, or `BoxError`), so [`OpenAiClassifier`] classifies it
/// the same, class, wait hint and status; stream faults are played by the answer's
/// [`ChatStream`](hive_openai::ChatStream) itself, which then fails with the error a real
/// provider's failure gives.
///
/// | fault | error | class |
/// |---|---|---|
/// | `Status { 429, retry_after }` | `Status`, code `rate_limit_exceeded` | rate limited, with the hint |
/// | `Status { 500 / 502 / 503, .. }` | `Status` | unavailable (503 keeps a hint) |
/// | `Status { 529, .. }` | `Status` | overloaded, with the hint |
/// | `Timeout { after }` | `FirstToken { limit: after }` | timeout |
/// | `ConnectionReset` | `Connect`, caused by an `io::Error` `ConnectionReset` | connect |
/// | `WrongModel { answered }` | `IdentityMismatch` | identity mismatch |
/// | `ContextLengthExceeded` | `Status` 400, code `context_length_exceeded` | client error |
/// | `ContentPolicy` | `Status` 400, code `content_policy_violation` | client error |
/// | `Stream(Cut { after })` | `StreamCut { chunks: after, source: None }` | stream cut |
/// | `Stream(Reset { after })` | `StreamCut { chunks: after, source: Some(reset) }` | stream cut |
/// | `Stream(Stall { after })` | `Stalled` (`FirstToken` before the first token) | stream stalled |
/// | `Stream(Malformed { after })` | `Malformed`, or skipped and counted | malformed |
/// | `Stream(MissingDone)` | none after a finish reason; `StreamCut` before | — |
///
/// [`OpenAiClassifier`]: hive_openai::OpenAiClassifier
#[derive(Clone, Copy, Debug, Default)]
pub struct OpenAiFaults;

impl<E: From<OpenAiError>> Faults<ChatResponse, E> for OpenAiFaults {
    fn failure(&self, fault: &Fault, model: ModelId) -> Result<ChatResponse, E> {
        Err(error(fault, model).into())
    }

    fn stream(&self, response: &mut ChatResponse, fault: StreamFault, _: ModelId) -> bool {
        match response {
            ChatResponse::Stream(stream) => {
                stream.inject(fault);
                true
            }
            ChatResponse::Complete(_) => false,
        }
    }
}

/// The client's error for an injected failure.
fn error(fault: &Fault, model: ModelId) -> OpenAiError {
    let status = |status: u16, code: Option<&str>, retry_after: Option<std::time::Duration>| {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        OpenAiError::Status {
            model,
            status,
            code: code.map(str::to_owned),
            provider_message: MESSAGE.to_owned(),
            // As the client reads a real answer: a hint only where the status carries one.
            retry_after: retry_after.filter(|_| status_carries_retry_after(status)),
        }
    };
    match fault {
        Fault::Status {
            status: 429,
            retry_after,
        } => status(429, Some("rate_limit_exceeded"), *retry_after),
        Fault::Status {
            status: code,
            retry_after,
        } => status(*code, None, *retry_after),
        Fault::ContextLengthExceeded => status(400, Some("context_length_exceeded"), None),
        Fault::ContentPolicy => status(400, Some("content_policy_violation"), None),
        Fault::Timeout { after } => OpenAiError::FirstToken {
            model,
            limit: *after,
        },
        // Played by the layer (never answered); if asked, what the attempt timeout gives.
        Fault::Hang => OpenAiError::FirstToken {
            model,
            limit: hive_core::MAX_DURATION,
        },
        Fault::ConnectionReset => OpenAiError::Connect {
            model,
            source: Box::new(io::Error::from(io::ErrorKind::ConnectionReset)),
        },
        Fault::WrongModel { answered } => OpenAiError::IdentityMismatch {
            expected: model,
            answered: (!answered.is_empty()).then(|| cut(answered, MAX_ANSWERED_NAME)),
        },
        // Not failures: never asked for; a server error if they were.
        Fault::Latency(_) | Fault::Stream(_) => status(500, None, None),
    }
}

/// `text` cut to at most `max` bytes at a character boundary.
fn cut(text: &str, max: usize) -> String {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_owned()
}
