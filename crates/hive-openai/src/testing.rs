//! Streams of chunks for unit tests: scripted in advance, or fed from a channel.

use std::{
    pin::Pin,
    task::{Context, Poll},
};

use futures_core::Stream;
use hive_core::ModelId;
use serde_json::json;
use tokio::sync::mpsc;

use crate::{ChatChunk, OpenAiError, Usage};

pub(crate) type Item = Result<ChatChunk, OpenAiError>;

/// A stream of items sent on a channel; it ends when the sender is dropped.
#[derive(Debug)]
pub(crate) struct Chunks {
    rx: mpsc::UnboundedReceiver<Item>,
}

impl Stream for Chunks {
    type Item = Item;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Item>> {
        self.rx.poll_recv(cx)
    }
}

/// A stream fed from the sender returned.
pub(crate) fn channel() -> (mpsc::UnboundedSender<Item>, Chunks) {
    let (tx, rx) = mpsc::unbounded_channel();
    (tx, Chunks { rx })
}

/// A stream of these items, then its end.
pub(crate) fn chunks(items: impl IntoIterator<Item = Item>) -> Chunks {
    let (tx, stream) = channel();
    for item in items {
        tx.send(item).unwrap();
    }
    stream
}

/// A chunk from `model` (with chunk id `id`) carrying `text`.
pub(crate) fn delta(model: &str, id: &str, text: &str) -> ChatChunk {
    serde_json::from_value(json!({
        "id": id,
        "object": "chat.completion.chunk",
        "created": 7,
        "model": model,
        "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": null}]
    }))
    .unwrap()
}

/// The last chunk: a finish reason, and usage when given.
pub(crate) fn finish(model: &str, id: &str, usage: Option<Usage>) -> ChatChunk {
    let mut chunk = delta(model, id, "");
    chunk.choices[0].delta.content = None;
    chunk.choices[0].finish_reason = Some("stop".into());
    chunk.usage = usage;
    chunk
}

/// The cut of `model`'s stream after `chunks` chunks.
pub(crate) fn cut(model: &str, chunks: usize) -> OpenAiError {
    OpenAiError::StreamCut {
        model: ModelId::new(model),
        chunks,
        source: None,
    }
}

/// The text of chunks.
pub(crate) fn text_of(chunks: &[ChatChunk]) -> String {
    chunks
        .iter()
        .flat_map(|c| &c.choices)
        .filter_map(|c| c.delta.content.as_deref())
        .collect()
}
