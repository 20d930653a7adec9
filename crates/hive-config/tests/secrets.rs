//! Secret values never show: not in `Debug` or `Display`, not in errors (nor the source lines
//! they quote), not in the canonical form the hash digests, not in audit lines.

use hive_config::{
    AuditEntry, Config, Environment, Loader, Secret, SecretSource, check_config_with, diff,
};
use serde_json::json;

const EXAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../config");

/// The example's variables, every value marked so that a leak is easy to find.
fn vars(generation: &str) -> Environment {
    let names = [
        "HIVE_CLIENT_KEY",
        "HIVE_ADMIN_TOKEN",
        "SMTP_PASSWORD",
        "ALERT_WEBHOOK_SIGNING_KEY",
        "OPENAI_API_KEY",
        "OPENAI_PROJECT_ID",
        "OPENROUTER_API_KEY",
    ];
    let mut vars: Vec<(String, String)> = names
        .iter()
        .map(|name| {
            (
                name.to_string(),
                format!("SECRET-{generation}-{name}-0123456789"),
            )
        })
        .collect();
    vars.push((
        "SLACK_WEBHOOK_URL".into(),
        format!("https://hooks.slack.com/services/SECRET-{generation}-slack"),
    ));
    vars.push((
        "ALERT_WEBHOOK_URL".into(),
        format!("https://pager.example.com/hook?SECRET-{generation}-pager"),
    ));
    Environment::vars(vars)
}

fn example(generation: &str) -> Config {
    Loader::new()
        .env(vars(generation))
        .load(EXAMPLE)
        .unwrap_or_else(|problems| panic!("{problems}"))
}

#[test]
fn a_secret_shows_its_source_only() {
    let key = Secret::new(
        SecretSource::Env("OPENAI_API_KEY".into()),
        "sk-SECRET-value",
    );
    assert_eq!(format!("{key:?}"), "Secret(env:OPENAI_API_KEY)");
    assert_eq!(format!("{key}"), "env:OPENAI_API_KEY");
    assert_eq!(
        serde_json::to_string(&key).ok().as_deref(),
        Some("\"env:OPENAI_API_KEY\"")
    );
    let file = Secret::new(
        SecretSource::File {
            written: "secrets/key".into(),
            path: "/etc/hive/secrets/key".into(),
        },
        "SECRET",
    );
    assert_eq!(
        format!("{file:?} {file}"),
        "Secret(file:secrets/key) file:secrets/key"
    );
    // Nor does an environment given to a loader.
    let env = vars("a");
    assert!(!format!("{env:?}").contains("SECRET"));
    assert!(!format!("{:?}", Loader::new().env(env)).contains("SECRET"));
}

#[test]
fn no_secret_in_debug_json_or_hash_input() {
    let config = example("a");
    assert!(
        config
            .model("gpt-4o")
            .and_then(|m| m.api_key.as_ref())
            .is_some_and(|k| k.expose().contains("SECRET"))
    );
    let debug = format!("{config:?} {config:#?}");
    assert!(!debug.contains("SECRET"), "Debug shows a secret");
    assert!(debug.contains("env:OPENAI_API_KEY"));
    // The canonical JSON is what the hash digests.
    let json = config.to_json().to_string();
    assert!(
        !json.contains("SECRET"),
        "the canonical form holds a secret"
    );
    assert!(json.contains("\"api_key\":\"env:OPENAI_API_KEY\""));
    // New values behind the same sources: the same hash, so no value went into it.
    assert_eq!(example("b").hash(), config.hash());
}

#[test]
fn no_secret_in_errors_or_the_lines_they_quote() {
    // Values written in the file where a secret belongs are shown as stars.
    let report = check_config_with(&Loader::new(), "tests/fixtures/literal-secret", false);
    assert_eq!(report.status, 1);
    assert!(!report.text.contains("sk-live"), "{}", report.text);
    assert!(report.text.contains("api_key: ********"));
    let problems = Loader::new()
        .load("tests/fixtures/literal-secret")
        .expect_err("refused");
    assert!(!format!("{problems:?} {problems}").contains("sk-live"));

    // A secret whose value is wrong is named by its source.
    let env = Environment::vars([
        ("HOOK", "SECRET-not-a-url"),
        ("KEY", "SECRET-short"),
        ("HEADER", "SECRET-with\na-line-break"),
        ("U", "https://SECRET-user:SECRET-password@example.com"),
    ]);
    let problems = Loader::new()
        .env(env)
        .load_str(
            "cfg",
            Some(
                "alerts:\n  channels:\n    s: { kind: slack, webhook: { env: HOOK } }\n    w: { \
                 kind: webhook, url: { env: U }, signing_key: { env: KEY } }\n",
            ),
            Some(
                "models:\n  - id: a\n    base_url: https://user:SECRET-pw@example.com\n    \
                 api_key: { env: HEADER }\n",
            ),
        )
        .expect_err("refused");
    let messages: Vec<String> = problems.iter().map(|d| d.message.clone()).collect();
    assert_eq!(
        messages,
        [
            "the value of env:HOOK is not a URL: it does not start with http:// or https://",
            "the value of env:U is not a URL: it has a login before its host (`user:password@`), \
             which alert channels refuse",
            "the signing key from env:KEY is shorter than 16 bytes",
            "a URL written in the config carries no credentials",
            "the value of env:HEADER cannot be sent in an HTTP header: it has a control character",
        ]
    );
    let all = format!("{problems:?}\n{problems}\n{}", problems.render(true));
    assert!(!all.contains("SECRET"), "{all}");
}

