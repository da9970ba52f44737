//! Findings about restore drills: none on record, or the last passing one too old.

use super::{DRILL_MAX_AGE_SECS, age};
use crate::diagnose::facts::Facts;
use crate::diagnose::findings::{Finding, Severity};

/// No passing restore drill, or one older than [`DRILL_MAX_AGE_SECS`].
pub(super) fn drills(facts: &Facts, findings: &mut Vec<Finding>) {
    let action = format!(
        "run a restore drill (`etcdrill drill run DRILL.yaml`) against a test cluster at least \
         every {} days",
        DRILL_MAX_AGE_SECS / 86400
    );
    match &facts.drills.newest_pass {
        None => findings.push(Finding::new(
            Severity::Warning,
            "no-restore-drill",
            "no passing restore drill on record",
            format!(
                "no report of a passing drill under {} ({} drill report(s) found): the restore \
                 procedure is not known to work",
                facts.drills.dir.display(),
                facts.drills.drills_seen
            ),
            action,
        )),
        Some(pass) => {
            let elapsed = facts.now.saturating_sub(pass.ended_at);
            if elapsed > DRILL_MAX_AGE_SECS {
                findings.push(Finding::new(
                    Severity::Warning,
                    "restore-drill-old",
                    format!("the last passing restore drill is {} old", age(elapsed)),
                    format!(
                        "{} ({} on {})",
                        pass.run.display(),
                        pass.runbook,
                        pass.inventory
                    ),
                    action,
                ));
            }
        }
    }
}
