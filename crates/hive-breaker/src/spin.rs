//! A tiny spin lock for the rare paths (state transitions, time-window rollover). The success
//! path never takes it; holders run for nanoseconds and never allocate or block.

use std::sync::atomic::{AtomicBool, Ordering};

#[derive(Debug, Default)]
pub(crate) struct SpinLock(AtomicBool);

pub(crate) struct SpinGuard<'a>(&'a AtomicBool);

impl SpinLock {
    pub(crate) fn lock(&self) -> SpinGuard<'_> {
        let mut spins = 0u32;
        loop {
            if self
                .0
                .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
            {
                return SpinGuard(&self.0);
            }
            while self.0.load(Ordering::Relaxed) {
                spins += 1;
                if spins < 64 {
                    std::hint::spin_loop();
                } else {
                    // The holder was preempted: let it run.
                    std::thread::yield_now();
                }
            }
        }
    }
}

impl Drop for SpinGuard<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}
