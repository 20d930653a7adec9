//! The demo's story: three simulated models that misbehave on a two-minute cycle, repeating,
//! their failures overlapping as real outages do — the primary goes down for 40 s; while it
//! is down the second model cuts some streams mid-answer, then rate-limits with
//! `Retry-After`; the third is slow but steady — and the embedded configuration that puts
//! the gateway in front of them.

use std::time::Duration;

use hive_sim::{Behaviour, Latency, RetryAfter, Script};

/// The length of one cycle of the story.
pub const CYCLE: Duration = Duration::from_secs(120);

/// The primary: down (HTTP 503) from 20 s to 60 s of every cycle.
pub const PRIMARY: &str = "gpt-4o";
/// The second model: its streams cut mid-answer from 28 s to 32 s of every cycle, and
/// rate-limited (HTTP 429, `Retry-After: 10`) from 40 s to 55 s.
pub const SECOND: &str = "claude-4-sonnet";
/// The last resort: slow (0.6 to 1.2 s) but steady.
pub const THIRD: &str = "deepseek-v3.1";

/// What happens when, in a cycle, as a line for the terminal.
pub const PLOT: &str = "gpt-4o down 20–60 s · meanwhile claude-4-sonnet cuts streams 28–32 s and rate-limits 40–55 s (Retry-After 10 s) · deepseek-v3.1 slow but steady · every 2 minutes";

fn seconds(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// The scripts of the story's models, for `cycles` cycles (the simulator's clock starts at
/// the first).
pub fn scripts(cycles: u32) -> Vec<(&'static str, Script)> {
    let mut primary = Script::new().latency(Latency::Uniform(
        Duration::from_millis(150),
        Duration::from_millis(300),
    ));
    let mut second = Script::new().latency(Latency::Uniform(
        Duration::from_millis(200),
        Duration::from_millis(400),
    ));
    for cycle in 0..u64::from(cycles) {
        let at = |s: u64| CYCLE * cycle as u32 + seconds(s);
        primary = primary.between(at(20), at(60), Behaviour::Status(503));
        second = second
            .between(at(28), at(32), Behaviour::StreamCut { after_tokens: 5 })
            .between(
                at(40),
                at(55),
                Behaviour::RateLimited(Some(RetryAfter::Seconds(10))),
            );
    }
    let third = Script::new().latency(Latency::Uniform(
        Duration::from_millis(600),
        Duration::from_millis(1200),
    ));
    vec![(PRIMARY, primary), (SECOND, second), (THIRD, third)]
}

/// The demo's configuration, `models-resilience.yml`, for a provider at `base_url`.
pub fn models_yaml(base_url: &str) -> String {
    format!(
        r#"# The demo: three models of one simulated provider, in priority order.
models:
  - id: {PRIMARY}
    base_url: {base_url}
    accepts_prefill: true
  - id: {SECOND}
    base_url: {base_url}
    accepts_prefill: true
    # Its cuts (28–32 s) come while it takes every request: a breaker that opened on the
    # first few failures would hide them, and the continuation of cut streams with them.
    breaker:
      consecutive_failures: off
      minimum_calls: 20
  - id: {THIRD}
    base_url: {base_url}
    accepts_prefill: true
routes:
  - name: council
    models: [{PRIMARY}, {SECOND}, {THIRD}]
    commit: first_chunk
"#
    )
}

/// The demo's `resilience.yml`: short limits so that the story shows in seconds.
pub fn resilience_yaml(listen: &str) -> String {
    format!(
        r#"# The demo's gateway: short limits so that failures show in seconds.
server:
  listen: "{listen}"
# The dashboard is open to look at; its buttons take the token `hive demo` made.
admin:
  public_read: true
  token: {{ env: HIVE_ADMIN_TOKEN }}
defaults:
  retry:
    max_attempts: 2
    # A model that asks for more than 2 s is left to the next one at once.
    retry_after: {{ max: 2s }}
  health:
    interval: 5s
    probe: completion
  timeouts:
    attempt: 5s
    request: 15s
    first_token: 3s
    idle: 2s
  slow_start: 5s
alerts:
  channels:
    log: {{ kind: log }}
  group_wait: 1s
  group_interval: 10s
audit:
  path: off
"#
    )
}

/// What the story's models are doing `at` (since the simulator started), for the terminal.
pub fn phase(at: Duration) -> &'static str {
    let second = at.as_secs() % CYCLE.as_secs();
    match second {
        28..32 => "gpt-4o is down (503); claude-4-sonnet cuts its streams",
        40..55 => "gpt-4o is down (503); claude-4-sonnet rate-limits (429, Retry-After 10 s)",
        20..60 => "gpt-4o is down (503)",
        _ => "every model answers",
    }
}
