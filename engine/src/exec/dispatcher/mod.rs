//! The dispatcher: the one owner of a run's schedule, journal, prompts and reporter. It starts
//! steps as the schedule allows ([`prepare`] decides, just before, whether and what each runs),
//! takes back what step executions report ([`Dispatcher::handle`]) and, on failure, undoes the
//! completed steps ([`undo`]).

mod prepare;
mod undo;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::pin::Pin;
use std::rc::Rc;
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use petgraph::graph::NodeIndex;
use tokio::sync::{mpsc, watch};

use crate::etcd::{self, EtcdAccess, Roles};
use crate::exec::guard::Prompter;
use crate::exec::progress::{self, Reporter};
use crate::exec::run_dir::RunDir;
use crate::exec::step_run::{Message, StepEnv, run_step};
use crate::exec::{ExecError, OnFailure, RunInputs, RunOptions, STATUS_TIMEOUT, masked_outputs};
use crate::inventory::Cluster;
use crate::journal::{Event, JournalWriter, Record, RunResult, StepResult};
use crate::plan::{Host, Plan, PlanStep, Rollback, RunValues, compile_for_run};
use crate::redact::Redactor;
use crate::run_state::RunState;
use crate::schedule::{Decision, Schedule, StepState};
use crate::transport::Transport;

type StepFuture<'f> = Pin<Box<dyn std::future::Future<Output = ()> + 'f>>;

pub(super) struct Dispatcher<'a> {
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
    /// Completed steps whose undo reads an output the journal keeps masked, with why it is not
    /// run.
    masked_undos: HashMap<NodeIndex, String>,
    /// The plan rendered with `values`, until they change.
    rendered_plan: Option<Rc<Plan>>,
}

impl<'a> Dispatcher<'a> {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn new(
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
            masked_undos: HashMap::new(),
            rendered_plan: None,
        }
    }

    /// Takes back what an earlier controller recorded: outputs, roles, completed steps.
    pub(super) fn restore(&mut self, before: &RunState) {
        let plan = self.inputs.plan;
        for (step, outputs) in before.outputs() {
            let outputs = outputs
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            self.set_outputs(step.to_owned(), outputs);
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
            self.rendered_plan = None;
        }
        self.masked_undos = masked_outputs::masked_undos(
            plan,
            before,
            self.completed.iter().map(|(index, _)| *index),
        );
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

    /// Forgets what `steps` recorded when they ran before: they run again.
    pub(super) fn forget(&mut self, steps: &[NodeIndex]) {
        for &index in steps {
            self.values
                .outputs
                .remove(&self.inputs.plan.graph[index].key);
            self.rendered_plan = None;
            self.completed.retain(|(completed, _)| *completed != index);
            self.rendered.remove(&index);
            self.masked_undos.remove(&index);
        }
    }

    /// Journals the cluster's ID before a run that may restore a snapshot, so that the new ID
    /// can be linked to it afterwards (also after a resume).
    pub(super) async fn identify_cluster(&mut self) -> Result<(), ExecError> {
        let cluster = self.inputs.cluster;
        if let Some(cluster_id) = etcd::cluster_id(&self.access, cluster, STATUS_TIMEOUT).await {
            self.emit(Event::ClusterIdentified {
                cluster_id: cluster_id.clone(),
            })?;
            self.cluster_id_before = Some(cluster_id);
        }
        Ok(())
    }

    /// Lends the connections out for step executions; they come back through `resources.transports`.
    fn take_resources(&mut self) -> StepResources {
        StepResources {
            transports: std::mem::take(&mut self.transports),
            local: Transport::local(),
            access: self.access.clone(),
            redactor: self.redactor.clone(),
            run_id: self.dir.id.clone(),
            rounds: crate::distribute::Rounds::default(),
        }
    }

    pub(super) fn emit(&mut self, event: Event) -> Result<Record, ExecError> {
        let record = self.journal.append(event)?;
        self.reporter.record(self.inputs.plan, &record);
        Ok(record)
    }

    /// Journals the run's prologue (node facts gathered, a drill's stages so far), in order.
    pub(super) fn emit_prologue(&mut self) -> Result<(), ExecError> {
        for event in self.inputs.prologue.clone() {
            self.emit(event)?;
        }
        Ok(())
    }

    /// The plan compiled again with the values known now. It is compiled once per change of
    /// the values, not once per step: the steps of a wave that need run-time values share it.
    fn render(&mut self) -> Result<Rc<Plan>, String> {
        if let Some(plan) = &self.rendered_plan {
            return Ok(Rc::clone(plan));
        }
        let plan = compile_for_run(
            self.inputs.runbook,
            self.inputs.cluster,
            self.inputs.params,
            &self.values,
        )
        .map_err(|diagnostics| self.redactor.redact(&diagnostics.to_string()).into_owned())?;
        let plan = Rc::new(plan);
        self.rendered_plan = Some(Rc::clone(&plan));
        Ok(plan)
    }

    /// Records a step's outputs for the steps after it (real values, never masked).
    fn set_outputs(&mut self, step: String, outputs: BTreeMap<String, String>) {
        self.values.outputs.insert(step, outputs);
        self.rendered_plan = None;
    }

    pub(super) async fn drive(
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
                    self.set_outputs(key.clone(), outputs.clone());
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
}

/// What step executions borrow while the dispatcher keeps changing its own state.
struct StepResources {
    transports: HashMap<String, Transport>,
    local: Transport,
    access: std::sync::Arc<EtcdAccess>,
    redactor: Redactor,
    run_id: String,
    rounds: crate::distribute::Rounds,
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
            rounds: &self.rounds,
        }
    }
}

/// What preparing a step decided.
pub(super) enum Prepared {
    /// It settled without running (skipped, declined, shown, failed a guard).
    Settled(StepState),
    /// Run it, as rendered now.
    Run(Box<PlanStep>),
}
