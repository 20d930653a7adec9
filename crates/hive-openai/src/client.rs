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
use hive_core::{CREDENTIAL_HEADERS, ConfigError, ModelId, check_duration};
use http::{HeaderMap, HeaderName, HeaderValue, Request, Response, StatusCode, Uri, header};
use http_body::Body;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_rustls::HttpsConnector;
use hyper_util::{
    client::legacy::{Client, connect::HttpConnector},
    rt::TokioExecutor,
};
use tokio::time::Instant;
use tower_service::Service;

use crate::{
    ApiKey, ChatCompletion, ChatRequest, ChatStream, OpenAiError,
    error::{MAX_PROVIDER_CODE, MAX_PROVIDER_MESSAGE, untrusted_text, wait_hint},
    limits::{Caps, Identity, Limits},
    telemetry::Instruments,
    url::{BaseUrl, redact_url},
};

/// An answer: whole, or a stream that is classified when it ends.
#[derive(Debug)]
pub enum ChatResponse {
    /// A whole answer (the request did not ask to stream).
    Complete(ChatCompletion),
    /// A streamed answer (boxed: it is much larger than a whole answer).
    Stream(Box<ChatStream>),
}

struct Inner {
    /// A connection pool per worker slot ([`hive_core::worker`]): a worker's requests use
    /// connections whose tasks run on its own thread.
    http: Box<[Client<HttpsConnector<HttpConnector>, Full<Bytes>>]>,
    model: ModelId,
    /// The name the provider is asked for.
    upstream: String,
    /// The base URL without its credentials and query, for Debug.
    shown_base_url: String,
    completions: Uri,
    models: Uri,
    api_key: Option<ApiKey>,
    headers: HeaderMap,
    identity: Identity,
    limits: Limits,
    caps: Caps,
    instruments: Option<Arc<Instruments>>,
}

/// Calls one model of an OpenAI-compatible provider (OpenAI, vLLM, Ollama, Together, Groq,
/// DeepSeek, OpenRouter …): `POST {base}/v1/chat/completions` and `GET {base}/v1/models`.
///
/// Pooled connections over HTTP/1.1 or HTTP/2 (ALPN over TLS; prior knowledge on
/// cleartext by setting), TCP_NODELAY, rustls with the webpki roots. Answers are typed and
/// keep unknown fields. The answer's `model` must be the model asked for (or one of its
/// aliases); otherwise the call fails with [`OpenAiError::IdentityMismatch`].
///
/// The provider is not trusted: every read has a timer and a byte cap (see the builder),
/// and its text never reaches an error's `Display`. Credentials never show: the API key,
/// credential headers and the base URL's user and query are hidden from `Debug`, logs and
/// errors.
///
/// A request is always sent for this client's model, whatever its `model` says (a router
/// sends one request to several models). The future is boxed: one allocation per call,
/// beside a network round trip.
#[derive(Clone)]
pub struct OpenAiClient {
    inner: Arc<Inner>,
}

/// One header given to the builder.
struct HeaderSetting {
    name: String,
    value: String,
    /// Given with [`OpenAiClientBuilder::secret_header`].
    secret: bool,
}

/// Builds an [`OpenAiClient`].
///
/// Every setting has a default; [`build`](Self::build) validates them all (durations
/// above zero and at most [`hive_core::MAX_DURATION`], caps above zero, a base URL with
/// `http://` or `https://`, header names and values a request can carry).
#[must_use]
pub struct OpenAiClientBuilder {
    model: ModelId,
    upstream: Option<String>,
    base_url: String,
    api_key: Option<ApiKey>,
    headers: Vec<HeaderSetting>,
    aliases: Vec<String>,
    limits: Limits,
    caps: Caps,
    accept_unnamed_stream: bool,
    http2_prior_knowledge: bool,
    metrics: bool,
}

