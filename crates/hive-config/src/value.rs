//! The value syntaxes of the config files: durations (`30s`, `5m`, `1h30m`, `250ms`), rates
//! (`20%` or `0.2`) and sizes (`64KiB`, `1MiB`), each parsed from text and written back in
//! a form that parses to the same value.

use std::{fmt, str::FromStr, time::Duration};

/// A value that does not follow its syntax. The message says what was expected; it never
/// repeats more of the input than the part it could not read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ValueError {
    /// What is wrong, in a few words.
    pub message: String,
}

impl ValueError {
    fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
        }
    }
}

/// Duration units, longest spelling first so that `ms` is not read as `m`.
const UNITS: [(&str, u128); 8] = [
    ("ns", 1),
    ("us", 1_000),
    ("µs", 1_000),
    ("ms", 1_000_000),
    ("s", 1_000_000_000),
    ("m", 60_000_000_000),
    ("h", 3_600_000_000_000),
    ("d", 86_400_000_000_000),
];

/// Reads a duration: one or more `<number><unit>` parts with no space between them, units
/// `d`, `h`, `m`, `s`, `ms`, `us` (or `µs`), `ns`; the number may have a decimal part
/// (`1.5s`). `0` alone is zero. A number without a unit is refused: `30` could be seconds or
/// milliseconds.
///
/// ```
/// use std::time::Duration;
/// use hive_config::parse_duration;
///
/// assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
/// assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
/// assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
/// assert!(parse_duration("30").is_err());
/// ```
pub fn parse_duration(text: &str) -> Result<Duration, ValueError> {
    let text = text.trim();
    if text == "0" {
        return Ok(Duration::ZERO);
    }
    if text.is_empty() {
        return Err(ValueError::new("a duration is empty"));
    }
    let mut rest = text;
    let mut total: u128 = 0;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (number, after) = rest.split_at(digits);
        if number.is_empty() {
            return Err(ValueError::new(format!(
                "expected a number before `{after}`: a duration is written like 30s, 5m or 1h30m"
            )));
        }
        let unit_len = after
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after.len());
        let (unit, next) = after.split_at(unit_len);
        if unit.starts_with(char::is_whitespace) {
            let trimmed = unit.trim();
            let example = if UNITS.iter().any(|(name, _)| *name == trimmed) {
                format!("{number}{trimmed}")
            } else {
                format!("{number}s or {number}m")
            };
            return Err(ValueError::new(format!(
                "no space goes between a number and its unit: write {example}"
            )));
        }
        if unit.is_empty() {
            return Err(ValueError::new(format!(
                "`{number}` needs a unit: write {number}s (seconds) or {number}ms (milliseconds)"
            )));
        }
        let Some(&(_, nanos)) = UNITS.iter().find(|(name, _)| *name == unit) else {
            return Err(ValueError::new(format!(
                "unknown duration unit `{unit}`: use ms, s, m, h or d"
            )));
        };
        total = total
            .checked_add(scaled(number, nanos)?)
            .ok_or_else(too_long)?;
        rest = next;
    }
    let secs = u64::try_from(total / 1_000_000_000).map_err(|_| too_long())?;
    // The remainder is below 10^9: it fits a u32.
    let sub = (total % 1_000_000_000) as u32;
    Ok(Duration::new(secs, sub))
}

fn too_long() -> ValueError {
    ValueError::new("the duration is too long")
}

/// `number` (digits, an optional decimal part) times `unit` nanoseconds, exactly.
fn scaled(number: &str, unit: u128) -> Result<u128, ValueError> {
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if whole.is_empty() || fraction.contains('.') || (number.contains('.') && fraction.is_empty()) {
        return Err(ValueError::new(format!("`{number}` is not a number")));
    }
    let parse = |digits: &str| -> Result<u128, ValueError> {
        if digits.is_empty() {
            return Ok(0);
        }
        digits.parse::<u128>().map_err(|_| too_long())
    };
    let mut nanos = parse(whole)?.checked_mul(unit).ok_or_else(too_long)?;
    if !fraction.is_empty() {
        let fraction = fraction.trim_end_matches('0');
        let places = u32::try_from(fraction.len()).map_err(|_| too_long())?;
        let scale = 10u128.checked_pow(places).ok_or_else(|| {
            ValueError::new(format!("`{number}` has more decimals than a nanosecond"))
        })?;
        let part = parse(fraction)?.checked_mul(unit).ok_or_else(too_long)?;
        if part % scale != 0 {
            return Err(ValueError::new(format!(
                "`{number}` is finer than a nanosecond"
            )));
        }
        nanos = nanos.checked_add(part / scale).ok_or_else(too_long)?;
    }
    Ok(nanos)
}

