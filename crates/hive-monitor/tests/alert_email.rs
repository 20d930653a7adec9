//! Email alerts to a real SMTP server on loopback: Debian's python3-aiosmtpd (installed by
//! `.ci/run`), started by each test with a Maildir handler, in plain, STARTTLS (with
//! authentication) and implicit-TLS modes. The message that arrived is read back from the
//! Maildir and decoded by Python's `email` package.
//!
//! The server is another process: waiting for it to listen and for its Maildir to receive
//! the message is bounded polling in real time (50 ms steps), the only real-time waits.

#![allow(clippy::unwrap_used)]

use std::{
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::atomic::{AtomicU32, Ordering},
    time::Duration,
};

use hive_core::{FailureClass, ModelId, Outcome};
use hive_monitor::{
    Monitor, MonitorConfig,
    alert::{
        Alert, AlertManager, AlertStatus, Condition, DeliveryError, EmailChannel, Figures,
        Notification, Notifier, Rule, Severity, SmtpSecurity, Subject, Timestamp,
    },
};
use serde_json::Value;

/// A self-signed certificate for 127.0.0.1 and localhost (valid until 2126), and its key.
const CERT: &str = "-----BEGIN CERTIFICATE-----
MIIByjCCAXGgAwIBAgIUY2fF932ZgGBgSozUAsg9QVt9944wCgYIKoZIzj0EAwIw
GjEYMBYGA1UEAwwPaGl2ZS1hbGVydC10ZXN0MCAXDTI2MTEyODA5MzIxMVoYDzIx
MjYxMTA0MDkzMjExWjAaMRgwFgYDVQQDDA9oaXZlLWFsZXJ0LXRlc3QwWTATBgcq
hkjOPQIBBggqhkjOPQMBBwNCAASVLhQ8RLYcEFXjR4Nc1Vp75nNUODrKg3vsAY0L
9tXzf3GzCkN1QlOINuWwAafVZaTQeAiTaTY0/nDHi0Sqlvb2o4GSMIGPMB0GA1Ud
DgQWBBS+pEOgWuO4ybSuP2BPO52qZirf1DAfBgNVHSMEGDAWgBS+pEOgWuO4ybSu
P2BPO52qZirf1DAaBgNVHREEEzARhwR/AAABgglsb2NhbGhvc3QwDAYDVR0TAQH/
BAIwADAOBgNVHQ8BAf8EBAMCB4AwEwYDVR0lBAwwCgYIKwYBBQUHAwEwCgYIKoZI
zj0EAwIDRwAwRAIgZtFQiHO1hnaY0voQGeZEhWo6zWHLOZyjROQVNroGWawCID5m
mMnb0eIgrd8QojTfXqCWQ0QG8hyDjGaq2e1/xc3u
-----END CERTIFICATE-----
";
const KEY: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgfY21pUf6Qcl8gQs2
0kTrgwKm+TBA33hxc17FNmsHEbahRANCAASVLhQ8RLYcEFXjR4Nc1Vp75nNUODrK
g3vsAY0L9tXzf3GzCkN1QlOINuWwAafVZaTQeAiTaTY0/nDHi0Sqlvb2
-----END PRIVATE KEY-----
";

/// The server: aiosmtpd's controller with the Maildir handler, TLS as asked, and an
/// authenticator that logs every attempt to `{maildir}.auth`.
const SERVER: &str = r#"
import sys, ssl, threading
from aiosmtpd.controller import Controller
from aiosmtpd.handlers import Mailbox
from aiosmtpd.smtp import AuthResult, LoginPassword

mode, port, maildir, cert, key, user, password = sys.argv[1:8]

def authenticator(server, session, envelope, mechanism, auth_data):
    login = auth_data.login.decode() if isinstance(auth_data, LoginPassword) else "?"
    ok = isinstance(auth_data, LoginPassword) and login == user and auth_data.password.decode() == password
    with open(maildir + ".auth", "a") as log:
        log.write(f"{mechanism} {login} {'accepted' if ok else 'refused'}\n")
    return AuthResult(success=ok, handled=False)

kwargs = {}
if mode in ("starttls", "smtps"):
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    if mode == "starttls":
        kwargs.update(tls_context=context, require_starttls=True)
    else:
        kwargs.update(ssl_context=context)
if user:
    kwargs.update(authenticator=authenticator, auth_required=True, auth_require_tls=(mode != "plain"))
controller = Controller(Mailbox(maildir), hostname="127.0.0.1", port=int(port), **kwargs)
controller.start()
print("ready", flush=True)
threading.Event().wait()
"#;

/// Decodes a message file: subject, from, to, and every text part decoded.
const DECODE: &str = r#"
import email, json, sys
from email import policy
message = email.message_from_binary_file(open(sys.argv[1], "rb"), policy=policy.default)
parts = [{"type": p.get_content_type(), "text": p.get_content()}
         for p in message.walk() if p.get_content_maintype() == "text"]
print(json.dumps({"subject": message["subject"], "from": message["from"], "to": message["to"],
                  "content_type": message.get_content_type(), "parts": parts}))
"#;

