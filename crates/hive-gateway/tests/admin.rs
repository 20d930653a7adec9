//! The admin API over real HTTP: who may read, who may act, what every action does to the
//! fleet, and what the audit log records of it.

#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use bytes::Bytes;
use hive_config::AuditLog;
use hive_gateway::admin::ADMIN_REQUEST;
use hive_sim::Script;
use http::{Method, Request, StatusCode};
use http_body_util::Full;
use serde_json::{Value, json};
use support::{Answer, Harness, TWO_MODELS as MODELS, ask};

const ADMIN: &str = "admin-token-0123456789abcdef";
const READER: &str = "read-token-0123456789abcdef";

fn resilience(admin: &str) -> String {
    format!(
        "{admin}defaults:\n  retry:\n    max_attempts: 1\n  health:\n    probe: none\nalerts:\n  group_wait: 100ms\n  group_interval: 200ms\n  evaluation_interval: 100ms\n  channels:\n    log: {{ kind: log }}\n  rules:\n    - {{ name: model_down, condition: breaker_open, notify: [log] }}\n"
    )
}

const TOKENS: &str =
    "admin:\n  token: { env: HIVE_ADMIN_TOKEN }\n  read_token: { env: HIVE_READ_TOKEN }\n";

async fn harness(test: &str, admin: &str) -> Harness {
    Harness::start(
        test,
        vec![
            ("gpt-4o", Script::new()),
            ("claude-4-sonnet", Script::new()),
        ],
        &resilience(admin),
        MODELS,
        &[("HIVE_ADMIN_TOKEN", ADMIN), ("HIVE_READ_TOKEN", READER)],
    )
    .await
}

async fn call(h: &Harness, method: Method, path: &str, token: Option<&str>, body: &str) -> Answer {
    let mut request = Request::builder().method(method).uri(h.url(path));
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    h.send(
        request
            .body(Full::from(Bytes::from(body.to_owned())))
            .unwrap(),
    )
    .await
}

/// The admin lines of the audit log, as `actor status what`.
fn admin_audit(h: &Harness) -> Vec<Value> {
    AuditLog::new(h.dir.join("audit.jsonl"))
        .read()
        .unwrap()
        .into_iter()
        .filter(|e| e.action == ADMIN_REQUEST)
        .map(|e| json!({ "actor": e.actor, "changes": e.changes }))
        .collect()
}

