//! `run`, `resume` and `rollback`: the commands that touch a cluster. They compile exactly as
//! `plan` does, then hand the plan to the executor.

use std::path::PathBuf;

use clap::{Args, ValueEnum};
use tokio::sync::watch;

use super::{CliError, load_all, read};
use crate::document::Document;
use crate::exec::progress::Reporter;
use crate::exec::run_dir::{RunDir, RunRecord};
use crate::exec::{self, OnFailure, RunInputs, RunOptions, RunSummary, TerminalPrompter};
use crate::inventory::Cluster;
use crate::journal::{Journal, RunResult, Timestamp};
use crate::plan::{ParamInput, Plan, compile};
use crate::report::{self, DrillFacts, Report, ReportContext};
use crate::runbook::Runbook;

/// How progress is shown.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// Progress for people on standard error.
    #[default]
    Human,
    /// The journal's events as JSON lines on standard output.
    Json,
}

/// Options shared by the commands that run steps.
#[derive(Debug, Args)]
pub struct ExecArgs {
    /// Consent to destructive steps and confirmation gates without being asked.
    #[arg(long)]
    pub yes: bool,
    /// Consent to destructive steps on an inventory marked `production: true`.
    #[arg(long)]
    pub allow_production: bool,
    /// Most steps running at once.
    #[arg(long, default_value_t = 8, value_name = "N")]
    pub concurrency: usize,
    /// After a failure: undo the completed steps (`rollback`), or leave everything for a person (`stop`).
    #[arg(long, value_enum, default_value_t)]
    pub on_failure: OnFailure,
    /// How progress is shown.
    #[arg(long, value_enum, default_value_t)]
    pub output: Output,
    /// Where run directories go (default: the inventory's `controller.work_dir`, else `.etcdrill`).
    #[arg(long, value_name = "DIR")]
    pub work_dir: Option<PathBuf>,
    /// After the run, update this Prometheus textfile (node_exporter's textfile collector):
    /// last run, last success, and the time and size of the last good backup.
    #[arg(long, value_name = "FILE")]
    pub metrics_textfile: Option<PathBuf>,
}

/// Arguments of `etcdrill run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The runbook file.
    pub runbook: PathBuf,
    /// The inventory file of the cluster to run against.
    #[arg(short, long, value_name = "FILE")]
    pub inventory: PathBuf,
    /// A parameter value; repeat for several.
    #[arg(short = 'p', long = "param", value_name = "NAME=VALUE")]
    pub params: Vec<String>,
    /// Check mode: probes run live against the cluster, actions are rendered and shown, not run.
    #[arg(long)]
    pub check: bool,
    /// Options shared with resume.
    #[command(flatten)]
    pub exec: ExecArgs,
}

/// Arguments of `etcdrill resume` and `etcdrill rollback`.
#[derive(Debug, Args)]
pub struct RunRefArgs {
    /// The run: its directory, or its id under the work dir's `runs/`.
    pub run: String,
    /// Secret parameter values again (they are never stored); other values come from the run.
    #[arg(short = 'p', long = "param", value_name = "NAME=VALUE")]
    pub params: Vec<String>,
    /// Options shared with run.
    #[command(flatten)]
    pub exec: ExecArgs,
}

/// `etcdrill run`.
pub(super) fn run(args: &RunArgs) -> Result<(), CliError> {
    let (runbook, mut cluster, inputs) = load_all(&args.runbook, &args.inventory, &args.params)?;
    let mut reporter = reporter(args.exec.output);
    let before_facts = compile(&runbook, &cluster, &inputs)?;
    let facts = node_facts(&mut cluster, &before_facts, &mut reporter)?;
    let plan = compile(&runbook, &cluster, &inputs)?;
    let work_dir = work_dir(&args.exec, &cluster);
    let secrets = secret_values(&runbook, &inputs);
    let options = options(&args.exec, args.check);
    let record = |dir: &RunDir| {
        // What the nodes said, beside the plan they shaped (best effort: the run does not
        // depend on the copy).
        let _ = crate::facts::write(&dir.path, &facts);
        RunRecord::with_params(
            &dir.id,
            (&args.runbook, &args.inventory),
            args.check,
            &runbook.value,
            &inputs,
        )
    };
    let summary = with_runtime(|shutdown| async {
        let inputs = RunInputs {
            runbook: &runbook,
            cluster: &cluster,
            params: &inputs,
            plan: &plan,
            secrets: secrets.clone(),
        };
        exec::run(
            inputs,
            options,
            &mut TerminalPrompter,
            &mut reporter,
            &work_dir,
            record,
            shutdown,
        )
        .await
    })?;
    finish(&plan, &summary, &secrets, &args.exec, &mut reporter)
}

