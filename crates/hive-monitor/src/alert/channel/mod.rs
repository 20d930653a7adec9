//! Channels: where notifications go. [`SlackChannel`] (an incoming webhook),
//! [`EmailChannel`] (SMTP), [`WebhookChannel`] (signed JSON), [`LogChannel`] (tracing), or
//! any [`Notifier`] of your own.
//!
//! A notifier makes **one attempt**; the channel around it (see
//! [`Channel`](crate::alert::Channel)) queues, rate-limits, times out, retries and breaks.

use std::{fmt, future::Future, pin::Pin};

use crate::alert::{error::DeliveryError, types::Notification};

mod email;
mod http;
mod log;
mod slack;
mod webhook;

pub use email::{EmailChannel, EmailChannelBuilder, SmtpSecurity};
pub use log::LogChannel;
pub use slack::SlackChannel;
pub use webhook::{SIGNATURE_HEADER, TIMESTAMP_HEADER, WebhookChannel, sign};

/// The future of one delivery attempt.
pub type DeliveryFuture<'a> = Pin<Box<dyn Future<Output = Result<(), DeliveryError>> + Send + 'a>>;

/// Delivers notifications to one receiver: one attempt per call.
///
/// Implement it for a receiver of your own (PagerDuty, a chat bot, a test double) and give
/// it to [`AlertManagerBuilder::channel`](crate::alert::AlertManagerBuilder::channel). Its
/// `Debug` must not show credentials. Return a [`DeliveryError`] that
/// [`is_permanent`](DeliveryError::is_permanent) when another attempt cannot help.
pub trait Notifier: fmt::Debug + Send + Sync + 'static {
    /// What kind of receiver it is (`slack`, `email`, `webhook`, `log`), for logs.
    fn kind(&self) -> &'static str;

    /// Makes one attempt to deliver `notification`.
    fn deliver<'a>(&'a self, notification: &'a Notification) -> DeliveryFuture<'a>;
}

/// A secret string (password, signing key): kept, used, never shown.
#[derive(Clone)]
pub(crate) struct Secret(String);

impl Secret {
    pub(crate) fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// Removes every given secret from a text that came from elsewhere (an error of the HTTP
/// or SMTP stack), before it reaches an error or a log line.
pub(crate) fn scrub(text: &str, secrets: &[&str]) -> String {
    let mut text = text.to_owned();
    for secret in secrets.iter().filter(|s| s.len() >= 4) {
        text = text.replace(secret, "[redacted]");
    }
    text
}

/// An error and its sources, one line, for an error message (then scrubbed).
pub(crate) fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let next = cause.to_string();
        if !text.contains(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        source = cause.source();
    }
    text
}
