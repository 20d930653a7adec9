//! What the alerting modules share: severities, subjects, alerts, notifications, wall-clock
//! timestamps and the way durations read. Every other alert module imports from here, and
//! this module imports from none of them.

use std::{
    collections::BTreeMap,
    fmt,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use hive_core::ModelId;
use serde::{Serialize, Serializer};

/// How urgent an alert is. Escalation raises it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Worth knowing; nobody needs to act now.
    Info,
    /// Something is wrong; the layers cope for now.
    Warning,
    /// An operator must act.
    Critical,
}

impl Severity {
    /// A short stable name, for messages and JSON.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Info => "info",
            Self::Warning => "warning",
            Self::Critical => "critical",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What an alert is about: one model, one route (a set of models), or the gateway's
/// configuration.
///
/// In JSON: `{"kind": "model", "name": "gpt-4o"}`, `{"kind": "route", "name": "chat"}` or
/// `{"kind": "config"}`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(tag = "kind", content = "name", rename_all = "snake_case")]
pub enum Subject {
    /// One model.
    Model(ModelId),
    /// One route.
    Route(String),
    /// The gateway's configuration (the one serving, and the reloads refused).
    Config,
    /// This replica's place in its cluster (cluster mode).
    Cluster,
}

impl Subject {
    /// The model, if the subject is one.
    pub fn model(&self) -> Option<ModelId> {
        match self {
            Self::Model(model) => Some(*model),
            Self::Route(_) | Self::Config | Self::Cluster => None,
        }
    }

    /// The route's name, if the subject is one.
    pub fn route(&self) -> Option<&str> {
        match self {
            Self::Model(_) | Self::Config | Self::Cluster => None,
            Self::Route(route) => Some(route),
        }
    }
}

impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Model(model) => write!(f, "model {model}"),
            Self::Route(route) => write!(f, "route {route}"),
            Self::Config => f.write_str("config"),
            Self::Cluster => f.write_str("cluster"),
        }
    }
}

/// Whether an alert (or a notification) is still firing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertStatus {
    /// The condition holds.
    Firing,
    /// The condition held and holds no longer.
    Resolved,
}

impl AlertStatus {
    /// `firing` or `resolved`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Firing => "firing",
            Self::Resolved => "resolved",
        }
    }
}

impl fmt::Display for AlertStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A wall-clock time, in milliseconds since the Unix epoch. Serialised as RFC 3339 in UTC
/// (`2024-05-01T12:03:04.250Z`); displayed as `2024-05-01 12:03:04 UTC`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(u64);

impl Timestamp {
    /// Now.
    pub fn now() -> Self {
        Self(
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
        )
    }

    /// The time `unix_ms` milliseconds after the Unix epoch.
    pub const fn from_unix_ms(unix_ms: u64) -> Self {
        Self(unix_ms)
    }

    /// Milliseconds since the Unix epoch.
    pub const fn unix_ms(self) -> u64 {
        self.0
    }

    /// RFC 3339 in UTC with milliseconds: `2024-05-01T12:03:04.250Z`.
    pub fn rfc3339(self) -> String {
        let (date, (h, m, s), ms) = self.civil();
        format!("{date}T{h:02}:{m:02}:{s:02}.{ms:03}Z")
    }

    /// Year-month-day, (hour, minute, second), milliseconds, in UTC.
    fn civil(self) -> (String, (u64, u64, u64), u64) {
        let secs = self.0 / 1000;
        let ms = self.0 % 1000;
        let days = secs / 86_400;
        let rest = secs % 86_400;
        let (year, month, day) =
            hive_core::civil::civil_from_days(i64::try_from(days).unwrap_or(i64::MAX / 2));
        (
            format!("{year:04}-{month:02}-{day:02}"),
            (rest / 3600, rest % 3600 / 60, rest % 60),
            ms,
        )
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (date, (h, m, s), _) = self.civil();
        write!(f, "{date} {h:02}:{m:02}:{s:02} UTC")
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.rfc3339())
    }
}

/// The id of a silence, as [`Silences::add`](crate::alert::Silences::add) gave it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct SilenceId(pub u64);

impl fmt::Display for SilenceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A duration as a person reads it: `45s`, `5m`, `5m 30s`, `2h 5m`, `3d 4h`, `250ms`.
pub(crate) fn human(d: Duration) -> String {
    let secs = d.as_secs();
    if secs == 0 {
        return format!("{}ms", d.as_millis());
    }
    let (days, hours, minutes, seconds) = (
        secs / 86_400,
        secs % 86_400 / 3600,
        secs % 3600 / 60,
        secs % 60,
    );
    let pair = |a: u64, ua: &str, b: u64, ub: &str| {
        if b == 0 {
            format!("{a}{ua}")
        } else {
            format!("{a}{ua} {b}{ub}")
        }
    };
    if days > 0 {
        pair(days, "d", hours, "h")
    } else if hours > 0 {
        pair(hours, "h", minutes, "m")
    } else if minutes > 0 {
        pair(minutes, "m", seconds, "s")
    } else {
        format!("{seconds}s")
    }
}

/// A share (0 to 1) as a percentage with one decimal: `35.0%`.
pub(crate) fn percent(share: f64) -> String {
    format!("{:.1}%", share * 100.0)
}

/// A figure as a person reads it: its label and its value (`failure rate`, `35.0%`).
pub(crate) fn figure_text(name: &str, value: f64) -> (String, String) {
    if let Some(base) = name.strip_suffix("_ratio") {
        let label = if base == "failure" {
            "failure rate"
        } else {
            base
        };
        (label.replace('_', " "), percent(value))
    } else if let Some(base) = name.strip_suffix("_seconds") {
        let shown = if value.is_finite() && value >= 0.0 {
            human(Duration::from_secs_f64(value.min(1e12)))
        } else {
            value.to_string()
        };
        (base.replace('_', " "), shown)
    } else if value.fract() == 0.0 && value.abs() < 1e15 {
        (name.replace('_', " "), format!("{}", value as i64))
    } else {
        (name.replace('_', " "), format!("{value:.3}"))
    }
}

