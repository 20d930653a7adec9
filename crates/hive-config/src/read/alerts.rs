//! `alerts`: channels by name, rules over them, Alertmanager's timing.

use std::collections::BTreeMap;

use crate::{
    DiagnosticKind,
    read::{check_url, settings},
    schema::{
        AlertWindow, AlertsConfig, ChannelConfig, Condition, EmailConfig, EscalationConfig,
        LatencyPercentile, RuleConfig, Severity, SmtpSecurity,
    },
    yaml::{Cx, Map, Node, RateRange, Spot, Zero, one_of, suggest},
};

/// The shortest webhook signing key (hive-monitor's).
const MIN_SIGNING_KEY: usize = 16;

const SEVERITIES: [(&str, Severity); 3] = [
    ("info", Severity::Info),
    ("warning", Severity::Warning),
    ("critical", Severity::Critical),
];

const WINDOWS: [(&str, AlertWindow); 3] = [
    ("1m", AlertWindow::LastMinute),
    ("5m", AlertWindow::Last5Minutes),
    ("1h", AlertWindow::LastHour),
];

pub(crate) fn read_alerts(cx: &mut Cx<'_>, node: &Node<'_, '_>) -> AlertsConfig {
    let mut out = AlertsConfig::default();
    let Some(map) = cx.map(
        node,
        &[
            "channels",
            "rules",
            "group_wait",
            "group_interval",
            "repeat_interval",
            "evaluation_interval",
            "dashboard_url",
        ],
    ) else {
        return out;
    };
    let mut names: Vec<String> = out.channels.keys().cloned().collect();
    if let Some(n) = map.get("channels") {
        (out.channels, names) = channels(cx, &n);
    }
    match map.get("rules") {
        Some(n) => out.rules = rules(cx, &n, &names),
        None if names.is_empty() => {
            if let Some(n) = map.get("channels") {
                cx.report(
                    DiagnosticKind::Conflict,
                    &n,
                    Spot::Value,
                    "no channel for the default rules to notify",
                    Some(
                        "add a channel (`log: { kind: log }` writes alerts to the log), or \
                         write `rules`"
                            .to_owned(),
                    ),
                );
            }
            out.rules = Vec::new();
        }
        None => out.rules = AlertsConfig::default_rules(&names),
    }
    if let Some(n) = map.get("group_wait") {
        settings::set(&mut out.group_wait, cx.duration(&n, Zero::Allowed));
    }
    for (key, slot) in [
        ("group_interval", &mut out.group_interval),
        ("repeat_interval", &mut out.repeat_interval),
        ("evaluation_interval", &mut out.evaluation_interval),
    ] {
        if let Some(n) = map.get(key) {
            settings::set(slot, cx.duration(&n, Zero::Refused));
        }
    }
    if let Some(n) = map.get("dashboard_url")
        && let Some(url) = cx.name(&n)
        && check_url(cx, &n, &url, None)
    {
        out.dashboard_url = Some(url);
    }
    out
}

/// The channels read whole, and the names of all (a rule naming a channel whose settings
/// are wrong is not reported again).
fn channels(
    cx: &mut Cx<'_>,
    node: &Node<'_, '_>,
) -> (BTreeMap<String, ChannelConfig>, Vec<String>) {
    let mut out = BTreeMap::new();
    let mut names = Vec::new();
    let Some(entries) = cx.entries(node) else {
        return (out, names);
    };
    for (name, node) in entries {
        if name.trim().is_empty() {
            cx.report(
                DiagnosticKind::InvalidValue,
                &node,
                Spot::Key,
                "a channel needs a name",
                None,
            );
            continue;
        }
        names.push(name.clone());
        if let Some(channel) = channel(cx, &node) {
            out.insert(name, channel);
        }
    }
    (out, names)
}

