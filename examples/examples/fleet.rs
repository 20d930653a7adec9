//! A fleet of models behind hive-resilience, over real HTTP on loopback: a misbehaving
//! OpenAI-compatible provider (the simulator) serves three models; a `ModelManager` puts a
//! health gate, retry, breaker and timeout in front of each and routes between them. Over
//! two simulated minutes the primary goes down and heals, the secondary flaps and
//! rate-limits, and one request in a while asks for a streamed answer. Prints what the
//! resilience layers did, as a timeline, and what the callers saw.
//!
//! Run: `cargo run -p hive-examples --example fleet`

#![allow(clippy::print_stdout, clippy::unwrap_used)]

use std::{
    sync::{Arc, RwLock},
    time::Duration,
};

use hive_core::{BoxError, EventSink, ResilienceEvent};
use hive_health::{CheckerConfig, ProbeRequest};
use hive_openai::{ChatRequest, ChatResponse, Commit, CommitLayer, OpenAiClassifier, OpenAiClient};
use hive_resilience::{ModelManager, ModelSpec};
use hive_retry::Jitter;
use hive_sim::{ANSWER, Behaviour, Latency, RetryAfter, Script, Simulator};
use tokio::time::{Instant, sleep};
use tower::{Layer, ServiceExt, util::BoxCloneSyncService};

#[tokio::main(flavor = "current_thread", start_paused = true)]
async fn main() -> Result<(), BoxError> {
    let secs = Duration::from_secs;
    let sim = Simulator::start_seeded(
        [
            (
                "gpt-4o",
                Script::new()
                    .between(secs(20), secs(60), Behaviour::Status(503))
                    .latency(Latency::Uniform(
                        Duration::from_millis(300),
                        Duration::from_millis(600),
                    )),
            ),
            (
                "claude-4-sonnet",
                Script::new()
                    .between(secs(30), secs(33), Behaviour::ResetBeforeHeaders)
                    .between(
                        secs(45),
                        secs(47),
                        Behaviour::RateLimited(Some(RetryAfter::Seconds(1))),
                    )
                    .latency(Latency::Uniform(
                        Duration::from_millis(400),
                        Duration::from_millis(700),
                    )),
            ),
            (
                "deepseek-v3.1",
                Script::new().latency(Latency::Fixed(Duration::from_millis(1_200))),
            ),
        ],
        7,
    )
    .await?;
    let start = Instant::now();
    let timeline = Arc::new(RwLock::new(Vec::<String>::new()));
    let events = EventSink::from_fn({
        let timeline = timeline.clone();
        move |event| {
            let line = match event {
                ResilienceEvent::CircuitTransition {
                    model, from, to, ..
                } => {
                    format!("⚡ {model}: breaker {from} → {to}")
                }
                ResilienceEvent::HealthChanged {
                    model,
                    from,
                    to,
                    reason,
                } => {
                    format!("♥ {model}: {from} → {to} ({reason})")
                }
                ResilienceEvent::Control { model, action, by } => {
                    format!("⚙ {model}: {} by {by:?}", action.as_str())
                }
                _ => return,
            };
            timeline
                .write()
                .unwrap()
                .push(format!("{:>7.2}s  {line}", start.elapsed().as_secs_f64()));
        }
    });
    let base = sim.base_url();
    let spec = |model: &'static str| {
        let client = OpenAiClient::builder(model, base.clone())
            .first_token_timeout(secs(3))
            .idle_timeout(secs(2))
            .build()
            .unwrap();
        let probe_client = client.clone();
        ModelSpec::new(model, CommitLayer::new(Commit::FirstChunk).layer(client))
            .retry(|r| {
                r.max_attempts(2)
                    .backoff(Duration::from_millis(200), secs(2))
                    .jitter(Jitter::Full)
            })
            .breaker(|b| b.count_window(10).minimum_calls(5).open_duration(secs(20)))
            .attempt_timeout(secs(5))
            .slow_start(secs(5))
            .probe(tower::service_fn(move |_: ProbeRequest| {
                // `GET /v1/models` costs nothing but only says the server is up; a one-token
                // completion sees what callers see.
                let mut ping = ChatRequest::new(model, "ping");
                ping.max_tokens = Some(1);
                probe_client.clone().oneshot(ping)
            }))
    };
    let mut manager = ModelManager::builder()
        .classifier(OpenAiClassifier)
        .events(events)
        .seed(7)
        .checks(
            CheckerConfig::default()
                .interval(secs(2))
                .fast_interval(Duration::from_millis(500))
                .seed(7),
        )
        .model(spec("gpt-4o"))
        .model(spec("claude-4-sonnet"))
        .model(spec("deepseek-v3.1"))
        .timeout(secs(10))
        .build()?;
    let running = manager.start()?;
    let service = BoxCloneSyncService::new(manager.service());

    println!(
        "hive-resilience fleet demo: 3 models on a simulated provider at {}",
        sim.base_url()
    );
    println!(
        "  gpt-4o down 20–60 s · claude-4-sonnet resets 30–33 s and rate-limits 45–47 s · deepseek-v3.1 slow but steady\n"
    );
    let mut asks = Vec::new();
    let mut n = 0u32;
    while start.elapsed() < secs(120) {
        let service = service.clone();
        let stream = n.is_multiple_of(10);
        asks.push(tokio::spawn(async move {
            let sent = Instant::now();
            let request = ChatRequest::new("", format!("Vote on BIP-{n:02}"));
            let request = if stream { request.streamed() } else { request };
            let result = async {
                let routed = service.oneshot(request).await?;
                let text = match routed.response {
                    ChatResponse::Complete(answer) => answer.text().to_owned(),
                    ChatResponse::Stream(stream) => stream.collect_text().await?,
                };
                Ok::<_, BoxError>((routed.model.map(|m| m.as_str()), text))
            }
            .await;
            (sent.elapsed(), result)
        }));
        n += 1;
        sleep(Duration::from_millis(250)).await;
    }
    let mut by_model = std::collections::BTreeMap::<&str, u32>::new();
    let (mut whole, mut failed, mut latencies) = (0, 0, Vec::new());
    for ask in asks {
        let (latency, result) = ask.await?;
        match result {
            Ok((Some(model), text)) if text == ANSWER => {
                whole += 1;
                *by_model.entry(model).or_default() += 1;
                latencies.push(latency);
            }
            _ => failed += 1,
        }
    }
    running.stop().await;
    for line in timeline.read().unwrap().iter() {
        println!("{line}");
    }
    latencies.sort();
    let total = whole + failed;
    println!(
        "\nafter {:.0} simulated seconds, {total} requests:",
        start.elapsed().as_secs_f64()
    );
    println!(
        "  whole answers   {whole} ({:.2}%)",
        f64::from(whole) / f64::from(total) * 100.0
    );
    println!("  failed          {failed} (a truncated answer is never counted as whole)");
    for (model, count) in &by_model {
        println!("  answered by {model:<16} {count}");
    }
    println!(
        "  latency         median {:?}, p95 {:?}",
        latencies[latencies.len() / 2],
        latencies[latencies.len() * 95 / 100]
    );
    println!("  provider saw    {} attempts", sim.attempts().len());
    let availability = manager.availability();
    println!(
        "  now up          {}/{} models; {}/{} requests answered in the last minute",
        availability.up(),
        availability.models.len(),
        availability.answered,
        availability.requests
    );
    Ok(())
}
