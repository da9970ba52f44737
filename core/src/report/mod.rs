//! The run report: what happened in a run, computed from the plan it ran and its journal, and
//! shown as Markdown, a self-contained HTML page, JSON and JUnit XML.
//!
//! [`Report::build`] is a pure function: it reads nothing and writes nothing, and takes what is in
//! neither the plan nor the journal (the run directory, the command line) from a
//! [`ReportContext`]; a drill's measurements are in its journal. A resumed run's journal holds
//! every session; the report treats them as one run and marks where it stopped and went on. The
//! formats are pure functions of a [`Report`]; only [`write_all`] touches the file system.

mod build;
mod findings;
pub mod html;
pub mod json;
pub mod junit;
pub mod markdown;
pub mod metrics;
mod timing;
mod verdict;

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::journal::{RollbackSkip, SkipReason, StepResult, Timestamp};
use crate::run_dir::RunRecord;

/// The `format` field of every report.
pub const REPORT_FORMAT: &str = "etcdrill-report";
/// The report version this build writes.
pub const REPORT_VERSION: u32 = 1;

/// What a report needs that is neither in the plan nor in the journal.
#[derive(Debug, Clone, Default)]
pub struct ReportContext {
    /// The run's directory (`<work_dir>/runs/<id>`), to name its files.
    pub run_dir: Option<PathBuf>,
    /// What the run was started with (`run.json`), to say how to run it again.
    pub record: Option<RunRecord>,
    /// Drill measurements to use instead of the journal's; `None` to take them from the journal's
    /// drill stages (as `drill run` and `report` do), if it has any.
    pub drill: Option<DrillFacts>,
    /// When the report was made; taken from here, never from the clock, so reports are stable.
    pub generated_at: Option<Timestamp>,
    /// Secret values to mask wherever they might show (the journal is redacted already).
    pub secrets: Vec<String>,
}

/// What a drill measured, beyond the steps it ran.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DrillFacts {
    /// Recovery time: from "disaster declared" to "quorum healthy and verified".
    #[serde(rename = "rto_ms", with = "millis_option")]
    pub rto: Option<Duration>,
    /// Recovery point: how much data the restore gave up.
    pub rpo: Option<RpoFacts>,
    /// Checks of the restored cluster.
    pub verifications: Vec<Verification>,
}

/// How much data a restore gave up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RpoFacts {
    /// How old the snapshot was when the disaster was declared.
    #[serde(rename = "snapshot_age_ms", with = "millis")]
    pub snapshot_age: Duration,
    /// Revisions written after the snapshot and lost, when the old cluster could tell.
    pub revisions_lost: Option<u64>,
}

/// One check of a drill's outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verification {
    /// What was checked.
    pub name: String,
    /// Whether it held.
    pub passed: bool,
    /// What was seen.
    pub detail: String,
}

/// A run's report: the verdict first, then everything that explains it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// Always [`REPORT_FORMAT`].
    pub format: String,
    /// [`REPORT_VERSION`].
    pub version: u32,
    /// How the run ended, in one line.
    pub verdict: Verdict,
    /// Which run this is.
    pub run: RunInfo,
    /// When it ran.
    pub timing: Timing,
    /// From the first member stop to the cluster healthy again, when the run stopped members.
    pub downtime: Option<Downtime>,
    /// Drill measurements; `None` when the run was not a drill.
    pub drill: Option<DrillFacts>,
    /// What each node said about its etcd before the run touched it: the real paths a reviewer
    /// checks the run against.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub node_facts: Vec<crate::facts::NodeFacts>,
    /// What deserves a look: slow, retried, timed-out steps, failed rollbacks...
    pub findings: Vec<Finding>,
    /// Where the time went.
    pub time_spent: TimeSpent,
    /// The timeline's lanes: the controller, the cluster, then every node in inventory order.
    pub lanes: Vec<String>,
    /// Moments of the run drawn across every lane: start, resume, interruption, end.
    pub markers: Vec<Marker>,
    /// Every step instance of the plan, in plan order.
    pub steps: Vec<StepReport>,
    /// How to run it again.
    pub reproduce: Reproduce,
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verdict {
    /// The outcome.
    pub outcome: Outcome,
    /// Whether the run was a drill (the report had drill facts).
    pub drill: bool,
    /// `Drill FAILED`, `Run SUCCEEDED`...
    pub title: String,
    /// Why, in one sentence, when there is more to say than the title.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The outcome of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Every step that should run succeeded (and every drill verification passed).
    Succeeded,
    /// A step (or a drill verification) failed and nothing was rolled back.
    Failed,
    /// A step failed and every rollback succeeded.
    RolledBack,
    /// A step failed and a rollback failed too: the cluster needs a person.
    RollbackFailed,
    /// Stopped before the end.
    Interrupted,
    /// The journal has no end: the controller stopped without finishing, or is still running.
    Incomplete,
}

