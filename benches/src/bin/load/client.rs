//! The load generator: workers that each hold one HTTP/1.1 keep-alive connection, in an open
//! loop (a fixed schedule) or a closed loop (back to back).

use std::{
    collections::BTreeMap,
    fmt::{self, Write as _},
    net::{SocketAddr, TcpStream as StdTcpStream, ToSocketAddrs},
    num::NonZeroUsize,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Uri, header};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::{net::TcpStream, time::Instant};

use crate::stats::{Samples, Summary, human};

/// Why a load run could not start.
#[derive(Debug, thiserror::Error)]
pub(crate) enum LoadError {
    /// The options do not go together.
    #[error("{0}")]
    Usage(&'static str),
    /// The URL is not `http://HOST:PORT[/PATH]`.
    #[error("`{url}` is not a usable URL: {why}")]
    Url {
        /// The URL given.
        url: String,
        /// What is wrong with it.
        why: String,
    },
    /// The target cannot be reached before the run.
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        /// The address tried.
        addr: SocketAddr,
        /// The error.
        source: std::io::Error,
    },
    /// A runtime or a thread could not be started.
    #[error("could not start the load generator's {what}: {source}")]
    Start {
        /// A runtime or a thread.
        what: &'static str,
        /// The error.
        source: std::io::Error,
    },
    /// A worker thread panicked (a bug).
    #[error("a worker of the load generator panicked")]
    Worker,
}

/// Where the requests go: an address, and the URI and `Host` they carry.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    addr: SocketAddr,
    uri: Uri,
    host: HeaderValue,
}

impl Target {
    /// Parses `http://HOST:PORT[/PATH]` (the path defaults to /v1/chat/completions) and
    /// resolves its host once.
    pub(crate) fn parse(url: &str) -> Result<Self, LoadError> {
        let bad = |why: &str| LoadError::Url {
            url: url.to_owned(),
            why: why.to_owned(),
        };
        let uri: Uri = url
            .parse()
            .map_err(|e: http::uri::InvalidUri| bad(&e.to_string()))?;
        match uri.scheme_str() {
            Some("http") => {}
            Some(_) => return Err(bad("only http:// is supported (no TLS)")),
            None => return Err(bad("it needs a scheme: http://HOST:PORT")),
        }
        let authority = uri
            .authority()
            .ok_or_else(|| bad("it has no host"))?
            .clone();
        let port = authority.port_u16().unwrap_or(80);
        let addr = (authority.host(), port)
            .to_socket_addrs()
            .map_err(|e| bad(&format!("its host does not resolve: {e}")))?
            .next()
            .ok_or_else(|| bad("its host resolves to no address"))?;
        let path = match uri.path_and_query().map(|p| p.as_str()) {
            None | Some("" | "/") => "/v1/chat/completions",
            Some(path) => path,
        };
        let uri = Uri::try_from(path).map_err(|e| bad(&e.to_string()))?;
        let host =
            HeaderValue::try_from(authority.as_str()).map_err(|_| bad("its host is not valid"))?;
        Ok(Self { addr, uri, host })
    }
}

/// Open or closed loop.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Mode {
    /// `rate` requests per second at fixed intervals, over `connections` connections.
    Open {
        /// Requests per second.
        rate: f64,
        /// Connections, each with its own thread.
        connections: NonZeroUsize,
    },
    /// `workers` connections back to back, on `threads` runtime threads.
    Closed {
        /// Workers, each with its own connection.
        workers: NonZeroUsize,
        /// Threads of the runtime they share.
        threads: NonZeroUsize,
    },
}

/// What to run.
#[derive(Debug)]
pub(crate) struct Plan {
    /// Where the requests go.
    pub(crate) target: Target,
    /// Open or closed loop.
    pub(crate) mode: Mode,
    /// How long to measure, after the warm-up.
    pub(crate) duration: Duration,
    /// How long to load before measuring.
    pub(crate) warmup: Duration,
    /// Whether to ask for streamed answers.
    pub(crate) stream: bool,
    /// The `model` of every request.
    pub(crate) model: String,
    /// The user message of every request.
    pub(crate) prompt: String,
    /// Extra request headers.
    pub(crate) headers: Vec<(HeaderName, HeaderValue)>,
    /// The longest wait for one answer.
    pub(crate) timeout: Duration,
}

