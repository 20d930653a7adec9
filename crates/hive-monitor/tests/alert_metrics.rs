//! The alert counters through the `metrics` facade, rendered by the Prometheus recorder and
//! read back: sent and failed by channel and rule, dropped by channel (paused time).

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use hive_core::{FailureClass, ModelId, Outcome};
use hive_monitor::{
    Monitor, MonitorConfig,
    alert::{
        AlertManager, Channel, Condition, DeliveryError, DeliveryFuture, Notification, Notifier,
        RateLimit, Rule,
    },
};
use metrics_exporter_prometheus::PrometheusBuilder;

/// A receiver that takes every notification, or refuses every one for good.
#[derive(Debug)]
struct Fixed(bool);

impl Notifier for Fixed {
    fn kind(&self) -> &'static str {
        "fixed"
    }

    fn deliver<'a>(&'a self, _: &'a Notification) -> DeliveryFuture<'a> {
        Box::pin(std::future::ready(if self.0 {
            Ok(())
        } else {
            Err(DeliveryError::Status {
                status: 400,
                retry_after: None,
            })
        }))
    }
}

/// The value of the sample `name{labels}` in a Prometheus text rendering.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
}

#[tokio::test(start_paused = true)]
async fn sent_failed_and_dropped_are_counted_by_channel_and_rule() {
    let prometheus = PrometheusBuilder::new().install_recorder().unwrap();
    let monitor = Monitor::start(MonitorConfig::default());
    let manager = AlertManager::builder()
        .channel("good", Channel::new(Fixed(true)).rate_limit(None))
        .channel("bad", Channel::new(Fixed(false)).rate_limit(None))
        .channel(
            "narrow",
            Channel::new(Fixed(true)).rate_limit(Some(RateLimit {
                max: 1,
                per: Duration::from_secs(3600),
            })),
        )
        .rule(
            Rule::new("down", Condition::ConsecutiveFailures { at_least: 1 })
                .notify(["good", "bad", "narrow"]),
        )
        .rule(
            Rule::new(
                "really_down",
                Condition::ConsecutiveFailures { at_least: 2 },
            )
            .notify(["narrow"]),
        )
        .start(&monitor)
        .unwrap();
    monitor.model(ModelId::new("m")).record(
        &Outcome::failure(FailureClass::Timeout),
        Duration::from_secs(1),
    );
    monitor.model(ModelId::new("m")).record(
        &Outcome::failure(FailureClass::Timeout),
        Duration::from_secs(1),
    );
    // Fired at 0 s, flushed at 30 s.
    tokio::time::sleep(Duration::from_secs(31)).await;
    let stats = manager.stop().await;
    assert_eq!(
        (
            stats["good"].sent,
            stats["bad"].failed,
            stats["narrow"].dropped
        ),
        (1, 1, 1)
    );
    let text = prometheus.render();
    let value = |series: &str| sample(&text, series).unwrap_or_else(|| panic!("{series}\n{text}"));
    assert_eq!(
        value("hive_alerts_sent_total{channel=\"good\",rule=\"down\"}"),
        1.0
    );
    assert_eq!(
        value("hive_alerts_sent_total{channel=\"narrow\",rule=\"down\"}"),
        1.0
    );
    assert_eq!(
        value("hive_alerts_failed_total{channel=\"bad\",rule=\"down\"}"),
        1.0
    );
    assert_eq!(value("hive_alerts_dropped_total{channel=\"narrow\"}"), 1.0);
    assert_eq!(
        sample(&text, "hive_alerts_failed_total{channel=\"good\""),
        None
    );
}
