//! The stock runbooks against real clusters: each test starts a test bed, brings about the
//! disaster its runbook is for, runs the real `etcdrill` binary on `runbooks/*.yaml` and checks
//! the cluster etcd itself reports afterwards. These tests need root; see
//! `etcdrill_testbed::require`.

use std::collections::BTreeSet;
use std::time::Duration;

use etcdrill::journal::{Event, SkipReason, StepResult};
use etcdrill_testbed::{Bed, BedConfig, Canary, EtcdVersion, Management, Node};

use crate::support;
use crate::support::{
    Etcdrill, Run, bed, inventory_parking_at, inventory_yaml, journal, only_run, step_result,
    stock_runbook, wait_for_record, write,
};

/// Where an administrator parks a static pod's manifest to stop the member by hand (kubeadm's
/// docs and the bed's `stop_member` move it up one directory).
const HAND_PARKED_DIR: &str = "/etc/kubernetes";

/// `-p snapshot=PATH` for a snapshot saved on `node` at `node_path`.
fn snapshot_param(node: &Node, node_path: &str) -> String {
    format!(
        "snapshot={}",
        node.host_path(node_path)
            .expect("the node path is under a node directory")
            .display()
    )
}

/// Every member's `endpoint hashkv`, as `(endpoint, revision, hash)`.
fn hashkvs(bed: &Bed) -> Result<Vec<(String, i64, u64)>, String> {
    let output = bed
        .etcdctl(&["endpoint", "hashkv", "--cluster", "-w", "json"])
        .map_err(|e| e.to_string())?;
    if !output.success() {
        return Err(format!("{}{}", output.stdout, output.stderr));
    }
    let answers: serde_json::Value =
        serde_json::from_str(&output.stdout).map_err(|e| format!("{e}: {:?}", output.stdout))?;
    let answers = answers.as_array().ok_or("not a list")?;
    Ok(answers
        .iter()
        .map(|a| {
            (
                a["Endpoint"].as_str().unwrap_or_default().to_owned(),
                a["HashKV"]["header"]["revision"].as_i64().unwrap_or(-1),
                a["HashKV"]["hash"].as_u64().unwrap_or(0),
            )
        })
        .collect())
}

/// Waits until every one of `members` members reports the same revision and KV hash.
fn assert_same_hashkv(bed: &Bed, members: usize) {
    etcdrill_testbed::wait_until(
        "every member to hold the same data",
        Duration::from_secs(15),
        || {
            let all = hashkvs(bed)?;
            let first = all.first().ok_or("no answers")?;
            if all.len() == members && all.iter().all(|a| (a.1, a.2) == (first.1, first.2)) {
                Ok(())
            } else {
                Err(format!("{all:?}"))
            }
        },
    )
    .unwrap();
}

/// Checks `members` healthy voting members, no learner, every name known, and the same data
/// everywhere.
fn assert_healthy_cluster(bed: &Bed, members: usize) {
    bed.wait_healthy(Duration::from_secs(30)).unwrap();
    let list = bed.member_list().unwrap();
    assert_eq!(list.len(), members, "{list:?}");
    assert!(
        list.iter().all(|m| !m.is_learner && !m.name.is_empty()),
        "{list:?}"
    );
    assert_same_hashkv(bed, members);
}

fn assert_present(bed: &Bed, canary: &Canary) {
    assert_eq!(
        bed.get(&canary.key).unwrap(),
        Some(canary.value.clone()),
        "{} is there",
        canary.key
    );
}

/// The snapshot restore of a 3-member cluster, checked end to end: seed and a canary in the
/// snapshot, a canary after it, run `restore-3-node`, then the data is the snapshot's; the
/// default method swaps `member/` inside the data dir.
fn restore_3_node(config: BedConfig, extra_params: &[&str]) {
    let Some(bed) = bed(config) else { return };
    let run = restore_and_prove(&bed, extra_params);
    // Every old data dir is kept aside for a rollback, and the restored one is in place; on a
    // data dir that is a mount point, it still is one.
    for node in bed.nodes() {
        if bed.config().data_dir_mount_point {
            node.exec_ok("mountpoint -q /var/lib/etcd").unwrap();
        }
        node.exec_ok(
            "ls -d /var/lib/etcd/.etcdrill-before-restore-*/member && ! ls -d /var/lib/etcd/.etcdrill-restore-* 2>/dev/null",
        )
        .unwrap();
    }
    eprintln!("restore-3-node took {:.1?}", run.took);
}

/// Seeds the bed, saves a snapshot on node1, writes a key after it, runs `restore-3-node` with
/// `extra_params`, and checks that the data is the snapshot's: the later key gone, new member and
/// cluster IDs (journaled), and the run's own proof on every node. No temporary copy is left.
fn restore_and_prove(bed: &Bed, extra_params: &[&str]) -> Run {
    bed.seed(100, 256).unwrap();
    let kept = bed.put_canary("in-the-snapshot").unwrap();
    let first = &bed.nodes()[0];
    first
        .etcdctl(&["snapshot", "save", "/var/backups/etcd/drill.db"])
        .unwrap()
        .into_stdout()
        .unwrap();
    let lost = bed.put_canary("after-the-snapshot").unwrap();
    let ids_before: Vec<u64> = bed.member_list().unwrap().iter().map(|m| m.id).collect();

    let mut params = vec![snapshot_param(first, "/var/backups/etcd/drill.db")];
    params.extend(extra_params.iter().map(|p| p.to_string()));
    let run = Run::stock(bed, "restore-3-node", &params, inventory_yaml);
    run.expect_success(bed);

    assert_healthy_cluster(bed, 3);
    assert_present(bed, &kept);
    assert_eq!(
        bed.get(&lost.key).unwrap(),
        None,
        "a key written after the snapshot is gone"
    );
    assert_eq!(bed.count_keys(etcdrill_testbed::SEED_PREFIX).unwrap(), 100);
    let ids_after: Vec<u64> = bed.member_list().unwrap().iter().map(|m| m.id).collect();
    assert!(
        ids_after.iter().all(|id| !ids_before.contains(id)),
        "a restore makes a new cluster with new member IDs: {ids_before:?} -> {ids_after:?}"
    );
    // The journal links the cluster's old ID to its new one, for `diagnose --backups`.
    let status = bed
        .etcdctl(&["endpoint", "status", "-w", "json"])
        .unwrap()
        .into_stdout()
        .unwrap();
    let status: serde_json::Value = serde_json::from_str(&status).unwrap();
    let now = format!(
        "{:x}",
        status[0]["Status"]["header"]["cluster_id"]
            .as_u64()
            .unwrap()
    );
    let changed = run.journal().records.iter().find_map(|r| match &r.event {
        Event::ClusterIdChanged { from, to } => Some((from.clone(), to.clone())),
        _ => None,
    });
    assert!(
        changed
            .as_ref()
            .is_some_and(|(from, to)| *to == now && *from != now),
        "{changed:?}, now {now}"
    );
    // The run proved it itself, on every node.
    let journal = journal(&run.dir());
    // One read of the snapshot for every node, and every node's copy hashed to the same sha256.
    let names: Vec<&str> = bed.nodes().iter().map(|n| n.name()).collect();
    let mut sha256s = BTreeSet::new();
    for node in bed.nodes() {
        let key = format!("distribute-snapshot@{}", node.name());
        let finished = journal.records.iter().find_map(|r| match &r.event {
            Event::StepFinished {
                step,
                result: StepResult::Succeeded,
                outputs,
                output_tail,
                ..
            } if *step == key => Some((outputs.clone(), output_tail.clone())),
            _ => None,
        });
        let (outputs, output) = finished.unwrap_or_else(|| panic!("{key} did not succeed"));
        assert!(
            output.contains(&format!("one read for {}", names.join(", "))),
            "{output}"
        );
        assert!(outputs["size"].parse::<u64>().unwrap() > 0);
        sha256s.insert(outputs["sha256"].clone());
    }
    assert_eq!(sha256s.len(), 1, "{sha256s:?}");
    for node in bed.nodes() {
        assert_eq!(
            step_result(&journal, &format!("verify-restored@{}", node.name())).as_deref(),
            Some("succeeded")
        );
    }
    // No temporary copy is left behind.
    for node in bed.nodes() {
        node.exec_ok("! ls /var/backups/etcd/*.part 2>/dev/null")
            .unwrap();
        if bed.config().shared_backup_dir {
            // Each node's copy under a name of its own, all in the one shared dir.
            let names: Vec<String> = bed
                .nodes()
                .iter()
                .map(|n| format!("/var/backups/etcd/etcdrill-restore-{}.db", n.name()))
                .collect();
            node.exec_ok(&format!("ls {}", names.join(" "))).unwrap();
        }
    }
    run
}

#[test]
fn restore_3_node_on_etcd_3_4_static_pods() {
    // etcd 3.4 restores with `etcdctl snapshot restore`, which has no --bump-revision.
    restore_3_node(
        BedConfig::new(3).version(EtcdVersion::V3_4),
        &["bump_revision=0", "mark_compacted=false"],
    );
}

