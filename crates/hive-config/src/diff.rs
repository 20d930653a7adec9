//! [`diff`]: what a reload changes, model by model and route by route, so that what did not
//! change keeps its state.

use std::collections::BTreeSet;

use serde_json::{Map, Value, json};

use crate::{Config, ModelConfig, RouteConfig};

/// One setting that changed: its key path and its canonical values before and after
/// (secrets as their source; a rotated secret reads `"env:NAME (rotated)"` after).
#[derive(Clone, Debug, PartialEq)]
pub struct Change {
    /// The key path, relative to the model or route for their changes
    /// (`retry.max_attempts`), from the top otherwise (`server.listen`).
    pub path: String,
    /// The value before (`null` when the key was not there).
    pub from: Value,
    /// The value after (`null` when the key is gone).
    pub to: Value,
}

/// A model entry whose settings changed.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelChange {
    /// Its id or pattern.
    pub model: String,
    /// What changed.
    pub changes: Vec<Change>,
}

/// The settings of a model that only steer routing: changing them keeps the model's stack
/// and its breaker and health state.
pub const ROUTING_ONLY: [&str; 3] = ["priority", "weight", "accepts_prefill"];

impl ModelChange {
    /// Whether only routing settings changed ([`ROUTING_ONLY`]): the model's stack, and so
    /// its breaker, health and budgets, can stay as they are. Any other change (its URL, key,
    /// headers, retry, breaker, health, timeouts, slow start) needs a new stack.
    pub fn keeps_state(&self) -> bool {
        self.changes.iter().all(|c| {
            let top = c.path.split(['.', '[']).next().unwrap_or_default();
            ROUTING_ONLY.contains(&top)
        })
    }
}

/// A route whose settings changed.
#[derive(Clone, Debug, PartialEq)]
pub struct RouteChange {
    /// Its name.
    pub route: String,
    /// What changed.
    pub changes: Vec<Change>,
}

/// What changed between two configs.
///
/// Models are matched by id or pattern and routes by name, so a reordered file changes
/// nothing but the priorities it implies. A model's settings are compared after `defaults`
/// are applied: a change of `defaults.retry` changes every model that does not override
/// it (and is listed in [`global`](Self::global) too).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ConfigDiff {
    /// Models in the new config only.
    pub models_added: Vec<String>,
    /// Models in the old config only.
    pub models_removed: Vec<String>,
    /// Models in both whose settings differ.
    pub models_changed: Vec<ModelChange>,
    /// Models in both with the same settings: keep their stacks.
    pub models_unchanged: Vec<String>,
    /// Whether the models both configs have are listed in another order. The order breaks
    /// ties of priority and decides which pattern a name goes to: the default route and
    /// name resolution change, the stacks do not.
    pub models_reordered: bool,
    /// Routes in the new config only.
    pub routes_added: Vec<String>,
    /// Routes in the old config only.
    pub routes_removed: Vec<String>,
    /// Routes in both whose settings differ (membership, order, strategy …).
    pub routes_changed: Vec<RouteChange>,
    /// Everything else that changed: `server`, `admin`, `metrics`, `defaults`, `fallback`,
    /// `alerts`, `audit`.
    pub global: Vec<Change>,
}

impl ConfigDiff {
    /// Whether nothing changed.
    pub fn is_empty(&self) -> bool {
        self.models_added.is_empty()
            && self.models_removed.is_empty()
            && self.models_changed.is_empty()
            && !self.models_reordered
            && self.routes_added.is_empty()
            && self.routes_removed.is_empty()
            && self.routes_changed.is_empty()
            && self.global.is_empty()
    }

    /// Whether the model entry `key` (an id or pattern) keeps its stack — breaker, health,
    /// budgets — across this change: it is in both configs, and unchanged or changed in
    /// [routing settings only](ModelChange::keeps_state). For a concrete name a pattern
    /// matched, ask for the pattern (`Config::resolve_model(name)` gives it); the answer
    /// fits `ModelManagerBuilder::reusing`'s `keep`.
    pub fn keeps_stack(&self, key: &str) -> bool {
        self.models_unchanged.iter().any(|m| m == key)
            || self
                .models_changed
                .iter()
                .any(|m| m.model == key && m.keeps_state())
    }

    /// Whether a section outside `models` and `routes` changed.
    pub fn global_changed(&self) -> bool {
        !self.global.is_empty()
    }

    /// Whether the global change touches `section` (`server`, `alerts` …).
    pub fn section_changed(&self, section: &str) -> bool {
        self.global.iter().any(|c| {
            c.path == section
                || c.path
                    .strip_prefix(section)
                    .is_some_and(|rest| rest.starts_with(['.', '[']))
        })
    }

