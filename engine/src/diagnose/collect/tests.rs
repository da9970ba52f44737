//! Tests of gathering: backups checked against their metadata, copies of other clusters and of
//! earlier incarnations, cluster ID changes from run journals, and the newest passing drill.

use std::path::Path;

use super::*;
use crate::diagnose::facts::{BackupFacts, BackupRecord, ClusterIdChange};
use crate::journal::Timestamp;
use crate::snapshot::meta::{META_FORMAT, META_VERSION, SnapshotMeta};

#[test]
fn copies_of_other_clusters_are_set_apart() {
    let record = |cluster_id: &str, location: &str| BackupRecord {
        location: location.into(),
        destination: "s3://shared".into(),
        off_host: true,
        meta: SnapshotMeta {
            cluster_id: cluster_id.into(),
            ..meta(20512, "ab".repeat(32), 100)
        },
        good: true,
        problem: None,
        taken_at: 100,
    };
    let facts = BackupFacts {
        backups: vec![
            record("1", "s3://shared/ours.db"),
            record("2", "s3://shared/theirs.db"),
        ],
        ..BackupFacts::default()
    };
    let endpoint = EndpointFacts {
        status: Some(StatusFacts {
            cluster_id: "1".into(),
            ..StatusFacts::default()
        }),
        ..EndpointFacts::default()
    };
    let kept = of_this_cluster(facts.clone(), std::slice::from_ref(&endpoint), &[]);
    assert_eq!(kept.backups.len(), 1);
    assert_eq!(kept.backups[0].location, "s3://shared/ours.db");
    assert_eq!(kept.other_clusters.len(), 1);
    assert!(kept.other_clusters[0].contains("theirs.db"));
    assert!(kept.earlier_ids.is_empty());
    // No member answered: nothing to compare with, everything counts.
    assert_eq!(of_this_cluster(facts.clone(), &[], &[]).backups.len(), 2);

    // Cluster 1 was restored from a snapshot twice, once as 0 -> 3 and then 3 -> 1: copies
    // of 0 and 3 are its own; 2 stays another cluster.
    let change = |from: &str, to: &str, run: &str| ClusterIdChange {
        from: from.into(),
        to: to.into(),
        run: run.into(),
    };
    let mut facts = facts;
    facts
        .backups
        .push(record("3", "s3://shared/before-restore.db"));
    facts.backups.push(record("0", "s3://shared/long-ago.db"));
    let restores = [
        change("3", "1", "runs/b"),
        change("2", "5", "runs/x"),
        change("0", "3", "runs/a"),
    ];
    let kept = of_this_cluster(facts, std::slice::from_ref(&endpoint), &restores);
    let locations: Vec<&str> = kept.backups.iter().map(|b| b.location.as_str()).collect();
    assert_eq!(
        locations,
        [
            "s3://shared/ours.db",
            "s3://shared/before-restore.db",
            "s3://shared/long-ago.db"
        ]
    );
    assert_eq!(kept.earlier_ids, [restores[0].clone(), restores[2].clone()]);
    assert_eq!(kept.other_clusters.len(), 1);
}

#[test]
fn cluster_id_changes_are_read_from_run_journals() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("r1");
    std::fs::create_dir(&run).unwrap();
    let mut journal =
        crate::journal::JournalWriter::create(&run.join("journal.jsonl"), "r1", "d").unwrap();
    journal
        .append(crate::journal::Event::ClusterIdChanged {
            from: "a1".into(),
            to: "b2".into(),
        })
        .unwrap();
    std::fs::create_dir(dir.path().join("not-a-run")).unwrap();
    assert_eq!(
        scan_cluster_ids(dir.path()),
        [ClusterIdChange {
            from: "a1".into(),
            to: "b2".into(),
            run,
        }]
    );
    assert!(scan_cluster_ids(&dir.path().join("none")).is_empty());
}

fn meta(size: u64, sha256: String, secs: u64) -> SnapshotMeta {
    SnapshotMeta {
        format: META_FORMAT.into(),
        version: META_VERSION,
        cluster: "c".into(),
        cluster_id: "1".into(),
        member: "cp1".into(),
        member_id: "a".into(),
        endpoint: "https://x:2379".into(),
        etcd_version: "3.5.1".into(),
        revision: 9,
        time: Timestamp(UNIX_EPOCH + Duration::from_secs(secs)),
        size,
        sha256,
        written_on: "host".into(),
    }
}

