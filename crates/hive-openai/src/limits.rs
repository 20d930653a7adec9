//! What one attempt may take: the names the model may answer as, its time limits and its
//! byte caps. Shared by the client, which sets them, and its streams, which enforce them,
//! so that neither module imports the other.

use std::{sync::Arc, time::Duration};

/// The default longest wait for the first token (or a whole answer's headers).
pub(crate) const DEFAULT_FIRST_TOKEN: Duration = Duration::from_secs(30);
/// The default longest wait between two chunks of a stream.
pub(crate) const DEFAULT_IDLE: Duration = Duration::from_secs(30);
/// The default longest time for a whole answer.
pub(crate) const DEFAULT_TOTAL: Duration = Duration::from_secs(300);

/// The default cap on one server-sent event (1 MiB).
pub(crate) const DEFAULT_MAX_EVENT_BYTES: usize = 1 << 20;
/// The default cap on a streamed answer's bytes (64 MiB).
pub(crate) const DEFAULT_MAX_STREAM_BYTES: usize = 64 << 20;
/// The default cap on a whole answer's bytes (16 MiB).
pub(crate) const DEFAULT_MAX_ANSWER_BYTES: usize = 16 << 20;
/// The default cap on an error body's bytes (64 KiB).
pub(crate) const DEFAULT_MAX_ERROR_BODY_BYTES: usize = 64 << 10;
/// The default cap on the `/v1/models` body (8 MiB).
pub(crate) const DEFAULT_MAX_MODELS_BYTES: usize = 8 << 20;

/// The names a model may answer as: its own and its aliases, fixed when the client is
/// built; and whether a stream may name none.
#[derive(Clone, Debug)]
pub(crate) struct Identity {
    names: Arc<[String]>,
    accept_unnamed_stream: bool,
}

impl Identity {
    /// `model` and its aliases.
    pub(crate) fn new(
        model: &str,
        aliases: impl IntoIterator<Item = String>,
        accept_unnamed_stream: bool,
    ) -> Self {
        Self {
            names: std::iter::once(model.to_owned()).chain(aliases).collect(),
            accept_unnamed_stream,
        }
    }

    /// Whether `answered` is one of the names (case aside).
    pub(crate) fn accepts(&self, answered: &str) -> bool {
        self.names.iter().any(|n| n.eq_ignore_ascii_case(answered))
    }

    /// Whether a stream whose first chunk names no model is taken at its word.
    pub(crate) fn accepts_unnamed_stream(&self) -> bool {
        self.accept_unnamed_stream
    }

    /// The names accepted.
    pub(crate) fn names(&self) -> &[String] {
        &self.names
    }
}

/// Time limits of one attempt, and what a malformed event does.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Limits {
    pub(crate) first_token: Duration,
    pub(crate) idle: Duration,
    pub(crate) total: Duration,
    pub(crate) skip_malformed: bool,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            first_token: DEFAULT_FIRST_TOKEN,
            idle: DEFAULT_IDLE,
            total: DEFAULT_TOTAL,
            skip_malformed: true,
        }
    }
}

/// The most bytes read from the provider, per part of an answer.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Caps {
    /// One server-sent event (what the decoder holds while the event is incomplete).
    pub(crate) event: usize,
    /// A streamed answer, all events together.
    pub(crate) stream: usize,
    /// A whole (unstreamed) answer.
    pub(crate) answer: usize,
    /// An error body (read for the provider's message and code; the rest is not read).
    pub(crate) error_body: usize,
    /// The `/v1/models` body.
    pub(crate) models: usize,
}

impl Default for Caps {
    fn default() -> Self {
        Self {
            event: DEFAULT_MAX_EVENT_BYTES,
            stream: DEFAULT_MAX_STREAM_BYTES,
            answer: DEFAULT_MAX_ANSWER_BYTES,
            error_body: DEFAULT_MAX_ERROR_BODY_BYTES,
            models: DEFAULT_MAX_MODELS_BYTES,
        }
    }
}
