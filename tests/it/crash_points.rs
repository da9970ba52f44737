//! Crash points of `restore-3-node` on the test bed: the controller is killed (SIGKILL, by the
//! deterministic `ETCDRILL_CRASH_AFTER_RECORD=finished:STEP` hook, right after the journal record
//! that ends step instance STEP is durable), `etcdrill resume` continues the run, and the restored
//! data is checked. Where resume refuses (a step that is not idempotent was in flight), the run
//! is rolled back and the cluster must serve what it served before. Needs root; see
//! `etcdrill_testbed::require`.
//!
//! Which boundaries: the records that end a step (`step_finished`). By default an evenly spread
//! subset of `DEFAULT_POINTS` of them; `ETCDRILL_CRASH_POINTS=all` takes every one (slow: a full
//! restore per point), `ETCDRILL_CRASH_POINTS=restore@node1,restore@node2` the ones named:
//! `ETCDRILL_CRASH_POINTS=all cargo nextest run -p etcdrill --test it -E
//! 'test(/^crash_points::/)'`, as root with the bed's variables of `.ci/test`.
//!
//! Two more faults, one case each by default and every case with `ETCDRILL_FAULT_CASES=all`: the
//! SSH connection serving a `restore` step dropped while the step runs (its sshd session process
//! killed while a gated `etcdutl` holds the step), and a member crashing (etcd killed with
//! SIGKILL) while a restore drill runs.

use std::time::Duration;

use etcdrill::journal::{CRASH_AFTER_RECORD, Event, RunResult};
use etcdrill_testbed::{Bed, BedConfig, Canary, Management};

use crate::support;
use crate::support::{Etcdrill, inventory_yaml, journal, only_run, stock_runbook, write};

/// How many step boundaries are exercised unless `ETCDRILL_CRASH_POINTS=all`.
const DEFAULT_POINTS: usize = 3;

/// `etcdrill run restore-3-node` of `snapshot`, in a work dir of its own, crashing right after
/// step instance `crash_after` finishes, if given.
fn start(
    bed: &Bed,
    snapshot: &str,
    crash_after: Option<&str>,
) -> (tempfile::TempDir, support::Outcome) {
    let work = tempfile::tempdir().unwrap();
    let mut command = restore_command(bed, snapshot, work.path());
    if let Some(step) = crash_after {
        command = command.env(CRASH_AFTER_RECORD, format!("finished:{step}"));
    }
    let outcome = command.run();
    (work, outcome)
}

/// `etcdrill run restore-3-node` of `snapshot` on `bed`, with its runs in `work`.
fn restore_command(bed: &Bed, snapshot: &str, work: &std::path::Path) -> Etcdrill {
    let inventory = write(work, "inventory.yaml", &inventory_yaml(bed, work));
    Etcdrill::new(work)
        .args(["run".as_ref(), stock_runbook("restore-3-node").as_os_str()])
        .args(["-i".as_ref(), inventory.as_os_str()])
        .args(["--yes", "-p", &format!("snapshot={snapshot}")])
        // etcd 3.5.1's etcdutl has no --bump-revision.
        .args(["-p", "bump_revision=0", "-p", "mark_compacted=false"])
}

/// The cluster holds what the snapshot held, and not what was written after it.
fn check_restored(bed: &Bed, kept: &Canary, lost: &Canary) -> Result<(), String> {
    bed.wait_healthy(Duration::from_secs(60))
        .map_err(|e| format!("not healthy: {e}"))?;
    let get = |key: &str| bed.get(key).map_err(|e| e.to_string());
    if get(&kept.key)? != Some(kept.value.clone()) {
        return Err("a key in the snapshot is missing".into());
    }
    if get(&lost.key)?.is_some() {
        return Err("a key written after the snapshot survived".into());
    }
    let seeded = bed
        .count_keys(etcdrill_testbed::SEED_PREFIX)
        .map_err(|e| e.to_string())?;
    if seeded != 100 {
        return Err(format!("{seeded} seeded keys, not 100"));
    }
    let members = bed.member_list().map_err(|e| e.to_string())?.len();
    if members != 3 {
        return Err(format!("{members} members"));
    }
    Ok(())
}

