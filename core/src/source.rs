//! Source files and the map from YAML paths to line and column.
//!
//! serde_yaml locates syntax and type errors itself; semantic errors found later (an unknown step id,
//! a cycle, a missing inventory field) are located by looking their YAML path up in a [`SourceMap`]
//! built from the parser's marked events.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::Marker;

/// A user-written file: its path as given and its text.
#[derive(Debug, Clone)]
pub struct SourceFile {
    path: PathBuf,
    text: String,
}

impl SourceFile {
    /// Wraps text that was read from `path`.
    pub fn new(path: impl Into<PathBuf>, text: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            text: text.into(),
        }
    }

    /// Reads a file from disk: a regular file of at most [`MAX_SOURCE_BYTES`].
    pub fn read(path: &Path) -> std::io::Result<Self> {
        Ok(Self::new(path, read_bounded(path, MAX_SOURCE_BYTES)?))
    }

    /// The path the file was read from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The whole text.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The text of a 1-based line, without its line break.
    pub fn line(&self, line: usize) -> Option<&str> {
        self.text.lines().nth(line.checked_sub(1)?)
    }
}

/// The largest runbook, inventory or drill file read: 8 MiB, some hundred times the largest
/// real runbook. Anything bigger is a mistake or an attack, and is refused before it is read.
pub const MAX_SOURCE_BYTES: u64 = 8 << 20;

/// Reads the text of `path`, refusing before reading anything that is not a regular file (a
/// FIFO or a device such as `/dev/zero` would block or never end) or that is larger than `max`
/// bytes. The file is opened without blocking, so a FIFO swapped in cannot hang the read either.
pub fn read_bounded(path: &Path, max: u64) -> std::io::Result<String> {
    use std::io::Read;
    use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
    let refuse = |message: String| std::io::Error::new(std::io::ErrorKind::InvalidInput, message);
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)?;
    let metadata = file.metadata()?;
    let kind = metadata.file_type();
    if !kind.is_file() {
        let what = if kind.is_dir() {
            "a directory"
        } else if kind.is_fifo() {
            "a FIFO"
        } else if kind.is_char_device() || kind.is_block_device() {
            "a device"
        } else if kind.is_socket() {
            "a socket"
        } else {
            "a special file"
        };
        return Err(refuse(format!("not a regular file: it is {what}")));
    }
    let too_big = |size: u64| {
        refuse(format!(
            "larger than {} ({size} bytes); etcdrill refuses input files this large",
            crate::humanize::bytes(max as f64)
        ))
    };
    if metadata.len() > max {
        return Err(too_big(metadata.len()));
    }
    let mut bytes = Vec::with_capacity(metadata.len() as usize);
    // The size can change between the check and the read: never read more than the limit.
    file.take(max + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max {
        return Err(too_big(bytes.len() as u64));
    }
    String::from_utf8(bytes)
        .map_err(|err| std::io::Error::new(std::io::ErrorKind::InvalidData, err))
}

/// The deepest nesting of YAML collections read, as serde_yaml's own limit. The source map's cost
/// grows with the square of the depth, so deeper input is refused before it is built.
pub const MAX_DEPTH: usize = 128;

/// Where `text` first nests collections deeper than [`MAX_DEPTH`], if it does. One pass of the
/// YAML event parser, stopping there; a syntax error ends the pass (serde_yaml reports it).
/// serde_yaml stops at the same depth, but only after a scan whose time grows with the square
/// of the nesting: 16 s for 64 KiB of `{`.
pub fn too_deep(text: &str) -> Option<Location> {
    let mut parser = Parser::new_from_str(text);
    let mut depth = 0usize;
    loop {
        match parser.next_token() {
            Ok((Event::SequenceStart(..) | Event::MappingStart(..), mark)) => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return Some(MapBuilder::location(mark));
                }
            }
            Ok((Event::SequenceEnd | Event::MappingEnd, _)) => depth = depth.saturating_sub(1),
            // The scanner has a limit of its own on flow collections (`[[[[...`), met first.
            Err(err) if err.info().contains("recursion limit") => {
                return Some(MapBuilder::location(*err.marker()));
            }
            Ok((Event::StreamEnd, _)) | Err(_) => return None,
            Ok(_) => {}
        }
    }
}

