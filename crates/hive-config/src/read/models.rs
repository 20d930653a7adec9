//! `models-resilience.yml`: the models (or patterns of models) and the routes over them.

use std::collections::BTreeMap;

use hive_core::CREDENTIAL_HEADERS;

use crate::{
    DiagnosticKind, Secret, pattern,
    read::{
        MODELS_KEYS, RESILIENCE_KEYS, check_secret_header, check_url, is_header_name,
        is_header_value, misplaced, resilience::strategy, settings,
    },
    schema::{
        CommitPolicy, Defaults, FallbackConfig, ModelConfig, ModelName, ProviderKind, RouteConfig,
    },
    yaml::{Cx, Map, Node, Spot, Zero, one_of, suggest},
};

/// Route names the gateway uses itself (hive-resilience's `DEFAULT_ROUTE` and
/// `REQUEST_ROUTE`).
const RESERVED_ROUTES: [&str; 2] = ["default", "request"];

/// Headers the client sets itself.
const CLIENT_HEADERS: [&str; 7] = [
    "host",
    "content-length",
    "content-type",
    "transfer-encoding",
    "connection",
    "te",
    "upgrade",
];

const MODEL_KEYS: [&str; 18] = [
    "id",
    "pattern",
    "provider",
    "strip_prefix",
    "base_url",
    "api_key",
    "priority",
    "weight",
    "context_window",
    "accepts_prefill",
    "aliases",
    "headers",
    "secret_headers",
    "retry",
    "breaker",
    "health",
    "timeouts",
    "slow_start",
];

/// Reads `models-resilience.yml` (`None`: absent or empty, no models and no routes).
pub(crate) fn read_models(
    cx: &mut Cx<'_>,
    root: Option<&Node<'_, '_>>,
    defaults: &Defaults,
    fallback: &FallbackConfig,
) -> (Vec<ModelConfig>, Vec<RouteConfig>) {
    let Some(root) = root else {
        return (Vec::new(), Vec::new());
    };
    let mut keys = MODELS_KEYS.to_vec();
    keys.extend(RESILIENCE_KEYS);
    let Some(map) = cx.map(root, &keys) else {
        return (Vec::new(), Vec::new());
    };
    misplaced(cx, &map, &RESILIENCE_KEYS, "resilience.yml");
    let (models, names) = match map.get("models") {
        Some(n) => models(cx, &n, defaults),
        None => (Vec::new(), Vec::new()),
    };
    let routes = match map.get("routes") {
        Some(n) => routes(cx, &n, &names, defaults, fallback),
        None => Vec::new(),
    };
    (models, routes)
}

/// The models read whole, and the names of every entry whose name could be read (a route
/// naming a model whose settings are wrong is not reported again).
fn models(
    cx: &mut Cx<'_>,
    node: &Node<'_, '_>,
    defaults: &Defaults,
) -> (Vec<ModelConfig>, Vec<ModelName>) {
    let mut out: Vec<ModelConfig> = Vec::new();
    // Every name or pattern seen, with the line it is on.
    let mut seen: Vec<(ModelName, usize)> = Vec::new();
    let Some(items) = cx.list(node) else {
        return (out, Vec::new());
    };
    for item in &items {
        let Some(map) = cx.map(item, &MODEL_KEYS) else {
            continue;
        };
        let name = model_name(cx, &map, &seen);
        if let Some((name, line)) = &name {
            seen.push((name.clone(), *line));
        }
        let model = model(cx, &map, defaults);
        let strip = strip_prefix(cx, &map, name.as_ref().map(|(n, _)| n));
        if let (Some(model), Some((name, _)), Some(strip_prefix)) = (model, name, strip) {
            out.push(ModelConfig {
                name,
                strip_prefix,
                ..model
            });
        }
    }
    (out, seen.into_iter().map(|(name, _)| name).collect())
}

