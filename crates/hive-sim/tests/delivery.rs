//! How each answer ended, seen from the simulator: sent to its end, or abandoned by a client
//! that went away first. Real loopback HTTP (HTTP/1.1 and HTTP/2) with paused tokio time.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use bytes::Bytes;
use hive_sim::{ANSWER, Attempt, Behaviour, Delivery, Latency, RetryAfter, Script, Simulator};
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::{
    client::legacy::{Client, connect::HttpConnector},
    rt::TokioExecutor,
};
use tokio::time::{Instant, timeout};

type HttpClient = Client<HttpConnector, Full<Bytes>>;

/// An HTTP/1.1 client and an HTTP/2 one, both without Nagle's delay: with paused time, a
/// request body held back until the server's delayed ACK (real milliseconds) would let the
/// clock jump past a client's timeout before the request arrives.
fn clients() -> [(&'static str, HttpClient); 2] {
    let connector = || {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector
    };
    [
        (
            "HTTP/1.1",
            Client::builder(TokioExecutor::new()).build(connector()),
        ),
        (
            "HTTP/2",
            Client::builder(TokioExecutor::new())
                .http2_only(true)
                .build(connector()),
        ),
    ]
}

async fn chat(
    client: &HttpClient,
    sim: &Simulator,
    model: &str,
    stream: bool,
) -> Result<http::Response<hyper::body::Incoming>, hyper_util::client::legacy::Error> {
    let body = format!(
        r#"{{"model":"{model}","stream":{stream},"messages":[{{"role":"user","content":"Vote on BIP-01"}}]}}"#
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
    let body = response.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8(body.to_vec()).unwrap()
}

/// Each answer as (model, behaviour, streamed, delivery).
fn ends(deliveries: &[(Attempt, Delivery)]) -> Vec<(&str, &'static str, bool, Delivery)> {
    deliveries
        .iter()
        .map(|(a, d)| (a.model.as_str(), a.behaviour, a.stream, *d))
        .collect()
}

const LIMIT: Duration = Duration::from_secs(60);

#[tokio::test(start_paused = true)]
async fn a_whole_answer_read_to_its_end_is_complete() {
    let sim = Simulator::start([("m", Script::new())]).await.unwrap();
    for (protocol, c) in clients() {
        let whole: serde_json::Value =
            serde_json::from_str(&text(chat(&c, &sim, "m", false).await.unwrap()).await).unwrap();
        assert_eq!(
            whole["choices"][0]["message"]["content"], ANSWER,
            "{protocol}"
        );
        let streamed = text(chat(&c, &sim, "m", true).await.unwrap()).await;
        assert!(
            streamed.ends_with("data: [DONE]\n\n"),
            "{protocol}: {streamed}"
        );
        let models = c
            .get(format!("{}/v1/models", sim.base_url()).parse().unwrap())
            .await
            .unwrap();
        assert_eq!(models.status(), StatusCode::OK, "{protocol}");
        text(models).await;
    }
    let start = Instant::now();
    let deliveries = sim.settled(LIMIT).await;
    assert_eq!(start.elapsed(), Duration::ZERO, "nothing was left pending");
    let one_round = [
        ("m", "healthy", false, Delivery::Complete),
        ("m", "healthy", true, Delivery::Complete),
        ("", "models", false, Delivery::Complete),
    ];
    assert_eq!(ends(&deliveries), [one_round, one_round].concat());
    assert_eq!(
        deliveries
            .iter()
            .map(|(a, _)| a.clone())
            .collect::<Vec<_>>(),
        sim.attempts(),
        "the deliveries sit beside the attempts, in arrival order"
    );
}

#[tokio::test(start_paused = true)]
async fn a_stream_dropped_after_its_first_chunk_is_abandoned() {
    // The stream is still going when its client drops it: it would send two more tokens,
    // then stall. (A healthy 15-token stream is handed to hyper whole before a client reads
    // its first chunk, so it is rightly complete however early the client goes.)
    let sim = Simulator::start([(
        "m",
        Script::new().always(Behaviour::Stall { after_tokens: 3 }),
    )])
    .await
    .unwrap();
    for (protocol, c) in clients() {
        let response = chat(&c, &sim, "m", true).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{protocol}");
        let mut body = response.into_body();
        let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
        let first = std::str::from_utf8(&first).unwrap();
        assert!(
            first.starts_with("data: ") && first.contains(r#""content":"The ""#),
            "{protocol}: {first}"
        );
        assert_eq!(
            ends(&sim.deliveries()).last().copied(),
            Some(("m", "stall", true, Delivery::Pending)),
            "{protocol}: still being sent while its client reads"
        );
        drop(body);
        let start = Instant::now();
        let deliveries = sim.settled(LIMIT).await;
        assert_eq!(start.elapsed(), Duration::ZERO, "{protocol}");
        assert_eq!(
            ends(&deliveries).last().copied(),
            Some(("m", "stall", true, Delivery::Abandoned)),
            "{protocol}"
        );
    }
    assert_eq!(sim.deliveries().len(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_client_gone_during_the_scripted_latency_abandons_its_answer() {
    let sim = Simulator::start([(
        "slow",
        Script::new().latency(Latency::Fixed(Duration::from_secs(10))),
    )])
    .await
    .unwrap();
    for (protocol, c) in clients() {
        let start = Instant::now();
        assert!(
            timeout(Duration::from_secs(1), chat(&c, &sim, "slow", false))
                .await
                .is_err(),
            "{protocol}: the client gives up during the latency"
        );
        let deliveries = sim.settled(LIMIT).await;
        assert_eq!(
            start.elapsed(),
            Duration::from_secs(1),
            "{protocol}: abandoned when the client went, not when the latency ended"
        );
        assert_eq!(
            ends(&deliveries).last().copied(),
            Some(("slow", "healthy", false, Delivery::Abandoned)),
            "{protocol}"
        );
        // Past the latency it stays abandoned: nothing is sent to a client that went away.
        tokio::time::sleep(Duration::from_secs(20)).await;
        assert_eq!(
            ends(&sim.deliveries()).last().copied(),
            Some(("slow", "healthy", false, Delivery::Abandoned)),
            "{protocol}"
        );
    }
    assert_eq!(sim.deliveries().len(), 2);
}

#[tokio::test(start_paused = true)]
async fn an_error_status_is_complete() {
    let sim = Simulator::start([
        ("down", Script::new().always(Behaviour::Status(503))),
        (
            "limited",
            Script::new().always(Behaviour::RateLimited(Some(RetryAfter::Seconds(1)))),
        ),
        ("refuser", Script::new().always(Behaviour::ContentFilter)),
    ])
    .await
    .unwrap();
    for (protocol, c) in clients() {
        for (model, status) in [
            ("down", StatusCode::SERVICE_UNAVAILABLE),
            ("limited", StatusCode::TOO_MANY_REQUESTS),
        ] {
            let response = chat(&c, &sim, model, true).await.unwrap();
            assert_eq!(response.status(), status, "{protocol}");
            assert!(text(response).await.contains("\"error\""), "{protocol}");
        }
        // Complete even when its client never reads the error body.
        let response = chat(&c, &sim, "refuser", false).await.unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{protocol}");
        drop(response);
    }
    let one_round = [
        ("down", "status", true, Delivery::Complete),
        ("limited", "rate_limited", true, Delivery::Complete),
        ("refuser", "content_filter", false, Delivery::Complete),
    ];
    assert_eq!(
        ends(&sim.settled(LIMIT).await),
        [one_round, one_round].concat()
    );
}

#[tokio::test(start_paused = true)]
async fn scripted_ends_are_complete_and_endless_answers_end_with_their_client() {
    let sim = Simulator::start([
        ("reset", Script::new().always(Behaviour::ResetBeforeHeaders)),
        (
            "cut",
            Script::new().always(Behaviour::StreamCut { after_tokens: 2 }),
        ),
        (
            "broken",
            Script::new().always(Behaviour::StreamReset { after_tokens: 2 }),
        ),
        ("hang", Script::new().always(Behaviour::Hang)),
        (
            "slow",
            Script::new().always(Behaviour::SlowFirstToken(Duration::from_secs(5))),
        ),
    ])
    .await
    .unwrap();
    for (protocol, c) in clients() {
        assert!(chat(&c, &sim, "reset", false).await.is_err(), "{protocol}");
        let cut = text(chat(&c, &sim, "cut", true).await.unwrap()).await;
        assert!(!cut.contains("[DONE]"), "{protocol}: {cut}");
        let broken = chat(&c, &sim, "broken", true).await.unwrap();
        assert!(
            broken.into_body().collect().await.is_err(),
            "{protocol}: the body breaks"
        );
        // A hang ends when its client closes the connection (or resets the stream).
        assert!(
            timeout(Duration::from_secs(1), chat(&c, &sim, "hang", false))
                .await
                .is_err(),
            "{protocol}"
        );
        // A slow first token: the headers came, the client goes before the first token.
        let slow = chat(&c, &sim, "slow", true).await.unwrap();
        assert_eq!(slow.status(), StatusCode::OK, "{protocol}");
        assert!(
            timeout(Duration::from_secs(1), slow.into_body().frame())
                .await
                .is_err(),
            "{protocol}"
        );
    }
    let one_round = [
        ("reset", "reset_before_headers", false, Delivery::Complete),
        ("cut", "stream_cut", true, Delivery::Complete),
        ("broken", "stream_reset", true, Delivery::Complete),
        ("hang", "hang", false, Delivery::Abandoned),
        ("slow", "slow_first_token", true, Delivery::Abandoned),
    ];
    let start = Instant::now();
    assert_eq!(
        ends(&sim.settled(LIMIT).await),
        [one_round, one_round].concat()
    );
    assert_eq!(start.elapsed(), Duration::ZERO);
}

#[tokio::test(start_paused = true)]
async fn settled_gives_up_after_its_limit_on_an_answer_still_being_sent() {
    let sim = Simulator::start([("hang", Script::new().always(Behaviour::Hang))])
        .await
        .unwrap();
    for (protocol, c) in clients() {
        let mut request = Box::pin(chat(&c, &sim, "hang", false));
        let (deliveries, waited) = tokio::select! {
            _ = &mut request => panic!("{protocol}: a hang never answers"),
            waited = async {
                while sim.deliveries().last().is_none_or(|(_, d)| *d != Delivery::Pending) {
                    tokio::task::yield_now().await;
                }
                let start = Instant::now();
                (sim.settled(Duration::from_secs(5)).await, start.elapsed())
            } => waited,
        };
        assert_eq!(waited, Duration::from_secs(5), "{protocol}");
        assert_eq!(
            ends(&deliveries).last().copied(),
            Some(("hang", "hang", false, Delivery::Pending)),
            "{protocol}"
        );
        // The client goes: the connection closes (HTTP/1.1) or the stream is reset (HTTP/2).
        drop(request);
        let start = Instant::now();
        assert_eq!(
            ends(&sim.settled(LIMIT).await).last().copied(),
            Some(("hang", "hang", false, Delivery::Abandoned)),
            "{protocol}"
        );
        assert_eq!(start.elapsed(), Duration::ZERO, "{protocol}");
    }
    assert_eq!(sim.deliveries().len(), 2);
}