impl Outcome {
    /// The word the verdict shows: `SUCCEEDED`, `FAILED`, `ROLLED BACK`...
    pub fn word(self) -> &'static str {
        match self {
            Outcome::Succeeded => "SUCCEEDED",
            Outcome::Failed => "FAILED",
            Outcome::RolledBack => "FAILED, ROLLED BACK",
            Outcome::RollbackFailed => "FAILED, ROLLBACK FAILED",
            Outcome::Interrupted => "INTERRUPTED",
            Outcome::Incomplete => "INCOMPLETE",
        }
    }

    /// `succeeded`, `failed`...: the serialised name, for CSS classes and JUnit properties.
    pub fn name(self) -> &'static str {
        match self {
            Outcome::Succeeded => "succeeded",
            Outcome::Failed => "failed",
            Outcome::RolledBack => "rolled_back",
            Outcome::RollbackFailed => "rollback_failed",
            Outcome::Interrupted => "interrupted",
            Outcome::Incomplete => "incomplete",
        }
    }
}

/// Which run a report is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunInfo {
    /// The run id.
    pub id: String,
    /// Runbook name.
    pub runbook: String,
    /// Runbook summary.
    pub summary: String,
    /// Inventory name.
    pub inventory: String,
    /// Whether the inventory is marked production.
    pub production: bool,
    /// Check mode: probes ran live, actions were only shown.
    pub check: bool,
    /// The etcdrill version that started the run, from the journal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etcdrill: Option<String>,
    /// The digest of the plan the run executed, from the journal.
    pub plan_digest: String,
    /// Whether the plan given to the report is that plan.
    pub plan_matches: bool,
    /// Runbook file as given.
    pub runbook_file: String,
    /// Inventory file as given.
    pub inventory_file: String,
    /// The run directory, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_dir: Option<String>,
    /// When the report was made, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generated_at: Option<Timestamp>,
    /// Whether the journal's last line was torn (a write cut short) and dropped.
    pub torn_journal: bool,
}

/// When a run happened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timing {
    /// The first record (the run's start); every `*_ms` offset in the report counts from here.
    pub started_at: Timestamp,
    /// The last record.
    pub ended_at: Timestamp,
    /// From start to the last record, including any time the controller was down between
    /// sessions.
    pub total_ms: u64,
    /// Sessions: 1, plus one per resume.
    pub sessions: u32,
}

/// The window in which members were down.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Downtime {
    /// What the window measures: `downtime (first member stop to healthy)`.
    pub label: String,
    /// The first member stop began.
    pub start_ms: u64,
    /// The step whose start opened the window.
    pub from_step: String,
    /// The last health wait or verification succeeded; `None` if the cluster never got there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_ms: Option<u64>,
    /// The step whose success closed the window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to_step: Option<String>,
    /// The window's length, when it closed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
}

/// Something in a run worth a look.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    /// What kind of thing.
    pub kind: FindingKind,
    /// The step it is about, if one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
    /// In words.
    pub message: String,
}

/// Kinds of findings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingKind {
    /// Among the slowest steps, or over 30 seconds.
    Slow,
    /// Needed more than one attempt.
    Retried,
    /// An attempt ran out of time.
    TimedOut,
    /// A step failed.
    Failed,
    /// A rollback failed: the cluster needs a person.
    RollbackFailed,
    /// Steps that did not run because an earlier step failed.
    SkippedByFailFast,
    /// Steps that did not run because the run was stopped.
    SkippedByInterruption,
    /// A step started and has no recorded end.
    NoRecordedEnd,
    /// The journal's last line was torn.
    TornJournal,
    /// The plan given to the report is not the plan the run executed.
    PlanMismatch,
    /// A drill verification failed.
    VerificationFailed,
}

/// Where a run's time went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimeSpent {
    /// Per phase: steady state before, main steps, steady state after.
    pub by_phase: Vec<TimeShare>,
    /// Per timeline lane (controller, cluster, each node).
    pub by_lane: Vec<TimeShare>,
    /// Per runbook step, all its instances together, slowest first.
    pub by_step: Vec<TimeShare>,
}

/// Time spent by one part of a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimeShare {
    /// The phase, lane or runbook step.
    pub name: String,
    /// Step instances that ran.
    pub steps: usize,
    /// The sum of their attempts' durations (parallel work counts once per instance).
    pub busy_ms: u64,
    /// From the first start to the last end (wall-clock).
    pub span_ms: u64,
}

/// A moment of the run, drawn across every lane of the timeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Marker {
    /// Offset from the run's start.
    pub at_ms: u64,
    /// What happened.
    pub kind: MarkerKind,
    /// In words.
    pub label: String,
}

