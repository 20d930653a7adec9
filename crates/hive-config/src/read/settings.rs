//! The per-model settings (`retry`, `breaker`, `health`, `timeouts`, `slow_start`), read
//! over a base: the built-in defaults for `defaults`, `defaults` for a model. A key given
//! replaces the base's value; a key left out keeps it.

use std::time::Duration;

use hive_core::{FailureClass, FailureClassSet};

use crate::{
    DiagnosticKind,
    schema::{
        BackoffSettings, BreakerSettings, BudgetSettings, HealthSettings, Jitter, ModelSettings,
        OpenDurationSettings, Probe, RetryAfterSettings, RetrySettings, Timeouts, WindowSettings,
    },
    yaml::{Cx, Map, Node, RateRange, Spot, Zero},
};

/// Which section is read: `defaults` or a model's overrides.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Scope {
    Defaults,
    Model,
}

/// The largest count window (hive-breaker's `MAX_WINDOW_SIZE`).
const MAX_WINDOW_SIZE: u32 = 1_000_000;
/// The most half-open permits (hive-breaker's `MAX_HALF_OPEN_PERMITS`).
const MAX_HALF_OPEN_PERMITS: u32 = 1000;
/// The most slices of a time window (hive-breaker).
const MAX_BUCKETS: u32 = 10_000;

/// Sets `slot` when `value` is there.
pub(crate) fn set<T>(slot: &mut T, value: Option<T>) {
    if let Some(value) = value {
        *slot = value;
    }
}

/// The keys of a section that hold per-model settings.
pub(crate) const SETTINGS_KEYS: [&str; 5] =
    ["retry", "breaker", "health", "timeouts", "slow_start"];

/// Reads the per-model settings keys of `map` over `base`: those of `defaults` when
/// `request` is given (`timeouts.request` is written to it), those of a model otherwise.
pub(crate) fn model_settings(
    cx: &mut Cx<'_>,
    map: &Map<'_, '_>,
    base: &ModelSettings,
    request: Option<&mut Option<Duration>>,
) -> ModelSettings {
    let scope = if request.is_some() {
        Scope::Defaults
    } else {
        Scope::Model
    };
    let mut out = base.clone();
    if let Some(node) = map.get("retry") {
        out.retry = retry(cx, &node, &base.retry);
    }
    if let Some(node) = map.get("breaker") {
        out.breaker = breaker(cx, &node, &base.breaker);
    }
    if let Some(node) = map.get("health") {
        out.health = health(cx, &node, &base.health, scope);
    }
    if let Some(node) = map.get("timeouts") {
        out.timeouts = timeouts(cx, &node, &base.timeouts, request);
    }
    if let Some(node) = map.get("slow_start") {
        let ramp = if node.as_str() == Some("off") {
            Some(Duration::ZERO)
        } else {
            cx.duration(&node, Zero::Allowed)
        };
        set(&mut out.slow_start, ramp);
    }
    out
}

/// Reports a rule between two keys of one section when at least one of them is given here
/// (when both come from the base, the base's section reported it already).
fn cross_check(
    cx: &mut Cx<'_>,
    map: &Map<'_, '_>,
    keys: [&str; 2],
    broken: bool,
    message: impl FnOnce() -> String,
) {
    if !broken {
        return;
    }
    let node = map.get(keys[1]).or_else(|| map.get(keys[0]));
    if let Some(node) = node {
        cx.report(
            DiagnosticKind::Conflict,
            &node,
            Spot::Value,
            message(),
            None,
        );
    }
}

