//! What each simulated model does, per call and over time.

use std::time::Duration;

/// How a `Retry-After` header is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RetryAfter {
    /// `Retry-After: <seconds>`.
    Seconds(u64),
    /// `Retry-After: <HTTP date>`, this far in the future.
    Date(Duration),
}

/// One way a provider behaves on a call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Behaviour {
    /// Answers with [`ANSWER`](crate::ANSWER), streamed or not as asked.
    Healthy,
    /// HTTP 429, with `Retry-After` when given (and `x-ratelimit-reset-requests`).
    RateLimited(Option<RetryAfter>),
    /// An HTTP error status (500, 502, 503, 504, 529 …) with an error body.
    Status(u16),
    /// Closes the connection before sending any header.
    ResetBeforeHeaders,
    /// Accepts the request and never answers.
    Hang,
    /// Waits this long before the first token (or before the whole answer, unstreamed).
    SlowFirstToken(Duration),
    /// Streams this many tokens, then ends the body cleanly without a finish reason (a
    /// provider that stops early but closes properly). Unstreamed: a whole body holding half
    /// the JSON answer.
    StreamCut {
        /// Tokens sent before the cut.
        after_tokens: usize,
    },
    /// Streams this many tokens, then breaks the connection in the middle of the body: over
    /// HTTP/1.1 the connection closes without the last chunk, over HTTP/2 the stream is reset
    /// (a provider that crashes mid-answer, a proxy that drops it). The client sees the
    /// headers and the tokens sent, then a body read error. Unstreamed: half the JSON answer,
    /// then the break.
    StreamReset {
        /// Tokens sent before the break.
        after_tokens: usize,
    },
    /// Streams this many tokens, then sends nothing more, never closing.
    Stall {
        /// Tokens sent before the stall.
        after_tokens: usize,
    },
    /// Sends a chunk that is not JSON in place of this token (0 is the first).
    MalformedChunk {
        /// The token replaced.
        at: usize,
    },
    /// Streams the whole answer with a finish reason, then ends without `data: [DONE]`.
    MissingDone,
    /// HTTP 400 with code `context_length_exceeded`.
    ContextLengthExceeded,
    /// HTTP 400 with code `content_policy_violation` and the provider's reason.
    ContentFilter,
    /// Answers well, but as this model.
    WrongModel(String),
}

impl Behaviour {
    /// A short name, for the attempt log.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Healthy => "healthy",
            Self::RateLimited(_) => "rate_limited",
            Self::Status(_) => "status",
            Self::ResetBeforeHeaders => "reset_before_headers",
            Self::Hang => "hang",
            Self::SlowFirstToken(_) => "slow_first_token",
            Self::StreamCut { .. } => "stream_cut",
            Self::StreamReset { .. } => "stream_reset",
            Self::Stall { .. } => "stall",
            Self::MalformedChunk { .. } => "malformed_chunk",
            Self::MissingDone => "missing_done",
            Self::ContextLengthExceeded => "context_length_exceeded",
            Self::ContentFilter => "content_filter",
            Self::WrongModel(_) => "wrong_model",
        }
    }
}

/// Latency added before every answer of a model.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Latency {
    /// Always the same.
    Fixed(Duration),
    /// Uniform between the two, from a seeded sequence.
    Uniform(Duration, Duration),
}

#[derive(Clone, Debug, PartialEq)]
enum When {
    /// While the model has had fewer calls than this.
    BeforeCall(u32),
    /// While the simulator has run less than this.
    Before(Duration),
    /// From the first to the second time since start.
    Between(Duration, Duration),
    Always,
}