impl OpenAiClient {
    /// A client for `model` at `base_url` (`https://api.openai.com`, `http://127.0.0.1:8000`
    /// …; `/v1/…` is appended to its path, and its query, if any, is kept). Credentials in
    /// the URL (`https://user:password@host`) are sent as HTTP Basic authorization, never
    /// in the URL.
    pub fn builder(model: impl Into<ModelId>, base_url: impl Into<String>) -> OpenAiClientBuilder {
        OpenAiClientBuilder {
            model: model.into(),
            upstream: None,
            base_url: base_url.into(),
            api_key: None,
            headers: Vec::new(),
            aliases: Vec::new(),
            limits: Limits::default(),
            caps: Caps::default(),
            accept_unnamed_stream: false,
            http2_prior_knowledge: false,
            metrics: false,
        }
    }

    /// The model this client calls.
    pub fn model(&self) -> ModelId {
        self.inner.model
    }

    /// Lists the provider's models (`GET /v1/models`): a health probe that costs no tokens.
    /// The headers must come within the first-token limit, the body within the rest of the
    /// total limit and the `max_models_bytes` cap.
    pub async fn list_models(&self) -> Result<Vec<String>, OpenAiError> {
        let inner = &self.inner;
        let started = Instant::now();
        let request = inner.request(Request::get(inner.models.clone()), Bytes::new())?;
        let (parts, body) = inner.send(request, started).await?.into_parts();
        if !parts.status.is_success() {
            return Err(inner
                .status_error(parts.status, &parts.headers, body, started)
                .await);
        }
        let bytes = inner
            .read_whole(body, "a model list", inner.caps.models, started)
            .await?;
        let list: serde_json::Value =
            serde_json::from_slice(&bytes).map_err(|e| OpenAiError::malformed(inner.model, e))?;
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

impl OpenAiClientBuilder {
    /// The API key, sent as `Authorization: Bearer …` (marked sensitive).
    pub fn api_key(mut self, key: ApiKey) -> Self {
        self.api_key = Some(key);
        self
    }

    /// A header sent with every request (e.g. `OpenAI-Organization`, `HTTP-Referer`).
    /// Headers that carry credentials (`Authorization`, `Proxy-Authorization`, `api-key`,
    /// `x-api-key`, `x-goog-api-key`, `Cookie`) are marked sensitive, as
    /// [`secret_header`](Self::secret_header) does.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push(HeaderSetting {
            name: name.into(),
            value: value.into(),
            secret: false,
        });
        self
    }

    /// A header that carries a credential, sent with every request and marked sensitive:
    /// its value never shows in `Debug` output, and HTTP/2 never indexes it.
    pub fn secret_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push(HeaderSetting {
            name: name.into(),
            value: value.into(),
            secret: true,
        });
        self
    }

    /// The name the provider knows the model by, when it differs from the client's model
    /// (a gateway serving `openrouter/meta-llama/llama-3.1-70b` asks OpenRouter for
    /// `meta-llama/llama-3.1-70b`): sent as every request's `model` and expected in every
    /// answer. Default the model's own name. Errors, metrics and logs keep the model's name.
    pub fn upstream_name(mut self, name: impl Into<String>) -> Self {
        self.upstream = Some(name.into());
        self
    }

    /// Another name the provider may answer as for this model (e.g. a dated version).
    pub fn alias(mut self, name: impl Into<String>) -> Self {
        self.aliases.push(name.into());
        self
    }

    /// Whether a stream whose first chunk names no model is accepted. Default: no, it
    /// fails as an identity failure ([`OpenAiError::IdentityMismatch`]), since nothing then
    /// shows that the model asked is the one answering. Once a first chunk named an accepted
    /// model, later chunks may name none. Set it for providers that never name the model in
    /// their chunks, or whose first chunk is an unnamed preamble (Azure OpenAI's
    /// content-filter results); named chunks are still checked.
    pub fn accept_unnamed_stream(mut self, accept: bool) -> Self {
        self.accept_unnamed_stream = accept;
        self
    }

    /// Longest wait for the first token of a stream, or for the headers of a whole answer
    /// (which come with the whole answer: for unstreamed calls this bounds the generation).
    ///
    /// Default 30 s. Chat models that do not reason before answering send their first token
    /// within a few seconds, even for long prompts (prompt processing runs at thousands of
    /// tokens a second); a provider silent for 30 s is queueing or broken, and failing over
    /// is faster than waiting on. Under a 120 s request deadline, 30 s still leaves room to
    /// fail over twice. Raise it for reasoning models that think before they stream (they
    /// can stay silent for minutes) and for long unstreamed answers.
    pub fn first_token_timeout(mut self, limit: Duration) -> Self {
        self.limits.first_token = limit;
        self
    }

    /// Longest wait between two chunks of a stream. Default 30 s. Only chunks restart it:
    /// keep-alive comments and the bytes of an incomplete event do not.
    pub fn idle_timeout(mut self, limit: Duration) -> Self {
        self.limits.idle = limit;
        self
    }

    /// Longest time for a whole attempt: headers, body, error body or model list.
    /// Default 300 s.
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

    /// The largest server-sent event of a stream; a bigger one fails the attempt with
    /// [`OpenAiError::TooLarge`]. Default 1 MiB (a chunk carries a few tokens: a few hundred
    /// bytes). The decoder never holds more than this plus one read.
    pub fn max_event_bytes(mut self, bytes: usize) -> Self {
        self.caps.event = bytes;
        self
    }

    /// The most bytes of a streamed answer, all events together; more fails the attempt
    /// with [`OpenAiError::TooLarge`]. Default 64 MiB (a chunk costs about 200 bytes a
    /// token, so about 300 000 tokens). It also bounds the text that
    /// [`ChatStream::collect_text`] and a buffered [`Commit`](crate::Commit) hold.
    pub fn max_stream_bytes(mut self, bytes: usize) -> Self {
        self.caps.stream = bytes;
        self
    }

    /// The largest whole (unstreamed) answer; a bigger one fails the attempt with
    /// [`OpenAiError::TooLarge`]. Default 16 MiB.
    pub fn max_answer_bytes(mut self, bytes: usize) -> Self {
        self.caps.answer = bytes;
        self
    }

    /// The most bytes read of an error body, for the provider's message and code; the rest
    /// is not read (the status decides the class). Default 64 KiB.
    pub fn max_error_body_bytes(mut self, bytes: usize) -> Self {
        self.caps.error_body = bytes;
        self
    }

    /// The largest `/v1/models` body; a bigger one fails with [`OpenAiError::TooLarge`].
    /// Default 8 MiB (aggregators list hundreds of models with descriptions).
    pub fn max_models_bytes(mut self, bytes: usize) -> Self {
        self.caps.models = bytes;
        self
    }

    /// Records stream metrics through the `metrics` facade, labelled with the model: time to
    /// the first chunk (`hive_stream_first_token_seconds`), cuts (`hive_stream_cuts_total`)
    /// and stalls (`hive_stream_stalls_total`). Handles are registered at build. Default
    /// off.
    pub fn metrics(mut self, on: bool) -> Self {
        self.metrics = on;
        self
    }

    /// Speak HTTP/2 without negotiation on cleartext connections (vLLM behind h2c …).
    pub fn http2_prior_knowledge(mut self, on: bool) -> Self {
        self.http2_prior_knowledge = on;
        self
    }

    /// Validates the settings and builds the client (its pool is its own).
    pub fn build(self) -> Result<OpenAiClient, ConfigError> {
        self.check_limits()?;
        let upstream = self
            .upstream
            .clone()
            .unwrap_or_else(|| self.model.as_str().to_owned());
        if upstream.is_empty() || upstream.chars().any(char::is_control) {
            return Err(ConfigError::new(
                "upstream_name",
                "must be a name without control characters",
            ));
        }
        let base = BaseUrl::parse(&self.base_url)?;
        let headers = self.header_map(&base)?;
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.enforce_http(false);
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_webpki_roots()
            .https_or_http()
            .enable_http1()
            .enable_http2()
            .wrap_connector(connector);
        let http = (0..hive_core::worker::slots())
            .map(|_| {
                Client::builder(TokioExecutor::new())
                    .http2_only(self.http2_prior_knowledge)
                    .pool_idle_timeout(Duration::from_secs(90))
                    .build(https.clone())
            })
            .collect();
        Ok(OpenAiClient {
            inner: Arc::new(Inner {
                http,
                model: self.model,
                shown_base_url: redact_url(&self.base_url),
                completions: base.endpoint("/v1/chat/completions")?,
                models: base.endpoint("/v1/models")?,
                api_key: self.api_key,
                headers,
                identity: Identity::new(&upstream, self.aliases, self.accept_unnamed_stream),
                upstream,
                limits: self.limits,
                caps: self.caps,
                instruments: self
                    .metrics
                    .then(|| Arc::new(Instruments::register(self.model))),
            }),
        })
    }

    fn check_limits(&self) -> Result<(), ConfigError> {
        check_duration("first_token_timeout", self.limits.first_token, false)?;
        check_duration("idle_timeout", self.limits.idle, false)?;
        check_duration("total_timeout", self.limits.total, false)?;
        for (field, cap) in [
            ("max_event_bytes", self.caps.event),
            ("max_stream_bytes", self.caps.stream),
            ("max_answer_bytes", self.caps.answer),
            ("max_error_body_bytes", self.caps.error_body),
            ("max_models_bytes", self.caps.models),
        ] {
            if cap == 0 {
                return Err(ConfigError::new(field, "must be above zero"));
            }
        }
        Ok(())
    }

    /// The headers of every request: the configured ones, credentials marked sensitive,
    /// then the authorization (the API key, else the base URL's credentials).
    fn header_map(&self, base: &BaseUrl) -> Result<HeaderMap, ConfigError> {
        let mut headers = HeaderMap::new();
        for setting in &self.headers {
            let name: HeaderName = setting.name.parse().map_err(|_| {
                ConfigError::new("header", format!("`{}` is not a header name", setting.name))
            })?;
            let mut value: HeaderValue = setting.value.parse().map_err(|_| {
                ConfigError::new(
                    "header",
                    format!("the value of `{name}` is not a header value"),
                )
            })?;
            value.set_sensitive(setting.secret || CREDENTIAL_HEADERS.contains(&name.as_str()));
            headers.insert(name, value);
        }
        let authorization = match (&self.api_key, base.basic_credentials()) {
            (Some(_), Some(_)) => {
                return Err(ConfigError::new(
                    "base_url",
                    format!(
                        "`{}` carries credentials and an api_key is set too: give one",
                        redact_url(&self.base_url)
                    ),
                ));
            }
            (Some(key), None) => Some(format!("Bearer {}", key.expose())),
            (None, Some(basic)) => Some(format!("Basic {basic}")),
            (None, None) => None,
        };
        if let Some(authorization) = authorization {
            let mut value: HeaderValue = authorization.parse().map_err(|_| {
                ConfigError::new("api_key", "contains characters a header cannot carry")
            })?;
            value.set_sensitive(true);
            headers.insert(header::AUTHORIZATION, value);
        }
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        Ok(headers)
    }
}

