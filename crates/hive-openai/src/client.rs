//! [`OpenAiClient`]: the model-calling `Service`.

use std::{
    fmt,
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::{Duration, SystemTime},
};

use bytes::Bytes;
use hive_core::{ConfigError, ModelId};
use http::{HeaderMap, HeaderName, HeaderValue, Request, Uri, header};
use http_body_util::{BodyExt, Full, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::{
    client::legacy::{Client, connect::HttpConnector},
    rt::TokioExecutor,
};
use tokio::time::Instant;
use tower_service::Service;

use crate::{ApiKey, ChatCompletion, ChatRequest, ChatStream, OpenAiError, error::retry_after};

/// The largest whole answer read (a bigger one is malformed).
const MAX_ANSWER: usize = 16 << 20;

/// The names a model may answer as: its own and its aliases, fixed when the client is built.
#[derive(Clone, Debug)]
pub(crate) struct Identity {
    names: Arc<[String]>,
}

impl Identity {
    /// Whether `answered` is one of the names (case aside).
    pub(crate) fn accepts(&self, answered: &str) -> bool {
        self.names.iter().any(|n| n.eq_ignore_ascii_case(answered))
    }
}

/// Time limits of one attempt, and what a malformed event does.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Limits {
    pub(crate) first_token: Duration,
    pub(crate) idle: Duration,
    pub(crate) total: Duration,
    pub(crate) skip_malformed: bool,
}

/// An answer: whole, or a stream that is classified when it ends.
#[derive(Debug)]
pub enum ChatResponse {
    /// A whole answer (the request did not ask to stream).
    Complete(ChatCompletion),
    /// A streamed answer (boxed: it is much larger than a whole answer).
    Stream(Box<ChatStream>),
}

struct Inner {
    http: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    model: ModelId,
    completions: Uri,
    models: Uri,
    api_key: Option<ApiKey>,
    headers: HeaderMap,
    identity: Identity,
    limits: Limits,
}

/// Calls one model of an OpenAI-compatible provider (OpenAI, vLLM, Ollama, Together, Groq,
/// DeepSeek, OpenRouter …): `POST {base}/v1/chat/completions` and `GET {base}/v1/models`.
///
/// Pooled connections over HTTP/1.1 or HTTP/2 (ALPN over TLS; prior knowledge on
/// cleartext by setting), TCP_NODELAY, rustls with the webpki roots. Answers are typed and
/// keep unknown fields. The answer's `model` must be the model asked for (or one of its
/// aliases); otherwise the call fails with [`OpenAiError::IdentityMismatch`]. The API key
/// never appears in Debug output, logs or errors.
///
/// A request is always sent for this client's model, whatever its `model` says (a router
/// sends one request to several models). The future is boxed: one allocation per call,
/// beside a network round trip.
#[derive(Clone)]
pub struct OpenAiClient {
    inner: Arc<Inner>,
}

/// Builds an [`OpenAiClient`].
#[must_use]
pub struct OpenAiClientBuilder {
    model: ModelId,
    base_url: String,
    api_key: Option<ApiKey>,
    headers: Vec<(String, String)>,
    aliases: Vec<String>,
    limits: Limits,
    http2_prior_knowledge: bool,
}

impl OpenAiClient {
    /// A client for `model` at `base_url` (`https://api.openai.com`, `http://127.0.0.1:8000`
    /// …; `/v1/…` is appended).
    pub fn builder(model: impl Into<ModelId>, base_url: impl Into<String>) -> OpenAiClientBuilder {
        OpenAiClientBuilder {
            model: model.into(),
            base_url: base_url.into(),
            api_key: None,
            headers: Vec::new(),
            aliases: Vec::new(),
            limits: Limits {
                first_token: Duration::from_secs(30),
                idle: Duration::from_secs(30),
                total: Duration::from_secs(300),
                skip_malformed: true,
            },
            http2_prior_knowledge: false,
        }
    }

    /// The model this client calls.
    pub fn model(&self) -> ModelId {
        self.inner.model
    }

