//! The executor: runs a compiled plan against real nodes and a real cluster.
//!
//! One dispatcher owns the schedule, the journal, the prompts and the reporter; step executions
//! only run their operation and send back messages. Before the first side effect it checks every
//! guard (consent for destructive steps, production, connections with strict host keys); during the
//! run it resolves roles and run-time conditions, renders deferred steps again with real values,
//! refuses member removals that would risk quorum, and journals every event; on failure it undoes
//! the completed steps in reverse order.

mod guard;
mod no_return;
pub mod progress;
pub use etcdrill_core::run_dir;
pub mod run_lock;
mod step_run;
pub mod terminal;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::pin::Pin;
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use petgraph::graph::NodeIndex;
use tokio::sync::{mpsc, watch};

use crate::document::Document;
use crate::etcd::{self, EtcdAccess, Roles};
use crate::inventory::Cluster;
use crate::journal::{
    Event, JournalError, JournalWriter, Record, RollbackSkip, RunResult, SkipReason, StepResult,
};
use crate::plan::{
    Condition, Host, Operation, ParamInput, Plan, PlanStep, RoleGuard, Rollback, RunValues,
    compile_for_run,
};
use crate::redact::Redactor;
use crate::run_state::RunState;
use crate::runbook::Runbook;
use crate::runbook::action::{Action, Nature};
use crate::schedule::{Decision, ResumeError, Schedule, StepState};
use crate::transport::Transport;

pub use guard::{Answer, NoPrompter, Prompter, TerminalPrompter};
use progress::Reporter;
use run_dir::RunDir;
pub(crate) use step_run::error_chain;
use step_run::{Message, StepEnv, run_rollback, run_step};

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
    /// Events journaled right after the run starts, before any step: a drill's stages so far.
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
    for event in inputs.prologue.iter().cloned() {
        dispatcher.emit(event)?;
    }
    if !options.check && restores_a_snapshot(inputs.plan) {
        let found = etcd::cluster_id(&dispatcher.access, inputs.cluster, STATUS_TIMEOUT).await;
        if let Some(cluster_id) = found {
            dispatcher.emit(Event::ClusterIdentified {
                cluster_id: cluster_id.clone(),
            })?;
            dispatcher.cluster_id_before = Some(cluster_id);
        }
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
    let schedule = Schedule::resume(inputs.plan, &state)?;
    guard::consent(inputs.plan, inputs.cluster, &options, prompter).await?;
    let transports = guard::connect(inputs.plan, inputs.cluster).await?;
    let access = EtcdAccess::resolve(inputs.cluster.inventory().controller.tls.as_ref())
        .map_err(ExecError::Access)?;
    let mut dispatcher = Dispatcher::new(
        &inputs, &options, &dir, journal, schedule, transports, access, reporter,
    );
    dispatcher.restore(&state);
    dispatcher.emit(Event::RunResumed {
        previous_records: state.records,
    })?;
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

/// How long a check-mode preflight may take.
const PREFLIGHT_TIMEOUT: Duration = Duration::from_secs(120);

/// Check mode: lists every off-host backup destination in `list` (SSH, S3), so that an
/// unreachable host, a missing bucket or refused credentials fail the check; directories on the
/// controller are created by the copy itself. Says what was reached; `None` when nothing was
/// off-host.
async fn reach_destinations(list: &str) -> Result<Option<String>, String> {
    // Values known only at run time are not destinations to reach yet.
    if crate::render::has_placeholder(list) {
        return Ok(None);
    }
    let destinations = crate::backup::destination::Destination::parse_list(list)
        .map_err(|err| error_chain(&err))?;
    let mut reached = Vec::new();
    for destination in destinations.iter().filter(|d| d.is_off_host()) {
        let copies = crate::backup::list(destination, false, PREFLIGHT_TIMEOUT)
            .await
            .map_err(|err| {
                let text = error_chain(&err);
                // Backup errors usually start with their destination already.
                if text.starts_with(&destination.to_string()) {
                    text
                } else {
                    format!("{destination}: {text}")
                }
            })?;
        reached.push(format!("{destination}: {} copies there", copies.len()));
    }
    Ok((!reached.is_empty()).then(|| reached.join("\n")))
}

type StepFuture<'f> = Pin<Box<dyn std::future::Future<Output = ()> + 'f>>;

struct Dispatcher<'a> {
    inputs: &'a RunInputs<'a>,
    options: &'a RunOptions,
    dir: &'a RunDir,
    journal: JournalWriter,
    schedule: Schedule<'a>,
    transports: HashMap<String, Transport>,
    access: std::sync::Arc<EtcdAccess>,
    redactor: Redactor,
    reporter: &'a mut Reporter,
    roles: Option<Roles>,
    values: RunValues,
    /// Steps that succeeded, in completion order, with the rollback rendered when they ran.
    completed: Vec<(NodeIndex, Rollback)>,
    /// The step as it ran (rendered with run-time values), for rollback.
    rendered: HashMap<NodeIndex, PlanStep>,
    /// Check mode: actions shown and not run. A probe after one of them is not run either.
    shown: HashSet<NodeIndex>,
    /// Check mode: actions whose preflight runs now, with how the action was described.
    checking: HashMap<NodeIndex, String>,
    /// The cluster ID when the run started, for a plan that restores a snapshot; journaled, so
    /// a resumed run still links the old ID to the new one.
    cluster_id_before: Option<String>,
}

