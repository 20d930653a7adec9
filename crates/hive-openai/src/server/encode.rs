//! [`SseEncoder`]: a stream of chunks as the `text/event-stream` body OpenAI sends.

use std::{
    convert::Infallible,
    error::Error,
    fmt,
    pin::Pin,
    task::{Context, Poll},
    time::Duration,
};

use bytes::{BufMut, Bytes, BytesMut};
use futures_core::Stream;
use hive_core::FailureClass;
use http::{HeaderMap, HeaderValue, Response, header};
use http_body::{Body, Frame, SizeHint};
use tokio::time::{Instant, Sleep};

use super::{ErrorKind, GatewayError};
use crate::ChatChunk;

/// The event that ends a whole answer.
const DONE: &[u8] = b"data: [DONE]\n\n";
/// A keep-alive: a comment, which clients skip.
const KEEP_ALIVE: &[u8] = b": keep-alive\n\n";

/// The headers of a streamed answer: `Content-Type: text/event-stream`, `Cache-Control:
/// no-cache`, and `X-Accel-Buffering: no` (so that a proxy such as nginx passes each event
/// on as it comes).
pub fn sse_headers() -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    headers
}

/// The keep-alive timer: one `Sleep` per stream, reset after every event sent.
struct KeepAlive {
    every: Duration,
    sleep: Pin<Box<Sleep>>,
}

/// Encodes a stream of chunks (a [`ChatStream`](crate::ChatStream), a
/// [`ContinuedStream`](crate::ContinuedStream), any `Stream` of `Result<ChatChunk, E>`) as
/// the server-sent events OpenAI sends, so that a server can answer a streamed request with
/// it: an [`http_body::Body`] (and a `Stream` of `Result<Bytes, Infallible>`), which axum
/// takes as `axum::body::Body::new(encoder)`.
///
/// * each chunk is one event, `data: {json}` and a blank line;
/// * a stream that ends well (a finish reason was sent) ends with `data: [DONE]`;
/// * a stream that fails ends with the in-band error event
///   ([`GatewayError::stream_failed`]: `data: {"error": {"message", "type", "param",
///   "code"}}`, the class of the cut as code, the route and the chunks sent as message) and
///   no `[DONE]`, as OpenAI and LiteLLM's proxy do, so that no client takes the truncated
///   answer for a whole one; so does a stream that ends without a finish reason;
/// * with [`keep_alive`](Self::keep_alive), a comment (`: keep-alive`) after every `every`
///   without an event, which keeps proxies from closing an idle connection and which
///   clients skip.
///
/// The stream is dropped as soon as it has ended (its connection released). Dropping the
/// encoder (the caller disconnected) drops the stream, which cancels the upstream call.
/// One allocation per event (its bytes), and one per encoder for a keep-alive timer.
#[must_use = "a body does nothing unless polled"]
pub struct SseEncoder<S> {
    stream: Option<S>,
    route: Option<String>,
    keep_alive: Option<KeepAlive>,
    chunks: usize,
    finished: bool,
}

impl<S> SseEncoder<S> {
    /// Encodes `stream`.
    pub fn new(stream: S) -> Self {
        Self {
            stream: Some(stream),
            route: None,
            keep_alive: None,
            chunks: 0,
            finished: false,
        }
    }

    /// The route the stream answers, named in the message of an in-band error.
    pub fn route(mut self, route: &str) -> Self {
        self.route = Some(route.to_owned());
        self
    }

    /// Sends a keep-alive comment after every `every` without an event.
    pub fn keep_alive(mut self, every: Duration) -> Self {
        self.keep_alive = Some(KeepAlive {
            every,
            sleep: Box::pin(tokio::time::sleep(every)),
        });
        self
    }

    /// Chunks encoded so far.
    pub fn chunks(&self) -> usize {
        self.chunks
    }

    /// A `200 OK` response with [`sse_headers`] and this body.
    pub fn into_response(self) -> Response<Self> {
        let mut response = Response::new(self);
        *response.headers_mut() = sse_headers();
        response
    }
}

