//! Located, actionable errors about user-written files (runbooks, inventories, drills).
//!
//! A [`Diagnostic`] names the file, line and column, what was wrong, what was expected and a
//! hint, and renders the offending line with a caret under it.

use std::fmt;
use std::path::PathBuf;

use crate::shown::{MAX_LINE_CHARS, MAX_MESSAGE_LINE_CHARS, cut_line, escape, escape_line};
use crate::source::{Location, SourceFile, SourceMap, YamlPath};

/// One located problem in a user-written file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// The file the problem is in.
    pub file: PathBuf,
    /// Where in the file, when known.
    pub location: Option<Location>,
    /// What is wrong, in lowercase.
    pub message: String,
    /// What would have been accepted.
    pub expected: Option<String>,
    /// How to fix it.
    pub hint: Option<String>,
    /// The text of the offending line, for the caret display.
    line_text: Option<String>,
}

impl Diagnostic {
    /// A problem at a known location in `source`.
    pub fn at(source: &SourceFile, location: Option<Location>, message: impl Into<String>) -> Self {
        Self {
            file: source.path().to_owned(),
            location,
            message: message.into(),
            expected: None,
            hint: None,
            line_text: location
                .and_then(|l| source.line(l.line))
                .map(str::to_owned),
        }
    }

    /// A problem at a known location in `source` whose line is never shown, because it may hold
    /// a secret (a parameter's value).
    pub fn at_unshown(
        source: &SourceFile,
        location: Option<Location>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            line_text: None,
            ..Self::at(source, location, message)
        }
    }

    /// A problem about the value at `path`, located through `map`.
    pub fn at_value(
        source: &SourceFile,
        map: &SourceMap,
        path: &YamlPath,
        message: impl Into<String>,
    ) -> Self {
        Self::at(source, map.value(path), message)
    }

    /// A problem about the key of the entry at `path`, located through `map`.
    pub fn at_key(
        source: &SourceFile,
        map: &SourceMap,
        path: &YamlPath,
        message: impl Into<String>,
    ) -> Self {
        Self::at(source, map.key(path), message)
    }

    /// Adds what would have been accepted.
    pub fn expected(mut self, expected: impl Into<String>) -> Self {
        self.expected = Some(expected.into());
        self
    }

    /// Adds a hint on how to fix it.
    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// Adds a "did you mean" hint when one of `candidates` is close to `word`.
    pub fn suggest<'a>(self, word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Self {
        match closest(word, candidates) {
            Some(best) => self.hint(format!("did you mean `{best}`?")),
            None => self,
        }
    }
}

/// The candidate closest to `word`, if any is close enough to be a likely typo.
pub fn closest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (strsim::jaro_winkler(word, c), c))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

/// The choices an "expected" line lists: ``one of `a`, `b`, `c` ``.
pub fn one_of<S: AsRef<str>>(choices: impl IntoIterator<Item = S>) -> String {
    let quoted: Vec<String> = choices
        .into_iter()
        .map(|choice| format!("`{}`", choice.as_ref()))
        .collect();
    format!("one of {}", quoted.join(", "))
}

/// How many characters the caret should underline: the token starting at `column`.
fn token_width(line: &str, column: usize) -> usize {
    let rest: Vec<char> = line.chars().skip(column.saturating_sub(1)).collect();
    let width = match rest.first() {
        Some(quote @ ('"' | '\'')) => rest[1..]
            .iter()
            .position(|c| c == quote)
            .map_or(rest.len(), |end| end + 2),
        _ => rest
            .iter()
            .position(|c| matches!(c, ',' | ']' | '}' | '#') || c.is_whitespace())
            .unwrap_or(rest.len()),
    };
    width.max(1)
}

impl fmt::Display for Diagnostic {
    /// Text from input is shown escaped (control, bidirectional and zero-width characters) and
    /// long lines cut, so that an error can neither drive the terminal nor flood it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "error: {}", shown(&self.message))?;
        let number = self
            .location
            .map(|l| l.line.to_string())
            .unwrap_or_default();
        let gutter = " ".repeat(number.len().max(1));
        let file = self.file.display().to_string();
        let file = escape_line(&file);
        match self.location {
            Some(location) => writeln!(f, "{gutter}--> {file}:{location}")?,
            None => writeln!(f, "{gutter}--> {file}")?,
        }
        if let (Some(location), Some(text)) = (self.location, &self.line_text) {
            let (text, column, width) = excerpt(text, location.column);
            writeln!(f, "{gutter} |")?;
            writeln!(f, "{number} | {text}")?;
            writeln!(
                f,
                "{gutter} | {}{}",
                " ".repeat(column.saturating_sub(1)),
                "^".repeat(width)
            )?;
        }
        if let Some(expected) = &self.expected {
            writeln!(f, "{gutter} = expected: {}", shown(expected))?;
        }
        if let Some(hint) = &self.hint {
            writeln!(f, "{gutter} = hint: {}", shown(hint))?;
        }
        Ok(())
    }
}

/// A message as shown: escaped, each line cut.
fn shown(text: &str) -> String {
    escape(text)
        .split('\n')
        .map(|line| cut_line(line, MAX_MESSAGE_LINE_CHARS).into_owned())
        .collect::<Vec<_>>()
        .join("\n")
}

