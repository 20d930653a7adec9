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

/// A fault hive-chaos injects is the model's error (the `hive_chaos_disabled` bench never
/// injects one).
impl From<hive_chaos::InjectedError> for ModelError {
    fn from(_: hive_chaos::InjectedError) -> Self {
        Self
    }
}

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

/// A health gate over [`InstantModel`], reading a healthy model's status.
pub fn hive_gate() -> hive_health::HealthGate<InstantModel> {
    let registry = hive_health::HealthRegistry::new();
    let health = registry.register("bench");
    health.record_check(true, Duration::from_millis(1));
    hive_health::HealthGateLayer::new(health).layer(InstantModel)
}

/// A router over two [`HiveRetryBreaker`] stacks; the first answers.
pub type Router = hive_fallback::FallbackRouter<HiveRetryBreaker, u64>;

/// Builds a [`Router`] with `strategy`; when `primary_open`, the primary's breaker is forced
/// open so every call goes to the second model.
#[allow(clippy::expect_used)]
pub fn router(strategy: hive_fallback::Strategy, primary_open: bool) -> Router {
    let primary = breaker_layer().layer(InstantModel);
    let handle = primary.handle();
    if primary_open {
        handle.force_open();
    }
    hive_fallback::FallbackRouter::builder()
        .strategy(strategy)
        .route(
            hive_fallback::Route::new("primary", retry_layer().layer(primary))
                .available_when(handle),
        )
        .route(hive_fallback::Route::new("fallback", hive_retry_breaker()))
        .build()
        .expect("valid router")
}

/// hive's per-model stack without health gate and timeout: retry over breaker.
pub type HiveRetryBreaker = Retry<CircuitBreaker<InstantModel, ErrorClassifier>, ErrorClassifier>;

/// Builds [`HiveRetryBreaker`].
pub fn hive_retry_breaker() -> HiveRetryBreaker {
    retry_layer().layer(breaker_layer().layer(InstantModel))
}

/// Builds [`HiveRetryBreaker`] with metrics on in both layers, recording into the Prometheus
/// recorder (installed once per process, here).
pub fn hive_retry_breaker_metrics() -> HiveRetryBreaker {
    static EXPORTER: std::sync::OnceLock<hive_monitor::PrometheusExporter> =
        std::sync::OnceLock::new();
    #[allow(clippy::expect_used)]
    EXPORTER.get_or_init(|| hive_monitor::install_prometheus().expect("one recorder"));
    #[allow(clippy::expect_used)]
    let retry = RetryConfig::builder()
        .model("bench")
        .max_attempts(3)
        .backoff(Duration::from_millis(100), Duration::from_secs(10))
        .jitter(Jitter::Full)
        .metrics(true)
        .build()
        .expect("valid retry settings");
    #[allow(clippy::expect_used)]
    let breaker = CircuitBreakerConfig::builder()
        .model("bench")
        .count_window(20)
        .minimum_calls(10)
        .failure_rate_threshold(0.5)
        .open_duration(Duration::from_secs(30))
        .half_open_permits(3)
        .metrics(true)
        .build()
        .expect("valid breaker settings");
    RetryLayer::new(retry).layer(CircuitBreakerLayer::new(breaker).layer(InstantModel))
}

/// The error of tower-resilience's breaker over [`InstantModel`].
pub type PeerBreakerError = tower_resilience::circuitbreaker::CircuitBreakerError<ModelError>;

/// tower-resilience 0.13's circuit breaker with the settings of [`breaker_layer`].
#[allow(clippy::expect_used)]
pub fn tower_resilience_breaker<S>(
    inner: S,
) -> impl Service<u64, Response = u64, Error = PeerBreakerError, Future: Send> + Clone + Send + 'static
where
    S: Service<u64, Response = u64, Error = ModelError> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    tower_resilience::circuitbreaker::CircuitBreakerLayer::builder()
        .failure_rate_threshold(0.5)
        .sliding_window_size(20)
        .minimum_number_of_calls(10)
        .wait_duration_in_open(Duration::from_secs(30))
        .permitted_calls_in_half_open(3)
        .build()
        .expect("valid tower-resilience settings")
        .layer(inner)
}

/// tower-resilience 0.13's retry (3 attempts, exponential backoff from 100 ms) over its
/// breaker: the peer of [`hive_retry_breaker`].
pub fn tower_resilience_retry_breaker()
-> impl Service<u64, Response = u64, Future: Send> + Clone + Send + 'static {
    tower_resilience::retry::RetryLayer::<u64, u64, PeerBreakerError>::builder()
        .max_attempts(3)
        .exponential_backoff(Duration::from_millis(100))
        .build()
        .layer(tower_resilience_breaker(InstantModel))
}

/// failsafe is not a tower layer: it wraps each response future. This service does that,
/// as a user of failsafe would, with a rate-based policy (at least 50% success over 10
/// calls in 30 s) and a 30 s break.
#[derive(Clone, Debug)]
pub struct FailsafeBreaker<B> {
    breaker: B,
    inner: InstantModel,
}

impl<B: failsafe::futures::CircuitBreaker> Service<u64> for FailsafeBreaker<B> {
    type Response = u64;
    type Error = failsafe::Error<ModelError>;
    type Future = failsafe::futures::ResponseFuture<
        std::future::Ready<Result<u64, ModelError>>,
        B::FailurePolicy,
        B::Instrument,
        failsafe::Any,
    >;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(failsafe::Error::Inner)
    }

    fn call(&mut self, request: u64) -> Self::Future {
        self.breaker.call(self.inner.call(request))
    }
}

/// failsafe 1.3 around [`InstantModel`].
pub fn failsafe_breaker() -> FailsafeBreaker<impl failsafe::futures::CircuitBreaker + Clone> {
    let backoff = failsafe::backoff::constant(Duration::from_secs(30));
    let policy = failsafe::failure_policy::success_rate_over_time_window(
        0.5,
        10,
        Duration::from_secs(30),
        backoff,
    );
    FailsafeBreaker {
        breaker: failsafe::Config::new().failure_policy(policy).build(),
        inner: InstantModel,
    }
}

/// A current-thread runtime and a simulator serving model `m` (healthy, on loopback): the
/// ground of every bench that makes real calls.
pub fn runtime_with_simulator() -> (tokio::runtime::Runtime, hive_sim::Simulator) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let sim = runtime
        .block_on(hive_sim::Simulator::start([("m", hive_sim::Script::new())]))
        .expect("the simulator starts");
    (runtime, sim)
}
