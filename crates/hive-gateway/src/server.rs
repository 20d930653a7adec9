//! A running gateway: its listener, its fleet's health checks, its alerts, and reloads of
//! its config (on a change of its files, SIGHUP, or a call), each recorded in the audit
//! log; and a graceful shutdown.

use std::{
    io,
    net::SocketAddr,
    path::PathBuf,
    sync::{Arc, OnceLock},
    time::Duration,
};

use hive_config::{
    AuditEntry, AuditLog, CONFIG_REJECTED, Config, ConfigDiff, Diagnostics, Environment, Loader,
};
use hive_core::{Actor, ResilienceEvent};
use hive_monitor::{
    AlertManager, Monitor, MonitorConfig, PrometheusExporter,
    alert::{FiringAlerts, Silences},
};
use hive_resilience::Running;
use serde_json::json;
use tokio::{
    net::{TcpListener, TcpStream},
    sync::{Mutex, watch},
    task::JoinHandle,
};

use crate::{
    admin::Admin,
    alerts::{AlertSetupError, alert_manager},
    cluster::{CLUSTER_ACTOR, ClusterLink, ClusterView},
    dashboard::Dashboard,
    fleet::{BuildError, Fleet},
    history::History,
    history::{HistoryError, Recorder},
    http::Gateway,
    workers,
};

/// The sections of the config a reload cannot apply: the listener, the history's file
/// and retention, and cluster mode. A change to them is kept for the next start, and said.
pub const RESTART_SECTIONS: [&str; 3] = ["server.listen", "history", "cluster"];

/// `listener`'s connections with Nagle off: every SSE event goes out as it comes (Nagle
/// would hold each small write back until the previous one's ACK, tens of milliseconds per
/// stream).
pub(crate) fn no_delay(
    listener: TcpListener,
) -> axum::serve::TapIo<TcpListener, fn(&mut TcpStream)> {
    fn set(tcp: &mut TcpStream) {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "TCP_NODELAY not set");
        }
    }
    axum::serve::ListenerExt::tap_io(listener, set)
}

/// How long requests ended at the end of a shutdown's grace have to write their last
/// bytes before their connections are dropped.
const STOPPED_REQUESTS_CLOSE: Duration = Duration::from_secs(1);

/// Where a gateway's config comes from.
#[derive(Clone, Debug)]
pub enum ConfigSource {
    /// A directory holding `resilience.yml` and `models-resilience.yml`, reloaded when they
    /// change.
    Dir(PathBuf),
    /// The two files' text (the demo's embedded config), as if they were in `dir`; `None`
    /// stands for a missing file. Never reloaded.
    Text {
        /// Where secrets files and the audit log are.
        dir: PathBuf,
        /// `resilience.yml`.
        resilience: Option<String>,
        /// `models-resilience.yml`.
        models: Option<String>,
    },
}

impl ConfigSource {
    fn load(&self, env: &Environment) -> Result<Config, Diagnostics> {
        let loader = Loader::new().env(env.clone());
        match self {
            Self::Dir(dir) => loader.load(dir),
            Self::Text {
                dir,
                resilience,
                models,
            } => loader.load_str(dir, resilience.as_deref(), models.as_deref()),
        }
    }
}

/// How to run a gateway beyond what its config says.
#[derive(Clone)]
pub struct Options {
    /// Listen here instead of `server.listen` (tests and the demo take port 0).
    pub listen: Option<SocketAddr>,
    /// Where secrets' variables are read. Default the process's environment.
    pub env: Environment,
    /// Seeds jitter, slow start and weighted routing (tests, simulations).
    pub seed: Option<u64>,
    /// Whether a change of the config's files reloads it. Default true.
    pub watch: bool,
    /// Told of every attempt of every model besides the gateway's own records (a drill
    /// timing what reaches each model). Default none.
    pub tap: Option<Arc<dyn hive_monitor::AttemptTap>>,
    /// Data-plane workers: 0 serves on the caller's runtime (the default: tests, an
    /// embedding app); N serves on N single-threaded runtimes, each with its own listener
    /// and provider connections ([`crate::workers`]; `hive serve` runs one per core).
    pub workers: usize,
}

