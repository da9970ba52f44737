//! Findings about how well the members keep up: slow disks, leader changes and failing
//! heartbeats, slow round trips between members, and a member trailing the others' log.

use super::{
    BACKEND_COMMIT_P99_WARN, HEARTBEAT_FAILURES_PER_DAY_WARN, LEADER_CHANGES_PER_DAY_WARN,
    MIN_DISK_SAMPLES, MIN_RTT_SAMPLES, PEER_RTT_P99_WARN, RAFT_LAG_WARN, View,
    WAL_FSYNC_P99_URGENT, WAL_FSYNC_P99_WARN, millis,
};
use crate::diagnose::facts::{EndpointFacts, Facts};
use crate::diagnose::findings::{Finding, Severity};

/// Slow WAL fsyncs and backend commits, from the members' latency histograms.
pub(super) fn disks(view: &View<'_>, findings: &mut Vec<Finding>) {
    let mut wal = Vec::new();
    let mut wal_severity = Severity::Warning;
    let mut commit = Vec::new();
    for member in &view.members {
        let Some(metrics) = member.endpoint.and_then(|e| e.metrics.as_ref()) else {
            continue;
        };
        if let Some(p99) = metrics.wal_fsync_p99
            && metrics.wal_fsync_count >= MIN_DISK_SAMPLES
            && p99 > WAL_FSYNC_P99_WARN
        {
            if p99 >= WAL_FSYNC_P99_URGENT {
                wal_severity = Severity::Urgent;
            }
            wal.push(format!(
                "{}: WAL fsync p99 {} over {} fsyncs",
                member.label,
                millis(p99),
                metrics.wal_fsync_count
            ));
        }
        if let Some(p99) = metrics.backend_commit_p99
            && metrics.backend_commit_count >= MIN_DISK_SAMPLES
            && p99 > BACKEND_COMMIT_P99_WARN
        {
            commit.push(format!(
                "{}: backend commit p99 {} over {} commits",
                member.label,
                millis(p99),
                metrics.backend_commit_count
            ));
        }
    }
    let action = "give etcd a dedicated low-latency disk (SSD/NVMe, no network storage), keep \
                  other I/O off it, and benchmark it with fio's fdatasync test";
    if !wal.is_empty() {
        findings.push(Finding::new(
            wal_severity,
            "slow-wal-fsync",
            "slow disk: WAL fsync p99 above 10 ms",
            format!(
                "etcd syncs its write-ahead log before acknowledging every write; a slow fsync \
                 delays heartbeats and causes elections (since the member started).\n{}",
                wal.join("\n")
            ),
            action,
        ));
    }
    if !commit.is_empty() {
        findings.push(Finding::new(
            Severity::Warning,
            "slow-backend-commit",
            "slow disk: backend commit p99 above 25 ms",
            format!(
                "bbolt commits of applied entries are slow (since the member started).\n{}",
                commit.join("\n")
            ),
            action,
        ));
    }
}

/// Uptime in days (at least one), from `process_start_time_seconds`.
fn uptime_days(facts: &Facts, endpoint: Option<&EndpointFacts>) -> f64 {
    let started = endpoint
        .and_then(|e| e.metrics.as_ref())
        .and_then(|m| m.process_start_time);
    match started {
        Some(start) if start > 0.0 && (facts.now as f64) > start => {
            ((facts.now as f64 - start) / 86400.0).max(1.0)
        }
        _ => 1.0,
    }
}

