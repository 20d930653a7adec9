//! Real HTTP through a full ModelManager stack (gate → retry → breaker → timeout → client)
//! against the misbehaving provider: per behaviour, the attempts the provider saw and the
//! gaps between them, whether and where the request failed over, the final result, and never
//! a truncated success. Paused time, millisecond-scale settings.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use hive_core::{BoxError, FailureClass, Outcome};
use hive_fallback::Routed;
use hive_openai::{
    ChatRequest, ChatResponse, Commit, CommitLayer, CommitService, OpenAiClassifier, OpenAiClient,
    OpenAiError,
};
use hive_resilience::{ModelManager, ModelSpec};
use hive_retry::Jitter;
use hive_sim::{ANSWER, Behaviour, RetryAfter, Script, Simulator};
use tokio::time::Instant;
use tower::{Layer, ServiceExt};

type Manager = ModelManager<CommitService<OpenAiClient>, ChatResponse, OpenAiClassifier>;

/// A simulator with `primary` and `backup`, and a manager over them (3 attempts per model,
/// 100 ms backoff without jitter, Retry-After up to 5 s, 1 s attempt timeout), streams
/// passed through.
async fn fleet(primary: Script, backup: Script) -> (Simulator, Manager) {
    fleet_with(primary, backup, Commit::PassThrough).await
}

async fn fleet_with(primary: Script, backup: Script, commit: Commit) -> (Simulator, Manager) {
    let sim = Simulator::start([("primary", primary), ("backup", backup)])
        .await
        .unwrap();
    let client = |model: &str, window: u64| {
        let client = OpenAiClient::builder(model.to_owned(), sim.base_url())
            .first_token_timeout(Duration::from_millis(500))
            .idle_timeout(Duration::from_millis(300))
            .build()
            .unwrap();
        ModelSpec::new(model.to_owned(), CommitLayer::new(commit).layer(client))
            .retry(|r| {
                r.max_attempts(3)
                    .backoff(Duration::from_millis(100), Duration::from_secs(1))
                    .jitter(Jitter::None)
                    .retry_after(true, Duration::from_secs(5))
            })
            .breaker(|b| b.count_window(10).minimum_calls(5))
            .attempt_timeout(Duration::from_secs(1))
            .context_window(window)
    };
    let manager = ModelManager::builder()
        .classifier(OpenAiClassifier)
        .model(client("primary", 8_000))
        .model(client("backup", 128_000))
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    (sim, manager)
}

async fn ask(manager: &Manager, stream: bool) -> Result<(Routed<()>, String), BoxError> {
    let request = ChatRequest::new("primary", "Vote on BIP-01");
    let request = if stream { request.streamed() } else { request };
    let routed = manager.service().oneshot(request).await?;
    let text = match routed.response {
        ChatResponse::Complete(answer) => answer.text().to_owned(),
        ChatResponse::Stream(stream) => stream.collect_text().await?,
    };
    let routed = Routed {
        response: (),
        model: routed.model,
        attempts: routed.attempts,
        degraded: routed.degraded,
    };
    Ok((routed, text))
}

/// (model, ms since the simulator started) of every attempt.
fn seen(sim: &Simulator) -> Vec<(String, u128)> {
    sim.attempts()
        .into_iter()
        .map(|a| (a.model, a.at.as_millis()))
        .collect()
}

fn answered_by(routed: &Routed<()>) -> &str {
    routed.model.unwrap().as_str()
}

#[tokio::test(start_paused = true)]
async fn retry_after_is_honoured_before_the_primary_answers() {
    let (sim, m) = fleet(
        Script::new().until_call(1, Behaviour::RateLimited(Some(RetryAfter::Seconds(2)))),
        Script::new(),
    )
    .await;
    let (routed, text) = ask(&m, false).await.unwrap();
    assert_eq!((answered_by(&routed), text.as_str()), ("primary", ANSWER));
    assert_eq!(
        seen(&sim),
        [("primary".into(), 0), ("primary".into(), 2_000)]
    );
}

