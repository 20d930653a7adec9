//! [`SmtpSink`]: a real SMTP server on loopback that keeps every message it receives, for
//! tests of code that sends email.
//!
//! The server is Python's aiosmtpd (Debian's `python3-aiosmtpd`, which `.ci/run` installs)
//! in a child process, with its Maildir handler: each message lands in a Maildir, and is read
//! back and decoded by Python's `email` package, so a message is checked by a parser that is
//! not the sender's. The Python programs are `smtp/server.py` and `smtp/decode.py` beside
//! this file.
//!
//! The server is another process, so the sink waits in real time: for the server to listen
//! (blocking, in [`SmtpSink::start`]) and for messages to arrive (bounded polling in 50 ms
//! steps, in [`SmtpSink::messages`]).

use std::{
    fmt,
    fs::File,
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{
        OnceLock,
        atomic::{AtomicU32, Ordering},
    },
    time::Duration,
};

use serde::Deserialize;

/// The server: aiosmtpd's controller with the Maildir handler, TLS as asked, and an
/// authenticator that logs every login attempt.
const SERVER: &str = include_str!("smtp/server.py");

/// Decodes one message file into the JSON of an [`SmtpMessage`].
const DECODE: &str = include_str!("smtp/decode.py");

/// The private key of [`SmtpSink::CERTIFICATE_PEM`].
const KEY: &str = include_str!("smtp/key.pem");

/// One step of the sink's polling (for the server to listen, for messages to arrive).
const POLL: Duration = Duration::from_millis(50);

/// How many steps [`SmtpSink::start`] waits for the server to accept a connection (10 s).
const START_POLLS: u32 = 200;

/// How many steps [`SmtpSink::messages`] waits for the messages (20 s).
const MESSAGE_POLLS: u32 = 400;

/// How the sink secures its connections.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SmtpMode {
    /// No encryption; `STARTTLS` is not offered.
    Plain,
    /// A plain connection that must be upgraded with `STARTTLS` before anything else is
    /// accepted.
    StartTls,
    /// TLS from the first byte ("SMTPS", implicit TLS).
    Smtps,
}

impl SmtpMode {
    fn arg(self) -> &'static str {
        match self {
            Self::Plain => "plain",
            Self::StartTls => "starttls",
            Self::Smtps => "smtps",
        }
    }
}

/// A real SMTP server on `127.0.0.1` that keeps every message it receives, decoded on
/// demand ([`messages`](Self::messages)), and logs every login attempt
/// ([`auth_log`](Self::auth_log)).
///
/// It speaks plain SMTP, `STARTTLS` or implicit TLS ([`SmtpMode`]) with the self-signed
/// certificate [`CERTIFICATE_PEM`](Self::CERTIFICATE_PEM) (for `127.0.0.1` and
/// `localhost`), and can require a login ([`start_with_login`](Self::start_with_login):
/// PLAIN or LOGIN, after `STARTTLS` in the TLS modes). Dropping it stops the server and
/// deletes its files.
///
/// It needs `python3` with aiosmtpd (`apt-get install -y python3-aiosmtpd`), and waits in
/// real time: use it in a runtime whose time is not paused.
///
/// ```no_run
/// use hive_sim::{SmtpMode, SmtpSink};
///
/// # async fn demo() {
/// let sink = SmtpSink::start_with_login(SmtpMode::StartTls, "alerts", "app password");
/// // … send an email to 127.0.0.1:{sink.port()}, trusting SmtpSink::CERTIFICATE_PEM …
/// let message = sink.message(0).await;
/// assert_eq!(message.to, "ops@example.com");
/// assert!(message.text("text/plain").contains("failed 3 times"));
/// assert!(sink.auth_log().contains("alerts accepted"));
/// # }
/// ```
pub struct SmtpSink {
    child: Child,
    port: u16,
    mode: SmtpMode,
    dir: PathBuf,
}

