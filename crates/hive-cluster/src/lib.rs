//! Cluster mode: the replicas of a gateway share what one of them learns about a model —
//! a breaker that opened or closed, a provider's request to wait — through Redis, the
//! engine such deployments already run.
//!
//! Redis is never on a request's path. Requests read local state only; a replica
//! publishes a change when one of its breakers changes state or a provider says
//! `Retry-After` (into a bounded queue that never blocks), and a background task applies
//! what the others publish. If Redis is down or slow every replica keeps serving on its
//! own state, says so once in its log, and shares again when Redis is back: it reads the
//! holds still in force (each kept under a key that expires with it) and tells the others
//! its own.
//!
//! ```no_run
//! # use std::sync::Arc;
//! # async fn run(fleet: Arc<dyn hive_core::ApplyShared>) -> Result<(), hive_cluster::ClusterError> {
//! use hive_cluster::{Cluster, ClusterSettings};
//! use hive_core::ShareState;
//!
//! let settings = ClusterSettings::new(std::env::var("HIVE_REDIS_URL").unwrap_or_default(), "hive:prod")?;
//! let cluster = Cluster::start(settings);
//! cluster.attach(fleet); // whose breakers the others' changes go to
//! cluster.publish(hive_core::SharedChange::BreakerClosed { model: hive_core::ModelId::new("gpt-4o") });
//! # Ok(()) }
//! ```

#![deny(missing_docs)]

mod link;
mod wire;

use std::{
    collections::HashMap,
    fmt,
    future::Future,
    pin::Pin,
    sync::{
        Arc, RwLock,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::Duration,
};

use hive_core::{ApplyShared, ClaimOnce, ModelId, ProbeDuty, ShareState, SharedChange};
use tokio::{
    sync::{broadcast, mpsc, watch},
    task::JoinHandle,
    time::Instant,
};

/// Changes waiting to be published; beyond this a change is dropped and counted (the
/// replica whose link is this slow learns and shares again when it reconnects).
const QUEUE: usize = 1024;

/// Where the cluster's Redis is and how its keys are named.
#[derive(Clone)]
pub struct ClusterSettings {
    url: String,
    prefix: String,
    replica: String,
    lease_ttl: Duration,
    /// The CA certificates (PEM) a `rediss://` server's certificate must chain to, instead
    /// of the public web roots.
    root_certificates: Option<Vec<u8>>,
}

/// How long a replica's duty to check a model's health lasts unless renewed (a third of it
/// apart), by default: a replica that dies is replaced within it.
pub const DEFAULT_LEASE_TTL: Duration = Duration::from_secs(5);

/// Why cluster mode could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClusterError {
    /// The Redis URL is not one (its text is never shown: it may hold a password).
    #[error(
        "the Redis URL is not valid: {0} (expected redis://[user:password@]host:port[/db], or rediss:// for TLS)"
    )]
    Url(&'static str),
    /// The key prefix is empty, too long or has spaces.
    #[error("the key prefix {0:?} must be 1 to 64 characters without spaces or control characters")]
    Prefix(String),
    /// The CA certificates are not PEM certificates.
    #[error("the Redis CA certificates are not PEM certificates (-----BEGIN CERTIFICATE-----)")]
    Certificates,
    /// The replica name is empty, too long or has spaces.
    #[error(
        "the replica name {0:?} must be 1 to 64 characters without spaces or control characters"
    )]
    Replica(String),
}