#[test]
fn restore_3_node_on_etcd_3_5_external() {
    // etcd 3.5.1's etcdutl has no --bump-revision.
    restore_3_node(
        BedConfig::new(3).management(Management::External),
        &["bump_revision=0", "mark_compacted=false"],
    );
}

/// The common production layout: etcd on a dedicated disk mounted at /var/lib/etcd, and one
/// backup dir (NFS) mounted on every node. The restore swaps `member/` inside the data dir, and
/// the three parallel copies of the snapshot into the shared dir never collide.
#[test]
fn restore_3_node_on_a_mount_point_data_dir_and_a_shared_backup_dir() {
    let config = BedConfig::new(3).data_dir_mount_point().shared_backup_dir();
    restore_3_node(config, &["bump_revision=0", "mark_compacted=false"]);
}

/// The SSH user is not root and runs every node command through `sudo -n`, as hardened
/// control planes require; the data dir is a mount point too.
#[test]
fn restore_3_node_as_a_user_with_sudo() {
    let config = BedConfig::new(3).sudo_user().data_dir_mount_point();
    restore_3_node(config, &["bump_revision=0", "mark_compacted=false"]);
}

/// kubeadm enabled `--experimental-initial-corrupt-check` for etcd 3.5.0-3.5.2: a starting member
/// then waits for its peers' checks, and the restored members start together anyway.
#[test]
fn restore_3_node_with_the_initial_corrupt_check_on() {
    let config = BedConfig::new(3).extra_flag("--experimental-initial-corrupt-check=true");
    restore_3_node(config, &["bump_revision=0", "mark_compacted=false"]);
}

/// The manifest's data volume on `node`, parsed as the Pod it is: `(--data-dir, the host dir
/// behind it)`. `at` is the manifest's path on the node.
fn data_volume(node: &Node, at: &str) -> (String, String) {
    let text = std::fs::read_to_string(node.host_path(at).unwrap()).unwrap();
    let config = etcdrill::facts::config::from_manifest(&text).unwrap();
    (config.data_dir.unwrap(), config.host_data_dir.unwrap())
}

/// The Kubernetes documentation's restore (`-p method=repoint`) on static pods: each member's
/// snapshot data goes into a new host directory beside the data dir, the parked manifest's data
/// volume is pointed at it, and etcd runs there (the run proves it, and the data is the
/// snapshot's); the old data dir is not touched and the manifest as it was is kept.
#[test]
fn restore_3_node_by_repointing_the_host_path() {
    restore_by_repointing(BedConfig::new(3), "/var/lib/etcd");
}

/// A repoint where an earlier restore done by hand already moved the hostPath: the data dir is the
/// manifest's (`/var/lib/etcd-restore-1`), and the new directory goes beside it.
#[test]
fn restore_3_node_by_repointing_a_moved_host_path() {
    restore_by_repointing(
        BedConfig::new(3).moved_host_path(),
        "/var/lib/etcd-restore-1",
    );
}

/// A repoint by an SSH user that runs node commands through `sudo -n`.
#[test]
fn restore_3_node_by_repointing_as_a_user_with_sudo() {
    restore_by_repointing(BedConfig::new(3).sudo_user(), "/var/lib/etcd");
}

/// `restore-3-node -p method=repoint` on a bed of `config` whose host data dir is `data_dir`.
fn restore_by_repointing(config: BedConfig, data_dir: &str) {
    let Some(bed) = bed(config) else {
        return;
    };
    let run = restore_and_prove(
        &bed,
        &["method=repoint", "bump_revision=0", "mark_compacted=false"],
    );
    let journal = journal(&run.dir());
    let run_id = run.dir().file_name().unwrap().to_str().unwrap().to_owned();
    let new_dir = format!("{data_dir}-restored-{run_id}");
    for node in bed.nodes() {
        let name = node.name();
        assert_eq!(
            support::step_outputs(&journal, &format!("choose-method@{name}"))
                .get("method")
                .map(String::as_str),
            Some("repoint")
        );
        for (step, result) in [
            ("restore-beside", "succeeded"),
            ("repoint-data-dir", "succeeded"),
        ] {
            assert_eq!(
                step_result(&journal, &format!("{step}@{name}")).as_deref(),
                Some(result),
                "{step}@{name}"
            );
        }
        for skipped in ["restore", "swap-data-dir"] {
            assert_ne!(
                step_result(&journal, &format!("{skipped}@{name}")).as_deref(),
                Some("succeeded"),
                "{skipped}@{name} ran"
            );
        }
        // The manifest points the data volume at the new directory; --data-dir is unchanged.
        assert_eq!(
            data_volume(node, "/etc/kubernetes/manifests/etcd.yaml"),
            ("/var/lib/etcd".to_owned(), new_dir.clone())
        );
        assert_eq!(
            data_volume(node, "/etc/kubernetes/etcdrill/etcd.yaml.before-repoint"),
            ("/var/lib/etcd".to_owned(), data_dir.to_owned())
        );
        // The old data is where it was, untouched; the restored one has no leftover of the restore.
        node.exec_ok(&format!(
            "test -d {data_dir}/member && ! ls -d {data_dir}/.etcdrill-* 2>/dev/null && test -d {new_dir}/member && ! ls -A {new_dir} | grep -v -x member"
        ))
        .unwrap();
    }
    eprintln!("restore-3-node (repoint) took {:.1?}", run.took);
}

/// `method: auto` on a layout whose data dir is a small disk of its own, nearly full: there is no
/// room there for a second copy of the database, so each static pod is restored beside the data
/// dir (on the filesystem that has room) and its data volume repointed, and the restore proves it
/// took effect.
#[test]
fn restore_3_node_repoints_where_the_data_dir_disk_has_no_room() {
    let Some(bed) = bed(BedConfig::new(3).small_data_dir_disk(256)) else {
        return;
    };
    for node in bed.nodes() {
        // Leave 16 MiB: less than the restore needs (the database and a 64 MiB WAL segment).
        node.exec_ok(
            "mountpoint -q /var/lib/etcd && free=$(df -P -k /var/lib/etcd | awk 'NR == 2 { print $4 }') && head -c $(( (free - 16384) * 1024 )) /dev/zero > /var/lib/etcd/filler",
        )
        .unwrap();
    }
    let run = restore_and_prove(&bed, &["bump_revision=0", "mark_compacted=false"]);
    let journal = journal(&run.dir());
    let new_dir = format!(
        "/var/lib/etcd-restored-{}",
        run.dir().file_name().unwrap().to_str().unwrap()
    );
    for node in bed.nodes() {
        assert_eq!(
            support::step_outputs(&journal, &format!("choose-method@{}", node.name()))
                .get("method")
                .map(String::as_str),
            Some("repoint")
        );
        let manifest = node
            .exec_ok("cat /etc/kubernetes/manifests/etcd.yaml")
            .unwrap();
        let config = etcdrill::facts::config::from_manifest(&manifest).unwrap();
        assert_eq!(config.host_data_dir, Some(new_dir.clone()));
        node.exec_ok(
            "test -d /var/lib/etcd/member && ! ls -d /var/lib/etcd/.etcdrill-* 2>/dev/null",
        )
        .unwrap();
    }
}

/// A failure after the repoint, before the restored cluster served: the rollback stops the
/// restored members, points each manifest's data volume back at the old data dir, starts the old
/// members and removes the restored directories. The old cluster serves its data again: the key
/// written after the snapshot is there, and the cluster and member IDs are the old ones. The
/// failure is a step added to a copy of the stock runbook after `start`.
#[test]
fn a_repoint_rolled_back_puts_the_host_path_back_and_the_old_cluster_serves() {
    repoint_rolled_back(false);
}

/// The same failure with `--on-failure stop`, then `etcdrill rollback RUN`: the facts gathered
/// again say the data dirs are the new directories (the restored members run there), and the
/// rollback still undoes the plan the run started with.
#[test]
fn a_repoint_rolled_back_later_by_etcdrill_rollback_puts_the_host_path_back() {
    repoint_rolled_back(true);
}

