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
    #[serde(default)]
    pub(crate) messages: Vec<WireMessage>,
}

impl ChatRequest {
    /// The content of the last message when it is the assistant's: a prefill to continue.
    pub(crate) fn prefill(&self) -> Option<String> {
        let last = self.messages.last()?;
        (last.role == "assistant").then(|| text_of(&last.content))
    }
}

/// What the simulator reads of a message.
#[derive(Debug, Deserialize)]
pub(crate) struct WireMessage {
    #[serde(default)]
    pub(crate) role: String,
    /// A string, or an array of content parts (`{"type": "text", "text": …}`).
    #[serde(default)]
    pub(crate) content: Value,
}

/// The text of a message's content: the string, or its text parts joined.
fn text_of(content: &Value) -> String {
    match content {
        Value::String(text) => text.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|part| part["text"].as_str())
            .collect(),
        _ => String::new(),
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct StreamOptions {
    #[serde(default)]
    pub(crate) include_usage: bool,
}

pub(crate) fn completion(model: &str, text: &str, prompt: usize, tokens: usize) -> Value {
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
        "usage": usage(prompt, tokens),
    })
}

/// Prompt tokens of a request: 12, plus the tokens of its prefill.
pub(crate) const PROMPT_TOKENS: usize = 12;

fn usage(prompt: usize, tokens: usize) -> Value {
    json!({"prompt_tokens": prompt, "completion_tokens": tokens, "total_tokens": prompt + tokens})
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
pub(crate) fn finish(model: &str, prompt: usize, tokens: usize, with_usage: bool) -> String {
    let mut chunk = json!({
        "id": "chatcmpl-hive-sim",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": model,
        "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]
    });
    if with_usage {
        chunk["usage"] = usage(prompt, tokens);
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
