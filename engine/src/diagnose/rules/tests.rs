//! Table tests of the rules: a healthy 3-member cluster with a fresh off-host backup and a recent
//! drill gives no finding; each case breaks one thing and expects its finding.

use super::*;
use crate::diagnose::facts::{
    AlarmFacts, BackupDestinationFacts, BackupFacts, BackupRecord, DrillFacts, DrillPass, NodeFacts,
};
use crate::diagnose::findings::Severity;
use crate::diagnose::metrics::{MemberMetrics, PeerRtt};
use crate::journal::Timestamp;
use crate::snapshot::meta::{META_FORMAT, META_VERSION, SnapshotMeta};

const NOW: u64 = 1_700_000_000;
const MIB: i64 = 1024 * 1024;
const DAY: u64 = 86400;

fn id(i: usize) -> String {
    format!("{:x}", 0xa0 + i)
}

fn meta(written_on: &str) -> SnapshotMeta {
    SnapshotMeta {
        format: META_FORMAT.into(),
        version: META_VERSION,
        cluster: "prod".into(),
        cluster_id: "c1".into(),
        member: "cp1".into(),
        member_id: id(1),
        endpoint: "https://10.0.0.1:2379".into(),
        etcd_version: "3.5.1".into(),
        revision: 100,
        time: Timestamp(std::time::UNIX_EPOCH + std::time::Duration::from_secs(NOW - 3600)),
        size: 20512,
        sha256: "00".repeat(32),
        written_on: written_on.into(),
    }
}

fn backup(written_on: &str, age: u64, good: bool) -> BackupRecord {
    copy_in("/backups", written_on, age, good)
}

/// A copy in `destination`: a directory, or off-host when written as a URL.
fn copy_in(destination: &str, written_on: &str, age: u64, good: bool) -> BackupRecord {
    BackupRecord {
        location: format!("{destination}/etcd-{age}.db"),
        destination: destination.into(),
        off_host: destination.contains("://"),
        meta: meta(written_on),
        good,
        problem: (!good).then(|| "size differs".to_string()),
        taken_at: NOW - age,
    }
}

fn destination(destination: &str, error: Option<&str>) -> BackupDestinationFacts {
    BackupDestinationFacts {
        destination: destination.into(),
        off_host: destination.contains("://"),
        error: error.map(str::to_string),
    }
}

/// A healthy cluster of `n` members, cp1 leading.
fn healthy(n: usize) -> Facts {
    let nodes: Vec<NodeFacts> = (1..=n)
        .map(|i| NodeFacts {
            name: format!("cp{i}"),
            address: format!("10.0.0.{i}"),
            member: format!("cp{i}"),
            client_url: format!("https://10.0.0.{i}:2379"),
        })
        .collect();
    let endpoints = nodes
        .iter()
        .enumerate()
        .map(|(i, node)| EndpointFacts {
            endpoint: node.client_url.clone(),
            node: Some(node.name.clone()),
            discovered: false,
            status: Some(StatusFacts {
                member_id: id(i + 1),
                cluster_id: "c1".into(),
                version: "3.5.1".into(),
                db_size: 40 * MIB,
                db_size_in_use: 35 * MIB,
                leader: Some(id(1)),
                raft_term: 2,
                raft_index: 1000,
                raft_applied_index: 1000,
                is_learner: false,
                errors: vec![],
                revision: 500,
            }),
            status_error: None,
            healthy: Some(true),
            health_error: None,
            health_took_ms: Some(3),
            metrics: Some(MemberMetrics {
                wal_fsync_p99: Some(0.002),
                wal_fsync_count: 10_000.0,
                backend_commit_p99: Some(0.004),
                backend_commit_count: 10_000.0,
                peer_rtt_p99: vec![PeerRtt {
                    to: id(1),
                    p99: 0.001,
                    count: 100.0,
                }],
                leader_changes: Some(1.0),
                network_heartbeat_failures: Some(0.0),
                server_heartbeat_failures: Some(0.0),
                quota_backend_bytes: Some(2.0 * 1024.0 * 1024.0 * 1024.0),
                db_total_size: None,
                db_in_use: None,
                has_leader: Some(1.0),
                server_version: Some("3.5.1".into()),
                process_start_time: Some((NOW - 10 * DAY) as f64),
            }),
            metrics_error: None,
        })
        .collect();
    let members = nodes
        .iter()
        .enumerate()
        .map(|(i, node)| MemberFacts {
            id: id(i + 1),
            name: node.name.clone(),
            peer_urls: vec![format!("https://{}:2380", node.address)],
            client_urls: vec![node.client_url.clone()],
            is_learner: false,
            node: Some(node.name.clone()),
        })
        .collect();
    Facts {
        cluster: Some("prod".into()),
        inventory: Some("inv.yaml".into()),
        production: true,
        nodes,
        endpoints,
        members: Some(members),
        member_list_error: None,
        alarms: vec![],
        alarm_error: None,
        backups: BackupFacts {
            destinations: vec![destination("/backups", None)],
            backups: vec![backup("backup-host", 3600, true)],
            unreadable: vec![],
            other_clusters: vec![],
            earlier_ids: vec![],
        },
        drills: DrillFacts {
            dir: ".etcdrill/runs".into(),
            newest_pass: Some(DrillPass {
                run: ".etcdrill/runs/r1".into(),
                runbook: "restore-3-node".into(),
                inventory: "staging".into(),
                ended_at: NOW - 5 * DAY,
            }),
            drills_seen: 1,
        },
        now: NOW,
    }
}