#[tokio::test(start_paused = true)]
async fn a_429_without_a_hint_waits_the_backoff_not_a_tight_loop() {
    let (sim, m) = fleet(
        Script::new().until_call(2, Behaviour::RateLimited(None)),
        Script::new(),
    )
    .await;
    let (routed, _) = ask(&m, false).await.unwrap();
    assert_eq!(answered_by(&routed), "primary");
    assert_eq!(
        seen(&sim),
        [
            ("primary".into(), 0),
            ("primary".into(), 100),
            ("primary".into(), 300)
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn a_500_once_is_retried_on_the_same_model() {
    let (sim, m) = fleet(
        Script::new().until_call(1, Behaviour::Status(500)),
        Script::new(),
    )
    .await;
    let (routed, text) = ask(&m, false).await.unwrap();
    assert_eq!(
        (answered_by(&routed), routed.attempts, text.as_str()),
        ("primary", 1, ANSWER)
    );
    assert_eq!(sim.attempts_of("primary").len(), 2);
}

#[tokio::test(start_paused = true)]
async fn persistent_failures_fail_over_after_the_retries() {
    for behaviour in [
        Behaviour::Status(503),
        Behaviour::ResetBeforeHeaders,
        Behaviour::Status(529),
    ] {
        let (sim, m) = fleet(Script::new().always(behaviour.clone()), Script::new()).await;
        let (routed, text) = ask(&m, false).await.unwrap();
        assert_eq!(
            (answered_by(&routed), routed.attempts, text.as_str()),
            ("backup", 2, ANSWER),
            "{behaviour:?}"
        );
        assert_eq!(
            seen(&sim),
            [
                ("primary".into(), 0),
                ("primary".into(), 100),
                ("primary".into(), 300),
                ("backup".into(), 300)
            ],
            "{behaviour:?}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn a_model_that_never_answers_is_cut_by_its_limit_then_left() {
    let (sim, m) = fleet(Script::new().always(Behaviour::Hang), Script::new()).await;
    let start = Instant::now();
    let (routed, _) = ask(&m, false).await.unwrap();
    assert_eq!(answered_by(&routed), "backup");
    // One attempt of 500 ms (the first-token limit): a silent model is not asked again,
    // the router fails over at once.
    assert_eq!(start.elapsed(), Duration::from_millis(500));
    assert_eq!(sim.attempts_of("primary").len(), 1);
}

#[tokio::test(start_paused = true)]
async fn an_impersonating_endpoint_is_never_a_success() {
    let (sim, m) = fleet(
        Script::new().always(Behaviour::WrongModel("gpt-4o".into())),
        Script::new(),
    )
    .await;
    let (routed, text) = ask(&m, false).await.unwrap();
    assert_eq!((answered_by(&routed), text.as_str()), ("backup", ANSWER));
    // Identity failures are not retried on the same endpoint: one call, then the backup.
    assert_eq!(sim.attempts_of("primary").len(), 1);
    let breaker = m.control("primary").unwrap().breaker().metrics();
    assert_eq!(breaker.failed_calls, 1);
}

#[tokio::test(start_paused = true)]
async fn context_length_goes_to_the_larger_model_and_content_policy_comes_back() {
    let (sim, m) = fleet(
        Script::new().always(Behaviour::ContextLengthExceeded),
        Script::new(),
    )
    .await;
    let (routed, _) = ask(&m, false).await.unwrap();
    assert_eq!(answered_by(&routed), "backup");
    assert_eq!(sim.attempts_of("primary").len(), 1, "not retried");

    let (sim, m) = fleet(
        Script::new().always(Behaviour::ContentFilter),
        Script::new(),
    )
    .await;
    let err = ask(&m, false).await.unwrap_err();
    let err = err.downcast_ref::<OpenAiError>().unwrap();
    let OpenAiError::Status {
        provider_message, ..
    } = err
    else {
        panic!("{err:?}")
    };
    assert!(
        provider_message.contains("safety system"),
        "the provider's reason reaches the caller: {err:?}"
    );
    assert_eq!(
        sim.attempts().len(),
        1,
        "neither retried nor sent elsewhere"
    );
}

#[tokio::test(start_paused = true)]
async fn streams_succeed_only_whole_and_a_cut_is_a_failure_the_breaker_counts() {
    let (_sim, m) = fleet(Script::new(), Script::new()).await;
    assert_eq!(ask(&m, true).await.unwrap().1, ANSWER);
    let (_sim, m) = fleet(Script::new().always(Behaviour::MissingDone), Script::new()).await;
    assert_eq!(ask(&m, true).await.unwrap().1, ANSWER);

    for (behaviour, class) in [
        (
            Behaviour::StreamCut { after_tokens: 3 },
            FailureClass::StreamCut,
        ),
        (
            Behaviour::Stall { after_tokens: 2 },
            FailureClass::StreamStalled,
        ),
    ] {
        let (_sim, m) = fleet(Script::new().always(behaviour.clone()), Script::new()).await;
        let err = ask(&m, true).await.unwrap_err();
        let err = err.downcast_ref::<OpenAiError>().unwrap();
        assert_eq!(err.outcome(), Outcome::failure(class), "{behaviour:?}");
        let breaker = m.control("primary").unwrap().breaker().metrics();
        assert_eq!(
            (breaker.calls, breaker.failed_calls),
            (1, 1),
            "{behaviour:?} counted at end of stream"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn an_outage_window_opens_the_breaker_and_the_backup_serves() {
    let (sim, m) = fleet(
        Script::new().until(Duration::from_secs(5), Behaviour::Status(503)),
        Script::new(),
    )
    .await;
    let mut by = Vec::new();
    for _ in 0..8 {
        by.push(answered_by(&ask(&m, false).await.unwrap().0).to_owned());
    }
    assert!(by.iter().all(|m| m == "backup"), "{by:?}");
    // The first request made 3 attempts, the second 2: the fifth failure (the minimum)
    // opened the breaker, which ended that request's retries and skipped the primary after.
    assert_eq!(sim.attempts_of("primary").len(), 5);
    assert_eq!(
        m.control("primary").unwrap().breaker().state(),
        hive_core::CircuitState::Open
    );
    assert!(matches!(
        ask(&m, false).await.map(|(r, _)| r.attempts),
        Ok(1)
    ));
}

#[tokio::test(start_paused = true)]
async fn buffered_streams_deliver_a_whole_answer_from_the_next_model() {
    let (sim, m) = fleet_with(
        Script::new().always(Behaviour::StreamCut { after_tokens: 3 }),
        Script::new(),
        Commit::Buffered,
    )
    .await;
    let routed = m
        .service()
        .oneshot(ChatRequest::new("primary", "q").streamed())
        .await
        .unwrap();
    assert_eq!(routed.model.unwrap().as_str(), "backup");
    let ChatResponse::Complete(answer) = routed.response else {
        panic!("a buffered stream arrives whole")
    };
    assert_eq!(answer.text(), ANSWER);
    assert_eq!(answer.model, "backup");
    assert_eq!(
        sim.attempts_of("primary").len(),
        3,
        "each cut attempt was retried"
    );
}

#[tokio::test(start_paused = true)]
async fn before_the_first_chunk_failing_over_is_free() {
    let (sim, m) = fleet_with(
        Script::new().always(Behaviour::SlowFirstToken(Duration::from_secs(5))),
        Script::new(),
        Commit::FirstChunk,
    )
    .await;
    let (routed, text) = ask(&m, true).await.unwrap();
    assert_eq!((answered_by(&routed), text.as_str()), ("backup", ANSWER));
    assert_eq!(
        sim.attempts_of("primary").len(),
        1,
        "no first token in time: not retried on the same model"
    );
    // With pass-through the same silence reaches the caller as an error.
    let (_sim, m) = fleet(
        Script::new().always(Behaviour::SlowFirstToken(Duration::from_secs(5))),
        Script::new(),
    )
    .await;
    let err = ask(&m, true).await.unwrap_err();
    assert_eq!(
        err.downcast_ref::<OpenAiError>().unwrap().outcome(),
        Outcome::failure(FailureClass::Timeout)
    );
}

#[tokio::test(start_paused = true)]
async fn a_malformed_chunk_is_skipped_and_counted_on_the_way_through() {
    let (_sim, m) = fleet(
        Script::new().always(Behaviour::MalformedChunk { at: 1 }),
        Script::new(),
    )
    .await;
    let routed = m
        .service()
        .oneshot(ChatRequest::new("primary", "q").streamed())
        .await
        .unwrap();
    let ChatResponse::Stream(mut stream) = routed.response else {
        panic!("streamed")
    };
    let mut text = String::new();
    while let Some(chunk) = stream.next().await {
        for choice in chunk.unwrap().choices {
            text.push_str(&choice.delta.content.unwrap_or_default());
        }
    }
    assert_eq!(stream.malformed(), 1, "skipped by default, and counted");
    assert_ne!(
        text, ANSWER,
        "the provider's answer lost a token; the count says so"
    );
    drop(stream);
    let breaker = m.control("primary").unwrap().breaker().metrics();
    assert_eq!(
        (breaker.calls, breaker.failed_calls),
        (1, 0),
        "a skipped event is not a failure"
    );
}

#[tokio::test(start_paused = true)]
async fn rejected_credentials_are_not_retried_and_raise_an_event() {
    let sim = Simulator::start([
        ("primary", Script::new().always(Behaviour::Status(401))),
        ("backup", Script::new()),
    ])
    .await
    .unwrap();
    let (sink, mut events) = hive_core::EventSink::channel(100);
    let spec = |model: &str| {
        let client = OpenAiClient::builder(model.to_owned(), sim.base_url())
            .build()
            .unwrap();
        ModelSpec::new(
            model.to_owned(),
            CommitLayer::new(Commit::PassThrough).layer(client),
        )
    };
    let m = ModelManager::builder()
        .classifier(OpenAiClassifier)
        .events(sink)
        .model(spec("primary"))
        .model(spec("backup"))
        .build()
        .unwrap();
    let (routed, _) = ask(&m, false).await.unwrap();
    assert_eq!(
        answered_by(&routed),
        "backup",
        "another provider's credentials may work"
    );
    assert_eq!(sim.attempts_of("primary").len(), 1, "not retried");
    let rejected: Vec<_> = events
        .drain()
        .into_iter()
        .filter(|e| matches!(e, hive_core::ResilienceEvent::CredentialsRejected { .. }))
        .collect();
    assert_eq!(rejected.len(), 1);
}
