//! Email alerts to a real SMTP server on loopback: hive-sim's [`SmtpSink`] (Debian's
//! python3-aiosmtpd, installed by `.ci/run`), started by each test, in plain, STARTTLS (with
//! authentication) and implicit-TLS modes; the message that arrived is read back decoded by
//! Python's `email` package. And the channel's timeout against servers that accept a
//! connection and then stop answering.
//!
//! The server is another process: waiting for it to listen and for its messages to arrive is
//! bounded polling in real time (50 ms steps), and the stalled servers are given up on in
//! real time, the only real-time waits.

#![allow(clippy::unwrap_used)]

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use hive_core::{FailureClass, ModelId, Outcome};
use hive_monitor::{
    Monitor, MonitorConfig,
    alert::{
        Alert, AlertManager, AlertStatus, Channel, Condition, DeliveryError, EmailChannel, Figures,
        Jitter, Notification, Notifier, Rule, Severity, SmtpSecurity, Subject, Timestamp,
    },
};
use hive_sim::{SmtpMode, SmtpSink};
use tokio::{io::AsyncWriteExt, net::TcpListener, time::Instant};

/// A notification built by hand, for the channel alone.
fn notification() -> Notification {
    Notification {
        version: 1,
        id: "model_unavailable/1".into(),
        channel: "email".into(),
        group: "model_unavailable".into(),
        status: AlertStatus::Firing,
        severity: Severity::Critical,
        title: "[FIRING:1] model_unavailable (critical)".into(),
        firing: 1,
        resolved: 0,
        alerts: vec![Alert {
            rule: "model_unavailable".into(),
            subject: Subject::Model(ModelId::new("claude <sonnet>")),
            status: AlertStatus::Firing,
            severity: Severity::Critical,
            escalated: true,
            summary: "claude <sonnet> failed 7 times in a row".into(),
            figures: Figures::from([("consecutive_failures", 7.0)]),
            started_at: Timestamp::from_unix_ms(1_714_564_984_000),
            ended_at: None,
            duration: Duration::from_secs(330),
        }],
        dashboard_url: Some("https://hive.test/dashboard".into()),
        created_at: Timestamp::now(),
    }
}

