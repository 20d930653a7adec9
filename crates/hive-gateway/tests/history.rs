//! The history store: exact rollups per minute, a restart, a corrupt, locked or newer file,
//! retention, and a full queue that drops and counts without waiting.

#![allow(clippy::unwrap_used, clippy::print_stdout)]

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    time::Duration,
};

use hive_config::AuditEntry;
use hive_core::{
    CircuitState, ClientErrorClass, FailureClass, ModelId, Outcome, RejectReason, ResilienceEvent,
};
use hive_gateway::history::{
    History, HistoryError, HistoryOptions, MinuteRollup, SCHEMA_VERSION, unix_ms,
};
use hive_monitor::{Monitor, MonitorConfig, TimedEvent};

const DAY: Duration = Duration::from_secs(86_400);
const MINUTE: u64 = 60_000;

/// A fresh directory for one test, removed when dropped.
struct Dir(PathBuf);

impl Dir {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("hive-history-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    fn file(&self) -> PathBuf {
        self.0.join("hive.db")
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The start of the minute `back` minutes before this one.
fn minute_ago(back: u64) -> u64 {
    let now = unix_ms();
    now - now % MINUTE - back * MINUTE
}

fn failover(at_unix_ms: u64, from: &str, to: &str) -> TimedEvent {
    TimedEvent {
        at_unix_ms,
        event: ResilienceEvent::Failover {
            from: ModelId::new(from),
            to: ModelId::new(to),
            reason: Outcome::failure(FailureClass::RateLimited),
            latency: Duration::from_millis(30),
        },
    }
}

fn transition(
    at_unix_ms: u64,
    model: &str,
    from: CircuitState,
    to: CircuitState,
    generation: u64,
) -> TimedEvent {
    TimedEvent {
        at_unix_ms,
        event: ResilienceEvent::CircuitTransition {
            model: ModelId::new(model),
            from,
            to,
            generation,
            failure_rate: None,
            slow_call_rate: None,
        },
    }
}

/// The figures of a row that the test compares (percentiles aside).
fn counts(row: &MinuteRollup) -> (u64, u64, u64, u64, u64, u64, u64) {
    (
        row.requests,
        row.successes,
        row.failed(),
        row.client_errors,
        row.rejected,
        row.failovers_from,
        row.failovers_to,
    )
}

#[tokio::test]
async fn attempts_and_events_roll_up_exactly_per_model_and_minute() {
    let dir = Dir::new("rollups");
    let history = History::open(dir.file(), 30 * DAY).unwrap();
    let recorder = history.recorder();
    let (gpt, claude) = (ModelId::new("hist-gpt"), ModelId::new("hist-claude"));
    let first = minute_ago(5);
    let second = first + MINUTE;
    let ms = Duration::from_millis;

    // Minute one: gpt answers 10 times (10..=100 ms), fails twice on rate limits and once
    // on a timeout, refuses one bad request (answered in 5 ms), is rejected once; one
    // request fails over from gpt to claude, which answers it in 200 ms.
    for i in 1..=10 {
        recorder.attempt_at(first + i * 1000, gpt, &Outcome::Success, ms(i * 10));
    }
    recorder.attempt_at(
        first + 20_000,
        gpt,
        &Outcome::failure(FailureClass::RateLimited),
        ms(3),
    );
    recorder.attempt_at(
        first + 21_000,
        gpt,
        &Outcome::failure(FailureClass::RateLimited),
        ms(3),
    );
    recorder.attempt_at(
        first + 22_000,
        gpt,
        &Outcome::failure(FailureClass::Timeout),
        ms(9000),
    );
    recorder.attempt_at(
        first + 23_000,
        gpt,
        &Outcome::ClientError(ClientErrorClass::BadRequest),
        ms(5),
    );
    recorder.attempt_at(
        first + 24_000,
        gpt,
        &Outcome::Rejected(RejectReason::ForcedOpen),
        Duration::ZERO,
    );
    recorder.attempt_at(first + 25_000, gpt, &Outcome::Ignored, ms(50));
    recorder.event(failover(first + 22_001, "hist-gpt", "hist-claude"));
    recorder.attempt_at(first + 22_300, claude, &Outcome::Success, ms(200));
    // The last millisecond of minute one, and the first of minute two.
    recorder.attempt_at(second - 1, claude, &Outcome::Success, ms(200));
    recorder.attempt_at(
        second,
        claude,
        &Outcome::failure(FailureClass::Unavailable),
        ms(1),
    );
    recorder.event(failover(second + 1, "hist-claude", "hist-gpt"));
    recorder.flush().await;

    let rows = history.minutes(first, second + MINUTE, None).await.unwrap();
    let keys: Vec<(u64, &str)> = rows
        .iter()
        .map(|r| (r.minute_unix_ms, r.model.as_str()))
        .collect();
    assert_eq!(
        keys,
        [
            (first, "hist-claude"),
            (first, "hist-gpt"),
            (second, "hist-claude"),
            (second, "hist-gpt"),
        ]
    );
    let gpt_first = &rows[1];
    assert_eq!(counts(gpt_first), (15, 10, 3, 1, 1, 1, 0));
    assert_eq!(
        gpt_first.failures,
        BTreeMap::from([
            (FailureClass::RateLimited.as_str().to_owned(), 2),
            (FailureClass::Timeout.as_str().to_owned(), 1),
        ])
    );
    assert_eq!(
        gpt_first.latency.count(),
        11,
        "ten successes and the client error"
    );
    // 11 answers: 5, 10, 20, … 100 ms. The median is the 6th (50 ms), p95 and p99 the
    // 11th (100 ms), each within its bucket's 6.25%.
    let near = |got: Option<f64>, exact: f64| {
        let got = got.unwrap();
        assert!(
            (got - exact).abs() / exact <= 0.0625,
            "{got} ms, not near {exact} ms"
        );
    };
    near(gpt_first.p50_ms, 50.0);
    near(gpt_first.p95_ms, 100.0);
    near(gpt_first.p99_ms, 100.0);
    assert_eq!(counts(&rows[0]), (2, 2, 0, 0, 0, 0, 1));
    near(rows[0].p50_ms, 200.0);
    assert_eq!(counts(&rows[2]), (1, 0, 1, 0, 0, 1, 0));
    assert_eq!(rows[2].p50_ms, None, "no answer, no latency");
    assert_eq!(counts(&rows[3]), (0, 0, 0, 0, 0, 0, 1));

    // One model only.
    let gpt_rows = history
        .minutes(first, second + MINUTE, Some("hist-gpt"))
        .await
        .unwrap();
    assert_eq!(gpt_rows.len(), 2);
    assert!(gpt_rows.iter().all(|r| r.model == "hist-gpt"));

    // Writes add up: more of minute one, recorded later, joins its row.
    recorder.attempt_at(first + 59_000, gpt, &Outcome::Success, ms(10));
    recorder.flush().await;
    let gpt_first = &history
        .minutes(first, second, Some("hist-gpt"))
        .await
        .unwrap()[0];
    assert_eq!(counts(gpt_first), (16, 11, 3, 1, 1, 1, 0));
    assert_eq!(recorder.dropped(), 0);
    assert_eq!(history.dropped(), 0);
}

#[tokio::test]
async fn a_monitors_failovers_and_incidents_are_recorded() {
    let dir = Dir::new("monitor");
    let history = History::open(dir.file(), 30 * DAY).unwrap();
    let monitor = Monitor::start(MonitorConfig::default());
    let recorder = history.record(&monitor);
    let sink = monitor.event_sink();
    let (a, b) = (ModelId::new("hist-mon-a"), ModelId::new("hist-mon-b"));
    let started = unix_ms();
    for _ in 0..3 {
        sink.emit(|| ResilienceEvent::Failover {
            from: a,
            to: b,
            reason: Outcome::failure(FailureClass::Timeout),
            latency: Duration::from_millis(40),
        });
    }
    let transitions = [
        (CircuitState::Closed, CircuitState::Open, 1),
        (CircuitState::Open, CircuitState::HalfOpen, 2),
        (CircuitState::HalfOpen, CircuitState::Open, 3),
        // A stale transition (an older generation) changes nothing.
        (CircuitState::Open, CircuitState::Closed, 2),
        (CircuitState::Open, CircuitState::HalfOpen, 4),
        (CircuitState::HalfOpen, CircuitState::Closed, 5),
        (CircuitState::Closed, CircuitState::ForcedOpen, 6),
    ];
    for (from, to, generation) in transitions {
        sink.emit(|| ResilienceEvent::CircuitTransition {
            model: a,
            from,
            to,
            generation,
            failure_rate: None,
            slow_call_rate: None,
        });
    }
    // The monitor's task passes every event on; once its snapshot shows the last, the
    // recorder has them all queued, and takes them before a flush.
    for _ in 0..10_000 {
        let snapshot = monitor.snapshot();
        if snapshot.failovers.len() == 3
            && snapshot
                .model("hist-mon-a")
                .is_some_and(|m| m.breaker == CircuitState::ForcedOpen)
        {
            break;
        }
        tokio::task::yield_now().await;
    }
    recorder.flush().await;
    let ended = unix_ms();

    let rows = history
        .minutes(started - started % MINUTE, ended + MINUTE, None)
        .await
        .unwrap();
    let from: u64 = rows
        .iter()
        .filter(|r| r.model == "hist-mon-a")
        .map(|r| r.failovers_from)
        .sum();
    let to: u64 = rows
        .iter()
        .filter(|r| r.model == "hist-mon-b")
        .map(|r| r.failovers_to)
        .sum();
    assert_eq!((from, to), (3, 3));
    assert!(
        rows.iter().all(|r| r.requests == 0),
        "events are not attempts"
    );

    let incidents = history.incidents(started, ended + 1).await.unwrap();
    assert_eq!(incidents.len(), 2, "{incidents:?}");
    assert!(incidents.iter().all(|i| i.model == "hist-mon-a"));
    let (first, second) = (&incidents[0], &incidents[1]);
    assert!(first.started_unix_ms >= started && first.ended_unix_ms.unwrap() <= ended);
    assert!(first.ended_unix_ms.unwrap() >= first.started_unix_ms);
    assert_eq!(second.ended_unix_ms, None, "forced open: still open");
    assert_eq!((second.rule.as_deref(), second.notifications), (None, None));
    assert_eq!(recorder.dropped(), 0);
    drop(monitor);
}

#[tokio::test]
async fn incidents_from_given_events_and_audit_entries_read_back_by_time() {
    let dir = Dir::new("incidents");
    let history = History::open(dir.file(), 30 * DAY).unwrap();
    let recorder = history.recorder();
    let t = minute_ago(10);
    recorder.event(transition(
        t,
        "m",
        CircuitState::Closed,
        CircuitState::Open,
        1,
    ));
    recorder.event(transition(
        t + 5_000,
        "m",
        CircuitState::Open,
        CircuitState::Closed,
        2,
    ));
    recorder.event(transition(
        t + 9 * MINUTE,
        "m",
        CircuitState::Closed,
        CircuitState::Open,
        3,
    ));
    recorder.flush().await;
    let all = history.incidents(t, t + 10 * MINUTE).await.unwrap();
    assert_eq!(
        all.iter()
            .map(|i| (i.started_unix_ms, i.ended_unix_ms))
            .collect::<Vec<_>>(),
        [(t, Some(t + 5_000)), (t + 9 * MINUTE, None)]
    );
    // Overlap: the first ended before the window; the open one overlaps every later one.
    let later = history.incidents(t + 6_000, u64::MAX / 2).await.unwrap();
    assert_eq!(later.len(), 1);
    assert_eq!(later[0].started_unix_ms, t + 9 * MINUTE);

    let mut entry = AuditEntry::new(
        "admin:ops",
        "breaker_force_open",
        serde_json::json!({"model": "m"}),
    );
    entry.time = "2030-01-02T03:04:05.678Z".to_owned();
    history.record_audit(&entry);
    let now_entry = AuditEntry::new("sighup", "config_change", serde_json::json!({}));
    history.record_audit(&now_entry);
    history.flush().await.unwrap();
    let at = 1_893_553_445_678; // 2030-01-02T03:04:05.678Z
    let audit = history.audit(at, at + 1).await.unwrap();
    assert_eq!(audit.len(), 1);
    assert_eq!((audit[0].at_unix_ms, &audit[0].entry), (at, &entry));
    let recent = history.audit(t, at).await.unwrap();
    assert_eq!(recent.len(), 1);
    assert_eq!(recent[0].entry, now_entry);
}

#[tokio::test]
async fn history_survives_a_restart() {
    let dir = Dir::new("restart");
    let first = minute_ago(3);
    let before = {
        let history = History::open(dir.file(), 30 * DAY).unwrap();
        let recorder = history.recorder();
        let gpt = ModelId::new("hist-restart");
        for i in 0..7 {
            recorder.attempt_at(
                first + i,
                gpt,
                &Outcome::Success,
                Duration::from_millis(100 + i),
            );
        }
        recorder.attempt_at(
            first + MINUTE,
            gpt,
            &Outcome::failure(FailureClass::Overloaded),
            Duration::ZERO,
        );
        recorder.event(transition(
            first,
            "hist-restart",
            CircuitState::Closed,
            CircuitState::Open,
            1,
        ));
        history.record_audit(&AuditEntry::new(
            "startup",
            "config_change",
            serde_json::json!({"a": 1}),
        ));
        recorder.stop().await;
        let rows = history.minutes(0, u64::MAX / 2, None).await.unwrap();
        let incidents = history.incidents(0, u64::MAX / 2).await.unwrap();
        let audit = history.audit(0, u64::MAX / 2).await.unwrap();
        (rows, incidents, audit)
    };
    assert_eq!(before.0.len(), 2);
    assert_eq!((before.1.len(), before.2.len()), (1, 1));

    let history = History::open(dir.file(), 30 * DAY).unwrap();
    let after = (
        history.minutes(0, u64::MAX / 2, None).await.unwrap(),
        history.incidents(0, u64::MAX / 2).await.unwrap(),
        history.audit(0, u64::MAX / 2).await.unwrap(),
    );
    assert_eq!((&after.0, &after.2), (&before.0, &before.2));
    // The incident the first run left open (as a crash would) ends with the last minute
    // it recorded.
    assert_eq!(before.1[0].ended_unix_ms, None);
    let last_minute = before.0.iter().map(|m| m.minute_unix_ms).max().unwrap();
    assert_eq!(after.1[0].started_unix_ms, before.1[0].started_unix_ms);
    assert_eq!(after.1[0].ended_unix_ms, Some(last_minute + MINUTE));
    assert_eq!(after.0[0].latency.count(), 7);
    // Recording goes on into the same rows.
    let recorder = history.recorder();
    recorder.attempt_at(
        first + 30_000,
        ModelId::new("hist-restart"),
        &Outcome::Success,
        Duration::from_millis(1),
    );
    recorder.flush().await;
    let rows = history.minutes(first, first + 1, None).await.unwrap();
    assert_eq!((rows[0].requests, rows[0].successes), (8, 8));
}

#[test]
fn a_corrupt_file_is_a_typed_error_and_left_untouched() {
    let dir = Dir::new("corrupt");
    let path = dir.file();
    let garbage: Vec<u8> = (0..8192u32).map(|i| (i * 31 % 251) as u8).collect();
    std::fs::write(&path, &garbage).unwrap();
    let error = History::open(&path, 30 * DAY).unwrap_err();
    assert!(
        matches!(&error, HistoryError::Corrupt { path: p, .. } if p == &path),
        "{error:?}"
    );
    assert!(
        error.to_string().contains(&path.display().to_string()),
        "{error}"
    );
    assert_eq!(
        std::fs::read(&path).unwrap(),
        garbage,
        "the file is left as it was"
    );
    assert_no_side_files(&path);
}

/// Neither a WAL nor a shared-memory file was made next to `path`.
fn assert_no_side_files(path: &Path) {
    for suffix in ["-wal", "-shm", "-journal"] {
        let side = PathBuf::from(format!("{}{suffix}", path.display()));
        assert!(!side.exists(), "{} exists", side.display());
    }
}

#[test]
fn a_damaged_database_fails_its_check() {
    let dir = Dir::new("damaged");
    let path = dir.file();
    {
        let connection = rusqlite::Connection::open(&path).unwrap();
        connection
            .execute_batch(
                "CREATE TABLE t (x INTEGER PRIMARY KEY, y TEXT);
                 CREATE INDEX t_y ON t (y);",
            )
            .unwrap();
        for i in 0..2000 {
            connection
                .execute(
                    "INSERT INTO t (y) VALUES (?1)",
                    [format!("row {i} {}", "x".repeat(50))],
                )
                .unwrap();
        }
    }
    // Overwrite a page in the middle of the file: a valid header, broken content.
    let mut bytes = std::fs::read(&path).unwrap();
    let page = 4096;
    let middle = bytes.len() / page / 2 * page;
    for b in &mut bytes[middle..middle + page] {
        *b = 0xA5;
    }
    std::fs::write(&path, &bytes).unwrap();
    let error = History::open(&path, 30 * DAY).unwrap_err();
    assert!(
        matches!(&error, HistoryError::Corrupt { path: p, .. } if p == &path),
        "{error:?}"
    );
    assert_eq!(
        std::fs::read(&path).unwrap(),
        bytes,
        "the file is left as it was"
    );
}

#[test]
fn a_locked_file_is_a_typed_error() {
    let dir = Dir::new("locked");
    let path = dir.file();
    drop(History::open(&path, 30 * DAY).unwrap());
    let other = rusqlite::Connection::open(&path).unwrap();
    other.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let error = History::open(&path, 30 * DAY).unwrap_err();
    assert!(
        matches!(&error, HistoryError::Locked { path: p } if p == &path),
        "{error:?}"
    );
    assert!(error.to_string().contains("locked"), "{error}");
    other.execute_batch("COMMIT").unwrap();
    drop(other);
    History::open(&path, 30 * DAY).unwrap();
}

#[test]
fn a_file_locked_before_it_became_a_history_is_a_typed_error() {
    let dir = Dir::new("locked-new");
    let path = dir.file();
    let other = rusqlite::Connection::open(&path).unwrap();
    other
        .execute_batch("CREATE TABLE x (y); BEGIN EXCLUSIVE; INSERT INTO x VALUES (1);")
        .unwrap();
    let error = History::open(&path, 30 * DAY).unwrap_err();
    assert!(
        matches!(&error, HistoryError::Locked { path: p } if p == &path),
        "{error:?}"
    );
}

#[test]
fn a_file_from_a_newer_version_is_a_typed_error() {
    let dir = Dir::new("newer");
    let path = dir.file();
    drop(History::open(&path, 30 * DAY).unwrap());
    rusqlite::Connection::open(&path)
        .unwrap()
        .pragma_update(None, "user_version", SCHEMA_VERSION + 1)
        .unwrap();
    let error = History::open(&path, 30 * DAY).unwrap_err();
    match &error {
        HistoryError::TooNew {
            path: p,
            found,
            supported,
        } => {
            assert_eq!(
                (p, *found, *supported),
                (&path, SCHEMA_VERSION + 1, SCHEMA_VERSION)
            );
        }
        other => panic!("{other:?}"),
    }
    let message = error.to_string();
    assert!(
        message.contains(&format!("schema version {}", SCHEMA_VERSION + 1)),
        "{message}"
    );
    assert!(
        message.contains(&format!("this build's {SCHEMA_VERSION}")),
        "{message}"
    );
}

#[tokio::test]
async fn retention_prunes_old_rows() {
    let dir = Dir::new("retention");
    let history = History::open(dir.file(), DAY).unwrap();
    let old = minute_ago(2 * 24 * 60);
    let recent = minute_ago(2);
    history.write_minutes(vec![
        MinuteRollup::new(old, "m"),
        MinuteRollup::new(recent, "m"),
    ]);
    let recorder = history.recorder();
    recorder.event(transition(
        old,
        "m",
        CircuitState::Closed,
        CircuitState::Open,
        1,
    ));
    recorder.event(transition(
        old + 1,
        "m",
        CircuitState::Open,
        CircuitState::Closed,
        2,
    ));
    recorder.event(transition(
        old + 2,
        "m",
        CircuitState::Closed,
        CircuitState::Open,
        3,
    ));
    recorder.flush().await;
    assert_eq!(
        history.minutes(0, u64::MAX / 2, None).await.unwrap().len(),
        2
    );
    // The old minute and the ended old incident go; the open incident stays.
    assert_eq!(history.prune().await.unwrap(), 2);
    let rows = history.minutes(0, u64::MAX / 2, None).await.unwrap();
    assert_eq!(
        rows.iter().map(|r| r.minute_unix_ms).collect::<Vec<_>>(),
        [recent]
    );
    let incidents = history.incidents(0, u64::MAX / 2).await.unwrap();
    assert_eq!(incidents.len(), 1);
    assert_eq!(incidents[0].ended_unix_ms, None);
    assert_eq!(history.prune().await.unwrap(), 0);
    drop((recorder, history));

    // Opening prunes too: a shorter retention leaves nothing of two minutes ago.
    let history = History::open(dir.file(), Duration::from_secs(60)).unwrap();
    assert!(
        history
            .minutes(0, u64::MAX / 2, None)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn a_full_queue_drops_and_counts_and_never_waits() {
    let dir = Dir::new("full");
    let history = History::open_with(
        dir.file(),
        HistoryOptions {
            queue: 4,
            ..HistoryOptions::default()
        },
    )
    .unwrap();
    let base = minute_ago(30);
    let row = |i: u64| vec![MinuteRollup::new(base + i * MINUTE, "m")];
    let took = {
        let _hold = history.hold_writes();
        history.write_minutes(row(0));
        // The writer takes it and waits for the hold.
        for _ in 0..1_000_000 {
            if history.queued() == 0 {
                break;
            }
            std::thread::yield_now();
        }
        assert_eq!(history.queued(), 0);
        let start = tokio::time::Instant::now();
        for i in 1..=10 {
            history.write_minutes(row(i));
        }
        history.record_audit(&AuditEntry::new("x", "y", serde_json::json!(null)));
        let took = start.elapsed();
        assert_eq!(history.queued(), 4);
        assert_eq!(
            history.dropped(),
            7,
            "10 minutes and an entry into 4 places"
        );
        took
    };
    // A wait would be the writer's (held): seconds, not this.
    assert!(took < Duration::from_millis(250), "never waits: {took:?}");
    history.flush().await.unwrap();
    let rows = history.minutes(0, u64::MAX / 2, None).await.unwrap();
    assert_eq!(
        rows.iter().map(|r| r.minute_unix_ms).collect::<Vec<_>>(),
        (0..=4).map(|i| base + i * MINUTE).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn a_batch_of_a_thousand_minutes() {
    let dir = Dir::new("batch");
    let history = History::open(dir.file(), 30 * DAY).unwrap();
    let base = minute_ago(600);
    let batch = |seed: u64| -> Vec<MinuteRollup> {
        (0..1000u64)
            .map(|i| {
                let mut row =
                    MinuteRollup::new(base + (i / 10) * MINUTE, format!("model-{}", i % 10));
                row.requests = 10 + seed;
                row.successes = 8 + seed;
                row.failures.insert("timeout".to_owned(), 2);
                for ms in 0..10 {
                    row.latency.record(Duration::from_millis(ms * 37 + i));
                }
                row
            })
            .collect()
    };
    let start = tokio::time::Instant::now();
    history.write_minutes(batch(0));
    history.flush().await.unwrap();
    let inserted = start.elapsed();
    let start = tokio::time::Instant::now();
    history.write_minutes(batch(1));
    history.flush().await.unwrap();
    let merged = start.elapsed();
    let start = tokio::time::Instant::now();
    let rows = history.minutes(0, u64::MAX / 2, None).await.unwrap();
    let read = start.elapsed();
    assert_eq!(rows.len(), 1000);
    assert!(
        rows.iter()
            .all(|r| r.requests == 21 && r.successes == 17 && r.latency.count() == 20)
    );
    let bytes = std::fs::metadata(dir.file()).unwrap().len()
        + std::fs::metadata(format!("{}-wal", dir.file().display())).map_or(0, |m| m.len());
    println!(
        "1000 minutes: inserted in {inserted:?}, merged into existing rows in {merged:?}, \
         read back in {read:?}; file + WAL {bytes} bytes"
    );
}
