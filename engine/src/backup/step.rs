//! The `backup.ship` and `backup.prune` steps: what the executor runs for them on the controller.

use std::path::Path;
use std::time::Duration;

use super::BackupError;
use super::destination::Destination;
use crate::etcd::CallOutcome;
use crate::runbook::action::Action;

/// Whether `call` is a backup step (run by [`run`]).
pub fn is_backup(call: &Action) -> bool {
    matches!(call, Action::BackupShip(_) | Action::BackupPrune(_))
}

/// Runs a backup step within `timeout` (each destination gets the whole of it).
pub async fn run(call: &Action, timeout: Duration) -> Result<CallOutcome, BackupError> {
    match call {
        Action::BackupShip(args) => {
            let destinations = Destination::parse_list(&args.to)?;
            let copies =
                super::ship(Path::new(&args.snapshot), &destinations, timeout, |_, _| {}).await?;
            let lines: Vec<String> = copies
                .iter()
                .map(|c| {
                    format!(
                        "{} ({} bytes{}, read back whole)",
                        c.location,
                        c.bytes,
                        if c.already_there {
                            ", already there"
                        } else {
                            ""
                        }
                    )
                })
                .collect();
            Ok(CallOutcome::new(format!(
                "{} copies of {}: {}",
                copies.len(),
                args.snapshot,
                lines.join("; ")
            ))
            .output("copies", copies.len())
            .output(
                "locations",
                copies
                    .iter()
                    .map(|c| c.location.as_str())
                    .collect::<Vec<_>>()
                    .join(" "),
            ))
        }
        Action::BackupPrune(args) => {
            let destinations = Destination::parse_list(&args.destinations)?;
            let policy = args.policy();
            let mut deleted = Vec::new();
            let mut kept = 0;
            let mut lines = Vec::new();
            let mut failures = Vec::new();
            for destination in &destinations {
                match super::prune(destination, &policy, false, timeout).await {
                    Ok(outcome) => {
                        let here = outcome.decisions.iter().filter(|d| d.keep).count();
                        kept += here;
                        lines.push(format!(
                            "{destination}: kept {here}, deleted {}{}",
                            outcome.deleted.len(),
                            if outcome.not_counted.is_empty() {
                                String::new()
                            } else {
                                format!(", {} incomplete left alone", outcome.not_counted.len())
                            }
                        ));
                        deleted.extend(
                            outcome
                                .decisions
                                .iter()
                                .filter(|d| !d.keep)
                                .map(|d| d.copy.location.clone()),
                        );
                    }
                    Err(err) => failures.push(super::failure_line(destination, &err)),
                }
            }
            if !failures.is_empty() {
                let failed = failures.len();
                lines.extend(failures);
                return Err(BackupError::Incomplete {
                    failed,
                    total: destinations.len(),
                    lines,
                });
            }
            Ok(CallOutcome::new(format!("{policy}: {}", lines.join("; ")))
                .output("deleted", deleted.join(" "))
                .output("kept", kept))
        }
        other => unreachable!("`{}` is not a backup step", other.kind()),
    }
}
