//! The dashboard's page and its live stream over real HTTP: who may read it, how soon a
//! change shows, and that an open stream never holds a shutdown.

#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use bytes::Bytes;
use hive_sim::Script;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::{client::legacy::Client, rt::TokioExecutor};
use serde_json::Value;
use support::{Harness, TWO_MODELS as MODELS};
use tokio::time::Instant;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

const ADMIN: &str = "admin-token-0123456789abcdef";
const READER: &str = "read-token-0123456789abcdef";

const RESILIENCE: &str = "admin:\n  token: { env: HIVE_ADMIN_TOKEN }\n  read_token: { env: HIVE_READ_TOKEN }\nserver:\n  shutdown_grace: 10s\ndefaults:\n  health:\n    probe: none\n";

async fn harness(test: &str) -> Harness {
    Harness::start(
        test,
        vec![
            ("gpt-4o", Script::new()),
            ("claude-4-sonnet", Script::new()),
        ],
        RESILIENCE,
        MODELS,
        &[("HIVE_ADMIN_TOKEN", ADMIN), ("HIVE_READ_TOKEN", READER)],
    )
    .await
}

/// An open `/dashboard/events` stream, read event by event.
struct Events {
    body: http_body_util::combinators::UnsyncBoxBody<Bytes, BoxError>,
    buffer: String,
}

impl Events {
    async fn open(h: &Harness, token: Option<&str>) -> Result<Self, StatusCode> {
        let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
        let mut request = Request::get(h.url("/dashboard/events"));
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        let response = client
            .request(request.body(Full::default()).unwrap())
            .await
            .unwrap();
        if response.status() != StatusCode::OK {
            return Err(response.status());
        }
        assert_eq!(
            response.headers()["content-type"].to_str().unwrap(),
            "text/event-stream"
        );
        Ok(Self {
            body: response
                .into_body()
                .map_err(|e| -> BoxError { e.into() })
                .boxed_unsync(),
            buffer: String::new(),
        })
    }

    /// The next status, or `None` when the stream ended.
    async fn next(&mut self) -> Option<Value> {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let event: String = self.buffer.drain(..end + 2).collect();
                let mut lines = event.lines();
                assert_eq!(lines.next(), Some("event: status"), "{event}");
                let data = lines.next().unwrap().strip_prefix("data: ").unwrap();
                return Some(serde_json::from_str(data).unwrap());
            }
            let frame = self.body.frame().await?.unwrap();
            if let Ok(data) = frame.into_data() {
                self.buffer.push_str(std::str::from_utf8(&data).unwrap());
            }
        }
    }
}

fn breaker_of(status: &Value, model: &str) -> String {
    status["models"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["model"] == model)
        .map(|m| m["breaker"].as_str().unwrap().to_owned())
        .unwrap()
}

#[tokio::test]
async fn the_page_is_served_whole_from_the_binary_with_a_strict_policy() {
    let h = harness("dashboard-page").await;
    for (path, kind) in [
        ("/dashboard", "text/html"),
        ("/dashboard/dashboard.js", "text/javascript"),
        ("/dashboard/dashboard.css", "text/css"),
    ] {
        let got = h.get(path).await;
        assert_eq!(got.status, StatusCode::OK, "{path}");
        assert!(
            got.header("content-type").unwrap().starts_with(kind),
            "{path}"
        );
        assert!(
            got.header("content-security-policy")
                .unwrap()
                .contains("default-src 'self'")
        );
        assert!(!got.body.contains(ADMIN) && !got.body.contains(READER));
    }
}

#[tokio::test]
async fn the_stream_needs_a_read_token_and_shows_a_change_within_a_second() {
    let h = harness("dashboard-events").await;
    assert_eq!(
        Events::open(&h, None).await.err(),
        Some(StatusCode::UNAUTHORIZED)
    );
    assert_eq!(
        Events::open(&h, Some("wrong")).await.err(),
        Some(StatusCode::UNAUTHORIZED)
    );
    let mut events = Events::open(&h, Some(READER)).await.unwrap();
    let first = events.next().await.unwrap();
    assert_eq!(breaker_of(&first, "gpt-4o"), "closed");
    assert_eq!(first["routes"][0]["name"], "council");

    let acted = Instant::now();
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let request = Request::post(h.url("/admin/models/gpt-4o/force-open"))
        .header("authorization", format!("Bearer {ADMIN}"))
        .body(Full::default())
        .unwrap();
    assert_eq!(
        client.request(request).await.unwrap().status(),
        StatusCode::OK
    );
    loop {
        let status = events.next().await.unwrap();
        if breaker_of(&status, "gpt-4o") == "forced_open" {
            break;
        }
    }
    let shown = acted.elapsed();
    // Pushed 100 ms after the change; the issue asks for a second.
    assert!(shown < Duration::from_secs(1), "shown after {shown:?}");
}

