//! [`SmtpSink`] against a hand-written SMTP client over a blocking socket: messages come back
//! decoded and in the order they arrived, a required login is enforced and logged, and the
//! TLS modes insist on their encryption. (The TLS dialogues themselves are exercised by
//! hive-monitor's email tests, through lettre.)
//!
//! The sink is another process: these tests run in real time.

#![allow(clippy::unwrap_used)]

use std::{
    io::{BufRead, BufReader, Write},
    net::TcpStream,
};

use hive_sim::{SmtpMode, SmtpSink};

/// `AUTH PLAIN` data: base64 of `\0alerts\0sink-password-right`.
const RIGHT_LOGIN: &str = "AGFsZXJ0cwBzaW5rLXBhc3N3b3JkLXJpZ2h0";
/// `AUTH PLAIN` data: base64 of `\0alerts\0sink-password-wrong`.
const WRONG_LOGIN: &str = "AGFsZXJ0cwBzaW5rLXBhc3N3b3JkLXdyb25n";

/// A plain SMTP connection to the sink.
struct Client {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Client {
    /// Connects and reads the greeting.
    fn connect(sink: &SmtpSink) -> Self {
        let stream = TcpStream::connect(("127.0.0.1", sink.port())).unwrap();
        let mut client = Self {
            reader: BufReader::new(stream.try_clone().unwrap()),
            writer: stream,
        };
        assert_eq!(client.reply().0, 220);
        client
    }

    /// Sends `line` and returns the server's reply: its code and its last line.
    fn send(&mut self, line: &str) -> (u16, String) {
        self.writer
            .write_all(format!("{line}\r\n").as_bytes())
            .unwrap();
        self.reply()
    }

    /// Reads one reply, all its lines (`250-…` continues, `250 …` ends).
    fn reply(&mut self) -> (u16, String) {
        loop {
            let mut line = String::new();
            self.reader.read_line(&mut line).unwrap();
            assert!(line.len() >= 4, "a short reply: {line:?}");
            if line.as_bytes()[3] == b' ' {
                return (line[..3].parse().unwrap(), line.trim_end().to_owned());
            }
        }
    }

