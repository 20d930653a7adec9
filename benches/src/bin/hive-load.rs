#![allow(clippy::print_stdout, clippy::print_stderr)] // a command-line tool: its output is its interface

//! `hive-load`: the load generator of the gateway benchmarks (`benches/load/run.sh`), and the
//! fixed-answer upstream every measured target shares.
//!
//! - `hive-load run URL --rate R` is an open loop: request `i` is scheduled at `i / R`
//!   seconds, and its latency counts from that scheduled time, so a slow answer that delays
//!   the next request is charged to the server (no coordinated omission).
//! - `hive-load run URL --concurrency C` is a closed loop: `C` workers, each sending its next
//!   request as soon as the last one is answered.
//! - `hive-load upstream` answers every chat completion with the same answer, whole or as a
//!   server-sent-event stream, as fast as it can.
//!
//! Every worker holds one HTTP/1.1 keep-alive connection. Percentiles are exact (every
//! latency is kept and sorted), by nearest rank.

#[path = "load/client.rs"]
mod client;
#[path = "load/stats.rs"]
mod stats;
#[path = "load/upstream.rs"]
mod upstream;

use std::{net::SocketAddr, num::NonZeroUsize, process::ExitCode, time::Duration};

use clap::{ArgGroup, Parser, Subcommand};
use http::{HeaderName, HeaderValue};

/// The load generator of hive's gateway benchmarks, and their common upstream.
#[derive(Debug, Parser)]
#[command(name = "hive-load", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Load a chat-completions endpoint, open loop (`--rate`) or closed loop
    /// (`--concurrency`), and print its latency percentiles, requests/s and errors.
    #[command(
        group(ArgGroup::new("mode").required(true).args(["rate", "concurrency"])),
        after_help = "Examples:\n  hive-load run http://127.0.0.1:8080 --rate 1000 --duration 20s\n  \
                      hive-load run http://127.0.0.1:8080 --concurrency 64 --stream --json"
    )]
    Run(RunArgs),
    /// Serve one fixed answer on POST /v1/chat/completions (whole, or streamed when the
    /// request says `"stream": true`) and GET /v1/models, as fast as possible.
    #[command(after_help = "Example: hive-load upstream --listen 127.0.0.1:18100")]
    Upstream(UpstreamArgs),
}

/// The options of `hive-load run`.
#[derive(Debug, clap::Args)]
struct RunArgs {
    /// The endpoint, `http://HOST:PORT[/PATH]`; without a path, /v1/chat/completions.
    #[arg(value_name = "URL")]
    url: String,
    /// Open loop: requests per second, sent at fixed intervals over `--connections`.
    #[arg(long, value_parser = parse_rate, value_name = "PER_SECOND")]
    rate: Option<f64>,
    /// Connections the open loop spreads its schedule over (a request waits for a free one);
    /// default 1.
    #[arg(long, value_parser = parse_count)]
    connections: Option<NonZeroUsize>,
    /// Closed loop: this many workers, each with its own connection, back to back.
    #[arg(long, value_parser = parse_count, value_name = "WORKERS")]
    concurrency: Option<NonZeroUsize>,
    /// How long to measure, after the warm-up (`10s`, `1m`, `500ms`).
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    duration: Duration,
    /// How long to load before measuring; those requests are not counted.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    warmup: Duration,
    /// Ask for a streamed answer (`"stream": true`) and measure the time to the first byte
    /// of the body as well as to its end; a stream without `data: [DONE]` is an error.
    #[arg(long)]
    stream: bool,
    /// The `model` of every request.
    #[arg(long, default_value = "bench")]
    model: String,
    /// The user message of every request.
    #[arg(long, default_value = "Vote on BIP-01")]
    prompt: String,
    /// An extra request header, `NAME: VALUE` (repeatable), e.g. an Authorization.
    #[arg(long = "header", short = 'H', value_parser = parse_header, value_name = "NAME: VALUE")]
    headers: Vec<(HeaderName, HeaderValue)>,
    /// A request unanswered by then is an error (its connection is replaced).
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    timeout: Duration,
    /// Runtime threads of the closed loop (the open loop runs a thread per connection).
    #[arg(long, default_value_t = NonZeroUsize::MIN, value_parser = parse_count)]
    threads: NonZeroUsize,
    /// Print the result as one JSON object instead of a table.
    #[arg(long)]
    json: bool,
    /// A name for the target, shown in the output.
    #[arg(long)]
    label: Option<String>,
}

