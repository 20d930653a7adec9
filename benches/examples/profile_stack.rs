//! Runs the hive stack's success path in a loop, for `perf record` or callgrind.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use tower::{Layer, Service};

fn main() {
    let which = std::env::args().nth(1).unwrap_or_else(|| "stack".into());
    let iters: u64 = std::env::args()
        .nth(2)
        .and_then(|n| n.parse().ok())
        .unwrap_or(10_000_000);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let _context = runtime.enter();
    match which.as_str() {
        "breaker" => run(
            hive_benches::breaker_layer().layer(hive_benches::InstantModel),
            iters,
        ),
        "retry" => run(
            hive_benches::retry_layer().layer(hive_benches::InstantModel),
            iters,
        ),
        _ => run(hive_benches::hive_retry_breaker(), iters),
    }
}

fn run<S: Service<u64>>(mut svc: S, iters: u64) {
    for n in 0..iters {
        let _ = black_box(hive_benches::one_call(&mut svc, n));
    }
}