/// How a capped, timed body read ended.
enum BodyEnd {
    /// The whole body was read.
    Complete,
    /// The body is larger than the cap (what was read stops at the cap).
    TooLarge,
    /// The connection broke in the middle of the body.
    Broken(hyper::Error),
    /// The deadline passed.
    TimedOut,
}

/// Reads a body up to `cap` bytes and until `deadline`, whatever the provider does: what
/// was read (never more than `cap`), and how the read ended.
async fn read_capped(mut body: Incoming, cap: usize, deadline: Instant) -> (Vec<u8>, BodyEnd) {
    let mut bytes = Vec::new();
    loop {
        let frame = match tokio::time::timeout_at(deadline, body.frame()).await {
            Err(_) => return (bytes, BodyEnd::TimedOut),
            Ok(None) => return (bytes, BodyEnd::Complete),
            Ok(Some(Err(e))) => return (bytes, BodyEnd::Broken(e)),
            Ok(Some(Ok(frame))) => frame,
        };
        let Ok(data) = frame.into_data() else {
            continue;
        };
        let room = cap - bytes.len();
        if data.len() > room {
            bytes.extend_from_slice(&data[..room]);
            return (bytes, BodyEnd::TooLarge);
        }
        bytes.extend_from_slice(&data);
    }
}