/// Kinds of timeline markers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MarkerKind {
    /// The run started.
    Started,
    /// A controller continued the run.
    Resumed,
    /// The controller was asked to stop.
    Interrupted,
    /// The run ended (a later `etcdrill rollback` may end it again).
    Finished,
}

/// Where a step instance stands at the end of the journal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepStatus {
    /// It succeeded.
    Succeeded,
    /// Its last attempt failed.
    Failed,
    /// Its last attempt ran out of time.
    TimedOut,
    /// Check mode: rendered and shown, not run.
    Shown,
    /// It did not run.
    Skipped,
    /// The run ended before it was reached.
    NotRun,
    /// It started and has no recorded end.
    NoRecordedEnd,
}

impl StepStatus {
    /// `succeeded`, `timed out`, `not run`...
    pub fn words(self) -> &'static str {
        match self {
            StepStatus::Succeeded => "succeeded",
            StepStatus::Failed => "failed",
            StepStatus::TimedOut => "timed out",
            StepStatus::Shown => "shown, not run",
            StepStatus::Skipped => "skipped",
            StepStatus::NotRun => "not run",
            StepStatus::NoRecordedEnd => "no recorded end",
        }
    }

    /// Whether the step counts against the run.
    pub fn is_failure(self) -> bool {
        matches!(self, StepStatus::Failed | StepStatus::TimedOut)
    }
}

/// One step instance of a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepReport {
    /// Plan key: step id, with `@node` for per-node instances.
    pub key: String,
    /// Runbook step (or steady-state probe) id.
    pub step: String,
    /// Title.
    pub title: String,
    /// Timeline lane: `controller`, `cluster`, or the node.
    pub lane: String,
    /// The node, for a per-node step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// `steady_before`, `main` or `steady_after`.
    pub phase: String,
    /// Action kind, e.g. `etcd.stop_member`.
    pub action: String,
    /// Whether it only reads.
    pub probe: bool,
    /// Whether it destroys data or membership.
    pub destructive: bool,
    /// Where it stands.
    pub status: StepStatus,
    /// Why it failed, for a failed step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Why it did not run, for a skipped step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skip: Option<SkipReason>,
    /// First start, from the run's start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_ms: Option<u64>,
    /// Last end, from the run's start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_ms: Option<u64>,
    /// From first start to last end, retries and their back-off included.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    /// Its attempts, in order.
    pub attempts: Vec<Attempt>,
    /// What it does, as the plan rendered it (`⟨…⟩` marks values filled in at run time).
    pub operation: OperationSummary,
    /// The end of its last attempt's output, redacted.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub output_tail: String,
    /// Its rollback, if one ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback: Option<RollbackReport>,
    /// Why a rollback left it as it was, when one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback_skipped: Option<RollbackSkip>,
}

/// One attempt of a step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attempt {
    /// From 1. A resumed run may start a step again from 1.
    pub number: u32,
    /// Start, from the run's start.
    pub start_ms: u64,
    /// How long it took; for an attempt with no recorded end, until its session ended.
    pub duration_ms: u64,
    /// How it ended; `None` when no end was recorded (the controller stopped).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<StepResult>,
    /// The exit status of a script.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_status: Option<i32>,
}

/// An operation as the report shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OperationSummary {
    /// One line: what runs where.
    pub headline: String,
    /// Arguments of a typed call, values as JSON text.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<OperationArg>,
    /// The script of a shell operation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub script: Option<String>,
}

/// One argument of a typed call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OperationArg {
    /// Name.
    pub name: String,
    /// Value as JSON text.
    pub value: String,
}

/// A rollback that ran.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RollbackReport {
    /// Start, from the run's start.
    pub start_ms: u64,
    /// How long it took.
    pub duration_ms: u64,
    /// How it ended; `None` when no end was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<StepResult>,
    /// What undid the step, as the plan rendered it; `None` for an irreversible step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation: Option<OperationSummary>,
    /// The end of its output, redacted.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub output_tail: String,
}

/// How to run it again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reproduce {
    /// `etcdrill run ...` with every recorded parameter; secrets as `-p name=...`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<String>,
    /// `etcdrill resume ...`, for a run that did not finish.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resume: Option<String>,
    /// `etcdrill rollback ...`, for a run that failed or stopped without undoing its steps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback: Option<String>,
    /// Secret parameters that must be given again (their values are never stored).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secret_params: Vec<String>,
    /// The run's files: `run.json`, `plan.json`, `journal.jsonl`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<String>,
}

impl Report {
    /// The report of a run of `plan` whose journal is `journal`.
    pub fn build(
        plan: &crate::plan::Plan,
        journal: &crate::journal::Journal,
        context: ReportContext,
    ) -> Report {
        build::build(plan, journal, context)
    }

