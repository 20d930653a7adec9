//! A simulated flaky model behind retry + circuit breaker, printed as a timeline.
//!
//! The model is healthy, then rate-limits (429 with `Retry-After`), then goes down (503),
//! then heals. A client sends a request every 250 ms through
//! `Retry → CircuitBreaker → model`. The clock is tokio's paused clock, so the 40 simulated
//! seconds run in a blink and every figure is exact and repeatable.
//!
//! Run: `cargo run -p hive-examples --example flaky_model`

#![allow(clippy::print_stdout, clippy::disallowed_types, clippy::unwrap_used)]

use std::{
    fmt::Write as _,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU32, Ordering},
    },
    time::Duration,
};

use hive_breaker::{CircuitBreakerConfig, CircuitBreakerLayer};
use hive_core::{BoxError, CircuitState, EventSink, HttpClassifier, Rejected, ResilienceEvent};
use hive_retry::{Jitter, RetryConfig, RetryLayer};
use http::{Response, StatusCode};
use tokio::time::{Instant, sleep};
use tower::{ServiceBuilder, ServiceExt, service_fn};

const REQUESTS: u32 = 160;
const EVERY: Duration = Duration::from_millis(250);

/// What the simulated model does at a given second.
fn behaviour(t: f64, call: u32) -> (StatusCode, Option<&'static str>, Duration) {
    match t {
        t if t < 8.0 => (StatusCode::OK, None, Duration::from_millis(150)),
        // Rate-limited: every other call gets 429 with Retry-After: 1.
        t if t < 12.0 && call.is_multiple_of(2) => (
            StatusCode::TOO_MANY_REQUESTS,
            Some("1"),
            Duration::from_millis(10),
        ),
        t if t < 12.0 => (StatusCode::OK, None, Duration::from_millis(150)),
        // Down: fast 503s.
        t if t < 30.0 => (
            StatusCode::SERVICE_UNAVAILABLE,
            None,
            Duration::from_millis(20),
        ),
        _ => (StatusCode::OK, None, Duration::from_millis(150)),
    }
}

/// Prints lines stamped with simulated time, folding runs of alike lines into one.
struct Timeline {
    start: Instant,
    out: Mutex<TimelineState>,
}

#[derive(Default)]
struct TimelineState {
    run: Option<(String, f64, f64, u32)>,
    text: String,
}

impl Timeline {
    fn now(&self) -> f64 {
        self.start.elapsed().as_secs_f64()
    }

    /// A line that may repeat: consecutive lines of the same `kind` are folded.
    fn repeated(&self, kind: &str) {
        let t = self.now();
        let mut out = self.out.lock().unwrap();
        match &mut out.run {
            Some((k, _, end, n)) if k == kind => {
                *end = t;
                *n += 1;
            }
            _ => {
                flush(&mut out);
                out.run = Some((kind.to_owned(), t, t, 1));
            }
        }
    }

    fn line(&self, text: impl AsRef<str>) {
        let t = self.now();
        let mut out = self.out.lock().unwrap();
        flush(&mut out);
        let _ = writeln!(out.text, "{t:>8.3}s  {}", text.as_ref());
    }

    fn finish(&self) -> String {
        let mut out = self.out.lock().unwrap();
        flush(&mut out);
        std::mem::take(&mut out.text)
    }
}

fn flush(out: &mut TimelineState) {
    if let Some((kind, from, to, n)) = out.run.take() {
        if n == 1 {
            let _ = writeln!(out.text, "{from:>8.3}s  {kind}");
        } else {
            let _ = writeln!(out.text, "{from:>8.3}s  {kind}  ×{n} (until {to:.3}s)");
        }
    }
}

