//! `hive chaos run SCENARIO.yml`: a drill. The gateway, in real time and over real HTTP, in
//! front of three models of a simulated provider; a workload through its route; the
//! scenario's faults injected by the gateway's own chaos layer (innermost, so every real
//! layer meets them); then the figures the resilience targets are about — availability,
//! recovery after each heal, operations affected, fallback latency against the healthy
//! baseline, throughput kept, CPU per call with and without the stack, attempts per open
//! period, memory — a PASS / FAIL table, and the run written as JSON and HTML.
//!
//! The scenarios shipped are in `scenarios/`; [`Scenario`] documents their keys.

mod html;
mod measure;
mod scenario;
mod workload;

use std::{
    collections::BTreeMap,
    fmt,
    future::Future,
    path::{Path, PathBuf},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use hive_core::{ModelId, Outcome, ResilienceEvent};
use hive_openai::{ChatRequest, OpenAiClient};
use hive_sim::{Latency, Script, Simulator};
use serde::Serialize;
use tokio::{sync::mpsc, task::JoinSet, time::Instant};
use tower::ServiceExt;

pub use measure::{
    AttemptSeen, Check, Cpu, Figures, Pace, ProbeCount, Recorded, Recovery, Transition, Verdict,
};
pub use scenario::{
    FaultSpec, Flapping, GatewaySettings, MODELS, Provider, ROUTE, Scenario, ScenarioError,
    Targets, Workload,
};
pub use workload::{End, Sent};

use crate::{
    console::{Output, counts, percentile, private_folder},
    fleet::Fleet,
    server::{ConfigSource, Options, Server, StartError},
};

/// How to run a drill.
#[derive(Clone, Debug)]
pub struct DrillOptions {
    /// Multiplies every time of the scenario's timeline (1: as written; 0.1: ten times
    /// shorter, for tests). Latencies, timeouts and targets stay.
    pub scale: f64,
    /// Show progress on stderr (a bar on a terminal, a line every 10 s otherwise).
    pub progress: bool,
    /// Measure CPU per call with and without the stack (about two seconds) when the
    /// scenario has a target for it.
    pub measure_cpu: bool,
}

impl Default for DrillOptions {
    fn default() -> Self {
        Self {
            scale: 1.0,
            progress: true,
            measure_cpu: true,
        }
    }
}

/// Why a drill could not run (a drill that ran and missed its targets is not an error:
/// its report says so).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DrillError {
    /// The simulated provider could not start.
    #[error("the simulated provider could not start: {0}")]
    Simulator(#[source] std::io::Error),
    /// The gateway could not start.
    #[error("the gateway could not start: {0}")]
    Gateway(#[from] StartError),
    /// The drill's own configuration was refused (a bug: it is fixed text).
    #[error("the drill's gateway configuration was refused: {0}")]
    Config(String),
    /// The scenario's faults were refused by the chaos layer.
    #[error("the scenario's faults were refused: {0}")]
    Chaos(#[from] hive_chaos::ChaosError),
    /// The scenario, scaled, no longer holds together (a flapping period under 100 ms …).
    #[error("the scaled scenario is not valid: {0}")]
    Scaled(String),
    /// The drill's scratch folder could not be made.
    #[error("could not make a folder for the drill: {0}")]
    Folder(#[source] std::io::Error),
}

/// One second of the run, for the timeline charts.
#[derive(Clone, Debug, Serialize)]
pub struct Second {
    /// Its start, in seconds from the start of the run.
    pub t: u64,
    /// Answers by model (requests sent in that second).
    pub answered: BTreeMap<String, u64>,
    /// Degraded answers.
    pub degraded: u64,
    /// Failed or hung requests.
    pub failed: u64,
    /// Median latency of its answers, in milliseconds.
    pub p50_ms: Option<f64>,
    /// 99th percentile, in milliseconds.
    pub p99_ms: Option<f64>,
}

/// A drill's outcome: the scenario as run, its figures, the verdicts, the timeline.
#[derive(Clone, Debug, Serialize)]
pub struct DrillReport {
    /// The scenario (scaled as run).
    pub scenario: Scenario,
    /// Whether it was stopped before its end (its figures cover what ran).
    pub interrupted: bool,
    /// The scale it ran at.
    pub scale: f64,
    /// The figures.
    pub figures: Figures,
    /// The verdict of every target.
    pub checks: Vec<Check>,
    /// Per second: who served, failures, latency.
    pub timeline: Vec<Second>,
    /// Every breaker transition.
    pub transitions: Vec<Transition>,
    /// When each fault was on, in seconds: (from, to, what, model).
    pub faults: Vec<(f64, f64, String, String)>,
}

impl DrillReport {
    /// Whether every target was met.
    pub fn passed(&self) -> bool {
        self.checks.iter().all(|c| c.verdict == Verdict::Pass)
    }

    /// The report as JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }

    /// The report as one self-contained HTML page (inline style, SVG charts).
    pub fn to_html(&self) -> String {
        html::page(self)
    }

    /// Writes `<name>.json` and `<name>.html` into `dir` (made if missing); their paths.
    pub fn write(&self, dir: &Path) -> std::io::Result<(PathBuf, PathBuf)> {
        std::fs::create_dir_all(dir)?;
        let json = dir.join(format!("{}.json", self.scenario.name));
        let html = dir.join(format!("{}.html", self.scenario.name));
        std::fs::write(&json, self.to_json())?;
        std::fs::write(&html, self.to_html())?;
        Ok((json, html))
    }
}

impl fmt::Display for DrillReport {
    /// The verdict table.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let figures = &self.figures;
        writeln!(
            f,
            "hive chaos run {}: {} requests in {}{}{}",
            self.scenario.name,
            figures.requests,
            hive_config::format_duration(Duration::from_secs(self.scenario.duration.as_secs())),
            if (self.scale - 1.0).abs() > f64::EPSILON {
                format!(" (scaled ×{})", self.scale)
            } else {
                String::new()
            },
            if self.interrupted {
                " — stopped early"
            } else {
                ""
            }
        )?;
        writeln!(
            f,
            "  answered {} ({}) · degraded {} · failed {} · hung {} · faults injected {}",
            figures.answered,
            counts(&figures.answered_by, ", "),
            figures.degraded,
            figures.failed,
            figures.hung,
            figures.injected
        )?;
        if !figures.failures.is_empty() {
            writeln!(f, "  failures: {}", counts(&figures.failures, ", "))?;
        }
        if let (Some(base), Some(during)) = (&figures.baseline, &figures.during_faults) {
            writeln!(
                f,
                "  latency p50 / p99: {:.1} / {:.1} ms healthy, {:.1} / {:.1} ms while a fault was on",
                base.p50_ms, base.p99_ms, during.p50_ms, during.p99_ms
            )?;
        }
        if let Some(over) = &figures.failed_over {
            writeln!(
                f,
                "  failed over: {} requests answered after another model failed them, p50 {:.1} ms, p99 {:.1} ms",
                over.requests, over.p50_ms, over.p99_ms
            )?;
        }
        if figures.worst_send_lag_ms > 10.0 {
            writeln!(
                f,
                "  warning: a request left up to {:.1} ms after its time — the load generator fell behind, and its delay is in the latencies",
                figures.worst_send_lag_ms
            )?;
        }
        if figures.continued > 0 {
            writeln!(
                f,
                "  streams cut and continued by another model: {}",
                figures.continued
            )?;
        }
        let width = self.checks.iter().map(|c| c.name.len()).max().unwrap_or(10);
        let target_width = self
            .checks
            .iter()
            .map(|c| c.target.chars().count())
            .max()
            .unwrap_or(6);
        writeln!(f)?;
        writeln!(
            f,
            "  {:<width$}  {:<target_width$}  {:<7}  measured",
            "target", "goal", "verdict"
        )?;
        for check in &self.checks {
            writeln!(
                f,
                "  {:<width$}  {:<target_width$}  {:<7}  {}",
                check.name,
                check.target,
                check.verdict.label(),
                check.measured
            )?;
        }
        let failed = self
            .checks
            .iter()
            .filter(|c| c.verdict != Verdict::Pass)
            .count();
        write!(
            f,
            "\n  {}",
            if failed == 0 {
                "every target met".to_owned()
            } else {
                format!("{failed} of {} targets not met", self.checks.len())
            }
        )
    }
}

/// The drill's `models-resilience.yml`: the three models of the simulated provider at
/// `base_url`, in one route, with a degraded answer when none answers.
pub fn models_yaml(base_url: &str) -> String {
    let [first, second, third] = MODELS;
    format!(
        r#"models:
  - id: {first}
    base_url: {base_url}
    accepts_prefill: true
  - id: {second}
    base_url: {base_url}
    accepts_prefill: true
  - id: {third}
    base_url: {base_url}
    accepts_prefill: true
routes:
  - name: {ROUTE}
    models: [{first}, {second}, {third}]
    commit: first_chunk
    degraded: "Every model is busy right now. Please try again in a minute."
"#
    )
}

/// The drill's `resilience.yml`: breakers that open after three failures in a row and
/// break for 0.5 s doubling to 2 s; a provider's wait of more than 0.5 s sends the request
/// on to the next model at once; health checked by a one-token completion every
/// `health_interval` (so checks meet the chaos), two checks to change a verdict; a 1 s slow
/// start; the scenario's timeouts. No history, audit log or alert channel: the drill keeps
/// its own record.
pub fn gateway_yaml(settings: &GatewaySettings) -> String {
    let d = hive_config::format_duration;
    format!(
        r#"server:
  listen: "127.0.0.1:0"
defaults:
  retry:
    max_attempts: 2
    backoff: {{ base: 50ms, max: 200ms }}
    retry_after: {{ max: 500ms }}
  breaker:
    consecutive_failures: 3
    open_duration: {{ base: 500ms, multiplier: 2, max: 2s }}
  health:
    probe: completion
    interval: {interval}
    fast_interval: {interval}
    timeout: {attempt}
    jitter: 0%
    healthy_threshold: 2
    unhealthy_threshold: 2
  timeouts:
    attempt: {attempt}
    request: {request}
    first_token: {attempt}
    idle: {idle}
  slow_start: 1s
audit:
  path: off
history:
  path: off
"#,
        interval = d(settings.health_interval),
        attempt = d(settings.attempt_timeout),
        request = d(settings.request_timeout),
        idle = d(settings.idle_timeout),
    )
}

/// The simulated provider's scripts: every model healthy, answering after the scenario's
/// latency (the faults come from the gateway's chaos layer).
fn scripts(provider: &Provider) -> Vec<(&'static str, Script)> {
    let latency = if provider.jitter.is_zero() {
        Latency::Fixed(provider.latency)
    } else {
        Latency::Uniform(
            provider.latency - provider.jitter,
            provider.latency + provider.jitter,
        )
    };
    MODELS
        .iter()
        .map(|m| (*m, Script::new().latency(latency)))
        .collect()
}

/// Tells the drill of every attempt, with when it started.
struct AttemptLog {
    start: Instant,
    tx: mpsc::UnboundedSender<AttemptSeen>,
}

impl hive_monitor::AttemptTap for AttemptLog {
    fn attempt(&self, model: ModelId, outcome: &Outcome, latency: Duration) {
        let at = self.start.elapsed().saturating_sub(latency);
        let _ = self.tx.send(AttemptSeen {
            at,
            model: scenario::model_name(model.as_ref()),
            reached: !matches!(outcome, Outcome::Rejected(_)),
            succeeded: matches!(outcome, Outcome::Success),
        });
    }
}

/// A folder of its own for the drill's config, removed when dropped (no file is written
/// there).
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs `scenario` (scaled by `options.scale`) until its end or until `stop` resolves.
pub async fn run(
    scenario: &Scenario,
    options: &DrillOptions,
    stop: impl Future<Output = ()>,
) -> Result<DrillReport, DrillError> {
    let scenario = scenario
        .clone()
        .scaled(options.scale)
        .checked()
        .map_err(DrillError::Scaled)?;
    let sim = Simulator::start_seeded(scripts(&scenario.provider), scenario.seed)
        .await
        .map_err(DrillError::Simulator)?;
    // The drill reads no request log of the provider: it would grow with every request.
    sim.keep_log(false);
    let folder = Scratch(private_folder("hive-drill").map_err(|(_, e)| DrillError::Folder(e))?);
    let (tap_tx, mut tap_rx) = mpsc::unbounded_channel();
    // The tap's clock starts now; the run's a moment later: both are re-based below.
    let tap_start = Instant::now();
    let server = Server::start(
        ConfigSource::Text {
            dir: folder.0.clone(),
            resilience: Some(gateway_yaml(&scenario.gateway)),
            models: Some(models_yaml(&sim.base_url())),
        },
        Options {
            listen: Some(([127, 0, 0, 1], 0).into()),
            seed: Some(scenario.seed),
            watch: false,
            env: hive_config::Environment::vars(Vec::<(String, String)>::new()),
            tap: Some(Arc::new(AttemptLog {
                start: tap_start,
                tx: tap_tx,
            })),
            workers: 0,
        },
    )
    .await?;
    let progress_out = Output::bar(options.progress, scenario.duration);
    progress_out.line(format!(
        "hive chaos run {}: {} for {} through {} (route `{ROUTE}`)",
        scenario.name,
        match (scenario.workload.rate, scenario.workload.concurrency) {
            (Some(rate), _) => format!("{rate} requests/s (open loop)"),
            (None, clients) => format!("{} clients (closed loop)", clients.unwrap_or(1)),
        },
        hive_config::format_duration(scenario.duration),
        server.base_url()
    ));
    if !scenario.description.is_empty() {
        progress_out.line(format!("  {}", scenario.description.trim()));
    }

    let mut events = server.monitor().subscribe();
    let chaos = server.gateway().fleet().chaos();
    let progress = Arc::new(workload::Progress::default());
    let stopped = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    chaos.set_rules(scenario.chaos())?;
    let mut driver = JoinSet::new();
    {
        let (base_url, workload, progress, stopped) = (
            server.base_url(),
            scenario.workload.clone(),
            Arc::clone(&progress),
            Arc::clone(&stopped),
        );
        let (duration, seed) = (scenario.duration, scenario.seed);
        driver.spawn(async move {
            workload::drive(
                &base_url, &workload, duration, seed, start, progress, stopped,
            )
            .await
        });
    }

    let mut recorded = Recorded::default();
    // Room for the attempts from the start (a few per request at most in normal times).
    recorded
        .attempts
        .reserve(scenario.workload.rate.map_or(0, |rate| {
            (rate * scenario.duration.as_secs_f64() * 1.3) as usize + 1024
        }));
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    let mut ticks = 0u64;
    let mut interrupted = None;
    tokio::pin!(stop);
    let sent = loop {
        tokio::select! {
            done = driver.join_next() => {
                break match done {
                    Some(Ok(sent)) => sent,
                    _ => Vec::new(),
                };
            }
            () = &mut stop, if interrupted.is_none() => {
                progress_out.line("stopping: the requests under way finish");
                interrupted = Some(start.elapsed());
                stopped.store(true, Ordering::Relaxed);
            }
            event = events.recv() => match event {
                Ok(timed) => if let ResilienceEvent::CircuitTransition { model, to, .. } = timed.event {
                    let at = start.elapsed();
                    recorded.transitions.push(Transition { at, model: model.to_string(), to });
                    progress_out.line(format!("{:>7.1} s  breaker of {model}: {}", at.as_secs_f64(), measure::breaker_label(to)));
                },
                Err(_) => recorded.events_lost = true,
            },
            _ = tick.tick() => {
                ticks += 1;
                while let Ok(seen) = tap_rx.try_recv() {
                    recorded.attempts.push(seen);
                }
                recorded.chaos_calls.push((
                    start.elapsed(),
                    chaos.stats().iter().map(|s| s.matched).collect(),
                ));
                if ticks.is_multiple_of(4)
                    && let Some(rss) = resident_memory()
                {
                    // What the drill itself keeps grows with every request: not the
                    // gateway's memory.
                    let records = progress.sent.load(Ordering::Relaxed) as usize
                        * std::mem::size_of::<Sent>()
                        + recorded.attempts.len() * std::mem::size_of::<AttemptSeen>();
                    recorded.memory.push((start.elapsed(), rss.saturating_sub(records as u64)));
                }
                let models: Vec<String> = server
                    .models_up()
                    .into_iter()
                    .map(|(model, up)| format!("{model} {}", if up { "up" } else { "down" }))
                    .collect();
                let (sent, answered, failed) = (
                    progress.sent.load(Ordering::Relaxed),
                    progress.answered.load(Ordering::Relaxed),
                    progress.failed.load(Ordering::Relaxed),
                );
                let at = start.elapsed();
                progress_out.status(at, format!(
                    "{:>5.1} s  {sent} sent · {answered} answered · {failed} not · {}",
                    at.as_secs_f64(),
                    models.join(", ")
                ));
            }
        }
    };
    progress_out.finish();
    let sent_count = progress.sent.load(Ordering::Relaxed);
    recorded.lost = sent_count.saturating_sub(sent.len() as u64);
    recorded.worst_lag = Duration::from_micros(progress.worst_lag_us.load(Ordering::Relaxed));
    recorded.sent = sent;
    // Attempts, re-based on the run's start.
    while let Ok(seen) = tap_rx.try_recv() {
        recorded.attempts.push(seen);
    }
    let offset = start.saturating_duration_since(tap_start);
    for seen in &mut recorded.attempts {
        seen.at = seen.at.saturating_sub(offset);
    }
    // Told as they ended; kept in the order they started.
    recorded.attempts.sort_by_key(|a| a.at);
    recorded.injected = chaos.stats().iter().map(|s| s.injected).sum();
    recorded.chaos_calls.push((
        start.elapsed(),
        chaos.stats().iter().map(|s| s.matched).collect(),
    ));
    // A drill stopped early is judged on what ran.
    let mut scenario = scenario;
    if let Some(at) = interrupted {
        scenario.duration = at.max(Duration::from_secs(1));
    }
    recorded.stuck = stuck_models(&server, &scenario).await;
    recorded.continued = server.gateway().continuations();
    chaos.disable();
    server.shutdown().await;
    drop(sim);
    // Measured with the drill's gateway gone, so that its checks and timers are not in it.
    if options.measure_cpu && scenario.targets.cpu_overhead.is_some() && interrupted.is_none() {
        progress_out.line("measuring CPU per call with and without the stack …");
        recorded.cpu = measure_cpu(&scenario, &folder.0).await;
    }

    let figures = measure::figures(&scenario, &recorded);
    let checks = measure::checks(&scenario, &figures);
    let timeline = timeline(&scenario, &recorded.sent);
    let faults = scenario
        .faults
        .iter()
        .flat_map(|f| {
            let what = fault_label(f);
            let model = f.model.clone().unwrap_or_else(|| "every model".to_owned());
            f.windows(scenario.duration)
                .into_iter()
                .map(move |(from, to)| {
                    (
                        from.as_secs_f64(),
                        to.as_secs_f64(),
                        what.clone(),
                        model.clone(),
                    )
                })
        })
        .collect();
    Ok(DrillReport {
        scenario,
        interrupted: interrupted.is_some(),
        scale: options.scale,
        figures,
        checks,
        timeline,
        transitions: recorded.transitions,
        faults,
    })
}

/// A fault in a few words: `status 503`, `hang`, `stream cut after 5`.
fn fault_label(fault: &FaultSpec) -> String {
    let value = serde_json::to_value(&fault.fault).unwrap_or_default();
    let kind = value["kind"].as_str().unwrap_or("fault").to_owned();
    let mut words = vec![kind.replace('_', " ")];
    if let Some(map) = value.as_object() {
        for (key, v) in map {
            if key != "kind" {
                words.push(format!("{}={}", key, v.to_string().trim_matches('"')));
            }
        }
    }
    if fault.rate < 1.0 {
        words.push(format!("on {}% of calls", fault.rate * 100.0));
    }
    words.join(" ")
}

/// Models whose every fault ended well before the end of the run, and that still do not
/// serve a few seconds after it: an operator would have to act.
async fn stuck_models(server: &Server, scenario: &Scenario) -> Vec<String> {
    let still_faulty = |model: &str| {
        scenario.faults.iter().any(|f| {
            f.model.as_deref().is_none_or(|m| m == model)
                && f.healed_at(scenario.duration)
                    .is_none_or(|healed| healed + Duration::from_secs(1) >= scenario.duration)
        })
    };
    let expected: Vec<&str> = MODELS
        .iter()
        .copied()
        .filter(|m| !still_faulty(m))
        .collect();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let down: Vec<String> = server
            .models_up()
            .into_iter()
            .filter(|(model, up)| !up && expected.contains(&model.as_str()))
            .map(|(model, _)| model)
            .collect();
        if down.is_empty() || Instant::now() >= deadline {
            return down;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Per second of the run: who answered, what failed, latency.
fn timeline(scenario: &Scenario, sent: &[Sent]) -> Vec<Second> {
    let seconds = scenario.duration.as_secs_f64().ceil().max(1.0) as u64;
    let mut out: Vec<(Second, Vec<Duration>)> = (0..seconds)
        .map(|t| {
            (
                Second {
                    t,
                    answered: BTreeMap::new(),
                    degraded: 0,
                    failed: 0,
                    p50_ms: None,
                    p99_ms: None,
                },
                Vec::new(),
            )
        })
        .collect();
    for s in sent {
        let Some((second, latencies)) = out.get_mut(s.at.as_secs() as usize) else {
            continue;
        };
        match &s.end {
            End::Answered { model, .. } => {
                *second.answered.entry((*model).to_owned()).or_insert(0) += 1;
                latencies.push(s.latency);
            }
            End::Degraded => second.degraded += 1,
            End::Failed { .. } | End::Hung => second.failed += 1,
        }
    }
    out.into_iter()
        .map(|(mut second, mut latencies)| {
            latencies.sort_unstable();
            if !latencies.is_empty() {
                let at = |q: f64| percentile(&latencies, q).as_secs_f64() * 1000.0;
                second.p50_ms = Some(at(0.5));
                second.p99_ms = Some(at(0.99));
            }
            second
        })
        .collect()
}

/// The process's resident memory, in bytes (Linux).
fn resident_memory() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// CPU time the process's threads have used (Linux: the sum of every thread's scheduler
/// statistics, in nanoseconds).
fn process_cpu() -> Option<Duration> {
    let mut total = 0u64;
    for task in std::fs::read_dir("/proc/self/task").ok()? {
        let path = task.ok()?.path().join("schedstat");
        // A thread may end between the listing and the read: it is skipped.
        if let Ok(stat) = std::fs::read_to_string(path) {
            total += stat.split_whitespace().next()?.parse::<u64>().ok()?;
        }
    }
    Some(Duration::from_nanos(total))
}

/// [`CPU_CALLS`] calls of `model` to `service`, [`CPU_IN_FLIGHT`] at a time; whether
/// every one was answered.
async fn calls<S>(service: S, model: &'static str) -> bool
where
    S: tower::Service<ChatRequest> + Clone + Send + 'static,
    S::Future: Send,
    S::Response: Send,
    S::Error: Send,
{
    let mut set = JoinSet::new();
    for worker in 0..CPU_IN_FLIGHT {
        let service = service.clone();
        set.spawn(async move {
            let mut answered = true;
            for n in 0..CPU_CALLS / CPU_IN_FLIGHT {
                let request = ChatRequest::new(model, format!("vote {worker}-{n}"));
                answered &= service.clone().oneshot(request).await.is_ok();
            }
            answered
        });
    }
    let mut all = true;
    while let Some(done) = set.join_next().await {
        all &= done.unwrap_or(false);
    }
    all
}

/// Calls per side and round, rounds, and calls in flight, of the CPU measurement.
const CPU_CALLS: u64 = 400;
const CPU_ROUNDS: u64 = 5;
const CPU_IN_FLIGHT: u64 = 8;

/// CPU per call through the route's stack and to the first model's client alone, against
/// a provider of its own that answers at once (so that only CPU is measured), in rounds
/// that alternate the two.
async fn measure_cpu(scenario: &Scenario, dir: &Path) -> Option<Cpu> {
    let instant = Provider {
        latency: Duration::ZERO,
        jitter: Duration::ZERO,
    };
    let sim = Simulator::start_seeded(scripts(&instant), scenario.seed)
        .await
        .ok()?;
    sim.keep_log(false);
    let config = hive_config::Loader::new()
        .load_str(
            dir,
            Some(&gateway_yaml(&scenario.gateway)),
            Some(&models_yaml(&sim.base_url())),
        )
        .ok()?;
    let fleet = Fleet::build(Arc::new(config), None, None, Some(scenario.seed)).ok()?;
    let router = fleet.routes().get(ROUTE)?.router.clone();
    let bare = OpenAiClient::builder(MODELS[0], sim.base_url())
        .build()
        .ok()?;
    // Warm both paths (connections, allocator), then alternate.
    let stack_calls = || calls(router.clone(), ROUTE);
    let bare_calls = || calls(bare.clone(), MODELS[0]);
    if !(stack_calls().await && bare_calls().await) {
        return None; // a call that fails costs less: no figure rather than a wrong one
    }
    let (mut stack, mut plain) = (Duration::ZERO, Duration::ZERO);
    for _ in 0..CPU_ROUNDS {
        let before = process_cpu()?;
        let answered = bare_calls().await;
        let middle = process_cpu()?;
        let answered = answered && stack_calls().await;
        let after = process_cpu()?;
        if !answered {
            return None;
        }
        plain += middle.saturating_sub(before);
        stack += after.saturating_sub(middle);
    }
    let calls = CPU_CALLS * CPU_ROUNDS;
    let per_call = |d: Duration| d.as_secs_f64() * 1e6 / calls as f64;
    Some(Cpu {
        calls,
        bare_us: per_call(plain),
        stack_us: per_call(stack),
    })
}
