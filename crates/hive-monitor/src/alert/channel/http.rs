//! The HTTP side of the Slack and webhook channels: a secret URL, and one POST of JSON over
//! hyper-util's pooled client with rustls (webpki roots), `http://` or `https://`.

use std::{fmt, time::SystemTime};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Request, Uri, header};
use http_body_util::{BodyExt, Full, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::{
    client::legacy::{Client, connect::HttpConnector},
    rt::TokioExecutor,
};

use crate::alert::{
    channel::{chain, scrub},
    error::{AlertError, DeliveryError},
};

/// The most bytes of a receiver's answer read (and thrown away, so the connection can be
/// reused); the status decides.
const MAX_ANSWER: usize = 16 * 1024;

/// A URL whose path and query are secrets (a Slack webhook's token, a webhook's key):
/// shown as `https://host/…`, never whole.
#[derive(Clone)]
pub(crate) struct SecretUrl {
    uri: Uri,
    /// The URL as given, and its path-and-query: scrubbed from any text.
    whole: String,
    path: String,
    /// `scheme://host[:port]/…`.
    shown: String,
}

impl SecretUrl {
    /// Parses `url`; the error names `field`, never the URL.
    pub(crate) fn parse(field: &'static str, url: &str) -> Result<Self, AlertError> {
        let uri: Uri = url
            .trim()
            .parse()
            .map_err(|_| AlertError::invalid(field, "is not a URL"))?;
        let scheme = match uri.scheme_str() {
            Some(scheme @ ("http" | "https")) => scheme.to_owned(),
            _ => {
                return Err(AlertError::invalid(
                    field,
                    "must start with http:// or https://",
                ));
            }
        };
        let Some(authority) = uri.authority() else {
            return Err(AlertError::invalid(field, "has no host"));
        };
        if authority.as_str().contains('@') {
            return Err(AlertError::invalid(
                field,
                "must not carry credentials before the host",
            ));
        }
        let shown = format!("{scheme}://{}/…", authority.as_str());
        Ok(Self {
            path: uri
                .path_and_query()
                .map(|p| p.as_str().to_owned())
                .unwrap_or_default(),
            whole: url.trim().to_owned(),
            uri,
            shown,
        })
    }

    /// Removes the URL, its path and its query from `text`.
    pub(crate) fn scrub(&self, text: &str) -> String {
        let query = self.uri.query().unwrap_or_default();
        let path = if self.path.len() > 1 {
            self.path.as_str()
        } else {
            ""
        };
        scrub(text, &[self.whole.as_str(), path, query])
    }
}

impl fmt::Debug for SecretUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.shown)
    }
}

/// POSTs JSON to one secret URL.
#[derive(Clone)]
pub(crate) struct HttpPoster {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    pub(crate) url: SecretUrl,
}

impl HttpPoster {
    pub(crate) fn new(url: SecretUrl) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.enforce_http(false);
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_webpki_roots()
            .https_or_http()
            .enable_http1()
            .enable_http2()
            .wrap_connector(connector);
        Self {
            client: Client::builder(TokioExecutor::new()).build(https),
            url,
        }
    }

    /// One POST of `body` with `headers`: `Ok` on a 2xx answer.
    pub(crate) async fn post(&self, body: Bytes, headers: HeaderMap) -> Result<(), DeliveryError> {
        let mut request = Request::builder()
            .method(Method::POST)
            .uri(self.url.uri.clone())
            .body(Full::new(body))
            .map_err(|e| DeliveryError::Build {
                reason: self.url.scrub(&e.to_string()),
            })?;
        let request_headers = request.headers_mut();
        request_headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        request_headers.insert(
            header::USER_AGENT,
            HeaderValue::from_static(concat!("hive-resilience/", env!("CARGO_PKG_VERSION"))),
        );
        request_headers.extend(headers);
        let response = self
            .client
            .request(request)
            .await
            .map_err(|e| DeliveryError::Connect {
                reason: self.url.scrub(&chain(&e)),
            })?;
        let status = response.status();
        let retry_after = response
            .headers()
            .get(header::RETRY_AFTER)
            .and_then(|value| hive_core::parse_retry_after(value, SystemTime::now()));
        // Read a bounded answer, so the connection returns to the pool; its text is the
        // receiver's and stays out of errors.
        let _ = Limited::new(response.into_body(), MAX_ANSWER)
            .collect()
            .await;
        if status.is_success() {
            Ok(())
        } else {
            Err(DeliveryError::Status {
                status: status.as_u16(),
                retry_after,
            })
        }
    }
}

impl fmt::Debug for HttpPoster {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpPoster")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}