impl Plan {
    fn describe(&self) -> String {
        let mode = match self.mode {
            Mode::Open { rate, connections } => {
                format!("open loop, {rate} req/s on {connections} connection(s)")
            }
            Mode::Closed { workers, .. } => format!("closed loop, {workers} connection(s)"),
        };
        let kind = if self.stream { "streamed" } else { "whole" };
        format!(
            "{mode}, {kind}, {:?} measured after {:?} of warm-up",
            self.duration, self.warmup
        )
    }
}

/// What every worker shares.
#[derive(Debug)]
struct Shared {
    /// The target's address.
    addr: SocketAddr,
    /// The request's URI (its path).
    uri: Uri,
    /// The request's headers: Host, Content-Type and the extra ones.
    headers: HeaderMap,
    /// The request's body, serialised once.
    body: Bytes,
    /// Whether a stream is asked for.
    stream: bool,
    /// The longest wait for one answer.
    timeout: Duration,
    /// When the schedule (and the warm-up) starts.
    start: Instant,
    /// When measuring starts: requests started (or scheduled) earlier are not counted.
    measure_from: Instant,
    /// When sending stops.
    end: Instant,
    /// The open loop's next schedule slot.
    next: AtomicU64,
}

impl Shared {
    fn request(&self) -> Request<Full<Bytes>> {
        let mut request = Request::new(Full::new(self.body.clone()));
        *request.method_mut() = Method::POST;
        *request.uri_mut() = self.uri.clone();
        *request.headers_mut() = self.headers.clone();
        request
    }

    async fn connect(&self) -> Result<SendRequest<Full<Bytes>>, Failure> {
        let stream = TcpStream::connect(self.addr)
            .await
            .map_err(|e| Failure::Connect(e.kind().to_string()))?;
        // Best effort: loopback latency figures assume no Nagle delay.
        let _ = stream.set_nodelay(true);
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| Failure::Http(e.to_string()))?;
        tokio::spawn(async move {
            // Ends when the sender is dropped or the server closes: either way the worker
            // sees it on its next request.
            let _ = connection.await;
        });
        Ok(sender)
    }
}

/// Why one request failed.
#[derive(Debug)]
enum Failure {
    /// No connection (the error's kind).
    Connect(String),
    /// hyper's error: the connection broke, or the answer was not HTTP.
    Http(String),
    /// An answer with a status other than 2xx.
    Status(u16),
    /// No answer within the timeout.
    Timeout,
    /// A stream that ended without `data: [DONE]`.
    Incomplete,
}

impl Failure {
    /// Whether the connection is no longer usable.
    fn breaks_connection(&self) -> bool {
        matches!(self, Self::Http(_) | Self::Timeout | Self::Connect(_))
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Connect(e) => write!(f, "connect: {e}"),
            Self::Http(e) => write!(f, "http: {e}"),
            Self::Status(code) => write!(f, "status {code}"),
            Self::Timeout => f.write_str("timeout"),
            Self::Incomplete => f.write_str("stream ended without data: [DONE]"),
        }
    }
}

/// The times of one answer, from its origin (its scheduled time or its sending).
#[derive(Debug, Clone, Copy)]
struct Timing {
    /// To the first byte of the body.
    first_byte: Duration,
    /// To the end of the body.
    end: Duration,
}

/// The last bytes of a body, to check that a stream ended with `data: [DONE]`.
#[derive(Debug, Default)]
struct Tail {
    /// At most [`Tail::KEEP`] bytes.
    bytes: Vec<u8>,
}

impl Tail {
    const KEEP: usize = 32;

    fn push(&mut self, data: &[u8]) {
        let data = &data[data.len().saturating_sub(Self::KEEP)..];
        self.bytes.extend_from_slice(data);
        let excess = self.bytes.len().saturating_sub(Self::KEEP);
        self.bytes.drain(..excess);
    }

    fn has_done(&self) -> bool {
        self.bytes.windows(6).any(|w| w == b"[DONE]")
    }
}

