//! The executor against real nodes: the test bed's namespaces, sshd and etcd with mutual TLS,
//! driven through the real `etcdrill` binary. These tests need root; see `etcdrill_testbed::require`.

use std::time::Duration;

use etcdrill::journal::{Event, RollbackSkip, RunResult, SkipReason, StepResult};
use etcdrill_testbed::{Bed, BedConfig};

use crate::support;
use crate::support::{
    Etcdrill, inventory_with, inventory_yaml, journal, no_runs, only_run, step_outputs,
    step_result, wait_for_record, write,
};

/// A bed of `nodes` nodes, or `None` where beds cannot run (see `support::bed`).
fn bed(nodes: usize) -> Option<Bed> {
    support::bed(BedConfig::new(nodes))
}

const OUTPUTS: &str = r#"
name: exec-outputs
summary: parallel branches across nodes, with outputs flowing between steps
params:
  token: {type: string, secret: true, default: "s3cr3t-t0ken-value"}
steps:
  - id: status
    title: Read the leader
    on: cluster
    action: etcd.status
  - id: mark
    title: Write a marker on every node
    on: each
    action: shell
    needs: [status]
    with:
      run: |
        printf '%s led by %s\n' {{node.name}} {{steps.status.outputs.leader}} > /var/backups/etcd/marker
        echo "using token={{params.token}}" >&2
        echo "marked {{node.name}}"
    outputs: {said: last_line}
  - id: put
    title: Write a canary holding the leader's name
    on: cluster
    action: etcd.kv.put
    needs: [status]
    with: {key: /etcdrill/test/leader, value: "{{steps.status.outputs.leader}}"}
  - id: check
    title: Read the canary back
    on: cluster
    action: verify.key
    needs: [put, mark]
    with: {key: /etcdrill/test/leader, value: "{{steps.status.outputs.leader}}"}
"#;

#[test]
fn steps_run_in_parallel_across_nodes_with_outputs_flowing_and_secrets_masked() {
    let Some(bed) = bed(3) else { return };
    let work = tempfile::tempdir().unwrap();
    let inventory = write(
        work.path(),
        "inventory.yaml",
        &inventory_yaml(&bed, work.path()),
    );
    let runbook = write(work.path(), "runbook.yaml", OUTPUTS);
    let outcome = Etcdrill::new(work.path())
        .args([
            "run",
            runbook.to_str().unwrap(),
            "-i",
            inventory.to_str().unwrap(),
            "--output",
            "json",
        ])
        .run()
        .expect_code(0);

    let run = only_run(work.path());
    let journal = journal(&run);
    let leader = step_outputs(&journal, "status")["leader"].clone();
    let names: Vec<&str> = bed.nodes().iter().map(|n| n.name()).collect();
    assert!(
        names.contains(&leader.as_str()),
        "leader `{leader}` is a bed node: {names:?}"
    );
    for node in bed.nodes() {
        // Each node's marker is on that node only: private mounts, real SSH.
        let marker = node.exec_ok("cat /var/backups/etcd/marker").unwrap();
        assert_eq!(marker.trim(), format!("{} led by {leader}", node.name()));
        let key = format!("mark@{}", node.name());
        assert_eq!(
            step_outputs(&journal, &key)["said"],
            format!("marked {}", node.name())
        );
    }
    assert_eq!(
        bed.get("/etcdrill/test/leader").unwrap().as_deref(),
        Some(leader.as_str())
    );
    assert_eq!(step_result(&journal, "check").as_deref(), Some("succeeded"));

    // The three markers ran at the same time: all started before the first ended.
    let position =
        |wanted: &dyn Fn(&Event) -> bool| journal.records.iter().position(|r| wanted(&r.event));
    let last_start = (0..3)
        .map(|i| {
            let key = format!("mark@{}", names[i]);
            position(&|e| matches!(e, Event::StepStarted { step, .. } if *step == key)).unwrap()
        })
        .max()
        .unwrap();
    let first_end =
        position(&|e| matches!(e, Event::StepFinished { step, .. } if step.starts_with("mark@")))
            .unwrap();
    assert!(
        last_start < first_end,
        "the per-node steps ran one after another"
    );
    assert!(matches!(
        journal.records.last().unwrap().event,
        Event::RunFinished {
            result: RunResult::Succeeded
        }
    ));

    // The secret went to the node, but nowhere that output goes.
    let journal_text = std::fs::read_to_string(run.join("journal.jsonl")).unwrap();
    let plan_text = std::fs::read_to_string(run.join("plan.json")).unwrap();
    for (what, text) in [
        ("journal", &journal_text),
        ("plan", &plan_text),
        ("stdout", &outcome.stdout()),
        ("stderr", &outcome.stderr()),
    ] {
        assert!(
            !text.contains("s3cr3t-t0ken-value"),
            "the secret reached the {what}:\n{text}"
        );
    }
    assert!(
        journal_text.contains("using token=********"),
        "{journal_text}"
    );
}