fn channel(cx: &mut Cx<'_>, node: &Node<'_, '_>) -> Option<ChannelConfig> {
    const KINDS: [&str; 4] = ["slack", "email", "webhook", "log"];
    // The kind says which keys are valid: read it first.
    let Some(kind_node) = node.peek("kind") else {
        let map = cx.map(
            node,
            &[
                "kind",
                "webhook",
                "url",
                "signing_key",
                "host",
                "port",
                "security",
                "username",
                "password",
                "from",
                "to",
                "timeout",
            ],
        )?;
        cx.missing(
            &map,
            "kind",
            Some(format!("the kinds are {}", one_of(&KINDS))),
        );
        return None;
    };
    let kind = cx.keyword(&kind_node, "a channel kind", &KINDS.map(|k| (k, k)))?;
    match kind {
        "slack" => {
            let map = cx.map(node, &["kind", "webhook"])?;
            let webhook = secret_url(cx, &map, "webhook")?;
            Some(ChannelConfig::Slack { webhook })
        }
        "webhook" => {
            let map = cx.map(node, &["kind", "url", "signing_key"])?;
            let url = secret_url(cx, &map, "url");
            let signing_key = match map.get("signing_key") {
                Some(n) => {
                    let key = cx.secret(&n)?;
                    if key.expose().len() < MIN_SIGNING_KEY {
                        cx.report(
                            DiagnosticKind::OutOfRange,
                            &n,
                            Spot::Value,
                            format!(
                                "the signing key from {key} is shorter than {MIN_SIGNING_KEY} bytes"
                            ),
                            Some("use 32 random bytes, e.g. `openssl rand -hex 32`".to_owned()),
                        );
                        return None;
                    }
                    Some(key)
                }
                None => None,
            };
            Some(ChannelConfig::Webhook {
                url: url?,
                signing_key,
            })
        }
        "email" => email(cx, node).map(ChannelConfig::Email),
        _ => {
            cx.map(node, &["kind"])?;
            Some(ChannelConfig::Log)
        }
    }
}

/// A required secret that must be a URL.
fn secret_url(cx: &mut Cx<'_>, map: &Map<'_, '_>, key: &str) -> Option<crate::Secret> {
    let node = cx.required(map, key, Some(format!("such as `{key}: {{ env: NAME }}`")))?;
    let secret = cx.secret(&node)?;
    check_url(cx, &node, secret.expose(), Some(&secret)).then_some(secret)
}

fn email(cx: &mut Cx<'_>, node: &Node<'_, '_>) -> Option<EmailConfig> {
    let map = cx.map(
        node,
        &[
            "kind", "host", "port", "security", "username", "password", "from", "to", "timeout",
        ],
    )?;
    let host = cx
        .required(
            &map,
            "host",
            Some("the SMTP server, such as smtp.example.com".to_owned()),
        )
        .and_then(|n| cx.name(&n));
    let port = match map.get("port") {
        Some(n) => cx.int(&n, 1, 65_535).map(|p| u16::try_from(p).ok()),
        None => Some(None),
    };
    let security = match map.get("security") {
        Some(n) => cx.keyword(
            &n,
            "an SMTP security",
            &[
                ("implicit_tls", SmtpSecurity::ImplicitTls),
                ("starttls", SmtpSecurity::StartTls),
                ("plain", SmtpSecurity::Plain),
            ],
        ),
        None => Some(SmtpSecurity::StartTls),
    };
    let username = map.get("username").and_then(|n| cx.name(&n));
    let password = map.get("password").and_then(|n| cx.secret(&n));
    let credentials_ok = match (map.get("username"), map.get("password")) {
        (Some(_), None) | (None, Some(_)) => {
            let (given, other) = if map.has("username") {
                ("username", "password")
            } else {
                ("password", "username")
            };
            if let Some(n) = map.get(given) {
                cx.report(
                    DiagnosticKind::Conflict,
                    &n,
                    Spot::Key,
                    format!("a `{given}` without a `{other}`"),
                    Some("give both, or neither for a relay that needs no login".to_owned()),
                );
            }
            false
        }
        _ => true,
    };
    let from = cx
        .required(
            &map,
            "from",
            Some("such as `from: \"Hive alerts <alerts@example.com>\"`".to_owned()),
        )
        .and_then(|n| {
            let text = cx.name(&n)?;
            mailbox(cx, &n, &text).then_some(text)
        });
    let to = cx
        .required(
            &map,
            "to",
            Some("a list of recipients, such as `to: [ops@example.com]`".to_owned()),
        )
        .and_then(|n| {
            let list = cx.list(&n)?;
            if list.is_empty() {
                cx.report(
                    DiagnosticKind::InvalidValue,
                    &n,
                    Spot::Value,
                    "an email channel needs at least one recipient",
                    None,
                );
                return None;
            }
            let mut out = Vec::new();
            for item in &list {
                let text = cx.name(item)?;
                if mailbox(cx, item, &text) {
                    out.push(text);
                }
            }
            (out.len() == list.len()).then_some(out)
        });
    let timeout = match map.get("timeout") {
        Some(n) => cx.duration(&n, Zero::Refused),
        None => Some(std::time::Duration::from_secs(10)),
    };
    if !credentials_ok {
        return None;
    }
    Some(EmailConfig {
        host: host?,
        port: port?,
        security: security?,
        username,
        password,
        from: from?,
        to: to?,
        timeout: timeout?,
    })
}

