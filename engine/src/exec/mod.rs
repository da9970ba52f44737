//! The executor: runs a compiled plan against real nodes and a real cluster.
//!
//! One dispatcher owns the schedule, the journal, the prompts and the reporter; step executions
//! only run their operation and send back messages. Before the first side effect it checks every
//! guard (consent for destructive steps, production, connections with strict host keys); during the
//! run it resolves roles and run-time conditions, renders deferred steps again with real values,
//! refuses member removals that would risk quorum, and journals every event; on failure it undoes
//! the completed steps in reverse order.

mod dispatcher;
mod guard;
mod masked_outputs;
mod no_return;
pub mod progress;
pub use etcdrill_core::run_dir;
pub mod run_lock;
mod step_run;
pub mod terminal;

use std::time::Duration;

use tokio::sync::watch;

use crate::document::Document;
use crate::etcd::{self, EtcdAccess};
use crate::inventory::Cluster;
use crate::journal::{Event, JournalError, JournalWriter, RunResult};
use crate::plan::{Condition, ParamInput, Plan};
use crate::run_state::RunState;
use crate::runbook::Runbook;
use crate::schedule::{ResumeError, Schedule};

use dispatcher::Dispatcher;
pub use guard::{Answer, NoPrompter, Prompter, TerminalPrompter};
use progress::Reporter;
use run_dir::RunDir;
pub(crate) use step_run::error_chain;

/// What to do when a step fails and the run stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum OnFailure {
    /// Undo the completed steps, newest first (the default).
    #[default]
    Rollback,
    /// Leave everything as it is, for a person to look at; `etcdrill rollback RUN` undoes later.
    Stop,
}

/// How a run behaves.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Check mode: probes run live, actions are rendered and shown but not executed.
    pub check: bool,
    /// Consent to destructive steps and confirmation gates without asking.
    pub yes: bool,
    /// Consent to run destructive steps against an inventory marked production.
    pub allow_production: bool,
    /// Most steps running at once.
    pub concurrency: usize,
    /// What to do after a failure.
    pub on_failure: OnFailure,
}

/// Everything a run is made of besides its options.
pub struct RunInputs<'a> {
    /// The runbook, to render deferred steps again with run-time values.
    pub runbook: &'a Document<Runbook>,
    /// The inventory.
    pub cluster: &'a Cluster,
    /// The parameter values given.
    pub params: &'a [ParamInput],
    /// The plan that was reviewed (secrets masked).
    pub plan: &'a Plan,
    /// Secret values, to mask wherever output goes.
    pub secrets: Vec<String>,
    /// Events journaled right after the run starts, resumes or is rolled back, before any step:
    /// the node facts gathered, a drill's stages so far.
    pub prologue: Vec<Event>,
}

/// How a run ended.
#[derive(Debug, Clone)]
pub struct RunSummary {
    /// The run's directory.
    pub dir: RunDir,
    /// How it ended.
    pub result: RunResult,
    /// The run's lock, held until the summary is dropped (after the report is written).
    pub lock: std::sync::Arc<run_lock::RunLock>,
}

