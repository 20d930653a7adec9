//! Streams over real HTTP: abandoned versus cut, a connection broken mid-body (HTTP/1.1 and
//! HTTP/2), limits that count chunks and not keep-alives, bytes that are not UTF-8, and
//! streams that name no model. Paused time: limits are exact.

#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use hive_breaker::{CircuitBreakerConfig, CircuitBreakerLayer};
use hive_core::{CircuitState, FailureClass, Outcome};
use hive_openai::{
    ChatRequest, ChatResponse, ChatStream, OpenAiClassifier, OpenAiClient, OpenAiError,
};
use hive_sim::{ANSWER, Behaviour, Script, Simulator};
use support::{RawProvider, SSE_HEAD, chunk, delta};
use tokio::time::Instant;
use tower::{Layer, ServiceExt};

async fn stream_of(client: &OpenAiClient) -> Box<ChatStream> {
    match client
        .clone()
        .oneshot(ChatRequest::new("m", "Vote on BIP-01").streamed())
        .await
        .unwrap()
    {
        ChatResponse::Stream(stream) => stream,
        ChatResponse::Complete(_) => panic!("asked for a stream"),
    }
}

/// The chunks' text until the stream ends, and the error that ended it, if any.
async fn drain(stream: &mut ChatStream) -> (String, Option<OpenAiError>) {
    let mut text = String::new();
    while let Some(chunk) = stream.next().await {
        match chunk {
            Ok(chunk) => {
                for choice in chunk.choices {
                    text.push_str(&choice.delta.content.unwrap_or_default());
                }
            }
            Err(error) => return (text, Some(error)),
        }
    }
    (text, None)
}

#[tokio::test(start_paused = true)]
async fn an_abandoned_stream_gives_its_half_open_permit_back_and_a_cut_counts() {
    // Calls 0 and 1 are healthy (abandoned by the caller), then every stream is cut.
    let sim = Simulator::start([(
        "m",
        Script::new()
            .until_call(2, Behaviour::Healthy)
            .always(Behaviour::StreamCut { after_tokens: 3 }),
    )])
    .await
    .unwrap();
    let client = OpenAiClient::builder("m", sim.base_url()).build().unwrap();
    let layer = CircuitBreakerLayer::new(
        CircuitBreakerConfig::builder()
            .model("m")
            .half_open_permits(1)
            .build()
            .unwrap(),
    )
    .with_classifier(OpenAiClassifier);
    let service = layer.layer(client);
    let breaker = service.handle();
    breaker.half_open();
    let ask = || async {
        match service
            .clone()
            .oneshot(ChatRequest::new("m", "q").streamed())
            .await
            .unwrap()
        {
            ChatResponse::Stream(stream) => stream,
            ChatResponse::Complete(_) => panic!("asked for a stream"),
        }
    };

    for _ in 0..2 {
        let mut stream = ask().await;
        assert_eq!(
            breaker.metrics().half_open_permits_free,
            0,
            "the probe holds it"
        );
        stream.next().await.unwrap().unwrap();
        drop(stream);
        let metrics = breaker.metrics();
        assert_eq!(
            (
                metrics.state,
                metrics.half_open_permits_free,
                metrics.calls,
                metrics.failed_calls
            ),
            (CircuitState::HalfOpen, 1, 0, 0),
            "an abandoned stream gives the permit back and counts nothing"
        );
    }

    let (text, error) = drain(&mut *ask().await).await;
    assert!(ANSWER.starts_with(&text) && text.len() < ANSWER.len());
    assert_eq!(
        error.unwrap().outcome(),
        Outcome::failure(FailureClass::StreamCut)
    );
    assert_eq!(
        breaker.state(),
        CircuitState::Open,
        "a cut is the model's failure: the probe failed"
    );
}

#[tokio::test(start_paused = true)]
async fn a_stream_dropped_after_its_finish_reason_is_a_success() {
    let sim = Simulator::start([("m", Script::new())]).await.unwrap();
    let client = OpenAiClient::builder("m", sim.base_url()).build().unwrap();
    let layer =
        CircuitBreakerLayer::new(CircuitBreakerConfig::builder().model("m").build().unwrap())
            .with_classifier(OpenAiClassifier);
    let service = layer.layer(client);
    let breaker = service.handle();
    let ChatResponse::Stream(mut stream) = service
        .oneshot(ChatRequest::new("m", "q").streamed())
        .await
        .unwrap()
    else {
        panic!("asked for a stream")
    };
    loop {
        let chunk = stream.next().await.unwrap().unwrap();
        if chunk.choices.iter().any(|c| c.finish_reason.is_some()) {
            break;
        }
    }
    assert_eq!(breaker.metrics().calls, 0, "not recorded before the drop");
    drop(stream);
    let metrics = breaker.metrics();
    assert_eq!(
        (metrics.calls, metrics.failed_calls),
        (1, 0),
        "a whole answer, though `[DONE]` was not awaited"
    );
}

