//! `resilience.yml`: server, admin, metrics, defaults, fallback, alerts, audit.

use std::net::SocketAddr;

use crate::{
    DiagnosticKind,
    read::{MODELS_KEYS, RESILIENCE_KEYS, alerts::read_alerts, misplaced, settings},
    schema::{
        AdminConfig, AlertsConfig, AuditConfig, ClusterConfig, DEFAULT_CLUSTER_PREFIX,
        DEFAULT_HISTORY_RETENTION, Defaults, FallbackConfig, HedgeDelay, HistoryConfig,
        ServerConfig, Strategy,
    },
    yaml::{Cx, Node, RateRange, Spot, Zero},
};

/// The largest request body limit accepted.
const MAX_BODY_LIMIT: u64 = 1 << 30;

/// What `resilience.yml` says.
pub(crate) struct Resilience {
    pub(crate) server: ServerConfig,
    pub(crate) admin: AdminConfig,
    pub(crate) metrics: bool,
    pub(crate) defaults: Defaults,
    pub(crate) fallback: FallbackConfig,
    pub(crate) alerts: AlertsConfig,
    pub(crate) audit: AuditConfig,
    pub(crate) history: HistoryConfig,
    pub(crate) cluster: Option<ClusterConfig>,
}

/// Reads `resilience.yml` (`None`: absent or empty, all defaults).
pub(crate) fn read_resilience(cx: &mut Cx<'_>, root: Option<&Node<'_, '_>>) -> Resilience {
    let mut out = Resilience {
        server: ServerConfig::default(),
        admin: AdminConfig::default(),
        metrics: true,
        defaults: Defaults::default(),
        fallback: FallbackConfig::default(),
        alerts: AlertsConfig::default(),
        audit: AuditConfig {
            written: Some("audit.jsonl".to_owned()),
            path: Some(cx.dir.join("audit.jsonl")),
        },
        history: HistoryConfig {
            written: Some("hive.db".to_owned()),
            path: Some(cx.dir.join("hive.db")),
            retention: DEFAULT_HISTORY_RETENTION,
        },
        cluster: None,
    };
    let Some(root) = root else {
        return out;
    };
    let mut keys = RESILIENCE_KEYS.to_vec();
    keys.extend(MODELS_KEYS);
    let Some(map) = cx.map(root, &keys) else {
        return out;
    };
    misplaced(cx, &map, &MODELS_KEYS, "models-resilience.yml");
    if let Some(n) = map.get("server") {
        server(cx, &n, &mut out.server);
    }
    if let Some(n) = map.get("admin") {
        admin(cx, &n, &mut out.admin);
    }
    if let Some(n) = map.get("metrics") {
        settings::set(&mut out.metrics, cx.bool(&n));
    }
    if let Some(n) = map.get("defaults") {
        defaults(cx, &n, &mut out.defaults);
    }
    if let Some(n) = map.get("fallback") {
        fallback(cx, &n, &mut out.fallback);
    }
    if let Some(n) = map.get("alerts") {
        out.alerts = read_alerts(cx, &n);
    }
    if let Some(n) = map.get("audit") {
        audit(cx, &n, &mut out.audit);
    }
    if let Some(n) = map.get("history") {
        history(cx, &n, &mut out.history);
    }
    if let Some(n) = map.get("cluster") {
        out.cluster = cluster(cx, &n);
    }
    out
}

/// A key prefix or replica name: 1 to 64 characters, no spaces or control characters.
fn plain_name(cx: &mut Cx<'_>, node: &Node<'_, '_>, what: &str) -> Option<String> {
    let text = cx.string(node)?;
    if hive_core::is_cluster_name(&text) {
        return Some(text);
    }
    cx.report(
        DiagnosticKind::InvalidValue,
        node,
        Spot::Value,
        format!("{what} must be 1 to 64 characters without spaces or any of * ? [ ] \\"),
        Some("for example `hive:prod`".to_owned()),
    );
    None
}

