//! [`RequestWindow`]: how many requests were answered over the last minute, in per-second
//! slices, with atomics only.

use std::{
    sync::atomic::{AtomicU64, Ordering},
    time::Duration,
};

use tokio::time::Instant;

#[derive(Debug, Default)]
struct Slice {
    /// The second (since the window's epoch) this slice counts, plus one; 0 = never used.
    second: AtomicU64,
    answered: AtomicU64,
    total: AtomicU64,
}

/// Requests and answers over the last `slices` seconds.
#[derive(Debug)]
pub(crate) struct RequestWindow {
    epoch: Instant,
    slices: Box<[Slice]>,
}

impl RequestWindow {
    pub(crate) fn new(span: Duration) -> Self {
        let slices = span.as_secs().max(1) as usize;
        Self {
            epoch: Instant::now(),
            slices: (0..slices).map(|_| Slice::default()).collect(),
        }
    }

    fn second(&self) -> u64 {
        Instant::now()
            .saturating_duration_since(self.epoch)
            .as_secs()
    }

    pub(crate) fn span(&self) -> Duration {
        Duration::from_secs(self.slices.len() as u64)
    }

    /// Counts one request.
    pub(crate) fn record(&self, answered: bool) {
        let second = self.second();
        let slice = &self.slices[(second % self.slices.len() as u64) as usize];
        let seen = slice.second.load(Ordering::Acquire);
        if seen != second + 1
            && slice
                .second
                .compare_exchange(seen, second + 1, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
        {
            slice.answered.store(0, Ordering::Release);
            slice.total.store(0, Ordering::Release);
        }
        slice.total.fetch_add(1, Ordering::AcqRel);
        if answered {
            slice.answered.fetch_add(1, Ordering::AcqRel);
        }
    }

    /// (answered, total) over the window.
    pub(crate) fn counts(&self) -> (u64, u64) {
        let now = self.second();
        let span = self.slices.len() as u64;
        self.slices
            .iter()
            .filter(|s| {
                let second = s.second.load(Ordering::Acquire);
                second > 0 && now + 1 - second < span
            })
            .fold((0, 0), |(a, t), s| {
                (
                    a + s.answered.load(Ordering::Acquire),
                    t + s.total.load(Ordering::Acquire),
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn counts_leave_the_window_after_its_span() {
        let window = RequestWindow::new(Duration::from_secs(3));
        window.record(true);
        window.record(false);
        tokio::time::advance(Duration::from_secs(1)).await;
        window.record(true);
        assert_eq!(window.counts(), (2, 3));
        tokio::time::advance(Duration::from_secs(2)).await;
        assert_eq!(window.counts(), (1, 1), "the first second left the window");
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(window.counts(), (0, 0));
    }
}