/// Numbers the sinks of this process, for their directories.
static SINKS: AtomicU32 = AtomicU32::new(0);

impl SmtpSink {
    /// The sink's self-signed TLS certificate (PEM), for `127.0.0.1` and `localhost`, valid
    /// until 2126: a client trusts it as a root to talk to the sink over TLS.
    pub const CERTIFICATE_PEM: &'static str = include_str!("smtp/cert.pem");

    /// Starts a sink in `mode` that takes mail from anyone, and waits (up to 10 s, blocking
    /// the thread) until it accepts connections.
    ///
    /// # Panics
    ///
    /// When there is no `python3` with aiosmtpd, or the server does not start.
    pub fn start(mode: SmtpMode) -> Self {
        Self::spawn(mode, None)
    }

    /// Starts a sink in `mode` that takes mail only after a login as `user` with `password`
    /// (PLAIN or LOGIN; in the TLS modes, only once the connection is encrypted), and waits
    /// as [`start`](Self::start) does. Every attempt is logged ([`auth_log`](Self::auth_log)).
    ///
    /// # Panics
    ///
    /// As [`start`](Self::start).
    pub fn start_with_login(mode: SmtpMode, user: &str, password: &str) -> Self {
        Self::spawn(mode, Some((user, password)))
    }

    fn spawn(mode: SmtpMode, login: Option<(&str, &str)>) -> Self {
        let python = python();
        let dir = std::env::temp_dir().join(format!(
            "hive-sim-smtp-{}-{}",
            std::process::id(),
            SINKS.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("the sink's directory");
        for (name, text) in [
            ("cert.pem", Self::CERTIFICATE_PEM),
            ("key.pem", KEY),
            ("server.py", SERVER),
        ] {
            std::fs::write(dir.join(name), text).expect("the sink's files");
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port on 127.0.0.1")
            .port();
        let log = File::create(dir.join("server.log")).expect("the sink's log");
        let (user, password) = login.unwrap_or(("", ""));
        let mut child = Command::new(python)
            .arg(dir.join("server.py"))
            .args([mode.arg(), &port.to_string()])
            .arg(dir.join("maildir"))
            .arg(dir.join("cert.pem"))
            .arg(dir.join("key.pem"))
            .args([user, password])
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("python3 runs");
        let stdout = child.stdout.take().expect("the server's stdout");
        // From here on, dropping the sink stops the server and deletes its files.
        let sink = Self {
            child,
            port,
            mode,
            dir,
        };
        let mut ready = String::new();
        let _ = BufReader::new(stdout).read_line(&mut ready);
        assert_eq!(
            ready.trim(),
            "ready",
            "the SMTP server did not start: {}",
            sink.server_log()
        );
        for _ in 0..START_POLLS {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return sink;
            }
            std::thread::sleep(POLL);
        }
        panic!(
            "the SMTP server never accepted a connection: {}",
            sink.server_log()
        );
    }

    /// The port the sink listens on, on `127.0.0.1`.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// How the sink secures its connections.
    pub fn mode(&self) -> SmtpMode {
        self.mode
    }

    /// Every message received so far, in the order they arrived, waiting (up to 20 s, in
    /// 50 ms steps) until there are at least `at_least`.
    ///
    /// # Panics
    ///
    /// When fewer than `at_least` messages arrived in 20 s, or a message cannot be decoded.
    pub async fn messages(&self, at_least: usize) -> Vec<SmtpMessage> {
        for _ in 0..MESSAGE_POLLS {
            let files = self.message_files();
            if files.len() >= at_least {
                return files.iter().map(|file| decode(file)).collect();
            }
            tokio::time::sleep(POLL).await;
        }
        panic!("{at_least} message(s) never arrived");
    }

    /// The message at `index` in the order they arrived (0 is the first), waiting for it as
    /// [`messages`](Self::messages) does.
    ///
    /// # Panics
    ///
    /// As [`messages`](Self::messages).
    pub async fn message(&self, index: usize) -> SmtpMessage {
        self.messages(index + 1).await.swap_remove(index)
    }

    /// One line for each login attempt so far: `{mechanism} {user} accepted` or
    /// `{mechanism} {user} refused` (`PLAIN alerts accepted`). Empty when no login is
    /// required or none was tried.
    pub fn auth_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("maildir.auth")).unwrap_or_default()
    }