/// A 1-based line and column in a source file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Location {
    /// Line, counted from 1.
    pub line: usize,
    /// Column in characters, counted from 1.
    pub column: usize,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

/// One step of a path into a YAML document.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PathSegment {
    /// A mapping key.
    Key(String),
    /// A sequence index.
    Index(usize),
}

/// A path into a YAML document, such as `steps[3].needs[0]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct YamlPath(Vec<PathSegment>);

impl YamlPath {
    /// The document root.
    pub fn root() -> Self {
        Self::default()
    }

    /// This path extended by a mapping key.
    pub fn key(&self, key: &str) -> Self {
        let mut segments = self.0.clone();
        segments.push(PathSegment::Key(key.to_owned()));
        Self(segments)
    }

    /// This path extended by one segment.
    pub fn join(&self, segment: &PathSegment) -> Self {
        let mut segments = self.0.clone();
        segments.push(segment.clone());
        Self(segments)
    }

    /// The last segment, if any.
    pub fn last(&self) -> Option<&PathSegment> {
        self.0.last()
    }

    /// This path extended by a sequence index.
    pub fn index(&self, index: usize) -> Self {
        let mut segments = self.0.clone();
        segments.push(PathSegment::Index(index));
        Self(segments)
    }

    /// The path one level up, or `None` at the root.
    pub fn parent(&self) -> Option<Self> {
        let (_, rest) = self.0.split_last()?;
        Some(Self(rest.to_vec()))
    }
}

impl fmt::Display for YamlPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("(document)");
        }
        for (i, segment) in self.0.iter().enumerate() {
            match segment {
                PathSegment::Key(key) if i == 0 => f.write_str(key)?,
                PathSegment::Key(key) => write!(f, ".{key}")?,
                PathSegment::Index(index) => write!(f, "[{index}]")?,
            }
        }
        Ok(())
    }
}

/// Where each node of a YAML document starts: its value, and for mapping entries its key.
#[derive(Debug, Default)]
pub struct SourceMap {
    values: HashMap<YamlPath, Location>,
    keys: HashMap<YamlPath, Location>,
    /// The indexing parser stopped early: what it did not reach falls back to the file's start.
    incomplete: bool,
}

impl SourceMap {
    /// Indexes a YAML text. A text that does not parse yields what was mapped before the error
    /// (serde_yaml reports the syntax error itself, with its location).
    pub fn build(text: &str) -> Self {
        let mut builder = MapBuilder::default();
        // serde_yaml (libyaml) and yaml_rust2 differ at the edges: a text this parser refuses can
        // still load. What was mapped before the error is kept, so that later problems are
        // located at the nearest node mapped rather than nowhere (found by the runbook fuzzer).
        let stopped = Parser::new_from_str(text)
            .load(&mut builder, false)
            .is_err();
        let mut map = builder.map;
        map.incomplete = stopped;
        map
    }

    /// Where the value at `path` starts; falls back to the nearest enclosing node, and in a map
    /// the indexing parser could not finish, to the start of the file.
    pub fn value(&self, path: &YamlPath) -> Option<Location> {
        let mut path = path.clone();
        loop {
            if let Some(location) = self.values.get(&path) {
                return Some(*location);
            }
            match path.parent() {
                Some(parent) => path = parent,
                None if self.incomplete => return Some(Location { line: 1, column: 1 }),
                None => return None,
            }
        }
    }

    /// Where the key of the mapping entry at `path` starts, if it is a mapping entry.
    pub fn key_exact(&self, path: &YamlPath) -> Option<Location> {
        self.keys.get(path).copied()
    }

    /// Where the key of the mapping entry at `path` starts; falls back to its value.
    pub fn key(&self, path: &YamlPath) -> Option<Location> {
        self.keys.get(path).copied().or_else(|| self.value(path))
    }
}

/// A container being walked: a mapping waiting for a key or a value, or a sequence.
#[derive(Debug)]
enum Frame {
    Mapping {
        path: YamlPath,
        pending_key: Option<String>,
    },
    Sequence {
        path: YamlPath,
        next: usize,
    },
}

#[derive(Debug, Default)]
struct MapBuilder {
    stack: Vec<Frame>,
    map: SourceMap,
}

