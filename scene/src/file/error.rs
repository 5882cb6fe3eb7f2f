//! What a bad scene file gets back: one [`SceneError`] naming the file, the line and column, the
//! field and what to do.
//!
//! The parser works in byte offsets (the spans `toml` records); this module turns an offset into
//! a 1-based line and a 1-based column counted in characters, and, for errors `toml` raises
//! itself (syntax, types, unknown fields), finds the field the offset falls in by walking the
//! document's spanned tree.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use toml::de::{DeTable, DeValue};

/// What is wrong with a scene file, one variant per rule, so that callers and tests can tell
/// the failures apart without reading the message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The text is not valid TOML.
    Syntax,
    /// A value has the wrong TOML type (a string where a number goes, ...).
    WrongType,
    /// A table has a key the format does not define.
    UnknownField,
    /// A required field is absent.
    MissingField,
    /// A field is defined, but not for this layer's kind (`cell` on a solid layer, ...).
    FieldNotForKind,
    /// `kind` names no layer kind.
    UnknownKind,
    /// A string field names no value it accepts (`direction`, `sampling`).
    UnknownValue,
    /// A number is outside the field's range.
    OutOfRange,
    /// An animation's period is zero (or rounds to no frame at all).
    ZeroPeriod,
    /// A colour is not `#rgb`, `#rgba`, `#rrggbb` or `#rrggbbaa`.
    BadColor,
    /// A length is neither a whole number of pixels nor a percentage like `"50%"`.
    BadLength,
    /// The scene has no layers.
    NoLayers,
    /// The scene has more than [`MAX_LAYERS`](crate::MAX_LAYERS) layers.
    TooManyLayers,
    /// Two layers have the same name.
    DuplicateName,
    /// A layer name is empty, too long or has characters outside `[A-Za-z0-9_-]`.
    BadName,
    /// An image path is empty or not usable, or a built-in image does not exist.
    BadImagePath,
}

/// A bad scene file: where, which field, what is wrong, and what to do about it.
///
/// Displays as `FILE:LINE:COLUMN: FIELD: MESSAGE; hint: HINT`, for example
/// `scene.toml:12:9: layers[2].opacity: 1.7 is out of range; hint: opacity is a number from 0 to 1`.
/// The field part is left out when the error is not inside any field (a syntax error between
/// tables), the hint when there is nothing useful to say.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SceneError {
    /// The scene file, as the caller named it.
    pub file: PathBuf,
    /// 1-based line of the offending text.
    pub line: usize,
    /// 1-based column of the offending text, in characters.
    pub column: usize,
    /// The field's path, like `layers[2].opacity`; empty at the top level of the document.
    pub field: String,
    /// Which rule was broken.
    pub kind: ErrorKind,
    /// What is wrong, naming the value.
    pub message: String,
    /// What to do about it, when there is something useful to say.
    pub hint: Option<String>,
}

impl fmt::Display for SceneError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: ", self.file.display(), self.line, self.column)?;
        if !self.field.is_empty() {
            write!(f, "{}: ", self.field)?;
        }
        f.write_str(&self.message)?;
        if let Some(hint) = &self.hint {
            write!(f, "; hint: {hint}")?;
        }
        Ok(())
    }
}

impl std::error::Error for SceneError {}

/// Everything a [`SceneError`] needs except its location, which [`Source::error`] adds.
#[derive(Debug)]
pub(crate) struct Problem {
    pub kind: ErrorKind,
    pub field: String,
    pub message: String,
    pub hint: Option<String>,
    pub span: Range<usize>,
}

impl Problem {
    pub(crate) fn new(
        kind: ErrorKind,
        field: impl Into<String>,
        span: Range<usize>,
        message: impl Into<String>,
    ) -> Self {
        Problem {
            kind,
            field: field.into(),
            message: message.into(),
            hint: None,
            span,
        }
    }

    pub(crate) fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

/// The text being parsed and the name it is reported under.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Source<'a> {
    pub text: &'a str,
    pub file: &'a Path,
}

