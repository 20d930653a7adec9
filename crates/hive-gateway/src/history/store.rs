//! The SQLite side: opening and checking the file, the schema and its migrations, the
//! writer thread, and the reads.
//!
//! # Schema (version 1)
//!
//! ```sql
//! minutes   (minute_unix_ms, model) primary key, requests, successes,
//!           failures TEXT (JSON object class → n), client_errors, rejected,
//!           latency BLOB (LatencySketch: bucket byte + LEB128 count per bucket in use),
//!           failovers_from, failovers_to                              -- WITHOUT ROWID
//! incidents id, model, started_unix_ms, ended_unix_ms NULL, rule NULL, notifications NULL
//! audit     id, at_unix_ms, actor, action, entry TEXT (the AuditEntry as JSON)
//! ```
//!
//! `PRAGMA user_version` is the schema version; migration `n` takes a file from version
//! `n` to `n + 1` in one transaction.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    sync::{
        Arc, RwLock,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use hive_config::AuditEntry;
use rusqlite::{Connection, ErrorCode, OpenFlags, OptionalExtension, TransactionBehavior, params};
use tokio::sync::{mpsc, oneshot};

use super::{
    AuditRecord, HistoryError, HistoryOptions, IncidentRecord, LatencySketch, MinuteRollup, unix_ms,
};

/// The migrations, in order: `MIGRATIONS[n]` takes a file from version `n` to `n + 1`.
const MIGRATIONS: &[&str] = &["
    CREATE TABLE minutes (
        minute_unix_ms INTEGER NOT NULL,
        model TEXT NOT NULL,
        requests INTEGER NOT NULL,
        successes INTEGER NOT NULL,
        failures TEXT NOT NULL,
        client_errors INTEGER NOT NULL,
        rejected INTEGER NOT NULL,
        latency BLOB NOT NULL,
        failovers_from INTEGER NOT NULL,
        failovers_to INTEGER NOT NULL,
        PRIMARY KEY (minute_unix_ms, model)
    ) WITHOUT ROWID;
    CREATE TABLE incidents (
        id INTEGER PRIMARY KEY,
        model TEXT NOT NULL,
        started_unix_ms INTEGER NOT NULL,
        ended_unix_ms INTEGER,
        rule TEXT,
        notifications INTEGER
    );
    CREATE INDEX incidents_by_start ON incidents (started_unix_ms);
    CREATE INDEX incidents_open ON incidents (model) WHERE ended_unix_ms IS NULL;
    CREATE TABLE audit (
        id INTEGER PRIMARY KEY,
        at_unix_ms INTEGER NOT NULL,
        actor TEXT NOT NULL,
        action TEXT NOT NULL,
        entry TEXT NOT NULL
    );
    CREATE INDEX audit_by_time ON audit (at_unix_ms);
"];

/// The schema version this build writes.
pub(super) const SCHEMA_VERSION: u32 = MIGRATIONS.len() as u32;

/// How long the writer waits for a lock another connection holds before a batch fails.
const WRITER_LOCK_WAIT: Duration = Duration::from_secs(5);
/// How long a read waits for a lock (a checkpoint) before it fails.
const READER_LOCK_WAIT: Duration = Duration::from_secs(2);
/// The most records written in one transaction.
const BATCH: usize = 1024;
/// How often the writer deletes rows older than the retention.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// What the writer is asked to do.
pub(super) enum Op {
    Minutes(Vec<MinuteRollup>),
    IncidentStarted { model: String, at_unix_ms: u64 },
    IncidentEnded { model: String, at_unix_ms: u64 },
    IncidentNoted { model: String, rule: String },
    Audit { at_unix_ms: u64, entry: AuditEntry },
    Flush(oneshot::Sender<rusqlite::Result<()>>),
    Prune(oneshot::Sender<rusqlite::Result<u64>>),
}

impl Op {
    /// The records it carries (what is lost if it is not written).
    fn records(&self) -> u64 {
        match self {
            Self::Minutes(minutes) => minutes.len() as u64,
            Self::IncidentStarted { .. }
            | Self::IncidentEnded { .. }
            | Self::IncidentNoted { .. }
            | Self::Audit { .. } => 1,
            Self::Flush(_) | Self::Prune(_) => 0,
        }
    }
}

/// An SQLite error while opening, as the typed error naming the file.
fn opening_error(path: &Path, error: rusqlite::Error) -> HistoryError {
    match error.sqlite_error_code() {
        Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt) => HistoryError::Corrupt {
            path: path.to_path_buf(),
            reason: error.to_string(),
        },
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => HistoryError::Locked {
            path: path.to_path_buf(),
        },
        _ => HistoryError::Sqlite {
            path: path.to_path_buf(),
            source: error,
        },
    }
}

fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn to_u64(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

/// Opens (or creates) the file, checks it, puts it in WAL mode, migrates it and prunes it.
/// Nothing is written to a file that fails a check.
pub(super) fn open(path: &Path, options: &HistoryOptions) -> Result<Connection, HistoryError> {
    let error = |e| opening_error(path, e);
    let mut connection = Connection::open(path).map_err(error)?;
    connection.busy_timeout(options.lock_wait).map_err(error)?;
    // Reading the header first: a file that is not a database fails here, untouched.
    let found: u32 = connection
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .map_err(error)?;
    if found > SCHEMA_VERSION {
        return Err(HistoryError::TooNew {
            path: path.to_path_buf(),
            found,
            supported: SCHEMA_VERSION,
        });
    }
    let check: String = connection
        .query_row("PRAGMA quick_check", [], |row| row.get(0))
        .map_err(error)?;
    if check != "ok" {
        return Err(HistoryError::Corrupt {
            path: path.to_path_buf(),
            reason: format!("PRAGMA quick_check: {check}"),
        });
    }
    let mode: String = connection
        .query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))
        .map_err(error)?;
    if !mode.eq_ignore_ascii_case("wal") {
        // Another connection in rollback mode holds the file: WAL cannot be set now.
        return Err(HistoryError::Locked {
            path: path.to_path_buf(),
        });
    }
    connection
        .pragma_update(None, "synchronous", "NORMAL")
        .map_err(error)?;
    // The write lock, taken at once (IMMEDIATE): a file another connection writes is
    // `Locked` after `lock_wait`, even when its schema is current.
    let transaction = connection
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(error)?;
    let version: u32 = transaction
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .map_err(error)?;
    if version > SCHEMA_VERSION {
        return Err(HistoryError::TooNew {
            path: path.to_path_buf(),
            found: version,
            supported: SCHEMA_VERSION,
        });
    }
    for (from, migration) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        transaction.execute_batch(migration).map_err(error)?;
        transaction
            .pragma_update(None, "user_version", from + 1)
            .map_err(error)?;
    }
    prune(&transaction, options.retention).map_err(error)?;
    // Incidents a crash left open end with the last minute the history recorded: the
    // process that saw them is gone, and a new one starts every breaker closed.
    transaction
        .execute(
            "UPDATE incidents SET ended_unix_ms = MAX(started_unix_ms, \
             COALESCE((SELECT MAX(minute_unix_ms) + 60000 FROM minutes), started_unix_ms)) \
             WHERE ended_unix_ms IS NULL",
            [],
        )
        .map_err(error)?;
    transaction.commit().map_err(error)?;
    connection.busy_timeout(WRITER_LOCK_WAIT).map_err(error)?;
    Ok(connection)
}

/// Checks that an existing file is a history this build reads, without writing to it:
/// for a report over the file of a gateway that may be running.
pub(super) fn check_read_only(path: &Path) -> Result<(), HistoryError> {
    let connection = open_reader(path)?;
    let found: u32 = connection
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .map_err(|e| opening_error(path, e))?;
    if found > SCHEMA_VERSION {
        return Err(HistoryError::TooNew {
            path: path.to_path_buf(),
            found,
            supported: SCHEMA_VERSION,
        });
    }
    if found == 0 {
        return Err(HistoryError::Corrupt {
            path: path.to_path_buf(),
            reason: "not a hive history (no schema)".to_owned(),
        });
    }
    Ok(())
}

/// A read-only connection to the file, for one read.
pub(super) fn open_reader(path: &Path) -> Result<Connection, HistoryError> {
    let error = |e| opening_error(path, e);
    let connection = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(error)?;
    connection.busy_timeout(READER_LOCK_WAIT).map_err(error)?;
    Ok(connection)
}

/// Deletes the rows older than `retention`; answers how many.
fn prune(connection: &Connection, retention: Duration) -> rusqlite::Result<u64> {
    let retention = u64::try_from(retention.as_millis()).unwrap_or(u64::MAX);
    let cutoff = to_i64(unix_ms().saturating_sub(retention));
    let mut deleted = connection.execute(
        "DELETE FROM minutes WHERE minute_unix_ms < ?1",
        params![cutoff],
    )?;
    deleted += connection.execute(
        "DELETE FROM incidents WHERE ended_unix_ms IS NOT NULL AND ended_unix_ms < ?1",
        params![cutoff],
    )?;
    deleted += connection.execute("DELETE FROM audit WHERE at_unix_ms < ?1", params![cutoff])?;
    Ok(deleted as u64)
}

/// The writer thread's state.
pub(super) struct Writer {
    connection: Connection,
    path: PathBuf,
    retention: Duration,
    hold: Arc<RwLock<()>>,
    /// When it last pruned, in ms since the Unix epoch.
    pruned_at: u64,
    /// Records lost: the history's count, to which a batch that could not be written adds.
    dropped: Arc<AtomicU64>,
}