/// Writes a duration the way [`parse_duration`] reads it, largest units first and exact:
/// `1m30s`, `250ms`, `1s500ms`, `0s`.
///
/// ```
/// use std::time::Duration;
/// use hive_config::{format_duration, parse_duration};
///
/// assert_eq!(format_duration(Duration::from_secs(90)), "1m30s");
/// let d = Duration::new(86_400 + 61, 5);
/// assert_eq!(parse_duration(&format_duration(d)), Ok(d));
/// ```
pub fn format_duration(duration: Duration) -> String {
    if duration.is_zero() {
        return "0s".to_owned();
    }
    let mut nanos = duration.as_nanos();
    let mut text = String::new();
    for (name, size) in UNITS.iter().rev().filter(|(name, _)| *name != "µs") {
        let count = nanos / size;
        if count > 0 {
            text.push_str(&count.to_string());
            text.push_str(name);
            nanos %= size;
        }
    }
    text
}

/// A share, from `20%` or `0.2` (or a YAML number). Written back as a percentage when that
/// reads back exactly, else as a decimal.
#[derive(Clone, Copy, Debug, PartialEq, PartialOrd)]
pub struct Rate(pub f64);

impl FromStr for Rate {
    type Err = ValueError;

    /// ```
    /// use hive_config::Rate;
    ///
    /// assert_eq!("20%".parse(), Ok(Rate(0.2)));
    /// assert_eq!("0.2".parse(), Ok(Rate(0.2)));
    /// assert_eq!("12.5%".parse(), Ok(Rate(0.125)));
    /// assert!("20 percent".parse::<Rate>().is_err());
    /// ```
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        let (number, percent) = match text.strip_suffix('%') {
            Some(number) => (number.trim_end(), true),
            None => (text, false),
        };
        let plain = !number.is_empty()
            && number
                .chars()
                .all(|c| c.is_ascii_digit() || c == '.' || c == '-')
            && number.chars().any(|c| c.is_ascii_digit());
        let value: f64 = number
            .parse()
            .ok()
            .filter(|v: &f64| plain && v.is_finite())
            .ok_or_else(|| {
                ValueError::new("a rate is written as a percentage (20%) or a share (0.2)")
            })?;
        Ok(Self(if percent { value / 100.0 } else { value }))
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let percent = format!("{}", self.0 * 100.0);
        match format!("{percent}%").parse::<Rate>() {
            Ok(back) if back.0 == self.0 => write!(f, "{percent}%"),
            _ => write!(f, "{}", self.0),
        }
    }
}

/// A number of bytes, from `512`, `512B`, `64KiB`, `1MiB`, `2GiB` (powers of 1024) or `64KB`,
/// `1MB`, `1GB` (powers of 1000); units in any case, an optional space before the unit.
/// Written back in the largest unit that holds it exactly.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ByteSize(pub u64);

const SIZE_UNITS: [(&str, u64); 9] = [
    ("b", 1),
    ("kib", 1 << 10),
    ("mib", 1 << 20),
    ("gib", 1 << 30),
    ("tib", 1 << 40),
    ("kb", 1_000),
    ("mb", 1_000_000),
    ("gb", 1_000_000_000),
    ("tb", 1_000_000_000_000),
];

impl FromStr for ByteSize {
    type Err = ValueError;

