//! The admin API: JSON under `/admin/`, for the dashboard's buttons and an operator's
//! scripts.
//!
//! | Method and path | Access | What |
//! |---|---|---|
//! | `GET /admin/status` | read | every model's breaker, health and drain state, the routes, the monitor's [`ResilienceMetrics`](hive_monitor::ResilienceMetrics), the silences, the config's hash |
//! | `POST /admin/models/{model}/{action}` | act | `force-open`, `force-close`, `half-open`, `mark-healthy`, `mark-unhealthy`, `clear-health`, `drain`, `undrain` |
//! | `GET /admin/silences` | read | every silence, active and recently expired |
//! | `POST /admin/silences` | act | a silence: `{"for": "1h", "rule"?, "model"?, "route"?, "comment"?}` |
//! | `DELETE /admin/silences/{id}` | act | expires a silence now |
//! | `GET /admin/audit?limit=N` | read | the last `N` (default 100) lines of the audit log |
//! | `GET /admin/chaos` | read | the fault injection in front of every model: on or off, its rules, what each rule injected |
//! | `PUT /admin/chaos` | act | replaces the rules (hive-chaos's `ChaosRules` as JSON, checked whole first; its `enabled` switches it) |
//! | `POST /admin/chaos/{enable,disable}` | act | switches it, rules kept |
//!
//! Access: an action needs `Authorization: Bearer <admin.token>`; a read needs that token,
//! `admin.read_token`, or none when `admin.public_read` is on. Tokens are compared in
//! constant time (their digests); they travel in a header, never a cookie, so no page can
//! be made to act by another site. A missing or wrong token is a 401, a read-only token
//! that asks to act a 403, and so is any action while the config has no `admin.token`.
//!
//! Audit: every action asked, allowed or not, is a line of the audit log (action
//! `admin_request`: who by token kind, the source address, what, the outcome); a refused
//! read is too — up to ten at once per source address, then one every 6 s, the next
//! audited line counting the refusals that were not (`suppressed`), so that a client
//! hammering the API with a wrong token cannot flood the log. What an allowed action did to a model is also recorded by the gateway as
//! a `recovery_action` line, as for every control of a model.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! // With HIVE_ADMIN_TOKEN as admin.token in resilience.yml, force gpt-4o's breaker open:
//! //   curl -X POST -H "Authorization: Bearer $HIVE_ADMIN_TOKEN" \
//! //        http://127.0.0.1:8080/admin/models/gpt-4o/force-open
//! # Ok(()) }
//! ```

use std::{
    collections::HashMap,
    net::{IpAddr, SocketAddr},
    sync::{Arc, RwLock},
    time::Duration,
};

use tokio::time::Instant;

use axum::{
    Router,
    extract::{ConnectInfo, Path, State},
    http::{Extensions, HeaderMap, HeaderValue, StatusCode, Uri, header},
    response::{IntoResponse, Response},
    routing::{delete, get, post},
};
use hive_config::{AuditEntry, AuditLog, Config};
use hive_core::ControlAction;
use hive_monitor::{
    Monitor,
    alert::{SilenceId, SilenceSpec},
};
use hive_resilience::ModelControl;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::{
    cluster::ClusterView,
    http::{Gateway, bearer, json_response, matches_any},
    server::KeptAlerts,
};

/// The action of an audit line for an admin request.
pub const ADMIN_REQUEST: &str = "admin_request";
/// The most audit lines one `GET /admin/audit` returns.
pub const MAX_AUDIT_LINES: usize = 1000;
/// The largest body an admin request may have.
const BODY_LIMIT: usize = 16 * 1024;

/// The admin API's state: the gateway (its fleet and config), the monitor, the silences.
/// Cheap to clone.
#[derive(Clone)]
pub struct Admin {
    gateway: Gateway,
    monitor: Monitor,
    alerts: KeptAlerts,
    refusals: Arc<RefusalBudget>,
    cluster: Option<ClusterView>,
}

/// Refused admin requests audited per source: a burst of [`REFUSALS_BURST`], then one every
/// [`REFUSAL_EVERY`]. A client hammering the API with a wrong token cannot flood the audit
/// log (and the history), yet nothing goes unrecorded: the next line audited for the source
/// carries how many were not (`suppressed`).
pub const REFUSALS_BURST: u32 = 10;
/// See [`REFUSALS_BURST`].
pub const REFUSAL_EVERY: Duration = Duration::from_secs(6);
/// Sources tracked at once; past that, sources share one budget.
const REFUSAL_SOURCES: usize = 4096;

