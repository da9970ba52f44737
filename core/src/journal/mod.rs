//! The journal of a run: a versioned, append-only JSON Lines file of events, fsync'd per event.
//!
//! The first line is a header naming the format, its version, the run and the digest of the plan
//! it ran. Every following line is a [`Record`]. A controller killed in the middle of a write
//! leaves at most one torn last line; [`Journal::read`] keeps every whole record before it and says
//! that the tail was torn. Resume and reports are computed from the plan and these records, through
//! one replay ([`crate::run_state::RunState`]).
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

use std::collections::BTreeMap;
use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

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

/// Something that happened in a run. Step events name the plan step by its key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// The run began.
    RunStarted {
        /// Runbook name.
        runbook: String,
        /// Inventory name.
        inventory: String,
        /// Check mode: probes ran live, actions were only shown.
        check: bool,
        /// etcdrill version.
        etcdrill: String,
    },
    /// A controller continued the run after an earlier one stopped.
    RunResumed {
        /// Records already in the journal.
        previous_records: u64,
    },
    /// The leader and followers were resolved for `leader` and `followers` targets.
    RolesResolved {
        /// The leader's node, if a leader was found.
        leader: Option<String>,
        /// The followers' nodes.
        followers: Vec<String>,
    },
    /// A step attempt began.
    StepStarted {
        /// Plan step key.
        step: String,
        /// Attempt, from 1.
        attempt: u32,
    },
    /// A step attempt ended.
    StepFinished {
        /// Plan step key.
        step: String,
        /// Attempt, from 1.
        attempt: u32,
        /// How it ended.
        result: StepResult,
        /// How long the attempt took, in milliseconds.
        duration_ms: u64,
        /// The exit status of a script, when there was one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        exit_status: Option<i32>,
        /// Captured outputs, redacted.
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        outputs: BTreeMap<String, String>,
        /// The end of its output, redacted and truncated to [`OUTPUT_TAIL_BYTES`].
        #[serde(default, skip_serializing_if = "String::is_empty")]
        output_tail: String,
    },
    /// A step did not run.
    StepSkipped {
        /// Plan step key.
        step: String,
        /// Why.
        reason: SkipReason,
    },
    /// A person answered a confirmation gate.
    Confirmed {
        /// Plan step key.
        step: String,
        /// Yes or no.
        answer: bool,
        /// `--yes`, or the terminal.
        by: String,
    },
    /// The rollback of a completed step began.
    RollbackStarted {
        /// Plan step key.
        step: String,
    },
    /// The rollback of a completed step ended.
    RollbackFinished {
        /// Plan step key.
        step: String,
        /// How it ended.
        result: StepResult,
        /// How long it took, in milliseconds.
        duration_ms: u64,
        /// The end of its output, redacted and truncated.
        #[serde(default, skip_serializing_if = "String::is_empty")]
        output_tail: String,
    },
    /// `etcdrill rollback` was asked to undo the run's completed steps.
    RollbackRequested {
        /// How the run had ended before, if it had.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        previous: Option<RunResult>,
    },
    /// A completed step was left as it was by the rollback.
    RollbackSkipped {
        /// Plan step key.
        step: String,
        /// Why.
        reason: RollbackSkip,
    },
    /// A stage of a restore drill; the drill's runbook run carries them in its journal.
    Drill {
        /// The stage.
        stage: DrillStage,
    },
    /// What each node said about its etcd before the run touched anything (the inventory was
    /// checked against it and filled from it).
    NodeFacts {
        /// One entry per node the plan runs commands on.
        facts: Vec<crate::facts::NodeFacts>,
    },
    /// The cluster's ID when a run that may restore a snapshot began (kept for a resume).
    ClusterIdentified {
        /// The cluster ID, hex.
        cluster_id: String,
    },
    /// A snapshot restore gave the cluster a new cluster ID: copies taken before it are of the
    /// same data's earlier incarnation.
    ClusterIdChanged {
        /// The cluster ID before the run, hex.
        from: String,
        /// The cluster ID after it, hex.
        to: String,
    },
    /// The controller was asked to stop (Ctrl-C, SIGTERM).
    Interrupted {
        /// The signal or reason.
        reason: String,
    },
    /// The run ended.
    RunFinished {
        /// How.
        result: RunResult,
    },
    /// An event type of a newer minor version of the format: read, kept, and not acted on.
    #[serde(other)]
    Unknown,
}

impl Event {
    /// The plan step an event is about, if any.
    pub fn step(&self) -> Option<&str> {
        match self {
            Event::StepStarted { step, .. }
            | Event::StepFinished { step, .. }
            | Event::StepSkipped { step, .. }
            | Event::Confirmed { step, .. }
            | Event::RollbackStarted { step }
            | Event::RollbackFinished { step, .. }
            | Event::RollbackSkipped { step, .. } => Some(step),
            _ => None,
        }
    }
}

/// How a step attempt (or a rollback) ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum StepResult {
    /// It did what it should.
    Succeeded,
    /// It failed.
    Failed {
        /// Why, redacted.
        error: String,
    },
    /// It ran out of time and was stopped.
    TimedOut,
    /// Check mode: an action was rendered and shown, not executed.
    Shown,
}

