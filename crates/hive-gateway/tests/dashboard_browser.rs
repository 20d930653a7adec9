//! The dashboard in a real browser: Debian's Chromium, headless, driven over WebDriver
//! (chromedriver, spoken to in plain HTTP). The page is opened while the simulator takes a
//! model down; the test sees the breaker open on the page, types the admin token, presses
//! the model's recovery button and sees the result.
//!
//! Needs `chromium` and `chromium-driver` (`.ci/run` installs them). With
//! `HIVE_SCREENSHOTS=DIR` set, it saves the page as `DIR/dashboard.png`.

#![allow(clippy::unwrap_used)]

mod support;

use std::{
    process::{Child, Command, Stdio},
    time::Duration,
};

use base64::Engine;
use bytes::Bytes;
use hive_sim::{Behaviour, Script};
use http::{Method, Request};
use http_body_util::{BodyExt, Full};
use hyper_util::{
    client::legacy::{Client, connect::HttpConnector},
    rt::TokioExecutor,
};
use serde_json::{Value, json};
use support::{Harness, TWO_MODELS as MODELS, ask};
use tokio::time::Instant;

const ADMIN: &str = "admin-token-0123456789abcdef";

const RESILIENCE: &str = "admin:\n  token: { env: HIVE_ADMIN_TOKEN }\n  public_read: true\ndefaults:\n  retry:\n    max_attempts: 1\n  breaker:\n    consecutive_failures: 3\n    open_duration: 60s\n  health:\n    probe: none\n";

/// A chromedriver on a free port, stopped on drop.
struct Driver {
    process: Child,
    url: String,
    http: Client<HttpConnector, Full<Bytes>>,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

impl Driver {
    async fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let process = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "chromedriver could not start ({e}): apt-get install chromium chromium-driver"
                )
            });
        let driver = Self {
            process,
            url: format!("http://127.0.0.1:{port}"),
            http: Client::builder(TokioExecutor::new()).build_http(),
        };
        for _ in 0..100 {
            let ready = driver.call(Method::GET, "/status", None).await;
            if ready.is_ok_and(|v| v["value"]["ready"] == true) {
                return driver;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("chromedriver did not get ready in 10 s");
    }

    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Result<Value, String> {
        let body = body.map_or_else(Bytes::new, |b| Bytes::from(b.to_string()));
        let request = Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.url))
            .header("content-type", "application/json")
            .body(Full::from(body))
            .unwrap();
        let response = self
            .http
            .request(request)
            .await
            .map_err(|e| e.to_string())?;
        let status = response.status();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let value: Value = serde_json::from_slice(&bytes).map_err(|e| e.to_string())?;
        if status.is_success() {
            Ok(value)
        } else {
            Err(format!("{status}: {value}"))
        }
    }

    async fn session(&self) -> Session<'_> {
        let capabilities = json!({ "capabilities": { "alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync",
                    "--disable-dev-shm-usage", "--window-size=1400,1100"
                ]
            }
        }}});
        let created = self
            .call(Method::POST, "/session", Some(capabilities))
            .await
            .unwrap();
        Session {
            driver: self,
            id: created["value"]["sessionId"].as_str().unwrap().to_owned(),
        }
    }
}

/// One browser window.
struct Session<'a> {
    driver: &'a Driver,
    id: String,
}

