//! [`SlackChannel`]: a message to a Slack incoming webhook.

use std::fmt;

use bytes::Bytes;
use http::HeaderMap;
use serde_json::{Value, json};

use crate::alert::{
    channel::{
        DeliveryFuture, Notifier,
        http::{HttpPoster, SecretUrl},
    },
    error::AlertError,
    types::{Alert, AlertStatus, Notification, Severity, figure_text, human, title_case},
};

/// Alerts shown one by one in a message; the rest are counted.
const SHOWN: usize = 10;

/// Posts notifications to a Slack incoming webhook (`https://hooks.slack.com/services/…`).
///
/// The message reads on its own: a header with the rule and how many alerts fire, then per
/// alert the model (or route), what is wrong with the current figures, since when (and for
/// how long), its severity, and a button to the dashboard when one is configured. The
/// notification's `text` is the one-line fallback shown in notifications.
///
/// The webhook URL is a secret (its path is the token): it never shows in `Debug`, errors
/// or logs.
#[derive(Clone)]
pub struct SlackChannel {
    poster: HttpPoster,
}

impl SlackChannel {
    /// A channel posting to `webhook_url` (`http://` or `https://`).
    pub fn new(webhook_url: impl AsRef<str>) -> Result<Self, AlertError> {
        Ok(Self {
            poster: HttpPoster::new(SecretUrl::parse("slack.webhook_url", webhook_url.as_ref())?),
        })
    }

    /// The message posted for `notification` (Slack's Block Kit JSON).
    pub fn message(notification: &Notification) -> Value {
        let n = notification;
        let icon = icon(n.status, n.severity);
        let title = match n.status {
            AlertStatus::Firing => format!(
                "{icon} {} · {} firing{}",
                title_case(&n.group),
                n.firing,
                if n.resolved > 0 {
                    format!(", {} resolved", n.resolved)
                } else {
                    String::new()
                }
            ),
            AlertStatus::Resolved => format!("{icon} Resolved: {}", title_case(&n.group)),
        };
        let mut blocks = vec![json!({
            "type": "header",
            "text": {"type": "plain_text", "text": truncate(&title, 150), "emoji": true}
        })];
        for alert in n.alerts.iter().take(SHOWN) {
            blocks.push(alert_block(alert));
        }
        if n.alerts.len() > SHOWN {
            blocks.push(json!({
                "type": "context",
                "elements": [{"type": "mrkdwn", "text": format!("… and {} more", n.alerts.len() - SHOWN)}]
            }));
        }
        if let Some(url) = &n.dashboard_url {
            blocks.push(json!({
                "type": "actions",
                "elements": [{
                    "type": "button",
                    "text": {"type": "plain_text", "text": "Open the dashboard"},
                    "url": url
                }]
            }));
        }
        blocks.push(json!({
            "type": "context",
            "elements": [{
                "type": "mrkdwn",
                "text": format!("hive-resilience · rule `{}` · {} · notification `{}`", n.group, n.severity, n.id)
            }]
        }));
        json!({
            "text": format!("{icon} {}: {}", n.title, n.subjects(5)),
            "blocks": blocks,
        })
    }
}

fn icon(status: AlertStatus, severity: Severity) -> &'static str {
    match (status, severity) {
        (AlertStatus::Resolved, _) => "✅",
        (AlertStatus::Firing, Severity::Critical) => "🚨",
        (AlertStatus::Firing, Severity::Warning) => "⚠️",
        (AlertStatus::Firing, Severity::Info) => "ℹ️",
    }
}

/// Slack's mrkdwn treats `&`, `<` and `>` as markup.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_owned()
    } else {
        let mut cut: String = text.chars().take(max - 1).collect();
        cut.push('…');
        cut
    }
}

fn alert_block(alert: &Alert) -> Value {
    let subject = match &alert.subject {
        crate::alert::Subject::Model(m) => format!("*{}*", escape(m.as_str())),
        crate::alert::Subject::Route(r) => format!("*route {}*", escape(r)),
        crate::alert::Subject::Config => "*config*".to_owned(),
        crate::alert::Subject::Cluster => "*cluster*".to_owned(),
    };
    let when = match (alert.status, alert.ended_at) {
        (AlertStatus::Resolved, Some(ended)) => format!(
            "resolved after {} (from {} to {})",
            human(alert.duration),
            alert.started_at,
            ended
        ),
        _ => format!(
            "firing since {} ({})",
            alert.started_at,
            human(alert.duration)
        ),
    };
    let severity = if alert.escalated {
        format!("*{}* (escalated)", alert.severity)
    } else {
        alert.severity.to_string()
    };
    let text = format!(
        "{} {subject} — {}\n_{when}_ · {severity}",
        icon(alert.status, alert.severity),
        escape(&alert.summary)
    );
    let fields: Vec<Value> = alert
        .figures
        .iter()
        .take(10)
        .map(|(name, value)| {
            let (label, value) = figure_text(name, *value);
            json!({"type": "mrkdwn", "text": format!("*{label}*\n{value}")})
        })
        .collect();
    let mut block = json!({
        "type": "section",
        "text": {"type": "mrkdwn", "text": truncate(&text, 2900)}
    });
    if !fields.is_empty() {
        block["fields"] = Value::Array(fields);
    }
    block
}

impl Notifier for SlackChannel {
    fn kind(&self) -> &'static str {
        "slack"
    }

    fn deliver<'a>(&'a self, notification: &'a Notification) -> DeliveryFuture<'a> {
        Box::pin(async move {
            let body = Bytes::from(Self::message(notification).to_string());
            self.poster.post(body, HeaderMap::new()).await
        })
    }
}

impl fmt::Debug for SlackChannel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SlackChannel")
            .field("webhook_url", &self.poster.url)
            .finish()
    }
}
