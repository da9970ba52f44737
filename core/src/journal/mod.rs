//! The journal of a run: a versioned, append-only JSON Lines file of events, fsync'd per event.
//!
//! The first line is a header naming the format, its version, the run and the digest of the plan
//! it ran. Every following line is a [`Record`]. A controller killed in the middle of a write
//! leaves at most one torn last line; [`Journal::read`] keeps every whole record before it and says
//! that the tail was torn. Resume and reports are computed from the plan and these records, through
//! one replay ([`crate::run_state::RunState`]).
//!
//! This file reads and writes journals; the events themselves and their words for people are in
//! `event.rs`, re-exported here.
//!
//! ## Versions
//! The header's `version` is the format's major version and `minor` its minor version. A reader
//! reads every minor version of the majors it knows, newer ones included:
//! - a **minor** version may add event types (older readers keep them as [`Event::Unknown`]) and
//!   optional fields (older readers ignore them);
//! - anything else is a new **major** version: removing or renaming an event or a field, changing
//!   what one means, or adding a kind to a nested enum ([`StepResult`], [`SkipReason`],
//!   [`DrillStage`]...). A reader refuses majors it does not know.
//!
//! Version 1 is read as it is: version 2 only added events to it (under this rule, a minor).
//! `fixtures/` pins one line per event type as this build writes it, and journals of version 1
//! and of a newer minor version; the tests read them and write them back byte for byte.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

mod event;

pub use event::{
    DrillCheck, DrillRpo, DrillStage, Event, RollbackSkip, RunResult, SkipReason, StepResult,
};

/// The `format` field of every journal header.
pub const JOURNAL_FORMAT: &str = "etcdrill-journal";
/// The journal major version this build writes.
pub const JOURNAL_VERSION: u32 = 2;
/// The journal minor version this build writes.
pub const JOURNAL_MINOR: u32 = 0;
/// The oldest major version this build reads: version 2 only added events to version 1.
pub const JOURNAL_OLDEST_READABLE: u32 = 1;
/// The most bytes of a step's output kept in the journal (its end, where errors are).
pub const OUTPUT_TAIL_BYTES: usize = 4096;

/// A wall-clock instant, written as RFC 3339 with milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Timestamp(pub SystemTime);

impl Timestamp {
    /// Now.
    pub fn now() -> Self {
        Self(SystemTime::now())
    }

    /// Time from `earlier` to this instant; zero if `earlier` is later.
    pub fn since(self, earlier: Timestamp) -> Duration {
        self.0.duration_since(earlier.0).unwrap_or_default()
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&humantime::format_rfc3339_millis(self.0))
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        humantime::parse_rfc3339(&text)
            .map(Timestamp)
            .map_err(serde::de::Error::custom)
    }
}

/// The first line of a journal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JournalHeader {
    /// Always [`JOURNAL_FORMAT`].
    pub format: String,
    /// The format's major version; readers refuse majors they do not know.
    pub version: u32,
    /// The format's minor version (0 when absent); readers read every minor of a known major.
    #[serde(default)]
    pub minor: u32,
    /// The run.
    pub run_id: String,
    /// The digest of the plan this run executes ([`crate::plan::Plan::digest`]).
    pub plan_digest: String,
    /// When the journal was created.
    pub created_at: Timestamp,
}

/// One journal line after the header.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// Position in the journal, from 1.
    pub seq: u64,
    /// When the event happened.
    pub at: Timestamp,
    /// What happened.
    pub event: Event,
}

/// Why a journal could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// The file could not be created, written or synced.
    #[error("failed to write journal {path}")]
    Write {
        /// The journal.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The file could not be read.
    #[error("failed to read journal {path}")]
    Read {
        /// The journal.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The file is not an etcdrill journal, or a version this build does not know.
    #[error(
        "{path} is not an etcdrill journal of major version {JOURNAL_OLDEST_READABLE} to {JOURNAL_VERSION}, any minor ({found})"
    )]
    Format {
        /// The journal.
        path: PathBuf,
        /// What was found instead.
        found: String,
    },
    /// The records do not follow each other (a repeated or skipped sequence number), or the
    /// journal is another run's: two controllers wrote it, or it was copied or edited.
    #[error("journal {path} cannot be trusted: {problem}")]
    Inconsistent {
        /// The journal.
        path: PathBuf,
        /// What is wrong.
        problem: String,
    },
    /// A record in the middle of the file does not parse: the file was edited or damaged.
    #[error("journal {path} is damaged at line {line}")]
    Damaged {
        /// The journal.
        path: PathBuf,
        /// The 1-based line.
        line: usize,
        /// The cause.
        #[source]
        source: serde_json::Error,
    },
}