#[test]
fn restore_3_node_resumes_after_a_crash_at_step_boundaries() {
    let Some((bed, kept, snapshot)) = seeded_bed_and_snapshot() else {
        return;
    };

    // A run without a crash says where the step boundaries are.
    let lost = bed.put_canary("after-the-snapshot").unwrap();
    let (reference, outcome) = start(&bed, &snapshot, None);
    assert_eq!(outcome.code(), Some(0), "{}", outcome.shown());
    check_restored(&bed, &kept, &lost).unwrap();
    let records = journal(&only_run(reference.path())).records;
    let boundaries: Vec<String> = records
        .iter()
        .filter_map(|r| match &r.event {
            Event::StepFinished { step, .. } => Some(step.clone()),
            _ => None,
        })
        .collect();
    let chosen: Vec<&String> = match std::env::var("ETCDRILL_CRASH_POINTS").ok().as_deref() {
        Some("all") => boundaries.iter().collect(),
        // Step instances by name, e.g. `restore@node1,restore@node3`.
        Some(named) => {
            let named: Vec<&str> = named.split(',').map(str::trim).collect();
            for name in &named {
                assert!(
                    boundaries.iter().any(|b| b == name),
                    "ETCDRILL_CRASH_POINTS names {name}, which is not one of {boundaries:?}"
                );
            }
            boundaries
                .iter()
                .filter(|b| named.contains(&b.as_str()))
                .collect()
        }
        None => {
            let step = boundaries.len().div_ceil(DEFAULT_POINTS).max(1);
            boundaries.iter().skip(step / 2).step_by(step).collect()
        }
    };

    let mut outcomes = Vec::new();
    let mut exercised = 0;
    let mut wrong = Vec::new();
    for step in chosen {
        let lost = bed
            .put_canary(&format!("after-{}", step.replace('@', "-at-")))
            .unwrap();
        let (work, crashed) = start(&bed, &snapshot, Some(step));
        let run = only_run(work.path());
        let last = journal(&run).records.last().map(|r| r.event.clone());
        assert!(
            matches!(&last, Some(Event::StepFinished { step: s, .. }) if s == step),
            "the controller did not stop right after {step} finished: {last:?}\n{}",
            crashed.shown()
        );
        let point = journal(&run).records.len();
        let resumed = Etcdrill::new(work.path())
            .args(["resume", run.to_str().unwrap(), "--yes"])
            .run();
        let finished = |run: &std::path::Path| {
            journal(run)
                .records
                .iter()
                .rev()
                .find_map(|r| match r.event {
                    Event::RunFinished { result } => Some(result),
                    _ => None,
                })
        };
        // The resume checked the nodes again, and its journal keeps what they said then.
        let regathered = journal(&run)
            .records
            .iter()
            .skip_while(|r| !matches!(r.event, Event::RunResumed { .. }))
            .any(|r| matches!(&r.event, Event::NodeFacts { facts } if facts.len() == 3));
        let outcome = match finished(&run) {
            Some(RunResult::Succeeded) if !regathered => {
                wrong.push(step.clone());
                "resumed, but the journal has no node facts gathered at the resume".to_string()
            }
            Some(RunResult::Succeeded) => match check_restored(&bed, &kept, &lost) {
                Ok(()) => "resumed, data restored".to_string(),
                Err(problem) => {
                    wrong.push(step.clone());
                    format!("resumed, but {problem}")
                }
            },
            // Resume refuses to run a step that is not idempotent a second time when the
            // crash left it started without an end: by design, nothing runs twice. The run is
            // rolled back, and the cluster must still serve what it served before the run.
            None if resumed
                .stderr()
                .contains("it is not idempotent, so it is not run again") =>
            {
                let in_doubt = resumed
                    .stderr()
                    .lines()
                    .find(|l| l.contains("has no recorded end"))
                    .unwrap_or_default()
                    .trim()
                    .to_string();
                let rolled = Etcdrill::new(work.path())
                    .args(["rollback", run.to_str().unwrap()])
                    .run();
                // Rollback undoes completed steps only: what the step in doubt left is in a
                // directory named for the run, which no later run uses.
                let serving = bed
                    .wait_healthy(Duration::from_secs(60))
                    .map_err(|e| e.to_string())
                    .and_then(|()| bed.get(&lost.key).map_err(|e| e.to_string()));
                match (finished(&run), serving) {
                    (Some(RunResult::RolledBack), Ok(Some(value))) if value == lost.value => {
                        format!("resume refused ({in_doubt}); rolled back, cluster unchanged")
                    }
                    (result, serving) => {
                        wrong.push(step.clone());
                        format!(
                            "resume refused ({in_doubt}); rollback ended {result:?}, cluster: {serving:?}\n{}",
                            rolled.shown()
                        )
                    }
                }
            }
            other => {
                wrong.push(step.clone());
                format!("resume ended {other:?}:\n{}", resumed.shown())
            }
        };
        let line = format!("after {step} finished (record {point}): {outcome}");
        eprintln!("crash point: {line}");
        outcomes.push(line);
        exercised += 1;
        // A point that left the cluster unserved ends the walk: later points need a cluster.
        if bed.wait_healthy(Duration::from_secs(60)).is_err() {
            outcomes.push("(stopped: the cluster is not healthy after this point)".into());
            break;
        }
    }
    let report = format!(
        "{exercised} of {} step boundaries exercised:\n  {}",
        boundaries.len(),
        outcomes.join("\n  ")
    );
    eprintln!("{report}");
    assert!(
        wrong.is_empty(),
        "crash points {wrong:?} ended wrong:\n{report}"
    );
}

