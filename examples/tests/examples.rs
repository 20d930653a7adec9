//! Runs the axum, hyper and tonic examples (their `run`, which each example's `main` calls
//! and prints) and checks what they saw. Real loopback IO on tokio's paused clock, as the
//! examples themselves run: the timings are exact and the whole file takes well under a
//! second of real time.

use std::time::Duration;

use hive_resilience::CircuitState;
use http::StatusCode;
use tonic::Code;

#[tokio::test(start_paused = true)]
async fn axum_routes_vote_falls_back_in_order_and_chat_hedges_over_shared_stacks() {
    let (calls, provider) = hive_examples::axum_routes::run().await.unwrap();
    let calls: Vec<_> = calls
        .iter()
        .map(|(path, model, attempts, time)| {
            let (model, attempts) = (model.as_deref().unwrap(), attempts.as_deref().unwrap());
            (*path, model, attempts, time.as_millis())
        })
        .collect();
    assert_eq!(
        calls,
        [
            // gpt-4o fails twice (a retry 200 ms apart), its breaker opens, claude answers.
            ("/vote", "claude-4-sonnet", "2", 500),
            // gpt-4o skipped; deepseek's first answer is slow, claude hedged at 250 ms wins.
            ("/chat", "claude-4-sonnet", "2", 550),
            ("/vote", "claude-4-sonnet", "1", 300),
            // deepseek answers in 100 ms: no hedge.
            ("/chat", "deepseek-v3.1", "1", 100),
        ]
    );
    let calls_to = |model: &str| provider.iter().filter(|a| a.model == model).count();
    assert_eq!(
        calls_to("gpt-4o"),
        2,
        "the breaker /vote opened keeps /chat off gpt-4o: one stack per model"
    );
    assert_eq!(calls_to("claude-4-sonnet"), 3);
    assert_eq!(
        calls_to("deepseek-v3.1"),
        2,
        "the hedged-over call included"
    );
}

#[tokio::test(start_paused = true)]
async fn hyper_client_waits_what_retry_after_says_and_gets_the_200() {
    let (status, arrivals, breaker) = hive_examples::hyper_client::run().await.unwrap();
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        arrivals,
        [0, 1, 3].map(Duration::from_secs),
        "503 with Retry-After 1, then 429 with Retry-After 2, then the 200"
    );
    assert_eq!(breaker.state, CircuitState::Closed);
    assert_eq!((breaker.calls, breaker.failed_calls), (3, 2));
}

#[tokio::test(start_paused = true)]
async fn grpc_channel_retries_unavailable_but_not_invalid_argument() {
    let (answer, refused, server_calls) = hive_examples::grpc_channel::run().await.unwrap();
    assert_eq!(answer, "BIP-01: in favour");
    assert_eq!(refused, Some(Code::InvalidArgument));
    assert_eq!(
        server_calls, 4,
        "two UNAVAILABLE retried and the answer, then one INVALID_ARGUMENT not retried"
    );
}
