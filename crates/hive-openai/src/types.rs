//! Typed requests and answers of `/v1/chat/completions`. Unknown fields are kept, so a
//! provider's extensions pass through unchanged.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Fields this version does not know, kept as they were.
pub type Extra = BTreeMap<String, Value>;

/// A chat message.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Message {
    /// `system`, `user`, `assistant` or `tool`.
    pub role: String,
    /// The text.
    #[serde(default)]
    pub content: String,
    /// Other fields.
    #[serde(flatten)]
    pub extra: Extra,
}

impl Message {
    /// A message from `role`.
    pub fn new(role: impl Into<String>, content: impl Into<String>) -> Self {
        Self {
            role: role.into(),
            content: content.into(),
            extra: Extra::new(),
        }
    }
}

/// A chat-completion request. Cheap to clone for a retry once built (clone it before a
/// stack that retries).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChatRequest {
    /// The model asked for.
    pub model: String,
    /// The conversation.
    pub messages: Vec<Message>,
    /// Whether to stream the answer.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub stream: bool,
    /// Most tokens to generate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    /// Other fields (temperature, tools, stream_options …).
    #[serde(flatten)]
    pub extra: Extra,
    /// The commit policy of this request's stream, over the [`CommitLayer`]'s own (a route
    /// of a gateway sets it, so that routes sharing a model's stack commit as each wants).
    /// Never sent to the provider.
    ///
    /// [`CommitLayer`]: crate::CommitLayer
    #[serde(skip)]
    pub commit: Option<crate::Commit>,
}

impl ChatRequest {
    /// A request to `model` with one user message.
    pub fn new(model: impl Into<String>, prompt: impl Into<String>) -> Self {
        Self {
            model: model.into(),
            messages: vec![Message::new("user", prompt)],
            stream: false,
            max_tokens: None,
            extra: Extra::new(),
            commit: None,
        }
    }

    /// The same request, streamed, asking for usage in the last chunk.
    #[must_use]
    pub fn streamed(mut self) -> Self {
        self.stream = true;
        self.extra.insert(
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
    /// The first choice's text.
    pub fn text(&self) -> &str {
        self.choices
            .first()
            .map_or("", |c| c.message.content.as_str())
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
