//! [`HealthChecker`]: one probe task per model, feeding the registry.

use std::{fmt, sync::Arc, time::Duration};

use hive_core::{
    BoxError, ConfigError, ModelId, ProbeDuty, SharedRandom, check_duration, splitmix64, unit_from,
};
use tokio::{task::JoinSet, time::Instant};
use tower::{Service, ServiceExt, util::BoxService};

use crate::{HealthHandle, HealthRegistry};

/// What a probe is asked: check this model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProbeRequest {
    /// The model to check.
    pub model: ModelId,
}

/// When and how long to probe.
///
/// A model's checks run one after another, never overlapping: the wait (`interval`, or
/// `fast_interval` after a status change) starts when a check ends, by its answer or by its
/// timeout. The timeout is independent of the interval and may be longer (a provider whose
/// `/v1/models` is slow, checked often): a model that does not answer is then checked once
/// every `timeout + interval`, never more often, and a result is always recorded before the
/// next check starts. The first check of each model starts at a random point in
/// `[0, jitter × interval]`, so the models of a fleet are not all probed at once.
#[derive(Clone, Debug)]
pub struct CheckerConfig {
    interval: Duration,
    fast_interval: Duration,
    jitter: f64,
    timeout: Duration,
    seed: Option<u64>,
    duty: Option<Arc<dyn ProbeDuty>>,
}

impl Default for CheckerConfig {
    /// Every 10 s ±10%, 1 s after a status change, 5 s timeout.
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(10),
            fast_interval: Duration::from_secs(1),
            jitter: 0.1,
            timeout: Duration::from_secs(5),
            seed: None,
            duty: None,
        }
    }
}

impl CheckerConfig {
    /// Shares the checks with the other replicas of a cluster: a model is checked here only
    /// while `duty` says it is this replica's, and each check run here is passed to it for
    /// the others to record (one stream of checks per cluster, not one per replica).
    #[must_use]
    pub fn duty(mut self, duty: Arc<dyn ProbeDuty>) -> Self {
        self.duty = Some(duty);
        self
    }

    /// Time between the end of a check and the start of the next (above zero, at most
    /// [`MAX_DURATION`](hive_core::MAX_DURATION)).
    #[must_use]
    pub fn interval(mut self, interval: Duration) -> Self {
        self.interval = interval;
        self
    }

    /// The shorter wait before the first check after a status change, to confirm a
    /// recovery or a failure quickly (above zero, at most the interval).
    #[must_use]
    pub fn fast_interval(mut self, interval: Duration) -> Self {
        self.fast_interval = interval;
        self
    }

    /// Each wait is spread uniformly by ±`fraction` (0 to 1), and the first check of each
    /// model starts uniformly in `[0, fraction × interval]`, so checks of many models do not
    /// line up. With 0 every first check starts at once and every wait is exact.
    #[must_use]
    pub fn jitter(mut self, fraction: f64) -> Self {
        self.jitter = fraction;
        self
    }

    /// A check that has not answered after this has failed (above zero, at most
    /// [`MAX_DURATION`](hive_core::MAX_DURATION)). It may be longer than the interval: the
    /// interval counts from the end of a check, so checks never overlap.
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Seeds the jitter (tests, simulations). Each model draws from its own sequence, derived
    /// from the seed and the order the models were added in, so a seeded checker repeats its
    /// check times exactly however its tasks are scheduled.
    #[must_use]
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// Checks the settings as [`HealthChecker::new`] does, without a checker: the error names
    /// the first setting out of bounds.
    pub fn validate(&self) -> Result<(), ConfigError> {
        check_duration("interval", self.interval, false)?;
        check_duration("fast_interval", self.fast_interval, false)?;
        if self.fast_interval > self.interval {
            return Err(ConfigError::new(
                "fast_interval",
                format!(
                    "{:?} must be at most the interval {:?}",
                    self.fast_interval, self.interval
                ),
            ));
        }
        if !(0.0..=1.0).contains(&self.jitter) {
            return Err(ConfigError::new(
                "jitter",
                format!("{} is outside [0, 1]", self.jitter),
            ));
        }
        check_duration("timeout", self.timeout, false)?;
        Ok(())
    }

    /// `base` spread by ±jitter.
    fn spread(&self, base: Duration, random: &mut u64) -> Duration {
        if self.jitter == 0.0 {
            return base;
        }
        base.mul_f64(1.0 + self.jitter * (2.0 * unit_from(random) - 1.0))
    }

    /// When a model's first check starts: uniform in `[0, jitter × interval]`.
    fn first_wait(&self, random: &mut u64) -> Duration {
        if self.jitter == 0.0 {
            return Duration::ZERO;
        }
        self.interval.mul_f64(self.jitter * unit_from(random))
    }
}

type Probe = BoxService<ProbeRequest, (), BoxError>;

/// Checks models actively: one task per model calls its probe, waits `interval` (or
/// `fast_interval` after a status change), and records each result in the registry.
///
/// A probe is any `Service<ProbeRequest>`: a model client asked for `GET /v1/models` or a
/// `max_tokens: 1` completion, so checks cost no tokens where the provider allows. A model's
/// checks never overlap: it has one task (a second probe for it replaces the first), and the
/// next check starts only after the previous ended or timed out (see [`CheckerConfig`]).
#[must_use = "a checker checks nothing until started"]
pub struct HealthChecker {
    registry: HealthRegistry,
    config: CheckerConfig,
    probes: Vec<(HealthHandle, Probe, Option<CheckerConfig>)>,
}

