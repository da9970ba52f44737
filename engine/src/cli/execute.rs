//! `run`, `resume` and `rollback`: the commands that touch a cluster. They compile exactly as
//! `plan` does, then hand the plan to the executor. Also what every command that runs steps
//! shares: consent and progress options, the node facts, the runtime with its signal handling.

use std::path::{Path, PathBuf};

use clap::{Args, ValueEnum};
use tokio::sync::watch;

use super::CliError;
use super::load::load_all;
use super::reopen::{Facts, Reopened, RunRefArgs, reopen};
use super::report::{read_journal, write_report_from};
use crate::document::Document;
use crate::exec::progress::{Reporter, Verbosity};
use crate::exec::run_dir::{RunDir, RunRecord};
use crate::exec::terminal::Terminal;
use crate::exec::{self, OnFailure, RunInputs, RunOptions, RunSummary, TerminalPrompter};
use crate::inventory::Cluster;
use crate::journal::{Event, RunResult};
use crate::plan::{ParamInput, Plan, compile};
use crate::report;
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

/// Consent and scheduling: the options of the commands that start steps (`run`, `resume`,
/// `drill run`).
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
}

/// How a run's progress is shown: the `-o` of the commands that run steps.
#[derive(Debug, Clone, Copy, Default, Args)]
pub struct ProgressArgs {
    /// Progress for people on standard error, or the journal's events as JSON lines on standard
    /// output.
    #[arg(
        short = 'o',
        long = "output",
        visible_short_alias = 'w',
        value_enum,
        value_name = "FORMAT",
        default_value_t
    )]
    pub output: Output,
}

/// Where run directories are.
#[derive(Debug, Args)]
pub struct WorkDirArgs {
    /// Where run directories go (default: the inventory's `controller.work_dir`, else `.etcdrill`).
    #[arg(long, value_name = "DIR")]
    pub work_dir: Option<PathBuf>,
}

/// The metrics textfile a run updates.
#[derive(Debug, Args)]
pub struct MetricsArgs {
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
    /// A parameter value; repeat for several. `NAME=@FILE` reads it from FILE, `NAME=@-` from
    /// standard input (secrets stay out of the process list); `ETCDRILL_PARAM_<NAME>` in the
    /// environment gives a parameter not given here.
    #[arg(short = 'p', long = "param", value_name = "NAME=VALUE")]
    pub params: Vec<String>,
    /// Check mode: probes run live against the cluster, actions are rendered and shown, not run.
    #[arg(long)]
    pub check: bool,
    /// Consent and scheduling.
    #[command(flatten)]
    pub exec: ExecArgs,
    /// Progress.
    #[command(flatten)]
    pub progress: ProgressArgs,
    /// Run directories.
    #[command(flatten)]
    pub work_dir: WorkDirArgs,
    /// Metrics.
    #[command(flatten)]
    pub metrics: MetricsArgs,
}

/// Arguments of `etcdrill resume`.
#[derive(Debug, Args)]
pub struct ResumeArgs {
    /// The run.
    #[command(flatten)]
    pub run: RunRefArgs,
    /// Consent and scheduling.
    #[command(flatten)]
    pub exec: ExecArgs,
    /// Progress.
    #[command(flatten)]
    pub progress: ProgressArgs,
    /// Metrics.
    #[command(flatten)]
    pub metrics: MetricsArgs,
}

/// Arguments of `etcdrill rollback`.
#[derive(Debug, Args)]
pub struct RollbackArgs {
    /// The run.
    #[command(flatten)]
    pub run: RunRefArgs,
    /// Progress.
    #[command(flatten)]
    pub progress: ProgressArgs,
    /// Metrics.
    #[command(flatten)]
    pub metrics: MetricsArgs,
}

/// `etcdrill run`.
pub(super) fn run(args: &RunArgs, verbosity: Verbosity) -> Result<(), CliError> {
    let (runbook, cluster, inputs) = load_all(&args.runbook, &args.inventory, &args.params)?;
    let launch = Launch {
        runbook_path: &args.runbook,
        inventory_path: &args.inventory,
        check: args.check,
        options: options(&args.exec, args.check),
        progress: args.progress,
        verbosity,
        work_dir: args.work_dir.work_dir.as_deref(),
        metrics_textfile: args.metrics.metrics_textfile.as_deref(),
    };
    launch.run(&runbook, cluster, &inputs)
}

