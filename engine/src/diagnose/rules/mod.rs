//! The judgement of `diagnose`: pure functions from [`Facts`] to [`Finding`]s.
//!
//! Every threshold is a named constant with the reasoning behind it. Counters and histograms
//! from `/metrics` run from each member's start, so rates are taken over its uptime
//! (`process_start_time_seconds`), and quantiles cover the whole uptime.

use std::collections::BTreeSet;

use super::facts::{BackupRecord, EndpointFacts, Facts, MemberFacts, StatusFacts};
use super::findings::{Finding, RunbookSuggestion, Severity};
use crate::humanize::bytes;
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
    membership(facts, &view, &mut findings);
    alarms(facts, &mut findings);
    db_size(facts, &view, &mut findings);
    if !facts.alarms.iter().any(|a| a.alarm == "NOSPACE") {
        // The NOSPACE finding already says to compact and defragment.
        defrag(&view, &mut findings);
    }
    disks(&view, &mut findings);
    stability(facts, &view, &mut findings);
    peer_rtt(facts, &view, &mut findings);
    raft_lag(&view, &mut findings);
    versions(&view, &mut findings);
    backups(facts, &view, &mut findings);
    drills(facts, &mut findings);
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

/// Members down, quorum, even counts and single members.
fn membership(facts: &Facts, view: &View<'_>, findings: &mut Vec<Finding>) {
    if view.members.is_empty() {
        findings.push(Finding::new(
            Severity::Critical,
            "no-endpoints",
            "no etcd endpoint to ask",
            "neither flags, an inventory nor ETCDCTL_ENDPOINTS named an endpoint",
            "give --endpoints or -i INVENTORY",
        ));
        return;
    }
    let voting: Vec<&MemberView> = view.members.iter().filter(|m| !m.is_learner).collect();
    let up_voting: Vec<&MemberView> = voting
        .iter()
        .copied()
        .filter(|m| m.status.is_some())
        .collect();
    let down: Vec<&MemberView> = view.members.iter().filter(|m| m.status.is_none()).collect();
    let leader_known = view.up().any(|(m, s)| !m.is_learner && s.leader.is_some());
    let majority = voting.len() / 2 + 1;
    let why = |m: &MemberView| {
        if m.errors.is_empty() {
            "no endpoint of it was given or advertised".to_string()
        } else {
            m.errors.join("; ")
        }
    };

    if up_voting.is_empty() && view.up().next().is_none() {
        let newest = newest_good_backup(facts);
        let mut action = "check the endpoints, the CA and client certificate (a TLS error above \
                          says which), and whether etcd runs on the nodes; if every member's data \
                          is lost for good, restore the cluster from the newest good snapshot"
            .to_string();
        if let Some(copy) = newest.filter(|b| b.off_host) {
            action.push_str(&format!(
                " (the newest is {}: copy it to this machine first and give its path)",
                copy.location
            ));
        }
        let mut finding = Finding::new(
            Severity::Critical,
            "no-member-answers",
            format!("no member answers ({} tried)", view.members.len()),
            view.members
                .iter()
                .map(|m| format!("{}: {}", m.label, why(m)))
                .collect::<Vec<_>>()
                .join("\n"),
            action,
        );
        if let Some(copy) = newest {
            // The runbook takes a file on this machine.
            let path = if copy.off_host {
                "PATH"
            } else {
                copy.location.as_str()
            };
            finding = finding.with_runbook(RunbookSuggestion::new(
                RUNBOOK_RESTORE,
                &[("snapshot", path)],
            ));
        }
        findings.push(finding);
        return;
    }

    let quorum_lost = !voting.is_empty() && (up_voting.len() < majority || !leader_known);
    if quorum_lost {
        // The survivor with the most of the log: highest raft index, then applied index, then term.
        let best = view
            .up()
            .filter(|(m, _)| !m.is_learner)
            .max_by_key(|(_, s)| (s.raft_index, s.raft_applied_index, s.raft_term));
        let down_list = down
            .iter()
            .map(|m| format!("{}: {}", m.label, why(m)))
            .collect::<Vec<_>>()
            .join("\n");
        let mut finding = Finding::new(
            Severity::Critical,
            "quorum-lost",
            format!(
                "quorum lost: {} of {} voting members answer, {} needed{}",
                up_voting.len(),
                voting.len(),
                majority,
                if up_voting.len() >= majority {
                    " (yet none knows a leader)"
                } else {
                    ""
                }
            ),
            format!(
                "the cluster takes no writes and no linearizable reads (the Kubernetes API is down).\n{}{}",
                down_list,
                best.map(|(m, s)| format!(
                    "\nbest survivor: {} at raft index {} (term {})",
                    m.label, s.raft_index, s.raft_term
                ))
                .unwrap_or_default()
            ),
            "first try to bring the missing members back (start etcd on their nodes): that loses \
             nothing. Only if a majority is lost for good, recover from the best survivor, which \
             drops every entry it had not seen committed",
        );
        if let Some((m, _)) = best {
            finding = finding.with_runbook(RunbookSuggestion::new(
                RUNBOOK_QUORUM_RECOVERY,
                &[("survivor", &m.label)],
            ));
        }
        findings.push(finding);
    } else {
        for member in &down {
            let (severity, consequence) = if member.is_learner {
                (
                    Severity::Warning,
                    "it is a learner, so quorum does not depend on it".to_string(),
                )
            } else {
                (
                    Severity::Urgent,
                    format!(
                        "quorum holds with {} of {} voting members; {} more failure(s) stop the cluster",
                        up_voting.len(),
                        voting.len(),
                        up_voting.len() + 1 - majority
                    ),
                )
            };
            let mut finding = Finding::new(
                severity,
                "member-down",
                format!("member {} does not answer", member.label),
                format!("{}\n{consequence}", why(member)),
                format!(
                    "if {} only stopped (reboot, kubelet, a moved manifest), start etcd on it again and \
                     check with `etcdrill health`; if its data or disk is lost for good, replace the \
                     member",
                    member.label
                ),
            );
            if view.known && !member.is_learner {
                finding = finding.with_runbook(RunbookSuggestion::new(
                    RUNBOOK_REPLACE_MEMBER,
                    &[("node", &member.label)],
                ));
            }
            findings.push(finding);
        }
    }

    // Endpoints that answered for no member of the list: a wrong URL, or a foreign cluster.
    for endpoint in endpoints_of_no_member(facts, view) {
        findings.push(Finding::new(
            Severity::Warning,
            "endpoint-unreachable",
            format!("endpoint {} does not answer", endpoint.endpoint),
            endpoint.status_error.clone().unwrap_or_default(),
            "check the endpoint list: no member of the cluster advertises this URL",
        ));
    }

    if view.known && voting.len() >= 2 && voting.len() % 2 == 0 {
        findings.push(Finding::new(
            Severity::Warning,
            "even-member-count",
            format!("{} voting members: an even count", voting.len()),
            format!(
                "{n} members need {q} for quorum and so tolerate {t} failure(s), no more than {m} \
                 members would, while one more member can fail",
                n = voting.len(),
                q = majority,
                t = voting.len() - majority,
                m = voting.len() - 1
            ),
            format!(
                "run {} or {} voting members: add a member, or remove one",
                voting.len() + 1,
                voting.len() - 1
            ),
        ));
    }
    if view.known && voting.len() == 1 && facts.production {
        findings.push(Finding::new(
            Severity::Warning,
            "single-member-production",
            "a single-member cluster marked production",
            "one member tolerates no failure: losing its disk loses the cluster, and every \
             restart is an outage",
            "grow the cluster to 3 members (member add as learner, promote), and keep off-host \
             backups until then",
        ));
    }
}

