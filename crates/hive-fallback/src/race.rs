//! Parallel and hedged routing: several models in flight at once, the first answer wins.

use std::{
    fmt,
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use hive_core::{BoxError, Classify, ResilienceEvent};
use pin_project_lite::pin_project;
use tokio::time::{Instant, Sleep};
use tower_service::Service;

use crate::{
    HedgeDelay, Strategy,
    cursor::{AttemptFuture, Cursor, Ending, Order, Pick, Timer, outcome_of},
    policy::Step,
    shared::{Routed, Shared},
};

/// One model in flight. Its call is boxed: a race holds a varying number of them.
struct Attempt<S, F> {
    index: usize,
    started: Instant,
    state: AttemptState<S, F>,
}

enum AttemptState<S, F> {
    Readying(S),
    Calling(Pin<Box<AttemptFuture<F>>>),
}

pin_project! {
    /// Several models at once (parallel or hedged); the first answer wins and the others are
    /// dropped, which cancels them, before the answer is returned.
    pub(crate) struct Race<S, Req, Res, C>
    where
        S: Service<Req>,
    {
        #[pin]
        timer: Timer,
        #[pin]
        hedge_timer: Sleep,
        hedge_armed: bool,
        shared: Arc<Shared<S, Res>>,
        classifier: C,
        request: Req,
        cursor: Cursor,
        in_flight: Vec<Attempt<S, S::Future>>,
        hedges: u32,
        // The route started first (a hedge wins when another answers).
        first: Option<usize>,
        started: bool,
        done: bool,
    }
}

/// What one pass over the attempts in flight came to.
enum Progress<T> {
    /// Nothing moved: wait to be woken.
    Idle,
    /// Something moved (an attempt started, failed or was replaced): look again.
    Moved,
    /// The race is over with this result.
    Finished(T),
}

impl<S, Req, Res, C> Race<S, Req, Res, C>
where
    S: Service<Req>,
{
    pub(crate) fn new(shared: Arc<Shared<S, Res>>, classifier: C, request: Req) -> Self {
        if let Strategy::Hedged {
            budget: Some(budget),
            ..
        } = &shared.strategy
        {
            budget.deposit();
        }
        let cursor = Cursor::new(&shared, Order { first: None });
        Self {
            timer: cursor.timer(),
            hedge_timer: tokio::time::sleep_until(shared.far),
            hedge_armed: false,
            shared,
            classifier,
            request,
            cursor,
            in_flight: Vec::new(),
            hedges: 0,
            first: None,
            started: false,
            done: false,
        }
    }
}

/// Starts the next available model; `false` when none is left or there is no time for it.
fn launch<S: Clone, Res, F>(
    shared: &Shared<S, Res>,
    cursor: &mut Cursor,
    in_flight: &mut Vec<Attempt<S, F>>,
) -> bool {
    match cursor.pick(shared) {
        Pick::Route(index) => {
            in_flight.push(Attempt {
                index,
                started: Instant::now(),
                state: AttemptState::Readying(shared.routes[index].service.clone()),
            });
            true
        }
        Pick::NoneLeft | Pick::NoTime => false,
    }
}

/// Starts a hedge beside the first model when the strategy, the count and the budget allow,
/// and reports it; `true` if one started.
fn hedge<S: Clone, Res, F>(
    shared: &Shared<S, Res>,
    cursor: &mut Cursor,
    in_flight: &mut Vec<Attempt<S, F>>,
    hedges: &mut u32,
) -> bool {
    let Strategy::Hedged {
        max_hedges, budget, ..
    } = &shared.strategy
    else {
        return false;
    };
    let Some((first, started)) = in_flight.first().map(|a| (a.index, a.started)) else {
        return false;
    };
    let allowed = *hedges < *max_hedges
        && cursor.has_more(shared)
        && budget.as_ref().is_none_or(|b| b.withdraw());
    if !(allowed && launch(shared, cursor, in_flight)) {
        return false;
    }
    *hedges += 1;
    if let Some(metrics) = &shared.metrics {
        metrics.hedge_fired();
    }
    if let Some(hedge) = in_flight.last() {
        let from = shared.routes[first].model;
        let to = shared.routes[hedge.index].model;
        let after = started.elapsed();
        tracing::debug!(%from, %to, ?after, "hedge");
        shared
            .events
            .emit(|| ResilienceEvent::Hedge { from, to, after });
    }
    true
}

/// The wait before the next hedge, from the first model's live latencies when asked.
fn hedge_delay<S, Res>(shared: &Shared<S, Res>, first: Option<usize>) -> Duration {
    match &shared.strategy {
        Strategy::Hedged {
            delay: HedgeDelay::Fixed(delay),
            ..
        } => *delay,
        Strategy::Hedged {
            delay:
                HedgeDelay::Percentile {
                    percentile,
                    min_samples,
                    otherwise,
                },
            ..
        } => first
            .and_then(|i| shared.routes[i].stats.percentile(*percentile, *min_samples))
            .unwrap_or(*otherwise),
        _ => Duration::MAX,
    }
}

type Output<Res> = Result<Routed<Res>, BoxError>;

impl<S, Req, Res, C> Race<S, Req, Res, C>
where
    S: Service<Req, Response = Res> + Clone,
    S::Error: Into<BoxError>,
    C: Classify<Res, S::Error>,
    Req: Clone,
{
    /// At the first poll: starts the first models (all of a parallel race's, one for a
    /// hedge) and arms the hedge timer.
    fn start(self: Pin<&mut Self>) {
        let this = self.project();
        let shared: &Shared<S, Res> = this.shared;
        let at_once = match &shared.strategy {
            Strategy::Parallel { first } => first.unwrap_or(shared.routes.len()),
            _ => 1,
        };
        while this.in_flight.len() < at_once && launch(shared, this.cursor, this.in_flight) {}
        *this.first = this.in_flight.first().map(|a| a.index);
        if let Strategy::Hedged { .. } = shared.strategy {
            let first = this.in_flight.first().map(|a| a.index);
            this.hedge_timer
                .reset(Instant::now() + hedge_delay(shared, first));
            *this.hedge_armed = !this.in_flight.is_empty();
        }
    }

    /// Starts a hedge when its timer fired; re-arms the timer for the next one.
    fn poll_hedge(self: Pin<&mut Self>, cx: &mut Context<'_>) -> bool {
        let mut this = self.project();
        if !*this.hedge_armed || this.hedge_timer.as_mut().poll(cx).is_pending() {
            return false;
        }
        *this.hedge_armed = false;
        let shared: &Shared<S, Res> = this.shared;
        if !hedge(shared, this.cursor, this.in_flight, this.hedges) {
            return false;
        }
        let first = this.in_flight.first().map(|a| a.index);
        this.hedge_timer
            .as_mut()
            .reset(Instant::now() + hedge_delay(shared, first));
        *this.hedge_armed = true;
        true
    }

    /// Polls every attempt in flight once: readies and calls them, takes outcomes, replaces
    /// failed ones with the next model, and ends the race on an answer.
    fn poll_attempts(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Progress<Output<Res>> {
        let this = self.project();
        let shared: &Shared<S, Res> = this.shared;
        let cursor = this.cursor;
        let mut progress = Progress::Idle;
        let mut i = 0;
        while i < this.in_flight.len() {
            let attempt = &mut this.in_flight[i];
            let index = attempt.index;
            match &mut attempt.state {
                AttemptState::Readying(service) => match service.poll_ready(cx) {
                    Poll::Pending => i += 1,
                    Poll::Ready(Err(error)) => {
                        this.in_flight.swap_remove(i);
                        cursor.not_ready(shared, index, error.into());
                        launch(shared, cursor, this.in_flight);
                        progress = Progress::Moved;
                    }
                    Poll::Ready(Ok(())) => {
                        let future = cursor.call(shared, index, service, this.request.clone());
                        attempt.started = Instant::now();
                        attempt.state = AttemptState::Calling(Box::pin(future));
                        progress = Progress::Moved;
                    }
                },
                AttemptState::Calling(future) => {
                    let Poll::Ready(result) = future.as_mut().poll(cx) else {
                        i += 1;
                        continue;
                    };
                    let latency = attempt.started.elapsed();
                    let outcome = outcome_of(this.classifier, &result);
                    match cursor.outcome(shared, (index, future.trace()), outcome, latency) {
                        step @ (Step::Answer | Step::Return) => {
                            // A hedge wins when an answer comes from another model than
                            // the first one started.
                            if let (Some(metrics), Step::Answer) = (&shared.metrics, step)
                                && *this.hedges > 0
                                && Some(index) != *this.first
                            {
                                metrics.hedge_won();
                            }
                            // The others lose: dropping them cancels them.
                            this.in_flight.clear();
                            *this.done = true;
                            let output = cursor.respond(shared, index, (step, outcome), result);
                            return Progress::Finished(output);
                        }
                        Step::Fallback | Step::LargerContext => {
                            this.in_flight.swap_remove(i);
                            let attempt = (outcome, latency);
                            cursor.failed_attempt(shared, index, attempt, this.classifier, result);
                            launch(shared, cursor, this.in_flight);
                            progress = Progress::Moved;
                        }
                    }
                }
            }
        }
        progress
    }

    /// Ends the race with no answer when nothing is left in flight.
    fn finish_if_empty(self: Pin<&mut Self>) -> Option<Output<Res>> {
        let this = self.project();
        if !this.in_flight.is_empty() {
            return None;
        }
        *this.done = true;
        let ending = if this.cursor.out_of_time {
            Ending::Deadline
        } else {
            Ending::Exhausted
        };
        Some(this.cursor.finish(this.shared, ending))
    }

    /// Ends the race when the request's deadline passed: what is in flight timed out.
    fn poll_deadline(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Option<Output<Res>> {
        let this = self.project();
        if !this.timer.expired(cx) {
            return None;
        }
        let shared: &Shared<S, Res> = this.shared;
        for attempt in this.in_flight.drain(..) {
            this.cursor.timed_out(shared, attempt.index);
        }
        *this.done = true;
        Some(this.cursor.finish(shared, Ending::Deadline))
    }
}

impl<S, Req, Res, C> Future for Race<S, Req, Res, C>
where
    S: Service<Req, Response = Res> + Clone,
    S::Error: Into<BoxError>,
    C: Classify<Res, S::Error>,
    Req: Clone,
{
    type Output = Output<Res>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let span = self.cursor.trace.handle();
        let _entered = span.as_ref().map(tracing::Span::enter);
        if self.done {
            return Poll::Ready(Err("fallback router future polled after completion".into()));
        }
        if let Some(output) = self.as_mut().poll_deadline(cx) {
            return Poll::Ready(output);
        }
        if !self.started {
            *self.as_mut().project().started = true;
            self.as_mut().start();
        }
        loop {
            let hedged = self.as_mut().poll_hedge(cx);
            let progress = self.as_mut().poll_attempts(cx);
            if let Progress::Finished(output) = progress {
                return Poll::Ready(output);
            }
            if let Some(output) = self.as_mut().finish_if_empty() {
                return Poll::Ready(output);
            }
            if !hedged && matches!(progress, Progress::Idle) {
                return Poll::Pending;
            }
        }
    }
}

impl<S, Req, Res, C> fmt::Debug for Race<S, Req, Res, C>
where
    S: Service<Req>,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Race")
            .field("in_flight", &self.in_flight.len())
            .field("attempts", &self.cursor.attempts)
            .field("hedges", &self.hedges)
            .field("failed", &self.cursor.failed())
            .finish_non_exhaustive()
    }
}