/// A `restore-3-node -p method=repoint` that fails after `start`, rolled back by the run itself or,
/// with `later`, by `etcdrill rollback` after the run stopped.
fn repoint_rolled_back(later: bool) {
    let Some(bed) = bed(BedConfig::new(3)) else {
        return;
    };
    bed.seed(20, 64).unwrap();
    let first = &bed.nodes()[0];
    first
        .etcdctl(&["snapshot", "save", "/var/backups/etcd/drill.db"])
        .unwrap()
        .into_stdout()
        .unwrap();
    let after = bed.put_canary("after-the-snapshot").unwrap();
    let mut ids_before: Vec<u64> = bed.member_list().unwrap().iter().map(|m| m.id).collect();

    let stock = std::fs::read_to_string(stock_runbook("restore-3-node")).unwrap();
    let wait = "    needs: [start]\n    timeout: 5m\n";
    assert!(
        stock.contains(wait),
        "the stock runbook changed: update the test"
    );
    let failing = stock.replacen(
        wait,
        "    needs: [start, fail-after-start]\n    timeout: 5m\n",
        1,
    ) + "\n  - id: fail-after-start\n    title: Fails after the restored members started\n    on: node:node2\n    action: shell\n    needs: [start]\n    with: {run: 'echo failing on purpose >&2; exit 1'}\n    probe: true\n";
    let work = tempfile::tempdir().unwrap();
    let runbook = write(work.path(), "restore-failing.yaml", &failing);
    let inventory = write(
        work.path(),
        "inventory.yaml",
        &inventory_yaml(&bed, work.path()),
    );
    let snapshot = snapshot_param(first, "/var/backups/etcd/drill.db");
    let on_failure = if later { "stop" } else { "rollback" };
    let mut outcome = Etcdrill::new(work.path())
        .args(["run".as_ref(), runbook.as_os_str()])
        .args(["-i".as_ref(), inventory.as_os_str(), "--yes".as_ref()])
        .args(["-p", &snapshot, "-p", "method=repoint"])
        .args(["-p", "bump_revision=0", "-p", "mark_compacted=false"])
        .args(["--on-failure", on_failure])
        .run();
    assert_eq!(
        outcome.code(),
        Some(1),
        "{}",
        support::diagnosis(&outcome, work.path())
    );
    let run = only_run(work.path());
    if later {
        // The restored members run on the new directories until a person rolls back.
        let new_dir = format!(
            "/var/lib/etcd-restored-{}",
            run.file_name().unwrap().to_str().unwrap()
        );
        assert_eq!(
            data_volume(&bed.nodes()[0], "/etc/kubernetes/manifests/etcd.yaml").1,
            new_dir
        );
        outcome = Etcdrill::new(work.path())
            .args(["rollback", run.to_str().unwrap()])
            .run();
        assert_eq!(
            outcome.code(),
            Some(0),
            "{}",
            support::diagnosis(&outcome, work.path())
        );
        assert!(
            outcome
                .stderr()
                .contains("since the run started: node1: the data dir is"),
            "{}",
            outcome.stderr()
        );
    }
    let diagnosis = || support::diagnosis(&outcome, work.path());
    let journal = journal(&run);
    let undone = |step: &str| {
        journal.records.iter().any(|r| {
            matches!(&r.event, Event::RollbackFinished { step: s, result: StepResult::Succeeded, .. } if s == step)
        })
    };
    for node in bed.nodes() {
        let name = node.name();
        for step in ["start", "repoint-data-dir", "stop", "restore-beside"] {
            assert!(
                undone(&format!("{step}@{name}")),
                "{step}@{name} was not undone: {}",
                diagnosis()
            );
        }
        assert_eq!(
            data_volume(node, "/etc/kubernetes/manifests/etcd.yaml"),
            ("/var/lib/etcd".to_owned(), "/var/lib/etcd".to_owned()),
            "{}",
            diagnosis()
        );
        node.exec_ok(
            "test -d /var/lib/etcd/member && ! ls -d /var/lib/etcd-restored-* 2>/dev/null",
        )
        .unwrap();
    }
    // The old cluster, with its data.
    assert_healthy_cluster(&bed, 3);
    assert_present(&bed, &after);
    let mut ids_after: Vec<u64> = bed.member_list().unwrap().iter().map(|m| m.id).collect();
    ids_after.sort_unstable();
    ids_before.sort_unstable();
    assert_eq!(ids_after, ids_before, "the old members are back");
}

/// The controller is killed (SIGKILL) right after a data volume was repointed; `etcdrill resume`
/// gathers the facts again (the manifests now name the new directories) but keeps the plan the
/// run started with, finishes the restore, and the restore proves it took effect.
#[test]
fn a_repoint_restore_killed_during_the_downtime_resumes_and_verifies() {
    let Some(bed) = bed(BedConfig::new(3)) else {
        return;
    };
    bed.seed(50, 256).unwrap();
    let kept = bed.put_canary("in-the-snapshot").unwrap();
    let first = &bed.nodes()[0];
    first
        .etcdctl(&["snapshot", "save", "/var/backups/etcd/drill.db"])
        .unwrap()
        .into_stdout()
        .unwrap();
    let lost = bed.put_canary("after-the-snapshot").unwrap();
    let work = tempfile::tempdir().unwrap();
    let inventory = write(
        work.path(),
        "inventory.yaml",
        &inventory_yaml(&bed, work.path()),
    );
    let snapshot = snapshot_param(first, "/var/backups/etcd/drill.db");
    let mut child = Etcdrill::new(work.path())
        .args(["run".as_ref(), stock_runbook("restore-3-node").as_os_str()])
        .args(["-i".as_ref(), inventory.as_os_str(), "--yes".as_ref()])
        .args(["-p", &snapshot, "-p", "method=repoint"])
        .args(["-p", "bump_revision=0", "-p", "mark_compacted=false"])
        .spawn();
    wait_for_record(work.path(), Duration::from_secs(120), |r| {
        matches!(&r.event, Event::StepFinished { step, result: StepResult::Succeeded, .. } if step.starts_with("repoint-data-dir@"))
    })
    .unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    let run = only_run(work.path());
    assert!(
        !journal(&run)
            .records
            .iter()
            .any(|r| matches!(r.event, Event::RunFinished { .. })),
        "killed too late"
    );

    let resumed = Etcdrill::new(work.path())
        .args(["resume", run.to_str().unwrap(), "--yes"])
        .run();
    assert_eq!(
        resumed.code(),
        Some(0),
        "{}",
        support::diagnosis(&resumed, work.path())
    );
    let journal = journal(&run);
    let new_dir = format!(
        "/var/lib/etcd-restored-{}",
        run.file_name().unwrap().to_str().unwrap()
    );
    for node in bed.nodes() {
        assert_eq!(
            step_result(&journal, &format!("verify-restored@{}", node.name())).as_deref(),
            Some("succeeded")
        );
        assert_eq!(
            data_volume(node, "/etc/kubernetes/manifests/etcd.yaml").1,
            new_dir
        );
    }
    assert_healthy_cluster(&bed, 3);
    assert_present(&bed, &kept);
    assert_eq!(
        bed.get(&lost.key).unwrap(),
        None,
        "the data is the snapshot's"
    );
}

/// The Kubernetes documentation's restore leaves the manifest's `etcd-data` hostPath at
/// /var/lib/etcd-restore-1 while --data-dir stays /var/lib/etcd, and the host's /var/lib/etcd is
/// stale. An inventory that says `data_dir: /var/lib/etcd` is refused at that line before
/// anything runs; one that leaves `data_dir` out takes the real directory from the manifest, and
/// the restore puts the snapshot's data there (the restored data really is the snapshot's).
#[test]
fn restore_3_node_takes_the_data_dir_from_a_moved_host_path() {
    let Some(bed) = bed(BedConfig::new(3).moved_host_path()) else {
        return;
    };
    bed.seed(50, 256).unwrap();
    let kept = bed.put_canary("in-the-snapshot").unwrap();
    let first = &bed.nodes()[0];
    first
        .etcdctl(&["snapshot", "save", "/var/backups/etcd/drill.db"])
        .unwrap()
        .into_stdout()
        .unwrap();
    let lost = bed.put_canary("after-the-snapshot").unwrap();
    let ids_before: Vec<u64> = bed.member_list().unwrap().iter().map(|m| m.id).collect();
    let pids_before: Vec<Vec<u32>> = bed.nodes().iter().map(|n| n.etcd_pids().unwrap()).collect();
    let params = [
        snapshot_param(first, "/var/backups/etcd/drill.db"),
        "bump_revision=0".into(),
        "mark_compacted=false".into(),
    ];

    let stale_dir = |bed: &Bed, work: &std::path::Path| {
        inventory_yaml(bed, work).replacen("  etcd:\n", "  etcd:\n    data_dir: /var/lib/etcd\n", 1)
    };
    let refused = Run::stock(&bed, "restore-3-node", &params, stale_dir);
    assert_eq!(
        refused.outcome.code(),
        Some(1),
        "{}",
        refused.diagnosis(&bed)
    );
    let told = refused.outcome.stderr();
    assert!(
        told.contains("`data_dir` of node `node1` is `/var/lib/etcd`, but the node says `/var/lib/etcd-restore-1`")
            && told.contains("inventory.yaml:"),
        "{told}"
    );
    assert!(support::no_runs(refused.work.path()), "nothing ran");
    let pids_after: Vec<Vec<u32>> = bed.nodes().iter().map(|n| n.etcd_pids().unwrap()).collect();
    assert_eq!(pids_after, pids_before, "no member was restarted");

    let run = Run::stock(&bed, "restore-3-node", &params, inventory_yaml);
    run.expect_success(&bed);
    assert!(
        run.outcome
            .stderr()
            .contains("node1: data_dir = /var/lib/etcd-restore-1 (from manifest /etc/kubernetes/manifests/etcd.yaml)"),
        "{}",
        run.diagnosis(&bed)
    );
    let facts = std::fs::read_to_string(run.dir().join("facts.json")).unwrap();
    assert!(facts.contains("/var/lib/etcd-restore-1"), "{facts}");
    // The journal keeps what the nodes said, and the report shows a reviewer the real paths.
    let journaled = run.journal().records.iter().find_map(|r| match &r.event {
        Event::NodeFacts { facts } => Some(facts.clone()),
        _ => None,
    });
    let journaled = journaled.expect("the journal has the node facts");
    assert_eq!(journaled.len(), 3, "{journaled:?}");
    assert!(journaled.iter().all(|f| {
        f.data_dir
            .as_ref()
            .is_some_and(|d| d.path == "/var/lib/etcd-restore-1")
    }));
    let report = std::fs::read_to_string(run.dir().join("report.md")).unwrap();
    assert!(
        report.contains("## Node facts") && report.contains("`/var/lib/etcd-restore-1`"),
        "{report}"
    );
    assert_healthy_cluster(&bed, 3);
    assert_present(&bed, &kept);
    assert_eq!(
        bed.get(&lost.key).unwrap(),
        None,
        "the data is the snapshot's"
    );
    let ids_after: Vec<u64> = bed.member_list().unwrap().iter().map(|m| m.id).collect();
    assert!(
        ids_after.iter().all(|id| !ids_before.contains(id)),
        "{ids_before:?} -> {ids_after:?}"
    );
    for node in bed.nodes() {
        node.exec_ok(
            "ls -d /var/lib/etcd-restore-1/.etcdrill-before-restore-*/member && ! ls -d /var/lib/etcd/.etcdrill-* 2>/dev/null",
        )
        .unwrap();
    }
}