/// An alert manager that notifies `email` when a model fails 3 times in a row (evaluated
/// every 20 ms, sent at once), and gpt-4o failing 3 times.
fn email_when_gpt_fails(email: impl Into<Channel>) -> (Monitor, AlertManager) {
    let monitor = Monitor::start(MonitorConfig::default());
    let manager = AlertManager::builder()
        .channel("email", email)
        .rule(
            Rule::new(
                "model_unavailable",
                Condition::ConsecutiveFailures { at_least: 3 },
            )
            .notify(["email"]),
        )
        .dashboard_url("https://hive.test/dashboard")
        .evaluation_interval(Duration::from_millis(20))
        .group_wait(Duration::ZERO)
        .start(&monitor)
        .unwrap();
    let gpt = monitor.model(ModelId::new("gpt-4o"));
    for _ in 0..3 {
        gpt.record(
            &Outcome::failure(FailureClass::Timeout),
            Duration::from_secs(1),
        );
    }
    (monitor, manager)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alert_arrives_as_a_plain_text_and_html_email_through_a_local_relay() {
    let server = SmtpSink::start(SmtpMode::Plain);
    let (_monitor, manager) = email_when_gpt_fails(
        EmailChannel::builder("127.0.0.1")
            .port(server.port())
            .security(SmtpSecurity::Plain)
            .from("Hive alerts <alerts@hive.test>")
            .to("ops@hive.test")
            .to("oncall@hive.test")
            .build()
            .unwrap(),
    );
    let message = &server.messages(1).await[0];
    assert_eq!(
        message.subject,
        "[FIRING:1] model_unavailable (warning): gpt-4o"
    );
    assert_eq!(message.from, "Hive alerts <alerts@hive.test>");
    assert_eq!(message.to, "ops@hive.test, oncall@hive.test");
    assert_eq!(message.content_type, "multipart/alternative");
    let text = message.text("text/plain");
    assert!(
        text.starts_with("Model unavailable — 1 firing, 0 resolved (severity warning)"),
        "{text}"
    );
    assert!(
        text.contains("* [FIRING] model gpt-4o\n  gpt-4o failed 3 times in a row\n  since "),
        "{text}"
    );
    assert!(text.contains("  consecutive failures: 3\n"), "{text}");
    assert!(
        text.contains("Dashboard: https://hive.test/dashboard"),
        "{text}"
    );
    let html = message.text("text/html");
    assert!(
        html.contains("<h2>Model unavailable — 1 firing, 0 resolved</h2>"),
        "{html}"
    );
    assert!(
        html.contains("<td>gpt-4o failed 3 times in a row</td>"),
        "{html}"
    );
    assert!(html.contains("<a href=\"https://hive.test/dashboard\">Open the dashboard</a>"));
    let stats = manager.stop().await;
    assert_eq!((stats["email"].sent, stats["email"].attempts), (1, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starttls_with_authentication_delivers_and_a_wrong_password_is_refused_unseen() {
    let server = SmtpSink::start_with_login(SmtpMode::StartTls, "alerts", "smtp-password-right");
    let channel = |password: &str| {
        EmailChannel::builder("127.0.0.1")
            .port(server.port())
            .security(SmtpSecurity::StartTls)
            .root_certificate_pem(SmtpSink::CERTIFICATE_PEM)
            .credentials("alerts", password)
            .from("alerts@hive.test")
            .to("ops@hive.test")
            .build()
            .unwrap()
    };
    channel("smtp-password-right")
        .deliver(&notification())
        .await
        .unwrap();
    let message = &server.messages(1).await[0];
    assert_eq!(
        message.subject,
        "[FIRING:1] model_unavailable (critical): claude <sonnet>"
    );
    // Every text is escaped in HTML.
    let html = message.text("text/html");
    assert!(
        html.contains("<td>claude &lt;sonnet&gt; failed 7 times in a row</td>"),
        "{html}"
    );
    assert!(html.contains("<b>FIRING</b> (escalated)"), "{html}");
    assert!(
        message
            .text("text/plain")
            .contains("  severity: critical (escalated)\n")
    );
    assert!(
        server.auth_log().contains("alerts accepted"),
        "{}",
        server.auth_log()
    );

    // A wrong password: a permanent SMTP refusal that never shows the password.
    let error = channel("smtp-password-wrong")
        .deliver(&notification())
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            DeliveryError::Smtp {
                permanent: true,
                ..
            }
        ),
        "{error:?}"
    );
    assert!(error.is_permanent());
    for shown in [error.to_string(), format!("{error:?}")] {
        assert!(!shown.contains("smtp-password-wrong"), "{shown}");
    }
    assert!(
        server.auth_log().contains("alerts refused"),
        "{}",
        server.auth_log()
    );

    // A server whose certificate is not trusted is refused (the webpki roots alone).
    let untrusted = EmailChannel::builder("127.0.0.1")
        .port(server.port())
        .security(SmtpSecurity::StartTls)
        .from("alerts@hive.test")
        .to("ops@hive.test")
        .build()
        .unwrap();
    let error = untrusted.deliver(&notification()).await.unwrap_err();
    assert!(!error.is_permanent(), "{error:?}");
    assert_eq!(server.messages(1).await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn implicit_tls_delivers() {
    let server = SmtpSink::start(SmtpMode::Smtps);
    EmailChannel::builder("127.0.0.1")
        .port(server.port())
        .security(SmtpSecurity::ImplicitTls)
        .root_certificate_pem(SmtpSink::CERTIFICATE_PEM)
        .from("alerts@hive.test")
        .to("ops@hive.test")
        .build()
        .unwrap()
        .deliver(&notification())
        .await
        .unwrap();
    let message = &server.messages(1).await[0];
    assert_eq!(message.to, "ops@hive.test");
    assert!(
        message
            .text("text/plain")
            .contains("claude <sonnet> failed 7 times in a row")
    );
}

/// A TCP server on loopback that accepts every connection, writes `greeting` to it, and then
/// neither reads nor writes again, holding the connection open until dropped.
struct Stalled {
    port: u16,
    connections: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Stalled {
    async fn start(greeting: &'static [u8]) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let connections = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&connections);
        let task = tokio::spawn(async move {
            let mut held = Vec::new();
            loop {
                let (mut stream, _) = listener.accept().await.unwrap();
                counted.fetch_add(1, Ordering::SeqCst);
                stream.write_all(greeting).await.unwrap();
                held.push(stream);
            }
        });
        Self {
            port,
            connections,
            task,
        }
    }
}

impl Drop for Stalled {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A channel to `port` with a `timeout` of 300 ms: a whole delivery may take 900 ms.
fn stalled_channel(port: u16, security: SmtpSecurity) -> EmailChannel {
    EmailChannel::builder("127.0.0.1")
        .port(port)
        .security(security)
        .root_certificate_pem(SmtpSink::CERTIFICATE_PEM)
        .from("alerts@hive.test")
        .to("ops@hive.test")
        .timeout(Duration::from_millis(300))
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_stops_answering_fails_the_delivery_within_three_timeouts() {
    // lettre bounds only the TCP connect, which succeeds here: without the channel's own
    // bound, each of these would wait as long as the connection stays open.
    for (greeting, security, stalls) in [
        (&b""[..], SmtpSecurity::Plain, "the greeting"),
        (
            &b"220 stalled.hive.test ESMTP\r\n"[..],
            SmtpSecurity::Plain,
            "the reply to EHLO",
        ),
        (
            &b"220 stalled.hive.test ESMTP\r\n"[..],
            SmtpSecurity::StartTls,
            "the reply to EHLO",
        ),
        (&b""[..], SmtpSecurity::ImplicitTls, "the TLS handshake"),
    ] {
        let server = Stalled::start(greeting).await;
        let started = Instant::now();
        let error = stalled_channel(server.port, security)
            .deliver(&notification())
            .await
            .unwrap_err();
        let waited = started.elapsed();
        assert_eq!(
            error,
            DeliveryError::Timeout(Duration::from_millis(900)),
            "{security:?}, {stalls}"
        );
        // A failure to reach the server, retried; not a refusal.
        assert!(!error.is_permanent(), "{security:?}, {stalls}");
        assert_eq!(
            error.to_string(),
            "the receiver did not answer within 900ms"
        );
        // Three timeouts, not lettre's 60 s nor the channel's attempt timeout of 10 s.
        assert!(
            waited >= Duration::from_millis(900) && waited < Duration::from_secs(3),
            "{security:?}, {stalls}: {waited:?}"
        );
        assert_eq!(server.connections.load(Ordering::SeqCst), 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_that_timed_out_is_retried() {
    let server = Stalled::start(b"220 stalled.hive.test ESMTP\r\n").await;
    let (_monitor, manager) = email_when_gpt_fails(
        Channel::from(stalled_channel(server.port, SmtpSecurity::Plain))
            .retry(2, Duration::from_millis(10), Duration::from_millis(10))
            .jitter(Jitter::None),
    );
    // Bounded polling in real time: two attempts of 900 ms each.
    for _ in 0..200 {
        if manager.channel_stats()["email"].failed == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let stats = manager.stop().await;
    // Both attempts were made: the timeout was retried, as a failure to reach the server.
    assert_eq!(
        (
            stats["email"].sent,
            stats["email"].failed,
            stats["email"].attempts
        ),
        (0, 1, 2),
        "{stats:?}"
    );
    assert_eq!(server.connections.load(Ordering::SeqCst), 2);
}