/// One source's budget: tokens left, when they were last counted, refusals not audited
/// since its last audited one.
#[derive(Clone, Copy)]
struct SourceBudget {
    tokens: f64,
    counted_at: Instant,
    suppressed: u64,
}

impl SourceBudget {
    fn new(now: Instant) -> Self {
        Self {
            tokens: f64::from(REFUSALS_BURST),
            counted_at: now,
            suppressed: 0,
        }
    }

    /// Its tokens at `now` (refilled since last counted, up to the burst).
    fn tokens_at(&self, now: Instant) -> f64 {
        let refill =
            now.duration_since(self.counted_at).as_secs_f64() / REFUSAL_EVERY.as_secs_f64();
        (self.tokens + refill).min(f64::from(REFUSALS_BURST))
    }
}

/// The refusal budgets of every source.
#[derive(Default)]
struct RefusalBudget {
    sources: RwLock<HashMap<Option<IpAddr>, SourceBudget>>,
}

impl RefusalBudget {
    /// Whether a refusal from `source` is audited now; if so, how many were not before it.
    fn admit(&self, source: Option<IpAddr>) -> Option<u64> {
        let now = Instant::now();
        let full = f64::from(REFUSALS_BURST);
        let mut sources = self.sources.write().unwrap_or_else(|p| p.into_inner());
        if sources.len() >= REFUSAL_SOURCES && !sources.contains_key(&source) {
            // Forget sources whose budget is whole again; if none, pool the newcomers.
            sources.retain(|_, budget| budget.tokens_at(now) < full || budget.suppressed > 0);
        }
        let key = if sources.len() >= REFUSAL_SOURCES && !sources.contains_key(&source) {
            None
        } else {
            source
        };
        let budget = sources.entry(key).or_insert_with(|| SourceBudget::new(now));
        budget.tokens = budget.tokens_at(now);
        budget.counted_at = now;
        if budget.tokens >= 1.0 {
            budget.tokens -= 1.0;
            Some(std::mem::take(&mut budget.suppressed))
        } else {
            if budget.suppressed == 0 {
                tracing::warn!(
                    source = ?key,
                    "admin refusals from this source come too fast to audit each; the next audited one counts the others"
                );
            }
            budget.suppressed += 1;
            None
        }
    }
}

impl std::fmt::Debug for Admin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admin")
            .field("gateway", &self.gateway)
            .field("alerts", &self.alerts)
            .finish_non_exhaustive()
    }
}

/// What a request's token opens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// The admin token: reads and actions.
    Act,
    /// The read-only token, or no token where reads are public.
    Read,
    /// A missing or wrong token.
    None,
}

impl Access {
    /// Who asked, as the audit log names them.
    fn actor(self) -> &'static str {
        match self {
            Self::Act => "admin",
            Self::Read => "read-token",
            Self::None => "anonymous",
        }
    }
}

/// What a request's bearer token opens under `config`.
pub fn access(config: &Config, headers: &HeaderMap) -> Access {
    let given = bearer(headers);
    let admin = &config.admin;
    match given {
        Some(token) if matches_any(admin.token.iter(), token) => Access::Act,
        Some(token) if matches_any(admin.read_token.iter(), token) => Access::Read,
        _ => Access::None,
    }
}

/// The actions an operator may take on a model, by their path names (`force-open` …;
/// `force_open` is read too).
const MODEL_ACTIONS: [ControlAction; 8] = [
    ControlAction::ForceOpen,
    ControlAction::ForceClose,
    ControlAction::HalfOpen,
    ControlAction::MarkHealthy,
    ControlAction::MarkUnhealthy,
    ControlAction::ClearHealth,
    ControlAction::Drain,
    ControlAction::Undrain,
];

/// The path name of `action`: its stable name with dashes.
fn path_name(action: ControlAction) -> String {
    action.as_str().replace('_', "-")
}

/// The action a path names.
fn parse_action(text: &str) -> Option<ControlAction> {
    let text = text.replace('-', "_");
    MODEL_ACTIONS.into_iter().find(|a| a.as_str() == text)
}

