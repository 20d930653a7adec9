//! The common upstream of the gateway benchmarks: an OpenAI-compatible server that gives the
//! same answer to every chat completion, built once, so that what a proxy adds is all that
//! differs between the targets.

use std::{convert::Infallible, net::SocketAddr, num::NonZeroUsize, sync::Arc, time::Duration};

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use serde_json::json;
use tokio::net::TcpListener;

/// Why the upstream stopped.
#[derive(Debug, thiserror::Error)]
pub(crate) enum UpstreamError {
    /// The runtime could not start.
    #[error("could not start the runtime: {0}")]
    Runtime(std::io::Error),
    /// The address cannot be listened on.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// The error.
        source: std::io::Error,
    },
}

/// The answers, serialised once.
#[derive(Debug)]
struct Answers {
    /// The whole answer's JSON.
    whole: Bytes,
    /// The streamed answer: six chunks and `data: [DONE]`, sent in one piece.
    stream: Bytes,
    /// The model list.
    models: Bytes,
}

impl Answers {
    fn new(model: &str) -> Self {
        let whole = json!({
            "id": "chatcmpl-hive-load",
            "object": "chat.completion",
            "created": 0,
            "model": model,
            "choices": [{
                "index": 0,
                "message": {"role": "assistant", "content": "Yes, I approve."},
                "finish_reason": "stop"
            }],
            "usage": {"prompt_tokens": 12, "completion_tokens": 4, "total_tokens": 16},
        });
        let chunk = |delta: serde_json::Value, finish: Option<&str>| {
            let mut chunk = json!({
                "id": "chatcmpl-hive-load",
                "object": "chat.completion.chunk",
                "created": 0,
                "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            });
            if finish.is_some() {
                chunk["usage"] =
                    json!({"prompt_tokens": 12, "completion_tokens": 4, "total_tokens": 16});
            }
            format!("data: {chunk}\n\n")
        };
        let mut stream = chunk(json!({"role": "assistant", "content": ""}), None);
        for piece in ["Yes", ",", " I", " approve."] {
            stream.push_str(&chunk(json!({"content": piece}), None));
        }
        stream.push_str(&chunk(json!({}), Some("stop")));
        stream.push_str("data: [DONE]\n\n");
        let models = json!({
            "object": "list",
            "data": [{"id": model, "object": "model", "created": 0, "owned_by": "hive-load"}],
        });
        Self {
            whole: Bytes::from(whole.to_string()),
            stream: Bytes::from(stream),
            models: Bytes::from(models.to_string()),
        }
    }
}

/// What the upstream reads of a request: whether it asks for a stream.
#[derive(Debug, Deserialize)]
struct Asked {
    /// `"stream": true` asks for server-sent events.
    #[serde(default)]
    stream: bool,
}

/// The largest request body read.
const BODY_LIMIT: usize = 1 << 20;

fn respond(status: StatusCode, content_type: &'static str, body: Bytes) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

fn error(status: StatusCode, message: &str) -> Response<Full<Bytes>> {
    let body = json!({"error": {"message": message, "type": "invalid_request_error", "param": null, "code": null}});
    respond(status, "application/json", Bytes::from(body.to_string()))
}

async fn handle(
    request: Request<Incoming>,
    answers: Arc<Answers>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let response = match (request.method(), request.uri().path()) {
        (&Method::POST, "/v1/chat/completions") => {
            match Limited::new(request.into_body(), BODY_LIMIT)
                .collect()
                .await
            {
                Ok(body) => match serde_json::from_slice::<Asked>(&body.to_bytes()) {
                    Ok(Asked { stream: true }) => {
                        let mut response =
                            respond(StatusCode::OK, "text/event-stream", answers.stream.clone());
                        response
                            .headers_mut()
                            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
                        response
                    }
                    Ok(Asked { stream: false }) => {
                        respond(StatusCode::OK, "application/json", answers.whole.clone())
                    }
                    Err(_) => error(StatusCode::BAD_REQUEST, "the body is not JSON"),
                },
                Err(_) => error(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "the body could not be read or is above 1 MiB",
                ),
            }
        }
        (&Method::GET, "/v1/models") => {
            respond(StatusCode::OK, "application/json", answers.models.clone())
        }
        _ => error(StatusCode::NOT_FOUND, "no such endpoint"),
    };
    Ok(response)
}

async fn serve(listener: TcpListener, answers: Arc<Answers>) {
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of descriptors, or a connection reset before it was accepted: wait a
                // little rather than spin.
                eprintln!("hive-load upstream: accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let answers = Arc::clone(&answers);
        tokio::spawn(async move {
            let service =
                hyper::service::service_fn(move |request| handle(request, Arc::clone(&answers)));
            // A client closing its connection is the normal end.
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// Serves on `listen` until killed, answering as `model`.
pub(crate) fn run(
    listen: SocketAddr,
    model: &str,
    threads: NonZeroUsize,
) -> Result<(), UpstreamError> {
    let runtime = if threads.get() == 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads.get())
            .enable_all()
            .build()
    }
    .map_err(UpstreamError::Runtime)?;
    let answers = Arc::new(Answers::new(model));
    runtime.block_on(async move {
        let listener = TcpListener::bind(listen)
            .await
            .map_err(|source| UpstreamError::Listen {
                addr: listen,
                source,
            })?;
        let addr = listener
            .local_addr()
            .map_err(|source| UpstreamError::Listen {
                addr: listen,
                source,
            })?;
        println!("hive-load upstream listening on http://{addr} (model {model})");
        serve(listener, answers).await;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stream_is_well_formed() {
        let answers = Answers::new("bench");
        let text = std::str::from_utf8(&answers.stream).unwrap();
        assert!(text.ends_with("data: [DONE]\n\n"));
        let events: Vec<_> = text.split("\n\n").filter(|e| !e.is_empty()).collect();
        assert_eq!(events.len(), 7);
        for event in &events[..6] {
            let data = event.strip_prefix("data: ").unwrap();
            let chunk: serde_json::Value = serde_json::from_str(data).unwrap();
            assert_eq!(chunk["model"], "bench");
        }
        let whole: serde_json::Value = serde_json::from_slice(&answers.whole).unwrap();
        assert_eq!(whole["choices"][0]["message"]["content"], "Yes, I approve.");
    }
}