#[tokio::test]
async fn no_token_or_a_wrong_one_is_a_401_and_audited_with_its_source() {
    let h = harness("admin-401", TOKENS).await;
    for token in [None, Some("wrong"), Some(READER)] {
        let got = call(
            &h,
            Method::POST,
            "/admin/models/gpt-4o/force-open",
            token,
            "",
        )
        .await;
        let expected = if token == Some(READER) {
            StatusCode::FORBIDDEN
        } else {
            StatusCode::UNAUTHORIZED
        };
        assert_eq!(got.status, expected, "{token:?}: {}", got.body);
    }
    let got = call(&h, Method::GET, "/admin/status", None, "").await;
    assert_eq!(got.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        got.header("www-authenticate"),
        Some("Bearer realm=\"hive admin\"")
    );
    let breaker = h
        .server
        .gateway()
        .fleet()
        .manager()
        .control("gpt-4o")
        .unwrap()
        .breaker()
        .state();
    assert_eq!(breaker.as_str(), "closed", "nothing was done");
    let audit = admin_audit(&h);
    let seen: Vec<(String, u64)> = audit
        .iter()
        .map(|e| {
            (
                e["actor"].as_str().unwrap().to_owned(),
                e["changes"]["status"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("anonymous".to_owned(), 401),
            ("anonymous".to_owned(), 401),
            ("read-token".to_owned(), 403),
            ("anonymous".to_owned(), 401),
        ]
    );
    for entry in &audit {
        let source = entry["changes"]["source"].as_str().unwrap();
        assert!(source.starts_with("127.0.0.1:"), "{source}");
    }
    let text = std::fs::read_to_string(h.dir.join("audit.jsonl")).unwrap();
    assert!(!text.contains(ADMIN) && !text.contains(READER) && !text.contains("wrong"));
}

#[tokio::test]
async fn each_action_changes_the_model_and_the_routing_at_once() {
    let h = harness("admin-act", TOKENS).await;
    let act = |action: &'static str| {
        let h = &h;
        async move {
            let path = format!("/admin/models/gpt-4o/{action}");
            let got = call(h, Method::POST, &path, Some(ADMIN), "").await;
            assert_eq!(got.status, StatusCode::OK, "{action}: {}", got.body);
            got.json()
        }
    };
    let answered_by = || async {
        h.chat(&ask("council", false), None)
            .await
            .header("x-hive-model")
            .map(str::to_owned)
    };
    assert_eq!(answered_by().await.as_deref(), Some("gpt-4o"));

    let state = act("force-open").await;
    assert_eq!(state["breaker"], "forced_open");
    assert_eq!(state["up"], false);
    assert_eq!(answered_by().await.as_deref(), Some("claude-4-sonnet"));
    let state = act("force-close").await;
    assert_eq!(state["breaker"], "closed");
    assert_eq!(answered_by().await.as_deref(), Some("gpt-4o"));

    let state = act("mark-unhealthy").await;
    assert_eq!(state["health"], "unhealthy");
    assert_eq!(answered_by().await.as_deref(), Some("claude-4-sonnet"));
    let state = act("clear-health").await;
    assert_eq!(state["up"], true);
    assert_eq!(answered_by().await.as_deref(), Some("gpt-4o"));

    let state = act("drain").await;
    assert_eq!(state["drained"], true);
    assert_eq!(answered_by().await.as_deref(), Some("claude-4-sonnet"));
    let state = act("undrain").await;
    assert_eq!(state["drained"], false);
    assert_eq!(answered_by().await.as_deref(), Some("gpt-4o"));

    let state = act("half-open").await;
    assert_eq!(state["breaker"], "half_open");
    act("mark-healthy").await;

    let audit = admin_audit(&h);
    let actions: Vec<&str> = audit
        .iter()
        .map(|e| e["changes"]["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "force-open",
            "force-close",
            "mark-unhealthy",
            "clear-health",
            "drain",
            "undrain",
            "half-open",
            "mark-healthy"
        ]
    );
    assert!(
        audit
            .iter()
            .all(|e| e["actor"] == "admin" && e["changes"]["status"] == 200)
    );
}

#[tokio::test]
async fn an_unknown_model_or_action_is_a_404_that_says_what_exists() {
    let h = harness("admin-404", TOKENS).await;
    let got = call(
        &h,
        Method::POST,
        "/admin/models/gpt-5/drain",
        Some(ADMIN),
        "",
    )
    .await;
    assert_eq!(got.status, StatusCode::NOT_FOUND);
    assert_eq!(got.json()["error"]["code"], "model_not_found");
    let got = call(
        &h,
        Method::POST,
        "/admin/models/gpt-4o/explode",
        Some(ADMIN),
        "",
    )
    .await;
    assert_eq!(got.status, StatusCode::NOT_FOUND);
    let message = got.json()["error"]["message"].as_str().unwrap().to_owned();
    assert!(
        message.contains("force-open") && message.contains("undrain"),
        "{message}"
    );
}

#[tokio::test]
async fn reads_need_a_token_unless_public_and_show_no_secret() {
    let h = harness("admin-read", TOKENS).await;
    for token in [READER, ADMIN] {
        let got = call(&h, Method::GET, "/admin/status", Some(token), "").await;
        assert_eq!(got.status, StatusCode::OK, "{}", got.body);
        let status = got.json();
        let models: Vec<&str> = status["models"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["model"].as_str().unwrap())
            .collect();
        assert_eq!(models, ["gpt-4o", "claude-4-sonnet"]);
        assert_eq!(status["routes"][0]["name"], "council");
        assert!(status["metrics"]["models"].is_array());
        assert!(!got.body.contains(ADMIN) && !got.body.contains(READER));
    }

    let public = harness(
        "admin-public",
        "admin:\n  token: { env: HIVE_ADMIN_TOKEN }\n  public_read: true\n",
    )
    .await;
    let got = call(&public, Method::GET, "/admin/status", None, "").await;
    assert_eq!(got.status, StatusCode::OK);
    let got = call(
        &public,
        Method::POST,
        "/admin/models/gpt-4o/drain",
        None,
        "",
    )
    .await;
    assert_eq!(
        got.status,
        StatusCode::UNAUTHORIZED,
        "public reads, not acts"
    );

    let off = harness("admin-off", "").await;
    let got = call(
        &off,
        Method::POST,
        "/admin/models/gpt-4o/drain",
        Some(ADMIN),
        "",
    )
    .await;
    assert_eq!(got.status, StatusCode::FORBIDDEN);
    assert_eq!(got.json()["error"]["code"], "admin_off");
}

#[tokio::test]
async fn silences_are_added_listed_expired_and_kept_across_a_reload() {
    let h = harness("admin-silences", TOKENS).await;
    let body = json!({ "for": "1h", "model": "gpt-4o", "comment": "provider maintenance" });
    let got = call(
        &h,
        Method::POST,
        "/admin/silences",
        Some(ADMIN),
        &body.to_string(),
    )
    .await;
    assert_eq!(got.status, StatusCode::CREATED, "{}", got.body);
    let id = got.json()["id"].as_u64().unwrap();
    assert_eq!(got.json()["created_by"], "admin");

    for bad in [
        json!({ "for": "forever" }),
        json!({ "for": "1h", "colour": "red" }),
    ] {
        let got = call(
            &h,
            Method::POST,
            "/admin/silences",
            Some(ADMIN),
            &bad.to_string(),
        )
        .await;
        assert_eq!(got.status, StatusCode::BAD_REQUEST, "{bad}: {}", got.body);
    }

    // A change of the alerts restarts the alert manager: the silence stays.
    let text = std::fs::read_to_string(h.dir.join("resilience.yml")).unwrap();
    support::write(
        &h.dir,
        "resilience.yml",
        &text.replace("notify: [log] }", "notify: [log], severity: critical }"),
    );
    let reloaded = h.server.reload("test").await;
    assert!(reloaded.is_ok(), "{reloaded:?}");

    let got = call(&h, Method::GET, "/admin/silences", Some(READER), "").await;
    let silences = got.json()["silences"].clone();
    assert_eq!(silences.as_array().unwrap().len(), 1, "{silences}");
    assert_eq!(silences[0]["state"], "active");

    // The alert manager in force mutes the breaker that opens; once the silence is
    // expired, the alert goes out.
    let sent = || async { h.server.alert_channels().await["log"].sent };
    let got = call(
        &h,
        Method::POST,
        "/admin/models/gpt-4o/force-open",
        Some(ADMIN),
        "",
    )
    .await;
    assert_eq!(got.status, StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(sent().await, 0, "silenced");
    // Muted, yet firing: the status (and the dashboard) shows it.
    let status = call(&h, Method::GET, "/admin/status", Some(READER), "")
        .await
        .json();
    let firing: Vec<(&str, &str)> = status["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (a["rule"].as_str().unwrap(), a["status"].as_str().unwrap()))
        .collect();
    assert_eq!(firing, [("model_down", "firing")], "{}", status["alerts"]);
    let path = format!("/admin/silences/{id}");
    let got = call(&h, Method::DELETE, &path, Some(ADMIN), "").await;
    assert_eq!(got.status, StatusCode::OK, "{}", got.body);
    assert_eq!(got.json()["state"], "expired");
    let mut told = 0;
    for _ in 0..100 {
        told = sent().await;
        if told > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(told, 1, "told once the silence ended");
    let got = call(&h, Method::DELETE, "/admin/silences/999", Some(ADMIN), "").await;
    assert_eq!(got.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_audit_log_is_read_back_last_lines_first_limited() {
    let h = harness("admin-audit", TOKENS).await;
    for _ in 0..3 {
        call(
            &h,
            Method::POST,
            "/admin/models/gpt-4o/drain",
            Some(ADMIN),
            "",
        )
        .await;
    }
    // The control events are recorded by a task of their own, a moment later.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let got = call(&h, Method::GET, "/admin/audit?limit=2", Some(READER), "").await;
    assert_eq!(got.status, StatusCode::OK, "{}", got.body);
    let entries = got.json()["entries"].clone();
    // The last two lines of the file, in the file's order.
    let file = std::fs::read_to_string(h.dir.join("audit.jsonl")).unwrap();
    let last: Vec<Value> = file
        .lines()
        .rev()
        .take(2)
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(
        entries.as_array().unwrap(),
        &[last[1].clone(), last[0].clone()]
    );
    let got = call(&h, Method::GET, "/admin/audit?limit=lots", Some(READER), "").await;
    assert_eq!(got.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn a_refused_silence_is_not_read_and_records_nothing_it_sent() {
    let h = harness("admin-silence-refused", TOKENS).await;
    let comment = "x".repeat(10_000);
    let body = json!({ "for": "1h", "comment": comment }).to_string();
    let got = call(&h, Method::POST, "/admin/silences", None, &body).await;
    assert_eq!(got.status, StatusCode::UNAUTHORIZED);
    let audit = std::fs::read_to_string(h.dir.join("audit.jsonl")).unwrap();
    assert!(audit.contains(r#""status":401"#), "{audit}");
    assert!(
        !audit.contains("xxxx"),
        "the refused body is not in the audit log"
    );
    // A body over the limit from an admin is refused, not read whole.
    let huge = json!({ "for": "1h", "comment": "y".repeat(64 * 1024) }).to_string();
    let got = call(&h, Method::POST, "/admin/silences", Some(ADMIN), &huge).await;
    assert_eq!(got.status, StatusCode::BAD_REQUEST, "{}", got.body);
}

#[tokio::test]
async fn an_incident_in_the_history_names_its_alert_and_counts_what_was_sent() {
    let h = harness("admin-incident-alert", TOKENS).await;
    let got = call(
        &h,
        Method::POST,
        "/admin/models/gpt-4o/force-open",
        Some(ADMIN),
        "",
    )
    .await;
    assert_eq!(got.status, StatusCode::OK);
    let mut sent = 0;
    for _ in 0..100 {
        sent = h.server.alert_channels().await["log"].sent;
        if sent > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(sent, 1, "the alert went out");
    h.server.gateway().flush_history().await;
    let history = h.server.gateway().history().unwrap();
    let incidents = history.incidents(0, u64::MAX / 2).await.unwrap();
    let seen: Vec<(&str, Option<&str>, Option<u64>)> = incidents
        .iter()
        .map(|i| (i.model.as_str(), i.rule.as_deref(), i.notifications))
        .collect();
    assert_eq!(seen, [("gpt-4o", Some("model_down"), Some(1))]);
}

#[tokio::test]
async fn chaos_is_set_switched_and_read_through_the_admin_api() {
    let h = harness("admin-chaos", TOKENS).await;
    let answered_by = || async {
        h.chat(&ask("council", false), None)
            .await
            .header("x-hive-model")
            .map(str::to_owned)
    };
    assert_eq!(answered_by().await.as_deref(), Some("gpt-4o"));
    let rules = json!({
        "enabled": true,
        "seed": 7,
        "rules": [{ "model": "gpt-4o", "fault": { "kind": "status", "status": 503 } }],
    })
    .to_string();
    let refused = call(&h, Method::PUT, "/admin/chaos", Some(READER), &rules).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    let got = call(&h, Method::PUT, "/admin/chaos", Some(ADMIN), &rules).await;
    assert_eq!(got.status, StatusCode::OK, "{}", got.body);
    assert_eq!(got.json()["enabled"], true);
    // gpt-4o's injected 503 is met by its real layers: the route falls back.
    assert_eq!(answered_by().await.as_deref(), Some("claude-4-sonnet"));
    assert!(
        h.sim.attempts_of("gpt-4o").len() == 1,
        "chaos answered, not the provider"
    );
    let status = call(&h, Method::GET, "/admin/chaos", Some(READER), "")
        .await
        .json();
    assert_eq!(status["stats"][0]["injected"], 1, "{status}");

    let got = call(&h, Method::POST, "/admin/chaos/disable", Some(ADMIN), "").await;
    assert_eq!(got.json()["enabled"], false);
    assert_eq!(answered_by().await.as_deref(), Some("gpt-4o"));

    let bad = json!({ "rules": [{ "fault": { "kind": "status", "status": 200 } }] }).to_string();
    let got = call(&h, Method::PUT, "/admin/chaos", Some(ADMIN), &bad).await;
    assert_eq!(got.status, StatusCode::BAD_REQUEST, "{}", got.body);
    let audit = std::fs::read_to_string(h.dir.join("audit.jsonl")).unwrap();
    assert!(audit.contains("chaos_rules") && audit.contains("chaos_disable"));
}

#[tokio::test]
async fn a_flood_of_refusals_is_audited_ten_at_once_then_counted() {
    let h = harness("admin-refusal-flood", TOKENS).await;
    for _ in 0..30 {
        let got = call(&h, Method::GET, "/admin/status", Some("wrong"), "").await;
        assert_eq!(got.status, StatusCode::UNAUTHORIZED);
    }
    let refused = |h: &Harness| {
        admin_audit(h)
            .into_iter()
            .filter(|e| e["changes"]["status"] == 401)
            .collect::<Vec<_>>()
    };
    let lines = refused(&h);
    assert_eq!(lines.len(), hive_gateway::admin::REFUSALS_BURST as usize);
    assert!(
        lines
            .iter()
            .all(|e| e["changes"].get("suppressed").is_none())
    );
    // After one refill, the next refusal is audited with the count of those that were not.
    tokio::time::sleep(hive_gateway::admin::REFUSAL_EVERY + Duration::from_millis(200)).await;
    let got = call(&h, Method::GET, "/admin/status", Some("wrong"), "").await;
    assert_eq!(got.status, StatusCode::UNAUTHORIZED);
    let lines = refused(&h);
    assert_eq!(lines.len(), 11);
    assert_eq!(lines[10]["changes"]["suppressed"], 20, "{}", lines[10]);
    // Every refusal still got its 401, and an admin's actions are audited as ever.
    let got = call(
        &h,
        Method::POST,
        "/admin/models/gpt-4o/drain",
        Some(ADMIN),
        "",
    )
    .await;
    assert_eq!(got.status, StatusCode::OK, "{}", got.body);
    assert!(
        admin_audit(&h)
            .iter()
            .any(|e| e["changes"]["status"] == 200)
    );
}
