//! [`LogChannel`]: one `tracing` event per alert.

use crate::alert::{
    channel::{DeliveryFuture, Notifier},
    types::{AlertStatus, Notification, Severity},
};

/// Writes every alert of a notification as one `tracing` event (target
/// `hive_monitor::alert`): `error` for a critical firing alert, `warn` for another firing
/// one, `info` for a resolution. Fields: `channel`, `rule`, `subject`, `status`,
/// `severity`, `escalated`, `since`, `summary`. Never fails.
#[derive(Clone, Copy, Debug, Default)]
pub struct LogChannel;

impl LogChannel {
    /// The log channel.
    pub const fn new() -> Self {
        Self
    }
}

impl Notifier for LogChannel {
    fn kind(&self) -> &'static str {
        "log"
    }

    fn deliver<'a>(&'a self, notification: &'a Notification) -> DeliveryFuture<'a> {
        for alert in &notification.alerts {
            macro_rules! log {
                ($level:ident, $message:literal) => {
                    tracing::$level!(
                        target: "hive_monitor::alert",
                        channel = %notification.channel,
                        rule = %alert.rule,
                        subject = %alert.subject,
                        status = %alert.status,
                        severity = %alert.severity,
                        escalated = alert.escalated,
                        since = %alert.started_at,
                        summary = %alert.summary,
                        $message
                    )
                };
            }
            match (alert.status, alert.severity) {
                (AlertStatus::Resolved, _) => log!(info, "alert resolved"),
                (AlertStatus::Firing, Severity::Critical) => log!(error, "alert firing"),
                (AlertStatus::Firing, Severity::Warning) => log!(warn, "alert firing"),
                (AlertStatus::Firing, Severity::Info) => log!(info, "alert firing"),
            }
        }
        Box::pin(std::future::ready(Ok(())))
    }
}