/// The part of `line` shown around `column`, escaped, with the caret's column and width in it.
/// A line longer than [`MAX_LINE_CHARS`] is shown as a window around the column, marked `...`.
fn excerpt(line: &str, column: usize) -> (String, usize, usize) {
    let chars: Vec<char> = line.chars().collect();
    let at = column.saturating_sub(1).min(chars.len());
    let width = token_width(line, column).min(MAX_LINE_CHARS / 2);
    let start = if chars.len() <= MAX_LINE_CHARS {
        0
    } else {
        at.saturating_sub(MAX_LINE_CHARS / 4)
    };
    let end = (start + MAX_LINE_CHARS).min(chars.len());
    let visible = |range: &[char]| -> String {
        let text: String = range.iter().collect();
        escape_line(&text).into_owned()
    };
    let mut text = String::new();
    if start > 0 {
        text.push_str("...");
    }
    let before = visible(&chars[start..at]);
    let caret_column = text.chars().count() + before.chars().count() + 1;
    let token_end = (at + width).min(chars.len()).max(at);
    let token = visible(&chars[at..token_end]);
    text.push_str(&before);
    text.push_str(&token);
    text.push_str(&visible(&chars[token_end.min(end)..end]));
    if end < chars.len() {
        text.push_str("...");
    }
    (text, caret_column, token.chars().count().max(1))
}

/// Every problem found in one pass over the input, in file order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostics(Vec<Diagnostic>);

impl Diagnostics {
    /// Wraps a non-empty list of problems, sorted by file and location.
    pub fn new(mut list: Vec<Diagnostic>) -> Self {
        list.sort_by(|a, b| (&a.file, a.location).cmp(&(&b.file, b.location)));
        list.dedup();
        Self(list)
    }

    /// The problems.
    pub fn iter(&self) -> impl Iterator<Item = &Diagnostic> {
        self.0.iter()
    }
}

impl From<Diagnostic> for Diagnostics {
    fn from(diagnostic: Diagnostic) -> Self {
        Self(vec![diagnostic])
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, diagnostic) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{diagnostic}")?;
        }
        if self.0.len() > 1 {
            write!(f, "\n{} errors", self.0.len())?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostics {}

/// Collects problems while a pass goes on, so that one run reports all of them.
#[derive(Debug, Default)]
pub struct DiagnosticSink(Vec<Diagnostic>);

impl DiagnosticSink {
    /// Records a problem.
    pub fn push(&mut self, diagnostic: Diagnostic) {
        self.0.push(diagnostic);
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `Ok(value)` when nothing was recorded, else every recorded problem.
    pub fn finish<T>(self, value: T) -> Result<T, Diagnostics> {
        if self.0.is_empty() {
            Ok(value)
        } else {
            Err(Diagnostics::new(self.0))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_a_caret_under_the_token() {
        let source = SourceFile::new("rb.yaml", "steps:\n  - needs: [stop-all, x]\n");
        let location = Some(Location {
            line: 2,
            column: 13,
        });
        let rendered = Diagnostic::at(&source, location, "unknown step `stop-all`")
            .expected("the id of a step in this runbook")
            .hint("did you mean `stop-members`?")
            .to_string();
        assert_eq!(
            rendered,
            "error: unknown step `stop-all`\n --> rb.yaml:2:13\n  |\n2 |   - needs: [stop-all, x]\n  |             ^^^^^^^^\n  = expected: the id of a step in this runbook\n  = hint: did you mean `stop-members`?\n"
        );
    }

    #[test]
    fn input_text_is_escaped_and_long_lines_are_cut_around_the_caret() {
        let source = SourceFile::new("e\u{1b}.yaml", "steps: [\"\u{1b}[2Jx\u{202e}\"]\n");
        let location = Some(Location { line: 1, column: 9 });
        let rendered = Diagnostic::at(&source, location, "bad `\u{1b}[2J\u{7}`")
            .hint("\u{202e}reversed")
            .to_string();
        assert!(
            !rendered.contains('\u{1b}') && !rendered.contains('\u{202e}'),
            "{rendered:?}"
        );
        assert!(rendered.contains("--> e\\u{1b}.yaml:1:9"), "{rendered}");
        // The caret stays under the token, whose escapes widen it.
        assert!(
            rendered.contains(
                "1 | steps: [\"\\u{1b}[2Jx\\u{202e}\"]\n  |         ^^^^^^^^^^^^^^^^^^^^\n"
            ),
            "{rendered}"
        );

        let long = format!("key: {}bad{}", "a ".repeat(5000), " z".repeat(5000));
        let source = SourceFile::new("l.yaml", long.clone());
        let column = long.find("bad").unwrap() + 1;
        let rendered = Diagnostic::at(
            &source,
            Some(Location { line: 1, column }),
            "x".repeat(10_000),
        )
        .to_string();
        assert!(rendered.len() < 2000, "{} bytes", rendered.len());
        let lines: Vec<&str> = rendered.lines().collect();
        let shown = lines.iter().position(|l| l.contains("bad")).unwrap();
        let caret = lines[shown + 1].find('^').unwrap();
        assert_eq!(&lines[shown][caret..caret + 3], "bad", "{rendered}");
    }

    #[test]
    fn quoted_tokens_are_underlined_whole() {
        assert_eq!(token_width(r#"x: "a b" c"#, 4), 5);
    }

    #[test]
    fn suggests_only_close_words() {
        assert_eq!(
            closest("stop-membrs", ["stop-members", "start"]),
            Some("stop-members")
        );
        assert_eq!(closest("zzz", ["stop-members", "start"]), None);
    }
}
