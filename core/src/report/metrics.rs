//! What a finished run contributes to the Prometheus textfile ([`crate::textfile`]), computed
//! from its plan and journal like the rest of the report: whether it succeeded, and, when it did
//! and saved a snapshot, that snapshot's time, size and revision.

use std::time::SystemTime;

use crate::journal::{Event, Journal, RunResult, StepResult};
use crate::plan::Plan;
use crate::runbook::action::ActionKind;
use crate::textfile::{BackupSample, RunSample};

/// The sample of a run that ended with `result`.
pub fn run_sample(plan: &Plan, journal: &Journal, result: RunResult) -> RunSample {
    let succeeded = result == RunResult::Succeeded;
    let saves: Vec<&str> = plan
        .graph
        .node_weights()
        .filter(|s| s.action == ActionKind::EtcdSnapshotSave)
        .map(|s| s.key.as_str())
        .collect();
    // The last snapshot saved, if the run as a whole succeeded.
    let backup = journal
        .records
        .iter()
        .rev()
        .find_map(|record| match &record.event {
            Event::StepFinished {
                step,
                result: StepResult::Succeeded,
                outputs,
                ..
            } if saves.contains(&step.as_str()) => Some(BackupSample {
                taken: outputs
                    .get("time")
                    .and_then(|t| humantime::parse_rfc3339(t).ok())
                    .unwrap_or(record.at.0),
                size_bytes: outputs.get("size")?.parse().ok()?,
                revision: outputs
                    .get("revision")
                    .and_then(|r| r.parse().ok())
                    .unwrap_or(0),
            }),
            _ => None,
        })
        .filter(|_| succeeded);
    RunSample {
        runbook: plan.header.runbook.clone(),
        inventory: plan.header.inventory.clone(),
        finished: journal
            .records
            .last()
            .map_or_else(SystemTime::now, |r| r.at.0),
        succeeded,
        backup,
    }
}
