//! [`Budget`]: a token bucket that caps extra work (retries, hedges) to a share of requests
//! (Finagle's `RetryBudget`, tower's `TpsBudget`), lock-free.

use std::{fmt, sync::Arc, time::Duration};

use crate::{ConfigError, SlidingCounters};

const SLOTS: usize = 10;
const TOKEN: i64 = 1000;

/// Caps extra calls (retries, hedges) at `ratio` of the requests seen in the last `ttl`,
/// plus a floor of `min_per_sec` extra calls per second that is always allowed.
///
/// Every original request deposits `ratio` of a token; every extra call withdraws one
/// token. Deposits and withdrawals leave the balance after `ttl`, so a quiet spell cannot
/// save up a storm. At 100% upstream failure the calls reaching the model are at most
/// `requests × (1 + ratio) + min_per_sec × ttl`. Clones share one budget: give one budget
/// to every retry layer of a model (or of a whole gateway).
#[derive(Clone)]
pub struct Budget {
    inner: Arc<Inner>,
}

struct Inner {
    /// Deposits minus withdrawals over the last `ttl`, in milli-tokens.
    balance: SlidingCounters<1>,
    deposit: i64,
    reserve: i64,
    ttl: Duration,
    min_per_sec: u32,
    ratio: f64,
}

impl Budget {
    /// A budget remembering `ttl` (1 s to 60 s), allowing `min_per_sec` extra calls per
    /// second at least and `ratio` (0 to 1000) extra calls per request on top.
    pub fn new(ttl: Duration, min_per_sec: u32, ratio: f64) -> Result<Self, ConfigError> {
        if !(Duration::from_secs(1)..=Duration::from_secs(60)).contains(&ttl) {
            return Err(ConfigError::new(
                "budget.ttl",
                format!("{ttl:?} is outside 1 s..=60 s"),
            ));
        }
        if !(ratio.is_finite() && (0.0..=1000.0).contains(&ratio)) {
            return Err(ConfigError::new(
                "budget.ratio",
                format!("{ratio} is outside 0..=1000"),
            ));
        }
        let reserve = i64::from(min_per_sec) * ttl.as_millis() as i64;
        Ok(Self {
            inner: Arc::new(Inner {
                balance: SlidingCounters::new(ttl, SLOTS),
                deposit: (ratio * TOKEN as f64).round() as i64,
                reserve,
                ttl,
                min_per_sec,
                ratio,
            }),
        })
    }

    /// Linkerd's default: 20% extra load, at least 10 retries per second, over 10 seconds.
    pub fn linkerd_default() -> Self {
        Self {
            inner: Arc::new(Inner {
                balance: SlidingCounters::new(Duration::from_secs(10), SLOTS),
                deposit: 200,
                reserve: 10 * 10 * TOKEN,
                ttl: Duration::from_secs(10),
                min_per_sec: 10,
                ratio: 0.2,
            }),
        }
    }

    /// Records an original request (a deposit of `ratio` tokens).
    #[inline]
    pub fn deposit(&self) {
        self.inner.balance.add(0, self.inner.deposit);
    }

    /// Takes one token for an extra call; `false` when the budget is spent. The check and
    /// the withdrawal are one atomic step: concurrent callers never share a token.
    pub fn withdraw(&self) -> bool {
        self.inner.balance.try_add(0, -TOKEN, -self.inner.reserve)
    }

    /// Extra calls allowed now (whole tokens).
    pub fn balance(&self) -> i64 {
        self.inner.available() / TOKEN
    }
}

impl Inner {
    /// Milli-tokens available now: the floor plus the live balance.
    fn available(&self) -> i64 {
        let [balance] = self.balance.sums();
        self.reserve + balance
    }
}

impl fmt::Debug for Budget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Budget")
            .field("ttl", &self.inner.ttl)
            .field("min_per_sec", &self.inner.min_per_sec)
            .field("ratio", &self.inner.ratio)
            .field("balance", &self.balance())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn deposits_fund_retries_and_expire_after_the_ttl() {
        let budget = Budget::new(Duration::from_secs(10), 0, 0.5).unwrap();
        assert!(!budget.withdraw());
        for _ in 0..4 {
            budget.deposit();
        }
        assert_eq!(budget.balance(), 2);
        assert!(budget.withdraw());
        assert!(budget.withdraw());
        assert!(!budget.withdraw());
        for _ in 0..4 {
            budget.deposit();
        }
        tokio::time::advance(Duration::from_secs(10)).await;
        assert_eq!(budget.balance(), 0, "deposits leave after the ttl");
    }

    #[tokio::test(start_paused = true)]
    async fn the_floor_allows_min_per_sec_over_the_ttl() {
        let budget = Budget::new(Duration::from_secs(2), 3, 0.0).unwrap();
        let granted = (0..100).filter(|_| budget.withdraw()).count();
        assert_eq!(granted, 6);
        tokio::time::advance(Duration::from_secs(2)).await;
        assert_eq!((0..100).filter(|_| budget.withdraw()).count(), 6);
    }

    /// At 100% failure every thread wants a retry at once: the tokens granted are exactly
    /// the tokens there are.
    #[test]
    fn concurrent_withdrawals_never_share_a_token() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .unwrap();
        let _guard = runtime.enter();
        for round in 0..200 {
            let budget = Budget::new(Duration::from_secs(10), 0, 1.0).unwrap();
            let tokens = round % 4 + 1;
            for _ in 0..tokens {
                budget.deposit();
            }
            let barrier = std::sync::Arc::new(std::sync::Barrier::new(8));
            let threads: Vec<_> = (0..8)
                .map(|_| {
                    let (budget, barrier) = (budget.clone(), barrier.clone());
                    let handle = runtime.handle().clone();
                    std::thread::spawn(move || {
                        let _guard = handle.enter();
                        barrier.wait();
                        (0..4).filter(|_| budget.withdraw()).count()
                    })
                })
                .collect();
            let granted: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();
            assert_eq!(granted, tokens, "round {round}");
            assert_eq!(budget.balance(), 0);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn linkerd_default_allows_ten_retries_a_second_over_ten_seconds_plus_a_fifth_per_request()
    {
        let budget = Budget::linkerd_default();
        assert_eq!(budget.balance(), 100, "10 per second over 10 s");
        assert_eq!((0..200).filter(|_| budget.withdraw()).count(), 100);
        for _ in 0..10 {
            budget.deposit();
        }
        assert_eq!(budget.balance(), 2, "10 requests at 20% each");
        assert!(budget.withdraw());
        assert!(budget.withdraw());
        assert!(!budget.withdraw());
    }

    #[tokio::test(start_paused = true)]
    async fn debug_shows_the_settings_and_the_balance() {
        let budget = Budget::new(Duration::from_secs(2), 3, 0.5).unwrap();
        budget.deposit();
        budget.deposit();
        assert_eq!(
            format!("{budget:?}"),
            "Budget { ttl: 2s, min_per_sec: 3, ratio: 0.5, balance: 7 }"
        );
    }

    #[test]
    fn bad_settings_name_their_field() {
        let err = Budget::new(Duration::ZERO, 1, 0.1).unwrap_err();
        assert_eq!(err.field, "budget.ttl");
        let err = Budget::new(Duration::from_secs(5), 1, f64::NAN).unwrap_err();
        assert_eq!(err.field, "budget.ratio");
    }
}
