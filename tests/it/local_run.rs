//! A small run of shell steps on the controller (no test bed, no SSH, no etcd): the progress lines
//! etcdrill prints without a terminal (`exec/progress.rs`: a step's start, that it is still
//! running, its end, a failure with its output, a skip and the result) and the JUnit report it
//! writes (`report/junit.rs`), pinned by insta snapshots after durations, timestamps, run ids and
//! the temp dir are redacted.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::Child;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::support::{Etcdrill, only_run, write};

/// Passes, waits for a file the test creates, fails, and leaves a step that never runs.
const RUNBOOK: &str = "\
name: local
summary: Controller steps whose progress and report the tests pin
params:
  gate: {type: path, description: The file the waiting step waits for}
steps:
  - {id: hello, title: Say hello, on: controller, action: shell, probe: true, with: {run: 'echo hello from the controller'}}
  - id: wait
    title: Wait for the gate
    on: controller
    action: shell
    probe: true
    needs: [hello]
    with: {run: 'while [ ! -e {{params.gate}} ]; do sleep 0.1; done; echo through the gate'}
  - id: broken
    title: Fail on purpose
    on: controller
    action: shell
    probe: true
    needs: [wait]
    with: {run: 'echo it broke >&2; exit 3'}
  - {id: after, title: After the failure, on: controller, action: shell, probe: true, needs: [broken], with: {run: 'echo never'}}
";

/// The steps all run on the controller; the node is never reached.
const INVENTORY: &str = "\
name: lab
defaults:
  etcd:
    management: {static_pod: {}}
nodes:
  - {name: cp1, address: 10.0.0.1}
";

/// Longest a run may take before the test calls it a hang: far more than the heartbeat's 10 s.
const HANG: Duration = Duration::from_secs(120);

/// What changes from run to run, in progress lines and in JUnit XML.
fn filters() -> Vec<(&'static str, &'static str)> {
    vec![
        (r"\d{8}T\d{6}Z-local-[0-9a-f]+", "[RUN_ID]"),
        // Durations as `humanize::human_ms` writes them: `450 ms`, `6.0 s`, `2 min 03 s`.
        (
            r"\((\d+ ms|\d+\.\d s|\d+ min \d+ s|\d+ h \d+ min)\)",
            "([DURATION])",
        ),
        (r#"time="[0-9.]+""#, r#"time="[SECONDS]""#),
        (r#"timestamp="[^"]+""#, r#"timestamp="[TIMESTAMP]""#),
        (
            r#"name="total_ms" value="\d+""#,
            r#"name="total_ms" value="[MS]""#,
        ),
        (
            r#"name="total" value="[^"]+""#,
            r#"name="total" value="[DURATION]""#,
        ),
    ]
}

/// A work dir holding the runbook and the inventory; runs go to its `w/`.
fn work_dir() -> TempDir {
    let work = tempfile::tempdir().unwrap();
    write(work.path(), "rb.yaml", RUNBOOK);
    write(work.path(), "inv.yaml", INVENTORY);
    work
}

/// `etcdrill run` of the runbook in `work`, its waiting step waiting for `gate`.
fn run(work: &Path, gate: &Path) -> Etcdrill {
    Etcdrill::new(work)
        .args(["run", "rb.yaml", "-i", "inv.yaml", "--work-dir", "w", "-p"])
        .arg(format!("gate={}", gate.display()))
}

/// A running etcdrill, killed if the test ends first (its waiting step would wait forever).
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn progress_lines_without_a_terminal() {
    let work = work_dir();
    let gate = work.path().join("gate");
    let mut running = Running(run(work.path(), &gate).spawn());
    let stderr = running.0.stderr.take().expect("standard error is piped");
    let (sender, lines) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if sender.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + HANG;
    let mut printed: Vec<String> = Vec::new();
    // The waiting step runs until the gate opens, so the heartbeat has to say it is still running.
    let mut gate_open = false;
    loop {
        match lines.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(line) => {
                if !gate_open && line.contains("still running") {
                    std::fs::write(&gate, "").unwrap();
                    gate_open = true;
                }
                printed.push(line);
            }
            Err(RecvTimeoutError::Disconnected) => break,
            Err(RecvTimeoutError::Timeout) => panic!(
                "the run did not end within {HANG:?} (the gate opens at the first `still running` line):\n{}",
                printed.join("\n")
            ),
        }
    }
    reader.join().unwrap();
    let printed = printed.join("\n");
    assert!(gate_open, "no `still running` line:\n{printed}");
    let status = running.0.wait().unwrap();
    assert_eq!(status.code(), Some(1), "{printed}");
    let printed = printed.replace(&work.path().display().to_string(), "[TEMP]");
    insta::with_settings!({filters => filters()}, {
        insta::assert_snapshot!("progress_lines", printed);
    });
}

#[test]
fn the_junit_report_has_a_case_per_step() {
    let work = work_dir();
    let gate = write(work.path(), "gate", "");
    run(work.path(), &gate).run().expect_code(1);
    let junit = std::fs::read_to_string(only_run(&work.path().join("w")).join("report.junit.xml"))
        .expect("the run wrote report.junit.xml");
    insta::with_settings!({filters => filters()}, {
        insta::assert_snapshot!("junit", junit);
    });
}
