//! The located YAML tree and the strict walker over it: every reader checks one node,
//! reports what is wrong with its file, line, column and key path, and goes on, so that one
//! pass finds every problem.

use std::{
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use saphyr::{LoadableYamlNode, MarkedYaml, Scalar, YamlData};

use crate::{
    Diagnostic, DiagnosticKind, Secret, SecretSource,
    diag::SourceFile,
    secret::{EnvError, Environment},
    value::{ByteSize, Rate, format_duration, parse_duration},
};

/// The largest secret file read.
const MAX_SECRET_FILE: u64 = 64 * 1024;

/// One load: the files read, the problems found, where secrets come from.
pub(crate) struct Cx<'e> {
    pub(crate) files: Vec<SourceFile>,
    pub(crate) diags: Vec<Diagnostic>,
    env: &'e Environment,
    pub(crate) dir: PathBuf,
    pub(crate) secret_files: Vec<PathBuf>,
    /// The value of every secret read, never to be shown.
    secret_values: Vec<Arc<str>>,
}

/// A node of the tree, with where it is: its file, the key it is the value of (if any) and
/// its key path.
#[derive(Clone)]
pub(crate) struct Node<'a, 'y> {
    pub(crate) yaml: &'a MarkedYaml<'y>,
    key: Option<&'a MarkedYaml<'y>>,
    pub(crate) file: usize,
    pub(crate) path: String,
}

/// Which part of a node a problem points at.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Spot {
    /// The value (for a mapping or list: its key, the value spanning lines).
    Value,
    /// The key.
    Key,
}

impl<'a, 'y> Node<'a, 'y> {
    /// The root of file `file`.
    pub(crate) fn root(yaml: &'a MarkedYaml<'y>, file: usize) -> Self {
        Self {
            yaml,
            key: None,
            file,
            path: String::new(),
        }
    }

    fn child(&self, key: &'a MarkedYaml<'y>, name: &str, yaml: &'a MarkedYaml<'y>) -> Self {
        let simple = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_alphanumeric() || matches!(c, '_' | '-'));
        let step = if simple {
            name.to_owned()
        } else {
            format!("{name:?}")
        };
        Self {
            yaml,
            key: Some(key),
            file: self.file,
            path: if self.path.is_empty() {
                step
            } else {
                format!("{}.{step}", self.path)
            },
        }
    }

    fn item(&self, index: usize, yaml: &'a MarkedYaml<'y>) -> Self {
        Self {
            yaml,
            key: None,
            file: self.file,
            path: format!("{}[{index}]", self.path),
        }
    }

    /// The text of a string scalar.
    pub(crate) fn as_str(&self) -> Option<&'a str> {
        match &self.yaml.data {
            YamlData::Value(Scalar::String(s)) => Some(s.as_ref()),
            _ => None,
        }
    }

    /// The value of `key` if this is a mapping that has it (nothing is reported).
    pub(crate) fn peek(&self, key: &str) -> Option<Self> {
        let YamlData::Mapping(mapping) = &self.yaml.data else {
            return None;
        };
        mapping.iter().find_map(|(k, v)| match &k.data {
            YamlData::Value(Scalar::String(s)) if s == key => Some(self.child(k, key, v)),
            _ => None,
        })
    }

    /// Whether the value spans lines (a mapping or list, tagged or not).
    fn is_collection(&self) -> bool {
        let data = match &self.yaml.data {
            YamlData::Tagged(_, inner) => &inner.data,
            data => data,
        };
        matches!(data, YamlData::Mapping(_) | YamlData::Sequence(_))
    }

    /// The span a problem at `spot` points at, in characters, with its line and column.
    fn span(&self, spot: Spot) -> (usize, usize, usize, usize) {
        let ends = |y: &MarkedYaml<'_>| (y.span.start, y.span.end);
        let (start, end) = match (spot, self.key) {
            (Spot::Key, Some(key)) => ends(key),
            (Spot::Value, Some(key)) if self.is_collection() => ends(key),
            (Spot::Value, None) if self.is_collection() => {
                (self.yaml.span.start, self.yaml.span.start)
            }
            _ => ends(self.yaml),
        };
        (
            start.index(),
            end.index().max(start.index()),
            start.line(),
            start.col() + 1,
        )
    }

    /// The line of this node's key (or value), for "first defined at line N".
    pub(crate) fn line(&self) -> usize {
        self.key
            .map_or(self.yaml.span.start.line(), |k| k.span.start.line())
    }
}

