//! The gateway end to end: a real HTTP client, the gateway from its config files, a
//! simulated provider, all on loopback. One test per answer a client can get.

#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use bytes::Bytes;
use hive_config::Environment;
use hive_gateway::server::{ConfigSource, Options, Server};
use hive_sim::{ANSWER, Behaviour, Latency, RetryAfter, Script};
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::{client::legacy::Client, rt::TokioExecutor};
use support::{Harness, ask};

/// Short limits, one attempt per model (the router falls back at once), no health checks.
const RESILIENCE: &str = r#"
server:
  body_limit: 2KiB
  api_keys:
    - { env: HIVE_CLIENT_KEY }
defaults:
  retry:
    max_attempts: 1
  health:
    probe: none
  timeouts:
    attempt: 2s
    first_token: 1s
    idle: 1s
    request: 5s
alerts:
  rules: []
audit:
  path: off
"#;

const MODELS: &str = r#"
models:
  - id: gpt-4o
    base_url: "{sim}"
    api_key: { env: UPSTREAM_KEY }
  - id: claude-4-sonnet
    base_url: "{sim}"
    accepts_prefill: true
  - id: deepseek-v3.1
    base_url: "{sim}"
    accepts_prefill: true
  - pattern: "openrouter/*"
    strip_prefix: "openrouter/"
    base_url: "{sim}"
routes:
  - name: council
    models: [gpt-4o, claude-4-sonnet, deepseek-v3.1]
  - name: polite
    models: [gpt-4o]
    degraded: "Every model is busy; please try again."
  - name: strict
    models: [deepseek-v3.1]
    timeout: 1s
  - name: brisk
    models: [claude-4-sonnet, deepseek-v3.1]
    timeout: 1500ms
"#;

const KEY: &str = "hive-client-key-0123456789";
const UPSTREAM_KEY: &str = "sk-upstream-secret-never-shown";

async fn harness(test: &str, models: Vec<(&str, Script)>) -> Harness {
    Harness::start(
        test,
        models,
        RESILIENCE,
        MODELS,
        &[("HIVE_CLIENT_KEY", KEY), ("UPSTREAM_KEY", UPSTREAM_KEY)],
    )
    .await
}

fn healthy() -> Vec<(&'static str, Script)> {
    vec![
        ("gpt-4o", Script::new()),
        ("claude-4-sonnet", Script::new()),
        ("deepseek-v3.1", Script::new()),
        ("meta-llama/llama-3.1-70b", Script::new()),
    ]
}

#[tokio::test]
async fn a_route_answers_whole_with_who_answered_in_the_headers() {
    let h = harness("whole", healthy()).await;
    let answer = h.chat(&ask("council", false), Some(KEY)).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert_eq!(answer.header("content-type"), Some("application/json"));
    assert_eq!(answer.header("x-hive-route"), Some("council"));
    assert_eq!(answer.header("x-hive-model"), Some("gpt-4o"));
    assert_eq!(answer.header("x-hive-attempts"), Some("1"));
    assert_eq!(answer.json()["choices"][0]["message"]["content"], ANSWER);
    let asked = h.sim.attempts();
    assert_eq!(asked.len(), 1);
    assert_eq!(asked[0].model, "gpt-4o");
}