/// Why a step did not run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SkipReason {
    /// Its `when` was false.
    Condition {
        /// The expression.
        expression: String,
    },
    /// Its node did not have the role the step targets.
    Role {
        /// `leader` or `follower`.
        wanted: String,
    },
    /// A dependency ended with an outcome this step does not wait for.
    Dependency {
        /// The dependency's key.
        dependency: String,
    },
    /// A person answered no at its confirmation gate.
    Declined,
    /// The run was stopped first.
    Interrupted,
    /// An earlier step failed and the run stops at the first failure.
    FailFast,
    /// Check mode: a probe that would read what a step shown but not run (an action) leaves
    /// behind; run now it would read the cluster as it is, or leftovers of an earlier run.
    CheckMode {
        /// The runbook step id of the nearest such action.
        dependency: String,
    },
}

/// Why a rollback left a completed step as it was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RollbackSkip {
    /// The step leaves nothing that needs undoing (a copy, a verification).
    NothingToUndo,
    /// The runbook says not to undo it (`rollback: none`, or a shell step without a rollback).
    Declined,
}

/// A stage of a restore drill.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum DrillStage {
    /// The drill began on a healthy cluster: seed data and a canary were written.
    Seeded {
        /// The drill's name.
        drill: String,
        /// Keys seeded.
        keys: u32,
        /// The canary key, which must survive the disaster.
        canary: String,
        /// Keys in the cluster before the disaster.
        keys_before: i64,
    },
    /// A restore drill saved the snapshot it restores, then wrote past it.
    SnapshotSaved {
        /// Where.
        path: String,
        /// Its size, when etcd said.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        bytes: Option<u64>,
        /// The snapshot's revision, when etcd said.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        revision: Option<u64>,
    },
    /// Members were stopped and their data deleted by a staging run.
    DisasterStaged {
        /// The lost nodes.
        lost: Vec<String>,
        /// The run directory of the staging run.
        run: String,
    },
    /// The disaster was declared: the recovery clock (RTO) started just before this run.
    Declared {
        /// `restore`, `lose_member` or `lose_majority`.
        disaster: String,
    },
    /// The recovered cluster was checked: RTO, RPO and every check.
    Verified {
        /// From the declaration to every check holding; `None` if they never all held.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        rto_ms: Option<u64>,
        /// How much data a restore gave up.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        rpo: Option<DrillRpo>,
        /// Every check, in order.
        checks: Vec<DrillCheck>,
    },
}

/// How much data a restore drill gave up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DrillRpo {
    /// How old the snapshot was when the disaster was declared, in milliseconds.
    pub snapshot_age_ms: u64,
    /// Revisions written after the snapshot and lost, when the old cluster could tell.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revisions_lost: Option<u64>,
}

/// One check of a drill's recovered cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DrillCheck {
    /// What was checked.
    pub name: String,
    /// Whether it held.
    pub passed: bool,
    /// What was seen.
    pub detail: String,
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunResult {
    /// Every step that should run succeeded.
    Succeeded,
    /// A step failed and nothing was rolled back.
    Failed,
    /// A step failed and every rollback succeeded.
    RolledBack,
    /// A step failed and at least one rollback failed too: the cluster needs a person.
    RollbackFailed,
    /// Stopped before the end.
    Interrupted,
}

impl fmt::Display for RunResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RunResult::Succeeded => "succeeded",
            RunResult::Failed => "failed",
            RunResult::RolledBack => "rolled back",
            RunResult::RollbackFailed => "rollback failed",
            RunResult::Interrupted => "interrupted",
        })
    }
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SkipReason::Condition { expression } => {
                write!(f, "condition `{expression}` was false")
            }
            SkipReason::Role { wanted } => write!(f, "the node was not the {wanted}"),
            SkipReason::Dependency { dependency } => {
                write!(
                    f,
                    "dependency `{dependency}` did not end as this step waits for"
                )
            }
            SkipReason::Declined => f.write_str("a person answered no at its confirmation"),
            SkipReason::Interrupted => f.write_str("the run was stopped first"),
            SkipReason::FailFast => f.write_str("an earlier step failed (fail-fast)"),
            SkipReason::CheckMode { dependency } => {
                write!(f, "not run in check mode: depends on `{dependency}`")
            }
        }
    }
}

impl fmt::Display for RollbackSkip {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RollbackSkip::NothingToUndo => "nothing to undo",
            RollbackSkip::Declined => "the runbook does not undo this step",
        })
    }
}

impl fmt::Display for DrillStage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DrillStage::Seeded {
                drill,
                keys,
                keys_before,
                ..
            } => write!(
                f,
                "`{drill}`: {keys} keys and a canary written ({keys_before} keys in all)"
            ),
            DrillStage::SnapshotSaved { path, bytes, .. } => match bytes {
                Some(bytes) => write!(
                    f,
                    "snapshot saved to {path} ({bytes} bytes), then written past"
                ),
                None => write!(f, "snapshot saved to {path}, then written past"),
            },
            DrillStage::DisasterStaged { lost, run } => {
                write!(f, "lost {} (staged by run {run})", lost.join(", "))
            }
            DrillStage::Declared { disaster } => {
                write!(f, "disaster `{disaster}` declared; the recovery clock runs")
            }
            DrillStage::Verified { rto_ms, checks, .. } => {
                let held = checks.iter().filter(|c| c.passed).count();
                write!(f, "{held} of {} checks held", checks.len())?;
                match rto_ms {
                    Some(ms) => write!(f, ", RTO {}", crate::humanize::human_ms(*ms)),
                    None => Ok(()),
                }
            }
        }
    }
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