/// Takes `action` on `control`'s model.
fn apply(action: ControlAction, control: &ModelControl) {
    match action {
        ControlAction::ForceOpen => control.force_open(),
        ControlAction::ForceClose => control.force_close(),
        ControlAction::HalfOpen => control.half_open(),
        ControlAction::MarkHealthy => control.mark_healthy(),
        ControlAction::MarkUnhealthy => control.mark_unhealthy(),
        ControlAction::ClearHealth => control.clear_health(),
        ControlAction::Drain => control.drain(),
        ControlAction::Undrain => control.undrain(),
        // Not an operator's action (never parsed).
        ControlAction::SlowStart => {}
    }
}

/// A refused admin request: its status, a code and a message, as JSON.
fn refusal(status: StatusCode, code: &str, message: &str) -> Response {
    let mut response = json_response(
        status,
        &json!({ "error": { "message": message, "type": "admin_error", "code": code } }),
    );
    if status == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"hive admin\""),
        );
    }
    response
}

/// The source address of a request, when the server recorded it.
fn source(extensions: &Extensions) -> Option<SocketAddr> {
    extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| *addr)
}

/// One admin request, as the handlers see it: who asked, from where.
pub(crate) struct Asked {
    access: Access,
    source: Option<SocketAddr>,
}

impl Admin {
    /// The admin API over `gateway`, reading `monitor` and the alerts, acting on their
    /// silences.
    pub fn new(gateway: Gateway, monitor: Monitor, alerts: KeptAlerts) -> Self {
        Self {
            gateway,
            monitor,
            alerts,
            refusals: Arc::default(),
            cluster: None,
        }
    }

    /// Shows the cluster this replica is part of in the status (cluster mode).
    #[must_use]
    pub(crate) fn in_cluster(mut self, cluster: ClusterView) -> Self {
        self.cluster = Some(cluster);
        self
    }

    /// The routes under `/admin/`.
    pub fn router(&self) -> Router {
        Router::new()
            .route("/admin/status", get(status))
            .route("/admin/models/{model}/{action}", post(act_on_model))
            .route("/admin/silences", get(list_silences).post(add_silence))
            .route("/admin/silences/{id}", delete(expire_silence))
            .route("/admin/audit", get(audit))
            .route("/admin/chaos", get(chaos_status).put(set_chaos))
            .route("/admin/chaos/{switch}", post(switch_chaos))
            .with_state(self.clone())
    }

    /// Every model's state, the routes, the monitor's figures and the silences: what
    /// `GET /admin/status` answers and the dashboard shows.
    pub fn status(&self) -> Value {
        let fleet = self.gateway.fleet();
        let models: Vec<Value> = fleet
            .manager()
            .controls()
            .iter()
            .map(|control| {
                json!({
                    "model": control.model().as_str(),
                    "breaker": control.breaker().state().as_str(),
                    "health": control.health().status().as_str(),
                    "drained": control.is_drained(),
                    "up": control.is_up(),
                    "traffic_share": control.traffic_share(),
                })
            })
            .collect();
        let routes: Vec<Value> = fleet
            .routes()
            .iter()
            .map(|(name, entry)| json!({ "name": name, "models": entry.models }))
            .collect();
        let refused_prefill: Vec<&str> = self
            .gateway
            .refused_prefill()
            .iter()
            .map(|m| m.as_str())
            .collect();
        json!({
            "config_hash": fleet.config().hash().to_string(),
            "models": models,
            "routes": routes,
            "metrics": self.monitor.snapshot(),
            "alerts": self.alerts.firing.alerts(),
            "silences": self.alerts.silences.list(),
            "refused_prefill": refused_prefill,
            "continuations": self.gateway.continuations(),
            "chaos": chaos_summary(&fleet.chaos()),
            "cluster": self.cluster.as_ref().map(ClusterView::summary),
        })
    }

    /// Whether `headers` open the reads under the config serving now.
    pub(crate) fn may_read(&self, headers: &HeaderMap) -> bool {
        let fleet = self.gateway.fleet();
        let config = fleet.config();
        config.admin.public_read || access(config, headers) != Access::None
    }

    /// The gateway it acts on.
    pub(crate) fn gateway(&self) -> &Gateway {
        &self.gateway
    }

    /// The monitor it reads.
    pub(crate) fn monitor(&self) -> &Monitor {
        &self.monitor
    }

