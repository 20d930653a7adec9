//! Reloads on a change of the config's files (watched with `notify`) and on SIGHUP.

use std::{
    collections::HashSet,
    path::{Path, PathBuf},
    sync::{Arc, RwLock},
    time::Duration,
};

use notify::{EventKind, RecursiveMode, Watcher};
use tokio::sync::mpsc;

use crate::server::Server;

/// Changes closer together than this are read as one.
pub(crate) const SETTLE: Duration = Duration::from_millis(250);

/// A file's identity for comparison with an event's path: its directory resolved (the
/// file itself may not exist yet), and its name.
fn key(path: &Path) -> Option<PathBuf> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    Some(dir.canonicalize().ok()?.join(path.file_name()?))
}

/// Watches the directories of `files` (editors replace a file by renaming another over it:
/// a watch on the file itself would be lost) and says when one of `files` changes.
struct FileWatch {
    watcher: notify::RecommendedWatcher,
    files: Arc<RwLock<HashSet<PathBuf>>>,
    dirs: HashSet<PathBuf>,
}

impl FileWatch {
    fn new(changed: mpsc::Sender<()>) -> notify::Result<Self> {
        let files: Arc<RwLock<HashSet<PathBuf>>> = Arc::default();
        let relevant = Arc::clone(&files);
        let watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
            let Ok(event) = event else { return };
            if matches!(event.kind, EventKind::Access(_)) {
                return;
            }
            let files = relevant
                .read()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            if event.paths.iter().any(|p| files.contains(p)) {
                let _ = changed.try_send(());
            }
        })?;
        Ok(Self {
            watcher,
            files,
            dirs: HashSet::new(),
        })
    }

    /// Watches exactly `paths` from now on.
    fn set(&mut self, paths: &[PathBuf]) {
        let keys: HashSet<PathBuf> = paths.iter().filter_map(|p| key(p)).collect();
        let dirs: HashSet<PathBuf> = keys
            .iter()
            .filter_map(|k| k.parent().map(Path::to_path_buf))
            .collect();
        for gone in self.dirs.difference(&dirs) {
            let _ = self.watcher.unwatch(gone);
        }
        for new in dirs.difference(&self.dirs) {
            if let Err(e) = self.watcher.watch(new, RecursiveMode::NonRecursive) {
                tracing::warn!(dir = %new.display(), error = %e, "config changes here are not watched");
            }
        }
        self.dirs = dirs;
        *self
            .files
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = keys;
    }
}

/// Reloads `server` on file changes and SIGHUP until it shuts down.
pub(crate) async fn watch(server: Arc<Server>) {
    let mut stopping = server.stopping();
    let (changed, mut changes) = mpsc::channel(1);
    let mut files = match server.watch_files() {
        Some(paths) => match FileWatch::new(changed) {
            Ok(mut watch) => {
                watch.set(&paths);
                Some(watch)
            }
            Err(e) => {
                tracing::warn!(error = %e, "config files are not watched; SIGHUP still reloads");
                None
            }
        },
        None => None,
    };
    let mut hangup = hangups();
    let mut cluster = server.cluster_reloads();
    loop {
        let actor = tokio::select! {
            _ = stopping.changed() => return,
            Some(()) = changes.recv() => {
                // Editors write in steps: wait for the files to settle, then read once.
                tokio::time::sleep(SETTLE).await;
                while changes.try_recv().is_ok() {}
                "file-watch"
            }
            Some(()) = next_hangup(&mut hangup) => "sighup",
            Some(()) = next_cluster_reload(&mut cluster) => crate::cluster::CLUSTER_ACTOR,
        };
        let _ = server.reload(actor).await;
        if let (Some(watch), Some(paths)) = (files.as_mut(), server.watch_files()) {
            watch.set(&paths);
        }
    }
}

/// The next reload another replica announced (`None`: never, alone).
async fn next_cluster_reload(
    reloads: &mut Option<tokio::sync::broadcast::Receiver<String>>,
) -> Option<()> {
    let Some(reloads) = reloads else {
        return std::future::pending().await;
    };
    match reloads.recv().await {
        // Several announced while a reload ran (lagged): one more reload reads them all.
        Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => Some(()),
        Err(tokio::sync::broadcast::error::RecvError::Closed) => std::future::pending().await,
    }
}

#[cfg(unix)]
type Hangups = Option<tokio::signal::unix::Signal>;
#[cfg(not(unix))]
type Hangups = ();

#[cfg(unix)]
fn hangups() -> Hangups {
    use tokio::signal::unix::{SignalKind, signal};
    signal(SignalKind::hangup())
        .inspect_err(|e| tracing::warn!(error = %e, "SIGHUP does not reload"))
        .ok()
}

#[cfg(not(unix))]
fn hangups() -> Hangups {}

#[cfg(unix)]
async fn next_hangup(hangups: &mut Hangups) -> Option<()> {
    match hangups {
        Some(signal) => signal.recv().await,
        None => std::future::pending().await,
    }
}

#[cfg(not(unix))]
async fn next_hangup(_: &mut Hangups) -> Option<()> {
    std::future::pending().await
}