/// The controller is killed (SIGKILL) right after a member's data was swapped, on a data dir
/// that is a mount point; `etcdrill resume` finishes the restore, and the restore proves it took
/// effect on every node (new cluster and member IDs, the snapshot's revision, etcd running on the
/// restored data).
#[test]
fn a_restore_killed_during_the_downtime_resumes_and_verifies_on_a_mount_point() {
    let Some(bed) = bed(BedConfig::new(3).data_dir_mount_point()) else {
        return;
    };
    bed.seed(50, 256).unwrap();
    let kept = bed.put_canary("in-the-snapshot").unwrap();
    let first = &bed.nodes()[0];
    first
        .etcdctl(&["snapshot", "save", "/var/backups/etcd/drill.db"])
        .unwrap()
        .into_stdout()
        .unwrap();
    let lost = bed.put_canary("after-the-snapshot").unwrap();
    let work = tempfile::tempdir().unwrap();
    let inventory = write(
        work.path(),
        "inventory.yaml",
        &inventory_yaml(&bed, work.path()),
    );
    let snapshot = snapshot_param(first, "/var/backups/etcd/drill.db");
    let mut child = Etcdrill::new(work.path())
        .args(["run".as_ref(), stock_runbook("restore-3-node").as_os_str()])
        .args(["-i".as_ref(), inventory.as_os_str(), "--yes".as_ref()])
        .args([
            "-p",
            &snapshot,
            "-p",
            "bump_revision=0",
            "-p",
            "mark_compacted=false",
        ])
        .spawn();
    wait_for_record(work.path(), Duration::from_secs(120), |r| {
        matches!(&r.event, Event::StepFinished { step, result: StepResult::Succeeded, .. } if step.starts_with("swap-data-dir@"))
    })
    .unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    let run = only_run(work.path());
    assert!(
        !journal(&run)
            .records
            .iter()
            .any(|r| matches!(r.event, Event::RunFinished { .. })),
        "killed too late"
    );

    let resumed = Etcdrill::new(work.path())
        .args(["resume", run.to_str().unwrap(), "--yes"])
        .run();
    let journal = journal(&run);
    assert_eq!(
        resumed.code(),
        Some(0),
        "{}",
        support::diagnosis(&resumed, work.path())
    );
    for node in bed.nodes() {
        assert_eq!(
            step_result(&journal, &format!("verify-restored@{}", node.name())).as_deref(),
            Some("succeeded")
        );
        node.exec_ok(
            "mountpoint -q /var/lib/etcd && ls -d /var/lib/etcd/.etcdrill-before-restore-*/member",
        )
        .unwrap();
    }
    assert_healthy_cluster(&bed, 3);
    assert_present(&bed, &kept);
    assert_eq!(
        bed.get(&lost.key).unwrap(),
        None,
        "the data is the snapshot's"
    );
}

#[test]
fn a_corrupted_or_truncated_snapshot_is_refused_before_anything_is_stopped() {
    let Some(bed) = bed(BedConfig::new(3)) else {
        return;
    };
    bed.seed(50, 256).unwrap();
    let canary = bed.put_canary("untouched").unwrap();
    let first = &bed.nodes()[0];
    first
        .etcdctl(&["snapshot", "save", "/var/backups/etcd/good.db"])
        .unwrap()
        .into_stdout()
        .unwrap();
    // One byte flipped in the middle; the same file cut short by 1000 bytes.
    let good = std::fs::read(first.host_path("/var/backups/etcd/good.db").unwrap()).unwrap();
    let mut flipped = good.clone();
    flipped[good.len() / 2] ^= 0xff;
    std::fs::write(
        first.host_path("/var/backups/etcd/flipped.db").unwrap(),
        flipped,
    )
    .unwrap();
    std::fs::write(
        first.host_path("/var/backups/etcd/truncated.db").unwrap(),
        &good[..good.len() - 1000],
    )
    .unwrap();
    let pids_before: Vec<Vec<u32>> = bed.nodes().iter().map(|n| n.etcd_pids().unwrap()).collect();
    let ids_before: Vec<u64> = bed.member_list().unwrap().iter().map(|m| m.id).collect();

    for (bad, why) in [
        ("flipped", "corrupt: the sha256"),
        ("truncated", "no sha256 trailer"),
    ] {
        let params = [
            snapshot_param(first, &format!("/var/backups/etcd/{bad}.db")),
            "bump_revision=0".into(),
            "mark_compacted=false".into(),
        ];
        let run = Run::stock(&bed, "restore-3-node", &params, inventory_yaml);
        assert_ne!(
            run.outcome.code(),
            Some(0),
            "{bad}: {}",
            run.diagnosis(&bed)
        );
        let journal = journal(&run.dir());
        // Every node's copy fails on the trailer the controller checked as the bytes passed.
        for node in bed.nodes() {
            let key = format!("distribute-snapshot@{}", node.name());
            assert_eq!(
                step_result(&journal, &key).as_deref(),
                Some("failed"),
                "{bad}: {}",
                run.diagnosis(&bed)
            );
            let error = journal
                .records
                .iter()
                .find_map(|r| match &r.event {
                    Event::StepFinished {
                        step,
                        result: StepResult::Failed { error },
                        ..
                    } if *step == key => Some(error.clone()),
                    _ => None,
                })
                .unwrap_or_default();
            assert!(error.contains(why), "{bad}: {error}");
            // Once: another attempt would read the same bytes (the step allows two retries).
            let attempts = journal
                .records
                .iter()
                .filter(|r| matches!(&r.event, Event::StepStarted { step, .. } if *step == key))
                .count();
            assert_eq!(attempts, 1, "{bad}: {key} was retried");
            // Nothing was renamed into place, and no part file is left.
            node.exec_ok(&format!(
                "test ! -e /var/backups/etcd/etcdrill-restore-{}.db && ! ls /var/backups/etcd/*.part 2>/dev/null",
                node.name()
            ))
            .unwrap();
        }
        let started: Vec<&str> = journal
            .records
            .iter()
            .filter_map(|r| match &r.event {
                Event::StepStarted { step, .. } => Some(step.as_str()),
                _ => None,
            })
            .collect();
        assert!(
            started.iter().all(|s| !s.starts_with("stop@")),
            "{bad}: a member was stopped: {started:?}"
        );
        assert!(
            started.iter().all(|s| !s.starts_with("restore@")),
            "{bad}: a restore started: {started:?}"
        );

        let pids_after: Vec<Vec<u32>> =
            bed.nodes().iter().map(|n| n.etcd_pids().unwrap()).collect();
        assert_eq!(
            pids_after, pids_before,
            "{bad}: etcd was restarted somewhere"
        );
        assert_healthy_cluster(&bed, 3);
        let ids_after: Vec<u64> = bed.member_list().unwrap().iter().map(|m| m.id).collect();
        assert_eq!(ids_after, ids_before, "{bad}: the membership changed");
        assert_present(&bed, &canary);
        assert_eq!(bed.count_keys(etcdrill_testbed::SEED_PREFIX).unwrap(), 50);
    }
}

