//! The day-2 stock runbooks against real clusters over mutual TLS: a rolling defragmentation under
//! a steady writer, a compaction that keeps its window, and scaling 3 -> 5 -> 3 members through
//! learners. Each test starts a test bed, runs the real `etcdrill` binary on `runbooks/*.yaml` and
//! checks what etcd itself reports afterwards. These tests need root; see
//! `etcdrill_testbed::require`.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use etcdrill::journal::{Event, Journal, StepResult};
use etcdrill_testbed::{Bed, BedConfig};

use crate::support;
use crate::support::{Run, bed, inventory_parking_at, inventory_yaml, step_result};

/// Where the bed's `stop_member` parks a static pod's manifest.
const HAND_PARKED_DIR: &str = "/etc/kubernetes";

/// Keys of the steps that finished with success, in journal order.
fn succeeded(journal: &Journal) -> Vec<String> {
    journal
        .records
        .iter()
        .filter_map(|r| match &r.event {
            Event::StepFinished {
                step,
                result: StepResult::Succeeded,
                ..
            } => Some(step.clone()),
            _ => None,
        })
        .collect()
}

/// The error of the last failed attempt of `step`.
fn failure(journal: &Journal, step: &str) -> String {
    journal
        .records
        .iter()
        .rev()
        .find_map(|r| match &r.event {
            Event::StepFinished {
                step: s,
                result: StepResult::Failed { error },
                ..
            } if s == step => Some(error.clone()),
            _ => None,
        })
        .unwrap_or_default()
}

/// Each node's `(dbSize, dbSizeInUse)` and the leader's node name, from `endpoint status`.
fn statuses(bed: &Bed) -> (BTreeMap<String, (u64, u64)>, String) {
    let out = bed
        .etcdctl(&["endpoint", "status", "-w", "json"])
        .unwrap()
        .into_stdout()
        .unwrap();
    let all: serde_json::Value = serde_json::from_str(&out).unwrap();
    let mut sizes = BTreeMap::new();
    let mut leader = String::new();
    for entry in all.as_array().unwrap() {
        let endpoint = entry["Endpoint"].as_str().unwrap();
        let node = bed
            .nodes()
            .iter()
            .find(|n| n.client_url() == endpoint)
            .unwrap_or_else(|| panic!("{endpoint} is a bed node"));
        let status = &entry["Status"];
        sizes.insert(
            node.name().to_owned(),
            (
                status["dbSize"].as_u64().unwrap_or(0),
                status["dbSizeInUse"].as_u64().unwrap_or(0),
            ),
        );
        if status["leader"].as_u64() == status["header"]["member_id"].as_u64() {
            leader = node.name().to_owned();
        }
    }
    (sizes, leader)
}

/// The current revision, from a read's header.
fn revision(bed: &Bed) -> i64 {
    let out = bed
        .etcdctl(&["get", "/", "--prefix", "--limit=1", "-w", "json"])
        .unwrap()
        .into_stdout()
        .unwrap();
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    json["header"]["revision"].as_i64().unwrap()
}

/// A writer that puts a key every 20 ms through the bed's controller etcdctl (every endpoint,
/// client-side balancing) until stopped, counting successes and failures.
struct Writer {
    stop: Arc<AtomicBool>,
    ok: Arc<AtomicUsize>,
    failed: Arc<std::sync::Mutex<Vec<String>>>,
    thread: std::thread::JoinHandle<()>,
}

impl Writer {
    /// Writes that succeeded so far.
    fn succeeded(&self) -> usize {
        self.ok.load(Ordering::SeqCst)
    }

    /// Waits until `count` writes succeeded, within a minute.
    fn wait_for_writes(&self, count: usize) {
        etcdrill_testbed::wait_until("the writer to write", Duration::from_secs(60), || {
            let done = self.succeeded();
            if done >= count {
                Ok(())
            } else {
                Err(format!("{done} of {count} writes"))
            }
        })
        .unwrap();
    }