/// `etcdrill resume`.
pub(super) fn resume(args: &RunRefArgs) -> Result<(), CliError> {
    let (dir, runbook, cluster, inputs, plan) = reopen(args)?;
    let options = options(
        &args.exec,
        dir.read_record().map_err(exec::ExecError::from)?.check,
    );
    let secrets = secret_values(&runbook, &inputs);
    let mut reporter = reporter(args.exec.output);
    let summary = with_runtime(|shutdown| async {
        let inputs = RunInputs {
            runbook: &runbook,
            cluster: &cluster,
            params: &inputs,
            plan: &plan,
            secrets: secrets.clone(),
        };
        exec::resume(
            inputs,
            options,
            &mut TerminalPrompter,
            &mut reporter,
            dir,
            shutdown,
        )
        .await
    })?;
    finish(&plan, &summary, &secrets, &args.exec, &mut reporter)
}

/// `etcdrill rollback`.
pub(super) fn rollback(args: &RunRefArgs) -> Result<(), CliError> {
    let (dir, runbook, cluster, inputs, plan) = reopen(args)?;
    let secrets = secret_values(&runbook, &inputs);
    let mut reporter = reporter(args.exec.output);
    let summary = with_runtime(|_shutdown| async {
        let inputs = RunInputs {
            runbook: &runbook,
            cluster: &cluster,
            params: &inputs,
            plan: &plan,
            secrets: secrets.clone(),
        };
        exec::rollback(inputs, &mut reporter, dir).await
    })?;
    finish(&plan, &summary, &secrets, &args.exec, &mut reporter)
}

/// `etcdrill report`: writes a run's report again from its plan and journal.
pub(super) fn report(args: &RunRefArgs) -> Result<(), CliError> {
    let (dir, runbook, _cluster, inputs, plan) = reopen(args)?;
    let mut reporter = reporter(args.exec.output);
    write_report(
        &plan,
        &dir,
        &secret_values(&runbook, &inputs),
        &mut reporter,
    )
}

/// Writes the run's report, then maps its result to the command's outcome.
fn finish(
    plan: &Plan,
    summary: &RunSummary,
    secrets: &[String],
    exec: &ExecArgs,
    reporter: &mut Reporter,
) -> Result<(), CliError> {
    let journal = read_journal(&summary.dir)?;
    write_report_from(plan, &summary.dir, &journal, secrets, None, reporter)?;
    if let Some(path) = &exec.metrics_textfile {
        let sample = report::metrics::run_sample(plan, &journal, summary.result);
        crate::textfile::update(path, &sample).map_err(CliError::Metrics)?;
        reporter.note(&format!("metrics: {}", path.display()));
    }
    conclude(summary)
}

/// Computes the report from the plan and the journal and writes it into the run directory.
fn write_report(
    plan: &Plan,
    dir: &RunDir,
    secrets: &[String],
    reporter: &mut Reporter,
) -> Result<(), CliError> {
    write_report_with(plan, dir, secrets, None, reporter).map(|_| ())
}

/// Like [`write_report`], with a drill's measurements; returns the report.
fn write_report_with(
    plan: &Plan,
    dir: &RunDir,
    secrets: &[String],
    drill: Option<DrillFacts>,
    reporter: &mut Reporter,
) -> Result<Report, CliError> {
    write_report_from(plan, dir, &read_journal(dir)?, secrets, drill, reporter)
}

fn read_journal(dir: &RunDir) -> Result<Journal, CliError> {
    Ok(Journal::read(&dir.journal()).map_err(exec::ExecError::from)?)
}