fn cluster(cx: &mut Cx<'_>, node: &Node<'_, '_>) -> Option<ClusterConfig> {
    let map = cx.map(node, &["redis", "prefix", "replica", "tls_ca"])?;
    let Some(redis_node) = map.get("redis") else {
        cx.report(
            DiagnosticKind::MissingKey,
            node,
            Spot::Key,
            "`cluster` needs `redis`: where the replicas share their state",
            Some("add `redis: { env: HIVE_REDIS_URL }`".to_owned()),
        );
        return None;
    };
    let redis = cx.secret(&redis_node).filter(|redis| {
        let known = ["redis://", "rediss://", "redis+unix://", "unix://"]
            .iter()
            .any(|scheme| redis.expose().starts_with(scheme));
        if !known {
            cx.report(
                DiagnosticKind::InvalidValue,
                &redis_node,
                Spot::Value,
                format!(
                    "the Redis URL from {} does not start with redis:// or rediss://",
                    redis.source()
                ),
                Some("redis://[user:password@]host:port[/db], or rediss:// for TLS".to_owned()),
            );
        }
        known
    });
    let prefix = match map.get("prefix") {
        Some(n) => plain_name(cx, &n, "the key prefix"),
        None => Some(DEFAULT_CLUSTER_PREFIX.to_owned()),
    };
    let replica = match map.get("replica") {
        Some(n) => plain_name(cx, &n, "the replica name").map(Some),
        None => Some(None),
    };
    let tls_ca = match map.get("tls_ca") {
        Some(n) => {
            let pem = cx.secret(&n);
            match pem {
                Some(pem) if pem.expose().contains("-----BEGIN CERTIFICATE-----") => {
                    Some(Some(pem))
                }
                Some(pem) => {
                    cx.report(
                        DiagnosticKind::InvalidValue,
                        &n,
                        Spot::Value,
                        format!(
                            "{} holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
                            pem.source()
                        ),
                        Some(
                            "the CA certificates of Redis's server certificate, in PEM".to_owned(),
                        ),
                    );
                    None
                }
                None => None,
            }
        }
        None => Some(None),
    };
    let (redis, prefix, replica, tls_ca) = (redis?, prefix?, replica?, tls_ca?);
    Some(ClusterConfig {
        redis,
        prefix,
        replica,
        tls_ca,
    })
}

fn server(cx: &mut Cx<'_>, node: &Node<'_, '_>, out: &mut ServerConfig) {
    let Some(map) = cx.map(
        node,
        &["listen", "body_limit", "shutdown_grace", "api_keys"],
    ) else {
        return;
    };
    if let Some(n) = map.get("listen")
        && let Some(text) = cx.string(&n)
    {
        match text.parse::<SocketAddr>() {
            Ok(addr) => out.listen = addr,
            Err(_) => cx.report(
                DiagnosticKind::InvalidValue,
                &n,
                Spot::Value,
                format!("`{text}` is not an address and port"),
                Some(
                    "write an IP address and a port: 127.0.0.1:8080, 0.0.0.0:8080 or \
                         [::]:8080"
                        .to_owned(),
                ),
            ),
        }
    }
    if let Some(n) = map.get("body_limit")
        && let Some(limit) = cx.size(&n)
    {
        if (1..=MAX_BODY_LIMIT).contains(&limit) {
            out.body_limit = limit;
        } else {
            cx.report(
                DiagnosticKind::OutOfRange,
                &n,
                Spot::Value,
                format!(
                    "{} is out of range: it must be above zero and at most 1GiB",
                    crate::ByteSize(limit)
                ),
                None,
            );
        }
    }
    if let Some(n) = map.get("shutdown_grace") {
        settings::set(&mut out.shutdown_grace, cx.duration(&n, Zero::Allowed));
    }
    if let Some(n) = map.get("api_keys")
        && let Some(items) = cx.list(&n)
    {
        out.api_keys = items.iter().filter_map(|item| cx.secret(item)).collect();
    }
}

fn admin(cx: &mut Cx<'_>, node: &Node<'_, '_>, out: &mut AdminConfig) {
    let Some(map) = cx.map(node, &["token", "read_token", "public_read"]) else {
        return;
    };
    if let Some(n) = map.get("token") {
        out.token = cx.secret(&n);
    }
    if let Some(n) = map.get("read_token") {
        out.read_token = cx.secret(&n);
    }
    if let Some(n) = map.get("public_read") {
        settings::set(&mut out.public_read, cx.bool(&n));
    }
}

fn defaults(cx: &mut Cx<'_>, node: &Node<'_, '_>, out: &mut Defaults) {
    let Some(map) = cx.map(node, &settings::SETTINGS_KEYS) else {
        return;
    };
    let base = out.settings.clone();
    out.settings = settings::model_settings(cx, &map, &base, Some(&mut out.request_timeout));
}

fn fallback(cx: &mut Cx<'_>, node: &Node<'_, '_>, out: &mut FallbackConfig) {
    let Some(map) = cx.map(node, &["strategy", "last_resort"]) else {
        return;
    };
    if let Some(n) = map.get("strategy") {
        settings::set(&mut out.strategy, strategy(cx, &n));
    }
    if let Some(n) = map.get("last_resort") {
        settings::set(&mut out.last_resort, cx.duration_or_off(&n, Zero::Refused));
    }
}

