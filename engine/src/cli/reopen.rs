//! Reopening a run for `resume`, `rollback` and `report`: what it was started with (its
//! `run.json`), secrets given again, the node facts, and the same plan compiled again.

use std::path::{Path, PathBuf};

use clap::Args;

use super::CliError;
use super::execute::node_facts_since;
use super::load::{read, read_inventory};
use crate::document::Document;
use crate::exec;
use crate::exec::progress::Reporter;
use crate::exec::run_dir::{RunDir, RunDirError};
use crate::inventory::Cluster;
use crate::plan::{ParamInput, Plan, compile};
use crate::runbook::Runbook;
use crate::runbook::builtin::Builtin;

/// The run a command continues, undoes or reports on.
#[derive(Debug, Args)]
pub struct RunRefArgs {
    /// The run: its directory, or its id under the work dir's `runs/`.
    pub run: String,
    /// Secret parameter values again (they are never stored), as `NAME=VALUE`, `NAME=@FILE` or
    /// `NAME=@-`, or in `ETCDRILL_PARAM_<NAME>`; other values come from the run.
    #[arg(short = 'p', long = "param", value_name = "NAME=VALUE")]
    pub params: Vec<String>,
    /// Where the run's directory is (default: `.etcdrill`).
    #[arg(long, value_name = "DIR")]
    pub work_dir: Option<PathBuf>,
}

/// A run reopened: what it was started with, compiled again.
pub(super) struct Reopened {
    /// Its directory.
    pub dir: RunDir,
    /// Its runbook.
    pub runbook: Document<Runbook>,
    /// Its inventory, filled and checked by the node facts.
    pub cluster: Cluster,
    /// Its parameters, secrets given again.
    pub inputs: Vec<ParamInput>,
    /// The plan, the same as the run's.
    pub plan: Plan,
    /// The facts gathered now from the nodes (none when they were read from the run).
    pub facts: Vec<crate::facts::NodeFacts>,
}

/// Loads what a run was started with, secrets given again with `-p`, and compiles it.
pub(super) fn reopen(args: &RunRefArgs, facts: Facts<'_>) -> Result<Reopened, CliError> {
    let work_dir = args
        .work_dir
        .clone()
        .unwrap_or_else(|| PathBuf::from(".etcdrill"));
    let dir = RunDir::open(&args.run, &work_dir).map_err(|err| match err {
        RunDirError::NotFound(run) => CliError::NoRun {
            newest: newest_runs(&work_dir.join("runs"), 3),
            runs: work_dir.join("runs"),
            run,
        },
        other => exec::ExecError::from(other).into(),
    })?;
    let record = dir.read_record().map_err(exec::ExecError::from)?;
    // Secrets are never stored: they come again with -p, or from the environment.
    let secret_names = record
        .params
        .iter()
        .filter(|p| p.value.is_none())
        .map(|p| p.name.as_str());
    let declared: Vec<&str> = record.params.iter().map(|p| p.name.as_str()).collect();
    let given = super::param_source::with_environment(
        secret_names,
        super::param_inputs(&args.params, &declared)?,
        super::param_source::process_env,
    );
    // Files are read where run.json says (absolute), and named as the plan named them.
    let named = |source: crate::source::SourceFile, path: &Path| {
        crate::source::SourceFile::new(path, source.text())
    };
    let runbook = match Builtin::at(&record.runbook) {
        Some(builtin) => Runbook::load(builtin.source())?,
        None => Runbook::load(named(read(&record.runbook)?, record.runbook_shown()))?,
    };
    let mut cluster = Cluster::load(named(
        read_inventory(&record.inventory)?,
        record.inventory_shown(),
    ))?;
    let mut inputs = Vec::new();
    for recorded in &record.params {
        match (
            &recorded.value,
            given.iter().find(|g| g.name == recorded.name),
        ) {
            (Some(value), _) => {
                let mut input = ParamInput {
                    name: recorded.name.clone(),
                    value: value.clone(),
                    source: crate::source::SourceFile::new(dir.path.join("run.json"), ""),
                    location: None,
                };
                // A value given again must be the one the run started with.
                if let Some(again) = given.iter().find(|g| g.name == recorded.name) {
                    if &again.value != value {
                        return Err(exec::ExecError::Refused(format!(
                            "parameter `{}` was {:?} when run {} started; resume and rollback keep it",
                            recorded.name, value, dir.id
                        ))
                        .into());
                    }
                    input = again.clone();
                }
                inputs.push(input);
            }
            (None, Some(secret)) if record.secret_matches(&recorded.name, &secret.value) => {
                inputs.push(secret.clone())
            }
            (None, Some(_)) => {
                return Err(exec::ExecError::Refused(format!(
                    "secret parameter `{}` differs from the one run {} started with",
                    recorded.name, dir.id
                ))
                .into());
            }
            (None, None) => {
                return Err(exec::ExecError::Refused(format!(
                    "secret parameter `{}` is never stored: give it again with `-p {}=@FILE`, `-p {}=@-` or {}",
                    recorded.name,
                    recorded.name,
                    recorded.name,
                    super::param_source::env_name(&recorded.name)
                ))
                .into());
            }
        }
    }
    // The same facts fill the inventory again, so the plan is the one the run started with:
    // gathered again from the nodes to resume or roll back, the run's own record to report.
    let before_facts = compile(&runbook, &cluster, &inputs)?;
    let facts = match facts {
        // What the run started from fills the inventory: its own steps may have changed what the
        // nodes say since (a repointed data volume), and the plan must be the one it started with.
        Facts::Gather(reporter) => node_facts_since(
            &mut cluster,
            &before_facts,
            reporter,
            crate::facts::read(&dir.path),
        )?,
        Facts::Recorded => {
            if let Some(recorded) = crate::facts::read(&dir.path) {
                crate::facts::reconcile(&mut cluster, &recorded)?;
            }
            Vec::new()
        }
    };
    let plan = compile(&runbook, &cluster, &inputs)?;
    Ok(Reopened {
        dir,
        runbook,
        cluster,
        inputs,
        plan,
        facts,
    })
}

/// Where [`reopen`] takes the node facts that fill the inventory from.
pub(super) enum Facts<'r> {
    /// From the nodes, now, shown through this reporter.
    Gather(&'r mut Reporter),
    /// From the run's `facts.json`, without touching any node.
    Recorded,
}

/// The ids of the newest `count` runs under `runs`, newest first (run ids sort by time).
fn newest_runs(runs: &Path, count: usize) -> Vec<String> {
    let mut ids: Vec<String> = std::fs::read_dir(runs)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter(|e| e.path().join("run.json").is_file())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    ids.sort_unstable_by(|a, b| b.cmp(a));
    ids.truncate(count);
    ids
}
