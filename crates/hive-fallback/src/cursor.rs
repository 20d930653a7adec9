//! What every strategy tracks while it works through the routes: the order, the position,
//! the deadline, the attempts made and failed, and the failover events between them.

use std::{
    future::Future,
    pin::Pin,
    task::{Context, Poll},
    time::Duration,
};

use hive_core::{
    BoxError, Classified, Classify, Deadline, FailureClass, ModelId, Outcome, RejectReason,
    ResilienceEvent, Scoped,
};
use http::StatusCode;
use pin_project_lite::pin_project;
use tokio::time::{Instant, Sleep};
use tower_service::Service;

use crate::{
    FailedAttempt, FallbackError,
    policy::Step,
    shared::{RequestEnd, Routed, Shared},
    telemetry,
    trace::Trace,
};

/// The classified outcome of an attempt; a streamed answer that has begun is the answer.
pub(crate) fn outcome_of<C: Classify<T, E>, T, E>(
    classifier: &C,
    result: &Result<T, E>,
) -> Outcome {
    match classifier.classify(result) {
        Classified::Now(outcome) => outcome,
        Classified::AtEndOfStream => Outcome::Success,
    }
}

pin_project! {
    /// One call to a model: under the request's deadline when there is one (its
    /// [`Deadline::current`]), as it is otherwise; polled inside its attempt span.
    pub(crate) struct AttemptFuture<F> {
        #[pin]
        call: Call<F>,
        trace: Trace,
    }
}

pin_project! {
    #[project = CallProj]
    enum Call<F> {
        Scoped { #[pin] future: Scoped<F> },
        Plain { #[pin] future: F },
    }
}

pin_project! {
    /// The request's deadline timer; none is made (and no runtime handle taken) without a
    /// deadline.
    #[project = TimerProj]
    pub(crate) enum Timer {
        Off,
        Armed { #[pin] sleep: Sleep },
    }
}

impl Timer {
    /// Whether the deadline has passed.
    pub(crate) fn expired(self: Pin<&mut Self>, cx: &mut Context<'_>) -> bool {
        match self.project() {
            TimerProj::Off => false,
            TimerProj::Armed { sleep } => sleep.poll(cx).is_ready(),
        }
    }
}

impl<F> AttemptFuture<F> {
    /// The attempt's span, when somebody traces.
    pub(crate) fn trace(&self) -> &Trace {
        &self.trace
    }
}

impl<F: Future> Future for AttemptFuture<F> {
    type Output = F::Output;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let _entered = this.trace.enter();
        match this.call.project() {
            CallProj::Scoped { future } => future.poll(cx),
            CallProj::Plain { future } => future.poll(cx),
        }
    }
}

/// The order routes are tried in: priority order, or a weighted first pick and then the
/// others in priority order. Positions run from 0 to the number of routes.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Order {
    pub(crate) first: Option<usize>,
}

impl Order {
    fn route_at(self, position: usize) -> usize {
        match self.first {
            Some(first) if position == 0 => first,
            Some(first) if position <= first => position - 1,
            _ => position,
        }
    }
}

/// What `Cursor::pick` found.
pub(crate) enum Pick {
    /// Call this route next.
    Route(usize),
    /// Every route is tried or skipped.
    NoneLeft,
    /// The deadline leaves too little time for the next route.
    NoTime,
}

/// How a request ended without an answer.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Ending {
    Exhausted,
    Deadline,
}

#[derive(Debug, Default)]
struct Cold {
    /// After a context-length failure: the window the next model must exceed.
    min_context: Option<u64>,
    /// The model left last, for the failover event to the next one.
    leaving: Option<(ModelId, Outcome, Duration)>,
    failed: Vec<FailedAttempt>,
}

#[derive(Debug)]
pub(crate) struct Cursor {
    order: Order,
    next: usize,
    pub(crate) deadline: Option<Deadline>,
    /// What only failures need, allocated at the first one: the success path keeps the
    /// future small.
    cold: Option<Box<Cold>>,
    /// Routes skipped as unavailable before any failure, as a bitmask of their indices
    /// (routes 0 to 63): a request that goes round an open primary allocates nothing. Their
    /// [`FailedAttempt`]s are made only if the request fails.
    skipped: u64,
    /// The last of those, plus one (0: none), for the failover event into the next route.
    skipped_last: u8,
    pub(crate) attempts: u32,
    /// Set when the deadline left too little time for the next route.
    pub(crate) out_of_time: bool,
    /// Set once the request made its last-resort probe.
    last_resort_used: bool,
    /// When the request started, when its duration is recorded or traced.
    started: Option<Instant>,
    /// The request's span, when somebody traces.
    pub(crate) trace: Trace,
}