    fn start(bed: &Bed) -> Writer {
        let etcdctl = bed.etcd_binaries().etcdctl.clone();
        let tls = bed.tls().clone();
        let endpoints = bed.client_urls().join(",");
        let stop = Arc::new(AtomicBool::new(false));
        let ok = Arc::new(AtomicUsize::new(0));
        let failed = Arc::new(std::sync::Mutex::new(Vec::new()));
        let (s, o, f) = (stop.clone(), ok.clone(), failed.clone());
        let thread = std::thread::spawn(move || {
            let mut i = 0u64;
            while !s.load(Ordering::SeqCst) {
                let started = Instant::now();
                let out = Command::new(&etcdctl)
                    .env("ETCDCTL_API", "3")
                    .arg(format!("--endpoints={endpoints}"))
                    .arg(format!("--cacert={}", tls.ca_cert.display()))
                    .arg(format!("--cert={}", tls.client_cert.display()))
                    .arg(format!("--key={}", tls.client_key.display()))
                    .args(["--dial-timeout=2s", "--command-timeout=10s", "put"])
                    .arg(format!("/writer/{:06}", i % 1000))
                    .arg(format!("write {i}"))
                    .output()
                    .expect("etcdctl runs");
                if out.status.success() {
                    o.fetch_add(1, Ordering::SeqCst);
                } else {
                    f.lock().unwrap().push(format!(
                        "write {i} after {:.1?}: {}",
                        started.elapsed(),
                        String::from_utf8_lossy(&out.stderr).trim()
                    ));
                }
                i += 1;
                std::thread::sleep(Duration::from_millis(20));
            }
        });
        Writer {
            stop,
            ok,
            failed,
            thread,
        }
    }

    /// Stops it; `(successful writes, failures)`.
    fn finish(self) -> (usize, Vec<String>) {
        self.stop.store(true, Ordering::SeqCst);
        self.thread.join().unwrap();
        let failed = self.failed.lock().unwrap().clone();
        (self.ok.load(Ordering::SeqCst), failed)
    }
}

#[test]
fn defrag_rolling_shrinks_every_member_under_writes_leader_last() {
    let Some(bed) = bed(BedConfig::new(3)) else {
        return;
    };
    // Fragment every member: ~24 MB of values, deleted and compacted (physically), so the
    // database files keep their size while almost nothing is in use.
    bed.seed(3000, 8000).unwrap();
    bed.etcdctl(&["del", "--prefix", etcdrill_testbed::SEED_PREFIX])
        .unwrap()
        .into_stdout()
        .unwrap();
    let rev = revision(&bed).to_string();
    bed.etcdctl(&["compact", &rev, "--physical"])
        .unwrap()
        .into_stdout()
        .unwrap();
    let (before, leader) = statuses(&bed);
    eprintln!("before: {before:?}, leader {leader}");
    for (node, (size, in_use)) in &before {
        assert!(size - in_use > 10 << 20, "{node} is fragmented: {before:?}");
    }

    // A check first: the defragmentations are shown, the probes after them are not run, and
    // the leader's steps are shown with a successor that only the real run can name.
    let check = Run::check(&bed, "defrag-rolling", &["min_free_mb=8"], inventory_yaml);
    check.expect_success(&bed);
    let shown: Vec<String> = check
        .journal()
        .records
        .iter()
        .filter_map(|r| match &r.event {
            Event::StepFinished {
                step,
                result: StepResult::Shown,
                ..
            } => Some(step.clone()),
            _ => None,
        })
        .collect();
    for step in ["defrag-old-leader", "move-leader", "disarm"] {
        assert!(
            shown.iter().any(|s| s.starts_with(step)),
            "{step}: {shown:?}"
        );
    }
    assert_eq!(
        shown
            .iter()
            .filter(|s| s.starts_with("defrag-follower@"))
            .count(),
        2,
        "{shown:?}"
    );
    let (after_check, _) = statuses(&bed);
    for (node, (size, in_use)) in &after_check {
        assert!(
            size - in_use > 10 << 20,
            "a check defragmented {node}: {after_check:?}"
        );
    }

    let writer = Writer::start(&bed);
    writer.wait_for_writes(3);
    let run = Run::stock(&bed, "defrag-rolling", &["min_free_mb=8"], inventory_yaml);
    // Writes go on after the last member was defragmented, too.
    writer.wait_for_writes(writer.succeeded() + 3);
    let (writes, failed) = writer.finish();
    run.expect_success(&bed);
    eprintln!(
        "{writes} writes succeeded during the run ({:.1?}), {} failed",
        run.took,
        failed.len()
    );
    // Defragmenting the leader in place stalls writes for as long as it takes: many failures in a
    // row. An isolated timeout on a saturated disk is not that; allow two, and at most a tenth.
    assert!(
        failed.len() <= 2 && failed.len() * 10 <= writes + failed.len(),
        "writes failed: {failed:#?}"
    );
    // That the writer kept writing is proven by the waits above: before the run, and again after the
    // last member was defragmented; how many writes fit in between depends on the machine's speed.

    let (after, _) = statuses(&bed);
    eprintln!("after: {after:?}");
    for (node, (size, _)) in &after {
        let (was, _) = before[node];
        assert!(*size < was / 2, "{node}'s database shrank: {was} -> {size}");
    }

    // From the journal: the roles of the start of the run, followers first, a move of leadership,
    // then the old leader, last.
    let journal = run.journal();
    let resolved = journal.records.iter().find_map(|r| match &r.event {
        Event::RolesResolved { leader, .. } => Some(leader.clone()),
        _ => None,
    });
    assert_eq!(resolved, Some(Some(leader.clone())));
    let done = succeeded(&journal);
    let defrags: Vec<&String> = done.iter().filter(|s| s.starts_with("defrag-")).collect();
    let followers: Vec<String> = bed
        .nodes()
        .iter()
        .map(|n| n.name().to_owned())
        .filter(|n| *n != leader)
        .map(|n| format!("defrag-follower@{n}"))
        .collect();
    let old_leader = format!("defrag-old-leader@{leader}");
    let mut expected: Vec<&String> = followers.iter().collect();
    expected.push(&old_leader);
    assert_eq!(defrags, expected, "{done:#?}");
    let position = |key: &str| done.iter().position(|s| s == key).unwrap_or(usize::MAX);
    assert!(
        position(&format!("move-leader@{leader}")) < position(&old_leader),
        "{done:#?}"
    );
    assert!(
        position(&format!("leader-moved@{leader}")) < position(&old_leader),
        "{done:#?}"
    );
    assert_eq!(
        step_result(&journal, "disarm").as_deref(),
        Some("succeeded")
    );
    assert_eq!(
        step_result(&journal, "steady-after.all-healthy").as_deref(),
        Some("succeeded")
    );
    let (_, now) = statuses(&bed);
    assert_ne!(now, leader, "the old leader handed leadership over");
}

