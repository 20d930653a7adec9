//! Real HTTP on loopback: a hyper server that rate-limits and fails, a hyper client behind
//! retry + breaker with the default HTTP classifier. Paused time: the gaps between attempts
//! are exact.

#![allow(clippy::unwrap_used)]

use std::{
    convert::Infallible,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use bytes::Bytes;
use hive_breaker::{CircuitBreakerConfig, CircuitBreakerLayer};
use hive_core::{BoxError, HttpClassifier};
use hive_retry::{Jitter, RetryConfig, RetryLayer};
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::{body::Incoming, server::conn::http1};
use hyper_util::{
    client::legacy::Client,
    rt::{TokioExecutor, TokioIo},
};
use tokio::{net::TcpListener, time::Instant};
use tower::{ServiceBuilder, ServiceExt};

/// Serves the statuses of `script` in turn (with their `Retry-After`), reporting when each
/// request arrived.
async fn provider(
    script: Vec<(u16, Option<&'static str>)>,
) -> (String, tokio::sync::mpsc::UnboundedReceiver<Duration>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = format!("http://{}", listener.local_addr().unwrap());
    let (arrived, arrivals) = tokio::sync::mpsc::unbounded_channel();
    let served = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            let (script, served, arrived) = (script.clone(), served.clone(), arrived.clone());
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |_: Request<Incoming>| {
                    let n = served.fetch_add(1, Ordering::SeqCst);
                    let (status, retry_after) = script[n.min(script.len() - 1)];
                    arrived.send(start.elapsed()).unwrap();
                    let mut response = Response::builder().status(status);
                    if let Some(value) = retry_after {
                        response = response.header("retry-after", value);
                    }
                    let body = if status == 200 {
                        "the answer"
                    } else {
                        "try later"
                    };
                    async move {
                        Ok::<_, Infallible>(response.body(Full::new(Bytes::from(body))).unwrap())
                    }
                });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    (address, arrivals)
}

#[tokio::test(start_paused = true)]
async fn retry_after_from_a_real_server_is_honoured_and_the_answer_arrives() {
    let (address, mut arrivals) =
        provider(vec![(429, Some("2")), (503, Some("3")), (200, None)]).await;
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let (breaker, handle) = CircuitBreakerLayer::shared(
        CircuitBreakerConfig::builder()
            .model("loopback")
            .count_window(10)
            .minimum_calls(10)
            .build()
            .unwrap(),
    );
    let breaker = breaker.with_classifier(HttpClassifier);
    let svc = ServiceBuilder::new()
        .layer(
            RetryLayer::new(
                RetryConfig::builder()
                    .model("loopback")
                    .max_attempts(3)
                    .backoff(Duration::from_millis(100), Duration::from_secs(1))
                    .jitter(Jitter::None)
                    .retry_after(true, Duration::from_secs(5))
                    .build()
                    .unwrap(),
            )
            .with_classifier(HttpClassifier),
        )
        .layer(breaker)
        .map_err(BoxError::from)
        .service(client);
    let request = Request::post(format!("{address}/v1/chat/completions"))
        .body(Full::new(Bytes::from_static(b"{\"model\":\"loopback\"}")))
        .unwrap();
    let response = svc.oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(body, "the answer");
    let arrivals: Vec<u128> = std::iter::from_fn(|| arrivals.try_recv().ok())
        .map(|d| d.as_millis())
        .collect();
    assert_eq!(
        arrivals,
        [0, 2_000, 5_000],
        "attempts wait exactly what Retry-After says"
    );
    let m = handle.metrics();
    assert_eq!((m.calls, m.failed_calls), (3, 2));
}

#[tokio::test(start_paused = true)]
async fn a_connection_refused_is_a_connect_failure_and_is_retried() {
    // Bind then drop, so the port refuses connections.
    let address = {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        listener.local_addr().unwrap()
    };
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let (sink, mut events) = hive_core::EventSink::channel(16);
    let svc = ServiceBuilder::new()
        .layer(
            RetryLayer::new(
                RetryConfig::builder()
                    .max_attempts(2)
                    .backoff(Duration::from_millis(100), Duration::from_secs(1))
                    .jitter(Jitter::None)
                    .events(sink)
                    .build()
                    .unwrap(),
            )
            .with_classifier(HttpClassifier),
        )
        .map_err(BoxError::from)
        .service(client);
    let request = Request::get(format!("http://{address}/v1/models"))
        .body(Full::new(Bytes::new()))
        .unwrap();
    assert!(svc.oneshot(request).await.is_err());
    let classes: Vec<_> = events
        .drain()
        .into_iter()
        .map(|e| match e {
            hive_core::ResilienceEvent::Retry { class, .. }
            | hive_core::ResilienceEvent::RetryStopped { class, .. } => class,
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert_eq!(classes, [hive_core::FailureClass::Connect; 2]);
}