/// A journal read back from disk.
#[derive(Debug, Clone, PartialEq)]
pub struct Journal {
    /// The header.
    pub header: JournalHeader,
    /// Every whole record, in order.
    pub records: Vec<Record>,
    /// Whether a torn last line (a write cut short by a crash) was dropped.
    pub torn_tail: bool,
}

impl Journal {
    /// Reads a journal, checking its format and version.
    pub fn read(path: &Path) -> Result<Self, JournalError> {
        let read_error = |source| JournalError::Read {
            path: path.to_owned(),
            source,
        };
        let file = File::open(path).map_err(read_error)?;
        let mut lines = Vec::new();
        for line in BufReader::new(file).lines() {
            lines.push(line.map_err(read_error)?);
        }
        Self::from_lines(path, &lines)
    }

    /// Parses the text of a journal read from `path` (named in errors).
    pub fn parse(path: &Path, text: &str) -> Result<Self, JournalError> {
        let lines: Vec<String> = text.lines().map(str::to_owned).collect();
        Self::from_lines(path, &lines)
    }

    fn from_lines(path: &Path, lines: &[String]) -> Result<Self, JournalError> {
        let format_error = |found: String| JournalError::Format {
            path: path.to_owned(),
            found,
        };
        let first = lines
            .first()
            .ok_or_else(|| format_error("an empty file".into()))?;
        let header: JournalHeader =
            serde_json::from_str(first).map_err(|err| format_error(format!("no header: {err}")))?;
        if header.format != JOURNAL_FORMAT
            || !(JOURNAL_OLDEST_READABLE..=JOURNAL_VERSION).contains(&header.version)
        {
            return Err(format_error(format!(
                "format `{}` version {}.{}",
                header.format, header.version, header.minor
            )));
        }
        let mut records = Vec::new();
        let mut torn_tail = false;
        let body = &lines[1..];
        for (i, line) in body.iter().enumerate() {
            match serde_json::from_str::<Record>(line) {
                Ok(record) => records.push(record),
                // Only the last line may be torn; anything else is damage.
                Err(_) if i + 1 == body.len() => torn_tail = true,
                Err(source) => {
                    return Err(JournalError::Damaged {
                        path: path.to_owned(),
                        line: i + 2,
                        source,
                    });
                }
            }
        }
        if let Some((i, record)) = records
            .iter()
            .enumerate()
            .find(|(i, record)| record.seq != *i as u64 + 1)
        {
            return Err(JournalError::Inconsistent {
                path: path.to_owned(),
                problem: format!(
                    "line {} has sequence number {} where {} was due (records repeated or missing)",
                    i + 2,
                    record.seq,
                    i + 1
                ),
            });
        }
        Ok(Self {
            header,
            records,
            torn_tail,
        })
    }
}

/// Appends records to a journal, syncing each one to disk before returning.
#[derive(Debug)]
pub struct JournalWriter {
    path: PathBuf,
    file: File,
    next_seq: u64,
}

impl JournalWriter {
    /// Creates a new journal at `path` (which must not exist) with its header.
    pub fn create(path: &Path, run_id: &str, plan_digest: &str) -> Result<Self, JournalError> {
        let header = JournalHeader {
            format: JOURNAL_FORMAT.into(),
            version: JOURNAL_VERSION,
            minor: JOURNAL_MINOR,
            run_id: run_id.into(),
            plan_digest: plan_digest.into(),
            created_at: Timestamp::now(),
        };
        let file = OpenOptions::new()
            .create_new(true)
            .append(true)
            .open(path)
            .map_err(|source| JournalError::Write {
                path: path.to_owned(),
                source,
            })?;
        let mut writer = Self {
            path: path.to_owned(),
            file,
            next_seq: 1,
        };
        writer.write_line(&serde_json::to_string(&header).expect("a header serialises"))?;
        // The new file's directory entry must survive a crash too.
        crate::atomic_file::sync_dir_of(path).map_err(|source| JournalError::Write {
            path: path.to_owned(),
            source,
        })?;
        Ok(writer)
    }