impl<'a> Dispatcher<'a> {
    #[allow(clippy::too_many_arguments)]
    fn new(
        inputs: &'a RunInputs<'a>,
        options: &'a RunOptions,
        dir: &'a RunDir,
        journal: JournalWriter,
        schedule: Schedule<'a>,
        transports: HashMap<String, Transport>,
        access: EtcdAccess,
        reporter: &'a mut Reporter,
    ) -> Self {
        let started_at =
            humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
        let values = RunValues {
            run: [
                ("id".to_string(), dir.id.clone()),
                ("dir".to_string(), dir.path.display().to_string()),
                ("started_at".to_string(), started_at),
            ]
            .into(),
            outputs: BTreeMap::new(),
        };
        Self {
            inputs,
            options,
            dir,
            journal,
            schedule,
            transports,
            access: std::sync::Arc::new(access),
            redactor: Redactor::new(inputs.secrets.iter().cloned()),
            reporter,
            roles: None,
            values,
            completed: Vec::new(),
            rendered: HashMap::new(),
            shown: HashSet::new(),
            checking: HashMap::new(),
            cluster_id_before: None,
        }
    }

    /// Takes back what an earlier controller recorded: outputs, roles, completed steps.
    fn restore(&mut self, before: &RunState) {
        let plan = self.inputs.plan;
        for (step, outputs) in before.outputs() {
            let outputs = outputs
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            self.values.outputs.insert(step.to_owned(), outputs);
        }
        self.completed.extend(
            before
                .completed
                .iter()
                .filter_map(|step| plan.find(step))
                .map(|index| (index, Rollback::NotNeeded)),
        );
        for (step, history) in &before.steps {
            let shown = history.last_attempt().and_then(|a| a.result.as_ref());
            if shown == Some(&StepResult::Shown)
                && let Some(index) = plan.find(step)
            {
                self.shown.insert(index);
            }
        }
        self.cluster_id_before.clone_from(&before.cluster_id_before);
        if let Some((leader, followers)) = &before.roles {
            self.roles = Some(Roles {
                leader: leader.clone(),
                followers: followers.clone(),
            });
        }
        if let Some(started) = before.started_at {
            let started = humantime::format_rfc3339_seconds(started.0).to_string();
            self.values.run.insert("started_at".into(), started);
        }
        // Rollbacks of steps an earlier controller completed are rendered again now, with the
        // outputs it recorded.
        let rerendered = self.render();
        for (index, rollback) in &mut self.completed {
            let key = &plan.graph[*index].key;
            if let Some(step) = rerendered
                .as_ref()
                .ok()
                .and_then(|p| p.find(key).map(|i| p.graph[i].clone()))
            {
                *rollback = step.rollback.clone();
                self.rendered.insert(*index, step);
            } else {
                *rollback = plan.graph[*index].rollback.clone();
            }
        }
    }