/// The Python that has aiosmtpd: Debian's, or the one on the PATH.
fn python() -> &'static str {
    for python in ["/usr/bin/python3", "python3"] {
        let found = Command::new(python)
            .args(["-c", "import aiosmtpd"])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if found {
            return python;
        }
    }
    panic!("no python3 with aiosmtpd: apt-get install -y python3-aiosmtpd (.ci/run does)");
}

struct SmtpServer {
    child: Child,
    port: u16,
    dir: PathBuf,
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

static SERVERS: AtomicU32 = AtomicU32::new(0);

impl SmtpServer {
    /// Starts a server in `mode` (`plain`, `starttls`, `smtps`), requiring `auth` if given,
    /// and waits until it accepts connections.
    fn start(mode: &str, auth: Option<(&str, &str)>) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "hive-alert-smtp-{}-{}",
            std::process::id(),
            SERVERS.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        for (name, text) in [("cert.pem", CERT), ("key.pem", KEY), ("server.py", SERVER)] {
            std::fs::write(dir.join(name), text).unwrap();
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let (user, password) = auth.unwrap_or(("", ""));
        let mut child = Command::new(python())
            .arg(dir.join("server.py"))
            .args([mode, &port.to_string()])
            .arg(dir.join("maildir"))
            .arg(dir.join("cert.pem"))
            .arg(dir.join("key.pem"))
            .args([user, password])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut ready = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut ready)
            .unwrap();
        assert_eq!(ready.trim(), "ready", "the SMTP server did not start");
        let server = Self { child, port, dir };
        // Bounded polling: the server is another process.
        for _ in 0..200 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return server;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("the SMTP server never accepted a connection");
    }

    /// The messages in the Maildir, waiting (bounded, 50 ms steps) for `count` of them.
    async fn messages(&self, count: usize) -> Vec<Value> {
        let new = self.dir.join("maildir").join("new");
        for _ in 0..400 {
            let mut files: Vec<PathBuf> = std::fs::read_dir(&new)
                .map(|entries| entries.filter_map(|e| e.ok().map(|e| e.path())).collect())
                .unwrap_or_default();
            if files.len() >= count {
                files.sort();
                return files.iter().map(|f| decode(f)).collect();
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("{count} message(s) never arrived");
    }

    fn auth_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("maildir.auth")).unwrap_or_default()
    }
}

fn decode(file: &Path) -> Value {
    let out = Command::new(python())
        .args(["-c", DECODE])
        .arg(file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn part<'a>(message: &'a Value, kind: &str) -> &'a str {
    message["parts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["type"] == kind)
        .unwrap_or_else(|| panic!("no {kind} part in {message}"))["text"]
        .as_str()
        .unwrap()
}

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alert_arrives_as_a_plain_text_and_html_email_through_a_local_relay() {
    let server = SmtpServer::start("plain", None);
    let monitor = Monitor::start(MonitorConfig::default());
    let manager = AlertManager::builder()
        .channel(
            "email",
            EmailChannel::builder("127.0.0.1")
                .port(server.port)
                .security(SmtpSecurity::Plain)
                .from("Hive alerts <alerts@hive.test>")
                .to("ops@hive.test")
                .to("oncall@hive.test")
                .build()
                .unwrap(),
        )
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
    let message = &server.messages(1).await[0];
    assert_eq!(
        message["subject"],
        "[FIRING:1] model_unavailable (warning): gpt-4o"
    );
    assert_eq!(message["from"], "Hive alerts <alerts@hive.test>");
    assert_eq!(message["to"], "ops@hive.test, oncall@hive.test");
    assert_eq!(message["content_type"], "multipart/alternative");
    let text = part(message, "text/plain");
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
    let html = part(message, "text/html");
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
    let server = SmtpServer::start("starttls", Some(("alerts", "smtp-password-right")));
    let channel = |password: &str| {
        EmailChannel::builder("127.0.0.1")
            .port(server.port)
            .security(SmtpSecurity::StartTls)
            .root_certificate_pem(CERT)
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
        message["subject"],
        "[FIRING:1] model_unavailable (critical): claude <sonnet>"
    );
    // Every text is escaped in HTML.
    let html = part(message, "text/html");
    assert!(
        html.contains("<td>claude &lt;sonnet&gt; failed 7 times in a row</td>"),
        "{html}"
    );
    assert!(html.contains("<b>FIRING</b> (escalated)"), "{html}");
    assert!(part(message, "text/plain").contains("  severity: critical (escalated)\n"));
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
        .port(server.port)
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
    let server = SmtpServer::start("smtps", None);
    EmailChannel::builder("127.0.0.1")
        .port(server.port)
        .security(SmtpSecurity::ImplicitTls)
        .root_certificate_pem(CERT)
        .from("alerts@hive.test")
        .to("ops@hive.test")
        .build()
        .unwrap()
        .deliver(&notification())
        .await
        .unwrap();
    let message = &server.messages(1).await[0];
    assert_eq!(message["to"], "ops@hive.test");
    assert!(part(message, "text/plain").contains("claude <sonnet> failed 7 times in a row"));
}
