//! An axum app with a different stack per route, over per-model stacks both routes share.
//!
//! On the simulated provider, gpt-4o is down (503), claude-4-sonnet answers in 300 ms and
//! deepseek-v3.1 in 100 ms (its first answer in 2 s). `POST /vote` falls back in order under
//! a strict 1 s deadline; `POST /chat` hedges after 250 ms. The first vote opens gpt-4o's
//! breaker, so the later requests of both routes skip it without a call. (A `ModelManager`
//! with `RouteSpec`s builds the same, plus health checks and recovery.)
//!
//! Run: `cargo run -p hive-examples --example axum_routes` (paused clock: exact timings)

use std::time::Duration;

use axum::{response::IntoResponse, routing::post};
use hive_resilience::{FallbackError, HealthHandle, ModelStack, prelude::*};
use hive_sim::{Attempt, Behaviour::*, Latency::Fixed, Script, Simulator};
use http::{Request, StatusCode};
use hyper_util::{client::legacy::Client, rt::TokioExecutor};
use tokio::{net::TcpListener, time::Instant};
use tower::{ServiceBuilder, ServiceExt};

type Model = ModelStack<OpenAiClient, OpenAiClassifier>;
type Router = FallbackRouter<Model, ChatResponse, OpenAiClassifier>;

/// Builds a model's stack once: health gate → retry → breaker → attempt timeout → client
/// (a `HealthChecker` would feed the gate's registry). Returns a maker of routes: views of
/// that one stack.
fn stack(health: HealthHandle, base: String) -> Result<impl Fn() -> Route<Model>, BoxError> {
    let model = health.model();
    let breaker = CircuitBreakerConfig::builder().consecutive_failures(Some(2));
    let (breaker, handle) = CircuitBreakerLayer::shared(breaker.model(model).build()?);
    let retry = RetryConfig::builder().model(model).jitter(Jitter::None);
    let retry = retry.retry_only_while(handle.clone()).build()?;
    let stack = ServiceBuilder::new()
        .layer(HealthGateLayer::new(health))
        .layer(RetryLayer::new(retry).with_classifier(OpenAiClassifier))
        .layer(breaker.with_classifier(OpenAiClassifier))
        .timeout(Duration::from_secs(10))
        .service(OpenAiClient::builder(model, base).build()?);
    Ok(move || Route::new(model, stack.clone()).available_when(handle.clone()))
}

/// Both routes' handler: the route's router answers; the headers say who, in how many tries.
async fn ask(router: Router, prompt: String) -> Result<impl IntoResponse, StatusCode> {
    let routed = router.oneshot(ChatRequest::new("", prompt)).await; // each client names its model
    let routed = routed.map_err(|error| match error.downcast_ref() {
        Some(FallbackError::DeadlineExceeded { .. }) => StatusCode::GATEWAY_TIMEOUT,
        _ => StatusCode::SERVICE_UNAVAILABLE,
    })?;
    let (ChatResponse::Complete(answer), Some(model)) = (routed.response, routed.model) else {
        return Err(StatusCode::BAD_GATEWAY); // neither streams nor degraded answers here
    };
    let model = [("x-model", model.to_string())];
    let attempts = [("x-attempts", routed.attempts.to_string())];
    Ok((model, attempts, answer.text().to_owned()))
}

/// One request: its path, its `x-model` and `x-attempts` headers, how long it took.
pub type Call = (&'static str, Option<String>, Option<String>, Duration);

/// Runs the example; returns the requests and the calls the provider saw.
pub async fn run() -> Result<(Vec<Call>, Vec<Attempt>), BoxError> {
    let ms = Duration::from_millis;
    let slow_first = Script::new().until_call(1, SlowFirstToken(ms(2_000)));
    let sim = Simulator::start([
        ("gpt-4o", Script::new().always(Status(503))),
        ("claude-4-sonnet", Script::new().latency(Fixed(ms(300)))),
        ("deepseek-v3.1", slow_first.latency(Fixed(ms(100)))),
    ])
    .await?;
    let health = HealthRegistry::new();
    let gpt = stack(health.register("gpt-4o"), sim.base_url())?;
    let claude = stack(health.register("claude-4-sonnet"), sim.base_url())?;
    let deepseek = stack(health.register("deepseek-v3.1"), sim.base_url())?;
    let hedged = Strategy::Hedged {
        delay: HedgeDelay::Fixed(ms(250)),
        max_hedges: 1,
        budget: None,
    };
    let vote = FallbackRouter::builder().classifier(OpenAiClassifier);
    let vote = vote.strategy(Strategy::Sequential).timeout(ms(1_000));
    let vote = vote.route(gpt()).route(claude()).build()?;
    let chat = FallbackRouter::builder().classifier(OpenAiClassifier);
    let chat = chat.strategy(hedged).route(gpt()).route(deepseek());
    let chat = chat.route(claude()).build()?;
    let app = axum::Router::new()
        .route("/vote", post(move |prompt| ask(vote.clone(), prompt)))
        .route("/chat", post(move |prompt| ask(chat.clone(), prompt)));
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, app).await });

    let client = Client::builder(TokioExecutor::new()).build_http();
    let mut calls = Vec::new();
    for path in ["/vote", "/chat", "/vote", "/chat"] {
        let started = Instant::now();
        let request = Request::post(format!("{base}{path}")).body(String::from("BIP-01"))?;
        let response = client.request(request).await?;
        let header = |name| Some(response.headers().get(name)?.to_str().ok()?.to_owned());
        let time = started.elapsed();
        calls.push((path, header("x-model"), header("x-attempts"), time));
    }
    Ok((calls, sim.attempts()))
}
