//! [`ChatStream`]: a streamed answer, parsed from server-sent events, that is not a success
//! until it ends well.

use std::{
    collections::VecDeque,
    fmt,
    future::poll_fn,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll, ready},
};

use hive_core::{EosRecorder, ModelId, Outcome};
use http_body::Body;
use hyper::body::Incoming;
use tokio::time::{Instant, Sleep};

use crate::{
    ChatChunk, OpenAiError, SseDecoder, Usage,
    limits::{Caps, Identity, Limits},
    telemetry::Instruments,
    types::Finishes,
};

/// What the stream gives out next: a chunk, its failure, or `None` at its end.
type Item = Option<Result<ChatChunk, OpenAiError>>;

/// A provider failure a [`ChatStream`] plays on itself ([`ChatStream::inject`]), for chaos
/// drills (hive-chaos's `ChaosLayer`): hive-core's [`StreamFault`](hive_core::StreamFault).
pub use hive_core::StreamFault as InjectedFault;

/// The event of [`InjectedFault::Malformed`]: the one hive-sim sends, JSON cut short.
const MALFORMED_EVENT: &str = "{\"choices\": [{\"delta\": {\"content\": ";

/// A streamed answer: chunks as they arrive, then `None`.
///
/// It ends with an error when the provider stops early ([`OpenAiError::StreamCut`]: the
/// body ended, broke or sent `[DONE]` without a finish reason), sends an error event
/// ([`OpenAiError::ErrorEvent`], even after a finish reason: the provider said so), stalls,
/// takes too long, answers as another model (or names none on its first chunk, unless the
/// client accepts unnamed streams), sends more than its caps allow, or (by setting) sends a
/// malformed event. After the finish reason the answer is whole: a body that then ends or
/// breaks without `[DONE]` finishes it at once. With several choices (`n` > 1), the
/// answer is finished when every choice seen has its finish reason.
///
/// The time limits count chunks, not bytes: the first-token limit runs until the first
/// chunk that carries part of the answer ([`ChatChunk::carries_answer`]) is read, the idle
/// limit restarts at each chunk read after it. Keep-alive comments, bytes of an event still
/// incomplete, and chunks before the answer (a delta with only the role, as providers send
/// first) keep the connection open, not the answer.
///
/// Layers that classify at end of stream are told the outcome when it ends: success at a
/// proper end, the failure when the provider cut, stalled or garbled it. A stream dropped
/// before its end (the caller disconnected or pressed stop) records
/// [`Outcome::Ignored`]: not the model's failure; dropped after its finish reason (without
/// waiting for `[DONE]`), a success.
pub struct ChatStream {
    body: Incoming,
    events: SseDecoder,
    model: ModelId,
    identity: Identity,
    limits: Limits,
    caps: Caps,
    /// Until the first chunk the first-token deadline, then the idle deadline.
    idle: Pin<Box<Sleep>>,
    total: Pin<Box<Sleep>>,
    /// Body bytes received.
    received: usize,
    chunks: usize,
    malformed: usize,
    /// A chunk named the model (and the name was accepted).
    named: bool,
    /// A chunk carried part of the answer: the first-token limit is over.
    answered: bool,
    /// Which choices finished.
    finishes: Finishes,
    /// Every choice seen finished: the answer is whole.
    finished: bool,
    ended: bool,
    usage: Option<Usage>,
    recorders: Vec<EosRecorder>,
    /// Chunks read ahead (by a first-chunk commit), given out first.
    unread: VecDeque<ChatChunk>,
    started: Instant,
    instruments: Option<Arc<Instruments>>,
    /// A provider failure to play ([`ChatStream::inject`]); `None` for every real stream.
    injected: Option<InjectedFault>,
}

impl ChatStream {
    pub(crate) fn new(
        body: Incoming,
        model: ModelId,
        identity: Identity,
        limits: Limits,
        caps: Caps,
        started: Instant,
        instruments: Option<Arc<Instruments>>,
    ) -> Self {
        Self {
            body,
            events: SseDecoder::new(),
            model,
            identity,
            idle: Box::pin(tokio::time::sleep_until(started + limits.first_token)),
            total: Box::pin(tokio::time::sleep_until(started + limits.total)),
            limits,
            caps,
            received: 0,
            chunks: 0,
            malformed: 0,
            named: false,
            answered: false,
            finishes: Finishes::default(),
            finished: false,
            ended: false,
            usage: None,
            recorders: Vec::new(),
            unread: VecDeque::new(),
            started,
            instruments,
            injected: None,
        }
    }

    /// Makes the stream fail from now on as `fault` says, as if its provider had (chaos
    /// drills: hive-chaos's stream faults). The last fault given counts.
    pub fn inject(&mut self, fault: InjectedFault) {
        self.injected = Some(fault);
    }