    /// Lends the connections out for step executions; they come back through `resources.transports`.
    fn take_resources(&mut self) -> StepResources {
        StepResources {
            transports: std::mem::take(&mut self.transports),
            local: Transport::local(),
            access: self.access.clone(),
            redactor: self.redactor.clone(),
            run_id: self.dir.id.clone(),
        }
    }

    fn emit(&mut self, event: Event) -> Result<Record, ExecError> {
        let record = self.journal.append(event)?;
        self.reporter.record(self.inputs.plan, &record);
        Ok(record)
    }

    /// Compiles the plan again with the values known now.
    fn render(&self) -> Result<Plan, String> {
        compile_for_run(
            self.inputs.runbook,
            self.inputs.cluster,
            self.inputs.params,
            &self.values,
        )
        .map_err(|diagnostics| self.redactor.redact(&diagnostics.to_string()).into_owned())
    }

    async fn drive(
        &mut self,
        prompter: &mut dyn Prompter,
        mut shutdown: watch::Receiver<u32>,
    ) -> Result<RunResult, ExecError> {
        let (sender, mut receiver) = mpsc::unbounded_channel::<Message>();
        let plan = self.inputs.plan;
        let mut stopping_reported = false;
        let resources = self.take_resources();
        let env = &resources.env(self.inputs.cluster);
        let mut running: FuturesUnordered<StepFuture<'_>> = FuturesUnordered::new();
        let mut queue: std::collections::VecDeque<NodeIndex> = Default::default();
        let mut progressed = true;
        let beat_every = progress::TICK;
        let mut heartbeat =
            tokio::time::interval_at(tokio::time::Instant::now() + beat_every, beat_every);
        loop {
            if *shutdown.borrow() > 0 && !stopping_reported {
                stopping_reported = true;
                self.schedule.interrupt();
                self.emit(Event::Interrupted {
                    reason: "stop requested (Ctrl-C or SIGTERM)".into(),
                })?;
            }
            let decisions = self.schedule.decide();
            progressed |= !decisions.is_empty();
            for decision in decisions {
                match decision {
                    Decision::Skip(index, reason) => {
                        self.emit(Event::StepSkipped {
                            step: plan.graph[index].key.clone(),
                            reason,
                        })?;
                    }
                    Decision::Run(index) => queue.push_back(index),
                }
            }
            while running.len() < self.options.concurrency.max(1) {
                let Some(index) = queue.pop_front() else {
                    break;
                };
                match self.prepare(index, prompter).await? {
                    Prepared::Settled(state) => {
                        self.schedule.finish(index, state);
                        progressed = true;
                    }
                    Prepared::Run(step) => {
                        let stopping = shutdown.clone();
                        let sender = sender.clone();
                        running.push(Box::pin(async move {
                            run_step(env, index, &step, &stopping, &sender).await;
                        }));
                    }
                }
            }
            if running.is_empty() && queue.is_empty() && receiver.is_empty() {
                if self.schedule.is_done() || !progressed {
                    break;
                }
                // Steps settled while preparing may have made others ready: decide again.
                progressed = false;
                continue;
            }
            progressed = true;
            tokio::select! {
                Some(message) = receiver.recv() => self.handle(message)?,
                Some(()) = running.next(), if !running.is_empty() => {}
                _ = heartbeat.tick() => self.reporter.heartbeat(std::time::Instant::now()),
                changed = shutdown.changed() => {
                    if changed.is_err() || *shutdown.borrow() > 1 {
                        // A second Ctrl-C: stop waiting for running steps.
                        drop(running);
                        while let Ok(message) = receiver.try_recv() {
                            self.handle(message)?;
                        }
                        self.transports = resources.transports;
                        self.emit(Event::Interrupted { reason: "forced stop: running steps abandoned".into() })?;
                        self.emit(Event::RunFinished { result: RunResult::Interrupted })?;
                        return Ok(RunResult::Interrupted);
                    }
                }
            }
        }
        while let Ok(message) = receiver.try_recv() {
            self.handle(message)?;
        }
        drop(running);
        self.transports = resources.transports;
        let mut result = self.schedule.result();
        if result == RunResult::Failed && !self.options.check {
            match self.options.on_failure {
                OnFailure::Rollback => result = self.roll_back().await?,
                OnFailure::Stop => self.reporter.note(&format!(
                    "the run failed and nothing was undone; to undo its completed steps: etcdrill rollback {}",
                    self.dir.path.display()
                )),
            }
        }
        if let (RunResult::Succeeded, Some(from)) = (result, self.cluster_id_before.clone()) {
            let now = etcd::cluster_id(&self.access, self.inputs.cluster, STATUS_TIMEOUT).await;
            if let Some(to) = now.filter(|to| *to != from) {
                self.emit(Event::ClusterIdChanged { from, to })?;
            }
        }
        if result == RunResult::Interrupted {
            self.reporter.note(&format!(
                "stopped; to continue: etcdrill resume {}   to undo what completed: etcdrill rollback {}",
                self.dir.path.display(),
                self.dir.path.display()
            ));
        }
        self.emit(Event::RunFinished { result })?;
        Ok(result)
    }