fn down(facts: &mut Facts, i: usize) {
    let endpoint = &mut facts.endpoints[i];
    endpoint.status = None;
    endpoint.metrics = None;
    endpoint.status_error = Some("connection refused".into());
    endpoint.healthy = Some(false);
}

fn metrics(facts: &mut Facts, i: usize) -> &mut MemberMetrics {
    facts.endpoints[i].metrics.as_mut().unwrap()
}

fn status(facts: &mut Facts, i: usize) -> &mut StatusFacts {
    facts.endpoints[i].status.as_mut().unwrap()
}

fn codes(findings: &[Finding]) -> Vec<(String, Severity)> {
    findings
        .iter()
        .map(|f| (f.code.clone(), f.severity))
        .collect()
}

#[test]
fn a_healthy_cluster_has_no_finding() {
    let findings = evaluate(&healthy(3));
    assert!(findings.is_empty(), "{findings:#?}");
}

type Case = (&'static str, fn(&mut Facts), &'static str, Severity);

#[test]
fn each_condition_gives_its_finding() {
    let cases: &[Case] = &[
        (
            "member down",
            |f| down(f, 2),
            "member-down",
            Severity::Urgent,
        ),
        (
            "majority down",
            |f| {
                down(f, 1);
                down(f, 2);
                status(f, 0).leader = None;
            },
            "quorum-lost",
            Severity::Critical,
        ),
        (
            "nothing answers",
            |f| {
                for i in 0..3 {
                    down(f, i);
                }
                f.members = None;
            },
            "no-member-answers",
            Severity::Critical,
        ),
        (
            "db at 75 % of quota",
            |f| status(f, 0).db_size = 1536 * MIB,
            "db-near-quota",
            Severity::Warning,
        ),
        (
            "db at 95 % of a small quota",
            |f| {
                metrics(f, 1).quota_backend_bytes = Some(16.0 * MIB as f64);
                status(f, 1).db_size = 15 * MIB + MIB / 5;
                status(f, 1).db_size_in_use = 15 * MIB;
            },
            "db-near-quota",
            Severity::Urgent,
        ),
        (
            "half the file is free",
            |f| {
                status(f, 0).db_size = 60 * MIB;
                status(f, 0).db_size_in_use = 20 * MIB;
            },
            "defrag-reclaimable",
            Severity::Info,
        ),
        (
            "a lot is free",
            |f| {
                status(f, 0).db_size = 600 * MIB;
                status(f, 0).db_size_in_use = 100 * MIB;
            },
            "defrag-reclaimable",
            Severity::Warning,
        ),
        (
            "NOSPACE",
            |f| {
                f.alarms.push(AlarmFacts {
                    member_id: id(2),
                    member: "cp2".into(),
                    alarm: "NOSPACE".into(),
                })
            },
            "alarm-nospace",
            Severity::Critical,
        ),
        (
            "CORRUPT",
            |f| {
                f.alarms.push(AlarmFacts {
                    member_id: id(3),
                    member: "cp3".into(),
                    alarm: "CORRUPT".into(),
                })
            },
            "alarm-corrupt",
            Severity::Critical,
        ),
        (
            "slow WAL fsync",
            |f| metrics(f, 1).wal_fsync_p99 = Some(0.030),
            "slow-wal-fsync",
            Severity::Warning,
        ),
        (
            "very slow WAL fsync",
            |f| metrics(f, 1).wal_fsync_p99 = Some(1.5),
            "slow-wal-fsync",
            Severity::Urgent,
        ),
        (
            "slow backend commit",
            |f| metrics(f, 2).backend_commit_p99 = Some(0.060),
            "slow-backend-commit",
            Severity::Warning,
        ),
        (
            "leader changes",
            |f| metrics(f, 0).leader_changes = Some(40.0),
            "leader-changes",
            Severity::Warning,
        ),
        (
            "heartbeat failures",
            |f| metrics(f, 0).network_heartbeat_failures = Some(500.0),
            "heartbeat-failures",
            Severity::Warning,
        ),
        (
            "slow peer round trips",
            |f| metrics(f, 0).peer_rtt_p99[0].p99 = 0.2,
            "peer-rtt",
            Severity::Warning,
        ),
        (
            "a member trails",
            |f| {
                for i in 0..2 {
                    status(f, i).raft_index = 10_000;
                    status(f, i).raft_applied_index = 10_000;
                }
                status(f, 2).raft_index = 100;
                status(f, 2).raft_applied_index = 100;
            },
            "raft-index-lag",
            Severity::Warning,
        ),
        (
            "a member applies slowly",
            |f| {
                for i in 0..3 {
                    status(f, i).raft_index = 10_000;
                    status(f, i).raft_applied_index = 10_000;
                }
                status(f, 2).raft_applied_index = 10;
            },
            "raft-index-lag",
            Severity::Warning,
        ),
        (
            "minor version skew",
            |f| status(f, 2).version = "3.4.23".into(),
            "version-skew",
            Severity::Warning,
        ),
        (
            "patch version skew",
            |f| status(f, 2).version = "3.5.9".into(),
            "version-skew",
            Severity::Info,
        ),
        (
            "backup a few days old",
            |f| f.backups.backups = vec![backup("backup-host", 2 * DAY, true)],
            "backup-old",
            Severity::Warning,
        ),
        (
            "backup a week old",
            |f| f.backups.backups = vec![backup("backup-host", 7 * DAY, true)],
            "backup-old",
            Severity::Urgent,
        ),
        (
            "no good backup",
            |f| f.backups.backups = vec![backup("backup-host", 3600, false)],
            "no-backup",
            Severity::Urgent,
        ),
        (
            "no backup at all",
            |f| f.backups.backups.clear(),
            "no-backup",
            Severity::Urgent,
        ),
        (
            "backups not checked",
            |f| f.backups.destinations.clear(),
            "backups-not-checked",
            Severity::Info,
        ),
        (
            "backups only on etcd hosts",
            |f| {
                f.backups.backups = vec![
                    backup("cp1", 3600, true),
                    backup("cp2.example.com", 7200, true),
                    backup("10.0.0.3", 9000, true),
                ]
            },
            "backups-on-etcd-hosts",
            Severity::Warning,
        ),
        (
            "no drill",
            |f| f.drills.newest_pass = None,
            "no-restore-drill",
            Severity::Warning,
        ),
        (
            "old drill",
            |f| f.drills.newest_pass.as_mut().unwrap().ended_at = NOW - 45 * DAY,
            "restore-drill-old",
            Severity::Warning,
        ),
        (
            "single member in production",
            |f| {
                *f = healthy(1);
            },
            "single-member-production",
            Severity::Warning,
        ),
    ];
    for (name, break_it, code, severity) in cases {
        let mut facts = healthy(3);
        break_it(&mut facts);
        let findings = evaluate(&facts);
        assert!(
            findings
                .iter()
                .any(|f| f.code == *code && f.severity == *severity),
            "{name}: expected {code} ({severity}), got {:?}",
            codes(&findings)
        );
    }
}

