//! [`WebhookChannel`]: the notification as JSON, signed with HMAC-SHA256.

use std::fmt;

use bytes::Bytes;
use hmac::{Hmac, Mac};
use http::{HeaderMap, HeaderName, HeaderValue};
use sha2::Sha256;

use crate::alert::{
    channel::{
        DeliveryFuture, Notifier, Secret,
        http::{HttpPoster, SecretUrl},
    },
    error::{AlertError, DeliveryError},
    types::{Notification, Timestamp},
};

/// The header that carries the signature: `sha256=` and the lowercase hex HMAC-SHA256, keyed
/// with the signing key, of the timestamp, a `.`, and the body (`{timestamp}.{body}`).
pub const SIGNATURE_HEADER: &str = "x-hive-signature-256";
/// The header that carries the time of signing, in seconds since the Unix epoch; signed
/// with the body, so a receiver can refuse old (replayed) deliveries.
pub const TIMESTAMP_HEADER: &str = "x-hive-timestamp";
/// The header that carries the notification's id (the same on every retry).
const ID_HEADER: &str = "x-hive-notification-id";

/// The shortest signing key accepted.
const MIN_KEY: usize = 16;

type HmacSha256 = Hmac<Sha256>;

/// The signature header's value for a body sent at `timestamp` (seconds since the Unix
/// epoch): `sha256=` and the hex HMAC-SHA256 of `{timestamp}.{body}` under `key`. A
/// receiver recomputes it over the raw body it received and compares in constant time.
pub fn sign(key: &[u8], timestamp: u64, body: &[u8]) -> String {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes a key of any length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    let mut hex = String::with_capacity(7 + 64);
    hex.push_str("sha256=");
    for byte in digest {
        hex.push(char::from(b"0123456789abcdef"[usize::from(byte >> 4)]));
        hex.push(char::from(b"0123456789abcdef"[usize::from(byte & 0xf)]));
    }
    hex
}

/// Posts every notification as JSON (the [`Notification`] serialised; schema in the
/// [module docs](crate::alert#the-webhook)) to a URL, signed when a key is set.
///
/// Headers: `Content-Type: application/json`, `X-Hive-Notification-Id` (the same on every
/// retry), and with a key `X-Hive-Timestamp` and `X-Hive-Signature-256` (see [`sign`]).
///
/// The URL and the key are secrets: neither shows in `Debug`, errors or logs.
#[derive(Clone)]
pub struct WebhookChannel {
    poster: HttpPoster,
    key: Option<Secret>,
}

impl WebhookChannel {
    /// A channel posting to `url` (`http://` or `https://`), unsigned.
    pub fn new(url: impl AsRef<str>) -> Result<Self, AlertError> {
        Ok(Self {
            poster: HttpPoster::new(SecretUrl::parse("webhook.url", url.as_ref())?),
            key: None,
        })
    }

    /// Signs every delivery with `key` (at least 16 bytes; 32 random bytes are best).
    pub fn signing_key(mut self, key: impl Into<String>) -> Result<Self, AlertError> {
        let key = key.into();
        if key.len() < MIN_KEY {
            return Err(AlertError::invalid(
                "webhook.signing_key",
                format!("must be at least {MIN_KEY} bytes"),
            ));
        }
        self.key = Some(Secret::new(key));
        Ok(self)
    }

    fn headers(&self, id: &str, body: &[u8]) -> Result<HeaderMap, DeliveryError> {
        let mut headers = HeaderMap::new();
        let value = |text: &str| {
            HeaderValue::from_str(text).map_err(|_| DeliveryError::Build {
                reason: "a header value".into(),
            })
        };
        headers.insert(HeaderName::from_static(ID_HEADER), value(id)?);
        if let Some(key) = &self.key {
            let timestamp = Timestamp::now().unix_ms() / 1000;
            let mut signature = value(&sign(key.expose().as_bytes(), timestamp, body))?;
            signature.set_sensitive(true);
            headers.insert(
                HeaderName::from_static(TIMESTAMP_HEADER),
                value(&timestamp.to_string())?,
            );
            headers.insert(HeaderName::from_static(SIGNATURE_HEADER), signature);
        }
        Ok(headers)
    }
}

impl Notifier for WebhookChannel {
    fn kind(&self) -> &'static str {
        "webhook"
    }

    fn deliver<'a>(&'a self, notification: &'a Notification) -> DeliveryFuture<'a> {
        Box::pin(async move {
            let body = serde_json::to_vec(notification).map_err(|e| DeliveryError::Build {
                reason: e.to_string(),
            })?;
            let headers = self.headers(&notification.id, &body)?;
            self.poster.post(Bytes::from(body), headers).await
        })
    }
}

impl fmt::Debug for WebhookChannel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookChannel")
            .field("url", &self.poster.url)
            .field("signing_key", &self.key.as_ref().map(|_| "[redacted]"))
            .finish()
    }
}
