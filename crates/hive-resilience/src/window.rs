//! [`RequestWindow`]: how many requests were answered over the last span, per second.

use std::time::Duration;

use hive_core::SlidingCounters;

const ANSWERED: usize = 0;
const TOTAL: usize = 1;

/// Requests and answers over the last `span` (whole seconds, at least 1).
#[derive(Debug)]
pub(crate) struct RequestWindow {
    counts: SlidingCounters<2>,
}

impl RequestWindow {
    pub(crate) fn new(span: Duration) -> Self {
        let seconds = span.as_secs().max(1);
        Self {
            counts: SlidingCounters::new(Duration::from_secs(seconds), seconds as usize),
        }
    }

    pub(crate) fn span(&self) -> Duration {
        self.counts.span()
    }

    /// Counts one request.
    pub(crate) fn record(&self, answered: bool) {
        self.counts.add(TOTAL, 1);
        if answered {
            self.counts.add(ANSWERED, 1);
        }
    }

    /// (answered, total) over the window.
    pub(crate) fn counts(&self) -> (u64, u64) {
        let sums = self.counts.sums();
        (sums[ANSWERED].max(0) as u64, sums[TOTAL].max(0) as u64)
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
