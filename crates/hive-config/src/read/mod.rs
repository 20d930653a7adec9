//! Readers of the two files, section by section, over the strict walker in `yaml`.

mod alerts;
mod models;
mod resilience;
mod settings;

pub(crate) use models::read_models;
pub(crate) use resilience::read_resilience;

use crate::{
    DiagnosticKind, Secret,
    yaml::{Cx, Map, Node, Spot},
};

/// The keys of `resilience.yml`.
pub(crate) const RESILIENCE_KEYS: [&str; 9] = [
    "server", "admin", "metrics", "defaults", "fallback", "alerts", "audit", "history", "cluster",
];
/// The keys of `models-resilience.yml`.
pub(crate) const MODELS_KEYS: [&str; 2] = ["models", "routes"];

/// Reports the keys of one file's root that belong in the other file.
fn misplaced(cx: &mut Cx<'_>, root: &Map<'_, '_>, other: &[&str], other_file: &str) {
    let keys: Vec<String> = root.keys().map(str::to_owned).collect();
    for key in keys {
        if let (true, Some(node)) = (other.contains(&key.as_str()), root.get(&key)) {
            cx.report(
                DiagnosticKind::Conflict,
                &node,
                Spot::Key,
                format!("`{key}` belongs in {other_file}"),
                Some(format!("move this section to {other_file}")),
            );
        }
    }
}

/// Checks an `http://` or `https://` URL with a host and no spaces. A secret URL (`secret`
/// names its source) is never repeated; a URL written in the file must carry no
/// credentials. Reports and answers `false` when it is not one.
fn check_url(cx: &mut Cx<'_>, node: &Node<'_, '_>, url: &str, secret: Option<&Secret>) -> bool {
    let what = match secret {
        Some(secret) => format!("the value of {secret}"),
        None => format!("`{url}`"),
    };
    let lower = url.to_ascii_lowercase();
    let rest = lower
        .strip_prefix("https://")
        .or_else(|| lower.strip_prefix("http://"));
    let problem = match rest {
        None => Some("does not start with http:// or https://"),
        Some(rest) => {
            let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
            let host = authority.rsplit('@').next().unwrap_or_default();
            if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
                Some("has a space or a control character")
            } else if host.is_empty() || host.starts_with(':') {
                Some("has no host")
            } else if secret.is_none() && authority.contains('@') {
                cx.mask(node);
                cx.report(
                    DiagnosticKind::InvalidValue,
                    node,
                    Spot::Value,
                    "a URL written in the config carries no credentials",
                    Some(
                        "remove `user:password@` and give the credential as `api_key` or in \
                         `secret_headers`"
                            .to_owned(),
                    ),
                );
                return false;
            } else if authority.contains('@') {
                // A secret URL (an alert channel's): hive-monitor refuses a login in it.
                Some("has a login before its host (`user:password@`), which alert channels refuse")
            } else {
                None
            }
        }
    };
    match problem {
        None => true,
        Some(problem) => {
            cx.report(
                DiagnosticKind::InvalidValue,
                node,
                Spot::Value,
                format!("{what} is not a URL: it {problem}"),
                None,
            );
            false
        }
    }
}

/// Whether `name` is an HTTP header name (a token).
fn is_header_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c))
}

/// Whether `value` can be sent as an HTTP header value.
fn is_header_value(value: &str) -> bool {
    value.chars().all(|c| c == '\t' || !(c.is_control()))
}

/// Checks that a secret can be sent in a header; reports without showing it.
fn check_secret_header(cx: &mut Cx<'_>, node: &Node<'_, '_>, secret: &Secret) -> bool {
    if is_header_value(secret.expose()) {
        return true;
    }
    cx.report(
        DiagnosticKind::InvalidValue,
        node,
        Spot::Value,
        format!(
            "the value of {secret} cannot be sent in an HTTP header: it has a control character"
        ),
        Some("check for a stray line break in the variable or file".to_owned()),
    );
    false
}
