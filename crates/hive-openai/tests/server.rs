//! The server half of the wire read back by the client over loopback: a tiny hyper server
//! answers with the SSE encoder or the error table, and `OpenAiClient` reads it as it reads
//! a provider. Paused time: keep-alives and limits are exact.

#![allow(clippy::unwrap_used)]

mod support;

use std::{
    collections::VecDeque,
    pin::Pin,
    task::{Context, Poll},
    time::Duration,
};

use futures_core::Stream;
use hive_core::{ClientErrorClass, FailureClass, ModelId, Outcome, RejectReason};
use hive_openai::{
    ChatChunk, ChatRequest, ChatResponse, ChatStream, OpenAiClient, OpenAiError, Usage,
    server::{GatewayError, RouteAttempt, SseEncoder},
};
use http::StatusCode;
use serde_json::json;
use support::gateway::Gateway;
use tokio::time::{Instant, Sleep};
use tower::ServiceExt;

/// A stream of scripted items, each after its delay.
struct Scripted {
    items: VecDeque<(Duration, Result<ChatChunk, OpenAiError>)>,
    sleep: Option<Pin<Box<Sleep>>>,
}

impl Scripted {
    fn new(items: impl IntoIterator<Item = (Duration, Result<ChatChunk, OpenAiError>)>) -> Self {
        Self {
            items: items.into_iter().collect(),
            sleep: None,
        }
    }
}

impl Stream for Scripted {
    type Item = Result<ChatChunk, OpenAiError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let Some((delay, _)) = self.items.front() else {
            return Poll::Ready(None);
        };
        let delay = *delay;
        let sleep = self
            .sleep
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(delay)));
        if sleep.as_mut().poll(cx).is_pending() {
            return Poll::Pending;
        }
        self.sleep = None;
        Poll::Ready(self.items.pop_front().map(|(_, item)| item))
    }
}

fn chunk(value: serde_json::Value) -> ChatChunk {
    serde_json::from_value(value).unwrap()
}

/// What the encoder is given: a role chunk, three words, a finish with usage, each with
/// OpenAI's other fields (which must come back unchanged).
fn answer() -> Vec<ChatChunk> {
    let base = |delta: serde_json::Value, finish: Option<&str>| {
        json!({
            "id": "chatcmpl-gw",
            "object": "chat.completion.chunk",
            "created": 1_700_000_000,
            "model": "m",
            "system_fingerprint": "fp_1",
            "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}]
        })
    };
    let mut last = chunk(base(json!({}), Some("stop")));
    last.usage = Some(Usage {
        prompt_tokens: 9,
        completion_tokens: 3,
        total_tokens: 12,
    });
    vec![
        chunk(base(json!({"role": "assistant", "content": ""}), None)),
        chunk(base(json!({"content": "I "}), None)),
        chunk(base(json!({"content": "vote "}), None)),
        chunk(base(json!({"content": "yes."}), None)),
        last,
    ]
}

fn client(name: &str, gateway: &Gateway) -> OpenAiClient {
    OpenAiClient::builder(name, gateway.base_url())
        .first_token_timeout(Duration::from_secs(5))
        .idle_timeout(Duration::from_secs(5))
        .total_timeout(Duration::from_secs(60))
        .build()
        .unwrap()
}

async fn stream(client: &OpenAiClient) -> Box<ChatStream> {
    match client
        .clone()
        .oneshot(ChatRequest::new("ignored", "Vote on BIP-01").streamed())
        .await
        .unwrap()
    {
        ChatResponse::Stream(stream) => stream,
        ChatResponse::Complete(_) => panic!("asked for a stream"),
    }
}

/// Every chunk until the end, and the error that ended the stream, if any.
async fn drain(stream: &mut ChatStream) -> (Vec<ChatChunk>, Option<OpenAiError>) {
    let mut chunks = Vec::new();
    while let Some(item) = stream.next().await {
        match item {
            Ok(chunk) => chunks.push(chunk),
            Err(error) => return (chunks, Some(error)),
        }
    }
    (chunks, None)
}

#[tokio::test(start_paused = true)]
async fn a_whole_stream_arrives_as_the_same_chunks_with_keep_alives_between() {
    let gateway = Gateway::start(|_| async {
        let items = answer()
            .into_iter()
            .map(|c| (Duration::from_secs(3), Ok(c)));
        SseEncoder::new(Scripted::new(items))
            .keep_alive(Duration::from_secs(1))
            .into_response()
    })
    .await;
    // The first token comes 6 s in (the role chunk at 3 s is no token).
    let client = OpenAiClient::builder("m", gateway.base_url())
        .first_token_timeout(Duration::from_secs(7))
        .idle_timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let mut stream = stream(&client).await;
    let started = Instant::now();
    let (received, error) = drain(&mut stream).await;
    assert!(error.is_none(), "{error:?}");
    assert_eq!(received, answer(), "every chunk, field for field");
    assert_eq!(started.elapsed(), Duration::from_secs(15));
    assert_eq!(stream.usage().unwrap().total_tokens, 12);
    assert_eq!(
        stream.malformed(),
        0,
        "keep-alives are comments, not events"
    );
}

