//! The live dashboard at `/dashboard`: one page, its script and style compiled into the
//! binary (the machine running it may be offline), fed by Server-Sent Events.
//!
//! | Method and path | Access | What |
//! |---|---|---|
//! | `GET /dashboard` | public | the page (it holds no data and no secret) |
//! | `GET /dashboard/dashboard.js`, `…/dashboard.css` | public | its script and style |
//! | `GET /dashboard/history?minutes=N` | read | every model's figures per minute over the last `N` minutes (default 60, at most [`MAX_HISTORY_MINUTES`]) from the history, so that the charts show the last hour after a restart; 404 when the config keeps no history |
//! | `GET /dashboard/report` | read | the [`Report`](crate::report::Report) of the last 24 hours from the history, as one self-contained page; 404 when there is none |
//! | `GET /dashboard/events` | read | `event: status` with [`Admin::status`]'s JSON at once, then every second and within [`CHANGE_DELAY`] of a breaker, health, control or config change |
//!
//! The page reads the events with `fetch` (an `EventSource` cannot send a header), with the
//! token the operator typed, kept in the tab's session storage; its buttons call the admin
//! API. A stream ends when the gateway shuts down, so that no dashboard holds a graceful
//! shutdown open.
//!
//! [`Dashboard::router`] is also a `Router` any axum app can mount beside its own routes.

use std::{
    convert::Infallible,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use axum::{
    Router,
    body::Body,
    extract::State,
    http::{Extensions, HeaderMap, HeaderValue, StatusCode, Uri, header},
    response::{IntoResponse, Response},
    routing::get,
};
use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use hive_core::ResilienceEvent;
use hive_monitor::TimedEvent;
use serde_json::json;
use tokio::{
    sync::{broadcast, watch},
    time::Instant,
};

use crate::{
    admin::{Access, Admin, query_param},
    history::unix_ms,
    http::json_response,
    report::{self, ReportError, Unreportable},
};

/// How often the dashboard's stream sends the status when nothing changed.
pub const STATUS_EVERY: Duration = Duration::from_secs(1);
/// How long after a change the status goes out (changes that come together go as one).
pub const CHANGE_DELAY: Duration = Duration::from_millis(100);

/// The most minutes one `GET /dashboard/history` returns: a day.
pub const MAX_HISTORY_MINUTES: u64 = 24 * 60;

const PAGE: &str = include_str!("../assets/dashboard.html");
const SCRIPT: &str = include_str!("../assets/dashboard.js");
const STYLE: &str = include_str!("../assets/dashboard.css");

/// The most dashboard streams open at once: each builds the status every second.
pub const MAX_STREAMS: usize = 64;

/// The dashboard's routes over an [`Admin`] (its status and its access rules).
#[derive(Clone, Debug)]
pub struct Dashboard {
    admin: Admin,
    stopping: watch::Receiver<bool>,
    /// Streams open now.
    streams: Arc<AtomicUsize>,
}

/// One open stream, counted while it lives.
struct StreamSlot(Arc<AtomicUsize>);

impl StreamSlot {
    /// A slot, unless [`MAX_STREAMS`] are open.
    fn take(streams: &Arc<AtomicUsize>) -> Option<Self> {
        streams
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |open| {
                (open < MAX_STREAMS).then_some(open + 1)
            })
            .ok()
            .map(|_| Self(Arc::clone(streams)))
    }
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Dashboard {
    /// The dashboard of `admin`; its streams end when `stopping` turns true.
    pub fn new(admin: Admin, stopping: watch::Receiver<bool>) -> Self {
        Self {
            admin,
            stopping,
            streams: Arc::default(),
        }
    }

    /// `/dashboard`, what it loads, and the admin API its buttons call (`/admin/…`).
    /// Serve it with `into_make_service_with_connect_info::<SocketAddr>()` so that the
    /// audit log records each action's source address.
    pub fn router(&self) -> Router {
        Router::new()
            .route("/dashboard", get(|| async { asset(PAGE, "text/html") }))
            .route("/dashboard/", get(|| async { asset(PAGE, "text/html") }))
            .route(
                "/dashboard/dashboard.js",
                get(|| async { asset(SCRIPT, "text/javascript") }),
            )
            .route(
                "/dashboard/dashboard.css",
                get(|| async { asset(STYLE, "text/css") }),
            )
            .route("/dashboard/events", get(events))
            .route("/dashboard/history", get(history))
            .route("/dashboard/report", get(report))
            .with_state(self.clone())
            .merge(self.admin.router())
    }
}

/// A compiled-in asset, with a policy that lets the page load only its own files.
fn asset(body: &'static str, kind: &'static str) -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_str(&format!("{kind}; charset=utf-8"))
                    .unwrap_or(HeaderValue::from_static("text/plain")),
            ),
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(
                    // Inline styles: the report the page opens from memory (a blob, which
                    // inherits this policy) carries its own. No inline script, ever.
                    "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'",
                ),
            ),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ],
        body,
    )
        .into_response()
}

