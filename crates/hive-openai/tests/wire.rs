//! What real providers send that a first chunk with text does not show: a chunk with only
//! the role before the answer, tool calls streamed in pieces, several choices. Over real
//! HTTP with a hand-written provider; paused time, so limits are exact.

#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use hive_openai::{
    ChatChunk, ChatRequest, ChatResponse, ChatStream, Commit, CommitLayer, OpenAiClient,
    OpenAiError,
};
use serde_json::{Value, json};
use support::{RawProvider, SSE_HEAD, chunk};
use tokio::time::Instant;
use tower::{Layer, ServiceExt};

/// One SSE event, framed as a chunk of a chunked body.
fn event(value: &Value) -> Vec<u8> {
    chunk(format!("data: {value}\n\n").as_bytes())
}

/// A chunk of model `m` with these choices.
fn chunk_of(choices: Value) -> Value {
    json!({
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 7,
        "model": "m",
        "choices": choices,
    })
}

/// OpenAI's first chunk: the role, empty text, no refusal.
fn role() -> Value {
    chunk_of(
        json!([{"index": 0, "delta": {"role": "assistant", "content": "", "refusal": null},
        "finish_reason": null}]),
    )
}

fn text(index: u32, text: &str, finish: Option<&str>) -> Value {
    chunk_of(json!([{"index": index, "delta": {"content": text}, "finish_reason": finish}]))
}

fn done() -> Vec<u8> {
    let mut bytes = chunk(b"data: [DONE]\n\n");
    bytes.extend(chunk(b""));
    bytes
}

