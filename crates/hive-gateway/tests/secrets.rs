//! No key ever shows: every response body and every log line (at trace level) of a run
//! through the gateway's paths — answers, streams, every error, a reload with a rotated key,
//! a rejected reload — is searched for the test's keys.

#![allow(clippy::unwrap_used)]

mod support;

use std::{
    io::Write,
    sync::{Arc, RwLock},
};

use hive_sim::{Behaviour, RetryAfter, Script};
use support::{Harness, ask, write};
use tracing_subscriber::{fmt::MakeWriter, layer::SubscriberExt};

const CLIENT_KEY: &str = "hive-test-client-key-5b1d9e";
const UPSTREAM_KEY: &str = "sk-test-upstream-key-83c2f0";
const HEADER_SECRET: &str = "proj-test-secret-header-77aa01";

/// Every log line, kept.
#[derive(Clone, Default)]
struct Captured(Arc<RwLock<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.write().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Captured {
    type Writer = Self;

    fn make_writer(&'a self) -> Self {
        self.clone()
    }
}

const RESILIENCE: &str = r#"
server:
  api_keys: [{ env: CLIENT_KEY }]
defaults:
  retry: { max_attempts: 1 }
  health: { probe: none }
alerts:
  rules: []
"#;

const MODELS: &str = r#"
models:
  - id: gpt-4o
    base_url: "{sim}"
    api_key: { env: UPSTREAM_KEY }
    secret_headers:
      OpenAI-Project: { env: HEADER_SECRET }
  - id: claude-4-sonnet
    base_url: "{sim}"
    api_key: { env: UPSTREAM_KEY }
routes:
  - name: council
    models: [gpt-4o, claude-4-sonnet]
"#;

// One thread: every task of the run logs to this test's subscriber.
#[tokio::test(flavor = "current_thread")]
async fn no_key_appears_in_any_body_or_log_line() {
    let logs = Captured::default();
    let subscriber = tracing_subscriber::registry().with(
        tracing_subscriber::fmt::layer()
            .with_writer(logs.clone())
            .with_ansi(false),
    );
    let _guard = tracing::subscriber::set_default(subscriber);

    let h = Harness::start(
        "secrets-logs",
        vec![
            (
                "gpt-4o",
                Script::new().until_call(2, Behaviour::Status(401)),
            ),
            (
                "claude-4-sonnet",
                Script::new()
                    .until_call(1, Behaviour::RateLimited(Some(RetryAfter::Seconds(2))))
                    .until_call(3, Behaviour::StreamCut { after_tokens: 2 }),
            ),
        ],
        RESILIENCE,
        MODELS,
        &[
            ("CLIENT_KEY", CLIENT_KEY),
            ("UPSTREAM_KEY", UPSTREAM_KEY),
            ("HEADER_SECRET", HEADER_SECRET),
        ],
    )
    .await;
    let mut bodies = Vec::new();
    for (body, key) in [
        (ask("council", false), Some(CLIENT_KEY)),
        (ask("council", true), Some(CLIENT_KEY)),
        (ask("council", true), Some(CLIENT_KEY)),
        (ask("council", false), Some(UPSTREAM_KEY)),
        (ask("council", false), None),
        (ask("nowhere", false), Some(CLIENT_KEY)),
        ("{broken".to_owned(), Some(CLIENT_KEY)),
    ] {
        let answer = h.chat(&body, key).await;
        bodies.push(format!("{:?} {}", answer.headers, answer.body));
    }
    bodies.push(h.get("/readyz").await.body);
    bodies.push(h.get("/metrics").await.body);
    // A reload that rotates nothing but breaks the file, then one that is fine.
    write(
        &h.dir,
        "resilience.yml",
        &format!("{RESILIENCE}\nbogus: {UPSTREAM_KEY}\n"),
    );
    let refused = h.server.reload("test").await.unwrap_err();
    bodies.push(refused.to_string());
    write(&h.dir, "resilience.yml", RESILIENCE);
    h.server.reload("test").await.unwrap();
    bodies.push(std::fs::read_to_string(h.dir.join("audit.jsonl")).unwrap());
    bodies.push(format!("{:?}", h.server));
    h.server.shutdown().await;

    let logs = String::from_utf8(logs.0.read().unwrap().clone()).unwrap();
    assert!(logs.contains("chat completion"), "the run was logged");
    for secret in [CLIENT_KEY, UPSTREAM_KEY, HEADER_SECRET] {
        for body in &bodies {
            assert!(!body.contains(secret), "a body shows {secret}: {body}");
        }
        assert!(!logs.contains(secret), "the logs show {secret}");
    }
}
