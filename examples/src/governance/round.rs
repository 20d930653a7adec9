//! A vote round: every voter called through its own stack, concurrently, under one deadline;
//! a vote counts only if it comes from the model that was asked.

use std::{collections::BTreeMap, time::Duration};

use hive_core::{
    BoxError, Classified, Classify, ConfigError, EventSink, FailureClass, ModelId, Outcome,
    classify_error,
};
use hive_fallback::Routed;
use hive_resilience::{ModelManager, ModelSpec};
use tower::{Service, ServiceExt};

use super::{Ballot, chain::Chain};

/// What a voter is asked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BallotRequest {
    /// The round.
    pub minute_id: String,
    /// The model asked to vote.
    pub voter: ModelId,
}

/// A model name as compared for identity: lower case, spaces and underscores as hyphens
/// ("Manus AI" and "manus-ai" are one model).
pub fn canonical(name: &str) -> String {
    name.trim().to_lowercase().replace([' ', '_'], "-")
}

/// Accepts a ballot only from the model that was asked: any other model's ballot is an
/// identity failure (counted by the breaker, a reason to try the voter's next endpoint,
/// never a vote).
#[derive(Clone, Copy, Debug)]
pub struct IdentityCheck {
    /// The voter.
    pub expected: ModelId,
}

impl Classify<Ballot, BoxError> for IdentityCheck {
    fn classify(&self, result: &Result<Ballot, BoxError>) -> Classified {
        Classified::Now(match result {
            Ok(ballot) if canonical(&ballot.model) == canonical(self.expected.as_str()) => {
                Outcome::Success
            }
            Ok(_) => Outcome::failure(FailureClass::IdentityMismatch),
            Err(error) => classify_error(&**error),
        })
    }
}

/// A voter and the endpoints that serve it, in priority order. All are the same model.
#[derive(Debug)]
pub struct Voter<S> {
    /// The model that votes.
    pub model: ModelId,
    /// Its endpoints: (name, service).
    pub endpoints: Vec<(String, S)>,
}

/// A vote that counts.
#[derive(Clone, Debug, PartialEq)]
pub struct CastVote {
    /// The voter.
    pub model: ModelId,
    /// Its ballot.
    pub ballot: Ballot,
    /// The endpoint that answered (`model@endpoint`).
    pub endpoint: ModelId,
    /// Endpoints tried.
    pub attempts: u32,
}

/// A voter that did not vote, and why.
#[derive(Clone, Debug, PartialEq)]
pub struct Absent {
    /// The voter.
    pub model: ModelId,
    /// Why.
    pub reason: String,
}

/// The score of one proposal.
#[derive(Clone, Debug, PartialEq)]
pub struct Score {
    /// The proposal.
    pub proposal_id: String,
    /// Sum of weights / (10 × voters on it) × 100.
    pub score: f64,
    /// Voters who weighted it.
    pub voters: usize,
}

/// Scores every proposal the ballots weight, best first (ties by proposal id).
pub fn scores<'a>(ballots: impl IntoIterator<Item = &'a Ballot>) -> Vec<Score> {
    let mut sums: BTreeMap<&str, (u32, usize)> = BTreeMap::new();
    for ballot in ballots {
        for weight in &ballot.weights {
            let entry = sums.entry(&weight.proposal_id).or_default();
            entry.0 += u32::from(weight.weight);
            entry.1 += 1;
        }
    }
    let mut scores: Vec<Score> = sums
        .into_iter()
        .map(|(id, (sum, voters))| Score {
            proposal_id: id.to_owned(),
            score: f64::from(sum) / (10.0 * voters as f64) * 100.0,
            voters,
        })
        .collect();
    scores.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then(a.proposal_id.cmp(&b.proposal_id))
    });
    scores
}

