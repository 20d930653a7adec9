//! A tonic gRPC client channel behind the layers, calling a tiny model service served in
//! the same process over HTTP/2 on loopback. No protoc: the messages of this proto are
//! derived by hand with prost; tonic's generic `client::Grpc` and `server::Grpc` do the rest.
//!
//! ```proto
//! syntax = "proto3";
//! package hive;
//! service Model { rpc Ask (AskRequest) returns (AskReply); }
//! message AskRequest { string prompt = 1; }
//! message AskReply { string text = 1; }
//! ```
//!
//! The layers wrap the call at the message level (`AskRequest` → `AskReply`), around the
//! `Channel`: retry needs requests it can clone, which a channel's HTTP requests are not.
//! The server is UNAVAILABLE for two calls (restarting) and refuses an empty prompt; the
//! stack's classifier reads gRPC codes: UNAVAILABLE is retried, INVALID_ARGUMENT is not.
//!
//! Run: `cargo run -p hive-examples --example grpc_channel` (paused clock: no real waiting)

use std::sync::atomic::{AtomicU32, Ordering::SeqCst};
use std::{convert::Infallible, sync::Arc, time::Duration};

use hive_resilience::{ClientErrorClass, FailureClass, core::classify_error, prelude::*};
use http::uri::PathAndQuery;
use hyper::{body::Incoming, server::conn::http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tonic::{Code, Status, transport::Channel};
use tonic_prost::ProstCodec;
use tower::{ServiceBuilder, ServiceExt, service_fn};

/// `hive.AskRequest`, as `tonic-build` would generate it.
#[derive(Clone, PartialEq, prost::Message)]
struct AskRequest {
    #[prost(string, tag = "1")]
    prompt: String,
}

/// `hive.AskReply`.
#[derive(Clone, PartialEq, prost::Message)]
struct AskReply {
    #[prost(string, tag = "1")]
    text: String,
}

/// Serves `hive.Model/Ask` (its only method: the path is not matched), counting calls.
async fn model_server(listener: TcpListener, calls: Arc<AtomicU32>) {
    let http2 = http2::Builder::new(TokioExecutor::new());
    while let Ok((stream, _)) = listener.accept().await {
        let calls = calls.clone();
        let ask = service_fn(move |request: tonic::Request<AskRequest>| {
            let (n, prompt) = (calls.fetch_add(1, SeqCst), request.into_inner().prompt);
            let text = format!("{prompt}: in favour");
            std::future::ready(match n {
                0 | 1 => Err(Status::unavailable("the model is restarting")),
                _ if prompt.is_empty() => Err(Status::invalid_argument("empty prompt")),
                _ => Ok(tonic::Response::new(AskReply { text })),
            })
        });
        let service = hyper::service::service_fn(move |request: http::Request<Incoming>| {
            let (mut grpc, ask) = (tonic::server::Grpc::new(ProstCodec::default()), ask.clone());
            async move { Ok::<_, Infallible>(grpc.unary(ask, request).await) }
        });
        tokio::spawn(http2.serve_connection(TokioIo::new(stream), service));
    }
}

/// What a result means to the layers: gRPC codes to resilience classes.
fn classify(result: &Result<AskReply, BoxError>) -> Outcome {
    let Err(error) = result else {
        return Outcome::Success;
    };
    match error.downcast_ref::<Status>().map(Status::code) {
        Some(Code::Unavailable) => Outcome::failure(FailureClass::Unavailable),
        Some(Code::ResourceExhausted) => Outcome::failure(FailureClass::RateLimited),
        Some(Code::InvalidArgument) => Outcome::ClientError(ClientErrorClass::BadRequest),
        _ => classify_error(&**error), // the attempt timeout, the transport
    }
}

/// Runs the example: asks twice through the stack. Returns the answer to a prompt, the code
/// an empty prompt got, and the calls the server saw (3 for the answer, 1 for the refusal).
pub async fn run() -> Result<(String, Option<Code>, u32), BoxError> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let channel = Channel::from_shared(format!("http://{}", listener.local_addr()?))?;
    let calls = Arc::new(AtomicU32::new(0));
    tokio::spawn(model_server(listener, calls.clone()));
    let grpc = tonic::client::Grpc::new(channel.connect().await?);
    let ask = service_fn(move |prompt: AskRequest| {
        let mut grpc = grpc.clone();
        async move {
            let ready = grpc.ready().await;
            ready.map_err(|e| Status::unavailable(e.to_string()))?;
            let path = PathAndQuery::from_static("/hive.Model/Ask");
            let reply = grpc.unary(tonic::Request::new(prompt), path, ProstCodec::default());
            Ok::<_, Status>(reply.await?.into_inner())
        }
    });

    let classifier = classify_fn(classify);
    let retry = RetryLayer::new(RetryConfig::builder().model("hive-7b").build()?);
    let breaker = CircuitBreakerLayer::for_model("hive-7b")?;
    let health = HealthRegistry::new().register("hive-7b");
    let model = ServiceBuilder::new()
        .layer(HealthGateLayer::new(health))
        .layer(retry.with_classifier(classifier))
        .layer(breaker.with_classifier(classifier))
        .timeout(Duration::from_secs(10))
        .service(ask);

    let prompt = String::from("BIP-01");
    let answer = model.clone().oneshot(AskRequest { prompt }).await?.text;
    let refused = model.oneshot(AskRequest::default()).await.err();
    let refused = refused.and_then(|e| e.downcast_ref::<Status>().map(Status::code));
    Ok((answer, refused, calls.load(SeqCst)))
}
