//! `alerts` of the config mapped onto hive-monitor's alerting: every condition and channel
//! kind exactly, `rules: []` as no alerting, escalation and timing under paused time, an
//! email through a real SMTP server (hive-sim's `SmtpSink`: Debian's python3-aiosmtpd, as in
//! hive-monitor's email tests; `.ci/run` installs it), a signed webhook to an HTTP server on
//! loopback, and channel settings hive-monitor refuses.
//!
//! The SMTP server and the HTTP receiver are real sockets, so those two tests run in real
//! time: waiting for the server to listen and for the mail or request to arrive is bounded
//! polling (50 ms steps) or a bounded wait for an event, the only real-time waits.

#![allow(clippy::unwrap_used)]

use std::{sync::Arc, time::Duration};

use axum::{Router, body::Bytes, extract::State, http::HeaderMap, http::Uri};
use hive_config::{ChannelConfig, Config, EmailConfig, Environment, Loader, Secret, SecretSource};
use hive_core::{FailureClass, ModelId, Outcome};
use hive_gateway::alerts::{AlertSetupError, alert_manager, channel, rule};
use hive_monitor::{
    Monitor, MonitorConfig,
    alert::{
        Alert, AlertError, AlertStatus, Condition, DeliveryError, Figures, Notification,
        Percentile, Rule, SIGNATURE_HEADER, Severity, Subject, TIMESTAMP_HEADER, Timestamp, Window,
    },
};
use hive_sim::{SmtpMode, SmtpSink};
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;
use tokio::{net::TcpListener, sync::mpsc, time::Instant};

const GRACE: Duration = Duration::from_secs(5);

/// Loads `resilience.yml` given as text, `{ env: NAME }` secrets from `env` only.
fn load(resilience: &str, env: &[(&str, &str)]) -> Config {
    Loader::new()
        .env(Environment::vars(env.iter().copied()))
        .load_str(std::env::temp_dir(), Some(resilience), None)
        .unwrap_or_else(|diagnostics| panic!("{diagnostics}"))
}

