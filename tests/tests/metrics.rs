//! Metrics end to end: a `ModelManager` with metrics on and a monitor, the Prometheus
//! exporter serving on a loopback port, a known sequence of calls, and the scrape parsed
//! back from the text format (paused time).

#![allow(clippy::unwrap_used)]

use std::{
    collections::BTreeMap,
    sync::{
        Arc,
        atomic::{AtomicU32, Ordering},
    },
    time::Duration,
};

use bytes::Bytes;
use hive_core::BoxError;
use hive_monitor::{Monitor, MonitorConfig, install_prometheus};
use hive_resilience::{ModelManager, ModelSpec};
use http_body_util::{BodyExt, Empty};
use hyper_util::{client::legacy::Client, rt::TokioExecutor};
use tokio::time::sleep;
use tower::{ServiceExt, util::BoxCloneService};

type Model = BoxCloneService<&'static str, &'static str, BoxError>;

/// A model that refuses the connection while `down`, else answers after 20 ms.
fn model(name: &'static str, down: bool, calls: Arc<AtomicU32>) -> Model {
    BoxCloneService::new(tower::service_fn(move |_: &'static str| {
        calls.fetch_add(1, Ordering::SeqCst);
        async move {
            sleep(Duration::from_millis(20)).await;
            if down {
                Err::<_, BoxError>(
                    std::io::Error::from(std::io::ErrorKind::ConnectionRefused).into(),
                )
            } else {
                Ok(name)
            }
        }
    }))
}

/// Parses Prometheus's text format into `name{label="value",…}` (labels sorted) → value.
fn parse(text: &str) -> BTreeMap<String, f64> {
    let mut samples = BTreeMap::new();
    for line in text
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let (series, value) = line.rsplit_once(' ').unwrap();
        let key = match series.split_once('{') {
            Some((name, labels)) => {
                let mut labels: Vec<&str> = labels.trim_end_matches('}').split(',').collect();
                labels.sort_unstable();
                format!("{name}{{{}}}", labels.join(","))
            }
            None => series.to_owned(),
        };
        samples.insert(key, value.parse().unwrap());
    }
    samples
}

#[tokio::test(start_paused = true)]
async fn a_scrape_shows_what_the_calls_did() {
    let exporter = install_prometheus().unwrap();
    let monitor = Monitor::start(MonitorConfig {
        metrics: true,
        ..MonitorConfig::default()
    });
    let (primary_calls, backup_calls) = (Arc::new(AtomicU32::new(0)), Arc::new(AtomicU32::new(0)));
    let manager = ModelManager::builder()
        .metrics(true)
        .monitor(&monitor)
        .model(
            ModelSpec::new("primary", model("primary", true, primary_calls.clone()))
                .retry(|r| r.max_attempts(1)),
        )
        .model(ModelSpec::new(
            "backup",
            model("backup", false, backup_calls.clone()),
        ))
        .build()
        .unwrap();
    // Six requests: the primary fails five in a row (its breaker opens at the fifth), the
    // backup answers each; the sixth skips the primary without a call.
    for _ in 0..6 {
        let routed = manager.service().oneshot("q").await.unwrap();
        assert_eq!(routed.response, "backup");
    }
    assert_eq!(
        (
            primary_calls.load(Ordering::SeqCst),
            backup_calls.load(Ordering::SeqCst)
        ),
        (5, 6)
    );
    // Let the monitor take its events and set its gauges.
    sleep(Duration::from_secs(2)).await;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(exporter.clone().serve(listener));
    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    let response = client
        .get(format!("http://{address}/metrics").parse().unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = String::from_utf8(
        response
            .into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec(),
    )
    .unwrap();
    let samples = parse(&text);
    let get = |key: &str| {
        *samples
            .get(key)
            .unwrap_or_else(|| panic!("no `{key}` in the scrape:\n{text}"))
    };
    assert_eq!(
        get(r#"hive_calls_total{model="primary",outcome="connect"}"#),
        5.0
    );
    assert_eq!(
        get(r#"hive_calls_total{model="backup",outcome="success"}"#),
        6.0
    );
    assert_eq!(
        get(r#"hive_breaker_state{model="primary",state="open"}"#),
        1.0
    );
    assert_eq!(
        get(r#"hive_breaker_state{model="primary",state="closed"}"#),
        0.0
    );
    assert_eq!(
        get(r#"hive_breaker_state{model="backup",state="closed"}"#),
        1.0
    );
    assert_eq!(
        get(r#"hive_breaker_transitions_total{from="closed",model="primary",to="open"}"#),
        1.0
    );
    assert_eq!(
        get(r#"hive_requests_total{result="answered",route="default"}"#),
        6.0
    );
    assert_eq!(
        get(r#"hive_requests_total{result="failed",route="default"}"#),
        0.0
    );
    assert_eq!(
        get(r#"hive_request_duration_seconds_count{route="default"}"#),
        6.0
    );
    assert_eq!(
        get(r#"hive_attempt_duration_seconds_count{model="primary"}"#),
        5.0
    );
    assert_eq!(
        get(r#"hive_attempt_duration_seconds_count{model="backup"}"#),
        6.0
    );
    // Each attempt on the backup took 20 ms: all in the 25 ms bucket, none in the 10 ms.
    assert_eq!(
        get(r#"hive_attempt_duration_seconds_bucket{le="0.025",model="backup"}"#),
        6.0
    );
    assert_eq!(
        get(r#"hive_attempt_duration_seconds_bucket{le="0.01",model="backup"}"#),
        0.0
    );
    assert_eq!(
        get(r#"hive_failovers_total{from="primary",reason="connect",to="backup"}"#),
        5.0
    );
    assert_eq!(
        get(r#"hive_failovers_total{from="primary",reason="rejected",to="backup"}"#),
        1.0,
        "the sixth request skipped the open breaker"
    );
    // Degraded: its breaker is open (2 = degraded).
    assert_eq!(get(r#"hive_health_status{model="primary"}"#), 2.0);
    assert_eq!(get("hive_models_up"), 1.0);
    assert_eq!(get("hive_models"), 2.0);
    assert_eq!(get(r#"hive_availability_ratio{window="1m"}"#), 1.0);
    assert_eq!(get("hive_events_dropped_total"), 0.0);
}
