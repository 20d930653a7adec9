//! `diff`: what a reload changes, so that unchanged models keep their stacks; and the hash
//! that says whether anything changed at all.

use hive_config::{Change, Config, Environment, Loader, diff};
use serde_json::json;

const RESILIENCE: &str = "\
defaults:
  retry:
    max_attempts: 3
server:
  listen: 127.0.0.1:8080
";

const MODELS: &str = "\
models:
  - id: a
    base_url: http://127.0.0.1:1
    api_key: { env: KEY_A }
  - id: b
    base_url: http://127.0.0.1:2
    retry: { max_attempts: 2 }
  - pattern: p/*
    base_url: http://127.0.0.1:3
routes:
  - name: chat
    models: [a, b]
";

fn load_with(resilience: &str, models: &str, key: &str) -> Config {
    Loader::new()
        .env(Environment::vars([("KEY_A", key)]))
        .load_str("cfg", Some(resilience), Some(models))
        .unwrap_or_else(|problems| panic!("{problems}"))
}

fn load(resilience: &str, models: &str) -> Config {
    load_with(resilience, models, "key-one")
}

fn change(path: &str, from: serde_json::Value, to: serde_json::Value) -> Change {
    Change {
        path: path.to_owned(),
        from,
        to,
    }
}

#[test]
fn the_same_config_changes_nothing() {
    let old = load(RESILIENCE, MODELS);
    let d = diff(&old, &load(RESILIENCE, MODELS));
    assert!(d.is_empty(), "{d:#?}");
    assert_eq!(d.models_unchanged, ["a", "b", "p/*"]);
}

#[test]
fn respelling_changes_nothing_and_keeps_the_hash() {
    let old = load(RESILIENCE, MODELS);
    let respelled = "\
# comments, key order, spelling and defaults written out do not count
server: { listen: \"127.0.0.1:8080\", body_limit: 4096KiB }
defaults:
  breaker: { failure_rate: 0.5 }
  retry: { max_attempts: 3, backoff: { max: 10000ms } }
";
    let rewritten = "\
routes:
  - { models: [a, b], name: chat }
models:
  - base_url: http://127.0.0.1:1
    api_key: { env: KEY_A }
    id: a
    priority: 100
  - retry: { max_attempts: 2 }
    id: b
    base_url: http://127.0.0.1:2
  - { pattern: p/*, base_url: http://127.0.0.1:3 }
";
    let new = load(respelled, rewritten);
    assert!(diff(&old, &new).is_empty());
    assert_eq!(old.hash(), new.hash());
    assert_ne!(
        old.hash(),
        load(RESILIENCE, &MODELS.replace("127.0.0.1:3", "127.0.0.1:4")).hash()
    );
    let text = old.hash().to_string();
    assert!(text.starts_with("sha256:") && text.len() == 7 + 64);
    assert_eq!(text.parse(), Ok(old.hash()));
}

#[test]
fn reordering_models_changes_routing_not_stacks() {
    let old = load(RESILIENCE, MODELS);
    let reordered = "\
models:
  - pattern: p/*
    base_url: http://127.0.0.1:3
  - id: b
    base_url: http://127.0.0.1:2
    retry: { max_attempts: 2 }
  - id: a
    base_url: http://127.0.0.1:1
    api_key: { env: KEY_A }
routes:
  - name: chat
    models: [a, b]
";
    let new = load(RESILIENCE, reordered);
    let d = diff(&old, &new);
    // File order breaks priority ties and orders patterns: it is a change, of routing only.
    assert!(d.models_reordered && !d.is_empty());
    assert!(d.models_changed.is_empty() && d.models_added.is_empty());
    assert_eq!(d.models_unchanged.len(), 3);
    assert_ne!(old.hash(), new.hash());
}

#[test]
fn models_added_removed_and_changed() {
    let old = load(RESILIENCE, MODELS);
    let models = MODELS
        .replace(
            "  - pattern: p/*\n    base_url: http://127.0.0.1:3\n",
            "  - id: c\n    base_url: http://127.0.0.1:5\n",
        )
        .replace("retry: { max_attempts: 2 }", "retry: { max_attempts: 4 }");
    let d = diff(&old, &load(RESILIENCE, &models));
    assert_eq!(d.models_added, ["c"]);
    assert_eq!(d.models_removed, ["p/*"]);
    assert_eq!(d.models_unchanged, ["a"]);
    assert_eq!(d.models_changed.len(), 1);
    assert_eq!(d.models_changed[0].model, "b");
    assert_eq!(
        d.models_changed[0].changes,
        [change("retry.max_attempts", json!(2), json!(4))]
    );
    // A retry setting is part of the stack: b gets a new one.
    assert!(!d.models_changed[0].keeps_state());
    assert!(d.keeps_stack("a") && !d.keeps_stack("b") && !d.keeps_stack("c"));
    assert!(!d.keeps_stack("p/*"), "removed");
    assert!(d.routes_changed.is_empty() && !d.global_changed());
}

#[test]
fn a_routing_setting_keeps_the_model_state() {
    let old = load(RESILIENCE, MODELS);
    let models = MODELS.replace(
        "  - id: a\n",
        "  - id: a\n    priority: 1\n    weight: 3\n    accepts_prefill: true\n",
    );
    let d = diff(&old, &load(RESILIENCE, &models));
    assert_eq!(d.models_changed.len(), 1);
    let a = &d.models_changed[0];
    assert_eq!(
        a.changes
            .iter()
            .map(|c| c.path.as_str())
            .collect::<Vec<_>>(),
        ["accepts_prefill", "priority", "weight"]
    );
    assert!(a.keeps_state());
    assert!(d.keeps_stack("a") && d.keeps_stack("b") && d.keeps_stack("p/*"));
}

#[test]
fn a_default_changes_the_models_that_do_not_override_it() {
    let old = load(RESILIENCE, MODELS);
    let d = diff(
        &old,
        &load(
            &RESILIENCE.replace("max_attempts: 3", "max_attempts: 5"),
            MODELS,
        ),
    );
    // b sets its own max_attempts: unchanged. a and the pattern follow the default.
    assert_eq!(d.models_unchanged, ["b"]);
    assert_eq!(
        d.models_changed
            .iter()
            .map(|m| m.model.as_str())
            .collect::<Vec<_>>(),
        ["a", "p/*"]
    );
    assert_eq!(
        d.global,
        [change("defaults.retry.max_attempts", json!(3), json!(5))]
    );
    assert!(d.section_changed("defaults") && !d.section_changed("server"));
}

#[test]
fn routes_added_removed_and_changed() {
    let old = load(RESILIENCE, MODELS);
    let models = MODELS.replace(
        "  - name: chat\n    models: [a, b]\n",
        "  - name: chat\n    models: [b, a]\n    commit: buffered\n  - name: solo\n    models: [a]\n",
    );
    let d = diff(&old, &load(RESILIENCE, &models));
    assert_eq!(d.routes_added, ["solo"]);
    assert_eq!(d.routes_changed.len(), 1);
    assert_eq!(
        d.routes_changed[0].changes,
        [
            change("commit", json!("first_chunk"), json!("buffered")),
            change("models", json!(["a", "b"]), json!(["b", "a"])),
        ]
    );
    assert!(
        d.models_changed.is_empty(),
        "routes are views: models keep their stacks"
    );
    let d = diff(&load(RESILIENCE, &models), &old);
    assert_eq!(d.routes_removed, ["solo"]);
}

#[test]
fn a_rotated_secret_changes_its_model_but_not_the_hash() {
    let old = load_with(RESILIENCE, MODELS, "key-one");
    let new = load_with(RESILIENCE, MODELS, "key-two");
    let d = diff(&old, &new);
    assert_eq!(d.models_changed.len(), 1);
    assert_eq!(
        d.models_changed[0].changes,
        [change(
            "api_key",
            json!("env:KEY_A"),
            json!("env:KEY_A (rotated)")
        )]
    );
    assert!(
        !d.models_changed[0].keeps_state(),
        "the client needs the new key"
    );
    assert_eq!(old.hash(), new.hash());
}

#[test]
fn global_changes_are_listed_by_path() {
    let old = load(RESILIENCE, MODELS);
    let new = load(
        &format!(
            "{}metrics: false\nalerts:\n  group_wait: 10s\n",
            RESILIENCE.replace("8080", "9090")
        ),
        MODELS,
    );
    let d = diff(&old, &new);
    assert_eq!(
        d.global,
        [
            change("alerts.group_wait", json!("30s"), json!("10s")),
            change("metrics", json!(true), json!(false)),
            change(
                "server.listen",
                json!("127.0.0.1:8080"),
                json!("127.0.0.1:9090")
            ),
        ]
    );
    assert!(d.section_changed("server") && d.section_changed("alerts"));
    assert!(d.models_changed.is_empty() && d.routes_changed.is_empty());
    // As the audit log records it.
    assert_eq!(
        d.to_json()["global"][2],
        json!({ "path": "server.listen", "from": "127.0.0.1:8080", "to": "127.0.0.1:9090" })
    );
}
