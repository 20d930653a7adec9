//! [`OpenAiClassifier`]: what an answer of the client means to retry, breaker and router.

use hive_core::{BoxError, Classified, Classify, EosRecorder, Outcome, classify_error};
use http::StatusCode;

use crate::{ChatResponse, OpenAiError};

/// Classifies the client's results: a whole answer is a success, a stream is classified when
/// it ends (a stream the caller drops before its end is ignored), and an [`OpenAiError`] by
/// its class (also when boxed by a layer below). [`Classify::status`] gives the HTTP status
/// of an [`OpenAiError::Status`], boxed or not.
#[derive(Clone, Copy, Debug, Default)]
pub struct OpenAiClassifier;

fn of_error(error: &(dyn std::error::Error + 'static)) -> Outcome {
    match error.downcast_ref::<OpenAiError>() {
        Some(error) => error.outcome(),
        None => classify_error(error),
    }
}

/// The status of the first [`OpenAiError`] in an error's cause chain.
fn status_of(error: &(dyn std::error::Error + 'static)) -> Option<StatusCode> {
    let mut cause = Some(error);
    while let Some(error) = cause {
        if let Some(error) = error.downcast_ref::<OpenAiError>() {
            return error.status();
        }
        cause = error.source();
    }
    None
}

impl Classify<ChatResponse, OpenAiError> for OpenAiClassifier {
    fn classify(&self, result: &Result<ChatResponse, OpenAiError>) -> Classified {
        match result {
            Ok(ChatResponse::Complete(_)) => Classified::Now(Outcome::Success),
            Ok(ChatResponse::Stream(_)) => Classified::AtEndOfStream,
            Err(error) => Classified::Now(error.outcome()),
        }
    }

    fn attach_end_of_stream(&self, response: &mut ChatResponse, recorder: EosRecorder) {
        attach(response, recorder);
    }

    fn status(&self, result: &Result<ChatResponse, OpenAiError>) -> Option<StatusCode> {
        result.as_ref().err().and_then(OpenAiError::status)
    }
}

impl Classify<ChatResponse, BoxError> for OpenAiClassifier {
    fn classify(&self, result: &Result<ChatResponse, BoxError>) -> Classified {
        match result {
            Ok(ChatResponse::Complete(_)) => Classified::Now(Outcome::Success),
            Ok(ChatResponse::Stream(_)) => Classified::AtEndOfStream,
            Err(error) => Classified::Now(of_error(&**error)),
        }
    }

    fn attach_end_of_stream(&self, response: &mut ChatResponse, recorder: EosRecorder) {
        attach(response, recorder);
    }

    fn status(&self, result: &Result<ChatResponse, BoxError>) -> Option<StatusCode> {
        result.as_ref().err().and_then(|error| status_of(&**error))
    }
}

fn attach(response: &mut ChatResponse, recorder: EosRecorder) {
    match response {
        ChatResponse::Stream(stream) => stream.attach(recorder),
        ChatResponse::Complete(_) => recorder.finish(Outcome::Success),
    }
}
