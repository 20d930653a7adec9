//! When a streamed answer is committed to the caller, and so when failing over stops being
//! free.

use std::{
    future::Future,
    pin::Pin,
    task::{Context, Poll},
};

use tower_layer::Layer;
use tower_service::Service;

use crate::{ChatRequest, ChatResponse, OpenAiError, assemble::Assembly};

/// The commit policy of streamed answers, for the layer right above the client.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Commit {
    /// The stream goes to the caller as soon as its headers arrive; a failure after that
    /// ends it with an error the caller sees.
    PassThrough,
    /// The stream goes to the caller once its first chunk that carries part of the answer
    /// arrived ([`ChatChunk::carries_answer`]: text, tool calls, a refusal, a finish reason
    /// or usage), with the chunks before it (a delta with only the role, as providers send
    /// first): a model that fails before its first token (refused, silent, cut at once, or
    /// stalled or cut after its role) fails the attempt, so retry and fallback act for
    /// free. After that, as pass-through.
    ///
    /// [`ChatChunk::carries_answer`]: crate::ChatChunk::carries_answer
    #[default]
    FirstChunk,
    /// The whole stream is read before anything goes to the caller, who gets a whole answer
    /// ([`ChatResponse::Complete`]); a stream that fails anywhere fails the attempt, so the
    /// next attempt or model answers instead. What is held meanwhile is the answer (text,
    /// tool calls merged by their index, one choice per index), bounded by the client's
    /// `max_stream_bytes`.
    Buffered,
}

/// Applies a [`Commit`] policy to streamed answers of the service below (the client).
#[derive(Clone, Copy, Debug)]
#[must_use]
pub struct CommitLayer {
    commit: Commit,
}

impl CommitLayer {
    /// A layer with this policy.
    pub fn new(commit: Commit) -> Self {
        Self { commit }
    }
}

impl<S> Layer<S> for CommitLayer {
    type Service = CommitService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        CommitService {
            inner,
            commit: self.commit,
        }
    }
}

/// The service of [`CommitLayer`].
#[derive(Clone, Debug)]
pub struct CommitService<S> {
    inner: S,
    commit: Commit,
}

impl<S> Service<ChatRequest> for CommitService<S>
where
    S: Service<ChatRequest, Response = ChatResponse, Error = OpenAiError>,
    S::Future: Send + 'static,
{
    type Response = ChatResponse;
    type Error = OpenAiError;
    type Future = Pin<Box<dyn Future<Output = Result<ChatResponse, OpenAiError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: ChatRequest) -> Self::Future {
        // A request may ask for its own policy (a gateway's route).
        let commit = request.commit.unwrap_or(self.commit);
        let future = self.inner.call(request);
        Box::pin(async move {
            let response = future.await?;
            let ChatResponse::Stream(mut stream) = response else {
                return Ok(response);
            };
            match commit {
                Commit::PassThrough => Ok(ChatResponse::Stream(stream)),
                Commit::FirstChunk => {
                    stream.read_to_answer().await?;
                    Ok(ChatResponse::Stream(stream))
                }
                Commit::Buffered => {
                    let mut answer = Assembly::default();
                    while let Some(chunk) = stream.next().await {
                        answer.add(chunk?);
                    }
                    Ok(ChatResponse::Complete(answer.finish(stream.usage())))
                }
            }
        })
    }
}