impl std::fmt::Debug for Options {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Options")
            .field("listen", &self.listen)
            .field("env", &self.env)
            .field("seed", &self.seed)
            .field("watch", &self.watch)
            .field("tap", &self.tap.is_some())
            .field("workers", &self.workers)
            .finish()
    }
}

impl Default for Options {
    fn default() -> Self {
        Self {
            listen: None,
            env: Environment::Process,
            seed: None,
            watch: true,
            tap: None,
            workers: 0,
        }
    }
}

/// Why a gateway did not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// The config has problems (each with its file and line).
    #[error("the config has {n} problem(s):\n{0}", n = .0.len())]
    Config(Diagnostics),
    /// The config loaded, but a library refused a setting.
    #[error(transparent)]
    Build(#[from] BuildError),
    /// The alerts could not be set up.
    #[error(transparent)]
    Alerts(#[from] AlertSetupError),
    /// The alert manager refused a rule or a timing.
    #[error("the alerts could not start: {0}")]
    AlertsStart(#[from] hive_monitor::alert::AlertError),
    /// The history file could not be opened (corrupt, locked, from a newer version …).
    #[error("the history could not be opened: {0}")]
    History(#[from] HistoryError),
    /// The health checks could not start.
    #[error("the health checks could not start: {0}")]
    Checks(#[from] hive_resilience::ManagerError),
    /// Cluster mode could not start.
    #[error("cluster mode: {0}")]
    Cluster(#[from] hive_cluster::ClusterError),
    /// The listener could not be bound.
    #[error("could not listen on {addr}: {source}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: io::Error,
    },
}

/// Why a reload left the config as it was.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReloadError {
    /// The new config has problems: the old one keeps serving.
    #[error("the new config has {n} problem(s); the old one keeps serving:\n{0}", n = .0.len())]
    Invalid(Diagnostics),
    /// The new config loaded, but a library refused a setting: the old one keeps serving.
    #[error("the new config was refused; the old one keeps serving: {0}")]
    Refused(String),
    /// This gateway's config is not read from files.
    #[error("this gateway's config is embedded, not read from files")]
    NotReloadable,
}

/// What a reload changed.
#[derive(Debug)]
pub struct Reloaded {
    /// The changes (empty: the files changed in nothing that matters).
    pub diff: ConfigDiff,
    /// Whether a section a reload cannot apply changed ([`RESTART_SECTIONS`]: the listener,
    /// the history): it takes effect at the next start.
    pub needs_restart: bool,
}

/// The process's Prometheus recorder, installed by the first gateway that wants one.
fn exporter() -> Option<PrometheusExporter> {
    static EXPORTER: OnceLock<Option<PrometheusExporter>> = OnceLock::new();
    EXPORTER
        .get_or_init(|| match hive_monitor::install_prometheus() {
            Ok(exporter) => Some(exporter),
            Err(e) => {
                tracing::warn!(error = %e, "metrics are not exported");
                None
            }
        })
        .clone()
}

/// What changes with each reload, behind one lock: reloads run one at a time.
struct Live {
    running: Option<Running>,
    alerts: Option<AlertManager>,
    recorder: Option<Recorder>,
    cluster: Option<ClusterLink>,
}

/// A running gateway.
pub struct Server {
    gateway: Gateway,
    source: ConfigSource,
    options: Options,
    monitor: Monitor,
    admin: Admin,
    kept: KeptAlerts,
    addr: SocketAddr,
    live: Mutex<Live>,
    shutdown: watch::Sender<bool>,
    serve: Mutex<Option<JoinHandle<io::Result<()>>>>,
    /// The cluster this replica is part of (cluster mode).
    cluster: Option<ClusterView>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("addr", &self.addr)
            .field("source", &self.source)
            .field("gateway", &self.gateway)
            .finish_non_exhaustive()
    }
}

impl Server {
    /// Loads the config, builds every model's stack, starts the health checks and alerts,
    /// and serves on the config's address (or the options'). Reloading on file changes and
    /// SIGHUP is [`watch`](Self::watch)'s.
    pub async fn start(source: ConfigSource, options: Options) -> Result<Arc<Self>, StartError> {
        let config = source.load(&options.env).map_err(StartError::Config)?;
        let config = Arc::new(config);
        let exporter = if config.metrics { exporter() } else { None };
        let monitor = Monitor::start(MonitorConfig {
            metrics: config.metrics && exporter.is_some(),
            ..MonitorConfig::default()
        });
        // Opened before the stacks are built: every model's attempts are tapped from the
        // first one.
        let history = match &config.history.path {
            Some(path) => {
                // Checking and migrating the file reads it: off the runtime's threads.
                let (path, retention) = (path.clone(), config.history.retention);
                let history = tokio::task::spawn_blocking(move || History::open(path, retention))
                    .await
                    .map_err(|e| {
                        StartError::History(HistoryError::Io {
                            path: config.history.path.clone().unwrap_or_default(),
                            source: std::io::Error::other(e),
                        })
                    })??;
                let recorder = history.record(&monitor);
                monitor.tap_attempts(Arc::new(recorder.clone()));
                Some((history, recorder))
            }
            None => None,
        };
        if let Some(tap) = &options.tap {
            monitor.tap_attempts(Arc::clone(tap));
        }
        // Before the stacks are built: it taps every attempt from the first.
        let mut cluster = match &config.cluster {
            Some(settings) => Some(ClusterLink::start(
                settings,
                config.defaults.settings.health.interval,
                &monitor,
            )?),
            None => None,
        };
        // Before the clients are built: each keeps a connection pool per worker.
        if options.workers > 0 {
            hive_core::worker::set_workers(options.workers);
        }
        let mut fleet = Fleet::build(Arc::clone(&config), Some(&monitor), None, options.seed)?;
        let kept = KeptAlerts::default();
        let alerts = start_alerts(
            &config,
            &fleet,
            &monitor,
            &kept,
            history.as_ref().map(|(history, _)| history),
            cluster.as_ref().map(ClusterLink::claims),
        )?;
        let duty = cluster.as_ref().map(ClusterLink::duty);
        let running = fleet.start_sharing_checks(duty)?;
        let addr = options.listen.unwrap_or(config.server.listen);
        let listen_error = |source| StartError::Listen { addr, source };
        // Before the listener: a port taken is said before any worker starts.
        let listeners = if options.workers > 0 {
            Some(workers::bind(addr, options.workers).map_err(listen_error)?)
        } else {
            None
        };
        let listener = match &listeners {
            Some(_) => None,
            None => Some(TcpListener::bind(addr).await.map_err(listen_error)?),
        };
        let addr = match (&listeners, &listener) {
            (Some(listeners), _) => listeners.first().map(std::net::TcpListener::local_addr),
            (None, Some(listener)) => Some(listener.local_addr()),
            (None, None) => None,
        }
        .unwrap_or_else(|| Err(io::Error::other("no listener")))
        .map_err(listen_error)?;
        let recorder = history.as_ref().map(|(_, recorder)| recorder.clone());
        let gateway = Gateway::new(fleet, exporter, history);
        let (shutdown, mut stopping) = watch::channel(false);
        let view = cluster.as_ref().map(ClusterLink::view);
        let mut admin = Admin::new(gateway.clone(), monitor.clone(), kept.clone());
        if let Some(view) = &view {
            admin = admin.in_cluster(view.clone());
        }
        let dashboard = Dashboard::new(admin.clone(), shutdown.subscribe());
        let app = gateway
            .router()
            .merge(dashboard.router())
            .into_make_service_with_connect_info::<SocketAddr>();
        let serve = match (listeners, listener) {
            (Some(listeners), _) => {
                workers::serve(listeners, app, &stopping).map_err(listen_error)?
            }
            (None, listener) => {
                let listener =
                    listener.ok_or_else(|| listen_error(io::Error::other("no listener")))?;
                tokio::spawn(async move {
                    axum::serve(no_delay(listener), app)
                        .with_graceful_shutdown(async move {
                            let _ = stopping.wait_for(|stop| *stop).await;
                        })
                        .await
                })
            }
        };
        tokio::spawn(audit_controls(
            gateway.clone(),
            monitor.subscribe(),
            shutdown.subscribe(),
        ));
        if let Some(link) = &mut cluster {
            link.share(&gateway, &monitor, shutdown.subscribe());
        }
        tracing::info!(
            %addr,
            workers = options.workers,
            config = %config.hash().short(),
            models = config.models.len(),
            routes = config.routes.len(),
            "gateway serving"
        );
        Ok(Arc::new(Self {
            gateway,
            source,
            options,
            monitor,
            admin,
            kept,
            addr,
            live: Mutex::new(Live {
                running: Some(running),
                alerts,
                recorder,
                cluster,
            }),
            shutdown,
            serve: Mutex::new(Some(serve)),
            cluster: view,
        }))
    }

    /// Its admin API (the state behind `/admin/`).
    pub fn admin(&self) -> &Admin {
        &self.admin
    }

    /// The alert silences, kept across reloads.
    pub fn silences(&self) -> &Silences {
        &self.kept.silences
    }

    /// What each alert channel of the alert manager in force has sent, failed and dropped
    /// (empty when the config has no rules).
    pub async fn alert_channels(
        &self,
    ) -> std::collections::BTreeMap<String, hive_monitor::alert::ChannelStats> {
        let live = self.live.lock().await;
        live.alerts
            .as_ref()
            .map(AlertManager::channel_stats)
            .unwrap_or_default()
    }

    /// The config hashes other replicas of the cluster announce they reloaded to (cluster
    /// mode): [`watch`](Self::watch) reloads this replica's files on each.
    pub(crate) fn cluster_reloads(&self) -> Option<tokio::sync::broadcast::Receiver<String>> {
        self.cluster.as_ref().map(ClusterView::reloads)
    }

    /// What cluster mode's link has done (`None` without a `cluster` section).
    pub async fn cluster_status(&self) -> Option<hive_cluster::ClusterStatus> {
        self.live
            .lock()
            .await
            .cluster
            .as_ref()
            .map(ClusterLink::status)
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Each model of the serving fleet, in order, and whether a request could use it now.
    pub fn models_up(&self) -> Vec<(String, bool)> {
        self.gateway()
            .fleet()
            .manager()
            .availability()
            .models
            .iter()
            .map(|m| (m.model.to_string(), m.up))
            .collect()
    }

    /// `http://{address}`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The handlers' state: the fleet serving now.
    pub fn gateway(&self) -> &Gateway {
        &self.gateway
    }

    /// The monitor every stack feeds.
    pub fn monitor(&self) -> &Monitor {
        &self.monitor
    }

    /// The alerts firing now.
    pub async fn alerts(&self) -> Vec<hive_monitor::alert::Alert> {
        self.live
            .lock()
            .await
            .alerts
            .as_ref()
            .map(AlertManager::alerts)
            .unwrap_or_default()
    }

    /// Reads the config again and applies what changed: models whose settings did not
    /// change keep their stacks (breaker, health, statistics), the others get new ones;
    /// routes are rebuilt; alerts restart when their section changed. An invalid config is
    /// refused whole and the old one keeps serving; either way the audit log records it
    /// with `actor`.
    pub async fn reload(&self, actor: &str) -> Result<Reloaded, ReloadError> {
        let ConfigSource::Dir(_) = &self.source else {
            return Err(ReloadError::NotReloadable);
        };
        let mut live = self.live.lock().await;
        let old = self.gateway.fleet();
        let config = match self.source.load(&self.options.env) {
            Ok(config) => Arc::new(config),
            Err(problems) => {
                let shown = problems.iter().map(ToString::to_string).collect();
                self.refused(actor, old.config(), None, shown).await;
                return Err(ReloadError::Invalid(problems));
            }
        };
        let diff = hive_config::diff(old.config(), &config);
        let needs_restart = RESTART_SECTIONS
            .iter()
            .any(|section| diff.section_changed(section));
        if diff.is_empty() {
            count_reload("unchanged");
            return Ok(Reloaded {
                diff,
                needs_restart,
            });
        }
        let built = Fleet::build(
            Arc::clone(&config),
            Some(&self.monitor),
            Some((&old, &diff)),
            self.options.seed,
        )
        .map_err(|e| e.to_string());
        let alerts_changed = diff.section_changed("alerts")
            || !diff.routes_added.is_empty()
            || !diff.routes_removed.is_empty()
            || !diff.routes_changed.is_empty();
        let started = built.and_then(|fleet| {
            let alerts = alerts_changed
                .then(|| {
                    start_alerts(
                        &config,
                        &fleet,
                        &self.monitor,
                        &self.kept,
                        self.gateway.history(),
                        live.cluster.as_ref().map(ClusterLink::claims),
                    )
                })
                .transpose()
                .map_err(|e| e.to_string())?;
            Ok((fleet, alerts))
        });
        let (mut fleet, new_alerts) = match started {
            Ok(started) => started,
            Err(problem) => {
                self.refused(actor, old.config(), Some(&config), vec![problem.clone()])
                    .await;
                return Err(ReloadError::Refused(problem));
            }
        };
        // The old checks stop before the new ones start: a kept model has one checker.
        if let Some(running) = live.running.take() {
            running.stop().await;
        }
        let duty = live.cluster.as_ref().map(ClusterLink::duty);
        match fleet.start_sharing_checks(duty) {
            Ok(running) => live.running = Some(running),
            Err(e) => tracing::error!(error = %e, "health checks did not start"),
        }
        self.gateway.swap(fleet);
        if let Some(cluster) = &live.cluster {
            cluster.serve(&self.gateway);
        }
        if let Some(alerts) = new_alerts {
            let none = alerts.is_none();
            if let Some(old_alerts) = std::mem::replace(&mut live.alerts, alerts) {
                old_alerts.stop().await;
            }
            if none {
                self.kept.firing.clear();
            }
        }
        for section in RESTART_SECTIONS {
            if diff.section_changed(section) {
                tracing::warn!(
                    section,
                    "this section changed: it takes effect at the next start"
                );
            }
        }
        tracing::info!(
            actor,
            config = %config.hash().short(),
            added = diff.models_added.len(),
            removed = diff.models_removed.len(),
            changed = diff.models_changed.len(),
            routes_changed = diff.routes_added.len() + diff.routes_removed.len() + diff.routes_changed.len(),
            "config reloaded"
        );
        // The new fleet serves now: its config's audit log. In a cluster whose replicas all
        // make this change (the same diff, within the claim's two minutes), one records it.
        let hash = config.hash().to_string();
        let audited_here = match &self.cluster {
            Some(cluster) => cluster.claim_change(&diff).await,
            None => true,
        };
        if audited_here {
            self.gateway
                .audit(AuditEntry::config_change(
                    actor,
                    &diff,
                    old.config(),
                    &config,
                ))
                .await;
        } else {
            tracing::info!(config = %config.hash().short(), "this config change is audited by another replica");
        }
        // The other replicas read their files again (a reload they announce comes back here
        // as the actor `cluster`, and goes no further).
        if let Some(cluster) = &self.cluster
            && actor != CLUSTER_ACTOR
        {
            cluster.announce_reload(&hash).await;
        }
        count_reload("applied");
        self.reload_event(true, 0, &config);
        Ok(Reloaded {
            diff,
            needs_restart,
        })
    }

    /// Records a refused reload: the log, the audit log (every secret of either config
    /// redacted), the metric.
    async fn refused(
        &self,
        actor: &str,
        old: &Config,
        new: Option<&Config>,
        problems: Vec<String>,
    ) {
        tracing::error!(
            problems = problems.len(),
            "config reload refused; the old config keeps serving:\n{}",
            problems.join("\n")
        );
        let mut entry =
            AuditEntry::new(actor, CONFIG_REJECTED, json!({ "problems": problems })).redacted(old);
        if let Some(new) = new {
            entry = entry.redacted(new);
        }
        // The old fleet keeps serving: its config's audit log.
        self.gateway.audit(entry).await;
        count_reload("rejected");
        self.reload_event(false, problems.len(), old);
    }

    /// Tells the monitor how a reload ended (the `config_rejected` alert follows it).
    fn reload_event(&self, accepted: bool, problems: usize, serving: &Config) {
        let hash = serving.hash().to_string();
        self.monitor
            .event_sink()
            .emit(|| ResilienceEvent::ConfigReload {
                accepted,
                problems: u32::try_from(problems).unwrap_or(u32::MAX),
                config_hash: hash,
            });
    }

    /// Reloads on every change of the config's files (and of its secret files) and on
    /// SIGHUP, until [`shutdown`](Self::shutdown). Changes within 250 ms are read once.
    pub fn watch(self: &Arc<Self>) -> JoinHandle<()> {
        let server = Arc::clone(self);
        tokio::spawn(async move { crate::reload::watch(server).await })
    }

    pub(crate) fn watch_files(&self) -> Option<Vec<PathBuf>> {
        match &self.source {
            ConfigSource::Dir(_) if self.options.watch => {
                Some(self.gateway.fleet().config().watched_paths())
            }
            _ => None,
        }
    }

    pub(crate) fn stopping(&self) -> watch::Receiver<bool> {
        self.shutdown.subscribe()
    }

    /// Stops taking connections, lets requests under way finish within the config's
    /// `server.shutdown_grace`, then ends those still running (a waiting request gets a
    /// 503, a stream its in-band error; see [`Gateway::stop_now`]) and closes their
    /// connections within a further second, and stops the health checks and alerts (which
    /// send what they hold). Returns whether every request finished in time.
    pub async fn shutdown(&self) -> bool {
        let grace = self.gateway.fleet().config().server.shutdown_grace;
        let _ = self.shutdown.send(true);
        let finished = match self.serve.lock().await.take() {
            Some(mut serve) => match tokio::time::timeout(grace, &mut serve).await {
                Ok(_) => true,
                Err(_) => {
                    tracing::warn!(grace = %hive_config::format_duration(grace), "requests still under way at the end of the grace period are ended");
                    self.gateway.stop_now();
                    if tokio::time::timeout(STOPPED_REQUESTS_CLOSE, &mut serve)
                        .await
                        .is_err()
                    {
                        serve.abort();
                    }
                    false
                }
            },
            None => true,
        };
        let mut live = self.live.lock().await;
        if let Some(cluster) = live.cluster.take() {
            cluster.stop();
        }
        if let Some(running) = live.running.take() {
            running.stop().await;
        }
        if let Some(alerts) = live.alerts.take() {
            alerts.stop().await;
        }
        // The minute under way is written; the history's file is closed with the last
        // clone of it.
        if let Some(recorder) = live.recorder.take() {
            recorder.stop().await;
        }
        if let Some(history) = self.gateway.history()
            && let Err(e) = history.flush().await
        {
            tracing::error!(error = %e, "the history's last records were not written");
        }
        tracing::info!(finished, "gateway stopped");
        finished
    }
}

/// What outlives a restart of the alert manager on a reload: the silences an operator set,
/// and the alerts firing (until the new manager's first evaluation).
#[derive(Clone, Debug, Default)]
pub struct KeptAlerts {
    /// The silences.
    pub silences: Silences,
    /// The alerts firing now.
    pub firing: FiringAlerts,
}

/// Starts the alert manager the config asks for, if any.
fn start_alerts(
    config: &Config,
    fleet: &Fleet,
    monitor: &Monitor,
    kept: &KeptAlerts,
    history: Option<&History>,
    claims: Option<Arc<dyn hive_core::ClaimOnce>>,
) -> Result<Option<AlertManager>, StartError> {
    let routes: Vec<(String, Vec<String>)> = fleet
        .routes()
        .iter()
        .map(|(name, entry)| (name.clone(), entry.models.clone()))
        .collect();
    let Some(builder) = alert_manager(&config.alerts, &routes, config.server.shutdown_grace)?
    else {
        return Ok(None);
    };
    let builder = match history {
        // Each incident in the history names the rule that fired and counts what was sent.
        Some(history) => {
            let history = history.clone();
            builder.on_notify(move |notification| history.note_notification(notification))
        }
        None => builder,
    };
    // In a cluster, one replica sends each notification.
    let builder = match claims {
        Some(claims) => builder.cluster(claims),
        None => builder,
    };
    builder
        .silences(kept.silences.clone())
        .firing(kept.firing.clone())
        .start(monitor)
        .map(Some)
        .map_err(StartError::AlertsStart)
}

/// The action of an audit entry for a control of a model (forced open, drained …).
pub const RECOVERY_ACTION: &str = "recovery_action";

/// The monitor's next event, until `stopping` (then `None`). Events missed because the
/// reader fell behind are logged with what `lost` says they carried.
pub(crate) async fn next_event(
    events: &mut tokio::sync::broadcast::Receiver<hive_monitor::TimedEvent>,
    stopping: &mut watch::Receiver<bool>,
    lost: &str,
) -> Option<hive_monitor::TimedEvent> {
    use tokio::sync::broadcast::error::RecvError;
    loop {
        let event = tokio::select! {
            _ = stopping.changed() => return None,
            event = events.recv() => event,
        };
        match event {
            Ok(event) => return Some(event),
            Err(RecvError::Lagged(missed)) => {
                tracing::warn!(missed, "events were missed: {lost}");
            }
            Err(RecvError::Closed) => return None,
        }
    }
}

/// Records every control action on a model (an operator's, or automatic recovery's) in the
/// audit log of the config serving, until shutdown.
async fn audit_controls(
    gateway: Gateway,
    mut events: tokio::sync::broadcast::Receiver<hive_monitor::TimedEvent>,
    mut stopping: watch::Receiver<bool>,
) {
    let lost = "control actions may be missing from the audit log";
    while let Some(event) = next_event(&mut events, &mut stopping, lost).await {
        // An action another replica took is audited there, once.
        if let ResilienceEvent::Control { model, action, by } = event.event
            && by != Actor::Cluster
        {
            let fleet = gateway.fleet();
            let entry = AuditEntry::new(
                by.as_str(),
                RECOVERY_ACTION,
                json!({ "model": model.as_str(), "action": action.as_str() }),
            )
            .with_hash(fleet.config().hash());
            gateway.audit(entry).await;
        }
    }
}

/// Appends `entry` to `log` off the runtime's threads; a failure is logged, not fatal.
pub(crate) async fn record(log: Option<AuditLog>, entry: AuditEntry) {
    let Some(log) = log else { return };
    let path: PathBuf = log.path().to_path_buf();
    let written = tokio::task::spawn_blocking(move || log.append(&entry)).await;
    match written {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::error!(path = %path.display(), error = %e, "audit log not written"),
        Err(e) => tracing::error!(path = %path.display(), error = %e, "audit log not written"),
    }
}

fn count_reload(result: &'static str) {
    metrics::counter!("hive_config_reloads_total", "result" => result).increment(1);
}
