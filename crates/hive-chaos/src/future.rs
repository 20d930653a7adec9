use std::{
    future::Future,
    pin::Pin,
    task::{Context, Poll, ready},
    time::Duration,
};

use hive_core::ModelId;
use pin_project_lite::pin_project;
use tokio::time::Sleep;

use crate::{Faults, StreamFault};

/// A boxed timer, made only when a delay was injected (the pass-through allocates nothing).
type Timer = Option<Pin<Box<Sleep>>>;

fn timer(delay: Duration) -> Timer {
    (!delay.is_zero()).then(|| Box::pin(tokio::time::sleep(delay)))
}

pin_project! {
    /// The response future of [`ChaosService`](crate::ChaosService): the inner future as it
    /// is (switched off, or nothing fired), delayed and with a stream fault to play, an
    /// injected failure after its delay, or a hang.
    #[must_use = "futures do nothing unless polled"]
    pub struct ResponseFuture<Fut, F, T, E> {
        #[pin]
        state: State<Fut, F, T, E>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<Fut, F, T, E> {
        Pass {
            #[pin]
            future: Fut,
        },
        Delayed {
            #[pin]
            future: Fut,
            timer: Timer,
            stream: Option<(StreamFault, F, ModelId)>,
        },
        Fail {
            timer: Timer,
            result: Option<Result<T, E>>,
        },
        Hang,
    }
}

impl<Fut, F, T, E> ResponseFuture<Fut, F, T, E> {
    #[inline]
    pub(crate) fn pass(future: Fut) -> Self {
        Self {
            state: State::Pass { future },
        }
    }

    pub(crate) fn delayed(
        future: Fut,
        delay: Duration,
        stream: Option<(StreamFault, F, ModelId)>,
    ) -> Self {
        Self {
            state: State::Delayed {
                future,
                timer: timer(delay),
                stream,
            },
        }
    }

    pub(crate) fn fail(delay: Duration, result: Result<T, E>) -> Self {
        Self {
            state: State::Fail {
                timer: timer(delay),
                result: Some(result),
            },
        }
    }

    pub(crate) fn hang() -> Self {
        Self { state: State::Hang }
    }
}

impl<Fut, F, T, E> Future for ResponseFuture<Fut, F, T, E>
where
    Fut: Future<Output = Result<T, E>>,
    F: Faults<T, E>,
{
    type Output = Result<T, E>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().state.project() {
            StateProj::Pass { future } => future.poll(cx),
            StateProj::Delayed {
                future,
                timer,
                stream,
            } => {
                ready!(poll_timer(timer, cx));
                let mut result = ready!(future.poll(cx));
                if let (Ok(response), Some((fault, faults, model))) = (&mut result, stream.take()) {
                    faults.stream(response, fault, model);
                }
                Poll::Ready(result)
            }
            StateProj::Fail { timer, result } => {
                ready!(poll_timer(timer, cx));
                match result.take() {
                    Some(result) => Poll::Ready(result),
                    None => panic!("chaos ResponseFuture polled after completion"),
                }
            }
            // Never woken: only a timeout outside, or the caller, ends it.
            StateProj::Hang => Poll::Pending,
        }
    }
}

/// Waits out the timer, if any, and drops it once elapsed.
fn poll_timer(timer: &mut Timer, cx: &mut Context<'_>) -> Poll<()> {
    if let Some(sleep) = timer {
        ready!(sleep.as_mut().poll(cx));
        *timer = None;
    }
    Poll::Ready(())
}

impl<Fut, F, T, E> std::fmt::Debug for ResponseFuture<Fut, F, T, E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}
