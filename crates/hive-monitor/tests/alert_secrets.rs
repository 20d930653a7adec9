//! Webhook URLs, SMTP passwords and signing keys never show: every `Debug`, `Display` and
//! error reachable is formatted, every log line of a run whose deliveries fail is captured
//! (a subscriber of this test binary), and none contains a secret.

#![allow(clippy::unwrap_used)]

use std::{
    fmt::Write as _,
    sync::{Arc, OnceLock, RwLock},
    time::Duration,
};

use hive_core::{FailureClass, ModelId, Outcome};
use hive_monitor::{
    Monitor, MonitorConfig,
    alert::{
        Alert, AlertManager, AlertStatus, Channel, Condition, EmailChannel, Figures, Jitter,
        Notification, Notifier, Rule, Severity, SlackChannel, SmtpSecurity, Subject, Timestamp,
        WebhookChannel,
    },
};
use tokio::sync::Notify;
use tracing::{
    Event, Metadata, Subscriber,
    field::{Field, Visit},
    span::{Attributes, Id, Record},
};

const SLACK_TOKEN: &str = "slack-token-Xq81";
const WEBHOOK_KEY: &str = "query-key-77Hj2";
const WEBHOOK_PATH: &str = "hook-path-secret-9";
const SIGNING_KEY: &str = "signing-key-0123456789abcdef";
const SMTP_PASSWORD: &str = "smtp-password-Zz93";

const SECRETS: [&str; 5] = [
    SLACK_TOKEN,
    WEBHOOK_KEY,
    WEBHOOK_PATH,
    SIGNING_KEY,
    SMTP_PASSWORD,
];

/// Every log line of this test binary, fields included, and a bell rung at each.
fn logs() -> &'static (Arc<RwLock<String>>, Arc<Notify>) {
    static LOGS: OnceLock<(Arc<RwLock<String>>, Arc<Notify>)> = OnceLock::new();
    LOGS.get_or_init(|| {
        let logs = Arc::new(RwLock::new(String::new()));
        let bell = Arc::new(Notify::new());
        tracing::subscriber::set_global_default(Capture(Arc::clone(&logs), Arc::clone(&bell)))
            .unwrap();
        (logs, bell)
    })
}

struct Capture(Arc<RwLock<String>>, Arc<Notify>);

struct Fields<'a>(&'a mut String);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let _ = write!(self.0, "{}={value:?} ", field.name());
    }
}

impl Subscriber for Capture {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }

    fn new_span(&self, span: &Attributes<'_>) -> Id {
        let mut line = String::new();
        span.record(&mut Fields(&mut line));
        self.0.write().unwrap().push_str(&line);
        Id::from_u64(1)
    }

    fn record(&self, _: &Id, values: &Record<'_>) {
        let mut line = String::new();
        values.record(&mut Fields(&mut line));
        self.0.write().unwrap().push_str(&line);
    }

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let mut line = format!("{} ", event.metadata().level());
        event.record(&mut Fields(&mut line));
        line.push('\n');
        self.0.write().unwrap().push_str(&line);
        self.1.notify_one();
    }

    fn enter(&self, _: &Id) {}

    fn exit(&self, _: &Id) {}
}

fn assert_hidden(what: &str, shown: &str) {
    for secret in SECRETS {
        assert!(
            !shown.contains(secret),
            "{what} shows a secret ({secret}):\n{shown}"
        );
    }
}

