//! A tiny gateway on loopback: a hyper server whose handler answers each chat request, so
//! that the server half of the wire can be read back by the client.

#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::{future::Future, sync::Arc};

use bytes::Bytes;
use hive_openai::ChatRequest;
use http::{Request, Response};
use http_body::Body;
use http_body_util::BodyExt;
use hyper::{body::Incoming, server::conn::http1, service::service_fn};
use hyper_util::rt::TokioIo;
use tokio::{net::TcpListener, task::JoinHandle};

/// A server on `127.0.0.1` that answers every `POST` with its handler, given the parsed
/// chat request.
pub struct Gateway {
    base_url: String,
    accept: JoinHandle<()>,
}

impl Gateway {
    /// Starts serving with `handler`.
    pub async fn start<H, Fut, B>(handler: H) -> Self
    where
        H: Fn(ChatRequest) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Response<B>> + Send + 'static,
        B: Body<Data = Bytes> + Send + 'static,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base_url = format!("http://{}", listener.local_addr().unwrap());
        let handler = Arc::new(handler);
        let accept = tokio::spawn(async move {
            loop {
                let Ok((socket, _)) = listener.accept().await else {
                    continue;
                };
                let handler = Arc::clone(&handler);
                tokio::spawn(async move {
                    let service = service_fn(move |request: Request<Incoming>| {
                        let handler = Arc::clone(&handler);
                        async move {
                            let body = request.into_body().collect().await?.to_bytes();
                            let chat: ChatRequest = serde_json::from_slice(&body).unwrap();
                            Ok::<_, hyper::Error>(handler(chat).await)
                        }
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(socket), service)
                        .await;
                });
            }
        });
        Self { base_url, accept }
    }

    /// The base URL, `http://127.0.0.1:<port>`.
    pub fn base_url(&self) -> String {
        self.base_url.clone()
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        self.accept.abort();
    }
}