    /// The files in the Maildir's `new`, in the order they arrived.
    ///
    /// Python's Maildir names a message `{seconds}.M{micros}P{pid}Q{count}.{host}`, where
    /// `count` numbers the messages of the server: the order they arrived in.
    fn message_files(&self) -> Vec<PathBuf> {
        let Ok(entries) = std::fs::read_dir(self.dir.join("maildir").join("new")) else {
            return Vec::new();
        };
        let mut files: Vec<(u64, PathBuf)> = entries
            .filter_map(|entry| entry.ok().map(|entry| entry.path()))
            .map(|path| (arrival(&path), path))
            .collect();
        files.sort();
        files.into_iter().map(|(_, path)| path).collect()
    }

    fn server_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
    }
}

/// The arrival number of a Maildir message file (`Q{count}` in its name); 0 if it has none.
fn arrival(path: &Path) -> u64 {
    path.file_name()
        .and_then(|name| name.to_str())
        .and_then(|name| name.split('.').nth(1))
        .and_then(|unique| unique.rsplit_once('Q'))
        .and_then(|(_, count)| count.parse().ok())
        .unwrap_or(0)
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl fmt::Debug for SmtpSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpSink")
            .field("port", &self.port)
            .field("mode", &self.mode)
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

/// A message the sink received, decoded by Python's `email` package.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct SmtpMessage {
    /// The `Subject` header, decoded (empty when absent).
    pub subject: String,
    /// The `From` header, decoded (`Hive alerts <alerts@example.com>`; empty when absent).
    pub from: String,
    /// The `To` header, decoded, its addresses separated by `, ` (empty when absent).
    pub to: String,
    /// The type of the whole message (`multipart/alternative`, `text/plain`).
    pub content_type: String,
    /// Every text part, in the order of the message, its content decoded.
    pub parts: Vec<TextPart>,
}

impl SmtpMessage {
    /// The decoded text of the first part of type `content_type` (`text/plain`,
    /// `text/html`).
    ///
    /// # Panics
    ///
    /// When the message has no such part (the panic shows the message).
    pub fn text(&self, content_type: &str) -> &str {
        self.parts
            .iter()
            .find(|part| part.content_type == content_type)
            .map(|part| part.text.as_str())
            .unwrap_or_else(|| panic!("no {content_type} part in {self:?}"))
    }
}

/// One text part of an [`SmtpMessage`].
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct TextPart {
    /// Its type (`text/plain`, `text/html`).
    pub content_type: String,
    /// Its content, decoded (from quoted-printable or base64, into a string).
    pub text: String,
}

/// The Python that has aiosmtpd: Debian's, or the one on the PATH.
///
/// # Panics
///
/// When neither has it.
fn python() -> &'static str {
    static PYTHON: OnceLock<&'static str> = OnceLock::new();
    PYTHON.get_or_init(|| {
        for python in ["/usr/bin/python3", "python3"] {
            let found = Command::new(python)
                .args(["-c", "import aiosmtpd"])
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|status| status.success());
            if found {
                return python;
            }
        }
        panic!("no python3 with aiosmtpd: apt-get install -y python3-aiosmtpd (.ci/run does)");
    })
}

/// Decodes one message file with [`DECODE`].
fn decode(file: &Path) -> SmtpMessage {
    let out = Command::new(python())
        .args(["-c", DECODE])
        .arg(file)
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "{} could not be decoded: {}",
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("the decoder's JSON")
}
