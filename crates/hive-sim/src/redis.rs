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
        };
        server.restart()?;
        Ok(server)
    }

    /// `redis://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("redis://{}", self.addr)
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
        let child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port"])
            .arg(self.addr.port().to_string())
            .args([
                "--save",
                "",
                "--appendonly",
                "no",
                "--protected-mode",
                "yes",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(RedisServerError::Start)?;
        self.child = Some(child);
        for _ in 0..START_POLLS {
            if ping(self.addr) {
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
    }
}

impl fmt::Debug for RedisServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisServer")
            .field("addr", &self.addr)
            .field("running", &self.is_running())
            .finish()
    }
}
