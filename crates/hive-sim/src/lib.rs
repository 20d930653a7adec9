//! A misbehaving OpenAI-compatible provider on loopback, for tests, the demo and chaos
//! drills.
//!
//! [`Simulator`] is a real HTTP server (HTTP/1.1 and cleartext HTTP/2) speaking
//! `GET /v1/models` and `POST /v1/chat/completions`, streamed (SSE) or not. What each model
//! does is a [`Script`] of [`Behaviour`]s by call number and by time: rate limits with and
//! without `Retry-After`, server errors, a reset before the headers, a request that never
//! answers, a slow first token, a stream that ends early but cleanly
//! ([`Behaviour::StreamCut`]), a connection broken in the middle of the body
//! ([`Behaviour::StreamReset`]: an HTTP/1.1 close without the last chunk, an HTTP/2 stream
//! reset), a stall, a malformed chunk, a missing `[DONE]`, context length exceeded, a
//! content-policy refusal, an outage window, an answer from the wrong model, fixed or random
//! latency. Every healthy answer is [`ANSWER`] (or the text a model's [`Script::answer`]
//! gives), so a truncated answer is detectable; every request is logged with its time
//! ([`Simulator::attempts`]) and with how its answer ended ([`Simulator::deliveries`],
//! [`Delivery`]): sent to its end, or abandoned by a caller that went away first, so a test
//! can prove that a gateway cancels its upstream call when its own client disconnects. A
//! request that ends with an assistant message (a prefill) is continued from that text, or
//! refused with HTTP 400 by a model set to ([`Script::refuse_prefill`]), so that a gateway's
//! continuation of a cut stream can be measured: the attempt log shows the prefill each
//! request carried.
//!
//! It also holds an SMTP receiver, [`SmtpSink`]: a real SMTP server on loopback (Python's
//! aiosmtpd in a child process) in plain, STARTTLS or implicit-TLS mode ([`SmtpMode`]),
//! optionally requiring a login, that keeps every message it receives and gives it back
//! decoded ([`SmtpMessage`]), for tests of code that sends email.
//!
//! ```no_run
//! use std::time::Duration;
//! use hive_sim::{Behaviour, RetryAfter, Script, Simulator};
//!
//! # async fn demo() -> std::io::Result<()> {
//! let sim = Simulator::start([
//!     ("gpt-4o", Script::new().until_call(2, Behaviour::RateLimited(Some(RetryAfter::Seconds(1))))),
//!     ("claude-4-sonnet", Script::new().until(Duration::from_secs(30), Behaviour::Status(503))),
//! ])
//! .await?;
//! println!("provider at {}", sim.base_url());
//! # Ok(())
//! # }
//! ```
#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod body;
mod delivery;
mod redis;
mod script;
mod server;
mod smtp;
mod wire;

pub use body::{ChannelBody, MidBodyReset, SimBody};
pub use delivery::Delivery;
pub use redis::{RedisServer, RedisServerError};
pub use script::{Behaviour, Latency, RetryAfter, Script};
pub use server::{Attempt, Simulator};
pub use smtp::{SmtpMessage, SmtpMode, SmtpSink, TextPart};

/// The one text every healthy answer carries, so that a truncated answer shows (unless a
/// model's [`Script::answer`] gives another). Its tokens are its words with the space after
/// each: 15 of them.
pub const ANSWER: &str =
    "The proposal is sound, its risks are understood, and I vote in favour of it.";

/// An answer of exactly `tokens` tokens, each one different (`w1 w2 … wN.`), for
/// [`Script::answer`]: a token lost, repeated or out of order shows in the text.
///
/// ```
/// assert_eq!(hive_sim::long_answer(3), "w1 w2 w3.");
/// assert_eq!(hive_sim::long_answer(60).split_inclusive(' ').count(), 60);
/// ```
pub fn long_answer(tokens: usize) -> String {
    let mut text = (1..=tokens)
        .map(|i| format!("w{i}"))
        .collect::<Vec<_>>()
        .join(" ");
    if tokens > 0 {
        text.push('.');
    }
    text
}
