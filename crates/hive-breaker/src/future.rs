use std::{
    fmt,
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll, ready},
};

use hive_core::{BoxError, Classified, Classify, EosRecorder, Outcome, Rejected};
use pin_project_lite::pin_project;

use crate::breaker::{Breaker, Ticket};

/// Records one admitted call's outcome exactly once. Dropped unrecorded (the caller dropped
/// the future), it gives a half-open permit back and records nothing.
pub(crate) struct Recording {
    breaker: Arc<Breaker>,
    ticket: Ticket,
}

impl Recording {
    #[inline]
    pub(crate) fn new(breaker: Arc<Breaker>, ticket: Ticket) -> Self {
        Self { breaker, ticket }
    }

    /// Records the outcome (once; later calls do nothing).
    #[inline]
    fn record(&mut self, outcome: Outcome) {
        if let Some(ticket) = self.ticket.take() {
            self.breaker.record(ticket, outcome);
        }
    }

    /// Moves the pending record out, for a stream that finishes later.
    fn defer(&mut self) -> Recording {
        let ticket = self.ticket;
        self.ticket.take();
        Recording {
            breaker: Arc::clone(&self.breaker),
            ticket,
        }
    }
}

impl Drop for Recording {
    fn drop(&mut self) {
        if let Some(ticket) = self.ticket.take() {
            self.breaker.record(ticket, Outcome::Ignored);
        }
    }
}

pin_project! {
    /// The response future of [`CircuitBreaker`](crate::CircuitBreaker).
    #[must_use = "futures do nothing unless polled"]
    pub struct ResponseFuture<F, C> {
        #[pin]
        state: State<F, C>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F, C> {
        Called {
            #[pin]
            future: F,
            recording: Recording,
            classifier: C,
        },
        Passthrough {
            #[pin]
            future: F,
        },
        Rejected {
            error: Option<BoxError>,
        },
    }
}

impl<F, C> ResponseFuture<F, C> {
    #[inline]
    pub(crate) fn called(future: F, recording: Recording, classifier: C) -> Self {
        Self {
            state: State::Called {
                future,
                recording,
                classifier,
            },
        }
    }

    #[inline]
    pub(crate) fn passthrough(future: F) -> Self {
        Self {
            state: State::Passthrough { future },
        }
    }

    pub(crate) fn rejected(error: Rejected) -> Self {
        Self {
            state: State::Rejected {
                error: Some(Box::new(error)),
            },
        }
    }
}

impl<F, C, T, E> Future for ResponseFuture<F, C>
where
    F: Future<Output = Result<T, E>>,
    E: Into<BoxError>,
    C: Classify<T, E>,
{
    type Output = Result<T, BoxError>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().state.project() {
            StateProj::Called {
                future,
                recording,
                classifier,
            } => {
                let mut result = ready!(future.poll(cx));
                match classifier.classify(&result) {
                    Classified::Now(outcome) => recording.record(outcome),
                    Classified::AtEndOfStream => {
                        let mut deferred = recording.defer();
                        match &mut result {
                            Ok(response) => classifier.attach_end_of_stream(
                                response,
                                EosRecorder::new(move |outcome| deferred.record(outcome)),
                            ),
                            Err(_) => deferred
                                .record(Outcome::failure(hive_core::FailureClass::StreamCut)),
                        }
                    }
                }
                Poll::Ready(result.map_err(Into::into))
            }
            StateProj::Passthrough { future } => future.poll(cx).map_err(Into::into),
            StateProj::Rejected { error } => Poll::Ready(Err(error
                .take()
                .unwrap_or_else(|| "circuit breaker future polled after completion".into()))),
        }
    }
}

impl<F, C> fmt::Debug for ResponseFuture<F, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.state {
            State::Called { .. } => "called",
            State::Passthrough { .. } => "passthrough",
            State::Rejected { .. } => "rejected",
        };
        f.debug_struct("ResponseFuture")
            .field("state", &state)
            .finish()
    }
}
