//! The cost of a switched-off chaos layer: `overhead/hive_chaos_disabled` beside
//! `overhead/bare`, measured as the workspace's `overhead` bench measures every layer (one
//! call = `poll_ready` + `call` + polling the response pinned in place, warm service,
//! single thread).
//!
//! Run: `cargo bench -p hive-chaos --bench disabled`

#![allow(missing_docs, clippy::unwrap_used)]

use std::{
    future::{Ready, ready},
    hint::black_box,
    pin::pin,
    task::{Context, Poll, Waker},
};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use hive_chaos::{ChaosLayer, ChaosRules, Fault, Rule};
use hive_core::BoxError;
use tower::{Layer, Service};

/// A model that answers at once.
#[derive(Clone, Copy)]
struct InstantModel;

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

/// One call, as an `.await` makes it.
fn one_call<S: Service<u64, Response = u64>>(service: &mut S, request: u64) -> u64 {
    let mut cx = Context::from_waker(Waker::noop());
    let Poll::Ready(Ok(())) = service.poll_ready(&mut cx) else {
        panic!("not ready")
    };
    let future = pin!(service.call(black_box(request)));
    match future.poll(&mut cx) {
        Poll::Ready(Ok(answer)) => answer,
        _ => panic!("not answered"),
    }
}

/// A disabled layer with rules that would fail every call.
fn disabled_chaos() -> impl Service<u64, Response = u64, Error = BoxError> {
    let layer = ChaosLayer::new(
        ChaosRules::new()
            .enabled(false)
            .rule(Rule::new(Fault::status(503))),
    )
    .unwrap()
    .model("m");
    layer.layer(InstantModel)
}

/// An enabled layer whose one rule is for another model: the enabled path, nothing fired.
fn enabled_chaos_nothing_fired() -> impl Service<u64, Response = u64, Error = BoxError> {
    let _ = hive_core::ModelId::new("other");
    let layer =
        ChaosLayer::new(ChaosRules::new().rule(Rule::new(Fault::status(503)).model("other")))
            .unwrap()
            .model("m");
    layer.layer(InstantModel)
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
    let mut disabled = disabled_chaos();
    group.bench_function("hive_chaos_disabled", |b| {
        b.iter(|| one_call(&mut disabled, 1))
    });
    let mut enabled = enabled_chaos_nothing_fired();
    group.bench_function("hive_chaos_enabled_no_fault", |b| {
        b.iter(|| one_call(&mut enabled, 1))
    });
    group.finish();
}

criterion_group!(benches, overhead);
criterion_main!(benches);