    /// Everything that decides, just before a step would run, whether and what it runs.
    async fn prepare(
        &mut self,
        index: NodeIndex,
        prompter: &mut dyn Prompter,
    ) -> Result<Prepared, ExecError> {
        let plan = self.inputs.plan;
        let planned = &plan.graph[index];
        let key = planned.key.clone();
        if self.options.check
            && planned.nature == Nature::Probe
            && !matches!(planned.when, Condition::SkippedAtCompile(_))
        {
            if let Some(dependency) = self.shown_ancestor(index) {
                let reason = SkipReason::CheckMode { dependency };
                self.emit(Event::StepSkipped {
                    step: key,
                    reason: reason.clone(),
                })?;
                return Ok(Prepared::Settled(StepState::Skipped(reason)));
            }
        }
        if let Some(role) = planned.role {
            match self.role_matches(planned, role).await {
                Ok(true) => {}
                Ok(false) => {
                    let wanted = match role {
                        RoleGuard::Leader => "leader",
                        RoleGuard::Follower => "follower",
                    };
                    let reason = SkipReason::Role {
                        wanted: wanted.into(),
                    };
                    self.emit(Event::StepSkipped {
                        step: key,
                        reason: reason.clone(),
                    })?;
                    return Ok(Prepared::Settled(StepState::Skipped(reason)));
                }
                Err(error) => return self.fail_before_start(index, error),
            }
        }
        // Steps whose operation or condition needs run-time values are rendered again now.
        let needs_values =
            planned.template.is_some() || matches!(planned.when, Condition::AtRunTime(_));
        let step = if needs_values {
            match self.render() {
                Ok(fresh) => match fresh.find(&key) {
                    Some(i) => fresh.graph[i].clone(),
                    None => {
                        return self.fail_before_start(
                            index,
                            format!("step `{key}` vanished when rendered again"),
                        );
                    }
                },
                Err(error) => return self.fail_before_start(index, error),
            }
        } else {
            planned.clone()
        };
        // Check mode: a condition on outputs of steps that were not run cannot be known; the
        // action is shown with what it would do if the condition held.
        let mut unknown_condition = None;
        if let (true, Condition::SkippedAtCompile(expression)) = (self.options.check, &step.when) {
            if step.nature == Nature::Action && self.refers_to_missing_outputs(expression) {
                unknown_condition = Some(expression.clone());
            }
        }
        // Rendered with run values, a run-time condition is now either true or skipped.
        if let (Condition::SkippedAtCompile(expression), None) = (&step.when, &unknown_condition) {
            let reason = SkipReason::Condition {
                expression: expression.clone(),
            };
            self.emit(Event::StepSkipped {
                step: key,
                reason: reason.clone(),
            })?;
            return Ok(Prepared::Settled(StepState::Skipped(reason)));
        }
        if let Some(question) = &step.confirm {
            if !self.options.check {
                let (answer, by) = if self.options.yes {
                    (Answer::Yes, "--yes")
                } else {
                    let question = guard::describe_gate(&step, question);
                    let answer = prompter.confirm(&question).await;
                    let by = match answer {
                        Answer::EndOfInput => "terminal: end of input",
                        Answer::Interrupted => "terminal: interrupted",
                        Answer::Yes | Answer::No => "terminal",
                    };
                    (answer, by)
                };
                self.emit(Event::Confirmed {
                    step: key.clone(),
                    answer: answer == Answer::Yes,
                    by: by.to_string(),
                })?;
                // A signal while the question waited stops the run: the gate is asked again on
                // resume, rather than recorded as a person's no.
                let skipped = match answer {
                    Answer::Yes => None,
                    Answer::Interrupted => Some(SkipReason::Interrupted),
                    Answer::No | Answer::EndOfInput => Some(SkipReason::Declined),
                };
                if let Some(reason) = skipped {
                    self.emit(Event::StepSkipped {
                        step: key,
                        reason: reason.clone(),
                    })?;
                    return Ok(Prepared::Settled(StepState::Skipped(reason)));
                }
            }
        }
        // The quorum guard holds in check mode too: a removal it would refuse fails the check.
        if let Operation::Etcd {
            call: Action::EtcdMemberRemove(args),
            ..
        } = &step.operation
        {
            if let Err(error) = self.quorum_guard(&args.name).await {
                return self.fail_before_start(index, error);
            }
        }
        if self.options.check && step.nature == Nature::Action {
            let mut step = step;
            if let Operation::Etcd {
                call: Action::EtcdSnapshotSave(args),
                ..
            } = &step.operation
            {
                // The snapshot is about the size of the largest member's database.
                let need = etcd::largest_db_size(&self.access, self.inputs.cluster, STATUS_TIMEOUT)
                    .await
                    .unwrap_or(0);
                step.preflight = Some(Operation::Script {
                    script: format!(
                        "set -eu\n{}",
                        crate::plan::room_check(&args.path, &need.to_string())
                    ),
                });
            }
            let reached = match &step.operation {
                Operation::Native {
                    call: Action::BackupShip(crate::runbook::action::BackupShipArgs { to, .. }),
                }
                | Operation::Native {
                    call:
                        Action::BackupPrune(crate::runbook::action::BackupPruneArgs {
                            destinations: to,
                            ..
                        }),
                } => match reach_destinations(to).await {
                    Ok(reached) => reached.map(|r| format!("checked from the controller:\n{r}")),
                    Err(error) => {
                        return self.fail_before_start(
                            index,
                            format!("check mode: a precondition does not hold: {error}"),
                        );
                    }
                },
                _ => None,
            };
            let note = match (unknown_condition, reached) {
                (Some(expression), reached) => Some(format!(
                    "runs only if `{expression}` holds, which check mode cannot tell: it reads outputs of steps that were not run{}",
                    reached.map(|r| format!("\n{r}")).unwrap_or_default()
                )),
                (None, reached) => reached,
            };
            return self.show(index, step, note);
        }
        self.rendered.insert(index, step.clone());
        Ok(Prepared::Run(Box::new(step)))
    }

