//! Typed requests and answers of `/v1/chat/completions`. Unknown fields are kept, so a
//! provider's extensions pass through unchanged.

use std::{collections::BTreeMap, sync::Arc};

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Fields this version does not know, kept as they were.
pub type Extra = BTreeMap<String, Value>;

/// What a message says: a text, or an array of content parts (OpenAI's multimodal
/// messages: `{"type": "text", "text": …}`, `{"type": "image_url", …}`), kept as sent.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Content {
    /// A plain text.
    Text(String),
    /// Content parts, as they were.
    Parts(Vec<Value>),
}

impl Content {
    /// The text, when the content is a plain text.
    pub fn as_text(&self) -> Option<&str> {
        match self {
            Self::Text(text) => Some(text),
            Self::Parts(_) => None,
        }
    }
}

impl From<String> for Content {
    fn from(text: String) -> Self {
        Self::Text(text)
    }
}

impl From<&str> for Content {
    fn from(text: &str) -> Self {
        Self::Text(text.to_owned())
    }
}

/// A chat message.
///
/// Its content round-trips as it came: a text, an array of parts, or none. `"content":
/// null` (an assistant message that only calls tools, as every tool loop of OpenAI's SDKs
/// sends back, and as OpenAI answers it) and a message without `content` both read as
/// `None`, which is written back as `"content": null`, OpenAI's own form. Tool calls and
/// the other fields stay in [`extra`](Self::extra).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Message {
    /// `system`, `user`, `assistant`, `tool` …
    pub role: String,
    /// What it says: `None` when `null` or absent.
    #[serde(default)]
    pub content: Option<Content>,
    /// Other fields (`tool_calls`, `tool_call_id`, `name`, `refusal` …).
    #[serde(flatten)]
    pub extra: Extra,
}

impl Message {
    /// A message from `role` with this text.
    pub fn new(role: impl Into<String>, text: impl Into<String>) -> Self {
        Self {
            role: role.into(),
            content: Some(Content::Text(text.into())),
            extra: Extra::new(),
        }
    }

    /// Its text, when its content is a plain text (`None` when it has no content or
    /// content parts).
    pub fn text(&self) -> Option<&str> {
        self.content.as_ref().and_then(Content::as_text)
    }
}

/// A chat-completion request. A retry, a fallback and a stream's continuation each keep a
/// copy, so it is cheap to clone: the conversation and the other fields are shared behind
/// [`Arc`]s (change them with [`Arc::make_mut`], which copies only a shared one).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChatRequest {
    /// The model asked for.
    pub model: String,
    /// The conversation, shared between the copies of the request.
    pub messages: Arc<Vec<Message>>,
    /// Whether to stream the answer (`"stream": null`, as OpenAI's SDKs may send it, reads
    /// as `false`).
    #[serde(
        default,
        deserialize_with = "null_as_false",
        skip_serializing_if = "std::ops::Not::not"
    )]
    pub stream: bool,
    /// Most tokens to generate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    /// Other fields (temperature, tools, stream_options …), shared between the copies of
    /// the request.
    #[serde(flatten)]
    pub extra: Arc<Extra>,
    /// The commit policy of this request's stream, over the [`CommitLayer`]'s own (a route
    /// of a gateway sets it, so that routes sharing a model's stack commit as each wants).
    /// Never sent to the provider.
    ///
    /// [`CommitLayer`]: crate::CommitLayer
    #[serde(skip)]
    pub commit: Option<crate::Commit>,
}

/// A boolean that may be `null` (read as `false`); any other type is refused.
fn null_as_false<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<bool, D::Error> {
    Ok(Option::<bool>::deserialize(deserializer)?.unwrap_or(false))
}

impl ChatRequest {
    /// A request to `model` with one user message.
    pub fn new(model: impl Into<String>, prompt: impl Into<String>) -> Self {
        Self {
            model: model.into(),
            messages: Arc::new(vec![Message::new("user", prompt)]),
            stream: false,
            max_tokens: None,
            extra: Arc::default(),
            commit: None,
        }
    }

    /// The same request, streamed, asking for usage in the last chunk.
    #[must_use]
    pub fn streamed(mut self) -> Self {
        self.stream = true;
        Arc::make_mut(&mut self.extra).insert(
            "stream_options".into(),
            serde_json::json!({"include_usage": true}),
        );
        self
    }
}

/// Token counts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// Tokens in the prompt.
    #[serde(default)]
    pub prompt_tokens: u64,
    /// Tokens generated.
    #[serde(default)]
    pub completion_tokens: u64,
    /// Both.
    #[serde(default)]
    pub total_tokens: u64,
}