#[test]
fn backups_are_checked_against_their_metadata() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = vec![7u8; 512];
    let trailer = [0xabu8; 32];
    bytes.extend_from_slice(&trailer);
    let sha = "ab".repeat(32);
    let write = |name: &str, meta: SnapshotMeta| {
        let path = dir.path().join(name);
        std::fs::write(&path, &bytes).unwrap();
        meta.write(&SnapshotMeta::path_for(&path)).unwrap();
    };
    write("good.db", meta(544, sha.clone(), 2000));
    write("short.db", meta(9999, sha.clone(), 3000));
    write("other.db", meta(544, "cd".repeat(32), 1000));
    meta(544, sha, 4000)
        .write(&dir.path().join("missing.db.meta.json"))
        .unwrap();
    std::fs::write(dir.path().join("junk.db.meta.json"), "{}").unwrap();
    std::fs::write(dir.path().join("plain.db"), b"x").unwrap();

    let facts = scan_backups(dir.path());
    let seen: Vec<(String, bool)> = facts
        .backups
        .iter()
        .map(|b| {
            (
                Path::new(&b.location)
                    .file_name()
                    .unwrap()
                    .to_string_lossy()
                    .into_owned(),
                b.good,
            )
        })
        .collect();
    assert_eq!(
        seen,
        vec![
            ("missing.db".into(), false),
            ("short.db".into(), false),
            ("good.db".into(), true),
            ("other.db".into(), false),
        ]
    );
    assert!(facts.backups[1].problem.as_ref().unwrap().contains("9999"));
    assert!(
        facts.backups[3]
            .problem
            .as_ref()
            .unwrap()
            .contains("trailer")
    );
    assert_eq!(facts.unreadable.len(), 1);
    assert!(facts.backups.iter().all(|b| !b.off_host));
    assert_eq!(facts.destinations.len(), 1);
    assert_eq!(facts.destinations[0].error, None);
    let missing = scan_backups(&dir.path().join("nope"));
    assert!(missing.destinations[0].error.is_some());
    assert!(missing.backups.is_empty());
}

#[tokio::test]
async fn an_unreachable_destination_is_a_fact_and_the_others_still_count() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut bytes = vec![7u8; 512];
    bytes.extend_from_slice(&[0xabu8; 32]);
    for (dir, secs) in [(&a, 1000), (&b, 2000)] {
        let path = dir.path().join("s.db");
        std::fs::write(&path, &bytes).unwrap();
        meta(544, "ab".repeat(32), secs)
            .write(&SnapshotMeta::path_for(&path))
            .unwrap();
    }
    // Nothing listens on the discard port: the listing fails (or runs out of time).
    let unreachable = Destination::parse("ssh://nobody@127.0.0.1:9/srv/etcd").unwrap();
    let facts = collect_backups(
        &[
            Destination::Dir(a.path().to_path_buf()),
            unreachable,
            Destination::Dir(b.path().to_path_buf()),
        ],
        Duration::from_secs(2),
    )
    .await;
    let shown: Vec<(&str, bool, bool)> = facts
        .destinations
        .iter()
        .map(|d| (d.destination.as_str(), d.off_host, d.error.is_some()))
        .collect();
    let (a_shown, b_shown) = (
        a.path().display().to_string(),
        b.path().display().to_string(),
    );
    assert_eq!(
        shown,
        vec![
            (a_shown.as_str(), false, false),
            ("ssh://nobody@127.0.0.1:9/srv/etcd", true, true),
            (b_shown.as_str(), false, false),
        ]
    );
    let error = facts.destinations[1].error.as_deref().unwrap();
    assert!(!error.starts_with("ssh://"), "{error}");
    let found: Vec<(&str, u64)> = facts
        .backups
        .iter()
        .map(|r| (r.destination.as_str(), r.taken_at))
        .collect();
    assert_eq!(
        found,
        vec![(b_shown.as_str(), 2000), (a_shown.as_str(), 1000)]
    );
    assert!(facts.backups.iter().all(|r| r.good));
}

#[test]
fn the_newest_passing_drill_is_found() {
    let dir = tempfile::tempdir().unwrap();
    let report = |name: &str, outcome: &str, drill: bool, ended: &str| {
        let run = dir.path().join(name);
        std::fs::create_dir_all(&run).unwrap();
        let value = serde_json::json!({
            "verdict": {"outcome": outcome, "drill": drill, "title": "x"},
            "run": {"runbook": "restore-3-node", "inventory": "bed"},
            "timing": {"started_at": ended, "ended_at": ended},
            "drill": if drill { serde_json::json!({"rto_ms": 1}) } else { serde_json::Value::Null },
        });
        std::fs::write(run.join("report.json"), value.to_string()).unwrap();
    };
    report("a", "succeeded", true, "2024-01-01T00:00:00.000Z");
    report("b", "succeeded", true, "2024-02-01T00:00:00.000Z");
    report("c", "failed", true, "2024-03-01T00:00:00.000Z");
    report("d", "succeeded", false, "2024-04-01T00:00:00.000Z");
    let facts = scan_drills(dir.path());
    assert_eq!(facts.drills_seen, 3);
    let pass = facts.newest_pass.unwrap();
    assert_eq!(pass.run, dir.path().join("b"));
    assert_eq!(pass.runbook, "restore-3-node");
    assert_eq!(pass.ended_at, 1_706_745_600);
    assert!(scan_drills(&dir.path().join("none")).newest_pass.is_none());
}
