//! [`Deadline`]: the time left for a whole request, passed down to every layer.
//!
//! The router sets a deadline for the whole request (every retry and every fallback) with
//! [`Deadline::scope`]; layers below read it with [`Deadline::current`] only when they must
//! decide (before a retry), so the success path never touches it.

use std::{future::Future, time::Duration};
use tokio::time::Instant;

tokio::task_local! {
    static CURRENT: Deadline;
}

/// A future run under a [`Deadline`] (see [`Deadline::scoped`]).
pub type Scoped<F> = tokio::task::futures::TaskLocalFuture<Deadline, F>;

/// A point in (tokio) time by which a request must be done.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Deadline {
    at: Instant,
}

impl Deadline {
    /// A deadline at `at`.
    pub const fn at(at: Instant) -> Self {
        Self { at }
    }

    /// A deadline `budget` from now (a budget too long to represent is capped at
    /// [`MAX_DURATION`](crate::MAX_DURATION) from now, never a panic).
    pub fn after(budget: Duration) -> Self {
        let now = Instant::now();
        Self {
            at: now
                .checked_add(budget)
                .unwrap_or_else(|| now + crate::MAX_DURATION),
        }
    }

    /// The instant of the deadline.
    pub const fn instant(&self) -> Instant {
        self.at
    }

    /// Time left before the deadline (zero once passed).
    pub fn remaining(&self) -> Duration {
        self.at.saturating_duration_since(Instant::now())
    }

    /// Whether the deadline has passed.
    pub fn is_expired(&self) -> bool {
        Instant::now() >= self.at
    }

    /// Whether something that takes `needed` from now would still end before the deadline.
    pub fn fits(&self, needed: Duration) -> bool {
        self.remaining() > needed
    }

    /// The deadline of the request being served by this task, if a router set one.
    pub fn current() -> Option<Deadline> {
        CURRENT.try_with(|d| *d).ok()
    }

    /// Runs `fut` with this deadline as [`Deadline::current`]; an outer deadline that is
    /// sooner wins, so an inner scope can only shorten the time left.
    pub async fn scope<F: Future>(self, fut: F) -> F::Output {
        self.scoped(fut).await
    }

    /// Runs `f` with this deadline as [`Deadline::current`] (the sooner of it and an outer
    /// one): for work done before a future is polled, such as a service's `call`.
    pub fn sync_scope<R>(self, f: impl FnOnce() -> R) -> R {
        let effective = match Self::current() {
            Some(outer) if outer < self => outer,
            _ => self,
        };
        CURRENT.sync_scope(effective, f)
    }

    /// [`scope`](Self::scope) as a named future, for hand-written futures that hold it. The
    /// outer deadline is read now (call it from the task that will poll the future).
    pub fn scoped<F: Future>(self, fut: F) -> Scoped<F> {
        let effective = match Self::current() {
            Some(outer) if outer < self => outer,
            _ => self,
        };
        CURRENT.scope(effective, fut)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn remaining_counts_down_and_scope_nests_to_the_sooner() {
        assert_eq!(Deadline::current(), None);
        let d = Deadline::after(Duration::from_secs(10));
        tokio::time::advance(Duration::from_secs(4)).await;
        assert_eq!(d.remaining(), Duration::from_secs(6));
        assert!(d.fits(Duration::from_secs(5)));
        assert!(!d.fits(Duration::from_secs(6)));
        d.scope(async {
            assert_eq!(Deadline::current(), Some(d));
            let later = Deadline::after(Duration::from_secs(60));
            later
                .scope(async { assert_eq!(Deadline::current(), Some(d)) })
                .await;
            let sooner = Deadline::after(Duration::from_secs(1));
            sooner
                .scope(async { assert_eq!(Deadline::current(), Some(sooner)) })
                .await;
        })
        .await;
        tokio::time::advance(Duration::from_secs(6)).await;
        assert!(d.is_expired());
        assert_eq!(d.remaining(), Duration::ZERO);
        assert!(
            !Deadline::after(Duration::MAX).is_expired(),
            "no overflow, no panic"
        );
    }
}
