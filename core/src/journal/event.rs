//! The events of a run as the journal records them, and their words for people: what happened
//! ([`Event`]), how a step or rollback ended, why one was skipped, the stages of a drill and the
//! run's result. Re-exported by [`crate::journal`], whose records carry them.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

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
        /// The end of its output, redacted and truncated to [`OUTPUT_TAIL_BYTES`](super::OUTPUT_TAIL_BYTES).
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