const CHECK: &str = r#"
name: exec-check
summary: probes run, actions are only shown
steps:
  - {id: status, title: Read status, on: cluster, action: etcd.status}
  - {id: stop, title: Stop every member, on: each, action: etcd.stop_member, needs: [status]}
  - {id: healthy, title: Still healthy, on: cluster, action: verify.healthy, needs: [stop]}
  - {id: put, title: Write a key, on: cluster, action: etcd.kv.put, needs: [status], with: {key: /etcdrill/test/check, value: v}}
  - id: again
    title: Write another key if the first landed at revision 1
    on: cluster
    action: etcd.kv.put
    needs: [put]
    when: (eq steps.put.outputs.revision "1")
    with: {key: /etcdrill/test/check-again, value: v}
"#;

#[test]
fn check_mode_runs_probes_and_only_shows_actions() {
    let Some(bed) = bed(1) else { return };
    let work = tempfile::tempdir().unwrap();
    let inventory = write(
        work.path(),
        "inventory.yaml",
        &inventory_yaml(&bed, work.path()),
    );
    let runbook = write(work.path(), "runbook.yaml", CHECK);
    let outcome = Etcdrill::new(work.path())
        .args([
            "run",
            runbook.to_str().unwrap(),
            "-i",
            inventory.to_str().unwrap(),
            "--check",
        ])
        .run()
        .expect_code(0);
    let journal = journal(&only_run(work.path()));
    let node = bed.nodes()[0].name();
    assert_eq!(
        step_result(&journal, "status").as_deref(),
        Some("succeeded")
    );
    assert_eq!(
        step_result(&journal, &format!("stop@{node}")).as_deref(),
        Some("shown")
    );
    // The health check after the stops would read a cluster check mode did not stop.
    assert_eq!(step_result(&journal, "healthy"), None);
    assert!(
        journal.records.iter().any(|r| matches!(
            &r.event,
            Event::StepSkipped { step, reason: SkipReason::CheckMode { dependency } }
                if step == "healthy" && dependency == "stop"
        )),
        "{:#?}",
        journal.records
    );
    assert!(
        outcome
            .stderr()
            .contains("not run in check mode: depends on `stop`"),
        "{}",
        outcome.shown()
    );
    // A condition on the output of an action that was not run cannot be known: the action is
    // shown with what it would do if it held, and nothing is written.
    let (result, output) = support::step_finished(&journal, "again").unwrap();
    assert_eq!(result, StepResult::Shown, "{output}");
    assert!(
        output.contains("runs only if `(eq steps.put.outputs.revision \"1\")` holds"),
        "{output}"
    );
    assert_eq!(bed.get("/etcdrill/test/check").unwrap(), None);
    // The stop's preflight looked at the node: its manifest is where the stop expects it.
    let (_, output) = support::step_finished(&journal, &format!("stop@{node}")).unwrap();
    assert!(
        output.contains(&format!("checked on {node}:")) && output.contains("is in place"),
        "{output}"
    );
    assert!(outcome.stderr().contains("SHOWN"), "{}", outcome.shown());
    assert!(
        outcome.stderr().contains("CHECK MODE"),
        "{}",
        outcome.shown()
    );
    assert!(
        !bed.nodes()[0].etcd_pids().unwrap().is_empty(),
        "check mode stopped etcd"
    );
}

