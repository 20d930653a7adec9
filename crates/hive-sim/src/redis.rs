//! [`RedisServer`]: a real `redis-server` on loopback, on a free port, for the tests of
//! cluster mode — one that can be killed mid-run and started again on the same port.
//!
//! It needs Debian's `redis-server` on the `PATH` (`.ci/run` installs it). It keeps nothing
//! on disk (no snapshots, no append-only file), so a restart starts empty, as a Redis that
//! lost its memory does.

use std::{
    fmt,
    io::{Read, Write},
    net::{SocketAddr, TcpListener, TcpStream},
    process::{Child, Command, Stdio},
    time::Duration,
};

/// One step of the wait for the server to answer.
const POLL: Duration = Duration::from_millis(20);

/// How many steps [`RedisServer::start`] waits (10 s).
const START_POLLS: u32 = 500;

/// Why a Redis server could not be started.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RedisServerError {
    /// No free port, or the process could not be started (`redis-server` missing?).
    #[error(
        "could not start redis-server ({0}); install it with `apt-get install -y redis-server`"
    )]
    Start(#[source] std::io::Error),
    /// It started but did not answer `PING` in time.
    #[error("redis-server did not answer on {0} within 10 s")]
    NoAnswer(SocketAddr),
}

/// A `redis-server` child process on `127.0.0.1`. Dropping it kills the server.
pub struct RedisServer {
    addr: SocketAddr,
    child: Option<Child>,
    /// With TLS: the directory of its certificates (removed on drop) and its CA's PEM.
    tls: Option<(std::path::PathBuf, String)>,
}

impl RedisServer {
    /// Starts a server on a free port and waits until it answers `PING`.
    pub fn start() -> Result<Self, RedisServerError> {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(RedisServerError::Start)?
            .port();
        let mut server = Self {
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            child: None,
            tls: None,
        };
        server.restart()?;
        Ok(server)
    }

    /// Starts a server that speaks only TLS, with a certificate for `127.0.0.1` signed by
    /// a CA made for it ([`ca_pem`](Self::ca_pem)), made with the `openssl` command.
    pub fn start_tls() -> Result<Self, RedisServerError> {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(RedisServerError::Start)?
            .port();
        let dir =
            std::env::temp_dir().join(format!("hive-sim-redis-tls-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(RedisServerError::Start)?;
        let openssl = |args: &[&str]| -> Result<(), RedisServerError> {
            let status = Command::new("openssl")
                .args(args)
                .current_dir(&dir)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .map_err(RedisServerError::Start)?;
            if status.success() {
                Ok(())
            } else {
                Err(RedisServerError::Start(std::io::Error::other(format!(
                    "openssl {} failed",
                    args.first().unwrap_or(&"")
                ))))
            }
        };
        openssl(&[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            "/CN=hive-sim test CA",
        ])?;
        openssl(&[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=127.0.0.1",
        ])?;
        std::fs::write(
            dir.join("ext.cnf"),
            "subjectAltName=IP:127.0.0.1,DNS:localhost\n",
        )
        .map_err(RedisServerError::Start)?;
        openssl(&[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.pem",
            "-days",
            "2",
            "-extfile",
            "ext.cnf",
        ])?;
        let ca = std::fs::read_to_string(dir.join("ca.pem")).map_err(RedisServerError::Start)?;
        let mut server = Self {
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            child: None,
            tls: Some((dir, ca)),
        };
        server.restart()?;
        Ok(server)
    }

    /// `redis://127.0.0.1:PORT` (`rediss://` with TLS).
    pub fn url(&self) -> String {
        let scheme = if self.tls.is_some() {
            "rediss"
        } else {
            "redis"
        };
        format!("{scheme}://{}", self.addr)
    }

    /// The PEM of the CA that signed a TLS server's certificate.
    pub fn ca_pem(&self) -> Option<&str> {
        self.tls.as_ref().map(|(_, ca)| ca.as_str())
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Kills the server at once (as a crash would: connections drop, nothing is saved).
    pub fn kill(&mut self) {
        self.thaw();
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Freezes the server (`SIGSTOP`): connections stay open and nothing answers, as a
    /// Redis stuck behind a slow disk or a paused VM. [`thaw`](Self::thaw) resumes it.
    pub fn freeze(&self) {
        self.signal("-STOP");
    }

    /// Resumes a frozen server (`SIGCONT`).
    pub fn thaw(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, signal: &str) {
        if let Some(child) = &self.child {
            let _ = Command::new("kill")
                .arg(signal)
                .arg(child.id().to_string())
                .status();
        }
    }

    /// Whether the server runs now.
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// Starts the server again on the same port (empty), and waits until it answers.
    pub fn restart(&mut self) -> Result<(), RedisServerError> {
        self.kill();
        let mut command = Command::new("redis-server");
        command.args(["--bind", "127.0.0.1"]).args([
            "--save",
            "",
            "--appendonly",
            "no",
            "--protected-mode",
            "yes",
        ]);
        match &self.tls {
            None => command.arg("--port").arg(self.addr.port().to_string()),
            Some((dir, _)) => command
                .args(["--port", "0", "--tls-port"])
                .arg(self.addr.port().to_string())
                .arg("--tls-cert-file")
                .arg(dir.join("server.pem"))
                .arg("--tls-key-file")
                .arg(dir.join("server.key"))
                .arg("--tls-ca-cert-file")
                .arg(dir.join("ca.pem"))
                .args(["--tls-auth-clients", "no"]),
        };
        let child = command
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(RedisServerError::Start)?;
        self.child = Some(child);
        for _ in 0..START_POLLS {
            // A TLS server is ready when it takes connections (PING needs a handshake).
            let ready = match self.tls {
                None => ping(self.addr),
                Some(_) => TcpStream::connect_timeout(&self.addr, POLL).is_ok(),
            };
            if ready {
                return Ok(());
            }
            std::thread::sleep(POLL);
        }
        self.kill();
        Err(RedisServerError::NoAnswer(self.addr))
    }
}

/// Whether a server on `addr` answers `PING` with `+PONG`.
fn ping(addr: SocketAddr) -> bool {
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, POLL) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_millis(200)));
    let mut answer = [0u8; 7];
    stream.write_all(b"PING\r\n").is_ok()
        && stream.read_exact(&mut answer).is_ok()
        && &answer == b"+PONG\r\n"
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
        if let Some((dir, _)) = &self.tls {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

impl fmt::Debug for RedisServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisServer")
            .field("addr", &self.addr)
            .field("running", &self.is_running())
            .field("tls", &self.tls.is_some())
            .finish()
    }
}
