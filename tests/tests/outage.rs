//! Probe discipline with every default: how many attempts a dead model receives during an
//! outage, and how soon traffic goes back to it once it heals (issue 7, item 3).
//!
//! A `ModelManager` built with nothing but defaults, over the OpenAI client, against the
//! simulated provider on loopback (paused time): the primary answers 503 for 60 s (or 2 s)
//! while 10 requests per second arrive, a backup answers throughout. The figures are
//! printed (`--nocapture`) and reported in BENCHMARKS.md; before issue 7's defaults the
//! outage sent 13 attempts to the dead model, and the blip kept it out for 28.5 s.
//!
//! The aim: five failures trip the breaker, then at most one attempt per open period (5 s,
//! 10 s, 20 s, then every 30 s), and traffic back within seconds of the heal.

#![allow(clippy::unwrap_used, clippy::print_stdout)]

use std::{sync::Arc, time::Duration};

use hive_openai::{ChatRequest, ChatResponse, Commit, CommitLayer, OpenAiClassifier, OpenAiClient};
use hive_resilience::{ModelManager, ModelSpec};
use hive_sim::{Behaviour, Script, Simulator};
use tokio::time::{Instant, sleep};
use tower::{Layer, ServiceExt, util::BoxCloneSyncService};

const EVERY: Duration = Duration::from_millis(100);

struct Figures {
    /// Attempts that reached the primary while it was down.
    attempts_while_down: usize,
    /// Attempts that reached the primary from the heal to the end.
    attempts_after: usize,
    /// From the heal to the first request the primary answered.
    back_after: Option<Duration>,
    /// Requests that got no answer at all.
    failed: usize,
    requests: usize,
}

/// Runs `run` of traffic at 10 requests/s with the primary down over `down`.
async fn outage(down: (Duration, Duration), run: Duration) -> Figures {
    let sim = Simulator::start([
        (
            "primary",
            Script::new().between(down.0, down.1, Behaviour::Status(503)),
        ),
        ("backup", Script::new()),
    ])
    .await
    .unwrap();
    let start = Instant::now();
    let spec = |model: &'static str| {
        let client = OpenAiClient::builder(model, sim.base_url())
            .build()
            .unwrap();
        ModelSpec::new(model, CommitLayer::new(Commit::FirstChunk).layer(client))
    };
    let manager = ModelManager::builder()
        .classifier(OpenAiClassifier)
        .model(spec("primary"))
        .model(spec("backup"))
        .build()
        .unwrap();
    let service = BoxCloneSyncService::new(manager.service());
    let answers = Arc::new(std::sync::RwLock::new(Vec::new()));
    let mut tasks = Vec::new();
    while start.elapsed() < run {
        let (service, answers) = (service.clone(), answers.clone());
        tasks.push(tokio::spawn(async move {
            let sent = start.elapsed();
            let answered = match service.oneshot(ChatRequest::new("", "ping")).await {
                Ok(routed) => {
                    assert!(matches!(routed.response, ChatResponse::Complete(_)));
                    routed.model.map(|m| m.as_str())
                }
                Err(_) => None,
            };
            answers.write().unwrap().push((sent, answered));
        }));
        sleep(EVERY).await;
    }
    for task in tasks {
        task.await.unwrap();
    }
    let primary = sim.attempts_of("primary");
    let answers = answers.read().unwrap();
    Figures {
        attempts_while_down: primary
            .iter()
            .filter(|a| (down.0..down.1).contains(&a.at))
            .count(),
        attempts_after: primary.iter().filter(|a| a.at >= down.1).count(),
        back_after: answers
            .iter()
            .filter(|(sent, model)| *sent >= down.1 && *model == Some("primary"))
            .map(|(sent, _)| *sent - down.1)
            .min(),
        failed: answers.iter().filter(|(_, model)| model.is_none()).count(),
        requests: answers.len(),
    }
}

fn report(name: &str, f: &Figures) {
    println!(
        "{name}: {} attempts on the dead primary, back {:?} after the heal ({} attempts after), \
         {}/{} requests failed",
        f.attempts_while_down, f.back_after, f.attempts_after, f.failed, f.requests
    );
}

#[tokio::test(start_paused = true)]
async fn a_minute_long_outage_with_every_default() {
    let f = outage(
        (Duration::from_secs(10), Duration::from_secs(70)),
        Duration::from_secs(100),
    )
    .await;
    report("60 s outage", &f);
    // Five to trip, then one probe per open period: at 5, 15 and 35 s after the trip. A
    // request admitted while the fifth failure was still on the wire is a sixth (the
    // simulator answers over real sockets, so which one comes first varies from run to
    // run; CI saw 9 once in many runs): never more.
    assert!(
        (8..=9).contains(&f.attempts_while_down),
        "{} attempts on the dead primary",
        f.attempts_while_down
    );
    assert!(f.back_after.unwrap() < Duration::from_secs(10));
    assert_eq!(f.failed, 0);
}

#[tokio::test(start_paused = true)]
async fn a_two_second_blip_with_every_default() {
    let f = outage(
        (Duration::from_secs(10), Duration::from_secs(12)),
        Duration::from_secs(60),
    )
    .await;
    report("2 s blip", &f);
    // Five to trip, and the first probe 5 s later finds the model back.
    assert_eq!(f.attempts_while_down, 5);
    assert!(f.back_after.unwrap() < Duration::from_secs(5));
    assert_eq!(f.failed, 0);
}
