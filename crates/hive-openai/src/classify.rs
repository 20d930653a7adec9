//! [`OpenAiClassifier`]: what an answer of the client means to retry, breaker and router.

use hive_core::{BoxError, Classified, Classify, EosRecorder, Outcome, classify_error};

use crate::{ChatResponse, OpenAiError};

/// Classifies the client's results: a whole answer is a success, a stream is classified when
/// it ends, and an [`OpenAiError`] by its class (also when boxed by a layer below).
#[derive(Clone, Copy, Debug, Default)]
pub struct OpenAiClassifier;

fn of_error(error: &(dyn std::error::Error + 'static)) -> Outcome {
    match error.downcast_ref::<OpenAiError>() {
        Some(error) => error.outcome(),
        None => classify_error(error),
    }
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
}

fn attach(response: &mut ChatResponse, recorder: EosRecorder) {
    match response {
        ChatResponse::Stream(stream) => stream.attach(recorder),
        ChatResponse::Complete(_) => recorder.finish(Outcome::Success),
    }
}