#[tokio::test]
async fn an_open_stream_ends_at_shutdown_and_holds_nothing() {
    let h = harness("dashboard-shutdown").await;
    let mut events = Events::open(&h, Some(ADMIN)).await.unwrap();
    events.next().await.unwrap();
    let started = Instant::now();
    assert!(
        h.server.shutdown().await,
        "nothing left running at the grace's end"
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    let ended = tokio::time::timeout(Duration::from_secs(2), async {
        while events.next().await.is_some() {}
    })
    .await;
    assert!(ended.is_ok(), "the stream ended");
}

async fn history_of(h_url: &str, token: &str) -> Value {
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let request = Request::get(format!("{h_url}/dashboard/history?minutes=10"))
        .header("authorization", format!("Bearer {token}"))
        .body(Full::default())
        .unwrap();
    let response = client.request(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    serde_json::from_slice(&body).unwrap()
}

/// `(model, requests, successes)` of every row, summed per model.
fn requests_by_model(history: &Value) -> Vec<(String, u64, u64)> {
    let mut sums: std::collections::BTreeMap<String, (u64, u64)> = Default::default();
    for row in history["minutes"].as_array().unwrap() {
        let sum = sums
            .entry(row["model"].as_str().unwrap().to_owned())
            .or_default();
        sum.0 += row["requests"].as_u64().unwrap();
        sum.1 += row["successes"].as_u64().unwrap();
    }
    sums.into_iter().map(|(m, (r, s))| (m, r, s)).collect()
}

#[tokio::test]
async fn the_history_survives_a_restart_of_the_gateway() {
    let h = harness("dashboard-history").await;
    for _ in 0..7 {
        let got = h.chat(&support::ask("council", false), None).await;
        assert_eq!(got.status, StatusCode::OK);
    }
    // Shutdown writes the minute under way.
    assert!(h.server.shutdown().await);
    assert!(h.dir.join("hive.db").exists());

    let options = hive_gateway::server::Options {
        listen: Some("127.0.0.1:0".parse().unwrap()),
        env: hive_config::Environment::vars([
            ("HIVE_ADMIN_TOKEN", ADMIN),
            ("HIVE_READ_TOKEN", READER),
        ]),
        seed: Some(7),
        watch: false,
        ..hive_gateway::server::Options::default()
    };
    let again = hive_gateway::server::Server::start(
        hive_gateway::server::ConfigSource::Dir(h.dir.clone()),
        options,
    )
    .await
    .unwrap();
    let history = history_of(&again.base_url(), READER).await;
    assert_eq!(
        requests_by_model(&history),
        [("gpt-4o".to_owned(), 7, 7)],
        "{history}"
    );
    again.shutdown().await;
}

#[tokio::test]
async fn a_corrupt_history_file_stops_the_start_naming_it_and_is_left_alone() {
    let dir = support::config_dir("dashboard-corrupt");
    support::write(
        &dir,
        "resilience.yml",
        "defaults:\n  health:\n    probe: none\n",
    );
    support::write(
        &dir,
        "models-resilience.yml",
        "models:\n  - id: gpt-4o\n    base_url: \"http://127.0.0.1:9\"\n",
    );
    let garbage = b"this is not a database, it is a grocery list".repeat(100);
    std::fs::write(dir.join("hive.db"), &garbage).unwrap();
    let options = hive_gateway::server::Options {
        listen: Some("127.0.0.1:0".parse().unwrap()),
        watch: false,
        ..Default::default()
    };
    let started = hive_gateway::server::Server::start(
        hive_gateway::server::ConfigSource::Dir(dir.clone()),
        options,
    )
    .await;
    let error = started.expect_err("refused").to_string();
    assert!(error.contains("hive.db"), "{error}");
    assert_eq!(std::fs::read(dir.join("hive.db")).unwrap(), garbage);
}

#[tokio::test]
async fn the_report_of_the_last_day_is_one_page_from_the_history() {
    let h = harness("dashboard-report").await;
    let get = |token: Option<&'static str>| {
        let url = h.url("/dashboard/report");
        async move {
            let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
            let mut request = Request::get(url);
            if let Some(token) = token {
                request = request.header("authorization", format!("Bearer {token}"));
            }
            let response = client
                .request(request.body(Full::default()).unwrap())
                .await
                .unwrap();
            let status = response.status();
            let policy = response
                .headers()
                .get("content-security-policy")
                .map(|v| v.to_str().unwrap().to_owned());
            let body = response.into_body().collect().await.unwrap().to_bytes();
            (status, policy, String::from_utf8(body.to_vec()).unwrap())
        }
    };
    let (status, _, body) = get(Some(READER)).await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "nothing recorded yet: {body}"
    );
    for _ in 0..5 {
        h.chat(&support::ask("council", false), None).await;
    }
    assert_eq!(get(None).await.0, StatusCode::UNAUTHORIZED);
    let (status, policy, page) = get(Some(READER)).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(policy.unwrap().starts_with("default-src 'none'"));
    assert!(page.contains("gpt-4o") && page.contains("<svg"), "{page}");
    assert!(!page.contains("<script"));
}

