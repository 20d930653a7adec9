//! [`CircuitBreakerLayer`]: wraps services in a circuit breaker.

use std::sync::Arc;

use hive_core::{ConfigError, ErrorClassifier};
use tower_layer::Layer;

use crate::{BreakerHandle, CircuitBreaker, CircuitBreakerConfig, breaker::Breaker};

/// Applies a circuit breaker to a service.
///
/// As tower layers do with their state, each service this layer builds gets a breaker of
/// its own (clones of that service share it): reusing one layer for two models never makes
/// them share a breaker by accident. Read and control a service's breaker with
/// [`CircuitBreaker::handle`]. To share one breaker between services on purpose (two
/// routes to one model), build the layer with [`shared`](Self::shared).
#[derive(Clone, Debug)]
#[must_use]
pub struct CircuitBreakerLayer<C = ErrorClassifier> {
    config: CircuitBreakerConfig,
    /// The breaker every service shares, for a layer built with [`shared`](Self::shared).
    shared: Option<Arc<Breaker>>,
    classifier: C,
}

impl CircuitBreakerLayer {
    /// A layer with a validated config and the default [`ErrorClassifier`]; each service it
    /// builds gets its own breaker.
    pub fn new(config: CircuitBreakerConfig) -> Self {
        Self {
            config,
            shared: None,
            classifier: ErrorClassifier,
        }
    }

    /// A layer whose services all share one breaker, and the handle on that breaker (as
    /// tower-http's `InFlightRequestsLayer::pair`).
    pub fn shared(config: CircuitBreakerConfig) -> (Self, BreakerHandle) {
        let breaker = Arc::new(Breaker::new(config.clone()));
        let handle = BreakerHandle::new(Arc::clone(&breaker));
        (
            Self {
                config,
                shared: Some(breaker),
                classifier: ErrorClassifier,
            },
            handle,
        )
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
            config: self.config,
            shared: self.shared,
            classifier,
        }
    }

    /// The settings of the breakers this layer builds.
    pub fn config(&self) -> &CircuitBreakerConfig {
        &self.config
    }
}

impl<S, C: Clone> Layer<S> for CircuitBreakerLayer<C> {
    type Service = CircuitBreaker<S, C>;

    fn layer(&self, inner: S) -> Self::Service {
        let breaker = match &self.shared {
            Some(shared) => Arc::clone(shared),
            None => Arc::new(Breaker::new(self.config.clone())),
        };
        CircuitBreaker::new(inner, breaker, self.classifier.clone())
    }
}
