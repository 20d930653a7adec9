//! The gateway's HTTP face: OpenAI's `POST /v1/chat/completions` and `GET /v1/models`, the
//! probes `/healthz` and `/readyz`, and `/metrics`.
//!
//! Every answer that is not a model's is OpenAI's error JSON from
//! [`GatewayError`]: a sanitised message (class and
//! route, never a provider's words or a key), the status of its table, `Retry-After` when
//! a wait is known. Every chat answer carries `x-hive-route`, `x-hive-model` (the model
//! that answered), `x-hive-attempts`, `x-hive-latency-ms` (the gateway's time until the
//! answer's headers: for a stream, until its first token) and, for the route's degraded
//! answer, `x-hive-degraded`.

use std::{
    collections::HashSet,
    convert::Infallible,
    error::Error,
    fmt,
    pin::Pin,
    sync::{
        Arc, RwLock,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use arc_swap::ArcSwap;
use axum::{
    Router,
    body::{Body, Bytes},
    extract::State,
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use futures_util::StreamExt;
use hive_core::{BoxError, ModelId};
use hive_monitor::PrometheusExporter;
use hive_openai::{
    ChatRequest, ChatResponse, ChatStream, Commit, ContinueRequest, ContinuedStream,
    prefill_refusal,
    server::{GatewayError, RouteAttempt, SseEncoder},
};
use hive_resilience::{FallbackError, REQUEST_ROUTE, RouteSpec, Routed, Strategy};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tokio::{sync::watch, time::Instant};
use tower::ServiceExt;

use crate::{
    fleet::{Fleet, Target, Unresolved},
    history::{History, Recorder},
};
use hive_config::{AuditEntry, AuditLog};

/// The most fallbacks one request may list.
pub const MAX_REQUEST_FALLBACKS: usize = 8;
/// Counter of cut or stalled streams the gateway asked another model to continue.
pub const CONTINUATIONS: &str = "hive_stream_continuations_total";
/// How often a streamed answer that is silent gets a keep-alive comment.
pub const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// What every handler shares: the fleet serving now (swapped whole on reload), the models
/// that refused a prefill, the metrics exporter.
#[derive(Clone)]
pub struct Gateway {
    shared: Arc<Shared>,
}

struct Shared {
    fleet: ArcSwap<Fleet>,
    /// Models that refused a prefill although configured to accept one: no more
    /// continuations go to them until the config is reloaded.
    refused_prefill: RwLock<HashSet<ModelId>>,
    exporter: Option<PrometheusExporter>,
    /// Cut streams continued by another model, since the start.
    continuations: AtomicU64,
    /// Set at a hard stop: requests under way end at once.
    stop: watch::Sender<bool>,
    /// Where per-minute figures, incidents and audit actions are kept, if anywhere, and
    /// what rolls the fleet's attempts up into it.
    history: Option<(History, Recorder)>,
}

impl fmt::Debug for Gateway {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Gateway")
            .field("fleet", &self.shared.fleet.load())
            .field("refused_prefill", &self.refused_prefill())
            .field("metrics", &self.shared.exporter.is_some())
            .finish()
    }
}

impl Gateway {
    /// A gateway serving `fleet`; `/metrics` renders `exporter`, if given; audit actions
    /// also go to `history`, if given.
    pub fn new(
        fleet: Fleet,
        exporter: Option<PrometheusExporter>,
        history: Option<(History, Recorder)>,
    ) -> Self {
        Self {
            shared: Arc::new(Shared {
                fleet: ArcSwap::from_pointee(fleet),
                refused_prefill: RwLock::default(),
                exporter,
                continuations: AtomicU64::new(0),
                stop: watch::Sender::new(false),
                history,
            }),
        }
    }

    /// The history it keeps, if any.
    pub fn history(&self) -> Option<&History> {
        self.shared.history.as_ref().map(|(history, _)| history)
    }

    /// Writes what the history's recorder holds (the minute under way included) and waits
    /// until it is in the file, so that a read sees every attempt so far.
    pub async fn flush_history(&self) {
        let Some((history, recorder)) = &self.shared.history else {
            return;
        };
        recorder.flush().await;
        if let Err(e) = history.flush().await {
            tracing::warn!(error = %e, "the history was not flushed");
        }
    }

    /// Appends `entry` to the audit log of the config serving and to the history, off the
    /// runtime's threads; a failure is logged, not fatal.
    pub(crate) async fn audit(&self, entry: AuditEntry) {
        if let Some(history) = self.history() {
            history.record_audit(&entry);
        }
        let log = AuditLog::from_config(self.fleet().config());
        crate::server::record(log, entry).await;
    }

    /// The fleet serving now.
    pub fn fleet(&self) -> Arc<Fleet> {
        self.shared.fleet.load_full()
    }

    /// Serves `fleet` from now on (requests under way finish on the old one); returns the
    /// old one. What models refused prefills is forgotten: the new config says again.
    pub fn swap(&self, fleet: Fleet) -> Arc<Fleet> {
        let old = self.shared.fleet.swap(Arc::new(fleet));
        write(&self.shared.refused_prefill).clear();
        old
    }

    /// Models that refused a prefill since the config was loaded.
    pub fn refused_prefill(&self) -> Vec<ModelId> {
        let mut models: Vec<ModelId> = read(&self.shared.refused_prefill).iter().copied().collect();
        models.sort_by(|a, b| a.as_str().cmp(b.as_str()));
        models
    }

    /// Cut or stalled streams continued by another model since the start (each continuation
    /// asked for counts, whether or not a model took it).
    pub fn continuations(&self) -> u64 {
        self.shared.continuations.load(Ordering::Relaxed)
    }

    /// Ends every request under way at once (the end of a shutdown's grace): a request
    /// waiting for its answer gets a 503, a stream ends with the in-band error of an
    /// unfinished answer, and their upstream calls are dropped.
    pub fn stop_now(&self) {
        self.shared.stop.send_replace(true);
    }

    /// Resolves at [`stop_now`](Self::stop_now).
    fn stopped(&self) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        let mut stop = self.shared.stop.subscribe();
        Box::pin(async move {
            let _ = stop.wait_for(|stop| *stop).await;
        })
    }

    /// The axum app: every route of the gateway.
    pub fn router(&self) -> Router {
        Router::new()
            .route("/v1/chat/completions", post(chat))
            .route("/v1/models", get(models))
            .route("/healthz", get(|| async { "ok\n" }))
            .route("/readyz", get(ready))
            .route("/metrics", get(metrics))
            .fallback(not_found)
            .method_not_allowed_fallback(method_not_allowed)
            .with_state(self.clone())
    }
}

fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// An error answer as axum's response.
pub(crate) fn error(error: GatewayError) -> Response {
    error.into_response().map(Body::new)
}

/// The request's bearer key checked against the configured ones.
fn authorize(keys: &[hive_config::Secret], headers: &HeaderMap) -> Result<(), GatewayError> {
    if keys.is_empty() {
        return Ok(());
    }
    let given = bearer(headers).ok_or_else(GatewayError::unauthorized)?;
    if matches_any(keys, given) {
        Ok(())
    } else {
        Err(GatewayError::unauthorized())
    }
}

/// The token of an `Authorization: Bearer …` header.
pub(crate) fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, token) = v.split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
        })
}