#[tokio::test]
async fn the_last_minutes_survive_a_killed_gateway_process() {
    let sim = hive_sim::Simulator::start(vec![("gpt-4o", Script::new())])
        .await
        .unwrap();
    let dir = support::config_dir("dashboard-kill");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    support::write(
        &dir,
        "resilience.yml",
        &format!(
            "server:\n  listen: \"127.0.0.1:{port}\"\ndefaults:\n  health:\n    probe: none\n"
        ),
    );
    support::write(
        &dir,
        "models-resilience.yml",
        &format!(
            "models:\n  - id: gpt-4o\n    base_url: \"{}\"\n",
            sim.base_url()
        ),
    );
    let mut gateway = std::process::Command::new(env!("CARGO_BIN_EXE_hive"))
        .args(["serve", "--config"])
        .arg(&dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}/v1/chat/completions");
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let mut ready = false;
    for _ in 0..100 {
        let health = Request::get(format!("http://127.0.0.1:{port}/healthz"))
            .body(Full::default())
            .unwrap();
        if client.request(health).await.is_ok() {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ready, "the gateway did not start");
    for _ in 0..9 {
        let request = Request::post(url.as_str())
            .header("content-type", "application/json")
            .body(Full::from(support::ask("gpt-4o", false)))
            .unwrap();
        assert_eq!(
            client.request(request).await.unwrap().status(),
            StatusCode::OK
        );
    }
    // Past one write of the recorder, then killed: no shutdown, no flush.
    tokio::time::sleep(hive_gateway::history::WRITE_EVERY + Duration::from_millis(1500)).await;
    gateway.kill().unwrap();
    gateway.wait().unwrap();

    let history = hive_gateway::history::History::open_read_only(dir.join("hive.db")).unwrap();
    let rows = history.minutes(0, u64::MAX / 2, None).await.unwrap();
    let kept: u64 = rows.iter().map(|row| row.successes).sum();
    assert_eq!(kept, 9, "{rows:?}");
}

#[tokio::test]
async fn a_stream_ends_when_a_reload_takes_its_token_away() {
    let h = harness("dashboard-rotation").await;
    let mut events = Events::open(&h, Some(READER)).await.unwrap();
    events.next().await.unwrap();
    let text = std::fs::read_to_string(h.dir.join("resilience.yml")).unwrap();
    support::write(
        &h.dir,
        "resilience.yml",
        &text.replace("  read_token: { env: HIVE_READ_TOKEN }\n", ""),
    );
    let reloaded = h.server.reload("test").await;
    assert!(reloaded.is_ok(), "{reloaded:?}");
    let ended = tokio::time::timeout(Duration::from_secs(3), async {
        while events.next().await.is_some() {}
    })
    .await;
    assert!(
        ended.is_ok(),
        "the stream still runs without a token that opens it"
    );
    assert_eq!(
        Events::open(&h, Some(READER)).await.err(),
        Some(StatusCode::UNAUTHORIZED)
    );
}