fn retry(cx: &mut Cx<'_>, node: &Node<'_, '_>, base: &RetrySettings) -> RetrySettings {
    let mut out = base.clone();
    let Some(map) = cx.map(
        node,
        &[
            "max_attempts",
            "backoff",
            "retry_after",
            "retry_on",
            "min_attempt_time",
            "budget",
        ],
    ) else {
        return out;
    };
    if let Some(n) = map.get("max_attempts") {
        set(&mut out.max_attempts, cx.u32(&n, 1, 100));
    }
    if let Some(n) = map.get("backoff") {
        out.backoff = backoff(cx, &n, &base.backoff);
    }
    if let Some(n) = map.get("retry_after") {
        out.retry_after = retry_after(cx, &n, &base.retry_after);
    }
    if let Some(n) = map.get("retry_on") {
        set(&mut out.retry_on, classes(cx, &n));
    }
    if let Some(n) = map.get("min_attempt_time") {
        set(&mut out.min_attempt_time, cx.duration(&n, Zero::Allowed));
    }
    if let Some(n) = map.get("budget") {
        set(&mut out.budget, budget_or_off(cx, &n, base.budget.as_ref()));
    }
    out
}

fn backoff(cx: &mut Cx<'_>, node: &Node<'_, '_>, base: &BackoffSettings) -> BackoffSettings {
    let mut out = *base;
    let Some(map) = cx.map(node, &["base", "max", "multiplier", "jitter"]) else {
        return out;
    };
    if let Some(n) = map.get("base") {
        set(&mut out.base, cx.duration(&n, Zero::Allowed));
    }
    if let Some(n) = map.get("max") {
        set(&mut out.max, cx.duration(&n, Zero::Allowed));
    }
    if let Some(n) = map.get("multiplier") {
        set(
            &mut out.multiplier,
            cx.number(&n, 1.0, "it must be at least 1"),
        );
    }
    if let Some(n) = map.get("jitter") {
        set(&mut out.jitter, jitter(cx, &n));
    }
    cross_check(cx, &map, ["base", "max"], out.max < out.base, || {
        format!(
            "the backoff's max ({}) is below its base ({})",
            crate::format_duration(out.max),
            crate::format_duration(out.base)
        )
    });
    out
}

fn jitter(cx: &mut Cx<'_>, node: &Node<'_, '_>) -> Option<Jitter> {
    let (name, settings) = cx.variant(
        node,
        "a jitter",
        &["none", "full", "proportional", "decorrelated"],
    )?;
    let plain = |jitter| Some(jitter);
    match (name.as_str(), settings) {
        ("proportional", Some(share)) => cx
            .rate(&share, RateRange::ZeroToOne)
            .map(Jitter::Proportional),
        ("proportional", None) => {
            cx.report(
                DiagnosticKind::InvalidValue,
                node,
                Spot::Value,
                "`proportional` needs its share",
                Some("write `jitter: { proportional: 10% }`".to_owned()),
            );
            None
        }
        (word, Some(settings)) => {
            no_settings(cx, &settings, word);
            None
        }
        ("none", None) => plain(Jitter::None),
        ("full", None) => plain(Jitter::Full),
        _ => plain(Jitter::Decorrelated),
    }
}

/// Reports settings given to a variant that takes none.
pub(crate) fn no_settings(cx: &mut Cx<'_>, settings: &Node<'_, '_>, word: &str) {
    cx.report(
        DiagnosticKind::InvalidValue,
        settings,
        Spot::Key,
        format!("`{word}` takes no settings"),
        Some(format!("write just `{word}`")),
    );
}

fn retry_after(
    cx: &mut Cx<'_>,
    node: &Node<'_, '_>,
    base: &RetryAfterSettings,
) -> RetryAfterSettings {
    let mut out = *base;
    let Some(map) = cx.map(node, &["honour", "max"]) else {
        return out;
    };
    if let Some(n) = map.get("honour") {
        set(&mut out.honour, cx.bool(&n));
    }
    if let Some(n) = map.get("max") {
        set(&mut out.max, cx.duration(&n, Zero::Allowed));
    }
    out
}

fn classes(cx: &mut Cx<'_>, node: &Node<'_, '_>) -> Option<FailureClassSet> {
    let items = cx.list(node)?;
    let options: Vec<(&str, FailureClass)> =
        FailureClass::ALL.iter().map(|c| (c.as_str(), *c)).collect();
    let mut set = FailureClassSet::EMPTY;
    let mut ok = true;
    for item in &items {
        match cx.keyword(item, "a failure class", &options) {
            Some(class) if set.contains(class) => {
                cx.report(
                    DiagnosticKind::Duplicate,
                    item,
                    Spot::Value,
                    format!("`{class}` is listed twice"),
                    None,
                );
            }
            Some(class) => set = set.with(class),
            None => ok = false,
        }
    }
    ok.then_some(set)
}

