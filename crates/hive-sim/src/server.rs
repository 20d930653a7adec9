//! The simulator's HTTP server on loopback.

use std::{
    collections::BTreeMap,
    fmt, io,
    net::SocketAddr,
    sync::{
        Arc, RwLock,
        atomic::{AtomicU8, AtomicU32, Ordering},
    },
    time::{Duration, SystemTime},
};

use bytes::Bytes;
use hive_core::SharedRandom;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Either, Full, Limited};
use hyper::body::Incoming;
use hyper_util::{
    rt::{TokioExecutor, TokioIo},
    server::conn::auto,
};
use tokio::{net::TcpListener, sync::Notify, task::JoinSet, time::Instant};

use crate::{
    Behaviour, Delivery, RetryAfter, Script,
    body::{ChannelBody, Piece, SimBody, Watched},
    delivery::Watch,
    wire::{self, ChatRequest},
};

/// The largest request body read.
const MAX_REQUEST: usize = 1 << 20;

/// One request the simulator received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attempt {
    /// The model asked for (empty for `/v1/models`).
    pub model: String,
    /// The path.
    pub path: String,
    /// The model's call number (the first is 0).
    pub call: u32,
    /// When it arrived, since the simulator started.
    pub at: Duration,
    /// What the model did ([`Behaviour::name`]).
    pub behaviour: &'static str,
    /// Whether a stream was asked for.
    pub stream: bool,
    /// The assistant prefill the request ended with (the text the model was asked to
    /// continue), if its last message was the assistant's.
    pub prefill: Option<String>,
}

struct Model {
    script: Script,
    calls: AtomicU32,
}

struct State {
    start: Instant,
    models: BTreeMap<String, Model>,
    /// Every request, with how its answer ended so far ([`Delivery`], as a `u8`).
    log: RwLock<Vec<(Attempt, Arc<AtomicU8>)>>,
    /// Whether requests are logged (a long run that reads no log keeps none).
    logging: std::sync::atomic::AtomicBool,
    /// Signalled whenever an answer ends.
    ended: Arc<Notify>,
    random: SharedRandom,
}

/// A misbehaving OpenAI-compatible provider on `127.0.0.1`, scripted per model.
///
/// Serves `GET /v1/models` and `POST /v1/chat/completions` (streamed with SSE or not) over
/// HTTP/1.1 and HTTP/2 (cleartext). Every healthy answer is [`ANSWER`](crate::ANSWER) (or
/// the model's [`Script::answer`]), so a truncated answer is detectable; a prefill is
/// continued or refused as the model's [`Script`] says. Every request is logged with its
/// time ([`attempts`](Self::attempts)), and how its answer ended: sent to its end or
/// abandoned by the caller first ([`deliveries`](Self::deliveries)). Dropping it stops the
/// server.
pub struct Simulator {
    addr: SocketAddr,
    state: Arc<State>,
    server: JoinSet<()>,
}

impl Simulator {
    /// Starts a simulator serving these models on a free loopback port.
    pub async fn start<N: Into<String>>(
        models: impl IntoIterator<Item = (N, Script)>,
    ) -> io::Result<Self> {
        Self::start_seeded(models, 0).await
    }