fn routes(list: &[(&str, &[&str])]) -> Vec<(String, Vec<String>)> {
    list.iter()
        .map(|(name, models)| {
            (
                (*name).to_owned(),
                models.iter().map(|m| (*m).to_owned()).collect(),
            )
        })
        .collect()
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

const SLACK_URL: &str = "https://hooks.slack.test/services/T0/B0/slack-token-0123456789";
const WEBHOOK_URL: &str = "https://pager.test/hooks/webhook-token-0123456789";
const SIGNING_KEY: &str = "signing-key-of-32-bytes-00000000";
const SMTP_PASSWORD: &str = "smtp-password-0123456789";

const EVERYTHING: &str = r#"
alerts:
  channels:
    slack: { kind: slack, webhook: { env: SLACK_URL } }
    starttls:
      kind: email
      host: smtp.hive.test
      username: alerts
      password: { env: SMTP_PASSWORD }
      from: "Hive alerts <alerts@hive.test>"
      to: [ops@hive.test, "On call <oncall@hive.test>"]
      timeout: 30s
    smtps: { kind: email, host: smtp.hive.test, security: implicit_tls, from: alerts@hive.test, to: [ops@hive.test] }
    relay: { kind: email, host: 127.0.0.1, security: plain, from: alerts@hive.test, to: [ops@hive.test] }
    custom_port: { kind: email, host: smtp.hive.test, port: 2525, from: alerts@hive.test, to: [ops@hive.test], timeout: 3s }
    pager: { kind: webhook, url: { env: WEBHOOK_URL }, signing_key: { env: SIGNING_KEY } }
    unsigned: { kind: webhook, url: { env: WEBHOOK_URL } }
    log: { kind: log }
  rules:
    - name: unavailable
      condition: { consecutive_failures: { at_least: 3 } }
      notify: [slack, starttls]
      escalate: { after: 5m, severity: critical, notify: [pager, smtps] }
    - name: failing
      condition: { failure_rate: { above: 20%, window: 1m, min_calls: 7 } }
      severity: info
      notify: [log]
    - name: failing_default_window
      condition: { failure_rate: { above: 0% } }
      notify: [relay]
    - name: breaker
      condition: breaker_open
      severity: critical
      notify: [custom_port]
    - name: stuck
      condition: { breaker_stuck_open: { longer_than: 10m } }
      notify: [unsigned]
      escalate: {}
    - name: route
      condition: route_down
      severity: critical
      notify: [pager, log]
    - name: identity
      condition: identity_mismatch
      notify: [log]
    - name: identity_hour
      condition: { identity_mismatch: { window: 1h } }
      notify: [log]
    - name: credentials
      condition: { credentials_rejected: { quiet_for: 10m } }
      notify: [log]
    - name: p50
      condition: { latency: { percentile: p50, above: 1s, window: 1m, min_calls: 3 } }
      notify: [log]
    - name: p95
      condition: { latency: { percentile: p95, above: 20s } }
      notify: [log]
    - name: p99
      condition: { latency: { percentile: p99, above: 1500ms, window: 1h, min_calls: 50 } }
      notify: [log]
    - name: availability
      condition: { availability: { below: 99%, window: 1h, min_requests: 100 } }
      notify: [log]
    - name: availability_default
      condition: { availability: { below: 90% } }
      notify: [log]
  group_wait: 1s
  group_interval: 2m
  repeat_interval: 3h
  evaluation_interval: 250ms
  dashboard_url: https://hive.test/dashboard
"#;

fn everything() -> Config {
    load(
        EVERYTHING,
        &[
            ("SLACK_URL", SLACK_URL),
            ("WEBHOOK_URL", WEBHOOK_URL),
            ("SIGNING_KEY", SIGNING_KEY),
            ("SMTP_PASSWORD", SMTP_PASSWORD),
        ],
    )
}

/// The rules of [`EVERYTHING`], written directly with hive-monitor's types.
fn expected_rules() -> Vec<Rule> {
    let log = ["log"];
    vec![
        Rule::new(
            "unavailable",
            Condition::ConsecutiveFailures { at_least: 3 },
        )
        .notify(["slack", "starttls"])
        .escalate(
            Duration::from_secs(300),
            Severity::Critical,
            ["pager", "smtps"],
        ),
        Rule::new(
            "failing",
            Condition::FailureRate {
                above: 0.2,
                window: Window::LastMinute,
                min_calls: 7,
            },
        )
        .severity(Severity::Info)
        .notify(log),
        Rule::new(
            "failing_default_window",
            Condition::FailureRate {
                above: 0.0,
                window: Window::Last5Minutes,
                min_calls: 10,
            },
        )
        .notify(["relay"]),
        Rule::new("breaker", Condition::BreakerOpen)
            .severity(Severity::Critical)
            .notify(["custom_port"]),
        Rule::new(
            "stuck",
            Condition::BreakerStuckOpen {
                longer_than: Duration::from_secs(600),
            },
        )
        .notify(["unsigned"])
        .escalate(
            Duration::from_secs(300),
            Severity::Critical,
            Vec::<String>::new(),
        ),
        Rule::new("route", Condition::RouteDown)
            .severity(Severity::Critical)
            .notify(["pager", "log"]),
        Rule::new(
            "identity",
            Condition::IdentityMismatch {
                window: Window::Last5Minutes,
            },
        )
        .notify(log),
        Rule::new(
            "identity_hour",
            Condition::IdentityMismatch {
                window: Window::LastHour,
            },
        )
        .notify(log),
        Rule::new(
            "credentials",
            Condition::CredentialsRejected {
                quiet_for: Duration::from_secs(600),
            },
        )
        .notify(log),
        Rule::new(
            "p50",
            Condition::Latency {
                percentile: Percentile::P50,
                above: Duration::from_secs(1),
                window: Window::LastMinute,
                min_calls: 3,
            },
        )
        .notify(log),
        Rule::new(
            "p95",
            Condition::Latency {
                percentile: Percentile::P95,
                above: Duration::from_secs(20),
                window: Window::Last5Minutes,
                min_calls: 10,
            },
        )
        .notify(log),
        Rule::new(
            "p99",
            Condition::Latency {
                percentile: Percentile::P99,
                above: Duration::from_millis(1500),
                window: Window::LastHour,
                min_calls: 50,
            },
        )
        .notify(log),
        Rule::new(
            "availability",
            Condition::Availability {
                below: 0.99,
                window: Window::LastHour,
                min_requests: 100,
            },
        )
        .notify(log),
        Rule::new(
            "availability_default",
            Condition::Availability {
                below: 0.9,
                window: Window::Last5Minutes,
                min_requests: 10,
            },
        )
        .notify(log),
    ]
}

/// The `Debug` form of one channel in the builder's, from its name to the next channel.
fn shown<'a>(debug: &'a str, name: &str) -> &'a str {
    let start = debug
        .find(&format!("(\"{name}\", Channel"))
        .unwrap_or_else(|| panic!("no channel `{name}` in {debug}"));
    let rest = &debug[start..];
    &rest[..rest.find("}), (\"").map_or(rest.len(), |end| end + 1)]
}