impl Inner {
    /// The request `builder` started, with the configured headers and `body`.
    fn request(
        &self,
        mut builder: http::request::Builder,
        body: Bytes,
    ) -> Result<Request<Full<Bytes>>, OpenAiError> {
        if let Some(headers) = builder.headers_mut() {
            self.headers.clone_into(headers);
        }
        builder
            .body(Full::new(body))
            .map_err(|e| OpenAiError::malformed(self.model, format_args!("request: {e}")))
    }

    /// When the attempt started at `started` must be over.
    fn deadline(&self, started: Instant) -> Instant {
        started + self.limits.total
    }

    /// Sends a request; the headers must come within the first-token limit (and the total).
    async fn send(
        &self,
        request: Request<Full<Bytes>>,
        started: Instant,
    ) -> Result<Response<Incoming>, OpenAiError> {
        let first_token_first = self.limits.first_token <= self.limits.total;
        let limit = self.limits.first_token.min(self.limits.total);
        let slot = hive_core::worker::slot();
        let http = self.http.get(slot).unwrap_or(&self.http[0]);
        match tokio::time::timeout_at(started + limit, http.request(request)).await {
            Ok(Ok(response)) => Ok(response),
            Ok(Err(e)) => Err(OpenAiError::Connect {
                model: self.model,
                source: Box::new(e),
            }),
            Err(_) if first_token_first => Err(OpenAiError::FirstToken {
                model: self.model,
                limit,
            }),
            Err(_) => Err(OpenAiError::TotalTime {
                model: self.model,
                limit,
            }),
        }
    }

