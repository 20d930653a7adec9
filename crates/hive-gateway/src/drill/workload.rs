//! The drill's clients: OpenAI-wire requests to the gateway's route over real HTTP, each
//! checked to its last byte, sent at a fixed rate (open loop) or by a fixed number of
//! clients (closed loop).

use std::{
    future::Future,
    sync::{
        Arc, RwLock,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::Duration,
};

use bytes::Bytes;
use hive_core::SharedRandom;
use http_body_util::{BodyExt, Full};
use hyper_util::{
    client::legacy::{Client, connect::HttpConnector},
    rt::TokioExecutor,
};
use serde::Serialize;
use tokio::{task::JoinSet, time::Instant};

use super::scenario::{ROUTE, Workload};

/// How one request ended, as its client saw it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "end", rename_all = "snake_case")]
pub enum End {
    /// A whole, intact answer from a model, after this many attempts.
    Answered {
        /// The model that answered.
        model: &'static str,
        /// Attempts the gateway made (`x-hive-attempts`).
        attempts: u32,
    },
    /// The route's degraded answer (`x-hive-degraded`).
    Degraded,
    /// An error status, a broken or cut stream, or an answer that was not the model's.
    Failed {
        /// What went wrong, in a few words (`HTTP 503`, `stream error`, `not intact`).
        why: String,
    },
    /// Nothing within the workload's `hung_after`.
    Hung,
}

/// One request of the drill.
#[derive(Clone, Debug, Serialize)]
pub struct Sent {
    /// When it was due to leave, from the start of the run (open loop: its place in the
    /// schedule; closed loop: when it left).
    pub at: Duration,
    /// From `at` to its end (open loop: waiting to leave included).
    pub latency: Duration,
    /// Whether it asked for a stream.
    pub stream: bool,
    /// How it ended.
    pub end: End,
}

/// Requests in flight and done, for the progress line.
#[derive(Debug, Default)]
pub(super) struct Progress {
    /// Sent so far.
    pub(super) sent: AtomicU64,
    /// Ended well (answered) so far.
    pub(super) answered: AtomicU64,
    /// Ended otherwise so far.
    pub(super) failed: AtomicU64,
    /// The longest a request left after its scheduled time, in microseconds (open loop):
    /// the load generator falling behind.
    pub(super) worst_lag_us: AtomicU64,
}

/// The HTTP client of the drill.
type HttpClient = Client<HttpConnector, Full<Bytes>>;

fn http_client() -> HttpClient {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(4096)
        .build(connector)
}

/// Runs `workload` against `base_url` for `duration` from `start`, or until `stop` is set;
/// every request sent is in the result, each with its end (the wait for the last ones is
/// bounded by `hung_after`).
pub(super) async fn drive(
    base_url: &str,
    workload: &Workload,
    duration: Duration,
    seed: u64,
    start: Instant,
    progress: Arc<Progress>,
    stop: Arc<AtomicBool>,
) -> Vec<Sent> {
    // Room for every record from the start (open loop: the schedule says how many), so
    // that the records grow no allocation while the run's memory is measured.
    let expected = workload.rate.map_or(0, |rate| {
        (rate * duration.as_secs_f64() * 1.05) as usize + 64
    });
    let sent: Arc<RwLock<Vec<Sent>>> = Arc::new(RwLock::new(Vec::with_capacity(expected)));
    let asker = Asker {
        client: http_client(),
        url: Arc::from(format!("{base_url}/v1/chat/completions")),
        sent: Arc::clone(&sent),
        progress,
        random: SharedRandom::new(Some(seed)),
        streams: workload.streams,
        hung_after: workload.hung_after,
        start,
    };
    let mut tasks = JoinSet::new();
    let end = start + duration;
    match (workload.rate, workload.concurrency) {
        (Some(rate), _) => {
            // Each request leaves at its time in the schedule, whatever the others do.
            let period = Duration::from_secs_f64(1.0 / rate);
            let mut n = 0u64;
            loop {
                let due = start + period.mul_f64(n as f64);
                if due >= end || stop.load(Ordering::Relaxed) {
                    break;
                }
                tokio::time::sleep_until(due).await;
                tasks.spawn(asker.one(n, due));
                n += 1;
                // Finished tasks are reaped as the run goes, so the set stays small.
                while tasks.try_join_next().is_some() {}
            }
        }
        (None, clients) => {
            let clients = u64::from(clients.unwrap_or(1));
            let next = Arc::new(AtomicU64::new(0));
            let mut workers = JoinSet::new();
            for _ in 0..clients {
                let (next, stop, asker) = (Arc::clone(&next), Arc::clone(&stop), asker.clone());
                workers.spawn(async move {
                    while Instant::now() < end && !stop.load(Ordering::Relaxed) {
                        let n = next.fetch_add(1, Ordering::Relaxed);
                        asker.one(n, Instant::now()).await;
                    }
                });
            }
            while workers.join_next().await.is_some() {}
        }
    }
    while tasks.join_next().await.is_some() {}
    drop(asker);
    let mut sent = std::mem::take(&mut *sent.write().unwrap_or_else(|p| p.into_inner()));
    sent.sort_by_key(|s| s.at);
    sent
}

/// Sends requests and keeps how each ended.
#[derive(Clone)]
struct Asker {
    client: HttpClient,
    url: Arc<str>,
    sent: Arc<RwLock<Vec<Sent>>>,
    progress: Arc<Progress>,
    random: SharedRandom,
    streams: f64,
    hung_after: Duration,
    start: Instant,
}

impl Asker {
    /// Request `n`, due at `due`: sent, read to its end, recorded.
    fn one(&self, n: u64, due: Instant) -> impl Future<Output = ()> + Send + 'static {
        let this = self.clone();
        let stream = self.random.unit() < self.streams;
        async move {
            this.progress.sent.fetch_add(1, Ordering::Relaxed);
            let lag = u64::try_from(due.elapsed().as_micros()).unwrap_or(u64::MAX);
            this.progress.worst_lag_us.fetch_max(lag, Ordering::Relaxed);
            let asked = ask(&this.client, &this.url, n, stream);
            let end = tokio::time::timeout_at(due + this.hung_after, asked)
                .await
                .unwrap_or(End::Hung);
            let counter = if matches!(end, End::Answered { .. }) {
                &this.progress.answered
            } else {
                &this.progress.failed
            };
            counter.fetch_add(1, Ordering::Relaxed);
            let record = Sent {
                at: due.saturating_duration_since(this.start),
                latency: due.elapsed(),
                stream,
                end,
            };
            this.sent
                .write()
                .unwrap_or_else(|p| p.into_inner())
                .push(record);
        }
    }
}

