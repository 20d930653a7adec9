//! [`History`]: what happened to every model, minute by minute, kept in a SQLite file
//! across restarts — per-minute rollups of attempts, incidents and the audit trail.
//!
//! Nothing here sits on a request's path. Records go through a bounded queue to a writer
//! thread of the history's own (rusqlite is blocking), which writes them in batches, one
//! transaction each, and prunes what is older than the retention about once an hour; when
//! the queue is full a record is dropped and counted ([`History::dropped`]). Reads run on
//! tokio's blocking pool, each on a read-only connection of its own (the file is in WAL
//! mode: readers never wait for the writer).
//!
//! A [`Recorder`] ([`History::record`]) rolls a fleet's figures up per model and per
//! wall-clock minute, on a task of its own, and hands what it holds to the writer every
//! [`WRITE_EVERY`] (5 s), the minute under way included — so a crash loses at most the
//! last 5 s — and at [`Recorder::flush`] / [`Recorder::stop`]. It takes two feeds:
//!
//! * attempts ([`Recorder::attempt`]: one `try_send`, never waits): attempts, successes,
//!   failures by class, client errors, rejections and the latencies of answers. The
//!   monitor's events do not carry these (successes only bump counters, and a failure that
//!   is not retried raises no event), so the model stack's observer must call it;
//! * the [`Monitor`]'s events ([`Monitor::subscribe`]): failovers away from and to each
//!   model, and incidents (a breaker opening or forced open, until it closes).
//!
//! Writing a minute adds to what the file already holds for that minute and model, so a
//! minute flushed early and completed later, or recorded by two runs, sums up.
//!
//! The file is never recreated or emptied behind an operator's back: one that is not a
//! database, fails `PRAGMA quick_check`, was written by a newer version, or is locked by
//! another process is a [`HistoryError`] naming it.
//!
//! ```
//! use std::time::Duration;
//! use hive_core::{ModelId, Outcome};
//! use hive_gateway::history::History;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let dir = std::env::temp_dir().join(format!("hive-history-doc-{}", std::process::id()));
//! # std::fs::create_dir_all(&dir)?;
//! let history = History::open(dir.join("hive.db"), Duration::from_secs(30 * 86_400))?;
//! let recorder = history.recorder(); // or history.record(&monitor) to follow its events
//! let minute = hive_gateway::history::unix_ms() / 60_000 * 60_000; // this minute's start
//! let gpt = ModelId::new("gpt-4o");
//! recorder.attempt_at(minute + 5, gpt, &Outcome::Success, Duration::from_millis(420));
//! recorder.flush().await;
//! let rows = history.minutes(minute, minute + 60_000, Some("gpt-4o")).await?;
//! assert_eq!((rows[0].requests, rows[0].successes), (1, 1));
//! # drop((history, recorder));
//! # std::fs::remove_dir_all(&dir)?;
//! # Ok(())
//! # }
//! ```

mod recorder;
mod store;

use std::{
    fmt,
    path::{Path, PathBuf},
    sync::{
        Arc, RwLock, RwLockWriteGuard,
        atomic::{AtomicU64, Ordering},
    },
    thread::JoinHandle,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use hive_config::AuditEntry;
use hive_monitor::Monitor;
use serde::Serialize;
use tokio::sync::{mpsc, oneshot};

pub use hive_monitor::rollup::{IncidentRecord, LatencySketch, MinuteRollup};
pub use recorder::{Recorder, WRITE_EVERY};
use store::Op;

/// The schema version this build writes (SQLite's `PRAGMA user_version`).
pub const SCHEMA_VERSION: u32 = store::SCHEMA_VERSION;

/// Why the history file cannot be opened, read or written. Every variant names the file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HistoryError {
    /// The file is not a SQLite database, or fails `PRAGMA quick_check`. It is left as it
    /// is: move it away (or restore a backup) to start a new history.
    #[error("the history file {} is corrupt: {reason} (left untouched; move it away to start a new history)", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What SQLite said.
        reason: String,
    },
    /// Another process or connection holds a write lock on the file (another gateway with
    /// the same `history.path`?).
    #[error("the history file {} is locked by another process or connection (another gateway using it?)", path.display())]
    Locked {
        /// The file.
        path: PathBuf,
    },
    /// The file was written by a newer version of hive, with a schema this build does not
    /// know.
    #[error("the history file {} has schema version {found}, newer than this build's {supported}: upgrade hive or use another file", path.display())]
    TooNew {
        /// The file.
        path: PathBuf,
        /// The file's schema version.
        found: u32,
        /// The newest version this build knows ([`SCHEMA_VERSION`]).
        supported: u32,
    },
    /// Any other SQLite failure (the file cannot be created, the disk is full …).
    #[error("history file {}: {source}", path.display())]
    Sqlite {
        /// The file.
        path: PathBuf,
        /// SQLite's error.
        #[source]
        source: rusqlite::Error,
    },
    /// The writer thread could not be started.
    #[error("history file {}: cannot start its writer: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The writer thread is gone (it panicked, or the history is shutting down).
    #[error("the writer of the history file {} has stopped", path.display())]
    Closed {
        /// The file.
        path: PathBuf,
    },
}

