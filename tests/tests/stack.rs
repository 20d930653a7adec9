//! Retry over circuit breaker, as DESIGN.md stacks them: every attempt is recorded, an open
//! breaker ends the retries, streamed answers count when they end, deadlines bound it all.

#![allow(clippy::unwrap_used)]

use std::{
    sync::{
        Arc,
        atomic::{AtomicU32, Ordering},
    },
    time::Duration,
};

use hive_breaker::{BreakerHandle, CircuitBreakerConfig, CircuitBreakerLayer};
use hive_core::{
    BoxError, CircuitState, Classified, Classify, Deadline, EosRecorder, EventSink, FailureClass,
    HttpClassifier, Outcome, RejectReason, Rejected, ResilienceEvent,
};
use hive_retry::{Jitter, RetryConfig, RetryLayer};
use http::{Response, StatusCode};
use tokio::time::Instant;
use tower::{ServiceBuilder, ServiceExt, util::BoxCloneService};

fn retry(max_attempts: u32, events: EventSink) -> RetryLayer<HttpClassifier> {
    RetryLayer::new(
        RetryConfig::builder()
            .model("m")
            .max_attempts(max_attempts)
            .backoff(Duration::from_millis(100), Duration::from_secs(1))
            .jitter(Jitter::None)
            .events(events)
            .build()
            .unwrap(),
    )
    .with_classifier(HttpClassifier)
}

fn breaker(window: u32, events: EventSink) -> CircuitBreakerLayer<HttpClassifier> {
    CircuitBreakerLayer::new(
        CircuitBreakerConfig::builder()
            .model("m")
            .count_window(window)
            .minimum_calls(window)
            .open_duration(Duration::from_secs(10))
            .events(events)
            .build()
            .unwrap(),
    )
    .with_classifier(HttpClassifier)
}

/// A model answering the statuses of `script` in turn (the last one forever).
fn model(
    script: &'static [u16],
) -> (
    impl tower::Service<(), Response = Response<()>, Error = http::Error, Future: Send> + Clone,
    Arc<AtomicU32>,
) {
    let calls = Arc::new(AtomicU32::new(0));
    let counter = calls.clone();
    let svc = tower::service_fn(move |()| {
        let n = counter.fetch_add(1, Ordering::SeqCst) as usize;
        let status = script[n.min(script.len() - 1)];
        async move { Response::builder().status(status).body(()) }
    });
    (svc, calls)
}

fn stack(
    max_attempts: u32,
    window: u32,
    script: &'static [u16],
) -> (
    BoxCloneService<(), Response<()>, BoxError>,
    BreakerHandle,
    Arc<AtomicU32>,
    hive_core::EventReceiver,
) {
    let (sink, events) = EventSink::channel(1000);
    let (model, calls) = model(script);
    let svc = ServiceBuilder::new()
        .layer(retry(max_attempts, sink.clone()))
        .layer(breaker(window, sink))
        .service(model);
    let handle = svc.get_ref().handle();
    (BoxCloneService::new(svc), handle, calls, events)
}

#[tokio::test(start_paused = true)]
async fn every_attempt_is_recorded_by_the_breaker() {
    let (svc, handle, calls, _) = stack(3, 10, &[503, 502, 200]);
    let response = svc.oneshot(()).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    let m = handle.metrics();
    assert_eq!((m.calls, m.failed_calls), (3, 2));
}