#[tokio::test(start_paused = true)]
async fn keep_alives_keep_the_connection_not_the_answer() {
    // A gap of 8 s between chunks, keep-alives every second: the client's idle limit (5 s)
    // counts chunks, and the stream stalls.
    let gateway = Gateway::start(|_| async {
        let chunks = answer();
        let items = [
            // The first token (the role chunk before it is no token: it would leave the
            // first-token limit running).
            (Duration::ZERO, Ok(chunks[1].clone())),
            (Duration::from_secs(8), Ok(chunks[2].clone())),
        ];
        SseEncoder::new(Scripted::new(items))
            .keep_alive(Duration::from_secs(1))
            .into_response()
    })
    .await;
    let (received, error) = drain(&mut *stream(&client("m", &gateway)).await).await;
    assert_eq!(received.len(), 1);
    assert!(
        matches!(error, Some(OpenAiError::Stalled { .. })),
        "{error:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn an_in_band_error_is_read_as_a_failure_never_a_whole_answer() {
    let gateway = Gateway::start(|_| async {
        let chunks = answer();
        let items = [
            (Duration::ZERO, Ok(chunks[0].clone())),
            (Duration::ZERO, Ok(chunks[1].clone())),
            (
                Duration::ZERO,
                Err(OpenAiError::StreamCut {
                    model: ModelId::new("upstream"),
                    chunks: 2,
                    source: None,
                }),
            ),
        ];
        SseEncoder::new(Scripted::new(items))
            .route("chat")
            .into_response()
    })
    .await;
    let (received, error) = drain(&mut *stream(&client("m", &gateway)).await).await;
    assert_eq!(received, answer()[..2]);
    let error = error.expect("the stream must fail");
    assert_eq!(error.outcome(), Outcome::failure(FailureClass::StreamCut));
    let OpenAiError::ErrorEvent {
        chunks,
        code,
        kind,
        provider_message,
        ..
    } = &error
    else {
        panic!("{error:?}")
    };
    assert_eq!(*chunks, 2);
    assert_eq!(code.as_deref(), Some("stream_cut"));
    assert_eq!(kind.as_deref(), Some("server_error"));
    assert_eq!(
        provider_message,
        "the answer of route `chat` broke off after 2 chunks (stream_cut) and is incomplete"
    );
    assert!(
        !provider_message.contains("upstream"),
        "no upstream model name"
    );
    assert_eq!(
        error.to_string(),
        "model `m` sent an error event after 2 chunks (stream_cut)"
    );
}

#[tokio::test(start_paused = true)]
async fn every_error_of_the_table_round_trips_through_the_client() {
    let secs = Duration::from_secs;
    let limited = |wait| {
        RouteAttempt::new(
            Outcome::Failure {
                class: FailureClass::RateLimited,
                retry_after: wait,
            },
            Some(StatusCode::TOO_MANY_REQUESTS),
        )
    };
    let refused = |class, status: u16| {
        RouteAttempt::new(
            Outcome::ClientError(class),
            Some(StatusCode::from_u16(status).unwrap()),
        )
    };
    // (the client's model name, the error served, the outcome the client reads, the wait)
    let table: Vec<(&str, GatewayError, Outcome, Option<Duration>)> = vec![
        (
            "unauthorized",
            GatewayError::unauthorized(),
            Outcome::ClientError(ClientErrorClass::Unauthorized),
            None,
        ),
        (
            "invalid",
            GatewayError::invalid_request("`messages` must not be empty", Some("messages")),
            Outcome::ClientError(ClientErrorClass::BadRequest),
            None,
        ),
        (
            "not-found",
            GatewayError::model_not_found("gpt-9"),
            Outcome::ClientError(ClientErrorClass::BadRequest),
            None,
        ),
        (
            "too-large",
            GatewayError::too_large(1 << 20),
            // hive-core's one status table reads a 413 so: too much for this model.
            Outcome::ClientError(ClientErrorClass::ContextLengthExceeded),
            None,
        ),
        (
            "context",
            GatewayError::exhausted(
                "chat",
                [refused(ClientErrorClass::ContextLengthExceeded, 400)],
            ),
            Outcome::ClientError(ClientErrorClass::ContextLengthExceeded),
            None,
        ),
        (
            "policy",
            GatewayError::exhausted("chat", [refused(ClientErrorClass::ContentPolicy, 400)]),
            Outcome::ClientError(ClientErrorClass::ContentPolicy),
            None,
        ),
        (
            "unprocessable",
            GatewayError::exhausted("chat", [refused(ClientErrorClass::BadRequest, 422)]),
            Outcome::ClientError(ClientErrorClass::BadRequest),
            None,
        ),
        (
            "cooling",
            GatewayError::exhausted(
                "chat",
                [
                    limited(Some(secs(30))),
                    RouteAttempt::new(Outcome::Rejected(RejectReason::Unavailable), None)
                        .cooldown(Some(Duration::from_millis(6500))),
                ],
            ),
            Outcome::Failure {
                class: FailureClass::RateLimited,
                retry_after: Some(secs(7)),
            },
            Some(secs(7)),
        ),
        (
            "down",
            GatewayError::exhausted(
                "chat",
                [
                    RouteAttempt::new(Outcome::failure(FailureClass::Unavailable), None),
                    RouteAttempt::new(
                        Outcome::Rejected(RejectReason::CircuitOpen { retry_in: secs(12) }),
                        None,
                    ),
                ],
            ),
            Outcome::Failure {
                class: FailureClass::Unavailable,
                retry_after: Some(secs(12)),
            },
            Some(secs(12)),
        ),
        (
            "bad-gateway",
            GatewayError::exhausted("chat", [refused(ClientErrorClass::Unauthorized, 401)]),
            Outcome::failure(FailureClass::Unavailable),
            None,
        ),
        (
            "deadline",
            GatewayError::deadline_exceeded("chat"),
            Outcome::failure(FailureClass::Timeout),
            None,
        ),
    ];
    let served: Vec<(String, GatewayError)> = table
        .iter()
        .map(|(name, error, ..)| ((*name).to_owned(), error.clone()))
        .collect();
    let gateway = Gateway::start(move |request: ChatRequest| {
        let error = served
            .iter()
            .find(|(name, _)| *name == request.model)
            .map(|(_, error)| error.clone())
            .unwrap();
        async move { error.into_response() }
    })
    .await;
    for (name, served, outcome, retry_after) in table {
        for streamed in [false, true] {
            let request = ChatRequest::new(name, "Vote on BIP-01");
            let request = if streamed {
                request.streamed()
            } else {
                request
            };
            let error = client(name, &gateway).oneshot(request).await.unwrap_err();
            let OpenAiError::Status {
                status,
                code,
                provider_message,
                retry_after: waited,
                ..
            } = &error
            else {
                panic!("{name}: {error:?}")
            };
            assert_eq!(*status, served.status(), "{name}");
            assert_eq!(error.outcome(), outcome, "{name}");
            assert_eq!(*waited, retry_after, "{name}");
            assert_eq!(
                code.as_deref(),
                served.kind().code().or(Some(served.kind().error_type())),
                "{name}: the code, else the type"
            );
            assert_eq!(*provider_message, served.message(), "{name}");
        }
    }
}

#[tokio::test(start_paused = true)]
async fn a_whole_answer_streams_as_chunks_that_read_back_as_it() {
    let whole: hive_openai::ChatCompletion = serde_json::from_value(json!({
        "id": "chatcmpl-whole",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": "m",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "I vote yes."}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 9, "completion_tokens": 3, "total_tokens": 12}
    }))
    .unwrap();
    let chunks = whole.clone().into_chunks();
    assert_eq!(chunks.len(), 3, "text, finish, usage");
    assert_eq!(chunks[0].extra["id"], "chatcmpl-whole");
    assert_eq!(chunks[0].extra["object"], "chat.completion.chunk");
    assert_eq!(chunks[0].choices[0].delta.extra["role"], "assistant");
    let gateway = Gateway::start(move |_| {
        let chunks = whole.clone().into_chunks();
        async move {
            let items = chunks.into_iter().map(|c| (Duration::ZERO, Ok(c)));
            SseEncoder::new(Scripted::new(items)).into_response()
        }
    })
    .await;
    let mut read = stream(&client("m", &gateway)).await;
    let (got, error) = drain(&mut read).await;
    assert!(error.is_none(), "{error:?}");
    let text: String = got
        .iter()
        .filter_map(|c| c.choices.first()?.delta.content.clone())
        .collect();
    assert_eq!(text, "I vote yes.");
    assert_eq!(read.usage().unwrap().total_tokens, 12);
}
