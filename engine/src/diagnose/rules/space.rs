//! Findings about the database's space: a file near its quota, and free pages a defrag would
//! reclaim.

use super::{
    DEFAULT_QUOTA_BYTES, DEFRAG_FREE_RATIO, DEFRAG_MIN_BYTES, DEFRAG_WARN_BYTES,
    QUOTA_URGENT_RATIO, QUOTA_WARN_RATIO, RUNBOOK_DEFRAG, View,
};
use crate::diagnose::facts::{EndpointFacts, Facts};
use crate::diagnose::findings::{Finding, RunbookSuggestion, Severity};
use crate::humanize::bytes;

/// The quota a member runs with, and whether it was assumed.
fn quota_of(endpoint: Option<&EndpointFacts>) -> (f64, bool) {
    match endpoint
        .and_then(|e| e.metrics.as_ref())
        .and_then(|m| m.quota_backend_bytes)
    {
        Some(q) if q > 0.0 => (q, false),
        _ => (DEFAULT_QUOTA_BYTES, true),
    }
}

/// A database file near its quota (unless a NOSPACE alarm already says so).
pub(super) fn db_size(facts: &Facts, view: &View<'_>, findings: &mut Vec<Finding>) {
    if facts.alarms.iter().any(|a| a.alarm == "NOSPACE") {
        return; // The alarm finding says it all.
    }
    let mut worst: Option<(Severity, f64)> = None;
    let mut lines = Vec::new();
    let mut reclaimable_everywhere = true;
    for (member, status) in view.up() {
        let (quota, assumed) = quota_of(member.endpoint);
        let size = status.db_size as f64;
        let ratio = size / quota;
        let severity = if ratio >= QUOTA_URGENT_RATIO {
            Severity::Urgent
        } else if ratio >= QUOTA_WARN_RATIO {
            Severity::Warning
        } else {
            continue;
        };
        let free = (status.db_size - status.db_size_in_use) as f64;
        if free < size * 0.2 {
            reclaimable_everywhere = false;
        }
        lines.push(format!(
            "{}: {} of {} quota{} ({:.0} %), {} in use, {} reclaimable by defrag",
            member.label,
            bytes(size),
            bytes(quota),
            if assumed {
                " (etcd's default, assumed)"
            } else {
                ""
            },
            ratio * 100.0,
            bytes(status.db_size_in_use as f64),
            bytes(free)
        ));
        if worst.is_none_or(|(s, r)| (severity, ratio) > (s, r)) {
            worst = Some((severity, ratio));
        }
    }
    let Some((severity, ratio)) = worst else {
        return;
    };
    let action = if reclaimable_everywhere {
        "compact, then defragment the members one at a time (followers first, the leader last): \
         the free pages in the file count against the quota"
    } else {
        "the data itself is growing: find what fills it (key counts by prefix, e.g. events and \
         leases), compact more often, or raise --quota-backend-bytes on every member (8 GiB is the \
         suggested maximum)"
    };
    findings.push(Finding::new(
        severity,
        "db-near-quota",
        format!(
            "database at {:.0} % of its quota{}",
            ratio * 100.0,
            if severity == Severity::Urgent {
                ": NOSPACE is near"
            } else {
                ""
            }
        ),
        format!(
            "etcd refuses writes (NOSPACE alarm) once the database file reaches \
             --quota-backend-bytes.\n{}",
            lines.join("\n")
        ),
        action,
    ));
}

/// Free pages worth a defrag.
pub(super) fn defrag(view: &View<'_>, findings: &mut Vec<Finding>) {
    let mut lines = Vec::new();
    let mut severity = Severity::Info;
    let mut total = 0.0;
    for (member, status) in view.up() {
        let size = status.db_size as f64;
        let free = (status.db_size - status.db_size_in_use) as f64;
        if free < DEFRAG_MIN_BYTES || free < size * DEFRAG_FREE_RATIO {
            continue;
        }
        if free >= DEFRAG_WARN_BYTES {
            severity = Severity::Warning;
        }
        total += free;
        lines.push(format!(
            "{}: {} file, {} in use: {} ({:.0} %) free pages",
            member.label,
            bytes(size),
            bytes(status.db_size_in_use as f64),
            bytes(free),
            free / size * 100.0
        ));
    }
    if lines.is_empty() {
        return;
    }
    findings.push(
        Finding::new(
            severity,
            "defrag-reclaimable",
            format!("a defrag would reclaim {}", bytes(total)),
            lines.join("\n"),
            "defragment one member at a time, followers first and the leader last: it rewrites the \
         file and blocks that member while it runs",
        )
        .with_runbook(RunbookSuggestion::new(RUNBOOK_DEFRAG, &[])),
    );
}
