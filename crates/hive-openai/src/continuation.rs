//! [`ContinuedStream`]: a committed stream that is cut or stalls, continued by the next
//! model from the partial answer (an assistant prefill), so the caller gets one answer.

use std::{
    error::Error,
    fmt,
    future::{Future, poll_fn},
    pin::Pin,
    sync::Arc,
    task::{Context, Poll, ready},
};

use futures_core::Stream;
use hive_core::{BoxError, ClientErrorClass, ModelId, Outcome};
use http::StatusCode;
use serde_json::Value;

use crate::{ChatChunk, ChatRequest, Content, Message, OpenAiError, Usage, types::Finishes};

/// The default most continuations of one answer.
pub const DEFAULT_MAX_CONTINUATIONS: u32 = 2;

/// What a continuation is asked: the request to send, and why.
#[derive(Clone, Debug)]
pub struct ContinueRequest {
    /// The request to send the next model: the original request, streamed, its messages
    /// followed by an assistant message holding the text already sent (when any was: a
    /// stream that failed before its first token is asked again without one; when the
    /// caller's own request ended with an assistant prefill, the text is added to it rather
    /// than sent as a second one), and its `max_tokens`, if it had one, less the chunks of
    /// text already sent (at least 1: an estimate, a chunk usually carries one token).
    ///
    /// The assistant message carries no provider flag: a gateway adds what its provider
    /// needs to continue rather than answer anew (Mistral's and DeepSeek's `"prefix": true`
    /// on the message, vLLM's `continue_final_message`), and sends it only to models that
    /// accept a prefill — a model that does not may answer the question again from the
    /// start, and its text would follow the partial answer twice.
    pub request: ChatRequest,
    /// Which continuation this is: 1 for the first.
    pub continuation: u32,
    /// Why the stream before it stopped (a failure: a cut, a stall, a timeout …).
    pub cut: Outcome,
    /// Chunks the caller has received so far.
    pub chunks: usize,
    /// The text already sent, which the prefill adds to the conversation (empty when none
    /// was sent).
    pub partial: String,
}

