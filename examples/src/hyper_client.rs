//! A plain hyper client behind the layers, calling a flaky hyper server on loopback.
//!
//! The server answers 503 with `Retry-After: 1`, then 429 with `Retry-After: 2`, then 200.
//! The client, hyper-util's legacy `Client`, is wrapped by `ServiceBuilder` in the order of
//! the design: health gate → retry → circuit breaker → attempt timeout → client. Retry
//! honours `Retry-After` by default (up to 30 s), so the 200 comes at the third attempt,
//! 3 s in; the breaker (5 failures in a row to trip) stays closed.
//!
//! Run: `cargo run -p hive-examples --example hyper_client` (paused clock: exact waits)

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::{sync::Arc, time::Duration};

use bytes::Bytes;
use hive_resilience::{BreakerMetrics, prelude::*};
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::{body::Incoming, server::conn::http1, service::service_fn};
use hyper_util::{client::legacy::Client, rt::TokioExecutor, rt::TokioIo};
use tokio::{net::TcpListener, sync::mpsc, time::Instant};
use tower::{ServiceBuilder, ServiceExt};

/// What the server answers to each request, in turn (the last one from then on).
const SCRIPT: [(u16, Option<&str>); 3] = [(503, Some("1")), (429, Some("2")), (200, None)];

/// Serves `SCRIPT` on `listener`, telling `arrived` when each request came.
async fn flaky_server(listener: TcpListener, arrived: mpsc::UnboundedSender<Duration>) {
    let (start, served) = (Instant::now(), Arc::new(AtomicUsize::new(0)));
    while let Ok((stream, _)) = listener.accept().await {
        let (arrived, served) = (arrived.clone(), served.clone());
        let service = service_fn(move |_: Request<Incoming>| {
            let _ = arrived.send(start.elapsed());
            let (status, retry_after) = SCRIPT[served.fetch_add(1, SeqCst).min(SCRIPT.len() - 1)];
            let mut response = Response::builder().status(status);
            if let Some(seconds) = retry_after {
                response = response.header("retry-after", seconds);
            }
            std::future::ready(response.body(Full::new(Bytes::from(status.to_string()))))
        });
        tokio::spawn(http1::Builder::new().serve_connection(TokioIo::new(stream), service));
    }
}

/// Runs the example: one request through the stack to the flaky server. Returns the status
/// the caller got, when each attempt reached the server, and the breaker's counts.
pub async fn run() -> Result<(StatusCode, Vec<Duration>, BreakerMetrics), BoxError> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/v1/chat/completions", listener.local_addr()?);
    let (arrived, mut arrivals) = mpsc::unbounded_channel();
    tokio::spawn(flaky_server(listener, arrived));

    let (breaker, handle) =
        CircuitBreakerLayer::shared(CircuitBreakerConfig::builder().model("flaky").build()?);
    let retry = RetryConfig::builder()
        .retry_only_while(handle.clone())
        .build()?;
    let health = HealthRegistry::new().register("flaky");
    let client = ServiceBuilder::new()
        .layer(HealthGateLayer::new(health))
        .layer(RetryLayer::new(retry).with_classifier(HttpClassifier))
        .layer(breaker.with_classifier(HttpClassifier))
        .timeout(Duration::from_secs(10))
        .service(Client::builder(TokioExecutor::new()).build_http());

    let request = Request::post(url).body(Full::new(Bytes::from("{\"messages\":[]}")))?;
    let status = client.oneshot(request).await?.status();
    let arrivals = std::iter::from_fn(|| arrivals.try_recv().ok()).collect();
    Ok((status, arrivals, handle.metrics()))
}
