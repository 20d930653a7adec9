//! [`HealthChecker`]: one probe task per model, feeding the registry.

use std::{fmt, time::Duration};

use hive_core::{BoxError, ConfigError, ModelId, SharedRandom};
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
#[derive(Clone, Debug)]
pub struct CheckerConfig {
    interval: Duration,
    fast_interval: Duration,
    jitter: f64,
    timeout: Duration,
    seed: Option<u64>,
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
        }
    }
}

impl CheckerConfig {
    /// Time between the end of a check and the start of the next.
    pub fn interval(mut self, interval: Duration) -> Self {
        self.interval = interval;
        self
    }

    /// The shorter wait before the first check after a status change, to confirm a
    /// recovery or a failure quickly.
    pub fn fast_interval(mut self, interval: Duration) -> Self {
        self.fast_interval = interval;
        self
    }

    /// Each wait is spread uniformly by ±`fraction` (0 to 1) so checks of many models do not
    /// line up.
    pub fn jitter(mut self, fraction: f64) -> Self {
        self.jitter = fraction;
        self
    }

    /// A check that has not answered after this has failed.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Seeds the jitter (tests, simulations).
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if self.interval.is_zero() {
            return Err(ConfigError::new("interval", "must be above zero"));
        }
        if self.fast_interval.is_zero() || self.fast_interval > self.interval {
            return Err(ConfigError::new(
                "fast_interval",
                format!(
                    "{:?} must be above zero and at most the interval {:?}",
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
        if self.timeout.is_zero() {
            return Err(ConfigError::new("timeout", "must be above zero"));
        }
        Ok(())
    }

    fn spread(&self, base: Duration, random: &SharedRandom) -> Duration {
        if self.jitter == 0.0 {
            return base;
        }
        base.mul_f64(1.0 + self.jitter * (2.0 * random.unit() - 1.0))
    }
}

type Probe = BoxService<ProbeRequest, (), BoxError>;

/// Checks models actively: one task per model calls its probe, waits `interval` (or
/// `fast_interval` after a status change), and records each result in the registry.
///
/// A probe is any `Service<ProbeRequest>`: a model client asked for `GET /v1/models` or a
/// `max_tokens: 1` completion, so checks cost no tokens where the provider allows. A model's
/// checks never overlap: the next starts only after the previous ended or timed out.
pub struct HealthChecker {
    registry: HealthRegistry,
    config: CheckerConfig,
    probes: Vec<(HealthHandle, Probe)>,
}

impl HealthChecker {
    /// A checker feeding `registry`.
    pub fn new(registry: HealthRegistry, config: CheckerConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        Ok(Self {
            registry,
            config,
            probes: Vec::new(),
        })
    }

    /// Checks `model` with `probe`: an `Ok` answer within the timeout passes.
    #[must_use]
    pub fn probe<P>(mut self, model: impl Into<ModelId>, probe: P) -> Self
    where
        P: Service<ProbeRequest> + Send + 'static,
        P::Future: Send + 'static,
        P::Error: Into<BoxError>,
    {
        let handle = self.registry.register(model);
        let probe = BoxService::new(probe.map_response(|_| ()).map_err(Into::into));
        self.probes.push((handle, probe));
        self
    }

    /// Starts one task per model on the current tokio runtime. The first checks start at
    /// once (spread by the jitter).
    pub fn start(self) -> RunningChecker {
        let random = SharedRandom::new(self.config.seed);
        let mut tasks = JoinSet::new();
        for (handle, probe) in self.probes {
            let (config, random) = (self.config.clone(), random.clone());
            let first = config.spread(Duration::ZERO, &random);
            tasks.spawn(check_forever(handle, probe, config, random, first));
        }
        RunningChecker { tasks }
    }
}

async fn check_forever(
    handle: HealthHandle,
    mut probe: Probe,
    config: CheckerConfig,
    random: SharedRandom,
    mut wait: Duration,
) {
    let request = ProbeRequest {
        model: handle.model(),
    };
    loop {
        tokio::time::sleep(wait).await;
        let started = Instant::now();
        let result = tokio::time::timeout(config.timeout, async {
            probe.ready().await?.call(request).await
        })
        .await;
        let ok = matches!(result, Ok(Ok(())));
        if let Ok(Err(error)) | Err(error) = result.map_err(BoxError::from) {
            tracing::debug!(model = %request.model, %error, "health check failed");
        }
        let changed = handle.record_check(ok, started.elapsed()).is_some();
        let base = if changed {
            config.fast_interval
        } else {
            config.interval
        };
        wait = config.spread(base, &random);
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
                    .map(|(h, _)| h.model())
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}

/// The running checks. [`stop`](Self::stop) ends every task and waits for them; dropping it
/// ends them too.
#[derive(Debug)]
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