/// A budget, or `off`: read over `base` when there is one, over the defaults otherwise
/// (`min_per_second` 10, `ttl` 10 s; `ratio` is then required).
pub(crate) fn budget_or_off(
    cx: &mut Cx<'_>,
    node: &Node<'_, '_>,
    base: Option<&BudgetSettings>,
) -> Option<Option<BudgetSettings>> {
    if node.as_str() == Some("off") {
        return Some(None);
    }
    let map = cx.map(node, &["ratio", "min_per_second", "ttl"])?;
    let mut out = base.copied().unwrap_or(BudgetSettings {
        ratio: f64::NAN,
        min_per_second: 10,
        ttl: Duration::from_secs(10),
    });
    let mut ok = true;
    match map.get("ratio") {
        Some(n) => match cx.rate(&n, RateRange::Ratio) {
            Some(ratio) => out.ratio = ratio,
            None => ok = false,
        },
        None if base.is_none() => {
            cx.missing(
                &map,
                "ratio",
                Some("the share of requests that may cause an extra call, such as 20%".to_owned()),
            );
            ok = false;
        }
        None => {}
    }
    if let Some(n) = map.get("min_per_second") {
        set(&mut out.min_per_second, cx.u32(&n, 0, u32::MAX));
    }
    if let Some(n) = map.get("ttl")
        && let Some(ttl) = cx.duration(&n, Zero::Refused)
    {
        if (Duration::from_secs(1)..=Duration::from_secs(60)).contains(&ttl) {
            out.ttl = ttl;
        } else {
            cx.report(
                DiagnosticKind::OutOfRange,
                &n,
                Spot::Value,
                format!(
                    "{} is out of range: a budget's ttl is from 1s to 60s",
                    crate::format_duration(ttl)
                ),
                None,
            );
        }
    }
    ok.then_some(Some(out))
}

fn breaker(cx: &mut Cx<'_>, node: &Node<'_, '_>, base: &BreakerSettings) -> BreakerSettings {
    let mut out = *base;
    let Some(map) = cx.map(
        node,
        &[
            "window",
            "minimum_calls",
            "failure_rate",
            "slow_call_duration",
            "slow_call_rate",
            "consecutive_failures",
            "open_duration",
            "half_open_permits",
            "max_wait_in_half_open",
            "max_retry_after_open",
        ],
    ) else {
        return out;
    };
    if let Some(n) = map.get("window") {
        set(&mut out.window, window(cx, &n));
    }
    if let Some(n) = map.get("minimum_calls") {
        set(&mut out.minimum_calls, cx.u32(&n, 1, MAX_WINDOW_SIZE));
    }
    if let Some(n) = map.get("failure_rate") {
        set(
            &mut out.failure_rate,
            cx.rate(&n, RateRange::AboveZeroToOne),
        );
    }
    if let Some(n) = map.get("slow_call_duration") {
        set(
            &mut out.slow_call_duration,
            cx.duration_or_off(&n, Zero::Refused),
        );
    }
    if let Some(n) = map.get("slow_call_rate") {
        set(
            &mut out.slow_call_rate,
            cx.rate(&n, RateRange::AboveZeroToOne),
        );
    }
    if let Some(n) = map.get("consecutive_failures") {
        let value = if n.as_str() == Some("off") {
            Some(None)
        } else {
            cx.u32(&n, 1, u32::MAX).map(Some)
        };
        set(&mut out.consecutive_failures, value);
    }
    if let Some(n) = map.get("open_duration") {
        set(
            &mut out.open_duration,
            open_duration(cx, &n, &base.open_duration),
        );
    }
    if let Some(n) = map.get("half_open_permits") {
        set(
            &mut out.half_open_permits,
            cx.u32(&n, 1, MAX_HALF_OPEN_PERMITS),
        );
    }
    if let Some(n) = map.get("max_wait_in_half_open") {
        set(
            &mut out.max_wait_in_half_open,
            cx.duration(&n, Zero::Refused),
        );
    }
    if let Some(n) = map.get("max_retry_after_open") {
        set(
            &mut out.max_retry_after_open,
            cx.duration(&n, Zero::Allowed),
        );
    }
    if let WindowSettings::Count { size } = out.window {
        cross_check(
            cx,
            &map,
            ["window", "minimum_calls"],
            out.minimum_calls > size,
            || {
                format!(
                    "minimum_calls {} can never be reached by a count window of {size} calls",
                    out.minimum_calls
                )
            },
        );
    }
    out
}

