//! Which data-plane worker the current thread is, so that per-worker resources (a model
//! client's connection pool) stay on the thread that uses them.
//!
//! A gateway may serve on several single-threaded runtimes, one per core, as Envoy's
//! workers do: a request, its upstream call and that connection's task then all run on one
//! thread, and no wake-up crosses cores on the way. Each worker thread calls [`enter`]
//! once; everything else (tests, the control plane, a library user's own runtime) is slot
//! 0, and nothing changes for it.
//!
//! ```
//! assert_eq!(hive_core::worker::slot(), 0);
//! std::thread::spawn(|| {
//!     hive_core::worker::enter(2);
//!     assert_eq!(hive_core::worker::slot(), 3);
//! })
//! .join()
//! .unwrap();
//! ```

use std::{
    cell::Cell,
    sync::atomic::{AtomicUsize, Ordering},
};

thread_local! {
    static SLOT: Cell<usize> = const { Cell::new(0) };
}

/// How many workers the process runs (0 until a server starts some).
static WORKERS: AtomicUsize = AtomicUsize::new(0);

/// Marks the current thread as worker `index` (counted from 0), for life.
pub fn enter(index: usize) {
    SLOT.with(|slot| slot.set(index + 1));
}

/// The current thread's slot: 0 outside workers, `index + 1` on worker `index`.
#[inline]
pub fn slot() -> usize {
    SLOT.with(Cell::get)
}

/// Announces that `workers` workers will run; call it before building the resources that
/// are kept per worker (clients built before keep one pool, slot 0's).
pub fn set_workers(workers: usize) {
    WORKERS.store(workers, Ordering::Relaxed);
}

/// Slots to keep resources for: the workers announced, plus slot 0.
pub fn slots() -> usize {
    WORKERS.load(Ordering::Relaxed) + 1
}
