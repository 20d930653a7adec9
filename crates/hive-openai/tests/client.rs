//! The client against the simulator over real HTTP: one test per provider behaviour
//! (paused time: limits and waits are exact).

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use hive_core::{ClientErrorClass, FailureClass, Outcome};
use hive_openai::{ApiKey, ChatRequest, ChatResponse, OpenAiClient, OpenAiError};
use hive_sim::{ANSWER, Behaviour, RetryAfter, Script, Simulator};
use tokio::time::Instant;
use tower::ServiceExt;

async fn sim(script: Script) -> Simulator {
    Simulator::start([("m", script)]).await.unwrap()
}

fn client(sim: &Simulator) -> OpenAiClient {
    OpenAiClient::builder("m", sim.base_url())
        .api_key(ApiKey::new("sk-secret-never-shown"))
        .first_token_timeout(Duration::from_secs(2))
        .idle_timeout(Duration::from_secs(1))
        .total_timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

async fn ask(client: &OpenAiClient, stream: bool) -> Result<String, OpenAiError> {
    let request = ChatRequest::new("m", "Vote on BIP-01");
    let request = if stream { request.streamed() } else { request };
    match client.clone().oneshot(request).await? {
        ChatResponse::Complete(answer) => Ok(answer.text().to_owned()),
        ChatResponse::Stream(stream) => stream.collect_text().await,
    }
}

fn outcome(result: Result<String, OpenAiError>) -> Outcome {
    result.map_or_else(|e| e.outcome(), |_| Outcome::Success)
}

#[tokio::test(start_paused = true)]
async fn healthy_answers_whole_and_streamed_with_usage() {
    let sim = sim(Script::new()).await;
    let c = client(&sim);
    assert_eq!(ask(&c, false).await.unwrap(), ANSWER);
    assert_eq!(ask(&c, true).await.unwrap(), ANSWER);
    let ChatResponse::Stream(mut stream) = c
        .clone()
        .oneshot(ChatRequest::new("m", "q").streamed())
        .await
        .unwrap()
    else {
        panic!("asked for a stream")
    };
    while stream.next().await.is_some() {}
    assert!(stream.usage().unwrap().total_tokens > 0);
    assert_eq!(c.list_models().await.unwrap(), ["m"]);
}

#[tokio::test(start_paused = true)]
async fn rate_limits_carry_their_wait_and_server_errors_their_class() {
    let sim = Simulator::start([
        (
            "m",
            Script::new().always(Behaviour::RateLimited(Some(RetryAfter::Seconds(7)))),
        ),
        ("o", Script::new().always(Behaviour::Status(529))),
        ("u", Script::new().always(Behaviour::Status(503))),
    ])
    .await
    .unwrap();
    assert_eq!(
        outcome(ask(&client(&sim), false).await),
        Outcome::Failure {
            class: FailureClass::RateLimited,
            retry_after: Some(Duration::from_secs(7))
        }
    );
    let other = |m: &str| {
        OpenAiClient::builder(m.to_owned(), sim.base_url())
            .build()
            .unwrap()
    };
    let e = other("o")
        .oneshot(ChatRequest::new("o", "q"))
        .await
        .unwrap_err();
    assert_eq!(e.outcome(), Outcome::failure(FailureClass::Overloaded));
    let e = other("u")
        .oneshot(ChatRequest::new("u", "q"))
        .await
        .unwrap_err();
    assert_eq!(e.outcome(), Outcome::failure(FailureClass::Unavailable));
}

#[tokio::test(start_paused = true)]
async fn client_errors_are_classed_and_keep_the_providers_reason() {
    let too_long = sim(Script::new().always(Behaviour::ContextLengthExceeded)).await;
    assert_eq!(
        outcome(ask(&client(&too_long), false).await),
        Outcome::ClientError(ClientErrorClass::ContextLengthExceeded)
    );
    let filtered = sim(Script::new().always(Behaviour::ContentFilter)).await;
    let e = ask(&client(&filtered), false).await.unwrap_err();
    assert_eq!(
        e.outcome(),
        Outcome::ClientError(ClientErrorClass::ContentPolicy)
    );
    let OpenAiError::Status {
        provider_message, ..
    } = &e
    else {
        panic!("{e:?}")
    };
    assert!(provider_message.contains("safety system"), "{e:?}");
}

#[tokio::test(start_paused = true)]
async fn connection_failures_and_silence_are_availability_failures() {
    let reset = sim(Script::new().always(Behaviour::ResetBeforeHeaders)).await;
    assert_eq!(
        outcome(ask(&client(&reset), false).await),
        Outcome::failure(FailureClass::Connect)
    );
    let hang = sim(Script::new().always(Behaviour::Hang)).await;
    let start = Instant::now();
    assert_eq!(
        outcome(ask(&client(&hang), false).await),
        Outcome::failure(FailureClass::Timeout)
    );
    assert_eq!(
        start.elapsed(),
        Duration::from_secs(2),
        "the first-token limit"
    );
    let refused = OpenAiClient::builder("m", "http://127.0.0.1:1")
        .build()
        .unwrap();
    assert_eq!(
        outcome(ask(&refused, false).await),
        Outcome::failure(FailureClass::Connect)
    );
}

#[tokio::test(start_paused = true)]
async fn streams_are_only_a_success_when_they_end_well() {
    let cut = sim(Script::new().always(Behaviour::StreamCut { after_tokens: 3 })).await;
    let e = ask(&client(&cut), true).await.unwrap_err();
    assert_eq!(
        e.outcome(),
        Outcome::failure(FailureClass::StreamCut),
        "never a truncated success"
    );
    let stall = sim(Script::new().always(Behaviour::Stall { after_tokens: 2 })).await;
    let start = Instant::now();
    let e = ask(&client(&stall), true).await.unwrap_err();
    assert_eq!(e.outcome(), Outcome::failure(FailureClass::StreamStalled));
    assert_eq!(start.elapsed(), Duration::from_secs(1), "the idle limit");
    let slow = sim(Script::new().always(Behaviour::SlowFirstToken(Duration::from_secs(5)))).await;
    assert_eq!(
        outcome(ask(&client(&slow), true).await),
        Outcome::failure(FailureClass::Timeout)
    );
    let no_done = sim(Script::new().always(Behaviour::MissingDone)).await;
    assert_eq!(
        ask(&client(&no_done), true).await.unwrap(),
        ANSWER,
        "finished at once"
    );
}

#[tokio::test(start_paused = true)]
async fn malformed_events_are_skipped_and_counted_or_fail_by_setting() {
    let bad = sim(Script::new().always(Behaviour::MalformedChunk { at: 2 })).await;
    let ChatResponse::Stream(mut stream) = client(&bad)
        .oneshot(ChatRequest::new("m", "q").streamed())
        .await
        .unwrap()
    else {
        panic!()
    };
    while let Some(chunk) = stream.next().await {
        chunk.unwrap();
    }
    assert_eq!(stream.malformed(), 1);
    let strict = OpenAiClient::builder("m", bad.base_url())
        .skip_malformed(false)
        .build()
        .unwrap();
    assert_eq!(
        outcome(ask(&strict, true).await),
        Outcome::failure(FailureClass::Malformed)
    );
}

#[tokio::test(start_paused = true)]
async fn an_answer_from_another_model_is_an_identity_failure() {
    let impostor = sim(Script::new().always(Behaviour::WrongModel("gpt-4o".into()))).await;
    for stream in [false, true] {
        let e = ask(&client(&impostor), stream).await.unwrap_err();
        assert_eq!(
            e.outcome(),
            Outcome::failure(FailureClass::IdentityMismatch)
        );
        assert_eq!(e.to_string(), "asked model `m`, answered by `gpt-4o`");
    }
    let aliased = OpenAiClient::builder("m", impostor.base_url())
        .alias("gpt-4o")
        .build()
        .unwrap();
    assert_eq!(ask(&aliased, false).await.unwrap(), ANSWER);
}

#[tokio::test(start_paused = true)]
async fn the_api_key_never_shows() {
    let sim = sim(Script::new().always(Behaviour::Status(401))).await;
    let c = client(&sim);
    let e = ask(&c, false).await.unwrap_err();
    assert_eq!(
        e.outcome(),
        Outcome::ClientError(ClientErrorClass::Unauthorized)
    );
    for text in [format!("{c:?}"), format!("{e:?}"), e.to_string()] {
        assert!(!text.contains("sk-secret"), "{text}");
    }
    assert!(format!("{c:?}").contains("ApiKey(***)"));
    let bad = OpenAiClient::builder("m", "ftp://example")
        .build()
        .unwrap_err();
    assert_eq!(bad.field, "base_url");
}

#[tokio::test(start_paused = true)]
async fn http2_with_prior_knowledge_and_invalid_json_bodies() {
    let sim = sim(Script::new()).await;
    let h2 = OpenAiClient::builder("m", sim.base_url())
        .http2_prior_knowledge(true)
        .build()
        .unwrap();
    assert_eq!(ask(&h2, false).await.unwrap(), ANSWER);
    assert_eq!(ask(&h2, true).await.unwrap(), ANSWER);
    // An unstreamed answer cut in the middle is invalid JSON: malformed, not a success.
    let broken = Simulator::start([(
        "m",
        Script::new().always(Behaviour::StreamCut { after_tokens: 1 }),
    )])
    .await
    .unwrap();
    assert_eq!(
        outcome(ask(&client(&broken), false).await),
        Outcome::failure(FailureClass::Malformed)
    );
}

#[tokio::test(start_paused = true)]
async fn a_request_may_ask_for_its_own_commit_policy() {
    use hive_openai::{Commit, CommitLayer};
    use tower::Layer;
    let sim = sim(Script::new()).await;
    let layered = CommitLayer::new(Commit::PassThrough).layer(client(&sim));
    let streamed = ChatRequest::new("m", "Vote on BIP-01").streamed();
    let passed = layered.clone().oneshot(streamed.clone()).await.unwrap();
    assert!(
        matches!(passed, ChatResponse::Stream(_)),
        "the layer's own policy"
    );
    let mut buffered = streamed;
    buffered.commit = Some(Commit::Buffered);
    match layered.oneshot(buffered).await.unwrap() {
        ChatResponse::Complete(answer) => assert_eq!(answer.text(), ANSWER),
        ChatResponse::Stream(_) => panic!("the request asked for a whole answer"),
    }
}

#[tokio::test(start_paused = true)]
async fn a_model_known_upstream_by_another_name_is_asked_and_answers_by_it() {
    let sim = sim(Script::new()).await;
    let routed = OpenAiClient::builder("openrouter/m", sim.base_url())
        .upstream_name("m")
        .build()
        .unwrap();
    assert_eq!(routed.model().as_str(), "openrouter/m");
    for stream in [false, true] {
        assert_eq!(ask(&routed, stream).await.unwrap(), ANSWER);
    }
    let asked: Vec<String> = sim.attempts().into_iter().map(|a| a.model).collect();
    assert_eq!(asked, ["m", "m"]);
    let refused = OpenAiClient::builder("x", sim.base_url())
        .upstream_name("bad\nname")
        .build()
        .unwrap_err();
    assert_eq!(refused.field, "upstream_name");
}