fn window(cx: &mut Cx<'_>, node: &Node<'_, '_>) -> Option<WindowSettings> {
    let map = cx.map(node, &["count", "time", "buckets"])?;
    match (map.get("count"), map.get("time")) {
        (Some(_), Some(time)) => {
            cx.report(
                DiagnosticKind::Conflict,
                &time,
                Spot::Key,
                "a window counts calls (`count`) or time (`time`), not both",
                None,
            );
            None
        }
        (None, None) => {
            cx.missing(
                &map,
                "count",
                Some("write `{ count: 20 }` or `{ time: 60s, buckets: 10 }`".to_owned()),
            );
            None
        }
        (Some(count), None) => {
            if let Some(buckets) = map.get("buckets") {
                cx.report(
                    DiagnosticKind::Conflict,
                    &buckets,
                    Spot::Key,
                    "`buckets` slices a time window; a count window has none",
                    None,
                );
            }
            cx.u32(&count, 1, MAX_WINDOW_SIZE)
                .map(|size| WindowSettings::Count { size })
        }
        (None, Some(time)) => {
            let duration = cx.duration(&time, Zero::Refused);
            let buckets = match map.get("buckets") {
                Some(n) => cx.u32(&n, 1, MAX_BUCKETS),
                None => Some(10),
            };
            let (duration, buckets) = (duration?, buckets?);
            if duration.as_micros() % u128::from(buckets) != 0 {
                let at = map.get("buckets").unwrap_or(time);
                cx.report(
                    DiagnosticKind::Conflict,
                    &at,
                    Spot::Value,
                    format!(
                        "{} does not split into {buckets} slices of whole microseconds",
                        crate::format_duration(duration)
                    ),
                    None,
                );
                return None;
            }
            Some(WindowSettings::Time { duration, buckets })
        }
    }
}

fn open_duration(
    cx: &mut Cx<'_>,
    node: &Node<'_, '_>,
    base: &OpenDurationSettings,
) -> Option<OpenDurationSettings> {
    if !matches!(node.yaml.data, saphyr::YamlData::Mapping(_)) {
        return cx
            .duration(node, Zero::Refused)
            .map(OpenDurationSettings::Fixed);
    }
    let map = cx.map(node, &["base", "multiplier", "max"])?;
    let (mut base_d, mut multiplier, mut max) = match *base {
        OpenDurationSettings::Growing {
            base,
            multiplier,
            max,
        } => (base, multiplier, max),
        OpenDurationSettings::Fixed(_) => (Duration::from_secs(5), 2.0, Duration::from_secs(30)),
    };
    if let Some(n) = map.get("base") {
        set(&mut base_d, cx.duration(&n, Zero::Refused));
    }
    if let Some(n) = map.get("multiplier") {
        set(&mut multiplier, cx.number(&n, 1.0, "it must be at least 1"));
    }
    if let Some(n) = map.get("max") {
        set(&mut max, cx.duration(&n, Zero::Refused));
    }
    if max < base_d {
        let at = map
            .get("max")
            .or_else(|| map.get("base"))
            .unwrap_or(map.node.clone());
        cx.report(
            DiagnosticKind::Conflict,
            &at,
            Spot::Value,
            format!(
                "the open duration's max ({}) is below its base ({})",
                crate::format_duration(max),
                crate::format_duration(base_d)
            ),
            None,
        );
        return None;
    }
    Some(OpenDurationSettings::Growing {
        base: base_d,
        multiplier,
        max,
    })
}

