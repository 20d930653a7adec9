//! [`CircuitBreaker`]: the service a [`CircuitBreakerLayer`](crate::CircuitBreakerLayer) builds.

use std::{
    sync::Arc,
    task::{Context, Poll},
};

use hive_core::{BoxError, Classify, Rejected};
use tower_service::Service;

use crate::{
    BreakerHandle,
    breaker::{Admission, Breaker},
    future::{Recording, ResponseFuture},
};

/// A service guarded by a circuit breaker; built by
/// [`CircuitBreakerLayer`](crate::CircuitBreakerLayer).
///
/// `poll_ready` only forwards the inner service's readiness: an open breaker never makes the
/// service unready, so a balancer or router keeps seeing it and gets a fast, typed answer.
/// The decision is made in `call`, with one atomic load when the breaker is closed: a
/// rejected call returns [`Rejected`] at once and never reaches the inner service.
#[derive(Debug)]
pub struct CircuitBreaker<S, C> {
    inner: S,
    breaker: Arc<Breaker>,
    classifier: C,
}

impl<S: Clone, C: Clone> Clone for CircuitBreaker<S, C> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            breaker: Arc::clone(&self.breaker),
            classifier: self.classifier.clone(),
        }
    }
}

impl<S, C> CircuitBreaker<S, C> {
    pub(crate) fn new(inner: S, breaker: Arc<Breaker>, classifier: C) -> Self {
        Self {
            inner,
            breaker,
            classifier,
        }
    }

    /// A handle on this service's breaker.
    pub fn handle(&self) -> BreakerHandle {
        BreakerHandle::new(Arc::clone(&self.breaker))
    }

    /// The wrapped service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }
}

impl<S, C, Req> Service<Req> for CircuitBreaker<S, C>
where
    S: Service<Req>,
    S::Error: Into<BoxError>,
    C: Classify<S::Response, S::Error> + Clone,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = ResponseFuture<S::Future, C>;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    #[inline]
    fn call(&mut self, request: Req) -> Self::Future {
        match self.breaker.admit() {
            Admission::Tracked(ticket) => {
                // The recording guards the ticket before the inner service runs: if `call`
                // panics, dropping it gives a half-open permit back.
                let recording = Recording::new(Arc::clone(&self.breaker), ticket);
                let future = self.inner.call(request);
                ResponseFuture::called(future, recording, self.classifier.clone())
            }
            Admission::Untracked => ResponseFuture::passthrough(self.inner.call(request)),
            Admission::Rejected(reason) => ResponseFuture::rejected(Rejected {
                model: self.breaker.config.model,
                reason,
            }),
        }
    }
}