#[test]
fn compact_keeps_the_window_and_refuses_a_revision_inside_it() {
    let Some(bed) = bed(BedConfig::new(3)) else {
        return;
    };
    for i in 0..40 {
        bed.etcdctl(&["put", "/compact/key", &format!("v{i}")])
            .unwrap()
            .into_stdout()
            .unwrap();
    }
    let current = revision(&bed);
    let get_at = |rev: i64| {
        bed.etcdctl(&["get", "/compact/key", &format!("--rev={rev}")])
            .unwrap()
    };
    assert!(get_at(current - 30).success());

    // A revision inside the kept window is refused before anything is compacted.
    let inside = format!("revision={}", current - 5);
    let refused = Run::stock(
        &bed,
        "compact",
        &["keep_revisions=10", &inside],
        inventory_yaml,
    );
    assert_ne!(refused.outcome.code(), Some(0));
    let error = failure(&refused.journal(), "compact-to");
    assert!(error.contains("refusing to compact"), "{error}");
    assert!(get_at(current - 30).success(), "nothing was compacted");

    let run = Run::stock(&bed, "compact", &["keep_revisions=10"], inventory_yaml);
    run.expect_success(&bed);
    let journal = run.journal();
    assert_eq!(
        support::step_outputs(&journal, "compact").get("revision"),
        Some(&(current - 10).to_string())
    );
    let old = get_at(current - 11);
    assert!(!old.success(), "{old:?}");
    assert!(
        old.stderr.contains("required revision has been compacted"),
        "{old:?}"
    );
    for rev in [current - 10, current - 5, current] {
        let kept = get_at(rev);
        assert!(kept.success(), "revision {rev} is kept: {kept:?}");
    }
    eprintln!("compact took {:.1?}", run.took);
}

/// The voting members' names and whether any learner is left.
fn voting(bed: &Bed) -> Vec<String> {
    let list = bed.member_list().unwrap();
    assert!(list.iter().all(|m| !m.is_learner), "{list:?}");
    let mut names: Vec<String> = list.into_iter().map(|m| m.name).collect();
    names.sort();
    names
}