/// Workers (`hive serve --workers`): requests over many connections are answered, whole
/// and streamed, and a shutdown ends every worker gracefully and frees the port.
#[tokio::test]
async fn workers_serve_every_connection_and_stop_gracefully() {
    let h = Harness::start_with(
        "workers",
        healthy(),
        RESILIENCE,
        MODELS,
        &[("HIVE_CLIENT_KEY", KEY), ("UPSTREAM_KEY", UPSTREAM_KEY)],
        |options| options.workers = 2,
    )
    .await;
    assert_eq!(
        hive_core::worker::slots(),
        3,
        "two workers and the shared runtime"
    );
    let calls = (0..24).map(|n| {
        let h = &h;
        async move {
            // A fresh client each: a connection each, spread over the workers' listeners.
            let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
            let request = Request::post(h.url("/v1/chat/completions"))
                .header("authorization", format!("Bearer {KEY}"))
                .header("content-type", "application/json")
                .body(Full::new(Bytes::from(ask("council", n % 2 == 0))))
                .unwrap();
            let response = client.request(request).await.unwrap();
            let status = response.status();
            let body = response.into_body().collect().await.unwrap().to_bytes();
            (n, status, String::from_utf8_lossy(&body).into_owned())
        }
    });
    for (n, status, body) in futures_util::future::join_all(calls).await {
        assert_eq!(status, StatusCode::OK, "{body}");
        let end = if n % 2 == 0 { "data: [DONE]" } else { ANSWER };
        assert!(body.contains(end), "request {n}: {body}");
    }
    assert_eq!(
        h.sim.attempts().len(),
        24,
        "each request reached one model once"
    );
    let addr = h.server.local_addr();
    let second = Server::start(
        ConfigSource::Dir(h.dir.clone()),
        Options {
            listen: Some(addr),
            env: Environment::vars([("HIVE_CLIENT_KEY", KEY), ("UPSTREAM_KEY", UPSTREAM_KEY)]),
            watch: false,
            workers: 2,
            ..Options::default()
        },
    )
    .await;
    let refused = second
        .expect_err("a second gateway on the same port")
        .to_string();
    assert!(
        refused.starts_with(&format!("could not listen on {addr}")),
        "{refused}"
    );
    assert!(
        h.server.shutdown().await,
        "every request finished within the grace"
    );
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "no worker listens after the shutdown"
    );
}

#[tokio::test]
async fn a_route_streams_a_whole_answer_ending_with_done() {
    let h = harness("stream", healthy()).await;
    let answer = h.chat(&ask("council", true), Some(KEY)).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.header("content-type"), Some("text/event-stream"));
    assert_eq!(answer.header("x-hive-model"), Some("gpt-4o"));
    assert_eq!(answer.streamed_text(), (ANSWER.to_owned(), true));
    assert!(h.sim.attempts()[0].stream);
}

#[tokio::test]
async fn a_down_model_falls_back_to_the_next_in_one_request() {
    let mut models = healthy();
    models[0].1 = Script::new().always(Behaviour::Status(503));
    let h = harness("failover", models).await;
    for stream in [false, true] {
        let answer = h.chat(&ask("council", stream), Some(KEY)).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
        assert_eq!(answer.header("x-hive-model"), Some("claude-4-sonnet"));
        assert_eq!(answer.header("x-hive-attempts"), Some("2"));
    }
}

#[tokio::test]
async fn a_stream_cut_mid_answer_is_continued_by_a_model_that_takes_a_prefill() {
    let mut models = healthy();
    models[0].1 = Script::new().always(Behaviour::Status(503));
    models[1].1 = Script::new().always(Behaviour::StreamCut { after_tokens: 3 });
    let h = harness("continue", models).await;
    let answer = h.chat(&ask("council", true), Some(KEY)).await;
    assert_eq!(answer.status, StatusCode::OK);
    let (text, done) = answer.streamed_text();
    assert_eq!(text, ANSWER, "one whole answer from two models");
    assert!(done);
    assert_eq!(h.server.gateway().continuations(), 1);
    let deepseek = h.sim.attempts_of("deepseek-v3.1");
    assert_eq!(deepseek.len(), 1);
    let prefill = deepseek[0].prefill.as_deref().unwrap();
    assert!(
        ANSWER.starts_with(prefill) && !prefill.is_empty(),
        "{prefill:?}"
    );
}

#[tokio::test]
async fn every_model_rate_limited_is_a_429_with_the_shortest_wait() {
    let limited =
        |secs| Script::new().always(Behaviour::RateLimited(Some(RetryAfter::Seconds(secs))));
    let h = harness(
        "limited",
        vec![
            ("gpt-4o", limited(40)),
            ("claude-4-sonnet", limited(7)),
            ("deepseek-v3.1", limited(20)),
        ],
    )
    .await;
    let answer = h.chat(&ask("council", false), Some(KEY)).await;
    assert_eq!(
        answer.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{}",
        answer.body
    );
    assert_eq!(answer.header("retry-after"), Some("7"));
    assert_eq!(answer.header("x-hive-attempts"), Some("3"));
    assert_eq!(answer.json()["error"]["code"], "rate_limit_exceeded");
    assert_eq!(answer.json()["error"]["type"], "rate_limit_error");
}

