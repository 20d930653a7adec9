use std::sync::Arc;

use hive_core::{ConfigError, ErrorClassifier};
use tower_layer::Layer;

use crate::{BreakerHandle, CircuitBreaker, CircuitBreakerConfig, breaker::Breaker};

/// Applies a circuit breaker to a service.
///
/// Every service this layer builds shares **one** breaker (one model, one state); build one
/// layer per model. [`handle`](Self::handle) reads and controls that breaker.
#[derive(Clone, Debug)]
#[must_use]
pub struct CircuitBreakerLayer<C = ErrorClassifier> {
    breaker: Arc<Breaker>,
    classifier: C,
}

impl CircuitBreakerLayer {
    /// A layer with a validated config and the default [`ErrorClassifier`].
    pub fn new(config: CircuitBreakerConfig) -> Self {
        Self {
            breaker: Arc::new(Breaker::new(config)),
            classifier: ErrorClassifier,
        }
    }

    /// A layer with the default settings for `model` (see
    /// [`CircuitBreakerConfig::builder`]).
    pub fn for_model(model: impl Into<hive_core::ModelId>) -> Result<Self, ConfigError> {
        Ok(Self::new(
            CircuitBreakerConfig::builder().model(model).build()?,
        ))
    }
}

impl<C> CircuitBreakerLayer<C> {
    /// Uses `classifier` to decide what counts as a failure.
    pub fn with_classifier<C2>(self, classifier: C2) -> CircuitBreakerLayer<C2> {
        CircuitBreakerLayer {
            breaker: self.breaker,
            classifier,
        }
    }

    /// A handle on the breaker shared by every service of this layer.
    pub fn handle(&self) -> BreakerHandle {
        BreakerHandle::new(Arc::clone(&self.breaker))
    }
}

impl<S, C: Clone> Layer<S> for CircuitBreakerLayer<C> {
    type Service = CircuitBreaker<S, C>;

    fn layer(&self, inner: S) -> Self::Service {
        CircuitBreaker::new(inner, Arc::clone(&self.breaker), self.classifier.clone())
    }
}
