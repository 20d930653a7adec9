//! The router's response future: one state machine per strategy, over the routes, under one
//! deadline.

use std::{
    fmt,
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use hive_core::{BoxError, Classify};
use pin_project_lite::pin_project;
use tower_service::Service;

use crate::{
    Strategy,
    cursor::Order,
    race::Race,
    sequential::Sequential,
    shared::{Routed, Shared},
};

pin_project! {
    /// The response future of [`FallbackRouter`](crate::FallbackRouter).
    #[must_use = "futures do nothing unless polled"]
    pub struct ResponseFuture<S, Req, Res, C>
    where
        S: Service<Req>,
    {
        #[pin]
        inner: Inner<S, Req, Res, C>,
    }
}

pin_project! {
    #[project = InnerProj]
    enum Inner<S, Req, Res, C>
    where
        S: Service<Req>,
    {
        Sequential { #[pin] future: Sequential<S, Req, Res, C> },
        Race { #[pin] future: Race<S, Req, Res, C> },
    }
}

impl<S, Req, Res, C> ResponseFuture<S, Req, Res, C>
where
    S: Service<Req>,
{
    pub(crate) fn new(shared: Arc<Shared<S, Res>>, classifier: C, request: Req) -> Self {
        let inner = match &shared.strategy {
            Strategy::Sequential => Inner::Sequential {
                future: Sequential::new(shared, classifier, request, Order { first: None }),
            },
            Strategy::Weighted { random } => {
                let first = shared.weighted_first(random);
                Inner::Sequential {
                    future: Sequential::new(shared, classifier, request, Order { first }),
                }
            }
            Strategy::Parallel { .. } | Strategy::Hedged { .. } => Inner::Race {
                future: Race::new(shared, classifier, request),
            },
        };
        Self { inner }
    }
}

impl<S, Req, Res, C> Future for ResponseFuture<S, Req, Res, C>
where
    S: Service<Req, Response = Res> + Clone,
    S::Error: Into<BoxError>,
    C: Classify<Res, S::Error>,
    Req: Clone,
{
    type Output = Result<Routed<Res>, BoxError>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().inner.project() {
            InnerProj::Sequential { future } => future.poll(cx),
            InnerProj::Race { future } => future.poll(cx),
        }
    }
}

impl<S, Req, Res, C> fmt::Debug for ResponseFuture<S, Req, Res, C>
where
    S: Service<Req>,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.inner {
            Inner::Sequential { future } => future.fmt(f),
            Inner::Race { future } => future.fmt(f),
        }
    }
}
