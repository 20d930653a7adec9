//! [`load`] and [`Loader`]: both files of a directory into a [`Config`], or every problem.

use std::{
    path::{Path, PathBuf},
    sync::Arc,
};

use crate::{
    Config, DiagnosticKind, Diagnostics, Environment, ModelConfig, RouteConfig, Secret,
    diag::SourceFile,
    read::{read_models, read_resilience},
    schema::{ChannelConfig, ModelName, Origin},
    yaml::{Cx, Node},
};

/// The global file: server, admin, metrics, defaults, fallback, alerts, audit.
pub const RESILIENCE_FILE: &str = "resilience.yml";
/// The models file: models and routes.
pub const MODELS_FILE: &str = "models-resilience.yml";

/// Loads `resilience.yml` and `models-resilience.yml` from `dir`, secrets from the process
/// environment: the config, or every problem found (see [`Loader::load`]).
pub fn load(dir: impl AsRef<Path>) -> Result<Config, Diagnostics> {
    Loader::new().load(dir)
}

/// Loads configs; says where `{ env: NAME }` secrets come from.
#[derive(Clone, Debug, Default)]
#[must_use]
pub struct Loader {
    env: Environment,
}

impl Loader {
    /// A loader reading the process environment.
    pub fn new() -> Self {
        Self::default()
    }

    /// Reads `{ env: NAME }` secrets from `env` instead (tests, embedded configs).
    pub fn env(mut self, env: Environment) -> Self {
        self.env = env;
        self
    }

    /// Loads both files of `dir`. Either may be missing (or empty): its sections take their
    /// defaults. A missing directory, a file that cannot be read, and a `.yaml` file where
    /// the `.yml` one is expected are errors. Every problem of both files is reported at
    /// once, each with its file, line, column and key path.
    pub fn load(&self, dir: impl AsRef<Path>) -> Result<Config, Diagnostics> {
        let dir = dir.as_ref();
        let mut cx = Cx::new(dir.to_path_buf(), &self.env);
        if !dir.is_dir() {
            let message = if dir.exists() {
                "is not a directory"
            } else {
                "does not exist"
            };
            cx.report_file(
                DiagnosticKind::Io,
                dir,
                format!("the config directory {message}"),
                Some(format!(
                    "give the directory that holds {RESILIENCE_FILE} and {MODELS_FILE}"
                )),
            );
            return Err(Diagnostics::new(cx.diags, cx.files));
        }
        let resilience = read_file(&mut cx, dir, RESILIENCE_FILE);
        let models = read_file(&mut cx, dir, MODELS_FILE);
        self.build(cx, resilience, models)
    }

    /// Loads a config given as text (an embedded default, a test): `None` stands for a
    /// missing file. Problems name the files as if they were in `dir`, which is also where
    /// `{ file: path }` secrets and the audit log are.
    pub fn load_str(
        &self,
        dir: impl AsRef<Path>,
        resilience: Option<&str>,
        models: Option<&str>,
    ) -> Result<Config, Diagnostics> {
        let dir = dir.as_ref();
        let mut cx = Cx::new(dir.to_path_buf(), &self.env);
        let mut add = |name: &str, text: Option<&str>| {
            let path = dir.join(name);
            text.map(|text| add_file(&mut cx, path.clone(), Arc::from(text)))
                .unwrap_or(FileRead { path, index: None })
        };
        let resilience = add(RESILIENCE_FILE, resilience);
        let models = add(MODELS_FILE, models);
        self.build(cx, resilience, models)
    }

    fn build(
        &self,
        mut cx: Cx<'_>,
        resilience: FileRead,
        models: FileRead,
    ) -> Result<Config, Diagnostics> {
        let text = |cx: &Cx<'_>, file: &FileRead| file.index.map(|i| cx.files[i].text.clone());
        let (resilience_text, models_text) = (text(&cx, &resilience), text(&cx, &models));
        let resilience_tree = match (&resilience_text, resilience.index) {
            (Some(text), Some(index)) => cx.parse(index, text),
            _ => None,
        };
        let models_tree = match (&models_text, models.index) {
            (Some(text), Some(index)) => cx.parse(index, text),
            _ => None,
        };
        let resilience_root = resilience_tree
            .as_ref()
            .zip(resilience.index)
            .map(|(yaml, index)| Node::root(yaml, index));
        let models_root = models_tree
            .as_ref()
            .zip(models.index)
            .map(|(yaml, index)| Node::root(yaml, index));
        let global = read_resilience(&mut cx, resilience_root.as_ref());
        let (model_list, routes) = read_models(
            &mut cx,
            models_root.as_ref(),
            &global.defaults,
            &global.fallback,
        );
        if !cx.diags.is_empty() {
            cx.mask_secret_values();
            return Err(Diagnostics::new(cx.diags, cx.files));
        }
        let mut secret_files = cx.secret_files;
        secret_files.sort();
        secret_files.dedup();
        Ok(Config {
            server: global.server,
            admin: global.admin,
            metrics: global.metrics,
            defaults: global.defaults,
            fallback: global.fallback,
            alerts: global.alerts,
            audit: global.audit,
            history: global.history,
            cluster: global.cluster,
            models: model_list,
            routes,
            origin: Origin {
                dir: cx.dir,
                files: vec![resilience.path, models.path],
                present: vec![resilience.index.is_some(), models.index.is_some()],
                secret_files,
            },
        })
    }
}