#[tokio::test(start_paused = true)]
async fn every_condition_and_channel_kind_maps_exactly_and_starts() {
    let config = everything();
    // Each rule, field for field.
    let rules: Vec<Rule> = config.alerts.rules.iter().map(rule).collect();
    assert_eq!(rules, expected_rules());

    let builder = alert_manager(
        &config.alerts,
        &routes(&[("chat", &["gpt-4o", "claude"]), ("review", &["llama"])]),
        GRACE,
    )
    .unwrap()
    .expect("rules, so an alert manager");
    let debug = format!("{builder:?}");
    for secret in [
        SLACK_URL,
        "slack-token-0123456789",
        WEBHOOK_URL,
        "webhook-token-0123456789",
        SIGNING_KEY,
        SMTP_PASSWORD,
    ] {
        assert!(!debug.contains(secret), "{secret} shows in {debug}");
    }
    // Every channel, of its kind, with its settings; ports by security unless given.
    assert!(
        shown(&debug, "slack").contains("SlackChannel { webhook_url: https://hooks.slack.test/…"),
        "{debug}"
    );
    let starttls = shown(&debug, "starttls");
    for part in [
        "host: \"smtp.hive.test\"",
        "port: 587",
        "security: StartTls",
        "username: Some(\"alerts\")",
        "password: Some([redacted])",
        "from: \"Hive alerts <alerts@hive.test>\"",
        "to: [\"ops@hive.test\", \"On call <oncall@hive.test>\"]",
        // The attempt timeout is the channel's bound on a delivery: 3 × its 30 s `timeout`.
        "attempt_timeout: 90s",
    ] {
        assert!(starttls.contains(part), "{part} not in {starttls}");
    }
    for (name, part) in [
        (
            "smtps",
            "port: 465, security: ImplicitTls, username: None, password: None",
        ),
        ("relay", "port: 25, security: Plain"),
        ("custom_port", "port: 2525, security: StartTls"),
        // A short SMTP `timeout` (3 × it under 10 s) keeps hive-monitor's 10 s attempt timeout.
        ("custom_port", "attempt_timeout: 10s"),
        (
            "pager",
            "WebhookChannel { url: https://pager.test/…, signing_key: Some(\"[redacted]\") }",
        ),
        (
            "unsigned",
            "WebhookChannel { url: https://pager.test/…, signing_key: None }",
        ),
        ("log", "notifier: LogChannel"),
    ] {
        assert!(shown(&debug, name).contains(part), "{part} not in {debug}");
    }
    for part in [
        "routes: [(\"chat\", [\"gpt-4o\", \"claude\"]), (\"review\", [\"llama\"])]",
        "timing: Timing { group_wait: 1s, group_interval: 120s, repeat_interval: 10800s }",
        "evaluation_interval: 250ms",
        "dashboard_url: Some(\"https://hive.test/dashboard\")",
    ] {
        assert!(debug.contains(part), "{part} not in {debug}");
    }

    // hive-monitor accepts the whole of it.
    let monitor = Monitor::start(MonitorConfig::default());
    let manager = builder.start(&monitor).unwrap();
    let stats = manager.stop().await;
    let names: Vec<&str> = stats.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        [
            "custom_port",
            "log",
            "pager",
            "relay",
            "slack",
            "smtps",
            "starttls",
            "unsigned"
        ]
    );
}