    /// Lists the provider's models (`GET /v1/models`): a health probe that costs no tokens.
    pub async fn list_models(&self) -> Result<Vec<String>, OpenAiError> {
        let inner = &self.inner;
        let mut request = Request::get(inner.models.clone());
        if let Some(headers) = request.headers_mut() {
            inner.headers.clone_into(headers);
        }
        let request = request
            .body(Full::new(Bytes::new()))
            .map_err(|e| inner.malformed(format!("request: {e}")))?;
        let response = tokio::time::timeout(inner.limits.first_token, inner.http.request(request))
            .await
            .map_err(|_| OpenAiError::FirstToken {
                model: inner.model,
                limit: inner.limits.first_token,
            })?
            .map_err(|e| inner.connect(e))?;
        let (parts, body) = response.into_parts();
        let bytes = read(body, inner).await?;
        if !parts.status.is_success() {
            return Err(inner.status_error(parts.status, &parts.headers, &bytes));
        }
        let list: serde_json::Value =
            serde_json::from_slice(&bytes).map_err(|e| inner.malformed(e.to_string()))?;
        Ok(list["data"]
            .as_array()
            .map(|models| {
                models
                    .iter()
                    .filter_map(|m| m["id"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default())
    }
}

async fn read(body: hyper::body::Incoming, inner: &Inner) -> Result<Bytes, OpenAiError> {
    Limited::new(body, MAX_ANSWER)
        .collect()
        .await
        .map(|b| b.to_bytes())
        .map_err(|e| OpenAiError::Connect {
            model: inner.model,
            source: e,
        })
}

impl OpenAiClientBuilder {
    /// The API key, sent as `Authorization: Bearer …`.
    pub fn api_key(mut self, key: ApiKey) -> Self {
        self.api_key = Some(key);
        self
    }

    /// A header sent with every request (e.g. `OpenAI-Organization`, `HTTP-Referer`).
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Another name the provider may answer as for this model (e.g. a dated version).
    pub fn alias(mut self, name: impl Into<String>) -> Self {
        self.aliases.push(name.into());
        self
    }

    /// Longest wait for the first token (or for a whole answer's headers). Default 30 s.
    pub fn first_token_timeout(mut self, limit: Duration) -> Self {
        self.limits.first_token = limit;
        self
    }

    /// Longest wait between two chunks of a stream. Default 30 s.
    pub fn idle_timeout(mut self, limit: Duration) -> Self {
        self.limits.idle = limit;
        self
    }

    /// Longest time for a whole answer. Default 300 s.
    pub fn total_timeout(mut self, limit: Duration) -> Self {
        self.limits.total = limit;
        self
    }

    /// Whether a malformed stream event is skipped (and counted) or fails the attempt.
    /// Default: skipped.
    pub fn skip_malformed(mut self, skip: bool) -> Self {
        self.limits.skip_malformed = skip;
        self
    }

    /// Speak HTTP/2 without negotiation on cleartext connections (vLLM behind h2c …).
    pub fn http2_prior_knowledge(mut self, on: bool) -> Self {
        self.http2_prior_knowledge = on;
        self
    }

    /// Validates the settings and builds the client (its pool is its own).
    pub fn build(self) -> Result<OpenAiClient, ConfigError> {
        let base = self.base_url.trim_end_matches('/');
        let uri = |path: &str| {
            format!("{base}{path}")
                .parse::<Uri>()
                .map_err(|e| ConfigError::new("base_url", format!("`{base}` is not a URL: {e}")))
        };
        let completions = uri("/v1/chat/completions")?;
        let models = uri("/v1/models")?;
        match completions.scheme_str() {
            Some("http" | "https") => {}
            _ => {
                return Err(ConfigError::new(
                    "base_url",
                    format!("`{base}` must start with http:// or https://"),
                ));
            }
        }
        let mut headers = HeaderMap::new();
        for (name, value) in &self.headers {
            let name: HeaderName = name.parse().map_err(|_| {
                ConfigError::new("header", format!("`{name}` is not a header name"))
            })?;
            let value: HeaderValue = value.parse().map_err(|_| {
                ConfigError::new(
                    "header",
                    format!("the value of `{name}` is not a header value"),
                )
            })?;
            headers.insert(name, value);
        }
        if let Some(key) = &self.api_key {
            let mut value: HeaderValue =
                format!("Bearer {}", key.expose()).parse().map_err(|_| {
                    ConfigError::new("api_key", "contains characters a header cannot carry")
                })?;
            value.set_sensitive(true);
            headers.insert(header::AUTHORIZATION, value);
        }
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        for (name, limit) in [
            ("first_token_timeout", self.limits.first_token),
            ("idle_timeout", self.limits.idle),
            ("total_timeout", self.limits.total),
        ] {
            if limit.is_zero() {
                return Err(ConfigError::new(name, "must be above zero"));
            }
        }
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.enforce_http(false);
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_webpki_roots()
            .https_or_http()
            .enable_http1()
            .enable_http2()
            .wrap_connector(connector);
        let http = Client::builder(TokioExecutor::new())
            .http2_only(self.http2_prior_knowledge)
            .pool_idle_timeout(Duration::from_secs(90))
            .build(https);
        Ok(OpenAiClient {
            inner: Arc::new(Inner {
                http,
                model: self.model,
                completions,
                models,
                api_key: self.api_key,
                headers,
                identity: Identity {
                    names: std::iter::once(self.model.as_str().to_owned())
                        .chain(self.aliases)
                        .collect(),
                },
                limits: self.limits,
            }),
        })
    }
}

impl Inner {
    fn connect(&self, error: hyper_util::client::legacy::Error) -> OpenAiError {
        OpenAiError::Connect {
            model: self.model,
            source: Box::new(error),
        }
    }

    fn malformed(&self, detail: String) -> OpenAiError {
        OpenAiError::Malformed {
            model: self.model,
            detail,
        }
    }

    fn status_error(
        &self,
        status: http::StatusCode,
        headers: &HeaderMap,
        body: &[u8],
    ) -> OpenAiError {
        let parsed: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
        let error = &parsed["error"];
        let message = error["message"]
            .as_str()
            .map(str::to_owned)
            .unwrap_or_else(|| String::from_utf8_lossy(&body[..body.len().min(512)]).into_owned());
        OpenAiError::Status {
            model: self.model,
            status,
            code: error["code"]
                .as_str()
                .or_else(|| error["type"].as_str())
                .map(str::to_owned),
            message,
            retry_after: retry_after(headers, SystemTime::now()),
        }
    }

    async fn call(self: Arc<Self>, mut chat: ChatRequest) -> Result<ChatResponse, OpenAiError> {
        // One client, one model: a router sends the same request to every model.
        self.model.as_str().clone_into(&mut chat.model);
        let started = Instant::now();
        let body =
            serde_json::to_vec(&chat).map_err(|e| self.malformed(format!("request: {e}")))?;
        let mut request = Request::post(self.completions.clone());
        if let Some(headers) = request.headers_mut() {
            self.headers.clone_into(headers);
        }
        let request = request
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| self.malformed(format!("request: {e}")))?;
        let response = tokio::time::timeout(self.limits.first_token, self.http.request(request))
            .await
            .map_err(|_| OpenAiError::FirstToken {
                model: self.model,
                limit: self.limits.first_token,
            })?
            .map_err(|e| self.connect(e))?;
        let (parts, body) = response.into_parts();
        if !parts.status.is_success() {
            let bytes = read(body, &self).await?;
            return Err(self.status_error(parts.status, &parts.headers, &bytes));
        }
        if chat.stream {
            return Ok(ChatResponse::Stream(Box::new(ChatStream::new(
                body,
                self.model,
                self.identity.clone(),
                self.limits,
                started,
            ))));
        }
        let remaining = self.limits.total.saturating_sub(started.elapsed());
        let bytes = tokio::time::timeout(remaining, read(body, &self))
            .await
            .map_err(|_| OpenAiError::TotalTime {
                model: self.model,
                limit: self.limits.total,
            })??;
        let completion: ChatCompletion =
            serde_json::from_slice(&bytes).map_err(|e| self.malformed(e.to_string()))?;
        if !self.identity.accepts(&completion.model) {
            return Err(OpenAiError::IdentityMismatch {
                expected: self.model,
                answered: completion.model,
            });
        }
        if completion.choices.is_empty() {
            return Err(self.malformed("an answer without choices".to_owned()));
        }
        Ok(ChatResponse::Complete(completion))
    }
}

impl Service<ChatRequest> for OpenAiClient {
    type Response = ChatResponse;
    type Error = OpenAiError;
    type Future = Pin<Box<dyn Future<Output = Result<ChatResponse, OpenAiError>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: ChatRequest) -> Self::Future {
        Box::pin(Arc::clone(&self.inner).call(request))
    }
}

impl fmt::Debug for OpenAiClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenAiClient")
            .field("model", &self.inner.model)
            .field("completions", &self.inner.completions)
            .field("api_key", &self.inner.api_key)
            .field("answers_as", &self.inner.identity.names)
            .field("limits", &self.inner.limits)
            .finish()
    }
}

impl fmt::Debug for OpenAiClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenAiClientBuilder")
            .field("model", &self.model)
            .field("base_url", &self.base_url)
            .field("api_key", &self.api_key)
            .field(
                "headers",
                &self.headers.iter().map(|(n, _)| n).collect::<Vec<_>>(),
            )
            .field("aliases", &self.aliases)
            .finish_non_exhaustive()
    }
}
