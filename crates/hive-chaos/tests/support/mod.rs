//! Helpers shared by the tests: a model that answers at once, and one call polled by hand.

#![allow(clippy::unwrap_used)]
#![allow(dead_code)]

use std::{
    future::{Ready, ready},
    pin::pin,
    task::{Context, Poll, Waker},
};

use hive_chaos::InjectedError;
use hive_core::BoxError;
use tower::Service;

/// A model that answers its request at once.
#[derive(Clone, Copy, Debug)]
pub(crate) struct InstantModel;

impl Service<u64> for InstantModel {
    type Response = u64;
    type Error = BoxError;
    type Future = Ready<Result<u64, BoxError>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: u64) -> Self::Future {
        ready(Ok(request))
    }
}

/// One call that must finish at once: `true` when a fault was injected.
pub(crate) fn injected<S: Service<u64, Response = u64, Error = BoxError>>(service: &mut S) -> bool {
    let mut cx = Context::from_waker(Waker::noop());
    let Poll::Ready(Ok(())) = service.poll_ready(&mut cx) else {
        panic!("not ready")
    };
    match pin!(service.call(7)).poll(&mut cx) {
        Poll::Ready(Ok(7)) => false,
        Poll::Ready(Err(error)) if error.is::<InjectedError>() => true,
        Poll::Ready(other) => panic!("unexpected {other:?}"),
        Poll::Pending => panic!("a call without delay was pending"),
    }
}