/// How a new run is started: by `run` from a runbook file, or by a day-2 command from a built-in
/// runbook.
pub(super) struct Launch<'a> {
    /// The runbook as recorded in `run.json` (a file, or `builtin:NAME`).
    pub(super) runbook_path: &'a Path,
    /// The inventory file.
    pub(super) inventory_path: &'a Path,
    /// Check mode.
    pub(super) check: bool,
    /// Consent and scheduling.
    pub(super) options: RunOptions,
    /// Progress.
    pub(super) progress: ProgressArgs,
    /// How much progress.
    pub(super) verbosity: Verbosity,
    /// `--work-dir`.
    pub(super) work_dir: Option<&'a Path>,
    /// `--metrics-textfile`.
    pub(super) metrics_textfile: Option<&'a Path>,
}

impl Launch<'_> {
    /// Compiles the runbook exactly as `plan` does, runs it and writes its report.
    pub(super) fn run(
        self,
        runbook: &Document<Runbook>,
        mut cluster: Cluster,
        inputs: &[ParamInput],
    ) -> Result<(), CliError> {
        let terminal = Terminal::detect();
        let mut reporter = reporter(self.progress, self.verbosity, &terminal);
        let before_facts = compile(runbook, &cluster, inputs)?;
        let facts = node_facts(&mut cluster, &before_facts, &mut reporter)?;
        let cluster = &cluster;
        let plan = compile(runbook, cluster, inputs)?;
        let work_dir = cluster.work_dir(self.work_dir);
        let secrets = secret_values(runbook, inputs);
        let record = |dir: &RunDir| {
            // What the nodes said, beside the plan they shaped (best effort: the run does not
            // depend on the copy).
            let _ = crate::facts::write(&dir.path, &facts);
            RunRecord::with_params(
                &dir.id,
                (self.runbook_path, self.inventory_path),
                self.check,
                &runbook.value,
                inputs,
            )
        };
        let summary = with_runtime(|shutdown| async {
            let inputs = RunInputs {
                runbook,
                cluster,
                params: inputs,
                plan: &plan,
                secrets: secrets.clone(),
                prologue: node_facts_event(&facts),
            };
            exec::run(
                inputs,
                self.options,
                &mut TerminalPrompter::new(terminal.clone(), shutdown.clone()),
                &mut reporter,
                &work_dir,
                record,
                shutdown,
            )
            .await
        })?;
        finish(
            &plan,
            &summary,
            &secrets,
            self.metrics_textfile,
            &mut reporter,
        )
    }
}

/// `etcdrill resume`.
pub(super) fn resume(args: &ResumeArgs, verbosity: Verbosity) -> Result<(), CliError> {
    let terminal = Terminal::detect();
    let mut reporter = reporter(args.progress, verbosity, &terminal);
    let Reopened {
        dir,
        runbook,
        cluster,
        inputs,
        plan,
        facts,
    } = reopen(&args.run, Facts::Gather(&mut reporter))?;
    let options = options(
        &args.exec,
        dir.read_record().map_err(exec::ExecError::from)?.check,
    );
    let secrets = secret_values(&runbook, &inputs);
    let summary = with_runtime(|shutdown| async {
        let inputs = RunInputs {
            runbook: &runbook,
            cluster: &cluster,
            params: &inputs,
            plan: &plan,
            secrets: secrets.clone(),
            prologue: node_facts_event(&facts),
        };
        exec::resume(
            inputs,
            options,
            &mut TerminalPrompter::new(terminal.clone(), shutdown.clone()),
            &mut reporter,
            dir,
            shutdown,
        )
        .await
    })?;
    finish(
        &plan,
        &summary,
        &secrets,
        args.metrics.metrics_textfile.as_deref(),
        &mut reporter,
    )
}

/// `etcdrill rollback`.
pub(super) fn rollback(args: &RollbackArgs, verbosity: Verbosity) -> Result<(), CliError> {
    let terminal = Terminal::detect();
    let mut reporter = reporter(args.progress, verbosity, &terminal);
    let Reopened {
        dir,
        runbook,
        cluster,
        inputs,
        plan,
        facts,
    } = reopen(&args.run, Facts::Gather(&mut reporter))?;
    let secrets = secret_values(&runbook, &inputs);
    let summary = with_runtime(|_shutdown| async {
        let inputs = RunInputs {
            runbook: &runbook,
            cluster: &cluster,
            params: &inputs,
            plan: &plan,
            secrets: secrets.clone(),
            prologue: node_facts_event(&facts),
        };
        exec::rollback(inputs, &mut reporter, dir).await
    })?;
    match finish(
        &plan,
        &summary,
        &secrets,
        args.metrics.metrics_textfile.as_deref(),
        &mut reporter,
    ) {
        // What `rollback` was asked to do, done: every undo that ran succeeded.
        Err(CliError::RunFailed {
            result: RunResult::RolledBack,
            ..
        }) => Ok(()),
        other => other,
    }
}

