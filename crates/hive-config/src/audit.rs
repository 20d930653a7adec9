//! [`AuditLog`]: config changes and manual recovery actions, one JSON line each.

use std::{
    fs::OpenOptions,
    io::{BufRead, BufReader, Write},
    path::{Path, PathBuf},
    time::{SystemTime, UNIX_EPOCH},
};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{Config, ConfigDiff, ConfigHash, Secret};

/// The action of an entry recording a config change.
pub const CONFIG_CHANGE: &str = "config_change";
/// The action of an entry recording a refused config change (the old config kept serving).
pub const CONFIG_REJECTED: &str = "config_rejected";

/// One line of the audit log.
///
/// ```json
/// {"time":"2025-05-01T12:03:04.250Z","actor":"sighup","action":"config_change",
///  "changes":{…},"config_hash":"sha256:…"}
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// When, in RFC 3339 UTC with milliseconds.
    pub time: String,
    /// Who: `file-watch`, `sighup`, `admin:<token name>`, `startup` …
    pub actor: String,
    /// What: [`CONFIG_CHANGE`], [`CONFIG_REJECTED`], `breaker_force_open`, `breaker_reset`,
    /// `silence_add` …
    pub action: String,
    /// The details: for a config change, [`ConfigDiff::to_json`]; for a recovery action,
    /// its target and parameters. Secrets never appear (see [`redacted`](Self::redacted)).
    pub changes: Value,
    /// The hash of the config in force after the action.
    pub config_hash: Option<String>,
}

impl AuditEntry {
    /// An entry stamped now.
    pub fn new(actor: impl Into<String>, action: impl Into<String>, changes: Value) -> Self {
        Self {
            time: rfc3339_now(),
            actor: actor.into(),
            action: action.into(),
            changes,
            config_hash: None,
        }
    }

    /// With the hash of the config in force after the action.
    #[must_use]
    pub fn with_hash(mut self, hash: ConfigHash) -> Self {
        self.config_hash = Some(hash.to_string());
        self
    }

    /// The entry of a reload from `old` to `new`: the diff (secrets by their source), the
    /// new config's hash, every secret value of either config scrubbed from it.
    pub fn config_change(
        actor: impl Into<String>,
        diff: &ConfigDiff,
        old: &Config,
        new: &Config,
    ) -> Self {
        Self::new(actor, CONFIG_CHANGE, diff.to_json())
            .with_hash(new.hash())
            .redacted(old)
            .redacted(new)
    }

    /// The entry with every text that holds one of `config`'s secret values replaced by
    /// `[redacted]`: for details that come from elsewhere (an admin request's body).
    #[must_use]
    pub fn redacted(mut self, config: &Config) -> Self {
        let secrets: Vec<&Secret> = config.secrets().into_iter().map(|(_, _, s)| s).collect();
        redact(&mut self.changes, &secrets);
        redact_text(&mut self.actor, &secrets);
        self
    }
}

/// Replaces every string holding a secret value (of 4 characters or more) by
/// `[redacted]`, object keys included.
fn redact(value: &mut Value, secrets: &[&Secret]) {
    match value {
        Value::String(text) => redact_text(text, secrets),
        Value::Array(items) => items.iter_mut().for_each(|v| redact(v, secrets)),
        Value::Object(map) => {
            let entries = std::mem::take(map);
            for (mut key, mut v) in entries {
                redact_text(&mut key, secrets);
                redact(&mut v, secrets);
                map.insert(key, v);
            }
        }
        _ => {}
    }
}

fn redact_text(text: &mut String, secrets: &[&Secret]) {
    let leaks = secrets
        .iter()
        .any(|s| s.expose().len() >= 4 && text.contains(s.expose()));
    if leaks {
        *text = "[redacted]".to_owned();
    }
}

/// Why the audit log could not be written or read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuditError {
    /// Opening or appending failed.
    #[error("cannot write the audit log {}: {source}", path.display())]
    Write {
        /// The log.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Opening or reading failed.
    #[error("cannot read the audit log {}: {source}", path.display())]
    Read {
        /// The log.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A line is not an entry.
    #[error("line {line} of the audit log {} is not an entry: {message}", path.display())]
    Parse {
        /// The log.
        path: PathBuf,
        /// The line, from 1.
        line: usize,
        /// What the JSON parser said.
        message: String,
    },
}

/// An append-only JSON-lines file of [`AuditEntry`]s.
///
/// Each [`append`](Self::append) opens the file in append mode, writes one whole line with
/// one `write` call and closes it: lines from concurrent writers (two tasks, two gateway
/// processes on one file) do not interleave, and nothing is held between writes. The
/// calls block on the file system: call them from `spawn_blocking` on a busy runtime.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditLog {
    path: PathBuf,
}

impl AuditLog {
    /// A log at `path` (created on the first append; its directory must exist).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    /// The log `config.audit` names, if any.
    pub fn from_config(config: &Config) -> Option<Self> {
        config.audit.path.clone().map(Self::new)
    }

    /// Where it is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends `entry` as one line.
    pub fn append(&self, entry: &AuditEntry) -> Result<(), AuditError> {
        let write = |source| AuditError::Write {
            path: self.path.clone(),
            source,
        };
        let mut line = serde_json::to_vec(entry).map_err(|e| write(e.into()))?;
        line.push(b'\n');
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .map_err(write)?;
        file.write_all(&line).map_err(write)?;
        file.flush().map_err(write)
    }

    /// Every entry, oldest first (none when the file does not exist yet).
    pub fn read(&self) -> Result<Vec<AuditEntry>, AuditError> {
        self.tail(usize::MAX)
    }

    /// The last `n` entries, oldest first: the file is read through once, holding no more
    /// than `n` entries at a time.
    pub fn tail(&self, n: usize) -> Result<Vec<AuditEntry>, AuditError> {
        let read = |source| AuditError::Read {
            path: self.path.clone(),
            source,
        };
        let file = match std::fs::File::open(&self.path) {
            Ok(file) => file,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(error) => return Err(read(error)),
        };
        let mut out = std::collections::VecDeque::new();
        for (i, line) in BufReader::new(file).lines().enumerate() {
            let line = line.map_err(read)?;
            if line.trim().is_empty() {
                continue;
            }
            let entry = serde_json::from_str(&line).map_err(|e| AuditError::Parse {
                path: self.path.clone(),
                line: i + 1,
                message: e.to_string(),
            })?;
            if out.len() == n {
                out.pop_front();
            }
            if n > 0 {
                out.push_back(entry);
            }
        }
        Ok(out.into())
    }
}

/// Now, in RFC 3339 UTC with milliseconds: `2025-05-01T12:03:04.250Z`.
fn rfc3339_now() -> String {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    hive_core::civil::rfc3339_ms(u64::try_from(since.as_millis()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_tail_is_the_last_entries_in_order() {
        let dir = std::env::temp_dir().join(format!("hive-audit-tail-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let log = AuditLog::new(dir.join("audit.jsonl"));
        let _ = std::fs::remove_file(log.path());
        for i in 0..5 {
            log.append(&AuditEntry::new("test", format!("a{i}"), Value::Null))
                .unwrap();
        }
        let actions = |entries: Vec<AuditEntry>| -> Vec<String> {
            entries.into_iter().map(|e| e.action).collect()
        };
        assert_eq!(actions(log.tail(2).unwrap()), ["a3", "a4"]);
        assert_eq!(actions(log.tail(9).unwrap()).len(), 5);
        assert!(log.tail(0).unwrap().is_empty());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