    /// The diff as JSON, for the audit log: `{ "models": { "added", "removed", "changed":
    /// { id: [{ path, from, to }] } }, "routes": { … }, "global": [{ path, from, to }] }`.
    /// Secrets appear by their source only.
    pub fn to_json(&self) -> Value {
        let changes = |list: &[Change]| -> Value {
            list.iter()
                .map(|c| json!({ "path": c.path, "from": c.from, "to": c.to }))
                .collect()
        };
        let models: Map<String, Value> = self
            .models_changed
            .iter()
            .map(|m| (m.model.clone(), changes(&m.changes)))
            .collect();
        let routes: Map<String, Value> = self
            .routes_changed
            .iter()
            .map(|r| (r.route.clone(), changes(&r.changes)))
            .collect();
        json!({
            "models": {
                "added": self.models_added,
                "removed": self.models_removed,
                "changed": models,
                "reordered": self.models_reordered,
            },
            "routes": {
                "added": self.routes_added,
                "removed": self.routes_removed,
                "changed": routes,
            },
            "global": changes(&self.global),
        })
    }
}

/// What changed from `old` to `new`.
pub fn diff(old: &Config, new: &Config) -> ConfigDiff {
    let mut out = ConfigDiff::default();
    let old_secrets = old.secrets();
    let new_secrets = new.secrets();
    let rotated = |model: Option<&str>, changes: &mut Vec<Change>| {
        for (owner, path, secret) in new_secrets.iter().filter(|(o, _, _)| *o == model) {
            let before = old_secrets
                .iter()
                .find(|(o, p, _)| *o == *owner && p == path)
                .map(|(_, _, s)| s);
            let Some(before) = before else { continue };
            let covered = changes.iter().any(|c| {
                path.strip_prefix(c.path.as_str())
                    .is_some_and(|rest| rest.is_empty() || rest.starts_with(['.', '[']))
            });
            if !covered && before.source() == secret.source() && before.expose() != secret.expose()
            {
                changes.push(Change {
                    path: path.clone(),
                    from: Value::String(before.source().to_string()),
                    to: Value::String(format!("{} (rotated)", secret.source())),
                });
            }
        }
    };

    for model in &new.models {
        match old.model(model.key()) {
            None => out.models_added.push(model.key().to_owned()),
            Some(before) => {
                let mut changes = Vec::new();
                compare("", &model_json(before), &model_json(model), &mut changes);
                rotated(Some(model.key()), &mut changes);
                if changes.is_empty() {
                    out.models_unchanged.push(model.key().to_owned());
                } else {
                    out.models_changed.push(ModelChange {
                        model: model.key().to_owned(),
                        changes,
                    });
                }
            }
        }
    }
    out.models_removed = old
        .models
        .iter()
        .filter(|m| new.model(m.key()).is_none())
        .map(|m| m.key().to_owned())
        .collect();
    let common = |config: &Config, other: &Config| -> Vec<String> {
        config
            .models
            .iter()
            .filter(|m| other.model(m.key()).is_some())
            .map(|m| m.key().to_owned())
            .collect()
    };
    out.models_reordered = common(old, new) != common(new, old);

    for route in &new.routes {
        match old.route(&route.name) {
            None => out.routes_added.push(route.name.clone()),
            Some(before) => {
                let mut changes = Vec::new();
                compare("", &route_json(before), &route_json(route), &mut changes);
                if !changes.is_empty() {
                    out.routes_changed.push(RouteChange {
                        route: route.name.clone(),
                        changes,
                    });
                }
            }
        }
    }
    out.routes_removed = old
        .routes
        .iter()
        .filter(|r| new.route(&r.name).is_none())
        .map(|r| r.name.clone())
        .collect();

    compare("", &global_json(old), &global_json(new), &mut out.global);
    rotated(None, &mut out.global);
    out
}

fn model_json(model: &ModelConfig) -> Value {
    let mut value = serde_json::to_value(model).unwrap_or(Value::Null);
    if let Value::Object(map) = &mut value {
        map.remove("name");
    }
    value
}

fn route_json(route: &RouteConfig) -> Value {
    let mut value = serde_json::to_value(route).unwrap_or(Value::Null);
    if let Value::Object(map) = &mut value {
        map.remove("name");
    }
    value
}

fn global_json(config: &Config) -> Value {
    let mut value = config.to_json();
    if let Value::Object(map) = &mut value {
        map.remove("models");
        map.remove("routes");
    }
    value
}

/// Adds a change for every leaf that differs, going into objects (arrays compare whole).
fn compare(path: &str, old: &Value, new: &Value, out: &mut Vec<Change>) {
    match (old, new) {
        (Value::Object(a), Value::Object(b)) => {
            let keys: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
            for key in keys {
                let next = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                compare(
                    &next,
                    a.get(key).unwrap_or(&Value::Null),
                    b.get(key).unwrap_or(&Value::Null),
                    out,
                );
            }
        }
        (a, b) if a == b => {}
        (a, b) => out.push(Change {
            path: path.to_owned(),
            from: a.clone(),
            to: b.clone(),
        }),
    }
}
