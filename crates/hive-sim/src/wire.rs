//! The OpenAI wire format the simulator speaks: request, answers, chunks and errors.

use serde::Deserialize;
use serde_json::{Value, json};

/// What the simulator reads of a chat-completion request.
#[derive(Debug, Deserialize)]
pub(crate) struct ChatRequest {
    pub(crate) model: String,
    #[serde(default)]
    pub(crate) stream: bool,
    #[serde(default)]
    pub(crate) stream_options: Option<StreamOptions>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct StreamOptions {
    #[serde(default)]
    pub(crate) include_usage: bool,
}

pub(crate) fn completion(model: &str, text: &str, tokens: usize) -> Value {
    json!({
        "id": "chatcmpl-hive-sim",
        "object": "chat.completion",
        "created": 0,
        "model": model,
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": text},
            "finish_reason": "stop"
        }],
        "usage": usage(tokens),
    })
}

fn usage(tokens: usize) -> Value {
    json!({"prompt_tokens": 12, "completion_tokens": tokens, "total_tokens": 12 + tokens})
}

/// One SSE event carrying a content delta.
pub(crate) fn delta(model: &str, content: &str) -> String {
    event(&json!({
        "id": "chatcmpl-hive-sim",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": model,
        "choices": [{"index": 0, "delta": {"content": content}, "finish_reason": null}]
    }))
}

/// The last content event: an empty delta with the finish reason, and usage when asked.
pub(crate) fn finish(model: &str, tokens: usize, with_usage: bool) -> String {
    let mut chunk = json!({
        "id": "chatcmpl-hive-sim",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": model,
        "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]
    });
    if with_usage {
        chunk["usage"] = usage(tokens);
    }
    event(&chunk)
}

pub(crate) const DONE: &str = "data: [DONE]\n\n";
pub(crate) const MALFORMED: &str = "data: {\"choices\": [{\"delta\": {\"content\": \n\n";

fn event(value: &Value) -> String {
    format!("data: {value}\n\n")
}

pub(crate) fn error(message: &str, kind: &str, code: Option<&str>) -> Value {
    json!({"error": {"message": message, "type": kind, "param": null, "code": code}})
}

pub(crate) fn models(names: &[String]) -> Value {
    json!({
        "object": "list",
        "data": names
            .iter()
            .map(|n| json!({"id": n, "object": "model", "created": 0, "owned_by": "hive-sim"}))
            .collect::<Vec<_>>()
    })
}