#[tokio::test]
async fn every_model_down_is_a_503_and_the_degraded_route_answers_anyway() {
    let down = || Script::new().always(Behaviour::Status(503));
    let h = harness(
        "down",
        vec![
            ("gpt-4o", down()),
            ("claude-4-sonnet", down()),
            ("deepseek-v3.1", down()),
        ],
    )
    .await;
    let answer = h.chat(&ask("council", false), Some(KEY)).await;
    assert_eq!(
        answer.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        answer.body
    );
    assert_eq!(answer.json()["error"]["code"], "model_unavailable");
    let polite = h.chat(&ask("polite", false), Some(KEY)).await;
    assert_eq!(polite.status, StatusCode::OK);
    assert_eq!(polite.header("x-hive-degraded"), Some("true"));
    assert_eq!(
        polite.json()["choices"][0]["message"]["content"],
        "Every model is busy; please try again."
    );
    let streamed = h.chat(&ask("polite", true), Some(KEY)).await;
    assert_eq!(
        streamed.streamed_text(),
        ("Every model is busy; please try again.".to_owned(), true)
    );
}

#[tokio::test]
async fn a_route_past_its_deadline_is_a_504() {
    let mut models = healthy();
    models[2].1 = Script::new().latency(Latency::Fixed(Duration::from_secs(3)));
    let h = harness("deadline", models).await;
    let started = tokio::time::Instant::now();
    let answer = h.chat(&ask("strict", false), Some(KEY)).await;
    assert_eq!(
        answer.status,
        StatusCode::GATEWAY_TIMEOUT,
        "{}",
        answer.body
    );
    assert_eq!(answer.json()["error"]["code"], "deadline_exceeded");
    let took = started.elapsed();
    assert!(
        took >= Duration::from_secs(1) && took < Duration::from_millis(1_500),
        "{took:?}"
    );
}

#[tokio::test]
async fn a_missing_or_wrong_key_is_a_401_and_never_reaches_a_model() {
    let h = harness("auth", healthy()).await;
    for key in [None, Some("wrong"), Some("hive-client-key-012345678")] {
        let answer = h.chat(&ask("council", false), key).await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{key:?}");
        assert_eq!(answer.header("www-authenticate"), Some("Bearer"));
        assert_eq!(answer.json()["error"]["code"], "invalid_api_key");
    }
    let models = h.get("/v1/models").await;
    assert_eq!(models.status, StatusCode::UNAUTHORIZED);
    assert!(h.sim.attempts().is_empty());
}

#[tokio::test]
async fn an_unknown_model_is_a_404_naming_it() {
    let h = harness("unknown", healthy()).await;
    let answer = h.chat(&ask("gpt-5-imaginary", false), Some(KEY)).await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
    assert_eq!(answer.json()["error"]["code"], "model_not_found");
    assert!(answer.body.contains("gpt-5-imaginary"), "{}", answer.body);
    assert!(h.sim.attempts().is_empty());
}