/// Whether `given` is one of `keys`, in constant time: their SHA-256 digests are compared,
/// every key each time, so neither which key matched nor their lengths show in the time
/// taken.
pub(crate) fn matches_any<'a>(
    keys: impl IntoIterator<Item = &'a hive_config::Secret>,
    given: &str,
) -> bool {
    let given = Sha256::digest(given.as_bytes());
    let matched = keys.into_iter().fold(0u8, |found, key| {
        let key = Sha256::digest(key.expose().as_bytes());
        found | u8::from(bool::from(key.as_slice().ct_eq(given.as_slice())))
    });
    matched == 1
}

/// The body, at most `limit` bytes (413 above it, told by `Content-Length` or found while
/// reading).
async fn read_body(body: Body, headers: &HeaderMap, limit: u64) -> Result<Bytes, GatewayError> {
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|length| length > limit as u64) {
        return Err(GatewayError::too_large(limit));
    }
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => {
            Err(GatewayError::too_large(limit))
        }
        Err(_) => Err(GatewayError::invalid_request(
            "the request body could not be read",
            None,
        )),
    }
}

/// The request, parsed and checked; its `fallbacks` (LiteLLM's field) taken out of it.
fn parse(bytes: &[u8]) -> Result<(ChatRequest, Vec<String>), GatewayError> {
    let mut request: ChatRequest = serde_json::from_slice(bytes).map_err(|e| {
        GatewayError::invalid_request(
            &format!("the body is not a chat-completion request: {e}"),
            None,
        )
    })?;
    if request.model.trim().is_empty() {
        return Err(GatewayError::invalid_request(
            "`model` names no route or model",
            Some("model"),
        ));
    }
    if request.messages.is_empty() {
        return Err(GatewayError::invalid_request(
            "`messages` is empty",
            Some("messages"),
        ));
    }
    let fallbacks = match Arc::make_mut(&mut request.extra).remove("fallbacks") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(names)) if names.len() <= MAX_REQUEST_FALLBACKS => names
            .into_iter()
            .map(|name| match name {
                Value::String(name) if !name.trim().is_empty() => Ok(name),
                _ => Err(()),
            })
            .collect::<Result<_, ()>>()
            .map_err(|()| {
                GatewayError::invalid_request(
                    "`fallbacks` must list model names",
                    Some("fallbacks"),
                )
            })?,
        Some(_) => {
            return Err(GatewayError::invalid_request(
                &format!(
                    "`fallbacks` must be a list of at most {MAX_REQUEST_FALLBACKS} model names"
                ),
                Some("fallbacks"),
            ));
        }
    };
    Ok((request, fallbacks))
}