/// `etcd.snapshot.distribute` with `save: true`: the snapshot is taken from a member into the
/// controller's file while it streams to every node (one transfer for save, copy and verify);
/// a second run finds the file and streams it again, so every attempt gets the same bytes.
#[test]
fn a_snapshot_taken_from_a_member_streams_to_every_node_in_the_same_pass() {
    let Some(bed) = bed(BedConfig::new(3)) else {
        return;
    };
    bed.seed(200, 1024).unwrap();
    let work = tempfile::tempdir().unwrap();
    let runbook = write(
        work.path(),
        "take.yaml",
        "name: take\nsummary: take a snapshot and put it on every node\nparams:\n  at: {type: string}\n\
         steps:\n  - id: take\n    title: Take a snapshot onto every node\n    on: each\n\
         \x20   action: etcd.snapshot.distribute\n    with:\n      from: \"{{params.at}}\"\n\
         \x20     to: \"{{node.backup_dir}}/taken-{{node.name}}.db\"\n      save: true\n",
    );
    let inventory = write(
        work.path(),
        "inventory.yaml",
        &inventory_yaml(&bed, work.path()),
    );
    let saved = work.path().join("saved/snapshot.db");
    let run = |expect: &str| {
        let outcome = Etcdrill::new(work.path())
            .args(["run".as_ref(), runbook.as_os_str()])
            .args(["-i".as_ref(), inventory.as_os_str(), "--yes".as_ref()])
            .args(["-p", &format!("at={}", saved.display())])
            .run();
        assert_eq!(outcome.code(), Some(0), "{}", outcome.shown());
        let runs: Vec<_> = std::fs::read_dir(work.path().join("runs"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        let newest = runs
            .iter()
            .max_by_key(|r| {
                std::fs::metadata(r.join("journal.jsonl"))
                    .unwrap()
                    .modified()
                    .unwrap()
            })
            .unwrap();
        let journal = journal(newest);
        for node in bed.nodes() {
            let key = format!("take@{}", node.name());
            let (result, output) = support::step_finished(&journal, &key).unwrap();
            assert_eq!(result, StepResult::Succeeded, "{key}: {output}");
            assert!(
                output.starts_with(expect) && output.contains("one read for node1, node2, node3"),
                "{key}: {output}"
            );
        }
    };
    run("took a snapshot from ");
    let bytes = std::fs::read(&saved).unwrap();
    let (data, trailer) = bytes.split_at(bytes.len() - 32);
    use sha2::Digest as _;
    assert_eq!(
        sha2::Sha256::digest(data).as_slice(),
        trailer,
        "a sound snapshot"
    );
    for node in bed.nodes() {
        let copy = node
            .host_path(format!("/var/backups/etcd/taken-{}.db", node.name()))
            .unwrap();
        assert_eq!(std::fs::read(copy).unwrap(), bytes, "{}", node.name());
    }
    // Written past it: a second run streams the saved file, not a new snapshot.
    bed.put_canary("after-the-first-take").unwrap();
    run("streamed ");
    assert_eq!(std::fs::read(&saved).unwrap(), bytes);
    for node in bed.nodes() {
        node.exec_ok("! ls /var/backups/etcd/*.part 2>/dev/null")
            .unwrap();
    }
}

/// A node whose backup dir is full cannot take the snapshot: its copy fails, the others get
/// theirs from the same read, and the run ends before any member is stopped. Nothing is left in
/// the full dir (no part file).
#[test]
fn a_node_whose_backup_dir_is_full_fails_its_copy_before_anything_is_stopped() {
    let Some(bed) = bed(BedConfig::new(3)) else {
        return;
    };
    bed.seed(50, 256).unwrap();
    let canary = bed.put_canary("untouched").unwrap();
    let first = &bed.nodes()[0];
    first
        .etcdctl(&["snapshot", "save", "/var/backups/etcd/good.db"])
        .unwrap()
        .into_stdout()
        .unwrap();
    // One 4 KiB page of tmpfs over node2's backup dir, in node2's mount namespace only: a
    // snapshot (at least four bbolt pages) never fits.
    let full = &bed.nodes()[1];
    full.exec_ok("mount -t tmpfs -o size=4k etcdrill-full /var/backups/etcd")
        .unwrap();
    let pids_before: Vec<Vec<u32>> = bed.nodes().iter().map(|n| n.etcd_pids().unwrap()).collect();
    let params = [
        snapshot_param(first, "/var/backups/etcd/good.db"),
        "bump_revision=0".into(),
        "mark_compacted=false".into(),
    ];
    let run = Run::stock(&bed, "restore-3-node", &params, inventory_yaml);
    let left_in_full = full.exec_ok("ls -A /var/backups/etcd").unwrap();
    full.exec_ok("umount /var/backups/etcd").unwrap();
    assert_ne!(run.outcome.code(), Some(0), "{}", run.diagnosis(&bed));
    assert_eq!(left_in_full.trim(), "", "left in the full backup dir");

    let journal = journal(&run.dir());
    let key = format!("distribute-snapshot@{}", full.name());
    assert_eq!(step_result(&journal, &key).as_deref(), Some("failed"));
    let error = journal
        .records
        .iter()
        .find_map(|r| match &r.event {
            Event::StepFinished {
                step,
                result: StepResult::Failed { error },
                ..
            } if *step == key => Some(error.clone()),
            _ => None,
        })
        .unwrap_or_default();
    assert!(
        error.contains("No space left on device") && error.contains("writing"),
        "{error}"
    );
    for node in [&bed.nodes()[0], &bed.nodes()[2]] {
        assert_eq!(
            step_result(&journal, &format!("distribute-snapshot@{}", node.name())).as_deref(),
            Some("succeeded"),
            "{}",
            run.diagnosis(&bed)
        );
    }
    let started: Vec<&str> = journal
        .records
        .iter()
        .filter_map(|r| match &r.event {
            Event::StepStarted { step, .. } => Some(step.as_str()),
            _ => None,
        })
        .collect();
    assert!(
        started
            .iter()
            .all(|s| !s.starts_with("stop@") && *s != "confirm-downtime"),
        "a member was stopped: {started:?}"
    );
    let pids_after: Vec<Vec<u32>> = bed.nodes().iter().map(|n| n.etcd_pids().unwrap()).collect();
    assert_eq!(pids_after, pids_before, "etcd was restarted somewhere");
    assert_healthy_cluster(&bed, 3);
    assert_present(&bed, &canary);
}

#[test]
fn replace_member_replaces_a_member_whose_data_is_gone() {
    replace_member(BedConfig::new(3), "rm -rf /var/lib/etcd");
}

/// On a dedicated disk, the data dir stays (a mount point cannot be removed); the member data
/// is set aside inside it.
#[test]
fn replace_member_on_a_mount_point_data_dir() {
    replace_member(BedConfig::new(3).data_dir_mount_point(), WIPE_DATA_DIR);
}

#[test]
fn replace_member_on_a_moved_host_path() {
    replace_member(BedConfig::new(3).moved_host_path(), WIPE_MOVED_DATA_DIR);
}

fn replace_member(config: BedConfig, wipe: &str) {
    let Some(bed) = bed(config) else {
        return;
    };
    bed.seed(100, 256).unwrap();
    let canary = bed.put_canary("before-the-loss").unwrap();
    let lost = &bed.nodes()[1];
    let id_before = bed
        .member_list()
        .unwrap()
        .into_iter()
        .find(|m| m.name == lost.name())
        .unwrap()
        .id;
    // The disaster: node2's disk is gone for good. Its administrator stopped the member the
    // kubeadm way (manifest moved out of the manifests dir) and the data dir is empty.
    bed.stop_member(lost).unwrap();
    lost.exec_ok(wipe).unwrap();
    let during = bed.put_canary("while-it-was-gone").unwrap();

    let run = Run::stock(
        &bed,
        "replace-member",
        &[format!("node={}", lost.name())],
        |bed, work| inventory_parking_at(bed, work, HAND_PARKED_DIR),
    );
    run.expect_success(&bed);

    assert_healthy_cluster(&bed, 3);
    assert_present(&bed, &canary);
    assert_present(&bed, &during);
    assert_eq!(bed.count_keys(etcdrill_testbed::SEED_PREFIX).unwrap(), 100);
    let members = bed.member_list().unwrap();
    let replaced = members.iter().find(|m| m.name == lost.name()).unwrap();
    assert_ne!(replaced.id, id_before, "node2 is a new member: {members:?}");
    // It serves its own copy: a serializable read on node2 alone finds the canary.
    let local = lost
        .etcdctl(&["get", &canary.key, "--consistency=s", "--print-value-only"])
        .unwrap()
        .into_stdout()
        .unwrap();
    assert_eq!(local.trim(), canary.value);
    eprintln!("replace-member took {:.1?}", run.took);
}

#[test]
fn quorum_recovery_rebuilds_the_cluster_from_the_survivor() {
    // The lost members' data dirs are gone altogether.
    quorum_recovery(BedConfig::new(3), "rm -rf /var/lib/etcd");
}

#[test]
fn quorum_recovery_on_a_mount_point_data_dir() {
    quorum_recovery(BedConfig::new(3).data_dir_mount_point(), WIPE_DATA_DIR);
}

/// The data dirs are where the manifests' moved hostPath says (the facts fill `data_dir`).
#[test]
fn quorum_recovery_on_a_moved_host_path() {
    quorum_recovery(BedConfig::new(3).moved_host_path(), WIPE_MOVED_DATA_DIR);
}

/// The survivor's data is not usable either (its WAL is gone): the runbook's second path restores
/// every member from the snapshot, streamed to all three nodes in one read.
#[test]
fn quorum_recovery_restores_from_a_snapshot_when_the_survivor_is_not_usable() {
    let Some(bed) = bed(BedConfig::new(3)) else {
        return;
    };
    bed.seed(100, 256).unwrap();
    let kept = bed.put_canary("in-the-snapshot").unwrap();
    let survivor = &bed.nodes()[0];
    survivor
        .etcdctl(&["snapshot", "save", "/var/backups/etcd/drill.db"])
        .unwrap()
        .into_stdout()
        .unwrap();
    let lost = bed.put_canary("after-the-snapshot").unwrap();
    for node in &bed.nodes()[1..] {
        bed.stop_member(node).unwrap();
        node.exec_ok(WIPE_DATA_DIR).unwrap();
    }
    bed.stop_member(survivor).unwrap();
    survivor.exec_ok("rm -rf /var/lib/etcd/member/wal").unwrap();

    let run = Run::stock(
        &bed,
        "quorum-recovery",
        &[
            format!("survivor={}", survivor.name()),
            snapshot_param(survivor, "/var/backups/etcd/drill.db"),
            "bump_revision=0".into(),
            "mark_compacted=false".into(),
        ],
        |bed, work| inventory_parking_at(bed, work, HAND_PARKED_DIR),
    );
    run.expect_success(&bed);
    assert_healthy_cluster(&bed, 3);
    assert_present(&bed, &kept);
    assert_eq!(
        bed.get(&lost.key).unwrap(),
        None,
        "the data is the snapshot's"
    );
    assert_eq!(bed.count_keys(etcdrill_testbed::SEED_PREFIX).unwrap(), 100);
    let journal = journal(&run.dir());
    for node in bed.nodes() {
        let key = format!("fb-distribute-snapshot@{}", node.name());
        let (result, output) = support::step_finished(&journal, &key).unwrap();
        assert_eq!(result, StepResult::Succeeded, "{key}: {output}");
        assert!(
            output.contains("one read for node1, node2, node3"),
            "{output}"
        );
    }
}

/// Empties the host data dir of a bed whose `etcd-data` hostPath was moved.
const WIPE_MOVED_DATA_DIR: &str =
    "find /var/lib/etcd-restore-1 -mindepth 1 -maxdepth 1 -exec rm -rf -- {} +";

/// Deletes everything in a node's data dir, which may be a mount point (that stays).
const WIPE_DATA_DIR: &str = "find /var/lib/etcd -mindepth 1 -maxdepth 1 -exec rm -rf -- {} +";

fn quorum_recovery(config: BedConfig, wipe: &str) {
    let Some(bed) = bed(config) else {
        return;
    };
    bed.seed(100, 256).unwrap();
    let canary = bed.put_canary("before-the-disaster").unwrap();
    let ids_before: Vec<(String, u64)> = bed
        .member_list()
        .unwrap()
        .into_iter()
        .map(|m| (m.name, m.id))
        .collect();
    // The disaster: node2 and node3 are lost for good. Their members were stopped the kubeadm
    // way and their data dirs are gone; node1 runs on without quorum.
    for lost in &bed.nodes()[1..] {
        bed.stop_member(lost).unwrap();
        lost.exec_ok(wipe).unwrap();
    }
    let survivor = &bed.nodes()[0];
    assert!(
        !survivor.etcd_pids().unwrap().is_empty(),
        "the survivor runs"
    );
    assert!(
        !survivor
            .etcdctl(&["endpoint", "health", "--command-timeout=2s"])
            .unwrap()
            .success(),
        "the survivor alone has no quorum"
    );

    let run = Run::stock(
        &bed,
        "quorum-recovery",
        &[format!("survivor={}", survivor.name())],
        |bed, work| inventory_parking_at(bed, work, HAND_PARKED_DIR),
    );
    run.expect_success(&bed);

    assert_healthy_cluster(&bed, 3);
    assert_present(&bed, &canary);
    assert_eq!(bed.count_keys(etcdrill_testbed::SEED_PREFIX).unwrap(), 100);
    // Every member serves its own copy of the survivor's data.
    for node in bed.nodes() {
        let local = node
            .etcdctl(&["get", &canary.key, "--consistency=s", "--print-value-only"])
            .unwrap()
            .into_stdout()
            .unwrap();
        assert_eq!(local.trim(), canary.value, "on {}", node.name());
    }
    // --force-new-cluster keeps the survivor's member ID; the others come back as new members.
    let ids_after: Vec<(String, u64)> = bed
        .member_list()
        .unwrap()
        .into_iter()
        .map(|m| (m.name, m.id))
        .collect();
    for (name, id) in &ids_after {
        let before = ids_before
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, id)| *id);
        if name == survivor.name() {
            assert_eq!(before, Some(*id), "{ids_before:?} -> {ids_after:?}");
        } else {
            assert_ne!(before, Some(*id), "{ids_before:?} -> {ids_after:?}");
        }
    }
    // No member still carries --force-new-cluster: a restart would drop the others again.
    survivor
        .exec_ok("! grep -q -- --force-new-cluster /etc/kubernetes/manifests/etcd.yaml")
        .unwrap();
    eprintln!("quorum-recovery took {:.1?}", run.took);
}

