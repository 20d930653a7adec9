use std::{
    fmt,
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll, ready},
    time::Duration,
};

use hive_core::{
    BoxError, Classified, Classify, Deadline, FailureClass, Outcome, ResilienceEvent, RetryStop,
};
use pin_project_lite::pin_project;
use tokio::time::{Instant, Sleep};
use tower_service::Service;

use crate::RetryConfig;

pin_project! {
    /// The response future of [`Retry`](crate::Retry): a state machine that calls, waits out
    /// the backoff, polls the service ready again and calls again. Dropping it during a
    /// backoff cancels the retry.
    #[must_use = "futures do nothing unless polled"]
    pub struct ResponseFuture<S, Req, C>
    where
        S: Service<Req>,
    {
        #[pin]
        state: State<S::Future>,
        service: S,
        request: Option<Req>,
        config: Arc<RetryConfig>,
        classifier: C,
        // Allocated at the first retry only, then reset for the next ones.
        sleep: Option<Pin<Box<Sleep>>>,
        attempt: u32,
        previous_delay: Duration,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F> {
        Calling { #[pin] future: F },
        Backoff,
        WaitingReady,
    }
}

/// What to do after a failed attempt.
enum Plan {
    Return,
    RetryAfter(Duration),
}

impl<S, Req, C> ResponseFuture<S, Req, C>
where
    S: Service<Req>,
{
    #[inline]
    pub(crate) fn new(
        future: S::Future,
        service: S,
        request: Option<Req>,
        config: Arc<RetryConfig>,
        classifier: C,
    ) -> Self {
        let previous_delay = config.backoff.base;
        Self {
            state: State::Calling { future },
            service,
            request,
            config,
            classifier,
            sleep: None,
            attempt: 1,
            previous_delay,
        }
    }
}

impl<S, Req, C> Future for ResponseFuture<S, Req, C>
where
    S: Service<Req>,
    S::Error: Into<BoxError>,
    C: Classify<S::Response, S::Error>,
    Req: Clone,
{
    type Output = Result<S::Response, BoxError>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            match this.state.as_mut().project() {
                StateProj::Calling { future } => {
                    let result = ready!(future.poll(cx));
                    let outcome = match this.classifier.classify(&result) {
                        Classified::Now(Outcome::Failure { class, retry_after }) => {
                            Outcome::Failure { class, retry_after }
                        }
                        // Anything else, including a streamed answer that has reached the
                        // caller, is returned as it is.
                        _ => return Poll::Ready(result.map_err(Into::into)),
                    };
                    let plan = plan_after_failure(
                        this.config,
                        outcome,
                        *this.attempt,
                        this.previous_delay,
                        this.request.is_some(),
                    );
                    match plan {
                        Plan::Return => return Poll::Ready(result.map_err(Into::into)),
                        Plan::RetryAfter(delay) => {
                            // The failed response is dropped before the next attempt.
                            drop(result);
                            let until = Instant::now() + delay;
                            match this.sleep {
                                Some(sleep) => sleep.as_mut().reset(until),
                                None => {
                                    *this.sleep = Some(Box::pin(tokio::time::sleep_until(until)))
                                }
                            }
                            this.state.set(State::Backoff);
                        }
                    }
                }
                StateProj::Backoff => {
                    if let Some(sleep) = this.sleep {
                        ready!(sleep.as_mut().poll(cx));
                    }
                    this.state.set(State::WaitingReady);
                }
                StateProj::WaitingReady => {
                    ready!(this.service.poll_ready(cx)).map_err(Into::into)?;
                    *this.attempt += 1;
                    let Some(request) = this.request.take() else {
                        return Poll::Ready(Err("retry future polled after completion".into()));
                    };
                    if *this.attempt < this.config.max_attempts {
                        *this.request = Some(request.clone());
                    }
                    let future = this.service.call(request);
                    this.state.set(State::Calling { future });
                }
            }
        }
    }
}

/// Decides what to do after attempt number `attempt` ended with `outcome`.
fn plan_after_failure(
    config: &Arc<RetryConfig>,
    outcome: Outcome,
    attempt: u32,
    previous_delay: &mut Duration,
    has_spare_request: bool,
) -> Plan {
    let Outcome::Failure { class, retry_after } = outcome else {
        return Plan::Return;
    };
    if !config.retryable.contains(class) {
        return Plan::Return;
    }
    if attempt >= config.max_attempts || !has_spare_request {
        return stop(config, attempt, class, RetryStop::Exhausted);
    }
    if config
        .availability
        .as_ref()
        .is_some_and(|signal| !signal.available())
    {
        return stop(config, attempt, class, RetryStop::Unavailable);
    }
    let delay = match retry_after {
        Some(hint) if config.honour_retry_after => {
            if hint > config.max_retry_after {
                return stop(config, attempt, class, RetryStop::RetryAfterTooLong);
            }
            hint
        }
        _ => config
            .backoff
            .delay(attempt, *previous_delay, config.random.unit()),
    };
    if let Some(deadline) = Deadline::current()
        && !deadline.fits(delay + config.min_attempt_time)
    {
        return stop(config, attempt, class, RetryStop::DeadlineTooClose);
    }
    if let Some(budget) = &config.budget
        && !budget.withdraw()
    {
        return stop(config, attempt, class, RetryStop::BudgetDenied);
    }
    *previous_delay = delay;
    if let Some(instruments) = &config.instruments {
        instruments.retry(class);
    }
    tracing::debug!(model = %config.model, attempt, ?delay, %class, "retrying");
    config.events.emit(|| ResilienceEvent::Retry {
        model: config.model,
        attempt,
        delay,
        class,
    });
    Plan::RetryAfter(delay)
}

#[cold]
fn stop(config: &Arc<RetryConfig>, attempts: u32, class: FailureClass, reason: RetryStop) -> Plan {
    if let Some(instruments) = &config.instruments {
        instruments.stop(reason);
    }
    tracing::debug!(model = %config.model, attempts, %class, ?reason, "not retrying");
    config.events.emit(|| ResilienceEvent::RetryStopped {
        model: config.model,
        attempts,
        class,
        reason,
    });
    Plan::Return
}

impl<S, Req, C> fmt::Debug for ResponseFuture<S, Req, C>
where
    S: Service<Req>,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.state {
            State::Calling { .. } => "calling",
            State::Backoff => "backoff",
            State::WaitingReady => "waiting_ready",
        };
        f.debug_struct("ResponseFuture")
            .field("state", &state)
            .field("attempt", &self.attempt)
            .finish()
    }
}
