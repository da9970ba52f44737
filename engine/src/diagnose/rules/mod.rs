//! The judgement of `diagnose`: pure functions from [`Facts`] to [`Finding`]s.
//!
//! Every threshold is a named constant with the reasoning behind it. Counters and histograms
//! from `/metrics` run from each member's start, so rates are taken over its uptime
//! (`process_start_time_seconds`), and quantiles cover the whole uptime.
//!
//! This file holds the entry point ([`evaluate`]), the thresholds and runbook names, and the view
//! of the members every area judges from; each area of findings has its own file: `membership`,
//! `alarms`, `space` (quota and defrag), `performance` (disks, stability, round trips, raft lag),
//! `versions`, `backups` and `drills`.

mod alarms;
mod backups;
mod drills;
mod membership;
mod performance;
mod space;
mod versions;

use super::facts::{EndpointFacts, Facts, MemberFacts, StatusFacts};
use super::findings::Finding;
use crate::inventory::same_url;

/// etcd's default `--quota-backend-bytes` (2 GiB), used when a member does not export
/// `etcd_server_quota_backend_bytes`.
pub const DEFAULT_QUOTA_BYTES: f64 = 2.0 * 1024.0 * 1024.0 * 1024.0;
/// Warn at 70 % of the quota: etcd checks its quota against the database *file* size (free pages
/// included) and goes read-only (NOSPACE) when a write would pass it; at 70 % there is still time
/// to compact, defragment or raise the quota in working hours.
pub const QUOTA_WARN_RATIO: f64 = 0.70;
/// Urgent at 90 %: a burst of writes (events, a CRD rollout) can now reach NOSPACE, which stops
/// every write to the Kubernetes API.
pub const QUOTA_URGENT_RATIO: f64 = 0.90;
/// A defrag is worth suggesting when at least half the file is free pages...
pub const DEFRAG_FREE_RATIO: f64 = 0.5;
/// ...and at least 16 MiB would come back: below that the rewrite, which blocks the member while
/// it runs, is not worth it.
pub const DEFRAG_MIN_BYTES: f64 = 16.0 * 1024.0 * 1024.0;
/// A defrag becomes a warning from 100 MiB reclaimable: that much dead space in the file counts
/// against the quota and slows snapshots, restores and new members catching up.
pub const DEFRAG_WARN_BYTES: f64 = 100.0 * 1024.0 * 1024.0;
/// etcd's hardware guidance: WAL fsync p99 should stay under 10 ms; above it the disk is too slow
/// for etcd's write-ahead log and heartbeats start to slip.
pub const WAL_FSYNC_P99_WARN: f64 = 0.010;
/// A WAL fsync p99 of 1 s reaches the default election timeout (1 s): members miss heartbeats and
/// elections follow.
pub const WAL_FSYNC_P99_URGENT: f64 = 1.0;
/// etcd's hardware guidance: backend (bbolt) commit p99 should stay under 25 ms.
pub const BACKEND_COMMIT_P99_WARN: f64 = 0.025;
/// Disk latency quantiles need this many observations to mean anything.
pub const MIN_DISK_SAMPLES: f64 = 100.0;
/// A peer round trip p99 over 50 ms is half the default heartbeat interval (100 ms), which
/// etcd's tuning guide sets around the round-trip time: little margin is left before
/// heartbeats are missed.
pub const PEER_RTT_P99_WARN: f64 = 0.050;
/// Round-trip quantiles need this many probes (etcd probes each peer every 30 s).
pub const MIN_RTT_SAMPLES: f64 = 5.0;
/// Leader changes beyond the first election, per day of uptime (or in total during the first
/// day), from which the cluster is unstable: a healthy cluster changes leader on restarts and
/// upgrades only.
pub const LEADER_CHANGES_PER_DAY_WARN: f64 = 3.0;
/// Heartbeat send failures per day of uptime from which the network or the leader's disk is
/// struggling.
pub const HEARTBEAT_FAILURES_PER_DAY_WARN: f64 = 10.0;
/// Entries a member may trail the most advanced one by: etcd itself refuses new proposals when
/// a member's applied index trails its committed index by more than 5000
/// (`maxGapBetweenApplyAndCommitIndex`), so a gap this wide is no passing moment.
pub const RAFT_LAG_WARN: u64 = 5000;
/// A backup older than a day is a day of writes lost in a restore.
pub const BACKUP_WARN_AGE_SECS: u64 = 24 * 3600;
/// Three days without a good backup.
pub const BACKUP_URGENT_AGE_SECS: u64 = 3 * 24 * 3600;
/// A restore procedure not rehearsed in 30 days is not known to work.
pub const DRILL_MAX_AGE_SECS: u64 = 30 * 24 * 3600;

/// The stock runbook for a member lost for good while quorum holds.
pub const RUNBOOK_REPLACE_MEMBER: &str = "replace-member";
/// The stock runbook for a majority lost for good.
pub const RUNBOOK_QUORUM_RECOVERY: &str = "quorum-recovery";
/// The stock runbook that restores every member from a snapshot.
pub const RUNBOOK_RESTORE: &str = "restore-3-node";
/// The runbook that compacts the history (the first step out of NOSPACE).
pub const RUNBOOK_COMPACT: &str = "compact";
/// The runbook that defragments every member one at a time and disarms a NOSPACE alarm at the end.
pub const RUNBOOK_DEFRAG: &str = "defrag-rolling";

