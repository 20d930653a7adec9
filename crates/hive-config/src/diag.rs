//! [`Diagnostic`]s: what is wrong, where (file, line, column, key path), and what to do;
//! [`Diagnostics`]: all of them, rendered the way a compiler does.

use std::{
    fmt,
    path::{Path, PathBuf},
    sync::Arc,
};

use annotate_snippets::{AnnotationKind, Group, Level, Renderer, Snippet, renderer::DecorStyle};

/// What kind of problem a [`Diagnostic`] reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DiagnosticKind {
    /// The file is not valid YAML (a duplicate key included).
    Syntax,
    /// The directory or a file could not be read.
    Io,
    /// A key the schema does not have.
    UnknownKey,
    /// A required key is missing.
    MissingKey,
    /// A value of the wrong type (a string where a number goes, a list where a mapping goes).
    WrongType,
    /// A number, duration or rate outside its range.
    OutOfRange,
    /// A value that does not follow its syntax (`30` for a duration, `fast` for a jitter) or
    /// is otherwise unusable (a URL without a scheme).
    InvalidValue,
    /// A name that refers to nothing: a route's model, a rule's channel.
    UnknownReference,
    /// A secret's environment variable is not set (or is empty, or not Unicode).
    MissingEnvVar,
    /// A secret's file does not exist or cannot be read (or is empty).
    MissingSecretFile,
    /// A second model, route, rule or header of the same name.
    Duplicate,
    /// Settings that contradict each other (a backoff whose max is below its base, two
    /// variants given at once, a key that belongs elsewhere).
    Conflict,
    /// A model pattern that no name can reach.
    NeverMatches,
}

/// One problem of a config: where, what, and what to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    /// What kind of problem.
    pub kind: DiagnosticKind,
    /// The file, as the directory given to the loader joined with its name.
    pub file: PathBuf,
    /// The line, from 1 (0 when the problem is the file as a whole).
    pub line: usize,
    /// The column, from 1, in characters (0 when the problem is the file as a whole).
    pub column: usize,
    /// The key path: `models[2].breaker.failure_rate` (empty for the file as a whole).
    pub path: String,
    /// What is wrong.
    pub message: String,
    /// What to do about it, when there is something to say.
    pub help: Option<String>,
    /// The spot, in characters from the start of the file.
    pub(crate) span: Option<(usize, usize)>,
}

impl fmt::Display for Diagnostic {
    /// One line: `dir/resilience.yml:3:5: defaults.breaker.failure_rat: unknown key …; help: …`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if self.line > 0 {
            write!(f, ":{}:{}", self.line, self.column)?;
        }
        f.write_str(": ")?;
        if !self.path.is_empty() {
            write!(f, "{}: ", self.path)?;
        }
        f.write_str(&self.message)?;
        if let Some(help) = &self.help {
            write!(f, "; help: {help}")?;
        }
        Ok(())
    }
}

/// The text of one config file, and the spots never to show (values written where a
/// secret belongs).
#[derive(Clone)]
pub(crate) struct SourceFile {
    pub(crate) path: PathBuf,
    pub(crate) text: Arc<str>,
    pub(crate) masks: Vec<(usize, usize)>,
}

impl SourceFile {
    /// The text with every masked spot replaced by `*`, one per character.
    fn masked(&self) -> String {
        if self.masks.is_empty() {
            return self.text.to_string();
        }
        self.text
            .chars()
            .enumerate()
            .map(|(i, c)| {
                let hidden = !matches!(c, '\n' | '\r')
                    && self
                        .masks
                        .iter()
                        .any(|&(start, end)| (start..end).contains(&i));
                if hidden { '*' } else { c }
            })
            .collect()
    }
}

/// Every problem found in a config, in file order, with the sources to show them in.
///
/// [`render`](Self::render) shows each as a compiler does: the message, `--> file:line:col`,
/// the source line with a caret under the spot labelled with the key path, and the help.
/// Values written where a secret belongs are shown as `*`. `Display` is the plain rendering.
#[derive(Clone, Default)]
pub struct Diagnostics {
    list: Vec<Diagnostic>,
    files: Vec<SourceFile>,
}

impl Diagnostics {
    pub(crate) fn new(mut list: Vec<Diagnostic>, files: Vec<SourceFile>) -> Self {
        let order = |file: &Path| {
            files
                .iter()
                .position(|f| f.path == file)
                .map_or(0, |i| i + 1)
        };
        list.sort_by_key(|d| (order(&d.file), d.line, d.column));
        Self { list, files }
    }

    /// The problems, in file order.
    pub fn iter(&self) -> std::slice::Iter<'_, Diagnostic> {
        self.list.iter()
    }

    /// The problems, in file order.
    pub fn as_slice(&self) -> &[Diagnostic] {
        &self.list
    }

    /// How many problems.
    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// Every problem as a compiler shows it, each followed by a blank line; with ANSI colors
    /// when `color` is set, plain text otherwise.
    pub fn render(&self, color: bool) -> String {
        let renderer = if color {
            Renderer::styled()
        } else {
            Renderer::plain()
        }
        .decor_style(DecorStyle::Ascii);
        let mut out = String::new();
        for diagnostic in &self.list {
            out.push_str(&self.render_one(&renderer, diagnostic));
            out.push_str("\n\n");
        }
        out
    }

    fn render_one(&self, renderer: &Renderer, d: &Diagnostic) -> String {
        let file = self.files.iter().find(|f| f.path == d.file);
        let help = d.help.as_deref().map(|help| Level::HELP.message(help));
        let (Some(file), Some((start, end))) = (file, d.span) else {
            let title = Level::ERROR.primary_title(format!("{}: {}", d.file.display(), d.message));
            let group = match help {
                Some(help) => title.element(help),
                None => Group::with_title(title),
            };
            return renderer.render(&[group]);
        };
        let text = file.masked();
        let byte = |chars: usize| {
            text.char_indices()
                .nth(chars)
                .map_or(text.len(), |(at, _)| at)
        };
        let path = d.file.display().to_string();
        let mut annotation = AnnotationKind::Primary.span(byte(start)..byte(end));
        if !d.path.is_empty() {
            annotation = annotation.label(d.path.as_str());
        }
        let snippet = Snippet::source(text.as_str())
            .path(path.as_str())
            .fold(true)
            .annotation(annotation);
        let group = Level::ERROR
            .primary_title(d.message.as_str())
            .element(snippet);
        let group = match help {
            Some(help) => group.element(help),
            None => group,
        };
        renderer.render(&[group])
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render(false))
    }
}

impl fmt::Debug for Diagnostics {
    /// The problems, one line each (not the sources).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.list.iter().map(ToString::to_string))
            .finish()
    }
}

impl std::error::Error for Diagnostics {}

impl<'a> IntoIterator for &'a Diagnostics {
    type Item = &'a Diagnostic;
    type IntoIter = std::slice::Iter<'a, Diagnostic>;

    fn into_iter(self) -> Self::IntoIter {
        self.list.iter()
    }
}