/// `POST /v1/chat/completions`.
async fn chat(State(gateway): State<Gateway>, headers: HeaderMap, body: Body) -> Response {
    let fleet = gateway.fleet();
    let started = Instant::now();
    let server = &fleet.config().server;
    if let Err(e) = authorize(&server.api_keys, &headers) {
        return error(e);
    }
    let parsed = match read_body(body, &headers, server.body_limit).await {
        Ok(bytes) => parse(&bytes),
        Err(e) => Err(e),
    };
    let (mut request, fallbacks) = match parsed {
        Ok(parsed) => parsed,
        Err(e) => return error(e),
    };
    let (route, router, commit, models) = match fleet.resolve(&request.model, &fallbacks) {
        Ok(Target::Route(name, entry)) => (
            name.to_owned(),
            entry.router.clone(),
            entry.commit,
            entry.models.clone(),
        ),
        Ok(Target::Models(name, router)) => {
            let mut models = vec![name.clone()];
            models.extend(fallbacks);
            (name, router, Commit::FirstChunk, models)
        }
        Err(Unresolved::Unknown(name)) => return error(GatewayError::model_not_found(&name)),
        Err(e) => {
            let param = if matches!(e, Unresolved::RouteAsFallback(_)) {
                "fallbacks"
            } else {
                "model"
            };
            return error(GatewayError::invalid_request(&e.to_string(), Some(param)));
        }
    };
    request.commit = Some(commit);
    let streamed = request.stream;
    let continuing = Continuing {
        gateway: gateway.clone(),
        fleet: Arc::clone(&fleet),
        deadline: fleet.timeout_of(&route).map(|t| started + t),
        models,
    };
    let asked = streamed.then(|| request.clone());
    let mut stopping = gateway.shared.stop.subscribe();
    let result = tokio::select! {
        result = router.oneshot(request) => result,
        _ = stopping.wait_for(|stop| *stop) => {
            return error(GatewayError::from_error(&route, &ShuttingDown));
        }
    };
    let mut response = match result {
        Ok(routed) => answer(&route, continuing, asked, routed),
        Err(e) => failure(&fleet, &route, &*e),
    };
    let elapsed = started.elapsed();
    response.headers_mut().insert(
        "x-hive-latency-ms",
        HeaderValue::from(u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX)),
    );
    let status = response.status().as_u16();
    let model = response
        .headers()
        .get("x-hive-model")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-");
    tracing::debug!(
        route = %route,
        model,
        status,
        stream = streamed,
        elapsed_ms = u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX),
        "chat completion"
    );
    response
}