/// Waits until the members on `nodes` (by index) each answer `endpoint health` (a linearizable
/// read through the node's own member).
fn wait_healthy_on(bed: &Bed, nodes: &[usize]) {
    etcdrill_testbed::wait_until("the members to be healthy", Duration::from_secs(30), || {
        for i in nodes {
            let node = &bed.nodes()[*i];
            let out = node
                .etcdctl(&["endpoint", "health", "--command-timeout=2s"])
                .map_err(|e| e.to_string())?;
            if !out.success() {
                return Err(format!("{}: {}{}", node.name(), out.stdout, out.stderr));
            }
        }
        Ok(())
    })
    .unwrap();
}

#[test]
fn scale_grows_three_members_to_five_and_back_to_three() {
    scale(BedConfig::new(5), "/var/lib/etcd");
}

/// The same on every real layout at once: data dirs that are mount points behind a hostPath moved
/// by an earlier restore, and one backup dir for every node. The shrink sets the removed members'
/// data aside inside their real data dirs.
#[test]
fn scale_on_every_real_layout_at_once() {
    scale(
        BedConfig::new(5)
            .data_dir_mount_point()
            .moved_host_path()
            .shared_backup_dir(),
        "/var/lib/etcd-restore-1",
    );
}

/// Scales from three to five and back on a bed whose members keep their data in `data_dir`.
fn scale(config: BedConfig, data_dir: &str) {
    let Some(bed) = bed(config) else {
        return;
    };
    // Five machines, a three-member cluster: node4 and node5 leave the cluster, stop and lose
    // their data, as machines provisioned but not yet joined.
    for node in &bed.nodes()[3..] {
        let id = bed
            .member_list()
            .unwrap()
            .into_iter()
            .find(|m| m.name == node.name())
            .unwrap()
            .id;
        // etcd refuses a removal ("unhealthy cluster") until the member receiving it has been
        // connected to every voting member for 5 s, so soon after the previous removal.
        etcdrill_testbed::wait_until("the removal", Duration::from_secs(30), || {
            let out = bed
                .etcdctl(&["member", "remove", &format!("{id:x}")])
                .map_err(|e| e.to_string())?;
            if out.success() {
                Ok(())
            } else {
                Err(out.stderr)
            }
        })
        .unwrap();
        bed.stop_member(node).unwrap();
        // Emptied, not removed: the data dir may be a mount point.
        node.exec_ok(&format!(
            "find {data_dir} -mindepth 1 -maxdepth 1 -exec rm -rf -- {{}} +"
        ))
        .unwrap();
    }
    wait_healthy_on(&bed, &[0, 1, 2]);
    assert_eq!(voting(&bed), ["node1", "node2", "node3"]);
    bed.seed(200, 256).unwrap();
    let canary = bed.put_canary("before-scaling").unwrap();
    let parked = |bed: &Bed, work: &Path| inventory_parking_at(bed, work, HAND_PARKED_DIR);

    // An even or wrong membership is refused before anything changes: node3 is a member.
    let wrong = Run::stock(
        &bed,
        "scale",
        &["direction=grow", "first=node3", "second=node4"],
        parked,
    );
    assert_ne!(wrong.outcome.code(), Some(0));
    let error = failure(&wrong.journal(), "grow-membership");
    assert!(error.contains("node3 is already a member"), "{error}");
    assert_eq!(voting(&bed), ["node1", "node2", "node3"]);

    let grow = Run::stock(
        &bed,
        "scale",
        &["direction=grow", "first=node4", "second=node5"],
        parked,
    );
    grow.expect_success(&bed);
    bed.wait_healthy(Duration::from_secs(30)).unwrap();
    assert_eq!(voting(&bed), ["node1", "node2", "node3", "node4", "node5"]);
    let journal = grow.journal();
    let done = succeeded(&journal);
    for key in [
        "grow-healthy@node1",
        "grow-healthy@node2",
        "grow-healthy@node3",
        "promote-first@node4",
        "first-joined@node1",
        "first-joined@node2",
        "first-joined@node3",
        "first-joined@node4",
        "promote-second@node5",
        "grown-healthy",
        "grown-members",
        "grown-agree",
    ] {
        assert!(done.iter().any(|s| s == key), "{key}: {done:#?}");
    }
    let position = |done: &[String], key: &str| done.iter().position(|s| s == key).unwrap();
    assert!(position(&done, "first-joined@node4") < position(&done, "add-second@node5"));
    assert_eq!(bed.get(&canary.key).unwrap(), Some(canary.value.clone()));
    eprintln!("grow took {:.1?}", grow.took);

    // The leader is one of the members to remove: the runbook hands leadership over first.
    let node5 = bed
        .member_list()
        .unwrap()
        .into_iter()
        .find(|m| m.name == "node5")
        .unwrap()
        .id;
    bed.etcdctl(&["move-leader", &format!("{node5:x}")])
        .unwrap()
        .into_stdout()
        .unwrap();
    let shrink = Run::stock(
        &bed,
        "scale",
        &["direction=shrink", "first=node4", "second=node5"],
        parked,
    );
    shrink.expect_success(&bed);
    wait_healthy_on(&bed, &[0, 1, 2]);
    assert_eq!(voting(&bed), ["node1", "node2", "node3"]);
    let journal = shrink.journal();
    let done = succeeded(&journal);
    for key in [
        "shrink-membership",
        "shrink-healthy",
        "move-leader@node5",
        "leader-stays@node5",
        "remove-first@node4",
        "first-gone@node1",
        "first-gone@node5",
        "remove-second@node5",
        "shrunk-healthy@node1",
        "shrunk-healthy@node2",
        "shrunk-healthy@node3",
        "shrunk-membership",
    ] {
        assert!(done.iter().any(|s| s == key), "{key}: {done:#?}");
    }
    for node in &bed.nodes()[3..] {
        assert!(
            node.etcd_pids().unwrap().is_empty(),
            "{} stopped",
            node.name()
        );
        node.exec_ok(&format!(
            "ls -d {data_dir}/.etcdrill-removed-*/member && test ! -e {data_dir}/member"
        ))
        .unwrap();
    }
    assert_eq!(bed.get(&canary.key).unwrap(), Some(canary.value));
    assert_eq!(bed.count_keys(etcdrill_testbed::SEED_PREFIX).unwrap(), 200);
    eprintln!("shrink took {:.1?}", shrink.took);
}