/// The options of `hive-load upstream`.
#[derive(Debug, clap::Args)]
struct UpstreamArgs {
    /// Where to listen (port 0: any free port; the address is printed).
    #[arg(long, default_value = "127.0.0.1:18100", value_name = "ADDR")]
    listen: SocketAddr,
    /// The model the answers name.
    #[arg(long, default_value = "bench")]
    model: String,
    /// Runtime threads (1: a current-thread runtime).
    #[arg(long, default_value_t = NonZeroUsize::MIN, value_parser = parse_count)]
    threads: NonZeroUsize,
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    hive_config::parse_duration(text).map_err(|e| e.to_string())
}

fn parse_rate(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(rate) if rate.is_finite() && rate > 0.0 && rate <= 10_000_000.0 => Ok(rate),
        Ok(_) => Err("a rate is above 0 and at most 10000000 requests per second".to_owned()),
        Err(_) => Err(format!("`{text}` is not a number of requests per second")),
    }
}

fn parse_count(text: &str) -> Result<NonZeroUsize, String> {
    match text.trim().parse::<usize>() {
        Ok(n) if (1..=100_000).contains(&n) => NonZeroUsize::new(n).ok_or_else(String::new),
        Ok(_) => Err("a count is from 1 to 100000".to_owned()),
        Err(_) => Err(format!("`{text}` is not a whole number")),
    }
}

fn parse_header(text: &str) -> Result<(HeaderName, HeaderValue), String> {
    let (name, value) = text
        .split_once(':')
        .ok_or_else(|| format!("`{text}` is not `NAME: VALUE`"))?;
    let name = HeaderName::try_from(name.trim())
        .map_err(|_| format!("`{}` is not a header name", name.trim()))?;
    let value = HeaderValue::try_from(value.trim())
        .map_err(|_| format!("the value of `{name}` is not a valid header value"))?;
    Ok((name, value))
}

fn run(args: RunArgs) -> Result<(), client::LoadError> {
    let mode = match (args.rate, args.concurrency) {
        (_, Some(_)) if args.connections.is_some() => {
            return Err(client::LoadError::Usage(
                "--connections is for the open loop (--rate); the closed loop has a connection per worker",
            ));
        }
        (Some(rate), _) => client::Mode::Open {
            rate,
            connections: args.connections.unwrap_or(NonZeroUsize::MIN),
        },
        (None, Some(workers)) => client::Mode::Closed {
            workers,
            threads: args.threads,
        },
        // clap's required group makes one of them present.
        (None, None) => {
            return Err(client::LoadError::Usage(
                "say --rate R (open loop) or --concurrency C (closed loop)",
            ));
        }
    };
    let plan = client::Plan {
        target: client::Target::parse(&args.url)?,
        mode,
        duration: args.duration,
        warmup: args.warmup,
        stream: args.stream,
        model: args.model,
        prompt: args.prompt,
        headers: args.headers,
        timeout: args.timeout,
    };
    let report = client::run(&plan)?;
    let label = args.label.as_deref().unwrap_or(&args.url);
    if args.json {
        println!("{}", report.to_json(label, &plan));
    } else {
        print!("{}", report.table(label, &plan));
    }
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run(args) => run(args).map_err(|e| e.to_string()),
        Command::Upstream(args) => {
            upstream::run(args.listen, &args.model, args.threads).map_err(|e| e.to_string())
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