/// One request on `sender`, timed from `origin`; the body is read to its end.
async fn exchange(
    sender: &mut SendRequest<Full<Bytes>>,
    request: Request<Full<Bytes>>,
    origin: Instant,
    stream: bool,
) -> Result<Timing, Failure> {
    sender
        .ready()
        .await
        .map_err(|e| Failure::Http(e.to_string()))?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| Failure::Http(e.to_string()))?;
    let status = response.status();
    let mut body = response.into_body();
    let mut first_byte = None;
    let mut tail = Tail::default();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| Failure::Http(e.to_string()))?;
        if let Some(data) = frame.data_ref()
            && !data.is_empty()
        {
            if first_byte.is_none() {
                first_byte = Some(origin.elapsed());
            }
            if stream {
                tail.push(data);
            }
        }
    }
    let end = origin.elapsed();
    if !status.is_success() {
        return Err(Failure::Status(status.as_u16()));
    }
    if stream && !tail.has_done() {
        return Err(Failure::Incomplete);
    }
    Ok(Timing {
        first_byte: first_byte.unwrap_or(end),
        end,
    })
}

/// What one worker measured.
#[derive(Debug, Default)]
struct Tally {
    /// To the end of each answer measured.
    latency: Samples,
    /// To the first byte of each streamed answer measured.
    first_byte: Samples,
    /// How late the open loop sent each request after its scheduled time.
    lag: Samples,
    /// Answers measured that succeeded.
    ok: u64,
    /// Requests measured that failed, by why.
    errors: BTreeMap<String, u64>,
    /// Every request finished, ok or not, warm-up included (for CPU time per request).
    all: u64,
}

impl Tally {
    fn record(&mut self, measured: bool, result: &Result<Timing, Failure>, stream: bool) {
        self.all += 1;
        if !measured {
            return;
        }
        match result {
            Ok(timing) => {
                self.ok += 1;
                self.latency.push(timing.end);
                if stream {
                    self.first_byte.push(timing.first_byte);
                }
            }
            Err(failure) => *self.errors.entry(failure.to_string()).or_default() += 1,
        }
    }

    fn merge(&mut self, other: Tally) {
        self.latency.extend(other.latency);
        self.first_byte.extend(other.first_byte);
        self.lag.extend(other.lag);
        self.ok += other.ok;
        for (kind, n) in other.errors {
            *self.errors.entry(kind).or_default() += n;
        }
        self.all += other.all;
    }
}

/// Sleeps until `deadline` with a precision of a few microseconds: the thread sleeps to just
/// before it (a timer wakes a thread up to ~50 µs late), then spins. Blocking: open-loop
/// workers have a thread each.
fn wait_until(deadline: Instant) {
    const SPIN: Duration = Duration::from_micros(150);
    loop {
        let now = Instant::now();
        if now >= deadline {
            return;
        }
        let left = deadline - now;
        if left > SPIN {
            std::thread::sleep(left - SPIN);
        } else {
            std::hint::spin_loop();
        }
    }
}

/// The open loop's schedule: slot `i` is due `i / rate` seconds after the start.
fn slot_offset(i: u64, rate: f64) -> Duration {
    Duration::from_secs_f64(i as f64 / rate)
}

/// The first slot due at or after `offset`.
fn first_slot_at(offset: Duration, rate: f64) -> u64 {
    (offset.as_secs_f64() * rate).ceil() as u64
}

/// An open-loop worker: takes the next slot of the shared schedule, waits for its time, and
/// times the answer from that scheduled time.
async fn open_worker(shared: Arc<Shared>, rate: f64) -> Tally {
    let mut tally = Tally::default();
    let mut sender = shared.connect().await.ok();
    // A worker that has fallen this far behind stops taking slots: the rest count as missed.
    let give_up = shared.end + Duration::from_secs(1);
    loop {
        let slot = shared.next.fetch_add(1, Ordering::Relaxed);
        let scheduled = shared.start + slot_offset(slot, rate);
        if scheduled >= shared.end || Instant::now() >= give_up {
            break;
        }
        wait_until(scheduled);
        let measured = scheduled >= shared.measure_from;
        let sent = Instant::now();
        if measured {
            tally.lag.push(sent - scheduled);
        }
        // A refused connection fails this slot; the next one tries again.
        one_request(&shared, &mut sender, scheduled, measured, &mut tally).await;
    }
    tally
}