/// A bed of 3 seeded members, a canary, and a snapshot of them (its path on the host).
fn seeded_bed_and_snapshot() -> Option<(Bed, Canary, String)> {
    let bed = support::bed(BedConfig::new(3))?;
    bed.seed(100, 256).unwrap();
    let kept = bed.put_canary("in-the-snapshot").unwrap();
    bed.nodes()[0]
        .etcdctl(&["snapshot", "save", "/var/backups/etcd/drill.db"])
        .unwrap();
    let snapshot = bed.nodes()[0]
        .host_path("/var/backups/etcd/drill.db")
        .unwrap()
        .display()
        .to_string();
    Some((bed, kept, snapshot))
}

/// Where a gated `etcdutl snapshot restore` writes its PID once it waits for the gate.
const GATE_WAITING: &str = "/tmp/etcdrill-gate-waiting";
/// The file that lets a gated `etcdutl snapshot restore` go on.
const GATE_OPEN: &str = "/tmp/etcdrill-gate-open";

/// Makes `etcdutl snapshot restore` on `node` wait for [`GATE_OPEN`] after writing its PID to
/// [`GATE_WAITING`]: a step that runs as long as the test wants, found by its PID. Every other
/// `etcdutl` command runs at once.
fn gate_etcdutl(node: &etcdrill_testbed::Node) {
    let etcdutl = node.etcdutl_path().unwrap().display().to_string();
    node.exec_ok(&format!(
        r#"set -e
mv {etcdutl} {etcdutl}.real
cat > {etcdutl} <<'GATE'
#!/bin/sh
if [ "$1 $2" = "snapshot restore" ]; then
  echo $$ > {GATE_WAITING}.new && mv {GATE_WAITING}.new {GATE_WAITING}
  while [ ! -e {GATE_OPEN} ]; do sleep 0.05; done
fi
exec {etcdutl}.real "$@"
GATE
chmod 755 {etcdutl}"#
    ))
    .unwrap();
}

