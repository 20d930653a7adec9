//! What a valid config loads into: defaults, overrides merged key by key, the typed
//! variants, secrets from files, and what the gateway asks of a `Config`.

use std::{path::Path, time::Duration};

use hive_config::{
    AlertWindow, ChannelConfig, CommitPolicy, Condition, Config, DiagnosticKind, Environment,
    HedgeDelay, Jitter, LatencyPercentile, Loader, ModelName, OpenDurationSettings, Probe,
    Severity, SmtpSecurity, Strategy, WindowSettings,
};

fn loader() -> Loader {
    Loader::new().env(Environment::vars([(
        "OPENAI_API_KEY",
        "sk-test-openai-key",
    )]))
}

fn load(resilience: &str, models: &str) -> Config {
    match loader().load_str("cfg", Some(resilience), Some(models)) {
        Ok(config) => config,
        Err(problems) => panic!("{problems}"),
    }
}

const S: fn(u64) -> Duration = Duration::from_secs;

#[test]
fn missing_files_mean_defaults() {
    let config = loader()
        .load("tests/fixtures/empty")
        .expect("defaults load");
    assert_eq!(
        config
            .files()
            .map(|(_, present)| present)
            .collect::<Vec<_>>(),
        [false, false]
    );
    // The governance system's: health checks every 30 s, 3 attempts, escalation after 5 min.
    let d = &config.defaults.settings;
    assert_eq!(d.health.interval, S(30));
    assert_eq!(d.retry.max_attempts, 3);
    let rules = &config.alerts.rules;
    assert_eq!(
        rules.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(),
        [
            "model_unavailable",
            "high_failure_rate",
            "config_rejected",
            "cluster_link_down"
        ]
    );
    assert_eq!(rules[2].condition, Condition::ConfigRejected);
    assert_eq!(
        rules[0].condition,
        Condition::ConsecutiveFailures { at_least: 3 }
    );
    let escalate = rules[0].escalate.as_ref().expect("escalates");
    assert_eq!(
        (escalate.after, escalate.severity),
        (S(300), Severity::Critical)
    );
    assert_eq!(
        rules[1].condition,
        Condition::FailureRate {
            above: 0.2,
            window: AlertWindow::Last5Minutes,
            min_calls: 10
        }
    );
    assert!(rules.iter().all(|r| r.notify == ["log"]));
    assert_eq!(
        config.alerts.channels.iter().collect::<Vec<_>>(),
        [(&"log".to_owned(), &ChannelConfig::Log)]
    );
    // The libraries' defaults elsewhere.
    assert_eq!(
        (
            d.retry.backoff.base,
            d.retry.backoff.max,
            d.retry.backoff.multiplier
        ),
        (Duration::from_millis(200), S(10), 2.0)
    );
    assert_eq!(d.retry.backoff.jitter, Jitter::Full);
    assert_eq!(
        (d.retry.retry_after.honour, d.retry.retry_after.max),
        (true, S(30))
    );
    assert_eq!(
        d.retry
            .retry_on
            .iter()
            .map(|c| c.as_str())
            .collect::<Vec<_>>(),
        [
            "rate_limited",
            "unavailable",
            "connect",
            "overloaded",
            "stream_cut",
            "stream_stalled",
            "malformed"
        ]
    );
    assert_eq!(d.retry.budget, None);
    let b = &d.breaker;
    assert_eq!(b.window, WindowSettings::Count { size: 20 });
    assert_eq!((b.minimum_calls, b.failure_rate), (10, 0.5));
    assert_eq!((b.slow_call_duration, b.slow_call_rate), (None, 1.0));
    assert_eq!(b.consecutive_failures, Some(5));
    assert_eq!(
        b.open_duration,
        OpenDurationSettings::Growing {
            base: S(5),
            multiplier: 2.0,
            max: S(30)
        }
    );
    assert_eq!(
        (
            b.half_open_permits,
            b.max_wait_in_half_open,
            b.max_retry_after_open
        ),
        (1, S(60), S(300))
    );
    let h = &d.health;
    assert_eq!(
        (h.probe, h.fast_interval, h.timeout, h.jitter),
        (Probe::Models, S(1), S(5), 0.1)
    );
    assert_eq!((h.healthy_threshold, h.unhealthy_threshold), (2, 3));
    let t = &d.timeouts;
    assert_eq!(
        (t.attempt, t.first_token, t.idle, t.total),
        (S(60), S(30), S(30), S(300))
    );
    assert_eq!(config.defaults.request_timeout, Some(S(120)));
    assert_eq!(d.slow_start, S(10));
    assert_eq!(config.fallback.strategy, Strategy::Sequential);
    assert_eq!(config.fallback.last_resort, Some(S(1)));
    assert_eq!(
        (
            config.alerts.group_wait,
            config.alerts.group_interval,
            config.alerts.repeat_interval
        ),
        (S(30), S(300), S(4 * 3600))
    );
    assert_eq!(config.server.listen.to_string(), "127.0.0.1:8080");
    assert_eq!(config.server.body_limit, 4 << 20);
    assert_eq!(config.server.shutdown_grace, S(30));
    assert!(config.server.api_keys.is_empty() && config.admin.token.is_none());
    assert!(config.metrics && !config.admin.public_read);
    assert_eq!(
        config.audit.path.as_deref(),
        Some(Path::new("tests/fixtures/empty/audit.jsonl"))
    );
    assert!(config.models.is_empty() && config.routes.is_empty());
}

