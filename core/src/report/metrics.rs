//! What a finished run contributes to the Prometheus textfile ([`crate::textfile`]), computed
//! from its plan and journal like the rest of the report: whether it succeeded, and, when it did
//! and saved a snapshot, that snapshot's time, size and revision.

use std::time::{Duration, SystemTime};

use crate::journal::{Journal, RunResult, StepResult};
use crate::plan::Plan;
use crate::run_state::RunState;
use crate::runbook::action::ActionKind;
use crate::textfile::{BackupSample, RunSample};

/// The sample of a run that ended with `result`.
pub fn run_sample(plan: &Plan, journal: &Journal, result: RunResult) -> RunSample {
    let state = RunState::replay(journal);
    let succeeded = result == RunResult::Succeeded;
    // The last snapshot saved, if the run as a whole succeeded.
    let backup = plan
        .graph
        .node_weights()
        .filter(|s| s.action == ActionKind::EtcdSnapshotSave)
        .filter_map(|s| {
            let history = state.history(&s.key)?;
            let attempt = history.last_attempt()?;
            (attempt.result == Some(StepResult::Succeeded)).then_some((attempt, &history.outputs))
        })
        .max_by_key(|(attempt, _)| attempt.started)
        .and_then(|(attempt, outputs)| {
            Some(BackupSample {
                taken: outputs
                    .get("time")
                    .and_then(|t| humantime::parse_rfc3339(t).ok())
                    .unwrap_or(attempt.started.0 + Duration::from_millis(attempt.duration_ms)),
                size_bytes: outputs.get("size")?.parse().ok()?,
                revision: outputs
                    .get("revision")
                    .and_then(|r| r.parse().ok())
                    .unwrap_or(0),
            })
        })
        .filter(|_| succeeded);
    RunSample {
        runbook: plan.header.runbook.clone(),
        inventory: plan.header.inventory.clone(),
        finished: state.span.map_or_else(SystemTime::now, |(_, last)| last.0),
        succeeded,
        backup,
    }
}
