//! Response bodies: whole, or streamed piece by piece from a task, which may break the
//! connection in the middle of the body.

use std::{
    pin::Pin,
    task::{Context, Poll},
};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use tokio::sync::mpsc;

use crate::delivery::Watch;

/// One piece a streaming task hands to its [`ChannelBody`].
#[derive(Debug)]
pub(crate) enum Piece {
    /// Bytes of the body.
    Data(Bytes),
    /// Break the connection here (see [`ChannelBody`]).
    Reset,
}

/// The error a [`ChannelBody`] ends with when the simulated provider breaks the connection
/// in the middle of a body. hyper answers it by aborting the response: over HTTP/1.1 the
/// connection closes without the last chunk, over HTTP/2 the stream is reset.
#[derive(Debug, thiserror::Error)]
#[error("the simulated provider broke the connection in the middle of the body")]
pub struct MidBodyReset;

/// A body whose pieces a task sends; it ends when the task drops the sender, or breaks the
/// connection when the task sends a reset.
///
/// Before breaking, the body answers `Pending` once (and wakes itself), so that hyper
/// flushes what was sent before the reset: the client sees the headers and every piece sent
/// before it, then the broken connection.
#[derive(Debug)]
pub struct ChannelBody {
    rx: mpsc::Receiver<Piece>,
    /// A reset was received and the flush before it was given its turn.
    resetting: bool,
}

impl ChannelBody {
    pub(crate) fn new() -> (mpsc::Sender<Piece>, Self) {
        let (tx, rx) = mpsc::channel(16);
        (
            tx,
            Self {
                rx,
                resetting: false,
            },
        )
    }
}

impl Body for ChannelBody {
    type Data = Bytes;
    type Error = MidBodyReset;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, MidBodyReset>>> {
        if self.resetting {
            return Poll::Ready(Some(Err(MidBodyReset)));
        }
        match self.rx.poll_recv(cx) {
            Poll::Ready(Some(Piece::Data(bytes))) => Poll::Ready(Some(Ok(Frame::data(bytes)))),
            Poll::Ready(Some(Piece::Reset)) => {
                // Give hyper one turn to flush what came before, then break.
                self.resetting = true;
                cx.waker().wake_by_ref();
                Poll::Pending
            }
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }
}

/// The simulator's response body.
pub type SimBody = http_body_util::Either<http_body_util::Full<Bytes>, ChannelBody>;

/// A response body watched to its end: complete when its last frame is taken (or a scripted
/// break ends it), abandoned when hyper drops it before that.
#[derive(Debug)]
pub(crate) struct Watched {
    body: SimBody,
    watch: Watch,
}

impl Watched {
    pub(crate) fn new(body: SimBody, watch: Watch) -> Self {
        Self { body, watch }
    }
}

impl Body for Watched {
    type Data = Bytes;
    type Error = <SimBody as Body>::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.body).poll_frame(cx);
        match &polled {
            // The end, or the script's own break in the middle of the body.
            Poll::Ready(None | Some(Err(_))) => this.watch.complete(),
            // hyper stops polling a body that says it has ended after this frame.
            Poll::Ready(Some(Ok(_))) if this.body.is_end_stream() => this.watch.complete(),
            _ => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        // hyper does not poll a body that has ended before its first frame (an empty one).
        let ended = self.body.is_end_stream();
        if ended {
            self.watch.complete();
        }
        ended
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}