/// Writes the run's report, then maps its result to the command's outcome.
fn finish(
    plan: &Plan,
    summary: &RunSummary,
    secrets: &[String],
    metrics_textfile: Option<&Path>,
    reporter: &mut Reporter,
) -> Result<(), CliError> {
    let journal = read_journal(&summary.dir)?;
    write_report_from(plan, &summary.dir, &journal, secrets, reporter)?;
    if let Some(path) = metrics_textfile {
        let sample = report::metrics::run_sample(plan, &journal, summary.result);
        crate::textfile::update(path, &sample).map_err(CliError::Metrics)?;
        reporter.note(&format!("metrics: {}", path.display()));
    }
    conclude(summary)
}

/// Gathers the facts of the nodes `plan` runs commands on, shows them, and reconciles the
/// inventory with them: a stated field the node contradicts refuses the run; a field left out
/// takes the node's value (the plan is then compiled again).
pub(super) fn node_facts(
    cluster: &mut Cluster,
    plan: &Plan,
    reporter: &mut Reporter,
) -> Result<Vec<crate::facts::NodeFacts>, CliError> {
    node_facts_since(cluster, plan, reporter, None)
}

/// [`node_facts`] for a run that started earlier (resume, rollback): the facts are gathered and
/// shown, but the inventory is reconciled with `started_from`, the facts the run started from when it
/// recorded them, so the plan is the one it started with even after its own steps changed what
/// the nodes say (a repointed data volume). What changed since is shown.
pub(super) fn node_facts_since(
    cluster: &mut Cluster,
    plan: &Plan,
    reporter: &mut Reporter,
    started_from: Option<Vec<crate::facts::NodeFacts>>,
) -> Result<Vec<crate::facts::NodeFacts>, CliError> {
    let names = crate::facts::nodes_touched(plan);
    if names.is_empty() {
        return Ok(Vec::new());
    }
    let started = std::time::Instant::now();
    let facts = with_runtime(|_| async { Ok(crate::facts::gather(cluster, &names).await?) })?;
    reporter.note(&format!(
        "{} (gathered in {})",
        crate::facts::summary(&facts),
        crate::humanize::duration(started.elapsed())
    ));
    let against = match started_from.filter(|recorded| !recorded.is_empty()) {
        Some(recorded) => {
            for change in crate::facts::changed_since(&recorded, &facts) {
                reporter.note(&format!("  since the run started: {change}"));
            }
            recorded
        }
        None => facts.clone(),
    };
    for filled in crate::facts::reconcile(cluster, &against)? {
        reporter.note(&format!("  taken from the node: {filled}"));
    }
    Ok(facts)
}

/// The journal's record of the facts `run`, `resume` or `rollback` gathered, when it gathered any:
/// a resumed run's journal keeps what the nodes said each time (its `facts.json`, what it started
/// from).
fn node_facts_event(facts: &[crate::facts::NodeFacts]) -> Vec<Event> {
    if facts.is_empty() {
        return Vec::new();
    }
    vec![Event::NodeFacts {
        facts: facts.to_vec(),
    }]
}

pub(super) fn options(exec: &ExecArgs, check: bool) -> RunOptions {
    RunOptions {
        check,
        yes: exec.yes,
        allow_production: exec.allow_production,
        concurrency: exec.concurrency,
        on_failure: exec.on_failure,
    }
}

pub(super) fn reporter(
    progress: ProgressArgs,
    verbosity: Verbosity,
    terminal: &Terminal,
) -> Reporter {
    match progress.output {
        Output::Human => Reporter::human(terminal).with_verbosity(verbosity),
        Output::Json => Reporter::json(Box::new(std::io::stdout())),
    }
}

/// The values of secret parameters, given or defaulted, so that output can mask them.
pub(super) fn secret_values(runbook: &Document<Runbook>, inputs: &[ParamInput]) -> Vec<String> {
    crate::redact::secret_values(&runbook.value, inputs)
}

/// Runs `body` on a runtime, with Ctrl-C and SIGTERM counted into a watch channel: the first
/// asks the run to stop starting steps, the second abandons running ones.
pub(super) fn with_runtime<F, T>(
    body: impl FnOnce(watch::Receiver<u32>) -> F,
) -> Result<T, CliError>
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
