//! The success path of retry + breaker allocates nothing: a counting global allocator
//! watches a warm stack serve many calls. Runs without the test harness so no other thread
//! allocates meanwhile.

#![allow(clippy::unwrap_used, clippy::print_stdout, missing_docs)]
// A global allocator is the one place a test needs `unsafe`.
#![allow(unsafe_code)]

use std::{
    alloc::{GlobalAlloc, Layout, System},
    convert::Infallible,
    future::{Future, Ready, ready},
    pin::pin,
    sync::atomic::{AtomicU64, Ordering},
    task::{Context, Poll, Waker},
    time::Duration,
};

use hive_breaker::{CircuitBreakerConfig, CircuitBreakerLayer};
use hive_retry::{RetryBudget, RetryConfig, RetryLayer};
use tower::{Layer, Service, ServiceExt};

struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::SeqCst);
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[derive(Clone, Copy)]
struct Model;

impl Service<u64> for Model {
    type Response = u64;
    type Error = Infallible;
    type Future = Ready<Result<u64, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: u64) -> Self::Future {
        ready(Ok(request))
    }
}

fn calls<S: Service<u64, Response = u64>>(svc: &mut S, n: u64)
where
    S::Error: std::fmt::Debug,
{
    let mut cx = Context::from_waker(Waker::noop());
    for i in 0..n {
        assert!(svc.poll_ready(&mut cx).is_ready());
        let future = pin!(svc.call(i));
        match future.poll(&mut cx) {
            Poll::Ready(Ok(v)) => assert_eq!(v, i),
            other => panic!("unexpected {:?}", other.map(|r| r.map(|_| ()))),
        }
    }
}

/// Allocations made by `n` calls after a warm-up.
fn allocations_of<S: Service<u64, Response = u64>>(mut svc: S, n: u64) -> u64
where
    S::Error: std::fmt::Debug,
{
    calls(&mut svc, 100);
    let before = ALLOCATIONS.load(Ordering::SeqCst);
    calls(&mut svc, n);
    ALLOCATIONS.load(Ordering::SeqCst) - before
}

/// A sequential router with a 30 s deadline over two stacks; the first answers, or, with
/// `primary_open`, its breaker is forced open and every call goes round it.
fn router(primary_open: bool) -> impl Service<u64, Response = u64, Error = hive_core::BoxError> {
    let stack = || {
        RetryLayer::new(RetryConfig::builder().build().unwrap()).layer(
            CircuitBreakerLayer::new(CircuitBreakerConfig::builder().build().unwrap()).layer(Model),
        )
    };
    let (primary, handle) =
        CircuitBreakerLayer::shared(CircuitBreakerConfig::builder().model("a").build().unwrap());
    if primary_open {
        handle.force_open();
    }
    let primary =
        RetryLayer::new(RetryConfig::builder().build().unwrap()).layer(primary.layer(Model));
    hive_fallback::FallbackRouter::builder()
        .route(hive_fallback::Route::new("a", primary).available_when(handle))
        .route(hive_fallback::Route::new("b", stack()))
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
        .map_response(|routed| routed.response)
}

fn main() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let _context = runtime.enter();
    // The Prometheus recorder receives the metrics of the stacks built with metrics on.
    let _exporter = hive_monitor::install_prometheus().unwrap();
    let count = CircuitBreakerConfig::builder()
        .count_window(20)
        .minimum_calls(10)
        .build()
        .unwrap();
    let time = CircuitBreakerConfig::builder()
        .time_window(Duration::from_secs(10), 10)
        .minimum_calls(10)
        .slow_call_duration(Duration::from_secs(5))
        .build()
        .unwrap();
    let retry = || RetryLayer::new(RetryConfig::builder().build().unwrap());
    let budgeted = RetryLayer::new(
        RetryConfig::builder()
            .budget(RetryBudget::linkerd_default())
            .build()
            .unwrap(),
    );
    let cases: Vec<(&str, u64)> = vec![
        (
            "breaker (count window)",
            allocations_of(CircuitBreakerLayer::new(count.clone()).layer(Model), 10_000),
        ),
        (
            "breaker (time window, slow calls)",
            allocations_of(CircuitBreakerLayer::new(time).layer(Model), 10_000),
        ),
        ("retry", allocations_of(retry().layer(Model), 10_000)),
        (
            "retry with budget",
            allocations_of(budgeted.layer(Model), 10_000),
        ),
        (
            "retry + breaker",
            allocations_of(
                retry().layer(CircuitBreakerLayer::new(count).layer(Model)),
                10_000,
            ),
        ),
        (
            "retry + breaker, metrics on (Prometheus recorder)",
            allocations_of(
                RetryLayer::new(RetryConfig::builder().metrics(true).build().unwrap()).layer(
                    CircuitBreakerLayer::new(
                        CircuitBreakerConfig::builder()
                            .model("metered")
                            .metrics(true)
                            .build()
                            .unwrap(),
                    )
                    .layer(Model),
                ),
                10_000,
            ),
        ),
        (
            "router (sequential, with a deadline) over two retry + breaker stacks",
            allocations_of(router(false), 10_000),
        ),
        (
            "the same router, its primary's breaker open (every call goes round it)",
            allocations_of(router(true), 10_000),
        ),
        (
            "a boxed service, for contrast",
            allocations_of(
                tower::util::BoxService::new(Model).map_response(|r| r),
                10_000,
            ),
        ),
    ];
    let mut failed = 0;
    for (name, allocations) in &cases[..cases.len() - 1] {
        let ok = *allocations == 0;
        failed += usize::from(!ok);
        println!(
            "{} {name}: {allocations} allocations in 10000 calls",
            if ok { "ok  " } else { "FAIL" }
        );
    }
    let (name, allocations) = cases[cases.len() - 1];
    assert!(
        allocations >= 10_000,
        "the counter must see per-call boxing ({name}: {allocations})"
    );
    println!("ok   (the counter works: {name} made {allocations} allocations)");
    println!("{} passed, {failed} failed", cases.len() - 1 - failed);
    if failed > 0 {
        std::process::exit(1);
    }
}
