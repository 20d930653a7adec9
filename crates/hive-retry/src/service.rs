use std::{
    sync::Arc,
    task::{Context, Poll},
};

use hive_core::{BoxError, Classify};
use tower_service::Service;

use crate::{RetryConfig, future::ResponseFuture};

/// A service that retries failed calls; built by [`RetryLayer`](crate::RetryLayer).
///
/// `poll_ready` forwards the inner service's readiness. `call` clones the request once (for
/// a possible retry; make bodies cheap to clone, e.g. `Bytes`) and the inner service once
/// (the ready one is used for the first attempt, the clone is polled ready again before each
/// retry).
///
/// The success path takes no lock and allocates nothing; it shares one counter (the
/// config's reference count) and, when a budget is set, makes one deposit per request.
#[derive(Debug)]
pub struct Retry<S, C> {
    inner: S,
    config: Arc<RetryConfig>,
    classifier: C,
}

impl<S: Clone, C: Clone> Clone for Retry<S, C> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            config: Arc::clone(&self.config),
            classifier: self.classifier.clone(),
        }
    }
}

impl<S, C> Retry<S, C> {
    pub(crate) fn new(inner: S, config: Arc<RetryConfig>, classifier: C) -> Self {
        Self {
            inner,
            config,
            classifier,
        }
    }

    /// The wrapped service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }
}

impl<S, C, Req> Service<Req> for Retry<S, C>
where
    S: Service<Req> + Clone,
    S::Error: Into<BoxError>,
    C: Classify<S::Response, S::Error> + Clone,
    Req: Clone,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = ResponseFuture<S, Req, C>;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    #[inline]
    fn call(&mut self, request: Req) -> Self::Future {
        if let Some(budget) = &self.config.budget {
            budget.deposit();
        }
        let spare = (self.config.max_attempts > 1).then(|| request.clone());
        // Call the service that was polled ready; keep a clone for the retries.
        let clone = self.inner.clone();
        let mut ready = std::mem::replace(&mut self.inner, clone);
        let future = ready.call(request);
        ResponseFuture::new(
            future,
            ready,
            spare,
            Arc::clone(&self.config),
            self.classifier.clone(),
        )
    }
}