/// The outcome of a round.
#[derive(Clone, Debug, PartialEq)]
pub struct RoundReport {
    /// Votes that count, in the voters' order.
    pub votes: Vec<CastVote>,
    /// Voters that did not vote, in the voters' order.
    pub absent: Vec<Absent>,
    /// Votes needed.
    pub quorum: usize,
    /// Whether the round reached quorum.
    pub reached: bool,
    /// The proposals' scores from the votes that count.
    pub scores: Vec<Score>,
}

impl RoundReport {
    /// Appends the votes as blocks (ballot file `votes/<model>.json`, pretty JSON) and
    /// returns each file's path and bytes.
    pub fn append_to(&self, chain: &mut Chain) -> Vec<(String, Vec<u8>)> {
        self.votes
            .iter()
            .map(|vote| {
                let file = format!("votes/{}.json", canonical(vote.model.as_str()));
                let bytes = serde_json::to_vec_pretty(&vote.ballot).unwrap_or_default();
                chain.append(&vote.ballot.model, &vote.ballot.timestamp, &file, &bytes);
                (file, bytes)
            })
            .collect()
    }
}

type Manager<S> = ModelManager<S, Ballot, IdentityCheck>;

/// A vote round over voters, each behind its own stack: its endpoints are routed in order
/// (retry, breaker, attempt timeout each), never to another model.
pub struct VoteRound<S> {
    voters: Vec<(ModelId, Manager<S>)>,
    quorum: usize,
}

impl<S> VoteRound<S>
where
    S: Service<BallotRequest, Response = Ballot, Error = BoxError> + Clone,
{
    /// A round needing `quorum` votes, each voter given `deadline` (the round's).
    pub fn new(
        voters: Vec<Voter<S>>,
        quorum: usize,
        deadline: Duration,
        events: EventSink,
    ) -> Result<Self, ConfigError> {
        let voters = voters
            .into_iter()
            .map(|voter| {
                let mut manager = ModelManager::builder()
                    .classifier(IdentityCheck {
                        expected: voter.model,
                    })
                    .timeout(deadline)
                    .events(events.clone());
                for (endpoint, service) in voter.endpoints {
                    let id = ModelId::new(format!("{}@{endpoint}", voter.model));
                    manager = manager.model(
                        ModelSpec::new(id, service)
                            .retry(|r| {
                                r.max_attempts(2)
                                    .backoff(Duration::from_millis(200), Duration::from_secs(2))
                            })
                            .attempt_timeout(deadline),
                    );
                }
                Ok((voter.model, manager.build()?))
            })
            .collect::<Result<_, ConfigError>>()?;
        Ok(Self { voters, quorum })
    }

    /// Asks every voter at once and waits for all (each bounded by the deadline).
    pub async fn run(&self, minute_id: &str) -> RoundReport {
        let asks = self.voters.iter().map(|(model, manager)| {
            let request = BallotRequest {
                minute_id: minute_id.to_owned(),
                voter: *model,
            };
            let ask = manager.service().oneshot(request);
            async move { (*model, ask.await) }
        });
        let answers = futures_util::future::join_all(asks).await;
        let (mut votes, mut absent) = (Vec::new(), Vec::new());
        for (model, answer) in answers {
            match answer {
                Ok(Routed {
                    response,
                    model: Some(endpoint),
                    attempts,
                    ..
                }) => votes.push(CastVote {
                    model,
                    ballot: response,
                    endpoint,
                    attempts,
                }),
                Ok(Routed { model: None, .. }) => absent.push(Absent {
                    model,
                    reason: "only a degraded answer".to_owned(),
                }),
                Err(error) => absent.push(Absent {
                    model,
                    reason: error.to_string(),
                }),
            }
        }
        RoundReport {
            reached: votes.len() >= self.quorum,
            scores: scores(votes.iter().map(|v| &v.ballot)),
            quorum: self.quorum,
            votes,
            absent,
        }
    }
}

impl<S> std::fmt::Debug for VoteRound<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VoteRound")
            .field(
                "voters",
                &self.voters.iter().map(|(m, _)| m).collect::<Vec<_>>(),
            )
            .field("quorum", &self.quorum)
            .finish()
    }
}