/// Why a cut answer was not continued.
#[derive(Debug, thiserror::Error)]
pub enum NotContinued {
    /// The most continuations were made already (0: continuation is off).
    #[error("{0} continuation(s) made already")]
    Limit(u32),
    /// The model asked to continue refused the prefill (HTTP 400 or 422 to a request the
    /// first model took: only the prefill differs): it does not accept one. A gateway
    /// should stop sending it prefills ([`prefill_refusal`] finds the model in an error).
    #[error("model `{model}` refused the prefill")]
    PrefillRefused {
        /// The model that refused.
        model: ModelId,
        /// Its error.
        #[source]
        error: BoxError,
    },
    /// The continuation found no model to continue with (its error: every model failed,
    /// none accepts a prefill, the deadline passed …).
    #[error("no model continued it")]
    NoModel(#[source] BoxError),
    /// The answer so far is not plain text: a delta carried a field besides its role and
    /// text (named here: `tool_calls`, `function_call`, `refusal`, `reasoning_content` …).
    /// A prefill carries text only, so a continuation would lose what else was sent, or
    /// answer a tool call with text.
    #[error("the answer so far is not plain text ({0})")]
    NotText(String),
    /// The answer has several choices (`n` > 1 asked, or a chunk with a choice index other
    /// than 0): a prefill continues one answer, never several.
    #[error("the answer has several choices")]
    SeveralChoices,
}

/// How a [`ContinuedStream`] ends when it does not end well.
///
/// The error a caller is shown for [`Cut`](Self::Cut) is the cut (its class: a stream cut,
/// a stall …), never the reason no model continued it:
/// [`GatewayError::stream_failed`](crate::server::GatewayError::stream_failed) does so.
#[derive(Debug, thiserror::Error)]
pub enum ContinuationError {
    /// The stream failed in a way a continuation does not mend, with the model's error: a
    /// client error (a content filter stopping the answer: another model must not be asked
    /// to finish it), or an error after the finish reason.
    #[error(transparent)]
    Failed(OpenAiError),
    /// The answer was cut short (cut, stalled, broken, timed out …) and was not continued:
    /// it is incomplete.
    #[error("the answer was cut short after {chunks} chunks ({}) and not continued: {reason}", .cut.outcome().label())]
    Cut {
        /// The failure that cut the answer: the last one, when a continuation was cut too.
        cut: OpenAiError,
        /// Chunks the caller received.
        chunks: usize,
        /// Why it was not continued.
        reason: NotContinued,
    },
}

/// The model that refused a prefill, if `error` (or an error in its cause chain) is a
/// refusal of one: an [`OpenAiError::Status`] 400 or 422 classed as a bad request (a
/// context-length or content-policy refusal is not one). Meant for errors of a
/// continuation, whose request only differs from one a model took by its prefill.
pub fn prefill_refusal(error: &(dyn Error + 'static)) -> Option<ModelId> {
    let mut next = Some(error);
    while let Some(error) = next {
        if let Some(error) = error.downcast_ref::<OpenAiError>() {
            let OpenAiError::Status { model, status, .. } = error else {
                return None;
            };
            let refused = matches!(
                *status,
                StatusCode::BAD_REQUEST | StatusCode::UNPROCESSABLE_ENTITY
            ) && error.outcome()
                == Outcome::ClientError(ClientErrorClass::BadRequest);
            return refused.then_some(*model);
        }
        next = error.source();
    }
    None
}

/// Where a continued stream is.
enum State<S, Fut> {
    /// Reading a stream: the first, or a continuation.
    Streaming(S),
    /// Waiting for the continuation to give a stream (boxed: once per continuation, only
    /// when a stream failed), with the failure it continues.
    Continuing {
        future: Pin<Box<Fut>>,
        cut: OpenAiError,
    },
    /// Ended.
    Done,
}

/// The first stream's names, which every chunk of a continuation carries.
#[derive(Debug, Default)]
struct Label {
    model: String,
    id: Option<Value>,
    created: Option<Value>,
}

/// A streamed answer that survives a cut: when the stream fails after its first token
/// (cut, stalled, broken, timed out, any availability failure), the `continue_with`
/// function is asked for a stream that continues it ([`ContinueRequest`]: the original
/// messages and the partial answer as an assistant prefill), and its chunks follow those
/// already given out, as if one model had answered. At most `max_continuations` times
/// (default 2).
///
/// * Every chunk of a continuation carries the first stream's `model`, `id` and `created`
///   (the caller asked one model and sees one answer; a client that checks the model's
///   name would refuse another), and loses the `role` of its delta (the answer's role was
///   given once). Which models continued is kept in
///   [`continued_by`](Self::continued_by), as they named themselves.
/// * The finish reason is the last stream's. The usage of a chunk that carries one is the
///   sum of every stream's last usage so far: the continuations' prompts count the
///   prefill; the tokens a cut stream generated are not counted, since its provider never
///   reported them.
/// * A client error (a content filter stopping the answer) is not continued: it ends the
///   stream as [`ContinuationError::Failed`]; so does a failure after the finish reason.
/// * Where no model continues (the limit, the function's error, a model refusing the
///   prefill: [`NotContinued`]), the stream ends with [`ContinuationError::Cut`], which
///   carries the cut: the caller must see an incomplete answer, never the continuation's
///   refusal. [`SseEncoder`](crate::server::SseEncoder) sends it as the in-band error
///   event, without `[DONE]`.
/// * Only a plain text answer of one choice is continued. An answer that carried anything
///   else (tool calls, a function call, a refusal …: [`Delta::non_text_field`]) ends at a
///   cut with [`NotContinued::NotText`]; an answer of several choices (`n` > 1 asked, or a
///   chunk with a choice index other than 0) with [`NotContinued::SeveralChoices`]. With
///   several choices, the answer is finished when every choice seen has its finish
///   reason.
///
/// [`Delta::non_text_field`]: crate::Delta::non_text_field
///
/// The function is called on the failure path only; its future is boxed there, once per
/// continuation. It runs when the stream is polled: a gateway calls its router from it
/// (within the request's deadline), for the next models that accept a prefill.
///
/// ```no_run
/// use hive_openai::{ChatRequest, ChatResponse, ContinuedStream, OpenAiClient, OpenAiError};
/// use tower::ServiceExt;
///
/// # async fn demo(first: OpenAiClient, next: OpenAiClient) -> Result<(), OpenAiError> {
/// let request = ChatRequest::new("gpt-4o", "Vote on BIP-01").streamed();
/// let ChatResponse::Stream(stream) = first.oneshot(request.clone()).await? else {
///     unreachable!("asked for a stream")
/// };
/// let mut answer = ContinuedStream::new(stream, request, move |ask| {
///     let next = next.clone();
///     async move {
///         match next.oneshot(ask.request).await? {
///             ChatResponse::Stream(stream) => Ok::<_, OpenAiError>(stream),
///             ChatResponse::Complete(_) => unreachable!("asked for a stream"),
///         }
///     }
/// });
/// while let Some(chunk) = answer.next().await {
///     let _ = chunk; // send it on
/// }
/// # Ok(())
/// # }
/// ```
#[must_use = "streams do nothing unless polled"]
pub struct ContinuedStream<S, F, Fut> {
    state: State<S, Fut>,
    continue_with: F,
    request: ChatRequest,
    max_continuations: u32,
    continuations: u32,
    /// The first choice's text given out so far: the prefill of a continuation.
    text: String,
    chunks: usize,
    /// Chunks that carried text, to estimate the tokens sent.
    text_chunks: u32,
    /// Which choices finished.
    finishes: Finishes,
    /// The first field of a delta that was not text, if any: the answer is not continued.
    not_text: Option<String>,
    /// The answer has several choices: it is not continued.
    several: bool,
    label: Label,
    /// The sum of the last usage of every stream before the current one.
    usage_before: Option<Usage>,
    /// The current stream's last usage.
    usage_here: Option<Usage>,
    continued_by: Vec<String>,
    /// The stream being read is a continuation whose name is in `continued_by` already.
    named: bool,
}

impl<S, F, Fut, E> ContinuedStream<S, F, Fut>
where
    S: Stream<Item = Result<ChatChunk, OpenAiError>> + Unpin,
    F: FnMut(ContinueRequest) -> Fut,
    Fut: Future<Output = Result<S, E>>,
    E: Into<BoxError>,
{
    /// Continues `first`, the stream answering `request`, with `continue_with` when it
    /// fails (never when `request` asks for several choices, `n` > 1).
    pub fn new(first: S, request: ChatRequest, continue_with: F) -> Self {
        let several = request
            .extra
            .get("n")
            .and_then(Value::as_u64)
            .is_some_and(|n| n > 1);
        Self {
            state: State::Streaming(first),
            continue_with,
            request,
            max_continuations: DEFAULT_MAX_CONTINUATIONS,
            continuations: 0,
            text: String::new(),
            chunks: 0,
            text_chunks: 0,
            finishes: Finishes::default(),
            not_text: None,
            several,
            label: Label::default(),
            usage_before: None,
            usage_here: None,
            continued_by: Vec::new(),
            named: false,
        }
    }

    /// The most continuations of the answer (default 2; 0 turns continuation off: a cut
    /// then ends the stream with [`NotContinued::Limit`]).
    pub fn max_continuations(mut self, max: u32) -> Self {
        self.max_continuations = max;
        self
    }

    /// The next chunk; `None` once the answer is complete.
    pub async fn next(&mut self) -> Option<Result<ChatChunk, ContinuationError>> {
        poll_fn(|cx| self.poll_chunk(cx)).await
    }

    /// Polls for the next chunk: from the stream being read, or, when it failed, from the
    /// continuation asked for.
    pub fn poll_chunk(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<ChatChunk, ContinuationError>>> {
        loop {
            match &mut self.state {
                State::Streaming(stream) => match ready!(Pin::new(stream).poll_next(cx)) {
                    Some(Ok(chunk)) => return Poll::Ready(Some(Ok(self.give_out(chunk)))),
                    Some(Err(error)) => {
                        if let Some(error) = self.failed(error) {
                            return Poll::Ready(Some(Err(error)));
                        }
                    }
                    None => {
                        self.state = State::Done;
                        return Poll::Ready(None);
                    }
                },
                State::Continuing { future, .. } => match ready!(future.as_mut().poll(cx)) {
                    Ok(stream) => self.state = State::Streaming(stream),
                    Err(error) => {
                        let state = std::mem::replace(&mut self.state, State::Done);
                        if let State::Continuing { cut, .. } = state {
                            let reason = not_continued(error.into());
                            return Poll::Ready(Some(Err(self.give_up(cut, reason))));
                        }
                    }
                },
                State::Done => return Poll::Ready(None),
            }
        }
    }

    /// Reads the whole answer: its text, or the error that ended it.
    pub async fn collect_text(mut self) -> Result<String, ContinuationError> {
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

    /// A chunk of the stream being read, counted, and labelled as the first stream's when
    /// it comes from a continuation.
    fn give_out(&mut self, mut chunk: ChatChunk) -> ChatChunk {
        if self.continuations == 0 {
            self.label.learn(&chunk);
        } else {
            self.relabel(&mut chunk);
        }
        self.chunks += 1;
        for choice in &chunk.choices {
            if choice.index != 0 {
                self.several = true;
                continue;
            }
            if let Some(content) = choice.delta.content.as_deref().filter(|c| !c.is_empty()) {
                self.text.push_str(content);
                self.text_chunks += 1;
            }
            if self.not_text.is_none()
                && let Some(field) = choice.delta.non_text_field()
            {
                self.not_text = Some(field.to_owned());
            }
        }
        self.finishes.add(&chunk);
        if let Some(usage) = chunk.usage {
            self.usage_here = Some(usage);
            chunk.usage = Some(add(self.usage_before, usage));
        }
        chunk
    }

    /// A continuation's chunk made to look like the first stream's.
    fn relabel(&mut self, chunk: &mut ChatChunk) {
        if !self.named && !chunk.model.is_empty() {
            self.continued_by.push(chunk.model.clone());
            self.named = true;
        }
        if !self.label.model.is_empty() {
            self.label.model.clone_into(&mut chunk.model);
        }
        for (key, value) in [("id", &self.label.id), ("created", &self.label.created)] {
            if let Some(value) = value {
                chunk.extra.insert(key.to_owned(), value.clone());
            }
        }
        for choice in &mut chunk.choices {
            choice.delta.extra.remove("role");
        }
    }

    /// The stream being read failed: ask for a continuation (`None`), or end with the error
    /// to give out.
    fn failed(&mut self, error: OpenAiError) -> Option<ContinuationError> {
        if !error.outcome().is_failure() || self.finishes.finished() {
            self.state = State::Done;
            return Some(ContinuationError::Failed(error));
        }
        if self.continuations >= self.max_continuations {
            return Some(self.give_up(error, NotContinued::Limit(self.continuations)));
        }
        if self.several {
            return Some(self.give_up(error, NotContinued::SeveralChoices));
        }
        if let Some(field) = self.not_text.take() {
            return Some(self.give_up(error, NotContinued::NotText(field)));
        }
        self.continuations += 1;
        self.named = false;
        if let Some(usage) = self.usage_here.take() {
            self.usage_before = Some(add(self.usage_before, usage));
        }
        let ask = self.continue_request(error.outcome());
        // The stream that failed is dropped here, its connection with it.
        self.state = State::Continuing {
            future: Box::pin((self.continue_with)(ask)),
            cut: error,
        };
        None
    }

    /// What the next model is asked: the original request with the text sent so far as an
    /// assistant prefill.
    fn continue_request(&self, cut: Outcome) -> ContinueRequest {
        let mut request = self.request.clone();
        request.stream = true;
        if !self.text.is_empty() {
            let messages = Arc::make_mut(&mut request.messages);
            match messages.last_mut() {
                // The caller's own prefill, continued by the first model: one prefill.
                Some(Message {
                    role,
                    content: Some(Content::Text(prefill)),
                    ..
                }) if role == "assistant" => prefill.push_str(&self.text),
                _ => messages.push(Message::new("assistant", self.text.clone())),
            }
        }
        request.max_tokens = request
            .max_tokens
            .map(|max| max.saturating_sub(self.text_chunks).max(1));
        ContinueRequest {
            request,
            continuation: self.continuations,
            cut,
            chunks: self.chunks,
            partial: self.text.clone(),
        }
    }

    /// Ends the stream: the answer was cut by `cut` and not continued.
    fn give_up(&mut self, cut: OpenAiError, reason: NotContinued) -> ContinuationError {
        self.state = State::Done;
        ContinuationError::Cut {
            cut,
            chunks: self.chunks,
            reason,
        }
    }
}

impl<S, F, Fut> ContinuedStream<S, F, Fut> {
    /// Continuations asked for so far.
    pub fn continuations(&self) -> u32 {
        self.continuations
    }

    /// The models that continued the answer, as their first chunk named them, in order.
    pub fn continued_by(&self) -> &[String] {
        &self.continued_by
    }

    /// Chunks given out so far.
    pub fn chunks(&self) -> usize {
        self.chunks
    }

    /// The usage given out last: the sum of every stream's last usage, when any sent one.
    pub fn usage(&self) -> Option<Usage> {
        match (self.usage_before, self.usage_here) {
            (Some(before), Some(here)) => Some(add(Some(before), here)),
            (before, here) => before.or(here),
        }
    }

    /// The first choice's text given out so far.
    pub fn text(&self) -> &str {
        &self.text
    }
}

impl Label {
    /// The first stream's names, from the first chunks that give them.
    fn learn(&mut self, chunk: &ChatChunk) {
        if self.model.is_empty() {
            chunk.model.clone_into(&mut self.model);
        }
        if self.id.is_none() {
            self.id = chunk.extra.get("id").cloned();
        }
        if self.created.is_none() {
            self.created = chunk.extra.get("created").cloned();
        }
    }
}

/// Why the continuation gave no stream: a prefill refused, or no model.
fn not_continued(error: BoxError) -> NotContinued {
    match prefill_refusal(&*error) {
        Some(model) => NotContinued::PrefillRefused { model, error },
        None => NotContinued::NoModel(error),
    }
}

/// Two usages added.
fn add(a: Option<Usage>, b: Usage) -> Usage {
    let a = a.unwrap_or_default();
    Usage {
        prompt_tokens: a.prompt_tokens.saturating_add(b.prompt_tokens),
        completion_tokens: a.completion_tokens.saturating_add(b.completion_tokens),
        total_tokens: a.total_tokens.saturating_add(b.total_tokens),
    }
}

impl<S, F, Fut, E> Stream for ContinuedStream<S, F, Fut>
where
    S: Stream<Item = Result<ChatChunk, OpenAiError>> + Unpin,
    F: FnMut(ContinueRequest) -> Fut + Unpin,
    Fut: Future<Output = Result<S, E>>,
    E: Into<BoxError>,
{
    type Item = Result<ChatChunk, ContinuationError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().poll_chunk(cx)
    }
}

impl<S, F, Fut> fmt::Debug for ContinuedStream<S, F, Fut> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match self.state {
            State::Streaming(_) => "streaming",
            State::Continuing { .. } => "continuing",
            State::Done => "done",
        };
        f.debug_struct("ContinuedStream")
            .field("state", &state)
            .field("model", &self.label.model)
            .field("chunks", &self.chunks)
            .field("continuations", &self.continuations)
            .field("max_continuations", &self.max_continuations)
            .field("continued_by", &self.continued_by)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use std::{
        sync::{
            Arc,
            atomic::{AtomicU32, Ordering},
        },
        time::Duration,
    };

    use hive_core::FailureClass;
    use tokio::sync::mpsc;

    use super::*;
    use crate::testing::{Chunks, chunks, cut, delta, finish, text_of};

    /// Reads a continued stream to its end: its chunks, and the error that ended it.
    async fn drain<F, Fut, E>(
        stream: &mut ContinuedStream<Chunks, F, Fut>,
    ) -> (Vec<ChatChunk>, Option<ContinuationError>)
    where
        F: FnMut(ContinueRequest) -> Fut,
        Fut: Future<Output = Result<Chunks, E>>,
        E: Into<BoxError>,
    {
        let mut received = Vec::new();
        while let Some(item) = stream.next().await {
            match item {
                Ok(chunk) => received.push(chunk),
                Err(error) => {
                    assert!(stream.next().await.is_none(), "nothing after the error");
                    return (received, Some(error));
                }
            }
        }
        (received, None)
    }

    fn request() -> ChatRequest {
        let mut request = ChatRequest::new("a", "Vote on BIP-01").streamed();
        request.max_tokens = Some(100);
        request
    }

    fn usage(prompt: u64, completion: u64) -> Usage {
        Usage {
            prompt_tokens: prompt,
            completion_tokens: completion,
            total_tokens: prompt + completion,
        }
    }

    #[tokio::test]
    async fn a_cut_answer_is_continued_from_its_text_under_the_first_models_name() {
        let first = chunks([
            Ok(delta("a", "chatcmpl-a", "w1 ")),
            Ok(delta("a", "chatcmpl-a", "w2 ")),
            Ok(delta("a", "chatcmpl-a", "w3 ")),
            Err(cut("a", 3)),
        ]);
        let (asked_tx, mut asked) = mpsc::unbounded_channel();
        let mut stream = ContinuedStream::new(first, request(), move |ask: ContinueRequest| {
            asked_tx.send(ask).unwrap();
            let mut role = delta("b", "chatcmpl-b", "");
            role.choices[0]
                .delta
                .extra
                .insert("role".into(), "assistant".into());
            let rest = chunks([
                Ok(role),
                Ok(delta("b", "chatcmpl-b", "w4 ")),
                Ok(delta("b", "chatcmpl-b", "w5.")),
                Ok(finish("b", "chatcmpl-b", Some(usage(15, 2)))),
            ]);
            async move { Ok::<_, OpenAiError>(rest) }
        });
        let (received, error) = drain(&mut stream).await;
        assert!(error.is_none(), "{error:?}");
        assert_eq!(text_of(&received), "w1 w2 w3 w4 w5.");
        assert_eq!(received.len(), 7);
        for chunk in &received {
            assert_eq!(chunk.model, "a");
            assert_eq!(chunk.extra["id"], "chatcmpl-a");
            assert!(!chunk.choices[0].delta.extra.contains_key("role"));
        }
        let last = received.last().unwrap();
        assert_eq!(last.choices[0].finish_reason.as_deref(), Some("stop"));
        assert_eq!(last.usage, Some(usage(15, 2)));
        assert_eq!(stream.continued_by(), ["b"]);
        assert_eq!(stream.continuations(), 1);
        assert_eq!(stream.chunks(), 7);

        let ask = asked.recv().await.unwrap();
        assert_eq!(ask.continuation, 1);
        assert_eq!(ask.chunks, 3);
        assert_eq!(ask.cut, Outcome::failure(FailureClass::StreamCut));
        assert_eq!(ask.partial, "w1 w2 w3 ");
        let messages = &ask.request.messages;
        assert_eq!(messages.len(), 2);
        assert_eq!(
            (
                messages[1].role.as_str(),
                messages[1].text().unwrap_or_default()
            ),
            ("assistant", "w1 w2 w3 ")
        );
        assert!(ask.request.stream);
        assert_eq!(
            ask.request.max_tokens,
            Some(97),
            "100 less 3 chunks of text"
        );
        assert_eq!(
            ask.request.extra["stream_options"],
            serde_json::json!({"include_usage": true})
        );
    }

    #[tokio::test]
    async fn a_callers_own_prefill_is_extended_not_repeated() {
        let mut own = request();
        Arc::make_mut(&mut own.messages).push(Message::new("assistant", "Dear "));
        let (asked_tx, mut asked) = mpsc::unbounded_channel();
        let mut stream = ContinuedStream::new(
            chunks([Ok(delta("a", "x", "Sir, ")), Err(cut("a", 1))]),
            own,
            move |ask: ContinueRequest| {
                asked_tx.send(ask).unwrap();
                async { Ok::<_, OpenAiError>(chunks([Ok(finish("b", "y", None))])) }
            },
        );
        let _ = drain(&mut stream).await;
        let ask = asked.recv().await.unwrap();
        assert_eq!(ask.request.messages.len(), 2);
        assert_eq!(ask.request.messages[1].text(), Some("Dear Sir, "));
        assert_eq!(ask.partial, "Sir, ");
    }

    #[tokio::test(start_paused = true)]
    async fn a_stall_or_a_failure_before_any_text_is_continued_too() {
        let first = chunks([
            Ok(delta("a", "x", "w1 ")),
            Err(OpenAiError::Stalled {
                model: ModelId::new("a"),
                limit: Duration::from_secs(1),
            }),
        ]);
        let (asked_tx, mut asked) = mpsc::unbounded_channel();
        let calls = AtomicU32::new(0);
        let mut stream = ContinuedStream::new(first, request(), move |ask: ContinueRequest| {
            let call = calls.fetch_add(1, Ordering::SeqCst);
            asked_tx.send(ask).unwrap();
            let next = if call == 0 {
                // The continuation fails before any text of its own.
                chunks([Err(cut("b", 0))])
            } else {
                chunks([Ok(delta("c", "y", "w2.")), Ok(finish("c", "y", None))])
            };
            async move { Ok::<_, OpenAiError>(next) }
        });
        let (received, error) = drain(&mut stream).await;
        assert!(error.is_none(), "{error:?}");
        assert_eq!(text_of(&received), "w1 w2.");
        let first_ask = asked.recv().await.unwrap();
        assert_eq!(first_ask.cut, Outcome::failure(FailureClass::StreamStalled));
        let second_ask = asked.recv().await.unwrap();
        assert_eq!(
            (second_ask.continuation, second_ask.partial.as_str()),
            (2, "w1 ")
        );
        assert_eq!(stream.continued_by(), ["c"]);
    }

    #[tokio::test]
    async fn continuations_are_bounded_and_the_last_cut_is_the_error() {
        let calls = Arc::new(AtomicU32::new(0));
        let counted = Arc::clone(&calls);
        let mut stream = ContinuedStream::new(
            chunks([Ok(delta("a", "x", "w1 ")), Err(cut("a", 1))]),
            request(),
            move |ask: ContinueRequest| {
                counted.fetch_add(1, Ordering::SeqCst);
                let n = ask.continuation;
                let next = chunks([Ok(delta("b", "y", &format!("c{n} "))), Err(cut("b", 1))]);
                async move { Ok::<_, OpenAiError>(next) }
            },
        );
        let (received, error) = drain(&mut stream).await;
        assert_eq!(text_of(&received), "w1 c1 c2 ");
        assert_eq!(calls.load(Ordering::SeqCst), DEFAULT_MAX_CONTINUATIONS);
        let Some(ContinuationError::Cut {
            cut: last_cut,
            chunks: received,
            reason,
        }) = error
        else {
            panic!("{error:?}")
        };
        assert!(matches!(last_cut, OpenAiError::StreamCut { model, .. } if model == "b"));
        assert_eq!(received, 3);
        assert!(matches!(reason, NotContinued::Limit(2)), "{reason:?}");

        // Zero continuations: continuation is off, the cut ends the stream at once.
        let mut off = ContinuedStream::new(
            chunks([Ok(delta("a", "x", "w1 ")), Err(cut("a", 1))]),
            request(),
            |_: ContinueRequest| async {
                Err::<Chunks, _>(OpenAiError::malformed(ModelId::new("z"), "never"))
            },
        )
        .max_continuations(0);
        let (_, error) = drain(&mut off).await;
        assert!(matches!(
            error,
            Some(ContinuationError::Cut {
                reason: NotContinued::Limit(0),
                ..
            })
        ));
    }

    #[tokio::test]
    async fn a_refused_prefill_or_no_model_ends_with_the_cut_not_the_refusal() {
        let refusal = || OpenAiError::Status {
            model: ModelId::new("b"),
            status: StatusCode::BAD_REQUEST,
            code: None,
            provider_message: "Expected last role User or Tool".into(),
            retry_after: None,
        };
        let mut stream = ContinuedStream::new(
            chunks([Ok(delta("a", "x", "w1 ")), Err(cut("a", 1))]),
            request(),
            move |_: ContinueRequest| async move { Err::<Chunks, _>(refusal()) },
        );
        let (received, error) = drain(&mut stream).await;
        assert_eq!(text_of(&received), "w1 ");
        let Some(ContinuationError::Cut {
            cut: the_cut,
            chunks: received,
            reason,
        }) = error
        else {
            panic!("{error:?}")
        };
        assert_eq!(the_cut.outcome(), Outcome::failure(FailureClass::StreamCut));
        assert_eq!(received, 1);
        let NotContinued::PrefillRefused { model, .. } = reason else {
            panic!("{reason:?}")
        };
        assert_eq!(model, "b");

        // Boxed by a layer, the refusal is still found; a context-length refusal is not one.
        let boxed: BoxError = Box::new(refusal());
        assert_eq!(prefill_refusal(&*boxed), Some(ModelId::new("b")));
        let too_long = OpenAiError::Status {
            model: ModelId::new("b"),
            status: StatusCode::BAD_REQUEST,
            code: Some("context_length_exceeded".into()),
            provider_message: String::new(),
            retry_after: None,
        };
        assert_eq!(prefill_refusal(&too_long), None);
        assert_eq!(prefill_refusal(&cut("b", 0)), None);

        let mut stream = ContinuedStream::new(
            chunks([Ok(delta("a", "x", "w1 ")), Err(cut("a", 1))]),
            request(),
            |_: ContinueRequest| async { Err::<Chunks, BoxError>("every model failed".into()) },
        );
        let (_, error) = drain(&mut stream).await;
        assert!(
            matches!(
                &error,
                Some(ContinuationError::Cut {
                    reason: NotContinued::NoModel(_),
                    ..
                })
            ),
            "{error:?}"
        );
        assert_eq!(
            error.unwrap().to_string(),
            "the answer was cut short after 1 chunks (stream_cut) and not continued: no model continued it"
        );
    }

    #[tokio::test]
    async fn a_client_error_mid_answer_is_never_continued() {
        let filtered = OpenAiError::error_event(
            ModelId::new("a"),
            1,
            &serde_json::json!({"message": "filtered", "code": "content_filter"}),
        );
        let mut stream = ContinuedStream::new(
            chunks([Ok(delta("a", "x", "w1 ")), Err(filtered)]),
            request(),
            |_: ContinueRequest| async {
                panic!("a content filter's stop must not be continued");
                #[allow(unreachable_code)]
                Ok::<Chunks, OpenAiError>(chunks([]))
            },
        );
        let (received, error) = drain(&mut stream).await;
        assert_eq!(received.len(), 1);
        let Some(ContinuationError::Failed(error)) = error else {
            panic!("{error:?}")
        };
        assert_eq!(
            error.outcome(),
            Outcome::ClientError(ClientErrorClass::ContentPolicy)
        );
    }

    #[tokio::test]
    async fn usage_is_the_sum_of_every_streams_last_usage() {
        let mut counted = delta("a", "x", "w1 ");
        counted.usage = Some(usage(10, 1));
        let mut stream = ContinuedStream::new(
            chunks([Ok(counted), Err(cut("a", 1))]),
            request(),
            |_: ContinueRequest| async {
                Ok::<_, OpenAiError>(chunks([
                    Ok(delta("b", "y", "w2.")),
                    Ok(finish("b", "y", Some(usage(11, 1)))),
                ]))
            },
        );
        let (received, _) = drain(&mut stream).await;
        assert_eq!(received[0].usage, Some(usage(10, 1)));
        assert_eq!(received.last().unwrap().usage, Some(usage(21, 2)));
        assert_eq!(stream.usage(), Some(usage(21, 2)));
    }

    /// A chunk of `model` whose first choice's delta is `delta`.
    fn with_delta(model: &str, delta: serde_json::Value) -> ChatChunk {
        serde_json::from_value(serde_json::json!({
            "id": "x",
            "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": null}]
        }))
        .unwrap()
    }