/// Takes the gate of [`gate_etcdutl`] away: the real `etcdutl` again, no gate files.
fn ungate_etcdutl(node: &etcdrill_testbed::Node) {
    let etcdutl = node.etcdutl_path().unwrap().display().to_string();
    node.exec_ok(&format!(
        "mv {etcdutl}.real {etcdutl}; rm -f {GATE_WAITING} {GATE_OPEN}"
    ))
    .unwrap();
}

/// Kills (SIGKILL) the sshd session process that serves the process `pid` on `node`: its nearest
/// ancestor named `sshd...` (the per-connection process). Returns what it killed.
fn kill_ssh_session_of(node: &etcdrill_testbed::Node, pid: u32) -> String {
    node.exec_ok(&format!(
        r#"pid={pid}
while [ "$pid" -gt 1 ]; do
  comm=$(cat /proc/$pid/comm)
  case "$comm" in sshd*) echo "$pid $(tr '\0' ' ' < /proc/$pid/cmdline)"; kill -KILL "$pid"; exit 0;; esac
  pid=$(awk '/^PPid:/ {{print $2}}' /proc/$pid/status)
done
echo "no sshd above {pid}" >&2; exit 1"#
    ))
    .unwrap()
    .trim()
    .to_string()
}

/// Whether every case of a fault is exercised (`ETCDRILL_FAULT_CASES=all`), not only the first.
fn every_fault_case() -> bool {
    std::env::var("ETCDRILL_FAULT_CASES").is_ok_and(|v| v == "all")
}

/// The PID a gated `etcdutl snapshot restore` on `node` wrote once it waits, waiting for it.
fn gated_pid(node: &etcdrill_testbed::Node) -> u32 {
    let mut pid = 0;
    etcdrill_testbed::wait_until("the gated restore to wait", Duration::from_secs(60), || {
        let text = node
            .exec_ok(&format!("cat {GATE_WAITING}"))
            .map_err(|e| e.to_string())?;
        pid = text.trim().parse().map_err(|e| format!("{text:?}: {e}"))?;
        Ok(())
    })
    .unwrap();
    pid
}

/// How a run ended, from its journal.
fn run_result(run: &std::path::Path) -> Option<RunResult> {
    journal(run)
        .records
        .iter()
        .rev()
        .find_map(|r| match r.event {
            Event::RunFinished { result } => Some(result),
            _ => None,
        })
}