/// `a@b.c` or `Name <a@b.c>`; reports and answers `false` otherwise.
fn mailbox(cx: &mut Cx<'_>, node: &Node<'_, '_>, text: &str) -> bool {
    let address = match (text.rfind('<'), text.strip_suffix('>')) {
        (Some(open), Some(inner)) => &inner[open + 1..],
        _ => text,
    };
    let valid = match address.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && !domain.is_empty()
                && !domain.contains('@')
                && !address
                    .chars()
                    .any(|c| c.is_whitespace() || c == '<' || c == '>')
        }
        None => false,
    };
    if !valid {
        cx.report(
            DiagnosticKind::InvalidValue,
            node,
            Spot::Value,
            format!("`{text}` is not an email address"),
            Some("write `ops@example.com` or `Ops <ops@example.com>`".to_owned()),
        );
    }
    valid
}

fn rules(cx: &mut Cx<'_>, node: &Node<'_, '_>, channels: &[String]) -> Vec<RuleConfig> {
    let mut out: Vec<RuleConfig> = Vec::new();
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let Some(items) = cx.list(node) else {
        return out;
    };
    for item in &items {
        let Some(map) = cx.map(
            item,
            &["name", "condition", "severity", "notify", "escalate"],
        ) else {
            continue;
        };
        let name = cx
            .required(
                &map,
                "name",
                Some("a unique name, such as `name: model_down`".to_owned()),
            )
            .and_then(|n| {
                let name = cx.name(&n)?;
                if let Some(line) = seen.get(&name) {
                    cx.report(
                        DiagnosticKind::Duplicate,
                        &n,
                        Spot::Value,
                        format!("a second rule named `{name}`"),
                        Some(format!(
                            "the first is at line {line}; rule names are unique"
                        )),
                    );
                    return None;
                }
                seen.insert(name.clone(), n.line());
                Some(name)
            });
        let condition = cx
            .required(
                &map,
                "condition",
                Some("such as `condition: { consecutive_failures: { at_least: 3 } }`".to_owned()),
            )
            .and_then(|n| condition(cx, &n));
        let severity = match map.get("severity") {
            Some(n) => cx.keyword(&n, "a severity", &SEVERITIES),
            None => Some(Severity::Warning),
        };
        let notify = cx
            .required(
                &map,
                "notify",
                Some("the channels to tell, such as `notify: [slack]`".to_owned()),
            )
            .and_then(|n| {
                let list = channel_refs(cx, &n, channels)?;
                if list.is_empty() {
                    cx.report(
                        DiagnosticKind::InvalidValue,
                        &n,
                        Spot::Value,
                        "a rule must notify at least one channel",
                        None,
                    );
                    return None;
                }
                Some(list)
            });
        let escalate = match map.get("escalate") {
            Some(n) => escalation(cx, &n, channels).map(Some),
            None => Some(None),
        };
        if let (Some(name), Some(condition), Some(severity), Some(notify), Some(escalate)) =
            (name, condition, severity, notify, escalate)
        {
            out.push(RuleConfig {
                name,
                condition,
                severity,
                notify,
                escalate,
            });
        }
    }
    out
}

