//! Slack and webhook deliveries to a real HTTP server on loopback (hyper, through axum): the
//! JSON that arrived, its signature, retries counted at the receiver, and a receiver that
//! hangs or is down while model calls go on at full speed. Real time (sockets do not run in
//! paused time); every wait is for an event, bounded by a timeout.

#![allow(clippy::unwrap_used)]

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use axum::{Router, body::Bytes, extract::State, http::HeaderMap, response::IntoResponse};
use hive_core::{FailureClass, ModelId, Outcome, ResilienceEvent};
use hive_monitor::{
    Monitor, MonitorConfig,
    alert::{
        AlertManager, Channel, Condition, DeliveryFuture, Jitter, Notification, Notifier, Rule,
        SIGNATURE_HEADER, SlackChannel, TIMESTAMP_HEADER, WebhookChannel, sign,
    },
};
use serde_json::Value;
use tokio::{net::TcpListener, sync::mpsc, time::Instant};

/// What the receiver does with each request.
#[derive(Clone, Copy, Debug)]
enum Behaviour {
    /// Answers 200 `ok`.
    Ok,
    /// Answers `status` to the first `n` requests, then 200.
    FailFirst(u64, u16),
    /// Never answers.
    Hang,
}

/// One request that reached the receiver.
#[derive(Debug)]
struct Hit {
    path: String,
    headers: HeaderMap,
    body: Bytes,
}

struct ReceiverState {
    behaviour: Behaviour,
    count: AtomicU64,
    hits: mpsc::UnboundedSender<Hit>,
}

struct Receiver {
    addr: std::net::SocketAddr,
    state: Arc<ReceiverState>,
    hits: mpsc::UnboundedReceiver<Hit>,
}