impl Session<'_> {
    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Result<Value, String> {
        let path = format!("/session/{}{path}", self.id);
        self.driver.call(method, &path, body).await
    }

    async fn open(&self, url: &str) {
        self.call(Method::POST, "/url", Some(json!({ "url": url })))
            .await
            .unwrap();
    }

    /// The element `css` selects, if the page has it now.
    async fn find(&self, css: &str) -> Option<String> {
        let found = self
            .call(
                Method::POST,
                "/element",
                Some(json!({ "using": "css selector", "value": css })),
            )
            .await
            .ok()?;
        let element = found["value"].as_object()?.values().next()?;
        element.as_str().map(str::to_owned)
    }

    /// Waits (at most `limit`) for `css` to select an element; its id.
    async fn wait_for(&self, css: &str, limit: Duration) -> String {
        let until = Instant::now() + limit;
        loop {
            if let Some(element) = self.find(css).await {
                return element;
            }
            assert!(
                Instant::now() < until,
                "`{css}` did not show within {limit:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn text(&self, element: &str) -> String {
        let got = self
            .call(Method::GET, &format!("/element/{element}/text"), None)
            .await
            .unwrap();
        got["value"].as_str().unwrap_or_default().to_owned()
    }

    async fn click(&self, element: &str) {
        self.call(
            Method::POST,
            &format!("/element/{element}/click"),
            Some(json!({})),
        )
        .await
        .unwrap();
    }

    async fn type_in(&self, element: &str, text: &str) {
        self.call(
            Method::POST,
            &format!("/element/{element}/value"),
            Some(json!({ "text": text })),
        )
        .await
        .unwrap();
    }

    async fn screenshot(&self) -> Vec<u8> {
        let got = self.call(Method::GET, "/screenshot", None).await.unwrap();
        base64::engine::general_purpose::STANDARD
            .decode(got["value"].as_str().unwrap())
            .unwrap()
    }

    async fn errors(&self) -> Vec<String> {
        let logged = self
            .call(
                Method::POST,
                "/execute/sync",
                Some(json!({ "script": "return window.__hiveErrors || [];", "args": [] })),
            )
            .await
            .unwrap();
        logged["value"]
            .as_array()
            .map(|a| a.iter().map(|e| e.to_string()).collect())
            .unwrap_or_default()
    }

    async fn close(self) {
        let _ = self.call(Method::DELETE, "", None).await;
    }
}

#[tokio::test]
async fn an_operator_sees_a_model_go_down_live_and_recovers_it_by_hand() {
    // gpt-4o answers for 3 s, then is down for good.
    let gpt = Script::new().between(
        Duration::from_secs(3),
        Duration::from_secs(3600),
        Behaviour::Status(503),
    );
    let h = Harness::start(
        "dashboard-browser",
        vec![("gpt-4o", gpt), ("claude-4-sonnet", Script::new())],
        RESILIENCE,
        MODELS,
        &[("HIVE_ADMIN_TOKEN", ADMIN)],
    )
    .await;
    let driver = Driver::start().await;
    let browser = driver.session().await;
    // Record the page's own errors, so that a script error fails the test.
    browser.open(&h.url("/dashboard")).await;
    browser
        .wait_for(
            r#"section.model[data-model="gpt-4o"][data-breaker="closed"]"#,
            Duration::from_secs(10),
        )
        .await;
    let live = browser
        .wait_for("#connection", Duration::from_secs(5))
        .await;
    let until = Instant::now() + Duration::from_secs(5);
    while browser.text(&live).await != "live" {
        assert!(Instant::now() < until, "the page never said it was live");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Traffic through the route; at 3 s gpt-4o goes down and its breaker opens.
    let traffic = {
        let url = h.url("/v1/chat/completions");
        tokio::spawn(async move {
            let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
            loop {
                let request = Request::post(url.as_str())
                    .header("content-type", "application/json")
                    .body(Full::from(ask("council", false)))
                    .unwrap();
                let _ = client.request(request).await;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    };
    browser
        .wait_for(
            r#"section.model[data-model="gpt-4o"][data-breaker="open"]"#,
            Duration::from_secs(10),
        )
        .await;
    traffic.abort();
    let opened_at = Instant::now();

    // The operator types the token and forces the breaker closed.
    let token = browser.wait_for("#token", Duration::from_secs(2)).await;
    browser.type_in(&token, ADMIN).await;
    let save = browser
        .wait_for("#token-save", Duration::from_secs(2))
        .await;
    browser.click(&save).await;
    let button = browser
        .wait_for(
            r#"button[data-action="force-close"][data-model="gpt-4o"]"#,
            Duration::from_secs(2),
        )
        .await;
    browser.click(&button).await;
    browser
        .wait_for(
            r#"section.model[data-model="gpt-4o"][data-breaker="closed"]"#,
            Duration::from_secs(3),
        )
        .await;
    assert!(opened_at.elapsed() < Duration::from_secs(5));
    let result = browser
        .wait_for(r#"[data-result-for="gpt-4o"]"#, Duration::from_secs(2))
        .await;
    let said = browser.text(&result).await;
    assert!(said.contains("closed"), "the button's result: {said:?}");
    let breaker = h
        .server
        .gateway()
        .fleet()
        .manager()
        .control("gpt-4o")
        .unwrap()
        .breaker()
        .state();
    assert_eq!(
        breaker.as_str(),
        "closed",
        "the gateway did it, not only the page"
    );
    let audit = std::fs::read_to_string(h.dir.join("audit.jsonl")).unwrap();
    assert!(
        audit.contains(r#""action":"force-close""#) && audit.contains(r#""actor":"admin""#),
        "{audit}"
    );

    // Chaos set through the admin API shows on the page; its switch turns it off.
    let rules = json!({
        "enabled": true,
        "rules": [{ "model": "claude-4-sonnet", "fault": { "kind": "status", "status": 503 }, "rate": 0.0 }],
    });
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let set = Request::put(h.url("/admin/chaos"))
        .header("authorization", format!("Bearer {ADMIN}"))
        .body(Full::from(rules.to_string()))
        .unwrap();
    assert!(client.request(set).await.unwrap().status().is_success());
    browser
        .wait_for(
            r#"#stat-chaos[data-enabled="true"]"#,
            Duration::from_secs(3),
        )
        .await;
    let switch = browser
        .wait_for("#chaos-switch", Duration::from_secs(1))
        .await;
    browser.click(&switch).await;
    browser
        .wait_for(
            r#"#stat-chaos[data-enabled="false"]"#,
            Duration::from_secs(3),
        )
        .await;
    assert!(!h.server.gateway().fleet().chaos().is_enabled());

    if let Some(dir) = std::env::var_os("HIVE_SCREENSHOTS") {
        let dir = std::path::PathBuf::from(dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("dashboard.png"), browser.screenshot().await).unwrap();
    }
    let errors = browser.errors().await;
    assert!(errors.is_empty(), "the page's script failed: {errors:?}");
    browser.close().await;
}