/// Frequent leader changes and failing heartbeats, per day of uptime.
pub(super) fn stability(facts: &Facts, view: &View<'_>, findings: &mut Vec<Finding>) {
    let mut leader = Vec::new();
    let mut heartbeat = Vec::new();
    for member in &view.members {
        let Some(metrics) = member.endpoint.and_then(|e| e.metrics.as_ref()) else {
            continue;
        };
        let days = uptime_days(facts, member.endpoint);
        if let Some(changes) = metrics.leader_changes {
            // The first election after a start is not instability.
            let excess = (changes - 1.0).max(0.0);
            if excess / days >= LEADER_CHANGES_PER_DAY_WARN {
                leader.push(format!(
                    "{}: {changes} leader changes seen in {days:.1} day(s) of uptime",
                    member.label
                ));
            }
        }
        let network = metrics.network_heartbeat_failures.unwrap_or(0.0);
        let server = metrics.server_heartbeat_failures.unwrap_or(0.0);
        if (network + server) / days >= HEARTBEAT_FAILURES_PER_DAY_WARN {
            heartbeat.push(format!(
                "{}: {network} heartbeat send failures to peers (network), {server} leader \
                 heartbeats not sent in time (likely a slow disk), in {days:.1} day(s)",
                member.label
            ));
        }
    }
    if !leader.is_empty() {
        findings.push(Finding::new(
            Severity::Warning,
            "leader-changes",
            "frequent leader changes",
            format!(
                "every change stalls writes for an election; causes are a slow disk, an overloaded \
                 member or an unstable network.\n{}",
                leader.join("\n")
            ),
            "look at the disk and network findings, the members' logs ('lost leader', 'elected \
             leader'), and CPU starvation on the control-plane nodes",
        ));
    }
    if !heartbeat.is_empty() {
        findings.push(Finding::new(
            Severity::Warning,
            "heartbeat-failures",
            "heartbeats failing",
            heartbeat.join("\n"),
            "check the network between members (drops, latency) and the leader's disk; a member \
             that is down also makes the leader's heartbeats to it fail",
        ));
    }
}

/// Slow round trips between members.
pub(super) fn peer_rtt(_facts: &Facts, view: &View<'_>, findings: &mut Vec<Finding>) {
    let mut lines = Vec::new();
    for member in &view.members {
        let Some(metrics) = member.endpoint.and_then(|e| e.metrics.as_ref()) else {
            continue;
        };
        for peer in &metrics.peer_rtt_p99 {
            if peer.count >= MIN_RTT_SAMPLES && peer.p99 > PEER_RTT_P99_WARN {
                lines.push(format!(
                    "{} -> {}: round trip p99 {}",
                    member.label,
                    view.label_of(&peer.to),
                    millis(peer.p99)
                ));
            }
        }
    }
    if !lines.is_empty() {
        findings.push(Finding::new(
            Severity::Warning,
            "peer-rtt",
            "slow round trips between members",
            format!(
                "with the default 100 ms heartbeat interval, round trips this long leave little \
                 margin before heartbeats are missed.\n{}",
                lines.join("\n")
            ),
            "keep members in one region with low latency, or raise --heartbeat-interval (about \
             the round-trip time) and --election-timeout (about 10x) on every member",
        ));
    }
}

/// A member whose log trails the most advanced one, or its own commits.
pub(super) fn raft_lag(view: &View<'_>, findings: &mut Vec<Finding>) {
    let Some(highest) = view.up().map(|(_, s)| s.raft_index).max() else {
        return;
    };
    let mut lines = Vec::new();
    for (member, status) in view.up() {
        let behind = highest.saturating_sub(status.raft_index);
        let unapplied = status.raft_index.saturating_sub(status.raft_applied_index);
        if behind > RAFT_LAG_WARN || unapplied > RAFT_LAG_WARN {
            lines.push(format!(
                "{}: raft index {} ({behind} behind the most advanced), applied {} ({unapplied} \
                 not yet applied)",
                member.label, status.raft_index, status.raft_applied_index
            ));
        }
    }
    if !lines.is_empty() {
        findings.push(Finding::new(
            Severity::Warning,
            "raft-index-lag",
            "a member trails the others",
            lines.join("\n"),
            "a member far behind is slow (disk, CPU) or cut off; it serves stale serializable \
             reads and cannot take over as leader soon. Check its disk findings and log",
        ));
    }
}
