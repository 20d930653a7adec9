//! `hive demo`: the gateway, in real time, in front of three simulated models that fail on a
//! two-minute cycle (see [`story`]), under a workload of concurrent clients;
//! live progress, and a summary of what the clients saw, next to what a client calling the
//! primary model directly saw over the same time.

use std::{
    collections::BTreeMap,
    fmt,
    future::Future,
    net::SocketAddr,
    sync::{
        Arc, RwLock,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use hive_core::{CircuitState, ResilienceEvent, SharedRandom};
use hive_openai::{ChatRequest, ChatResponse, OpenAiClient, OpenAiError};
use hive_sim::{ANSWER, Simulator};
use tokio::{task::JoinSet, time::Instant};
use tower::ServiceExt;

use crate::{
    console::{Output, counts, percentile, private_folder},
    server::{ConfigSource, Options, Server, StartError},
    story,
};

/// The route the workload asks for.
pub const ROUTE: &str = "council";

/// How to run the demo.
#[derive(Clone, Debug)]
pub struct DemoOptions {
    /// How long the workload runs.
    pub duration: Duration,
    /// Where the gateway listens.
    pub listen: SocketAddr,
    /// Concurrent clients.
    pub clients: u32,
    /// Seeds the simulator, jitter and the workload.
    pub seed: Option<u64>,
}

/// Why the demo could not run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DemoError {
    /// The simulated provider could not start.
    #[error("the simulated provider could not start: {0}")]
    Simulator(#[source] std::io::Error),
    /// The gateway could not start (its address may be taken: `--listen 127.0.0.1:0` picks
    /// a free port).
    #[error("the gateway could not start: {0}{hint}", hint = port_hint(.0))]
    Gateway(#[from] StartError),
    /// A client could not be built.
    #[error("the workload's client could not be built: {0}")]
    Client(#[from] hive_core::ConfigError),
    /// The run's folder (history, token, report) could not be made.
    #[error("could not make the demo's folder {path}: {source}")]
    Folder {
        /// The folder.
        path: std::path::PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

fn port_hint(error: &StartError) -> &'static str {
    match error {
        StartError::Listen { .. } => " (`--listen 127.0.0.1:0` picks a free port)",
        _ => "",
    }
}

/// What one client request ended as.
#[derive(Clone, Debug)]
enum Ended {
    /// A whole answer (its text the simulator's, intact) from this model.
    Answered { model: String, intact: bool },
    /// An error status or a broken stream.
    Failed(String),
}

/// What the clients saw.
#[derive(Debug, Default)]
struct Tally {
    ended: Vec<(Duration, Ended, bool)>,
    latencies: Vec<Duration>,
    direct: Vec<bool>,
}

/// The demo's outcome: what the workload saw through the gateway, and calling the primary
/// model directly.
#[derive(Debug)]
pub struct Summary {
    /// How long it ran.
    pub ran: Duration,
    /// The gateway's address.
    pub base_url: String,
    /// Clients of the workload.
    pub clients: u32,
    /// Requests sent through the gateway.
    pub requests: usize,
    /// Of them, answered whole.
    pub answered: usize,
    /// Streamed requests, and how many of their answers arrived intact.
    pub streams: (usize, usize),
    /// Answers by model.
    pub by_model: BTreeMap<String, usize>,
    /// Failures by kind.
    pub failures: BTreeMap<String, usize>,
    /// Latency percentiles seen by the clients (p50, p95, p99).
    pub latency: Option<(Duration, Duration, Duration)>,
    /// Breaker openings, by model.
    pub openings: BTreeMap<String, usize>,
    /// Failovers from one model to the next.
    pub failovers: usize,
    /// Cut streams continued by another model.
    pub continuations: u64,
    /// Requests sent to the primary model directly, and how many it answered.
    pub direct: (usize, usize),
    /// The report of the run, written from its history (`None` if it could not be).
    pub report: Option<std::path::PathBuf>,
}

fn share(part: usize, whole: usize) -> f64 {
    if whole == 0 {
        0.0
    } else {
        100.0 * part as f64 / whole as f64
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = |d: Duration| format!("{:.2} s", d.as_secs_f64());
        writeln!(
            f,
            "\nhive demo: {} with {} clients through {} (route `{ROUTE}`)",
            hive_config::format_duration(Duration::from_secs(self.ran.as_secs())),
            self.clients,
            self.base_url
        )?;
        writeln!(
            f,
            "  requests      {:>6}   answered {} ({:.1}%)",
            self.requests,
            self.answered,
            share(self.answered, self.requests)
        )?;
        writeln!(f, "  answered by   {}", counts(&self.by_model, " · "))?;
        let (streams, intact) = self.streams;
        writeln!(
            f,
            "  streams       {streams:>6}   intact {intact}, {} cut streams continued by another model",
            self.continuations
        )?;
        if !self.failures.is_empty() {
            writeln!(f, "  failed        {}", counts(&self.failures, " · "))?;
        }
        if let Some((p50, p95, p99)) = self.latency {
            writeln!(
                f,
                "  latency       p50 {} · p95 {} · p99 {} (as the clients saw it)",
                secs(p50),
                secs(p95),
                secs(p99)
            )?;
        }
        let openings: Vec<String> = self
            .openings
            .iter()
            .map(|(m, n)| format!("{m} {n}×"))
            .collect();
        writeln!(
            f,
            "  breakers      opened: {}",
            if openings.is_empty() {
                "none".to_owned()
            } else {
                openings.join(", ")
            }
        )?;
        writeln!(f, "  failovers     {}", self.failovers)?;
        let (direct, answered) = self.direct;
        write!(
            f,
            "  without hive  a client calling {} directly got {answered} of {direct} answers ({:.1}%)",
            story::PRIMARY,
            share(answered, direct)
        )?;
        if let Some(report) = &self.report {
            write!(f, "\n  report        {}", report.display())?;
        }
        Ok(())
    }
}

/// A client of the gateway, as an application would have one: OpenAI's wire, the route's
/// name as its model (answers come from the route's models).
fn gateway_client(base_url: &str) -> Result<OpenAiClient, hive_core::ConfigError> {
    OpenAiClient::builder(ROUTE, base_url)
        .alias(story::PRIMARY)
        .alias(story::SECOND)
        .alias(story::THIRD)
        .first_token_timeout(Duration::from_secs(30))
        .total_timeout(Duration::from_secs(60))
        .build()
}

/// One request and how it ended.
async fn ask(client: &OpenAiClient, n: u64, stream: bool) -> Ended {
    let request = ChatRequest::new(ROUTE, format!("Review proposal BIP-{n:03} and vote."));
    let request = if stream { request.streamed() } else { request };
    let text = match client.clone().oneshot(request).await {
        Ok(ChatResponse::Complete(answer)) => Ok((answer.model.clone(), answer.text().to_owned())),
        Ok(ChatResponse::Stream(mut stream)) => {
            let mut text = String::new();
            let mut model = String::new();
            loop {
                match stream.next().await {
                    Some(Ok(chunk)) => {
                        if model.is_empty() {
                            model.clone_from(&chunk.model);
                        }
                        for choice in chunk.choices {
                            text.push_str(choice.delta.content.as_deref().unwrap_or(""));
                        }
                    }
                    Some(Err(e)) => break Err(e),
                    None => break Ok((model, text)),
                }
            }
        }
        Err(e) => Err(e),
    };
    match text {
        Ok((model, text)) => Ended::Answered {
            model,
            intact: text == ANSWER,
        },
        Err(e) => Ended::Failed(failure_kind(&e)),
    }
}

fn failure_kind(e: &OpenAiError) -> String {
    match e {
        OpenAiError::Status { status, .. } => format!("HTTP {}", status.as_u16()),
        other => other.outcome().label().to_owned(),
    }
}

/// Runs the demo until `options.duration` passes or `stop` resolves.
pub async fn run(
    options: DemoOptions,
    stop: impl Future<Output = ()>,
) -> Result<Summary, DemoError> {
    let cycles =
        u32::try_from(options.duration.as_secs() / story::CYCLE.as_secs() + 1).unwrap_or(u32::MAX);
    let seed = options.seed.unwrap_or(7);
    let sim = Simulator::start_seeded(story::scripts(cycles), seed)
        .await
        .map_err(DemoError::Simulator)?;
    // This run's own folder, new and private: its history (hive.db), the admin token, the
    // report. Kept after the run (the report is there).
    let dir =
        private_folder("hive-demo").map_err(|(path, source)| DemoError::Folder { path, source })?;
    let source = ConfigSource::Text {
        dir: dir.clone(),
        resilience: Some(story::resilience_yaml(&options.listen.to_string())),
        models: Some(story::models_yaml(&sim.base_url())),
    };
    // A report counts the minutes that start in its period: from the start of this one.
    let run_started = crate::history::unix_ms() / 60_000 * 60_000;
    let token = admin_token();
    let token_file = write_token(&dir, &token);
    let server = Server::start(
        source,
        Options {
            listen: Some(options.listen),
            seed: options.seed,
            watch: false,
            env: hive_config::Environment::vars([("HIVE_ADMIN_TOKEN".to_owned(), token)]),
            tap: None,
            workers: 0,
        },
    )
    .await?;
    let base_url = server.base_url();
    let out = Output::spinner(true);
    out.line(format!(
        "hive demo: the gateway serves {base_url} in front of a simulated provider at {}",
        sim.base_url()
    ));
    out.line(format!("  the story: {}", story::PLOT));
    out.line(format!(
        "  try:  curl -s {base_url}/v1/chat/completions -H 'content-type: application/json' -d '{{\"model\":\"{ROUTE}\",\"messages\":[{{\"role\":\"user\",\"content\":\"Vote on BIP-01\"}}]}}'"
    ));
    out.line(format!(
        "        curl -s {base_url}/readyz · curl -s {base_url}/metrics | grep hive_"
    ));
    out.line(match &token_file {
        Some(path) => format!(
            "  dashboard: {base_url}/dashboard  (its buttons take the admin token in {})",
            path.display()
        ),
        None => {
            format!("  dashboard: {base_url}/dashboard  (read-only: no admin token could be saved)")
        }
    });

    let tally = Arc::new(RwLock::new(Tally::default()));
    let done = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let mut workload = JoinSet::new();
    let random = SharedRandom::new(Some(seed));
    let clients = u64::from(options.clients);
    for client_number in 0..options.clients {
        let client = gateway_client(&base_url)?;
        let (tally, done, random) = (Arc::clone(&tally), Arc::clone(&done), random.clone());
        workload.spawn(async move {
            let mut n = u64::from(client_number);
            let mut asks = 0u64;
            while !done.load(Ordering::Relaxed) {
                // Every other request of each client streams.
                let stream = (asks + u64::from(client_number)) % 2 == 1;
                asks += 1;
                let asked = Instant::now();
                let ended = ask(&client, n, stream).await;
                let latency = asked.elapsed();
                {
                    let mut tally = tally.write().unwrap_or_else(|p| p.into_inner());
                    tally.ended.push((started.elapsed(), ended, stream));
                    tally.latencies.push(latency);
                }
                n += clients;
                let think = Duration::from_millis(200 + (random.unit() * 300.0) as u64);
                tokio::time::sleep(think).await;
            }
        });
    }
    // The same pace, straight to the primary model, for comparison.
    {
        let direct = OpenAiClient::builder(story::PRIMARY, sim.base_url())
            .first_token_timeout(Duration::from_secs(5))
            .build()?;
        let (tally, done) = (Arc::clone(&tally), Arc::clone(&done));
        workload.spawn(async move {
            let mut n = 0;
            while !done.load(Ordering::Relaxed) {
                let ended = ask(&direct, n, false).await;
                let ok = matches!(ended, Ended::Answered { .. });
                tally
                    .write()
                    .unwrap_or_else(|p| p.into_inner())
                    .direct
                    .push(ok);
                n += 1;
                tokio::time::sleep(Duration::from_millis(450)).await;
            }
        });
    }

    let mut events = server.monitor().subscribe();
    let (mut openings, mut failovers) = (BTreeMap::<String, usize>::new(), 0usize);
    let mut alerts_seen: Vec<String> = Vec::new();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let end = tokio::time::sleep(options.duration);
    tokio::pin!(end, stop);
    loop {
        tokio::select! {
            () = &mut end => break,
            () = &mut stop => {
                out.line("stopping: Ctrl-C");
                break;
            }
            event = events.recv() => if let Ok(timed) = event {
                match timed.event {
                    ResilienceEvent::CircuitTransition { model, from, to, .. } => {
                        if to == CircuitState::Open {
                            *openings.entry(model.to_string()).or_default() += 1;
                        }
                        out.line(format!(
                            "{:>6}  breaker of {model}: {from:?} → {to:?}",
                            clock(started.elapsed())
                        ));
                    }
                    ResilienceEvent::Failover { .. } => failovers += 1,
                    _ => {}
                }
            },
            _ = tick.tick() => {
                let at = started.elapsed();
                for alert in server.alerts().await {
                    let key = format!("{}:{:?}", alert.rule, alert.subject);
                    if !alerts_seen.contains(&key) {
                        out.line(format!("{:>6}  alert {:?}: {}", clock(at), alert.severity, alert.summary));
                        alerts_seen.push(key);
                    }
                }
                let tally = tally.read().unwrap_or_else(|p| p.into_inner());
                let answered = tally.ended.iter().filter(|(_, e, _)| matches!(e, Ended::Answered { .. })).count();
                let models: Vec<String> = server
                    .models_up()
                    .into_iter()
                    .map(|(model, up)| format!("{model} {}", if up { "up" } else { "down" }))
                    .collect();
                out.status(at, format!(
                    "{} · {} requests · {:.1}% answered · {failovers} failovers · {} · {}",
                    clock(at),
                    tally.ended.len(),
                    share(answered, tally.ended.len()),
                    models.join(", "),
                    story::phase(at),
                ));
            }
        }
    }
    done.store(true, Ordering::Relaxed);
    // Requests under way finish (each within the route's deadline).
    while workload.join_next().await.is_some() {}
    out.finish();
    let continuations = server.gateway().continuations();
    server.shutdown().await;
    let report = write_report(&server, &dir, run_started).await;

    let tally = Arc::try_unwrap(tally)
        .map(|t| t.into_inner().unwrap_or_else(|p| p.into_inner()))
        .unwrap_or_default();
    Ok(summarise(
        tally,
        started.elapsed(),
        base_url,
        options.clients,
        openings,
        failovers,
        continuations,
    ))
    .map(|summary| Summary { report, ..summary })
}

/// Writes the report of the run (from `since`, in ms since the Unix epoch) from the
/// gateway's history to `dir/report.html`; its path, or `None` (logged) if it could not be.
async fn write_report(
    server: &Server,
    dir: &std::path::Path,
    since: u64,
) -> Option<std::path::PathBuf> {
    let history = server.gateway().history()?;
    let report = crate::report::from_history(history, since, crate::history::unix_ms() + 1)
        .await
        .map_err(|e| tracing::warn!(error = %e, "the demo's report was not made"))
        .ok()?;
    let path = dir.join("report.html");
    std::fs::write(&path, report.to_html())
        .map_err(|e| tracing::warn!(path = %path.display(), error = %e, "the demo's report was not written"))
        .ok()?;
    Some(path)
}

fn summarise(
    mut tally: Tally,
    ran: Duration,
    base_url: String,
    clients: u32,
    openings: BTreeMap<String, usize>,
    failovers: usize,
    continuations: u64,
) -> Summary {
    let mut by_model = BTreeMap::new();
    let mut failures = BTreeMap::new();
    let (mut answered, mut streams, mut intact_streams) = (0, 0, 0);
    for (_, ended, stream) in &tally.ended {
        if *stream {
            streams += 1;
        }
        match ended {
            Ended::Answered { model, intact } => {
                answered += 1;
                *by_model.entry(model.clone()).or_insert(0) += 1;
                if *stream && *intact {
                    intact_streams += 1;
                }
            }
            Ended::Failed(kind) => *failures.entry(kind.clone()).or_insert(0) += 1,
        }
    }
    tally.latencies.sort_unstable();
    let at = |q: f64| percentile(&tally.latencies, q);
    let latency = (!tally.latencies.is_empty()).then(|| (at(0.5), at(0.95), at(0.99)));
    Summary {
        ran,
        base_url,
        clients,
        requests: tally.ended.len(),
        answered,
        streams: (streams, intact_streams),
        by_model,
        failures,
        latency,
        openings,
        failovers,
        continuations,
        direct: (
            tally.direct.len(),
            tally.direct.iter().filter(|ok| **ok).count(),
        ),
        report: None,
    }
}

fn clock(d: Duration) -> String {
    format!("{}:{:02}", d.as_secs() / 60, d.as_secs() % 60)
}

/// A fresh admin token for this run: 128 bits from two of the standard library's randomly
/// keyed hashers, as hex.
fn admin_token() -> String {
    use std::hash::{BuildHasher, Hasher};
    let word = || {
        std::collections::hash_map::RandomState::new()
            .build_hasher()
            .finish()
    };
    format!("hive-demo-{:016x}{:016x}", word(), word())
}

/// Saves the token where only this user can read it (it is never printed); the path, or
/// `None` if it could not be written.
fn write_token(dir: &std::path::Path, token: &str) -> Option<std::path::PathBuf> {
    use std::io::Write;
    let path = dir.join("admin-token");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let written = options
        .open(&path)
        .and_then(|mut file| file.write_all(token.as_bytes()));
    match written {
        Ok(()) => Some(path),
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "the demo's admin token was not saved");
            None
        }
    }
}