const UNDO: &str = r#"
name: exec-undo
summary: one step with a rollback, one whose rollback the runbook declines
steps:
  - id: mark
    title: Write a mark that a rollback removes
    on: each
    action: shell
    with: {run: "echo mark > /var/backups/etcd/undo-mark"}
    rollback:
      action: shell
      with: {run: "rm -f /var/backups/etcd/undo-mark"}
  - id: note
    title: Write a note nobody undoes
    on: each
    action: shell
    needs: [mark]
    with: {run: "echo note > /var/backups/etcd/undo-note"}
    rollback: none
"#;

/// `etcdrill rollback` of a run that succeeded undoes what it can and says exactly what it left.
#[test]
fn rollback_of_a_succeeded_run_reports_what_it_did_and_did_not_undo() {
    let Some(bed) = bed(1) else { return };
    let work = tempfile::tempdir().unwrap();
    let inventory = write(
        work.path(),
        "inventory.yaml",
        &inventory_yaml(&bed, work.path()),
    );
    let runbook = write(work.path(), "runbook.yaml", UNDO);
    let run = |args: &[&str]| Etcdrill::new(work.path()).args(args).run();
    run(&[
        "run",
        runbook.to_str().unwrap(),
        "-i",
        inventory.to_str().unwrap(),
        "--yes",
    ])
    .expect_code(0);
    let dir = only_run(work.path());
    let node = bed.nodes()[0].name().to_string();
    let rolled_back = run(&[
        "rollback",
        dir.to_str().unwrap(),
        "--work-dir",
        work.path().to_str().unwrap(),
    ]);
    let journal = journal(&dir);
    let events: Vec<&Event> = journal.records.iter().map(|r| &r.event).collect();
    assert!(
        events.iter().any(|e| matches!(
            e,
            Event::RollbackRequested {
                previous: Some(RunResult::Succeeded)
            }
        )),
        "{events:#?}"
    );
    assert!(
        events.iter().any(|e| matches!(
            e,
            Event::RollbackFinished { step, result: StepResult::Succeeded, .. }
                if *step == format!("mark@{node}")
        )),
        "{events:#?}"
    );
    assert!(
        events.iter().any(|e| matches!(
            e,
            Event::RollbackSkipped { step, reason: RollbackSkip::Declined }
                if *step == format!("note@{node}")
        )),
        "{events:#?}"
    );
    let node_fs = &bed.nodes()[0];
    node_fs
        .exec_ok("test ! -e /var/backups/etcd/undo-mark && test -e /var/backups/etcd/undo-note")
        .unwrap();
    // Asked for and done: not a failure, and not reported as one.
    assert_eq!(rolled_back.code(), Some(0), "{}", rolled_back.shown());
    assert!(
        rolled_back
            .stderr()
            .contains("result: ROLLED BACK as asked"),
        "{}",
        rolled_back.shown()
    );
    let report = std::fs::read_to_string(dir.join("report.md")).unwrap();
    assert!(
        report.contains("SUCCEEDED, then ROLLED BACK")
            && report.contains(&format!(
                "undid 1 step(s): `mark@{node}`; NOT undone: `note@{node}` (the runbook does not undo this step)"
            )),
        "{}\n{report}",
        rolled_back.shown()
    );
    assert!(
        !report.contains("every completed step was rolled back"),
        "{report}"
    );
}

const SLOW: &str = r#"
name: exec-resume
summary: steps slow enough to kill the controller in
steps:
  - id: first
    title: First mark
    on: each
    action: shell
    with: {run: "echo first >> /var/backups/etcd/trail"}
  - id: slow
    title: A step that takes a while
    on: each
    action: shell
    needs: [first]
    idempotent: true
    with: {run: "echo slow-start >> /var/backups/etcd/trail; sleep 4; echo slow-end >> /var/backups/etcd/trail"}
  - id: last
    title: Last mark
    on: each
    action: shell
    needs: [slow]
    with: {run: "echo last >> /var/backups/etcd/trail"}
"#;

