//! Times as the report writes them.

const MINUTE: u64 = 60_000;

/// The parts of a time: (year, month, day, hour, minute, second, millisecond), in UTC.
fn parts(unix_ms: u64) -> (i64, i64, i64, u64, u64, u64, u64) {
    let days = unix_ms / 86_400_000;
    let (year, month, day) =
        hive_core::civil::civil_from_days(i64::try_from(days).unwrap_or(i64::MAX / 2));
    let in_day = unix_ms % 86_400_000;
    (
        year,
        month,
        day,
        in_day / 3_600_000,
        in_day / MINUTE % 60,
        in_day / 1000 % 60,
        in_day % 1000,
    )
}

/// RFC 3339 in UTC: `2025-05-01T12:03:04Z`, with `.250` when there are milliseconds.
pub(crate) fn rfc3339(unix_ms: u64) -> String {
    let (y, mo, d, h, mi, s, ms) = parts(unix_ms);
    if ms == 0 {
        format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
    } else {
        format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{ms:03}Z")
    }
}

/// `2025-05-01 12:03 UTC`, for people.
pub(crate) fn human(unix_ms: u64) -> String {
    let (y, mo, d, h, mi, _, _) = parts(unix_ms);
    format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02} UTC")
}

/// `12:03:04`, for people (seconds when not zero).
pub(crate) fn clock(unix_ms: u64) -> String {
    let (_, _, _, h, mi, s, _) = parts(unix_ms);
    if s == 0 {
        format!("{h:02}:{mi:02}")
    } else {
        format!("{h:02}:{mi:02}:{s:02}")
    }
}

/// `05-01 12:03`, for an axis that spans days.
pub(crate) fn day_clock(unix_ms: u64) -> String {
    let (_, mo, d, h, mi, _, _) = parts(unix_ms);
    format!("{mo:02}-{d:02} {h:02}:{mi:02}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use hive_core::civil::parse_rfc3339_ms as parse_rfc3339;

    #[test]
    fn times_round_trip() {
        for ms in [
            0,
            951_782_400_000,
            1_709_251_199_500,
            1_746_100_984_250,
            4_102_444_800_000,
        ] {
            assert_eq!(parse_rfc3339(&rfc3339(ms)), Some(ms), "{}", rfc3339(ms));
        }
        assert_eq!(rfc3339(1_746_100_984_250), "2025-05-01T12:03:04.250Z");
        assert_eq!(
            parse_rfc3339("2025-05-01 12:03:04.25-01:30"),
            Some(1_746_100_984_250 + 90 * 60_000)
        );
        for bad in [
            "2025-02-29T00:00:00Z",
            "2025-05-01T24:00:00Z",
            "2025-05-01T12:00:00",
            "2025-05-01T12:00:00+2",
            "2025-05-01",
            "1969-12-31T23:59:59Z",
            "2025-05-01T12:00:00.Z",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
        assert_eq!(human(1_746_100_984_250), "2025-05-01 12:03 UTC");
        assert_eq!(clock(1_746_100_984_000), "12:03:04");
    }
}