    /// Who asked, checked against what the request needs; a refusal is audited with `what`
    /// (`None`: not audited — the dashboard's own reads, which a page probes on load).
    pub(crate) async fn check(
        &self,
        headers: &HeaderMap,
        extensions: &Extensions,
        needs: Access,
        what: Option<Value>,
    ) -> Result<Asked, Response> {
        let fleet = self.gateway.fleet();
        let config = fleet.config();
        let asked = Asked {
            access: access(config, headers),
            source: source(extensions),
        };
        let refused = match (needs, asked.access) {
            (_, Access::Act) => None,
            (Access::Read, Access::Read) => None,
            (Access::Read, Access::None) if config.admin.public_read => None,
            (Access::Act, Access::Read) => Some(refusal(
                StatusCode::FORBIDDEN,
                "read_only",
                "this token may read but not act",
            )),
            (Access::Act, Access::None) if config.admin.token.is_none() => Some(refusal(
                StatusCode::FORBIDDEN,
                "admin_off",
                "admin actions are off: the config has no admin.token",
            )),
            _ => Some(refusal(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "a missing or wrong bearer token",
            )),
        };
        match refused {
            None => Ok(asked),
            Some(response) => {
                if let Some(mut what) = what
                    && let Some(suppressed) = self.refusals.admit(asked.source.map(|s| s.ip()))
                {
                    if suppressed > 0
                        && let Value::Object(map) = &mut what
                    {
                        map.insert("suppressed".to_owned(), Value::from(suppressed));
                    }
                    self.audit(&asked, what, response.status()).await;
                }
                Err(response)
            }
        }
    }

    /// Appends an audit line for a request of `asked`: what it asked, and its outcome.
    async fn audit(&self, asked: &Asked, mut what: Value, outcome: StatusCode) {
        let fleet = self.gateway.fleet();
        let config = fleet.config();
        if let Value::Object(map) = &mut what {
            map.insert(
                "source".to_owned(),
                asked
                    .source
                    .map_or(Value::Null, |s| Value::String(s.to_string())),
            );
            map.insert("status".to_owned(), Value::from(outcome.as_u16()));
        }
        let entry = AuditEntry::new(asked.access.actor(), ADMIN_REQUEST, what)
            .with_hash(config.hash())
            .redacted(config);
        self.gateway.audit(entry).await;
    }
}

async fn status(
    State(admin): State<Admin>,
    headers: HeaderMap,
    extensions: Extensions,
) -> Response {
    let what = json!({ "request": "GET /admin/status" });
    if let Err(refused) = admin
        .check(&headers, &extensions, Access::Read, Some(what))
        .await
    {
        return refused;
    }
    json_response(StatusCode::OK, &admin.status())
}

async fn act_on_model(
    State(admin): State<Admin>,
    Path((model, action)): Path<(String, String)>,
    headers: HeaderMap,
    extensions: Extensions,
) -> Response {
    let what = json!({ "model": model, "action": action });
    let asked = match admin
        .check(&headers, &extensions, Access::Act, Some(what.clone()))
        .await
    {
        Ok(asked) => asked,
        Err(refused) => return refused,
    };
    let Some(parsed) = parse_action(&action) else {
        let known: Vec<String> = MODEL_ACTIONS.into_iter().map(path_name).collect();
        let response = refusal(
            StatusCode::NOT_FOUND,
            "unknown_action",
            &format!("no action `{action}`; one of: {}", known.join(", ")),
        );
        admin.audit(&asked, what, response.status()).await;
        return response;
    };
    let Some(control) = admin.gateway.fleet().manager().control(&model) else {
        let response = refusal(
            StatusCode::NOT_FOUND,
            "model_not_found",
            &format!("no model `{model}`"),
        );
        admin.audit(&asked, what, response.status()).await;
        return response;
    };
    apply(parsed, &control);
    admin.audit(&asked, what, StatusCode::OK).await;
    json_response(
        StatusCode::OK,
        &json!({
            "model": control.model().as_str(),
            "action": path_name(parsed),
            "breaker": control.breaker().state().as_str(),
            "health": control.health().status().as_str(),
            "drained": control.is_drained(),
            "up": control.is_up(),
        }),
    )
}

async fn list_silences(
    State(admin): State<Admin>,
    headers: HeaderMap,
    extensions: Extensions,
) -> Response {
    let what = json!({ "request": "GET /admin/silences" });
    if let Err(refused) = admin
        .check(&headers, &extensions, Access::Read, Some(what))
        .await
    {
        return refused;
    }
    json_response(
        StatusCode::OK,
        &json!({ "silences": admin.alerts.silences.list() }),
    )
}

