//! Support shared by the integration tests: the one builder that runs the real `etcdrill` binary
//! ([`Etcdrill`], in `command.rs`), the repository's root, and what the tests against the test bed
//! share (an inventory describing a bed, a run of a stock runbook, the journal's records).

mod command;

pub use command::{Etcdrill, Outcome, binary};

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use etcdrill::journal::{Event, Journal, Record, StepResult};
use etcdrill_testbed::{Bed, BedConfig, require};

/// The repository's root (the parent of the `engine` crate), where `runbooks/`, `drills/`,
/// `deploy/` and `tests/corpus/` are.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the engine crate is in the repository")
        .to_owned()
}

/// Starts a bed, or returns `None` where beds cannot run (the test then passes as skipped, except
/// on CI, where `require` fails it).
pub fn bed(config: BedConfig) -> Option<Bed> {
    if !require(&config) {
        return None;
    }
    Some(Bed::start(config).expect("the test bed starts"))
}

/// An etcdrill inventory for `bed`, with runs kept under `work_dir`.
pub fn inventory_yaml(bed: &Bed, work_dir: &Path) -> String {
    bed.etcdrill_inventory(work_dir, &bed.ssh().known_hosts)
}

/// An inventory for `bed` that trusts the host keys in `known_hosts`.
pub fn inventory_with(bed: &Bed, work_dir: &Path, known_hosts: &Path) -> String {
    bed.etcdrill_inventory(work_dir, known_hosts)
}