/// The known keys of a mapping, read from it in any order.
pub(crate) struct Map<'a, 'y> {
    pub(crate) node: Node<'a, 'y>,
    entries: Vec<(String, Node<'a, 'y>)>,
}

impl<'a, 'y> Map<'a, 'y> {
    /// The value of `key`, if given.
    pub(crate) fn get(&self, key: &str) -> Option<Node<'a, 'y>> {
        self.entries
            .iter()
            .find(|(name, _)| name == key)
            .map(|(_, node)| node.clone())
    }

    /// Whether `key` is given.
    pub(crate) fn has(&self, key: &str) -> bool {
        self.entries.iter().any(|(name, _)| name == key)
    }

    /// The keys given, in file order.
    pub(crate) fn keys(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|(name, _)| name.as_str())
    }
}

/// The closest of `options` to `given`, if one is close enough to be a likely typo.
pub(crate) fn suggest<'k>(given: &str, options: &[&'k str]) -> Option<&'k str> {
    let given_lower = given.to_lowercase();
    options
        .iter()
        .filter_map(|&option| {
            if option.eq_ignore_ascii_case(given) {
                return Some((2.0, option));
            }
            let distance = strsim::damerau_levenshtein(&given_lower, option);
            let similarity = strsim::jaro_winkler(&given_lower, option);
            let close = (distance <= 2 && distance * 2 < option.chars().count().max(2))
                || similarity >= 0.88;
            close.then_some((similarity, option))
        })
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, option)| option)
}

/// `a`, `b` or `c`, each in backticks.
pub(crate) fn one_of(options: &[&str]) -> String {
    let quoted: Vec<String> = options.iter().map(|o| format!("`{o}`")).collect();
    match quoted.as_slice() {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    }
}

/// A few words for what a node holds, for "expected X, found Y" (scalars shown cut short).
fn describe(node: &Node<'_, '_>) -> String {
    let short = |s: &str| {
        let cut: String = s.chars().take(40).collect();
        if cut.len() < s.len() {
            format!("{cut}…")
        } else {
            cut
        }
    };
    match &node.yaml.data {
        YamlData::Value(Scalar::String(s)) => format!("the text `{}`", short(s)),
        YamlData::Value(Scalar::Integer(i)) => format!("the number {i}"),
        YamlData::Value(Scalar::FloatingPoint(f)) => format!("the number {f}"),
        YamlData::Value(Scalar::Boolean(b)) => format!("`{b}`"),
        YamlData::Value(Scalar::Null) => "nothing".to_owned(),
        YamlData::Sequence(_) => "a list".to_owned(),
        YamlData::Mapping(_) => "a mapping".to_owned(),
        YamlData::Tagged(tag, _) => format!("a value tagged `{tag}`"),
        _ => "an invalid value".to_owned(),
    }
}

/// The range of a rate setting.
#[derive(Clone, Copy)]
pub(crate) enum RateRange {
    /// (0, 1]
    AboveZeroToOne,
    /// [0, 1]
    ZeroToOne,
    /// (0, 1)
    Between,
    /// [0, 1)
    ZeroToBelowOne,
    /// [0, 1000]: a budget ratio.
    Ratio,
}

impl RateRange {
    fn contains(self, v: f64) -> bool {
        match self {
            Self::AboveZeroToOne => v > 0.0 && v <= 1.0,
            Self::ZeroToOne => (0.0..=1.0).contains(&v),
            Self::Between => v > 0.0 && v < 1.0,
            Self::ZeroToBelowOne => (0.0..1.0).contains(&v),
            Self::Ratio => (0.0..=1000.0).contains(&v),
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Self::AboveZeroToOne => "above 0% and at most 100%",
            Self::ZeroToOne => "from 0% to 100%",
            Self::Between => "above 0% and below 100%",
            Self::ZeroToBelowOne => "at least 0% and below 100%",
            Self::Ratio => "from 0 to 1000 (0% to 100000%)",
        }
    }
}