#[test]
fn no_rules_means_no_alert_manager() {
    let config = load(
        "alerts: { channels: { log: { kind: log } }, rules: [] }",
        &[],
    );
    assert!(config.alerts.rules.is_empty());
    assert!(alert_manager(&config.alerts, &[], GRACE).unwrap().is_none());
    // Left out, `rules` are the defaults (governance, config rejected, cluster link down)
    // over every channel.
    let config = load("alerts: { channels: { log: { kind: log } } }", &[]);
    assert_eq!(config.alerts.rules.len(), 4);
    assert!(alert_manager(&config.alerts, &[], GRACE).unwrap().is_some());
}

#[tokio::test(start_paused = true)]
async fn timing_and_escalation_from_the_config_drive_the_manager() {
    let config = load(
        r#"
alerts:
  channels: { log: { kind: log } }
  rules:
    - name: model_unavailable
      condition: { consecutive_failures: { at_least: 3 } }
      notify: [log]
      escalate: { after: 2m, severity: critical }
  evaluation_interval: 10s
  group_wait: 0s
"#,
        &[],
    );
    let monitor = Monitor::start(MonitorConfig::default());
    let manager = alert_manager(&config.alerts, &[], GRACE)
        .unwrap()
        .unwrap()
        .start(&monitor)
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1)).await;
    fail(&monitor, "gpt-4o", 3);
    // Not before the next evaluation, 10 s after the first.
    tokio::time::sleep(Duration::from_secs(9)).await;
    assert!(manager.alerts().is_empty());
    tokio::time::sleep(Duration::from_secs(1)).await;
    let alerts = manager.alerts();
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].rule, "model_unavailable");
    assert_eq!(
        (alerts[0].severity, alerts[0].escalated),
        (Severity::Warning, false)
    );
    // Escalated at critical once unresolved for 2 minutes.
    tokio::time::sleep(Duration::from_secs(2 * 60)).await;
    let alerts = manager.alerts();
    assert_eq!(
        (alerts[0].severity, alerts[0].escalated),
        (Severity::Critical, true)
    );
    let stats = manager.stop().await;
    assert_eq!(stats["log"].sent, 2, "{stats:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_email_channel_from_the_config_delivers_through_a_real_smtp_server() {
    let server = SmtpSink::start_with_login(SmtpMode::Plain, "alerts", SMTP_PASSWORD);
    let config = load(
        &format!(
            r#"
alerts:
  channels:
    ops-mail:
      kind: email
      host: 127.0.0.1
      port: {port}
      security: plain
      username: alerts
      password: {{ env: SMTP_PASSWORD }}
      from: "Hive alerts <alerts@hive.test>"
      to: [ops@hive.test]
      timeout: 5s
  rules:
    - name: model_unavailable
      condition: {{ consecutive_failures: {{ at_least: 3 }} }}
      notify: [ops-mail]
  group_wait: 10ms
  evaluation_interval: 20ms
  dashboard_url: https://hive.test/dashboard
"#,
            port = server.port()
        ),
        &[("SMTP_PASSWORD", SMTP_PASSWORD)],
    );
    let builder = alert_manager(&config.alerts, &[], GRACE).unwrap().unwrap();
    let debug = format!("{builder:?}");
    assert!(!debug.contains(SMTP_PASSWORD), "{debug}");
    assert!(debug.contains("password: Some([redacted])"), "{debug}");

    let monitor = Monitor::start(MonitorConfig::default());
    let manager = builder.start(&monitor).unwrap();
    let shown = format!("{manager:?}");
    assert!(!shown.contains(SMTP_PASSWORD), "{shown}");
    fail(&monitor, "gpt-4o-mini", 2);
    fail(&monitor, "claude-sonnet", 3);

    let message = server.message(0).await;
    assert_eq!(
        message.subject,
        "[FIRING:1] model_unavailable (warning): claude-sonnet"
    );
    assert_eq!(message.from, "Hive alerts <alerts@hive.test>");
    assert_eq!(message.to, "ops@hive.test");
    let text = &message.parts[0].text;
    assert!(
        text.contains("claude-sonnet failed 3 times in a row"),
        "{text}"
    );
    assert!(!text.contains("gpt-4o-mini"), "{text}");
    assert!(
        text.contains("Dashboard: https://hive.test/dashboard"),
        "{text}"
    );
    // The login of the config was used.
    assert!(
        server.auth_log().contains("alerts accepted"),
        "{}",
        server.auth_log()
    );
    let stats = manager.stop().await;
    assert_eq!((stats["ops-mail"].sent, stats["ops-mail"].failed), (1, 0));
    assert!(!format!("{stats:?}").contains(SMTP_PASSWORD));
}