/// The only run directory under `work_dir`.
pub fn only_run(work_dir: &Path) -> PathBuf {
    let runs: Vec<PathBuf> = std::fs::read_dir(work_dir.join("runs"))
        .map(|entries| {
            entries
                .map(|e| e.expect("a directory entry").path())
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(
        runs.len(),
        1,
        "expected one run under {}: {runs:?}",
        work_dir.display()
    );
    runs.into_iter().next().expect("one run")
}

/// Whether `work_dir` holds no run at all.
pub fn no_runs(work_dir: &Path) -> bool {
    std::fs::read_dir(work_dir.join("runs")).map_or(true, |mut e| e.next().is_none())
}

/// The run's journal.
pub fn journal(run: &Path) -> Journal {
    Journal::read(&run.join("journal.jsonl")).expect("the journal reads")
}

/// The result of the last `StepFinished` of `step`, as `succeeded`, `failed`, `shown`...
pub fn step_result(journal: &Journal, step: &str) -> Option<String> {
    journal.records.iter().rev().find_map(|r| match &r.event {
        Event::StepFinished {
            step: s, result, ..
        } if s == step => Some(
            serde_json::to_value(result).expect("serialises")["kind"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        ),
        _ => None,
    })
}

/// How `step`'s last attempt ended and the end of its output.
pub fn step_finished(journal: &Journal, step: &str) -> Option<(StepResult, String)> {
    journal.records.iter().rev().find_map(|r| match &r.event {
        Event::StepFinished {
            step: s,
            result,
            output_tail,
            ..
        } if s == step => Some((result.clone(), output_tail.clone())),
        _ => None,
    })
}

/// The outputs of `step`'s last successful attempt.
pub fn step_outputs(journal: &Journal, step: &str) -> std::collections::BTreeMap<String, String> {
    journal
        .records
        .iter()
        .rev()
        .find_map(|r| match &r.event {
            Event::StepFinished {
                step: s, outputs, ..
            } if s == step => Some(outputs.clone()),
            _ => None,
        })
        .unwrap_or_default()
}

/// Waits until a journal under `work_dir` holds a record matching `wanted`, within `timeout`.
pub fn wait_for_record(
    work_dir: &Path,
    timeout: Duration,
    wanted: impl Fn(&Record) -> bool,
) -> Result<(), String> {
    etcdrill_testbed::wait_until("the journal to show the awaited event", timeout, || {
        let runs =
            std::fs::read_dir(work_dir.join("runs")).map_err(|e| format!("no runs yet: {e}"))?;
        for run in runs.flatten() {
            if let Ok(journal) = Journal::read(&run.path().join("journal.jsonl")) {
                if journal.records.iter().any(&wanted) {
                    return Ok(());
                }
                return Err(format!("{} records, none matches", journal.records.len()));
            }
        }
        Err("no journal yet".into())
    })
    .map_err(|e| e.to_string())
}

/// Writes `text` as a file in `dir` and returns its path.
pub fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("a test file writes");
    path
}

/// The path of a stock runbook, `runbooks/NAME.yaml`.
pub fn stock_runbook(name: &str) -> PathBuf {
    repo().join("runbooks").join(format!("{name}.yaml"))
}

/// An inventory for `bed` whose static pods park their manifests in `parked_dir` (where the
/// cluster's administrator moves a manifest to stop a member by hand), with runs under `work_dir`.
pub fn inventory_parking_at(bed: &Bed, work_dir: &Path, parked_dir: &str) -> String {
    let yaml = inventory_yaml(bed, work_dir);
    let default = "management: {static_pod: {}}";
    assert!(yaml.contains(default), "a static pod inventory: {yaml}");
    yaml.replace(
        default,
        &format!("management: {{static_pod: {{parked_dir: {parked_dir:?}}}}}"),
    )
}

/// What a run left for diagnosis: everything it printed, then its report, when there is one.
pub fn diagnosis(outcome: &Outcome, work_dir: &Path) -> String {
    let report = std::fs::read_dir(work_dir.join("runs"))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|run| std::fs::read_to_string(run.path().join("report.md")).ok())
        .collect::<Vec<_>>()
        .join("\n");
    format!("{}\n--- report.md\n{report}", outcome.shown())
}

/// One `etcdrill run` of a stock runbook with `--yes`, in a work dir of its own.
pub struct Run {
    /// The work dir, holding `inventory.yaml` and `runs/`.
    pub work: tempfile::TempDir,
    /// How the run ended.
    pub outcome: Outcome,
    /// Its wall time.
    pub took: Duration,
}

impl Run {
    /// Runs `runbooks/RUNBOOK.yaml` on the inventory `inventory` wrote with `-p` `params`.
    pub fn stock<P: AsRef<str>>(
        bed: &Bed,
        runbook: &str,
        params: &[P],
        inventory: impl FnOnce(&Bed, &Path) -> String,
    ) -> Run {
        Self::start(bed, runbook, params, inventory, "--yes")
    }

    /// `etcdrill run --check` of `runbooks/RUNBOOK.yaml`, as [`Run::stock`] runs it.
    pub fn check<P: AsRef<str>>(
        bed: &Bed,
        runbook: &str,
        params: &[P],
        inventory: impl FnOnce(&Bed, &Path) -> String,
    ) -> Run {
        Self::start(bed, runbook, params, inventory, "--check")
    }

    fn start<P: AsRef<str>>(
        bed: &Bed,
        runbook: &str,
        params: &[P],
        inventory: impl FnOnce(&Bed, &Path) -> String,
        mode: &str,
    ) -> Run {
        let work = tempfile::tempdir().unwrap();
        let inventory = write(work.path(), "inventory.yaml", &inventory(bed, work.path()));
        let mut command = Etcdrill::new(work.path()).args([
            "run".as_ref(),
            stock_runbook(runbook).as_os_str(),
            "-i".as_ref(),
            inventory.as_os_str(),
            mode.as_ref(),
        ]);
        for param in params {
            command = command.args(["-p", param.as_ref()]);
        }
        let started = Instant::now();
        let outcome = command.run();
        let took = started.elapsed();
        let run = Run {
            work,
            outcome,
            took,
        };
        eprintln!("etcdrill run {runbook}: {took:.1?}\n{}", run.timeline());
        run
    }

    /// Everything the run printed and its report, with the bed's log tails.
    pub fn diagnosis(&self, bed: &Bed) -> String {
        format!(
            "{}\n--- bed{}",
            diagnosis(&self.outcome, self.work.path()),
            bed.diagnostics()
        )
    }

    /// Panics with the diagnosis unless the run succeeded.
    pub fn expect_success(&self, bed: &Bed) {
        assert_eq!(self.outcome.code(), Some(0), "{}", self.diagnosis(bed));
    }

    /// The run's directory.
    pub fn dir(&self) -> PathBuf {
        only_run(self.work.path())
    }

    /// Every step attempt that ran, with its result and time, in journal order (shown with
    /// `--nocapture`).
    pub fn timeline(&self) -> String {
        if no_runs(self.work.path()) {
            return "  (no run directory)\n".into();
        }
        journal(&self.dir())
            .records
            .iter()
            .filter_map(|r| match &r.event {
                Event::StepFinished {
                    step,
                    attempt,
                    result,
                    duration_ms,
                    ..
                } => Some(format!(
                    "  {step} #{attempt}: {} ({duration_ms} ms)\n",
                    serde_json::to_string(result).unwrap()
                )),
                _ => None,
            })
            .collect()
    }

    /// The run's journal.
    pub fn journal(&self) -> Journal {
        journal(&self.dir())
    }
}
