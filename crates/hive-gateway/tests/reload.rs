//! Reloading the config while serving: what did not change keeps its state, an invalid
//! config is refused whole, the audit log records both, a file change is noticed; and the
//! `hive check-config` command.

#![allow(clippy::unwrap_used)]

mod support;

use std::{process::Command, time::Duration};

use hive_config::{AuditLog, CONFIG_CHANGE, CONFIG_REJECTED};
use hive_core::CircuitState;
use hive_gateway::server::{RECOVERY_ACTION, ReloadError};
use hive_sim::{ANSWER, Script};
use http::StatusCode;
use support::{Harness, ask, write};

const RESILIENCE: &str = r#"
defaults:
  retry:
    max_attempts: 1
  health:
    probe: none
alerts:
  rules: []
"#;

fn models(primary_attempts: u32, route_models: &str) -> String {
    format!(
        r#"
models:
  - id: gpt-4o
    base_url: "{{sim}}"
    retry:
      max_attempts: {primary_attempts}
  - id: claude-4-sonnet
    base_url: "{{sim}}"
routes:
  - name: council
    models: [{route_models}]
"#
    )
}

async fn harness(test: &str) -> Harness {
    Harness::start(
        test,
        vec![
            ("gpt-4o", Script::new()),
            ("claude-4-sonnet", Script::new()),
        ],
        RESILIENCE,
        &models(1, "gpt-4o, claude-4-sonnet"),
        &[],
    )
    .await
}

fn breaker(h: &Harness, model: &str) -> CircuitState {
    h.server
        .gateway()
        .fleet()
        .manager()
        .control(model)
        .unwrap()
        .breaker()
        .state()
}

fn rewrite_models(h: &Harness, text: &str) {
    write(
        &h.dir,
        "models-resilience.yml",
        &text.replace("{sim}", &h.sim.base_url()),
    );
}

#[tokio::test]
async fn models_that_did_not_change_keep_their_breakers_across_a_reload() {
    let h = harness("keep").await;
    let fleet = h.server.gateway().fleet();
    fleet.manager().control("gpt-4o").unwrap().force_open();
    fleet
        .manager()
        .control("claude-4-sonnet")
        .unwrap()
        .force_open();
    drop(fleet);

    // Only the route changes: both models keep their state.
    rewrite_models(&h, &models(1, "claude-4-sonnet, gpt-4o"));
    let reloaded = h.server.reload("test").await.unwrap();
    assert_eq!(reloaded.diff.routes_changed.len(), 1);
    assert!(!reloaded.needs_restart);
    assert_eq!(breaker(&h, "gpt-4o"), CircuitState::ForcedOpen);
    assert_eq!(breaker(&h, "claude-4-sonnet"), CircuitState::ForcedOpen);

    // gpt-4o's retry changes: a new stack (closed); claude keeps its own.
    rewrite_models(&h, &models(2, "claude-4-sonnet, gpt-4o"));
    let reloaded = h.server.reload("test").await.unwrap();
    assert_eq!(reloaded.diff.models_changed.len(), 1);
    assert_eq!(breaker(&h, "gpt-4o"), CircuitState::Closed);
    assert_eq!(breaker(&h, "claude-4-sonnet"), CircuitState::ForcedOpen);
    let answer = h.chat(&ask("council", false), None).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert_eq!(
        answer.header("x-hive-model"),
        Some("gpt-4o"),
        "claude is forced open"
    );

    // The operator's two controls are recorded too, by a task of their own: in any order
    // with the reloads, and maybe a moment later.
    let log = AuditLog::new(h.dir.join("audit.jsonl"));
    let (mut audit, mut controls) = (Vec::new(), Vec::new());
    for _ in 0..100 {
        audit = log.read().unwrap();
        controls = audit
            .iter()
            .filter(|e| e.action == RECOVERY_ACTION)
            .map(|e| format!("{} {}", e.actor, e.changes))
            .collect();
        if controls.len() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    controls.sort();
    assert_eq!(
        controls,
        [
            r#"operator {"action":"force_open","model":"claude-4-sonnet"}"#,
            r#"operator {"action":"force_open","model":"gpt-4o"}"#,
        ]
    );
    let audit: Vec<_> = audit
        .into_iter()
        .filter(|e| e.action == CONFIG_CHANGE)
        .collect();
    assert_eq!(audit.len(), 2);
    assert_eq!(audit[1].actor, "test");
    assert_eq!(
        audit[1].config_hash,
        Some(h.server.gateway().fleet().config().hash().to_string())
    );
}

#[tokio::test]
async fn an_invalid_config_is_refused_whole_and_the_old_one_keeps_serving() {
    let h = harness("invalid").await;
    let before = h.server.gateway().fleet().config().hash();
    write(
        &h.dir,
        "resilience.yml",
        "defaults:\n  breaker:\n    failure_rat: 50%\n",
    );
    let error = h.server.reload("test").await.unwrap_err();
    let ReloadError::Invalid(problems) = &error else {
        panic!("{error}")
    };
    assert_eq!(problems.len(), 1);
    let problem = problems.iter().next().unwrap();
    assert_eq!((problem.line, problem.column), (3, 5));
    assert!(error.to_string().contains("failure_rate"), "{error}");
    assert_eq!(h.server.gateway().fleet().config().hash(), before);
    let answer = h.chat(&ask("council", true), None).await;
    assert_eq!(answer.streamed_text(), (ANSWER.to_owned(), true));

    let audit = AuditLog::new(h.dir.join("audit.jsonl")).read().unwrap();
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0].action, CONFIG_REJECTED);
    assert!(
        audit[0].changes.to_string().contains("failure_rat"),
        "{:?}",
        audit[0].changes
    );
}

