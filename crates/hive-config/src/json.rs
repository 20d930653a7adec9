//! Other YAML files of the project (drill scenarios) read with serde: [`YamlJson`] turns the
//! located YAML tree into JSON and keeps where each value was, so that a value serde or a
//! later check refuses is shown at its line, with its key path and a caret, as the config's
//! own problems are.

use std::{collections::HashMap, path::Path, sync::Arc};

use saphyr::{LoadableYamlNode, MarkedYaml, Scalar, YamlData};
use serde::de::DeserializeOwned;
use serde_json::{Map, Number, Value};

use crate::{Diagnostic, DiagnosticKind, Diagnostics, Rate, diag::SourceFile, parse_duration};

/// One YAML document as JSON, with the place of every value by key path
/// (`faults[0].fault.kind`).
///
/// ```
/// use std::path::Path;
/// use hive_config::YamlJson;
///
/// #[derive(serde::Deserialize)]
/// #[serde(deny_unknown_fields)]
/// struct Drill { name: String, rate: u32 }
///
/// let read = YamlJson::parse(Path::new("drill.yml"), "name: outage\nrate: fast\n").unwrap();
/// let error = read.deserialize::<Drill>().err().unwrap();
/// assert_eq!(error.as_slice()[0].line, 2);
/// assert_eq!(error.as_slice()[0].path, "rate");
/// ```
#[derive(Debug)]
pub struct YamlJson {
    value: Value,
    file: Arc<Path>,
    text: Arc<str>,
    /// Key path → (line, column, start, end) of the value (for a mapping or list: of its key).
    spots: HashMap<String, (usize, usize, usize, usize)>,
}

impl YamlJson {
    /// Reads `text` (the file at `path`): one YAML document of mappings, lists and scalars.
    /// Its error names the line and column of the first problem.
    pub fn parse(path: &Path, text: &str) -> Result<Self, Diagnostics> {
        let file: Arc<Path> = Arc::from(path);
        let text: Arc<str> = Arc::from(text);
        let fail = |line: usize, column: usize, at: usize, message: String| {
            problem(&file, &text, line, column, (at, at), String::new(), message)
        };
        let docs = MarkedYaml::load_from_str(&text).map_err(|error| {
            let m = error.marker();
            fail(
                m.line(),
                m.col() + 1,
                m.index(),
                format!("invalid YAML: {}", error.info()),
            )
        })?;
        let mut docs = docs.into_iter();
        let Some(root) = docs.next() else {
            return Err(fail(0, 0, 0, "the file is empty".to_owned()));
        };
        if let Some(second) = docs.next() {
            let start = second.span.start;
            return Err(fail(
                start.line(),
                start.col() + 1,
                start.index(),
                "a second YAML document: one is expected".to_owned(),
            ));
        }
        let mut spots = HashMap::new();
        let value =
            to_json(&root, String::new(), None, &mut spots, 0).map_err(|(spot, message)| {
                let (line, column, start, end) = spot;
                problem(
                    &file,
                    &text,
                    line,
                    column,
                    (start, end),
                    String::new(),
                    message,
                )
            })?;
        Ok(Self {
            value,
            file,
            text,
            spots,
        })
    }

    /// The document as JSON.
    pub fn value(&self) -> &Value {
        &self.value
    }

    /// Deserializes the document; a refusal names the key path and line of the value.
    pub fn deserialize<T: DeserializeOwned>(&self) -> Result<T, Diagnostics> {
        serde_path_to_error::deserialize(&self.value).map_err(|error| {
            let path = key_path(error.path());
            let message = error.inner().to_string();
            self.problem(&path, message)
        })
    }

    /// A problem with the value at `path` (as [`deserialize`](Self::deserialize) names
    /// paths: `faults[0].to`), shown at that value, or at the nearest enclosing one that
    /// the file has.
    pub fn problem(&self, path: &str, message: impl Into<String>) -> Diagnostics {
        let mut at = path;
        let spot = loop {
            if let Some(spot) = self.spots.get(at) {
                break Some(*spot);
            }
            match at.rfind(['.', '[']) {
                Some(cut) => at = &at[..cut],
                None => break self.spots.get("").copied(),
            }
        };
        let (line, column, start, end) = spot.unwrap_or((0, 0, 0, 0));
        problem(
            &self.file,
            &self.text,
            line,
            column,
            (start, end),
            path.to_owned(),
            message.into(),
        )
    }
}

fn problem(
    file: &Arc<Path>,
    text: &Arc<str>,
    line: usize,
    column: usize,
    span: (usize, usize),
    path: String,
    message: String,
) -> Diagnostics {
    let diagnostic = Diagnostic {
        kind: DiagnosticKind::InvalidValue,
        file: file.to_path_buf(),
        line,
        column,
        path,
        message,
        help: None,
        span: (line > 0).then_some(span),
    };
    let source = SourceFile {
        path: file.to_path_buf(),
        text: Arc::clone(text),
        masks: Vec::new(),
    };
    Diagnostics::new(vec![diagnostic], vec![source])
}

