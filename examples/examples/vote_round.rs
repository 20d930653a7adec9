//! A real CMMV-Hive vote round (minute 0004) run through hive-resilience while voters fail:
//! some are down, one is slow, one flaps, two answer as another model. Prints the chain
//! check, who voted through which endpoint, who did not and why, the quorum and the scores.
//!
//! Run: `cargo run -p hive-examples --example vote_round`

#![allow(clippy::print_stdout, clippy::unwrap_used)]

use std::{
    sync::{
        Arc,
        atomic::{AtomicU32, Ordering},
    },
    time::Duration,
};

use hive_core::{BoxError, EventSink, ModelId};
use hive_examples::governance::{
    Ballot, Minute, minute_0004_dir,
    round::{BallotRequest, VoteRound, Voter, canonical},
};
use tokio::time::{Instant, sleep};
use tower::util::BoxCloneService;

type Endpoint = BoxCloneService<BallotRequest, Ballot, BoxError>;

/// An endpoint answering `ballot` after `latency`; `fail_every` > 0 fails every n-th call.
fn endpoint(ballot: Option<Ballot>, latency: Duration, fail_every: u32) -> Endpoint {
    let calls = Arc::new(AtomicU32::new(0));
    BoxCloneService::new(tower::service_fn(move |_: BallotRequest| {
        let n = calls.fetch_add(1, Ordering::SeqCst);
        let ballot = ballot.clone();
        async move {
            sleep(latency).await;
            match ballot {
                Some(b) if fail_every == 0 || !n.is_multiple_of(fail_every) => Ok(b),
                _ => Err::<Ballot, BoxError>("503 Service Unavailable".into()),
            }
        }
    }))
}

#[tokio::main(flavor = "current_thread", start_paused = true)]
async fn main() -> Result<(), BoxError> {
    let minute = Minute::load(minute_0004_dir())?;
    println!(
        "CMMV-Hive minute 0004: {} proposals, {} ballots\n",
        minute.proposals.len(),
        minute.ballots.len()
    );

    println!("published chain check:");
    let problems = minute
        .chain
        .verify(|file| minute.ballots.get(file).map(|(_, b)| b.clone()));
    for p in &problems {
        println!("  block {:>2} ({}): {:?}", p.index, p.model, p.problem);
    }

    let ms = Duration::from_millis;
    let voters: Vec<Voter<Endpoint>> = minute
        .ballots
        .values()
        .map(|(ballot, _)| {
            let own = Some(ballot.clone());
            let other = minute.ballot_of("gpt-4o").cloned();
            let (primary, backup) = match ballot.model.as_str() {
                "grok-3" | "deepseek-v3.1" => {
                    (endpoint(None, ms(50), 0), endpoint(None, ms(50), 0))
                }
                "gemini-2.5-pro" => (
                    endpoint(own.clone(), ms(90_000), 0),
                    endpoint(own, ms(90_000), 0),
                ),
                "claude-4-sonnet" => (endpoint(own.clone(), ms(800), 2), endpoint(own, ms(900), 0)),
                "gpt-5-mini" => (endpoint(other, ms(700), 0), endpoint(own, ms(1_100), 0)),
                "grok-code-fast-1" => (
                    endpoint(other.clone(), ms(300), 0),
                    endpoint(other, ms(300), 0),
                ),
                _ => (
                    endpoint(own.clone(), ms(1_200), 0),
                    endpoint(own, ms(1_500), 0),
                ),
            };
            Voter {
                model: ModelId::new(canonical(&ballot.model)),
                endpoints: vec![("primary".into(), primary), ("backup".into(), backup)],
            }
        })
        .collect();
    let round = VoteRound::new(voters, 7, Duration::from_secs(30), EventSink::none())?;
    let start = Instant::now();
    let report = round.run("0004").await;
    println!(
        "\nround finished after {:.1} s (deadline 30 s)",
        start.elapsed().as_secs_f64()
    );
    println!("\nvoted ({}):", report.votes.len());
    for v in &report.votes {
        println!(
            "  {:<20} via {:<30} ({} attempt{})",
            v.model.as_str(),
            v.endpoint.as_str(),
            v.attempts,
            if v.attempts == 1 { "" } else { "s" }
        );
    }
    println!("\ndid not vote ({}):", report.absent.len());
    for a in &report.absent {
        let reason: String = a.reason.chars().take(110).collect();
        println!("  {:<20} {reason}", a.model.as_str());
    }
    println!(
        "\nquorum {} of {}: {}",
        report.quorum,
        report.votes.len() + report.absent.len(),
        if report.reached {
            "REACHED"
        } else {
            "NOT reached"
        }
    );
    println!("\nscores (sum of weights / (10 × voters on it) × 100):");
    for s in report.scores.iter().take(8) {
        let title = minute
            .proposals
            .iter()
            .find(|p| p.id == s.proposal_id)
            .map_or("?", |p| p.title.as_str());
        println!(
            "  {}  {:>5.1}  ({:>2} voters)  {title}",
            s.proposal_id, s.score, s.voters
        );
    }
    let mut chain = minute.chain.clone();
    let files = report.append_to(&mut chain);
    println!(
        "\nappended {} blocks; the chain now ends at block {} ({}…)",
        files.len(),
        chain.chain.len(),
        &chain.chain[chain.chain.len() - 1].block_hash[..16]
    );
    Ok(())
}