#[tokio::test(start_paused = true)]
async fn a_connection_broken_mid_body_is_a_cut_over_http1_and_http2() {
    let sim = Simulator::start([
        (
            "m",
            Script::new().always(Behaviour::StreamReset { after_tokens: 3 }),
        ),
        (
            "clean",
            Script::new().always(Behaviour::StreamCut { after_tokens: 3 }),
        ),
    ])
    .await
    .unwrap();
    let first_three: String = ANSWER.split_inclusive(' ').take(3).collect();
    for http2 in [false, true] {
        let client = |model: &str| {
            OpenAiClient::builder(model.to_owned(), sim.base_url())
                .http2_prior_knowledge(http2)
                .build()
                .unwrap()
        };
        let (text, error) = drain(&mut *stream_of(&client("m")).await).await;
        assert_eq!(text, first_three, "http2: {http2}");
        let error = error.unwrap();
        let OpenAiError::StreamCut {
            chunks: 3,
            source: Some(_),
            ..
        } = &error
        else {
            panic!("a reset after 3 chunks is a cut keeping its cause: {error:?}")
        };
        assert_eq!(error.outcome(), Outcome::failure(FailureClass::StreamCut));
        assert_eq!(
            error.to_string(),
            "model `m`'s answer was cut short after 3 chunks"
        );

        // Unstreamed: half the body, then the break.
        let error = client("m")
            .oneshot(ChatRequest::new("m", "q"))
            .await
            .unwrap_err();
        assert!(
            matches!(
                error,
                OpenAiError::StreamCut {
                    chunks: 0,
                    source: Some(_),
                    ..
                }
            ),
            "http2: {http2}: {error:?}"
        );

        // A clean early end is a cut too, without a transport error.
        let (text, error) = drain(&mut *stream_of(&client("clean")).await).await;
        assert_eq!(text, first_three);
        assert!(
            matches!(
                error,
                Some(OpenAiError::StreamCut {
                    chunks: 3,
                    source: None,
                    ..
                })
            ),
            "{error:?}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn keep_alives_trip_the_first_token_and_idle_limits() {
    let pings =
        RawProvider::repeat(SSE_HEAD, chunk(b": ping\n\n"), Duration::from_millis(50)).await;
    let client = OpenAiClient::builder("m", pings.base_url())
        .first_token_timeout(Duration::from_millis(300))
        .idle_timeout(Duration::from_millis(300))
        .total_timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    let start = Instant::now();
    let (_, error) = drain(&mut *stream_of(&client).await).await;
    assert!(
        matches!(error, Some(OpenAiError::FirstToken { .. })),
        "{error:?}"
    );
    assert_eq!(start.elapsed(), Duration::from_millis(300));

    // One token, then pings only: stalled 300 ms after the token.
    let mut pieces = vec![chunk(&delta("m", "Yes", false))];
    pieces.extend(std::iter::repeat_n(chunk(b":\n\n"), 40));
    let token_then_pings = RawProvider::trickle(SSE_HEAD, pieces, Duration::from_millis(50)).await;
    let client = OpenAiClient::builder("m", token_then_pings.base_url())
        .first_token_timeout(Duration::from_millis(300))
        .idle_timeout(Duration::from_millis(300))
        .total_timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    let start = Instant::now();
    let (text, error) = drain(&mut *stream_of(&client).await).await;
    assert_eq!(text, "Yes");
    assert!(
        matches!(error, Some(OpenAiError::Stalled { .. })),
        "{error:?}"
    );
    assert_eq!(start.elapsed(), Duration::from_millis(300));
}

#[tokio::test(start_paused = true)]
async fn an_event_trickled_a_byte_at_a_time_never_restarts_the_limits() {
    let bytes = b"data: {\"model\":\"m\",\"choices\":[]"
        .iter()
        .map(|b| chunk(&[*b]))
        .collect();
    let trickle = RawProvider::trickle(SSE_HEAD, bytes, Duration::from_millis(100)).await;
    let client = OpenAiClient::builder("m", trickle.base_url())
        .first_token_timeout(Duration::from_millis(500))
        .total_timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let start = Instant::now();
    let (_, error) = drain(&mut *stream_of(&client).await).await;
    assert!(
        matches!(error, Some(OpenAiError::FirstToken { .. })),
        "{error:?}"
    );
    assert_eq!(start.elapsed(), Duration::from_millis(500));
}

#[tokio::test(start_paused = true)]
async fn keep_alives_with_bytes_that_are_not_utf8_spoil_nothing() {
    let mut body = Vec::new();
    for (i, word) in ["The ", "vote ", "passes."].iter().enumerate() {
        body.extend(chunk(b":\x80\xff\n\n"));
        body.extend(chunk(&delta("m", word, i == 2)));
    }
    body.extend(chunk(b"event: done\nid: 9\ndata: [DONE]\n\n"));
    body.extend(chunk(b""));
    let provider = RawProvider::trickle(SSE_HEAD, vec![body], Duration::ZERO).await;
    // Strict: a keep-alive read as data would fail the stream.
    let client = OpenAiClient::builder("m", provider.base_url())
        .skip_malformed(false)
        .build()
        .unwrap();
    let mut stream = stream_of(&client).await;
    let (text, error) = drain(&mut stream).await;
    assert!(error.is_none(), "{error:?}");
    assert_eq!((text.as_str(), stream.malformed()), ("The vote passes.", 0));
}

#[tokio::test(start_paused = true)]
async fn a_stream_must_name_its_model_on_its_first_chunk_unless_told_otherwise() {
    let body = |first: &str, rest: &str| {
        let mut body = chunk(&delta(first, "The ", false));
        body.extend(chunk(&delta(rest, "vote passes.", true)));
        body.extend(chunk(b"data: [DONE]\n\n"));
        body.extend(chunk(b""));
        vec![body]
    };
    let unnamed = RawProvider::trickle(SSE_HEAD, body("", ""), Duration::ZERO).await;
    let client = OpenAiClient::builder("m", unnamed.base_url())
        .build()
        .unwrap();
    let (text, error) = drain(&mut *stream_of(&client).await).await;
    let error = error.unwrap();
    assert_eq!(text, "", "nothing is given out");
    assert!(
        matches!(&error, OpenAiError::IdentityMismatch { answered: None, .. }),
        "{error:?}"
    );
    assert_eq!(
        error.to_string(),
        "asked model `m`, but the answer named no model"
    );
    assert_eq!(
        error.outcome(),
        Outcome::failure(FailureClass::IdentityMismatch)
    );

    let lenient = OpenAiClient::builder("m", unnamed.base_url())
        .accept_unnamed_stream(true)
        .build()
        .unwrap();
    let (text, error) = drain(&mut *stream_of(&lenient).await).await;
    assert_eq!((text.as_str(), error.is_none()), ("The vote passes.", true));

    let named_then_not = RawProvider::trickle(SSE_HEAD, body("m", ""), Duration::ZERO).await;
    let client = OpenAiClient::builder("m", named_then_not.base_url())
        .build()
        .unwrap();
    let (text, error) = drain(&mut *stream_of(&client).await).await;
    assert_eq!((text.as_str(), error.is_none()), ("The vote passes.", true));

    // Leniency is about missing names: a wrong name still fails, first chunk or later.
    let renamed = RawProvider::trickle(SSE_HEAD, body("", "gpt-4o"), Duration::ZERO).await;
    let client = OpenAiClient::builder("m", renamed.base_url())
        .accept_unnamed_stream(true)
        .build()
        .unwrap();
    let (text, error) = drain(&mut *stream_of(&client).await).await;
    assert_eq!(text, "The ");
    assert!(
        matches!(&error, Some(OpenAiError::IdentityMismatch { answered: Some(name), .. }) if name == "gpt-4o"),
        "{error:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn done_without_a_finish_reason_is_a_cut() {
    let mut body = chunk(&delta("m", "The vote ", false));
    body.extend(chunk(b"data: [DONE]\n\n"));
    body.extend(chunk(b""));
    let provider = RawProvider::trickle(SSE_HEAD, vec![body], Duration::ZERO).await;
    let client = OpenAiClient::builder("m", provider.base_url())
        .build()
        .unwrap();
    let (text, error) = drain(&mut *stream_of(&client).await).await;
    assert_eq!(text, "The vote ");
    match error {
        Some(error @ OpenAiError::StreamCut { chunks: 1, .. }) => {
            assert_eq!(error.outcome(), Outcome::failure(FailureClass::StreamCut));
        }
        other => panic!("a truncated answer must not end well: {other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn a_providers_error_event_is_a_failure_with_its_class_never_a_malformed_chunk() {
    // LiteLLM's proxy: the status as the code, "None" for what it does not know.
    let litellm = br#"data: {"error": {"message": "Rate limit reached", "type": "None", "param": "None", "code": "429"}}"#;
    // OpenAI's own shape, and the bare string some servers send.
    let openai = br#"data: {"error": {"message": "The server had an error", "type": "server_error", "param": null, "code": null}}"#;
    let bare = br#"data: {"error": "thinking_budget is not supported"}"#;
    for (event, outcome) in [
        (&litellm[..], Outcome::failure(FailureClass::RateLimited)),
        (&openai[..], Outcome::failure(FailureClass::Unavailable)),
        (&bare[..], Outcome::failure(FailureClass::Unavailable)),
    ] {
        let mut body = chunk(&delta("m", "The vote ", false));
        let mut error_event = event.to_vec();
        error_event.extend(b"\n\n");
        body.extend(chunk(&error_event));
        body.extend(chunk(&delta("m", "never read", true)));
        let provider = RawProvider::trickle(SSE_HEAD, vec![body], Duration::ZERO).await;
        // Malformed events would be skipped: an error event must not be.
        let client = OpenAiClient::builder("m", provider.base_url())
            .skip_malformed(true)
            .build()
            .unwrap();
        let mut stream = stream_of(&client).await;
        let (text, error) = drain(&mut stream).await;
        assert_eq!(text, "The vote ");
        let error = error.expect("an error event fails the stream");
        assert!(
            matches!(error, OpenAiError::ErrorEvent { chunks: 1, .. }),
            "{error:?}"
        );
        assert_eq!(error.outcome(), outcome, "{error:?}");
        assert_eq!(stream.malformed(), 0);
    }
}

#[tokio::test(start_paused = true)]
async fn a_connection_broken_after_the_finish_reason_leaves_a_whole_answer() {
    // The whole answer with its finish reason, then the connection closes without the
    // chunked body's last chunk (and without `[DONE]`).
    let provider = RawProvider::start(|mut socket| async move {
        use tokio::io::AsyncWriteExt;
        let mut bytes = format!("{SSE_HEAD}\r\n\r\n").into_bytes();
        bytes.extend(chunk(&delta("m", "The vote ", false)));
        bytes.extend(chunk(&delta("m", "passes.", true)));
        let _ = socket.write_all(&bytes).await;
    })
    .await;
    let client = OpenAiClient::builder("m", provider.base_url())
        .build()
        .unwrap();
    let (text, error) = drain(&mut *stream_of(&client).await).await;
    assert!(error.is_none(), "{error:?}");
    assert_eq!(text, "The vote passes.");
}

#[tokio::test(start_paused = true)]
async fn stream_metrics_count_first_tokens_cuts_and_stalls() {
    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new()
        .set_buckets(&[0.1, 0.5, 1.0])
        .unwrap()
        .build_recorder();
    let _local = metrics::set_default_local_recorder(&recorder);
    let sim = Simulator::start([
        (
            "slow",
            Script::new().always(Behaviour::SlowFirstToken(Duration::from_millis(250))),
        ),
        (
            "cut",
            Script::new().always(Behaviour::StreamCut { after_tokens: 2 }),
        ),
        (
            "stall",
            Script::new().always(Behaviour::Stall { after_tokens: 2 }),
        ),
    ])
    .await
    .unwrap();
    let client = |model: &'static str| {
        OpenAiClient::builder(model, sim.base_url())
            .idle_timeout(Duration::from_secs(1))
            .metrics(true)
            .build()
            .unwrap()
    };
    let (text, error) = drain(&mut *stream_of(&client("slow")).await).await;
    assert_eq!((text.as_str(), error.is_none()), (ANSWER, true));
    assert!(matches!(
        drain(&mut *stream_of(&client("cut")).await).await.1,
        Some(OpenAiError::StreamCut { .. })
    ));
    assert!(matches!(
        drain(&mut *stream_of(&client("stall")).await).await.1,
        Some(OpenAiError::Stalled { .. })
    ));
    let rendered = recorder.handle().render();
    let value = |series: &str| -> f64 {
        rendered
            .lines()
            .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
            .unwrap_or_else(|| panic!("no `{series}` in:\n{rendered}"))
            .parse()
            .unwrap()
    };
    // The first token came 250 ms after the request: in the 0.5 s bucket, not the 0.1 s.
    assert_eq!(
        value(r#"hive_stream_first_token_seconds_bucket{model="slow",le="0.1"}"#),
        0.0
    );
    assert_eq!(
        value(r#"hive_stream_first_token_seconds_bucket{model="slow",le="0.5"}"#),
        1.0
    );
    assert_eq!(value(r#"hive_stream_cuts_total{model="cut"}"#), 1.0);
    assert_eq!(value(r#"hive_stream_stalls_total{model="stall"}"#), 1.0);
    assert_eq!(value(r#"hive_stream_cuts_total{model="slow"}"#), 0.0);
}
