//! [`Faults`]: what an injected fault becomes for one kind of model service.

use hive_core::ModelId;

use crate::{Fault, InjectedError, StreamFault};

/// Turns an injected fault into what the model service would have given: its error (or an
/// error response), and a stream fault played on its answer.
///
/// The layer calls [`failure`](Self::failure) instead of the model for a failure that fired
/// (every [`Fault`] but [`Latency`](Fault::Latency) and [`Stream`](Fault::Stream); a
/// [`Timeout`](Fault::Timeout) after its wait; never [`Hang`](Fault::Hang), which the layer
/// plays itself), and [`stream`](Self::stream) on the model's answer for a stream fault.
///
/// Implementations: [`InjectedFaults`] for any service whose error type takes an
/// [`InjectedError`] (`BoxError` does); `OpenAiFaults` (feature
/// `openai`) for hive-openai's client, whose injected failures classify exactly as the real
/// ones.
pub trait Faults<Response, Error> {
    /// The result of a call to `model` into which `fault` (a failure) was injected.
    fn failure(&self, fault: &Fault, model: ModelId) -> Result<Response, Error>;

    /// Plays `fault` on `response`, a streamed answer of `model`; `false` when the answer is
    /// not a stream (it passes untouched). The default plays nothing.
    fn stream(&self, response: &mut Response, fault: StreamFault, model: ModelId) -> bool {
        let _ = (response, fault, model);
        false
    }
}

/// Injected failures as an [`InjectedError`] (converted into the service's error type);
/// stream faults are not played. The default of [`ChaosLayer`](crate::ChaosLayer).
#[derive(Clone, Copy, Debug, Default)]
pub struct InjectedFaults;

impl<T, E: From<InjectedError>> Faults<T, E> for InjectedFaults {
    fn failure(&self, fault: &Fault, model: ModelId) -> Result<T, E> {
        Err(InjectedError::new(fault.clone(), model).into())
    }
}
