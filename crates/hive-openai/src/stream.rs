//! [`ChatStream`]: a streamed answer, parsed from server-sent events, that is not a success
//! until it ends well.

use std::{
    fmt,
    future::poll_fn,
    pin::Pin,
    task::{Context, Poll, ready},
};

use hive_core::{EosRecorder, ModelId, Outcome};
use http_body::Body;
use hyper::body::Incoming;
use tokio::time::{Instant, Sleep};

use crate::{
    ChatChunk, OpenAiError, SseDecoder, Usage,
    client::{Identity, Limits},
};

/// A streamed answer: chunks as they arrive, then `None`. It ends with an error when the
/// provider stops early (no finish reason: [`OpenAiError::StreamCut`]), stalls, takes too
/// long, answers as another model, or (by setting) sends a malformed event. A stream that
/// ends cleanly without `[DONE]` is finished at once. Layers that classify at end of stream
/// are told the outcome when it ends; a stream dropped early counts as cut.
pub struct ChatStream {
    body: Incoming,
    events: SseDecoder,
    model: ModelId,
    identity: Identity,
    limits: Limits,
    idle: Pin<Box<Sleep>>,
    total: Pin<Box<Sleep>>,
    chunks: usize,
    malformed: usize,
    finished: bool,
    ended: bool,
    usage: Option<Usage>,
    recorders: Vec<EosRecorder>,
    /// A chunk read ahead (by a first-chunk commit), given out first.
    peeked: Option<ChatChunk>,
}

impl ChatStream {
    pub(crate) fn new(
        body: Incoming,
        model: ModelId,
        identity: Identity,
        limits: Limits,
        started: Instant,
    ) -> Self {
        Self {
            body,
            events: SseDecoder::new(),
            model,
            identity,
            idle: Box::pin(tokio::time::sleep_until(started + limits.first_token)),
            total: Box::pin(tokio::time::sleep_until(started + limits.total)),
            limits,
            chunks: 0,
            malformed: 0,
            finished: false,
            ended: false,
            usage: None,
            recorders: Vec::new(),
            peeked: None,
        }
    }

    /// Puts a chunk back, to be given out first.
    pub(crate) fn unread(&mut self, chunk: ChatChunk) {
        self.peeked = Some(chunk);
    }

    pub(crate) fn attach(&mut self, recorder: EosRecorder) {
        self.recorders.push(recorder);
    }

    /// Usage, when the provider sent it (on the last chunk).
    pub fn usage(&self) -> Option<Usage> {
        self.usage
    }

    /// Malformed events skipped so far.
    pub fn malformed(&self) -> usize {
        self.malformed
    }

    /// The next chunk; `None` once the answer is complete.
    pub async fn next(&mut self) -> Option<Result<ChatChunk, OpenAiError>> {
        poll_fn(|cx| self.poll_chunk(cx)).await
    }

    /// Reads the whole answer: its text, or the error that ended it.
    pub async fn collect_text(mut self) -> Result<String, OpenAiError> {
        let mut text = String::new();
        while let Some(chunk) = self.next().await {
            for choice in chunk?.choices {
                if let Some(content) = choice.delta.content {
                    text.push_str(&content);
                }
            }
        }
        Ok(text)
    }

    fn end(&mut self, outcome: Outcome) {
        self.ended = true;
        for recorder in self.recorders.drain(..) {
            recorder.finish(outcome);
        }
    }

    fn fail(&mut self, error: OpenAiError) -> Poll<Option<Result<ChatChunk, OpenAiError>>> {
        self.end(error.outcome());
        Poll::Ready(Some(Err(error)))
    }

    /// Polls for the next chunk.
    pub fn poll_chunk(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<ChatChunk, OpenAiError>>> {
        if let Some(chunk) = self.peeked.take() {
            return Poll::Ready(Some(Ok(chunk)));
        }
        loop {
            if self.ended {
                return Poll::Ready(None);
            }
            while let Some(data) = self.events.next_data() {
                if data == "[DONE]" {
                    self.end(Outcome::Success);
                    return Poll::Ready(None);
                }
                match serde_json::from_str::<ChatChunk>(&data) {
                    Ok(chunk) => {
                        if !chunk.model.is_empty() && !self.identity.accepts(&chunk.model) {
                            let error = OpenAiError::IdentityMismatch {
                                expected: self.model,
                                answered: chunk.model,
                            };
                            return self.fail(error);
                        }
                        self.chunks += 1;
                        self.finished |= chunk.choices.iter().any(|c| c.finish_reason.is_some());
                        if chunk.usage.is_some() {
                            self.usage = chunk.usage;
                        }
                        return Poll::Ready(Some(Ok(chunk)));
                    }
                    Err(e) if self.limits.skip_malformed => {
                        tracing::debug!(model = %self.model, error = %e, "malformed event skipped");
                        self.malformed += 1;
                    }
                    Err(e) => {
                        let error = OpenAiError::Malformed {
                            model: self.model,
                            detail: format!("event {}: {e}", self.chunks + 1),
                        };
                        return self.fail(error);
                    }
                }
            }
            if self.total.as_mut().poll(cx).is_ready() {
                let error = OpenAiError::TotalTime {
                    model: self.model,
                    limit: self.limits.total,
                };
                return self.fail(error);
            }
            if self.idle.as_mut().poll(cx).is_ready() {
                let error = if self.chunks == 0 {
                    OpenAiError::FirstToken {
                        model: self.model,
                        limit: self.limits.first_token,
                    }
                } else {
                    OpenAiError::Stalled {
                        model: self.model,
                        limit: self.limits.idle,
                    }
                };
                return self.fail(error);
            }
            match ready!(Pin::new(&mut self.body).poll_frame(cx)) {
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        self.events.push(&data);
                        let next = Instant::now() + self.limits.idle;
                        self.idle.as_mut().reset(next);
                    }
                }
                Some(Err(e)) => {
                    let error = OpenAiError::Connect {
                        model: self.model,
                        source: Box::new(e),
                    };
                    return self.fail(error);
                }
                None => {
                    if self.finished {
                        // Complete without `[DONE]`: finished at once.
                        self.end(Outcome::Success);
                        return Poll::Ready(None);
                    }
                    let error = OpenAiError::StreamCut {
                        model: self.model,
                        chunks: self.chunks,
                    };
                    return self.fail(error);
                }
            }
        }
    }
}

impl futures_core::Stream for ChatStream {
    type Item = Result<ChatChunk, OpenAiError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().poll_chunk(cx)
    }
}

impl fmt::Debug for ChatStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChatStream")
            .field("model", &self.model)
            .field("chunks", &self.chunks)
            .field("finished", &self.finished)
            .field("ended", &self.ended)
            .finish_non_exhaustive()
    }
}