/// A notification built by hand, for a channel alone.
fn notification() -> Notification {
    Notification {
        version: 1,
        id: "model_unavailable/1".into(),
        channel: "ops-mail".into(),
        group: "model_unavailable".into(),
        status: AlertStatus::Firing,
        severity: Severity::Warning,
        title: "[FIRING:1] model_unavailable (warning)".into(),
        firing: 1,
        resolved: 0,
        alerts: vec![Alert {
            rule: "model_unavailable".into(),
            subject: Subject::Model(ModelId::new("gpt-4o")),
            status: AlertStatus::Firing,
            severity: Severity::Warning,
            escalated: false,
            summary: "gpt-4o failed 3 times in a row".into(),
            figures: Figures::from([("consecutive_failures", 3.0)]),
            started_at: Timestamp::now(),
            ended_at: None,
            duration: Duration::from_secs(1),
        }],
        dashboard_url: None,
        created_at: Timestamp::now(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_email_timeout_of_the_config_reaches_the_smtp_client() {
    // A listener whose accept queue is full (backlog 0, never accepting): a connection to it
    // is never answered. Filled with connections until one times out (Linux drops the SYN).
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = socket.listen(0).unwrap();
    let addr = listener.local_addr().unwrap();
    let mut queued = Vec::new();
    let full = (0..16).any(|_| {
        match std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(100)) {
            Ok(stream) => {
                queued.push(stream);
                false
            }
            Err(e) => e.kind() == std::io::ErrorKind::TimedOut,
        }
    });
    assert!(full, "the accept queue never filled");
    let config = load(
        &format!(
            r#"
alerts:
  channels:
    ops-mail: {{ kind: email, host: 127.0.0.1, port: {port}, security: plain, from: alerts@hive.test, to: [ops@hive.test], timeout: 300ms }}
  rules: [{{ name: down, condition: breaker_open, notify: [ops-mail] }}]
"#,
            port = addr.port()
        ),
        &[],
    );
    let ops_mail = channel("ops-mail", &config.alerts.channels["ops-mail"]).unwrap();
    let started = Instant::now();
    let error = ops_mail
        .notifier()
        .deliver(&notification())
        .await
        .unwrap_err();
    let waited = started.elapsed();
    assert_eq!(error, DeliveryError::Timeout(Duration::from_millis(300)));
    // Given up after the 300 ms of the config, not lettre's 60 s nor the channel's 10 s.
    assert!(
        waited >= Duration::from_millis(300) && waited < Duration::from_secs(5),
        "{waited:?}"
    );
    drop((listener, queued));
}

/// One request that reached the receiver.
#[derive(Debug)]
struct Hit {
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
}

async fn receive(
    State(hits): State<Arc<mpsc::UnboundedSender<Hit>>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> &'static str {
    let _ = hits.send(Hit { uri, headers, body });
    "ok"
}

fn hex_decode(hex: &str) -> Vec<u8> {
    assert_eq!(hex.len() % 2, 0, "{hex}");
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_channel_from_the_config_signs_with_its_key() {
    let (tx, mut hits) = mpsc::unbounded_channel();
    let app = Router::new().fallback(receive).with_state(Arc::new(tx));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let url = format!("http://{addr}/hooks/webhook-token-0123456789");

    let config = load(
        r#"
alerts:
  channels:
    pager: { kind: webhook, url: { env: HOOK_URL }, signing_key: { env: HOOK_KEY } }
  rules:
    - name: model_unavailable
      condition: { consecutive_failures: { at_least: 3 } }
      severity: critical
      notify: [pager]
  group_wait: 0s
  evaluation_interval: 20ms
"#,
        &[("HOOK_URL", &url), ("HOOK_KEY", SIGNING_KEY)],
    );
    let monitor = Monitor::start(MonitorConfig::default());
    let builder = alert_manager(&config.alerts, &[], GRACE).unwrap().unwrap();
    let debug = format!("{builder:?}");
    assert!(
        !debug.contains(SIGNING_KEY) && !debug.contains("webhook-token"),
        "{debug}"
    );
    let manager = builder.start(&monitor).unwrap();
    fail(&monitor, "gpt-4o", 3);

    let hit = tokio::time::timeout(Duration::from_secs(10), hits.recv())
        .await
        .expect("no request reached the receiver within 10 s")
        .unwrap();
    assert_eq!(hit.uri.path(), "/hooks/webhook-token-0123456789");
    let body: Value = serde_json::from_slice(&hit.body).unwrap();
    assert_eq!(body["channel"], "pager");
    assert_eq!(body["severity"], "critical");
    assert_eq!(body["alerts"][0]["subject"]["name"], "gpt-4o");

    // X-Hive-Signature-256: `sha256=` and the hex HMAC-SHA256, under the key, of
    // `{X-Hive-Timestamp}.{raw body}` (hive-monitor's documented scheme), checked here with
    // the hmac crate, in constant time.
    let timestamp = hit.headers[TIMESTAMP_HEADER].to_str().unwrap();
    assert!(timestamp.parse::<u64>().is_ok(), "{timestamp}");
    let signature = hit.headers[SIGNATURE_HEADER].to_str().unwrap();
    let hex = signature
        .strip_prefix("sha256=")
        .expect("a sha256= signature");
    let verify = |key: &[u8], signed: &[u8]| {
        let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
        mac.update(signed);
        mac.verify_slice(&hex_decode(hex)).is_ok()
    };
    let mut signed = format!("{timestamp}.").into_bytes();
    signed.extend_from_slice(&hit.body);
    assert!(verify(SIGNING_KEY.as_bytes(), &signed));
    assert!(!verify(b"another-key-of-32-bytes-00000000", &signed));
    let mut tampered = signed.clone();
    *tampered.last_mut().unwrap() ^= 1;
    assert!(!verify(SIGNING_KEY.as_bytes(), &tampered));
    manager.stop().await;
}

fn secret(name: &str, value: &str) -> Secret {
    Secret::new(SecretSource::Env(name.to_owned()), value)
}

fn email(from: &str) -> EmailConfig {
    EmailConfig {
        host: "smtp.hive.test".to_owned(),
        port: None,
        security: hive_config::SmtpSecurity::StartTls,
        username: Some("alerts".to_owned()),
        password: Some(secret("SMTP_PASSWORD", SMTP_PASSWORD)),
        from: from.to_owned(),
        to: vec!["ops@hive.test".to_owned()],
        timeout: Duration::from_secs(10),
    }
}

/// A loaded config whose `ops-mail` channel is replaced by `settings` (the loader itself
/// refuses some of these).
fn with_channel(settings: ChannelConfig) -> Config {
    let mut config = load(
        r#"
alerts:
  channels: { ops-mail: { kind: log }, log: { kind: log } }
  rules:
    - { name: model_unavailable, condition: breaker_open, notify: [ops-mail, log] }
"#,
        &[],
    );
    config
        .alerts
        .channels
        .insert("ops-mail".to_owned(), settings);
    config
}

fn setup_error(config: &Config) -> AlertSetupError {
    let error = alert_manager(&config.alerts, &[], GRACE).unwrap_err();
    for shown in [error.to_string(), format!("{error:?}")] {
        for secret in [SMTP_PASSWORD, SIGNING_KEY, "hook-token", "basic-password"] {
            assert!(!shown.contains(secret), "{secret} shows in {shown}");
        }
    }
    error
}

#[test]
fn an_invalid_channel_setting_names_the_channel_and_never_a_secret() {
    // A sender that is no address.
    let error = setup_error(&with_channel(ChannelConfig::Email(email("Hive alerts"))));
    assert!(
        matches!(
            &error,
            AlertSetupError::Channel { channel, kind: "email", reason: AlertError::Invalid { field: "email.from", .. } }
                if channel == "ops-mail"
        ),
        "{error:?}"
    );
    assert!(
        error.to_string().starts_with(
            "alert channel `ops-mail` (email): invalid alert setting `email.from`: not a mailbox"
        ),
        "{error}"
    );

    // A recipient that is no address.
    let mut settings = email("alerts@hive.test");
    settings.to.push("oncall at hive.test".to_owned());
    let error = setup_error(&with_channel(ChannelConfig::Email(settings)));
    assert!(
        matches!(
            &error,
            AlertSetupError::Channel {
                reason: AlertError::Invalid {
                    field: "email.to",
                    ..
                },
                ..
            }
        ),
        "{error:?}"
    );
    assert!(
        error.to_string().contains("`oncall at hive.test`"),
        "{error}"
    );

    // A password without a username.
    let mut settings = email("alerts@hive.test");
    settings.username = None;
    let error = setup_error(&with_channel(ChannelConfig::Email(settings)));
    assert!(
        matches!(&error, AlertSetupError::Channel { channel, reason: AlertError::Invalid { field: "email.username", .. }, .. } if channel == "ops-mail"),
        "{error:?}"
    );

    // A webhook URL that is no URL, and a signing key too short: the value is never shown.
    let error = setup_error(&with_channel(ChannelConfig::Webhook {
        url: secret("HOOK_URL", "ftp://pager.test/hook-token"),
        signing_key: None,
    }));
    assert_eq!(
        error.to_string(),
        "alert channel `ops-mail` (webhook): invalid alert setting `webhook.url`: must start with http:// or https://"
    );
    let error = setup_error(&with_channel(ChannelConfig::Webhook {
        url: secret("HOOK_URL", "https://pager.test/hook-token"),
        signing_key: Some(secret("HOOK_KEY", "short-key")),
    }));
    assert_eq!(
        error.to_string(),
        "alert channel `ops-mail` (webhook): invalid alert setting `webhook.signing_key`: must be at least 16 bytes"
    );

    // A Slack webhook with a login before the host: the config refuses it when it loads,
    // without showing it; built by hand, hive-monitor refuses it too.
    let login = "https://user:basic-password@hooks.slack.test/hook-token";
    let refused = Loader::new()
        .env(Environment::vars([("SLACK_URL", login)]))
        .load_str(
            std::env::temp_dir(),
            Some("alerts:\n  channels: { slack: { kind: slack, webhook: { env: SLACK_URL } } }\n"),
            None,
        )
        .unwrap_err();
    assert!(
        refused.to_string().contains("login before its host"),
        "{refused}"
    );
    assert!(!refused.to_string().contains("basic-password"), "{refused}");
    let error = setup_error(&with_channel(ChannelConfig::Slack {
        webhook: secret("SLACK_URL", login),
    }));
    assert_eq!(
        error.to_string(),
        "alert channel `ops-mail` (slack): invalid alert setting `slack.webhook_url`: must not carry credentials before the host"
    );

    // `channel` alone says the same.
    let error = channel("x", &ChannelConfig::Email(email("nobody"))).unwrap_err();
    assert!(matches!(&error, AlertSetupError::Channel { channel, .. } if channel == "x"));
}

#[test]
fn rules_naming_unknown_channels_and_bad_routes_are_refused() {
    let mut config = with_channel(ChannelConfig::Log);
    config.alerts.rules[0].escalate = Some(hive_config::EscalationConfig {
        after: Duration::from_secs(60),
        severity: hive_config::Severity::Critical,
        notify: vec!["pager".to_owned()],
    });
    assert_eq!(
        setup_error(&config),
        AlertSetupError::UnknownChannel {
            rule: "model_unavailable".to_owned(),
            channel: "pager".to_owned(),
        }
    );

    let config = with_channel(ChannelConfig::Log);
    let error = alert_manager(&config.alerts, &routes(&[("chat", &[])]), GRACE).unwrap_err();
    assert_eq!(error.to_string(), "route `chat` has no model");
    let error = alert_manager(
        &config.alerts,
        &routes(&[("chat", &["a"]), ("chat", &["b"])]),
        GRACE,
    )
    .unwrap_err();
    assert_eq!(error.to_string(), "route `chat` is given twice");
}