    /// Whether `expression` reads outputs of a step none of whose instances recorded outputs
    /// (check mode: an action shown, or a probe not run).
    fn refers_to_missing_outputs(&self, expression: &str) -> bool {
        crate::plan::referenced_step_ids(expression)
            .into_iter()
            .any(|id| {
                !self.values.outputs.keys().any(|key| {
                    key == id
                        || key
                            .strip_prefix(id)
                            .is_some_and(|rest| rest.starts_with('@'))
                })
            })
    }

    /// Check mode: the nearest action before `index` (by the plan's edges, transitively) that
    /// was shown and not run, by its runbook step id.
    fn shown_ancestor(&self, index: NodeIndex) -> Option<String> {
        let plan = self.inputs.plan;
        plan.nearest_dependency(index, |dependency| self.shown.contains(&dependency))
            .map(|dependency| plan.graph[dependency].step.clone())
    }

    /// Check mode: an action is shown with its real rendered operation, after the read-only
    /// check of what it needs on its node, when it has one.
    fn show(
        &mut self,
        index: NodeIndex,
        step: PlanStep,
        note: Option<String>,
    ) -> Result<Prepared, ExecError> {
        let mut description = self
            .redactor
            .redact(&crate::format::text::describe_operation(
                &step.operation,
                &step.host,
            ))
            .into_owned();
        if let Some(note) = note {
            description.push_str(&note);
            description.push('\n');
        }
        let preflight = match (&step.preflight, &step.operation) {
            (Some(preflight), _) => Some(preflight.clone()),
            (
                None,
                Operation::Copy {
                    direction: crate::runbook::action::CopyDirection::Push,
                    from,
                    to,
                },
            ) => match std::fs::metadata(from) {
                Ok(meta) => Some(Operation::Script {
                    script: format!(
                        "set -eu\n{}",
                        crate::plan::room_check(to, &meta.len().to_string())
                    ),
                }),
                // Made by an earlier step that check mode did not run: nothing to measure.
                Err(_) if self.shown_ancestor(index).is_some() => None,
                Err(err) => {
                    return self.fail_before_start(
                        index,
                        format!("check mode: cannot read `{from}` on the controller: {err}"),
                    );
                }
            },
            _ => None,
        };
        let Some(preflight) = preflight else {
            self.emit(Event::StepStarted {
                step: step.key.clone(),
                attempt: 1,
            })?;
            self.emit(Event::StepFinished {
                step: step.key,
                attempt: 1,
                result: StepResult::Shown,
                duration_ms: 0,
                exit_status: None,
                outputs: BTreeMap::new(),
                output_tail: description,
            })?;
            self.shown.insert(index);
            return Ok(Prepared::Settled(StepState::Succeeded));
        };
        self.checking.insert(index, description);
        Ok(Prepared::Run(Box::new(PlanStep {
            operation: preflight,
            preflight: None,
            rollback: Rollback::NotNeeded,
            retries: crate::runbook::step::Retries::none(),
            timeout: crate::human_duration::HumanDuration(PREFLIGHT_TIMEOUT),
            captures: Default::default(),
            outputs: Vec::new(),
            ..step
        })))
    }