/// One request, read to its end and checked: a whole answer must be the simulator's text,
/// a stream must carry it in full and end with `[DONE]`.
async fn ask(client: &HttpClient, url: &str, n: u64, stream: bool) -> End {
    let body = serde_json::json!({
        "model": ROUTE,
        "messages": [{ "role": "user", "content": format!("Review proposal BIP-{n:05} and vote.") }],
        "stream": stream,
    });
    let request = match http::Request::post(url)
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
    {
        Ok(request) => request,
        Err(e) => return failed(format!("request: {e}")),
    };
    let response = match client.request(request).await {
        Ok(response) => response,
        Err(e) => return failed(format!("connection: {e}")),
    };
    let status = response.status();
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let degraded = header("x-hive-degraded").is_some();
    let model = super::scenario::model_name(&header("x-hive-model").unwrap_or_default());
    let attempts = header("x-hive-attempts")
        .and_then(|a| a.parse().ok())
        .unwrap_or(1);
    let body = match response.into_body().collect().await {
        Ok(body) => body.to_bytes(),
        Err(e) => return failed(format!("body: {e}")),
    };
    if !status.is_success() {
        return failed(format!("HTTP {}", status.as_u16()));
    }
    if degraded {
        return End::Degraded;
    }
    let text = if stream {
        streamed_text(&body)
    } else {
        whole_text(&body)
    };
    match text {
        Ok(text) if text == hive_sim::ANSWER => End::Answered { model, attempts },
        Ok(_) => failed("not intact".to_owned()),
        Err(why) => failed(why.to_owned()),
    }
}

fn failed(why: String) -> End {
    End::Failed { why }
}

fn whole_text(body: &[u8]) -> Result<String, &'static str> {
    let answer: serde_json::Value = serde_json::from_slice(body).map_err(|_| "malformed")?;
    answer["choices"][0]["message"]["content"]
        .as_str()
        .map(str::to_owned)
        .ok_or("no answer")
}

fn streamed_text(body: &[u8]) -> Result<String, &'static str> {
    let body = std::str::from_utf8(body).map_err(|_| "malformed")?;
    let mut text = String::new();
    let mut done = false;
    for line in body.lines() {
        let Some(data) = line.strip_prefix("data:") else {
            continue;
        };
        let data = data.trim();
        if data == "[DONE]" {
            done = true;
            continue;
        }
        let chunk: serde_json::Value = serde_json::from_str(data).map_err(|_| "malformed")?;
        if chunk.get("error").is_some() {
            return Err("stream error");
        }
        if let Some(choices) = chunk["choices"].as_array() {
            for choice in choices {
                text.push_str(choice["delta"]["content"].as_str().unwrap_or(""));
            }
        }
    }
    if done { Ok(text) } else { Err("no [DONE]") }
}