/// The SSH connection serving `restore@NODE` is dropped while the step runs (its sshd session
/// process killed; the step is held by a gated `etcdutl`, so the drop lands mid-step every time).
/// The run must not report success without the data restored; whatever it ended as, the cluster
/// must be left as documented, and the restore must then complete and be verified.
#[test]
fn restore_3_node_after_an_ssh_connection_dropped_mid_step() {
    let Some((bed, kept, snapshot)) = seeded_bed_and_snapshot() else {
        return;
    };
    let nodes: Vec<usize> = if every_fault_case() {
        vec![1, 0, 2]
    } else {
        vec![1]
    };
    let mut outcomes = Vec::new();
    let mut wrong = Vec::new();
    for index in nodes {
        let node = &bed.nodes()[index];
        let step = format!("restore@{}", node.name());
        let lost = bed
            .put_canary(&format!("before-the-drop-at-{}", node.name()))
            .unwrap();
        gate_etcdutl(node);
        let work = tempfile::tempdir().unwrap();
        let child = restore_command(&bed, &snapshot, work.path()).spawn();
        support::wait_for_record(
            work.path(),
            Duration::from_secs(120),
            |r| matches!(&r.event, Event::StepStarted { step: s, .. } if *s == step),
        )
        .unwrap();
        let waiting = gated_pid(node);
        let killed = kill_ssh_session_of(node, waiting);
        let dropped = support::Outcome::of_child(child.wait_with_output().unwrap());
        // The remote command outlives its connection (no terminal, so no SIGHUP): with a real
        // `etcdutl` it would go on restoring. The test ends it, as a person would have to.
        let outlived = node.exec(&format!("kill -0 {waiting}")).unwrap().success();
        let _ = node.exec(&format!("kill -KILL {waiting}"));
        ungate_etcdutl(node);
        let run = only_run(work.path());
        let records = journal(&run).records;
        let step_error = records.iter().find_map(|r| match &r.event {
            Event::StepFinished {
                step: s,
                result: etcdrill::journal::StepResult::Failed { error },
                ..
            } if *s == step => Some(error.clone()),
            _ => None,
        });
        // The failure must say that the command may live on.
        if !step_error
            .as_deref()
            .is_some_and(|e| e.contains("may still be running there"))
        {
            wrong.push(step.clone());
        }
        let result = run_result(&run);
        let mut outcome = format!(
            "{step}: session `{killed}` killed; the step ended {}; the run ended {result:?}; the remote command {} the connection",
            step_error
                .as_deref()
                .map_or("without a recorded failure".into(), |e| format!(
                    "failed ({e})"
                )),
            if outlived {
                "outlived"
            } else {
                "did not outlive"
            },
        );
        let left = match result {
            // A success must be a restore.
            Some(RunResult::Succeeded) => {
                check_restored(&bed, &kept, &lost).map(|()| "data restored".to_string())
            }
            // Undone: the cluster serves what it served before the run.
            Some(RunResult::RolledBack) => bed
                .wait_healthy(Duration::from_secs(60))
                .map_err(|e| e.to_string())
                .and_then(|()| bed.get(&lost.key).map_err(|e| e.to_string()))
                .and_then(|value| match value {
                    Some(v) if v == lost.value => Ok("cluster unchanged".to_string()),
                    other => Err(format!("rolled back, but the canary reads {other:?}")),
                }),
            // Stopped: resume must finish it.
            Some(RunResult::Interrupted) | None => {
                let resumed = Etcdrill::new(work.path())
                    .args(["resume", run.to_str().unwrap(), "--yes"])
                    .run();
                match run_result(&run) {
                    Some(RunResult::Succeeded) => check_restored(&bed, &kept, &lost)
                        .map(|()| "resumed, data restored".to_string()),
                    other => Err(format!("resume ended {other:?}:\n{}", resumed.shown())),
                }
            }
            other => Err(format!("ended {other:?}:\n{}", dropped.shown())),
        };
        match left {
            Ok(state) => outcome.push_str(&format!("; {state}")),
            Err(problem) => {
                wrong.push(step.clone());
                outcome.push_str(&format!("; WRONG: {problem}"));
            }
        }
        // Whatever the dropped run left, a new run restores the snapshot.
        if result != Some(RunResult::Succeeded) {
            let (_again, rerun) = start(&bed, &snapshot, None);
            match check_restored(&bed, &kept, &lost) {
                Ok(()) if rerun.code() == Some(0) => {
                    outcome.push_str("; a new run then restored and verified the data")
                }
                other => {
                    wrong.push(step.clone());
                    outcome.push_str(&format!(
                        "; WRONG: the new run: {other:?}\n{}",
                        rerun.shown()
                    ));
                }
            }
        }
        eprintln!("ssh drop: {outcome}");
        outcomes.push(outcome);
    }
    assert!(
        wrong.is_empty(),
        "ssh drops {wrong:?} ended wrong:\n  {}",
        outcomes.join("\n  ")
    );
}

/// Kills (SIGKILL) every etcd process on `node`, by PID, once there is one (a member the run
/// just started may not have its process yet); returns the PIDs.
fn kill_etcd(node: &etcdrill_testbed::Node) -> Vec<u32> {
    let mut pids = Vec::new();
    etcdrill_testbed::wait_until("etcd to run on the node", Duration::from_secs(30), || {
        pids = node.etcd_pids().map_err(|e| e.to_string())?;
        if pids.is_empty() {
            return Err("no etcd process".into());
        }
        Ok(())
    })
    .unwrap();
    for pid in &pids {
        let _ = node.exec(&format!("kill -KILL {pid}"));
    }
    pids
}