#[test]
fn no_secret_in_audit_lines() {
    let old = example("a");
    let new = example("b");
    let changes = diff(&old, &new);
    // Every secret was rotated: the diff says so, by source.
    assert!(!changes.is_empty());
    let entry = AuditEntry::config_change("sighup", &changes, &old, &new);
    let line = serde_json::to_string(&entry).expect("serialises");
    assert!(!line.contains("SECRET"), "{line}");
    assert!(line.contains("env:OPENAI_API_KEY (rotated)"));

    // Details from elsewhere are scrubbed of the config's secrets.
    let leaked = old.server.api_keys[0].expose().to_owned();
    let entry = AuditEntry::new(
        format!("admin:{leaked}"),
        "breaker_reset",
        json!({ "model": "gpt-4o", "note": format!("key {leaked}"), leaked.clone(): 1 }),
    )
    .redacted(&old);
    let line = serde_json::to_string(&entry).expect("serialises");
    assert!(!line.contains("SECRET"), "{line}");
    assert_eq!(entry.actor, "[redacted]");
    assert_eq!(entry.changes["note"], "[redacted]");
    assert_eq!(entry.changes["model"], "gpt-4o");
}

#[test]
fn a_secret_value_pasted_under_a_wrong_key_is_masked_in_the_problems() {
    let env = Environment::vars([("OPENAI_API_KEY", "sk-pasted-secret-value-42")]);
    let models = "models:\n  - id: gpt-4o\n    base_url: https://api.openai.com\n    api_key: { env: OPENAI_API_KEY }\n    api_kee: sk-pasted-secret-value-42\n";
    let problems = Loader::new()
        .env(env)
        .load_str("config", None, Some(models))
        .unwrap_err();
    assert_eq!(problems.len(), 1);
    for shown in [problems.render(false), problems.to_string()] {
        assert!(!shown.contains("sk-pasted-secret-value-42"), "{shown}");
        assert!(
            shown.contains("api_kee: *************************"),
            "{shown}"
        );
    }
}

/// `cluster`: the Redis URL comes from the environment or a file, never the config; a URL
/// that is not one is named by its source, its value (a password) never shown.
#[test]
fn the_cluster_redis_url_is_a_secret_checked_without_showing_it() {
    let env = Environment::vars([
        ("REDIS", "redis://:SECRET-pw@10.0.0.5:6379/0"),
        ("BAD", "http://SECRET-pw@10.0.0.5"),
    ]);
    let config = Loader::new()
        .env(env.clone())
        .load_str(
            "cfg",
            Some("cluster:\n  redis: { env: REDIS }\n  prefix: hive:prod\n  replica: gw-a\n"),
            Some("models:\n  - id: a\n    base_url: http://127.0.0.1:9\n"),
        )
        .unwrap_or_else(|problems| panic!("{problems}"));
    let cluster = config.cluster.as_ref().expect("a cluster section");
    assert_eq!(cluster.redis.expose(), "redis://:SECRET-pw@10.0.0.5:6379/0");
    assert_eq!(
        (cluster.prefix.as_str(), cluster.replica.as_deref()),
        ("hive:prod", Some("gw-a"))
    );
    let shown = format!("{config:?} {}", serde_json::to_string(&config).unwrap());
    assert!(!shown.contains("SECRET"), "{shown}");
    assert!(shown.contains("env:REDIS"));

    let problems = Loader::new()
        .env(env)
        .load_str(
            "cfg",
            Some("cluster:\n  redis: { env: BAD }\n  prefix: has space\n"),
            Some("models:\n  - id: a\n    base_url: http://127.0.0.1:9\n"),
        )
        .expect_err("refused");
    let all = format!("{problems:?}\n{problems}\n{}", problems.render(true));
    assert!(!all.contains("SECRET"), "{all}");
    assert!(
        all.contains("the Redis URL from env:BAD does not start with redis:// or rediss://"),
        "{all}"
    );
    assert!(
        all.contains("the key prefix must be 1 to 64 characters without spaces"),
        "{all}"
    );
    // A private CA for rediss://, from a file: a file without a certificate is refused.
    let dir = std::env::temp_dir().join(format!("hive-config-tls-ca-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("ca.pem"),
        "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    std::fs::write(dir.join("not.pem"), "hello").unwrap();
    let with_ca = |file: &str| {
        Loader::new()
            .env(Environment::vars([("REDIS", "rediss://10.0.0.5:6380")]))
            .load_str(
                &dir,
                Some(&format!(
                    "cluster:\n  redis: {{ env: REDIS }}\n  tls_ca: {{ file: {file} }}\n"
                )),
                Some("models:\n  - id: a\n    base_url: http://127.0.0.1:9\n"),
            )
    };
    let config = with_ca("ca.pem").unwrap_or_else(|p| panic!("{p}"));
    assert!(
        config
            .cluster
            .unwrap()
            .tls_ca
            .unwrap()
            .expose()
            .contains("BEGIN CERTIFICATE")
    );
    let refused = with_ca("not.pem").expect_err("no certificate").to_string();
    assert!(refused.contains("holds no PEM certificate"), "{refused}");
    let _ = std::fs::remove_dir_all(&dir);

    let written = Loader::new().load_str(
        "cfg",
        Some("cluster:\n  redis: redis://:pw@host:6379\n"),
        Some("models:\n  - id: a\n    base_url: http://127.0.0.1:9\n"),
    );
    let all = written
        .expect_err("a URL written in the file is refused")
        .to_string();
    assert!(
        all.contains("a secret is never written in the config file"),
        "{all}"
    );
    assert!(!all.contains(":pw@"), "{all}");
}