    /// A body read whole within `cap` and the rest of the total limit, or the error that
    /// stopped it: `what` too large (at once when its length says so), a cut, the limit.
    async fn read_whole(
        &self,
        body: Incoming,
        what: &'static str,
        cap: usize,
        started: Instant,
    ) -> Result<Vec<u8>, OpenAiError> {
        let too_large = || OpenAiError::TooLarge {
            model: self.model,
            what,
            limit: cap,
        };
        if body.size_hint().lower() > cap as u64 {
            return Err(too_large());
        }
        let (bytes, end) = read_capped(body, cap, self.deadline(started)).await;
        match end {
            BodyEnd::Complete => Ok(bytes),
            BodyEnd::TooLarge => Err(too_large()),
            BodyEnd::Broken(e) => Err(OpenAiError::StreamCut {
                model: self.model,
                chunks: 0,
                source: Some(Box::new(e)),
            }),
            BodyEnd::TimedOut => Err(OpenAiError::TotalTime {
                model: self.model,
                limit: self.limits.total,
            }),
        }
    }

    /// The error for an error status. Its body is read for the provider's message and
    /// code, within the error-body cap and the rest of the total limit; whatever stops that
    /// read, the status (and its wait hint) still decide the class.
    async fn status_error(
        &self,
        status: StatusCode,
        headers: &HeaderMap,
        body: Incoming,
        started: Instant,
    ) -> OpenAiError {
        let (bytes, end) = read_capped(body, self.caps.error_body, self.deadline(started)).await;
        match end {
            BodyEnd::Complete => {}
            BodyEnd::TooLarge => {
                tracing::debug!(model = %self.model, %status, cap = self.caps.error_body, "error body cut at its cap");
            }
            BodyEnd::Broken(e) => {
                tracing::debug!(model = %self.model, %status, error = %e, "error body broke off");
            }
            BodyEnd::TimedOut => {
                tracing::debug!(model = %self.model, %status, "error body not read within the total limit");
            }
        }
        let (code, provider_message) = provider_words(&bytes);
        OpenAiError::Status {
            model: self.model,
            status,
            code,
            provider_message,
            retry_after: wait_hint(status, headers, SystemTime::now()),
        }
    }

