#![allow(clippy::print_stdout, clippy::print_stderr)] // a command-line tool: its output is its interface

//! `hive`: the gateway (`hive serve`), its config checker (`hive check-config`), a demo
//! against simulated providers (`hive demo`) and reports from its history (`hive report`).

use std::{io::IsTerminal, net::SocketAddr, path::PathBuf, process::ExitCode, time::Duration};

use clap::{Parser, Subcommand};
use hive_gateway::{
    demo::{self, DemoOptions},
    drill,
    server::{ConfigSource, Options, Server},
};

/// An OpenAI-compatible gateway that keeps answering when models fail: retries, circuit
/// breakers, health checks and fallback routes per model, from a YAML config.
#[derive(Debug, Parser)]
#[command(name = "hive", version, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the gateway from a config directory (reloaded when its files change, or on
    /// SIGHUP).
    ///
    /// Logs go to stderr; `HIVE_LOG` sets their filter (`info` by default: state changes,
    /// reloads, alerts). A line per request (route, model, status, time) is `debug`:
    /// `HIVE_LOG=info,hive_gateway::http=debug`. SIGTERM or Ctrl-C stops taking requests and
    /// lets those under way finish within `server.shutdown_grace`.
    #[command(after_help = "Example: hive check-config config/ && hive serve --config config/")]
    Serve {
        /// The directory holding resilience.yml and models-resilience.yml.
        #[arg(long, short, default_value = "config", value_name = "DIR")]
        config: PathBuf,
        /// Listen here instead of `server.listen`.
        #[arg(long, value_name = "ADDR")]
        listen: Option<SocketAddr>,
        /// Do not reload when the files change (SIGHUP still reloads).
        #[arg(long)]
        no_watch: bool,
        /// Data-plane workers: `auto` (one per core), a number, or 0 to serve on the
        /// shared runtime. Each worker runs the requests it accepts, with their calls to
        /// the providers, on its own thread.
        #[arg(long, default_value = "auto", value_name = "N", value_parser = parse_workers)]
        workers: usize,
    },
    /// Check a config directory: every problem with its file, line and a hint; exit status
    /// 1 when there is one.
    CheckConfig {
        /// The directory holding resilience.yml and models-resilience.yml.
        #[arg(default_value = "config", value_name = "DIR")]
        dir: PathBuf,
    },
    /// Run the gateway in front of three simulated models that fail on a two-minute cycle,
    /// with a workload, live progress, and a summary at the end.
    Demo {
        /// How long to run (`90s`, `5m`).
        #[arg(long, default_value = "2m", value_parser = parse_duration)]
        duration: Duration,
        /// Where the gateway listens (curl it while the demo runs).
        #[arg(long, default_value = "127.0.0.1:8080", value_name = "ADDR")]
        listen: SocketAddr,
        /// Concurrent clients of the workload.
        #[arg(long, default_value_t = 4)]
        clients: u32,
        /// Seeds the simulator, jitter and the workload.
        #[arg(long)]
        seed: Option<u64>,
    },
    /// Chaos drills: run a scenario of faults against the gateway and hold it to its
    /// targets.
    #[command(subcommand)]
    Chaos(ChaosCommand),
    /// Write a report of a period from the gateway's history: figures per model and for the
    /// fleet, the resilience targets (PASS / FAIL / NO DATA), incidents, and charts.
    ///
    /// Times are RFC 3339 (`2025-05-01T12:00:00Z`), `now`, or a time before now (`-24h`,
    /// `-90m`, `-7d`). The history file must exist: a report never creates it, and deletes
    /// nothing from it.
    #[command(
        after_help = "Example: hive report --config config/ --from -2h --format html --out report.html"
    )]
    Report {
        /// The gateway's config directory: its history file is the config's `history.path`
        /// (`<DIR>/hive.db` by default) unless --db says otherwise.
        #[arg(long, short, default_value = "config", value_name = "DIR")]
        config: PathBuf,
        /// The history file (SQLite).
        #[arg(long, value_name = "PATH")]
        db: Option<PathBuf>,
        /// The period's start.
        #[arg(
            long,
            default_value = "-24h",
            value_name = "TIME",
            allow_hyphen_values = true
        )]
        from: String,
        /// The period's end.
        #[arg(
            long,
            default_value = "now",
            value_name = "TIME",
            allow_hyphen_values = true
        )]
        to: String,
        /// What to write.
        #[arg(long, value_enum, default_value_t = ReportFormat::Html)]
        format: ReportFormat,
        /// Write to this file instead of stdout.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
}

