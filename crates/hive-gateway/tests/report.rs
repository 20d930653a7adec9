//! Reports from a history: exact figures, merged percentiles, MTTR, every target's verdict,
//! "no data", the CSV's lines, the HTML page, and `hive report` through the binary.
//!
//! `HIVE_REPORT_SAMPLE=1 cargo test -p hive-gateway --test report sample` also writes the
//! sample page to `docs/report-sample.html`.

#![allow(clippy::unwrap_used, clippy::print_stdout)]

use std::{
    path::{Path, PathBuf},
    process::Command,
    time::Duration,
};

use hive_core::{
    CircuitState, ClientErrorClass, FailureClass, ModelId, Outcome, RejectReason, ResilienceEvent,
};
use hive_gateway::{
    history::{History, LatencySketch, MinuteRollup, Recorder},
    report::{self, ReportError, Unreportable, Verdict},
};
use hive_monitor::TimedEvent;

const MINUTE: u64 = 60_000;
/// 2025-05-01T12:00:00Z.
const T0: u64 = 1_746_100_800_000;

/// A fresh directory for one test, removed when dropped.
struct Dir(PathBuf);

impl Dir {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("hive-report-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    fn file(&self) -> PathBuf {
        self.0.join("hive.db")
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Opens a history that never prunes (the tests write 2025's minutes).
fn open(path: &Path) -> History {
    History::open(path, Duration::MAX).unwrap()
}

fn transition(at: u64, model: &str, to: CircuitState, generation: u64) -> TimedEvent {
    TimedEvent {
        at_unix_ms: at,
        event: ResilienceEvent::CircuitTransition {
            model: ModelId::new(model),
            from: CircuitState::Closed,
            to,
            generation,
            failure_rate: None,
            slow_call_rate: None,
        },
    }
}

fn failover(at: u64, from: &str, to: &str) -> TimedEvent {
    TimedEvent {
        at_unix_ms: at,
        event: ResilienceEvent::Failover {
            from: ModelId::new(from),
            to: ModelId::new(to),
            reason: Outcome::failure(FailureClass::RateLimited),
            latency: Duration::from_millis(20),
        },
    }
}

/// An incident of `model` from `start` to `end` (generations from `generation`).
fn incident(recorder: &Recorder, model: &str, start: u64, end: Option<u64>, generation: u64) {
    recorder.event(transition(start, model, CircuitState::Open, generation));
    if let Some(end) = end {
        recorder.event(transition(end, model, CircuitState::Closed, generation + 1));
    }
}

fn times(recorder: &Recorder, n: u32, at: u64, model: &str, outcome: Outcome, ms: u64) {
    for i in 0..n {
        recorder.attempt_at(
            at + u64::from(i),
            ModelId::new(model),
            &outcome,
            Duration::from_millis(ms),
        );
    }
}

/// Three minutes of two models, through the recorder:
///
/// | minute | alpha | beta |
/// |---|---|---|
/// | 0 | 8 ok at 100 ms, 1 timeout, 1 client error at 10 ms | 5 ok at 200 ms |
/// | 1 | 2 ok at 100 ms, 3 rate limited, 5 rejected; 3 failovers to beta | 10 ok at 300 ms |
/// | 2 | 10 ok at 120 ms | 5 ok at 200 ms |
///
/// Incidents: alpha 12:01:10 → 12:01:40 (30 s), beta 12:02:05 → 12:02:15 (10 s).
async fn small(history: &History) {
    let recorder = history.recorder();
    let (m0, m1, m2) = (T0, T0 + MINUTE, T0 + 2 * MINUTE);
    times(&recorder, 8, m0, "alpha", Outcome::Success, 100);
    times(
        &recorder,
        1,
        m0 + 100,
        "alpha",
        Outcome::failure(FailureClass::Timeout),
        0,
    );
    times(
        &recorder,
        1,
        m0 + 200,
        "alpha",
        Outcome::ClientError(ClientErrorClass::BadRequest),
        10,
    );
    times(&recorder, 5, m0, "beta", Outcome::Success, 200);
    times(&recorder, 2, m1, "alpha", Outcome::Success, 100);
    times(
        &recorder,
        3,
        m1 + 100,
        "alpha",
        Outcome::failure(FailureClass::RateLimited),
        0,
    );
    times(
        &recorder,
        5,
        m1 + 200,
        "alpha",
        Outcome::Rejected(RejectReason::ForcedOpen),
        0,
    );
    for i in 0..3 {
        recorder.event(failover(m1 + 100 + i, "alpha", "beta"));
    }
    times(&recorder, 10, m1, "beta", Outcome::Success, 300);
    times(&recorder, 10, m2, "alpha", Outcome::Success, 120);
    times(&recorder, 5, m2, "beta", Outcome::Success, 200);
    incident(&recorder, "alpha", m1 + 10_000, Some(m1 + 40_000), 1);
    incident(&recorder, "beta", m2 + 5_000, Some(m2 + 15_000), 1);
    recorder.stop().await;
}

fn sketch(latencies: &[(u32, u64)]) -> LatencySketch {
    let mut sketch = LatencySketch::default();
    for (n, ms) in latencies {
        for _ in 0..*n {
            sketch.record(Duration::from_millis(*ms));
        }
    }
    sketch
}

fn close(got: Option<f64>, expected: f64) {
    let got = got.unwrap();
    assert!((got - expected).abs() < 1e-9, "{got} != {expected}");
}

#[tokio::test]
async fn figures_percentiles_mttr_and_targets_are_exact() {
    let dir = Dir::new("figures");
    let history = open(&dir.file());
    small(&history).await;
    let report = report::from_history(&history, T0, T0 + 3 * MINUTE)
        .await
        .unwrap();

    assert_eq!(report.from, "2025-05-01T12:00:00Z");
    assert_eq!(report.to, "2025-05-01T12:03:00Z");
    assert_eq!(report.minutes.len(), 6);
    let names: Vec<&str> = report.models.iter().map(|m| m.model.as_str()).collect();
    assert_eq!(names, ["alpha", "beta"]);

    let alpha = &report.model("alpha").unwrap().figures;
    assert_eq!(
        (
            alpha.requests,
            alpha.successes,
            alpha.failed,
            alpha.client_errors,
            alpha.rejected
        ),
        (30, 20, 4, 1, 5)
    );
    assert_eq!(alpha.failures["timeout"], 1);
    assert_eq!(alpha.failures["rate_limited"], 3);
    close(alpha.success_rate, 20.0 / 30.0);
    close(alpha.availability, 20.0 / 29.0);
    assert_eq!((alpha.minutes_asked, alpha.minutes_answered), (3, 3));
    assert_eq!((alpha.failovers_from, alpha.failovers_to), (3, 0));
    assert_eq!((alpha.incidents, alpha.incidents_ended), (1, 1));
    close(alpha.mttr_ms, 30_000.0);
    assert_eq!(alpha.downtime_ms, 30_000);
    // Percentiles of the merged sketch: the same as one sketch of every answer, and within
    // the sketch's 6.25% of the exact value.
    let answers = sketch(&[(10, 100), (1, 10), (10, 120)]);
    assert_eq!(alpha.p95_ms, answers.quantile_ms(0.95));
    assert_eq!(alpha.p50_ms, answers.quantile_ms(0.50));
    assert!((alpha.p95_ms.unwrap() - 120.0).abs() / 120.0 <= 0.0625);
    assert!((alpha.p50_ms.unwrap() - 100.0).abs() / 100.0 <= 0.0625);

    let beta = &report.model("beta").unwrap().figures;
    assert_eq!(
        (beta.requests, beta.successes, beta.failovers_to),
        (20, 20, 3)
    );
    close(beta.success_rate, 1.0);
    close(beta.availability, 1.0);
    // Merged, not averaged: the minutes' p95s are 200, 300 and 200 ms; the period's is 300.
    assert!((beta.p95_ms.unwrap() - 300.0).abs() / 300.0 <= 0.0625);
    close(beta.mttr_ms, 10_000.0);

    let all = &report.overall;
    assert_eq!(
        (all.requests, all.successes, all.failed, all.rejected),
        (50, 40, 4, 5)
    );
    close(all.success_rate, 40.0 / 50.0);
    close(all.availability, 40.0 / 44.0);
    assert_eq!(all.p99_ms, {
        let mut s = answers.clone();
        s.merge(&sketch(&[(10, 200), (10, 300)]));
        s.quantile_ms(0.99)
    });
    assert_eq!((all.incidents, all.incidents_ended), (2, 2));
    close(all.mttr_ms, 20_000.0);
    assert_eq!(all.failovers_from, 3);
    assert_eq!((all.minutes_asked, all.minutes_answered), (3, 3));

    let verdicts: Vec<(&str, Verdict)> = report.targets.iter().map(|t| (t.id, t.verdict)).collect();
    assert_eq!(
        verdicts,
        [
            ("availability", Verdict::Fail),
            ("recovery", Verdict::Pass),
            ("blast_radius", Verdict::Fail),
            ("fallback_latency", Verdict::Fail),
            ("degraded_throughput", Verdict::Pass),
        ]
    );
    let value = |id: &str| report.target(id).unwrap().value;
    close(value("availability"), 40.0 / 44.0);
    close(value("recovery"), 20.0);
    close(value("blast_radius"), 4.0 / 50.0);
    // Minute 1 has the failovers (alpha 2 × 100 ms, beta 10 × 300 ms); minutes 0 and 2 not.
    let with = sketch(&[(2, 100), (10, 300)]).quantile_ms(0.5).unwrap();
    let without = sketch(&[(8, 100), (1, 10), (5, 200), (10, 120), (5, 200)])
        .quantile_ms(0.5)
        .unwrap();
    close(value("fallback_latency"), with / without - 1.0);
    // Both incidents' minutes (1 and 2) served 12 and 15; minute 0 served 13.
    close(value("degraded_throughput"), 13.5 / 13.0);
    assert_eq!(report.target("recovery").unwrap().measured, "20.0 s");
    assert_eq!(report.target("availability").unwrap().measured, "90.9%");
}

#[tokio::test]
async fn targets_without_data_say_so() {
    let dir = Dir::new("nodata");
    let history = open(&dir.file());
    let recorder = history.recorder();
    // Two quiet minutes: every attempt answered, no failover, no incident.
    times(&recorder, 20, T0, "alpha", Outcome::Success, 50);
    times(&recorder, 20, T0 + MINUTE, "alpha", Outcome::Success, 50);
    // Later, an incident alone, in a period of its own.
    incident(&recorder, "alpha", T0 + 10 * MINUTE, None, 1);
    recorder.stop().await;

    let report = report::from_history(&history, T0, T0 + 2 * MINUTE)
        .await
        .unwrap();
    let verdicts: Vec<(&str, Verdict)> = report.targets.iter().map(|t| (t.id, t.verdict)).collect();
    assert_eq!(
        verdicts,
        [
            ("availability", Verdict::Pass),
            ("recovery", Verdict::NoData),
            ("blast_radius", Verdict::Pass),
            ("fallback_latency", Verdict::NoData),
            ("degraded_throughput", Verdict::NoData),
        ]
    );
    for id in ["recovery", "fallback_latency", "degraded_throughput"] {
        let target = report.target(id).unwrap();
        assert_eq!((target.value, target.measured.as_str()), (None, "no data"));
    }
    assert!(report.to_html().contains("NO DATA"));

    // Only the open incident: no attempts, so nothing but the incident is known.
    let report = report::from_history(&history, T0 + 10 * MINUTE, T0 + 15 * MINUTE)
        .await
        .unwrap();
    assert!(
        report.targets.iter().all(|t| t.verdict == Verdict::NoData),
        "{:?}",
        report.targets
    );
    let alpha = &report.model("alpha").unwrap().figures;
    assert_eq!(
        (alpha.requests, alpha.incidents, alpha.incidents_ended),
        (0, 1, 0)
    );
    assert_eq!(alpha.mttr_ms, None);
    assert_eq!(alpha.downtime_ms, 5 * MINUTE);
    assert_eq!(alpha.availability, None);

    // Nothing at all (before the first minute; the open incident overlaps every later
    // period), and a period that ends before it starts.
    let empty = report::from_history(&history, T0 - 60 * MINUTE, T0 - 59 * MINUTE).await;
    assert!(
        matches!(empty, Err(ReportError::Report(Unreportable::Empty { .. }))),
        "{empty:?}"
    );
    let message = empty.unwrap_err().to_string();
    assert!(
        message.contains("from 2025-05-01T11:00:00Z to 2025-05-01T11:01:00Z"),
        "{message}"
    );
    let backwards = report::from_history(&history, T0, T0).await;
    assert!(matches!(
        backwards,
        Err(ReportError::Report(Unreportable::Period { .. }))
    ));
}

#[tokio::test]
async fn csv_has_one_exact_row_per_model_per_minute() {
    let dir = Dir::new("csv");
    let history = open(&dir.file());
    small(&history).await;
    let report = report::from_history(&history, T0, T0 + 3 * MINUTE)
        .await
        .unwrap();
    let csv = report.to_csv();
    // Bucket middles: 100 ms → 102.4, 120 → 118.784, 200 → 204.8, 300 → 311.296, 10 → 9.728.
    let expected = "\
minute,minute_unix_ms,model,requests,successes,failed,client_errors,rejected,p50_ms,p95_ms,p99_ms,failovers_from,failovers_to,rate_limited,timeout,unavailable,connect,overloaded,identity_mismatch,stream_cut,stream_stalled,malformed
2025-05-01T12:00:00Z,1746100800000,alpha,10,8,1,1,0,102.400,102.400,102.400,0,0,0,1,0,0,0,0,0,0,0
2025-05-01T12:00:00Z,1746100800000,beta,5,5,0,0,0,204.800,204.800,204.800,0,0,0,0,0,0,0,0,0,0,0
2025-05-01T12:01:00Z,1746100860000,alpha,10,2,3,0,5,102.400,102.400,102.400,3,0,3,0,0,0,0,0,0,0,0
2025-05-01T12:01:00Z,1746100860000,beta,10,10,0,0,0,311.296,311.296,311.296,0,3,0,0,0,0,0,0,0,0,0
2025-05-01T12:02:00Z,1746100920000,alpha,10,10,0,0,0,118.784,118.784,118.784,0,0,0,0,0,0,0,0,0,0,0
2025-05-01T12:02:00Z,1746100920000,beta,5,5,0,0,0,204.800,204.800,204.800,0,0,0,0,0,0,0,0,0,0,0
";
    assert_eq!(csv, expected);
}

#[tokio::test]
async fn html_is_one_self_contained_page() {
    let dir = Dir::new("html");
    let history = open(&dir.file());
    small(&history).await;
    let report = report::from_history(&history, T0, T0 + 3 * MINUTE)
        .await
        .unwrap();
    let html = report.to_html();
    assert!(html.starts_with("<!doctype html>"));
    for needle in [
        "<style>",
        "<svg",
        "alpha",
        "beta",
        "PASS",
        "FAIL",
        "Recovery (MTTR)",
        "2025-05-01 12:00 UTC",
    ] {
        assert!(html.contains(needle), "no {needle}");
    }
    assert_eq!(html.matches("<svg class=\"chart\"").count(), 3);
    for external in ["<script", "src=", "href=", "url(", "@import", "<link"] {
        assert!(!html.contains(external), "{external} in the page");
    }
    // The only URL is SVG's namespace.
    assert_eq!(
        html.matches("http").count(),
        html.matches("http://www.w3.org/2000/svg").count()
    );
}

fn hive(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_hive"))
        .args(args)
        .output()
        .unwrap()
}

#[tokio::test]
async fn hive_report_prints_the_json_of_a_db_file() {
    let dir = Dir::new("cli");
    let file = dir.file();
    {
        let history = open(&file);
        small(&history).await;
        history.flush().await.unwrap();
    }
    let db = file.to_str().unwrap();
    let period = [
        "--from",
        "2025-05-01T12:00:00Z",
        "--to",
        "2025-05-01T14:03:00+02:00",
    ];
    let out = hive(&[&["report", "--db", db, "--format", "json"], &period[..]].concat());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["from_unix_ms"], T0);
    assert_eq!(json["to_unix_ms"], T0 + 3 * MINUTE);
    assert_eq!(json["overall"]["requests"], 50);
    assert_eq!(json["overall"]["successes"], 40);
    assert_eq!(json["overall"]["mttr_ms"], 20_000.0);
    assert_eq!(json["models"][0]["model"], "alpha");
    assert_eq!(json["models"][0]["failures"]["rate_limited"], 3);
    assert_eq!(json["targets"][1]["id"], "recovery");
    assert_eq!(json["targets"][1]["verdict"], "pass");
    assert_eq!(json["targets"][0]["verdict"], "fail");
    assert_eq!(json["incidents"].as_array().unwrap().len(), 2);
    assert_eq!(json["minutes"].as_array().unwrap().len(), 6);

    // CSV and HTML, to a file; the config directory's hive.db by default.
    let csv = dir.0.join("out.csv");
    let out = hive(
        &[
            &[
                "report",
                "--config",
                dir.0.to_str().unwrap(),
                "--format",
                "csv",
                "--out",
                csv.to_str().unwrap(),
            ],
            &period[..],
        ]
        .concat(),
    );
    assert!(out.status.success());
    assert!(out.stdout.is_empty());
    assert_eq!(std::fs::read_to_string(&csv).unwrap().lines().count(), 7);
    let out = hive(&[&["report", "--db", db], &period[..]].concat());
    assert!(String::from_utf8_lossy(&out.stdout).contains("<svg"));

    // Errors say what is wrong.
    let missing = dir.0.join("nope.db");
    let cases: [(Vec<&str>, &str); 4] = [
        (
            vec!["report", "--db", missing.to_str().unwrap()],
            "no history file at",
        ),
        (
            vec!["report", "--db", db, "--from", "yesterday"],
            "cannot read the time `yesterday`",
        ),
        (
            vec![
                "report",
                "--db",
                db,
                "--from",
                "2025-05-02T00:00:00Z",
                "--to",
                "2025-05-02T01:00:00Z",
            ],
            "the history holds nothing from 2025-05-02T00:00:00Z to 2025-05-02T01:00:00Z",
        ),
        (
            vec!["report", "--db", db, "--from", "now", "--to", "-1h"],
            "the period is empty",
        ),
    ];
    for (args, message) in cases {
        let out = hive(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?}");
        assert!(stderr.contains(message), "{args:?}: {stderr}");
        assert!(out.stdout.is_empty());
    }
    assert!(!missing.exists(), "a report created the history file");
}

// ---- The sample: two hours of three models, an outage and its recovery ------------------

/// splitmix64: a small seeded generator, so the sample is the same every time.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1_u64 << 53) as f64
    }