#[test]
fn empty_sections_and_files_are_defaults_too() {
    let commented = "server:\n  # listen: 0.0.0.0:8080\nalerts:\n  rules:\n";
    let config = load(commented, "# nothing yet\n");
    let defaults = load("", "");
    assert_eq!(config.server, defaults.server);
    // `rules:` with nothing is an empty list: no rules, rather than the default ones.
    assert!(config.alerts.rules.is_empty());
    assert_eq!(defaults.alerts.rules.len(), 4);
}

#[test]
fn a_model_overrides_defaults_key_by_key() {
    let config = load(
        "defaults:\n  retry:\n    max_attempts: 5\n    backoff: { base: 1s }\n  health: { \
         interval: 1m }\n",
        "models:\n  - id: a\n    base_url: http://127.0.0.1:1\n    retry: { backoff: { max: 20s \
         } }\n    health: { probe: completion }\n    slow_start: off\n  - id: b\n    base_url: \
         http://127.0.0.1:2\n",
    );
    let a = &config.model("a").expect("a").settings;
    let b = &config.model("b").expect("b").settings;
    // Given by the model.
    assert_eq!(a.retry.backoff.max, S(20));
    assert_eq!(a.health.probe, Probe::Completion);
    assert_eq!(a.slow_start, Duration::ZERO);
    // Kept from defaults, in the same sections.
    assert_eq!(a.retry.max_attempts, 5);
    assert_eq!(a.retry.backoff.base, S(1));
    assert_eq!(a.retry.backoff.multiplier, 2.0);
    assert_eq!(a.health.interval, S(60));
    // A model without overrides has the defaults whole.
    assert_eq!(b, &config.defaults.settings);
}

#[test]
fn every_variant_reads_into_its_type() {
    let config = load(
        "defaults:\n  retry:\n    backoff: { jitter: { proportional: 25% } }\n    budget: { \
         ratio: 0.2 }\n  breaker:\n    window: { time: 1m, buckets: 12 }\n    open_duration: \
         45s\n    consecutive_failures: off\n    slow_call_duration: 20s\nfallback:\n  \
         strategy: { parallel: { first: 2 } }\n  last_resort: off\nalerts:\n  channels:\n    \
         mail:\n      kind: email\n      host: smtp.example.com\n      security: \
         implicit_tls\n      from: Alerts <alerts@example.com>\n      to: [a@example.com, \
         B <b@example.com>]\n  rules:\n    - name: slow\n      condition: { latency: { \
         percentile: p99, above: 20s, window: 1h } }\n      notify: [mail]\n    - name: \
         gone\n      condition: route_down\n      severity: critical\n      notify: [mail]\n",
        "models:\n  - id: a\n    base_url: http://127.0.0.1:1\nroutes:\n  - name: fast\n    \
         models: [a]\n    strategy: { hedged: { delay: { percentile: 95%, otherwise: 2s }, \
         max_hedges: 2 } }\n    commit: buffered\n    timeout: off\n  - name: plain\n    \
         models: [a]\n",
    );
    let d = &config.defaults.settings;
    assert_eq!(d.retry.backoff.jitter, Jitter::Proportional(0.25));
    let budget = d.retry.budget.expect("a budget");
    assert_eq!(
        (budget.ratio, budget.min_per_second, budget.ttl),
        (0.2, 10, S(10))
    );
    assert_eq!(
        d.breaker.window,
        WindowSettings::Time {
            duration: S(60),
            buckets: 12
        }
    );
    assert_eq!(d.breaker.open_duration, OpenDurationSettings::Fixed(S(45)));
    assert_eq!(d.breaker.consecutive_failures, None);
    assert_eq!(d.breaker.slow_call_duration, Some(S(20)));
    assert_eq!(
        config.fallback.strategy,
        Strategy::Parallel { first: Some(2) }
    );
    assert_eq!(config.fallback.last_resort, None);
    let ChannelConfig::Email(mail) = &config.alerts.channels["mail"] else {
        panic!("an email channel");
    };
    assert_eq!(
        (mail.security, mail.port, mail.timeout),
        (SmtpSecurity::ImplicitTls, None, S(10))
    );
    assert_eq!(mail.to, ["a@example.com", "B <b@example.com>"]);
    assert_eq!(
        config.alerts.rules[0].condition,
        Condition::Latency {
            percentile: LatencyPercentile::P99,
            above: S(20),
            window: AlertWindow::LastHour,
            min_calls: 10
        }
    );
    assert_eq!(config.alerts.rules[1].condition, Condition::RouteDown);
    assert_eq!(config.alerts.rules[1].severity, Severity::Critical);
    let fast = config.route("fast").expect("fast");
    assert_eq!(
        fast.strategy,
        Strategy::Hedged {
            delay: HedgeDelay::Percentile {
                percentile: 0.95,
                min_samples: 20,
                otherwise: S(2)
            },
            max_hedges: 2,
            budget: None
        }
    );
    assert_eq!((fast.commit, fast.timeout), (CommitPolicy::Buffered, None));
    // A route that says nothing takes `fallback.strategy` and `defaults.timeouts.request`.
    let plain = config.route("plain").expect("plain");
    assert_eq!(plain.strategy, config.fallback.strategy);
    assert_eq!(
        (plain.commit, plain.timeout),
        (CommitPolicy::FirstChunk, Some(S(120)))
    );
}