/// Every finding about `facts`, worst first (then by code).
pub fn evaluate(facts: &Facts) -> Vec<Finding> {
    let mut findings = Vec::new();
    let view = View::new(facts);
    membership::membership(facts, &view, &mut findings);
    alarms::alarms(facts, &mut findings);
    space::db_size(facts, &view, &mut findings);
    if !facts.alarms.iter().any(|a| a.alarm == "NOSPACE") {
        // The NOSPACE finding already says to compact and defragment.
        space::defrag(&view, &mut findings);
    }
    performance::disks(&view, &mut findings);
    performance::stability(facts, &view, &mut findings);
    performance::peer_rtt(facts, &view, &mut findings);
    performance::raft_lag(&view, &mut findings);
    versions::versions(&view, &mut findings);
    backups::backups(facts, &view, &mut findings);
    drills::drills(facts, &mut findings);
    findings.sort_by(|a, b| b.severity.cmp(&a.severity).then(a.code.cmp(&b.code)));
    findings
}

/// One member with what its endpoints told.
struct MemberView<'f> {
    label: String,
    id: Option<String>,
    is_learner: bool,
    status: Option<&'f StatusFacts>,
    endpoint: Option<&'f EndpointFacts>,
    /// Why it did not answer, from its endpoints.
    errors: Vec<String>,
}

/// The members, each with the endpoint that answered for it.
struct View<'f> {
    members: Vec<MemberView<'f>>,
    /// The member list was read.
    known: bool,
}

impl<'f> View<'f> {
    fn new(facts: &'f Facts) -> View<'f> {
        let answered = |id: &str| {
            facts
                .endpoints
                .iter()
                .find(|e| e.status.as_ref().is_some_and(|s| s.member_id == id))
        };
        let errors_of = |urls: &[String], node: Option<&str>| {
            facts
                .endpoints
                .iter()
                .filter(|e| {
                    urls.iter().any(|u| same_url(u, &e.endpoint))
                        || (node.is_some() && e.node.as_deref() == node)
                })
                .filter_map(|e| e.status_error.clone())
                .collect::<Vec<_>>()
        };
        match &facts.members {
            Some(members) => View {
                known: true,
                members: members
                    .iter()
                    .map(|m| {
                        let endpoint = answered(&m.id);
                        MemberView {
                            label: m.label(),
                            id: Some(m.id.clone()),
                            is_learner: m.is_learner,
                            status: endpoint.and_then(|e| e.status.as_ref()),
                            endpoint,
                            errors: errors_of(&member_urls(facts, m), m.node.as_deref()),
                        }
                    })
                    .collect(),
            },
            // No member list: the inventory's nodes, or else the endpoints, stand for members.
            None if !facts.nodes.is_empty() => View {
                known: false,
                members: facts
                    .nodes
                    .iter()
                    .map(|n| {
                        let endpoint = facts.endpoints.iter().find(|e| {
                            e.node.as_deref() == Some(n.name.as_str())
                                || same_url(&e.endpoint, &n.client_url)
                        });
                        MemberView {
                            label: n.name.clone(),
                            id: endpoint
                                .and_then(|e| e.status.as_ref().map(|s| s.member_id.clone())),
                            is_learner: false,
                            status: endpoint.and_then(|e| e.status.as_ref()),
                            endpoint,
                            errors: errors_of(std::slice::from_ref(&n.client_url), Some(&n.name)),
                        }
                    })
                    .collect(),
            },
            None => View {
                known: false,
                members: facts
                    .endpoints
                    .iter()
                    .map(|e| MemberView {
                        label: e.node.clone().unwrap_or_else(|| e.endpoint.clone()),
                        id: e.status.as_ref().map(|s| s.member_id.clone()),
                        is_learner: e.status.as_ref().is_some_and(|s| s.is_learner),
                        status: e.status.as_ref(),
                        endpoint: Some(e),
                        errors: e.status_error.iter().cloned().collect(),
                    })
                    .collect(),
            },
        }
    }

    fn up(&self) -> impl Iterator<Item = (&MemberView<'f>, &'f StatusFacts)> + '_ {
        self.members
            .iter()
            .filter_map(|m| m.status.map(|status| (m, status)))
    }

    fn label_of(&self, id: &str) -> String {
        self.members
            .iter()
            .find(|m| m.id.as_deref() == Some(id))
            .map(|m| m.label.clone())
            .unwrap_or_else(|| format!("member {id}"))
    }
}

/// A member's client URLs, plus its inventory node's.
fn member_urls(facts: &Facts, member: &MemberFacts) -> Vec<String> {
    let mut urls = member.client_urls.clone();
    if let Some(node) = facts
        .nodes
        .iter()
        .find(|n| Some(&n.name) == member.node.as_ref())
    {
        urls.push(node.client_url.clone());
    }
    urls
}

fn millis(seconds: f64) -> String {
    format!("{:.1} ms", seconds * 1000.0)
}

/// An age for people: `3 h`, `2.5 days`.
fn age(secs: u64) -> String {
    if secs < 2 * 3600 {
        format!("{} min", secs / 60)
    } else if secs < 2 * 86400 {
        format!("{} h", secs / 3600)
    } else {
        format!("{:.1} days", secs as f64 / 86400.0)
    }
}

#[cfg(test)]
mod tests;