impl Cursor {
    /// A cursor for a request starting now; its deadline is the router's timeout or an
    /// outer deadline, the sooner.
    pub(crate) fn new<S, Res>(shared: &Shared<S, Res>, order: Order) -> Self {
        let trace = Trace::info(|| {
            tracing::info_span!(
                "hive.request",
                otel.name = "chat",
                gen_ai.operation.name = "chat",
                hive.route = shared.name.as_deref().unwrap_or(""),
                hive.strategy = shared.strategy.name(),
                gen_ai.response.model = tracing::field::Empty,
                hive.attempts = tracing::field::Empty,
                hive.result = tracing::field::Empty,
                hive.latency_ms = tracing::field::Empty,
            )
        });
        let own = shared.timeout.map(Deadline::after);
        let deadline = match (own, Deadline::current()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        Self {
            order,
            next: 0,
            deadline,
            cold: None,
            skipped: 0,
            skipped_last: 0,
            attempts: 0,
            out_of_time: false,
            last_resort_used: false,
            started: (shared.metrics.is_some() || trace.is_on()).then(Instant::now),
            trace,
        }
    }

    /// A timer for the deadline, if there is one.
    pub(crate) fn timer(&self) -> Timer {
        match self.deadline {
            Some(deadline) => Timer::Armed {
                sleep: tokio::time::sleep_until(deadline.instant()),
            },
            None => Timer::Off,
        }
    }

    /// Calls route `index`'s `service` (polled ready) under the request's deadline, if any,
    /// in a span of its own (a child of the request's).
    pub(crate) fn call<S: Service<Req>, Req, Res>(
        &self,
        shared: &Shared<S, Res>,
        index: usize,
        service: &mut S,
        request: Req,
    ) -> AttemptFuture<S::Future> {
        let trace = if self.trace.is_on() {
            let model = shared.routes[index].model.as_str();
            Trace::new(tracing::info_span!(
                parent: &self.trace.span(),
                "hive.attempt",
                otel.name = format!("chat {model}").as_str(),
                gen_ai.operation.name = "chat",
                gen_ai.request.model = model,
                hive.attempt = self.attempts,
                hive.outcome = tracing::field::Empty,
                error.r#type = tracing::field::Empty,
                hive.latency_ms = tracing::field::Empty,
            ))
        } else {
            Trace::default()
        };
        let call = {
            let _entered = trace.enter();
            match self.deadline {
                Some(deadline) => Call::Scoped {
                    future: deadline.scoped(deadline.sync_scope(|| service.call(request))),
                },
                None => Call::Plain {
                    future: service.call(request),
                },
            }
        };
        AttemptFuture { call, trace }
    }

    /// Now, when attempts are timed.
    pub(crate) fn clock<S, Res>(shared: &Shared<S, Res>) -> Option<Instant> {
        shared.timed.then(Instant::now)
    }

    /// Whether routes remain untried.
    pub(crate) fn has_more<S, Res>(&self, shared: &Shared<S, Res>) -> bool {
        self.next < shared.routes.len()
    }

    /// The next route to call, skipping (and recording) unavailable ones and, after a
    /// context-length failure, those not larger than the one that refused. Emits the
    /// failover event into the route chosen and counts the attempt.
    pub(crate) fn pick<S, Res>(&mut self, shared: &Shared<S, Res>) -> Pick {
        while self.next < shared.routes.len() {
            let index = self.order.route_at(self.next);
            let route = &shared.routes[index];
            self.next += 1;
            if let Some(min) = self.cold.as_ref().and_then(|c| c.min_context)
                && route.context_window.is_none_or(|w| w <= min)
            {
                continue;
            }
            if !route.is_available() {
                self.skip(shared, index);
                continue;
            }
            if self.no_time_for(route) {
                return Pick::NoTime;
            }
            if let Some(from) = self.take_skipped_last(shared) {
                failover(shared, from, route.model, UNAVAILABLE, Duration::ZERO);
            }
            if let Some((from, reason, latency)) = self.cold.as_mut().and_then(|c| c.leaving.take())
            {
                failover(shared, from, route.model, reason, latency);
            }
            self.attempts += 1;
            return Pick::Route(index);
        }
        self.last_resort(shared)
    }

    /// Records route `index` as skipped: in the bitmask while nothing failed (no
    /// allocation), else as a failed attempt.
    fn skip<S, Res>(&mut self, shared: &Shared<S, Res>, index: usize) {
        let model = shared.routes[index].model;
        if self.cold.is_none()
            && let (Ok(last), true) = (u8::try_from(index + 1), index < 64)
        {
            if let Some(from) = self.take_skipped_last(shared) {
                failover(shared, from, model, UNAVAILABLE, Duration::ZERO);
            }
            self.skipped |= 1 << index;
            self.skipped_last = last;
            return;
        }
        self.leave(shared, skipped_attempt(model), Duration::ZERO);
    }

    /// The model last skipped in the bitmask, if the next route's failover event is still
    /// to come from it.
    fn take_skipped_last<S, Res>(&mut self, shared: &Shared<S, Res>) -> Option<ModelId> {
        let last = std::mem::take(&mut self.skipped_last);
        (last > 0).then(|| shared.routes[usize::from(last) - 1].model)
    }

    /// Whether the deadline leaves too little time for `route` (and so for any).
    fn no_time_for<S>(&mut self, route: &crate::Route<S>) -> bool {
        if self
            .deadline
            .is_some_and(|d| d.remaining() <= route.min_attempt_time)
        {
            self.next = usize::MAX;
            self.out_of_time = true;
            return true;
        }
        false
    }

    /// Every route was skipped as unavailable: one probe, once per request, to the model
    /// whose break ends first, when its breaker lets one through early.
    #[cold]
    fn last_resort<S, Res>(&mut self, shared: &Shared<S, Res>) -> Pick {
        if self.attempts > 0 || self.last_resort_used {
            return Pick::NoneLeft;
        }
        self.last_resort_used = true;
        let Some((index, break_left)) = shared.last_resort() else {
            return Pick::NoneLeft;
        };
        let route = &shared.routes[index];
        if self.no_time_for(route) {
            return Pick::NoTime;
        }
        if let Some(cold) = self.cold.as_mut() {
            cold.leaving = None;
        }
        self.skipped_last = 0;
        tracing::info!(model = %route.model, ?break_left, "every model unavailable: last-resort probe");
        if shared.metrics.is_some() {
            telemetry::last_resort(route.model);
        }
        shared.events.emit(|| ResilienceEvent::LastResort {
            model: route.model,
            break_left,
        });
        self.attempts += 1;
        Pick::Route(index)
    }

    /// Records a failed (or skipped) route; the next route picked gets the failover event.
    fn leave<S, Res>(
        &mut self,
        shared: &Shared<S, Res>,
        attempt: FailedAttempt,
        latency: Duration,
    ) {
        let cold = self.cold.get_or_insert_default();
        if let Some((from, reason, latency)) = cold.leaving.take() {
            failover(shared, from, attempt.model, reason, latency);
        }
        cold.leaving = Some((attempt.model, attempt.outcome, latency));
        cold.failed.push(attempt);
    }

    /// A route's service failed to become ready.
    pub(crate) fn not_ready<S, Res>(
        &mut self,
        shared: &Shared<S, Res>,
        index: usize,
        error: BoxError,
    ) {
        let attempt = FailedAttempt {
            model: shared.routes[index].model,
            outcome: hive_core::classify_error(&*error),
            status: None,
            error: Some(error),
        };
        self.leave(shared, attempt, Duration::ZERO);
    }

    /// A route was still working when the deadline passed.
    pub(crate) fn timed_out<S, Res>(&mut self, shared: &Shared<S, Res>, index: usize) {
        self.cold
            .get_or_insert_default()
            .failed
            .push(FailedAttempt {
                model: shared.routes[index].model,
                outcome: Outcome::failure(FailureClass::Timeout),
                status: None,
                error: None,
            });
    }

    /// Decides what a route's outcome means and updates the live statistics. When the
    /// request moves on, record the failure with [`Cursor::failed_attempt`].
    pub(crate) fn outcome<S, Res>(
        &mut self,
        shared: &Shared<S, Res>,
        (index, trace): (usize, &Trace),
        outcome: Outcome,
        latency: Duration,
    ) -> Step {
        let route = &shared.routes[index];
        if trace.is_on() {
            trace.record("hive.outcome", outcome.label());
            trace.record("hive.latency_ms", latency.as_secs_f64() * 1000.0);
            if !matches!(outcome, Outcome::Success) {
                trace.record("error.type", outcome.label());
            }
        }
        if shared.track_stats {
            route.stats.record(outcome == Outcome::Success, latency);
        }
        if let Some(metrics) = &route.metrics
            && !matches!(outcome, Outcome::Rejected(_))
        {
            metrics.attempt(latency);
        }
        if let Some(observe) = &route.observer {
            observe(&outcome, latency);
        }
        if outcome == Outcome::ClientError(hive_core::ClientErrorClass::Unauthorized) {
            tracing::warn!(model = %route.model, "credentials rejected");
            shared
                .events
                .emit(|| ResilienceEvent::CredentialsRejected { model: route.model });
        }
        let mut step = shared.policy.decide(&outcome);
        if step == Step::LargerContext {
            let here = route.context_window.unwrap_or(0);
            let larger = (self.next..shared.routes.len())
                .map(|p| self.order.route_at(p))
                .any(|i| shared.routes[i].context_window.is_some_and(|w| w > here));
            if larger {
                self.cold.get_or_insert_default().min_context = Some(here);
            } else {
                step = Step::Return;
            }
        }
        step
    }

    /// Records an attempt the request moved on from: its outcome, the HTTP status its
    /// classifier knows, and its error if it returned one.
    pub(crate) fn failed_attempt<S, Res, T, E: Into<BoxError>, C: Classify<T, E>>(
        &mut self,
        shared: &Shared<S, Res>,
        index: usize,
        (outcome, latency): (Outcome, Duration),
        classifier: &C,
        result: Result<T, E>,
    ) {
        let status: Option<StatusCode> = classifier.status(&result);
        let attempt = FailedAttempt {
            model: shared.routes[index].model,
            outcome,
            status,
            error: result.err().map(Into::into),
        };
        self.leave(shared, attempt, latency);
    }

    /// The result of route `index` goes to the caller (its answer, or its error when the
    /// policy returns it): kept as the last good answer when it is one, counted, and told
    /// where it came from.
    pub(crate) fn respond<S, Res, E: Into<BoxError>>(
        &self,
        shared: &Shared<S, Res>,
        index: usize,
        (step, outcome): (Step, Outcome),
        result: Result<Res, E>,
    ) -> Result<Routed<Res>, BoxError> {
        let end = if matches!(outcome, Outcome::Failure { .. } | Outcome::Rejected(_)) {
            RequestEnd::Failed
        } else {
            RequestEnd::Answered
        };
        self.ended(shared, end);
        let response = result.map_err(Into::into)?;
        let model = shared.routes[index].model;
        self.trace.record("gen_ai.response.model", model.as_str());
        if step == Step::Answer
            && let Some(keep) = &shared.on_answer
        {
            keep(&response);
        }
        Ok(Routed {
            response,
            model: Some(model),
            attempts: self.attempts,
            degraded: false,
        })
    }

    /// No model answered: the degraded answer if there is one, else the typed error with
    /// the attempts in priority order (the primary's first).
    pub(crate) fn finish<S, Res>(
        &mut self,
        shared: &Shared<S, Res>,
        ending: Ending,
    ) -> Result<Routed<Res>, BoxError> {
        let degraded = shared.degraded.as_ref().and_then(|answer| answer());
        self.ended(
            shared,
            if degraded.is_some() {
                RequestEnd::Degraded
            } else {
                RequestEnd::Failed
            },
        );
        if let Some(response) = degraded {
            return Ok(Routed {
                response,
                model: None,
                attempts: self.attempts,
                degraded: true,
            });
        }
        let mut attempts = self.cold.take().map(|c| c.failed).unwrap_or_default();
        attempts.extend(
            (0..shared.routes.len().min(64))
                .filter(|i| self.skipped & (1 << i) != 0)
                .map(|i| skipped_attempt(shared.routes[i].model)),
        );
        attempts.sort_by_key(|a| shared.routes.iter().position(|r| r.model == a.model));
        Err(Box::new(match ending {
            Ending::Exhausted => FallbackError::Exhausted { attempts },
            Ending::Deadline => FallbackError::DeadlineExceeded { attempts },
        }))
    }

    /// Tells the router's hook and metrics how the request ended.
    fn ended<S, Res>(&self, shared: &Shared<S, Res>, end: RequestEnd) {
        if let Some(record) = &shared.on_result {
            record(end);
        }
        if self.trace.is_on() {
            self.trace.record("hive.attempts", self.attempts);
            self.trace.record("hive.result", end.as_str());
            if let Some(started) = self.started {
                let took = started.elapsed().as_secs_f64() * 1000.0;
                self.trace.record("hive.latency_ms", took);
            }
        }
        if let Some(metrics) = &shared.metrics {
            metrics.request(end, self.started.map(|s| s.elapsed()));
        }
    }

    /// The attempts that failed so far, for Debug.
    pub(crate) fn failed(&self) -> &[FailedAttempt] {
        self.cold.as_ref().map_or(&[], |c| &c.failed)
    }
}

/// A route skipped because it would not take the call (breaker open, unhealthy, drained).
const UNAVAILABLE: Outcome = Outcome::Rejected(RejectReason::Unavailable);

/// The record of `model` skipped as unavailable.
fn skipped_attempt(model: ModelId) -> FailedAttempt {
    FailedAttempt {
        model,
        outcome: UNAVAILABLE,
        status: None,
        error: None,
    }
}

/// Reports a move from one model to the next.
pub(crate) fn failover<S, Res>(
    shared: &Shared<S, Res>,
    from: ModelId,
    to: ModelId,
    reason: Outcome,
    latency: Duration,
) {
    tracing::debug!(%from, %to, ?reason, ?latency, "failover");
    if shared.metrics.is_some() {
        telemetry::failover(from, to, &reason);
    }
    shared.events.emit(|| ResilienceEvent::Failover {
        from,
        to,
        reason,
        latency,
    });
}