/// The body of `POST /admin/silences`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewSilence {
    /// How long: `30m`, `2h` …
    #[serde(rename = "for")]
    duration: String,
    rule: Option<String>,
    model: Option<String>,
    route: Option<String>,
    #[serde(default)]
    comment: String,
}

async fn add_silence(
    State(admin): State<Admin>,
    headers: HeaderMap,
    extensions: Extensions,
    body: axum::body::Body,
) -> Response {
    // Who asks is checked before the body is read: a caller without the token makes the
    // gateway read nothing, and its refusal records nothing it sent.
    let asked = match admin
        .check(
            &headers,
            &extensions,
            Access::Act,
            Some(json!({ "action": "silence" })),
        )
        .await
    {
        Ok(asked) => asked,
        Err(refused) => return refused,
    };
    let parsed: Result<NewSilence, String> = read_json(body, "a silence").await;
    let what = match &parsed {
        Ok(s) => json!({
            "action": "silence",
            "for": s.duration,
            "rule": s.rule,
            "model": s.model,
            "route": s.route,
            "comment": s.comment,
        }),
        Err(_) => json!({ "action": "silence" }),
    };
    let added = parsed.and_then(|new| {
        let duration: Duration =
            hive_config::parse_duration(&new.duration).map_err(|e| format!("`for`: {e}"))?;
        let mut spec = SilenceSpec::new(duration)
            .created_by(asked.access.actor())
            .comment(new.comment);
        if let Some(rule) = new.rule {
            spec = spec.rule(rule);
        }
        if let Some(model) = new.model {
            spec = spec.model(model);
        }
        if let Some(route) = new.route {
            spec = spec.route(route);
        }
        admin.alerts.silences.add(spec).map_err(|e| e.to_string())
    });
    let response = match added {
        Ok(silence) => json_response(StatusCode::CREATED, &json!(silence)),
        Err(problem) => refusal(StatusCode::BAD_REQUEST, "invalid_silence", &problem),
    };
    admin.audit(&asked, what, response.status()).await;
    response
}

async fn expire_silence(
    State(admin): State<Admin>,
    Path(id): Path<String>,
    headers: HeaderMap,
    extensions: Extensions,
) -> Response {
    let what = json!({ "action": "expire_silence", "silence": id });
    let asked = match admin
        .check(&headers, &extensions, Access::Act, Some(what.clone()))
        .await
    {
        Ok(asked) => asked,
        Err(refused) => return refused,
    };
    let response = match id.parse::<u64>() {
        Ok(n) => match admin.alerts.silences.expire(SilenceId(n)) {
            Ok(silence) => json_response(StatusCode::OK, &json!(silence)),
            Err(e) => refusal(StatusCode::NOT_FOUND, "silence_not_found", &e.to_string()),
        },
        Err(_) => refusal(
            StatusCode::BAD_REQUEST,
            "invalid_silence",
            &format!("`{id}` is not a silence id"),
        ),
    };
    admin.audit(&asked, what, response.status()).await;
    response
}

/// An admin request's JSON body, at most [`BODY_LIMIT`] bytes, as `T`; or what is wrong
/// with it, naming `what` was expected.
async fn read_json<T: serde::de::DeserializeOwned>(
    body: axum::body::Body,
    what: &str,
) -> Result<T, String> {
    match axum::body::to_bytes(body, BODY_LIMIT).await {
        Ok(body) => {
            serde_json::from_slice(&body).map_err(|e| format!("the body is not {what}: {e}"))
        }
        Err(_) => Err(format!("the body is over {BODY_LIMIT} bytes, or was cut")),
    }
}

/// The value of `name` in a request's query (`?name=value&…`), as sent.
pub(crate) fn query_param<'u>(uri: &'u Uri, name: &str) -> Option<&'u str> {
    uri.query()?.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=')?;
        (key == name).then_some(value)
    })
}

/// `?limit=N` of `GET /admin/audit`: `N`, or why it is not a count.
fn audit_limit(uri: &Uri) -> Result<usize, String> {
    match query_param(uri, "limit") {
        None => Ok(100),
        Some(n) => n
            .parse::<usize>()
            .map(|n| n.min(MAX_AUDIT_LINES))
            .map_err(|_| format!("`limit` is a count of lines, not `{n}`")),
    }
}

