//! Limits every crate shares: bounds on configured durations, conversions that saturate
//! instead of wrapping, and the headers that carry credentials.

use std::time::Duration;

use crate::ConfigError;

/// The longest duration any setting accepts (a year). Every configured duration is checked
/// against it, so no `Instant + Duration` built from settings can overflow and panic, and no
/// conversion to a narrower unit can wrap a long duration into a short one.
pub const MAX_DURATION: Duration = Duration::from_secs(365 * 24 * 60 * 60);

/// Checks a configured duration: at most [`MAX_DURATION`], and above zero unless
/// `zero_allowed`. The error names `field`.
pub fn check_duration(
    field: &'static str,
    value: Duration,
    zero_allowed: bool,
) -> Result<Duration, ConfigError> {
    if value.is_zero() && !zero_allowed {
        return Err(ConfigError::new(field, "must be above zero"));
    }
    if value > MAX_DURATION {
        return Err(ConfigError::new(
            field,
            format!("{value:?} is above the longest duration accepted, {MAX_DURATION:?} (a year)"),
        ));
    }
    Ok(value)
}

/// Whole microseconds of `duration`, saturating at `u64::MAX` instead of wrapping.
pub const fn micros(duration: Duration) -> u64 {
    let micros = duration.as_micros();
    if micros > u64::MAX as u128 {
        u64::MAX
    } else {
        micros as u64
    }
}

/// Request headers whose values are credentials whatever they are called by (lower case):
/// a client marks them sensitive, so that `Debug` of a header map and HTTP/2's header
/// compression never show or index them, and a config refuses them in plain text.
pub const CREDENTIAL_HEADERS: [&str; 6] = [
    "authorization",
    "proxy-authorization",
    "api-key",
    "x-api-key",
    "x-goog-api-key",
    "cookie",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_durations_saturate_and_are_refused() {
        assert_eq!(micros(Duration::MAX), u64::MAX);
        assert_eq!(micros(Duration::from_millis(3)), 3_000);
        assert!(check_duration("x", MAX_DURATION, false).is_ok());
        let err = check_duration("open_duration", MAX_DURATION * 2, false).unwrap_err();
        assert_eq!(err.field, "open_duration");
        assert!(check_duration("x", Duration::ZERO, true).is_ok());
        assert_eq!(
            check_duration("timeout", Duration::ZERO, false)
                .unwrap_err()
                .problem,
            "must be above zero"
        );
    }
}