/// An audit entry as stored: the entry and its time in milliseconds.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AuditRecord {
    /// The entry's time (read from [`AuditEntry::time`]; when that cannot be read, when it
    /// was recorded), in milliseconds since the Unix epoch.
    pub at_unix_ms: u64,
    /// The entry.
    #[serde(flatten)]
    pub entry: AuditEntry,
}

/// Settings of a [`History`] beyond its file and retention.
#[derive(Clone, Debug)]
pub struct HistoryOptions {
    /// Rows (minutes, incidents, audit entries) older than this are deleted, at open and
    /// about once an hour after.
    pub retention: Duration,
    /// Records queued for the writer; beyond, records are dropped and counted. Default 1024.
    pub queue: usize,
    /// How long opening waits for another connection's write lock before answering
    /// [`HistoryError::Locked`]. Default 250 ms.
    pub lock_wait: Duration,
}

impl Default for HistoryOptions {
    fn default() -> Self {
        Self {
            retention: Duration::from_secs(30 * 86_400),
            queue: 1024,
            lock_wait: Duration::from_millis(250),
        }
    }
}

struct Shared {
    path: PathBuf,
    retention: Duration,
    sender: Option<mpsc::Sender<Op>>,
    dropped: Arc<AtomicU64>,
    /// Taken (read) by the writer around every batch; [`History::hold_writes`] takes it
    /// (write) to hold the writer.
    hold: Arc<RwLock<()>>,
    writer: Option<JoinHandle<()>>,
}

impl Drop for Shared {
    fn drop(&mut self) {
        // Closing the queue ends the writer once it has written what is queued.
        self.sender = None;
        if let Some(writer) = self.writer.take()
            && writer.join().is_err()
        {
            tracing::error!(path = %self.path.display(), "the history writer panicked");
        }
    }
}

/// The history store: a SQLite file, a writer thread fed by a bounded queue, and reads on
/// tokio's blocking pool. Cheap to clone; the writer ends (after writing what is queued)
/// with the last clone — a [`Recorder`] holds one.
#[derive(Clone)]
pub struct History {
    shared: Arc<Shared>,
}

impl fmt::Debug for History {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("History")
            .field("path", &self.shared.path)
            .field("retention", &self.shared.retention)
            .field("dropped", &self.dropped())
            .finish_non_exhaustive()
    }
}

/// Holds the history's writer while it lives (from [`History::hold_writes`]): records
/// queue up (and are dropped once the queue is full) and are written when it is dropped.
#[must_use = "the writer is held only while the hold lives"]
pub struct WriteHold<'a> {
    _guard: RwLockWriteGuard<'a, ()>,
}

impl fmt::Debug for WriteHold<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WriteHold")
    }
}