impl Writer {
    pub(super) fn new(
        connection: Connection,
        path: PathBuf,
        retention: Duration,
        hold: &Arc<RwLock<()>>,
        dropped: Arc<AtomicU64>,
    ) -> Self {
        Self {
            connection,
            path,
            retention,
            hold: Arc::clone(hold),
            dropped,
            pruned_at: unix_ms(),
        }
    }

    /// Writes batches until the queue closes and is empty.
    pub(super) fn run(mut self, mut receiver: mpsc::Receiver<Op>) {
        while let Some(first) = receiver.blocking_recv() {
            let hold = Arc::clone(&self.hold);
            let _held = hold.read().unwrap_or_else(|poisoned| poisoned.into_inner());
            let mut batch = vec![first];
            while batch.len() < BATCH {
                match receiver.try_recv() {
                    Ok(op) => batch.push(op),
                    Err(_) => break,
                }
            }
            self.write(batch);
            let now = unix_ms();
            if now.saturating_sub(self.pruned_at) >= PRUNE_EVERY.as_millis() as u64 {
                self.pruned_at = now;
                if let Err(error) = prune(&self.connection, self.retention) {
                    tracing::warn!(path = %self.path.display(), %error, "history: pruning failed");
                }
            }
        }
    }

    /// Writes one batch in one transaction, then answers its flushes and prunes.
    fn write(&mut self, batch: Vec<Op>) {
        let records: u64 = batch.iter().map(Op::records).sum();
        let mut flushes = Vec::new();
        let mut prunes = Vec::new();
        let result = (|| {
            let transaction = self
                .connection
                .transaction_with_behavior(TransactionBehavior::Immediate)?;
            for op in batch {
                match op {
                    Op::Minutes(minutes) => {
                        for minute in &minutes {
                            upsert_minute(&transaction, minute)?;
                        }
                    }
                    Op::IncidentStarted { model, at_unix_ms } => {
                        transaction
                            .prepare_cached(
                                "INSERT INTO incidents (model, started_unix_ms) VALUES (?1, ?2)",
                            )?
                            .execute(params![model, to_i64(at_unix_ms)])?;
                    }
                    Op::IncidentEnded { model, at_unix_ms } => {
                        transaction
                            .prepare_cached(
                                "UPDATE incidents SET ended_unix_ms = ?2 WHERE id = (
                                    SELECT max(id) FROM incidents
                                    WHERE model = ?1 AND ended_unix_ms IS NULL)",
                            )?
                            .execute(params![model, to_i64(at_unix_ms)])?;
                    }
                    Op::IncidentNoted { model, rule } => {
                        // The first rule that fired names it; every notification counts.
                        transaction
                            .prepare_cached(
                                "UPDATE incidents SET rule = COALESCE(rule, ?2),
                                    notifications = COALESCE(notifications, 0) + 1
                                 WHERE id = (
                                    SELECT max(id) FROM incidents
                                    WHERE model = ?1 AND ended_unix_ms IS NULL)",
                            )?
                            .execute(params![model, rule])?;
                    }
                    Op::Audit { at_unix_ms, entry } => {
                        let json = serde_json::to_string(&entry)
                            .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
                        transaction
                            .prepare_cached(
                                "INSERT INTO audit (at_unix_ms, actor, action, entry)
                                 VALUES (?1, ?2, ?3, ?4)",
                            )?
                            .execute(params![
                                to_i64(at_unix_ms),
                                entry.actor,
                                entry.action,
                                json
                            ])?;
                    }
                    Op::Flush(done) => flushes.push(done),
                    Op::Prune(done) => prunes.push(done),
                }
            }
            transaction.commit()
        })();
        if let Err(error) = &result {
            // Rolled back whole: its records are lost, and counted as such.
            self.dropped.fetch_add(records, Ordering::Relaxed);
            tracing::warn!(path = %self.path.display(), %error, records, "history: a batch could not be written");
        }
        for done in flushes {
            let _ = done.send(match &result {
                Ok(()) => Ok(()),
                Err(error) => Err(copy_error(error)),
            });
        }
        for done in prunes {
            let _ = done.send(prune(&self.connection, self.retention));
        }
    }
}

/// A copy of an error good enough for a second listener (rusqlite's is not `Clone`).
fn copy_error(error: &rusqlite::Error) -> rusqlite::Error {
    match error {
        rusqlite::Error::SqliteFailure(code, message) => {
            rusqlite::Error::SqliteFailure(*code, message.clone())
        }
        other => rusqlite::Error::ToSqlConversionFailure(other.to_string().into()),
    }
}

