//! Crash points of `restore-3-node` on the test bed: the controller is killed (SIGKILL, by the
//! deterministic `ETCDRILL_CRASH_AFTER_RECORD=finished:STEP` hook, right after the journal record
//! that ends step instance STEP is durable), `etcdrill resume` continues the run, and the restored
//! data is checked. Where resume refuses (a step that is not idempotent was in flight), the run
//! is rolled back and the cluster must serve what it served before. Needs root; see
//! `etcdrill_testbed::require`.
//!
//! Which boundaries: the records that end a step (`step_finished`). By default an evenly spread
//! subset of `DEFAULT_POINTS` of them; `ETCDRILL_CRASH_POINTS=all` takes every one (slow: a full
//! restore per point): `ETCDRILL_CRASH_POINTS=all cargo nextest run -p etcdrill --test it -E
//! 'test(/^crash_points::/)'`, as root with the bed's variables of `.ci/test`.

use std::time::Duration;

use etcdrill::journal::{CRASH_AFTER_RECORD, Event, RunResult};
use etcdrill_testbed::{Bed, BedConfig, Canary};

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
    let inventory = write(
        work.path(),
        "inventory.yaml",
        &inventory_yaml(bed, work.path()),
    );
    let mut command = Etcdrill::new(work.path())
        .args(["run".as_ref(), stock_runbook("restore-3-node").as_os_str()])
        .args(["-i".as_ref(), inventory.as_os_str()])
        .args(["--yes", "-p", &format!("snapshot={snapshot}")])
        // etcd 3.5.1's etcdutl has no --bump-revision.
        .args(["-p", "bump_revision=0", "-p", "mark_compacted=false"]);
    if let Some(step) = crash_after {
        command = command.env(CRASH_AFTER_RECORD, format!("finished:{step}"));
    }
    let outcome = command.run();
    (work, outcome)
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
    let Some(bed) = support::bed(BedConfig::new(3)) else {
        return;
    };
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
    let every = std::env::var("ETCDRILL_CRASH_POINTS").is_ok_and(|v| v == "all");
    let chosen: Vec<&String> = if every {
        boundaries.iter().collect()
    } else {
        let step = boundaries.len().div_ceil(DEFAULT_POINTS).max(1);
        boundaries.iter().skip(step / 2).step_by(step).collect()
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
        let outcome = match finished(&run) {
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
                // Rollback undoes completed steps only: what the step in doubt left (a
                // `<data_dir>.restored`) is for a person to remove, as here.
                let mut leftovers = 0;
                for node in bed.nodes() {
                    let restored = format!("{}.restored", node.data_dir().display());
                    let found = node
                        .exec_ok(&format!(
                            "if [ -e {restored} ]; then rm -rf -- {restored}; echo left; fi"
                        ))
                        .unwrap();
                    leftovers += usize::from(found.contains("left"));
                }
                let serving = bed
                    .wait_healthy(Duration::from_secs(60))
                    .map_err(|e| e.to_string())
                    .and_then(|()| bed.get(&lost.key).map_err(|e| e.to_string()));
                match (finished(&run), serving) {
                    (Some(RunResult::RolledBack), Ok(Some(value))) if value == lost.value => {
                        format!(
                            "resume refused ({in_doubt}); rolled back, cluster unchanged; {leftovers} leftover .restored dir(s) removed by hand"
                        )
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