    /// [`start`](Self::start) with a seed for random latencies.
    pub async fn start_seeded<N: Into<String>>(
        models: impl IntoIterator<Item = (N, Script)>,
        seed: u64,
    ) -> io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(State {
            start: Instant::now(),
            models: models
                .into_iter()
                .map(|(name, script)| {
                    (
                        name.into(),
                        Model {
                            script,
                            calls: AtomicU32::new(0),
                        },
                    )
                })
                .collect(),
            log: RwLock::default(),
            logging: std::sync::atomic::AtomicBool::new(true),
            ended: Arc::default(),
            random: SharedRandom::new(Some(seed)),
        });
        let mut server = JoinSet::new();
        let shared = Arc::clone(&state);
        server.spawn(accept(listener, shared));
        Ok(Self {
            addr,
            state,
            server,
        })
    }

    /// Stops (or resumes) logging requests: a long run (a soak, a load test) that reads
    /// no [`attempts`](Self::attempts) keeps its memory flat. Logged by default.
    pub fn keep_log(&self, keep: bool) {
        self.state
            .logging
            .store(keep, std::sync::atomic::Ordering::Relaxed);
    }

    /// The base URL, `http://127.0.0.1:<port>`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Every request so far, in arrival order.
    pub fn attempts(&self) -> Vec<Attempt> {
        self.state
            .log
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .iter()
            .map(|(attempt, _)| attempt.clone())
            .collect()
    }

    /// How each request's answer ended so far, in arrival order, beside its [`Attempt`].
    ///
    /// A request the simulator answers without logging it (an unknown model, a body that is
    /// not JSON, an unknown path) has no entry, as in [`attempts`](Self::attempts).
    pub fn deliveries(&self) -> Vec<(Attempt, Delivery)> {
        self.state
            .log
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .iter()
            .map(|(attempt, cell)| (attempt.clone(), Delivery::load(cell)))
            .collect()
    }

    /// Waits until no answer is [`Pending`](Delivery::Pending) or `limit` passes, then
    /// returns [`deliveries`](Self::deliveries).
    ///
    /// It waits on tokio's clock, so it works in a test with paused time: a caller's
    /// disconnection reaches the simulator over loopback without the clock moving, and an
    /// answer that never ends (a [`Behaviour::Hang`] still connected) is returned
    /// [`Pending`](Delivery::Pending) once `limit` has passed.
    pub async fn settled(&self, limit: Duration) -> Vec<(Attempt, Delivery)> {
        let deadline = Instant::now() + limit;
        loop {
            let ended = self.state.ended.notified();
            tokio::pin!(ended);
            // Registered before looking, so that an answer ending in between is not missed.
            ended.as_mut().enable();
            let deliveries = self.deliveries();
            if deliveries.iter().all(|(_, d)| *d != Delivery::Pending) {
                return deliveries;
            }
            if tokio::time::timeout_at(deadline, ended).await.is_err() {
                return self.deliveries();
            }
        }
    }

    /// The requests for one model.
    pub fn attempts_of(&self, model: &str) -> Vec<Attempt> {
        self.attempts()
            .into_iter()
            .filter(|a| a.model == model)
            .collect()
    }

    /// Stops accepting and ends every connection.
    pub async fn stop(mut self) {
        self.server.abort_all();
        while self.server.join_next().await.is_some() {}
    }
}

impl fmt::Debug for Simulator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Simulator")
            .field("addr", &self.addr)
            .field("models", &self.state.models.keys().collect::<Vec<_>>())
            .finish()
    }
}

async fn accept(listener: TcpListener, state: Arc<State>) {
    let mut connections = JoinSet::new();
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let state = Arc::clone(&state);
        connections.spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let state = Arc::clone(&state);
                async move { handle(state, request).await }
            });
            let _ = auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
        while connections.try_join_next().is_some() {}
    }
}

/// Why the simulator ends a connection without an answer.
#[derive(Debug, thiserror::Error)]
#[error("connection reset by the simulated provider")]
struct Reset;

fn json(status: StatusCode, value: &serde_json::Value) -> Response<SimBody> {
    let mut response = Response::new(Either::Left(Full::new(Bytes::from(value.to_string()))));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    response
}

impl State {
    /// Logs a request; the watch it returns follows its answer to the end.
    fn log(&self, attempt: Attempt) -> Watch {
        if !self.logging.load(std::sync::atomic::Ordering::Relaxed) {
            return Watch::none();
        }
        let cell = Delivery::cell();
        self.log
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push((attempt, Arc::clone(&cell)));
        Watch::new(cell, Arc::clone(&self.ended))
    }
}

/// A response whose body is watched by `watch`.
fn watched(response: Response<SimBody>, watch: Watch) -> Response<Watched> {
    response.map(|body| Watched::new(body, watch))
}

/// A response to a request that is not logged.
fn unwatched(response: Response<SimBody>) -> Response<Watched> {
    watched(response, Watch::none())
}