/// Whether a duration may be zero.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Zero {
    Allowed,
    Refused,
}

impl<'e> Cx<'e> {
    pub(crate) fn new(dir: PathBuf, env: &'e Environment) -> Self {
        Self {
            files: Vec::new(),
            diags: Vec::new(),
            env,
            dir,
            secret_files: Vec::new(),
            secret_values: Vec::new(),
        }
    }

    /// Reports a problem at `spot` of `node`.
    pub(crate) fn report(
        &mut self,
        kind: DiagnosticKind,
        node: &Node<'_, '_>,
        spot: Spot,
        message: impl Into<String>,
        help: Option<String>,
    ) {
        let (start, end, line, column) = node.span(spot);
        self.diags.push(Diagnostic {
            kind,
            file: self.files[node.file].path.clone(),
            line,
            column,
            path: node.path.clone(),
            message: message.into(),
            help,
            span: Some((start, end)),
        });
    }

    /// Reports a problem with a file as a whole.
    pub(crate) fn report_file(
        &mut self,
        kind: DiagnosticKind,
        file: &Path,
        message: impl Into<String>,
        help: Option<String>,
    ) {
        self.diags.push(Diagnostic {
            kind,
            file: file.to_path_buf(),
            line: 0,
            column: 0,
            path: String::new(),
            message: message.into(),
            help,
            span: None,
        });
    }

    fn wrong_type(&mut self, node: &Node<'_, '_>, expected: &str, help: Option<String>) {
        let found = describe(node);
        self.report(
            DiagnosticKind::WrongType,
            node,
            Spot::Value,
            format!("expected {expected}, found {found}"),
            help,
        );
    }

