//! The example set under `config/` at the root of the repository loads, says what its
//! comments say, and needs each variable it names.

use std::time::Duration;

use hive_config::{
    CommitPolicy, DiagnosticKind, Environment, Loader, ModelName, Probe, Strategy,
    check_config_with,
};

const EXAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../config");

/// Every variable the example's secrets name, with test values.
const VARS: [(&str, &str); 9] = [
    ("HIVE_CLIENT_KEY", "client-key-for-tests"),
    ("HIVE_ADMIN_TOKEN", "admin-token-for-tests"),
    (
        "SLACK_WEBHOOK_URL",
        "https://hooks.slack.com/services/T0/B0/test",
    ),
    ("SMTP_PASSWORD", "smtp-password-for-tests"),
    (
        "ALERT_WEBHOOK_URL",
        "https://pager.example.com/hook?token=test",
    ),
    (
        "ALERT_WEBHOOK_SIGNING_KEY",
        "0123456789abcdef0123456789abcdef",
    ),
    ("OPENAI_API_KEY", "sk-test-openai"),
    ("OPENAI_PROJECT_ID", "proj-test"),
    ("OPENROUTER_API_KEY", "sk-or-test"),
];

#[test]
fn the_example_set_loads_and_says_what_its_comments_say() {
    let loader = Loader::new().env(Environment::vars(VARS));
    let report = check_config_with(&loader, EXAMPLE, false);
    assert!(report.is_ok(), "{}", report.text);
    assert!(
        report
            .text
            .contains("4 models (1 of them a pattern), 3 routes, 4 alert channels, 11 alert rules")
    );
    let config = report.config.expect("a config");

    let gpt = config.model("gpt-4o").expect("gpt-4o");
    assert_eq!(gpt.settings.retry.max_attempts, 2);
    assert_eq!(gpt.settings.timeouts.first_token, Duration::from_secs(20));
    assert_eq!(gpt.headers["OpenAI-Organization"], "org-hive-example");
    assert_eq!(gpt.secret_headers["OpenAI-Project"].expose(), "proj-test");
    let router = config
        .resolve_model("openrouter/anthropic/claude-3.5-sonnet")
        .expect("matched");
    assert_eq!(router.name, ModelName::Pattern("openrouter/*".into()));
    assert_eq!(router.settings.health.probe, Probe::Completion);
    assert_eq!(
        router.upstream_name("openrouter/anthropic/claude-3.5-sonnet"),
        "anthropic/claude-3.5-sonnet"
    );
    let local = config.model("llama-3.1-8b").expect("local");
    assert!(local.api_key.is_none() && local.accepts_prefill);
    assert_eq!(local.settings.slow_start, Duration::ZERO);

    let vote = config.route("vote").expect("vote");
    assert_eq!(vote.strategy, Strategy::Sequential);
    assert_eq!(
        (vote.commit, vote.timeout),
        (CommitPolicy::Buffered, Some(Duration::from_secs(45)))
    );
    let chat = config.route("chat").expect("chat");
    assert_eq!(chat.strategy.name(), "hedged");
    assert!(chat.degraded.is_some());
    assert_eq!(
        config.alerts.rules[0].escalate.as_ref().map(|e| e.after),
        Some(Duration::from_secs(300))
    );
    assert_eq!(
        config.defaults.settings.health.interval,
        Duration::from_secs(30)
    );
}

#[test]
fn every_variable_the_example_names_is_required() {
    let problems = Loader::new()
        .env(Environment::vars(Vec::<(String, String)>::new()))
        .load(EXAMPLE)
        .expect_err("no variable is set");
    // One problem per reference, none of another kind: a model or channel whose secret is
    // missing is still known to the routes and rules that name it.
    assert!(
        problems
            .iter()
            .all(|d| d.kind == DiagnosticKind::MissingEnvVar),
        "{problems}"
    );
    let mut named: Vec<&str> = problems
        .iter()
        .filter_map(|d| d.message.split('`').nth(1))
        .collect();
    assert_eq!(named.len(), 10, "OPENAI_API_KEY is named twice");
    named.sort_unstable();
    named.dedup();
    let mut expected: Vec<&str> = VARS.iter().map(|(name, _)| *name).collect();
    expected.sort_unstable();
    assert_eq!(named, expected);
}