/// A failure after --force-new-cluster must not stop the survivor that serves alone: the run
/// undoes nothing and says what a person must do next. The failure: node2's data dir is
/// read-only, so its old data cannot be set aside.
#[test]
fn a_quorum_recovery_failing_after_force_new_cluster_leaves_the_survivor_serving() {
    let Some(bed) = bed(BedConfig::new(3)) else {
        return;
    };
    bed.seed(20, 64).unwrap();
    let canary = bed.put_canary("before-the-disaster").unwrap();
    for lost in &bed.nodes()[1..] {
        bed.stop_member(lost).unwrap();
    }
    let stuck = &bed.nodes()[1];
    stuck
        .exec_ok(
            "mount --bind /var/lib/etcd /var/lib/etcd && mount -o remount,bind,ro /var/lib/etcd",
        )
        .unwrap();
    let survivor = &bed.nodes()[0];

    let run = Run::stock(
        &bed,
        "quorum-recovery",
        &[format!("survivor={}", survivor.name())],
        |bed, work| inventory_parking_at(bed, work, HAND_PARKED_DIR),
    );
    assert_eq!(run.outcome.code(), Some(1), "{}", run.diagnosis(&bed));
    let journal = journal(&run.dir());
    assert_eq!(
        step_result(&journal, &format!("force-new-cluster@{}", survivor.name())).as_deref(),
        Some("succeeded"),
        "{}",
        run.diagnosis(&bed)
    );
    assert_eq!(
        step_result(&journal, &format!("lost-set-aside@{}", stuck.name())).as_deref(),
        Some("failed"),
        "{}",
        run.diagnosis(&bed)
    );
    assert!(
        !journal
            .records
            .iter()
            .any(|r| matches!(r.event, Event::RollbackStarted { .. })),
        "nothing is undone past --force-new-cluster: {}",
        run.diagnosis(&bed)
    );
    let told = run.outcome.stderr();
    assert!(
        told.contains("nothing was undone")
            && told.contains(&format!("`force-new-cluster@{}`", survivor.name()))
            && told.contains(&format!("`lost-set-aside@{}`", stuck.name()))
            && told.contains(&format!("`lost-add@{}`", stuck.name())),
        "{told}"
    );
    // The survivor serves alone, with the data.
    let health = survivor
        .etcdctl(&["endpoint", "health", "--command-timeout=5s"])
        .unwrap();
    assert!(health.success(), "{health:?}\n{}", run.diagnosis(&bed));
    let members = survivor
        .etcdctl(&["member", "list"])
        .unwrap()
        .into_stdout()
        .unwrap();
    assert_eq!(members.lines().count(), 1, "{members}");
    let value = survivor
        .etcdctl(&["get", &canary.key, "--print-value-only"])
        .unwrap()
        .into_stdout()
        .unwrap();
    assert_eq!(value.trim(), canary.value);
    stuck.exec_ok("umount /var/lib/etcd").unwrap();
}

#[test]
fn replace_member_replaces_a_crash_looping_member_on_an_empty_disk() {
    let Some(bed) = bed(BedConfig::new(3)) else {
        return;
    };
    bed.seed(100, 256).unwrap();
    let canary = bed.put_canary("before-the-loss").unwrap();
    let lost = &bed.nodes()[1];
    let id_before = bed
        .member_list()
        .unwrap()
        .into_iter()
        .find(|m| m.name == lost.name())
        .unwrap()
        .id;
    // The disaster: node2's disk was replaced and nobody touched its manifest, so the kubelet
    // keeps starting etcd on an empty data dir. The member comes up under its old ID without the
    // log the leader expects, panics and is restarted, again and again.
    bed.stop_member(lost).unwrap();
    lost.exec_ok("rm -rf /var/lib/etcd").unwrap();
    bed.start_member(lost).unwrap();
    etcdrill_testbed::wait_until(
        "node2's etcd to crash and be restarted",
        Duration::from_secs(30),
        || {
            let log = std::fs::read_to_string(lost.kubelet_log()).map_err(|e| e.to_string())?;
            if log.contains("exited") && log.contains("restarting in") {
                Ok(())
            } else {
                Err(log)
            }
        },
    )
    .unwrap();
    let during = bed.put_canary("while-it-was-gone").unwrap();

    let run = Run::stock(
        &bed,
        "replace-member",
        &[format!("node={}", lost.name())],
        inventory_yaml,
    );
    run.expect_success(&bed);

    assert_healthy_cluster(&bed, 3);
    assert_present(&bed, &canary);
    assert_present(&bed, &during);
    let members = bed.member_list().unwrap();
    let replaced = members.iter().find(|m| m.name == lost.name()).unwrap();
    assert_ne!(replaced.id, id_before, "node2 is a new member: {members:?}");
    // The crash loop's data dir was set aside, not deleted.
    lost.exec_ok("ls -d /var/lib/etcd/.etcdrill-failed-*/member")
        .unwrap();
    eprintln!("replace-member took {:.1?}", run.took);
}

