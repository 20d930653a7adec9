//! An OpenAI-compatible chat-completions client as a tower `Service`, for the resilience
//! layers to stand in front of.
//!
//! * [`OpenAiClient`]: pooled HTTP/1.1 and HTTP/2, TCP_NODELAY, rustls with webpki roots,
//!   per-model base URL and headers; typed requests and answers that keep unknown fields.
//! * Streaming ([`ChatStream`]): limits on time to first token, idle time between chunks and
//!   total time, all counting chunks (a keep-alive keeps the connection, not the answer); a
//!   stream that ends without a finish reason, or whose connection breaks mid-body, is cut
//!   (a failure, never a short answer); a stall is a failure; a malformed event is skipped
//!   and counted or fails the attempt, by setting; a clean end without `[DONE]` finishes at
//!   once; usage when sent. A stream the caller drops before its end is ignored, not the
//!   model's failure. [`SseDecoder`] reads events line by line, as the SSE specification
//!   does.
//! * Provider errors ([`OpenAiError`]): 429 with `Retry-After` or `x-ratelimit-reset-*`, 408,
//!   5xx, 529, refused or reset connections, no answer in time, context length exceeded,
//!   content-policy refusals (with the provider's reason), 401/403, invalid JSON — each with
//!   its resilience class ([`OpenAiError::outcome`], [`OpenAiClassifier`]) from hive-core's
//!   one status table; a wait hint only on the statuses that carry one (429, 503, 529).
//! * An untrusted provider: a byte cap on every body (events, streams, answers, error
//!   bodies, the model list) and a timer on every read, so a provider that trickles bytes
//!   or never stops holds neither memory nor an attempt beyond its limits
//!   ([`OpenAiError::TooLarge`]). Its text never reaches `Display`; what is kept of it is cut
//!   and cleaned.
//! * Secrets: the [`ApiKey`], credential headers and the base URL's credentials and query
//!   never show in `Debug`, logs or errors.
//! * Identity: an answer from another model than the one asked (or its aliases), or a
//!   stream that names no model, is an identity failure, never a success.
//! * Streams and fallback ([`CommitLayer`]): before the first chunk that carries part of
//!   the answer reaches the caller (a chunk with only the role is none) a failover is
//!   free; after it, pass-through ends with an error the caller sees, and buffered reads
//!   the whole stream first so the caller always gets a whole answer (tool calls merged,
//!   one choice per index) — from the next model when this one fails. A truncated answer
//!   is never a success; with several choices, every choice must finish.
//! * Continuation ([`ContinuedStream`]): a committed stream that is cut or stalls after its
//!   first token is continued by the next model, asked with the partial answer as an
//!   assistant prefill; its tokens follow those already sent, under the first model's
//!   name. Only plain text of one choice is continued (never tool calls, a refusal, or
//!   `n` > 1). Where no model continues, the stream ends with the cut, never the refusal.
//! * The server half of the wire ([`server`]): the SSE encoder with its in-band error event,
//!   and the table from "no answer" to an HTTP status and OpenAI's error JSON; tested
//!   against the client over loopback. A provider's in-band error event (`data: {"error":
//!   …}`) is read as [`OpenAiError::ErrorEvent`].
//!
//! ```no_run
//! use hive_openai::{ApiKey, ChatRequest, ChatResponse, OpenAiClient};
//! use tower::ServiceExt;
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
//! let client = OpenAiClient::builder("gpt-4o", "https://api.openai.com")
//!     .api_key(ApiKey::new(std::env::var("OPENAI_API_KEY")?))
//!     .alias("gpt-4o-2024-08-06")
//!     .build()?;
//! match client.oneshot(ChatRequest::new("gpt-4o", "Vote on BIP-01").streamed()).await? {
//!     ChatResponse::Stream(stream) => println!("{}", stream.collect_text().await?),
//!     ChatResponse::Complete(answer) => println!("{}", answer.text()),
//! }
//! # Ok(())
//! # }
//! ```
#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod assemble;
mod classify;
mod client;
mod commit;
mod continuation;
mod error;
mod limits;
mod secret;
pub mod server;
mod sse;
mod stream;
mod telemetry;
#[cfg(test)]
mod testing;
mod types;
mod url;

pub use classify::OpenAiClassifier;
pub use client::{ChatResponse, OpenAiClient, OpenAiClientBuilder};
pub use commit::{Commit, CommitLayer, CommitService};
pub use continuation::{
    ContinuationError, ContinueRequest, ContinuedStream, DEFAULT_MAX_CONTINUATIONS, NotContinued,
    prefill_refusal,
};
pub use error::OpenAiError;
pub use secret::ApiKey;
pub use sse::SseDecoder;
pub use stream::{ChatStream, InjectedFault};
pub use types::{
    ChatChunk, ChatCompletion, ChatRequest, Choice, ChunkChoice, Content, Delta, Extra, Message,
    Usage,
};
