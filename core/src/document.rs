//! A parsed YAML document that remembers where its values came from.

use serde::de::DeserializeOwned;

use crate::diagnostic::{Diagnostic, Diagnostics};
use crate::source::{Location, PathSegment, SourceFile, SourceMap, YamlPath};

/// A typed value parsed from a YAML file, with the file and its source map for later errors.
#[derive(Debug)]
pub struct Document<T> {
    /// The typed value.
    pub value: T,
    /// The file it was parsed from.
    pub source: SourceFile,
    /// Where each YAML node starts.
    pub map: SourceMap,
}

impl<T: DeserializeOwned> Document<T> {
    /// Parses `source` as YAML into `T`.
    pub fn parse(source: SourceFile) -> Result<Self, Diagnostics> {
        if let Some(location) = crate::source::too_deep(source.text()) {
            return Err(Diagnostic::at(
                &source,
                Some(location),
                format!(
                    "the YAML is nested deeper than {} levels",
                    crate::source::MAX_DEPTH
                ),
            )
            .hint(
                "runbooks, inventories and drills nest a few levels; look for unclosed `{` or `[`",
            )
            .into());
        }
        let map = SourceMap::build(source.text());
        match serde_yaml::from_str(source.text()) {
            Ok(value) => Ok(Self { value, source, map }),
            Err(err) => Err(yaml_diagnostic(&source, &map, &YamlPath::root(), &err).into()),
        }
    }
}

impl<T> Document<T> {
    /// A problem about the value at `path`.
    pub fn error_at(&self, path: &YamlPath, message: impl Into<String>) -> Diagnostic {
        Diagnostic::at_value(&self.source, &self.map, path, message)
    }

    /// A problem about the key of the entry at `path`.
    pub fn error_at_key(&self, path: &YamlPath, message: impl Into<String>) -> Diagnostic {
        Diagnostic::at_key(&self.source, &self.map, path, message)
    }
}

/// Turns a serde_yaml error into a diagnostic. serde_yaml's own location wins; errors from
/// `from_value` have none and are located at `path` (the value that was being converted), or at
/// the field they name when it is found under `path`.
pub fn yaml_diagnostic(
    source: &SourceFile,
    map: &SourceMap,
    path: &YamlPath,
    err: &serde_yaml::Error,
) -> Diagnostic {
    // serde_yaml writes " at line L column C" into the message; the location is shown separately.
    let text = match err.location() {
        Some(l) => err
            .to_string()
            .replace(&format!(" at line {} column {}", l.line(), l.column()), ""),
        None => err.to_string(),
    };
    let text = text.as_str();
    // It also prefixes the path inside the document ("steps[0]: ..."); keep it, it helps.
    let (message, expected) = match text.split_once(", expected ") {
        Some((message, expected)) => (message, Some(expected)),
        None => (text, None),
    };
    let location = err
        .location()
        .map(|l| Location {
            line: l.line(),
            column: l.column(),
        })
        .or_else(|| {
            let field = named_field(message)?;
            // "unknown field `x`" at path `...x` names the key itself; "missing field `x`" a
            // key that would be under the path.
            match path.last() {
                Some(PathSegment::Key(last)) if last == field => map.key_exact(path),
                _ => map.key_exact(&path.key(field)),
            }
        })
        .or_else(|| map.value(path));
    let mut diagnostic = Diagnostic::at(source, location, message.to_owned());
    if let Some(expected) = expected {
        diagnostic = diagnostic.expected(expected.to_owned());
    }
    if message.contains("unknown field") {
        diagnostic =
            diagnostic.hint("check the spelling; the schema in `schemas/` lists every field");
    }
    diagnostic
}

/// The field a serde message names, as in "unknown field `x`" or "missing field `x`".
fn named_field(message: &str) -> Option<&str> {
    let start = message.find('`')? + 1;
    let end = start + message[start..].find('`')?;
    Some(&message[start..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Sample {
        name: String,
        count: u32,
    }

    #[test]
    fn deep_nesting_is_refused_at_the_level_past_the_limit() {
        let deep = format!("a: {}", "[".repeat(64 * 1024));
        let err = Document::<serde_yaml::Value>::parse(SourceFile::new("d.yaml", deep))
            .unwrap_err()
            .to_string();
        assert!(err.contains("nested deeper than 128 levels"), "{err}");
        assert!(err.contains("--> d.yaml:1:"), "{err}");
        assert!(
            err.len() < 2048,
            "{} bytes: the long line is cut",
            err.len()
        );
        let fine = format!("a: {}{}", "[".repeat(100), "]".repeat(100));
        assert!(Document::<serde_yaml::Value>::parse(SourceFile::new("f.yaml", fine)).is_ok());
    }

    #[test]
    fn type_errors_carry_line_and_column() {
        let source = SourceFile::new("s.yaml", "name: x\ncount: many\n");
        let err = Document::<Sample>::parse(source).unwrap_err();
        let rendered = err.to_string();
        assert!(rendered.contains("--> s.yaml:2:8"), "{rendered}");
        assert!(
            rendered.contains("invalid type: string \"many\""),
            "{rendered}"
        );
        assert!(rendered.contains("= expected: u32"), "{rendered}");
    }

    #[test]
    fn unknown_fields_get_a_hint() {
        let source = SourceFile::new("s.yaml", "name: x\ncount: 1\ncolour: red\n");
        let rendered = Document::<Sample>::parse(source).unwrap_err().to_string();
        assert!(rendered.contains("unknown field `colour`"), "{rendered}");
        assert!(rendered.contains("--> s.yaml:3:1"), "{rendered}");
        assert!(rendered.contains("hint:"), "{rendered}");
    }

    #[test]
    fn value_conversion_errors_are_located_at_the_field() {
        let source = SourceFile::new("s.yaml", "with:\n  name: x\n  count: 1\n  extra: 2\n");
        let map = SourceMap::build(source.text());
        let value: serde_yaml::Value = serde_yaml::from_str(source.text()).unwrap();
        let err = serde_yaml::from_value::<Sample>(value["with"].clone()).unwrap_err();
        let path = YamlPath::root().key("with");
        let diagnostic = yaml_diagnostic(&source, &map, &path, &err);
        assert_eq!(diagnostic.location, Some(Location { line: 4, column: 3 }));
    }
}
