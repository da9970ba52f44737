//! Findings about the etcd versions the members run: skew between them.

use std::collections::BTreeSet;

use super::View;
use crate::diagnose::findings::{Finding, Severity};

/// Members running different etcd versions (a rolling upgrade left half done).
pub(super) fn versions(view: &View<'_>, findings: &mut Vec<Finding>) {
    let versions: BTreeSet<&str> = view.up().map(|(_, s)| s.version.as_str()).collect();
    if versions.len() < 2 {
        return;
    }
    let minor = |v: &str| v.split('.').take(2).collect::<Vec<_>>().join(".");
    let minors: BTreeSet<String> = versions.iter().map(|v| minor(v)).collect();
    let newest = versions
        .iter()
        .max_by_key(|v| {
            v.split('.')
                .map(|p| p.parse::<u64>().unwrap_or(0))
                .collect::<Vec<_>>()
        })
        .copied()
        .unwrap_or_default();
    let lines: Vec<String> = view
        .up()
        .map(|(m, s)| format!("{}: {}", m.label, s.version))
        .collect();
    let (severity, summary) = if minors.len() > 1 {
        (
            Severity::Warning,
            "members run different minor versions of etcd",
        )
    } else {
        (
            Severity::Info,
            "members run different patch versions of etcd",
        )
    };
    findings.push(Finding::new(
        severity,
        "version-skew",
        summary,
        format!(
            "a mixed cluster runs at the lowest version's cluster version, is only supported \
             during a rolling upgrade, and cannot be downgraded once upgraded.\n{}",
            lines.join("\n")
        ),
        format!("finish the rolling upgrade: one member at a time to {newest}, waiting for health between members"),
    ));
}