    /// Opens an existing journal of run `run_id` to append to it, returning what it already
    /// holds. A torn last line is cut off first so that the file stays valid JSON Lines.
    pub fn resume(path: &Path, run_id: &str) -> Result<(Self, Journal), JournalError> {
        let journal = Journal::read(path)?;
        if journal.header.run_id != run_id {
            return Err(JournalError::Inconsistent {
                path: path.to_owned(),
                problem: format!(
                    "its header names run `{}`, not `{run_id}` whose directory it is in",
                    crate::shown::escape_line(&journal.header.run_id)
                ),
            });
        }
        if journal.torn_tail {
            let whole = whole_lines_length(path).map_err(|source| JournalError::Write {
                path: path.to_owned(),
                source,
            })?;
            OpenOptions::new()
                .write(true)
                .open(path)
                .and_then(|f| f.set_len(whole))
                .map_err(|source| JournalError::Write {
                    path: path.to_owned(),
                    source,
                })?;
        }
        let file = OpenOptions::new()
            .append(true)
            .open(path)
            .map_err(|source| JournalError::Write {
                path: path.to_owned(),
                source,
            })?;
        let next_seq = journal.records.last().map_or(1, |r| r.seq + 1);
        Ok((
            Self {
                path: path.to_owned(),
                file,
                next_seq,
            },
            journal,
        ))
    }

    /// Appends an event and syncs it to disk.
    pub fn append(&mut self, event: Event) -> Result<Record, JournalError> {
        let record = Record {
            seq: self.next_seq,
            at: Timestamp::now(),
            event,
        };
        self.write_line(&serde_json::to_string(&record).expect("a record serialises"))?;
        self.next_seq += 1;
        crash_point(&record);
        Ok(record)
    }

    fn write_line(&mut self, line: &str) -> Result<(), JournalError> {
        let mut bytes = Vec::with_capacity(line.len() + 1);
        bytes.extend_from_slice(line.as_bytes());
        bytes.push(b'\n');
        self.file
            .write_all(&bytes)
            .and_then(|()| self.file.sync_data())
            .map_err(|source| JournalError::Write {
                path: self.path.clone(),
                source,
            })
    }
}

/// The variable that names a deterministic crash point: the process kills itself with SIGKILL
/// right after a record is durable, as a controller killed between two records would be. `N`
/// names record N; `finished:STEP` the record that ends step instance STEP (whatever its number,
/// which parallel steps make vary). For the crash-point tests (tests/it/crash_points.rs); unset, it
/// costs one environment lookup per record.
pub const CRASH_AFTER_RECORD: &str = "ETCDRILL_CRASH_AFTER_RECORD";

fn crash_point(record: &Record) {
    let Ok(wanted) = std::env::var(CRASH_AFTER_RECORD) else {
        return;
    };
    let here = match wanted.strip_prefix("finished:") {
        Some(step) => matches!(&record.event, Event::StepFinished { step: s, .. } if s == step),
        None => wanted.parse::<u64>().is_ok_and(|seq| seq == record.seq),
    };
    if here {
        // SAFETY: raise only sends a signal to this process.
        unsafe {
            libc::raise(libc::SIGKILL);
        }
    }
}

/// The length of the file up to and including its last newline.
fn whole_lines_length(path: &Path) -> std::io::Result<u64> {
    let bytes = std::fs::read(path)?;
    Ok(bytes
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i as u64 + 1))
}

/// The last `max` bytes of `text`, cut at a character boundary, marked when cut.
pub fn tail(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut start = text.len() - max;
    while !text.is_char_boundary(start) {
        start += 1;
    }
    format!("[… {start} bytes cut …]{}", &text[start..])
}

#[cfg(test)]
mod tests;
