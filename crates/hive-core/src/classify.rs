//! Classification: turning a call's result into an [`Outcome`], kept out of the layers and
//! shared by all of them (as tower-http's `classify` module does for HTTP).
//!
//! A classifier sees `&Result<T, E>` and answers [`Classified::Now`] with the outcome, or
//! [`Classified::AtEndOfStream`] for a response whose verdict is only known once its stream
//! ends. For those, the layer hands an [`EosRecorder`] to
//! [`Classify::attach_end_of_stream`], and the response records its outcome when its
//! stream finishes. The stream itself tells a provider's cut, stall or garbage (a failure)
//! from a caller who stopped reading: a recorder dropped unfinished (the caller dropped the
//! stream: a disconnect, a stop button) records [`Outcome::Ignored`], which is neither the
//! model's success nor its failure.

use std::{
    convert::Infallible,
    error::Error,
    fmt, io,
    time::{Duration, SystemTime},
};

use http::{HeaderMap, StatusCode, header::RETRY_AFTER};

use crate::{
    BoxError, ClientErrorClass, FailureClass, Outcome, Rejected, retry_after::parse_retry_after,
};

/// The verdict of a classifier on one result.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Classified {
    /// The outcome is known now.
    Now(Outcome),
    /// The response streams; its outcome is known when the stream ends.
    AtEndOfStream,
}

/// Turns the result of a call into an [`Outcome`].
///
/// Implement it for your own response and error types, or use [`HttpClassifier`],
/// [`ErrorClassifier`] or [`classify_fn`].
pub trait Classify<T, E> {
    /// Classifies one result. Must be cheap: it runs on every call.
    fn classify(&self, result: &Result<T, E>) -> Classified;

    /// Called when [`classify`](Classify::classify) answered [`Classified::AtEndOfStream`]:
    /// attach `recorder` to the response so that it is finished when the stream ends.
    ///
    /// The default finishes it at once as [`Outcome::Ignored`]; override it in classifiers
    /// that return `AtEndOfStream`.
    fn attach_end_of_stream(&self, response: &mut T, recorder: EosRecorder) {
        let _ = response;
        recorder.finish(Outcome::Ignored);
    }

    /// The HTTP status the model answered with, when the result carries one: a router keeps
    /// it with each failed attempt, so a server in front can answer with the right status.
    /// Called only on failures. The default knows none.
    fn status(&self, result: &Result<T, E>) -> Option<StatusCode> {
        let _ = result;
        None
    }
}

/// Records the outcome of a streamed response when its stream ends.
///
/// Finish it with the stream's outcome: success at a proper end, the failure when the
/// provider cut, stalled or garbled the stream. Dropped unfinished, it records
/// [`Outcome::Ignored`]: the caller abandoned the stream, which says nothing about the model
/// (a breaker gives the half-open permit back and counts nothing).
#[must_use = "a dropped recorder records the stream as abandoned (ignored)"]
pub struct EosRecorder {
    record: Option<Box<dyn FnOnce(Outcome) + Send + 'static>>,
}

impl EosRecorder {
    /// A recorder that calls `record` once with the stream's outcome.
    pub fn new(record: impl FnOnce(Outcome) + Send + 'static) -> Self {
        Self {
            record: Some(Box::new(record)),
        }
    }

    /// Records the outcome of the stream.
    pub fn finish(mut self, outcome: Outcome) {
        if let Some(record) = self.record.take() {
            record(outcome);
        }
    }
}

impl Drop for EosRecorder {
    fn drop(&mut self) {
        if let Some(record) = self.record.take() {
            record(Outcome::Ignored);
        }
    }
}

impl fmt::Debug for EosRecorder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EosRecorder")
            .field("finished", &self.record.is_none())
            .finish()
    }
}