    /// Sends one message, `data` being its headers and body (lines ending in CRLF).
    fn mail(&mut self, from: &str, to: &str, data: &str) {
        assert_eq!(self.send(&format!("MAIL FROM:<{from}>")).0, 250);
        assert_eq!(self.send(&format!("RCPT TO:<{to}>")).0, 250);
        assert_eq!(self.send("DATA").0, 354);
        assert_eq!(self.send(&format!("{data}.")).0, 250);
    }
}

fn simple(subject: &str) -> String {
    format!(
        "From: Sender <sender@hive.test>\r\nTo: ops@hive.test, oncall@hive.test\r\n\
         Subject: {subject}\r\n\r\nBody of {subject}.\r\n"
    )
}

#[tokio::test]
async fn messages_come_back_decoded_in_the_order_they_arrived() {
    let sink = SmtpSink::start(SmtpMode::Plain);
    assert_eq!(sink.mode(), SmtpMode::Plain);
    let mut client = Client::connect(&sink);
    assert_eq!(client.send("EHLO client.hive.test").0, 250);
    // Twelve messages, so that the 10th sorts after the 9th (not as text).
    for i in 1..=12 {
        client.mail(
            "sender@hive.test",
            "ops@hive.test",
            &simple(&format!("m{i}")),
        );
    }
    // A multipart/alternative one, its parts quoted-printable and base64.
    client.mail(
        "sender@hive.test",
        "ops@hive.test",
        "From: sender@hive.test\r\nTo: ops@hive.test\r\nSubject: =?utf-8?q?caf=C3=A9?=\r\n\
         MIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=\"b\"\r\n\r\n\
         --b\r\nContent-Type: text/plain; charset=utf-8\r\n\
         Content-Transfer-Encoding: quoted-printable\r\n\r\nun caf=C3=A9 =E2=80=94 noir\r\n\
         --b\r\nContent-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n\
         PGI+Y2Fmw6k8L2I+\r\n--b--\r\n",
    );
    assert_eq!(client.send("QUIT").0, 221);

    let messages = sink.messages(13).await;
    let subjects: Vec<&str> = messages.iter().map(|m| m.subject.as_str()).collect();
    assert_eq!(
        subjects,
        [
            "m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8", "m9", "m10", "m11", "m12", "café"
        ]
    );
    let first = &messages[0];
    assert_eq!(first.from, "Sender <sender@hive.test>");
    assert_eq!(first.to, "ops@hive.test, oncall@hive.test");
    assert_eq!(first.content_type, "text/plain");
    assert_eq!(first.text("text/plain"), "Body of m1.\n");
    let last = &messages[12];
    assert_eq!(last.content_type, "multipart/alternative");
    assert_eq!(last.parts.len(), 2);
    // The CRLF before a boundary belongs to the boundary.
    assert_eq!(last.text("text/plain"), "un café — noir");
    assert_eq!(last.text("text/html"), "<b>café</b>");
    assert_eq!(sink.message(9).await.subject, "m10");
    // No login was asked for, and none was tried.
    assert_eq!(sink.auth_log(), "");
}

#[tokio::test]
#[should_panic(expected = "no text/html part in SmtpMessage")]
async fn a_missing_part_shows_the_message() {
    let sink = SmtpSink::start(SmtpMode::Plain);
    let mut client = Client::connect(&sink);
    assert_eq!(client.send("HELO client.hive.test").0, 250);
    client.mail("sender@hive.test", "ops@hive.test", &simple("plain only"));
    sink.message(0).await.text("text/html");
}

#[tokio::test]
async fn a_required_login_is_enforced_and_every_attempt_logged() {
    let sink = SmtpSink::start_with_login(SmtpMode::Plain, "alerts", "sink-password-right");
    let mut client = Client::connect(&sink);
    let (code, _) = client.send("EHLO client.hive.test");
    assert_eq!(code, 250);
    // No mail before a login.
    assert_eq!(client.send("MAIL FROM:<sender@hive.test>").0, 530);
    assert_eq!(client.send(&format!("AUTH PLAIN {WRONG_LOGIN}")).0, 535);
    assert_eq!(sink.auth_log(), "PLAIN alerts refused\n");
    assert_eq!(client.send(&format!("AUTH PLAIN {RIGHT_LOGIN}")).0, 235);
    client.mail("sender@hive.test", "ops@hive.test", &simple("logged in"));
    assert_eq!(sink.message(0).await.subject, "logged in");
    assert_eq!(
        sink.auth_log(),
        "PLAIN alerts refused\nPLAIN alerts accepted\n"
    );
}

#[tokio::test]
async fn the_tls_modes_insist_on_encryption() {
    // STARTTLS: offered, and required before anything else; a login is not even offered
    // before it.
    let sink = SmtpSink::start_with_login(SmtpMode::StartTls, "alerts", "sink-password-right");
    let mut client = Client::connect(&sink);
    client
        .writer
        .write_all(b"EHLO client.hive.test\r\n")
        .unwrap();
    let mut extensions = Vec::new();
    loop {
        let mut line = String::new();
        client.reader.read_line(&mut line).unwrap();
        extensions.push(line[4..].trim_end().to_owned());
        if line.as_bytes()[3] == b' ' {
            break;
        }
    }
    assert!(extensions.iter().any(|e| e == "STARTTLS"), "{extensions:?}");
    assert!(
        !extensions.iter().any(|e| e.starts_with("AUTH")),
        "{extensions:?}"
    );
    assert_eq!(client.send("MAIL FROM:<sender@hive.test>").0, 530);
    assert_eq!(client.send(&format!("AUTH PLAIN {RIGHT_LOGIN}")).0, 530);
    assert_eq!(sink.auth_log(), "");

    // Implicit TLS: a plain client gets no greeting in SMTP, and the certificate is the
    // documented one.
    let sink = SmtpSink::start(SmtpMode::Smtps);
    let mut stream = TcpStream::connect(("127.0.0.1", sink.port())).unwrap();
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .unwrap();
    stream.write_all(b"EHLO client.hive.test\r\n").unwrap();
    let mut answer = Vec::new();
    let _ = std::io::Read::read_to_end(&mut stream, &mut answer);
    assert!(!answer.starts_with(b"220"), "{answer:?}");
    assert!(
        SmtpSink::CERTIFICATE_PEM.starts_with("-----BEGIN CERTIFICATE-----\n")
            && SmtpSink::CERTIFICATE_PEM.ends_with("-----END CERTIFICATE-----\n")
    );
}
