//! Alerts: an [`AlertManager`] evaluates [`Rule`]s over a [`Monitor`](crate::Monitor)'s
//! snapshots and events, and tells Slack, email, webhooks or the log when a model goes down
//! — with the incident semantics of Prometheus Alertmanager, and without ever slowing a
//! model call.
//!
//! ```
//! use std::time::Duration;
//! use hive_core::{FailureClass, ModelId, Outcome};
//! use hive_monitor::{Monitor, MonitorConfig};
//! use hive_monitor::alert::{
//!     AlertManager, EmailChannel, LogChannel, SilenceSpec, SlackChannel, SmtpSecurity,
//! };
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let monitor = Monitor::start(MonitorConfig::default());
//! let alerts = AlertManager::builder()
//!     .channel("slack", SlackChannel::new("https://hooks.slack.com/services/T0/B0/secret")?)
//!     .channel(
//!         "email",
//!         EmailChannel::builder("smtp.example.com")
//!             .security(SmtpSecurity::StartTls)
//!             .credentials("alerts", "an app password")
//!             .from("Hive alerts <alerts@example.com>")
//!             .to("ops@example.com")
//!             .build()?,
//!     )
//!     .channel("log", LogChannel::new())
//!     .route("chat", ["gpt-4o", "claude-sonnet"])
//!     .dashboard_url("https://hive.example.com/dashboard")
//!     .start(&monitor)?; // the governance defaults: Rule::defaults()
//!
//! // Three failures in a row: `model_unavailable` fires at the next evaluation.
//! let gpt = monitor.model(ModelId::new("gpt-4o"));
//! for _ in 0..3 {
//!     gpt.record(&Outcome::failure(FailureClass::Timeout), Duration::from_secs(30));
//! }
//! tokio::time::sleep(Duration::from_secs(5)).await;
//! assert_eq!(alerts.alerts()[0].rule, "model_unavailable");
//!
//! // An operator silences the model for an hour (the admin API's call).
//! let silence = alerts.silences().add(
//!     SilenceSpec::new(Duration::from_secs(3600)).model("gpt-4o").created_by("ops"),
//! )?;
//! alerts.silences().expire(silence.id)?;
//! alerts.stop().await;
//! # Ok(())
//! # }
//! ```
//!
//! # Rules
//!
//! A [`Condition`] per rule, checked per model (or route) at every evaluation (every 5 s by
//! default, and at once on a breaker transition, a health change, a credentials refusal or
//! a config reload): consecutive failures, a failure rate over a window with a minimum of
//! calls, a breaker open or stuck open, every model of a route down, identity mismatches,
//! rejected credentials, a latency percentile above a bound, a route's availability below a
//! target, a gateway config reload refused ([`Rule::config_rejected`], about
//! [`Subject::Config`]).
//! Without rules, [`Rule::defaults`] apply — the governance system's: a model unavailable
//! after 3 consecutive failures goes to `slack` and `email`, escalated to critical after 5
//! minutes unresolved; a failure rate above 20% over 5 minutes goes to `slack`.
//!
//! # Incidents, as Alertmanager has them
//!
//! | | |
//! |---|---|
//! | deduplication | one alert per rule and subject (model, route or config), however many evaluations see it; one notification when it starts |
//! | grouping | the alerts of one rule form a group; a new group waits the **group wait** (default **30 s**) so that alerts starting together go in one message (three models down → one message) |
//! | group interval | a group notifies at most every **group interval** (default **5 min**): alerts joining it later, and resolutions, go out at its next flush |
//! | repeat | an unchanged incident is notified again after the **repeat interval** (default **4 h**) |
//! | resolve | a resolved notification when every alert a channel was told of has ended (or with the next message of the group) |
//! | inhibition | a firing [`Condition::RouteDown`] alert mutes every other alert about the route's models |
//! | escalation | an alert unresolved for its rule's [`Escalation::after`] is sent again at a higher severity, to more channels, at that moment |
//! | rate limit | per channel (default 20 per minute): a notification over it is dropped, counted, and sent at the group's next flush |
//! | silences | [`Silences::add`] / [`list`](Silences::list) / [`expire`](Silences::expire): matching alerts are muted until the silence ends |
//!
//! # Delivery
//!
//! Each channel has a bounded queue and a task of its own; the dispatcher only ever
//! `try_send`s, so a receiver that is down or hangs delays nothing but its own channel.
//! Each attempt runs under a timeout, inside our own
//! [`RetryLayer`](hive_retry::RetryLayer) and a
//! [`CircuitBreakerLayer`](hive_breaker::CircuitBreakerLayer) per channel (see [`Channel`]
//! for the defaults). A notification dropped (queue full, over the rate limit) or given up
//! (attempts exhausted, breaker open) is logged and counted:
//!
//! | metric | labels |
//! |---|---|
//! | `hive_alerts_sent_total` | `channel`, `rule` |
//! | `hive_alerts_failed_total` | `channel`, `rule` |
//! | `hive_alerts_dropped_total` | `channel` |
//!
//! Webhook URLs, SMTP passwords and signing keys never appear in `Debug` output, errors or
//! logs.
//!
//! # The webhook
//!
//! [`WebhookChannel`] POSTs each [`Notification`] as JSON, `Content-Type:
//! application/json`, with these headers:
//!
//! * `X-Hive-Notification-Id`: the notification's `id`, the same on every retry;
//! * with a signing key, `X-Hive-Timestamp` (seconds since the Unix epoch) and
//!   `X-Hive-Signature-256: sha256=<hex>`, the HMAC-SHA256 under the key of
//!   `{timestamp}.{raw body}` ([`sign`]). Check it in constant time and refuse old
//!   timestamps.
//!
//! The body (schema version 1; fields may be added, never renamed):
//!
//! ```json
//! {
//!   "version": 1,
//!   "id": "model_unavailable/7",
//!   "channel": "ops-webhook",
//!   "group": "model_unavailable",
//!   "status": "firing",                 // "firing" while any alert fires, else "resolved"
//!   "severity": "critical",             // "info" | "warning" | "critical"
//!   "title": "[FIRING:2] model_unavailable (critical)",
//!   "firing": 2,
//!   "resolved": 0,
//!   "alerts": [
//!     {
//!       "rule": "model_unavailable",
//!       "subject": {"kind": "model", "name": "gpt-4o"},   // or {"kind": "route", "name": "chat"}, {"kind": "config"}
//!       "status": "firing",
//!       "severity": "critical",
//!       "escalated": true,
//!       "summary": "gpt-4o failed 7 times in a row (breaker open)",
//!       "figures": {"consecutive_failures": 7},            // numbers; `_seconds`, `_ratio` (0..1)
//!       "started_at": "2024-05-01T12:03:04.250Z",
//!       "ended_at": null,                                  // RFC 3339 once resolved
//!       "duration_seconds": 312.0
//!     }
//!   ],
//!   "dashboard_url": "https://hive.example.com/dashboard", // or null
//!   "created_at": "2024-05-01T12:08:16.000Z"
//! }
//! ```