/// One choice of a whole answer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Choice {
    /// Its index.
    #[serde(default)]
    pub index: u32,
    /// The message.
    pub message: Message,
    /// Why generation stopped.
    #[serde(default)]
    pub finish_reason: Option<String>,
    /// Other fields.
    #[serde(flatten)]
    pub extra: Extra,
}

/// A whole (unstreamed) answer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChatCompletion {
    /// The provider's id.
    #[serde(default)]
    pub id: String,
    /// The model that answered, as the provider names it.
    pub model: String,
    /// The choices.
    pub choices: Vec<Choice>,
    /// Token counts, when sent.
    #[serde(default)]
    pub usage: Option<Usage>,
    /// Other fields.
    #[serde(flatten)]
    pub extra: Extra,
}

impl ChatCompletion {
    /// The whole answer as the chunks of a stream, for a caller that asked to stream (an
    /// answer assembled from a buffered stream, a gateway's degraded answer): per choice, one
    /// chunk with its role and text and one with its finish reason; then the usage, if any,
    /// on a chunk of its own (as `stream_options.include_usage` has it). The id and creation
    /// time are kept on every chunk, with `"object": "chat.completion.chunk"`.
    pub fn into_chunks(self) -> Vec<ChatChunk> {
        let mut extra = Extra::new();
        for key in ["id", "created", "system_fingerprint"] {
            if let Some(value) = self.extra.get(key) {
                extra.insert(key.to_owned(), value.clone());
            }
        }
        if !self.id.is_empty() {
            extra.insert("id".to_owned(), Value::String(self.id.clone()));
        }
        extra.insert("object".to_owned(), Value::from("chat.completion.chunk"));
        let chunk = |choices, usage| ChatChunk {
            model: self.model.clone(),
            choices,
            usage,
            extra: extra.clone(),
        };
        let mut chunks = Vec::with_capacity(2 * self.choices.len() + 1);
        for choice in &self.choices {
            let mut delta = Delta {
                content: choice.message.text().map(str::to_owned),
                extra: choice.message.extra.clone(),
            };
            delta.extra.insert(
                "role".to_owned(),
                Value::String(choice.message.role.clone()),
            );
            // A streamed tool call names its place in the list.
            if let Some(Value::Array(calls)) = delta.extra.get_mut("tool_calls") {
                for (index, call) in calls.iter_mut().enumerate() {
                    if let Value::Object(call) = call {
                        call.entry("index").or_insert(Value::from(index));
                    }
                }
            }
            chunks.push(chunk(
                vec![ChunkChoice {
                    index: choice.index,
                    delta,
                    finish_reason: None,
                }],
                None,
            ));
            chunks.push(chunk(
                vec![ChunkChoice {
                    index: choice.index,
                    delta: Delta::default(),
                    finish_reason: Some(
                        choice
                            .finish_reason
                            .clone()
                            .unwrap_or_else(|| "stop".to_owned()),
                    ),
                }],
                None,
            ));
        }
        if let Some(usage) = self.usage {
            chunks.push(chunk(Vec::new(), Some(usage)));
        }
        chunks
    }

    /// The first choice's text (empty when it has none, as an answer that only calls
    /// tools).
    pub fn text(&self) -> &str {
        self.choices
            .first()
            .and_then(|choice| choice.message.text())
            .unwrap_or_default()
    }
}

/// A change to one choice, in a streamed answer.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Delta {
    /// New text.
    #[serde(default)]
    pub content: Option<String>,
    /// Other fields.
    #[serde(flatten)]
    pub extra: Extra,
}

impl Delta {
    /// The first field of this delta that is not text: any field besides `role` and
    /// `content` that holds something (`tool_calls`, `function_call`, `refusal`,
    /// `reasoning_content` …). `null`, `""` and `[]` hold nothing: OpenAI's first chunk
    /// carries `"refusal": null`.
    pub fn non_text_field(&self) -> Option<&str> {
        self.extra
            .iter()
            .find(|(key, value)| key.as_str() != "role" && holds_something(value))
            .map(|(key, _)| key.as_str())
    }

    /// Whether this delta adds to the answer: text that is not empty, or a field that is
    /// not text ([`non_text_field`](Self::non_text_field)). A delta with only the role
    /// (as providers send first) or empty text adds nothing.
    pub fn adds_to_answer(&self) -> bool {
        self.content.as_deref().is_some_and(|text| !text.is_empty())
            || self.non_text_field().is_some()
    }
}

/// Whether a field's value holds something: not `null`, not `""`, not `[]`, not `{}`.
pub(crate) fn holds_something(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::String(text) => !text.is_empty(),
        Value::Array(items) => !items.is_empty(),
        Value::Object(fields) => !fields.is_empty(),
        Value::Bool(_) | Value::Number(_) => true,
    }
}

