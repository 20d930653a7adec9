use std::sync::Arc;

use hive_core::ErrorClassifier;
use tower_layer::Layer;

use crate::{Retry, RetryConfig};

/// Retries failed calls to one model; see the [crate docs](crate) for the rules.
#[derive(Clone, Debug)]
#[must_use]
pub struct RetryLayer<C = ErrorClassifier> {
    config: Arc<RetryConfig>,
    classifier: C,
}

impl RetryLayer {
    /// A layer with a validated config and the default [`ErrorClassifier`].
    pub fn new(config: RetryConfig) -> Self {
        Self {
            config: Arc::new(config),
            classifier: ErrorClassifier,
        }
    }
}

impl<C> RetryLayer<C> {
    /// Uses `classifier` to decide what failed and whether it may be retried.
    pub fn with_classifier<C2>(self, classifier: C2) -> RetryLayer<C2> {
        RetryLayer {
            config: self.config,
            classifier,
        }
    }
}

impl<S, C: Clone> Layer<S> for RetryLayer<C> {
    type Service = Retry<S, C>;

    fn layer(&self, inner: S) -> Self::Service {
        Retry::new(inner, Arc::clone(&self.config), self.classifier.clone())
    }
}
