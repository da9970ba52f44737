//! Restore drills end to end on the test bed: `etcdrill drill run` stages the disaster, runs the
//! stock runbook, verifies the recovery and writes a report with RTO, RPO and every check.

use std::path::Path;

use etcdrill_testbed::{Bed, BedConfig, EtcdVersion};

use crate::support;
use crate::support::{Etcdrill, bed, inventory_yaml, write};

/// Writes a drill of `runbook` with `disaster` against `bed` and runs it; returns the report JSON.
fn drill(bed: &Bed, runbook: &str, params: &str, disaster: &str) -> serde_json::Value {
    let work = tempfile::tempdir().unwrap();
    write(
        work.path(),
        "inventory.yaml",
        &inventory_yaml(bed, work.path()),
    );
    let runbook = support::repo().join("runbooks").join(runbook);
    let drill = write(
        work.path(),
        "drill.yaml",
        &format!(
            "name: bed-drill\nsummary: a drill on the test bed\ninventory: inventory.yaml\nrunbook: {}\nparams: {params}\ndisaster: {disaster}\nseed: {{keys: 200, value_bytes: 128}}\n",
            serde_json::to_string(&runbook.display().to_string()).unwrap()
        ),
    );
    let outcome = Etcdrill::new(work.path())
        .args([
            "drill",
            "run",
            drill.to_str().unwrap(),
            "--yes",
            "--work-dir",
            work.path().to_str().unwrap(),
        ])
        .run();
    // A drill that stages a lost member runs twice: the disaster, then the recovery with its report.
    let run = std::fs::read_dir(work.path().join("runs"))
        .unwrap_or_else(|_| panic!("no runs:\n{}", outcome.shown()))
        .map(|e| e.unwrap().path())
        .find(|run| run.join("report.json").is_file())
        .unwrap_or_else(|| panic!("no report:\n{}", outcome.shown()));
    let report: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(run.join("report.json"))
            .unwrap_or_else(|_| panic!("no report:\n{}", outcome.shown())),
    )
    .unwrap();
    assert_eq!(
        outcome.code(),
        Some(0),
        "{}\n{}",
        outcome.shown(),
        std::fs::read_to_string(run.join("report.md")).unwrap_or_default()
    );
    assert!(outcome.stderr().contains("PASSED"), "{}", outcome.shown());
    assert_report_survives(work.path(), &run, &report);
    report
}

/// `etcdrill report RUN` on a drill's run writes exactly the report `drill run` wrote (but for the
/// time it was made), and `diagnose` still finds the passing drill.
fn assert_report_survives(work: &Path, run: &Path, report: &serde_json::Value) {
    let generated = |report: &serde_json::Value| {
        report["run"]["generated_at"]
            .as_str()
            .expect("a generated_at")
            .to_owned()
    };
    let read_all = |at: &str| -> Vec<(&str, String)> {
        etcdrill::report::REPORT_FILES
            .iter()
            .map(|name| {
                let text = std::fs::read_to_string(run.join(name)).unwrap();
                (*name, text.replace(at, "[generated]"))
            })
            .collect()
    };
    let written = read_all(&generated(report));
    assert!(
        written[0].1.contains("Drill SUCCEEDED") && written[0].1.contains("RTO"),
        "{}",
        written[0].1
    );
    Etcdrill::new(work)
        .args([
            "report",
            run.to_str().unwrap(),
            "--work-dir",
            work.to_str().unwrap(),
        ])
        .run()
        .expect_code(0);
    let again: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("report.json")).unwrap()).unwrap();
    for ((name, before), (_, after)) in written.iter().zip(read_all(&generated(&again))) {
        assert!(*before == after, "{name} differs once made again:\n{after}");
    }
    // The drill's stages are in the run's journal, in order.
    let stages: Vec<String> = support::journal(run)
        .records
        .iter()
        .filter_map(|r| match &r.event {
            etcdrill::journal::Event::Drill { stage } => Some(
                serde_json::to_value(stage).unwrap()["kind"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
            ),
            _ => None,
        })
        .collect();
    assert_eq!(
        stages.first().map(String::as_str),
        Some("seeded"),
        "{stages:?}"
    );
    assert_eq!(
        stages.last().map(String::as_str),
        Some("verified"),
        "{stages:?}"
    );
    assert!(
        stages
            .iter()
            .any(|s| s == "snapshot_saved" || s == "disaster_staged")
            && stages.iter().any(|s| s == "declared"),
        "{stages:?}"
    );
    let drills = etcdrill::diagnose::collect::scan_drills(&work.join("runs"));
    assert!(drills.newest_pass.is_some(), "{drills:?}");
}

fn assert_verified(report: &serde_json::Value, expected: &[&str]) {
    let drill = &report["drill"];
    let checks = drill["verifications"]
        .as_array()
        .unwrap_or_else(|| panic!("no verifications: {report:#}"));
    for name in expected {
        let check = checks
            .iter()
            .find(|c| c["name"].as_str().is_some_and(|n| n.contains(name)));
        let check = check.unwrap_or_else(|| panic!("no check `{name}` in {checks:#?}"));
        assert_eq!(check["passed"], true, "{check:#}");
    }
    assert!(drill["rto_ms"].as_u64().is_some(), "no RTO: {drill:#}");
}

