//! Durations as milliseconds (a float: `0.5` is 500 µs) in the serde description.

use std::time::Duration;

use serde::{Deserialize, Deserializer, Serializer, de::Error};

pub(crate) fn serialize<S: Serializer>(value: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_f64(value.as_nanos() as f64 / 1e6)
}

pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Duration, D::Error> {
    from_millis(f64::deserialize(deserializer)?)
}

/// Milliseconds to a duration, to the nearest nanosecond (so a duration written out by
/// [`serialize`] reads back the same).
fn from_millis<E: Error>(ms: f64) -> Result<Duration, E> {
    let nanos = (ms * 1e6).round();
    if !(0.0..=u64::MAX as f64).contains(&nanos) {
        return Err(E::custom(format!("{ms} is not a duration in milliseconds")));
    }
    Ok(Duration::from_nanos(nanos as u64))
}

/// The same, for an optional duration.
pub(crate) mod option {
    use super::*;

    pub(crate) fn serialize<S: Serializer>(
        value: &Option<Duration>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match value {
            Some(value) => super::serialize(value, serializer),
            None => serializer.serialize_none(),
        }
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<Duration>, D::Error> {
        Option::<f64>::deserialize(deserializer)?
            .map(from_millis)
            .transpose()
    }
}