impl Receiver {
    async fn start(behaviour: Behaviour) -> Self {
        let (tx, hits) = mpsc::unbounded_channel();
        let state = Arc::new(ReceiverState {
            behaviour,
            count: AtomicU64::new(0),
            hits: tx,
        });
        let app = Router::new()
            .fallback(handle)
            .with_state(Arc::clone(&state));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { addr, state, hits }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The next request, within 10 s.
    async fn next(&mut self) -> Hit {
        tokio::time::timeout(Duration::from_secs(10), self.hits.recv())
            .await
            .expect("no request reached the receiver within 10 s")
            .unwrap()
    }

    fn count(&self) -> u64 {
        self.state.count.load(Ordering::SeqCst)
    }
}

async fn handle(
    State(state): State<Arc<ReceiverState>>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Bytes,
) -> axum::response::Response {
    let n = state.count.fetch_add(1, Ordering::SeqCst) + 1;
    let _ = state.hits.send(Hit {
        path: uri.to_string(),
        headers,
        body,
    });
    match state.behaviour {
        Behaviour::Ok => "ok".into_response(),
        Behaviour::FailFirst(first, status) if n <= first => (
            axum::http::StatusCode::from_u16(status).unwrap(),
            "unavailable",
        )
            .into_response(),
        Behaviour::FailFirst(..) => "ok".into_response(),
        Behaviour::Hang => std::future::pending().await,
    }
}

fn fail(monitor: &Monitor, model: &str, times: usize) {
    let recorder = monitor.model(ModelId::new(model));
    for _ in 0..times {
        recorder.record(
            &Outcome::failure(FailureClass::Unavailable),
            Duration::from_millis(20),
        );
    }
}

fn unavailable(at_least: u64, channel: &str) -> Rule {
    Rule::new(
        format!("model_unavailable_{at_least}"),
        Condition::ConsecutiveFailures { at_least },
    )
    .notify([channel])
}

fn json(hit: &Hit) -> Value {
    serde_json::from_slice(&hit.body).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slack_receives_a_message_that_reads_well_then_its_resolution() {
    let mut slack = Receiver::start(Behaviour::Ok).await;
    let monitor = Monitor::start(MonitorConfig::default());
    let manager = AlertManager::builder()
        .channel(
            "slack",
            SlackChannel::new(slack.url("/services/T000/B000/slack-token-1234")).unwrap(),
        )
        .rule(
            Rule::new(
                "model_unavailable",
                Condition::ConsecutiveFailures { at_least: 3 },
            )
            .notify(["slack"]),
        )
        .dashboard_url("https://hive.test/dashboard")
        .evaluation_interval(Duration::from_millis(20))
        .group_wait(Duration::ZERO)
        .group_interval(Duration::from_millis(100))
        .start(&monitor)
        .unwrap();
    fail(&monitor, "gpt-4o", 3);
    let hit = slack.next().await;
    assert_eq!(hit.path, "/services/T000/B000/slack-token-1234");
    assert_eq!(hit.headers["content-type"], "application/json");
    let message = json(&hit);
    assert_eq!(
        message["text"],
        "⚠️ [FIRING:1] model_unavailable (warning): gpt-4o"
    );
    let blocks = message["blocks"].as_array().unwrap();
    assert_eq!(blocks[0]["type"], "header");
    assert_eq!(blocks[0]["text"]["text"], "⚠️ Model unavailable · 1 firing");
    let alert = blocks[1]["text"]["text"].as_str().unwrap();
    assert!(
        alert.starts_with("⚠️ *gpt-4o* — gpt-4o failed 3 times in a row\n_firing since "),
        "{alert}"
    );
    assert!(alert.contains(" UTC ("), "{alert}");
    assert!(alert.ends_with("· warning"), "{alert}");
    assert_eq!(blocks[1]["fields"][0]["text"], "*consecutive failures*\n3");
    assert_eq!(
        blocks[2]["elements"][0]["url"],
        "https://hive.test/dashboard"
    );
    assert_eq!(
        blocks[2]["elements"][0]["text"]["text"],
        "Open the dashboard"
    );
    assert!(
        blocks[3]["elements"][0]["text"]
            .as_str()
            .unwrap()
            .contains("rule `model_unavailable`")
    );

    // It answers again: the resolution follows at the next flush.
    monitor
        .model(ModelId::new("gpt-4o"))
        .record(&Outcome::Success, Duration::from_millis(20));
    let resolved = json(&slack.next().await);
    assert_eq!(
        resolved["blocks"][0]["text"]["text"],
        "✅ Resolved: Model unavailable"
    );
    assert!(
        resolved["blocks"][1]["text"]["text"]
            .as_str()
            .unwrap()
            .contains("resolved after ")
    );
    manager.stop().await;
    assert_eq!(slack.count(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_webhook_receives_the_documented_json_signed_with_hmac_sha256() {
    let mut hook = Receiver::start(Behaviour::Ok).await;
    let key = "a-signing-key-of-32-bytes-000000";
    let monitor = Monitor::start(MonitorConfig::default());
    let manager = AlertManager::builder()
        .channel(
            "ops-webhook",
            WebhookChannel::new(hook.url("/hooks/hive?token=abc123"))
                .unwrap()
                .signing_key(key)
                .unwrap(),
        )
        .rule(
            Rule::new(
                "model_unavailable",
                Condition::ConsecutiveFailures { at_least: 3 },
            )
            .notify(["ops-webhook"]),
        )
        .dashboard_url("https://hive.test/dashboard")
        .evaluation_interval(Duration::from_millis(20))
        .group_wait(Duration::ZERO)
        .group_interval(Duration::from_millis(100))
        .start(&monitor)
        .unwrap();
    fail(&monitor, "gpt-4o", 3);
    let hit = hook.next().await;
    assert_eq!(hit.path, "/hooks/hive?token=abc123");

    // The signature: HMAC-SHA256 of `{timestamp}.{body}`, recomputed over the raw body.
    let timestamp: u64 = hit.headers[TIMESTAMP_HEADER]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(now.abs_diff(timestamp) <= 60);
    let signature = hit.headers[SIGNATURE_HEADER].to_str().unwrap();
    assert_eq!(signature, sign(key.as_bytes(), timestamp, &hit.body));
    assert!(signature.starts_with("sha256=") && signature.len() == 7 + 64);
    assert_ne!(
        signature,
        sign(b"another key of 32 bytes........", timestamp, &hit.body)
    );
    assert_ne!(signature, sign(key.as_bytes(), timestamp + 1, &hit.body));

    let body = json(&hit);
    assert_eq!(
        hit.headers["x-hive-notification-id"],
        body["id"].as_str().unwrap()
    );
    assert_eq!(body["version"], 1);
    assert_eq!(body["id"], "model_unavailable/1");
    assert_eq!(body["channel"], "ops-webhook");
    assert_eq!(body["group"], "model_unavailable");
    assert_eq!(body["status"], "firing");
    assert_eq!(body["severity"], "warning");
    assert_eq!(body["title"], "[FIRING:1] model_unavailable (warning)");
    assert_eq!(
        (body["firing"].as_u64(), body["resolved"].as_u64()),
        (Some(1), Some(0))
    );
    assert_eq!(body["dashboard_url"], "https://hive.test/dashboard");
    let alert = &body["alerts"][0];
    assert_eq!(alert["rule"], "model_unavailable");
    assert_eq!(
        alert["subject"],
        serde_json::json!({"kind": "model", "name": "gpt-4o"})
    );
    assert_eq!(alert["status"], "firing");
    assert_eq!(alert["escalated"], false);
    assert_eq!(alert["summary"], "gpt-4o failed 3 times in a row");
    assert_eq!(
        alert["figures"],
        serde_json::json!({"consecutive_failures": 3.0})
    );
    assert_eq!(alert["ended_at"], Value::Null);
    let started = alert["started_at"].as_str().unwrap();
    assert!(started.len() == 24 && started.ends_with('Z') && &started[10..11] == "T");
    assert!(alert["duration_seconds"].as_f64().unwrap() >= 0.0);

    monitor
        .model(ModelId::new("gpt-4o"))
        .record(&Outcome::Success, Duration::from_millis(20));
    let resolved = hook.next().await;
    let body = json(&resolved);
    assert_eq!(body["status"], "resolved");
    assert_eq!(body["id"], "model_unavailable/2");
    assert!(
        body["alerts"][0]["ended_at"]
            .as_str()
            .unwrap()
            .ends_with('Z')
    );
    let timestamp: u64 = resolved.headers[TIMESTAMP_HEADER]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(
        resolved.headers[SIGNATURE_HEADER].to_str().unwrap(),
        sign(key.as_bytes(), timestamp, &resolved.body)
    );
    manager.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_deliveries_are_retried_through_the_retry_layer_and_permanent_refusals_are_not() {
    // 503 twice, then 200: three attempts reach the receiver, one notification is sent.
    let mut flaky = Receiver::start(Behaviour::FailFirst(2, 503)).await;
    // 400 always: one attempt, given up at once.
    let mut refusing = Receiver::start(Behaviour::FailFirst(u64::MAX, 400)).await;
    let monitor = Monitor::start(MonitorConfig::default());
    let fast = |url: String| {
        Channel::new(WebhookChannel::new(url).unwrap())
            .retry(4, Duration::from_millis(10), Duration::from_millis(40))
            .jitter(Jitter::None)
    };
    let manager = AlertManager::builder()
        .channel("flaky", fast(flaky.url("/flaky")))
        .channel("refusing", fast(refusing.url("/refusing")))
        .rule(unavailable(3, "flaky"))
        .rule(unavailable(4, "refusing"))
        .evaluation_interval(Duration::from_millis(20))
        .group_wait(Duration::ZERO)
        .start(&monitor)
        .unwrap();
    fail(&monitor, "gpt-4o", 4);
    for _ in 0..3 {
        let hit = flaky.next().await;
        assert_eq!(json(&hit)["id"], "model_unavailable_3/1");
    }
    refusing.next().await;
    // Stopping lets the channels finish what they hold, then tells what they did.
    let stats = manager.stop().await;
    let flaky_stats = stats["flaky"];
    assert_eq!(
        (flaky_stats.attempts, flaky_stats.sent, flaky_stats.failed),
        (3, 1, 0)
    );
    let refusing_stats = stats["refusing"];
    assert_eq!(
        (
            refusing_stats.attempts,
            refusing_stats.sent,
            refusing_stats.failed
        ),
        (1, 0, 1)
    );
    assert_eq!((flaky.count(), refusing.count()), (3, 1));
}

/// The model side of a service: what a model call costs the monitor (an attempt recorded,
/// an event emitted), `n` times.
fn model_side(monitor: &Monitor, n: u32) -> Duration {
    let recorder = monitor.model(ModelId::new("busy"));
    let sink = monitor.event_sink();
    let model = ModelId::new("busy");
    let started = Instant::now();
    for attempt in 0..n {
        recorder.record(&Outcome::Success, Duration::from_millis(5));
        sink.emit(|| ResilienceEvent::Retry {
            model,
            attempt,
            delay: Duration::from_millis(1),
            class: FailureClass::Timeout,
        });
    }
    started.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_receiver_slows_no_model_call_is_retried_and_overflow_is_dropped() {
    const CALLS: u32 = 20_000;
    // The same work on a monitor without alerting, for comparison.
    let quiet = Monitor::start(MonitorConfig::default());
    model_side(&quiet, CALLS); // warm up
    let baseline = model_side(&quiet, CALLS);

    let mut hanging = Receiver::start(Behaviour::Hang).await;
    let monitor = Monitor::start(MonitorConfig::default());
    let attempt_timeout = Duration::from_millis(300);
    let manager = AlertManager::builder()
        .channel(
            "hook",
            Channel::new(WebhookChannel::new(hanging.url("/hang")).unwrap())
                .queue(1)
                .rate_limit(None)
                .attempt_timeout(attempt_timeout)
                .retry(3, Duration::from_millis(10), Duration::from_millis(20))
                .jitter(Jitter::None)
                .breaker(3, Duration::from_secs(30)),
        )
        .rule(unavailable(3, "hook"))
        .rule(unavailable(4, "hook"))
        .rule(unavailable(5, "hook"))
        .evaluation_interval(Duration::from_millis(20))
        .group_wait(Duration::ZERO)
        .shutdown_grace(Duration::from_secs(10))
        .start(&monitor)
        .unwrap();
    fail(&monitor, "gpt-4o", 3);
    // The first attempt reached the receiver, which holds it: the channel is stuck.
    hanging.next().await;
    let while_hanging = model_side(&monitor, CALLS);
    println!(
        "{CALLS} attempts recorded and events emitted: {baseline:?} without alerting, \
         {while_hanging:?} while the receiver hangs"
    );
    assert!(
        while_hanging < attempt_timeout,
        "the model side waited for the receiver: {while_hanging:?}"
    );
    assert!(
        while_hanging <= baseline * 4 + Duration::from_millis(50),
        "{while_hanging:?} against {baseline:?}"
    );
    assert_eq!(hanging.count(), 1, "still the first attempt, held");

    // Two more rules fire while the channel is stuck: one notification waits in the queue
    // (capacity 1), the other is dropped and counted.
    fail(&monitor, "gpt-4o", 2);
    // Each attempt times out after 300 ms and is retried: three reach the receiver, then
    // the breaker (3 failures in a row) opens and refuses the queued notification.
    hanging.next().await;
    hanging.next().await;
    let stats = manager.stop().await;
    let hook = stats["hook"];
    assert_eq!(
        (hook.attempts, hook.sent, hook.failed, hook.dropped),
        (3, 0, 2, 1),
        "{hook:?}"
    );
    assert_eq!(hanging.count(), 3);
}

/// A notifier that signals every attempt before passing it on.
#[derive(Debug)]
struct Signalling<N> {
    inner: N,
    attempts: mpsc::UnboundedSender<()>,
}

impl<N: Notifier> Notifier for Signalling<N> {
    fn kind(&self) -> &'static str {
        self.inner.kind()
    }

    fn deliver<'a>(&'a self, notification: &'a Notification) -> DeliveryFuture<'a> {
        let _ = self.attempts.send(());
        self.inner.deliver(notification)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_that_is_down_is_retried_then_given_up() {
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let (tx, mut attempts) = mpsc::unbounded_channel();
    let monitor = Monitor::start(MonitorConfig::default());
    let manager = AlertManager::builder()
        .channel(
            "hook",
            Channel::new(Signalling {
                inner: WebhookChannel::new(format!("http://{closed}/down")).unwrap(),
                attempts: tx,
            })
            .retry(3, Duration::from_millis(10), Duration::from_millis(20))
            .jitter(Jitter::None),
        )
        .rule(unavailable(3, "hook"))
        .evaluation_interval(Duration::from_millis(20))
        .group_wait(Duration::ZERO)
        .start(&monitor)
        .unwrap();
    let started = Instant::now();
    fail(&monitor, "gpt-4o", 3);
    assert!(started.elapsed() < Duration::from_millis(50));
    for _ in 0..3 {
        tokio::time::timeout(Duration::from_secs(10), attempts.recv())
            .await
            .unwrap();
    }
    let stats = manager.stop().await;
    let hook = stats["hook"];
    assert_eq!(
        (hook.attempts, hook.sent, hook.failed),
        (3, 0, 1),
        "{hook:?}"
    );
}