/// Whether an event changes what the dashboard shows at once (a state, not a count).
fn changes_state(event: &ResilienceEvent) -> bool {
    matches!(
        event,
        ResilienceEvent::CircuitTransition { .. }
            | ResilienceEvent::HealthChanged { .. }
            | ResilienceEvent::Control { .. }
            | ResilienceEvent::ConfigReload { .. }
            | ResilienceEvent::ClusterLink { .. }
    )
}

async fn events(
    State(dashboard): State<Dashboard>,
    headers: HeaderMap,
    extensions: Extensions,
) -> Response {
    if let Err(refused) = dashboard
        .admin
        .check(&headers, &extensions, Access::Read, None)
        .await
    {
        return refused;
    }
    let Some(slot) = StreamSlot::take(&dashboard.streams) else {
        return json_response(
            StatusCode::SERVICE_UNAVAILABLE,
            &json!({ "error": { "message": format!("{MAX_STREAMS} dashboards are open already"), "type": "admin_error", "code": "too_many_streams" } }),
        );
    };
    let events = dashboard.admin.monitor().subscribe();
    let stream = status_stream(
        dashboard.admin.clone(),
        slot,
        headers,
        events,
        dashboard.stopping.clone(),
    );
    let mut response = Response::new(Body::from_stream(stream));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    *response.status_mut() = StatusCode::OK;
    response
}

/// `?minutes=N`: `N`, or why it is not a count.
fn minutes_asked(uri: &Uri) -> Result<u64, String> {
    match query_param(uri, "minutes") {
        None => Ok(60),
        Some(n) => match n.parse::<u64>() {
            Ok(n) if n > 0 => Ok(n.min(MAX_HISTORY_MINUTES)),
            _ => Err(format!(
                "`minutes` is a count of minutes above 0, not `{n}`"
            )),
        },
    }
}

async fn history(
    State(dashboard): State<Dashboard>,
    uri: Uri,
    headers: HeaderMap,
    extensions: Extensions,
) -> Response {
    let admin = &dashboard.admin;
    if let Err(refused) = admin.check(&headers, &extensions, Access::Read, None).await {
        return refused;
    }
    let minutes = match minutes_asked(&uri) {
        Ok(minutes) => minutes,
        Err(problem) => {
            return json_response(
                StatusCode::BAD_REQUEST,
                &json!({ "error": { "message": problem, "type": "admin_error", "code": "invalid_minutes" } }),
            );
        }
    };
    let Some(history) = admin.gateway().history() else {
        return json_response(
            StatusCode::NOT_FOUND,
            &json!({ "error": { "message": "this gateway keeps no history (history.path: off)", "type": "admin_error", "code": "no_history" } }),
        );
    };
    admin.gateway().flush_history().await;
    let to = unix_ms();
    let from = to.saturating_sub(minutes * 60_000);
    match history.minutes(from, to, None).await {
        Ok(rows) => {
            let rows: Vec<serde_json::Value> = rows
                .iter()
                .map(|row| {
                    json!({
                        "minute_unix_ms": row.minute_unix_ms,
                        "model": row.model,
                        "requests": row.requests,
                        "successes": row.successes,
                        "failures": row.failed(),
                        "failures_by_class": row.failures,
                        "client_errors": row.client_errors,
                        "rejected": row.rejected,
                        "p50_ms": row.p50_ms,
                        "p95_ms": row.p95_ms,
                        "p99_ms": row.p99_ms,
                        "failovers": row.failovers_from,
                        "failovers_to": row.failovers_to,
                    })
                })
                .collect();
            json_response(
                StatusCode::OK,
                &json!({ "from_unix_ms": from, "to_unix_ms": to, "minutes": rows }),
            )
        }
        Err(e) => json_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            &json!({ "error": { "message": e.to_string(), "type": "admin_error", "code": "history_unreadable" } }),
        ),
    }
}

/// How far back `GET /dashboard/report` looks.
pub const REPORT_PERIOD: Duration = Duration::from_secs(24 * 3600);