/// Kills the controller with SIGKILL once the journal shows `wanted`, resumes, and checks the run
/// completed with a whole journal.
fn kill_then_resume(bed: &Bed, wanted: fn(&Event) -> bool) -> String {
    let work = tempfile::tempdir().unwrap();
    let inventory = write(
        work.path(),
        "inventory.yaml",
        &inventory_yaml(bed, work.path()),
    );
    let runbook = write(work.path(), "runbook.yaml", SLOW);
    bed.nodes()[0]
        .exec_ok("rm -f /var/backups/etcd/trail")
        .unwrap();
    let mut child = Etcdrill::new(work.path())
        .args([
            "run",
            runbook.to_str().unwrap(),
            "-i",
            inventory.to_str().unwrap(),
        ])
        .spawn();
    wait_for_record(work.path(), Duration::from_secs(60), |r| wanted(&r.event)).unwrap();
    child.kill().unwrap();
    child.wait().unwrap();

    let run = only_run(work.path());
    let before = journal(&run);
    assert!(
        !before
            .records
            .iter()
            .any(|r| matches!(r.event, Event::RunFinished { .. })),
        "killed too late"
    );

    // A changed runbook is a different plan: resume refuses it and runs nothing.
    std::fs::write(&runbook, SLOW.replace("Last mark", "Last mark, edited")).unwrap();
    let refused = Etcdrill::new(work.path())
        .args(["resume", run.to_str().unwrap()])
        .run()
        .expect_code(1);
    assert!(
        refused.stderr().contains("changed since run"),
        "{}",
        refused.shown()
    );
    assert_eq!(
        journal(&run).records.len(),
        before.records.len(),
        "a refused resume wrote to the journal"
    );
    std::fs::write(&runbook, SLOW).unwrap();

    Etcdrill::new(work.path())
        .args([
            "resume",
            run.to_str().unwrap(),
            "--work-dir",
            work.path().to_str().unwrap(),
        ])
        .run()
        .expect_code(0);

    let after = journal(&run);
    let seqs: Vec<u64> = after.records.iter().map(|r| r.seq).collect();
    assert_eq!(
        seqs,
        (1..=seqs.len() as u64).collect::<Vec<_>>(),
        "the journal has gaps or repeats"
    );
    assert!(
        after
            .records
            .iter()
            .any(|r| matches!(r.event, Event::RunResumed { .. }))
    );
    assert!(matches!(
        after.records.last().unwrap().event,
        Event::RunFinished {
            result: RunResult::Succeeded
        }
    ));
    bed.nodes()[0]
        .exec_ok("cat /var/backups/etcd/trail")
        .unwrap()
}

#[test]
fn a_killed_controller_resumes_inside_a_step_and_at_a_step_boundary() {
    let Some(bed) = bed(1) else { return };
    // Inside a running step: the idempotent slow step runs again.
    let trail = kill_then_resume(
        &bed,
        |e| matches!(e, Event::StepStarted { step, .. } if step.starts_with("slow@")),
    );
    let lines: Vec<&str> = trail.lines().collect();
    assert_eq!(
        lines.iter().filter(|l| **l == "first").count(),
        1,
        "{trail}"
    );
    assert_eq!(lines.last(), Some(&"last"), "{trail}");
    assert!(
        lines.iter().filter(|l| **l == "slow-start").count() >= 1,
        "{trail}"
    );

    // At a step boundary: the completed step is not run again.
    let trail = kill_then_resume(
        &bed,
        |e| matches!(e, Event::StepFinished { step, result: StepResult::Succeeded, .. } if step.starts_with("first@")),
    );
    let lines: Vec<&str> = trail.lines().collect();
    assert_eq!(
        lines.iter().filter(|l| **l == "first").count(),
        1,
        "{trail}"
    );
    assert_eq!(lines.last(), Some(&"last"), "{trail}");
}