#[tokio::test]
async fn a_change_of_the_files_is_noticed_and_applied() {
    let h = Harness::start_with(
        "watch",
        vec![
            ("gpt-4o", Script::new()),
            ("claude-4-sonnet", Script::new()),
        ],
        RESILIENCE,
        &models(1, "gpt-4o, claude-4-sonnet"),
        &[],
        |options| options.watch = true,
    )
    .await;
    let watching = h.server.watch();
    // The watch is set up on its task: give it a moment.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let before = h.server.gateway().fleet().config().hash();
    rewrite_models(&h, &models(1, "claude-4-sonnet"));
    let mut changed = false;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        if h.server.gateway().fleet().config().hash() != before {
            changed = true;
            break;
        }
    }
    assert!(changed, "the new files were not applied within 5 s");
    let answer = h.chat(&ask("council", false), None).await;
    assert_eq!(answer.header("x-hive-model"), Some("claude-4-sonnet"));
    watching.abort();
}

#[tokio::test]
async fn a_shutdown_lets_a_request_under_way_finish() {
    let h = Harness::start(
        "shutdown",
        vec![(
            "gpt-4o",
            Script::new().latency(hive_sim::Latency::Fixed(Duration::from_millis(500))),
        )],
        "server:\n  shutdown_grace: 5s\ndefaults:\n  health:\n    probe: none\nalerts:\n  rules: []\n",
        "models:\n  - id: gpt-4o\n    base_url: \"{sim}\"\n",
        &[],
    )
    .await;
    let request = {
        let body = ask("gpt-4o", false);
        let url = h.url("/v1/chat/completions");
        tokio::spawn(async move {
            let client =
                hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                    .build_http();
            let request = http::Request::post(url)
                .header("content-type", "application/json")
                .body(http_body_util::Full::<bytes::Bytes>::from(body))
                .unwrap();
            client.request(request).await.map(|r| r.status())
        })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(h.server.shutdown().await, "finished within the grace");
    assert_eq!(request.await.unwrap().unwrap(), StatusCode::OK);
    assert!(
        tokio::net::TcpStream::connect(h.server.local_addr())
            .await
            .is_err(),
        "no longer listening"
    );
}

#[test]
fn check_config_names_the_line_of_a_typo_and_fails() {
    let dir = support::config_dir("check");
    write(
        &dir,
        "resilience.yml",
        "defaults:\n  retry:\n    max_atempts: 3\n",
    );
    let output = Command::new(env!("CARGO_BIN_EXE_hive"))
        .args(["check-config"])
        .arg(&dir)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let shown = String::from_utf8(output.stderr).unwrap();
    assert!(shown.contains("unknown key `max_atempts`"), "{shown}");
    assert!(shown.contains("resilience.yml:3:5"), "{shown}");
    assert!(shown.contains("did you mean `max_attempts`?"), "{shown}");

    write(
        &dir,
        "resilience.yml",
        "defaults:\n  retry:\n    max_attempts: 3\n",
    );
    let output = Command::new(env!("CARGO_BIN_EXE_hive"))
        .args(["check-config"])
        .arg(&dir)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{output:?}");
}

#[tokio::test]
async fn a_refused_reload_raises_an_alert_until_a_reload_is_accepted() {
    // The default rules, to the log: `config_rejected` among them.
    let resilience =
        "defaults:\n  health:\n    probe: none\nalerts:\n  channels:\n    log: { kind: log }\n";
    let h = Harness::start(
        "reload-alert",
        vec![("gpt-4o", Script::new())],
        resilience,
        "models:\n  - id: gpt-4o\n    base_url: \"{sim}\"\n",
        &[],
    )
    .await;
    let firing = |alerts: Vec<hive_monitor::alert::Alert>| {
        alerts
            .into_iter()
            .filter(|a| a.rule == "config_rejected")
            .map(|a| a.summary)
            .collect::<Vec<_>>()
    };
    write(
        &h.dir,
        "resilience.yml",
        "defaults:\n  retry:\n    max_attempts: 0\n",
    );
    h.server.reload("test").await.unwrap_err();
    let mut raised = Vec::new();
    for _ in 0..100 {
        raised = firing(h.server.alerts().await);
        if !raised.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let serving = h.server.gateway().fleet().config().hash();
    assert_eq!(raised.len(), 1);
    assert!(raised[0].contains("refused (1 problem)"), "{raised:?}");
    assert!(raised[0].contains(&serving.short()), "{raised:?} {serving}");

    write(&h.dir, "resilience.yml", resilience);
    write(
        &h.dir,
        "models-resilience.yml",
        &format!(
            "models:\n  - id: gpt-4o\n    base_url: \"{}\"\n    priority: 2\n",
            h.sim.base_url()
        ),
    );
    h.server.reload("test").await.unwrap();
    for _ in 0..100 {
        raised = firing(h.server.alerts().await);
        if raised.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(raised.is_empty(), "resolved: {raised:?}");
}