#[test]
fn even_member_counts_are_found() {
    for n in [2, 4] {
        let findings = evaluate(&healthy(n));
        assert_eq!(
            codes(&findings),
            vec![("even-member-count".to_string(), Severity::Warning)],
            "{n} members"
        );
    }
}

#[test]
fn a_member_down_names_replace_member_for_its_node() {
    let mut facts = healthy(3);
    down(&mut facts, 2);
    let findings = evaluate(&facts);
    // Only that member is down; the leader's heartbeat metrics are untouched here.
    assert_eq!(
        codes(&findings),
        vec![("member-down".into(), Severity::Urgent)]
    );
    let runbook = findings[0].runbook.as_ref().unwrap();
    assert_eq!(runbook.runbook, RUNBOOK_REPLACE_MEMBER);
    assert_eq!(runbook.params["node"], "cp3");
    assert!(findings[0].detail.contains("connection refused"));
    assert!(findings[0].detail.contains("quorum holds with 2 of 3"));
}

#[test]
fn a_lost_majority_names_the_best_survivor() {
    let mut facts = healthy(5);
    for i in [0, 1, 2] {
        down(&mut facts, i);
    }
    status(&mut facts, 3).leader = None;
    status(&mut facts, 4).leader = None;
    status(&mut facts, 4).raft_index = 1200;
    let findings = evaluate(&facts);
    let lost = findings.iter().find(|f| f.code == "quorum-lost").unwrap();
    let runbook = lost.runbook.as_ref().unwrap();
    assert_eq!(runbook.runbook, RUNBOOK_QUORUM_RECOVERY);
    assert_eq!(runbook.params["survivor"], "cp5");
    // No replace-member while quorum is gone.
    assert!(!findings.iter().any(|f| f.code == "member-down"));
}

