//! Which outcomes move a request to the next model.

use hive_core::{ClientErrorClass, FailureClassSet, Outcome};

/// What to do when a model refuses the request itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientErrorAction {
    /// Return the model's answer to the caller: another model would refuse it too.
    Return,
    /// Try the next model.
    Fallback,
    /// Try the next model whose context window is larger than this one's; return if none.
    LargerContext,
}

/// Which outcomes trigger a fallback. The default: every availability failure and every
/// rejection (open breaker, unhealthy) falls back; a bad request and a content-policy refusal
/// are returned; context length exceeded goes to a larger-context model; unauthorized falls
/// back (credentials belong to one provider).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FallbackPolicy {
    /// Failure classes that fall back.
    pub failures: FailureClassSet,
    /// Whether a rejection before the call (open breaker, unhealthy model) falls back.
    pub rejected: bool,
    /// HTTP 400 and other bad requests.
    pub bad_request: ClientErrorAction,
    /// The prompt does not fit the model's context.
    pub context_length_exceeded: ClientErrorAction,
    /// A content-policy refusal.
    pub content_policy: ClientErrorAction,
    /// HTTP 401/403.
    pub unauthorized: ClientErrorAction,
}

impl Default for FallbackPolicy {
    fn default() -> Self {
        Self {
            failures: FailureClassSet::ALL,
            rejected: true,
            bad_request: ClientErrorAction::Return,
            context_length_exceeded: ClientErrorAction::LargerContext,
            content_policy: ClientErrorAction::Return,
            unauthorized: ClientErrorAction::Fallback,
        }
    }
}

/// What the router does next with one attempt's outcome.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Step {
    Answer,
    Return,
    Fallback,
    LargerContext,
}

impl FallbackPolicy {
    pub(crate) fn decide(&self, outcome: &Outcome) -> Step {
        let action = |a: ClientErrorAction| match a {
            ClientErrorAction::Return => Step::Return,
            ClientErrorAction::Fallback => Step::Fallback,
            ClientErrorAction::LargerContext => Step::LargerContext,
        };
        match outcome {
            Outcome::Success => Step::Answer,
            Outcome::Ignored => Step::Return,
            Outcome::Failure { class, .. } if self.failures.contains(*class) => Step::Fallback,
            Outcome::Failure { .. } => Step::Return,
            Outcome::Rejected(_) if self.rejected => Step::Fallback,
            Outcome::Rejected(_) => Step::Return,
            Outcome::ClientError(class) => action(match class {
                ClientErrorClass::BadRequest => self.bad_request,
                ClientErrorClass::ContextLengthExceeded => self.context_length_exceeded,
                ClientErrorClass::ContentPolicy => self.content_policy,
                ClientErrorClass::Unauthorized => self.unauthorized,
            }),
        }
    }
}
