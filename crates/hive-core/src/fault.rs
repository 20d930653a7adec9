//! [`StreamFault`]: how a provider's stream fails, shared by the fault injector that
//! decides it (hive-chaos) and the client stream that plays it (hive-openai).

/// A way a provider's stream fails, from a point in it. `after` counts the chunks the
/// stream has given out (read-ahead included, the first one with only the role too); events the provider sent beyond that point
/// are never received. Played by hive-openai's `ChatStream::inject` through the stream's own
/// code, so it ends with the same error and records the same outcome as a real provider's
/// failure would.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(tag = "stream", rename_all = "snake_case")
)]
pub enum StreamFault {
    /// The body ends cleanly after `after` chunks, without a finish reason: a stream cut
    /// (the client's `StreamCut` without a source; after the finish reason, the end of a
    /// whole answer).
    Cut {
        /// Chunks given out before the cut.
        after: usize,
    },
    /// The connection breaks after `after` chunks: a stream cut whose source is an
    /// `io::Error` of kind `ConnectionReset`.
    Reset {
        /// Chunks given out before the break.
        after: usize,
    },
    /// Nothing more after `after` chunks, the connection kept open: the idle limit ends
    /// the stream (the first-token limit when no chunk carried part of the answer, the
    /// total limit if it comes first).
    Stall {
        /// Chunks given out before the stall.
        after: usize,
    },
    /// An event that is not JSON after `after` chunks, then the rest of the stream:
    /// skipped and counted, or a malformed failure, by the client's setting.
    Malformed {
        /// Chunks given out before the malformed event.
        after: usize,
    },
    /// `data: [DONE]` never comes: the body ends where it would have been (a whole answer
    /// after the finish reason, a cut before it).
    MissingDone,
}