/// The `id` or `pattern` of a model entry, checked against those before it.
fn model_name(
    cx: &mut Cx<'_>,
    map: &Map<'_, '_>,
    seen: &[(ModelName, usize)],
) -> Option<(ModelName, usize)> {
    let (node, name) = match (map.get("id"), map.get("pattern")) {
        (Some(_), Some(pattern)) => {
            cx.report(
                DiagnosticKind::Conflict,
                &pattern,
                Spot::Key,
                "a model has an `id` or a `pattern`, not both",
                None,
            );
            return None;
        }
        (None, None) => {
            cx.missing(
                map,
                "id",
                Some(
                    "name the model with `id: gpt-4o`, or every model of a provider with \
                     `pattern: openai/*`"
                        .to_owned(),
                ),
            );
            return None;
        }
        (Some(id), None) => {
            let text = cx.name(&id)?;
            if text.contains('*') {
                cx.report(
                    DiagnosticKind::InvalidValue,
                    &id,
                    Spot::Value,
                    format!("the id `{text}` has a `*`"),
                    Some(format!("write `pattern: {text}` to match many names")),
                );
                return None;
            }
            (id, ModelName::Id(text))
        }
        (None, Some(pattern)) => {
            let text = cx.name(&pattern)?;
            if !text.contains('*') {
                cx.report(
                    DiagnosticKind::NeverMatches,
                    &pattern,
                    Spot::Value,
                    format!("the pattern `{text}` has no `*`: it matches only itself"),
                    Some(format!(
                        "write `id: {text}`, or add a `*` such as `{text}*`"
                    )),
                );
                return None;
            }
            (pattern, ModelName::Pattern(text))
        }
    };
    let text = name.as_str();
    if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
        cx.report(
            DiagnosticKind::InvalidValue,
            &node,
            Spot::Value,
            format!(
                "`{}` has a space or a control character",
                text.escape_debug()
            ),
            None,
        );
        return None;
    }
    if let Some((_, line)) = seen.iter().find(|(other, _)| other.as_str() == text) {
        cx.report(
            DiagnosticKind::Duplicate,
            &node,
            Spot::Value,
            format!("a second model `{text}`"),
            Some(format!(
                "the first is at line {line}; each model is listed once"
            )),
        );
        return None;
    }
    if let ModelName::Pattern(later) = &name {
        let earlier = seen.iter().find_map(|(other, line)| match other {
            ModelName::Pattern(earlier) if pattern::shadows(earlier, later) => {
                Some((earlier, line))
            }
            _ => None,
        });
        if let Some((earlier, line)) = earlier {
            cx.report(
                DiagnosticKind::NeverMatches,
                &node,
                Spot::Value,
                format!(
                    "the pattern `{later}` can never match: every name it matches goes to \
                     `{earlier}` first"
                ),
                Some(format!(
                    "patterns are tried in file order: move it above `{earlier}` (line {line})"
                )),
            );
            return None;
        }
    }
    Some((name, node.line()))
}

/// `strip_prefix`, which the id or pattern (when readable) must start with.
fn strip_prefix(
    cx: &mut Cx<'_>,
    map: &Map<'_, '_>,
    name: Option<&ModelName>,
) -> Option<Option<String>> {
    let Some(node) = map.get("strip_prefix") else {
        return Some(None);
    };
    let prefix = cx.name(&node)?;
    if prefix.contains('*') {
        cx.report(
            DiagnosticKind::InvalidValue,
            &node,
            Spot::Value,
            format!("the prefix `{prefix}` has a `*`: it is removed as written"),
            None,
        );
        return None;
    }
    if let Some(name) = name.filter(|n| !n.as_str().starts_with(&prefix)) {
        cx.report(
            DiagnosticKind::Conflict,
            &node,
            Spot::Value,
            format!("`{}` does not start with `{prefix}`", name.as_str()),
            Some(
                "the prefix is removed from names this entry matches: it must start them"
                    .to_owned(),
            ),
        );
        return None;
    }
    Some(Some(prefix))
}

/// A model entry's settings (its name is read by `model_name`).
fn model(cx: &mut Cx<'_>, map: &Map<'_, '_>, defaults: &Defaults) -> Option<ModelConfig> {
    let provider = match map.get("provider") {
        Some(n) => cx.keyword(
            &n,
            "a provider kind",
            &[("openai-compatible", ProviderKind::OpenAiCompatible)],
        ),
        None => Some(ProviderKind::OpenAiCompatible),
    };
    let base_url = cx
        .required(
            map,
            "base_url",
            Some("where the provider is, such as `base_url: https://api.openai.com`".to_owned()),
        )
        .and_then(|n| {
            let url = cx.name(&n)?;
            check_url(cx, &n, &url, None).then_some(url)
        });
    let api_key = match map.get("api_key") {
        Some(n) => cx
            .secret(&n)
            .filter(|key| check_secret_header(cx, &n, key))
            .map(Some),
        None => Some(None),
    };
    let priority = match map.get("priority") {
        Some(n) => cx.u32(&n, 0, u32::MAX),
        None => Some(100),
    };
    let weight = match map.get("weight") {
        Some(n) => cx
            .number(&n, 0.0, "a weight must be above zero")
            .and_then(|w| {
                if w > 0.0 {
                    Some(w)
                } else {
                    cx.report(
                        DiagnosticKind::OutOfRange,
                        &n,
                        Spot::Value,
                        "0 is out of range: a weight must be above zero",
                        Some("remove the model from the route instead".to_owned()),
                    );
                    None
                }
            }),
        None => Some(1.0),
    };
    let context_window = match map.get("context_window") {
        Some(n) => cx.int(&n, 1, u64::MAX).map(Some),
        None => Some(None),
    };
    let accepts_prefill = match map.get("accepts_prefill") {
        Some(n) => cx.bool(&n),
        None => Some(false),
    };
    let aliases = match map.get("aliases") {
        Some(n) => cx.string_list(&n),
        None => Some(Vec::new()),
    };
    let headers = headers(cx, map, api_key.as_ref().is_some_and(Option::is_some));
    let settings = settings::model_settings(cx, map, &defaults.settings, None);
    let (headers, secret_headers) = headers?;
    Some(ModelConfig {
        // Replaced by the caller with the name read by `model_name`.
        name: ModelName::Id(String::new()),
        strip_prefix: None,
        provider: provider?,
        base_url: base_url?,
        api_key: api_key?,
        priority: priority?,
        weight: weight?,
        context_window: context_window?,
        accepts_prefill: accepts_prefill?,
        aliases: aliases?,
        headers,
        secret_headers,
        settings,
    })
}