impl HealthChecker {
    /// A checker feeding `registry`; the error names the first setting out of bounds.
    pub fn new(registry: HealthRegistry, config: CheckerConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        Ok(Self {
            registry,
            config,
            probes: Vec::new(),
        })
    }

    /// Checks `model` with `probe`: an `Ok` answer within the timeout passes. A model has
    /// one probe: a second for the same model replaces the first (keeping its place in the
    /// order).
    pub fn probe<P>(self, model: impl Into<ModelId>, probe: P) -> Self
    where
        P: Service<ProbeRequest> + Send + 'static,
        P::Future: Send + 'static,
        P::Error: Into<BoxError>,
    {
        self.add(model.into(), probe, None)
    }

    /// Checks `model` with `probe` on a timing of its own (a local server checked every
    /// few seconds, a paid completion probe once a minute) instead of the checker's; the
    /// error names the setting out of bounds. The seed stays the checker's.
    pub fn probe_with<P>(
        self,
        model: impl Into<ModelId>,
        probe: P,
        config: CheckerConfig,
    ) -> Result<Self, ConfigError>
    where
        P: Service<ProbeRequest> + Send + 'static,
        P::Future: Send + 'static,
        P::Error: Into<BoxError>,
    {
        config.validate()?;
        Ok(self.add(model.into(), probe, Some(config)))
    }

    fn add<P>(mut self, model: ModelId, probe: P, config: Option<CheckerConfig>) -> Self
    where
        P: Service<ProbeRequest> + Send + 'static,
        P::Future: Send + 'static,
        P::Error: Into<BoxError>,
    {
        let handle = self.registry.register(model);
        let probe = BoxService::new(probe.map_response(|_| ()).map_err(Into::into));
        match self
            .probes
            .iter_mut()
            .find(|(h, _, _)| h.model() == handle.model())
        {
            Some(existing) => {
                existing.1 = probe;
                existing.2 = config;
            }
            None => self.probes.push((handle, probe, config)),
        }
        self
    }

    /// Starts one task per model on the current tokio runtime. Each model's first check
    /// starts at a random point in `[0, jitter × interval]` (at once with no jitter).
    pub fn start(self) -> RunningChecker {
        // Each model gets its own sequence, so its check times depend only on the seed and its
        // place in the order, not on how the tasks' draws interleave.
        let mut seeds = SharedRandom::new(self.config.seed).next_u64();
        let mut tasks = JoinSet::new();
        for (handle, probe, own) in self.probes {
            let mut random = splitmix64(&mut seeds);
            let config = own.unwrap_or_else(|| self.config.clone());
            let first = config.first_wait(&mut random);
            tasks.spawn(check_forever(handle, probe, config, random, first));
        }
        RunningChecker { tasks }
    }
}

async fn check_forever(
    handle: HealthHandle,
    mut probe: Probe,
    config: CheckerConfig,
    mut random: u64,
    mut wait: Duration,
) {
    let request = ProbeRequest {
        model: handle.model(),
    };
    loop {
        tokio::time::sleep(wait).await;
        if let Some(duty) = &config.duty
            && !duty.mine(request.model)
        {
            // Another replica checks it; its results arrive through the cluster.
            wait = config.spread(config.interval, &mut random);
            continue;
        }
        let started = Instant::now();
        let result = tokio::time::timeout(config.timeout, async {
            probe.ready().await?.call(request).await
        })
        .await;
        let ok = matches!(result, Ok(Ok(())));
        if let Ok(Err(error)) | Err(error) = result.map_err(BoxError::from) {
            tracing::debug!(model = %request.model, %error, "health check failed");
        }
        let latency = started.elapsed();
        let changed = handle.record_check(ok, latency).is_some();
        let base = if changed {
            config.fast_interval
        } else {
            config.interval
        };
        wait = config.spread(base, &mut random);
        if let Some(duty) = &config.duty {
            duty.checked(request.model, ok, latency, wait);
        }
    }
}

impl fmt::Debug for HealthChecker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HealthChecker")
            .field("config", &self.config)
            .field(
                "models",
                &self
                    .probes
                    .iter()
                    .map(|(h, _, _)| h.model())
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}

/// The running checks. [`stop`](Self::stop) ends every task and waits for them; dropping it
/// ends them too, so keep it for as long as the checks should run.
#[derive(Debug)]
#[must_use = "dropping a RunningChecker stops its checks at once"]
pub struct RunningChecker {
    tasks: JoinSet<()>,
}

impl RunningChecker {
    /// Probe tasks still running.
    pub fn running(&self) -> usize {
        self.tasks.len()
    }

    /// Ends every probe task (a check in flight is cancelled) and waits until all are gone.
    pub async fn stop(mut self) {
        self.tasks.abort_all();
        while self.tasks.join_next().await.is_some() {}
    }
}

impl Drop for RunningChecker {
    fn drop(&mut self) {
        self.tasks.abort_all();
    }
}