impl ClusterSettings {
    /// Redis at `url` (`redis://…`, `rediss://…` for TLS; it may carry a password, and is
    /// never logged), keys under `prefix` (one per deployment: `hive:prod`), this replica
    /// named after its host and process.
    pub fn new(url: impl Into<String>, prefix: impl Into<String>) -> Result<Self, ClusterError> {
        let url = url.into();
        let scheme_known = ["redis://", "rediss://", "redis+unix://", "unix://"]
            .iter()
            .any(|scheme| url.starts_with(scheme));
        if !scheme_known {
            return Err(ClusterError::Url(
                "it does not start with redis:// or rediss://",
            ));
        }
        if redis::Client::open(url.as_str()).is_err() {
            return Err(ClusterError::Url("it does not parse"));
        }
        let prefix = prefix.into();
        if !hive_core::is_cluster_name(&prefix) {
            return Err(ClusterError::Prefix(prefix));
        }
        let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "hive".to_owned());
        let mut seed = wire_seed();
        let replica = format!(
            "{host}-{}-{:x}",
            std::process::id(),
            hive_core::splitmix64(&mut seed) & 0xFFFF_FFFF
        );
        let replica = replica
            .chars()
            .filter(|c| !c.is_whitespace() && !c.is_control())
            .take(64)
            .collect();
        Ok(Self {
            url,
            prefix,
            replica,
            lease_ttl: DEFAULT_LEASE_TTL,
            root_certificates: None,
        })
    }

    /// Trusts these CA certificates (PEM) for a `rediss://` server instead of the public
    /// web roots: a Redis behind a private CA, as in most clusters.
    pub fn root_certificates(mut self, pem: impl Into<Vec<u8>>) -> Result<Self, ClusterError> {
        let pem = pem.into();
        if !String::from_utf8_lossy(&pem).contains("-----BEGIN CERTIFICATE-----") {
            return Err(ClusterError::Certificates);
        }
        self.root_certificates = Some(pem);
        // Parsed now, so that a bad file is said at start.
        match self.client() {
            Ok(_) => Ok(self),
            Err(_) => Err(ClusterError::Certificates),
        }
    }

    /// A client for the settings' Redis.
    fn client(&self) -> redis::RedisResult<redis::Client> {
        // redis-rs's TLS takes the process's default crypto provider: ring, as the rest of
        // the TLS stack (already installed, by this or another crate, is as good).
        let _ = rustls::crypto::ring::default_provider().install_default();
        match &self.root_certificates {
            None => redis::Client::open(self.url.as_str()),
            Some(pem) => redis::Client::build_with_tls(
                self.url.as_str(),
                redis::TlsCertificates {
                    client_tls: None,
                    root_cert: Some(pem.clone()),
                },
            ),
        }
    }

    /// How long the duty to check a model lasts unless renewed (every third of it); a
    /// replica that stops is replaced within it. Give it less than the health interval,
    /// so that a dead checker is replaced within one interval. At least 30 ms.
    #[must_use]
    pub fn lease_ttl(mut self, ttl: Duration) -> Self {
        self.lease_ttl = ttl.max(Duration::from_millis(30));
        self
    }

    /// Names this replica: `name` and a random part of this process's, so that replicas
    /// given one name (a config file shared by every pod) still tell each other apart — a
    /// replica ignores what it hears under its own name.
    pub fn replica(mut self, name: impl Into<String>) -> Result<Self, ClusterError> {
        let name = name.into();
        if !hive_core::is_cluster_name(&name) {
            return Err(ClusterError::Replica(name));
        }
        let mut seed = wire_seed();
        self.replica = format!(
            "{name}-{:08x}",
            hive_core::splitmix64(&mut seed) & 0xFFFF_FFFF
        );
        Ok(self)
    }

    /// This replica's name.
    pub fn replica_name(&self) -> &str {
        &self.replica
    }

    /// The channel changes go on.
    fn channel(&self) -> String {
        format!("{}:changes", self.prefix)
    }

    /// The channel reloads are announced on.
    fn reload_channel(&self) -> String {
        format!("{}:reloads", self.prefix)
    }

    /// The key a model's hold is kept under while it lasts.
    fn hold_key(&self, model: &str) -> String {
        format!("{}:hold:{model}", self.prefix)
    }

    /// The set of the models with a hold in force (or lately).
    fn held_key(&self) -> String {
        format!("{}:held", self.prefix)
    }

    /// The set of the replicas' names (a name whose report expired is forgotten).
    fn replicas_key(&self) -> String {
        format!("{}:replicas", self.prefix)
    }

    /// The key of a replica's report.
    fn report_key(&self, replica: &str) -> String {
        format!("{}:replica:{replica}", self.prefix)
    }

    /// The key of the lease on a model's health checks (its value: the holder's name).
    fn lease_key(&self, model: &str) -> String {
        format!("{}:lease:{model}", self.prefix)
    }
}

/// A seed for the replica's name that differs between processes started together.
fn wire_seed() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
        ^ u64::from(std::process::id()) << 32
}