/// Answers one request. Its [`Watch`] lives in this future until the response is ready, then
/// in the response's body: hyper dropping either before the end (the caller gone) marks the
/// answer abandoned.
async fn handle(state: Arc<State>, request: Request<Incoming>) -> Result<Response<Watched>, Reset> {
    let at = state.start.elapsed();
    let path = request.uri().path().to_owned();
    match (request.method(), path.as_str()) {
        (&Method::GET, "/v1/models") => {
            let watch = state.log(Attempt {
                model: String::new(),
                path,
                call: 0,
                at,
                behaviour: "models",
                stream: false,
                prefill: None,
            });
            let names: Vec<String> = state.models.keys().cloned().collect();
            Ok(watched(json(StatusCode::OK, &wire::models(&names)), watch))
        }
        (&Method::POST, "/v1/chat/completions") => {
            let body = match Limited::new(request.into_body(), MAX_REQUEST)
                .collect()
                .await
            {
                Ok(body) => body.to_bytes(),
                Err(_) => {
                    let error = wire::error(
                        "request body too large or unreadable",
                        "invalid_request_error",
                        None,
                    );
                    return Ok(unwatched(json(StatusCode::PAYLOAD_TOO_LARGE, &error)));
                }
            };
            let chat: ChatRequest = match serde_json::from_slice(&body) {
                Ok(chat) => chat,
                Err(e) => {
                    let error =
                        wire::error(&format!("invalid JSON: {e}"), "invalid_request_error", None);
                    return Ok(unwatched(json(StatusCode::BAD_REQUEST, &error)));
                }
            };
            let Some(model) = state.models.get(&chat.model) else {
                let error = wire::error(
                    &format!("The model `{}` does not exist", chat.model),
                    "invalid_request_error",
                    Some("model_not_found"),
                );
                return Ok(unwatched(json(StatusCode::NOT_FOUND, &error)));
            };
            let call = model.calls.fetch_add(1, Ordering::SeqCst);
            let prefill = chat.prefill();
            let refused = prefill.is_some() && model.script.refuses_prefill();
            let behaviour = model.script.behaviour(call, at);
            let watch = state.log(Attempt {
                model: chat.model.clone(),
                path,
                call,
                at,
                behaviour: if refused {
                    "prefill_refused"
                } else {
                    behaviour.name()
                },
                stream: chat.stream,
                prefill: prefill.clone(),
            });
            if refused {
                return Ok(watched(
                    json(
                        StatusCode::BAD_REQUEST,
                        &wire::error(
                            "Expected last role User or Tool (or Assistant with prefix True) for serving but got assistant",
                            "invalid_request_message_order",
                            None,
                        ),
                    ),
                    watch,
                ));
            }
            let latency = model.script.latency_for(state.random.unit());
            if !latency.is_zero() {
                tokio::time::sleep(latency).await;
            }
            let reply = Reply::new(model.script.answer_text(), prefill.as_deref());
            match answer(&chat, behaviour, reply).await {
                Ok(response) => Ok(watched(response, watch)),
                // A reset before the headers is the script's own end.
                Err(Reset) => {
                    watch.complete();
                    Err(Reset)
                }
            }
        }
        _ => Ok(unwatched(json(
            StatusCode::NOT_FOUND,
            &wire::error("no such endpoint", "invalid_request_error", None),
        ))),
    }
}

/// What a healthy answer to one request says: the model's answer, or the rest of it after a
/// prefill that is a prefix of it.
struct Reply {
    /// The text to send.
    text: String,
    /// Prompt tokens: the simulator's fixed prompt, plus the prefill's tokens.
    prompt: usize,
}

impl Reply {
    fn new(answer: &str, prefill: Option<&str>) -> Self {
        let prefill = prefill.unwrap_or("");
        Self {
            text: answer.strip_prefix(prefill).unwrap_or(answer).to_owned(),
            prompt: wire::PROMPT_TOKENS + tokens(prefill).len(),
        }
    }
}

/// A text's tokens: its words, each with the space after it.
fn tokens(text: &str) -> Vec<&str> {
    text.split_inclusive(' ').collect()
}