/// A work dir with an inventory of `bed` (runs under `work/runs`), for the day-2 commands.
fn day2_work(bed: &Bed) -> (tempfile::TempDir, String) {
    let work = tempfile::tempdir().unwrap();
    let inventory = support::write(
        work.path(),
        "inventory.yaml",
        &inventory_yaml(bed, work.path()),
    );
    (work, inventory.display().to_string())
}

/// `etcdrill ARGS -i INVENTORY` in `work`, and the run directory it made, if it made one.
fn day2(
    work: &Path,
    inventory: &str,
    args: &[&str],
) -> (support::Outcome, Option<std::path::PathBuf>) {
    let before = run_dirs(work);
    let outcome = support::Etcdrill::new(work)
        .args(args)
        .args(["-i", inventory])
        .run();
    eprintln!("etcdrill {}:\n{}", args.join(" "), outcome.shown());
    let made = run_dirs(work).into_iter().find(|d| !before.contains(d));
    (outcome, made)
}

fn run_dirs(work: &Path) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(work.join("runs"))
        .map(|entries| entries.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default()
}

#[test]
fn defrag_and_move_leader_guard_the_leader_and_a_member_that_is_down() {
    let Some(bed) = bed(BedConfig::new(3)) else {
        return;
    };
    let (work, inventory) = day2_work(&bed);
    let (_, leader) = statuses(&bed);
    let follower = bed
        .nodes()
        .iter()
        .map(|n| n.name().to_owned())
        .find(|n| *n != leader)
        .unwrap();

    // The leader is refused: nothing is defragmented, and the journal says why.
    let (refused, dir) = day2(work.path(), &inventory, &["defrag", &leader]);
    let refused = refused.expect_code(1);
    assert!(refused.stderr().contains("it leads"), "{}", refused.shown());
    let journal = support::journal(&dir.expect("a run directory"));
    assert!(failure(&journal, "not-the-leader").contains("move leadership first"));
    assert!(
        !succeeded(&journal).iter().any(|s| s.starts_with("defrag@")),
        "{:#?}",
        succeeded(&journal)
    );

    // Hand leadership over, then the old leader is a follower like any other.
    let (moved, dir) = day2(work.path(), &inventory, &["move-leader", &follower]);
    moved.expect_code(0);
    assert_eq!(statuses(&bed).1, follower);
    let moved_run = dir.expect("a run directory");
    assert_eq!(
        step_result(&support::journal(&moved_run), "leads").as_deref(),
        Some("succeeded")
    );
    // Check mode runs the guards and only shows the defragmentation.
    let (checked, dir) = day2(work.path(), &inventory, &["defrag", &leader, "--check"]);
    checked.expect_code(0);
    let journal = support::journal(&dir.expect("a run directory"));
    assert_eq!(
        step_result(&journal, &format!("defrag@{leader}")).as_deref(),
        Some("shown")
    );
    let (defragmented, dir) = day2(work.path(), &inventory, &["defrag", &leader]);
    defragmented.expect_code(0);
    let journal = support::journal(&dir.expect("a run directory"));
    assert_eq!(
        step_result(&journal, &format!("defrag@{leader}")).as_deref(),
        Some("succeeded")
    );

    // A day-2 run is a run like any other: its report is written again from its journal.
    let id = moved_run
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    support::Etcdrill::new(work.path())
        .args([
            "report",
            &id,
            "--work-dir",
            &work.path().display().to_string(),
        ])
        .run()
        .expect_code(0);

    // With a member down, no member is defragmented: the one being rewritten could take the
    // majority with it.
    let down = bed.nodes().iter().find(|n| n.name() != follower).unwrap();
    let other = bed
        .nodes()
        .iter()
        .find(|n| n.name() != follower && n.name() != down.name())
        .unwrap();
    bed.stop_member(down).unwrap();
    let (refused, dir) = day2(work.path(), &inventory, &["defrag", other.name()]);
    refused.expect_code(1);
    let journal = support::journal(&dir.expect("a run directory"));
    assert_eq!(
        step_result(&journal, "members-answer").as_deref(),
        Some("failed")
    );
    assert!(
        !succeeded(&journal).iter().any(|s| s.starts_with("defrag@")),
        "{:#?}",
        succeeded(&journal)
    );
    bed.start_member(down).unwrap();
}