/// `hive chaos …`.
#[derive(Debug, Subcommand)]
enum ChaosCommand {
    /// Run a drill: the gateway in front of three simulated models, the scenario's workload
    /// and faults (injected by the gateway's chaos layer), then a PASS / FAIL table against
    /// its targets, and the run as JSON and HTML.
    ///
    /// Exit status 0 when every target is met, 1 when one is not, 2 when the drill could
    /// not run.
    #[command(
        after_help = "Example: hive chaos run scenarios/single-model-outage.yml --out drills/"
    )]
    Run {
        /// The scenario (see scenarios/ for the ones shipped and their keys).
        scenario: PathBuf,
        /// Where the JSON and HTML reports go (`<name>.json`, `<name>.html`).
        #[arg(long, default_value = "drills", value_name = "DIR")]
        out: PathBuf,
        /// Multiply every time of the scenario's timeline (0.25: four times shorter).
        #[arg(long, default_value_t = 1.0, value_parser = parse_scale)]
        scale: f64,
        /// Skip measuring CPU per call with and without the stack.
        #[arg(long)]
        no_cpu: bool,
    },
}

fn parse_scale(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(scale) if scale.is_finite() && (0.01..=100.0).contains(&scale) => Ok(scale),
        _ => Err(format!("`{text}` is not a factor from 0.01 to 100")),
    }
}

