//! Findings: what a reviewer of a run should look at (failures, slow steps, retries, skips that
//! hide work, a stale plan, steps the plan no longer has), each with why it matters.

use crate::journal::{SkipReason, StepResult};

use super::{Finding, FindingKind, RunInfo, StepReport, StepStatus};
use crate::humanize::human_ms;

/// Steps slower than this are always findings.
const SLOW_MS: u64 = 30_000;
/// The slowest steps listed as findings, whatever their duration.
const SLOWEST: usize = 3;

pub(super) fn findings(
    steps: &[StepReport],
    run: &RunInfo,
    drill: Option<&super::DrillFacts>,
    total_ms: u64,
    unknown: &[String],
) -> Vec<Finding> {
    let mut findings = Vec::new();
    let mut push = |kind, step: Option<&str>, message: String| {
        findings.push(Finding {
            kind,
            step: step.map(str::to_string),
            message,
        })
    };
    for step in steps.iter().filter(|s| s.status == StepStatus::Failed) {
        push(
            FindingKind::Failed,
            Some(&step.key),
            format!(
                "`{}` failed: {}",
                step.key,
                step.error.as_deref().unwrap_or("no error recorded")
            ),
        );
    }
    for step in steps {
        if let Some(rollback) = &step.rollback {
            if rollback.result != Some(StepResult::Succeeded) {
                push(
                    FindingKind::RollbackFailed,
                    Some(&step.key),
                    format!(
                        "the rollback of `{}` {}",
                        step.key,
                        super::result_words(rollback.result.as_ref())
                    ),
                );
            }
        }
    }
    for step in steps {
        let timeouts: Vec<String> = step
            .attempts
            .iter()
            .filter(|a| a.result == Some(StepResult::TimedOut))
            .map(|a| a.number.to_string())
            .collect();
        if !timeouts.is_empty() {
            push(
                FindingKind::TimedOut,
                Some(&step.key),
                format!(
                    "`{}` ran out of time (attempt {} of {})",
                    step.key,
                    timeouts.join(", "),
                    step.attempts.len()
                ),
            );
        }
    }
    for step in steps.iter().filter(|s| s.attempts.len() > 1) {
        let outcome = match step.status {
            StepStatus::Succeeded => "succeeded on the last",
            StepStatus::NoRecordedEnd => "the last has no recorded end",
            _ => "none succeeded",
        };
        push(
            FindingKind::Retried,
            Some(&step.key),
            format!(
                "`{}` needed {} attempts; {outcome}",
                step.key,
                step.attempts.len()
            ),
        );
    }
    let mut ran: Vec<&StepReport> = steps
        .iter()
        .filter(|s| s.duration_ms.is_some_and(|d| d > 0))
        .collect();
    ran.sort_by(|a, b| {
        b.duration_ms
            .cmp(&a.duration_ms)
            .then_with(|| a.key.cmp(&b.key))
    });
    for (rank, step) in ran.iter().enumerate() {
        let duration = step.duration_ms.unwrap_or(0);
        if rank >= SLOWEST && duration <= SLOW_MS {
            continue;
        }
        let share = (duration * 100)
            .checked_div(total_ms)
            .map(|percent| format!(", {percent}% of the run"))
            .unwrap_or_default();
        let over = if duration > SLOW_MS {
            " (over 30 s)"
        } else {
            ""
        };
        push(
            FindingKind::Slow,
            Some(&step.key),
            format!("`{}` took {}{share}{over}", step.key, human_ms(duration)),
        );
    }
    for (reason, kind, why) in [
        (
            SkipReason::FailFast,
            FindingKind::SkippedByFailFast,
            "did not run because an earlier step failed (fail-fast)",
        ),
        (
            SkipReason::Interrupted,
            FindingKind::SkippedByInterruption,
            "did not run because the run was stopped",
        ),
    ] {
        let keys: Vec<String> = steps
            .iter()
            .filter(|s| s.skip.as_ref() == Some(&reason))
            .map(|s| format!("`{}`", s.key))
            .collect();
        if !keys.is_empty() {
            let count = if keys.len() == 1 {
                "1 step".to_string()
            } else {
                format!("{} steps", keys.len())
            };
            push(kind, None, format!("{count} {why}: {}", keys.join(", ")));
        }
    }
    for step in steps
        .iter()
        .filter(|s| s.status == StepStatus::NoRecordedEnd)
    {
        push(
            FindingKind::NoRecordedEnd,
            Some(&step.key),
            format!(
                "`{}` started and has no recorded end: whether it took effect is unknown",
                step.key
            ),
        );
    }
    for verification in drill.iter().flat_map(|d| &d.verifications) {
        if !verification.passed {
            push(
                FindingKind::VerificationFailed,
                None,
                format!(
                    "verification `{}` failed: {}",
                    verification.name, verification.detail
                ),
            );
        }
    }
    if run.torn_journal {
        push(
            FindingKind::TornJournal,
            None,
            "the journal's last line was cut short (the controller stopped mid-write) and was dropped".into(),
        );
    }
    if !run.plan_matches {
        push(
            FindingKind::PlanMismatch,
            None,
            "the plan this report was made with is not the plan the run executed (the digests differ): step details may not match".into(),
        );
    }
    if !unknown.is_empty() {
        let keys: Vec<String> = unknown.iter().map(|k| format!("`{k}`")).collect();
        push(
            FindingKind::PlanMismatch,
            None,
            format!(
                "the journal names steps the plan does not have: {}",
                keys.join(", ")
            ),
        );
    }
    findings
}
