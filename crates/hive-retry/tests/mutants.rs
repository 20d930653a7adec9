//! Edges of the retry decision that mutation testing (cargo-mutants, see TESTING.md) found
//! untested: a hint exactly at its cap, how often the request is cloned, and what the
//! future's `Debug` says. Paused time, exact counts.

#![allow(clippy::unwrap_used)]

use std::{
    future::Future,
    pin::pin,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    task::Poll,
    time::Duration,
};

use hive_core::{BoxError, EventSink, FailureClass, Outcome, ResilienceEvent, classify_fn};
use hive_retry::{Jitter, RetryConfig, RetryConfigBuilder, RetryLayer};
use tokio::time::Instant;
use tower::{Layer, Service, ServiceExt, service_fn};

/// A request that counts its clones.
#[derive(Debug)]
struct Request {
    clones: Arc<AtomicUsize>,
}

impl Clone for Request {
    fn clone(&self) -> Self {
        self.clones.fetch_add(1, Ordering::SeqCst);
        Self {
            clones: Arc::clone(&self.clones),
        }
    }
}

fn config(configure: impl FnOnce(RetryConfigBuilder) -> RetryConfigBuilder) -> RetryConfig {
    configure(
        RetryConfig::builder()
            .model("m")
            .backoff(Duration::from_millis(100), Duration::from_secs(1))
            .jitter(Jitter::None),
    )
    .build()
    .unwrap()
}

/// A retry layer over a model that answers each call with the next outcome of `script`
/// (the last one repeated), classified as it is.
fn retried<Req: Clone + Send + 'static>(
    config: RetryConfig,
    script: Vec<Outcome>,
) -> (
    impl Service<Req, Response = Outcome, Error = BoxError, Future: std::fmt::Debug>,
    Arc<AtomicUsize>,
) {
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&calls);
    let model = service_fn(move |_: Req| {
        let n = counted.fetch_add(1, Ordering::SeqCst);
        let outcome = script[n.min(script.len() - 1)];
        async move { Ok::<_, BoxError>(outcome) }
    });
    let layer = RetryLayer::new(config).with_classifier(classify_fn(
        |r: &Result<Outcome, BoxError>| match r {
            Ok(outcome) => *outcome,
            Err(_) => Outcome::failure(FailureClass::Unavailable),
        },
    ));
    (layer.layer(model), calls)
}

const FAIL: Outcome = Outcome::failure(FailureClass::Unavailable);

#[tokio::test(start_paused = true)]
async fn a_retry_after_equal_to_the_cap_is_honoured() {
    let limited = Outcome::Failure {
        class: FailureClass::RateLimited,
        retry_after: Some(Duration::from_secs(2)),
    };
    let (sink, mut events) = EventSink::channel(16);
    let config = config(|b| b.events(sink).retry_after(true, Duration::from_secs(2)));
    let (mut svc, calls) = retried::<()>(config, vec![limited, Outcome::Success]);
    let start = Instant::now();
    let answer = svc.ready().await.unwrap().call(()).await.unwrap();
    assert_eq!(answer, Outcome::Success);
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    assert_eq!(
        start.elapsed(),
        Duration::from_secs(2),
        "waited the hint exactly"
    );
    let events = events.drain();
    assert!(
        matches!(
            events[..],
            [ResilienceEvent::Retry {
                attempt: 1,
                delay,
                class: FailureClass::RateLimited,
                ..
            }] if delay == Duration::from_secs(2)
        ),
        "{events:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn the_request_is_cloned_once_per_attempt_that_may_follow_and_never_for_the_last() {
    for (max_attempts, clones) in [(1, 0), (2, 1), (3, 2), (5, 4)] {
        let (mut svc, calls) =
            retried::<Request>(config(|b| b.max_attempts(max_attempts)), vec![FAIL]);
        let counter = Arc::new(AtomicUsize::new(0));
        let request = Request {
            clones: Arc::clone(&counter),
        };
        let answer = svc.ready().await.unwrap().call(request).await.unwrap();
        assert_eq!(answer, FAIL);
        assert_eq!(calls.load(Ordering::SeqCst), max_attempts as usize);
        assert_eq!(
            counter.load(Ordering::SeqCst),
            clones,
            "max_attempts {max_attempts}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn debug_shows_the_state_and_the_attempt() {
    let (mut svc, _calls) = retried::<()>(config(|b| b), vec![FAIL, Outcome::Success]);
    let future = svc.ready().await.unwrap().call(());
    assert_eq!(
        format!("{future:?}"),
        r#"ResponseFuture { state: "calling", attempt: 1 }"#
    );
    let mut future = pin!(future);
    std::future::poll_fn(|cx| {
        assert!(future.as_mut().poll(cx).is_pending());
        Poll::Ready(())
    })
    .await;
    assert_eq!(
        format!("{future:?}"),
        r#"ResponseFuture { state: "backoff", attempt: 1 }"#
    );
    tokio::time::advance(Duration::from_millis(100)).await;
    assert_eq!(future.await.unwrap(), Outcome::Success);
}