fn endpoints_of_no_member<'f>(facts: &'f Facts, view: &View<'_>) -> Vec<&'f EndpointFacts> {
    if !view.known {
        return Vec::new();
    }
    let members = facts.members.as_deref().unwrap_or_default();
    facts
        .endpoints
        .iter()
        .filter(|e| e.status.is_none() && !e.discovered)
        .filter(|e| {
            !members.iter().any(|m| {
                member_urls(facts, m)
                    .iter()
                    .any(|u| same_url(u, &e.endpoint))
                    || (e.node.is_some() && e.node == m.node)
            })
        })
        // Loopback endpoints (kubeadm's default) stand for the local member.
        .filter(|e| !e.endpoint.contains("127.0.0.1") && !e.endpoint.contains("localhost"))
        .collect()
}

fn alarms(facts: &Facts, findings: &mut Vec<Finding>) {
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

fn db_size(facts: &Facts, view: &View<'_>, findings: &mut Vec<Finding>) {
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

fn defrag(view: &View<'_>, findings: &mut Vec<Finding>) {
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

fn disks(view: &View<'_>, findings: &mut Vec<Finding>) {
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

fn stability(facts: &Facts, view: &View<'_>, findings: &mut Vec<Finding>) {
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

fn peer_rtt(_facts: &Facts, view: &View<'_>, findings: &mut Vec<Finding>) {
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

fn raft_lag(view: &View<'_>, findings: &mut Vec<Finding>) {
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

fn versions(view: &View<'_>, findings: &mut Vec<Finding>) {
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

/// The newest good backup in any destination, for the restore suggestion.
fn newest_good_backup(facts: &Facts) -> Option<&BackupRecord> {
    facts
        .backups
        .backups
        .iter()
        .filter(|b| b.good)
        .max_by_key(|b| b.taken_at)
}

fn backups(facts: &Facts, view: &View<'_>, findings: &mut Vec<Finding>) {
    let destinations = &facts.backups.destinations;
    if destinations.is_empty() {
        findings.push(Finding::new(
            Severity::Info,
            "backups-not-checked",
            "backups not checked",
            "no --backups destination was given",
            "give --backups DEST for each place snapshots are kept: a directory, \
             ssh://[USER@]HOST/DIR or s3://BUCKET/PREFIX holding snapshots saved by `etcdrill \
             snapshot save` or shipped by `etcdrill snapshot ship`, with their .meta.json files",
        ));
        return;
    }
    let failed: Vec<_> = destinations.iter().filter(|d| d.error.is_some()).collect();
    let failed_names = failed
        .iter()
        .map(|d| d.destination.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    let failed_lines = failed
        .iter()
        .map(|d| {
            format!(
                "{}: {}",
                d.destination,
                d.error.as_deref().unwrap_or_default()
            )
        })
        .collect::<Vec<_>>()
        .join("\n");
    if failed.len() == destinations.len() {
        findings.push(Finding::new(
            Severity::Urgent,
            "no-backup",
            format!("cannot read backups in {failed_names}"),
            failed_lines,
            "check that the destination can be read from here (path, SSH host and key, bucket \
             and AWS_* credentials); take a snapshot now (`etcdrill snapshot save`) and check \
             the backup job",
        ));
        return;
    }
    if !failed.is_empty() {
        findings.push(Finding::new(
            Severity::Warning,
            "backup-destination-unreadable",
            format!("cannot read backups in {failed_names}"),
            format!("copies there, if any, are not counted.\n{failed_lines}"),
            "check that the destination can be read from here: the path, the SSH host and key, \
             or the bucket, endpoint and AWS_* credentials",
        ));
    }
    let good: Vec<_> = facts.backups.backups.iter().filter(|b| b.good).collect();
    let bad: Vec<String> = facts
        .backups
        .backups
        .iter()
        .filter(|b| !b.good)
        .map(|b| {
            format!(
                "{}: {}",
                b.location,
                b.problem.as_deref().unwrap_or("not good")
            )
        })
        .chain(facts.backups.unreadable.iter().cloned())
        .collect();
    let read: Vec<_> = destinations.iter().filter(|d| d.error.is_none()).collect();
    earlier_incarnations(facts, findings);
    let Some(newest) = good.iter().max_by_key(|b| b.taken_at) else {
        let others = &facts.backups.other_clusters;
        findings.push(Finding::new(
            Severity::Urgent,
            "no-backup",
            format!(
                "no good backup in {}",
                read.iter()
                    .map(|d| d.destination.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            match (bad.is_empty(), others.is_empty()) {
                (true, true) => "no snapshot metadata file (*.db.meta.json) found".to_string(),
                (false, true) => bad.join("\n"),
                (_, false) => {
                    let mut lines = bad.clone();
                    lines.push(format!(
                        "{} copy(ies) of other clusters (another cluster ID than this one's, {}) \
                         are not counted: {}. If this cluster was restored from a snapshot \
                         outside etcdrill, its ID changed and its earlier copies look like \
                         another cluster's",
                        others.len(),
                        current_cluster_id(facts).unwrap_or("unknown"),
                        others.join(", ")
                    ));
                    lines.join("\n")
                }
            },
            "take a snapshot now (`etcdrill snapshot save PATH`), ship it off the etcd hosts \
             (`etcdrill snapshot ship PATH --to DEST`), and schedule both",
        ));
        return;
    };
    let elapsed = facts.now.saturating_sub(newest.taken_at);
    if elapsed > BACKUP_WARN_AGE_SECS {
        findings.push(Finding::new(
            if elapsed > BACKUP_URGENT_AGE_SECS {
                Severity::Urgent
            } else {
                Severity::Warning
            },
            "backup-old",
            format!("the newest good backup is {} old", age(elapsed)),
            format!(
                "{} at revision {}; a restore from it loses every write since",
                newest.location, newest.meta.revision
            ),
            "check the backup job; take a snapshot now (`etcdrill snapshot save`)",
        ));
    }
    // Hosts that run etcd: inventory nodes (names and addresses) and member names.
    let mut hosts: BTreeSet<String> = BTreeSet::new();
    for node in &facts.nodes {
        hosts.insert(node.name.to_ascii_lowercase());
        hosts.insert(node.address.to_ascii_lowercase());
    }
    for member in &view.members {
        hosts.insert(member.label.to_ascii_lowercase());
    }
    let short = |h: &str| h.split('.').next().unwrap_or(h).to_ascii_lowercase();
    let on_etcd_host = |written_on: &str| {
        let written = written_on.to_ascii_lowercase();
        hosts.contains(&written) || hosts.iter().any(|h| short(h) == short(&written))
    };
    // A good copy off-host (SSH, S3) or written elsewhere survives losing the etcd hosts.
    if !good
        .iter()
        .any(|b| b.off_host || !on_etcd_host(&b.meta.written_on))
    {
        let writers: BTreeSet<&str> = good.iter().map(|b| b.meta.written_on.as_str()).collect();
        let kept: BTreeSet<&str> = good.iter().map(|b| b.destination.as_str()).collect();
        let off_host: Vec<&str> = read
            .iter()
            .filter(|d| d.off_host)
            .map(|d| d.destination.as_str())
            .collect();
        findings.push(Finding::new(
            Severity::Warning,
            "backups-on-etcd-hosts",
            "backups are kept only on etcd hosts",
            format!(
                "every good backup was written on an etcd node ({}) and is kept only in {}, on \
                 this machine; {}: losing that node loses the cluster and its backups together",
                writers.into_iter().collect::<Vec<_>>().join(", "),
                kept.into_iter().collect::<Vec<_>>().join(", "),
                if off_host.is_empty() {
                    "no off-host destination (ssh://, s3://) was given".to_string()
                } else {
                    format!("no good copy in {}", off_host.join(", "))
                }
            ),
            "ship every snapshot off the etcd hosts (`etcdrill snapshot ship PATH --to \
             ssh://HOST/DIR` or `--to s3://BUCKET/PREFIX`) and give those destinations to \
             --backups, or save snapshots from a separate machine",
        ));
    }
    // Off-host destinations whose newest good copy trails the newest backup by a day or more.
    let stale: Vec<String> = read
        .iter()
        .filter(|d| d.off_host)
        .filter_map(|d| {
            let there = good
                .iter()
                .filter(|b| b.destination == d.destination)
                .max_by_key(|b| b.taken_at);
            match there {
                None => Some(format!("{}: no good copy", d.destination)),
                Some(copy) => {
                    let behind = newest.taken_at.saturating_sub(copy.taken_at);
                    (behind > BACKUP_WARN_AGE_SECS).then(|| {
                        format!(
                            "{}: the newest good copy is {} older than {}",
                            d.destination,
                            age(behind),
                            newest.location
                        )
                    })
                }
            }
        })
        .collect();
    if !stale.is_empty() {
        findings.push(Finding::new(
            Severity::Warning,
            "backup-copies-stale",
            "off-host copies trail the newest backup",
            format!(
                "after losing the etcd hosts, a restore would start from an older copy.\n{}",
                stale.join("\n")
            ),
            "check the job that ships snapshots (`etcdrill snapshot ship`) and its credentials",
        ));
    }
    if !bad.is_empty() {
        findings.push(Finding::new(
            Severity::Info,
            "backup-damaged",
            format!("{} backup(s) are not good", bad.len()),
            bad.join("\n"),
            "delete or replace them; never restore from them",
        ));
    }
}

/// The cluster ID the members report.
fn current_cluster_id(facts: &Facts) -> Option<&str> {
    facts
        .endpoints
        .iter()
        .find_map(|e| e.status.as_ref().map(|s| s.cluster_id.as_str()))
}

/// Copies taken before a snapshot restore carry the cluster's earlier ID; they are counted as
/// its own, and the finding says so.
fn earlier_incarnations(facts: &Facts, findings: &mut Vec<Finding>) {
    let earlier = &facts.backups.earlier_ids;
    let copies: Vec<&BackupRecord> = facts
        .backups
        .backups
        .iter()
        .filter(|b| earlier.iter().any(|c| c.from == b.meta.cluster_id))
        .collect();
    if copies.is_empty() {
        return;
    }
    let restores: Vec<String> = earlier
        .iter()
        .map(|c| {
            format!(
                "cluster ID {} became {} (restored by run {})",
                c.from,
                c.to,
                c.run.display()
            )
        })
        .collect();
    findings.push(Finding::new(
        Severity::Info,
        "backups-of-earlier-incarnation",
        format!(
            "{} backup(s) predate a restore and are counted as this cluster's",
            copies.len()
        ),
        format!(
            "a snapshot restore gives the cluster a new ID; copies taken before it carry the old \
             one and hold the same data's history.\n{}\n{}",
            restores.join("\n"),
            copies
                .iter()
                .map(|b| format!("{} (cluster ID {})", b.location, b.meta.cluster_id))
                .collect::<Vec<_>>()
                .join("\n")
        ),
        "nothing is wrong; a restore from one of them brings the data back as it was before the \
         earlier restore. New snapshots carry the new ID",
    ));
}

fn drills(facts: &Facts, findings: &mut Vec<Finding>) {
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

#[cfg(test)]
mod tests;