impl fmt::Debug for ClusterSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClusterSettings")
            .field("url", &"<redacted>")
            .field("prefix", &self.prefix)
            .field("replica", &self.replica)
            .field("lease_ttl", &self.lease_ttl)
            .field("root_certificates", &self.root_certificates.is_some())
            .finish()
    }
}

/// Which models' health checks are this replica's duty, as the last lease round found,
/// and until when that round's leases last (a round sent at `t` holds until `t` plus the
/// lease, less a margin: a replica whose renewals stall stops checking before another
/// takes over).
#[derive(Debug, Default)]
struct Leases(RwLock<LeaseRound>);

#[derive(Debug, Default)]
struct LeaseRound {
    held: HashMap<ModelId, bool>,
    /// `None`: no round yet since the link came up (every replica then checks itself).
    until: Option<Instant>,
}

impl Leases {
    fn set(&self, held: impl IntoIterator<Item = (ModelId, bool)>, until: Option<Instant>) {
        if let Ok(mut round) = self.0.write() {
            round.held.clear();
            round.held.extend(held);
            round.until = until;
        }
    }

    /// Whether this replica checks `model`: it holds its lease, or no round has settled
    /// who does (as alone).
    fn mine(&self, model: ModelId) -> bool {
        self.0.read().is_ok_and(|round| match round.until {
            None => true,
            Some(until) => Instant::now() < until && round.held.get(&model) == Some(&true),
        })
    }

    /// The models this replica checks, for its status.
    fn held(&self) -> usize {
        self.0
            .read()
            .map_or(0, |r| r.held.values().filter(|h| **h).count())
    }
}

/// What the link has done, for the dashboard and tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ClusterStatus {
    /// Whether the link to Redis is up now.
    pub connected: bool,
    /// Changes this replica published.
    pub published: u64,
    /// Changes of other replicas applied here.
    pub applied: u64,
    /// Messages not applied (this replica's own, malformed, unknown model, expired).
    pub skipped: u64,
    /// Changes dropped unsent (the link down or the queue full).
    pub dropped: u64,
    /// Times the link was (re)established.
    pub connects: u64,
    /// Models whose health checks are this replica's duty now.
    pub checking: usize,
}

#[derive(Debug)]
struct Counters {
    /// The link's state as last found: `None` before the first attempt ended.
    link: watch::Sender<Option<bool>>,
    connected: AtomicBool,
    published: AtomicU64,
    applied: AtomicU64,
    skipped: AtomicU64,
    dropped: AtomicU64,
    connects: AtomicU64,
}

impl Default for Counters {
    fn default() -> Self {
        Self {
            link: watch::channel(None).0,
            connected: AtomicBool::default(),
            published: AtomicU64::default(),
            applied: AtomicU64::default(),
            skipped: AtomicU64::default(),
            dropped: AtomicU64::default(),
            connects: AtomicU64::default(),
        }
    }
}

impl Counters {
    /// Notes whether the link is up, telling the watchers when that changed.
    fn set_link(&self, up: bool) {
        self.connected.store(up, Ordering::Relaxed);
        self.link.send_if_modified(|state| {
            let changed = *state != Some(up);
            *state = Some(up);
            changed
        });
    }

    fn status(&self, leases: &Leases) -> ClusterStatus {
        ClusterStatus {
            checking: leases.held(),
            connected: self.connected.load(Ordering::Relaxed),
            published: self.published.load(Ordering::Relaxed),
            applied: self.applied.load(Ordering::Relaxed),
            skipped: self.skipped.load(Ordering::Relaxed),
            dropped: self.dropped.load(Ordering::Relaxed),
            connects: self.connects.load(Ordering::Relaxed),
        }
    }
}

/// The local state the others' changes are applied to (swapped when a reload rebuilds it).
type Target = Arc<RwLock<Option<Arc<dyn ApplyShared>>>>;

/// The link's connection while it is up, for claims made outside the link's task.
type Connection = Arc<RwLock<Option<redis::aio::MultiplexedConnection>>>;

/// This replica's report (what it tells the cluster of its traffic), and every replica's
/// as last read: (replica, report).
#[derive(Debug, Default)]
struct Reports {
    own: RwLock<Option<String>>,
    all: RwLock<Vec<(String, String)>>,
}

