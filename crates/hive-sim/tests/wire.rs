//! Each behaviour of the simulator, seen by a plain hyper client over loopback.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use bytes::Bytes;
use hive_sim::{ANSWER, Behaviour, RetryAfter, Script, Simulator, long_answer};
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::{client::legacy::Client, rt::TokioExecutor};
use tokio::time::{Instant, timeout};

type HttpClient = Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>;

fn client() -> HttpClient {
    Client::builder(TokioExecutor::new()).build_http()
}

fn http2_client() -> HttpClient {
    Client::builder(TokioExecutor::new())
        .http2_only(true)
        .build_http()
}

async fn chat(
    client: &HttpClient,
    sim: &Simulator,
    model: &str,
    stream: bool,
) -> Result<http::Response<hyper::body::Incoming>, hyper_util::client::legacy::Error> {
    let messages = serde_json::json!([{"role": "user", "content": "Vote on BIP-01"}]);
    send(client, sim, model, stream, messages).await
}

/// A chat request whose last message is the assistant's `prefill`.
async fn prefilled(
    client: &HttpClient,
    sim: &Simulator,
    model: &str,
    stream: bool,
    prefill: serde_json::Value,
) -> Result<http::Response<hyper::body::Incoming>, hyper_util::client::legacy::Error> {
    let messages = serde_json::json!([
        {"role": "user", "content": "Vote on BIP-01"},
        {"role": "assistant", "content": prefill},
    ]);
    send(client, sim, model, stream, messages).await
}

async fn send(
    client: &HttpClient,
    sim: &Simulator,
    model: &str,
    stream: bool,
    messages: serde_json::Value,
) -> Result<http::Response<hyper::body::Incoming>, hyper_util::client::legacy::Error> {
    let body = format!(
        r#"{{"model":"{model}","stream":{stream},"stream_options":{{"include_usage":true}},"messages":{messages}}}"#
    );
    client
        .request(
            Request::post(format!("{}/v1/chat/completions", sim.base_url()))
                .header("content-type", "application/json")
                .body(Full::new(Bytes::from(body)))
                .unwrap(),
        )
        .await
}

async fn text(response: http::Response<hyper::body::Incoming>) -> String {
    String::from_utf8(
        response
            .into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec(),
    )
    .unwrap()
}

/// The content of an SSE stream, and whether it ended with `[DONE]` and a finish reason.
fn parse_sse(body: &str) -> (String, bool, bool, usize) {
    let (mut content, mut done, mut finished, mut malformed) = (String::new(), false, false, 0);
    for event in body.split("\n\n").filter(|e| !e.is_empty()) {
        let data = event.trim_start_matches("data: ");
        if data == "[DONE]" {
            done = true;
            continue;
        }
        match serde_json::from_str::<serde_json::Value>(data) {
            Ok(chunk) => {
                if let Some(c) = chunk["choices"][0]["delta"]["content"].as_str() {
                    content.push_str(c);
                }
                finished |= chunk["choices"][0]["finish_reason"].is_string();
            }
            Err(_) => malformed += 1,
        }
    }
    (content, done, finished, malformed)
}

#[tokio::test]
async fn healthy_answers_carry_the_known_text_streamed_or_not() {
    let sim = Simulator::start([("m", Script::new())]).await.unwrap();
    let c = client();
    let whole: serde_json::Value =
        serde_json::from_str(&text(chat(&c, &sim, "m", false).await.unwrap()).await).unwrap();
    assert_eq!(whole["choices"][0]["message"]["content"], ANSWER);
    assert_eq!(whole["model"], "m");
    assert!(whole["usage"]["total_tokens"].as_u64().unwrap() > 0);
    let streamed = chat(&c, &sim, "m", true).await.unwrap();
    assert_eq!(streamed.headers()["content-type"], "text/event-stream");
    let (content, done, finished, malformed) = parse_sse(&text(streamed).await);
    assert_eq!(
        (content.as_str(), done, finished, malformed),
        (ANSWER, true, true, 0)
    );
    let models: serde_json::Value = serde_json::from_str(
        &text(
            c.get(format!("{}/v1/models", sim.base_url()).parse().unwrap())
                .await
                .unwrap(),
        )
        .await,
    )
    .unwrap();
    assert_eq!(models["data"][0]["id"], "m");
    let log = sim.attempts();
    assert_eq!(log.len(), 3);
    assert_eq!((log[0].call, log[1].call, log[1].stream), (0, 1, true));
}