    /// ```
    /// use hive_config::ByteSize;
    ///
    /// assert_eq!("1MiB".parse(), Ok(ByteSize(1 << 20)));
    /// assert_eq!("64 KiB".parse(), Ok(ByteSize(65_536)));
    /// assert_eq!("1500".parse(), Ok(ByteSize(1500)));
    /// assert!("1.5MiB".parse::<ByteSize>().is_err());
    /// ```
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        let digits = text
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len());
        let (number, unit) = text.split_at(digits);
        let unit = unit.trim_start().to_ascii_lowercase();
        let syntax =
            || ValueError::new("a size is a whole number and a unit: 512B, 64KiB, 1MiB or 1GiB");
        if number.is_empty() {
            return Err(syntax());
        }
        let count: u64 = number
            .parse()
            .map_err(|_| ValueError::new("the size is too large"))?;
        let factor = if unit.is_empty() {
            1
        } else {
            SIZE_UNITS
                .iter()
                .find(|(name, _)| *name == unit)
                .map(|(_, factor)| *factor)
                .ok_or_else(syntax)?
        };
        count
            .checked_mul(factor)
            .map(Self)
            .ok_or_else(|| ValueError::new("the size is too large"))
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const SHOWN: [(&str, u64); 8] = [
            ("TiB", 1 << 40),
            ("GiB", 1 << 30),
            ("MiB", 1 << 20),
            ("KiB", 1 << 10),
            ("TB", 1_000_000_000_000),
            ("GB", 1_000_000_000),
            ("MB", 1_000_000),
            ("KB", 1_000),
        ];
        let bytes = self.0;
        if bytes > 0
            && let Some((name, size)) = SHOWN.iter().find(|(_, size)| bytes.is_multiple_of(*size))
        {
            return write!(f, "{}{name}", bytes / size);
        }
        write!(f, "{bytes}B")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_every_unit_and_refuse_bad_text() {
        let ok = |text: &str, d: Duration| assert_eq!(parse_duration(text), Ok(d), "{text}");
        ok("0", Duration::ZERO);
        ok("0s", Duration::ZERO);
        ok("30s", Duration::from_secs(30));
        ok("5m", Duration::from_secs(300));
        ok("1h", Duration::from_secs(3600));
        ok("2d", Duration::from_secs(2 * 86_400));
        ok("250ms", Duration::from_millis(250));
        ok("10us", Duration::from_micros(10));
        ok("10µs", Duration::from_micros(10));
        ok("7ns", Duration::from_nanos(7));
        ok("1h30m", Duration::from_secs(5400));
        ok("1.5s", Duration::from_millis(1500));
        ok("0.25m", Duration::from_secs(15));
        for bad in [
            "",
            "30",
            "1.5",
            "s",
            "10 s",
            "10sec",
            "1..5s",
            "1.s",
            ".5s",
            "-1s",
            "1.0000000001s",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad:?} was accepted");
        }
        assert!(parse_duration("99999999999999999999999d").is_err());
    }

    #[test]
    fn durations_round_trip() {
        for d in [
            Duration::ZERO,
            Duration::from_nanos(1),
            Duration::from_millis(250),
            Duration::from_millis(1500),
            Duration::from_secs(90),
            Duration::from_secs(86_400 * 365),
            Duration::new(3_661, 1_001_001),
            Duration::new(u64::MAX, 999_999_999),
        ] {
            let text = format_duration(d);
            assert_eq!(parse_duration(&text), Ok(d), "{text}");
        }
        assert_eq!(format_duration(Duration::from_secs(3600)), "1h");
        assert_eq!(format_duration(Duration::from_millis(250)), "250ms");
    }

    #[test]
    fn rates_read_percentages_and_shares_and_round_trip() {
        assert_eq!("20%".parse(), Ok(Rate(0.2)));
        assert_eq!("100%".parse(), Ok(Rate(1.0)));
        assert_eq!("0.5".parse(), Ok(Rate(0.5)));
        assert_eq!("1".parse(), Ok(Rate(1.0)));
        for bad in ["", "%", "abc", "20 %x", "NaN", "inf", "1e3", "20%%"] {
            assert!(bad.parse::<Rate>().is_err(), "{bad:?} was accepted");
        }
        for r in [0.0, 0.2, 0.5, 0.125, 1.0, 0.1, 0.3, 1.0 / 3.0, 0.07, 12.5] {
            let text = Rate(r).to_string();
            assert_eq!(text.parse(), Ok(Rate(r)), "{text}");
        }
        assert_eq!(Rate(0.2).to_string(), "20%");
    }

    #[test]
    fn sizes_read_units_and_round_trip() {
        assert_eq!("64KiB".parse(), Ok(ByteSize(65_536)));
        assert_eq!("1mib".parse(), Ok(ByteSize(1 << 20)));
        assert_eq!("1MB".parse(), Ok(ByteSize(1_000_000)));
        assert_eq!("512B".parse(), Ok(ByteSize(512)));
        assert_eq!("0".parse(), Ok(ByteSize(0)));
        for bad in [
            "",
            "MiB",
            "1.5MiB",
            "1 MiBs",
            "-1KiB",
            "99999999999999999999GiB",
        ] {
            assert!(bad.parse::<ByteSize>().is_err(), "{bad:?} was accepted");
        }
        for n in [
            0,
            1,
            1000,
            1024,
            1500,
            65_536,
            1 << 20,
            3 * (1 << 30),
            5_000_000,
        ] {
            let text = ByteSize(n).to_string();
            assert_eq!(text.parse(), Ok(ByteSize(n)), "{text}");
        }
        assert_eq!(ByteSize(1 << 20).to_string(), "1MiB");
        assert_eq!(ByteSize(1500).to_string(), "1500B");
    }
}
