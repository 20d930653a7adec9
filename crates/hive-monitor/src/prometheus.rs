//! The Prometheus exporter: installs a recorder for the `metrics` facade and serves its text
//! format, as an axum route or on a port of its own.

use std::{fmt, io, time::Duration};

use axum::{Router, http::header, response::IntoResponse, routing::get};
use metrics_exporter_prometheus::{BuildError, Matcher, PrometheusBuilder, PrometheusHandle};
use tokio::net::TcpListener;

/// Histogram buckets of every `*_seconds` metric: from 5 ms (a cached answer) to 5 minutes
/// (a long generation), dense where model calls fall.
pub const SECONDS_BUCKETS: [f64; 16] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0,
];

/// Why the exporter could not be installed.
#[derive(Debug, thiserror::Error)]
#[error("could not install the Prometheus recorder: {0}")]
pub struct ExporterError(#[from] BuildError);

/// The installed Prometheus recorder: render it, mount it, or serve it. Cheap to clone.
#[derive(Clone)]
pub struct PrometheusExporter {
    handle: PrometheusHandle,
}

/// Installs the Prometheus recorder as the process's `metrics` recorder (once per process:
/// a second install is an error), with [`SECONDS_BUCKETS`] for every `*_seconds`
/// histogram. Install it before building the layers: they register their handles with the
/// recorder installed when they are built. Called within a tokio runtime, it also starts
/// the recorder's upkeep (draining histogram samples every 5 s between scrapes).
pub fn install_prometheus() -> Result<PrometheusExporter, ExporterError> {
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &SECONDS_BUCKETS)?
        .install_recorder()?;
    if let Ok(runtime) = tokio::runtime::Handle::try_current() {
        let upkeep = handle.clone();
        runtime.spawn(async move {
            let mut every = tokio::time::interval(Duration::from_secs(5));
            loop {
                every.tick().await;
                upkeep.run_upkeep();
            }
        });
    }
    Ok(PrometheusExporter { handle })
}

impl PrometheusExporter {
    /// The metrics in Prometheus's text format, as a scrape sees them.
    pub fn render(&self) -> String {
        self.handle.render()
    }

    /// An axum router serving the metrics at `GET /metrics`: merge or nest it into an app.
    pub fn router(&self) -> Router {
        let handle = self.handle.clone();
        Router::new().route(
            "/metrics",
            get(move || {
                let handle = handle.clone();
                async move {
                    (
                        [(
                            header::CONTENT_TYPE,
                            "text/plain; version=0.0.4; charset=utf-8",
                        )],
                        handle.render(),
                    )
                        .into_response()
                }
            }),
        )
    }

    /// Serves [`router`](Self::router) on `listener` (a port of its own) until the task is
    /// dropped or the listener fails.
    pub async fn serve(self, listener: TcpListener) -> io::Result<()> {
        axum::serve(listener, self.router()).await
    }

    /// The underlying handle.
    pub fn handle(&self) -> &PrometheusHandle {
        &self.handle
    }
}

impl fmt::Debug for PrometheusExporter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PrometheusExporter").finish_non_exhaustive()
    }
}