    /// Reads ahead until a chunk carries part of the answer
    /// ([`ChatChunk::carries_answer`]), keeping every chunk read to be given out first (a
    /// chunk with only the role is not lost). The error when the stream fails before such a
    /// chunk (it ends with that error, as if the caller had read it).
    pub(crate) async fn read_to_answer(&mut self) -> Result<(), OpenAiError> {
        while !self.answered {
            match poll_fn(|cx| self.poll_body_chunk(cx)).await {
                Some(Ok(chunk)) => self.unread.push_back(chunk),
                Some(Err(error)) => return Err(error),
                // Ended well: after a finish reason, which is part of the answer.
                None => break,
            }
        }
        Ok(())
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

    /// Reads the whole answer: its text, or the error that ended it. The text is bounded by
    /// the client's `max_stream_bytes`.
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

    /// Polls for the next chunk: a chunk already received, else the limits, else more of
    /// the body, until one of them has something to say.
    pub fn poll_chunk(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<ChatChunk, OpenAiError>>> {
        if let Some(chunk) = self.unread.pop_front() {
            return Poll::Ready(Some(Ok(chunk)));
        }
        self.poll_body_chunk(cx)
    }

    /// Polls for the next chunk of the body, past those read ahead.
    fn poll_body_chunk(&mut self, cx: &mut Context<'_>) -> Poll<Item> {
        loop {
            if self.ended {
                return Poll::Ready(None);
            }
            if let Some(poll) = self.play_injected(cx) {
                return poll;
            }
            if let Some(item) = self.take_buffered_event() {
                return Poll::Ready(item);
            }
            if let Err(error) = self.check_limits(cx) {
                return Poll::Ready(self.fail(error));
            }
            if let Err(error) = ready!(self.read_body(cx)) {
                return Poll::Ready(self.fail(error));
            }
        }
    }

    /// Step 1: the next event already received, if any, made into what the stream gives
    /// out: a chunk, the end (`[DONE]`), or a failure. Malformed events are skipped and
    /// counted (by setting), and empty data (`data:` as a keep-alive) is skipped; `None`
    /// when no complete event is left.
    fn take_buffered_event(&mut self) -> Option<Item> {
        while let Some(data) = self.events.next_data() {
            if let Some(item) = self.event(&data) {
                return Some(item);
            }
        }
        None
    }

    /// One event's data made into what the stream gives out, or `None` when it gives out
    /// nothing (a keep-alive, a malformed event skipped).
    fn event(&mut self, data: &str) -> Option<Item> {
        if data.is_empty() {
            return None;
        }
        if data == "[DONE]" {
            if self.injected == Some(InjectedFault::MissingDone) {
                return Some(self.body_ended(None));
            }
            // Done without a finish reason: the provider ended an answer it never
            // finished, a truncation however politely announced.
            if !self.finished {
                return Some(self.fail(self.cut(None)));
            }
            self.end(Outcome::Success);
            return Some(None);
        }
        match serde_json::from_str::<ChatChunk>(data) {
            // `{"error": …}` parses as a chunk without choices: the provider's error
            // event, not a malformed chunk.
            Ok(chunk) => match chunk.extra.get("error").filter(|e| !e.is_null()) {
                Some(error) => {
                    let error = OpenAiError::error_event(self.model, self.chunks, error);
                    Some(self.fail(error))
                }
                None => Some(self.give_out(chunk)),
            },
            Err(e) if self.limits.skip_malformed => {
                tracing::debug!(model = %self.model, error = %e, "malformed event skipped");
                self.malformed += 1;
                None
            }
            Err(e) => {
                let detail = format!("event {}: {e}", self.chunks + self.malformed + 1);
                Some(self.fail(OpenAiError::malformed(self.model, detail)))
            }
        }
    }

    /// Step 0, only for a stream given an [`InjectedFault`]: once its point is reached,
    /// what the provider would have sent instead of the rest (`None`: read on as usual).
    fn play_injected(&mut self, cx: &mut Context<'_>) -> Option<Poll<Item>> {
        let (fault, after) = match self.injected? {
            InjectedFault::MissingDone => return None,
            fault @ (InjectedFault::Cut { after }
            | InjectedFault::Reset { after }
            | InjectedFault::Stall { after }
            | InjectedFault::Malformed { after }) => (fault, after),
        };
        if self.chunks < after {
            return None;
        }
        if !matches!(fault, InjectedFault::Malformed { .. }) {
            // Sent after the fault: never received.
            self.events = SseDecoder::new();
        }
        match fault {
            InjectedFault::Cut { .. } => Some(Poll::Ready(self.body_ended(None))),
            InjectedFault::Reset { .. } => {
                let reset = std::io::Error::from(std::io::ErrorKind::ConnectionReset);
                Some(Poll::Ready(self.body_ended(Some(Box::new(reset)))))
            }
            InjectedFault::Stall { .. } => Some(match self.check_limits(cx) {
                Err(error) => Poll::Ready(self.fail(error)),
                Ok(()) => Poll::Pending,
            }),
            InjectedFault::Malformed { .. } | InjectedFault::MissingDone => {
                self.injected = None;
                self.event(MALFORMED_EVENT).map(Poll::Ready)
            }
        }
    }

    /// The body ended (`source` is `None`) or broke: a whole answer after the finish
    /// reason, else a cut. As [`read_body`](Self::read_body) reads the real end.
    fn body_ended(&mut self, source: Option<hive_core::BoxError>) -> Item {
        if self.finished {
            self.end(Outcome::Success);
            return None;
        }
        self.fail(self.cut(source))
    }

    /// A parsed chunk: checked for identity, counted, and, once the answer began, the
    /// idle limit restarted (the limits count chunks of the answer, nothing else: until the
    /// first chunk that carries part of it, the first-token limit runs on).
    fn give_out(&mut self, chunk: ChatChunk) -> Item {
        if let Err(error) = self.check_identity(&chunk) {
            return self.fail(error);
        }
        self.chunks += 1;
        if !self.answered && chunk.carries_answer() {
            self.answered = true;
            if let Some(instruments) = &self.instruments {
                instruments.first_token(self.started.elapsed());
            }
        }
        self.finishes.add(&chunk);
        self.finished = self.finishes.finished();
        if chunk.usage.is_some() {
            self.usage = chunk.usage;
        }
        if self.answered {
            let next = Instant::now() + self.limits.idle;
            self.idle.as_mut().reset(next);
        }
        Some(Ok(chunk))
    }

    /// The first chunk must name the model asked (or an alias), unless unnamed streams are
    /// accepted; later chunks may name none, and any name they give must be accepted.
    fn check_identity(&mut self, chunk: &ChatChunk) -> Result<(), OpenAiError> {
        if chunk.model.is_empty() {
            if self.named || self.identity.accepts_unnamed_stream() {
                return Ok(());
            }
        } else if self.identity.accepts(&chunk.model) {
            self.named = true;
            return Ok(());
        }
        Err(OpenAiError::identity_mismatch(self.model, &chunk.model))
    }

    /// Step 2: the limits that hold while nothing complete is buffered: total time, time
    /// without a chunk (the first-token limit before the first), and the size of the event
    /// being received.
    fn check_limits(&mut self, cx: &mut Context<'_>) -> Result<(), OpenAiError> {
        if self.total.as_mut().poll(cx).is_ready() {
            return Err(OpenAiError::TotalTime {
                model: self.model,
                limit: self.limits.total,
            });
        }
        if self.idle.as_mut().poll(cx).is_ready() {
            return Err(if !self.answered {
                OpenAiError::FirstToken {
                    model: self.model,
                    limit: self.limits.first_token,
                }
            } else {
                OpenAiError::Stalled {
                    model: self.model,
                    limit: self.limits.idle,
                }
            });
        }
        if self.events.pending() > self.caps.event {
            return Err(OpenAiError::TooLarge {
                model: self.model,
                what: "an event",
                limit: self.caps.event,
            });
        }
        Ok(())
    }

    /// Step 3: more of the body: bytes for the decoder (within the stream's cap), its end (a
    /// success only after a finish reason), or a broken connection (a cut).
    fn read_body(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), OpenAiError>> {
        let result = match ready!(Pin::new(&mut self.body).poll_frame(cx)) {
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    self.received = self.received.saturating_add(data.len());
                    if self.received > self.caps.stream {
                        return Poll::Ready(Err(OpenAiError::TooLarge {
                            model: self.model,
                            what: "a streamed answer",
                            limit: self.caps.stream,
                        }));
                    }
                    self.events.push(&data);
                }
                Ok(())
            }
            // After the finish reason the answer is whole: a connection that then closes,
            // cleanly or not, without `[DONE]`, ends it at once.
            Some(Err(_)) | None if self.finished => {
                self.end(Outcome::Success);
                Ok(())
            }
            Some(Err(e)) => Err(self.cut(Some(Box::new(e)))),
            None => Err(self.cut(None)),
        };
        Poll::Ready(result)
    }