/// `headers` and `secret_headers`, checked together (a name is given once, in any case).
#[allow(clippy::type_complexity)]
fn headers(
    cx: &mut Cx<'_>,
    map: &Map<'_, '_>,
    has_api_key: bool,
) -> Option<(BTreeMap<String, String>, BTreeMap<String, Secret>)> {
    let mut plain = BTreeMap::new();
    let mut secret = BTreeMap::new();
    let mut names: Vec<String> = Vec::new();
    let mut ok = true;
    for key in ["headers", "secret_headers"] {
        let Some(node) = map.get(key) else { continue };
        let Some(entries) = cx.entries(&node) else {
            ok = false;
            continue;
        };
        for (name, value) in entries {
            let lower = name.to_ascii_lowercase();
            let problem = if !is_header_name(&name) {
                Some((
                    DiagnosticKind::InvalidValue,
                    format!("`{name}` is not a header name"),
                    "a header name is letters, digits and `-`".to_owned(),
                ))
            } else if names.contains(&lower) {
                Some((
                    DiagnosticKind::Duplicate,
                    format!("the header `{name}` is given twice"),
                    "header names are not case-sensitive; keep one".to_owned(),
                ))
            } else if CLIENT_HEADERS.contains(&lower.as_str()) {
                Some((
                    DiagnosticKind::InvalidValue,
                    format!("`{name}` is set by the client itself"),
                    "remove it".to_owned(),
                ))
            } else if lower == "authorization" && has_api_key {
                Some((
                    DiagnosticKind::Conflict,
                    "`Authorization` is already sent with the `api_key`".to_owned(),
                    "keep one of them".to_owned(),
                ))
            } else {
                None
            };
            if let Some((kind, message, help)) = problem {
                cx.report(kind, &value, Spot::Key, message, Some(help));
                ok = false;
                continue;
            }
            names.push(lower.clone());
            if key == "secret_headers" {
                match cx.secret(&value) {
                    Some(s) if check_secret_header(cx, &value, &s) => {
                        secret.insert(name, s);
                    }
                    _ => ok = false,
                }
                continue;
            }
            if CREDENTIAL_HEADERS.contains(&lower.as_str()) {
                cx.mask(&value);
                cx.report(
                    DiagnosticKind::Conflict,
                    &value,
                    Spot::Key,
                    format!("`{name}` carries a credential: it is never written in the file"),
                    Some(format!(
                        "move it to `secret_headers` as `{name}: {{ env: NAME }}` (or use \
                         `api_key`)"
                    )),
                );
                ok = false;
                continue;
            }
            let Some(text) = cx.string(&value) else {
                ok = false;
                continue;
            };
            if !is_header_value(&text) {
                cx.report(
                    DiagnosticKind::InvalidValue,
                    &value,
                    Spot::Value,
                    format!("the value of `{name}` has a control character"),
                    None,
                );
                ok = false;
                continue;
            }
            plain.insert(name, text);
        }
    }
    ok.then_some((plain, secret))
}

