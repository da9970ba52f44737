//! `run`, `resume` and `rollback`: the commands that touch a cluster. They compile exactly as
//! `plan` does, then hand the plan to the executor.

use std::path::{Path, PathBuf};

use clap::{Args, ValueEnum};
use tokio::sync::watch;

use super::{CliError, load_all, read, read_inventory};
use crate::document::Document;
use crate::exec::progress::{Reporter, Verbosity};
use crate::exec::run_dir::{RunDir, RunDirError, RunRecord};
use crate::exec::terminal::Terminal;
use crate::exec::{self, OnFailure, RunInputs, RunOptions, RunSummary, TerminalPrompter};
use crate::inventory::Cluster;
use crate::journal::{Event, Journal, RunResult, Timestamp};
use crate::plan::{ParamInput, Plan, compile};
use crate::report::{self, Report, ReportContext};
use crate::runbook::Runbook;
use crate::runbook::builtin::Builtin;

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

/// Arguments of `etcdrill report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The run.
    #[command(flatten)]
    pub run: RunRefArgs,
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
        let work_dir = work_dir(self.work_dir, cluster);
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
    let (dir, runbook, cluster, inputs, plan) = reopen(&args.run, Facts::Gather(&mut reporter))?;
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
            prologue: Vec::new(),
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
    let (dir, runbook, cluster, inputs, plan) = reopen(&args.run, Facts::Gather(&mut reporter))?;
    let secrets = secret_values(&runbook, &inputs);
    let summary = with_runtime(|_shutdown| async {
        let inputs = RunInputs {
            runbook: &runbook,
            cluster: &cluster,
            params: &inputs,
            plan: &plan,
            secrets: secrets.clone(),
            prologue: Vec::new(),
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

/// `etcdrill report`: writes a run's report again from its plan and journal.
pub(super) fn report(args: &ReportArgs, verbosity: Verbosity) -> Result<(), CliError> {
    let (dir, runbook, _cluster, inputs, plan) = reopen(&args.run, Facts::Recorded)?;
    let terminal = Terminal::detect();
    let mut reporter = reporter(ProgressArgs::default(), verbosity, &terminal);
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

/// Computes the report from the plan and the journal and writes it into the run directory.
fn write_report(
    plan: &Plan,
    dir: &RunDir,
    secrets: &[String],
    reporter: &mut Reporter,
) -> Result<(), CliError> {
    write_report_with(plan, dir, secrets, reporter).map(|_| ())
}

/// Like [`write_report`]; returns the report.
fn write_report_with(
    plan: &Plan,
    dir: &RunDir,
    secrets: &[String],
    reporter: &mut Reporter,
) -> Result<Report, CliError> {
    write_report_from(plan, dir, &read_journal(dir)?, secrets, reporter)
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
    reporter: &mut Reporter,
) -> Result<Report, CliError> {
    // A drill's measurements come from its journal, like everything else.
    let context = ReportContext {
        run_dir: Some(dir.path.clone()),
        record: dir.read_record().ok(),
        drill: None,
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
fn reopen(args: &RunRefArgs, facts: Facts<'_>) -> Result<Reopened, CliError> {
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
    match facts {
        Facts::Gather(reporter) => {
            node_facts(&mut cluster, &before_facts, reporter)?;
        }
        Facts::Recorded => {
            if let Some(recorded) = crate::facts::read(&dir.path) {
                crate::facts::reconcile(&mut cluster, &recorded)?;
            }
        }
    }
    let plan = compile(&runbook, &cluster, &inputs)?;
    Ok((dir, runbook, cluster, inputs, plan))
}

/// Where [`reopen`] takes the node facts that fill the inventory from.
enum Facts<'r> {
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

/// The journal's record of the facts a new run gathered, when it gathered any (a resume gathers
/// them again to check the nodes; the journal keeps those the run started from).
fn node_facts_event(facts: &[crate::facts::NodeFacts]) -> Vec<Event> {
    if facts.is_empty() {
        return Vec::new();
    }
    vec![Event::NodeFacts {
        facts: facts.to_vec(),
    }]
}

fn work_dir(given: Option<&Path>, cluster: &Cluster) -> PathBuf {
    given
        .map(Path::to_path_buf)
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

fn reporter(progress: ProgressArgs, verbosity: Verbosity, terminal: &Terminal) -> Reporter {
    match progress.output {
        Output::Human => Reporter::human(terminal).with_verbosity(verbosity),
        Output::Json => Reporter::json(Box::new(std::io::stdout())),
    }
}

/// The values of secret parameters, given or defaulted, so that output can mask them.
fn secret_values(runbook: &Document<Runbook>, inputs: &[ParamInput]) -> Vec<String> {
    crate::redact::secret_values(&runbook.value, inputs)
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
    #[command(after_help = "Examples:
  etcdrill drill run drills/restore-3-node.yaml --yes
  etcdrill drill run drills/sandbox-restore.yaml --yes -o json")]
    Run(DrillRunArgs),
}

/// Arguments of `etcdrill drill run`.
#[derive(Debug, Args)]
pub struct DrillRunArgs {
    /// The drill file.
    pub drill: PathBuf,
    /// Consent and scheduling.
    #[command(flatten)]
    pub exec: ExecArgs,
    /// Progress.
    #[command(flatten)]
    pub progress: ProgressArgs,
    /// Run directories.
    #[command(flatten)]
    pub work_dir: WorkDirArgs,
}

/// `etcdrill drill run`.
pub(super) fn drill(args: &DrillArgs, verbosity: Verbosity) -> Result<(), CliError> {
    let DrillCommand::Run(args) = &args.command;
    let mut prepared = crate::drill::prepare(&args.drill, args.work_dir.work_dir.as_deref())?;
    let work_dir = work_dir(args.work_dir.work_dir.as_deref(), &prepared.cluster);
    let options = options(&args.exec, false);
    let terminal = Terminal::detect();
    let mut reporter = reporter(args.progress, verbosity, &terminal);
    // The node is the truth for a drill too: the disaster is staged, and the runbook run, where
    // each member really keeps its data.
    prepared.facts = node_facts(&mut prepared.cluster, &prepared.plan, &mut reporter)?;
    if !prepared.facts.is_empty() {
        prepared.plan = compile(&prepared.runbook, &prepared.cluster, &prepared.params)?;
    }
    let outcome = with_runtime(|shutdown| async {
        crate::drill::run(
            &prepared,
            options,
            &mut TerminalPrompter::new(terminal.clone(), shutdown.clone()),
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
    // Made from the journal alone, which holds the drill's stages and checks, exactly as
    // `etcdrill report` makes it again later.
    let built = write_report_with(&prepared.plan, &outcome.run.dir, &secrets, &mut reporter)?;
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