    /// The answer was cut short: the body ended (`source` is `None`) or broke before a
    /// finish reason, or `[DONE]` came without one.
    fn cut(&self, source: Option<hive_core::BoxError>) -> OpenAiError {
        OpenAiError::StreamCut {
            model: self.model,
            chunks: self.chunks,
            source,
        }
    }

    fn end(&mut self, outcome: Outcome) {
        self.ended = true;
        for recorder in self.recorders.drain(..) {
            recorder.finish(outcome);
        }
    }

    fn fail(&mut self, error: OpenAiError) -> Item {
        if let Some(instruments) = &self.instruments {
            match error {
                OpenAiError::StreamCut { .. } => instruments.cut(),
                OpenAiError::Stalled { .. } => instruments.stall(),
                _ => {}
            }
        }
        self.end(error.outcome());
        Some(Err(error))
    }
}

impl Drop for ChatStream {
    /// A stream dropped after its finish reason was a whole answer (the caller did not wait
    /// for `[DONE]`): a success. Dropped earlier, its recorders are dropped unfinished and
    /// record the stream as abandoned ([`Outcome::Ignored`]).
    fn drop(&mut self) {
        if self.finished && !self.ended {
            self.end(Outcome::Success);
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
            .field("received", &self.received)
            .field("finished", &self.finished)
            .field("ended", &self.ended)
            .finish_non_exhaustive()
    }
}