/// The answer of a request a model (or the degraded answer) answered.
fn answer(
    route: &str,
    continuing: Continuing,
    asked: Option<ChatRequest>,
    routed: Routed<ChatResponse>,
) -> Response {
    let mut response = match (routed.response, asked) {
        (ChatResponse::Stream(stream), Some(asked)) => {
            // An answer of several choices (`n` > 1), or one that is not plain text (tool
            // calls …), is never continued: ContinuedStream ends it with the cut.
            let stop = continuing.gateway.stopped();
            let continued = ContinuedStream::new(stream, asked, continuing.with(routed.model));
            // At a hard stop the stream ends where it is: the encoder sends the in-band
            // error of an unfinished answer.
            let encoder = SseEncoder::new(continued.take_until(stop))
                .route(route)
                .keep_alive(KEEP_ALIVE);
            encoder.into_response().map(Body::new)
        }
        // A stream nobody asked for is read whole (a router never gives one; kept total).
        (ChatResponse::Stream(stream), None) => {
            let encoder = SseEncoder::new(stream).route(route).keep_alive(KEEP_ALIVE);
            encoder.into_response().map(Body::new)
        }
        (ChatResponse::Complete(whole), Some(_)) => {
            let chunks = whole.into_chunks().into_iter().map(Ok::<_, Infallible>);
            let encoder = SseEncoder::new(futures_util::stream::iter(chunks)).route(route);
            encoder.into_response().map(Body::new)
        }
        (ChatResponse::Complete(whole), None) => match serde_json::to_vec(&whole) {
            Ok(json) => (
                [(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                )],
                json,
            )
                .into_response(),
            Err(_) => error(GatewayError::from_error(route, &Unserialisable)),
        },
    };
    let headers = response.headers_mut();
    insert(headers, "x-hive-route", route);
    insert(
        headers,
        "x-hive-model",
        routed.model.map_or("", |m| m.as_str()),
    );
    headers.insert("x-hive-attempts", HeaderValue::from(routed.attempts));
    if routed.degraded {
        headers.insert("x-hive-degraded", HeaderValue::from_static("true"));
    }
    response
}

/// A request ended by a hard stop.
#[derive(Debug, thiserror::Error)]
#[error("the gateway is shutting down")]
struct ShuttingDown;

/// An answer that could not be written as JSON (never: the types serialise).
#[derive(Debug, thiserror::Error)]
#[error("the answer could not be encoded")]
struct Unserialisable;

pub(crate) fn json_response(status: StatusCode, body: &Value) -> Response {
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body.to_string(),
    )
        .into_response()
}

fn insert(headers: &mut HeaderMap, name: &'static str, value: &str) {
    if let Ok(value) = HeaderValue::from_str(value) {
        headers.insert(name, value);
    }
}