impl<S, E> SseEncoder<S>
where
    S: Stream<Item = Result<ChatChunk, E>> + Unpin,
    E: Error + 'static,
{
    /// The next event's bytes: a chunk, the end (`[DONE]` or the in-band error), or a
    /// keep-alive when the stream has been silent for its interval; `None` once ended.
    pub fn poll_event(&mut self, cx: &mut Context<'_>) -> Poll<Option<Bytes>> {
        let Some(stream) = self.stream.as_mut() else {
            return Poll::Ready(None);
        };
        let event = match Pin::new(stream).poll_next(cx) {
            Poll::Ready(Some(Ok(chunk))) => self.chunk(&chunk),
            Poll::Ready(Some(Err(error))) => {
                let error = GatewayError::stream_failed(self.route.as_deref(), self.chunks, &error);
                self.end(error.sse_event())
            }
            Poll::Ready(None) if self.finished => self.end(Bytes::from_static(DONE)),
            Poll::Ready(None) => {
                let error = self.cut_error(FailureClass::StreamCut);
                self.end(error.sse_event())
            }
            Poll::Pending => return self.poll_keep_alive(cx),
        };
        self.restart_keep_alive();
        Poll::Ready(Some(event))
    }

    /// A chunk's event, counted.
    fn chunk(&mut self, chunk: &ChatChunk) -> Bytes {
        let mut event = BytesMut::with_capacity(256);
        event.put_slice(b"data: ");
        if serde_json::to_writer((&mut event).writer(), chunk).is_err() {
            // Only a map with keys that are not strings fails, which a chunk cannot hold;
            // should it, the answer ends as malformed rather than with a broken event.
            let error = self.cut_error(FailureClass::Malformed);
            return self.end(error.sse_event());
        }
        event.put_slice(b"\n\n");
        self.chunks += 1;
        self.finished |= chunk.choices.iter().any(|c| c.finish_reason.is_some());
        event.freeze()
    }

    /// The in-band error of a stream that stopped by itself.
    fn cut_error(&self, class: FailureClass) -> GatewayError {
        let error = GatewayError::new(ErrorKind::StreamFailed {
            class,
            chunks: self.chunks,
        });
        match &self.route {
            Some(route) => error.route(route),
            None => error,
        }
    }

    /// The last event; the stream is dropped.
    fn end(&mut self, event: Bytes) -> Bytes {
        self.stream = None;
        self.keep_alive = None;
        event
    }

    /// A keep-alive when the interval passed without an event.
    fn poll_keep_alive(&mut self, cx: &mut Context<'_>) -> Poll<Option<Bytes>> {
        let Some(keep_alive) = self.keep_alive.as_mut() else {
            return Poll::Pending;
        };
        if keep_alive.sleep.as_mut().poll(cx).is_pending() {
            return Poll::Pending;
        }
        self.restart_keep_alive();
        Poll::Ready(Some(Bytes::from_static(KEEP_ALIVE)))
    }

    fn restart_keep_alive(&mut self) {
        if let Some(keep_alive) = self.keep_alive.as_mut() {
            let next = Instant::now() + keep_alive.every;
            keep_alive.sleep.as_mut().reset(next);
        }
    }
}

impl<S, E> Body for SseEncoder<S>
where
    S: Stream<Item = Result<ChatChunk, E>> + Unpin,
    E: Error + 'static,
{
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.get_mut()
            .poll_event(cx)
            .map(|event| event.map(|bytes| Ok(Frame::data(bytes))))
    }

    fn is_end_stream(&self) -> bool {
        self.stream.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        match self.stream {
            Some(_) => SizeHint::default(),
            None => SizeHint::with_exact(0),
        }
    }
}

impl<S, E> Stream for SseEncoder<S>
where
    S: Stream<Item = Result<ChatChunk, E>> + Unpin,
    E: Error + 'static,
{
    type Item = Result<Bytes, Infallible>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().poll_event(cx).map(|event| event.map(Ok))
    }
}

