//! Runs one stack's success path in a loop, for `perf record` or callgrind
//! (see `benches/callgrind.sh`).
//!
//! `cargo run --release -p hive-benches --example profile_stack -- <stack> <calls>`
#![allow(missing_docs, clippy::unwrap_used, clippy::print_stderr)]

use std::hint::black_box;

use hive_benches::{InstantModel, one_call};
use tower::{Layer, Service};

fn main() {
    let which = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "hive_retry_breaker".into());
    if which == "sizes" {
        sizes();
        return;
    }
    let calls: u64 = std::env::args()
        .nth(2)
        .and_then(|n| n.parse().ok())
        .unwrap_or(10_000_000);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let _context = runtime.enter();
    match which.as_str() {
        "bare" => run(InstantModel, calls),
        "hive_retry" => run(hive_benches::retry_layer().layer(InstantModel), calls),
        "hive_gate" => run(hive_benches::hive_gate(), calls),
        "hive_breaker" => run(hive_benches::breaker_layer().layer(InstantModel), calls),
        "hive_retry_breaker" => run(hive_benches::hive_retry_breaker(), calls),
        "hive_retry_breaker_metrics" => run(hive_benches::hive_retry_breaker_metrics(), calls),
        "tower_resilience_breaker" => {
            run(hive_benches::tower_resilience_breaker(InstantModel), calls)
        }
        "tower_resilience_retry_breaker" => {
            run(hive_benches::tower_resilience_retry_breaker(), calls)
        }
        "failsafe_breaker" => run(hive_benches::failsafe_breaker(), calls),
        "router_sequential" => run(
            hive_benches::router(hive_fallback::Strategy::Sequential, false),
            calls,
        ),
        "router_sequential_primary_open" => run(
            hive_benches::router(hive_fallback::Strategy::Sequential, true),
            calls,
        ),
        other => {
            eprintln!("unknown stack {other}");
            std::process::exit(2);
        }
    }
}

fn run<S: Service<u64>>(mut svc: S, calls: u64) {
    for n in 0..calls {
        let _ = black_box(one_call(&mut svc, n));
    }
}

/// Prints the sizes of the futures a caller holds.
fn sizes() {
    use hive_benches::Router;
    type F = <Router as Service<u64>>::Future;
    eprintln!(
        "Sleep {} router future {} stack future {}",
        std::mem::size_of::<tokio::time::Sleep>(),
        std::mem::size_of::<F>(),
        std::mem::size_of::<<hive_benches::HiveRetryBreaker as Service<u64>>::Future>()
    );
}
