//! Spans that cost a null pointer when nobody traces: a router's futures keep a span only
//! when a subscriber wants it, boxed, so that the success path without tracing moves and
//! checks eight bytes.

use tracing::{Span, field::Value, span::Entered};

/// A span kept only when enabled.
#[derive(Debug, Default)]
pub(crate) struct Trace(Option<Box<Span>>);

impl Trace {
    /// Keeps the span `make` builds, if a subscriber may want `info` spans (checked first,
    /// with two loads, so that nobody tracing costs no span at all).
    #[inline]
    pub(crate) fn info(make: impl FnOnce() -> Span) -> Self {
        if tracing::level_enabled!(tracing::Level::INFO) {
            Self::new(make())
        } else {
            Self(None)
        }
    }

    /// Keeps `span` if a subscriber is interested in it.
    pub(crate) fn new(span: Span) -> Self {
        Self((!span.is_disabled()).then(|| Box::new(span)))
    }

    /// Whether a span is kept.
    #[inline]
    pub(crate) fn is_on(&self) -> bool {
        self.0.is_some()
    }

    /// The span, or a disabled one (the parent of the attempts' spans).
    pub(crate) fn span(&self) -> Span {
        self.0.as_deref().cloned().unwrap_or_else(Span::none)
    }

    /// A handle on the span, when one is kept (to enter it while the future that holds
    /// this trace is borrowed mutably).
    #[inline]
    pub(crate) fn handle(&self) -> Option<Span> {
        self.0.as_deref().cloned()
    }

    /// Enters the span while the guard lives (nothing when none is kept).
    #[inline]
    pub(crate) fn enter(&self) -> Option<Entered<'_>> {
        self.0.as_deref().map(Span::enter)
    }

    /// Records `value` in the span's `field`.
    #[inline]
    pub(crate) fn record<V: Value>(&self, field: &str, value: V) {
        if let Some(span) = &self.0 {
            span.record(field, value);
        }
    }
}