    /// Records a step that failed before its operation started.
    fn fail_before_start(
        &mut self,
        index: NodeIndex,
        error: String,
    ) -> Result<Prepared, ExecError> {
        let key = self.inputs.plan.graph[index].key.clone();
        self.emit(Event::StepStarted {
            step: key.clone(),
            attempt: 1,
        })?;
        self.emit(Event::StepFinished {
            step: key,
            attempt: 1,
            result: StepResult::Failed {
                error: self.redactor.redact(&error).into_owned(),
            },
            duration_ms: 0,
            exit_status: None,
            outputs: BTreeMap::new(),
            output_tail: String::new(),
        })?;
        Ok(Prepared::Settled(StepState::Failed))
    }

    async fn role_matches(&mut self, step: &PlanStep, role: RoleGuard) -> Result<bool, String> {
        if self.roles.is_none() {
            let roles = etcd::roles(&self.access, self.inputs.cluster, Duration::from_secs(15))
                .await
                .map_err(|err| {
                    format!(
                        "cannot tell the leader from the followers: {}",
                        error_chain(&err)
                    )
                })?;
            self.emit(Event::RolesResolved {
                leader: roles.leader.clone(),
                followers: roles.followers.clone(),
            })
            .map_err(|err| error_chain(&err))?;
            self.roles = Some(roles);
        }
        let roles = self.roles.as_ref().expect("roles were just resolved");
        let Host::Node(node) = &step.host else {
            return Ok(false);
        };
        match role {
            RoleGuard::Leader => match &roles.leader {
                Some(leader) => Ok(leader == node),
                None => Err("the cluster has no leader, so `leader` cannot be resolved".into()),
            },
            RoleGuard::Follower => Ok(roles.followers.iter().any(|f| f == node)),
        }
    }