impl MapBuilder {
    /// The path of the node that starts now, or `None` when the node is a mapping key.
    fn next_path(&mut self, key_text: Option<&str>) -> Option<YamlPath> {
        match self.stack.last_mut() {
            None => Some(YamlPath::root()),
            Some(Frame::Sequence { path, next }) => {
                let here = path.index(*next);
                *next += 1;
                Some(here)
            }
            Some(Frame::Mapping { path, pending_key }) => match pending_key.take() {
                Some(key) => Some(path.key(&key)),
                None => {
                    // This node is a key; complex (non-scalar) keys are indexed under "?".
                    *pending_key = Some(key_text.unwrap_or("?").to_owned());
                    None
                }
            },
        }
    }

    fn location(mark: Marker) -> Location {
        Location {
            line: mark.line(),
            column: mark.col() + 1,
        }
    }
}

impl MarkedEventReceiver for MapBuilder {
    fn on_event(&mut self, event: Event, mark: Marker) {
        let location = Self::location(mark);
        match event {
            Event::Scalar(text, ..) => match self.next_path(Some(&text)) {
                Some(path) => {
                    self.map.values.insert(path, location);
                }
                None => {
                    if let Some(Frame::Mapping { path, .. }) = self.stack.last() {
                        self.map.keys.insert(path.key(&text), location);
                        // A block mapping's start mark lies after its first key; the key is
                        // where a reader sees the mapping begin.
                        if let Some(start) = self.map.values.get_mut(path) {
                            *start = (*start).min(location);
                        }
                    }
                }
            },
            Event::Alias(_) => {
                if let Some(path) = self.next_path(None) {
                    self.map.values.insert(path, location);
                }
            }
            Event::MappingStart(..) | Event::SequenceStart(..) => {
                let mapping = matches!(event, Event::MappingStart(..));
                let path = self
                    .next_path(None)
                    .unwrap_or_else(|| YamlPath::root().key("?"));
                self.map.values.entry(path.clone()).or_insert(location);
                self.stack.push(if mapping {
                    Frame::Mapping {
                        path,
                        pending_key: None,
                    }
                } else {
                    Frame::Sequence { path, next: 0 }
                });
            }
            Event::MappingEnd | Event::SequenceEnd => {
                self.stack.pop();
            }
            Event::Nothing
            | Event::StreamStart
            | Event::StreamEnd
            | Event::DocumentStart
            | Event::DocumentEnd => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "\
name: demo
steps:
  - id: first
    needs: [a, b]
  - id: second
    with:
      path: /x
";

    #[test]
    fn locates_values_and_keys() {
        let map = SourceMap::build(TEXT);
        let step1 = YamlPath::root().key("steps").index(1);
        assert_eq!(
            map.value(&step1.key("id")),
            Some(Location { line: 5, column: 9 })
        );
        assert_eq!(
            map.key(&step1.key("id")),
            Some(Location { line: 5, column: 5 })
        );
        let need = YamlPath::root().key("steps").index(0).key("needs").index(1);
        assert_eq!(
            map.value(&need),
            Some(Location {
                line: 4,
                column: 16
            })
        );
        assert_eq!(
            map.value(&step1.key("with").key("path")),
            Some(Location {
                line: 7,
                column: 13
            })
        );
    }

    #[test]
    fn unknown_paths_fall_back_to_the_enclosing_node() {
        let map = SourceMap::build(TEXT);
        let missing = YamlPath::root().key("steps").index(1).key("timeout");
        assert_eq!(map.value(&missing), Some(Location { line: 5, column: 5 }));
    }

    #[test]
    fn paths_display_like_accessors() {
        let path = YamlPath::root().key("steps").index(3).key("needs").index(0);
        assert_eq!(path.to_string(), "steps[3].needs[0]");
    }

    #[test]
    fn broken_yaml_keeps_what_was_mapped_before_the_break() {
        let map = SourceMap::build("x: 1\na: [1, 2\nb: c");
        assert_eq!(
            map.value(&YamlPath::root().key("x")),
            Some(Location { line: 1, column: 4 })
        );
        // Past the break, the nearest mapped node stands in.
        assert!(map.value(&YamlPath::root().key("b")).is_some());
        // A text refused before anything was mapped: the start of the file.
        let map = SourceMap::build("name:\t\t\ttoken\nsteps: []\n");
        assert_eq!(
            map.value(&YamlPath::root().key("steps").index(0).key("id")),
            Some(Location { line: 1, column: 1 })
        );
    }
}