impl Source<'_> {
    /// Places `problem` in the file.
    pub(crate) fn error(&self, problem: Problem) -> SceneError {
        let (line, column) = line_column(self.text, problem.span.start);
        SceneError {
            file: self.file.to_path_buf(),
            line,
            column,
            field: problem.field,
            kind: problem.kind,
            message: problem.message,
            hint: problem.hint,
        }
    }

    /// Turns an error `toml` raised while deserializing into a [`Problem`], finding the field
    /// its span falls in.
    pub(crate) fn toml_problem(&self, err: &toml::de::Error) -> Problem {
        let span = err.span().unwrap_or(0..0);
        let message = err.message().trim().to_string();
        // A document that does not parse as TOML has no tree to find a field in.
        let Ok(doc) = DeTable::parse(self.text) else {
            return Problem::new(ErrorKind::Syntax, "", span, message)
                .hint("see the TOML syntax at https://toml.io");
        };
        let mut path = Vec::new();
        find_path(doc.get_ref(), span.start, &mut path);
        let field = render_path(&path);
        if let Some(unknown) = message
            .strip_prefix("unknown field `")
            .and_then(|rest| rest.split('`').next())
        {
            let parent = &path[..path.len().saturating_sub(1)];
            let keys: Vec<&str> = parent
                .iter()
                .filter_map(|s| match s {
                    Segment::Key(k) => Some(k.as_str()),
                    Segment::Index(_) => None,
                })
                .collect();
            let known = super::schema::known_fields(&keys);
            let hint = match suggest_field(unknown, known) {
                Some(near) => format!("did you mean `{near}`?"),
                None if known.is_empty() => "this table takes no fields".to_string(),
                None => format!("the fields here are {}", list(known)),
            };
            return Problem::new(
                ErrorKind::UnknownField,
                field,
                span,
                format!("unknown field `{unknown}`"),
            )
            .hint(hint);
        }
        if message.starts_with("invalid type") {
            let message = plain_types(&message);
            // The innermost named field: for `colors[1]`, what `colors` holds.
            let hint = path
                .iter()
                .rev()
                .find_map(|seg| match seg {
                    Segment::Key(key) => Some(key.as_str()),
                    Segment::Index(_) => None,
                })
                .and_then(super::schema::field_hint)
                .unwrap_or("see the format in the triptych_scene::file docs");
            return Problem::new(ErrorKind::WrongType, field, span, message).hint(hint);
        }
        Problem::new(ErrorKind::Syntax, field, span, message)
    }
}

/// Serde's names for the expected types (`f64`, `struct RawLayer`), in the file's terms.
fn plain_types(message: &str) -> String {
    let mut out = message
        .replace("expected f64", "expected a number")
        .replace("expected i64", "expected a whole number")
        .replace("expected a sequence", "expected an array");
    if let Some(at) = out.find("expected struct Raw") {
        out.replace_range(at.., "expected a table");
    }
    out
}

/// 1-based line and character column of byte `offset` in `text` (clamped to the text).
pub(crate) fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = text[line_start..offset].chars().count() + 1;
    (line, column)
}

/// One step of a field path: a table key or an array index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Segment {
    Key(String),
    Index(usize),
}