fn notification() -> Notification {
    Notification {
        version: 1,
        id: "rule/1".into(),
        channel: "c".into(),
        group: "rule".into(),
        status: AlertStatus::Firing,
        severity: Severity::Warning,
        title: "[FIRING:1] rule (warning)".into(),
        firing: 1,
        resolved: 0,
        alerts: vec![Alert {
            rule: "rule".into(),
            subject: Subject::Model(ModelId::new("m")),
            status: AlertStatus::Firing,
            severity: Severity::Warning,
            escalated: false,
            summary: "m failed".into(),
            figures: Figures::new(),
            started_at: Timestamp::now(),
            ended_at: None,
            duration: Duration::ZERO,
        }],
        dashboard_url: None,
        created_at: Timestamp::now(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_shows_in_debug_errors_or_logs() {
    let (logs, bell) = logs();
    // Ports nothing listens on: every delivery fails, and is logged.
    let closed = |n| {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let _ = n;
        listener.local_addr().unwrap()
    };
    let (slack_addr, hook_addr, smtp_addr) = (closed(1), closed(2), closed(3));
    let slack_url = format!("http://{slack_addr}/services/T1/B2/{SLACK_TOKEN}");
    let hook_url = format!("http://{hook_addr}/{WEBHOOK_PATH}?key={WEBHOOK_KEY}");
    let slack = SlackChannel::new(&slack_url).unwrap();
    let hook = WebhookChannel::new(&hook_url)
        .unwrap()
        .signing_key(SIGNING_KEY)
        .unwrap();
    let email_builder = || {
        EmailChannel::builder("127.0.0.1")
            .port(smtp_addr.port())
            .security(SmtpSecurity::Plain)
            .credentials("alerts", SMTP_PASSWORD)
            .from("alerts@hive.test")
            .to("ops@hive.test")
    };
    assert_hidden(
        "EmailChannelBuilder Debug",
        &format!("{:?}", email_builder()),
    );
    let email = email_builder().build().unwrap();

    for (what, shown) in [
        ("SlackChannel Debug", format!("{slack:?}")),
        ("WebhookChannel Debug", format!("{hook:?}")),
        ("EmailChannel Debug", format!("{email:?}")),
        ("Channel Debug", format!("{:?}", Channel::new(hook.clone()))),
    ] {
        assert_hidden(what, &shown);
    }
    // Debug still says where: the host, never the path.
    assert_eq!(
        format!("{slack:?}"),
        format!("SlackChannel {{ webhook_url: http://{slack_addr}/… }}")
    );
    assert!(format!("{email:?}").contains("password: Some([redacted])"));

    // Errors of bad settings name the setting, never the value.
    let errors = [
        SlackChannel::new(format!("ftp://x/{SLACK_TOKEN}")).unwrap_err(),
        SlackChannel::new(format!("not a url {SLACK_TOKEN}")).unwrap_err(),
        WebhookChannel::new(format!("http://user:{WEBHOOK_KEY}@host/x")).unwrap_err(),
        WebhookChannel::new(&hook_url)
            .unwrap()
            .signing_key(&SIGNING_KEY[..8])
            .unwrap_err(),
    ];
    for error in &errors {
        assert_hidden("a settings error", &format!("{error} {error:?}"));
    }
    assert_eq!(
        errors[0].to_string(),
        "invalid alert setting `slack.webhook_url`: must start with http:// or https://"
    );

    // Delivery errors, straight from each channel.
    for notifier in [
        &slack as &dyn Notifier,
        &hook as &dyn Notifier,
        &email as &dyn Notifier,
    ] {
        let error = notifier.deliver(&notification()).await.unwrap_err();
        assert_hidden("a delivery error", &format!("{error} {error:?}"));
        assert!(!error.is_permanent(), "{error}");
    }

    // A whole run: alerts fire, every delivery fails, is retried and given up, all logged.
    let monitor = Monitor::start(MonitorConfig::default());
    let fast = |channel: Channel| {
        channel
            .retry(2, Duration::from_millis(5), Duration::from_millis(10))
            .jitter(Jitter::None)
    };
    let builder = AlertManager::builder()
        .channel("slack", fast(Channel::new(slack)))
        .channel("hook", fast(Channel::new(hook)))
        .channel("email", fast(Channel::new(email)))
        .rule(
            Rule::new("down", Condition::ConsecutiveFailures { at_least: 1 })
                .notify(["slack", "hook", "email"]),
        )
        .evaluation_interval(Duration::from_millis(20))
        .group_wait(Duration::ZERO);
    assert_hidden("AlertManagerBuilder Debug", &format!("{builder:?}"));
    let manager = builder.start(&monitor).unwrap();
    assert_hidden("AlertManager Debug", &format!("{manager:?}"));
    monitor.model(ModelId::new("m")).record(
        &Outcome::failure(FailureClass::Timeout),
        Duration::from_secs(1),
    );
    // Wait (bounded, woken by each log line) until every channel has given up.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let dropped = logs
            .read()
            .unwrap()
            .matches("alert notification dropped: delivery failed")
            .count();
        if dropped >= 3 {
            break;
        }
        let rung = tokio::time::timeout_at(deadline, bell.notified()).await;
        assert!(rung.is_ok(), "{}", logs.read().unwrap());
    }
    let stats = manager.stop().await;
    for channel in ["slack", "hook", "email"] {
        assert_eq!(
            (stats[channel].attempts, stats[channel].failed),
            (2, 1),
            "{channel}"
        );
    }
    let captured = logs.read().unwrap().clone();
    assert!(
        captured.contains("alert delivery attempt failed"),
        "{captured}"
    );
    assert!(
        captured.contains("could not reach the receiver"),
        "{captured}"
    );
    assert_hidden("the logs", &captured);
}
