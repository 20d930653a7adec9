//! `Serialize` for the vocabulary (feature `serde`): each type as its stable name, the one
//! used in logs and metric labels, so snapshots, reports and metrics agree.

use serde::{Serialize, Serializer};

use crate::{
    Actor, CircuitState, ClientErrorClass, ControlAction, FailureClass, HealthStatus, ModelId,
    RetryStop,
};

macro_rules! serialize_as_str {
    ($($ty:ty),* $(,)?) => {$(
        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }
    )*};
}

serialize_as_str!(
    ModelId,
    CircuitState,
    HealthStatus,
    FailureClass,
    ClientErrorClass,
    ControlAction,
    RetryStop,
    Actor,
);