/// The answer of a request no model answered: the router's attempts through the error
/// table, each model's remaining break as its cooldown.
fn failure(fleet: &Fleet, route: &str, e: &(dyn Error + 'static)) -> Response {
    let Some(routed) = e.downcast_ref::<FallbackError>() else {
        // A model's own refusal (a bad request …), returned as it is: one attempt.
        tracing::debug!(route, error = %e, "a model refused the request");
        let mut response = error(GatewayError::from_error(route, e));
        insert(response.headers_mut(), "x-hive-route", route);
        response
            .headers_mut()
            .insert("x-hive-attempts", HeaderValue::from(1u32));
        return response;
    };
    let attempts = routed.attempts().len();
    let gateway_error = match routed {
        FallbackError::DeadlineExceeded { .. } => GatewayError::deadline_exceeded(route),
        FallbackError::Exhausted { attempts } => GatewayError::exhausted(
            route,
            attempts.iter().map(|a| {
                let cooldown = fleet
                    .manager()
                    .control(a.model.as_str())
                    .and_then(|c| c.breaker().metrics().retry_after_remaining);
                RouteAttempt::new(a.outcome, a.status).cooldown(cooldown)
            }),
        ),
    };
    tracing::debug!(route, error = %e, "no model answered");
    let mut response = error(gateway_error);
    insert(response.headers_mut(), "x-hive-route", route);
    response
        .headers_mut()
        .insert("x-hive-attempts", HeaderValue::from(attempts));
    response
}

/// The future of one continuation: the next stream, or why there is none.
type ContinuationFuture = Pin<Box<dyn Future<Output = Result<Box<ChatStream>, BoxError>> + Send>>;

/// What continuing a request's stream needs: the route's models and deadline.
#[derive(Clone)]
struct Continuing {
    gateway: Gateway,
    fleet: Arc<Fleet>,
    models: Vec<String>,
    deadline: Option<Instant>,
}

impl Continuing {
    /// How a committed stream that is cut or stalls is continued: by the route's models
    /// (those that accept a prefill and have not refused one, when text was sent), in the
    /// route's order with the model whose stream was just cut last, one after another
    /// within what is left of the request's deadline.
    fn with(
        self,
        first: Option<ModelId>,
    ) -> impl FnMut(ContinueRequest) -> ContinuationFuture + Send + Unpin + 'static {
        let streaming = Arc::new(RwLock::new(first));
        move |ask: ContinueRequest| {
            let (this, streaming) = (self.clone(), Arc::clone(&streaming));
            Box::pin(async move { this.next(ask, &streaming).await }) as ContinuationFuture
        }
    }

    async fn next(
        self,
        ask: ContinueRequest,
        streaming: &RwLock<Option<ModelId>>,
    ) -> Result<Box<ChatStream>, BoxError> {
        let Self {
            gateway,
            fleet,
            models,
            deadline,
        } = self;
        gateway.shared.continuations.fetch_add(1, Ordering::Relaxed);
        metrics::counter!(CONTINUATIONS).increment(1);
        let cut = *read(streaming);
        // Nothing sent yet: any model may answer afresh, no prefill is asked.
        let prefill = !ask.partial.is_empty();
        tracing::info!(
            continuation = ask.continuation,
            chunks = ask.chunks,
            cut = ask.cut.label(),
            model = cut.as_ref().map_or("", |m| m.as_str()),
            "continuing a cut stream"
        );
        loop {
            let refused = gateway.refused_prefill();
            let mut able: Vec<&String> = models
                .iter()
                .filter(|m| {
                    !prefill
                        || (fleet.accepts_prefill(m)
                            && !ModelId::lookup(m).is_some_and(|id| refused.contains(&id)))
                })
                .collect();
            // Stable: the others keep the route's order.
            able.sort_by_key(|m| cut.is_some_and(|cut| cut.as_str() == m.as_str()));
            if able.is_empty() {
                return Err(BoxError::from("no model of the route accepts a prefill"));
            }
            let left = match deadline {
                Some(deadline) => match deadline.checked_duration_since(Instant::now()) {
                    Some(left) if !left.is_zero() => Some(left),
                    _ => return Err(BoxError::from("the request's deadline passed")),
                },
                None => None,
            };
            let spec = RouteSpec::new(REQUEST_ROUTE, able)
                .strategy(Strategy::Sequential)
                .timeout(left);
            let router = fleet.manager().router(&spec)?;
            let mut request = ask.request.clone();
            request.commit = Some(Commit::FirstChunk);
            match router.oneshot(request).await {
                Ok(Routed {
                    response: ChatResponse::Stream(stream),
                    model,
                    ..
                }) => {
                    *write(streaming) = model;
                    return Ok(stream);
                }
                Ok(_) => return Err(BoxError::from("the continuation was not a stream")),
                Err(e) => match refused_in(&*e) {
                    // Learned, and the next capable model asked at once.
                    Some(model) if prefill && !refused.contains(&model) => {
                        tracing::warn!(model = %model, "model refused a prefill: no more continuations go to it");
                        write(&gateway.shared.refused_prefill).insert(model);
                    }
                    _ => return Err(e),
                },
            }
        }
    }
}

