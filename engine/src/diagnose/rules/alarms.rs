//! Findings about active alarms: NOSPACE (the cluster takes no writes), CORRUPT, and any other.

use std::collections::BTreeSet;

use super::{RUNBOOK_COMPACT, RUNBOOK_DEFRAG, RUNBOOK_REPLACE_MEMBER};
use crate::diagnose::facts::Facts;
use crate::diagnose::findings::{Finding, RunbookSuggestion, Severity};

/// One finding per kind of active alarm, naming the members that raised it.
pub(super) fn alarms(facts: &Facts, findings: &mut Vec<Finding>) {
    let kinds: BTreeSet<&str> = facts.alarms.iter().map(|a| a.alarm.as_str()).collect();
    for kind in kinds {
        let on: Vec<&str> = facts
            .alarms
            .iter()
            .filter(|a| a.alarm == kind)
            .map(|a| a.member.as_str())
            .collect();
        let finding = match kind {
            "NOSPACE" => Finding::new(
                Severity::Critical,
                "alarm-nospace",
                format!("NOSPACE alarm raised by {}", on.join(", ")),
                "a member's database reached --quota-backend-bytes: the cluster refuses every write \
                 (the Kubernetes API cannot change anything) until the alarm is disarmed, and \
                 disarming without freeing space raises it again",
                "compact the history (to the current revision), defragment every member one at a \
                 time, then disarm the alarm (runbook defrag-rolling disarms at its end); if the \
                 data itself fills the quota, raise --quota-backend-bytes on every member first",
            )
            .with_runbook(RunbookSuggestion::new(RUNBOOK_COMPACT, &[]))
            .then_runbook(RunbookSuggestion::new(RUNBOOK_DEFRAG, &[("min_free_mb", "0")])),
            "CORRUPT" => {
                let mut finding = Finding::new(
                    Severity::Critical,
                    "alarm-corrupt",
                    format!("CORRUPT alarm raised against {}", on.join(", ")),
                    "etcd's corruption check found members whose data differs for the same revision",
                    "find the odd member out with `etcdctl endpoint hashkv --cluster`, then replace it \
                     (its data is not to be trusted), then disarm",
                );
                if let [member] = on.as_slice() {
                    finding = finding.with_runbook(RunbookSuggestion::new(
                        RUNBOOK_REPLACE_MEMBER,
                        &[("node", member)],
                    ));
                }
                finding
            }
            other => Finding::new(
                Severity::Urgent,
                "alarm",
                format!("{other} alarm raised by {}", on.join(", ")),
                "",
                "find out why etcd raised it (its log), fix that, then `etcdctl alarm disarm`",
            ),
        };
        findings.push(finding);
    }
}