    /// A latency around `median` ms, log-normal, with a tail.
    fn latency(&mut self, median: f64) -> Duration {
        let (u1, u2) = (self.unit().max(1e-12), self.unit());
        let z = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
        let tail = if self.unit() < 0.03 { 2.2 } else { 1.0 };
        Duration::from_micros((median * (0.28 * z).exp() * tail * 1000.0) as u64)
    }

    fn count(&mut self, mean: f64) -> u64 {
        (mean * (0.85 + 0.3 * self.unit())).round() as u64
    }
}

/// 2025-05-01T10:00:00Z.
const SAMPLE_START: u64 = 1_746_093_600_000;

/// Two hours of three models: gpt-4o (the primary) goes down from 10:40:20 to 10:47:50 and
/// its traffic fails over to claude-sonnet (slower under the extra load) and gemini-pro;
/// gemini-pro is rate-limited for 22 s at 11:25; claude-sonnet trips for 12 s at 11:48.
async fn sample(history: &History) {
    let mut rng = Rng(0x5EED_2025);
    let at = |minute: u64, second: u64| SAMPLE_START + minute * MINUTE + second * 1000;
    let gpt_down = (40, 47); // minutes 40 to 47 (partly at both ends)
    let mut minutes = Vec::new();
    for minute in 0..120 {
        let start = SAMPLE_START + minute * MINUTE;
        // Daily rhythm: a little more traffic in the second hour.
        let load = 1.0 + 0.25 * (minute as f64 / 120.0);
        let mut gpt = MinuteRollup::new(start, "gpt-4o");
        let mut claude = MinuteRollup::new(start, "claude-sonnet");
        let mut gemini = MinuteRollup::new(start, "gemini-pro");
        let gpt_asked = rng.count(62.0 * load);
        let down = (gpt_down.0..=gpt_down.1).contains(&minute);
        let (mut to_claude, mut to_gemini) = (0, 0);
        if down {
            // The first minute: timeouts and 503s until the breaker opens at :20; then
            // rejections (and one failed probe a minute) until it closes at 47:50.
            let (failing, rejected) = match minute {
                40 => (gpt_asked / 3, gpt_asked - gpt_asked / 3),
                47 => (1, gpt_asked * 5 / 6),
                _ => (1, gpt_asked - 1),
            };
            let ok = gpt_asked - failing - rejected;
            gpt.requests = gpt_asked;
            gpt.successes = ok;
            for _ in 0..ok {
                gpt.latency.record(rng.latency(640.0));
            }
            let timeouts = failing / 3;
            if timeouts > 0 {
                gpt.failures.insert("timeout".to_owned(), timeouts);
            }
            gpt.failures
                .insert("unavailable".to_owned(), failing - timeouts);
            gpt.rejected = rejected;
            let moved = failing + rejected;
            gpt.failovers_from = moved;
            to_gemini = moved / 5;
            to_claude = moved - to_gemini;
        } else {
            gpt.requests = gpt_asked;
            let failed = u64::from(rng.unit() < 0.15);
            gpt.successes = gpt_asked - failed;
            if failed > 0 {
                gpt.failures.insert("timeout".to_owned(), failed);
                gpt.failovers_from = failed;
                to_claude += failed;
            }
            for _ in 0..gpt.successes {
                gpt.latency.record(rng.latency(640.0));
            }
        }
        // gemini-pro: rate limited at 11:25 (minute 85) for 22 s.
        let gemini_asked = rng.count(16.0 * load) + to_gemini;
        gemini.requests = gemini_asked;
        gemini.failovers_to = to_gemini;
        if minute == 85 {
            gemini.failures.insert("rate_limited".to_owned(), 9);
            gemini.rejected = 6;
            gemini.successes = gemini_asked - 15;
            gemini.failovers_from = 15;
            to_claude += 15;
        } else {
            gemini.successes = gemini_asked;
        }
        for _ in 0..gemini.successes {
            gemini.latency.record(rng.latency(480.0));
        }
        // claude-sonnet: its own traffic plus what failed over; slower and a few rate
        // limits under the extra load; trips for 12 s at 11:48 (minute 108).
        let claude_asked = rng.count(24.0 * load) + to_claude;
        claude.requests = claude_asked;
        claude.failovers_to = to_claude;
        let pressure = to_claude as f64 / 60.0;
        let mut failed = if pressure > 0.5 { rng.count(1.5) } else { 0 };
        if minute == 108 {
            failed += 7;
            claude.rejected = 4;
            claude.failovers_from = 11;
        }
        if failed > 0 {
            claude.failures.insert("rate_limited".to_owned(), failed);
        }
        claude.successes = claude_asked - failed - claude.rejected;
        let client_errors = u64::from(rng.unit() < 0.2);
        claude.client_errors = client_errors;
        claude.successes -= client_errors;
        for _ in 0..(claude.successes + client_errors) {
            claude
                .latency
                .record(rng.latency(790.0 * (1.0 + 0.14 * pressure.min(1.0))));
        }
        minutes.extend([gpt, claude, gemini]);
    }
    history.write_minutes(minutes);
    let recorder = history.recorder();
    incident(&recorder, "gpt-4o", at(40, 20), Some(at(47, 50)), 1);
    incident(&recorder, "gemini-pro", at(85, 10), Some(at(85, 32)), 1);
    incident(&recorder, "claude-sonnet", at(108, 3), Some(at(108, 15)), 1);
    recorder.stop().await;
    history.flush().await.unwrap();
}

#[tokio::test]
async fn sample_report_of_two_hours_with_an_outage() {
    let dir = Dir::new("sample");
    let history = open(&dir.file());
    sample(&history).await;
    let report = report::from_history(&history, SAMPLE_START, SAMPLE_START + 120 * MINUTE)
        .await
        .unwrap();
    assert_eq!(report.minutes.len(), 360);
    assert_eq!(report.incidents.len(), 3);
    let gpt = &report.model("gpt-4o").unwrap().figures;
    close(gpt.mttr_ms, 450_000.0);
    assert_eq!(report.target("recovery").unwrap().verdict, Verdict::Fail);
    let html = report.to_html();
    for model in ["gpt-4o", "claude-sonnet", "gemini-pro"] {
        assert!(html.contains(model));
    }
    assert!(html.contains("<svg"));
    if std::env::var_os("HIVE_REPORT_SAMPLE").is_some() {
        let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs");
        std::fs::create_dir_all(&docs).unwrap();
        std::fs::write(docs.join("report-sample.html"), &html).unwrap();
        println!("{}", report.to_json().unwrap());
    }
}