/// A member crashes (its etcd killed with SIGKILL; the kubelet restarts a static pod) while a
/// restore drill of `restore-3-node` runs: while `restore@node2` is held by a gated `etcdutl`
/// (the default case), or, with `ETCDRILL_FAULT_CASES=all`, also right after later steps start.
/// The drill must end with a clear failure or recover, never a false success, and the cluster
/// must then be healthy with its 3 members.
#[test]
fn a_member_crash_mid_drill_ends_in_a_clear_failure_or_a_verified_recovery() {
    let Some(bed) = support::bed(BedConfig::new(3)) else {
        return;
    };
    let mut cases = vec!["restore@node2"];
    if every_fault_case() {
        cases.extend(["confirm-downtime", "wait-healthy", "verify-hashkv"]);
    }
    let mut outcomes = Vec::new();
    let mut wrong = Vec::new();
    for trigger in cases {
        let victim = &bed.nodes()[2];
        let DrillEnd {
            ended,
            killed,
            passed,
            verdict,
            checks,
            failed_checks,
        } = drill_with_a_member_killed(&bed, trigger);
        // Whatever the drill said, the cluster must come back whole: the kubelet restarts the
        // killed member, and a recovery restarted every member anyway.
        let cluster = bed
            .wait_healthy(Duration::from_secs(90))
            .map_err(|e| e.to_string())
            .and_then(|()| bed.member_list().map_err(|e| e.to_string()))
            .map(|members| members.len());
        let mut outcome = format!(
            "etcd of {} (pid {killed:?}) killed after {trigger} started: the drill {} (exit {:?}, verdict {verdict:?}, {} checks, not passed: {failed_checks:?}); members of the healthy cluster after: {cluster:?}",
            victim.name(),
            if passed { "PASSED" } else { "did not pass" },
            ended.code(),
            checks.len(),
        );
        let right = match (passed, &cluster) {
            // A pass is true only with every check passed and a whole, healthy cluster.
            (true, Ok(3)) => {
                !checks.is_empty()
                    && failed_checks.is_empty()
                    && verdict.as_deref() == Some("succeeded")
            }
            (true, _) => false,
            // A failure must say so: a non-zero exit, a verdict that is not success, and a
            // cluster left healthy with its members.
            (false, Ok(3)) => ended.code() != Some(0) && verdict.as_deref() != Some("succeeded"),
            (false, _) => false,
        };
        if !right {
            wrong.push(trigger.to_string());
            outcome.push_str(&format!("; WRONG:\n{}", ended.shown()));
        }
        eprintln!("member crash: {outcome}");
        outcomes.push(outcome);
    }
    assert!(
        wrong.is_empty(),
        "member crashes after {wrong:?} ended wrong:\n  {}",
        outcomes.join("\n  ")
    );
}

/// How a restore drill with a member killed ended.
struct DrillEnd {
    /// The `drill run` process.
    ended: support::Outcome,
    /// The PIDs of the killed etcd.
    killed: Vec<u32>,
    /// Whether the drill said PASSED and exited 0.
    passed: bool,
    /// The report's verdict.
    verdict: Option<String>,
    /// The report's drill verifications.
    checks: Vec<serde_json::Value>,
    /// The names of those that did not pass.
    failed_checks: Vec<String>,
}