/// Renders a path as `layers[2].rect.w`.
pub(crate) fn render_path(path: &[Segment]) -> String {
    let mut out = String::new();
    for seg in path {
        match seg {
            Segment::Key(key) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(key);
            }
            Segment::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

/// Extends `path` to the deepest key or value in `table` that contains byte `offset`; returns
/// whether one did.
///
/// Tables are searched through their keys and leaves rather than their own spans, because the
/// span of a table written as a `[[header]]` covers its header, not the keys below it.
fn find_path(table: &DeTable<'_>, offset: usize, path: &mut Vec<Segment>) -> bool {
    for (key, value) in table {
        path.push(Segment::Key(key.get_ref().to_string()));
        if key.span().contains(&offset) || find_in_value(value.get_ref(), offset, path) {
            return true;
        }
        if value.span().contains(&offset) {
            return true;
        }
        path.pop();
    }
    false
}

fn find_in_value(value: &DeValue<'_>, offset: usize, path: &mut Vec<Segment>) -> bool {
    match value {
        DeValue::Table(table) => find_path(table, offset, path),
        DeValue::Array(array) => {
            for (i, item) in array.iter().enumerate() {
                path.push(Segment::Index(i));
                if find_in_value(item.get_ref(), offset, path) || item.span().contains(&offset) {
                    return true;
                }
                path.pop();
            }
            false
        }
        _ => false,
    }
}

/// The candidate closest to `word`, if it is close enough to be what was meant: no edit for
/// words of one or two letters (only case differs), one for up to four, two for longer ones
/// (edits are insertions, deletions, substitutions and swaps of neighbours).
pub(crate) fn suggest<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let budget = match word.chars().count() {
        0..=2 => 0,
        3..=4 => 1,
        _ => 2,
    };
    candidates
        .iter()
        .map(|c| (edit_distance(word, c), *c))
        .filter(|(d, _)| *d <= budget)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// Other words for fields, that a first-time writer is likely to reach for.
const ALIASES: &[(&str, &str)] = &[
    ("width", "w"),
    ("height", "h"),
    ("left", "x"),
    ("top", "y"),
    ("colour", "color"),
    ("colours", "colors"),
    ("file", "path"),
    ("src", "path"),
    ("type", "kind"),
    ("alpha", "opacity"),
    ("duration", "period"),
    ("angle", "degrees"),
    ("move", "translate"),
    ("spin", "rotate"),
];

/// The field of `known` that `word` was probably meant to be: the nearest field, or the field
/// behind the nearest of [`ALIASES`].
pub(crate) fn suggest_field(word: &str, known: &[&'static str]) -> Option<&'static str> {
    let mut candidates: Vec<(&str, &'static str)> = known.iter().map(|k| (*k, *k)).collect();
    for (alias, target) in ALIASES {
        if let Some(t) = known.iter().find(|k| *k == target) {
            candidates.push((alias, t));
        }
    }
    let names: Vec<&str> = candidates.iter().map(|(n, _)| *n).collect();
    let near = suggest(word, &names)?;
    candidates.iter().find(|(n, _)| *n == near).map(|(_, t)| *t)
}

/// Optimal-string-alignment distance between `a` and `b`, case-insensitive.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.to_lowercase().chars().collect();
    let b: Vec<char> = b.to_lowercase().chars().collect();
    // rows[i][j]: distance between a[..i] and b[..j].
    let mut rows = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in rows.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in rows[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut d = (rows[i - 1][j] + 1)
                .min(rows[i][j - 1] + 1)
                .min(rows[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d = d.min(rows[i - 2][j - 2] + 1);
            }
            rows[i][j] = d;
        }
    }
    rows[a.len()][b.len()]
}

/// `"a"`, `"b"` or `"c"`, for hints that list the accepted values.
pub(crate) fn list(items: &[&str]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| format!("`{s}`")).collect();
    match quoted.len() {
        0 => String::new(),
        1 => quoted[0].clone(),
        n => format!("{} or {}", quoted[..n - 1].join(", "), quoted[n - 1]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_column_counts_lines_and_characters() {
        let text = "a = 1\nbé = 2\n\nc";
        assert_eq!(line_column(text, 0), (1, 1));
        assert_eq!(line_column(text, 4), (1, 5));
        assert_eq!(line_column(text, 6), (2, 1));
        // 'é' is two bytes but one column: the '=' after "bé " is column 4.
        assert_eq!(line_column(text, text.find("= 2").unwrap_or(0)), (2, 4));
        assert_eq!(line_column(text, text.len()), (4, 2));
        assert_eq!(line_column(text, 10_000), (4, 2));
        // An offset inside a multi-byte character falls back to its start.
        assert_eq!(line_column(text, 8), (2, 2));
    }

    #[test]
    fn suggestions_are_close_or_absent() {
        let kinds = ["solid", "gradient", "checker", "image", "text"];
        assert_eq!(suggest("gradinet", &kinds), Some("gradient"));
        assert_eq!(suggest("Solid", &kinds), Some("solid"));
        assert_eq!(suggest("chekcer", &kinds), Some("checker"));
        assert_eq!(suggest("txt", &kinds), Some("text"));
        assert_eq!(suggest("video", &kinds), None);
        assert_eq!(suggest("", &kinds), None);
        let rect = ["x", "y", "w", "h"];
        assert_eq!(suggest_field("width", &rect), Some("w"));
        assert_eq!(suggest_field("hieght", &rect), Some("h"));
        assert_eq!(suggest_field("X", &rect), Some("x"));
        assert_eq!(suggest_field("colour", &rect), None);
        assert_eq!(suggest_field("q", &rect), None);
    }

    #[test]
    fn paths_render_like_the_file() {
        let path = [
            Segment::Key("layers".into()),
            Segment::Index(2),
            Segment::Key("rect".into()),
            Segment::Key("w".into()),
        ];
        assert_eq!(render_path(&path), "layers[2].rect.w");
        assert_eq!(render_path(&[]), "");
    }

    #[test]
    fn serde_types_read_as_toml_types() {
        assert_eq!(
            plain_types("invalid type: string \"high\", expected f64"),
            "invalid type: string \"high\", expected a number"
        );
        assert_eq!(
            plain_types("invalid type: integer `3`, expected struct RawLayer"),
            "invalid type: integer `3`, expected a table"
        );
    }

    #[test]
    fn lists_read_as_prose() {
        assert_eq!(list(&["a"]), "`a`");
        assert_eq!(list(&["a", "b", "c"]), "`a`, `b` or `c`");
    }

    #[test]
    fn display_has_every_part() {
        let err = SceneError {
            file: PathBuf::from("scene.toml"),
            line: 12,
            column: 9,
            field: "layers[2].opacity".into(),
            kind: ErrorKind::OutOfRange,
            message: "1.7 is out of range".into(),
            hint: Some("opacity is a number from 0 to 1".into()),
        };
        assert_eq!(
            err.to_string(),
            "scene.toml:12:9: layers[2].opacity: 1.7 is out of range; \
             hint: opacity is a number from 0 to 1"
        );
    }
}
