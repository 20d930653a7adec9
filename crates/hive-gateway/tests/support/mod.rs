//! A gateway over a simulated provider, both on loopback, and a raw HTTP client that shows
//! every status and header.

#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::{
    path::{Path, PathBuf},
    sync::{
        Arc,
        atomic::{AtomicU32, Ordering},
    },
};

use bytes::Bytes;
use hive_config::Environment;
use hive_gateway::server::{ConfigSource, Options, Server};
use hive_sim::{Script, Simulator};
use http::{HeaderMap, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::{client::legacy::Client, rt::TokioExecutor};
use serde_json::Value;

/// A fresh directory for one test's config files.
pub fn config_dir(test: &str) -> PathBuf {
    static COUNT: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "hive-gateway-{test}-{}-{}",
        std::process::id(),
        COUNT.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Writes a config file.
pub fn write(dir: &Path, file: &str, text: &str) {
    std::fs::write(dir.join(file), text).unwrap();
}

/// A gateway over a simulator, with the test's config.
pub struct Harness {
    pub sim: Simulator,
    pub server: Arc<Server>,
    pub dir: PathBuf,
    http: HttpClient,
}

/// An answer as the client saw it.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Answer {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }

    /// The text of a streamed answer that may end with an in-band error, and whether it
    /// ended with `[DONE]`.
    pub fn streamed_text_lenient(&self) -> (String, bool) {
        let mut text = String::new();
        let mut done = false;
        for line in self.body.lines() {
            match line.strip_prefix("data: ") {
                Some("[DONE]") => done = true,
                Some(data) => {
                    let event: Value = serde_json::from_str(data).unwrap();
                    if let Some(content) = event["choices"][0]["delta"]["content"].as_str() {
                        text.push_str(content);
                    }
                }
                None => {}
            }
        }
        (text, done)
    }

    /// The text of a streamed answer (no in-band error allowed), and whether it ended with
    /// `[DONE]`.
    pub fn streamed_text(&self) -> (String, bool) {
        let mut text = String::new();
        let mut done = false;
        for line in self.body.lines() {
            let Some(data) = line.strip_prefix("data: ") else {
                continue;
            };
            if data == "[DONE]" {
                done = true;
                continue;
            }
            let event: Value = serde_json::from_str(data).unwrap();
            assert!(event.get("error").is_none(), "an in-band error: {data}");
            if let Some(content) = event["choices"][0]["delta"]["content"].as_str() {
                text.push_str(content);
            }
        }
        (text, done)
    }
}

impl Harness {
    /// Starts the simulator with `models`, writes the two files (`{sim}` in `models_yaml`
    /// becomes the simulator's URL) and starts a gateway on them with `env`.
    pub async fn start(
        test: &str,
        models: Vec<(&str, Script)>,
        resilience_yaml: &str,
        models_yaml: &str,
        env: &[(&str, &str)],
    ) -> Self {
        Self::start_with(test, models, resilience_yaml, models_yaml, env, |_| {}).await
    }

    /// [`start`](Self::start), with the options `tune` changes.
    pub async fn start_with(
        test: &str,
        models: Vec<(&str, Script)>,
        resilience_yaml: &str,
        models_yaml: &str,
        env: &[(&str, &str)],
        tune: impl FnOnce(&mut Options),
    ) -> Self {
        let sim = Simulator::start(models).await.unwrap();
        let dir = config_dir(test);
        write(&dir, "resilience.yml", resilience_yaml);
        write(
            &dir,
            "models-resilience.yml",
            &models_yaml.replace("{sim}", &sim.base_url()),
        );
        let mut options = Options {
            listen: Some("127.0.0.1:0".parse().unwrap()),
            env: Environment::vars(env.iter().map(|(k, v)| (k.to_string(), v.to_string()))),
            seed: Some(7),
            watch: false,
            ..Options::default()
        };
        tune(&mut options);
        let server = Server::start(ConfigSource::Dir(dir.clone()), options)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        Self {
            sim,
            server,
            dir,
            http: http_client(),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.server.base_url())
    }

    /// Sends a request and reads the whole answer.
    pub async fn send(&self, request: Request<Full<Bytes>>) -> Answer {
        send_with(&self.http, request).await
    }

    /// `POST /v1/chat/completions` with `body` (and `key` as bearer, if given).
    pub async fn chat(&self, body: &str, key: Option<&str>) -> Answer {
        chat_at(&self.http, &self.server.base_url(), body, key).await
    }

    pub async fn get(&self, path: &str) -> Answer {
        self.send(Request::get(self.url(path)).body(Full::default()).unwrap())
            .await
    }
}

/// A plain HTTP/1 client.
pub type HttpClient = Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>;

/// A plain HTTP/1 client.
pub fn http_client() -> HttpClient {
    Client::builder(TokioExecutor::new()).build_http()
}

/// Sends a request with `http` and reads the whole answer.
pub async fn send_with(http: &HttpClient, request: Request<Full<Bytes>>) -> Answer {
    let response = http.request(request).await.unwrap();
    let (parts, body) = response.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    Answer {
        status: parts.status,
        headers: parts.headers,
        body: String::from_utf8(body.to_vec()).unwrap(),
    }
}

/// `POST /v1/chat/completions` to the gateway at `base_url` with `body` (and `key` as
/// bearer, if given).
pub async fn chat_at(http: &HttpClient, base_url: &str, body: &str, key: Option<&str>) -> Answer {
    let mut request = Request::post(format!("{base_url}/v1/chat/completions"))
        .header("content-type", "application/json");
    if let Some(key) = key {
        request = request.header("authorization", format!("Bearer {key}"));
    }
    send_with(http, request.body(Full::from(body.to_owned())).unwrap()).await
}

/// Two models of one simulator (`{sim}` stands for its URL) and the route `council` over
/// them, the primary first.
pub const TWO_MODELS: &str = r#"
models:
  - id: gpt-4o
    base_url: "{sim}"
  - id: claude-4-sonnet
    base_url: "{sim}"
routes:
  - name: council
    models: [gpt-4o, claude-4-sonnet]
"#;

/// A chat request body for `model`.
pub fn ask(model: &str, stream: bool) -> String {
    serde_json::json!({
        "model": model,
        "messages": [{"role": "user", "content": "Vote on BIP-01"}],
        "stream": stream,
    })
    .to_string()
}