    /// The step instance with this key.
    pub fn step(&self, key: &str) -> Option<&StepReport> {
        self.steps.iter().find(|step| step.key == key)
    }
}

/// Why a report could not be written.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// A file could not be written.
    #[error("failed to write report {path}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// The file names [`write_all`] writes, in order.
pub const REPORT_FILES: [&str; 4] = [
    "report.md",
    "report.html",
    "report.json",
    "report.junit.xml",
];

/// Writes `report.md`, `report.html`, `report.json` and `report.junit.xml` into `dir` (a run's
/// directory), replacing earlier ones, and returns their paths.
pub fn write_all(dir: &Path, report: &Report) -> Result<Vec<PathBuf>, ReportError> {
    let texts = [
        markdown::render(report),
        html::render(report),
        json::render(report),
        junit::render(report),
    ];
    let mut written = Vec::new();
    for (name, text) in REPORT_FILES.iter().zip(texts) {
        let path = dir.join(name);
        // A reader never sees half a report.
        crate::atomic_file::write(&path, text.as_bytes()).map_err(|source| ReportError::Write {
            path: path.clone(),
            source,
        })?;
        written.push(path);
    }
    Ok(written)
}

/// An offset from the run's start as a clock: `+0:04.2`, `+1:02:03.0`.
pub fn offset_ms(ms: u64) -> String {
    let tenths = (ms % 1000) / 100;
    let secs = ms / 1000;
    let (h, m, s) = (secs / 3600, (secs % 3600) / 60, secs % 60);
    if h > 0 {
        format!("+{h}:{m:02}:{s:02}.{tenths}")
    } else {
        format!("+{m}:{s:02}.{tenths}")
    }
}

/// An instant as RFC 3339 in UTC with milliseconds, as the journal writes it.
pub fn timestamp_text(at: Timestamp) -> String {
    humantime::format_rfc3339_millis(at.0).to_string()
}

/// A step or rollback result in words: `succeeded`, `failed: <error>`, `timed out`, `shown`.
pub fn result_words(result: Option<&StepResult>) -> String {
    match result {
        Some(StepResult::Succeeded) => "succeeded".into(),
        Some(StepResult::Failed { error }) => format!("failed: {error}"),
        Some(StepResult::TimedOut) => "timed out".into(),
        Some(StepResult::Shown) => "shown, not run".into(),
        None => "no recorded end".into(),
    }
}

/// Durations as whole milliseconds.
mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_millis() as u64)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_millis)
    }
}

/// Optional durations as whole milliseconds.
mod millis_option {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_some(&(d.as_millis() as u64)),
            None => s.serialize_none(),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Duration>, D::Error> {
        Option::<u64>::deserialize(d).map(|ms| ms.map(Duration::from_millis))
    }
}

#[cfg(test)]
mod tests;

/// One node's facts as a report's table shows them.
pub(crate) struct FactsRow {
    pub(crate) node: String,
    /// The manifest or environment file the configuration was read from.
    pub(crate) configuration: Option<String>,
    /// The host data dir.
    pub(crate) data_dir: Option<String>,
    /// Its filesystem, whether it is a mount point, its free space.
    pub(crate) filesystem: String,
    /// The running etcd and whether it keeps its data there.
    pub(crate) process: String,
    /// etcdutl's version, or that it was not found.
    pub(crate) etcdutl: String,
}

impl FactsRow {
    /// The table's column titles.
    pub(crate) const COLUMNS: [&'static str; 6] = [
        "node",
        "configuration",
        "host data dir",
        "its filesystem",
        "etcd process",
        "etcdutl",
    ];

    /// The row of `facts`.
    pub(crate) fn of(facts: &crate::facts::NodeFacts) -> Self {
        let dir = facts.data_dir.as_ref();
        let filesystem = dir.map_or_else(String::new, |dir| {
            let mount = if dir.mount_point {
                ", its own mount point"
            } else {
                ""
            };
            let free = dir
                .free_bytes
                .map(|bytes| format!(", {} free", crate::humanize::bytes(bytes as f64)))
                .unwrap_or_default();
            format!("{}{mount}{free}", dir.filesystem)
        });
        let process = match (&facts.process, facts.process_uses_data_dir) {
            (Some(p), Some(true)) => format!("pid {}, on this data dir", p.pid),
            (Some(p), Some(false)) => format!("pid {}, on ANOTHER data dir", p.pid),
            (Some(p), None) => format!("pid {}", p.pid),
            (None, _) if facts.process_looked_for => "not running".into(),
            (None, _) => String::new(),
        };
        FactsRow {
            node: facts.node.clone(),
            configuration: facts.config_source.clone(),
            data_dir: dir.map(|dir| dir.path.clone()),
            filesystem,
            process,
            etcdutl: facts
                .etcdutl_version
                .clone()
                .unwrap_or_else(|| "not found".into()),
        }
    }
}