/// Milliseconds since the Unix epoch, now.
pub fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl History {
    /// Opens the history file at `path`, creating it if it does not exist, and migrates its
    /// schema to [`SCHEMA_VERSION`]; deletes rows older than `retention`; starts the writer.
    ///
    /// Errors, each naming the file: [`Corrupt`](HistoryError::Corrupt) (not a database,
    /// or failing `PRAGMA quick_check`; the file is left untouched),
    /// [`Locked`](HistoryError::Locked) (another connection holds a write lock for longer
    /// than 250 ms), [`TooNew`](HistoryError::TooNew), [`Sqlite`](HistoryError::Sqlite).
    pub fn open(path: impl AsRef<Path>, retention: Duration) -> Result<Self, HistoryError> {
        Self::open_with(
            path,
            HistoryOptions {
                retention,
                ..HistoryOptions::default()
            },
        )
    }

    /// [`open`](Self::open) with every setting.
    pub fn open_with(
        path: impl AsRef<Path>,
        options: HistoryOptions,
    ) -> Result<Self, HistoryError> {
        let path = path.as_ref().to_path_buf();
        let connection = store::open(&path, &options)?;
        let (sender, receiver) = mpsc::channel(options.queue.max(1));
        let hold = Arc::new(RwLock::new(()));
        let dropped = Arc::new(AtomicU64::new(0));
        let writer = store::Writer::new(
            connection,
            path.clone(),
            options.retention,
            &hold,
            Arc::clone(&dropped),
        );
        let writer = std::thread::Builder::new()
            .name("hive-history".to_owned())
            .spawn(move || writer.run(receiver))
            .map_err(|source| HistoryError::Io {
                path: path.clone(),
                source,
            })?;
        Ok(Self {
            shared: Arc::new(Shared {
                path,
                retention: options.retention,
                sender: Some(sender),
                dropped,
                hold,
                writer: Some(writer),
            }),
        })
    }

    /// Opens an existing file for reading only: no lock, no migration, no pruning, no
    /// writer (what is queued is dropped and counted; [`flush`](Self::flush) is
    /// [`HistoryError::Closed`]). For a report over the file of a gateway that may be
    /// running. A file that is not a history, or is from a newer version, is an error.
    pub fn open_read_only(path: impl AsRef<Path>) -> Result<Self, HistoryError> {
        let path = path.as_ref().to_path_buf();
        store::check_read_only(&path)?;
        Ok(Self {
            shared: Arc::new(Shared {
                path,
                retention: Duration::MAX,
                sender: None,
                dropped: Arc::new(AtomicU64::new(0)),
                hold: Arc::new(RwLock::new(())),
                writer: None,
            }),
        })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.shared.path
    }

    /// How long rows are kept.
    pub fn retention(&self) -> Duration {
        self.shared.retention
    }

    /// Records lost: dropped because the writer's queue was full, or in a batch that could
    /// not be written (a minute of one model, an incident's start or end, an audit entry: one
    /// each).
    pub fn dropped(&self) -> u64 {
        self.shared.dropped.load(Ordering::Relaxed)
    }

    /// Records queued for the writer and not yet taken by it.
    pub fn queued(&self) -> usize {
        self.shared
            .sender
            .as_ref()
            .map_or(0, |s| s.max_capacity() - s.capacity())
    }

    /// Queues `op` without waiting; when the queue is full, drops it and counts `records`.
    fn offer(&self, op: Op, records: u64) {
        let sent = self
            .shared
            .sender
            .as_ref()
            .is_some_and(|sender| sender.try_send(op).is_ok());
        if !sent {
            self.shared.dropped.fetch_add(records, Ordering::Relaxed);
        }
    }

    /// Queues `op`, waiting for room (flushes and maintenance, never records).
    async fn send(&self, op: Op) -> Result<(), HistoryError> {
        let closed = || HistoryError::Closed {
            path: self.shared.path.clone(),
        };
        let sender = self.shared.sender.as_ref().ok_or_else(closed)?;
        sender.send(op).await.map_err(|_| closed())
    }

    /// Starts a [`Recorder`] following `monitor`'s events (failovers and incidents); feed
    /// it the attempts with [`Recorder::attempt`]. It runs on the current tokio runtime.
    pub fn record(&self, monitor: &Monitor) -> Recorder {
        Recorder::start(self.clone(), Some(monitor.subscribe()))
    }

    /// Starts a [`Recorder`] that follows no monitor: fed only by hand
    /// ([`Recorder::attempt`], [`Recorder::event`]).
    pub fn recorder(&self) -> Recorder {
        Recorder::start(self.clone(), None)
    }

    /// Queues these minutes for writing (added to what the file holds for the same minute
    /// and model). Never waits: when the queue is full they are dropped and counted.
    pub fn write_minutes(&self, minutes: Vec<MinuteRollup>) {
        if minutes.is_empty() {
            return;
        }
        let records = minutes.len() as u64;
        self.offer(Op::Minutes(minutes), records);
    }

    /// Queues an incident's start. Never waits.
    pub(crate) fn incident_started(&self, model: String, at_unix_ms: u64) {
        self.offer(Op::IncidentStarted { model, at_unix_ms }, 1);
    }

    /// Queues an incident's end (it ends the model's latest open incident). Never waits.
    pub(crate) fn incident_ended(&self, model: String, at_unix_ms: u64) {
        self.offer(Op::IncidentEnded { model, at_unix_ms }, 1);
    }

    /// Notes, on each model's open incident, a notification an alert channel accepted about
    /// it: the rule that fired (the first one names the incident) and one more notification
    /// sent. Never waits.
    pub fn note_notification(&self, notification: &hive_monitor::alert::Notification) {
        for alert in &notification.alerts {
            if let Some(model) = alert.subject.model() {
                self.offer(
                    Op::IncidentNoted {
                        model: model.as_str().to_owned(),
                        rule: alert.rule.clone(),
                    },
                    1,
                );
            }
        }
    }

    /// Queues an audit entry. Never waits: when the queue is full it is dropped and counted
    /// (the JSON-lines audit log stays the record of reference).
    pub fn record_audit(&self, entry: &AuditEntry) {
        let at_unix_ms = hive_core::civil::parse_rfc3339_ms(&entry.time).unwrap_or_else(unix_ms);
        self.offer(
            Op::Audit {
                at_unix_ms,
                entry: entry.clone(),
            },
            1,
        );
    }

    /// Waits until everything queued before it is written (not what a [`Recorder`] still
    /// holds: see [`Recorder::flush`]). The error of the last write, if it failed.
    pub async fn flush(&self) -> Result<(), HistoryError> {
        let (done, written) = oneshot::channel();
        self.send(Op::Flush(done)).await?;
        let result = written.await.map_err(|_| HistoryError::Closed {
            path: self.shared.path.clone(),
        })?;
        result.map_err(|source| HistoryError::Sqlite {
            path: self.shared.path.clone(),
            source,
        })
    }

    /// Deletes the rows older than the retention now (after what is queued is written);
    /// answers how many were deleted. The writer also does this about once an hour.
    pub async fn prune(&self) -> Result<u64, HistoryError> {
        let (done, pruned) = oneshot::channel();
        self.send(Op::Prune(done)).await?;
        let result = pruned.await.map_err(|_| HistoryError::Closed {
            path: self.shared.path.clone(),
        })?;
        result.map_err(|source| HistoryError::Sqlite {
            path: self.shared.path.clone(),
            source,
        })
    }

    /// Holds the writer until the hold is dropped (a batch being written finishes first):
    /// for a consistent copy of the file, and for tests of a full queue.
    pub fn hold_writes(&self) -> WriteHold<'_> {
        WriteHold {
            _guard: self
                .shared
                .hold
                .write()
                .unwrap_or_else(|poisoned| poisoned.into_inner()),
        }
    }

    /// Runs `read` on a read-only connection of its own, on tokio's blocking pool.
    async fn read<T: Send + 'static>(
        &self,
        read: impl FnOnce(&rusqlite::Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T, HistoryError> {
        let path = self.shared.path.clone();
        let task_path = path.clone();
        tokio::task::spawn_blocking(move || {
            let connection = store::open_reader(&task_path)?;
            read(&connection).map_err(|source| HistoryError::Sqlite {
                path: task_path,
                source,
            })
        })
        .await
        .map_err(|_| HistoryError::Closed { path })?
    }

    /// The minutes that start in `from_unix_ms..to_unix_ms`, of `model` or of every model,
    /// by minute then model. Written minutes only: a [`Recorder`] writes a minute when it
    /// ends.
    pub async fn minutes(
        &self,
        from_unix_ms: u64,
        to_unix_ms: u64,
        model: Option<&str>,
    ) -> Result<Vec<MinuteRollup>, HistoryError> {
        let model = model.map(str::to_owned);
        self.read(move |c| store::read_minutes(c, from_unix_ms, to_unix_ms, model.as_deref()))
            .await
    }

    /// The incidents that overlap `from_unix_ms..to_unix_ms` (started before its end, and
    /// open or ended at or after its start), by start.
    pub async fn incidents(
        &self,
        from_unix_ms: u64,
        to_unix_ms: u64,
    ) -> Result<Vec<IncidentRecord>, HistoryError> {
        self.read(move |c| store::read_incidents(c, from_unix_ms, to_unix_ms))
            .await
    }

    /// The audit entries of `from_unix_ms..to_unix_ms`, oldest first.
    pub async fn audit(
        &self,
        from_unix_ms: u64,
        to_unix_ms: u64,
    ) -> Result<Vec<AuditRecord>, HistoryError> {
        self.read(move |c| store::read_audit(c, from_unix_ms, to_unix_ms))
            .await
    }
}