async fn audit(
    State(admin): State<Admin>,
    uri: Uri,
    headers: HeaderMap,
    extensions: Extensions,
) -> Response {
    let what = json!({ "request": "GET /admin/audit" });
    if let Err(refused) = admin
        .check(&headers, &extensions, Access::Read, Some(what))
        .await
    {
        return refused;
    }
    let limit = match audit_limit(&uri) {
        Ok(limit) => limit,
        Err(problem) => return refusal(StatusCode::BAD_REQUEST, "invalid_limit", &problem),
    };
    let fleet = admin.gateway.fleet();
    let Some(log) = AuditLog::from_config(fleet.config()) else {
        return json_response(StatusCode::OK, &json!({ "entries": [], "path": null }));
    };
    let path = log.path().display().to_string();
    match tokio::task::spawn_blocking(move || log.tail(limit)).await {
        Ok(Ok(entries)) => {
            json_response(StatusCode::OK, &json!({ "entries": entries, "path": path }))
        }
        Ok(Err(e)) => refusal(
            StatusCode::INTERNAL_SERVER_ERROR,
            "audit_unreadable",
            &e.to_string(),
        ),
        Err(_) => refusal(
            StatusCode::INTERNAL_SERVER_ERROR,
            "audit_unreadable",
            "the audit log's reader failed",
        ),
    }
    .into_response()
}

/// The chaos in force: on or off, its rules, what each rule injected.
fn chaos_json(chaos: &hive_chaos::ChaosHandle) -> Value {
    json!({
        "enabled": chaos.is_enabled(),
        "rules": chaos.rules(),
        "stats": chaos.stats(),
    })
}

async fn chaos_status(
    State(admin): State<Admin>,
    headers: HeaderMap,
    extensions: Extensions,
) -> Response {
    let what = json!({ "request": "GET /admin/chaos" });
    if let Err(refused) = admin
        .check(&headers, &extensions, Access::Read, Some(what))
        .await
    {
        return refused;
    }
    json_response(StatusCode::OK, &chaos_json(&admin.gateway.fleet().chaos()))
}

async fn set_chaos(
    State(admin): State<Admin>,
    headers: HeaderMap,
    extensions: Extensions,
    body: axum::body::Body,
) -> Response {
    let asked = match admin
        .check(
            &headers,
            &extensions,
            Access::Act,
            Some(json!({ "action": "chaos_rules" })),
        )
        .await
    {
        Ok(asked) => asked,
        Err(refused) => return refused,
    };
    let parsed: Result<hive_chaos::ChaosRules, String> =
        read_json(body, "a set of chaos rules").await;
    let chaos = admin.gateway.fleet().chaos();
    let (response, what) = match parsed {
        Ok(rules) => {
            let what = json!({ "action": "chaos_rules", "rules": rules });
            match chaos.set_rules(rules) {
                Ok(()) => (json_response(StatusCode::OK, &chaos_json(&chaos)), what),
                Err(e) => (
                    refusal(StatusCode::BAD_REQUEST, "invalid_chaos", &e.to_string()),
                    what,
                ),
            }
        }
        Err(problem) => (
            refusal(StatusCode::BAD_REQUEST, "invalid_chaos", &problem),
            json!({ "action": "chaos_rules" }),
        ),
    };
    admin.audit(&asked, what, response.status()).await;
    response
}

async fn switch_chaos(
    State(admin): State<Admin>,
    Path(switch): Path<String>,
    headers: HeaderMap,
    extensions: Extensions,
) -> Response {
    let what = json!({ "action": format!("chaos_{switch}") });
    let asked = match admin
        .check(&headers, &extensions, Access::Act, Some(what.clone()))
        .await
    {
        Ok(asked) => asked,
        Err(refused) => return refused,
    };
    let chaos = admin.gateway.fleet().chaos();
    let response = match switch.as_str() {
        "enable" => {
            chaos.enable();
            json_response(StatusCode::OK, &chaos_json(&chaos))
        }
        "disable" => {
            chaos.disable();
            json_response(StatusCode::OK, &chaos_json(&chaos))
        }
        _ => refusal(
            StatusCode::NOT_FOUND,
            "unknown_action",
            &format!("no chaos switch `{switch}`; one of: enable, disable"),
        ),
    };
    admin.audit(&asked, what, response.status()).await;
    response
}

/// What the dashboard shows of the chaos: on or off, how many rules, how many faults
/// injected so far.
fn chaos_summary(chaos: &hive_chaos::ChaosHandle) -> Value {
    json!({
        "enabled": chaos.is_enabled(),
        "rules": chaos.rules().rules.len(),
        "injected": chaos.stats().iter().map(|s| s.injected).sum::<u64>(),
    })
}