/// A serde path as the config's key paths are written: `faults[0].fault.kind`.
fn key_path(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut out = String::new();
    for segment in path.iter() {
        match segment {
            Segment::Seq { index } => out.push_str(&format!("[{index}]")),
            Segment::Map { key } | Segment::Enum { variant: key } => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(key);
            }
            Segment::Unknown => {}
        }
    }
    out
}

type Spot = (usize, usize, usize, usize);

fn spot_of(yaml: &MarkedYaml<'_>) -> Spot {
    let start = yaml.span.start;
    (
        start.line(),
        start.col() + 1,
        start.index(),
        yaml.span.end.index(),
    )
}

/// How deep mappings and lists may nest (a hostile file cannot exhaust the stack).
const MAX_DEPTH: usize = 64;

fn to_json(
    yaml: &MarkedYaml<'_>,
    path: String,
    key: Option<&MarkedYaml<'_>>,
    spots: &mut HashMap<String, Spot>,
    depth: usize,
) -> Result<Value, (Spot, String)> {
    let here = spot_of(yaml);
    if depth > MAX_DEPTH {
        return Err((here, format!("nested more than {MAX_DEPTH} levels deep")));
    }
    let nested = matches!(yaml.data, YamlData::Mapping(_) | YamlData::Sequence(_));
    spots.insert(
        path.clone(),
        match key {
            Some(key) if nested => spot_of(key),
            _ => here,
        },
    );
    Ok(match &yaml.data {
        YamlData::Value(Scalar::Null) => Value::Null,
        YamlData::Value(Scalar::Boolean(b)) => Value::Bool(*b),
        YamlData::Value(Scalar::Integer(i)) => Value::Number((*i).into()),
        YamlData::Value(Scalar::FloatingPoint(f)) => Number::from_f64(f.into_inner())
            .map(Value::Number)
            .ok_or((here, "a number that is not finite".to_owned()))?,
        YamlData::Value(Scalar::String(s)) => Value::String(s.to_string()),
        YamlData::Sequence(items) => Value::Array(
            items
                .iter()
                .enumerate()
                .map(|(i, item)| to_json(item, format!("{path}[{i}]"), None, spots, depth + 1))
                .collect::<Result<_, _>>()?,
        ),
        YamlData::Mapping(mapping) => {
            let mut map = Map::new();
            for (k, v) in mapping {
                let YamlData::Value(Scalar::String(name)) = &k.data else {
                    return Err((spot_of(k), "keys are names (text)".to_owned()));
                };
                let child = if path.is_empty() {
                    name.to_string()
                } else {
                    format!("{path}.{name}")
                };
                if map.contains_key(name.as_ref()) {
                    return Err((spot_of(k), format!("`{name}` is given twice")));
                }
                let value = to_json(v, child, Some(k), spots, depth + 1)?;
                map.insert(name.to_string(), value);
            }
            Value::Object(map)
        }
        YamlData::Tagged(tag, _) => {
            return Err((
                here,
                format!("a tagged value (`{tag}`) is not expected here"),
            ));
        }
        _ => return Err((here, "not a value this file can hold".to_owned())),
    })
}

/// Serde helpers for the config's own notations in files read with [`YamlJson`]:
/// `#[serde(with = "hive_config::notation::duration")]` reads `30s`, `1h30m`;
/// `#[serde(with = "hive_config::notation::rate")]` reads `20%` or `0.2`.
pub mod notation {
    use super::*;

    /// A duration written as the config writes them (`500ms`, `30s`, `1h30m`).
    pub mod duration {
        use std::time::Duration;

        use serde::{Deserialize, Deserializer, Serializer};

        use super::parse_duration;

        /// Reads `30s`.
        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
            let text = String::deserialize(d)?;
            parse_duration(&text).map_err(serde::de::Error::custom)
        }

        /// Writes `30s`.
        pub fn serialize<S: Serializer>(value: &Duration, s: S) -> Result<S::Ok, S::Error> {
            s.serialize_str(&crate::format_duration(*value))
        }
    }

    /// A share written `20%` or `0.2` (or a number), in `0..=1`.
    pub mod rate {
        use serde::{Deserialize, Deserializer, Serializer};

        use super::Rate;

        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Written {
            Number(f64),
            Text(String),
        }

        /// Reads `20%`, `0.2`.
        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
            let value = match Written::deserialize(d)? {
                Written::Number(n) => n,
                Written::Text(text) => text.parse::<Rate>().map_err(serde::de::Error::custom)?.0,
            };
            if !(0.0..=1.0).contains(&value) {
                return Err(serde::de::Error::custom(format!(
                    "{} is not within 0% and 100%",
                    Rate(value)
                )));
            }
            Ok(value)
        }

        /// Writes `20%`.
        pub fn serialize<S: Serializer>(value: &f64, s: S) -> Result<S::Ok, S::Error> {
            s.serialize_str(&Rate(*value).to_string())
        }
    }
}
