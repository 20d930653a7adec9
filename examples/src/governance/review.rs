//! A proposal review: a primary reviewer model, and backup reviewers in order when it fails.

use std::time::Duration;

use hive_core::{BoxError, ConfigError, EventSink, ModelId};
use hive_fallback::Routed;
use hive_resilience::{ModelManager, ModelSpec};
use tower::{Service, ServiceExt};

use super::Proposal;

/// What a reviewer returns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Review {
    /// The proposal reviewed.
    pub proposal_id: String,
    /// The reviewer's verdict and reasons.
    pub text: String,
}

/// Reviews proposals with a primary reviewer and backups, each behind its own stack.
pub struct ReviewDesk<S> {
    manager: ModelManager<S, Review>,
}

impl<S> ReviewDesk<S>
where
    S: Service<Proposal, Response = Review, Error = BoxError> + Clone,
{
    /// Reviewers in priority order; each review may take at most `deadline`.
    pub fn new(
        reviewers: Vec<(ModelId, S)>,
        deadline: Duration,
        events: EventSink,
    ) -> Result<Self, ConfigError> {
        let mut manager = ModelManager::builder().timeout(deadline).events(events);
        for (model, service) in reviewers {
            manager = manager.model(ModelSpec::new(model, service).retry(|r| r.max_attempts(2)));
        }
        Ok(Self {
            manager: manager.build()?,
        })
    }

    /// Reviews one proposal; the answer says which reviewer wrote it.
    pub async fn review(&self, proposal: Proposal) -> Result<Routed<Review>, BoxError> {
        self.manager.service().oneshot(proposal).await
    }
}

impl<S> std::fmt::Debug for ReviewDesk<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReviewDesk")
            .field("reviewers", &self.manager.controls())
            .finish()
    }
}