/// One choice of a chunk.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChunkChoice {
    /// Its index.
    #[serde(default)]
    pub index: u32,
    /// What changed.
    #[serde(default)]
    pub delta: Delta,
    /// Set on the last chunk of the choice.
    #[serde(default)]
    pub finish_reason: Option<String>,
}

/// One event of a streamed answer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChatChunk {
    /// The model that answers.
    #[serde(default)]
    pub model: String,
    /// The choices that changed.
    #[serde(default)]
    pub choices: Vec<ChunkChoice>,
    /// Token counts, on the last chunk when asked for.
    #[serde(default)]
    pub usage: Option<Usage>,
    /// Other fields.
    #[serde(flatten)]
    pub extra: Extra,
}

impl ChatChunk {
    /// Whether this chunk carries part of the answer: a delta that adds to it
    /// ([`Delta::adds_to_answer`]: text, tool calls, a refusal …), a finish reason, or
    /// usage. Providers often send first a chunk with only the role (and empty text), and
    /// may then stall or fail: such a chunk, or one without choices (Azure's prompt filter
    /// results), is no token of the answer.
    pub fn carries_answer(&self) -> bool {
        self.usage.is_some()
            || self
                .choices
                .iter()
                .any(|c| c.finish_reason.is_some() || c.delta.adds_to_answer())
    }
}

/// Which choices of a streamed answer have finished: the answer is finished when every
/// choice seen has its finish reason (with `n` > 1, one choice's finish reason does not
/// finish the others). O(log n) a choice, whatever indices an untrusted provider sends.
#[derive(Debug, Default)]
pub(crate) struct Finishes {
    /// Every choice index seen, with whether it finished.
    choices: BTreeMap<u32, bool>,
    /// Choices seen and not finished.
    open: usize,
}

impl Finishes {
    /// Notes the choices of a chunk.
    pub(crate) fn add(&mut self, chunk: &ChatChunk) {
        for choice in &chunk.choices {
            let finishes = choice.finish_reason.is_some();
            match self.choices.get_mut(&choice.index) {
                Some(done) => {
                    if finishes && !*done {
                        *done = true;
                        self.open -= 1;
                    }
                }
                None => {
                    self.choices.insert(choice.index, finishes);
                    if !finishes {
                        self.open += 1;
                    }
                }
            }
        }
    }

    /// Every choice seen finished (and at least one was seen).
    pub(crate) fn finished(&self) -> bool {
        !self.choices.is_empty() && self.open == 0
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn chunk(value: Value) -> ChatChunk {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn a_chunk_carries_the_answer_when_it_adds_to_it_finishes_it_or_counts_it() {
        let carries = |value| chunk(value).carries_answer();
        // Nothing yet: the role, empty text, a null refusal, no choices.
        assert!(!carries(json!({"choices": [{"index": 0,
            "delta": {"role": "assistant", "content": "", "refusal": null, "tool_calls": []}}]})));
        assert!(!carries(json!({"choices": []})));
        assert!(!carries(
            json!({"choices": [], "prompt_filter_results": [{"prompt_index": 0}]})
        ));
        // Something.
        assert!(carries(
            json!({"choices": [{"index": 0, "delta": {"content": "Y"}}]})
        ));
        assert!(carries(
            json!({"choices": [{"index": 0, "delta": {"content": null,
            "tool_calls": [{"index": 0, "id": "c", "function": {"name": "f"}}]}}]})
        ));
        assert!(carries(
            json!({"choices": [{"index": 0, "delta": {"refusal": "No"}}]})
        ));
        assert!(carries(
            json!({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
        ));
        assert!(carries(
            json!({"choices": [], "usage": {"total_tokens": 1}})
        ));
        assert!(carries(json!({"choices": [
            {"index": 1, "delta": {"role": "assistant"}},
            {"index": 0, "delta": {"content": "Y"}},
        ]})));
    }

    #[test]
    fn every_choice_seen_must_finish() {
        let mut finishes = Finishes::default();
        assert!(!finishes.finished(), "nothing seen");
        let choice = |index: u32, finish: Option<&str>| {
            chunk(json!({"choices": [{"index": index, "delta": {}, "finish_reason": finish}]}))
        };
        finishes.add(&choice(0, None));
        finishes.add(&choice(1, None));
        finishes.add(&choice(0, Some("stop")));
        assert!(!finishes.finished());
        finishes.add(&choice(0, Some("stop")));
        assert!(!finishes.finished(), "a finish reason counted once");
        finishes.add(&choice(1, Some("length")));
        assert!(finishes.finished());
        finishes.add(&choice(2, None));
        assert!(!finishes.finished(), "a new choice is open");
    }
}
