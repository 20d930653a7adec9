use std::sync::Arc;

use hive_core::ModelId;
use tower_layer::Layer;

use crate::{ChaosError, ChaosHandle, ChaosRules, ChaosService, InjectedFaults, engine::Shared};

/// Injects faults into the calls of one model; see the [crate docs](crate).
///
/// Clones share their rules, switch and counters: build one layer, then give each model's
/// stack a clone named for it with [`model`](Self::model); one [`ChaosHandle`] controls
/// them all, and rules pick their model by name.
#[derive(Clone, Debug)]
#[must_use]
pub struct ChaosLayer<F = InjectedFaults> {
    shared: Arc<Shared>,
    model: ModelId,
    faults: F,
}

impl ChaosLayer {
    /// A layer with validated `rules`, for [`ModelId::default`] until
    /// [`model`](Self::model) names its model, with [`InjectedFaults`].
    pub fn new(rules: ChaosRules) -> Result<Self, ChaosError> {
        Ok(Self {
            shared: Arc::new(Shared::new(rules)?),
            model: ModelId::default(),
            faults: InjectedFaults,
        })
    }
}

impl<F> ChaosLayer<F> {
    /// The same layer (same rules, switch and handle) for `model`'s calls.
    pub fn model(mut self, model: impl Into<ModelId>) -> Self {
        self.model = model.into();
        self
    }

    /// Uses `faults` to make injected faults into the model service's own errors and
    /// stream failures (`OpenAiFaults` for hive-openai's client).
    pub fn with_faults<F2>(self, faults: F2) -> ChaosLayer<F2> {
        ChaosLayer {
            shared: self.shared,
            model: self.model,
            faults,
        }
    }

    /// The handle that switches this layer (and its clones) and replaces its rules.
    pub fn handle(&self) -> ChaosHandle {
        ChaosHandle {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<S, F: Clone> Layer<S> for ChaosLayer<F> {
    type Service = ChaosService<S, F>;

    fn layer(&self, inner: S) -> Self::Service {
        ChaosService::new(
            inner,
            Arc::clone(&self.shared),
            self.model,
            self.faults.clone(),
        )
    }
}
