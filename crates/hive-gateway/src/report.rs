//! Reports over the gateway's history: [`from_history`] reads a period of it into
//! hive-monitor's [`Report`] (figures, the resilience targets, HTML / JSON / CSV), and
//! [`parse_time`] reads the times `hive report` is given.

use std::path::PathBuf;

pub use hive_monitor::report::{
    Figures, ModelReport, Report, ReportError as Unreportable, Target, Verdict,
};

use crate::history::{History, HistoryError};

/// Why a report of the history cannot be made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReportError {
    /// The history file cannot be opened or read.
    #[error(transparent)]
    History(#[from] HistoryError),
    /// The history file does not exist (a report never creates one).
    #[error(
        "no history file at {}: give the gateway's history file with --db (a report never creates one)",
        path.display()
    )]
    NoDatabase {
        /// The path given.
        path: PathBuf,
    },
    /// A time that cannot be read.
    #[error("cannot read the time `{text}`: {reason}")]
    Time {
        /// The text given.
        text: String,
        /// Why.
        reason: String,
    },
    /// The period is empty, or the history holds nothing for it, or the report cannot be
    /// written.
    #[error(transparent)]
    Report(#[from] Unreportable),
}

/// Reads the minutes that start in `from_unix_ms..to_unix_ms` and the incidents that
/// overlap it from `history`, and computes the report.
///
/// Errors: [`Unreportable::Period`] when `to` is not after `from`, [`Unreportable::Empty`]
/// when the history holds neither a minute nor an incident for the period,
/// [`ReportError::History`] when it cannot be read.
pub async fn from_history(
    history: &History,
    from_unix_ms: u64,
    to_unix_ms: u64,
) -> Result<Report, ReportError> {
    Report::check_period(from_unix_ms, to_unix_ms)?;
    let minutes = history.minutes(from_unix_ms, to_unix_ms, None).await?;
    let incidents = history.incidents(from_unix_ms, to_unix_ms).await?;
    Ok(Report::checked(
        from_unix_ms,
        to_unix_ms,
        minutes,
        incidents,
    )?)
}

/// Reads a time given on the command line, in milliseconds since the Unix epoch: `now`, a
/// time before now (`-24h`, `-90m`, `now-7d`: any duration `hive_config::parse_duration`
/// reads), or an RFC 3339 time (`2025-05-01T12:00:00Z`, `2025-05-01T14:00:00+02:00`,
/// fractions of a second optional).
///
/// ```
/// use hive_gateway::report::parse_time;
///
/// let now = 1_746_100_800_000; // 2025-05-01T12:00:00Z
/// assert_eq!(parse_time("now", now).unwrap(), now);
/// assert_eq!(parse_time("-24h", now).unwrap(), now - 86_400_000);
/// assert_eq!(parse_time("2025-05-01T14:00:00+02:00", now).unwrap(), now);
/// assert!(parse_time("yesterday", now).is_err());
/// ```
pub fn parse_time(text: &str, now_unix_ms: u64) -> Result<u64, ReportError> {
    let bad = |reason: String| ReportError::Time {
        text: text.to_owned(),
        reason,
    };
    let trimmed = text.trim();
    if trimmed.eq_ignore_ascii_case("now") {
        return Ok(now_unix_ms);
    }
    let relative = trimmed
        .strip_prefix("now-")
        .or_else(|| trimmed.strip_prefix('-'));
    if let Some(ago) = relative {
        let ago = hive_config::parse_duration(ago).map_err(|e| bad(e.to_string()))?;
        let ago = u64::try_from(ago.as_millis()).unwrap_or(u64::MAX);
        return now_unix_ms
            .checked_sub(ago)
            .ok_or_else(|| bad("that is before 1970".to_owned()));
    }
    hive_core::civil::parse_rfc3339_ms(trimmed).ok_or_else(|| {
        bad(
            "expected `now`, a time before now like `-24h` or `-30m`, or an RFC 3339 time like \
             `2025-05-01T12:00:00Z`"
                .to_owned(),
        )
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn relative_times() {
        let now = 1_746_100_800_000;
        assert_eq!(parse_time(" now ", now).unwrap(), now);
        assert_eq!(parse_time("now-1h30m", now).unwrap(), now - 5_400_000);
        assert_eq!(parse_time("-7d", now).unwrap(), now - 7 * 86_400_000);
        assert!(matches!(
            parse_time("-24", now),
            Err(ReportError::Time { .. })
        ));
        assert!(parse_time("-100000d", now).is_err());
    }
}