/// This replica's link to the others. Publishing never blocks; dropping it (or
/// [`stop`](Self::stop)) ends the link.
pub struct Cluster {
    changes: mpsc::Sender<(Instant, SharedChange)>,
    /// Wakes the link to read the holds in force again (a target was attached).
    resync: Arc<tokio::sync::Notify>,
    reloads: broadcast::Sender<String>,
    target: Target,
    connection: Connection,
    reports: Arc<Reports>,
    prefix: String,
    counters: Arc<Counters>,
    leases: Arc<Leases>,
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
    replica: String,
}

impl Cluster {
    /// Starts the link (connecting in the background, and again whenever it drops) on the
    /// current tokio runtime.
    pub fn start(settings: ClusterSettings) -> Self {
        let (changes, queued) = mpsc::channel(QUEUE);
        let resync = Arc::new(tokio::sync::Notify::new());
        let (reloads, _) = broadcast::channel(16);
        let target: Target = Arc::default();
        let counters = Arc::new(Counters::default());
        let leases = Arc::new(Leases::default());
        let connection = Connection::default();
        let reports = Arc::new(Reports::default());
        let (stop, stopping) = watch::channel(false);
        let replica = settings.replica.clone();
        let prefix = settings.prefix.clone();
        let task = tokio::spawn(link::run(link::Link {
            reloads: reloads.clone(),
            connection: Arc::clone(&connection),
            reports: Arc::clone(&reports),
            settings,
            leases: Arc::clone(&leases),
            queued,
            resync: Arc::clone(&resync),
            target: Arc::clone(&target),
            counters: Arc::clone(&counters),
            stopping,
        }));
        Self {
            changes,
            resync,
            reloads,
            target,
            connection,
            reports,
            prefix,
            counters,
            leases,
            stop,
            task: Some(task),
            replica,
        }
    }

    /// Applies the other replicas' changes to `local` from now on (and tells them what it
    /// holds off, if the link is up, at the next reconnect otherwise).
    pub fn attach(&self, local: Arc<dyn ApplyShared>) {
        if let Ok(mut slot) = self.target.write() {
            *slot = Some(local);
        }
        // The holds read before there was a target were skipped: read them again.
        self.resync.notify_one();
    }

    /// What this replica tells the others of its traffic (a small JSON text, kept under
    /// `{prefix}:replica:{name}` and renewed every two seconds while it lasts; it expires
    /// six seconds after the replica stops renewing it).
    pub fn report(&self, text: String) {
        if let Ok(mut own) = self.reports.own.write() {
            *own = Some(text);
        }
    }

    /// Every live replica's report (this one's included), as last read (every two seconds;
    /// empty while the link is down).
    pub fn reports(&self) -> Vec<(String, String)> {
        self.reports
            .all
            .read()
            .map(|r| r.clone())
            .unwrap_or_default()
    }

    /// Tells the other replicas that this one reloaded its config (now `hash`), so that
    /// they read theirs again. Best effort: with the link down nothing is sent (the
    /// others' own file watches still see a change of their files).
    pub async fn announce_reload(&self, hash: &str) {
        let connection = self.connection.read().ok().and_then(|c| c.clone());
        let Some(mut connection) = connection else {
            return;
        };
        let text = serde_json::json!({ "v": 1, "replica": self.replica, "hash": hash }).to_string();
        let mut publish = redis::cmd("PUBLISH");
        publish.arg(format!("{}:reloads", self.prefix)).arg(text);
        let sent = publish.query_async::<i64>(&mut connection);
        if !matches!(
            tokio::time::timeout(Duration::from_secs(1), sent).await,
            Ok(Ok(_))
        ) {
            tracing::debug!("the reload was not announced to the cluster");
        }
    }

    /// The reloads other replicas announce (the config hash each reloaded to).
    pub fn reloads(&self) -> broadcast::Receiver<String> {
        self.reloads.subscribe()
    }

    /// The link's state, each time it changes: `Some(true)` once up, `Some(false)` once
    /// down (the first attempt that fails included), `None` before the first attempt ends.
    pub fn link_changes(&self) -> watch::Receiver<Option<bool>> {
        self.counters.link.subscribe()
    }