/// Adds `minute` to the row of its minute and model.
fn upsert_minute(connection: &Connection, minute: &MinuteRollup) -> rusqlite::Result<()> {
    let key = params![to_i64(minute.minute_unix_ms), minute.model];
    let mut merged = connection
        .prepare_cached(
            "SELECT minute_unix_ms, model, requests, successes, failures, client_errors,
                    rejected, latency, failovers_from, failovers_to
             FROM minutes WHERE minute_unix_ms = ?1 AND model = ?2",
        )?
        .query_row(key, minute_row)
        .optional()?
        .unwrap_or_else(|| MinuteRollup::new(minute.minute_unix_ms, minute.model.clone()));
    merged.merge(minute);
    let failures = serde_json::to_string(&merged.failures)
        .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
    connection
        .prepare_cached(
            "INSERT OR REPLACE INTO minutes (minute_unix_ms, model, requests, successes,
                failures, client_errors, rejected, latency, failovers_from, failovers_to)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        )?
        .execute(params![
            to_i64(merged.minute_unix_ms),
            merged.model,
            to_i64(merged.requests),
            to_i64(merged.successes),
            failures,
            to_i64(merged.client_errors),
            to_i64(merged.rejected),
            merged.latency.to_bytes(),
            to_i64(merged.failovers_from),
            to_i64(merged.failovers_to),
        ])?;
    Ok(())
}

/// A row of `minutes` (every column, in table order).
fn minute_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<MinuteRollup> {
    let failures: String = row.get(4)?;
    let failures: BTreeMap<String, u64> = serde_json::from_str(&failures).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(4, rusqlite::types::Type::Text, Box::new(e))
    })?;
    let latency: Vec<u8> = row.get(7)?;
    let latency = LatencySketch::from_bytes(&latency).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(
            7,
            rusqlite::types::Type::Blob,
            "a malformed latency sketch".into(),
        )
    })?;
    let mut minute = MinuteRollup {
        minute_unix_ms: to_u64(row.get(0)?),
        model: row.get(1)?,
        requests: to_u64(row.get(2)?),
        successes: to_u64(row.get(3)?),
        failures,
        client_errors: to_u64(row.get(5)?),
        rejected: to_u64(row.get(6)?),
        p50_ms: None,
        p95_ms: None,
        p99_ms: None,
        failovers_from: to_u64(row.get(8)?),
        failovers_to: to_u64(row.get(9)?),
        latency,
    };
    minute.update_percentiles();
    Ok(minute)
}

pub(super) fn read_minutes(
    connection: &Connection,
    from: u64,
    to: u64,
    model: Option<&str>,
) -> rusqlite::Result<Vec<MinuteRollup>> {
    connection
        .prepare(
            "SELECT minute_unix_ms, model, requests, successes, failures, client_errors,
                    rejected, latency, failovers_from, failovers_to
             FROM minutes
             WHERE minute_unix_ms >= ?1 AND minute_unix_ms < ?2 AND (?3 IS NULL OR model = ?3)
             ORDER BY minute_unix_ms, model",
        )?
        .query_map(params![to_i64(from), to_i64(to), model], minute_row)?
        .collect()
}

pub(super) fn read_incidents(
    connection: &Connection,
    from: u64,
    to: u64,
) -> rusqlite::Result<Vec<IncidentRecord>> {
    connection
        .prepare(
            "SELECT model, started_unix_ms, ended_unix_ms, rule, notifications FROM incidents
             WHERE started_unix_ms < ?2 AND (ended_unix_ms IS NULL OR ended_unix_ms >= ?1)
             ORDER BY started_unix_ms, id",
        )?
        .query_map(params![to_i64(from), to_i64(to)], |row| {
            Ok(IncidentRecord {
                model: row.get(0)?,
                started_unix_ms: to_u64(row.get(1)?),
                ended_unix_ms: row.get::<_, Option<i64>>(2)?.map(to_u64),
                rule: row.get(3)?,
                notifications: row.get::<_, Option<i64>>(4)?.map(to_u64),
            })
        })?
        .collect()
}

pub(super) fn read_audit(
    connection: &Connection,
    from: u64,
    to: u64,
) -> rusqlite::Result<Vec<AuditRecord>> {
    connection
        .prepare(
            "SELECT at_unix_ms, entry FROM audit WHERE at_unix_ms >= ?1 AND at_unix_ms < ?2
             ORDER BY at_unix_ms, id",
        )?
        .query_map(params![to_i64(from), to_i64(to)], |row| {
            let entry: String = row.get(1)?;
            let entry: AuditEntry = serde_json::from_str(&entry).map_err(|e| {
                rusqlite::Error::FromSqlConversionFailure(
                    1,
                    rusqlite::types::Type::Text,
                    Box::new(e),
                )
            })?;
            Ok(AuditRecord {
                at_unix_ms: to_u64(row.get(0)?),
                entry,
            })
        })?
        .collect()
}