#[tokio::main(flavor = "current_thread", start_paused = true)]
async fn main() -> Result<(), BoxError> {
    let timeline = Arc::new(Timeline {
        start: Instant::now(),
        out: Mutex::default(),
    });
    let events = EventSink::from_fn({
        let timeline = timeline.clone();
        move |event| match event {
            ResilienceEvent::CircuitTransition {
                from,
                to,
                failure_rate,
                ..
            } => {
                let why = failure_rate
                    .map(|r| format!(" (failure rate {:.0}%)", r * 100.0))
                    .unwrap_or_default();
                timeline.line(format!("⚡ breaker {from} → {to}{why}"));
            }
            ResilienceEvent::Retry {
                attempt,
                delay,
                class,
                ..
            } => timeline.line(format!(
                "   ↻ attempt {attempt} failed ({class}); retry in {:.3}s",
                delay.as_secs_f64()
            )),
            ResilienceEvent::RetryStopped {
                attempts, reason, ..
            } => timeline.line(format!(
                "   ✗ gave up after {attempts} attempts: {reason:?}"
            )),
            ResilienceEvent::CallRejected { .. } => {
                timeline.repeated("   ⊘ rejected at once: circuit open")
            }
            _ => {}
        }
    });

    let (breaker, handle) = CircuitBreakerLayer::shared(
        CircuitBreakerConfig::builder()
            .model("flaky-llm")
            .count_window(10)
            .minimum_calls(5)
            .failure_rate_threshold(0.5)
            .growing_open_duration(Duration::from_secs(2), 2.0, Duration::from_secs(8))
            .half_open_permits(2)
            .events(events.clone())
            .build()?,
    );
    let breaker = breaker.with_classifier(HttpClassifier);
    let retry = RetryLayer::new(
        RetryConfig::builder()
            .model("flaky-llm")
            .max_attempts(3)
            .backoff(Duration::from_millis(100), Duration::from_secs(1))
            .jitter(Jitter::Full)
            .retry_after(true, Duration::from_secs(5))
            .seed(42)
            .events(events)
            .build()?,
    )
    .with_classifier(HttpClassifier);

    let upstream_calls = Arc::new(AtomicU32::new(0));
    let model = service_fn({
        let (timeline, upstream_calls) = (timeline.clone(), upstream_calls.clone());
        move |request: u32| {
            let call = upstream_calls.fetch_add(1, Ordering::SeqCst);
            let (status, retry_after, latency) = behaviour(timeline.now(), call);
            let timeline = timeline.clone();
            async move {
                sleep(latency).await;
                if status == StatusCode::OK {
                    timeline.repeated("✓ answered (200 OK)");
                } else {
                    let hint = retry_after
                        .map(|s| format!(", Retry-After {s}s"))
                        .unwrap_or_default();
                    timeline.line(format!("✗ req#{request} model answered {status}{hint}"));
                }
                let mut response = Response::builder().status(status);
                if let Some(secs) = retry_after {
                    response = response.header("retry-after", secs);
                }
                response.body(format!("answer to #{request}"))
            }
        }
    });
    let client = ServiceBuilder::new()
        .layer(retry)
        .layer(breaker)
        .service(model);

    println!("hive-resilience demo: a flaky model behind Retry → CircuitBreaker (simulated time)");
    println!(
        "  0–8 s healthy · 8–12 s rate-limited (429, Retry-After 1 s) · 12–30 s down (503) · 30 s+ healed\n"
    );
    let mut tasks = Vec::new();
    for n in 0..REQUESTS {
        let client = client.clone();
        tasks.push(tokio::spawn(async move { client.oneshot(n).await }));
        sleep(EVERY).await;
    }
    let (mut ok, mut failed, mut rejected) = (0, 0, 0);
    for task in tasks {
        match task.await? {
            Ok(response) if response.status().is_success() => ok += 1,
            Ok(_) => failed += 1,
            Err(e) if e.is::<Rejected>() => rejected += 1,
            Err(_) => failed += 1,
        }
    }
    print!("{}", timeline.finish());
    let calls = upstream_calls.load(Ordering::SeqCst);
    let metrics = handle.metrics();
    println!("\nsummary after {:.1} simulated seconds", timeline.now());
    println!("  requests        {REQUESTS}");
    println!("  answered        {ok}");
    println!("  failed          {failed} (the model's error returned after retries)");
    println!("  rejected fast   {rejected} (circuit open: no call, no wait)");
    println!(
        "  model calls     {calls} ({:.2} per request)",
        f64::from(calls) / f64::from(REQUESTS)
    );
    println!(
        "  breaker         {} after {} transitions; {} calls rejected in all",
        metrics.state, metrics.generation, metrics.rejected_calls
    );
    assert_eq!(
        handle.state(),
        CircuitState::Closed,
        "the breaker closes once the model heals"
    );
    Ok(())
}