/// A rule's name as a title: `model_unavailable` → `Model unavailable`.
pub(crate) fn title_case(name: &str) -> String {
    let spaced = name.replace(['_', '-'], " ");
    let mut chars = spaced.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// The figures of an alert by name, in base units (`_seconds`, `_ratio` from 0 to 1, plain
/// counts), as the rule read them at the last evaluation.
pub type Figures = BTreeMap<&'static str, f64>;

/// One alert as a notification carries it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Alert {
    /// The rule's name.
    pub rule: String,
    /// What it is about.
    pub subject: Subject,
    /// Firing or resolved.
    pub status: AlertStatus,
    /// The rule's severity, or its escalation's once escalated.
    pub severity: Severity,
    /// Whether it went unresolved long enough to be escalated.
    pub escalated: bool,
    /// One line that says what is wrong, with the figures (`gpt-4o failed 3 times in a row`).
    pub summary: String,
    /// The figures behind the summary, as the last evaluation read them.
    pub figures: Figures,
    /// When the condition started to hold.
    pub started_at: Timestamp,
    /// When it stopped holding, once resolved.
    pub ended_at: Option<Timestamp>,
    /// How long it held (until now, or until it ended).
    #[serde(rename = "duration_seconds", serialize_with = "seconds")]
    pub duration: Duration,
}

/// What one channel is sent: the alerts of one rule (its group), firing and resolved
/// together, as Alertmanager groups them. The JSON webhook's body is this, serialised (see
/// the [module docs](crate::alert) for the schema).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Notification {
    /// The version of this schema: 1.
    pub version: u32,
    /// A unique id, the same on every retry of this notification (receivers may use it to
    /// drop duplicates): `{group}/{sequence}`.
    pub id: String,
    /// The channel it is for.
    pub channel: String,
    /// The group: the rule's name.
    pub group: String,
    /// `firing` while any of its alerts is, `resolved` once all are.
    pub status: AlertStatus,
    /// The highest severity among its firing alerts (or among all, once resolved).
    pub severity: Severity,
    /// A one-line title: `[FIRING:3] model_unavailable (warning)`.
    pub title: String,
    /// Firing alerts in it.
    pub firing: usize,
    /// Resolved alerts in it.
    pub resolved: usize,
    /// Its alerts, firing ones first, then by subject.
    pub alerts: Vec<Alert>,
    /// Where the operator looks next, when configured.
    pub dashboard_url: Option<String>,
    /// When it was built.
    pub created_at: Timestamp,
}

impl Notification {
    /// The firing alerts.
    pub fn firing_alerts(&self) -> impl Iterator<Item = &Alert> {
        self.alerts
            .iter()
            .filter(|a| a.status == AlertStatus::Firing)
    }

    /// The resolved alerts.
    pub fn resolved_alerts(&self) -> impl Iterator<Item = &Alert> {
        self.alerts
            .iter()
            .filter(|a| a.status == AlertStatus::Resolved)
    }

    /// The subjects of the alerts, comma-separated, at most `max` of them (`a, b and 3 more`).
    pub(crate) fn subjects(&self, max: usize) -> String {
        let names: Vec<String> = self
            .alerts
            .iter()
            .map(|a| match &a.subject {
                Subject::Model(m) => m.to_string(),
                Subject::Route(r) => format!("route {r}"),
                Subject::Config => "config".to_owned(),
                Subject::Cluster => "cluster".to_owned(),
            })
            .collect();
        if names.len() <= max {
            names.join(", ")
        } else {
            format!("{} and {} more", names[..max].join(", "), names.len() - max)
        }
    }
}

fn seconds<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_read_as_utc() {
        assert_eq!(
            Timestamp::from_unix_ms(0).rfc3339(),
            "1970-01-01T00:00:00.000Z"
        );
        // 2024-02-29 23:59:59.250 UTC: a leap day.
        let t = Timestamp::from_unix_ms(1_709_251_199_250);
        assert_eq!(t.rfc3339(), "2024-02-29T23:59:59.250Z");
        assert_eq!(t.to_string(), "2024-02-29 23:59:59 UTC");
        assert_eq!(
            Timestamp::from_unix_ms(1_735_689_600_000).rfc3339(),
            "2025-01-01T00:00:00.000Z"
        );
    }

    #[test]
    fn durations_read_as_a_person_says_them() {
        let s = Duration::from_secs;
        assert_eq!(human(Duration::from_millis(250)), "250ms");
        assert_eq!(human(s(45)), "45s");
        assert_eq!(human(s(300)), "5m");
        assert_eq!(human(s(330)), "5m 30s");
        assert_eq!(human(s(7500)), "2h 5m");
        assert_eq!(human(s(3 * 86_400 + 4 * 3600 + 59)), "3d 4h");
        assert_eq!(percent(0.35), "35.0%");
        let text = |n, v| figure_text(n, v);
        assert_eq!(
            text("failure_ratio", 0.35),
            ("failure rate".into(), "35.0%".into())
        );
        assert_eq!(
            text("open_seconds", 330.0),
            ("open".into(), "5m 30s".into())
        );
        assert_eq!(
            text("consecutive_failures", 3.0),
            ("consecutive failures".into(), "3".into())
        );
        assert_eq!(title_case("model_unavailable"), "Model unavailable");
    }
}