    /// Parses `text` as the file at index `file`: `None` when it is empty (only comments)
    /// or not YAML (reported).
    pub(crate) fn parse<'y>(&mut self, file: usize, text: &'y str) -> Option<MarkedYaml<'y>> {
        let docs = match MarkedYaml::load_from_str(text) {
            Ok(docs) => docs,
            Err(error) => {
                let m = error.marker();
                let duplicate = error.info().contains("duplicated key");
                let (kind, message, help) = if duplicate {
                    (
                        DiagnosticKind::Duplicate,
                        "this key is given twice in the same mapping".to_owned(),
                        Some("remove one of them: YAML keeps only one value per key".to_owned()),
                    )
                } else {
                    (
                        DiagnosticKind::Syntax,
                        format!("invalid YAML: {}", error.info()),
                        None,
                    )
                };
                self.diags.push(Diagnostic {
                    kind,
                    file: self.files[file].path.clone(),
                    line: m.line(),
                    column: m.col() + 1,
                    path: String::new(),
                    message,
                    help,
                    span: Some((m.index(), m.index())),
                });
                return None;
            }
        };
        let mut docs = docs.into_iter();
        let first = docs.next()?;
        if let Some(second) = docs.next() {
            let node = Node::root(&second, file);
            self.report(
                DiagnosticKind::Syntax,
                &node,
                Spot::Value,
                "a second YAML document: the file must hold one",
                Some("remove the `---` line and what follows, or merge the documents".to_owned()),
            );
            return None;
        }
        match first.data {
            YamlData::Value(Scalar::Null) | YamlData::BadValue => None,
            _ => Some(first),
        }
    }

    /// A mapping whose keys must be among `keys`: every other key is reported, with the
    /// closest valid key when one is close.
    pub(crate) fn map<'a, 'y>(
        &mut self,
        node: &Node<'a, 'y>,
        keys: &[&str],
    ) -> Option<Map<'a, 'y>> {
        let entries = self.entries(node)?;
        let mut known = Vec::with_capacity(entries.len());
        for (name, value) in entries {
            if keys.contains(&name.as_str()) {
                known.push((name, value));
                continue;
            }
            let help = match suggest(&name, keys) {
                Some(close) => format!("did you mean `{close}`?"),
                None => format!("the keys here are {}", one_of(keys)),
            };
            self.report(
                DiagnosticKind::UnknownKey,
                &value,
                Spot::Key,
                format!("unknown key `{name}`"),
                Some(help),
            );
        }
        Some(Map {
            node: node.clone(),
            entries: known,
        })
    }

    /// A mapping with keys of free choice (names of channels, headers): its entries. A key
    /// with nothing after it (every line under it commented out) is an empty mapping.
    pub(crate) fn entries<'a, 'y>(
        &mut self,
        node: &Node<'a, 'y>,
    ) -> Option<Vec<(String, Node<'a, 'y>)>> {
        if matches!(node.yaml.data, YamlData::Value(Scalar::Null)) {
            return Some(Vec::new());
        }
        let YamlData::Mapping(mapping) = &node.yaml.data else {
            self.wrong_type(node, "a mapping of `key: value` lines", None);
            return None;
        };
        let mut out = Vec::with_capacity(mapping.len());
        for (key, value) in mapping {
            let name = match &key.data {
                YamlData::Value(Scalar::String(s)) => s.to_string(),
                _ => {
                    let key_node = Node {
                        yaml: key,
                        key: None,
                        file: node.file,
                        path: node.path.clone(),
                    };
                    let found = describe(&key_node);
                    self.report(
                        DiagnosticKind::WrongType,
                        &key_node,
                        Spot::Value,
                        format!("a key must be text, found {found}"),
                        None,
                    );
                    continue;
                }
            };
            out.push((name.clone(), node.child(key, &name, value)));
        }
        Some(out)
    }

    /// Reports `key` missing from `map`.
    pub(crate) fn missing(&mut self, map: &Map<'_, '_>, key: &str, help: Option<String>) {
        let what = if map.node.path.is_empty() {
            "the file".to_owned()
        } else {
            format!("`{}`", map.node.path)
        };
        self.report(
            DiagnosticKind::MissingKey,
            &map.node,
            Spot::Value,
            format!("{what} needs a `{key}`"),
            help,
        );
    }

    /// The value of a required key.
    pub(crate) fn required<'a, 'y>(
        &mut self,
        map: &Map<'a, 'y>,
        key: &str,
        help: Option<String>,
    ) -> Option<Node<'a, 'y>> {
        let node = map.get(key);
        if node.is_none() {
            self.missing(map, key, help);
        }
        node
    }

    /// A list's items (none for a key with nothing after it).
    pub(crate) fn list<'a, 'y>(&mut self, node: &Node<'a, 'y>) -> Option<Vec<Node<'a, 'y>>> {
        match &node.yaml.data {
            YamlData::Value(Scalar::Null) => Some(Vec::new()),
            YamlData::Sequence(items) => Some(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| node.item(i, item))
                    .collect(),
            ),
            _ => {
                self.wrong_type(node, "a list", None);
                None
            }
        }
    }

    /// A text.
    pub(crate) fn string(&mut self, node: &Node<'_, '_>) -> Option<String> {
        match node.as_str() {
            Some(s) => Some(s.to_owned()),
            None => {
                let help = matches!(
                    node.yaml.data,
                    YamlData::Value(
                        Scalar::Integer(_) | Scalar::FloatingPoint(_) | Scalar::Boolean(_)
                    )
                )
                .then(|| "put it in quotes to make it text".to_owned());
                self.wrong_type(node, "text", help);
                None
            }
        }
    }

    /// A text that is not empty (nor only spaces).
    pub(crate) fn name(&mut self, node: &Node<'_, '_>) -> Option<String> {
        let text = self.string(node)?;
        if text.trim().is_empty() {
            self.report(
                DiagnosticKind::InvalidValue,
                node,
                Spot::Value,
                "must not be empty",
                None,
            );
            return None;
        }
        Some(text)
    }

    /// A list of texts.
    pub(crate) fn string_list(&mut self, node: &Node<'_, '_>) -> Option<Vec<String>> {
        let items = self.list(node)?;
        let mut out = Vec::with_capacity(items.len());
        let mut ok = true;
        for item in &items {
            match self.name(item) {
                Some(s) => out.push(s),
                None => ok = false,
            }
        }
        ok.then_some(out)
    }

    /// `true` or `false`.
    pub(crate) fn bool(&mut self, node: &Node<'_, '_>) -> Option<bool> {
        match node.yaml.data {
            YamlData::Value(Scalar::Boolean(b)) => Some(b),
            _ => {
                let help = node
                    .as_str()
                    .filter(|s| {
                        matches!(
                            s.to_ascii_lowercase().as_str(),
                            "yes" | "no" | "on" | "off" | "y" | "n"
                        )
                    })
                    .map(|_| "YAML 1.2 reads only `true` and `false` as booleans".to_owned());
                self.wrong_type(node, "`true` or `false`", help);
                None
            }
        }
    }

    /// A whole number in `min..=max`.
    pub(crate) fn int(&mut self, node: &Node<'_, '_>, min: u64, max: u64) -> Option<u64> {
        let value = match node.yaml.data {
            YamlData::Value(Scalar::Integer(i)) => i,
            _ => {
                let help = node
                    .as_str()
                    .filter(|s| s.trim().parse::<i64>().is_ok())
                    .map(|_| "remove the quotes: a number is written bare".to_owned());
                self.wrong_type(node, "a whole number", help);
                return None;
            }
        };
        match u64::try_from(value) {
            Ok(v) if (min..=max).contains(&v) => Some(v),
            _ => {
                let range = if max == u64::MAX {
                    format!("at least {min}")
                } else {
                    format!("from {min} to {max}")
                };
                self.report(
                    DiagnosticKind::OutOfRange,
                    node,
                    Spot::Value,
                    format!("{value} is out of range: it must be {range}"),
                    None,
                );
                None
            }
        }
    }

    /// A whole number in `min..=max`, as a `u32`.
    pub(crate) fn u32(&mut self, node: &Node<'_, '_>, min: u32, max: u32) -> Option<u32> {
        self.int(node, u64::from(min), u64::from(max))
            .and_then(|v| u32::try_from(v).ok())
    }

    /// A number (whole or not), finite, at least `min`.
    pub(crate) fn number(&mut self, node: &Node<'_, '_>, min: f64, what: &str) -> Option<f64> {
        let value = match node.yaml.data {
            YamlData::Value(Scalar::Integer(i)) => i as f64,
            YamlData::Value(Scalar::FloatingPoint(f)) => f.into_inner(),
            _ => {
                self.wrong_type(node, "a number", None);
                return None;
            }
        };
        if value.is_finite() && value >= min {
            Some(value)
        } else {
            self.report(
                DiagnosticKind::OutOfRange,
                node,
                Spot::Value,
                format!("{value} is out of range: {what}"),
                None,
            );
            None
        }
    }

    /// A duration (`30s`, `5m`, `1h30m`, `250ms`, `0`), at most a year, above zero unless
    /// `zero` allows it.
    pub(crate) fn duration(&mut self, node: &Node<'_, '_>, zero: Zero) -> Option<Duration> {
        let syntax = "a duration is a number and a unit: 250ms, 30s, 5m, 1h, 1h30m";
        let parsed = match &node.yaml.data {
            YamlData::Value(Scalar::String(s)) => parse_duration(s),
            YamlData::Value(Scalar::Integer(0)) => Ok(Duration::ZERO),
            YamlData::Value(Scalar::Integer(i)) => {
                self.report(
                    DiagnosticKind::InvalidValue,
                    node,
                    Spot::Value,
                    format!("`{i}` has no unit"),
                    Some(format!(
                        "write {i}s for seconds or {i}ms for milliseconds: a plain number is \
                         not a duration"
                    )),
                );
                return None;
            }
            _ => {
                self.wrong_type(node, "a duration", Some(syntax.to_owned()));
                return None;
            }
        };
        let duration = match parsed {
            Ok(d) => d,
            Err(error) => {
                self.report(
                    DiagnosticKind::InvalidValue,
                    node,
                    Spot::Value,
                    format!("invalid duration: {error}"),
                    Some(syntax.to_owned()),
                );
                return None;
            }
        };
        if hive_core::check_duration("duration", duration, zero == Zero::Allowed).is_ok() {
            return Some(duration);
        }
        let message = if duration.is_zero() {
            "must be above zero".to_owned()
        } else {
            format!(
                "{} is longer than the longest duration accepted, {} (a year)",
                format_duration(duration),
                format_duration(hive_core::MAX_DURATION)
            )
        };
        self.report(DiagnosticKind::OutOfRange, node, Spot::Value, message, None);
        None
    }

    /// A duration, or `off` (`None`).
    pub(crate) fn duration_or_off(
        &mut self,
        node: &Node<'_, '_>,
        zero: Zero,
    ) -> Option<Option<Duration>> {
        if node.as_str() == Some("off") {
            return Some(None);
        }
        self.duration(node, zero).map(Some)
    }

    /// A rate (`20%`, `0.2`) in `range`.
    pub(crate) fn rate(&mut self, node: &Node<'_, '_>, range: RateRange) -> Option<f64> {
        let parsed = match &node.yaml.data {
            YamlData::Value(Scalar::Integer(i)) => Ok(Rate(*i as f64)),
            YamlData::Value(Scalar::FloatingPoint(f)) => Ok(Rate(f.into_inner())),
            YamlData::Value(Scalar::String(s)) => s.parse::<Rate>(),
            _ => {
                self.wrong_type(
                    node,
                    "a rate",
                    Some("write a percentage (20%) or a share (0.2)".to_owned()),
                );
                return None;
            }
        };
        match parsed {
            Ok(Rate(v)) if v.is_finite() && range.contains(v) => Some(v),
            Ok(rate) => {
                // `50` for 50%: a bare number above 1 where shares go up to 1.
                let bare = matches!(
                    node.yaml.data,
                    YamlData::Value(Scalar::Integer(_) | Scalar::FloatingPoint(_))
                );
                let help =
                    (bare && rate.0 > 1.0 && rate.0 <= 100.0 && !matches!(range, RateRange::Ratio))
                        .then(|| {
                            format!(
                                "a bare number is a share: write {}% for a percentage",
                                rate.0
                            )
                        });
                self.report(
                    DiagnosticKind::OutOfRange,
                    node,
                    Spot::Value,
                    format!("{rate} is out of range: it must be {}", range.describe()),
                    help,
                );
                None
            }
            Err(error) => {
                self.report(
                    DiagnosticKind::InvalidValue,
                    node,
                    Spot::Value,
                    format!("invalid rate: {error}"),
                    None,
                );
                None
            }
        }
    }

    /// A size (`64KiB`, `1MiB`, or a number of bytes).
    pub(crate) fn size(&mut self, node: &Node<'_, '_>) -> Option<u64> {
        let parsed = match &node.yaml.data {
            YamlData::Value(Scalar::Integer(i)) => u64::try_from(*i)
                .map(ByteSize)
                .map_err(|_| "a size cannot be negative".to_owned()),
            YamlData::Value(Scalar::String(s)) => s.parse::<ByteSize>().map_err(|e| e.message),
            _ => {
                self.wrong_type(
                    node,
                    "a size",
                    Some("write a size such as 64KiB or 1MiB".to_owned()),
                );
                return None;
            }
        };
        match parsed {
            Ok(size) => Some(size.0),
            Err(message) => {
                self.report(
                    DiagnosticKind::InvalidValue,
                    node,
                    Spot::Value,
                    format!("invalid size: {message}"),
                    None,
                );
                None
            }
        }
    }

    /// One of a few words, each standing for a value.
    pub(crate) fn keyword<T: Copy>(
        &mut self,
        node: &Node<'_, '_>,
        what: &str,
        options: &[(&str, T)],
    ) -> Option<T> {
        let names: Vec<&str> = options.iter().map(|(name, _)| *name).collect();
        let Some(text) = node.as_str() else {
            self.wrong_type(node, &format!("{what}: {}", one_of(&names)), None);
            return None;
        };
        if let Some((_, value)) = options.iter().find(|(name, _)| *name == text) {
            return Some(*value);
        }
        let help = match suggest(text, &names) {
            Some(close) => format!("did you mean `{close}`?"),
            None => format!("write {}", one_of(&names)),
        };
        self.report(
            DiagnosticKind::InvalidValue,
            node,
            Spot::Value,
            format!("`{text}` is not {what}"),
            Some(help),
        );
        None
    }

    /// The variant of a value written either as a bare word (`sequential`) or as a mapping
    /// with one key (`{ hedged: { … } }`): the word, and the mapping's value if any.
    pub(crate) fn variant<'a, 'y>(
        &mut self,
        node: &Node<'a, 'y>,
        what: &str,
        words: &[&str],
    ) -> Option<(String, Option<Node<'a, 'y>>)> {
        let name = match &node.yaml.data {
            YamlData::Value(Scalar::String(s)) => s.to_string(),
            YamlData::Mapping(m) if m.len() == 1 => {
                let entries = self.entries(node)?;
                let (name, value) = entries.into_iter().next()?;
                if words.contains(&name.as_str()) {
                    return Some((name, Some(value)));
                }
                let help = match suggest(&name, words) {
                    Some(close) => format!("did you mean `{close}`?"),
                    None => format!("write {}", one_of(words)),
                };
                self.report(
                    DiagnosticKind::UnknownKey,
                    &value,
                    Spot::Key,
                    format!("`{name}` is not {what}"),
                    Some(help),
                );
                return None;
            }
            YamlData::Mapping(m) => {
                let count = m.len();
                self.report(
                    DiagnosticKind::Conflict,
                    node,
                    Spot::Value,
                    format!("{what} is one of {}, given {count} at once", one_of(words)),
                    Some("keep one key in this mapping".to_owned()),
                );
                return None;
            }
            _ => {
                self.wrong_type(node, &format!("{what}: {}", one_of(words)), None);
                return None;
            }
        };
        if words.contains(&name.as_str()) {
            return Some((name, None));
        }
        let help = match suggest(&name, words) {
            Some(close) => format!("did you mean `{close}`?"),
            None => format!("write {}", one_of(words)),
        };
        self.report(
            DiagnosticKind::InvalidValue,
            node,
            Spot::Value,
            format!("`{name}` is not {what}"),
            Some(help),
        );
        None
    }

    /// Hides the value of `node` in every rendering of its file.
    pub(crate) fn mask(&mut self, node: &Node<'_, '_>) {
        let (start, end, _, _) = node.span(Spot::Value);
        if let Some(file) = self.files.get_mut(node.file) {
            file.masks.push((start, end));
        }
    }

    /// A secret: `{ env: NAME }` or `{ file: path }`, resolved now. A value written in the
    /// file is refused and never shown.
    pub(crate) fn secret(&mut self, node: &Node<'_, '_>) -> Option<Secret> {
        let form = "write `{ env: NAME }` (an environment variable) or `{ file: path }` (a \
                    file, relative to the config directory)";
        if matches!(
            node.yaml.data,
            YamlData::Value(Scalar::Null) | YamlData::Sequence(_) | YamlData::Tagged(..)
        ) {
            self.wrong_type(node, "a secret", Some(form.to_owned()));
            return None;
        }
        if !matches!(node.yaml.data, YamlData::Mapping(_)) {
            self.mask(node);
            self.report(
                DiagnosticKind::WrongType,
                node,
                Spot::Value,
                "a secret is never written in the config file",
                Some(form.to_owned()),
            );
            return None;
        }
        let map = self.map(node, &["env", "file"])?;
        match (map.get("env"), map.get("file")) {
            (Some(_), Some(file)) => {
                self.report(
                    DiagnosticKind::Conflict,
                    &file,
                    Spot::Key,
                    "a secret comes from `env` or from `file`, not both",
                    None,
                );
                None
            }
            (None, None) => {
                self.missing(&map, "env", Some(form.to_owned()));
                None
            }
            (Some(env), None) => self.env_secret(&env),
            (None, Some(file)) => self.file_secret(&file),
        }
        .inspect(|secret| self.secret_values.push(Arc::from(secret.expose())))
    }

    /// Masks every secret value read so far wherever it is written in the files (a key
    /// pasted under a wrong key, say), so that no problem shown in them shows it.
    pub(crate) fn mask_secret_values(&mut self) {
        for file in &mut self.files {
            for value in self.secret_values.iter().filter(|v| v.len() >= 4) {
                for (byte, _) in file.text.match_indices(&**value) {
                    let start = file.text[..byte].chars().count();
                    file.masks.push((start, start + value.chars().count()));
                }
            }
        }
    }

    fn env_secret(&mut self, node: &Node<'_, '_>) -> Option<Secret> {
        let name = self.string(node)?;
        let valid = name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            self.report(
                DiagnosticKind::InvalidValue,
                node,
                Spot::Value,
                format!("`{name}` is not an environment variable name"),
                Some("a name is letters, digits and `_`, not starting with a digit".to_owned()),
            );
            return None;
        }
        let problem = match self.env.get(&name) {
            Ok(value) if !value.is_empty() => {
                return Some(Secret::new(SecretSource::Env(name), value));
            }
            Ok(_) => "is set but empty",
            Err(EnvError::NotSet) => "is not set",
            Err(EnvError::NotUnicode) => "is not valid Unicode",
        };
        self.report(
            DiagnosticKind::MissingEnvVar,
            node,
            Spot::Value,
            format!("the environment variable `{name}` {problem}"),
            Some(format!(
                "set `{name}` in the gateway's environment, or read the secret from a file \
                 with `{{ file: path }}`"
            )),
        );
        None
    }

    fn file_secret(&mut self, node: &Node<'_, '_>) -> Option<Secret> {
        let written = self.name(node)?;
        let path = self.dir.join(&written);
        self.secret_files.push(path.clone());
        let fail = |cx: &mut Self, kind, message: String| {
            cx.report(
                kind,
                node,
                Spot::Value,
                message,
                Some(format!(
                    "the path is relative to the config directory: {}",
                    path.display()
                )),
            );
        };
        let read = std::fs::metadata(&path).and_then(|meta| {
            if meta.len() > MAX_SECRET_FILE {
                Ok(None)
            } else {
                std::fs::read(&path).map(Some)
            }
        });
        let bytes = match read {
            Ok(Some(bytes)) => bytes,
            Ok(None) => {
                fail(
                    self,
                    DiagnosticKind::InvalidValue,
                    format!("the secret file `{written}` is larger than 64 KiB"),
                );
                return None;
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                fail(
                    self,
                    DiagnosticKind::MissingSecretFile,
                    format!("the secret file `{written}` does not exist"),
                );
                return None;
            }
            Err(error) => {
                fail(
                    self,
                    DiagnosticKind::MissingSecretFile,
                    format!(
                        "the secret file `{written}` cannot be read: {}",
                        error.kind()
                    ),
                );
                return None;
            }
        };
        let Ok(text) = String::from_utf8(bytes) else {
            fail(
                self,
                DiagnosticKind::InvalidValue,
                format!("the secret file `{written}` is not UTF-8 text"),
            );
            return None;
        };
        let value = text.trim_end_matches(['\n', '\r', ' ', '\t']);
        if value.is_empty() {
            fail(
                self,
                DiagnosticKind::MissingSecretFile,
                format!("the secret file `{written}` is empty"),
            );
            return None;
        }
        Some(Secret::new(
            SecretSource::File { written, path },
            Arc::<str>::from(value),
        ))
    }
}