#[test]
fn nothing_answering_suggests_a_restore_from_the_newest_good_backup() {
    let mut facts = healthy(3);
    for i in 0..3 {
        down(&mut facts, i);
    }
    facts.members = None;
    facts.backups.backups = vec![
        backup("backup-host", 3 * 3600, true),
        backup("backup-host", 3600, false),
        backup("backup-host", 2 * 3600, true),
    ];
    let findings = evaluate(&facts);
    let finding = findings
        .iter()
        .find(|f| f.code == "no-member-answers")
        .unwrap();
    let runbook = finding.runbook.as_ref().unwrap();
    assert_eq!(runbook.runbook, RUNBOOK_RESTORE);
    assert_eq!(runbook.params["snapshot"], "/backups/etcd-7200.db");
}

#[test]
fn nospace_names_compact_defrag_and_disarm() {
    let mut facts = healthy(3);
    facts.alarms.push(AlarmFacts {
        member_id: id(1),
        member: "cp1".into(),
        alarm: "NOSPACE".into(),
    });
    status(&mut facts, 0).db_size = 2047 * MIB;
    let findings = evaluate(&facts);
    // The quota finding is left out: the alarm says it.
    assert_eq!(
        codes(&findings),
        vec![("alarm-nospace".into(), Severity::Critical)]
    );
    let action = &findings[0].action;
    let (compact, defrag, disarm) = (
        action.find("compact").unwrap(),
        action.find("defragment").unwrap(),
        action.find("disarm").unwrap(),
    );
    assert!(compact < defrag && defrag < disarm, "{action}");
    assert_eq!(
        findings[0].runbook.as_ref().unwrap().runbook,
        RUNBOOK_COMPACT
    );
    assert_eq!(findings[0].then[0].runbook, RUNBOOK_DEFRAG);
    assert_eq!(findings[0].then[0].params["min_free_mb"], "0");
}

#[test]
fn the_quota_defaults_to_two_gib_when_not_exported() {
    let mut facts = healthy(3);
    metrics(&mut facts, 0).quota_backend_bytes = None;
    status(&mut facts, 0).db_size = 1900 * MIB;
    status(&mut facts, 0).db_size_in_use = 1890 * MIB;
    let findings = evaluate(&facts);
    let finding = findings.iter().find(|f| f.code == "db-near-quota").unwrap();
    assert_eq!(finding.severity, Severity::Urgent);
    assert!(finding.detail.contains("assumed"), "{}", finding.detail);
    assert!(
        finding.action.contains("quota-backend-bytes"),
        "{}",
        finding.action
    );
}

