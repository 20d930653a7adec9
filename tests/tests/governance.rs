//! The governance flows on the real round of CMMV-Hive minute 0004: the chain, vote rounds
//! that must reach quorum while voters fail, and a review with fallback.

#![allow(clippy::unwrap_used)]

use std::{
    collections::BTreeMap,
    sync::{
        Arc,
        atomic::{AtomicU32, Ordering},
    },
    time::Duration,
};

use hive_core::{BoxError, EventSink, ModelId};
use hive_examples::governance::{
    Ballot, Minute, Proposal,
    chain::{Problem, block_hash},
    minute_0004_dir,
    review::{Review, ReviewDesk},
    round::{BallotRequest, VoteRound, Voter, canonical},
};
use tokio::time::{Instant, sleep};
use tower::util::BoxCloneService;

fn minute() -> Minute {
    Minute::load(minute_0004_dir()).unwrap()
}

#[test]
fn the_chain_hashing_reproduces_the_first_four_blocks() {
    let minute = minute();
    for block in &minute.chain.chain[..4] {
        assert_eq!(block_hash(block), block.block_hash, "block {}", block.index);
        let (_, bytes) = &minute.ballots[&block.vote_file];
        assert_eq!(
            hive_examples::governance::chain::sha256_hex(bytes),
            block.vote_file_hash
        );
    }
}

#[test]
fn verification_names_exactly_the_blocks_that_do_not_verify() {
    let minute = minute();
    let problems = minute
        .chain
        .verify(|file| minute.ballots.get(file).map(|(_, bytes)| bytes.clone()));
    let mut found: BTreeMap<u64, Vec<&str>> = BTreeMap::new();
    for p in &problems {
        found.entry(p.index).or_default().push(match p.problem {
            Problem::VoteFileHash { .. } => "file",
            Problem::BlockHash { .. } => "block",
            Problem::BrokenLink { .. } => "link",
            Problem::VoteFileMissing => "missing",
        });
    }
    let expected: BTreeMap<u64, Vec<&str>> = [
        (5, vec!["file"]),
        (6, vec!["block"]),
        (7, vec!["file", "block"]),
        (8, vec!["file", "block"]),
        (12, vec!["file"]),
    ]
    .into_iter()
    .collect();
    assert_eq!(found, expected);
}

type Endpoint = BoxCloneService<BallotRequest, Ballot, BoxError>;

#[derive(Clone, Debug)]
enum Behaves {
    Honest,
    Down,
    Slow,
    /// Fails every other call, starting with the first.
    Flapping,
    /// Answers with another model's ballot.
    Impersonates(&'static str),
}

fn endpoint(minute: &Minute, voter: &str, behaves: Behaves) -> Endpoint {
    let own = minute.ballot_of(voter).unwrap().clone();
    let other = match behaves {
        Behaves::Impersonates(other) => Some(minute.ballot_of(other).unwrap().clone()),
        _ => None,
    };
    let calls = Arc::new(AtomicU32::new(0));
    BoxCloneService::new(tower::service_fn(move |request: BallotRequest| {
        assert_eq!(request.minute_id, "0004");
        let n = calls.fetch_add(1, Ordering::SeqCst);
        let (behaves, own, other) = (behaves.clone(), own.clone(), other.clone());
        async move {
            sleep(Duration::from_millis(200)).await;
            match behaves {
                Behaves::Honest => Ok(own),
                Behaves::Down => {
                    Err(std::io::Error::from(std::io::ErrorKind::ConnectionRefused).into())
                }
                Behaves::Slow => {
                    sleep(Duration::from_secs(600)).await;
                    Ok(own)
                }
                Behaves::Flapping if n.is_multiple_of(2) => Err("503".into()),
                Behaves::Flapping => Ok(own),
                Behaves::Impersonates(_) => Ok(other.unwrap_or(own)),
            }
        }
    }))
}

/// Every voter of the minute, with two endpoints each behaving as `plan` says (honest
/// otherwise).
fn voters(minute: &Minute, plan: &[(&str, Behaves, Behaves)]) -> Vec<Voter<Endpoint>> {
    minute
        .ballots
        .values()
        .map(|(ballot, _)| {
            let name = ballot.model.as_str();
            let (primary, backup) = plan
                .iter()
                .find(|(m, _, _)| *m == name)
                .map(|(_, p, b)| (p.clone(), b.clone()))
                .unwrap_or((Behaves::Honest, Behaves::Honest));
            Voter {
                model: ModelId::new(canonical(name)),
                endpoints: vec![
                    ("primary".into(), endpoint(minute, name, primary)),
                    ("backup".into(), endpoint(minute, name, backup)),
                ],
            }
        })
        .collect()
}

#[tokio::test(start_paused = true)]
async fn a_full_round_reproduces_the_published_scores() {
    let minute = minute();
    let round = VoteRound::new(
        voters(&minute, &[]),
        8,
        Duration::from_secs(30),
        EventSink::none(),
    )
    .unwrap();
    let report = round.run("0004").await;
    assert_eq!(report.votes.len(), 12);
    assert!(report.reached);
    let published: serde_json::Value =
        serde_json::from_slice(&std::fs::read(minute.dir.join("results.json")).unwrap()).unwrap();
    let published: BTreeMap<String, f64> = published["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["proposal_id"].as_str().unwrap().to_owned(),
                r["score"].as_f64().unwrap(),
            )
        })
        .collect();
    assert_eq!(report.scores.len(), published.len());
    for score in &report.scores {
        let rounded = (score.score * 10.0).round() / 10.0;
        assert_eq!(
            rounded, published[&score.proposal_id],
            "proposal {}",
            score.proposal_id
        );
    }
}