impl<S> fmt::Debug for SseEncoder<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SseEncoder")
            .field("route", &self.route)
            .field("chunks", &self.chunks)
            .field("finished", &self.finished)
            .field("ended", &self.stream.is_none())
            .field("keep_alive", &self.keep_alive.as_ref().map(|k| k.every))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use std::future::poll_fn;

    use hive_core::ModelId;

    use super::*;
    use crate::{
        ContinuationError, NotContinued, OpenAiError,
        testing::{channel, chunks, cut, delta, finish},
    };

    async fn next<S, E>(encoder: &mut SseEncoder<S>) -> Option<String>
    where
        S: Stream<Item = Result<ChatChunk, E>> + Unpin,
        E: Error + 'static,
    {
        let bytes = poll_fn(|cx| encoder.poll_event(cx)).await?;
        Some(String::from_utf8(bytes.to_vec()).unwrap())
    }

    async fn all<S, E>(encoder: &mut SseEncoder<S>) -> Vec<String>
    where
        S: Stream<Item = Result<ChatChunk, E>> + Unpin,
        E: Error + 'static,
    {
        let mut events = Vec::new();
        while let Some(event) = next(encoder).await {
            events.push(event);
        }
        events
    }

    #[tokio::test]
    async fn a_whole_answer_is_one_event_a_chunk_then_done() {
        let sent = [
            delta("m", "chatcmpl-1", "Hello "),
            delta("m", "chatcmpl-1", "world"),
            finish("m", "chatcmpl-1", None),
        ];
        let mut encoder = SseEncoder::new(chunks(sent.clone().map(Ok)));
        let events = all(&mut encoder).await;
        assert_eq!(events.len(), 4);
        for (event, chunk) in events.iter().zip(&sent) {
            let json = event
                .strip_prefix("data: ")
                .unwrap()
                .strip_suffix("\n\n")
                .unwrap();
            assert!(!json.contains('\n'));
            assert_eq!(&serde_json::from_str::<ChatChunk>(json).unwrap(), chunk);
        }
        assert_eq!(events[3], "data: [DONE]\n\n");
        assert_eq!(encoder.chunks(), 3);
        assert!(encoder.is_end_stream());
        assert_eq!(Body::size_hint(&encoder).exact(), Some(0));
    }

    #[tokio::test]
    async fn a_failure_ends_with_the_error_event_and_never_done() {
        let mut encoder = SseEncoder::new(chunks([
            Ok(delta("m", "x", "Hello ")),
            Ok(delta("m", "x", "wor")),
            Err(cut("m", 2)),
            Ok(delta("m", "x", "never sent")),
        ]))
        .route("chat");
        let events = all(&mut encoder).await;
        assert_eq!(events.len(), 3);
        assert_eq!(
            events[2],
            "data: {\"error\":{\"message\":\"the answer of route `chat` broke off after 2 chunks (stream_cut) and is incomplete\",\"type\":\"server_error\",\"param\":null,\"code\":\"stream_cut\"}}\n\n"
        );
        assert!(events.iter().all(|e| !e.contains("[DONE]")));

        // A stream that ends without a finish reason is cut, whatever it says.
        let mut encoder = SseEncoder::new(chunks([Ok(delta("m", "x", "Hello "))]));
        let events = all(&mut encoder).await;
        assert_eq!(events.len(), 2);
        assert!(
            events[1].contains("\"code\":\"stream_cut\""),
            "{}",
            events[1]
        );
        assert!(
            events[1].contains("the route broke off after 1 chunks"),
            "{}",
            events[1]
        );
    }

    #[tokio::test]
    async fn a_continuation_that_failed_shows_the_cut() {
        let refusal: hive_core::BoxError = Box::new(OpenAiError::Status {
            model: ModelId::new("b"),
            status: http::StatusCode::BAD_REQUEST,
            code: None,
            provider_message: "no prefill here".into(),
            retry_after: None,
        });
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        tx.send(Ok(delta("a", "x", "w1 "))).unwrap();
        tx.send(Err(ContinuationError::Cut {
            cut: OpenAiError::Stalled {
                model: ModelId::new("a"),
                limit: Duration::from_secs(30),
            },
            chunks: 1,
            reason: NotContinued::PrefillRefused {
                model: ModelId::new("b"),
                error: refusal,
            },
        }))
        .unwrap();
        drop(tx);
        struct Rx(tokio::sync::mpsc::UnboundedReceiver<Result<ChatChunk, ContinuationError>>);
        impl Stream for Rx {
            type Item = Result<ChatChunk, ContinuationError>;
            fn poll_next(
                mut self: Pin<&mut Self>,
                cx: &mut Context<'_>,
            ) -> Poll<Option<Self::Item>> {
                self.0.poll_recv(cx)
            }
        }
        let events = all(&mut SseEncoder::new(Rx(rx)).route("chat")).await;
        assert_eq!(events.len(), 2);
        assert!(
            events[1].contains("\"code\":\"stream_stalled\""),
            "{}",
            events[1]
        );
        assert!(
            !events[1].contains("prefill") && !events[1].contains("`b`"),
            "{}",
            events[1]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn keep_alives_fill_the_silences_and_restart_after_each_event() {
        let (tx, stream) = channel();
        let mut encoder = SseEncoder::new(stream).keep_alive(Duration::from_secs(10));
        let start = Instant::now();
        let feeder = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(25)).await;
            tx.send(Ok(delta("m", "x", "late"))).unwrap();
            tokio::time::sleep(Duration::from_secs(15)).await;
            tx.send(Ok(finish("m", "x", None))).unwrap();
        });
        let mut seen = Vec::new();
        while let Some(event) = next(&mut encoder).await {
            let kind = if event == ": keep-alive\n\n" {
                "keep-alive"
            } else if event.contains("[DONE]") {
                "done"
            } else {
                "chunk"
            };
            seen.push((start.elapsed().as_secs(), kind));
        }
        feeder.await.unwrap();
        assert_eq!(
            seen,
            [
                (10, "keep-alive"),
                (20, "keep-alive"),
                (25, "chunk"),
                (35, "keep-alive"),
                (40, "chunk"),
                (40, "done"),
            ]
        );
    }

    #[tokio::test]
    async fn as_a_body_and_as_a_stream_of_bytes() {
        use http_body_util::BodyExt;
        let body = SseEncoder::new(chunks([Ok(finish("m", "x", None))]));
        let response = body.into_response();
        assert_eq!(response.headers()["content-type"], "text/event-stream");
        assert_eq!(response.headers()["cache-control"], "no-cache");
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        assert!(bytes.ends_with(b"\n\ndata: [DONE]\n\n"));

        let mut stream = SseEncoder::new(chunks([Ok(finish("m", "x", None))]));
        let mut events = 0;
        while let Some(Ok(_)) = poll_fn(|cx| Pin::new(&mut stream).poll_next(cx)).await {
            events += 1;
        }
        assert_eq!(events, 2);
    }
}