/// A client of model `m`: first token within 300 ms, 100 ms between chunks.
fn client(provider: &RawProvider) -> OpenAiClient {
    OpenAiClient::builder("m", provider.base_url())
        .first_token_timeout(Duration::from_millis(300))
        .idle_timeout(Duration::from_millis(100))
        .total_timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

async fn ask(
    provider: &RawProvider,
    commit: Commit,
    request: ChatRequest,
) -> Result<ChatResponse, OpenAiError> {
    CommitLayer::new(commit)
        .layer(client(provider))
        .oneshot(request)
        .await
}

fn streamed() -> ChatRequest {
    ChatRequest::new("m", "Vote on BIP-01").streamed()
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

/// The role, then keep-alives every 50 ms, for a long time.
async fn role_then_silence() -> RawProvider {
    let mut pieces = vec![event(&role())];
    pieces.extend(std::iter::repeat_n(chunk(b": ping\n\n"), 200));
    RawProvider::trickle(SSE_HEAD, pieces, Duration::from_millis(50)).await
}

#[tokio::test(start_paused = true)]
async fn a_model_that_sends_its_role_and_then_stalls_fails_the_call_at_the_first_token_limit() {
    let provider = role_then_silence().await;
    let start = Instant::now();
    let error = ask(&provider, Commit::FirstChunk, streamed())
        .await
        .unwrap_err();
    // As if nothing had come: the first-token limit, not the idle limit after the role.
    assert!(
        matches!(error, OpenAiError::FirstToken { limit, .. } if limit == Duration::from_millis(300)),
        "{error:?}"
    );
    assert_eq!(start.elapsed(), Duration::from_millis(300));

    // Passed through, the caller gets the role, then the same failure at the same time.
    let start = Instant::now();
    let Ok(ChatResponse::Stream(mut stream)) =
        ask(&provider, Commit::PassThrough, streamed()).await
    else {
        panic!("a stream")
    };
    let (chunks, error) = drain(&mut stream).await;
    assert_eq!(chunks.len(), 1);
    assert_eq!(chunks[0].choices[0].delta.extra["role"], "assistant");
    assert!(
        matches!(error, Some(OpenAiError::FirstToken { .. })),
        "{error:?}"
    );
    assert_eq!(start.elapsed(), Duration::from_millis(300));
}

#[tokio::test(start_paused = true)]
async fn a_model_that_sends_its_role_and_then_ends_fails_the_call() {
    // Ended politely, or the body just ended: either way no answer.
    for end in [done(), chunk(b"")] {
        let mut body = event(&role());
        body.extend(end);
        let provider = RawProvider::trickle(SSE_HEAD, vec![body], Duration::ZERO).await;
        let error = ask(&provider, Commit::FirstChunk, streamed())
            .await
            .unwrap_err();
        assert!(
            matches!(error, OpenAiError::StreamCut { chunks: 1, .. }),
            "{error:?}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn the_stream_commits_at_its_first_token_and_the_role_before_it_is_given_out_first() {
    // Azure's prompt-filter chunk (no choices), the role, then the text 200 ms later.
    let pieces = vec![
        event(&json!({"id": "", "model": "", "choices": [],
            "prompt_filter_results": [{"prompt_index": 0}]})),
        event(&role()),
        event(&text(0, "Yes", None)),
        {
            let mut end = event(&text(0, ".", Some("stop")));
            end.extend(done());
            end
        },
    ];
    let provider = RawProvider::trickle(SSE_HEAD, pieces, Duration::from_millis(100)).await;
    let client = OpenAiClient::builder("m", provider.base_url())
        .accept_unnamed_stream(true)
        .first_token_timeout(Duration::from_millis(300))
        .idle_timeout(Duration::from_millis(150))
        .build()
        .unwrap();
    let start = Instant::now();
    let Ok(ChatResponse::Stream(mut stream)) = CommitLayer::new(Commit::FirstChunk)
        .layer(client)
        .oneshot(streamed())
        .await
    else {
        panic!("a stream")
    };
    assert_eq!(start.elapsed(), Duration::from_millis(200), "at the text");
    let (chunks, error) = drain(&mut stream).await;
    assert!(error.is_none(), "{error:?}");
    let summary: Vec<(usize, Option<&str>, Option<&Value>)> = chunks
        .iter()
        .map(|c| {
            let first = c.choices.first();
            (
                c.choices.len(),
                first.and_then(|c| c.delta.content.as_deref()),
                first.and_then(|c| c.delta.extra.get("role")),
            )
        })
        .collect();
    let assistant = Value::from("assistant");
    assert_eq!(
        summary,
        [
            (0, None, None),
            (1, Some(""), Some(&assistant)),
            (1, Some("Yes"), None),
            (1, Some("."), None),
        ]
    );
    assert_eq!(start.elapsed(), Duration::from_millis(300));
}

#[tokio::test(start_paused = true)]
async fn a_buffered_stream_of_tool_calls_is_one_message_with_merged_calls_and_null_content() {
    // As OpenAI streams two parallel tool calls.
    let call = |index: u32, call: Value| {
        let mut call = call;
        call["index"] = index.into();
        chunk_of(json!([{"index": 0, "delta": {"tool_calls": [call]}, "finish_reason": null}]))
    };
    let mut first = role();
    first["choices"][0]["delta"]["content"] = Value::Null;
    first["choices"][0]["delta"]["tool_calls"] = json!([{"index": 0, "id": "call_a",
        "type": "function", "function": {"name": "vote", "arguments": ""}}]);
    let mut body = Vec::new();
    for value in [
        first,
        call(0, json!({"function": {"arguments": "{\"bip\""}})),
        call(0, json!({"function": {"arguments": ": 1}"}})),
        call(
            1,
            json!({"id": "call_b", "type": "function", "function": {"name": "sign", "arguments": ""}}),
        ),
        call(1, json!({"function": {"arguments": "{}"}})),
        chunk_of(json!([{"index": 0, "delta": {}, "finish_reason": "tool_calls"}])),
        {
            let mut usage = chunk_of(json!([]));
            usage["usage"] =
                json!({"prompt_tokens": 20, "completion_tokens": 9, "total_tokens": 29});
            usage
        },
    ] {
        body.extend(event(&value));
    }
    body.extend(done());
    let provider = RawProvider::trickle(SSE_HEAD, vec![body], Duration::ZERO).await;
    let Ok(ChatResponse::Complete(answer)) = ask(&provider, Commit::Buffered, streamed()).await
    else {
        panic!("a whole answer")
    };
    assert_eq!(
        serde_json::to_value(&answer).unwrap(),
        json!({
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "created": 7,
            "model": "m",
            "choices": [{
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": null,
                    "tool_calls": [
                        {"id": "call_a", "type": "function",
                         "function": {"name": "vote", "arguments": "{\"bip\": 1}"}},
                        {"id": "call_b", "type": "function",
                         "function": {"name": "sign", "arguments": "{}"}},
                    ],
                },
                "finish_reason": "tool_calls",
            }],
            "usage": {"prompt_tokens": 20, "completion_tokens": 9, "total_tokens": 29},
        })
    );
}

#[tokio::test(start_paused = true)]
async fn several_choices_are_finished_only_when_each_has_its_finish_reason() {
    let both = |a: &str, b: &str| {
        chunk_of(json!([
            {"index": 1, "delta": {"role": "assistant", "content": b}, "finish_reason": null},
            {"index": 0, "delta": {"role": "assistant", "content": a}, "finish_reason": null},
        ]))
    };
    let mut asked = streamed();
    std::sync::Arc::make_mut(&mut asked.extra).insert("n".into(), 2.into());

    // Choice 0 finished, choice 1 not: `[DONE]`, or a body that ends, cuts the answer.
    for end in [done(), chunk(b"")] {
        let mut body = event(&both("Yes", "No"));
        body.extend(event(&text(0, ".", Some("stop"))));
        body.extend(end);
        let provider = RawProvider::trickle(SSE_HEAD, vec![body], Duration::ZERO).await;
        let Ok(ChatResponse::Stream(mut stream)) =
            ask(&provider, Commit::FirstChunk, asked.clone()).await
        else {
            panic!("a stream")
        };
        let (chunks, error) = drain(&mut stream).await;
        assert_eq!(chunks.len(), 2);
        assert!(
            matches!(error, Some(OpenAiError::StreamCut { chunks: 2, .. })),
            "{error:?}"
        );
        // Buffered, the cut fails the call.
        let error = ask(&provider, Commit::Buffered, asked.clone())
            .await
            .unwrap_err();
        assert!(
            matches!(error, OpenAiError::StreamCut { chunks: 2, .. }),
            "{error:?}"
        );
    }

    // Both finished (choice 1 first): whole, one choice per index, sorted.
    let mut body = event(&both("Yes", "No"));
    body.extend(event(&text(1, "!", Some("length"))));
    body.extend(event(&text(0, ".", Some("stop"))));
    body.extend(done());
    let provider = RawProvider::trickle(SSE_HEAD, vec![body], Duration::ZERO).await;
    let Ok(ChatResponse::Complete(answer)) = ask(&provider, Commit::Buffered, asked).await else {
        panic!("a whole answer")
    };
    let choices: Vec<(u32, Option<&str>, Option<&str>)> = answer
        .choices
        .iter()
        .map(|c| (c.index, c.message.text(), c.finish_reason.as_deref()))
        .collect();
    assert_eq!(
        choices,
        [
            (0, Some("Yes."), Some("stop")),
            (1, Some("No!"), Some("length"))
        ]
    );
}