/// Computes the report from the plan and `journal` (the run's, already read) and writes it.
fn write_report_from(
    plan: &Plan,
    dir: &RunDir,
    journal: &Journal,
    secrets: &[String],
    drill: Option<DrillFacts>,
    reporter: &mut Reporter,
) -> Result<Report, CliError> {
    let context = ReportContext {
        run_dir: Some(dir.path.clone()),
        record: dir.read_record().ok(),
        drill,
        generated_at: Some(Timestamp::now()),
        secrets: secrets.to_vec(),
    };
    let built = Report::build(plan, journal, context);
    let written = report::write_all(&dir.path, &built)?;
    if let Some(path) = written
        .iter()
        .find(|p| p.extension().is_some_and(|e| e == "md"))
    {
        reporter.note(&format!(
            "report: {} ({})",
            path.display(),
            built.verdict.title
        ));
    }
    Ok(built)
}

type Reopened = (RunDir, Document<Runbook>, Cluster, Vec<ParamInput>, Plan);

/// Loads what a run was started with, secrets given again with `-p`, and compiles it.
fn reopen(args: &RunRefArgs) -> Result<Reopened, CliError> {
    let work_dir = args
        .exec
        .work_dir
        .clone()
        .unwrap_or_else(|| PathBuf::from(".etcdrill"));
    let dir = RunDir::open(&args.run, &work_dir).map_err(exec::ExecError::from)?;
    let record = dir.read_record().map_err(exec::ExecError::from)?;
    let given = super::param_inputs(&args.params)?;
    let runbook = Runbook::load(read(&record.runbook)?)?;
    let mut cluster = Cluster::load(read(&record.inventory)?)?;
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
                    "secret parameter `{}` is never stored: give it again with `-p {}=...`",
                    recorded.name, recorded.name
                ))
                .into());
            }
        }
    }
    // The same facts fill the inventory again, so the plan is the one the run started with.
    let before_facts = compile(&runbook, &cluster, &inputs)?;
    node_facts(&mut cluster, &before_facts, &mut reporter(args.exec.output))?;
    let plan = compile(&runbook, &cluster, &inputs)?;
    Ok((dir, runbook, cluster, inputs, plan))
}

/// Gathers the facts of the nodes `plan` runs commands on, shows them, and reconciles the
/// inventory with them: a stated field the node contradicts refuses the run; a field left out
/// takes the node's value (the plan is then compiled again).
fn node_facts(
    cluster: &mut Cluster,
    plan: &Plan,
    reporter: &mut Reporter,
) -> Result<Vec<crate::facts::NodeFacts>, CliError> {
    let names = crate::facts::nodes_touched(plan);
    if names.is_empty() {
        return Ok(Vec::new());
    }
    let started = std::time::Instant::now();
    let facts = with_runtime(|_| async { Ok(crate::facts::gather(cluster, &names).await?) })?;
    reporter.note(&format!(
        "{} (gathered in {:.1} s)",
        crate::facts::summary(&facts),
        started.elapsed().as_secs_f64()
    ));
    for filled in crate::facts::reconcile(cluster, &facts)? {
        reporter.note(&format!("  taken from the node: {filled}"));
    }
    Ok(facts)
}

fn work_dir(exec: &ExecArgs, cluster: &Cluster) -> PathBuf {
    exec.work_dir
        .clone()
        .or_else(|| {
            cluster
                .inventory()
                .controller
                .work_dir
                .clone()
                .map(PathBuf::from)
        })
        .unwrap_or_else(|| PathBuf::from(".etcdrill"))
}

fn options(exec: &ExecArgs, check: bool) -> RunOptions {
    RunOptions {
        check,
        yes: exec.yes,
        allow_production: exec.allow_production,
        concurrency: exec.concurrency,
        on_failure: exec.on_failure,
    }
}

fn reporter(output: Output) -> Reporter {
    match output {
        Output::Human => Reporter::human(),
        Output::Json => Reporter::json(Box::new(std::io::stdout())),
    }
}