fn routes(
    cx: &mut Cx<'_>,
    node: &Node<'_, '_>,
    models: &[ModelName],
    defaults: &Defaults,
    fallback: &FallbackConfig,
) -> Vec<RouteConfig> {
    let mut out = Vec::new();
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let Some(items) = cx.list(node) else {
        return out;
    };
    for item in &items {
        let Some(map) = cx.map(
            item,
            &[
                "name", "models", "strategy", "commit", "degraded", "timeout",
            ],
        ) else {
            continue;
        };
        let name = cx
            .required(
                &map,
                "name",
                Some("the name clients ask for in `model`".to_owned()),
            )
            .and_then(|n| route_name(cx, &n, &mut seen));
        let members = cx
            .required(
                &map,
                "models",
                Some("the models to try, in order".to_owned()),
            )
            .and_then(|n| route_models(cx, &n, models));
        let strategy = match map.get("strategy") {
            Some(n) => strategy(cx, &n),
            None => Some(fallback.strategy.clone()),
        };
        let commit = match map.get("commit") {
            Some(n) => cx.keyword(
                &n,
                "a commit policy",
                &[
                    ("first_chunk", CommitPolicy::FirstChunk),
                    ("pass_through", CommitPolicy::PassThrough),
                    ("buffered", CommitPolicy::Buffered),
                ],
            ),
            None => Some(CommitPolicy::FirstChunk),
        };
        let degraded = match map.get("degraded") {
            Some(n) => cx.name(&n).map(Some),
            None => Some(None),
        };
        let timeout = match map.get("timeout") {
            Some(n) => cx.duration_or_off(&n, Zero::Refused),
            None => Some(defaults.request_timeout),
        };
        if let (
            Some(name),
            Some(models),
            Some(strategy),
            Some(commit),
            Some(degraded),
            Some(timeout),
        ) = (name, members, strategy, commit, degraded, timeout)
        {
            out.push(RouteConfig {
                name,
                models,
                strategy,
                commit,
                degraded,
                timeout,
            });
        }
    }
    out
}

fn route_name(
    cx: &mut Cx<'_>,
    node: &Node<'_, '_>,
    seen: &mut BTreeMap<String, usize>,
) -> Option<String> {
    let name = cx.name(node)?;
    if name.chars().any(|c| c.is_whitespace() || c.is_control()) {
        cx.report(
            DiagnosticKind::InvalidValue,
            node,
            Spot::Value,
            format!("the route name `{}` has a space", name.escape_debug()),
            None,
        );
        return None;
    }
    if RESERVED_ROUTES.contains(&name.as_str()) {
        cx.report(
            DiagnosticKind::Conflict,
            node,
            Spot::Value,
            format!("`{name}` is the name of a route the gateway makes itself"),
            Some(format!(
                "{} are reserved (the route over every model, and a request's own \
                 fallbacks); choose another name",
                one_of(&RESERVED_ROUTES)
            )),
        );
        return None;
    }
    if let Some(line) = seen.get(&name) {
        cx.report(
            DiagnosticKind::Duplicate,
            node,
            Spot::Value,
            format!("a second route named `{name}`"),
            Some(format!(
                "the first is at line {line}; route names are unique"
            )),
        );
        return None;
    }
    seen.insert(name.clone(), node.line());
    Some(name)
}

/// A route's models: each a model id, or a name a pattern matches.
fn route_models(cx: &mut Cx<'_>, node: &Node<'_, '_>, models: &[ModelName]) -> Option<Vec<String>> {
    let items = cx.list(node)?;
    if items.is_empty() {
        cx.report(
            DiagnosticKind::InvalidValue,
            node,
            Spot::Value,
            "a route needs at least one model",
            None,
        );
        return None;
    }
    let ids: Vec<&str> = models
        .iter()
        .filter_map(|m| match m {
            ModelName::Id(id) => Some(id.as_str()),
            ModelName::Pattern(_) => None,
        })
        .collect();
    let mut out: Vec<String> = Vec::new();
    let mut ok = true;
    for item in &items {
        let Some(name) = cx.name(item) else {
            ok = false;
            continue;
        };
        if name.contains('*') {
            cx.report(
                DiagnosticKind::InvalidValue,
                item,
                Spot::Value,
                format!("`{name}` is a pattern: a route names the models it tries"),
                Some("name a model, such as `openai/gpt-4o` for the pattern `openai/*`".to_owned()),
            );
            ok = false;
            continue;
        }
        if out.contains(&name) {
            cx.report(
                DiagnosticKind::Duplicate,
                item,
                Spot::Value,
                format!("`{name}` is listed twice in this route"),
                Some("a model is tried once per request; remove one".to_owned()),
            );
            ok = false;
            continue;
        }
        if !models.iter().any(|m| m.matches(&name)) {
            let help = match suggest(&name, &ids) {
                Some(close) => format!("did you mean `{close}`?"),
                None if models.is_empty() => {
                    "no model is defined: add it under `models`".to_owned()
                }
                None => {
                    let all: Vec<&str> = models.iter().map(ModelName::as_str).collect();
                    format!("the models are {}", one_of(&all))
                }
            };
            cx.report(
                DiagnosticKind::UnknownReference,
                item,
                Spot::Value,
                format!("no model `{name}`: no id is it and no pattern matches it"),
                Some(help),
            );
            ok = false;
            continue;
        }
        out.push(name);
    }
    ok.then_some(out)
}