/// Runs a restore drill of `restore-3-node` on `bed` and kills (SIGKILL) every etcd of its third
/// node once step `trigger` has started; for a `restore@` trigger a gated `etcdutl` on the second
/// node holds the step while the member dies.
fn drill_with_a_member_killed(bed: &Bed, trigger: &str) -> DrillEnd {
    let runbook = stock_runbook("restore-3-node");
    let gated = &bed.nodes()[1];
    let victim = &bed.nodes()[2];
    let work = tempfile::tempdir().unwrap();
    write(
        work.path(),
        "inventory.yaml",
        &inventory_yaml(bed, work.path()),
    );
    let drill = write(
        work.path(),
        "drill.yaml",
        &format!(
            "name: member-crash\nsummary: a member crashes mid-drill\ninventory: inventory.yaml\nrunbook: {}\nparams: {{bump_revision: 0, mark_compacted: false}}\ndisaster: {{restore: {{}}}}\nseed: {{keys: 200, value_bytes: 128}}\n",
            serde_json::to_string(&runbook.display().to_string()).unwrap()
        ),
    );
    let gate = trigger.starts_with("restore@");
    if gate {
        gate_etcdutl(gated);
    }
    let child = Etcdrill::new(work.path())
        .args([
            "drill",
            "run",
            drill.to_str().unwrap(),
            "--yes",
            "--work-dir",
        ])
        .args([work.path()])
        .spawn();
    support::wait_for_record(
        work.path(),
        Duration::from_secs(180),
        |r| matches!(&r.event, Event::StepStarted { step, .. } if step == trigger),
    )
    .unwrap();
    if gate {
        gated_pid(gated);
    }
    let killed = kill_etcd(victim);
    if gate {
        gated.exec_ok(&format!("touch {GATE_OPEN}")).unwrap();
    }
    let ended = support::Outcome::of_child(child.wait_with_output().unwrap());
    if gate {
        ungate_etcdutl(gated);
    }
    let passed = ended.code() == Some(0) && ended.stderr().contains("PASSED");
    let report: Option<serde_json::Value> = std::fs::read_dir(work.path().join("runs"))
        .ok()
        .into_iter()
        .flatten()
        .filter_map(|e| std::fs::read_to_string(e.ok()?.path().join("report.json")).ok())
        .find_map(|text| serde_json::from_str(&text).ok());
    let verdict = report
        .as_ref()
        .map(|r| r["verdict"]["outcome"].as_str().unwrap_or("?").to_string());
    let checks = report
        .as_ref()
        .and_then(|r| r["drill"]["verifications"].as_array().cloned())
        .unwrap_or_default();
    let failed_checks: Vec<String> = checks
        .iter()
        .filter(|v| v["passed"] != serde_json::Value::Bool(true))
        .map(|v| v["name"].as_str().unwrap_or("?").to_string())
        .collect();
    DrillEnd {
        ended,
        killed,
        passed,
        verdict,
        checks,
        failed_checks,
    }
}

/// External etcd has no supervisor here: a member killed once the restored cluster serves stays
/// down. The drill must fail clearly (no rollback after the point of no return) and the two other
/// members must go on serving.
#[test]
fn a_member_that_stays_down_fails_the_drill_and_the_others_keep_serving() {
    let Some(bed) = support::bed(BedConfig::new(3).management(Management::External)) else {
        return;
    };
    let end = drill_with_a_member_killed(&bed, "verify-hashkv");
    let shown = end.ended.shown();
    assert!(!end.passed, "a drill with a member down passed:\n{shown}");
    assert_ne!(end.ended.code(), Some(0), "{shown}");
    assert_ne!(end.verdict.as_deref(), Some("succeeded"), "{shown}");
    assert!(
        bed.nodes()[2].etcd_pids().unwrap().is_empty(),
        "the killed member came back: the case did not happen"
    );
    for node in &bed.nodes()[..2] {
        let health = node
            .etcdctl(&["endpoint", "health"])
            .unwrap()
            .into_stdout()
            .unwrap_or_else(|e| {
                panic!(
                    "{} does not serve after the drill: {e}\n{shown}",
                    node.name()
                )
            });
        assert!(health.contains("is healthy"), "{health}");
    }
    eprintln!(
        "member stays down: etcd of node3 (pid {:?}) killed after verify-hashkv started: exit {:?}, verdict {:?}, not passed: {:?}; node1 and node2 serve",
        end.killed,
        end.ended.code(),
        end.verdict,
        end.failed_checks
    );
}