#[tokio::test]
async fn errors_have_their_status_headers_and_codes() {
    let sim = Simulator::start([
        (
            "limited",
            Script::new().always(Behaviour::RateLimited(Some(RetryAfter::Seconds(7)))),
        ),
        (
            "dated",
            Script::new().always(Behaviour::RateLimited(Some(RetryAfter::Date(
                Duration::from_secs(90),
            )))),
        ),
        (
            "bare429",
            Script::new().always(Behaviour::RateLimited(None)),
        ),
        ("overloaded", Script::new().always(Behaviour::Status(529))),
        (
            "too-long",
            Script::new().always(Behaviour::ContextLengthExceeded),
        ),
        ("filtered", Script::new().always(Behaviour::ContentFilter)),
    ])
    .await
    .unwrap();
    let c = client();
    let r = chat(&c, &sim, "limited", false).await.unwrap();
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.headers()["retry-after"], "7");
    assert_eq!(r.headers()["x-ratelimit-reset-requests"], "7s");
    let r = chat(&c, &sim, "dated", false).await.unwrap();
    let date = httpdate::parse_http_date(r.headers()["retry-after"].to_str().unwrap()).unwrap();
    let ahead = date.duration_since(std::time::SystemTime::now()).unwrap();
    assert!((88..=90).contains(&ahead.as_secs()), "{ahead:?}");
    let r = chat(&c, &sim, "bare429", false).await.unwrap();
    assert!(r.headers().get("retry-after").is_none());
    assert_eq!(
        chat(&c, &sim, "overloaded", false)
            .await
            .unwrap()
            .status()
            .as_u16(),
        529
    );
    let r = chat(&c, &sim, "too-long", false).await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(
        text(r)
            .await
            .contains("\"code\":\"context_length_exceeded\"")
    );
    let r = chat(&c, &sim, "filtered", false).await.unwrap();
    assert!(text(r).await.contains("safety system"));
    let r = chat(&c, &sim, "nobody", false).await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn broken_streams_show_how_they_broke() {
    let sim = Simulator::start([
        (
            "cut",
            Script::new().always(Behaviour::StreamCut { after_tokens: 3 }),
        ),
        (
            "malformed",
            Script::new().always(Behaviour::MalformedChunk { at: 2 }),
        ),
        ("no-done", Script::new().always(Behaviour::MissingDone)),
        (
            "impostor",
            Script::new().always(Behaviour::WrongModel("gpt-4o".into())),
        ),
    ])
    .await
    .unwrap();
    let c = client();
    let (content, done, finished, _) =
        parse_sse(&text(chat(&c, &sim, "cut", true).await.unwrap()).await);
    assert!(ANSWER.starts_with(&content) && content.len() < ANSWER.len());
    assert!(
        !done && !finished,
        "a cut stream has neither a finish reason nor [DONE]"
    );
    let (content, done, _, malformed) =
        parse_sse(&text(chat(&c, &sim, "malformed", true).await.unwrap()).await);
    assert_eq!((malformed, done), (1, true));
    assert_ne!(content, ANSWER);
    let (content, done, finished, _) =
        parse_sse(&text(chat(&c, &sim, "no-done", true).await.unwrap()).await);
    assert_eq!((content.as_str(), done, finished), (ANSWER, false, true));
    let body = text(chat(&c, &sim, "impostor", false).await.unwrap()).await;
    assert!(body.contains("\"model\":\"gpt-4o\""));
}

#[tokio::test(start_paused = true)]
async fn resets_hangs_stalls_and_slow_first_tokens() {
    let sim = Simulator::start([
        ("reset", Script::new().always(Behaviour::ResetBeforeHeaders)),
        ("hang", Script::new().always(Behaviour::Hang)),
        (
            "stall",
            Script::new().always(Behaviour::Stall { after_tokens: 2 }),
        ),
        (
            "slow",
            Script::new().always(Behaviour::SlowFirstToken(Duration::from_millis(300))),
        ),
    ])
    .await
    .unwrap();
    let c = client();
    let err = chat(&c, &sim, "reset", false).await.unwrap_err();
    assert!(
        err.to_string().contains("connection") || format!("{err:?}").contains("Incomplete"),
        "{err:?}"
    );
    assert!(
        timeout(Duration::from_millis(200), chat(&c, &sim, "hang", false))
            .await
            .is_err()
    );
    let stalled = chat(&c, &sim, "stall", true).await.unwrap();
    assert!(
        timeout(Duration::from_millis(200), text(stalled))
            .await
            .is_err(),
        "a stall never ends"
    );
    let start = Instant::now();
    let (content, ..) = parse_sse(&text(chat(&c, &sim, "slow", true).await.unwrap()).await);
    assert_eq!(start.elapsed(), Duration::from_millis(300));
    assert_eq!(content, ANSWER);
}