async fn report(
    State(dashboard): State<Dashboard>,
    headers: HeaderMap,
    extensions: Extensions,
) -> Response {
    let admin = &dashboard.admin;
    if let Err(refused) = admin.check(&headers, &extensions, Access::Read, None).await {
        return refused;
    }
    let not_found = |message: String| {
        json_response(
            StatusCode::NOT_FOUND,
            &json!({ "error": { "message": message, "type": "admin_error", "code": "no_report" } }),
        )
    };
    let Some(history) = admin.gateway().history() else {
        return not_found("this gateway keeps no history (history.path: off)".to_owned());
    };
    let to = unix_ms();
    let from = to.saturating_sub(u64::try_from(REPORT_PERIOD.as_millis()).unwrap_or(u64::MAX));
    // What the recorder holds of the minute under way is in the report too.
    admin.gateway().flush_history().await;
    match report::from_history(history, from, to).await {
        Ok(report) => (
            [
                (
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/html; charset=utf-8"),
                ),
                // The page is self-contained: its own inline style, nothing to load.
                (
                    header::CONTENT_SECURITY_POLICY,
                    HeaderValue::from_static(
                        "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'none'",
                    ),
                ),
                (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
            ],
            report.to_html(),
        )
            .into_response(),
        Err(ReportError::Report(Unreportable::Empty { .. })) => not_found("the history holds nothing from the last 24 hours yet".to_owned()),
        Err(e) => json_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            &json!({ "error": { "message": e.to_string(), "type": "admin_error", "code": "report_failed" } }),
        ),
    }
}

/// What the stream waits on between two events.
struct Feed {
    admin: Admin,
    /// Counted among the open streams until the stream ends.
    _slot: StreamSlot,
    /// The request's headers: its token is checked again before every status, against
    /// the config serving then (a reload may have changed the tokens).
    headers: HeaderMap,
    events: broadcast::Receiver<TimedEvent>,
    stopping: watch::Receiver<bool>,
    /// When the next status goes out.
    next: Instant,
    first: bool,
}

/// The status at once, then every [`STATUS_EVERY`], sooner after a change; ends when the
/// gateway stops, or when the request's token no longer opens the reads (a reload took it
/// away).
fn status_stream(
    admin: Admin,
    slot: StreamSlot,
    headers: HeaderMap,
    events: broadcast::Receiver<TimedEvent>,
    stopping: watch::Receiver<bool>,
) -> impl Stream<Item = Result<Bytes, Infallible>> + Send {
    let feed = Feed {
        admin,
        _slot: slot,
        headers,
        events,
        stopping,
        next: Instant::now(),
        first: true,
    };
    futures_util::stream::unfold(feed, |mut feed| async move {
        if !feed.first {
            loop {
                if *feed.stopping.borrow() {
                    return None;
                }
                tokio::select! {
                    () = tokio::time::sleep_until(feed.next) => break,
                    changed = feed.stopping.changed() => {
                        if changed.is_err() {
                            return None;
                        }
                    }
                    event = feed.events.recv() => match event {
                        Ok(event) if changes_state(&event.event) => {
                            feed.next = feed.next.min(Instant::now() + CHANGE_DELAY);
                        }
                        Ok(_) => {}
                        // Missed events: the next status shows where things are.
                        Err(broadcast::error::RecvError::Lagged(_)) => {
                            feed.next = feed.next.min(Instant::now() + CHANGE_DELAY);
                        }
                        Err(broadcast::error::RecvError::Closed) => {
                            tokio::time::sleep_until(feed.next).await;
                            break;
                        }
                    },
                }
            }
        }
        if !feed.admin.may_read(&feed.headers) {
            return None;
        }
        feed.first = false;
        feed.next = Instant::now() + STATUS_EVERY;
        let status = feed.admin.status();
        let event = format!("event: status\ndata: {status}\n\n");
        Some((Ok(Bytes::from(event)), feed))
    })
    .boxed()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_assets_are_compiled_in_and_load_nothing_from_elsewhere() {
        assert!(PAGE.contains("dashboard.js") && PAGE.contains("dashboard.css"));
        for text in [PAGE, SCRIPT, STYLE] {
            // SVG's namespace is a name, not a load.
            let text = text.replace("http://www.w3.org/2000/svg", "");
            assert!(!text.contains("http://") && !text.contains("https://"));
        }
    }

    #[test]
    fn at_most_max_streams_are_open_and_a_closed_one_frees_its_slot() {
        let streams = Arc::default();
        let open: Vec<StreamSlot> = (0..MAX_STREAMS)
            .map(|_| StreamSlot::take(&streams).expect("a slot"))
            .collect();
        assert!(StreamSlot::take(&streams).is_none());
        drop(open.into_iter().next());
        assert!(StreamSlot::take(&streams).is_some());
    }

    #[test]
    fn a_state_change_is_sent_sooner_a_count_is_not() {
        let model = hive_core::ModelId::new("gpt-4o");
        assert!(changes_state(&ResilienceEvent::Control {
            model,
            action: hive_core::ControlAction::Drain,
            by: hive_core::Actor::Operator,
        }));
    }
}