/// A strategy: `sequential`, `parallel`, `{ parallel: { first: 2 } }`, `{ hedged: { … } }`,
/// `weighted`.
pub(crate) fn strategy(cx: &mut Cx<'_>, node: &Node<'_, '_>) -> Option<Strategy> {
    let (name, settings) = cx.variant(
        node,
        "a strategy",
        &["sequential", "parallel", "hedged", "weighted"],
    )?;
    match (name.as_str(), settings) {
        ("parallel", None) => Some(Strategy::Parallel { first: None }),
        ("parallel", Some(settings)) => {
            let map = cx.map(&settings, &["first"])?;
            let first = match map.get("first") {
                Some(n) => Some(cx.u32(&n, 1, u32::MAX)?),
                None => None,
            };
            Some(Strategy::Parallel { first })
        }
        ("hedged", Some(settings)) => hedged(cx, &settings),
        ("hedged", None) => {
            cx.report(
                DiagnosticKind::MissingKey,
                node,
                Spot::Value,
                "`hedged` needs its delay",
                Some("write `{ hedged: { delay: 2s, max_hedges: 1 } }`".to_owned()),
            );
            None
        }
        (word, Some(settings)) => {
            settings::no_settings(cx, &settings, word);
            None
        }
        ("sequential", None) => Some(Strategy::Sequential),
        _ => Some(Strategy::Weighted),
    }
}

fn hedged(cx: &mut Cx<'_>, node: &Node<'_, '_>) -> Option<Strategy> {
    let map = cx.map(node, &["delay", "max_hedges", "budget"])?;
    let delay = cx
        .required(&map, "delay", Some("such as `delay: 2s`".to_owned()))
        .and_then(|n| hedge_delay(cx, &n));
    let max_hedges = match map.get("max_hedges") {
        Some(n) => cx.u32(&n, 1, u32::MAX),
        None => Some(1),
    };
    let budget = match map.get("budget") {
        Some(n) => settings::budget_or_off(cx, &n, None),
        None => Some(None),
    };
    Some(Strategy::Hedged {
        delay: delay?,
        max_hedges: max_hedges?,
        budget: budget?,
    })
}

fn hedge_delay(cx: &mut Cx<'_>, node: &Node<'_, '_>) -> Option<HedgeDelay> {
    if !matches!(node.yaml.data, saphyr::YamlData::Mapping(_)) {
        return cx.duration(node, Zero::Allowed).map(HedgeDelay::Fixed);
    }
    let map = cx.map(node, &["percentile", "min_samples", "otherwise"])?;
    let percentile = cx
        .required(
            &map,
            "percentile",
            Some("such as `percentile: 95%`".to_owned()),
        )
        .and_then(|n| cx.rate(&n, RateRange::Between));
    let min_samples = match map.get("min_samples") {
        Some(n) => cx.int(&n, 1, u64::MAX),
        None => Some(20),
    };
    let otherwise = cx
        .required(
            &map,
            "otherwise",
            Some("the delay until the percentile is known, such as `otherwise: 2s`".to_owned()),
        )
        .and_then(|n| cx.duration(&n, Zero::Allowed));
    Some(HedgeDelay::Percentile {
        percentile: percentile?,
        min_samples: min_samples?,
        otherwise: otherwise?,
    })
}

fn history(cx: &mut Cx<'_>, node: &Node<'_, '_>, out: &mut HistoryConfig) {
    let Some(map) = cx.map(node, &["path", "retention"]) else {
        return;
    };
    if let Some(n) = map.get("path")
        && let Some(path) = cx.name(&n)
    {
        if path == "off" {
            out.written = None;
            out.path = None;
        } else {
            out.path = Some(cx.dir.join(&path));
            out.written = Some(path);
        }
    }
    if let Some(n) = map.get("retention") {
        settings::set(&mut out.retention, cx.duration(&n, Zero::Refused));
    }
}

fn audit(cx: &mut Cx<'_>, node: &Node<'_, '_>, out: &mut AuditConfig) {
    let Some(map) = cx.map(node, &["path"]) else {
        return;
    };
    if let Some(n) = map.get("path")
        && let Some(path) = cx.name(&n)
    {
        if path == "off" {
            *out = AuditConfig {
                written: None,
                path: None,
            };
        } else {
            *out = AuditConfig {
                path: Some(cx.dir.join(&path)),
                written: Some(path),
            };
        }
    }
}
