//! What the long-running commands (`hive demo`, `hive chaos run`) share on the terminal and
//! on disk: their live output, counts written as a list, percentiles, a private folder.

use std::{collections::BTreeMap, fmt::Display, io::IsTerminal, path::PathBuf, time::Duration};

use indicatif::{ProgressBar, ProgressStyle};

/// Where a long command talks: on a terminal, a spinner or a bar with a status line and
/// lines printed above it; otherwise plain lines on stderr, the status every 10 s; nothing
/// at all when off.
pub(crate) struct Output {
    bar: Option<ProgressBar>,
    on: bool,
}

impl Output {
    /// A spinner (no known end).
    pub(crate) fn spinner(on: bool) -> Self {
        Self::styled(on, ProgressBar::new_spinner, "{spinner} {msg}")
    }

    /// A bar over `length` (seconds of a run).
    pub(crate) fn bar(on: bool, length: Duration) -> Self {
        let seconds = length.as_secs().max(1);
        Self::styled(
            on,
            move || ProgressBar::new(seconds),
            "{bar:30} {pos:>4}/{len} s  {msg}",
        )
    }

    fn styled(on: bool, make: impl FnOnce() -> ProgressBar, template: &str) -> Self {
        let bar = (on && std::io::stderr().is_terminal()).then(|| {
            let bar = make();
            if let Ok(style) = ProgressStyle::with_template(template) {
                bar.set_style(style);
            }
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        });
        Self { bar, on }
    }

    /// A line above the status.
    pub(crate) fn line(&self, line: impl AsRef<str>) {
        match &self.bar {
            Some(bar) => bar.println(line.as_ref()),
            #[allow(clippy::print_stderr)] // a command's progress goes to stderr
            None if self.on => eprintln!("{}", line.as_ref()),
            None => {}
        }
    }

    /// The status, `at` into the run.
    pub(crate) fn status(&self, at: Duration, status: String) {
        match &self.bar {
            Some(bar) => {
                bar.set_position(at.as_secs());
                bar.set_message(status);
            }
            #[allow(clippy::print_stderr)] // a command's progress goes to stderr
            None if self.on && at.as_millis() % 10_000 < 250 => eprintln!("{status}"),
            None => {}
        }
    }

    /// Clears the bar.
    pub(crate) fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// `key count` pairs joined by `separator`: `HTTP 503 4 · stream error 1`.
pub(crate) fn counts<K: Display, N: Display>(map: &BTreeMap<K, N>, separator: &str) -> String {
    map.iter()
        .map(|(k, n)| format!("{k} {n}"))
        .collect::<Vec<_>>()
        .join(separator)
}

/// The `q` quantile of sorted values (nearest rank); zero when there are none.
pub(crate) fn percentile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let index = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

/// Makes a new folder only this user can open, in the temporary directory, named after the
/// prefix, the process and the time; an existing one (someone else's, say) is never
/// reused.
pub(crate) fn private_folder(prefix: &str) -> Result<PathBuf, (PathBuf, std::io::Error)> {
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    let dir = std::env::temp_dir().join(format!("{prefix}-{}-{stamp}", std::process::id()));
    let mut builder = std::fs::DirBuilder::new();
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(&dir).map_err(|e| (dir.clone(), e))?;
    Ok(dir)
}