/// The model that refused a prefill, in the router's error or any of its attempts.
fn refused_in(e: &(dyn Error + 'static)) -> Option<ModelId> {
    prefill_refusal(e).or_else(|| {
        e.downcast_ref::<FallbackError>()?
            .attempts()
            .iter()
            .find_map(|a| prefill_refusal(&**a.error.as_ref()?))
    })
}

/// `GET /v1/models`: the routes, then every model, as OpenAI lists models.
async fn models(State(gateway): State<Gateway>, headers: HeaderMap) -> Response {
    let fleet = gateway.fleet();
    if let Err(e) = authorize(&fleet.config().server.api_keys, &headers) {
        return error(e);
    }
    let entry = |id: &str, owner: &str| json!({"id": id, "object": "model", "created": 0, "owned_by": owner});
    let mut data: Vec<Value> = fleet
        .routes()
        .keys()
        .map(|route| entry(route, "hive-route"))
        .collect();
    data.extend(
        fleet
            .manager()
            .controls()
            .iter()
            .map(|c| entry(c.model().as_str(), "hive")),
    );
    json_response(StatusCode::OK, &json!({"object": "list", "data": data}))
}

/// `GET /readyz`: 200 when every route has a model that can take calls, else 503; the body
/// says which routes are down.
async fn ready(State(gateway): State<Gateway>) -> Response {
    let fleet = gateway.fleet();
    let availability = fleet.manager().availability();
    let up: HashSet<&str> = availability
        .models
        .iter()
        .filter(|m| m.up)
        .map(|m| m.model.as_str())
        .collect();
    let routes: serde_json::Map<String, Value> = fleet
        .routes()
        .iter()
        .map(|(name, entry)| {
            let live = entry
                .models
                .iter()
                .filter(|m| up.contains(m.as_str()))
                .count();
            (
                name.clone(),
                json!({"up": live, "models": entry.models.len()}),
            )
        })
        .collect();
    let down: Vec<&String> = routes
        .iter()
        .filter(|(_, r)| r["up"] == 0)
        .map(|(name, _)| name)
        .collect();
    let models_up = availability.up();
    let ready = down.is_empty() && (models_up > 0 || availability.models.is_empty());
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = json!({
        "ready": ready,
        "config": fleet.config().hash().to_string(),
        "models_up": models_up,
        "models": availability.models.len(),
        "routes_down": down,
        "routes": routes,
    });
    json_response(status, &body)
}

/// `GET /metrics`: Prometheus' text format.
async fn metrics(State(gateway): State<Gateway>) -> Response {
    match &gateway.shared.exporter {
        Some(exporter) => (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            )],
            exporter.render(),
        )
            .into_response(),
        None => (
            StatusCode::NOT_FOUND,
            "metrics are off (`metrics: false`)\n",
        )
            .into_response(),
    }
}

async fn not_found() -> Response {
    let mut response = error(GatewayError::invalid_request(
        "no such endpoint: the gateway serves POST /v1/chat/completions and GET /v1/models",
        None,
    ));
    *response.status_mut() = StatusCode::NOT_FOUND;
    response
}

async fn method_not_allowed() -> Response {
    let mut response = error(GatewayError::invalid_request(
        "method not allowed on this endpoint",
        None,
    ));
    *response.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
    response
}