const ROLLBACK: &str = r#"
name: exec-rollback
summary: stops every member and swaps data dirs, then fails; rollback must bring the cluster back
steps:
  - id: prepare
    title: Prepare an empty directory beside each data dir
    on: each
    action: shell
    with: {run: "rm -rf {{node.data_dir}}/.empty && mkdir -p {{node.data_dir}}/.empty/member"}
    rollback: none
  - id: stop
    title: Stop the member
    on: each
    action: etcd.stop_member
    serial: true
    needs: [{step: prepare, pairing: all}]
  - id: swap
    title: Swap in the empty directory
    on: each
    action: etcd.data_dir.replace
    needs: [{step: stop, pairing: all}]
    with: {with: "{{node.data_dir}}/.empty", keep_old_at: "{{node.data_dir}}/.kept"}
  - id: boom
    title: Fail
    on: controller
    action: shell
    needs: [swap]
    with: {run: "echo about to fail; exit 3"}
"#;

#[test]
fn a_failed_run_rolls_the_cluster_back_to_its_prior_state() {
    let Some(bed) = bed(3) else { return };
    let canary = bed.put_canary("before-rollback").unwrap();
    let members_before: Vec<String> = bed
        .member_list()
        .unwrap()
        .into_iter()
        .map(|m| m.name)
        .collect();
    let work = tempfile::tempdir().unwrap();
    let inventory = write(
        work.path(),
        "inventory.yaml",
        &inventory_yaml(&bed, work.path()),
    );
    let runbook = write(work.path(), "runbook.yaml", ROLLBACK);
    let outcome = Etcdrill::new(work.path())
        .args([
            "run",
            runbook.to_str().unwrap(),
            "-i",
            inventory.to_str().unwrap(),
            "--yes",
        ])
        .run()
        .expect_code(1);
    assert!(
        outcome
            .stderr()
            .contains("ROLLED BACK: every rollback that ran succeeded"),
        "{}",
        outcome.shown()
    );

    let journal = journal(&only_run(work.path()));
    assert_eq!(step_result(&journal, "boom").as_deref(), Some("failed"));
    assert!(matches!(
        journal.records.last().unwrap().event,
        Event::RunFinished {
            result: RunResult::RolledBack
        }
    ));
    // Undone newest first: every swap before any start.
    let undone: Vec<&str> = journal
        .records
        .iter()
        .filter_map(|r| match &r.event {
            Event::RollbackFinished {
                step,
                result: StepResult::Succeeded,
                ..
            } => Some(step.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(undone.len(), 6, "{undone:?}");
    assert!(
        undone[..3].iter().all(|s| s.starts_with("swap@"))
            && undone[3..].iter().all(|s| s.starts_with("stop@")),
        "{undone:?}"
    );

    bed.wait_healthy(Duration::from_secs(90)).unwrap();
    let members_after: Vec<String> = bed
        .member_list()
        .unwrap()
        .into_iter()
        .map(|m| m.name)
        .collect();
    assert_eq!(members_after, members_before);
    assert_eq!(
        bed.get(&canary.key).unwrap(),
        Some(canary.value.clone()),
        "the data came back"
    );
    for node in bed.nodes() {
        node.exec_ok("test -d /var/lib/etcd/.empty/member && test ! -e /var/lib/etcd/.kept/member")
            .unwrap();
    }

    // With `--on-failure stop` the cluster is left as the failure found it, for a person to
    // look at; `etcdrill rollback` undoes it later.
    let work = tempfile::tempdir().unwrap();
    let inventory = write(
        work.path(),
        "inventory.yaml",
        &inventory_yaml(&bed, work.path()),
    );
    let runbook = write(work.path(), "runbook.yaml", ROLLBACK);
    let outcome = Etcdrill::new(work.path())
        .args([
            "run",
            runbook.to_str().unwrap(),
            "-i",
            inventory.to_str().unwrap(),
            "--yes",
            "--on-failure",
            "stop",
        ])
        .run()
        .expect_code(1);
    assert!(
        outcome.stderr().contains("etcdrill rollback"),
        "{}",
        outcome.shown()
    );
    let run = only_run(work.path());
    for node in bed.nodes() {
        assert!(
            node.etcd_pids().unwrap().is_empty(),
            "{} still runs etcd",
            node.name()
        );
    }
    // `rollback` succeeds when every undo it ran succeeded (exit 1 is kept for undos that
    // failed); the run itself still failed, and its report says so.
    Etcdrill::new(work.path())
        .args(["rollback", run.to_str().unwrap()])
        .run()
        .expect_code(0);
    let report = std::fs::read_to_string(run.join("report.md")).unwrap();
    assert!(report.contains("FAILED"), "{report}");
    let after = support::journal(&run);
    assert!(matches!(
        after.records.last().unwrap().event,
        Event::RunFinished {
            result: RunResult::RolledBack
        }
    ));
    bed.wait_healthy(Duration::from_secs(90)).unwrap();
    assert_eq!(bed.get(&canary.key).unwrap(), Some(canary.value));
}

const HARMLESS: &str = "name: harmless\nsummary: reads only\nsteps:\n  - {id: look, title: Look, on: each, action: shell, with: {run: 'true'}}\n";
const DESTRUCTIVE: &str = "name: remove\nsummary: removes a member\nsteps:\n  - {id: remove, title: Remove the first member, on: cluster, action: etcd.member.remove, with: {name: NODE}}\n";
const HANG: &str = "name: hang\nsummary: a command that hangs\nsteps:\n  - {id: hang, title: Hang, on: each, action: shell, timeout: 2s, with: {run: 'sleep 600 & wait'}}\n";

#[test]
fn guards_stop_the_run_before_anything_is_destroyed() {
    let Some(bed) = bed(3) else { return };
    let first = bed.nodes()[0].name().to_string();

    // A destructive step without --yes and without a terminal: refused, nothing run.
    let work = tempfile::tempdir().unwrap();
    let inventory = write(
        work.path(),
        "inventory.yaml",
        &inventory_yaml(&bed, work.path()),
    );
    let runbook = write(
        work.path(),
        "remove.yaml",
        &DESTRUCTIVE.replace("NODE", &first),
    );
    let outcome = Etcdrill::new(work.path())
        .args([
            "run",
            runbook.to_str().unwrap(),
            "-i",
            inventory.to_str().unwrap(),
        ])
        .run()
        .expect_code(1);
    assert!(
        outcome.stderr().contains("nothing was run"),
        "{}",
        outcome.shown()
    );
    assert!(outcome.stderr().contains("--yes"), "{}", outcome.shown());
    assert!(
        outcome.stderr().contains("remove on cluster"),
        "{}",
        outcome.shown()
    );
    assert!(no_runs(work.path()));
    assert_eq!(bed.member_list().unwrap().len(), 3);

    // The same on an inventory marked production: --yes alone is not enough.
    let production =
        inventory_yaml(&bed, work.path()).replace("production: false", "production: true");
    let production = write(work.path(), "production.yaml", &production);
    let outcome = Etcdrill::new(work.path())
        .args([
            "run",
            runbook.to_str().unwrap(),
            "-i",
            production.to_str().unwrap(),
            "--yes",
        ])
        .run()
        .expect_code(1);
    assert!(
        outcome.stderr().contains("marked production"),
        "{}",
        outcome.shown()
    );
    assert!(
        outcome.stderr().contains("--allow-production"),
        "{}",
        outcome.shown()
    );
    assert!(no_runs(work.path()));
    assert_eq!(bed.member_list().unwrap().len(), 3);

    // A changed host key: refused before any step.
    let known_hosts = std::fs::read_to_string(&bed.ssh().known_hosts).unwrap();
    let other_key = work.path().join("other");
    let keygen = std::process::Command::new("ssh-keygen")
        .args([
            "-q",
            "-t",
            "ed25519",
            "-N",
            "",
            "-f",
            other_key.to_str().unwrap(),
        ])
        .status()
        .unwrap();
    assert!(keygen.success());
    let other = std::fs::read_to_string(other_key.with_extension("pub")).unwrap();
    let other_key_text = other.split_whitespace().nth(1).unwrap();
    let changed: String = known_hosts
        .lines()
        .map(|line| {
            let mut fields: Vec<&str> = line.split_whitespace().collect();
            if fields.len() >= 3 {
                fields[2] = other_key_text;
            }
            format!("{}\n", fields.join(" "))
        })
        .collect();
    let changed_path = write(work.path(), "known_hosts_changed", &changed);
    let inventory = write(
        work.path(),
        "changed.yaml",
        &inventory_with(&bed, work.path(), &changed_path),
    );
    let harmless = write(work.path(), "harmless.yaml", HARMLESS);
    let outcome = Etcdrill::new(work.path())
        .args([
            "run",
            harmless.to_str().unwrap(),
            "-i",
            inventory.to_str().unwrap(),
        ])
        .run()
        .expect_code(1);
    assert!(
        outcome.stderr().to_lowercase().contains("host key"),
        "{}",
        outcome.shown()
    );
    assert!(no_runs(work.path()));

    // An unreachable node (nothing listens on port 2): refused before any step.
    let unreachable =
        inventory_yaml(&bed, work.path()).replace(&format!("port: {}", bed.ssh().port), "port: 2");
    let inventory = write(work.path(), "unreachable.yaml", &unreachable);
    let outcome = Etcdrill::new(work.path())
        .args([
            "run",
            harmless.to_str().unwrap(),
            "-i",
            inventory.to_str().unwrap(),
        ])
        .run()
        .expect_code(1);
    assert!(
        outcome.stderr().contains("could not be reached"),
        "{}",
        outcome.shown()
    );
    assert!(no_runs(work.path()));

    // A command that hangs past its timeout is killed on the node, and the run fails.
    let inventory = write(
        work.path(),
        "inventory.yaml",
        &inventory_yaml(&bed, work.path()),
    );
    let hang = write(work.path(), "hang.yaml", HANG);
    let outcome = Etcdrill::new(work.path())
        .args([
            "run",
            hang.to_str().unwrap(),
            "-i",
            inventory.to_str().unwrap(),
        ])
        .run()
        .expect_code(1);
    let journal = journal(&only_run(work.path()));
    assert_eq!(
        step_result(&journal, &format!("hang@{first}")).as_deref(),
        Some("timed_out"),
        "{}",
        outcome.shown()
    );
    for node in bed.nodes() {
        etcdrill_testbed::wait_until(
            "the hung command to be killed",
            Duration::from_secs(30),
            || {
                // The bracket keeps pgrep from matching the shell that runs it.
                match node.exec("pgrep -f 'sleep 60[0]'") {
                    Ok(out) if out.status.code() == Some(1) => Ok(()),
                    other => Err(format!("still running: {other:?}")),
                }
            },
        )
        .unwrap();
    }
    bed.wait_healthy(Duration::from_secs(30)).unwrap();

    // Removing a member while another member is down is refused at the step, before the call.
    let down = &bed.nodes()[2];
    bed.stop_member(down).unwrap();
    let work = tempfile::tempdir().unwrap();
    let inventory = write(
        work.path(),
        "inventory.yaml",
        &inventory_yaml(&bed, work.path()),
    );
    let runbook = write(
        work.path(),
        "remove.yaml",
        &DESTRUCTIVE.replace("NODE", &first),
    );
    let outcome = Etcdrill::new(work.path())
        .args([
            "run",
            runbook.to_str().unwrap(),
            "-i",
            inventory.to_str().unwrap(),
            "--yes",
        ])
        .run()
        .expect_code(1);
    let removal = support::journal(&only_run(work.path()));
    assert_eq!(
        step_result(&removal, "remove").as_deref(),
        Some("failed"),
        "{}",
        outcome.shown()
    );
    let journal_text = serde_json::to_string(&removal.records).unwrap();
    assert!(
        journal_text.contains("while another member is unhealthy"),
        "{journal_text}"
    );
    bed.start_member(down).unwrap();
    bed.wait_healthy(Duration::from_secs(60)).unwrap();
    assert_eq!(bed.member_list().unwrap().len(), 3, "a member was removed");
}

#[test]
fn the_stock_restore_runbook_restores_a_static_pod_cluster() {
    let Some(bed) = bed(3) else { return };
    bed.seed(100, 256).unwrap();
    let kept = bed.put_canary("in-the-snapshot").unwrap();
    let first = &bed.nodes()[0];
    first
        .etcdctl(&["snapshot", "save", "/var/backups/etcd/drill.db"])
        .unwrap();
    let snapshot = first.host_path("/var/backups/etcd/drill.db").unwrap();
    let lost = bed.put_canary("after-the-snapshot").unwrap();

    let work = tempfile::tempdir().unwrap();
    let inventory = write(
        work.path(),
        "inventory.yaml",
        &inventory_yaml(&bed, work.path()),
    );
    let runbook = support::stock_runbook("restore-3-node");
    let outcome = Etcdrill::new(work.path())
        .args([
            "run",
            runbook.to_str().unwrap(),
            "-i",
            inventory.to_str().unwrap(),
            "--yes",
        ])
        .args(["-p", &format!("snapshot={}", snapshot.display())])
        // etcd 3.5.1's etcdutl has no --bump-revision.
        .args(["-p", "bump_revision=0", "-p", "mark_compacted=false"])
        .run();
    let outcome = outcome.expect_code(0);

    // Every run leaves its report beside its journal.
    let run = only_run(work.path());
    for file in [
        "report.md",
        "report.html",
        "report.json",
        "report.junit.xml",
    ] {
        assert!(
            run.join(file).is_file(),
            "{file} is missing from {:?}\n{}",
            std::fs::read_dir(&run)
                .unwrap()
                .map(|e| e.unwrap().file_name())
                .collect::<Vec<_>>(),
            outcome.shown()
        );
    }
    let markdown = std::fs::read_to_string(run.join("report.md")).unwrap();
    assert!(markdown.starts_with("# Run SUCCEEDED"), "{markdown}");
    assert!(outcome.stderr().contains("report: "), "{}", outcome.shown());

    bed.wait_healthy(Duration::from_secs(60)).unwrap();
    assert_eq!(
        bed.get(&kept.key).unwrap(),
        Some(kept.value),
        "a key in the snapshot is back"
    );
    assert_eq!(
        bed.get(&lost.key).unwrap(),
        None,
        "a key written after the snapshot is gone"
    );
    assert_eq!(bed.count_keys(etcdrill_testbed::SEED_PREFIX).unwrap(), 100);
    assert_eq!(bed.member_list().unwrap().len(), 3);
}

#[test]
fn an_interrupt_lets_running_steps_finish_and_starts_nothing_new() {
    let Some(bed) = bed(1) else { return };
    let work = tempfile::tempdir().unwrap();
    let inventory = write(
        work.path(),
        "inventory.yaml",
        &inventory_yaml(&bed, work.path()),
    );
    let runbook = write(work.path(), "runbook.yaml", SLOW);
    bed.nodes()[0]
        .exec_ok("rm -f /var/backups/etcd/trail")
        .unwrap();
    let mut child = Etcdrill::new(work.path())
        .args([
            "run",
            runbook.to_str().unwrap(),
            "-i",
            inventory.to_str().unwrap(),
        ])
        .spawn();
    wait_for_record(
        work.path(),
        Duration::from_secs(60),
        |r| matches!(&r.event, Event::StepStarted { step, .. } if step.starts_with("slow@")),
    )
    .unwrap();
    let interrupted = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(interrupted.success());
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(1));

    let run = only_run(work.path());
    let journal = journal(&run);
    let node = bed.nodes()[0].name();
    assert!(
        journal
            .records
            .iter()
            .any(|r| matches!(r.event, Event::Interrupted { .. }))
    );
    assert_eq!(
        step_result(&journal, &format!("slow@{node}")).as_deref(),
        Some("succeeded"),
        "the running step finished"
    );
    assert!(
        journal.records.iter().any(
            |r| matches!(&r.event, Event::StepSkipped { step, .. } if step.starts_with("last@"))
        )
    );
    assert!(matches!(
        journal.records.last().unwrap().event,
        Event::RunFinished {
            result: RunResult::Interrupted
        }
    ));
    let trail = bed.nodes()[0]
        .exec_ok("cat /var/backups/etcd/trail")
        .unwrap();
    assert!(
        trail.ends_with("slow-end\n") && !trail.contains("last"),
        "{trail}"
    );
}
