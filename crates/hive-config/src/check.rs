//! [`check_config`]: what `hive check-config [DIR]` prints, and its exit status.

use std::{fmt::Write as _, path::Path, process::ExitCode};

use crate::{Config, Loader, ModelName};

/// The outcome of checking a config directory.
#[derive(Clone, Debug)]
pub struct CheckReport {
    /// What to print: a summary when valid; every problem, as a compiler shows it, and a
    /// count when not.
    pub text: String,
    /// 0 when valid, 1 when not.
    pub status: u8,
    /// The config, when valid.
    pub config: Option<Config>,
}

impl CheckReport {
    /// Whether the config is valid.
    pub fn is_ok(&self) -> bool {
        self.status == 0
    }

    /// The process exit code.
    pub fn exit_code(&self) -> ExitCode {
        ExitCode::from(self.status)
    }
}

/// Checks the config in `dir` (secrets from the process environment, as the gateway would
/// read them); `color` adds ANSI colors to the problems.
pub fn check_config(dir: impl AsRef<Path>, color: bool) -> CheckReport {
    check_config_with(&Loader::new(), dir, color)
}

/// [`check_config`] with a loader of your own (another environment).
pub fn check_config_with(loader: &Loader, dir: impl AsRef<Path>, color: bool) -> CheckReport {
    let dir = dir.as_ref();
    match loader.load(dir) {
        Ok(config) => CheckReport {
            text: summary(&config),
            status: 0,
            config: Some(config),
        },
        Err(diagnostics) => {
            let mut text = diagnostics.render(color);
            let count = diagnostics.len();
            let _ = writeln!(
                text,
                "error: the config in {} is invalid: {count} error{}",
                dir.display(),
                if count == 1 { "" } else { "s" }
            );
            CheckReport {
                text,
                status: 1,
                config: None,
            }
        }
    }
}

fn summary(config: &Config) -> String {
    let mut text = format!(
        "the config in {} is valid ({})\n",
        config.dir().display(),
        config.hash()
    );
    for (path, present) in config.files() {
        let state = if present {
            "read"
        } else {
            "not found: its defaults apply"
        };
        let _ = writeln!(text, "  {}: {state}", path.display());
    }
    let patterns = config
        .models
        .iter()
        .filter(|m| matches!(m.name, ModelName::Pattern(_)))
        .count();
    let plural =
        |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    let models = match patterns {
        0 => plural(config.models.len(), "model", "models"),
        n => format!(
            "{} ({n} of them {})",
            plural(config.models.len(), "model", "models"),
            if n == 1 { "a pattern" } else { "patterns" }
        ),
    };
    let _ = writeln!(
        text,
        "  {models}, {}, {}, {}",
        plural(config.routes.len(), "route", "routes"),
        plural(
            config.alerts.channels.len(),
            "alert channel",
            "alert channels"
        ),
        plural(config.alerts.rules.len(), "alert rule", "alert rules"),
    );
    if config.models.is_empty() {
        text.push_str("warning: no model is configured: every request will fail\n");
    }
    text
}