/// Error types whose cause chain the default classifiers can inspect.
pub trait AsError {
    /// The error as a `dyn Error`, to walk its sources and downcast.
    fn as_error(&self) -> &(dyn Error + 'static);
}

impl AsError for BoxError {
    fn as_error(&self) -> &(dyn Error + 'static) {
        &**self
    }
}

impl AsError for io::Error {
    fn as_error(&self) -> &(dyn Error + 'static) {
        self
    }
}

impl AsError for http::Error {
    fn as_error(&self) -> &(dyn Error + 'static) {
        self
    }
}

impl AsError for Rejected {
    fn as_error(&self) -> &(dyn Error + 'static) {
        self
    }
}

impl AsError for tower::timeout::error::Elapsed {
    fn as_error(&self) -> &(dyn Error + 'static) {
        self
    }
}

impl AsError for Infallible {
    fn as_error(&self) -> &(dyn Error + 'static) {
        match *self {}
    }
}

/// Classifies an error by walking its cause chain: a [`Rejected`] is a rejection, tower's and
/// tokio's `Elapsed` and `io::ErrorKind::TimedOut` are timeouts, refused/reset/aborted
/// connections are connect failures, and anything else is `Unavailable`.
pub fn classify_error(err: &(dyn Error + 'static)) -> Outcome {
    let mut cause = Some(err);
    while let Some(e) = cause {
        if let Some(rejected) = e.downcast_ref::<Rejected>() {
            return Outcome::Rejected(rejected.reason);
        }
        if e.is::<tower::timeout::error::Elapsed>() || e.is::<tokio::time::error::Elapsed>() {
            return Outcome::failure(FailureClass::Timeout);
        }
        if let Some(io) = e.downcast_ref::<io::Error>() {
            use io::ErrorKind::*;
            match io.kind() {
                TimedOut => return Outcome::failure(FailureClass::Timeout),
                ConnectionRefused | ConnectionReset | ConnectionAborted | NotConnected
                | BrokenPipe | AddrNotAvailable | UnexpectedEof => {
                    return Outcome::failure(FailureClass::Connect);
                }
                _ => {}
            }
            // io::Error's `source` skips the error it wraps; look at that error itself.
            if let Some(inner) = io.get_ref() {
                cause = Some(inner as &(dyn Error + 'static));
                continue;
            }
        }
        cause = e.source();
    }
    Outcome::failure(FailureClass::Unavailable)
}

/// Whether a provider's wait hint (`Retry-After` and kin) counts on an answer with this
/// status: 429 (RFC 6585), 503 (RFC 9110) and 529 (overloaded). A hint on any other status
/// is ignored. The one rule every classifier applies.
pub const fn status_carries_retry_after(status: StatusCode) -> bool {
    matches!(status.as_u16(), 429 | 503 | 529)
}

/// Classifies an HTTP status given the wait hint the provider sent with it, if any: the one
/// HTTP status table of the project.
///
/// 1xx–3xx succeed. 429 is rate-limited, 408 and 504 timeouts, 529 overloaded, other 5xx
/// unavailable. 401/403 are unauthorized, 413 context length exceeded, 451 content policy,
/// other 4xx bad request. The hint is kept only where [`status_carries_retry_after`] says.
pub fn classify_status_hinted(status: StatusCode, hint: Option<Duration>) -> Outcome {
    let failure = |class| Outcome::Failure {
        class,
        retry_after: hint.filter(|_| status_carries_retry_after(status)),
    };
    match status.as_u16() {
        100..=399 => Outcome::Success,
        429 => failure(FailureClass::RateLimited),
        408 | 504 => failure(FailureClass::Timeout),
        529 => failure(FailureClass::Overloaded),
        500..=599 => failure(FailureClass::Unavailable),
        401 | 403 => Outcome::ClientError(ClientErrorClass::Unauthorized),
        413 => Outcome::ClientError(ClientErrorClass::ContextLengthExceeded),
        451 => Outcome::ClientError(ClientErrorClass::ContentPolicy),
        _ => Outcome::ClientError(ClientErrorClass::BadRequest),
    }
}

/// Classifies an HTTP status (with its headers, for `Retry-After` in seconds or as an HTTP
/// date) as of `now`, by [`classify_status_hinted`].
pub fn classify_status(status: StatusCode, headers: &HeaderMap, now: SystemTime) -> Outcome {
    let hint = if status_carries_retry_after(status) {
        headers
            .get(RETRY_AFTER)
            .and_then(|v| parse_retry_after(v, now))
    } else {
        None
    };
    classify_status_hinted(status, hint)
}

/// The default classifier for `http::Response<B>` results: status codes and `Retry-After`
/// by [`classify_status`], errors by [`classify_error`].
#[derive(Clone, Copy, Debug, Default)]
pub struct HttpClassifier;

impl<B, E: AsError> Classify<http::Response<B>, E> for HttpClassifier {
    fn classify(&self, result: &Result<http::Response<B>, E>) -> Classified {
        Classified::Now(match result {
            Ok(response) => {
                if response.status().is_success() {
                    Outcome::Success
                } else {
                    classify_status(response.status(), response.headers(), SystemTime::now())
                }
            }
            Err(err) => classify_error(err.as_error()),
        })
    }

    fn status(&self, result: &Result<http::Response<B>, E>) -> Option<StatusCode> {
        result.as_ref().ok().map(http::Response::status)
    }
}

/// The default classifier for any response type: every `Ok` is a success, errors are
/// classified by [`classify_error`] (so it is the classifier for `BoxError`).
#[derive(Clone, Copy, Debug, Default)]
pub struct ErrorClassifier;

impl<T, E: AsError> Classify<T, E> for ErrorClassifier {
    fn classify(&self, result: &Result<T, E>) -> Classified {
        Classified::Now(match result {
            Ok(_) => Outcome::Success,
            Err(err) => classify_error(err.as_error()),
        })
    }
}

/// A classifier from a closure: `classify_fn(|r: &Result<T, E>| Outcome::Success)`.
pub fn classify_fn<F>(f: F) -> ClassifyFn<F> {
    ClassifyFn(f)
}

/// A classifier made by [`classify_fn`].
#[derive(Clone, Copy)]
pub struct ClassifyFn<F>(F);

impl<F> fmt::Debug for ClassifyFn<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ClassifyFn").finish_non_exhaustive()
    }
}

impl<T, E, F> Classify<T, E> for ClassifyFn<F>
where
    F: Fn(&Result<T, E>) -> Outcome,
{
    fn classify(&self, result: &Result<T, E>) -> Classified {
        Classified::Now((self.0)(result))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::{ModelId, RejectReason};

    fn response(status: u16, retry_after: Option<&str>) -> http::Response<()> {
        let mut builder = http::Response::builder().status(status);
        if let Some(v) = retry_after {
            builder = builder.header(RETRY_AFTER, v);
        }
        builder.body(()).unwrap()
    }

    fn classify(r: http::Response<()>) -> Classified {
        Classify::<_, BoxError>::classify(&HttpClassifier, &Ok(r))
    }

    #[test]
    fn statuses_map_to_classes() {
        let cases = [
            (200, Outcome::Success),
            (204, Outcome::Success),
            (304, Outcome::Success),
            (408, Outcome::failure(FailureClass::Timeout)),
            (429, Outcome::failure(FailureClass::RateLimited)),
            (500, Outcome::failure(FailureClass::Unavailable)),
            (502, Outcome::failure(FailureClass::Unavailable)),
            (503, Outcome::failure(FailureClass::Unavailable)),
            (504, Outcome::failure(FailureClass::Timeout)),
            (529, Outcome::failure(FailureClass::Overloaded)),
            (400, Outcome::ClientError(ClientErrorClass::BadRequest)),
            (401, Outcome::ClientError(ClientErrorClass::Unauthorized)),
            (403, Outcome::ClientError(ClientErrorClass::Unauthorized)),
            (404, Outcome::ClientError(ClientErrorClass::BadRequest)),
            (
                413,
                Outcome::ClientError(ClientErrorClass::ContextLengthExceeded),
            ),
            (451, Outcome::ClientError(ClientErrorClass::ContentPolicy)),
        ];
        for (status, expected) in cases {
            assert_eq!(
                classify(response(status, None)),
                Classified::Now(expected),
                "status {status}"
            );
        }
    }

    #[test]
    fn retry_after_seconds_and_date_become_the_hint() {
        assert_eq!(
            classify(response(429, Some("7"))),
            Classified::Now(Outcome::Failure {
                class: FailureClass::RateLimited,
                retry_after: Some(Duration::from_secs(7)),
            })
        );
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let date = httpdate::fmt_http_date(now + Duration::from_secs(90));
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, date.parse().unwrap());
        assert_eq!(
            classify_status(StatusCode::SERVICE_UNAVAILABLE, &headers, now),
            Outcome::Failure {
                class: FailureClass::Unavailable,
                retry_after: Some(Duration::from_secs(90)),
            }
        );
        // A hint on a status that does not carry one is ignored, by both entry points.
        assert_eq!(
            classify(response(500, Some("7"))),
            Classified::Now(Outcome::failure(FailureClass::Unavailable))
        );
        let seven = Some(Duration::from_secs(7));
        for (status, kept) in [
            (429, true),
            (503, true),
            (529, true),
            (500, false),
            (504, false),
        ] {
            let status = StatusCode::from_u16(status).unwrap();
            assert_eq!(
                classify_status_hinted(status, seven).retry_after(),
                seven.filter(|_| kept),
                "{status}"
            );
        }
    }

    #[test]
    fn errors_are_classified_through_their_cause_chain() {
        let refused: BoxError = Box::new(io::Error::from(io::ErrorKind::ConnectionRefused));
        assert_eq!(
            classify_error(&*refused),
            Outcome::failure(FailureClass::Connect)
        );
        let elapsed: BoxError = Box::new(tower::timeout::error::Elapsed::new());
        assert_eq!(
            classify_error(&*elapsed),
            Outcome::failure(FailureClass::Timeout)
        );
        let wrapped: BoxError = Box::new(io::Error::other(tower::timeout::error::Elapsed::new()));
        assert_eq!(
            classify_error(&*wrapped),
            Outcome::failure(FailureClass::Timeout)
        );
        let rejected: BoxError = Box::new(Rejected {
            model: ModelId::new("m"),
            reason: RejectReason::ForcedOpen,
        });
        assert_eq!(
            classify_error(&*rejected),
            Outcome::Rejected(RejectReason::ForcedOpen)
        );
        let other: BoxError = "boom".into();
        assert_eq!(
            classify_error(&*other),
            Outcome::failure(FailureClass::Unavailable)
        );
    }

    #[test]
    fn a_dropped_recorder_records_an_abandoned_stream_and_a_finished_one_its_outcome() {
        let (tx, rx) = std::sync::mpsc::channel();
        let (tx2, tx3) = (tx.clone(), tx.clone());
        drop(EosRecorder::new(move |o| tx.send(o).unwrap()));
        EosRecorder::new(move |o| tx2.send(o).unwrap()).finish(Outcome::Success);
        let cut = Outcome::failure(FailureClass::StreamCut);
        EosRecorder::new(move |o| tx3.send(o).unwrap()).finish(cut);
        assert_eq!(
            rx.try_iter().collect::<Vec<_>>(),
            vec![Outcome::Ignored, Outcome::Success, cut]
        );
    }
}