/// Why a run could not start, or stopped without a result.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    /// A guard refused the run before anything happened.
    #[error("nothing was run: {0}")]
    Refused(String),
    /// Nodes could not be reached before anything happened.
    #[error("nothing was run: {count} node(s) could not be reached safely:\n{details}")]
    Unreachable {
        /// How many.
        count: usize,
        /// One line per node.
        details: String,
    },
    /// The controller's etcd credentials are unusable.
    #[error("nothing was run: etcd access")]
    Access(#[source] etcd::EtcdError),
    /// The journal could not be written: the run stops, since it could not be resumed.
    #[error("the journal could not be written")]
    Journal(#[from] JournalError),
    /// The run directory could not be made or read.
    #[error("the run directory")]
    RunDir(#[from] run_dir::RunDirError),
    /// The journal cannot be continued safely.
    #[error("the run cannot be resumed")]
    Resume(#[from] ResumeError),
    /// A step still to run needs an output the journal keeps masked.
    #[error("the run cannot be resumed")]
    MaskedOutput(#[from] masked_outputs::MaskedOutputError),
    /// The nodes' facts could not be gathered.
    #[error(transparent)]
    Facts(#[from] crate::facts::FactsError),
    /// Another command holds the run.
    #[error("nothing was run")]
    Locked(#[from] run_lock::RunLockError),
}

/// Starts a new run of `inputs.plan` in a new directory under `work_dir`.
pub async fn run(
    inputs: RunInputs<'_>,
    options: RunOptions,
    prompter: &mut dyn Prompter,
    reporter: &mut Reporter,
    work_dir: &std::path::Path,
    record: impl FnOnce(&RunDir) -> run_dir::RunRecord,
    shutdown: watch::Receiver<u32>,
) -> Result<RunSummary, ExecError> {
    guard::consent(inputs.plan, inputs.cluster, &options, prompter).await?;
    let transports = guard::connect(inputs.plan, inputs.cluster).await?;
    let access = EtcdAccess::resolve(inputs.cluster.inventory().controller.tls.as_ref())
        .map_err(ExecError::Access)?;
    let dir = RunDir::create(work_dir, &inputs.plan.header.runbook)?;
    let lock = run_lock::RunLock::acquire(&dir.path)?;
    dir.write_record(&record(&dir))?;
    dir.write_plan(inputs.plan)?;
    let journal = JournalWriter::create(&dir.journal(), &dir.id, &inputs.plan.digest())?;
    let schedule = Schedule::new(inputs.plan);
    let mut dispatcher = Dispatcher::new(
        &inputs, &options, &dir, journal, schedule, transports, access, reporter,
    );
    dispatcher.emit(Event::RunStarted {
        runbook: inputs.plan.header.runbook.clone(),
        inventory: inputs.plan.header.inventory.clone(),
        check: options.check,
        etcdrill: env!("CARGO_PKG_VERSION").into(),
    })?;
    dispatcher.emit_prologue()?;
    if !options.check && restores_a_snapshot(inputs.plan) {
        dispatcher.identify_cluster().await?;
    }
    let result = dispatcher.drive(prompter, shutdown).await?;
    Ok(RunSummary {
        dir,
        result,
        lock: lock.into(),
    })
}

/// How long asking the members for their status may take (the cluster ID before and after a
/// restore, the database size before a checked snapshot).
const STATUS_TIMEOUT: Duration = Duration::from_secs(5);

/// Whether the plan may restore a snapshot, which gives the cluster a new cluster ID.
fn restores_a_snapshot(plan: &Plan) -> bool {
    plan.graph.node_weights().any(|step| {
        step.action == crate::runbook::action::ActionKind::EtcdSnapshotRestore
            && !matches!(step.when, Condition::SkippedAtCompile(_))
    })
}

/// Continues a run whose controller stopped, from its journal. The plan compiled now must be the
/// plan the run started with.
#[allow(clippy::too_many_arguments)]
pub async fn resume(
    inputs: RunInputs<'_>,
    options: RunOptions,
    prompter: &mut dyn Prompter,
    reporter: &mut Reporter,
    dir: RunDir,
    shutdown: watch::Receiver<u32>,
) -> Result<RunSummary, ExecError> {
    let lock = run_lock::RunLock::acquire(&dir.path)?;
    let (journal, before) = JournalWriter::resume(&dir.journal(), &dir.id)?;
    let digest = inputs.plan.digest();
    if before.header.plan_digest != digest {
        return Err(ExecError::Refused(format!(
            "the runbook, inventory or parameters changed since run {} started (plan digest {} then, {} now); resume continues only the same plan",
            dir.id,
            short(&before.header.plan_digest),
            short(&digest)
        )));
    }
    let state = RunState::replay(&before);
    let mut schedule = Schedule::resume(inputs.plan, &state)?;
    let run_again = masked_outputs::recover(
        inputs.plan,
        &state,
        &mut schedule,
        &dir.path.display().to_string(),
    )?;
    guard::consent(inputs.plan, inputs.cluster, &options, prompter).await?;
    let transports = guard::connect(inputs.plan, inputs.cluster).await?;
    let access = EtcdAccess::resolve(inputs.cluster.inventory().controller.tls.as_ref())
        .map_err(ExecError::Access)?;
    let mut dispatcher = Dispatcher::new(
        &inputs, &options, &dir, journal, schedule, transports, access, reporter,
    );
    dispatcher.restore(&state);
    dispatcher.forget(&run_again);
    dispatcher.emit(Event::RunResumed {
        previous_records: state.records,
    })?;
    dispatcher.emit_prologue()?;
    let result = dispatcher.drive(prompter, shutdown).await?;
    Ok(RunSummary {
        dir,
        result,
        lock: lock.into(),
    })
}

/// Undoes the completed steps of a stopped or failed run, newest first.
pub async fn rollback(
    inputs: RunInputs<'_>,
    reporter: &mut Reporter,
    dir: RunDir,
) -> Result<RunSummary, ExecError> {
    let lock = run_lock::RunLock::acquire(&dir.path)?;
    let (journal, before) = JournalWriter::resume(&dir.journal(), &dir.id)?;
    if before.header.plan_digest != inputs.plan.digest() {
        return Err(ExecError::Refused(format!(
            "the runbook, inventory or parameters changed since run {} started; rollback needs the same plan",
            dir.id
        )));
    }
    let state = RunState::replay(&before);
    let previous = state.finished;
    let schedule = Schedule::new(inputs.plan);
    let transports = guard::connect(inputs.plan, inputs.cluster).await?;
    let access = EtcdAccess::resolve(inputs.cluster.inventory().controller.tls.as_ref())
        .map_err(ExecError::Access)?;
    let options = RunOptions {
        check: false,
        yes: true,
        allow_production: true,
        concurrency: 1,
        on_failure: OnFailure::Rollback,
    };
    let mut dispatcher = Dispatcher::new(
        &inputs, &options, &dir, journal, schedule, transports, access, reporter,
    );
    dispatcher.restore(&state);
    dispatcher.emit(Event::RollbackRequested { previous })?;
    dispatcher.emit_prologue()?;
    let result = dispatcher.roll_back().await?;
    dispatcher.emit(Event::RunFinished { result })?;
    Ok(RunSummary {
        dir,
        result,
        lock: lock.into(),
    })
}

fn short(digest: &str) -> &str {
    &digest[..digest.len().min(12)]
}