#[tokio::test]
async fn malformed_requests_are_400s_naming_what_is_wrong() {
    let h = harness("malformed", healthy()).await;
    for (body, param) in [
        ("{not json", None),
        (r#"{"model": "council", "messages": []}"#, Some("messages")),
        (
            r#"{"model": "", "messages": [{"role": "user", "content": "x"}]}"#,
            Some("model"),
        ),
        (r#"{"model": "council", "messages": "hello"}"#, None),
        (
            r#"{"model": "council", "messages": [{"role": "user", "content": "x"}], "fallbacks": "gpt-4o"}"#,
            Some("fallbacks"),
        ),
        (
            r#"{"model": "gpt-4o", "messages": [{"role": "user", "content": "x"}], "fallbacks": ["council"]}"#,
            Some("fallbacks"),
        ),
    ] {
        let answer = h.chat(body, Some(KEY)).await;
        assert_eq!(
            answer.status,
            StatusCode::BAD_REQUEST,
            "{body}: {}",
            answer.body
        );
        assert_eq!(answer.json()["error"]["type"], "invalid_request_error");
        assert_eq!(answer.json()["error"]["param"].as_str(), param, "{body}");
    }
    assert!(h.sim.attempts().is_empty());
}

#[tokio::test]
async fn a_body_over_the_limit_is_a_413_declared_or_streamed() {
    let h = harness("large", healthy()).await;
    let big = ask("council", false).replace("Vote on BIP-01", &"x".repeat(4096));
    let declared = h.chat(&big, Some(KEY)).await;
    assert_eq!(declared.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(declared.json()["error"]["code"], "request_too_large");
    // Without a length: chunked, found while reading.
    let chunks = futures_util::stream::iter(
        big.into_bytes()
            .chunks(512)
            .map(|c| {
                Ok::<_, std::convert::Infallible>(http_body::Frame::data(
                    bytes::Bytes::copy_from_slice(c),
                ))
            })
            .collect::<Vec<_>>(),
    );
    let request = Request::post(h.url("/v1/chat/completions"))
        .header("authorization", format!("Bearer {KEY}"))
        .body(http_body_util::StreamBody::new(chunks))
        .unwrap();
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http();
    let response = client.request(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert!(h.sim.attempts().is_empty());
}

#[tokio::test]
async fn a_request_may_name_its_own_fallbacks() {
    let mut models = healthy();
    models[0].1 = Script::new().always(Behaviour::Status(503));
    let h = harness("fallbacks", models).await;
    let body = r#"{"model": "gpt-4o", "messages": [{"role": "user", "content": "x"}], "fallbacks": ["deepseek-v3.1"]}"#;
    let answer = h.chat(body, Some(KEY)).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert_eq!(answer.header("x-hive-model"), Some("deepseek-v3.1"));
    assert_eq!(answer.header("x-hive-attempts"), Some("2"));
    let asked: Vec<String> = h.sim.attempts().into_iter().map(|a| a.model).collect();
    assert_eq!(
        asked,
        ["gpt-4o", "deepseek-v3.1"],
        "never claude, not listed"
    );
}

#[tokio::test]
async fn a_name_a_pattern_matches_gets_a_stack_and_its_provider_name() {
    let h = harness("pattern", healthy()).await;
    let answer = h
        .chat(
            &ask("openrouter/meta-llama/llama-3.1-70b", false),
            Some(KEY),
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert_eq!(
        answer.header("x-hive-model"),
        Some("openrouter/meta-llama/llama-3.1-70b")
    );
    assert_eq!(h.sim.attempts()[0].model, "meta-llama/llama-3.1-70b");
    let listed = h.get_authorized("/v1/models").await;
    let ids: Vec<String> = listed.json()["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        ids.contains(&"openrouter/meta-llama/llama-3.1-70b".to_owned()),
        "{ids:?}"
    );
    assert!(ids.contains(&"council".to_owned()), "{ids:?}");
}

#[tokio::test]
async fn probes_metrics_and_unknown_endpoints() {
    let h = harness("probes", healthy()).await;
    let health = h.get("/healthz").await;
    assert_eq!(
        (health.status, health.body.as_str()),
        (StatusCode::OK, "ok\n")
    );
    let ready = h.get("/readyz").await;
    assert_eq!(ready.status, StatusCode::OK, "{}", ready.body);
    assert_eq!(ready.json()["ready"], true);
    h.chat(&ask("council", false), Some(KEY)).await;
    let metrics = h.get("/metrics").await;
    assert_eq!(metrics.status, StatusCode::OK);
    assert!(metrics.body.contains("hive_"), "{}", metrics.body);
    let nowhere = h.get("/v1/embeddings").await;
    assert_eq!(nowhere.status, StatusCode::NOT_FOUND);
    assert_eq!(nowhere.json()["error"]["type"], "invalid_request_error");
    let wrong_method = h.get("/v1/chat/completions").await;
    assert_eq!(wrong_method.status, StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn readiness_fails_while_a_route_has_no_model_up() {
    let h = harness("ready", healthy()).await;
    let fleet = h.server.gateway().fleet();
    fleet
        .manager()
        .control("deepseek-v3.1")
        .unwrap()
        .force_open();
    let ready = h.get("/readyz").await;
    assert_eq!(ready.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(ready.json()["routes_down"], serde_json::json!(["strict"]));
}

#[tokio::test]
async fn no_secret_reaches_a_client_or_the_config_view() {
    let mut models = healthy();
    models[0].1 = Script::new().always(Behaviour::Status(401));
    models[1].1 = Script::new().always(Behaviour::Status(401));
    models[2].1 = Script::new().always(Behaviour::Status(401));
    let h = harness("secrets", models).await;
    let answer = h.chat(&ask("council", false), Some(KEY)).await;
    assert_eq!(answer.status, StatusCode::BAD_GATEWAY, "{}", answer.body);
    assert_eq!(answer.json()["error"]["code"], "upstream_unauthorized");
    let fleet = format!("{:?}", h.server);
    for secret in [KEY, UPSTREAM_KEY] {
        assert!(!answer.body.contains(secret));
        assert!(!fleet.contains(secret), "Debug shows a secret");
    }
}

impl Harness {
    async fn get_authorized(&self, path: &str) -> support::Answer {
        self.send(
            Request::get(self.url(path))
                .header("authorization", format!("Bearer {KEY}"))
                .body(Full::default())
                .unwrap(),
        )
        .await
    }
}

#[tokio::test]
async fn a_stream_cut_after_40_of_60_tokens_reaches_the_caller_as_60_tokens() {
    let answer = hive_sim::long_answer(60);
    let mut models = healthy();
    models[0].1 = Script::new().always(Behaviour::Status(503));
    models[1].1 = Script::new()
        .answer(answer.clone())
        .always(Behaviour::StreamCut { after_tokens: 40 });
    models[2].1 = Script::new().answer(answer.clone());
    let h = harness("forty-of-sixty", models).await;
    let got = h.chat(&ask("council", true), Some(KEY)).await;
    let (text, done) = got.streamed_text();
    assert!(done, "ends as a whole answer: {}", got.body);
    assert_eq!(text, answer);
    assert_eq!(text.split_inclusive(' ').count(), 60);
    assert_eq!(got.header("x-hive-model"), Some("claude-4-sonnet"));
    let continued = h.sim.attempts_of("deepseek-v3.1");
    let prefill = continued[0].prefill.as_deref().unwrap();
    assert_eq!(prefill.split_inclusive(' ').count(), 40, "{prefill:?}");
}

#[tokio::test]
async fn a_cut_no_model_can_continue_ends_with_an_in_band_error_not_done() {
    let mut models = healthy();
    models[0].1 = Script::new().always(Behaviour::StreamCut { after_tokens: 3 });
    let h = harness("no-continuation", models).await;
    // `polite` has gpt-4o only, which does not take a prefill.
    let got = h.chat(&ask("polite", true), Some(KEY)).await;
    assert_eq!(got.status, StatusCode::OK, "committed before the cut");
    let (text, done) = got.streamed_text_lenient();
    assert!(!done, "never [DONE] after a cut");
    assert!(
        ANSWER.starts_with(&text) && text.len() < ANSWER.len(),
        "{text:?}"
    );
    let last = got
        .body
        .lines()
        .rev()
        .find(|l| l.starts_with("data: "))
        .unwrap();
    let event: serde_json::Value = serde_json::from_str(&last["data: ".len()..]).unwrap();
    assert_eq!(event["error"]["code"], "stream_cut", "{last}");
    assert!(
        !last.contains("prefill"),
        "the continuation's refusal is not the error shown"
    );
}

/// Sends `body` to the gateway and gives up after `after` (the connection closes).
async fn give_up(h: &Harness, body: String, after: Duration) {
    let mut connector = hyper_util::client::legacy::connect::HttpConnector::new();
    connector.set_nodelay(true);
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build::<_, Full<bytes::Bytes>>(connector);
    let request = Request::post(h.url("/v1/chat/completions"))
        .header("authorization", format!("Bearer {KEY}"))
        .body(Full::from(body))
        .unwrap();
    let asked = async {
        let response = client.request(request).await.unwrap();
        // Read the head (and, for a stream, wait on its body) until given up.
        let mut body = response.into_body();
        while let Some(frame) = http_body_util::BodyExt::frame(&mut body).await {
            frame.unwrap();
        }
    };
    let _ = tokio::time::timeout(after, asked).await;
    drop(client);
}

#[tokio::test]
async fn a_client_that_disconnects_cancels_the_upstream_call() {
    let mut models = healthy();
    models[0].1 = Script::new()
        .until_call(1, Behaviour::SlowFirstToken(Duration::from_secs(30)))
        .always(Behaviour::Stall { after_tokens: 3 });
    let h = harness("disconnect", models).await;
    // Waiting for a whole answer, then in the middle of a stream.
    give_up(&h, ask("council", false), Duration::from_millis(300)).await;
    give_up(&h, ask("council", true), Duration::from_millis(300)).await;
    // Well before the gateway's own limits (first token 1 s, idle 1 s) would end them.
    let seen = h.sim.settled(Duration::from_millis(200)).await;
    let ended: Vec<(&str, bool, hive_sim::Delivery)> = seen
        .iter()
        .map(|(a, d)| (a.model.as_str(), a.stream, *d))
        .collect();
    assert_eq!(
        ended,
        [
            ("gpt-4o", false, hive_sim::Delivery::Abandoned),
            ("gpt-4o", true, hive_sim::Delivery::Abandoned),
        ]
    );
}

#[tokio::test]
async fn a_model_that_refuses_the_prefill_is_passed_over_for_the_next() {
    let mut models = healthy();
    models[0].1 = Script::new().always(Behaviour::StreamCut { after_tokens: 3 });
    // The config says claude takes a prefill; the provider says otherwise.
    models[1].1 = Script::new().refuse_prefill();
    let h = harness("prefill-refused", models).await;
    let got = h.chat(&ask("council", true), Some(KEY)).await;
    let (text, done) = got.streamed_text();
    assert_eq!(text, ANSWER, "continued by the third model");
    assert!(done);
    let claude = h.sim.attempts_of("claude-4-sonnet");
    assert_eq!(claude.len(), 1);
    assert!(claude[0].prefill.is_some());
    let deepseek = h.sim.attempts_of("deepseek-v3.1");
    assert_eq!(deepseek.len(), 1);
    assert_eq!(
        deepseek[0].prefill.as_deref(),
        claude[0].prefill.as_deref(),
        "the same prefill, once more"
    );
    let refused: Vec<&str> = h
        .server
        .gateway()
        .refused_prefill()
        .iter()
        .map(|m| m.as_str())
        .collect();
    assert_eq!(refused, ["claude-4-sonnet"]);
}

#[tokio::test]
async fn a_continuation_ends_at_the_route_deadline() {
    let mut models = healthy();
    // claude stalls after 3 tokens: the idle limit (1 s) cuts it; deepseek is asked to
    // continue and never sends a token. Without the route's 1.5 s deadline its first-token
    // limit would end it at 2 s.
    models[1].1 = Script::new().always(Behaviour::Stall { after_tokens: 3 });
    models[2].1 = Script::new().always(Behaviour::SlowFirstToken(Duration::from_secs(30)));
    let h = harness("continuation-deadline", models).await;
    let started = tokio::time::Instant::now();
    let got = h.chat(&ask("brisk", true), Some(KEY)).await;
    let took = started.elapsed();
    let (text, done) = got.streamed_text_lenient();
    assert!(!done, "{}", got.body);
    assert!(ANSWER.starts_with(&text) && !text.is_empty(), "{text:?}");
    assert_eq!(h.sim.attempts_of("deepseek-v3.1").len(), 1);
    assert!(
        took >= Duration::from_millis(1400) && took < Duration::from_millis(1900),
        "ended at {took:?}, not at the route's 1.5 s"
    );
}

#[tokio::test]
async fn a_name_too_long_or_with_control_characters_is_a_400_and_never_kept() {
    let h = harness("bad-names", healthy()).await;
    let long = format!("openrouter/{}", "a".repeat(300));
    for name in [long.as_str(), "openrouter/a\u{1}b", "openrouter/"] {
        let body = serde_json::json!({
            "model": name,
            "messages": [{"role": "user", "content": "hi"}],
        })
        .to_string();
        let got = h.chat(&body, Some(KEY)).await;
        assert_eq!(
            got.status,
            StatusCode::BAD_REQUEST,
            "{name:?}: {}",
            got.body
        );
        assert_eq!(got.json()["error"]["param"], "model", "{}", got.body);
    }
    assert!(h.sim.attempts().is_empty(), "no provider was asked");
    let listed = h.get_authorized("/v1/models").await;
    assert!(
        !listed.body.contains("openrouter/"),
        "no model was made for them: {}",
        listed.body
    );
}

#[tokio::test]
async fn a_direct_models_refusal_names_the_route_and_one_attempt() {
    let mut models = healthy();
    models[1].1 = Script::new().always(Behaviour::Status(400));
    let h = harness("direct-refusal", models).await;
    let got = h.chat(&ask("claude-4-sonnet", false), Some(KEY)).await;
    assert_eq!(got.status, StatusCode::BAD_REQUEST, "{}", got.body);
    assert_eq!(got.header("x-hive-route"), Some("claude-4-sonnet"));
    assert_eq!(got.header("x-hive-attempts"), Some("1"));
}

#[tokio::test]
async fn a_shutdown_ends_what_still_runs_at_the_end_of_its_grace() {
    let resilience = RESILIENCE
        .replace(
            "  body_limit: 2KiB",
            "  body_limit: 2KiB\n  shutdown_grace: 500ms",
        )
        .replace("    attempt: 2s", "    attempt: 30s")
        .replace("    first_token: 1s", "    first_token: 30s")
        .replace("    idle: 1s", "    idle: 30s")
        .replace("    request: 5s", "    request: 30s");
    let mut models = healthy();
    models[0].1 = Script::new().always(Behaviour::Stall { after_tokens: 3 });
    models[1].1 = Script::new().always(Behaviour::Hang);
    let h = Harness::start(
        "hard-stop",
        models,
        &resilience,
        MODELS,
        &[("HIVE_CLIENT_KEY", KEY), ("UPSTREAM_KEY", UPSTREAM_KEY)],
    )
    .await;
    let stop = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let started = tokio::time::Instant::now();
        let finished = h.server.shutdown().await;
        (finished, started.elapsed())
    };
    let (stream_body, whole_body) = (ask("polite", true), ask("claude-4-sonnet", false));
    let (streamed, whole, (finished, took)) = tokio::join!(
        h.chat(&stream_body, Some(KEY)),
        h.chat(&whole_body, Some(KEY)),
        stop
    );
    assert!(!finished, "two requests were still under way");
    assert!(
        took >= Duration::from_millis(500) && took < Duration::from_millis(1500),
        "{took:?}"
    );
    assert_eq!(
        whole.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        whole.body
    );
    let (text, done) = streamed.streamed_text_lenient();
    assert!(!done, "{}", streamed.body);
    assert!(ANSWER.starts_with(&text) && !text.is_empty(), "{text:?}");
    assert!(
        streamed.body.contains("\"error\""),
        "ends with an in-band error: {}",
        streamed.body
    );
}

#[tokio::test]
async fn a_tool_loop_with_null_content_and_content_parts_is_served() {
    let h = harness("tool-loop", healthy()).await;
    let body = serde_json::json!({
        "model": "council",
        "stream": null,
        "messages": [
            {"role": "user", "content": "What is 6 x 7?"},
            {"role": "assistant", "content": null, "tool_calls": [{
                "id": "call_1", "type": "function",
                "function": {"name": "multiply", "arguments": "{\"a\":6,\"b\":7}"}
            }]},
            {"role": "tool", "tool_call_id": "call_1", "content": "42"},
            {"role": "user", "content": [{"type": "text", "text": "Say it in words."}]},
        ],
        "tools": [{"type": "function", "function": {"name": "multiply", "parameters": {}}}],
    })
    .to_string();
    let got = h.chat(&body, Some(KEY)).await;
    assert_eq!(got.status, StatusCode::OK, "{}", got.body);
    assert_eq!(got.header("content-type"), Some("application/json"));
    assert_eq!(got.json()["choices"][0]["message"]["content"], ANSWER);
}
