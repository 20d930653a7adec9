#![allow(clippy::print_stdout, clippy::print_stderr)] // a command-line tool: its output is its interface

//! `hive`: the gateway (`hive serve`), its config checker (`hive check-config`) and a demo
//! against simulated providers (`hive demo`).

use std::{io::IsTerminal, net::SocketAddr, path::PathBuf, process::ExitCode, time::Duration};

use clap::{Parser, Subcommand};
use hive_gateway::{
    demo::{self, DemoOptions},
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
    /// Logs go to stderr; `HIVE_LOG` sets their filter (`info` by default; for example
    /// `HIVE_LOG=info,hive_gateway=debug`). SIGTERM or Ctrl-C stops taking requests and lets
    /// those under way finish within `server.shutdown_grace`.
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
}

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

async fn serve(config: PathBuf, listen: Option<SocketAddr>, no_watch: bool) -> ExitCode {
    logs("info");
    let options = Options {
        listen,
        watch: !no_watch,
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
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
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
            } => serve(config, listen, no_watch).await,
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
            Command::CheckConfig { .. } => ExitCode::SUCCESS,
        }
    })
}
