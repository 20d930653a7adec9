//! Shared pieces of the benches: a model service that answers at once, and the stacks
//! measured (hive's and its peers', with equivalent settings).

use std::{
    fmt,
    future::{Future, Ready, ready},
    hint::black_box,
    pin::pin,
    task::{Context, Poll, Waker},
    time::Duration,
};

use hive_breaker::{CircuitBreaker, CircuitBreakerConfig, CircuitBreakerLayer};
use hive_core::ErrorClassifier;
use hive_retry::{Jitter, Retry, RetryConfig, RetryLayer};
use tower::{Layer, Service};

/// The error of [`InstantModel`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ModelError;

impl fmt::Display for ModelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("model error")
    }
}

impl std::error::Error for ModelError {}

impl hive_core::AsError for ModelError {
    fn as_error(&self) -> &(dyn std::error::Error + 'static) {
        self
    }
}

/// A model that answers every request at once with its input: the bare service.
#[derive(Clone, Copy, Debug, Default)]
pub struct InstantModel;

impl Service<u64> for InstantModel {
    type Response = u64;
    type Error = ModelError;
    type Future = Ready<Result<u64, ModelError>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), ModelError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: u64) -> Self::Future {
        ready(Ok(request))
    }
}

/// The breaker settings used for every breaker in the benches: a count window of 20 calls,
/// at least 10, 50% failure rate, open 30 s, 3 probes.
pub fn breaker_layer() -> CircuitBreakerLayer {
    #[allow(clippy::expect_used)]
    CircuitBreakerLayer::new(
        CircuitBreakerConfig::builder()
            .model("bench")
            .count_window(20)
            .minimum_calls(10)
            .failure_rate_threshold(0.5)
            .open_duration(Duration::from_secs(30))
            .half_open_permits(3)
            .build()
            .expect("valid breaker settings"),
    )
}

/// The retry settings used for every retry in the benches: 3 attempts, exponential backoff
/// from 100 ms.
pub fn retry_layer() -> RetryLayer {
    #[allow(clippy::expect_used)]
    RetryLayer::new(
        RetryConfig::builder()
            .model("bench")
            .max_attempts(3)
            .backoff(Duration::from_millis(100), Duration::from_secs(10))
            .jitter(Jitter::Full)
            .build()
            .expect("valid retry settings"),
    )
}

/// One warm call as a caller makes it: `poll_ready`, `call`, and the response future pinned
/// in place and polled (it is ready at once). Panics if anything is pending.
#[inline]
pub fn one_call<S: Service<u64>>(svc: &mut S, request: u64) -> Result<S::Response, S::Error> {
    let mut cx = Context::from_waker(Waker::noop());
    match svc.poll_ready(&mut cx) {
        Poll::Ready(Ok(())) => {}
        Poll::Ready(Err(e)) => return Err(e),
        Poll::Pending => panic!("service not ready"),
    }
    let future = pin!(svc.call(black_box(request)));
    match future.poll(&mut cx) {
        Poll::Ready(result) => result,
        Poll::Pending => panic!("response pending"),
    }
}

/// hive's per-model stack without health gate and timeout: retry over breaker.
pub type HiveRetryBreaker = Retry<CircuitBreaker<InstantModel, ErrorClassifier>, ErrorClassifier>;

/// Builds [`HiveRetryBreaker`].
pub fn hive_retry_breaker() -> HiveRetryBreaker {
    retry_layer().layer(breaker_layer().layer(InstantModel))
}
