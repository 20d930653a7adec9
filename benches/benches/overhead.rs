//! Overhead of the layers on the success path, beside a bare service and the peers.
//!
//! `overhead`: one call = `poll_ready` + `call` + polling the response pinned in place (as
//! an `.await` does) on a warm service, single thread. `contended`: two OS threads calling clones of one service that share a
//! breaker; throughput in calls per second.
//!
//! Run: `cargo bench -p hive-benches --bench overhead`

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::{hint::black_box, sync::Arc, time::Duration};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use hive_benches::{
    InstantModel, ModelError, breaker_layer, hive_retry_breaker, one_call, retry_layer,
};
use tower::{Layer, Service, ServiceExt};

type PeerBreakerError = tower_resilience::circuitbreaker::CircuitBreakerError<ModelError>;

fn tower_resilience_breaker<S>(
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
        .unwrap()
        .layer(inner)
}

fn tower_resilience_retry_breaker()
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
#[derive(Clone)]
struct FailsafeBreaker<B> {
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

fn failsafe_breaker() -> FailsafeBreaker<impl failsafe::futures::CircuitBreaker + Clone> {
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

fn overhead(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let _context = runtime.enter();
    let mut group = c.benchmark_group("overhead");
    group.throughput(Throughput::Elements(1));

    let mut bare = InstantModel;
    group.bench_function("bare", |b| b.iter(|| one_call(&mut bare, 1)));
    let mut retry = retry_layer().layer(InstantModel);
    group.bench_function("hive_retry", |b| b.iter(|| one_call(&mut retry, 1)));
    let mut breaker = breaker_layer().layer(InstantModel);
    group.bench_function("hive_breaker", |b| b.iter(|| one_call(&mut breaker, 1)));
    let mut stack = hive_retry_breaker();
    group.bench_function("hive_retry_breaker", |b| b.iter(|| one_call(&mut stack, 1)));
    let mut peer_breaker = tower_resilience_breaker(InstantModel);
    group.bench_function("tower_resilience_breaker", |b| {
        b.iter(|| one_call(&mut peer_breaker, 1))
    });
    let mut peer_stack = tower_resilience_retry_breaker();
    group.bench_function("tower_resilience_retry_breaker", |b| {
        b.iter(|| one_call(&mut peer_stack, 1))
    });
    let mut failsafe = failsafe_breaker();
    group.bench_function("failsafe_breaker", |b| {
        b.iter(|| one_call(&mut failsafe, 1))
    });
    group.finish();
}

/// Two OS threads share one breaker (clones of one service); each makes half the calls.
fn contended_run<S>(svc: &S, iters: u64) -> Duration
where
    S: Service<u64> + Clone + Send + 'static,
    S::Future: Send,
{
    let barrier = Arc::new(std::sync::Barrier::new(3));
    let threads: Vec<_> = (0..2)
        .map(|_| {
            let (mut svc, barrier) = (svc.clone(), barrier.clone());
            std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                barrier.wait();
                // A peer's future may be pending under contention (tower-resilience awaits
                // an async mutex), so every call is awaited on the thread's runtime.
                runtime.block_on(async {
                    for n in 0..iters / 2 {
                        let ready = svc.ready().await;
                        if let Ok(ready) = ready {
                            let _ = black_box(ready.call(black_box(n)).await);
                        }
                    }
                });
                barrier.wait();
            })
        })
        .collect();
    barrier.wait();
    #[allow(clippy::disallowed_types)]
    let start = std::time::Instant::now();
    barrier.wait();
    let elapsed = start.elapsed();
    threads.into_iter().for_each(|t| t.join().unwrap());
    elapsed
}

fn contended(c: &mut Criterion) {
    let mut group = c.benchmark_group("contended");
    group.throughput(Throughput::Elements(1));
    let hive = breaker_layer().layer(InstantModel);
    group.bench_function("hive_breaker", |b| {
        b.iter_custom(|iters| contended_run(&hive, iters))
    });
    let stack = hive_retry_breaker();
    group.bench_function("hive_retry_breaker", |b| {
        b.iter_custom(|iters| contended_run(&stack, iters))
    });
    let peer = tower_resilience_breaker(InstantModel);
    group.bench_function("tower_resilience_breaker", |b| {
        b.iter_custom(|iters| contended_run(&peer, iters))
    });
    let failsafe = failsafe_breaker();
    group.bench_function("failsafe_breaker", |b| {
        b.iter_custom(|iters| contended_run(&failsafe, iters))
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
        .sample_size(50);
    targets = overhead, contended
}
criterion_main!(benches);