#[tokio::test(start_paused = true)]
async fn an_open_breaker_ends_the_retries_at_once() {
    let (svc, handle, calls, mut events) = stack(5, 2, &[503]);
    let start = Instant::now();
    let err = svc.clone().oneshot(()).await.unwrap_err();
    // Attempts 1 and 2 reach the model and open the breaker; attempt 3 is rejected and
    // not retried.
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    let rejected = err.downcast_ref::<Rejected>().unwrap();
    assert_eq!(
        rejected.reason,
        RejectReason::CircuitOpen {
            retry_in: Duration::from_millis(9_800)
        }
    );
    assert_eq!(start.elapsed(), Duration::from_millis(300));
    assert_eq!(handle.state(), CircuitState::Open);
    let kinds: Vec<&str> = events
        .drain()
        .iter()
        .map(|e| match e {
            ResilienceEvent::Retry { .. } => "retry",
            ResilienceEvent::CircuitTransition { .. } => "opened",
            ResilienceEvent::CallRejected { .. } => "rejected",
            _ => "other",
        })
        .collect();
    assert_eq!(kinds, ["retry", "opened", "retry", "rejected"]);
    // The next request fails fast without any backoff.
    let start = Instant::now();
    assert!(svc.oneshot(()).await.unwrap_err().is::<Rejected>());
    assert_eq!(start.elapsed(), Duration::ZERO);
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[tokio::test(start_paused = true)]
async fn the_deadline_covers_every_attempt() {
    let (svc, _, calls, _) = stack(5, 10, &[503]);
    let response = Deadline::after(Duration::from_millis(350))
        .scope(svc.oneshot(()))
        .await
        .unwrap();
    // Attempts at 0, 100 and 300 ms; the next would start at 700 ms.
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(calls.load(Ordering::SeqCst), 3);
}

/// A streamed answer: chunks arrive through a channel; the breaker's verdict waits for its
/// end.
struct TokenStream {
    chunks: tokio::sync::mpsc::Receiver<&'static str>,
    recorder: Option<EosRecorder>,
}

impl TokenStream {
    /// Reads to the end; a stream is complete when it ends with "[DONE]".
    async fn read_all(mut self) -> Result<String, &'static str> {
        let mut text = String::new();
        while let Some(chunk) = self.chunks.recv().await {
            if chunk == "[DONE]" {
                if let Some(r) = self.recorder.take() {
                    r.finish(Outcome::Success);
                }
                return Ok(text);
            }
            text.push_str(chunk);
        }
        if let Some(r) = self.recorder.take() {
            r.finish(Outcome::failure(FailureClass::StreamCut));
        }
        Err("stream cut")
    }
}

#[derive(Clone, Copy)]
struct StreamClassifier;

impl Classify<TokenStream, std::io::Error> for StreamClassifier {
    fn classify(&self, result: &Result<TokenStream, std::io::Error>) -> Classified {
        match result {
            Ok(_) => Classified::AtEndOfStream,
            Err(_) => Classified::Now(Outcome::failure(FailureClass::Connect)),
        }
    }

    fn attach_end_of_stream(&self, response: &mut TokenStream, recorder: EosRecorder) {
        response.recorder = Some(recorder);
    }
}

#[tokio::test(start_paused = true)]
async fn a_stream_counts_when_it_ends_a_cut_one_is_a_failure_and_an_abandoned_one_is_ignored() {
    let (layer, handle) = CircuitBreakerLayer::shared(
        CircuitBreakerConfig::builder()
            .count_window(3)
            .minimum_calls(3)
            .failure_rate_threshold(0.6)
            .build()
            .unwrap(),
    );
    let layer = layer.with_classifier(StreamClassifier);
    let svc =
        ServiceBuilder::new()
            .layer(layer)
            .service_fn(|chunks: Vec<&'static str>| async move {
                let (tx, rx) = tokio::sync::mpsc::channel(16);
                for c in chunks {
                    tx.send(c).await.unwrap();
                }
                Ok::<_, std::io::Error>(TokenStream {
                    chunks: rx,
                    recorder: None,
                })
            });
    let whole = svc
        .clone()
        .oneshot(vec!["The ", "answer", "[DONE]"])
        .await
        .unwrap();
    assert_eq!(
        handle.metrics().calls,
        0,
        "nothing is recorded before the stream ends"
    );
    assert_eq!(whole.read_all().await.unwrap(), "The answer");
    assert_eq!(
        (handle.metrics().calls, handle.metrics().failed_calls),
        (1, 0)
    );

    // The caller stops reading (a disconnect, a stop button): not the model's fault.
    let abandoned = svc.clone().oneshot(vec!["The "]).await.unwrap();
    drop(abandoned);
    let m = handle.metrics();
    assert_eq!(
        (m.calls, m.failed_calls),
        (1, 0),
        "an abandoned stream is ignored"
    );
    for _ in 0..2 {
        let cut = svc.clone().oneshot(vec!["The ", "ans"]).await.unwrap();
        assert_eq!(cut.read_all().await, Err("stream cut"));
    }
    let m = handle.metrics();
    assert_eq!((m.calls, m.failed_calls), (3, 2));
    assert_eq!(
        m.state,
        CircuitState::Open,
        "2 of 3 streams failed: 67% >= 60%"
    );
}