    /// A continuation function that must never be called.
    async fn never(_: ContinueRequest) -> Result<Chunks, OpenAiError> {
        panic!("this answer must not be continued")
    }

    #[tokio::test]
    async fn an_answer_that_is_not_plain_text_is_never_continued() {
        let call = serde_json::json!([{"index": 0, "id": "call_a", "type": "function",
            "function": {"name": "vote", "arguments": "{\"bip\""}}]);
        for (not_text, field) in [
            (
                serde_json::json!({"role": "assistant", "content": null, "tool_calls": call}),
                "tool_calls",
            ),
            (
                serde_json::json!({"function_call": {"name": "vote", "arguments": "{"}}),
                "function_call",
            ),
            (serde_json::json!({"refusal": "I cannot"}), "refusal"),
        ] {
            // Text first, then the field that is not text, then the cut.
            let mut stream = ContinuedStream::new(
                chunks([
                    Ok(delta("a", "x", "Voting: ")),
                    Ok(with_delta("a", not_text)),
                    Err(cut("a", 2)),
                ]),
                request(),
                never,
            );
            let (received, error) = drain(&mut stream).await;
            assert_eq!(received.len(), 2);
            let Some(ContinuationError::Cut {
                cut: the_cut,
                chunks: 2,
                reason: NotContinued::NotText(named),
            }) = error
            else {
                panic!("{error:?}")
            };
            assert_eq!(named, field);
            assert!(matches!(the_cut, OpenAiError::StreamCut { chunks: 2, .. }));
            assert_eq!(stream.continuations(), 0);
        }
        assert_eq!(
            NotContinued::NotText("tool_calls".into()).to_string(),
            "the answer so far is not plain text (tool_calls)"
        );
    }