/// `hive chaos run`.
async fn chaos_run(scenario: PathBuf, out: PathBuf, scale: f64, no_cpu: bool) -> ExitCode {
    let loaded = match drill::Scenario::load(&scenario) {
        Ok(loaded) => loaded,
        Err(drill::ScenarioError::Invalid(problems)) => {
            eprint!("{}", problems.render(std::io::stderr().is_terminal()));
            return ExitCode::from(2);
        }
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let options = drill::DrillOptions {
        scale,
        progress: true,
        measure_cpu: !no_cpu,
    };
    let report = match drill::run(&loaded, &options, stop_signal()).await {
        Ok(report) => report,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    println!("{report}");
    match report.write(&out) {
        Ok((json, html)) => println!("  report: {} · {}", html.display(), json.display()),
        Err(e) => eprintln!(
            "error: the report could not be written to {}: {e}",
            out.display()
        ),
    }
    if report.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// The formats of `hive report`.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum ReportFormat {
    /// One self-contained page (inline style, SVG charts).
    Html,
    /// The whole report as JSON.
    Json,
    /// One row per model per minute, with a header.
    Csv,
}

/// `hive report`: reads the history, writes the report.
async fn report(
    config: PathBuf,
    db: Option<PathBuf>,
    from: &str,
    to: &str,
    format: ReportFormat,
    out: Option<PathBuf>,
) -> ExitCode {
    match write_report(config, db, from, to, format, out).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The history file `config` names (`history.path`), or `<DIR>/hive.db` when the config
/// cannot be loaded here (a secret's variable unset …) or keeps no history.
fn history_file(config: &std::path::Path) -> PathBuf {
    hive_config::load(config)
        .ok()
        .and_then(|loaded| loaded.history.path)
        .unwrap_or_else(|| config.join("hive.db"))
}

async fn write_report(
    config: PathBuf,
    db: Option<PathBuf>,
    from: &str,
    to: &str,
    format: ReportFormat,
    out: Option<PathBuf>,
) -> Result<(), Box<dyn std::error::Error>> {
    use hive_gateway::{
        history::{History, unix_ms},
        report::{ReportError, from_history, parse_time},
    };
    let now = unix_ms();
    let (from, to) = (parse_time(from, now)?, parse_time(to, now)?);
    let path = db.unwrap_or_else(|| history_file(&config));
    if !path.is_file() {
        return Err(ReportError::NoDatabase { path }.into());
    }
    // Read only: a running gateway may be writing the file; a report changes nothing.
    let history = History::open_read_only(&path).map_err(ReportError::from)?;
    let report = from_history(&history, from, to).await?;
    let text = match format {
        ReportFormat::Html => report.to_html(),
        ReportFormat::Json => report.to_json()? + "\n",
        ReportFormat::Csv => report.to_csv(),
    };
    match out {
        Some(out) => std::fs::write(&out, text)
            .map_err(|e| format!("cannot write {}: {e}", out.display()))?,
        None => {
            use std::io::Write as _;
            let mut stdout = std::io::stdout().lock();
            stdout.write_all(text.as_bytes())?;
            stdout.flush()?;
        }
    }
    Ok(())
}

fn parse_workers(text: &str) -> Result<usize, String> {
    match text {
        "auto" => Ok(hive_gateway::workers::per_core()),
        n => match n.parse::<usize>() {
            Ok(n) if n <= MAX_WORKERS => Ok(n),
            Ok(_) => Err(format!("at most {MAX_WORKERS} workers")),
            Err(_) => Err("`auto` or a number of workers".to_owned()),
        },
    }
}

/// More workers than this is a typo, not a machine.
const MAX_WORKERS: usize = 1024;

fn parse_duration(text: &str) -> Result<Duration, String> {
    hive_config::parse_duration(text).map_err(|e| e.to_string())
}

fn logs(default: &str) {
    use tracing_subscriber::{filter::Targets, layer::SubscriberExt, util::SubscriberInitExt};
    let filter: Targets = std::env::var("HIVE_LOG")
        .ok()
        .and_then(|spec| spec.parse().ok())
        .unwrap_or_else(|| default.parse().unwrap_or_default());
    let _ = tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_ansi(std::io::stderr().is_terminal()),
        )
        .with(filter)
        .try_init();
}

/// Resolves when the process is asked to stop: Ctrl-C, or SIGTERM.
async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

async fn serve(
    config: PathBuf,
    listen: Option<SocketAddr>,
    no_watch: bool,
    workers: usize,
) -> ExitCode {
    logs("info");
    let options = Options {
        listen,
        watch: !no_watch,
        workers,
        ..Options::default()
    };
    let server = match Server::start(ConfigSource::Dir(config), options).await {
        Ok(server) => server,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let watching = server.watch();
    stop_signal().await;
    tracing::info!("stopping: requests under way may finish within server.shutdown_grace");
    let finished = server.shutdown().await;
    watching.abort();
    if finished {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn check_config(dir: PathBuf) -> ExitCode {
    let report = hive_config::check_config(&dir, std::io::stdout().is_terminal());
    if report.is_ok() {
        print!("{}", report.text);
    } else {
        eprint!("{}", report.text);
    }
    report.exit_code()
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Command::CheckConfig { dir } = cli.command {
        return check_config(dir);
    }
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    // With data-plane workers, the shared runtime only runs health checks, alerts and
    // reloads: one thread.
    if let Command::Serve { workers, .. } = cli.command
        && workers > 0
    {
        runtime.worker_threads(1);
    }
    let runtime = match runtime.enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: could not start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        match cli.command {
            Command::Serve {
                config,
                listen,
                no_watch,
                workers,
            } => serve(config, listen, no_watch, workers).await,
            Command::Demo {
                duration,
                listen,
                clients,
                seed,
            } => {
                // Alerts and breakers show in the demo's own lines.
                logs("error");
                let options = DemoOptions {
                    duration,
                    listen,
                    clients,
                    seed,
                };
                match demo::run(options, stop_signal()).await {
                    Ok(summary) => {
                        println!("{summary}");
                        ExitCode::SUCCESS
                    }
                    Err(e) => {
                        eprintln!("error: {e}");
                        ExitCode::FAILURE
                    }
                }
            }
            Command::Report {
                config,
                db,
                from,
                to,
                format,
                out,
            } => report(config, db, &from, &to, format, out).await,
            Command::Chaos(ChaosCommand::Run {
                scenario,
                out,
                scale,
                no_cpu,
            }) => {
                // Breakers show in the drill's own lines.
                logs("error");
                chaos_run(scenario, out, scale, no_cpu).await
            }
            Command::CheckConfig { .. } => ExitCode::SUCCESS,
        }
    })
}
