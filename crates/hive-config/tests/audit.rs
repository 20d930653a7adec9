//! The audit log: JSON lines appended and read back, whole under concurrent writers.

use std::{path::PathBuf, sync::Arc};

use hive_config::{
    AuditEntry, AuditLog, CONFIG_CHANGE, Config, ConfigHash, Environment, Loader, diff,
};
use serde_json::{Value, json};

/// A fresh directory under the target directory for one test.
fn scratch(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("hive-config-{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a scratch directory");
    dir
}

fn config(dir: &std::path::Path, attempts: u32) -> Config {
    Loader::new()
        .env(Environment::vars([("KEY", "sk-audit-test-key")]))
        .load_str(
            dir,
            Some(&format!(
                "defaults:\n  retry: {{ max_attempts: {attempts} }}\n"
            )),
            Some(
                "models:\n  - id: a\n    base_url: http://127.0.0.1:1\n    api_key: { env: KEY }\n",
            ),
        )
        .unwrap_or_else(|problems| panic!("{problems}"))
}

#[test]
fn entries_are_appended_as_json_lines_and_read_back() {
    let dir = scratch("read-back");
    let old = config(&dir, 3);
    let new = config(&dir, 5);
    // The config names its log: `audit.jsonl` in its directory by default.
    let log = AuditLog::from_config(&new).expect("a log by default");
    assert_eq!(log.path(), dir.join("audit.jsonl"));
    assert_eq!(log.read().expect("no file yet"), []);

    let change = AuditEntry::config_change("sighup", &diff(&old, &new), &old, &new);
    let recovery = AuditEntry::new(
        "admin",
        "breaker_force_open",
        json!({ "model": "a", "reason": "provider incident" }),
    )
    .with_hash(new.hash());
    log.append(&change).expect("appended");
    log.append(&recovery).expect("appended");

    let back = log.read().expect("read back");
    assert_eq!(back, [change.clone(), recovery]);

    // Each line is one JSON object with exactly the five fields.
    let text = std::fs::read_to_string(log.path()).expect("the file");
    let lines: Vec<Value> = text
        .lines()
        .map(|line| serde_json::from_str(line).expect("a JSON line"))
        .collect();
    assert_eq!(lines.len(), 2);
    for line in &lines {
        let mut keys: Vec<&str> = line
            .as_object()
            .expect("an object")
            .keys()
            .map(String::as_str)
            .collect();
        keys.sort_unstable();
        assert_eq!(keys, ["action", "actor", "changes", "config_hash", "time"]);
    }
    let first = &lines[0];
    assert_eq!(first["action"], CONFIG_CHANGE);
    assert_eq!(first["actor"], "sighup");
    assert_eq!(
        first["changes"]["global"],
        json!([{ "path": "defaults.retry.max_attempts", "from": 3, "to": 5 }])
    );
    assert_eq!(
        first["changes"]["models"]["changed"]["a"],
        json!([{ "path": "retry.max_attempts", "from": 3, "to": 5 }])
    );
    // The hash names the config in force after the change.
    let hash: ConfigHash = first["config_hash"]
        .as_str()
        .expect("a hash")
        .parse()
        .expect("a valid hash");
    assert_eq!(hash, new.hash());
    // RFC 3339 UTC with milliseconds.
    let time = first["time"].as_str().expect("a time");
    assert_eq!((time.len(), &time[10..11], &time[23..]), (24, "T", "Z"));
}

#[test]
fn concurrent_writers_never_interleave_lines() {
    let dir = scratch("concurrent");
    let log = Arc::new(AuditLog::new(dir.join("audit.jsonl")));
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let log = Arc::clone(&log);
            std::thread::spawn(move || {
                for i in 0..50 {
                    let entry = AuditEntry::new(
                        format!("writer-{t}"),
                        "breaker_reset",
                        json!({ "model": format!("m{i}"), "padding": "x".repeat(512) }),
                    );
                    log.append(&entry).expect("appended");
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().expect("a writer");
    }
    let entries = log.read().expect("every line parses");
    assert_eq!(entries.len(), 8 * 50);
    for t in 0..8 {
        let mine: Vec<&Value> = entries
            .iter()
            .filter(|e| e.actor == format!("writer-{t}"))
            .map(|e| &e.changes["model"])
            .collect();
        let expected: Vec<Value> = (0..50).map(|i| json!(format!("m{i}"))).collect();
        assert_eq!(
            mine,
            expected.iter().collect::<Vec<_>>(),
            "writer {t} in order"
        );
    }
}

#[test]
fn a_broken_line_is_reported_with_its_number() {
    let dir = scratch("broken");
    let path = dir.join("audit.jsonl");
    let log = AuditLog::new(&path);
    log.append(&AuditEntry::new("a", "b", Value::Null))
        .expect("appended");
    std::fs::write(
        &path,
        format!(
            "{}not json\n",
            std::fs::read_to_string(&path).expect("the file")
        ),
    )
    .expect("written");
    let error = log.read().expect_err("a broken line");
    assert!(error.to_string().contains("line 2"), "{error}");
    // Appending into a directory that does not exist fails with the path.
    let error = AuditLog::new(dir.join("missing/audit.jsonl"))
        .append(&AuditEntry::new("a", "b", Value::Null))
        .expect_err("no directory");
    assert!(error.to_string().contains("missing/audit.jsonl"), "{error}");
}

#[test]
fn audit_off_means_no_log() {
    let config = Loader::new()
        .load_str("cfg", Some("audit: { path: off }\n"), None)
        .expect("loads");
    assert_eq!(AuditLog::from_config(&config), None);
}