#[tokio::test(start_paused = true)]
async fn quorum_is_reached_with_voters_down_slow_flapping_and_impersonated() {
    use Behaves::*;
    let minute = minute();
    let plan = [
        ("gpt-4o", Down, Down),
        ("grok-3", Down, Down),
        ("deepseek-v3.1", Down, Down),
        ("gemini-2.5-pro", Slow, Slow),
        ("claude-4-sonnet", Flapping, Honest),
        ("gpt-5-mini", Impersonates("gpt-4o"), Honest),
        (
            "grok-code-fast-1",
            Impersonates("grok-3"),
            Impersonates("gpt-4o"),
        ),
    ];
    let round = VoteRound::new(
        voters(&minute, &plan),
        7,
        Duration::from_secs(30),
        EventSink::none(),
    )
    .unwrap();
    let start = Instant::now();
    let report = round.run("0004").await;
    assert_eq!(
        start.elapsed(),
        Duration::from_secs(30),
        "the slow voter is cut at the deadline"
    );
    let absent: BTreeMap<&str, &str> = report
        .absent
        .iter()
        .map(|a| (a.model.as_str(), a.reason.as_str()))
        .collect();
    assert_eq!(
        absent.keys().copied().collect::<Vec<_>>(),
        [
            "deepseek-v3.1",
            "gemini-2.5-pro",
            "gpt-4o",
            "grok-3",
            "grok-code-fast-1"
        ]
    );
    assert!(
        absent["gemini-2.5-pro"].starts_with("deadline reached"),
        "{}",
        absent["gemini-2.5-pro"]
    );
    assert!(absent["gpt-4o"].contains("connect"), "{}", absent["gpt-4o"]);
    assert!(
        absent["grok-code-fast-1"].contains("identity_mismatch"),
        "{}",
        absent["grok-code-fast-1"]
    );
    assert_eq!(report.votes.len(), 7);
    assert!(report.reached);
    // Every counted vote is the voter's own ballot.
    for vote in &report.votes {
        assert_eq!(canonical(&vote.ballot.model), vote.model.as_str());
    }
    let by = |m: &str| report.votes.iter().find(|v| v.model.as_str() == m).unwrap();
    assert_eq!(
        by("gpt-5-mini").endpoint.as_str(),
        "gpt-5-mini@backup",
        "impersonation falls back"
    );
    assert_eq!(
        by("claude-4-sonnet").endpoint.as_str(),
        "claude-4-sonnet@primary",
        "a flap is retried"
    );
    // The scores come from the counted votes only.
    let expected = hive_examples::governance::round::scores(report.votes.iter().map(|v| &v.ballot));
    assert_eq!(report.scores, expected);
}

#[tokio::test(start_paused = true)]
async fn no_quorum_when_too_many_voters_fail() {
    use Behaves::*;
    let minute = minute();
    let down = [
        "gpt-4o",
        "grok-3",
        "deepseek-v3.1",
        "gemini-2.5-pro",
        "claude-4-sonnet",
        "gpt-5-mini",
    ];
    let plan: Vec<_> = down.iter().map(|m| (*m, Down, Down)).collect();
    let round = VoteRound::new(
        voters(&minute, &plan),
        7,
        Duration::from_secs(30),
        EventSink::none(),
    )
    .unwrap();
    let report = round.run("0004").await;
    assert_eq!(
        (report.votes.len(), report.absent.len(), report.reached),
        (6, 6, false)
    );
}

#[tokio::test(start_paused = true)]
async fn the_collected_votes_extend_the_chain_with_blocks_that_verify() {
    let minute = minute();
    let round = VoteRound::new(
        voters(&minute, &[]),
        8,
        Duration::from_secs(30),
        EventSink::none(),
    )
    .unwrap();
    let report = round.run("0004").await;
    let mut chain = minute.chain.clone();
    let last = chain.chain.last().unwrap().block_hash.clone();
    let files: BTreeMap<String, Vec<u8>> = report.append_to(&mut chain).into_iter().collect();
    assert_eq!(chain.chain.len(), 24);
    assert_eq!(chain.chain[12].index, 13);
    assert_eq!(
        chain.chain[12].previous_hash.as_deref(),
        Some(last.as_str())
    );
    let problems = chain.verify(|file| {
        files
            .get(file)
            .cloned()
            .or_else(|| minute.ballots.get(file).map(|(_, b)| b.clone()))
    });
    // The appended files are written fresh, so only the published chain's own problems stay.
    assert!(problems.iter().all(|p| p.index <= 12), "{problems:?}");
}

#[tokio::test(start_paused = true)]
async fn a_review_falls_back_from_the_primary_reviewer_to_a_backup() {
    let reviewer = |name: &'static str, up: bool| -> BoxCloneService<Proposal, Review, BoxError> {
        BoxCloneService::new(tower::service_fn(move |p: Proposal| async move {
            if up {
                Ok(Review {
                    proposal_id: p.id,
                    text: format!("{name}: approve"),
                })
            } else {
                Err("503".into())
            }
        }))
    };
    let desk = ReviewDesk::new(
        vec![
            (ModelId::new("gpt-5"), reviewer("gpt-5", false)),
            (
                ModelId::new("claude-4-sonnet"),
                reviewer("claude-4-sonnet", true),
            ),
        ],
        Duration::from_secs(60),
        EventSink::none(),
    )
    .unwrap();
    let proposal = minute().proposals[0].clone();
    let routed = desk.review(proposal).await.unwrap();
    assert_eq!(routed.model.unwrap().as_str(), "claude-4-sonnet");
    assert_eq!(routed.response.text, "claude-4-sonnet: approve");
}