async fn answer(
    chat: &ChatRequest,
    behaviour: Behaviour,
    reply: Reply,
) -> Result<Response<SimBody>, Reset> {
    let model = chat.model.as_str();
    match behaviour {
        Behaviour::ResetBeforeHeaders => Err(Reset),
        Behaviour::Hang => std::future::pending().await,
        Behaviour::RateLimited(retry_after) => {
            let mut response = json(
                StatusCode::TOO_MANY_REQUESTS,
                &wire::error(
                    "Rate limit reached for requests",
                    "requests",
                    Some("rate_limit_exceeded"),
                ),
            );
            let headers = response.headers_mut();
            if let Some(retry_after) = retry_after {
                let value = match retry_after {
                    RetryAfter::Seconds(s) => s.to_string(),
                    RetryAfter::Date(d) => httpdate::fmt_http_date(SystemTime::now() + d),
                };
                if let Ok(value) = value.parse() {
                    headers.insert(header::RETRY_AFTER, value);
                }
                if let RetryAfter::Seconds(s) = retry_after
                    && let Ok(value) = format!("{s}s").parse()
                {
                    headers.insert("x-ratelimit-reset-requests", value);
                }
            }
            Ok(response)
        }
        Behaviour::Status(code) => {
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let kind = if code == 529 {
                "overloaded_error"
            } else {
                "server_error"
            };
            Ok(json(
                status,
                &wire::error(
                    "The server had an error while processing your request",
                    kind,
                    None,
                ),
            ))
        }
        Behaviour::ContextLengthExceeded => Ok(json(
            StatusCode::BAD_REQUEST,
            &wire::error(
                "This model's maximum context length is 8192 tokens; your messages resulted in 9000 tokens",
                "invalid_request_error",
                Some("context_length_exceeded"),
            ),
        )),
        Behaviour::ContentFilter => Ok(json(
            StatusCode::BAD_REQUEST,
            &wire::error(
                "Your request was rejected as a result of our safety system: violence",
                "invalid_request_error",
                Some("content_policy_violation"),
            ),
        )),
        other if chat.stream => Ok(stream(model, other, chat, reply)),
        other => {
            let (model, delay) = match &other {
                Behaviour::WrongModel(name) => (name.as_str(), Duration::ZERO),
                Behaviour::SlowFirstToken(delay) => (model, *delay),
                _ => (model, Duration::ZERO),
            };
            tokio::time::sleep(delay).await;
            let body =
                wire::completion(model, &reply.text, reply.prompt, tokens(&reply.text).len())
                    .to_string();
            Ok(match other {
                // Unstreamed, a cut or malformed answer is a broken JSON body.
                Behaviour::StreamCut { .. } | Behaviour::MalformedChunk { .. } => {
                    let half = &body[..body.len() / 2];
                    json_text(half.to_owned())
                }
                Behaviour::Stall { .. } => {
                    partial_body(body[..body.len() / 2].to_owned(), Ending::Stall)
                }
                Behaviour::StreamReset { .. } => {
                    partial_body(body[..body.len() / 2].to_owned(), Ending::Reset)
                }
                _ => json_text(body),
            })
        }
    }
}

fn json_text(text: String) -> Response<SimBody> {
    let mut response = Response::new(Either::Left(Full::new(Bytes::from(text))));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    response
}

/// How an unstreamed body that stops halfway ends.
enum Ending {
    /// Nothing more, the connection left open.
    Stall,
    /// The connection broken mid-body.
    Reset,
}

/// Headers and part of the body, then a stall or a broken connection.
fn partial_body(part: String, ending: Ending) -> Response<SimBody> {
    let (tx, body) = ChannelBody::new();
    tokio::spawn(async move {
        if tx.send(Piece::Data(Bytes::from(part))).await.is_err() {
            return;
        }
        match ending {
            Ending::Stall => tx.closed().await,
            Ending::Reset => {
                let _ = tx.send(Piece::Reset).await;
            }
        }
    });
    let mut response = Response::new(Either::Right(body));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    response
}

fn stream(
    model: &str,
    behaviour: Behaviour,
    chat: &ChatRequest,
    reply: Reply,
) -> Response<SimBody> {
    let (tx, body) = ChannelBody::new();
    let with_usage = chat
        .stream_options
        .as_ref()
        .is_some_and(|o| o.include_usage);
    let (model, first_delay) = match &behaviour {
        Behaviour::WrongModel(name) => (name.clone(), Duration::ZERO),
        Behaviour::SlowFirstToken(delay) => (model.to_owned(), *delay),
        _ => (model.to_owned(), Duration::ZERO),
    };
    tokio::spawn(async move {
        let send = |text: String| {
            let tx = tx.clone();
            async move { tx.send(Piece::Data(Bytes::from(text))).await.is_ok() }
        };
        tokio::time::sleep(first_delay).await;
        let tokens = tokens(&reply.text);
        for (i, token) in tokens.iter().enumerate() {
            match behaviour {
                Behaviour::StreamCut { after_tokens } if i == after_tokens => return,
                Behaviour::StreamReset { after_tokens } if i == after_tokens => {
                    let _ = tx.send(Piece::Reset).await;
                    return;
                }
                Behaviour::Stall { after_tokens } if i == after_tokens => {
                    tx.closed().await;
                    return;
                }
                Behaviour::MalformedChunk { at } if i == at => {
                    if !send(wire::MALFORMED.to_owned()).await {
                        return;
                    }
                    continue;
                }
                _ => {}
            }
            if !send(wire::delta(&model, token)).await {
                return;
            }
        }
        if !send(wire::finish(&model, reply.prompt, tokens.len(), with_usage)).await {
            return;
        }
        if behaviour != Behaviour::MissingDone {
            let _ = send(wire::DONE.to_owned()).await;
        }
    });
    let mut response = Response::new(Either::Right(body));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/event-stream"),
    );
    response
}
