//! The verdict of a run: its outcome in one headline and a sentence on what a person does next,
//! from the steps' results, how the run ended, and whether a rollback was asked for.

use crate::journal::{RollbackSkip, RunResult, SkipReason, StepResult};

use super::{Outcome, StepReport, StepStatus, Verdict};

pub(super) fn verdict(
    steps: &[StepReport],
    finished: Option<RunResult>,
    interruption: Option<String>,
    check: bool,
    drill: Option<&super::DrillFacts>,
    rollback_requested: Option<Option<RunResult>>,
) -> Verdict {
    let failed_verification = drill.and_then(|d| d.verifications.iter().find(|v| !v.passed));
    let mut outcome = match finished {
        None => Outcome::Incomplete,
        Some(RunResult::Succeeded) => Outcome::Succeeded,
        Some(RunResult::Failed) => Outcome::Failed,
        Some(RunResult::RolledBack) => Outcome::RolledBack,
        Some(RunResult::RollbackFailed) => Outcome::RollbackFailed,
        Some(RunResult::Interrupted) => Outcome::Interrupted,
    };
    if outcome == Outcome::Succeeded && failed_verification.is_some() {
        outcome = Outcome::Failed;
    }
    let first_failure = steps
        .iter()
        .filter(|s| s.status.is_failure())
        .min_by_key(|s| (s.end_ms, s.key.clone()))
        .map(|s| {
            format!(
                "`{}` {}",
                s.key,
                match s.status {
                    StepStatus::TimedOut => s.error.clone().unwrap_or_else(|| "timed out".into()),
                    _ => format!(
                        "failed: {}",
                        s.error.as_deref().unwrap_or("no error recorded")
                    ),
                }
            )
        });
    let failed_rollbacks: Vec<String> = steps
        .iter()
        .filter(|s| {
            s.rollback
                .as_ref()
                .is_some_and(|r| r.result != Some(StepResult::Succeeded))
        })
        .map(|s| format!("`{}`", s.key))
        .collect();
    let reason = match outcome {
        Outcome::Succeeded if check => {
            let waiting = steps
                .iter()
                .filter(|s| matches!(s.skip, Some(SkipReason::CheckMode { .. })))
                .count();
            Some(if waiting == 0 {
                "check mode: probes ran live, actions were shown and not run".to_string()
            } else {
                format!(
                    "check mode: probes ran live, actions were shown and not run; {waiting} \
                     probe(s) after those actions were not run either"
                )
            })
        }
        Outcome::Succeeded => None,
        Outcome::Failed => match (&first_failure, failed_verification) {
            (Some(failure), _) if check => Some(failure.clone()),
            (Some(failure), _) => Some(format!("{failure}; nothing was undone")),
            (None, Some(v)) => Some(format!("verification `{}` failed: {}", v.name, v.detail)),
            (None, None) => None,
        },
        Outcome::RolledBack | Outcome::RollbackFailed
            if rollback_requested == Some(Some(RunResult::Succeeded)) =>
        {
            Some(format!(
                "the run had succeeded; `etcdrill rollback` then {}",
                rollback_words(steps)
            ))
        }
        Outcome::RolledBack
            if steps
                .iter()
                .any(|s| s.rollback_skipped == Some(RollbackSkip::Declined)) =>
        {
            Some(format!(
                "{}; the rollback {}",
                first_failure.unwrap_or_else(|| "the run failed".into()),
                rollback_words(steps)
            ))
        }
        Outcome::RolledBack => Some(format!(
            "{}; every completed step was rolled back",
            first_failure.unwrap_or_else(|| "the run failed".into())
        )),
        Outcome::RollbackFailed => Some(format!(
            "{}; the rollback of {} failed: the cluster needs a person",
            first_failure.unwrap_or_else(|| "the run failed".into()),
            if failed_rollbacks.is_empty() {
                "a step".to_string()
            } else {
                failed_rollbacks.join(", ")
            }
        )),
        Outcome::Interrupted => Some(format!(
            "stopped before the end: {}",
            interruption.unwrap_or_else(|| "no reason recorded".into())
        )),
        Outcome::Incomplete => Some(
            "the journal has no end: the controller stopped before finishing, or is still running"
                .into(),
        ),
    };
    let noun = if drill.is_some() {
        "Drill"
    } else if check {
        "Check run"
    } else {
        "Run"
    };
    let title = match outcome {
        Outcome::RolledBack if rollback_requested == Some(Some(RunResult::Succeeded)) => {
            format!("{noun} SUCCEEDED, then ROLLED BACK")
        }
        Outcome::RollbackFailed if rollback_requested == Some(Some(RunResult::Succeeded)) => {
            format!("{noun} SUCCEEDED, then ROLLBACK FAILED")
        }
        _ => format!("{noun} {}", outcome.word()),
    };
    Verdict {
        outcome,
        drill: drill.is_some(),
        title,
        reason,
    }
}

/// What a rollback undid and what it left, from its events: `undid 2 step(s) (`a`, `b`); left
/// as they were: `c` (the runbook does not undo this step)`.
pub(super) fn rollback_words(steps: &[StepReport]) -> String {
    let undone: Vec<String> = steps
        .iter()
        .filter(|s| {
            s.rollback
                .as_ref()
                .is_some_and(|r| r.result == Some(StepResult::Succeeded))
        })
        .map(|s| format!("`{}`", s.key))
        .collect();
    let mut left: Vec<String> = steps
        .iter()
        .filter_map(|s| match (&s.rollback, s.rollback_skipped) {
            (Some(r), _) if r.result != Some(StepResult::Succeeded) => Some(format!(
                "`{}` ({})",
                s.key,
                super::result_words(r.result.as_ref())
            )),
            (None, Some(RollbackSkip::Declined)) => {
                Some(format!("`{}` ({})", s.key, RollbackSkip::Declined))
            }
            _ => None,
        })
        .collect();
    let mut words = if undone.is_empty() {
        "undid nothing".to_string()
    } else {
        format!("undid {} step(s): {}", undone.len(), undone.join(", "))
    };
    if left.is_empty() {
        words.push_str("; nothing else needed undoing");
    } else {
        left.sort();
        words.push_str(&format!("; NOT undone: {}", left.join(", ")));
    }
    words
}