/// A list of channel names, each defined.
fn channel_refs(cx: &mut Cx<'_>, node: &Node<'_, '_>, channels: &[String]) -> Option<Vec<String>> {
    let items = cx.list(node)?;
    let options: Vec<&str> = channels.iter().map(String::as_str).collect();
    let mut out = Vec::new();
    let mut ok = true;
    for item in &items {
        let Some(name) = cx.name(item) else {
            ok = false;
            continue;
        };
        if out.contains(&name) {
            cx.report(
                DiagnosticKind::Duplicate,
                item,
                Spot::Value,
                format!("`{name}` is listed twice"),
                None,
            );
            continue;
        }
        if !channels.contains(&name) {
            let help = match (suggest(&name, &options), options.is_empty()) {
                (Some(close), _) => format!("did you mean `{close}`?"),
                (None, true) => "no channel is defined: add it under `alerts.channels`".to_owned(),
                (None, false) => format!("the channels are {}", one_of(&options)),
            };
            cx.report(
                DiagnosticKind::UnknownReference,
                item,
                Spot::Value,
                format!("no channel named `{name}`"),
                Some(help),
            );
            ok = false;
            continue;
        }
        out.push(name);
    }
    ok.then_some(out)
}

fn escalation(
    cx: &mut Cx<'_>,
    node: &Node<'_, '_>,
    channels: &[String],
) -> Option<EscalationConfig> {
    let map = cx.map(node, &["after", "severity", "notify"])?;
    let after = match map.get("after") {
        Some(n) => cx.duration(&n, Zero::Refused),
        None => Some(std::time::Duration::from_secs(5 * 60)),
    };
    let severity = match map.get("severity") {
        Some(n) => cx.keyword(&n, "a severity", &SEVERITIES),
        None => Some(Severity::Critical),
    };
    let notify = match map.get("notify") {
        Some(n) => channel_refs(cx, &n, channels),
        None => Some(Vec::new()),
    };
    Some(EscalationConfig {
        after: after?,
        severity: severity?,
        notify: notify?,
    })
}