#[test]
fn a_single_member_recovers_from_nospace_with_the_day2_commands() {
    let Some(bed) = bed(BedConfig::new(1).quota_backend_bytes(4 * 1024 * 1024)) else {
        return;
    };
    let (work, inventory) = day2_work(&bed);
    let node = bed.nodes()[0].name().to_owned();
    assert!(
        bed.seed(80, 100_000).is_err(),
        "writing 8 MB under a 4 MiB quota failed nowhere"
    );
    let (listed, _) = day2(work.path(), &inventory, &["alarm", "list", "-o", "json"]);
    let listed: serde_json::Value = serde_json::from_str(&listed.expect_code(0).stdout()).unwrap();
    assert_eq!(listed["alarms"][0]["alarm"], "NOSPACE", "{listed}");

    // Free the space: deletions are allowed under NOSPACE; compaction frees the pages, and the
    // defragmentation gives them back. The only member leads, and there is no one to hand over to.
    bed.etcdctl(&["del", "--prefix", etcdrill_testbed::SEED_PREFIX])
        .unwrap()
        .into_stdout()
        .unwrap();
    let rev = revision(&bed).to_string();
    bed.etcdctl(&["compact", &rev, "--physical"])
        .unwrap()
        .into_stdout()
        .unwrap();
    let (before, _) = statuses(&bed);
    let (moved, _) = day2(work.path(), &inventory, &["move-leader", &node]);
    moved.expect_code(0);
    let (defragmented, dir) = day2(work.path(), &inventory, &["defrag", &node]);
    defragmented.expect_code(0);
    let journal = support::journal(&dir.expect("a run directory"));
    assert_eq!(
        step_result(&journal, &format!("defrag@{node}")).as_deref(),
        Some("succeeded")
    );
    let (after, _) = statuses(&bed);
    assert!(
        after[&node].0 < before[&node].0 / 2,
        "{before:?} -> {after:?}"
    );

    let (disarmed, _) = day2(work.path(), &inventory, &["alarm", "disarm"]);
    disarmed.expect_code(0);
    let (listed, _) = day2(work.path(), &inventory, &["alarm", "list"]);
    assert_eq!(listed.expect_code(0).stdout(), "no active alarm\n");
    bed.etcdctl(&["put", "/after/nospace", "ok"])
        .unwrap()
        .into_stdout()
        .unwrap();

    // CORRUPT is disarmed only when told that the corrupted member was restored.
    raise_corrupt(&bed);
    let (refused, dir) = day2(work.path(), &inventory, &["alarm", "disarm"]);
    refused.expect_code(1);
    let journal = support::journal(&dir.expect("a run directory"));
    assert!(failure(&journal, "disarmable").contains("CORRUPT"));
    assert_eq!(
        step_result(&journal, "disarm"),
        None,
        "nothing was disarmed"
    );
    let (listed, _) = day2(work.path(), &inventory, &["alarm", "list"]);
    assert!(listed.expect_code(0).stdout().contains("CORRUPT"));
    let (disarmed, _) = day2(work.path(), &inventory, &["alarm", "disarm", "--corrupt"]);
    disarmed.expect_code(0);
    let (listed, _) = day2(work.path(), &inventory, &["alarm", "list"]);
    assert_eq!(listed.expect_code(0).stdout(), "no active alarm\n");
}