/// The steps `run` skipped as not run in check mode, with the action each waits for.
fn not_run_in_check_mode(run: &Run) -> Vec<(String, String)> {
    run.journal()
        .records
        .iter()
        .filter_map(|r| match &r.event {
            Event::StepSkipped {
                step,
                reason: SkipReason::CheckMode { dependency },
            } => Some((step.clone(), dependency.clone())),
            _ => None,
        })
        .collect()
}

/// `run --check` of every stock runbook on a healthy cluster ends SUCCEEDED: probes that would
/// read what a shown action leaves behind are not run, every preflight holds, nothing changes.
#[test]
fn check_mode_of_every_stock_runbook_succeeds_on_a_healthy_cluster() {
    // Five members, so that `scale` can shrink by two.
    let Some(bed) = bed(BedConfig::new(5)) else {
        return;
    };
    bed.seed(50, 128).unwrap();
    let first = &bed.nodes()[0];
    first
        .etcdctl(&["snapshot", "save", "/var/backups/etcd/check.db"])
        .unwrap()
        .into_stdout()
        .unwrap();
    let snapshot = snapshot_param(first, "/var/backups/etcd/check.db");
    let backups = tempfile::tempdir().unwrap();
    let copies = tempfile::tempdir().unwrap();
    let ids_before: Vec<u64> = bed.member_list().unwrap().iter().map(|m| m.id).collect();
    let runbooks: [(&str, Vec<String>); 7] = [
        (
            "backup",
            vec![
                format!("dir={}", backups.path().display()),
                format!("copy_to={}", copies.path().display()),
            ],
        ),
        ("compact", vec![]),
        ("defrag-rolling", vec![]),
        ("quorum-recovery", vec!["survivor=node1".into()]),
        ("replace-member", vec!["node=node2".into()]),
        // etcd 3.5.1's etcdutl has no --bump-revision: the preflight says so (see below).
        (
            "restore-3-node",
            vec![
                snapshot,
                "bump_revision=0".into(),
                "mark_compacted=false".into(),
            ],
        ),
        (
            "scale",
            vec![
                "direction=shrink".into(),
                "first=node4".into(),
                "second=node5".into(),
            ],
        ),
    ];
    for (runbook, params) in &runbooks {
        let run = Run::check(&bed, runbook, params, inventory_yaml);
        run.expect_success(&bed);
        let journal = run.journal();
        let failed: Vec<&String> = journal
            .records
            .iter()
            .filter_map(|r| match &r.event {
                Event::StepFinished {
                    step,
                    result: StepResult::Failed { .. } | StepResult::TimedOut,
                    ..
                } => Some(step),
                _ => None,
            })
            .collect();
        assert!(
            failed.is_empty(),
            "{runbook}: {failed:?}\n{}",
            run.diagnosis(&bed)
        );
        let report = std::fs::read_to_string(run.dir().join("report.md")).unwrap();
        assert!(
            report.contains("Check run SUCCEEDED"),
            "{runbook}: {report}"
        );
        let skipped = not_run_in_check_mode(&run);
        match *runbook {
            "backup" => {
                // The save checked the controller has room for the database.
                let (result, output) = support::step_finished(&journal, "save").unwrap();
                assert_eq!(result, StepResult::Shown);
                assert!(
                    output.contains("checked on the controller:") && output.contains("bytes free"),
                    "{output}"
                );
            }
            "replace-member" => {
                // Setting the member data aside is checked where it would happen.
                let (result, output) = support::step_finished(&journal, "set-aside@node2").unwrap();
                assert_eq!(result, StepResult::Shown);
                assert!(
                    output.contains("checked on node2:\nwould move /var/lib/etcd/member to /var/lib/etcd/.etcdrill-failed-"),
                    "{output}"
                );
            }
            "restore-3-node" => {
                for node in bed.nodes() {
                    let key = format!("before-restore@{}", node.name());
                    assert!(
                        skipped.contains(&(key.clone(), "distribute-snapshot".into())),
                        "{key}: {skipped:?}"
                    );
                    // The copy checked the node has room for the snapshot.
                    let key = format!("distribute-snapshot@{}", node.name());
                    let (result, output) = support::step_finished(&journal, &key).unwrap();
                    assert_eq!(result, StepResult::Shown);
                    assert!(
                        output.contains(&format!("checked on {}:", node.name()))
                            && output.contains("bytes free"),
                        "{output}"
                    );
                }
                assert!(
                    report.contains("not run in check mode: depends on `distribute-snapshot`"),
                    "{report}"
                );
                // The destructive steps say what they would do, with the real paths.
                let (result, output) = support::step_finished(&journal, "restore@node1").unwrap();
                assert_eq!(result, StepResult::Shown);
                assert!(
                    output.contains("snapshot restore /var/backups/etcd/etcdrill-restore-node1.db")
                        && output.contains("checked on node1:")
                        && output.contains("restores into /var/lib/etcd/.etcdrill-restore-"),
                    "{output}"
                );
                assert!(
                    run.outcome
                        .stderr()
                        .contains("snapshot restore /var/backups/etcd/etcdrill-restore-node1.db"),
                    "the check output shows it"
                );
            }
            "quorum-recovery" => {
                assert!(
                    skipped
                        .contains(&("survivor-healthy@node1".into(), "force-new-cluster".into())),
                    "{skipped:?}"
                );
                assert!(
                    skipped.iter().any(|(step, _)| step == "survivor-alone"),
                    "{skipped:?}"
                );
            }
            _ => {}
        }
        eprintln!(
            "check of {runbook}: {:.1?}, {} probe(s) not run",
            run.took,
            skipped.len()
        );
    }
    // Nothing changed: the same members, healthy, no restore leftovers.
    bed.wait_healthy(Duration::from_secs(10)).unwrap();
    let ids_after: Vec<u64> = bed.member_list().unwrap().iter().map(|m| m.id).collect();
    assert_eq!(ids_before, ids_after);
    for node in bed.nodes() {
        node.exec_ok(
            "test ! -e /var/lib/etcd.restored && test ! -e /var/backups/etcd/etcdrill-restore.db",
        )
        .unwrap();
    }
    assert_eq!(std::fs::read_dir(copies.path()).unwrap().count(), 0);
}

/// A check fails for a real precondition, naming it: here one node has no etcdutl.
#[test]
fn check_mode_fails_naming_a_node_without_etcdutl() {
    let Some(bed) = bed(BedConfig::new(3)) else {
        return;
    };
    let first = &bed.nodes()[0];
    first
        .etcdctl(&["snapshot", "save", "/var/backups/etcd/check.db"])
        .unwrap()
        .into_stdout()
        .unwrap();
    // `/usr/local/bin/etcdutl` is the node's own link to the shared binary.
    let second = &bed.nodes()[1];
    second
        .exec_ok("test -L /usr/local/bin/etcdutl && rm /usr/local/bin/etcdutl")
        .unwrap();
    let snapshot = snapshot_param(first, "/var/backups/etcd/check.db");
    // Left at its default, --bump-revision is a precondition this etcdutl (3.5.1) misses too.
    let run = Run::check(&bed, "restore-3-node", &[&snapshot], inventory_yaml);
    assert!(
        run.outcome.stderr().contains(
            "/usr/local/bin/etcdutl has no --bump-revision (etcd 3.6, backported to 3.5 by etcd-io/etcd#16165)"
        ),
        "{}",
        run.diagnosis(&bed)
    );
    let run = Run::check(
        &bed,
        "restore-3-node",
        &[&snapshot, "bump_revision=0", "mark_compacted=false"],
        inventory_yaml,
    );
    assert_ne!(run.outcome.code(), Some(0), "{}", run.diagnosis(&bed));
    let failed = format!("restore@{}", second.name());
    assert_eq!(
        support::step_finished(&run.journal(), &failed).map(|(result, _)| result),
        Some(StepResult::Failed {
            error: "check mode: a precondition does not hold: exit status 1: etcdutl is missing \
                    on this node: no /usr/local/bin/etcdutl"
                .into()
        }),
        "{}",
        run.diagnosis(&bed)
    );
    let stderr = run.outcome.stderr();
    assert!(
        stderr.contains(&failed)
            && stderr.contains("etcdutl is missing on this node: no /usr/local/bin/etcdutl"),
        "{stderr}"
    );
    // The other nodes have theirs.
    assert_eq!(
        support::step_result(&run.journal(), &format!("restore@{}", first.name())).as_deref(),
        Some("shown")
    );
    let report = std::fs::read_to_string(run.dir().join("report.md")).unwrap();
    assert!(report.contains("Check run FAILED"), "{report}");

    // A backup host that cannot be reached fails the check of the backup, naming it.
    let local = tempfile::tempdir().unwrap();
    let run = Run::check(
        &bed,
        "backup",
        &[
            format!("dir={}", local.path().display()),
            "copy_to=ssh://root@127.0.0.1:1/srv/etcd-backups".into(),
        ],
        inventory_yaml,
    );
    assert_ne!(run.outcome.code(), Some(0), "{}", run.diagnosis(&bed));
    let error = match support::step_finished(&run.journal(), "ship") {
        Some((StepResult::Failed { error }, _)) => error,
        other => panic!("{other:?}\n{}", run.diagnosis(&bed)),
    };
    assert!(
        error.starts_with(
            "check mode: a precondition does not hold: ssh://root@127.0.0.1:1/srv/etcd-backups: \
             cannot reach backup host 127.0.0.1"
        ),
        "{error}"
    );
}