fn condition(cx: &mut Cx<'_>, node: &Node<'_, '_>) -> Option<Condition> {
    const KINDS: [&str; 11] = [
        "consecutive_failures",
        "failure_rate",
        "breaker_open",
        "breaker_stuck_open",
        "route_down",
        "config_rejected",
        "cluster_link_down",
        "identity_mismatch",
        "credentials_rejected",
        "latency",
        "availability",
    ];
    let (kind, settings) = cx.variant(node, "a condition", &KINDS)?;
    let needs = |cx: &mut Cx<'_>, example: &str| {
        cx.report(
            DiagnosticKind::MissingKey,
            node,
            Spot::Value,
            format!("`{kind}` needs settings"),
            Some(format!("write `{{ {kind}: {example} }}`")),
        );
        None
    };
    let Some(settings) = settings else {
        return match kind.as_str() {
            "breaker_open" => Some(Condition::BreakerOpen),
            "route_down" => Some(Condition::RouteDown),
            "config_rejected" => Some(Condition::ConfigRejected),
            "cluster_link_down" => Some(Condition::ClusterLinkDown),
            "identity_mismatch" => Some(Condition::IdentityMismatch {
                window: AlertWindow::Last5Minutes,
            }),
            "consecutive_failures" => needs(cx, "{ at_least: 3 }"),
            "failure_rate" => needs(cx, "{ above: 20%, window: 5m, min_calls: 10 }"),
            "breaker_stuck_open" => needs(cx, "{ longer_than: 10m }"),
            "credentials_rejected" => needs(cx, "{ quiet_for: 10m }"),
            "latency" => needs(cx, "{ percentile: p95, above: 20s, window: 5m }"),
            _ => needs(cx, "{ below: 99%, window: 1h, min_requests: 100 }"),
        };
    };
    let window = |cx: &mut Cx<'_>, map: &Map<'_, '_>| match map.get("window") {
        Some(n) => cx.keyword(&n, "a window", &WINDOWS),
        None => Some(AlertWindow::Last5Minutes),
    };
    let count = |cx: &mut Cx<'_>, map: &Map<'_, '_>, key: &str| match map.get(key) {
        Some(n) => cx.int(&n, 1, u64::MAX),
        None => Some(10),
    };
    match kind.as_str() {
        "breaker_open" | "route_down" | "config_rejected" | "cluster_link_down" => {
            settings::no_settings(cx, &settings, &kind);
            None
        }
        "consecutive_failures" => {
            let map = cx.map(&settings, &["at_least"])?;
            let n = cx.required(&map, "at_least", None)?;
            Some(Condition::ConsecutiveFailures {
                at_least: cx.int(&n, 1, u64::MAX)?,
            })
        }
        "failure_rate" => {
            let map = cx.map(&settings, &["above", "window", "min_calls"])?;
            let above = cx
                .required(&map, "above", Some("such as `above: 20%`".to_owned()))
                .and_then(|n| cx.rate(&n, RateRange::ZeroToBelowOne));
            let window = window(cx, &map);
            let min_calls = count(cx, &map, "min_calls");
            Some(Condition::FailureRate {
                above: above?,
                window: window?,
                min_calls: min_calls?,
            })
        }
        "breaker_stuck_open" => {
            let map = cx.map(&settings, &["longer_than"])?;
            let n = cx.required(&map, "longer_than", None)?;
            Some(Condition::BreakerStuckOpen {
                longer_than: cx.duration(&n, Zero::Refused)?,
            })
        }
        "identity_mismatch" => {
            let map = cx.map(&settings, &["window"])?;
            Some(Condition::IdentityMismatch {
                window: window(cx, &map)?,
            })
        }
        "credentials_rejected" => {
            let map = cx.map(&settings, &["quiet_for"])?;
            let n = cx.required(&map, "quiet_for", None)?;
            Some(Condition::CredentialsRejected {
                quiet_for: cx.duration(&n, Zero::Refused)?,
            })
        }
        "latency" => {
            let map = cx.map(&settings, &["percentile", "above", "window", "min_calls"])?;
            let percentile = cx
                .required(&map, "percentile", Some("`p50`, `p95` or `p99`".to_owned()))
                .and_then(|n| {
                    cx.keyword(
                        &n,
                        "a percentile",
                        &[
                            ("p50", LatencyPercentile::P50),
                            ("p95", LatencyPercentile::P95),
                            ("p99", LatencyPercentile::P99),
                        ],
                    )
                });
            let above = cx
                .required(&map, "above", Some("such as `above: 20s`".to_owned()))
                .and_then(|n| cx.duration(&n, Zero::Refused));
            let window = window(cx, &map);
            let min_calls = count(cx, &map, "min_calls");
            Some(Condition::Latency {
                percentile: percentile?,
                above: above?,
                window: window?,
                min_calls: min_calls?,
            })
        }
        _ => {
            let map = cx.map(&settings, &["below", "window", "min_requests"])?;
            let below = cx
                .required(&map, "below", Some("such as `below: 99%`".to_owned()))
                .and_then(|n| cx.rate(&n, RateRange::AboveZeroToOne));
            let window = window(cx, &map);
            let min_requests = count(cx, &map, "min_requests");
            Some(Condition::Availability {
                below: below?,
                window: window?,
                min_requests: min_requests?,
            })
        }
    }
}