#[tokio::test(start_paused = true)]
async fn scripts_follow_call_numbers_and_time() {
    let sim = Simulator::start([(
        "m",
        Script::new().until_call(1, Behaviour::Status(500)).between(
            Duration::from_secs(10),
            Duration::from_secs(20),
            Behaviour::Status(503),
        ),
    )])
    .await
    .unwrap();
    let c = client();
    assert_eq!(
        chat(&c, &sim, "m", false).await.unwrap().status(),
        StatusCode::INTERNAL_SERVER_ERROR
    );
    assert_eq!(
        chat(&c, &sim, "m", false).await.unwrap().status(),
        StatusCode::OK
    );
    tokio::time::advance(Duration::from_secs(10)).await;
    assert_eq!(
        chat(&c, &sim, "m", false).await.unwrap().status(),
        StatusCode::SERVICE_UNAVAILABLE
    );
    tokio::time::advance(Duration::from_secs(10)).await;
    assert_eq!(
        chat(&c, &sim, "m", false).await.unwrap().status(),
        StatusCode::OK
    );
    let log: Vec<_> = sim
        .attempts()
        .iter()
        .map(|a| (a.call, a.at.as_secs(), a.behaviour))
        .collect();
    assert_eq!(
        log,
        [
            (0, 0, "status"),
            (1, 0, "healthy"),
            (2, 10, "status"),
            (3, 20, "healthy")
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn latency_is_fixed_or_drawn_from_a_seeded_range() {
    use hive_sim::Latency;
    let sim = Simulator::start_seeded(
        [
            (
                "fixed",
                Script::new().latency(Latency::Fixed(Duration::from_millis(250))),
            ),
            (
                "random",
                Script::new().latency(Latency::Uniform(
                    Duration::from_millis(100),
                    Duration::from_millis(200),
                )),
            ),
        ],
        9,
    )
    .await
    .unwrap();
    let c = client();
    let start = Instant::now();
    chat(&c, &sim, "fixed", false).await.unwrap();
    assert_eq!(start.elapsed(), Duration::from_millis(250));
    let mut seen = Vec::new();
    for _ in 0..5 {
        let start = Instant::now();
        chat(&c, &sim, "random", false).await.unwrap();
        seen.push(start.elapsed());
    }
    assert!(
        seen.iter()
            .all(|d| (Duration::from_millis(100)..=Duration::from_millis(201)).contains(d)),
        "{seen:?}"
    );
    assert!(seen.windows(2).any(|w| w[0] != w[1]), "{seen:?}");
}

#[tokio::test(start_paused = true)]
async fn a_reset_breaks_the_body_after_its_tokens_over_http1_and_http2() {
    let sim = Simulator::start([(
        "reset",
        Script::new().always(Behaviour::StreamReset { after_tokens: 2 }),
    )])
    .await
    .unwrap();
    for (protocol, c) in [("HTTP/1.1", client()), ("HTTP/2", http2_client())] {
        let response = chat(&c, &sim, "reset", true).await.unwrap();
        assert_eq!(
            response.status(),
            StatusCode::OK,
            "{protocol}: headers first"
        );
        let mut body = response.into_body();
        let mut received = String::new();
        let error = loop {
            match body.frame().await {
                Some(Ok(frame)) => {
                    received.push_str(std::str::from_utf8(&frame.into_data().unwrap()).unwrap())
                }
                Some(Err(error)) => break error,
                None => panic!("{protocol}: the body ended cleanly: {received}"),
            }
        };
        let (content, done, finished, _) = parse_sse(&received);
        let first_two: String = ANSWER.split_inclusive(' ').take(2).collect();
        assert_eq!(
            (content.as_str(), done, finished),
            (first_two.as_str(), false, false),
            "{protocol}"
        );
        // HTTP/1.1: the connection closed without the last chunk; HTTP/2: a stream reset.
        let shown = format!("{error:?}");
        assert!(
            shown.contains("UnexpectedEof") || shown.contains("INTERNAL_ERROR"),
            "{protocol}: {shown}"
        );

        // Unstreamed: half the answer, then the break.
        let response = chat(&c, &sim, "reset", false).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{protocol}");
        assert!(
            response.into_body().collect().await.is_err(),
            "{protocol}: the unstreamed body breaks too"
        );
    }
    assert_eq!(sim.attempts()[0].behaviour, "stream_reset");
}

#[tokio::test]
async fn a_prefill_is_continued_or_refused_and_logged() {
    let long = long_answer(60);
    let first_40: String = long.split_inclusive(' ').take(40).collect();
    let rest = &long[first_40.len()..];
    let sim = Simulator::start([
        ("long", Script::new().answer(long.clone())),
        (
            "refuser",
            Script::new().answer(long.clone()).refuse_prefill(),
        ),
        (
            "cut",
            Script::new()
                .answer(long.clone())
                .always(Behaviour::StreamCut { after_tokens: 5 }),
        ),
    ])
    .await
    .unwrap();
    let c = client();

    // Without a prefill, the whole long answer: 60 tokens, 60 content events.
    let body = text(chat(&c, &sim, "long", true).await.unwrap()).await;
    let (content, done, finished, _) = parse_sse(&body);
    assert_eq!(
        (content.as_str(), done, finished),
        (long.as_str(), true, true)
    );
    assert_eq!(body.matches("\"content\":\"w").count(), 60);

    // With the first 40 tokens as a prefill, only the other 20, streamed or not; usage
    // counts the prefill in the prompt (12 + 40) and the 20 tokens sent.
    let streamed = prefilled(&c, &sim, "long", true, first_40.clone().into())
        .await
        .unwrap();
    let body = text(streamed).await;
    let (content, done, finished, _) = parse_sse(&body);
    assert_eq!((content.as_str(), done, finished), (rest, true, true));
    assert_eq!(body.matches("\"content\":\"w").count(), 20);
    assert!(
        body.contains(r#""usage":{"completion_tokens":20,"prompt_tokens":52,"total_tokens":72}"#),
        "{body}"
    );
    let whole: serde_json::Value = serde_json::from_str(
        &text(
            prefilled(&c, &sim, "long", false, first_40.clone().into())
                .await
                .unwrap(),
        )
        .await,
    )
    .unwrap();
    assert_eq!(whole["choices"][0]["message"]["content"], rest);
    assert_eq!(whole["usage"]["completion_tokens"], 20);

    // Content parts are read as their text; a prefill that is not a prefix of the answer is
    // ignored (the whole answer comes).
    let parts = serde_json::json!([{"type": "text", "text": first_40}]);
    let (content, ..) =
        parse_sse(&text(prefilled(&c, &sim, "long", true, parts).await.unwrap()).await);
    assert_eq!(content, rest);
    let (content, ..) = parse_sse(
        &text(
            prefilled(&c, &sim, "long", true, "Something else ".into())
                .await
                .unwrap(),
        )
        .await,
    );
    assert_eq!(content, long);

    // The steps apply to the rest: a cut after 5 tokens is 5 tokens after the prefill.
    let (content, done, finished, _) = parse_sse(
        &text(
            prefilled(&c, &sim, "cut", true, first_40.clone().into())
                .await
                .unwrap(),
        )
        .await,
    );
    let five: String = rest.split_inclusive(' ').take(5).collect();
    assert_eq!(
        (content.as_str(), done, finished),
        (five.as_str(), false, false)
    );

    // A model that refuses a prefill answers 400 with Mistral's words; without one it answers.
    let refused = prefilled(&c, &sim, "refuser", true, first_40.clone().into())
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    let body = text(refused).await;
    assert!(
        body.contains("\"type\":\"invalid_request_message_order\""),
        "{body}"
    );
    assert!(body.contains("Assistant with prefix True"), "{body}");
    let (content, ..) = parse_sse(&text(chat(&c, &sim, "refuser", true).await.unwrap()).await);
    assert_eq!(content, long);

    // The log shows which request carried which prefill.
    let log = sim.attempts_of("long");
    assert_eq!(log[0].prefill, None);
    assert_eq!(log[1].prefill.as_deref(), Some(first_40.as_str()));
    assert_eq!(log[4].prefill.as_deref(), Some("Something else "));
    let refuser = sim.attempts_of("refuser");
    assert_eq!(
        (refuser[0].behaviour, refuser[0].prefill.as_deref()),
        ("prefill_refused", Some(first_40.as_str()))
    );
    assert_eq!(
        (refuser[1].behaviour, refuser[1].prefill.as_deref()),
        ("healthy", None)
    );
}