#[test]
fn small_or_young_counters_are_not_findings() {
    let mut facts = healthy(3);
    // Few disk samples: the quantile means nothing yet.
    metrics(&mut facts, 0).wal_fsync_p99 = Some(0.5);
    metrics(&mut facts, 0).wal_fsync_count = 10.0;
    // 30 leader changes over 20 days is 1.5 a day.
    metrics(&mut facts, 1).leader_changes = Some(31.0);
    metrics(&mut facts, 1).process_start_time = Some((NOW - 20 * DAY) as f64);
    // Little free space: no defrag.
    status(&mut facts, 2).db_size = 20 * MIB;
    status(&mut facts, 2).db_size_in_use = 5 * MIB;
    assert!(evaluate(&facts).is_empty());
}

#[test]
fn findings_are_sorted_worst_first() {
    let mut facts = healthy(3);
    down(&mut facts, 2);
    facts.drills.newest_pass = None;
    facts.backups.destinations.clear();
    let severities: Vec<Severity> = evaluate(&facts).iter().map(|f| f.severity).collect();
    assert_eq!(
        severities,
        vec![Severity::Urgent, Severity::Warning, Severity::Info]
    );
}

/// Good copies only in a directory here, each written on an etcd node.
fn backups_on_etcd_hosts(facts: &mut Facts) {
    facts.backups.backups = vec![
        backup("cp1", 3600, true),
        backup("cp2.example.com", 7200, true),
    ];
}

fn finding<'a>(findings: &'a [Finding], code: &str) -> Option<&'a Finding> {
    findings.iter().find(|f| f.code == code)
}

#[test]
fn copies_only_in_a_local_directory_written_on_etcd_hosts_are_a_warning() {
    let mut facts = healthy(3);
    backups_on_etcd_hosts(&mut facts);
    let findings = evaluate(&facts);
    assert_eq!(
        codes(&findings),
        vec![("backups-on-etcd-hosts".into(), Severity::Warning)]
    );
    let detail = &findings[0].detail;
    assert!(detail.contains("cp1, cp2.example.com"), "{detail}");
    assert!(detail.contains("kept only in /backups"), "{detail}");
    assert!(detail.contains("no off-host destination"), "{detail}");
}

#[test]
fn a_good_off_host_copy_keeps_backups_off_the_etcd_hosts() {
    for off_host in ["s3://bkt/etcd", "ssh://backup@vault/srv/etcd"] {
        let mut facts = healthy(3);
        backups_on_etcd_hosts(&mut facts);
        facts.backups.destinations.push(destination(off_host, None));
        // Written on an etcd node too (shipped from there), but kept elsewhere.
        facts
            .backups
            .backups
            .push(copy_in(off_host, "cp1", 3600, true));
        let findings = evaluate(&facts);
        assert!(findings.is_empty(), "{off_host}: {:?}", codes(&findings));
    }
}

#[test]
fn an_off_host_destination_without_a_good_copy_is_named() {
    let mut facts = healthy(3);
    backups_on_etcd_hosts(&mut facts);
    facts
        .backups
        .destinations
        .push(destination("s3://bkt/etcd", None));
    facts
        .backups
        .backups
        .push(copy_in("s3://bkt/etcd", "cp1", 600, false));
    let findings = evaluate(&facts);
    assert_eq!(
        codes(&findings),
        vec![
            ("backup-copies-stale".into(), Severity::Warning),
            ("backups-on-etcd-hosts".into(), Severity::Warning),
            ("backup-damaged".into(), Severity::Info),
        ]
    );
    let on_hosts = finding(&findings, "backups-on-etcd-hosts").unwrap();
    assert!(
        on_hosts.detail.contains("no good copy in s3://bkt/etcd"),
        "{}",
        on_hosts.detail
    );
    let stale = finding(&findings, "backup-copies-stale").unwrap();
    assert!(
        stale.detail.contains("s3://bkt/etcd: no good copy"),
        "{}",
        stale.detail
    );
}

#[test]
fn off_host_copies_a_day_behind_are_stale() {
    let mut facts = healthy(3);
    facts
        .backups
        .destinations
        .push(destination("ssh://vault/srv/etcd", None));
    facts.backups.backups.push(copy_in(
        "ssh://vault/srv/etcd",
        "backup-host",
        3 * DAY,
        true,
    ));
    let findings = evaluate(&facts);
    assert_eq!(
        codes(&findings),
        vec![("backup-copies-stale".into(), Severity::Warning)]
    );
    assert!(
        findings[0]
            .detail
            .contains("ssh://vault/srv/etcd: the newest good copy is 3.0 days older"),
        "{}",
        findings[0].detail
    );
}