/// The values of secret parameters, given or defaulted, so that output can mask them.
fn secret_values(runbook: &Document<Runbook>, inputs: &[ParamInput]) -> Vec<String> {
    runbook
        .value
        .params
        .iter()
        .filter(|(_, spec)| spec.secret)
        .filter_map(|(name, spec)| {
            inputs
                .iter()
                .find(|i| &i.name == name)
                .map(|i| i.value.clone())
                .or_else(|| spec.default.clone())
        })
        .filter_map(|value| match value {
            serde_yaml::Value::String(text) => Some(text),
            other => serde_yaml::to_string(&other)
                .ok()
                .map(|t| t.trim().to_owned()),
        })
        .collect()
}

/// Runs `body` on a runtime, with Ctrl-C and SIGTERM counted into a watch channel: the first
/// asks the run to stop starting steps, the second abandons running ones.
fn with_runtime<F, T>(body: impl FnOnce(watch::Receiver<u32>) -> F) -> Result<T, CliError>
where
    F: std::future::Future<Output = Result<T, exec::ExecError>>,
{
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(CliError::Runtime)?;
    runtime.block_on(async {
        let (stop, shutdown) = watch::channel(0u32);
        let signals = tokio::spawn(async move {
            let Ok(mut terminate) =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            else {
                return;
            };
            loop {
                tokio::select! {
                    interrupted = tokio::signal::ctrl_c() => if interrupted.is_err() { return },
                    _ = terminate.recv() => {}
                }
                stop.send_modify(|count| *count += 1);
            }
        });
        let result = body(shutdown).await;
        signals.abort();
        result.map_err(CliError::from)
    })
}

fn conclude(summary: &RunSummary) -> Result<(), CliError> {
    match summary.result {
        RunResult::Succeeded => Ok(()),
        result => Err(CliError::RunFailed {
            result,
            dir: summary.dir.path.clone(),
        }),
    }
}

/// Arguments of `etcdrill drill`.
#[derive(Debug, Args)]
pub struct DrillArgs {
    /// What to do with a drill.
    #[command(subcommand)]
    pub command: DrillCommand,
}

/// A drill subcommand.
#[derive(Debug, clap::Subcommand)]
pub enum DrillCommand {
    /// Stage the drill's disaster, run its runbook, verify the recovery and write the report.
    Run(DrillRunArgs),
}

/// Arguments of `etcdrill drill run`.
#[derive(Debug, Args)]
pub struct DrillRunArgs {
    /// The drill file.
    pub drill: PathBuf,
    /// Options shared with run.
    #[command(flatten)]
    pub exec: ExecArgs,
}

/// `etcdrill drill run`.
pub(super) fn drill(args: &DrillArgs) -> Result<(), CliError> {
    let DrillCommand::Run(args) = &args.command;
    let prepared = crate::drill::prepare(&args.drill, args.exec.work_dir.as_deref())?;
    let work_dir = work_dir(&args.exec, &prepared.cluster);
    let options = options(&args.exec, false);
    let mut reporter = reporter(args.exec.output);
    let outcome = with_runtime(|shutdown| async {
        crate::drill::run(
            &prepared,
            options,
            &mut TerminalPrompter,
            &mut reporter,
            &work_dir,
            shutdown,
        )
        .await
        .map_err(|err| match err {
            crate::drill::DrillError::Exec(exec) => exec,
            other => exec::ExecError::Refused(exec::error_chain(&other)),
        })
    })?;
    let secrets = secret_values(&prepared.runbook, &prepared.params);
    let built = write_report_with(
        &prepared.plan,
        &outcome.run.dir,
        &secrets,
        Some(outcome.facts.clone()),
        &mut reporter,
    )?;
    reporter.note(&format!(
        "drill `{}`: {}{}",
        prepared.drill.value.name,
        if outcome.passed() { "PASSED" } else { "FAILED" },
        outcome
            .facts
            .rto
            .map(|rto| format!(" (RTO {:.1} s)", rto.as_secs_f64()))
            .unwrap_or_default()
    ));
    if outcome.passed() {
        Ok(())
    } else {
        Err(CliError::DrillFailed {
            verdict: built.verdict.title,
            dir: outcome.run.dir.path.clone(),
        })
    }
}