/// External etcd run by a systemd unit: with `unit:` in the inventory the facts come from the
/// unit (its `ExecStart` flags over the variables of its `EnvironmentFile=`), and a unit that does
/// not read the inventory's `env_file` is refused before anything runs: flags etcdrill wrote there
/// would never reach etcd.
#[test]
fn external_etcd_facts_come_from_its_systemd_unit() {
    let Some(bed) = bed(BedConfig::new(3).management(Management::External)) else {
        return;
    };
    let first = &bed.nodes()[0];
    first
        .etcdctl(&["snapshot", "save", "/var/backups/etcd/check.db"])
        .unwrap()
        .into_stdout()
        .unwrap();
    let snapshot = snapshot_param(first, "/var/backups/etcd/check.db");
    let params = [snapshot.as_str(), "bump_revision=0", "mark_compacted=false"];
    let env_file = first.external_env_path().display().to_string();
    let write_units = |unit: &str| {
        for node in bed.nodes() {
            node.exec_ok(&format!(
                "cat > /etc/etcd/etcd.service <<'EOF'\n{unit}EOF\n"
            ))
            .unwrap();
        }
    };
    let with_unit = |bed: &Bed, work: &std::path::Path| {
        inventory_yaml(bed, work).replacen(
            "env_file: ",
            "unit: /etc/etcd/etcd.service, env_file: ",
            1,
        )
    };

    write_units(&format!(
        "[Unit]\nDescription=etcd\n\n[Service]\nEnvironmentFile=-{env_file}\nExecStart=/usr/local/bin/etcd \\\n  $ETCD_OPTS\nRestart=always\n"
    ));
    let run = Run::check(&bed, "restore-3-node", &params, with_unit);
    run.expect_success(&bed);
    let told = run.outcome.stderr();
    assert!(
        told.contains("node1: unit /etc/etcd/etcd.service") && told.contains("name node1,"),
        "{}",
        run.diagnosis(&bed)
    );

    write_units("[Service]\nExecStart=/usr/local/bin/etcd --name elsewhere\n");
    let refused = Run::check(&bed, "restore-3-node", &params, with_unit);
    assert_eq!(
        refused.outcome.code(),
        Some(1),
        "{}",
        refused.diagnosis(&bed)
    );
    let told = refused.outcome.stderr();
    assert!(
        told.contains(&format!(
            "unit /etc/etcd/etcd.service: the unit reads no `EnvironmentFile={env_file}`"
        )) && told.contains("inventory.yaml:"),
        "{told}"
    );
    assert!(support::no_runs(refused.work.path()), "nothing ran");
}

/// `restore-3-node` compiled for a one-node inventory under `base` (static pod or external),
/// with `-p` `params`.
fn restore_plan(
    base: &std::path::Path,
    management: &str,
    params: &[(&str, &str)],
) -> Result<etcdrill::plan::Plan, String> {
    use etcdrill::source::SourceFile;
    let inventory = format!(
        "name: t\ndefaults:\n  etcd:\n    management: {management}\n    data_dir: '{0}/var/lib/etcd'\n    backup_dir: '{0}/backups'\nnodes:\n  - {{name: n1, address: 10.0.0.1}}\n",
        base.display()
    );
    let cluster =
        etcdrill::inventory::Cluster::load(SourceFile::new("inventory.yaml", inventory)).unwrap();
    let runbook = etcdrill::runbook::Runbook::load(
        SourceFile::read(&stock_runbook("restore-3-node")).unwrap(),
    )
    .unwrap();
    let source = SourceFile::new("command line", "");
    let inputs: Vec<etcdrill::plan::ParamInput> = [("snapshot", "/srv/snapshot.db")]
        .iter()
        .chain(params)
        .map(|(name, value)| etcdrill::plan::ParamInput {
            name: name.to_string(),
            value: serde_yaml::Value::String(value.to_string()),
            source: source.clone(),
            location: None,
        })
        .collect();
    etcdrill::plan::compile(&runbook, &cluster, &inputs).map_err(|e| e.to_string())
}

/// `method: auto` chooses per node from the free space of the filesystem each restore would
/// write to, and `repoint` is refused for an external etcd, where the plan is compiled. The
/// rendered `choose-method` script runs here with a stand-in `df` that puts the data dir on a
/// disk of its own (`/data`, or the root filesystem with `SAME=1`) and the rest on `/`.
#[test]
fn the_restore_method_is_chosen_from_the_room_where_each_restore_writes() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path();
    std::fs::create_dir_all(base.join("var/lib/etcd/member")).unwrap();
    std::fs::create_dir_all(base.join("backups")).unwrap();
    std::fs::create_dir_all(base.join("bin")).unwrap();
    // A 1 GiB snapshot (sparse): the restore needs 1048576 + 65536 KiB.
    std::fs::File::create(base.join("backups/etcdrill-restore-n1.db"))
        .unwrap()
        .set_len(1 << 30)
        .unwrap();
    let df = base.join("bin/df");
    std::fs::write(
        &df,
        "#!/bin/sh\nfor last; do :; done\ncase $last in \"$DATA\"|\"$DATA\"/*) free=$DATA_FREE; on=/data ;; *) free=$ROOT_FREE; on=/ ;; esac\n[ -z \"${SAME:-}\" ] || on=/\necho 'Filesystem 1024-blocks Used Available Capacity Mounted on'\necho \"disk 1 1 $free 1% $on\"\n",
    )
    .unwrap();
    std::fs::set_permissions(&df, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let choose = |management: &str, method: &str, data_free: u64, root_free: u64, same: bool| {
        let plan = restore_plan(base, management, &[("method", method)]).unwrap();
        let step = plan
            .steps()
            .find(|(_, s)| s.key == "choose-method@n1")
            .unwrap()
            .1;
        let etcdrill::plan::Operation::Script { script } = &step.operation else {
            panic!("{step:?}")
        };
        let path = format!(
            "{}:{}",
            base.join("bin").display(),
            std::env::var("PATH").unwrap()
        );
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(script.replace("⟨run.id⟩", "r1"))
            .env("PATH", path)
            .env("DATA", base.join("var/lib/etcd"))
            .env("DATA_FREE", data_free.to_string())
            .env("ROOT_FREE", root_free.to_string())
            .env("SAME", if same { "1" } else { "" })
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        match out.status.success() {
            true => Ok(stdout.lines().last().unwrap_or_default().to_owned()),
            false => Err(String::from_utf8_lossy(&out.stderr).into_owned()),
        }
    };
    let pod = "{static_pod: {}}";
    let external = "{external: {start: 'systemctl start etcd', stop: 'systemctl stop etcd'}}";
    let room = 2_000_000;
    let tight = 1_000;
    // Room on the data dir's own disk: swap, whatever the management.
    assert_eq!(
        choose(pod, "auto", room, tight, false).as_deref(),
        Ok("swap")
    );
    assert_eq!(
        choose(external, "auto", room, tight, false).as_deref(),
        Ok("swap")
    );
    // No room there, room beside it: a static pod repoints, an external etcd cannot.
    assert_eq!(
        choose(pod, "auto", tight, room, false).as_deref(),
        Ok("repoint")
    );
    let refused = choose(external, "auto", tight, room, false).unwrap_err();
    assert!(
        refused.contains("an external etcd cannot be repointed"),
        "{refused}"
    );
    // No room anywhere, or the new directory on the same full filesystem: the run stops there.
    let refused = choose(pod, "auto", tight, tight, false).unwrap_err();
    assert!(refused.contains("no room for the restore"), "{refused}");
    let refused = choose(pod, "auto", tight, tight, true).unwrap_err();
    assert!(refused.contains("which also holds"), "{refused}");
    // Asked for, a method is taken as it is (the restore itself checks its room).
    assert_eq!(
        choose(pod, "swap", tight, room, false).as_deref(),
        Ok("swap")
    );
    assert_eq!(
        choose(pod, "repoint", room, room, false).as_deref(),
        Ok("repoint")
    );

    // An external etcd has no hostPath: `repoint` is refused when the plan is compiled, at the
    // line that would repoint, before anything runs.
    let error = restore_plan(base, external, &[("method", "repoint")]).unwrap_err();
    assert!(
        error.contains("node `n1` runs etcd as an external service")
            && error.contains("restore-3-node.yaml:")
            && error.contains("-p method=swap"),
        "{error}"
    );
    assert!(restore_plan(base, external, &[("method", "swap")]).is_ok());
}
