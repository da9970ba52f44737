//! Located, actionable errors about user-written files (runbooks, inventories, drills).
//!
//! A [`Diagnostic`] names the file, line and column, what was wrong, what was expected and a
//! hint, and renders the offending line with a caret under it.

use std::fmt;
use std::path::PathBuf;

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
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "error: {}", self.message)?;
        let number = self
            .location
            .map(|l| l.line.to_string())
            .unwrap_or_default();
        let gutter = " ".repeat(number.len().max(1));
        match self.location {
            Some(location) => writeln!(f, "{gutter}--> {}:{location}", self.file.display())?,
            None => writeln!(f, "{gutter}--> {}", self.file.display())?,
        }
        if let (Some(location), Some(text)) = (self.location, &self.line_text) {
            writeln!(f, "{gutter} |")?;
            writeln!(f, "{number} | {text}")?;
            writeln!(
                f,
                "{gutter} | {}{}",
                " ".repeat(location.column.saturating_sub(1)),
                "^".repeat(token_width(text, location.column))
            )?;
        }
        if let Some(expected) = &self.expected {
            writeln!(f, "{gutter} = expected: {expected}")?;
        }
        if let Some(hint) = &self.hint {
            writeln!(f, "{gutter} = hint: {hint}")?;
        }
        Ok(())
    }
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