/// A model's script: steps tried in order, the first whose condition holds decides;
/// [`Behaviour::Healthy`] when none does.
///
/// Beside the steps, two settings of the model itself:
///
/// * its answer: [`ANSWER`](crate::ANSWER) unless [`answer`](Self::answer) gives another
///   text (a longer one from [`long_answer`](crate::long_answer), to cut a stream after 40
///   of 60 tokens). A token is a word with the space after it.
/// * whether it accepts an assistant prefill. A request whose last message is an
///   `assistant` message asks the model to continue that text, as Anthropic's prefill and
///   Mistral's or DeepSeek's `prefix` do. By default the model honours it: when the
///   message's content is a prefix of its answer, it answers only the rest of its answer
///   (streamed or not, every behaviour applying to that rest: a cut after 3 tokens is 3
///   tokens of the rest); a content that is not a prefix of its answer is ignored and the
///   whole answer is sent, as a model that does not follow would. With
///   [`refuse_prefill`](Self::refuse_prefill) it answers such a request with HTTP 400, as
///   providers that do not accept one do, whatever its steps say.
///
/// ```
/// use std::time::Duration;
/// use hive_sim::{Behaviour, Script};
///
/// // 500 once, then healthy.
/// let flaky = Script::new().until_call(1, Behaviour::Status(500));
/// // Down for the first 30 s, then healthy.
/// let outage = Script::new().until(Duration::from_secs(30), Behaviour::Status(503));
/// # let _ = (flaky, outage);
/// ```
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Script {
    steps: Vec<(When, Behaviour)>,
    latency: Option<Latency>,
    answer: Option<String>,
    refuse_prefill: bool,
}

impl Script {
    /// A healthy model.
    pub fn new() -> Self {
        Self::default()
    }

    /// Always `behaviour` (after the steps already given).
    #[must_use]
    pub fn always(mut self, behaviour: Behaviour) -> Self {
        self.steps.push((When::Always, behaviour));
        self
    }

    /// `behaviour` for the model's calls numbered below `calls` (the first call is 0).
    #[must_use]
    pub fn until_call(mut self, calls: u32, behaviour: Behaviour) -> Self {
        self.steps.push((When::BeforeCall(calls), behaviour));
        self
    }

    /// `behaviour` until `elapsed` after the simulator started.
    #[must_use]
    pub fn until(mut self, elapsed: Duration, behaviour: Behaviour) -> Self {
        self.steps.push((When::Before(elapsed), behaviour));
        self
    }

    /// `behaviour` from `from` to `to` after the simulator started.
    #[must_use]
    pub fn between(mut self, from: Duration, to: Duration, behaviour: Behaviour) -> Self {
        self.steps.push((When::Between(from, to), behaviour));
        self
    }

    /// Latency before every answer.
    #[must_use]
    pub fn latency(mut self, latency: Latency) -> Self {
        self.latency = Some(latency);
        self
    }

    /// Answers with `text` instead of [`ANSWER`](crate::ANSWER).
    #[must_use]
    pub fn answer(mut self, text: impl Into<String>) -> Self {
        self.answer = Some(text.into());
        self
    }

    /// Refuses a request that ends with an assistant message (a prefill) with HTTP 400,
    /// type `invalid_request_message_order`, and Mistral's message ("Expected last role User
    /// or Tool (or Assistant with prefix True) for serving but got assistant"), before any
    /// step applies. The refusal is logged as `prefill_refused`.
    #[must_use]
    pub fn refuse_prefill(mut self) -> Self {
        self.refuse_prefill = true;
        self
    }

    /// The model's whole answer.
    pub(crate) fn answer_text(&self) -> &str {
        self.answer.as_deref().unwrap_or(crate::ANSWER)
    }

    /// Whether a prefill is refused.
    pub(crate) fn refuses_prefill(&self) -> bool {
        self.refuse_prefill
    }

    pub(crate) fn behaviour(&self, call: u32, elapsed: Duration) -> Behaviour {
        self.steps
            .iter()
            .find(|(when, _)| match when {
                When::BeforeCall(n) => call < *n,
                When::Before(t) => elapsed < *t,
                When::Between(a, b) => (*a..*b).contains(&elapsed),
                When::Always => true,
            })
            .map_or(Behaviour::Healthy, |(_, b)| b.clone())
    }

    pub(crate) fn latency_for(&self, unit: f64) -> Duration {
        match self.latency {
            None => Duration::ZERO,
            Some(Latency::Fixed(d)) => d,
            Some(Latency::Uniform(a, b)) => a + (b.saturating_sub(a)).mul_f64(unit),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_matching_step_decides() {
        let s = Script::new().until_call(1, Behaviour::Status(500)).between(
            Duration::from_secs(10),
            Duration::from_secs(20),
            Behaviour::Hang,
        );
        assert_eq!(s.behaviour(0, Duration::ZERO), Behaviour::Status(500));
        assert_eq!(s.behaviour(1, Duration::ZERO), Behaviour::Healthy);
        assert_eq!(s.behaviour(5, Duration::from_secs(10)), Behaviour::Hang);
        assert_eq!(s.behaviour(5, Duration::from_secs(20)), Behaviour::Healthy);
    }
}
