//! Serving on one single-threaded runtime per core, Envoy's threading model: each worker
//! has its own listener on the gateway's address (`SO_REUSEPORT`: the kernel spreads the
//! connections), its own connections to the providers ([`hive_core::worker`]), and runs
//! every request it accepts, with its upstream call, on its own thread. No wake-up crosses
//! cores on a request's path; breakers, health and statistics stay shared (atomics).

use std::{io, net::SocketAddr};

use axum::{Router, extract::connect_info::IntoMakeServiceWithConnectInfo};
use tokio::{
    net::{TcpListener, TcpSocket},
    sync::{oneshot, watch},
    task::JoinHandle,
};

/// The app every worker serves.
pub(crate) type App = IntoMakeServiceWithConnectInfo<Router, SocketAddr>;

/// Pending connections a listener keeps before accepting them.
const BACKLOG: u32 = 1024;

/// How many workers `--workers auto` means: one per core the process may use.
pub fn per_core() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
}

/// `count` listeners on `addr` (on one free port when `addr`'s is 0), each to be served by
/// one worker.
///
/// The address is first bound alone, without `SO_REUSEPORT`: a port another process holds
/// (a second gateway started by mistake included, which would otherwise share it silently)
/// is refused with `AddrInUse`.
pub(crate) fn bind(addr: SocketAddr, count: usize) -> io::Result<Vec<std::net::TcpListener>> {
    let mut addr = std::net::TcpListener::bind(addr)?.local_addr()?;
    let mut listeners = Vec::with_capacity(count);
    for _ in 0..count.max(1) {
        let socket = if addr.is_ipv4() {
            TcpSocket::new_v4()?
        } else {
            TcpSocket::new_v6()?
        };
        socket.set_reuseaddr(true)?;
        #[cfg(unix)]
        socket.set_reuseport(true)?;
        socket.bind(addr)?;
        let listener = socket.listen(BACKLOG)?;
        addr = listener.local_addr()?;
        listeners.push(listener.into_std()?);
        if cfg!(not(unix)) {
            break; // one listener per address without SO_REUSEPORT
        }
    }
    Ok(listeners)
}

/// Serves `app` on one thread per listener until `stopping` turns true (each worker then
/// ends gracefully, as `axum::serve` does). The handle ends when every worker has; aborting
/// it drops the workers' remaining connections.
pub(crate) fn serve(
    listeners: Vec<std::net::TcpListener>,
    app: App,
    stopping: &watch::Receiver<bool>,
) -> io::Result<JoinHandle<io::Result<()>>> {
    // Dropped with the returned task (aborted at the end of a shutdown's grace): the
    // workers stop waiting for their connections.
    let (kill, killed) = watch::channel(());
    let mut ended = Vec::with_capacity(listeners.len());
    for (index, listener) in listeners.into_iter().enumerate() {
        let (done, end) = oneshot::channel();
        let worker = Worker {
            index,
            listener,
            app: app.clone(),
            stopping: stopping.clone(),
            killed: killed.clone(),
        };
        std::thread::Builder::new()
            .name(format!("hive-worker-{index}"))
            .spawn(move || {
                let _ = done.send(worker.run());
            })?;
        ended.push(end);
    }
    Ok(tokio::spawn(async move {
        let _kill = kill;
        let mut result = Ok(());
        for end in ended {
            let served = end
                .await
                .unwrap_or_else(|_| Err(io::Error::other("a worker thread panicked")));
            result = result.and(served);
        }
        result
    }))
}

/// One worker: a listener and what it serves.
struct Worker {
    index: usize,
    listener: std::net::TcpListener,
    app: App,
    stopping: watch::Receiver<bool>,
    killed: watch::Receiver<()>,
}

impl Worker {
    /// Runs the worker's runtime until its listener is served out.
    fn run(self) -> io::Result<()> {
        hive_core::worker::enter(self.index);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let Self {
            listener,
            app,
            mut stopping,
            mut killed,
            ..
        } = self;
        runtime.block_on(async move {
            let listener = TcpListener::from_std(listener)?;
            let listener = crate::server::no_delay(listener);
            let served = axum::serve(listener, app).with_graceful_shutdown(async move {
                let _ = stopping.wait_for(|stop| *stop).await;
            });
            tokio::select! {
                served = served => served,
                _ = killed.changed() => Ok(()),
            }
        })
    }
}