    #[tokio::test]
    async fn openais_first_chunk_with_a_null_refusal_is_still_plain_text() {
        let first = with_delta(
            "a",
            serde_json::json!({"role": "assistant", "content": "", "refusal": null, "tool_calls": []}),
        );
        let mut stream = ContinuedStream::new(
            chunks([Ok(first), Ok(delta("a", "x", "w1 ")), Err(cut("a", 2))]),
            request(),
            |_: ContinueRequest| async {
                Ok::<_, OpenAiError>(chunks([
                    Ok(delta("b", "y", "w2.")),
                    Ok(finish("b", "y", None)),
                ]))
            },
        );
        let (received, error) = drain(&mut stream).await;
        assert!(error.is_none(), "{error:?}");
        assert_eq!(text_of(&received), "w1 w2.");
        assert_eq!(stream.continuations(), 1);
    }

    #[tokio::test]
    async fn an_answer_of_several_choices_is_never_continued() {
        // Asked with n = 2: refused even before a second choice shows.
        let mut asked = request();
        Arc::make_mut(&mut asked.extra).insert("n".into(), 2.into());
        let mut stream = ContinuedStream::new(
            chunks([Ok(delta("a", "x", "w1 ")), Err(cut("a", 1))]),
            asked,
            never,
        );
        let (_, error) = drain(&mut stream).await;
        assert!(
            matches!(
                error,
                Some(ContinuationError::Cut {
                    chunks: 1,
                    reason: NotContinued::SeveralChoices,
                    ..
                })
            ),
            "{error:?}"
        );

        // Not asked, but a chunk of choice 1 came; choice 0 finished, choice 1 did not: the
        // answer is incomplete (a cut, not a failure after the finish reason).
        let mut other = delta("a", "x", "No");
        other.choices[0].index = 1;
        let mut stream = ContinuedStream::new(
            chunks([
                Ok(delta("a", "x", "Yes")),
                Ok(other),
                Ok(finish("a", "x", None)),
                Err(cut("a", 3)),
            ]),
            request(),
            never,
        );
        let (received, error) = drain(&mut stream).await;
        assert_eq!(received.len(), 3);
        assert!(
            matches!(
                error,
                Some(ContinuationError::Cut {
                    chunks: 3,
                    reason: NotContinued::SeveralChoices,
                    ..
                })
            ),
            "{error:?}"
        );
        assert_eq!(
            NotContinued::SeveralChoices.to_string(),
            "the answer has several choices"
        );
    }
}