#[test]
fn the_newest_good_backup_is_the_newest_in_any_destination() {
    let mut facts = healthy(3);
    facts.backups.backups = vec![backup("cp1", 5 * DAY, true)];
    facts
        .backups
        .destinations
        .push(destination("s3://bkt/etcd", None));
    facts
        .backups
        .backups
        .push(copy_in("s3://bkt/etcd", "cp1", 3600, true));
    assert!(evaluate(&facts).is_empty());

    // With nothing answering, the restore takes a file here: the off-host copy is named.
    for i in 0..3 {
        down(&mut facts, i);
    }
    facts.members = None;
    let findings = evaluate(&facts);
    let lost = finding(&findings, "no-member-answers").unwrap();
    assert!(
        lost.action.contains("s3://bkt/etcd/etcd-3600.db"),
        "{}",
        lost.action
    );
    assert_eq!(lost.runbook.as_ref().unwrap().params["snapshot"], "PATH");
}

#[test]
fn an_unreadable_destination_is_a_finding_naming_it() {
    let mut facts = healthy(3);
    facts.backups.destinations.push(destination(
        "s3://bkt/etcd",
        Some("cannot list copies: 403 Forbidden"),
    ));
    let findings = evaluate(&facts);
    assert_eq!(
        codes(&findings),
        vec![("backup-destination-unreadable".into(), Severity::Warning)]
    );
    assert!(findings[0].summary.contains("s3://bkt/etcd"));
    assert!(
        findings[0]
            .detail
            .contains("s3://bkt/etcd: cannot list copies: 403 Forbidden"),
        "{}",
        findings[0].detail
    );

    // When no destination can be read, there is no known backup.
    facts.backups.backups.clear();
    facts.backups.destinations = vec![destination(
        "ssh://vault/srv/etcd",
        Some("connection refused"),
    )];
    let findings = evaluate(&facts);
    assert_eq!(
        codes(&findings),
        vec![("no-backup".into(), Severity::Urgent)]
    );
    assert_eq!(
        findings[0].summary,
        "cannot read backups in ssh://vault/srv/etcd"
    );
    assert_eq!(
        findings[0].detail,
        "ssh://vault/srv/etcd: connection refused"
    );
}

#[test]
fn copies_from_before_a_restore_count_and_say_so() {
    use crate::diagnose::facts::ClusterIdChange;
    // The members now report c1; the only copy was taken before a restore, under c0.
    let mut facts = healthy(3);
    facts.backups.backups[0].meta.cluster_id = "c0".into();
    facts.backups.earlier_ids = vec![ClusterIdChange {
        from: "c0".into(),
        to: "c1".into(),
        run: ".etcdrill/runs/restore-1".into(),
    }];
    let findings = evaluate(&facts);
    assert_eq!(
        codes(&findings),
        [("backups-of-earlier-incarnation".to_string(), Severity::Info)],
        "{findings:#?}"
    );
    let said = &findings[0];
    assert!(
        said.detail
            .contains("cluster ID c0 became c1 (restored by run .etcdrill/runs/restore-1)")
            && said
                .detail
                .contains("/backups/etcd-3600.db (cluster ID c0)"),
        "{said:#?}"
    );
    // Without the journal's link, such a copy is another cluster's: the finding says what it
    // found instead of claiming there is no metadata file.
    let mut facts = healthy(3);
    facts.backups.backups.clear();
    facts.backups.other_clusters = vec!["/backups/etcd-1.db (prod c0)".into()];
    let findings = evaluate(&facts);
    let urgent = finding(&findings, "no-backup").expect("no backup of this cluster");
    assert_eq!(urgent.severity, Severity::Urgent);
    assert!(
        urgent.detail.contains(
            "1 copy(ies) of other clusters (another cluster ID than this one's, c1) are not \
             counted: /backups/etcd-1.db (prod c0)"
        ) && !urgent.detail.contains("no snapshot metadata file"),
        "{urgent:#?}"
    );
}