fn health(
    cx: &mut Cx<'_>,
    node: &Node<'_, '_>,
    base: &HealthSettings,
    scope: Scope,
) -> HealthSettings {
    let mut out = *base;
    let Some(map) = cx.map(
        node,
        &[
            "probe",
            "interval",
            "fast_interval",
            "timeout",
            "jitter",
            "healthy_threshold",
            "unhealthy_threshold",
        ],
    ) else {
        return out;
    };
    if let Some(n) = map.get("probe") {
        let probe = cx.keyword(
            &n,
            "a probe",
            &[
                ("models", Probe::Models),
                ("completion", Probe::Completion),
                ("none", Probe::None),
            ],
        );
        set(&mut out.probe, probe);
    }
    if let Some(n) = map.get("interval") {
        set(&mut out.interval, cx.duration(&n, Zero::Refused));
    }
    if let Some(n) = map.get("fast_interval") {
        set(&mut out.fast_interval, cx.duration(&n, Zero::Refused));
    }
    if let Some(n) = map.get("timeout") {
        set(&mut out.timeout, cx.duration(&n, Zero::Refused));
    }
    if let Some(n) = map.get("jitter") {
        set(&mut out.jitter, cx.rate(&n, RateRange::ZeroToOne));
    }
    for key in ["healthy_threshold", "unhealthy_threshold"] {
        let Some(n) = map.get(key) else { continue };
        if scope == Scope::Model {
            cx.report(
                DiagnosticKind::Conflict,
                &n,
                Spot::Key,
                format!("`{key}` is the same for every model"),
                Some(
                    "set it in `defaults.health`: the health registry's thresholds are shared"
                        .to_string(),
                ),
            );
            continue;
        }
        let value = cx.u32(&n, 1, u32::MAX);
        if key == "healthy_threshold" {
            set(&mut out.healthy_threshold, value);
        } else {
            set(&mut out.unhealthy_threshold, value);
        }
    }
    cross_check(
        cx,
        &map,
        ["interval", "fast_interval"],
        out.fast_interval > out.interval,
        || {
            format!(
                "fast_interval ({}) must be at most the interval ({})",
                crate::format_duration(out.fast_interval),
                crate::format_duration(out.interval)
            )
        },
    );
    out
}

/// `defaults.timeouts` (with `request`, written to `request`) or a model's (without:
/// `request` is `None`).
fn timeouts(
    cx: &mut Cx<'_>,
    node: &Node<'_, '_>,
    base: &Timeouts,
    request: Option<&mut Option<Duration>>,
) -> Timeouts {
    let mut out = *base;
    let Some(map) = cx.map(
        node,
        &["attempt", "request", "first_token", "idle", "total"],
    ) else {
        return out;
    };
    if let Some(n) = map.get("attempt") {
        set(&mut out.attempt, cx.duration(&n, Zero::Refused));
    }
    if let Some(n) = map.get("first_token") {
        set(&mut out.first_token, cx.duration(&n, Zero::Refused));
    }
    if let Some(n) = map.get("idle") {
        set(&mut out.idle, cx.duration(&n, Zero::Refused));
    }
    if let Some(n) = map.get("total") {
        set(&mut out.total, cx.duration(&n, Zero::Refused));
    }
    match (map.get("request"), request) {
        (Some(n), Some(request)) => set(request, cx.duration_or_off(&n, Zero::Refused)),
        (Some(n), None) => {
            cx.report(
                DiagnosticKind::Conflict,
                &n,
                Spot::Key,
                "the request deadline spans every model a request tries",
                Some("set it per route (`routes[].timeout`) or in `defaults.timeouts`".to_owned()),
            );
        }
        (None, _) => {}
    }
    out
}