#[test]
fn a_restore_drill_passes_on_static_pods_with_etcd_3_5() {
    let Some(bed) = bed(BedConfig::new(3)) else {
        return;
    };
    let report = drill(
        &bed,
        "restore-3-node.yaml",
        "{bump_revision: 0, mark_compacted: false}",
        "{restore: {}}",
    );
    assert_verified(
        &report,
        &[
            "healthy",
            "no alarm",
            "3 voting members",
            "leader",
            "hash-kv",
            "canary",
            "after the snapshot is gone",
            "key count",
        ],
    );
    let rpo = &report["drill"]["rpo"];
    assert!(
        rpo["revisions_lost"].as_u64().is_some_and(|n| n >= 1),
        "{rpo:#}"
    );
    assert_eq!(
        report["verdict"]["outcome"], "succeeded",
        "{:#}",
        report["verdict"]
    );
}

#[test]
fn a_restore_drill_passes_on_static_pods_with_etcd_3_4() {
    let Some(bed) = bed(BedConfig::new(3).version(EtcdVersion::V3_4)) else {
        return;
    };
    let report = drill(
        &bed,
        "restore-3-node.yaml",
        "{bump_revision: 0, mark_compacted: false}",
        "{restore: {}}",
    );
    assert_verified(
        &report,
        &[
            "healthy",
            "hash-kv",
            "canary",
            "after the snapshot is gone",
            "key count",
        ],
    );
}

/// Every stock drill (but the sandbox's, whose inventory exists once the sandbox is up) loads,
/// and its runbook compiles against its inventory.
#[test]
fn the_stock_drills_validate() {
    let drills = support::repo().join("drills");
    let mut checked = 0;
    for entry in std::fs::read_dir(&drills).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !name.ends_with(".yaml") || name.starts_with("sandbox") {
            continue;
        }
        let prepared = etcdrill::drill::prepare(&path, Some(Path::new("/nonexistent-work-dir")))
            .unwrap_or_else(|err| panic!("{name}: {err}"));
        assert!(prepared.plan.graph.node_count() > 0, "{name}");
        checked += 1;
    }
    assert!(checked >= 3, "only {checked} stock drills");
}

#[test]
fn a_replace_member_drill_passes_when_a_member_is_lost_for_good() {
    let Some(bed) = bed(BedConfig::new(3)) else {
        return;
    };
    let report = drill(
        &bed,
        "replace-member.yaml",
        "{node: node2}",
        "{lose_member: {node: node2}}",
    );
    assert_verified(
        &report,
        &[
            "healthy",
            "3 voting members, no learner",
            "hash-kv",
            "canary",
            "no key was lost",
        ],
    );
}

#[test]
fn a_quorum_recovery_drill_passes_when_the_majority_is_lost_for_good() {
    let Some(bed) = bed(BedConfig::new(3)) else {
        return;
    };
    let report = drill(
        &bed,
        "quorum-recovery.yaml",
        "{survivor: node1}",
        "{lose_majority: {survivor: node1}}",
    );
    assert_verified(
        &report,
        &[
            "healthy",
            "3 voting members, no learner",
            "hash-kv",
            "canary",
            "no key was lost",
        ],
    );
}

/// The three stock drills one after the other on every real layout at once: every data dir on a
/// disk of its own (a mount point), behind the `etcd-data` hostPath an earlier restore by hand
/// moved to `/var/lib/etcd-restore-1`, and one backup dir shared by every node. Drills take each
/// member's data dir from its node, and their journals and reports keep what the nodes said.
#[test]
fn the_stock_drills_pass_on_every_real_layout_at_once() {
    let Some(bed) = bed(BedConfig::new(3)
        .data_dir_mount_point()
        .moved_host_path()
        .shared_backup_dir())
    else {
        return;
    };
    let restored = drill(
        &bed,
        "restore-3-node.yaml",
        "{bump_revision: 0, mark_compacted: false}",
        "{restore: {}}",
    );
    assert_verified(
        &restored,
        &["healthy", "3 voting members", "hash-kv", "key count"],
    );
    let facts = restored["node_facts"]
        .as_array()
        .expect("the report has node facts");
    assert_eq!(facts.len(), 3, "{facts:#?}");
    for node in facts {
        assert_eq!(
            node["data_dir"]["path"], "/var/lib/etcd-restore-1",
            "{node:#}"
        );
    }
    for (runbook, params, disaster) in [
        (
            "replace-member.yaml",
            "{node: node2}",
            "{lose_member: {node: node2}}",
        ),
        (
            "quorum-recovery.yaml",
            "{survivor: node1}",
            "{lose_majority: {survivor: node1}}",
        ),
    ] {
        let report = drill(&bed, runbook, params, disaster);
        assert_verified(&report, &["healthy", "hash-kv", "no key was lost"]);
    }
    for node in bed.nodes() {
        node.exec_ok("mountpoint -q /var/lib/etcd-restore-1")
            .unwrap();
    }
}