/// One request on the worker's connection (opened again when it broke), timed from
/// `since` and counted in `tally`; whether a connection could be had.
async fn one_request(
    shared: &Shared,
    sender: &mut Option<SendRequest<Full<Bytes>>>,
    since: Instant,
    measured: bool,
    tally: &mut Tally,
) -> bool {
    let s = match sender {
        Some(s) => s,
        None => match shared.connect().await {
            Ok(s) => sender.insert(s),
            Err(e) => {
                tally.record(measured, &Err(e), shared.stream);
                return false;
            }
        },
    };
    let result = tokio::time::timeout(
        shared.timeout,
        exchange(s, shared.request(), since, shared.stream),
    )
    .await
    .unwrap_or(Err(Failure::Timeout));
    if let Err(e) = &result
        && e.breaks_connection()
    {
        *sender = None;
    }
    tally.record(measured, &result, shared.stream);
    true
}

/// A closed-loop worker: one request after another on its connection until the end.
async fn closed_worker(shared: Arc<Shared>) -> Tally {
    let mut tally = Tally::default();
    let mut sender = None;
    loop {
        let started = Instant::now();
        if started >= shared.end {
            break;
        }
        let measured = started >= shared.measure_from;
        if !one_request(&shared, &mut sender, started, measured, &mut tally).await {
            // Do not spin on a refused connection.
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    tally
}

fn runtime(threads: usize) -> Result<tokio::runtime::Runtime, LoadError> {
    let built = if threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .enable_all()
            .build()
    };
    built.map_err(|source| LoadError::Start {
        what: "runtime",
        source,
    })
}

/// Runs `plan` and gathers what every worker measured.
pub(crate) fn run(plan: &Plan) -> Result<Report, LoadError> {
    // Fail early and clearly when nothing listens there.
    StdTcpStream::connect_timeout(&plan.target.addr, Duration::from_secs(5)).map_err(|source| {
        LoadError::Connect {
            addr: plan.target.addr,
            source,
        }
    })?;
    let mut headers = HeaderMap::new();
    headers.insert(header::HOST, plan.target.host.clone());
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    for (name, value) in &plan.headers {
        headers.append(name.clone(), value.clone());
    }
    let body = json!({
        "model": plan.model,
        "messages": [{"role": "user", "content": plan.prompt}],
        "stream": plan.stream,
    });
    // Workers connect in the first 100 ms, before the first slot is due.
    let start = Instant::now() + Duration::from_millis(100);
    let shared = Arc::new(Shared {
        addr: plan.target.addr,
        uri: plan.target.uri.clone(),
        headers,
        body: Bytes::from(body.to_string()),
        stream: plan.stream,
        timeout: plan.timeout,
        start,
        measure_from: start + plan.warmup,
        end: start + plan.warmup + plan.duration,
        next: AtomicU64::new(0),
    });
    let mut tally = Tally::default();
    let mut expected = None;
    match plan.mode {
        Mode::Open { rate, connections } => {
            let mut threads = Vec::with_capacity(connections.get());
            for n in 0..connections.get() {
                let shared = Arc::clone(&shared);
                let rt = runtime(1)?;
                let thread = std::thread::Builder::new()
                    .name(format!("hive-load-{n}"))
                    .spawn(move || rt.block_on(open_worker(shared, rate)))
                    .map_err(|source| LoadError::Start {
                        what: "threads",
                        source,
                    })?;
                threads.push(thread);
            }
            for thread in threads {
                tally.merge(thread.join().map_err(|_| LoadError::Worker)?);
            }
            let first = first_slot_at(plan.warmup, rate);
            let last = first_slot_at(plan.warmup + plan.duration, rate);
            expected = Some(last.saturating_sub(first));
        }
        Mode::Closed { workers, threads } => {
            let rt = runtime(threads.get())?;
            let tallies = rt.block_on(async {
                let handles: Vec<_> = (0..workers.get())
                    .map(|_| tokio::spawn(closed_worker(Arc::clone(&shared))))
                    .collect();
                let mut tallies = Vec::with_capacity(handles.len());
                for handle in handles {
                    tallies.push(handle.await.map_err(|_| LoadError::Worker)?);
                }
                Ok::<_, LoadError>(tallies)
            })?;
            for t in tallies {
                tally.merge(t);
            }
        }
    }
    let errors: u64 = tally.errors.values().sum();
    let missed = expected.map(|e| e.saturating_sub(tally.ok + errors));
    Ok(Report {
        ok: tally.ok,
        errors,
        error_kinds: tally.errors,
        missed,
        all: tally.all,
        rps: tally.ok as f64 / plan.duration.as_secs_f64(),
        latency: tally.latency.summary(),
        first_byte: tally.first_byte.summary(),
        lag: tally.lag.summary(),
    })
}

/// The figures of a run.
#[derive(Debug)]
pub(crate) struct Report {
    /// Answers measured that succeeded.
    ok: u64,
    /// Requests measured that failed.
    errors: u64,
    /// The failures by why.
    error_kinds: BTreeMap<String, u64>,
    /// Open loop: measured slots never sent (the target fell more than a second behind).
    missed: Option<u64>,
    /// Every request finished, warm-up included.
    all: u64,
    /// Successful answers per second measured.
    rps: f64,
    /// To the end of each answer.
    latency: Option<Summary>,
    /// To the first byte of each streamed answer.
    first_byte: Option<Summary>,
    /// How late the open loop sent.
    lag: Option<Summary>,
}

impl Report {
    /// The report as one JSON object.
    pub(crate) fn to_json(&self, label: &str, plan: &Plan) -> Value {
        let (mode, rate, connections) = match plan.mode {
            Mode::Open { rate, connections } => ("open", Some(rate), connections.get()),
            Mode::Closed { workers, .. } => ("closed", None, workers.get()),
        };
        json!({
            "label": label,
            "mode": mode,
            "rate": rate,
            "connections": connections,
            "stream": plan.stream,
            "duration_s": plan.duration.as_secs_f64(),
            "warmup_s": plan.warmup.as_secs_f64(),
            "ok": self.ok,
            "errors": self.errors,
            "error_kinds": self.error_kinds,
            "missed": self.missed,
            "all_requests": self.all,
            "rps": (self.rps * 10.0).round() / 10.0,
            "latency": self.latency.map(Summary::to_json),
            "first_byte": self.first_byte.map(Summary::to_json),
            "send_lag": self.lag.map(Summary::to_json),
        })
    }

    /// The report as a table.
    pub(crate) fn table(&self, label: &str, plan: &Plan) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "{label}: {}", plan.describe());
        let _ = writeln!(
            out,
            "  requests   {} ok, {} errors{}, {:.1} req/s",
            self.ok,
            self.errors,
            self.missed
                .filter(|&m| m > 0)
                .map(|m| format!(", {m} never sent (fell behind)"))
                .unwrap_or_default(),
            self.rps
        );
        match self.latency {
            Some(s) => s.line(&mut out, "latency"),
            None => out.push_str("  latency    no answer\n"),
        }
        if let Some(s) = self.first_byte {
            s.line(&mut out, "first byte");
        }
        if let Some(s) = self.lag {
            s.line(&mut out, "send lag");
            let _ = writeln!(
                out,
                "             (how late the client sent; counted in the latency, p99 {})",
                human(s.p99)
            );
        }
        for (kind, n) in &self.error_kinds {
            let _ = writeln!(out, "  error      {n} × {kind}");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let t = Target::parse("http://127.0.0.1:9").unwrap();
        assert_eq!(t.uri, "/v1/chat/completions");
        assert_eq!(t.host, "127.0.0.1:9");
        let t = Target::parse("http://127.0.0.1:9/x/v1/chat/completions").unwrap();
        assert_eq!(t.uri, "/x/v1/chat/completions");
        assert!(Target::parse("https://127.0.0.1:9").is_err());
        assert!(Target::parse("127.0.0.1:9").is_err());
    }

    #[test]
    fn schedule() {
        assert_eq!(slot_offset(1000, 1000.0), Duration::from_secs(1));
        assert_eq!(first_slot_at(Duration::from_secs(2), 1000.0), 2000);
        assert_eq!(first_slot_at(Duration::from_millis(2500), 3.0), 8);
    }

    #[test]
    fn tail_finds_done_across_frames() {
        let mut tail = Tail::default();
        tail.push(b"data: {\"a\":1}\n\ndata: [DO");
        assert!(!tail.has_done());
        tail.push(b"NE]\n\n");
        assert!(tail.has_done());
    }
}
