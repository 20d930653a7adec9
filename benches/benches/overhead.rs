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
    InstantModel, breaker_layer, failsafe_breaker, hive_gate, hive_retry_breaker,
    hive_retry_breaker_metrics, one_call, retry_layer, tower_resilience_breaker,
    tower_resilience_retry_breaker,
};
use hive_chaos::{ChaosLayer, ChaosRules, Fault, Rule};
use tower::{Layer, Service, ServiceExt};

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
    let mut gate = hive_gate();
    group.bench_function("hive_gate", |b| b.iter(|| one_call(&mut gate, 1)));
    let mut stack = hive_retry_breaker();
    group.bench_function("hive_retry_breaker", |b| b.iter(|| one_call(&mut stack, 1)));
    let mut metered = hive_retry_breaker_metrics();
    group.bench_function("hive_retry_breaker_metrics", |b| {
        b.iter(|| one_call(&mut metered, 1))
    });
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
    // Chaos switched off, with a rule in place: what every gateway stack carries.
    let rules = ChaosRules::new()
        .enabled(false)
        .rule(Rule::new(Fault::status(503)));
    let mut chaos = ChaosLayer::new(rules)
        .unwrap()
        .model("m")
        .layer(InstantModel);
    group.bench_function("hive_chaos_disabled", |b| {
        b.iter(|| one_call(&mut chaos, 1))
    });
    group.finish();
}

/// The router's cost on the success path, per strategy, and a call while the primary's
/// breaker is open against a direct call to the fallback's stack.
fn router(c: &mut Criterion) {
    use hive_fallback::{HedgeDelay, Strategy};
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let _context = runtime.enter();
    let mut group = c.benchmark_group("router");
    group.throughput(Throughput::Elements(1));
    let mut stack = hive_retry_breaker();
    group.bench_function("stack_direct", |b| b.iter(|| one_call(&mut stack, 1)));
    let strategies = [
        ("sequential", Strategy::Sequential),
        ("parallel_all", Strategy::Parallel { first: None }),
        (
            "hedged",
            Strategy::Hedged {
                delay: HedgeDelay::Fixed(Duration::from_secs(1)),
                max_hedges: 1,
                budget: None,
            },
        ),
        (
            "weighted",
            Strategy::Weighted {
                random: hive_core::SharedRandom::new(Some(1)),
            },
        ),
    ];
    for (name, strategy) in strategies {
        let mut router = hive_benches::router(strategy, false);
        group.bench_function(name, |b| b.iter(|| one_call(&mut router, 1)));
    }
    let mut skipping = hive_benches::router(Strategy::Sequential, true);
    group.bench_function("sequential_primary_open", |b| {
        b.iter(|| one_call(&mut skipping, 1))
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
    targets = overhead, router, contended
}
criterion_main!(benches);