#[test]
fn secrets_come_from_files_relative_to_the_directory() {
    let config = loader()
        .load("tests/fixtures/file-secrets")
        .expect("the fixture loads");
    let key = config
        .model("gpt-4o")
        .and_then(|m| m.api_key.as_ref())
        .expect("a key");
    // The trailing line break is not part of the secret.
    assert_eq!(key.expose(), "sk-from-a-file-0123456789");
    assert_eq!(key.to_string(), "file:secrets/openai.key");
    let ChannelConfig::Email(mail) = &config.alerts.channels["email"] else {
        panic!("an email channel");
    };
    let password = mail.password.as_ref().expect("a password");
    assert_eq!(password.expose(), "smtp-password-from-file");
    // A reloader watches both config files and both secret files.
    let dir = Path::new("tests/fixtures/file-secrets");
    assert_eq!(
        config.watched_paths(),
        [
            dir.join("resilience.yml"),
            dir.join("models-resilience.yml"),
            dir.join("secrets/openai.key"),
            dir.join("secrets/smtp"),
        ]
    );
}

#[test]
fn names_resolve_to_ids_first_then_to_the_first_matching_pattern() {
    let config = load(
        "",
        "models:\n  - pattern: openrouter/*\n    strip_prefix: openrouter/\n    base_url: \
         https://openrouter.ai/api\n    priority: 3\n  - id: openrouter/special\n    base_url: \
         http://127.0.0.1:9\n    priority: 1\n  - pattern: \"*\"\n    base_url: \
         http://127.0.0.1:8\n",
    );
    let key = |name: &str| config.resolve_model(name).map(|m| m.key().to_owned());
    assert_eq!(
        key("openrouter/special").as_deref(),
        Some("openrouter/special")
    );
    assert_eq!(
        key("openrouter/meta/llama").as_deref(),
        Some("openrouter/*")
    );
    assert_eq!(key("anything").as_deref(), Some("*"));
    let router = config.model("openrouter/*").expect("the pattern");
    assert!(matches!(router.name, ModelName::Pattern(_)));
    assert_eq!(router.upstream_name("openrouter/meta/llama"), "meta/llama");
    assert_eq!(
        config
            .models_by_priority()
            .iter()
            .map(|m| m.key())
            .collect::<Vec<_>>(),
        ["openrouter/special", "openrouter/*", "*"]
    );
    // A prefix the pattern does not start with would never be removed.
    let err = loader()
        .load_str(
            "cfg",
            None,
            Some("models:\n  - pattern: a/*\n    strip_prefix: b/\n    base_url: http://x\n"),
        )
        .expect_err("refused");
    assert_eq!(err.as_slice()[0].kind, DiagnosticKind::Conflict);
}

#[test]
fn the_default_rules_need_a_channel() {
    let err = loader()
        .load_str("cfg", Some("alerts:\n  channels: {}\n"), None)
        .expect_err("refused");
    let d = &err.as_slice()[0];
    assert_eq!(
        (d.kind, d.line, d.path.as_str()),
        (DiagnosticKind::Conflict, 2, "alerts.channels")
    );
    // Rules given, no channel needed by them.
    let config = load("alerts:\n  channels: {}\n  rules: []\n", "");
    assert!(config.alerts.channels.is_empty() && config.alerts.rules.is_empty());
}