/// Raises a CORRUPT alarm for the bed's first member, as the leader's corruption check would.
fn raise_corrupt(bed: &Bed) {
    let tls = bed.tls();
    let files = etcdrill::inventory::TlsFiles {
        ca: tls.ca_cert.display().to_string(),
        cert: tls.client_cert.display().to_string(),
        key: tls.client_key.display().to_string(),
    };
    let access = etcdrill::etcd::EtcdAccess::resolve(Some(&files)).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let mut client = access.client(&bed.client_urls()[..1]).await.unwrap();
        let member = client.status().await.unwrap().header().unwrap().member_id();
        let mut options = etcd_client::AlarmOptions::new();
        options.with_member(member);
        client
            .alarm(
                etcd_client::AlarmAction::Activate,
                etcd_client::AlarmType::Corrupt,
                Some(options),
            )
            .await
            .unwrap();
    });
}

/// compact, defrag-rolling and backup on every real layout at once: data dirs on disks of their
/// own, behind an `etcd-data` hostPath moved by an earlier restore done by hand, and one backup dir
/// for every node. They take the data dirs from the nodes and change none of them.
#[test]
fn compact_defrag_rolling_and_backup_on_every_real_layout_at_once() {
    let Some(bed) = bed(BedConfig::new(3)
        .data_dir_mount_point()
        .shared_backup_dir()
        .moved_host_path())
    else {
        return;
    };
    bed.seed(200, 256).unwrap();
    let canary = bed.put_canary("kept").unwrap();
    Run::stock(&bed, "compact", &["keep_revisions=10"], inventory_yaml).expect_success(&bed);
    let run = Run::stock(&bed, "defrag-rolling", &["min_free_mb=0"], inventory_yaml);
    run.expect_success(&bed);
    assert!(
        run.outcome.stderr().contains("its own mount point"),
        "the facts show the layout: {}",
        run.outcome.stderr()
    );
    assert!(
        run.outcome
            .stderr()
            .contains("data_dir = /var/lib/etcd-restore-1 (from manifest"),
        "the facts found the moved hostPath: {}",
        run.outcome.stderr()
    );
    let saved = tempfile::tempdir().unwrap();
    let copies = tempfile::tempdir().unwrap();
    Run::stock(
        &bed,
        "backup",
        &[
            &format!("dir={}", saved.path().display()),
            &format!("copy_to={}", copies.path().display()),
        ],
        inventory_yaml,
    )
    .expect_success(&bed);
    assert!(
        std::fs::read_dir(copies.path()).unwrap().any(|e| e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .ends_with(".db")),
        "the backup was shipped"
    );
    for node in bed.nodes() {
        node.exec_ok(
            "mountpoint -q /var/lib/etcd-restore-1 && test -d /var/lib/etcd-restore-1/member",
        )
        .unwrap();
    }
    assert_eq!(bed.get(&canary.key).unwrap(), Some(canary.value));
}
