//! How the simulator's answer to each request ended: sent to its end, or abandoned by the
//! caller first.

use std::sync::{
    Arc,
    atomic::{AtomicU8, Ordering},
};

use tokio::sync::Notify;

/// How the simulator's answer to one request ended ([`Simulator::deliveries`]).
///
/// An answer is watched from the moment its request is logged: through the scripted latency,
/// the behaviour's own waits and the response body to its last frame. Whatever drops it
/// first decides: the answer finishing (its body's end, an error status, a scripted break),
/// or the caller going away (hyper drops the request's future or its response body when the
/// connection closes, or when an HTTP/2 stream is reset).
///
/// [`Simulator::deliveries`]: crate::Simulator::deliveries
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delivery {
    /// Still being sent (or waiting for its scripted latency).
    Pending,
    /// Sent to its end (a whole answer, a stream to its last event, an error status, or a
    /// scripted cut/hang that the script itself ended).
    ///
    /// "Sent" means handed to hyper to its last frame: the bytes may still be on their way,
    /// so a caller that goes away after that point does not make it
    /// [`Abandoned`](Self::Abandoned). A scripted break ([`Behaviour::ResetBeforeHeaders`],
    /// [`Behaviour::StreamReset`]) and a scripted early end ([`Behaviour::StreamCut`]) are
    /// complete: the script ended them, not the caller.
    ///
    /// [`Behaviour::ResetBeforeHeaders`]: crate::Behaviour::ResetBeforeHeaders
    /// [`Behaviour::StreamReset`]: crate::Behaviour::StreamReset
    /// [`Behaviour::StreamCut`]: crate::Behaviour::StreamCut
    Complete,
    /// The caller went away first: the connection closed or the response (body) was dropped
    /// before the end.
    ///
    /// An answer that never ends by itself ([`Behaviour::Hang`], [`Behaviour::Stall`]) ends
    /// here once its caller closes the connection (or resets its HTTP/2 stream), as does
    /// every answer still being sent when the simulator stops.
    ///
    /// [`Behaviour::Hang`]: crate::Behaviour::Hang
    /// [`Behaviour::Stall`]: crate::Behaviour::Stall
    Abandoned,
}

const PENDING: u8 = 0;
const COMPLETE: u8 = 1;
const ABANDONED: u8 = 2;

impl Delivery {
    /// A new answer's delivery, pending.
    pub(crate) fn cell() -> Arc<AtomicU8> {
        Arc::new(AtomicU8::new(PENDING))
    }

    /// The delivery a cell holds.
    pub(crate) fn load(cell: &AtomicU8) -> Self {
        match cell.load(Ordering::SeqCst) {
            PENDING => Self::Pending,
            COMPLETE => Self::Complete,
            _ => Self::Abandoned,
        }
    }
}

/// Watches one answer: [`complete`](Self::complete) when it reaches its end; dropped before
/// that, it marks the answer abandoned. It lives in the request's future, then in its
/// response body, so that whatever hyper drops early takes it along.
#[derive(Debug)]
pub(crate) struct Watch {
    /// The answer's delivery (shared with the log) and the simulator's change signal; `None`
    /// for an answer that is not logged.
    cell: Option<(Arc<AtomicU8>, Arc<Notify>)>,
}

impl Watch {
    /// Watches the answer whose delivery is `cell`, signalling `changed` when it ends.
    pub(crate) fn new(cell: Arc<AtomicU8>, changed: Arc<Notify>) -> Self {
        Self {
            cell: Some((cell, changed)),
        }
    }

    /// Watches nothing (an answer to a request that is not logged).
    pub(crate) fn none() -> Self {
        Self { cell: None }
    }

    /// The answer reached its end.
    pub(crate) fn complete(&self) {
        self.end(COMPLETE);
    }

    /// The first end wins: a complete answer stays complete when its body is dropped.
    fn end(&self, how: u8) {
        if let Some((cell, changed)) = &self.cell
            && cell
                .compare_exchange(PENDING, how, Ordering::SeqCst, Ordering::SeqCst)
                .is_ok()
        {
            changed.notify_waiters();
        }
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.end(ABANDONED);
    }
}