/// One config file: its path, and its index among the files read (`None`: absent).
struct FileRead {
    path: PathBuf,
    index: Option<usize>,
}

fn add_file(cx: &mut Cx<'_>, path: PathBuf, text: Arc<str>) -> FileRead {
    cx.files.push(SourceFile {
        path: path.clone(),
        text,
        masks: Vec::new(),
    });
    FileRead {
        path,
        index: Some(cx.files.len() - 1),
    }
}

/// Reads `dir/name` into the load (absent is fine; unreadable is reported).
fn read_file(cx: &mut Cx<'_>, dir: &Path, name: &str) -> FileRead {
    let path = dir.join(name);
    match std::fs::read(&path) {
        Ok(bytes) => match String::from_utf8(bytes) {
            Ok(text) => add_file(cx, path, Arc::from(text)),
            Err(_) => {
                cx.report_file(
                    DiagnosticKind::Io,
                    &path,
                    "the file is not UTF-8 text",
                    None,
                );
                FileRead { path, index: None }
            }
        },
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            let yaml = path.with_extension("yaml");
            if yaml.exists() {
                cx.report_file(
                    DiagnosticKind::Io,
                    &yaml,
                    format!(
                        "found {}, but the file is read as {name}",
                        display_name(&yaml)
                    ),
                    Some(format!("rename it to {name}")),
                );
            }
            FileRead { path, index: None }
        }
        Err(error) => {
            cx.report_file(
                DiagnosticKind::Io,
                &path,
                format!("cannot read the file: {error}"),
                None,
            );
            FileRead { path, index: None }
        }
    }
}

fn display_name(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

impl Config {
    /// The directory the config was loaded from.
    pub fn dir(&self) -> &Path {
        &self.origin.dir
    }

    /// The two config files, and whether each was there (a missing one means defaults).
    pub fn files(&self) -> impl Iterator<Item = (&Path, bool)> {
        self.origin
            .files
            .iter()
            .map(PathBuf::as_path)
            .zip(self.origin.present.iter().copied())
    }

    /// What a reloader watches: both config files (present or not) and every secret file.
    /// Environment variables are read once per load: a new value needs a reload (SIGHUP).
    pub fn watched_paths(&self) -> Vec<PathBuf> {
        let mut paths = self.origin.files.clone();
        paths.extend(self.origin.secret_files.iter().cloned());
        paths
    }

    /// The model entry with this id or pattern (as written).
    pub fn model(&self, key: &str) -> Option<&ModelConfig> {
        self.models.iter().find(|m| m.key() == key)
    }

    /// The model entry a request for `name` goes to: the entry with that id, else the first
    /// pattern (in file order) that matches it.
    pub fn resolve_model(&self, name: &str) -> Option<&ModelConfig> {
        self.models
            .iter()
            .find(|m| matches!(&m.name, ModelName::Id(id) if id == name))
            .or_else(|| {
                self.models
                    .iter()
                    .find(|m| matches!(m.name, ModelName::Pattern(_)) && m.name.matches(name))
            })
    }

    /// The route named `name`.
    pub fn route(&self, name: &str) -> Option<&RouteConfig> {
        self.routes.iter().find(|r| r.name == name)
    }

    /// The models in priority order (lower first; file order among equals).
    pub fn models_by_priority(&self) -> Vec<&ModelConfig> {
        let mut models: Vec<&ModelConfig> = self.models.iter().collect();
        models.sort_by_key(|m| m.priority);
        models
    }

    /// Every secret, with where it is: a key path, and the model it belongs to (if any).
    pub(crate) fn secrets(&self) -> Vec<(Option<&str>, String, &Secret)> {
        let mut out: Vec<(Option<&str>, String, &Secret)> = Vec::new();
        for (i, key) in self.server.api_keys.iter().enumerate() {
            out.push((None, format!("server.api_keys[{i}]"), key));
        }
        if let Some(token) = &self.admin.token {
            out.push((None, "admin.token".to_owned(), token));
        }
        if let Some(token) = &self.admin.read_token {
            out.push((None, "admin.read_token".to_owned(), token));
        }
        for (name, channel) in &self.alerts.channels {
            let at = |field: &str| format!("alerts.channels.{name}.{field}");
            match channel {
                ChannelConfig::Slack { webhook } => out.push((None, at("webhook"), webhook)),
                ChannelConfig::Webhook { url, signing_key } => {
                    out.push((None, at("url"), url));
                    if let Some(key) = signing_key {
                        out.push((None, at("signing_key"), key));
                    }
                }
                ChannelConfig::Email(email) => {
                    if let Some(password) = &email.password {
                        out.push((None, at("password"), password));
                    }
                }
                ChannelConfig::Log => {}
            }
        }
        for model in &self.models {
            if let Some(key) = &model.api_key {
                out.push((Some(model.key()), "api_key".to_owned(), key));
            }
            for (name, value) in &model.secret_headers {
                out.push((Some(model.key()), format!("secret_headers.{name}"), value));
            }
        }
        out
    }
}