mod channel;
mod delivery;
mod dispatcher;
mod error;
mod manager;
mod rule;
mod silence;
mod types;

pub use channel::{
    DeliveryFuture, EmailChannel, EmailChannelBuilder, LogChannel, Notifier, SIGNATURE_HEADER,
    SlackChannel, SmtpSecurity, TIMESTAMP_HEADER, WebhookChannel, sign,
};
pub use delivery::{Channel, ChannelStats, RateLimit};
pub use error::{AlertError, DeliveryError};
pub use hive_retry::Jitter;
pub use manager::{
    AlertManager, AlertManagerBuilder, DEFAULT_EVALUATION_INTERVAL, DEFAULT_GROUP_INTERVAL,
    DEFAULT_GROUP_WAIT, DEFAULT_REPEAT_INTERVAL, FiringAlerts,
};
pub use rule::{
    CLUSTER_LINK_DOWN, CONFIG_REJECTED, Condition, Escalation, HIGH_FAILURE_RATE,
    MODEL_UNAVAILABLE, Percentile, Rule, Window,
};
pub use silence::{MAX_SILENCE, Silence, SilenceSpec, SilenceState, Silences};
pub use types::{
    Alert, AlertStatus, Figures, Notification, Severity, SilenceId, Subject, Timestamp,
};
