//! [`HealthGateLayer`]: fail fast on a model the registry calls unhealthy.

use std::{
    fmt,
    future::Future,
    pin::Pin,
    task::{Context, Poll},
};

use hive_core::{BoxError, HealthStatus, RejectReason, Rejected};
use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;

use crate::HealthHandle;

/// Rejects calls to a model its registry marks [`HealthStatus::Unhealthy`]; every other
/// status (unknown, healthy, degraded) passes.
///
/// Put it outermost in a model's stack: a rejection costs one atomic load, is a
/// [`Rejected`] error with [`RejectReason::Unhealthy`], and classifies as
/// `Outcome::Rejected`, which retry never retries and a breaker never counts.
#[derive(Clone, Debug)]
#[must_use]
pub struct HealthGateLayer {
    health: HealthHandle,
}

impl HealthGateLayer {
    /// A gate reading `health` (see [`HealthRegistry::register`](crate::HealthRegistry)).
    pub fn new(health: HealthHandle) -> Self {
        Self { health }
    }
}

impl<S> Layer<S> for HealthGateLayer {
    type Service = HealthGate<S>;

    fn layer(&self, inner: S) -> Self::Service {
        HealthGate {
            inner,
            health: self.health.clone(),
        }
    }
}

/// The service of [`HealthGateLayer`]. `poll_ready` forwards the inner readiness; the
/// decision is made in `call`.
#[derive(Clone, Debug)]
pub struct HealthGate<S> {
    inner: S,
    health: HealthHandle,
}

impl<S, Req> Service<Req> for HealthGate<S>
where
    S: Service<Req>,
    S::Error: Into<BoxError>,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = GateFuture<S::Future>;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    #[inline]
    fn call(&mut self, request: Req) -> Self::Future {
        if self.health.status() == HealthStatus::Unhealthy {
            return GateFuture {
                state: State::Rejected {
                    error: Some(Box::new(Rejected {
                        model: self.health.model(),
                        reason: RejectReason::Unhealthy,
                    })),
                },
            };
        }
        GateFuture {
            state: State::Called {
                future: self.inner.call(request),
            },
        }
    }
}

pin_project! {
    /// The response future of [`HealthGate`].
    #[must_use = "futures do nothing unless polled"]
    pub struct GateFuture<F> {
        #[pin]
        state: State<F>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F> {
        Called { #[pin] future: F },
        Rejected { error: Option<BoxError> },
    }
}

impl<F, T, E> Future for GateFuture<F>
where
    F: Future<Output = Result<T, E>>,
    E: Into<BoxError>,
{
    type Output = Result<T, BoxError>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().state.project() {
            StateProj::Called { future } => future.poll(cx).map_err(Into::into),
            StateProj::Rejected { error } => Poll::Ready(Err(error
                .take()
                .unwrap_or_else(|| "health gate future polled after completion".into()))),
        }
    }
}

impl<F> fmt::Debug for GateFuture<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.state {
            State::Called { .. } => "called",
            State::Rejected { .. } => "rejected",
        };
        f.debug_struct("GateFuture").field("state", &state).finish()
    }
}