    /// Refuses to remove a member while another member is unhealthy: with one down and one
    /// removed, a three-member cluster is one failure from losing quorum.
    async fn quorum_guard(&self, member: &str) -> Result<(), String> {
        let health =
            etcd::current_member_health(&self.access, self.inputs.cluster, Duration::from_secs(15))
                .await;
        let removed = self
            .inputs
            .cluster
            .nodes
            .iter()
            .find(|n| n.etcd.member == member)
            .map(|n| n.name.as_str());
        let unhealthy: Vec<String> = health
            .into_iter()
            .filter(|(node, _)| Some(node.as_str()) != removed)
            .filter_map(|(node, status)| status.err().map(|why| format!("{node} ({why})")))
            .collect();
        if unhealthy.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "refusing to remove member `{member}` while another member is unhealthy: {}; removing a member while another is down can lose quorum. Bring it back first, or recover quorum with quorum-recovery",
                unhealthy.join(", ")
            ))
        }
    }

    fn handle(&mut self, message: Message) -> Result<(), ExecError> {
        let plan = self.inputs.plan;
        match message {
            Message::Started {
                index,
                attempt,
                meter,
            } => {
                let key = plan.graph[index].key.clone();
                self.emit(Event::StepStarted {
                    step: key.clone(),
                    attempt,
                })?;
                self.reporter.watch_transfer(&key, meter);
            }
            Message::Finished {
                index,
                attempt,
                result,
                duration,
                exit_status,
                outputs,
                output_tail,
                last,
            } => {
                let key = plan.graph[index].key.clone();
                if let Some(description) = self.checking.remove(&index) {
                    return self.checked(index, result, duration, description, output_tail);
                }
                let succeeded = result == StepResult::Succeeded;
                if succeeded && !outputs.is_empty() {
                    self.values.outputs.insert(key.clone(), outputs.clone());
                }
                // Later steps get the real values; the journal and the reporter the masked ones.
                let outputs = outputs
                    .into_iter()
                    .map(|(name, value)| (name, self.redactor.redact(&value).into_owned()))
                    .collect();
                self.emit(Event::StepFinished {
                    step: key,
                    attempt,
                    result,
                    duration_ms: duration.as_millis() as u64,
                    exit_status,
                    outputs,
                    output_tail,
                })?;
                if last {
                    let state = if succeeded {
                        StepState::Succeeded
                    } else {
                        StepState::Failed
                    };
                    if succeeded {
                        let rollback = self.rendered.get(&index).map_or_else(
                            || plan.graph[index].rollback.clone(),
                            |s| s.rollback.clone(),
                        );
                        self.completed.push((index, rollback));
                    }
                    self.schedule.finish(index, state);
                }
            }
        }
        Ok(())
    }

    /// Check mode: records how an action's preflight ended: shown, or failed with what it found.
    fn checked(
        &mut self,
        index: NodeIndex,
        result: StepResult,
        duration: Duration,
        description: String,
        output_tail: String,
    ) -> Result<(), ExecError> {
        let planned = &self.inputs.plan.graph[index];
        let key = planned.key.clone();
        let place = match &planned.host {
            Host::Node(node) => node.clone(),
            Host::Controller | Host::Cluster => "the controller".to_string(),
        };
        let (result, state) = match result {
            StepResult::Succeeded => {
                self.shown.insert(index);
                (StepResult::Shown, StepState::Succeeded)
            }
            StepResult::Failed { error } => (
                StepResult::Failed {
                    error: format!("check mode: a precondition does not hold: {error}"),
                },
                StepState::Failed,
            ),
            other => (other, StepState::Failed),
        };
        let checked = output_tail.trim();
        self.emit(Event::StepFinished {
            step: key,
            attempt: 1,
            result,
            duration_ms: duration.as_millis() as u64,
            exit_status: None,
            outputs: BTreeMap::new(),
            output_tail: if checked.is_empty() {
                description
            } else {
                format!("{description}checked on {place}:\n{checked}\n")
            },
        })?;
        self.schedule.finish(index, state);
        Ok(())
    }

    /// Undoes the completed steps, newest first. One failing rollback does not stop the others;
    /// a failed rollback makes the result `RollbackFailed`. Past an irreversible step, nothing is
    /// undone and the run stays `Failed`.
    async fn roll_back(&mut self) -> Result<RunResult, ExecError> {
        let plan = self.inputs.plan;
        // Past a point of no return nothing is undone (see `no_return`).
        if let Some(advice) =
            no_return::advice(plan, &self.completed, &self.schedule, &self.dir.path)
        {
            self.reporter.note(&advice);
            return Ok(RunResult::Failed);
        }
        let resources = self.take_resources();
        let env = resources.env(self.inputs.cluster);
        let mut all_undone = true;
        let completed: Vec<(NodeIndex, Rollback)> = self.completed.iter().rev().cloned().collect();
        for (index, rollback) in completed {
            let step = self
                .rendered
                .get(&index)
                .cloned()
                .unwrap_or_else(|| plan.graph[index].clone());
            match rollback {
                Rollback::NotNeeded | Rollback::Declined if step.nature == Nature::Probe => {}
                Rollback::NotNeeded | Rollback::Declined => {
                    let reason = if rollback == Rollback::Declined {
                        RollbackSkip::Declined
                    } else {
                        RollbackSkip::NothingToUndo
                    };
                    self.emit(Event::RollbackSkipped {
                        step: step.key.clone(),
                        reason,
                    })?;
                }
                Rollback::Irreversible => {
                    all_undone = false;
                    self.emit(Event::RollbackStarted {
                        step: step.key.clone(),
                    })?;
                    self.emit(Event::RollbackFinished {
                        step: step.key.clone(),
                        result: StepResult::Failed {
                            error: "this step cannot be undone: a person must look at it".into(),
                        },
                        duration_ms: 0,
                        output_tail: String::new(),
                    })?;
                }
                Rollback::Run { operation } => {
                    self.emit(Event::RollbackStarted {
                        step: step.key.clone(),
                    })?;
                    let (result, duration, output_tail) =
                        run_rollback(&env, &step, &operation).await;
                    all_undone &= result == StepResult::Succeeded;
                    self.emit(Event::RollbackFinished {
                        step: step.key.clone(),
                        result,
                        duration_ms: duration.as_millis() as u64,
                        output_tail,
                    })?;
                }
            }
        }
        self.transports = resources.transports;
        Ok(if all_undone {
            RunResult::RolledBack
        } else {
            RunResult::RollbackFailed
        })
    }
}

/// What step executions borrow while the dispatcher keeps changing its own state.
struct StepResources {
    transports: HashMap<String, Transport>,
    local: Transport,
    access: std::sync::Arc<EtcdAccess>,
    redactor: Redactor,
    run_id: String,
}

impl StepResources {
    fn env<'e>(&'e self, cluster: &'e Cluster) -> StepEnv<'e> {
        StepEnv {
            transports: &self.transports,
            local: &self.local,
            access: self.access.as_ref(),
            cluster,
            redactor: &self.redactor,
            run_id: &self.run_id,
        }
    }
}

/// What preparing a step decided.
enum Prepared {
    /// It settled without running (skipped, declined, shown, failed a guard).
    Settled(StepState),
    /// Run it, as rendered now.
    Run(Box<PlanStep>),
}
