use std::{
    sync::{Arc, atomic::Ordering},
    task::{Context, Poll},
};

use hive_core::ModelId;
use tower_service::Service;

use crate::{ChaosHandle, Faults, engine::Shared, future::ResponseFuture};

/// A service that injects faults into calls of its model; built by
/// [`ChaosLayer`](crate::ChaosLayer).
///
/// `poll_ready` forwards the inner service's readiness. `call` reads the switch (one relaxed
/// atomic load); off, it calls the inner service and returns its future wrapped, nothing
/// more. On, it reads the rules (a lock-free load), and for an injected failure does not
/// call the inner service at all (the readiness it reserved stays for the next call); a
/// delay or a stream fault wraps the inner service's future.
#[derive(Clone, Debug)]
pub struct ChaosService<S, F> {
    inner: S,
    shared: Arc<Shared>,
    model: ModelId,
    faults: F,
}

impl<S, F> ChaosService<S, F> {
    pub(crate) fn new(inner: S, shared: Arc<Shared>, model: ModelId, faults: F) -> Self {
        Self {
            inner,
            shared,
            model,
            faults,
        }
    }

    /// The wrapped service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The handle of the layer that made this service.
    pub fn handle(&self) -> ChaosHandle {
        ChaosHandle {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<S, F, Req> Service<Req> for ChaosService<S, F>
where
    S: Service<Req>,
    F: Faults<S::Response, S::Error> + Clone,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, F, S::Response, S::Error>;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    #[inline]
    fn call(&mut self, request: Req) -> Self::Future {
        if !self.shared.enabled.load(Ordering::Relaxed) {
            return ResponseFuture::pass(self.inner.call(request));
        }
        self.inject(request)
    }
}

impl<S, F> ChaosService<S, F> {
    /// The enabled path: what the rules decide for this call.
    #[cold]
    #[inline(never)]
    fn inject<Req>(&mut self, request: Req) -> ResponseFuture<S::Future, F, S::Response, S::Error>
    where
        S: Service<Req>,
        F: Faults<S::Response, S::Error> + Clone,
    {
        let rules = self.shared.rules.load();
        let plan = rules.plan(self.model, tokio::time::Instant::now());
        match plan.failure {
            Some(crate::Fault::Hang) => ResponseFuture::hang(),
            Some(fault) => {
                let delay = match fault {
                    crate::Fault::Timeout { after } => plan.delay.saturating_add(*after),
                    _ => plan.delay,
                };
                ResponseFuture::fail(delay, self.faults.failure(fault, self.model))
            }
            None => {
                let future = self.inner.call(request);
                match plan.stream {
                    None if plan.delay.is_zero() => ResponseFuture::pass(future),
                    stream => ResponseFuture::delayed(
                        future,
                        plan.delay,
                        stream.map(|fault| (fault, self.faults.clone(), self.model)),
                    ),
                }
            }
        }
    }
}