    async fn call(self: Arc<Self>, mut chat: ChatRequest) -> Result<ChatResponse, OpenAiError> {
        // One client, one model: a router sends the same request to every model.
        self.upstream.clone_into(&mut chat.model);
        let started = Instant::now();
        let body = serde_json::to_vec(&chat)
            .map_err(|e| OpenAiError::malformed(self.model, format_args!("request: {e}")))?;
        let request = self.request(Request::post(self.completions.clone()), Bytes::from(body))?;
        let (parts, body) = self.send(request, started).await?.into_parts();
        if !parts.status.is_success() {
            return Err(self
                .status_error(parts.status, &parts.headers, body, started)
                .await);
        }
        if chat.stream {
            return Ok(ChatResponse::Stream(Box::new(ChatStream::new(
                body,
                self.model,
                self.identity.clone(),
                self.limits,
                self.caps,
                started,
                self.instruments.clone(),
            ))));
        }
        let bytes = self
            .read_whole(body, "an answer", self.caps.answer, started)
            .await?;
        let completion: ChatCompletion =
            serde_json::from_slice(&bytes).map_err(|e| OpenAiError::malformed(self.model, e))?;
        if !self.identity.accepts(&completion.model) {
            return Err(OpenAiError::identity_mismatch(
                self.model,
                &completion.model,
            ));
        }
        if completion.choices.is_empty() {
            return Err(OpenAiError::malformed(
                self.model,
                "an answer without choices",
            ));
        }
        Ok(ChatResponse::Complete(completion))
    }
}

/// The provider's error code and message from an error body (`{"error": {"code", "type",
/// "message"}}`, `{"error": "…"}`, `{"message": "…"}`, else the body's start as text), cut
/// and cleaned.
fn provider_words(body: &[u8]) -> (Option<String>, String) {
    let parsed: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    let error = &parsed["error"];
    let code = match &error["code"] {
        serde_json::Value::String(code) => Some(code.clone()),
        serde_json::Value::Number(code) => Some(code.to_string()),
        _ => error["type"].as_str().map(str::to_owned),
    };
    let message = error["message"]
        .as_str()
        .or_else(|| error.as_str())
        .or_else(|| parsed["message"].as_str())
        .map(|message| untrusted_text(message, MAX_PROVIDER_MESSAGE))
        .unwrap_or_else(|| {
            let start = &body[..body.len().min(MAX_PROVIDER_MESSAGE)];
            untrusted_text(&String::from_utf8_lossy(start), MAX_PROVIDER_MESSAGE)
        });
    (
        code.map(|code| untrusted_text(&code, MAX_PROVIDER_CODE)),
        message,
    )
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
        let inner = &self.inner;
        f.debug_struct("OpenAiClient")
            .field("model", &inner.model)
            .field("base_url", &inner.shown_base_url)
            .field("api_key", &inner.api_key)
            // `HeaderMap`'s Debug shows sensitive values as `Sensitive`.
            .field("headers", &inner.headers)
            .field("answers_as", &inner.identity.names())
            .field(
                "accept_unnamed_stream",
                &inner.identity.accepts_unnamed_stream(),
            )
            .field("limits", &inner.limits)
            .field("caps", &inner.caps)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for OpenAiClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Header values are not shown, secret or not: they are checked at `build`.
        let headers: Vec<String> = self
            .headers
            .iter()
            .map(|h| {
                if h.secret {
                    format!("{} (secret)", h.name)
                } else {
                    h.name.clone()
                }
            })
            .collect();
        f.debug_struct("OpenAiClientBuilder")
            .field("model", &self.model)
            .field("upstream_name", &self.upstream)
            .field("base_url", &redact_url(&self.base_url))
            .field("api_key", &self.api_key)
            .field("headers", &headers)
            .field("aliases", &self.aliases)
            .field("accept_unnamed_stream", &self.accept_unnamed_stream)
            .field("limits", &self.limits)
            .field("caps", &self.caps)
            .field("http2_prior_knowledge", &self.http2_prior_knowledge)
            .finish()
    }
}