    /// What the link has done so far.
    pub fn status(&self) -> ClusterStatus {
        self.counters.status(&self.leases)
    }

    /// This replica's name in the cluster.
    pub fn replica(&self) -> &str {
        &self.replica
    }

    /// Ends the link without waiting for it, and lets go of the local state (what is
    /// queued is dropped: the others learn by themselves).
    pub fn close(&self) {
        let _ = self.stop.send(true);
        if let Ok(mut slot) = self.target.write() {
            *slot = None;
        }
    }

    /// Ends the link and waits for its task to end.
    pub async fn stop(mut self) {
        self.close();
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl ShareState for Cluster {
    fn publish(&self, change: SharedChange) {
        if self.changes.try_send((Instant::now(), change)).is_err() {
            self.counters.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

impl ProbeDuty for Cluster {
    /// Whether this replica holds the model's lease; with the link down, every replica
    /// checks every model itself, as alone.
    fn mine(&self, model: ModelId) -> bool {
        !self.counters.connected.load(Ordering::Relaxed) || self.leases.mine(model)
    }

    fn checked(&self, model: ModelId, ok: bool, latency: Duration, next: Duration) {
        if self.counters.connected.load(Ordering::Relaxed) {
            self.publish(SharedChange::Checked {
                model,
                ok,
                latency,
                next,
            });
        }
    }
}

impl ClaimOnce for Cluster {
    /// `SET {prefix}:claim:{key} {replica} NX PX ttl`: won when this replica set it. With
    /// the link down, or Redis slow to answer (1 s), the claim is won: a duplicate beats
    /// silence.
    fn claim(&self, key: String, ttl: Duration) -> Pin<Box<dyn Future<Output = bool> + Send + '_>> {
        Box::pin(async move {
            let connection = self.connection.read().ok().and_then(|c| c.clone());
            let Some(mut connection) = connection else {
                return true;
            };
            let ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
            let mut set = redis::cmd("SET");
            set.arg(format!("{}:claim:{key}", self.prefix))
                .arg(&self.replica)
                .arg("NX")
                .arg("PX")
                .arg(ms);
            let set = set.query_async::<Option<String>>(&mut connection);
            match tokio::time::timeout(Duration::from_secs(1), set).await {
                Ok(Ok(set)) => set.is_some(),
                Ok(Err(_)) | Err(_) => true,
            }
        })
    }

    fn release(&self, key: String) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(async move {
            let connection = self.connection.read().ok().and_then(|c| c.clone());
            let Some(mut connection) = connection else {
                return;
            };
            let mut release = redis::cmd("EVAL");
            release
                .arg(RELEASE_SCRIPT)
                .arg(1)
                .arg(format!("{}:claim:{key}", self.prefix))
                .arg(&self.replica);
            let released = release.query_async::<i64>(&mut connection);
            let _ = tokio::time::timeout(Duration::from_secs(1), released).await;
        })
    }
}

/// Deletes `KEYS[1]` if its value is `ARGV[1]` (a claim this replica holds).
const RELEASE_SCRIPT: &str =
    "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0";

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

impl fmt::Debug for Cluster {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cluster")
            .field("replica", &self.replica)
            .field("status", &self.status())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_url_and_its_password_never_show() {
        let settings = ClusterSettings::new("redis://:s3cret-pw@10.0.0.5:6379/0", "hive:prod")
            .unwrap()
            .replica("gw-a")
            .unwrap();
        let shown = format!("{settings:?}");
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(
            shown.contains("gw-a") && shown.contains("hive:prod"),
            "{shown}"
        );
        for url in ["http://user:s3cret-pw@host", "redis://:s3cret-pw@[::1"] {
            let error = ClusterSettings::new(url, "hive").unwrap_err().to_string();
            assert!(!error.contains("s3cret"), "{error}");
            assert!(error.starts_with("the Redis URL is not valid"), "{error}");
        }
        let error = ClusterSettings::new("redis://h", "has space").unwrap_err();
        assert!(matches!(error, ClusterError::Prefix(_)), "{error}");
        let error = ClusterSettings::new("redis://h", "hive")
            .unwrap()
            .replica("");
        assert!(matches!(error, Err(ClusterError::Replica(_))));
    }
}
