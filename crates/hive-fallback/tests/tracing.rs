//! Spans: one per request and one per attempt, with OpenTelemetry's GenAI names, the
//! answering model, outcomes and latencies; no prompt text (paused time).

#![allow(clippy::unwrap_used)]

mod common;

use std::{
    collections::BTreeMap,
    fmt,
    sync::{Arc, RwLock},
};

use common::*;
use hive_core::FailureClass;
use tower::ServiceExt;
use tracing::{
    Subscriber,
    field::{Field, Visit},
    span,
};
use tracing_subscriber::{
    Layer,
    layer::{Context, SubscriberExt},
    registry::LookupSpan,
};

/// One span as the test saw it: its name, its parent's name, and its fields.
#[derive(Clone, Debug, Default)]
struct Seen {
    name: &'static str,
    parent: Option<&'static str>,
    fields: BTreeMap<String, String>,
}

#[derive(Clone, Default)]
struct Recorder {
    spans: Arc<RwLock<BTreeMap<u64, Seen>>>,
}

struct Fields<'a>(&'a mut BTreeMap<String, String>);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }
}

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Recorder {
    fn on_new_span(&self, attrs: &span::Attributes<'_>, id: &span::Id, ctx: Context<'_, S>) {
        let mut seen = Seen {
            name: attrs.metadata().name(),
            parent: ctx.span(id).and_then(|s| s.parent()).map(|p| p.name()),
            ..Seen::default()
        };
        attrs.record(&mut Fields(&mut seen.fields));
        self.spans.write().unwrap().insert(id.into_u64(), seen);
    }

    fn on_record(&self, id: &span::Id, values: &span::Record<'_>, _: Context<'_, S>) {
        if let Some(seen) = self.spans.write().unwrap().get_mut(&id.into_u64()) {
            values.record(&mut Fields(&mut seen.fields));
        }
    }
}

#[tokio::test(start_paused = true)]
async fn a_request_span_holds_an_attempt_span_per_model() {
    let recorder = Recorder::default();
    let subscriber = tracing_subscriber::registry().with(recorder.clone());
    let _default = tracing::subscriber::set_default(subscriber);
    let (router, _) = build_router(
        &[
            ("gpt-4o", fail(FailureClass::Unavailable), None),
            ("claude-4-sonnet", ok(40), None),
        ],
        |b| b.name("review"),
    );
    let routed = router
        .oneshot("a prompt that must never reach a span")
        .await
        .unwrap();
    assert_eq!(routed.model.unwrap().as_str(), "claude-4-sonnet");

    let spans: Vec<Seen> = recorder.spans.read().unwrap().values().cloned().collect();
    let request: Vec<&Seen> = spans.iter().filter(|s| s.name == "hive.request").collect();
    assert_eq!(request.len(), 1);
    let fields = &request[0].fields;
    for (key, value) in [
        ("gen_ai.operation.name", "chat"),
        ("hive.route", "review"),
        ("hive.strategy", "sequential"),
        ("gen_ai.response.model", "claude-4-sonnet"),
        ("hive.attempts", "2"),
        ("hive.result", "answered"),
        ("hive.latency_ms", "50.0"),
    ] {
        assert_eq!(fields.get(key).map(String::as_str), Some(value), "{key}");
    }
    let attempts: Vec<&Seen> = spans.iter().filter(|s| s.name == "hive.attempt").collect();
    assert_eq!(attempts.len(), 2);
    for (attempt, (model, outcome, latency)) in attempts.iter().zip([
        ("gpt-4o", "unavailable", "10.0"),
        ("claude-4-sonnet", "success", "40.0"),
    ]) {
        assert_eq!(attempt.parent, Some("hive.request"));
        let f = &attempt.fields;
        assert_eq!(f["gen_ai.request.model"], model);
        assert_eq!(f["otel.name"], format!("chat {model}"));
        assert_eq!(f["hive.outcome"], outcome);
        assert_eq!(f["hive.latency_ms"], latency);
        assert_eq!(
            f.get("error.type").map(String::as_str),
            (outcome != "success").then_some(outcome)
        );
    }
    let everything = format!("{spans:?}");
    assert!(!everything.contains("a prompt"), "no prompt text in spans");
}
