//! Which plan steps may run now, which will never run and why, and how a run ends.
//!
//! A pure state machine over the plan's graph, driven by the executor: it hands out steps whose
//! dependencies are settled, is told how each ended, and decides the rest. The same rules rebuild
//! the state of an interrupted run from its journal.
//!
//! Rules:
//! - edges are judged per runbook step: the instances of one dependency (`stop@cp1`, `stop@cp2`...)
//!   that a step waits for are one group;
//! - instances skipped by their own condition or role, and probes check mode did not run, had
//!   nothing to do: they do not count, and the group's other instances decide. A group whose
//!   instances were all skipped that way did nothing at all, which satisfies `success` and
//!   `always` but not `failure`;
//! - otherwise a group waiting for `success` needs every counted instance to have succeeded, one
//!   waiting for `failure` needs every counted instance to have failed, and one waiting for
//!   `always` is satisfied once they ended;
//! - a step whose dependencies are all settled runs if every group is satisfied, and is skipped
//!   otherwise;
//! - a failure that no edge waits for (with `failure` or `always`) fails the run: no new step
//!   starts (fail-fast), and steps already running finish.

use petgraph::Direction;
use petgraph::graph::NodeIndex;
use petgraph::visit::EdgeRef;

use crate::journal::{RunResult, SkipReason, StepResult};
use crate::plan::Plan;
use crate::run_state::RunState;
use crate::runbook::step::Outcome;

/// Where a step stands in a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepState {
    /// Waiting for dependencies.
    Waiting,
    /// Handed out to run.
    Running,
    /// Ran and succeeded (in check mode: was shown, or the probe succeeded).
    Succeeded,
    /// Ran and failed.
    Failed,
    /// Did not run.
    Skipped(SkipReason),
}

impl StepState {
    /// Whether the step has ended, one way or another.
    pub fn is_settled(&self) -> bool {
        !matches!(self, StepState::Waiting | StepState::Running)
    }

    /// Whether the step had nothing to do: skipped by its own condition or role, or a probe that
    /// check mode did not run (it would have read what a shown action leaves behind).
    fn is_vacuous(&self) -> bool {
        matches!(
            self,
            StepState::Skipped(
                SkipReason::Condition { .. }
                    | SkipReason::Role { .. }
                    | SkipReason::CheckMode { .. }
            )
        )
    }

    /// Whether an edge waiting for `outcome` is satisfied by a dependency in this state.
    fn satisfies(&self, outcome: Outcome) -> bool {
        match (outcome, self) {
            (Outcome::Always, state) => state.is_settled(),
            (Outcome::Failure, state) => *state == StepState::Failed,
            (Outcome::Success, state) => *state == StepState::Succeeded,
        }
    }
}

/// What the executor should do with a step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Run it.
    Run(NodeIndex),
    /// Record that it will not run.
    Skip(NodeIndex, SkipReason),
}

/// The state of every step of a run.
#[derive(Debug, Clone)]
pub struct Schedule<'p> {
    plan: &'p Plan,
    states: Vec<StepState>,
    /// An unhandled failure happened: start nothing new.
    failing: bool,
    /// The run was asked to stop: start nothing new.
    interrupted: bool,
    /// Steps run again on resume, each before a step that waits for it beyond the plan's edges.
    run_again: Vec<(NodeIndex, NodeIndex)>,
}

/// Why a journal cannot be continued safely.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResumeError {
    /// A step started and has no recorded end, and running it again is not known to be safe.
    #[error(
        "step `{step}` started (attempt {attempt}) and has no recorded end; it is not idempotent, so it is not run again"
    )]
    InDoubt {
        /// The step's key.
        step: String,
        /// The attempt that started.
        attempt: u32,
    },
    /// The journal names a step the plan does not have.
    #[error("the journal names step `{0}`, which the plan does not have")]
    UnknownStep(String),
    /// The run already ended.
    #[error("the run already ended: {0:?}")]
    Finished(RunResult),
}

impl<'p> Schedule<'p> {
    /// A run that has not started.
    pub fn new(plan: &'p Plan) -> Self {
        Self {
            plan,
            states: vec![StepState::Waiting; plan.graph.node_count()],
            failing: false,
            interrupted: false,
            run_again: Vec::new(),
        }
    }

    /// The state of an interrupted run, from its journal's replay. A step that started without a
    /// recorded end is run again if it is idempotent; otherwise resuming is refused.
    pub fn resume(plan: &'p Plan, run: &RunState) -> Result<Self, ResumeError> {
        if let Some(result) = run.finished.filter(|r| *r != RunResult::Interrupted) {
            // A stopped run (Ctrl-C, SIGTERM) is told to resume: its end is not final.
            return Err(ResumeError::Finished(result));
        }
        let mut schedule = Self::new(plan);
        let mut in_doubt = Vec::new();
        for (key, history) in &run.steps {
            let i = plan
                .find(key)
                .ok_or_else(|| ResumeError::UnknownStep(key.clone()))?;
            if let Some(reason) = &history.skip {
                schedule.settle(i, StepState::Skipped(reason.clone()));
            } else if let Some(attempt) = history.in_doubt() {
                in_doubt.push((i, attempt));
            } else if let Some(result) = history.last_attempt().and_then(|a| a.result.as_ref()) {
                let last_attempt = plan.graph[i].retries.attempts + 1;
                let attempt = history.last_attempt().map_or(0, |a| a.number);
                match result {
                    StepResult::Succeeded | StepResult::Shown => {
                        schedule.settle(i, StepState::Succeeded)
                    }
                    _ if attempt >= last_attempt => schedule.settle(i, StepState::Failed),
                    // A failed attempt with retries left: the step runs again.
                    _ => {}
                }
            }
        }
        // A check run changed nothing: its probes and preflights only read, so any may run again.
        in_doubt.sort_unstable();
        if let Some(&(i, attempt)) = in_doubt
            .iter()
            .find(|(i, _)| !plan.graph[*i].idempotent && !run.check)
        {
            return Err(ResumeError::InDoubt {
                step: plan.graph[i].key.clone(),
                attempt,
            });
        }
        // Steps skipped because the run was stopped, or by fail-fast, get their chance again.
        for state in &mut schedule.states {
            if matches!(
                state,
                StepState::Skipped(SkipReason::Interrupted | SkipReason::FailFast)
            ) {
                *state = StepState::Waiting;
            }
        }
        schedule.failing = schedule.unhandled_failure();
        Ok(schedule)
    }

    /// The state of a step.
    pub fn state(&self, index: NodeIndex) -> &StepState {
        &self.states[index.index()]
    }

    fn settle(&mut self, index: NodeIndex, state: StepState) {
        self.states[index.index()] = state;
    }

    /// Steps to run or skip now. Steps handed out to run are marked running.
    pub fn decide(&mut self) -> Vec<Decision> {
        let mut decisions = Vec::new();
        // Skips can settle further steps, so repeat until nothing changes.
        loop {
            let mut changed = false;
            for index in self.plan.graph.node_indices() {
                if self.states[index.index()] != StepState::Waiting {
                    continue;
                }
                let mut incoming: Vec<(NodeIndex, Outcome)> = self
                    .plan
                    .graph
                    .edges_directed(index, Direction::Incoming)
                    .map(|e| (e.source(), *e.weight()))
                    .collect();
                incoming.extend(
                    self.run_again
                        .iter()
                        .filter(|(_, reader)| *reader == index)
                        .map(|(producer, _)| (*producer, Outcome::Success)),
                );
                incoming.sort_by_key(|(d, _)| *d);
                if incoming
                    .iter()
                    .any(|(d, _)| !self.states[d.index()].is_settled())
                {
                    continue;
                }
                let unmet = self.unmet_dependency(&incoming);
                let decision = match unmet {
                    Some((dependency, _)) => Decision::Skip(
                        index,
                        SkipReason::Dependency {
                            dependency: self.plan.graph[dependency].key.clone(),
                        },
                    ),
                    None if self.interrupted => Decision::Skip(index, SkipReason::Interrupted),
                    None if self.failing => Decision::Skip(index, SkipReason::FailFast),
                    None => Decision::Run(index),
                };
                self.states[index.index()] = match &decision {
                    Decision::Run(_) => StepState::Running,
                    Decision::Skip(_, reason) => StepState::Skipped(reason.clone()),
                };
                decisions.push(decision);
                changed = true;
            }
            if !changed {
                return decisions;
            }
        }
    }

    /// The first dependency group (by runbook step and outcome) that is not satisfied, named by
    /// one of its instances.
    fn unmet_dependency(&self, incoming: &[(NodeIndex, Outcome)]) -> Option<(NodeIndex, Outcome)> {
        let mut groups: Vec<((&str, Outcome), Vec<NodeIndex>)> = Vec::new();
        for &(dependency, outcome) in incoming {
            let key = (self.plan.graph[dependency].step.as_str(), outcome);
            match groups.iter_mut().find(|(k, _)| *k == key) {
                Some((_, members)) => members.push(dependency),
                None => groups.push((key, vec![dependency])),
            }
        }
        groups.into_iter().find_map(|((_, outcome), members)| {
            let counted: Vec<NodeIndex> = members
                .iter()
                .copied()
                .filter(|d| !self.states[d.index()].is_vacuous())
                .collect();
            let satisfied = if counted.is_empty() {
                outcome != Outcome::Failure
            } else {
                counted
                    .iter()
                    .all(|d| self.states[d.index()].satisfies(outcome))
            };
            (!satisfied).then(|| (*counted.first().unwrap_or(&members[0]), outcome))
        })
    }

    /// Records how a running step ended.
    pub fn finish(&mut self, index: NodeIndex, state: StepState) {
        debug_assert!(state.is_settled(), "a step finishes in a settled state");
        let failed = state == StepState::Failed;
        self.settle(index, state);
        if failed && !self.is_handled(index) {
            self.failing = true;
        }
    }

    /// Runs settled step `producer` again before step `reader`, which waits for it to succeed:
    /// resume recovers what a read-only step's journal record could not keep (an output holding
    /// a secret).
    pub fn run_again(&mut self, producer: NodeIndex, reader: NodeIndex) {
        self.states[producer.index()] = StepState::Waiting;
        self.run_again.push((producer, reader));
    }

    /// Stops handing out steps: the run was asked to stop.
    pub fn interrupt(&mut self) {
        self.interrupted = true;
    }

    /// Whether some edge waits for this step's failure.
    fn is_handled(&self, index: NodeIndex) -> bool {
        self.plan
            .graph
            .edges_directed(index, Direction::Outgoing)
            .any(|e| matches!(e.weight(), Outcome::Failure | Outcome::Always))
    }

    fn unhandled_failure(&self) -> bool {
        self.plan
            .graph
            .node_indices()
            .any(|i| self.states[i.index()] == StepState::Failed && !self.is_handled(i))
    }

    /// Whether every step has ended.
    pub fn is_done(&self) -> bool {
        self.states.iter().all(StepState::is_settled)
    }

    /// Steps that succeeded, in the order they may be undone: dependents before dependencies.
    pub fn rollback_order(&self, completed_in_order: &[NodeIndex]) -> Vec<NodeIndex> {
        let mut order: Vec<NodeIndex> = completed_in_order
            .iter()
            .copied()
            .filter(|i| self.states[i.index()] == StepState::Succeeded)
            .collect();
        order.reverse();
        order
    }

    /// How the run ended, once every step has ended (rollback not counted).
    pub fn result(&self) -> RunResult {
        if self.interrupted
            && self
                .states
                .contains(&StepState::Skipped(SkipReason::Interrupted))
        {
            RunResult::Interrupted
        } else if self.unhandled_failure() {
            RunResult::Failed
        } else {
            RunResult::Succeeded
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::Cluster;
    use crate::journal::{Event, Journal, Record, Timestamp};
    use crate::plan::compile;
    use crate::runbook::Runbook;
    use crate::source::SourceFile;

    const INVENTORY: &str = "name: lab\ndefaults: {etcd: {management: {static_pod: {}}}}\nnodes:\n  - {name: a, address: 10.0.0.1}\n  - {name: b, address: 10.0.0.2}\n";

    fn plan(steps: &str) -> Plan {
        let runbook = Runbook::load(SourceFile::new(
            "rb.yaml",
            format!("name: t\nsummary: s\nsteps:\n{steps}"),
        ))
        .unwrap();
        let cluster = Cluster::load(SourceFile::new("inv.yaml", INVENTORY)).unwrap();
        compile(&runbook, &cluster, &[]).unwrap()
    }

    fn keys(plan: &Plan, decisions: &[Decision]) -> Vec<String> {
        decisions
            .iter()
            .map(|d| match d {
                Decision::Run(i) => format!("run {}", plan.graph[*i].key),
                Decision::Skip(i, reason) => format!("skip {} ({reason:?})", plan.graph[*i].key),
            })
            .collect()
    }

    fn finish(schedule: &mut Schedule<'_>, plan: &Plan, key: &str, state: StepState) {
        schedule.finish(plan.find(key).unwrap(), state);
    }

    const ALTERNATIVE: &str = concat!(
        "  - {id: check, title: C, on: cluster, action: etcd.health}\n",
        "  - {id: fix, title: F, on: cluster, action: etcd.alarm.disarm, needs: [{step: check, outcome: failure}]}\n",
        "  - {id: use, title: U, on: each, action: etcd.defrag, needs: [check]}\n",
    );

    #[test]
    fn success_runs_the_main_path_and_skips_the_alternative() {
        let plan = plan(ALTERNATIVE);
        let mut schedule = Schedule::new(&plan);
        assert_eq!(keys(&plan, &schedule.decide()), ["run check"]);
        assert!(
            schedule.decide().is_empty(),
            "nothing else is ready while check runs"
        );
        finish(&mut schedule, &plan, "check", StepState::Succeeded);
        assert_eq!(
            keys(&plan, &schedule.decide()),
            [
                "skip fix (Dependency { dependency: \"check\" })",
                "run use@a",
                "run use@b"
            ]
        );
        finish(&mut schedule, &plan, "use@a", StepState::Succeeded);
        finish(&mut schedule, &plan, "use@b", StepState::Succeeded);
        assert!(schedule.is_done());
        assert_eq!(schedule.result(), RunResult::Succeeded);
    }

    #[test]
    fn a_handled_failure_takes_the_alternative_and_does_not_fail_the_run() {
        let plan = plan(ALTERNATIVE);
        let mut schedule = Schedule::new(&plan);
        schedule.decide();
        finish(&mut schedule, &plan, "check", StepState::Failed);
        assert_eq!(
            keys(&plan, &schedule.decide()),
            [
                "run fix",
                "skip use@a (Dependency { dependency: \"check\" })",
                "skip use@b (Dependency { dependency: \"check\" })"
            ]
        );
        finish(&mut schedule, &plan, "fix", StepState::Succeeded);
        assert_eq!(schedule.result(), RunResult::Succeeded);
    }

    #[test]
    fn an_unhandled_failure_stops_new_work_but_lets_running_steps_finish() {
        let plan = plan(
            "  - {id: a, title: A, on: each, action: etcd.defrag}\n  - {id: b, title: B, on: cluster, action: etcd.health}\n  - {id: c, title: C, on: cluster, action: etcd.health, needs: [b]}\n",
        );
        let mut schedule = Schedule::new(&plan);
        assert_eq!(
            keys(&plan, &schedule.decide()),
            ["run a@a", "run a@b", "run b"]
        );
        finish(&mut schedule, &plan, "a@a", StepState::Failed);
        finish(&mut schedule, &plan, "b", StepState::Succeeded);
        assert_eq!(keys(&plan, &schedule.decide()), ["skip c (FailFast)"]);
        assert!(!schedule.is_done(), "a@b is still running");
        finish(&mut schedule, &plan, "a@b", StepState::Succeeded);
        assert_eq!(schedule.result(), RunResult::Failed);
    }

    #[test]
    fn condition_and_role_skips_satisfy_success_edges() {
        let plan = plan(
            "  - {id: a, title: A, on: followers, action: etcd.defrag}\n  - {id: b, title: B, on: each, action: etcd.defrag, needs: [a]}\n",
        );
        let mut schedule = Schedule::new(&plan);
        schedule.decide();
        finish(
            &mut schedule,
            &plan,
            "a@a",
            StepState::Skipped(SkipReason::Role {
                wanted: "follower".into(),
            }),
        );
        finish(&mut schedule, &plan, "a@b", StepState::Succeeded);
        assert_eq!(keys(&plan, &schedule.decide()), ["run b@a", "run b@b"]);
    }

    #[test]
    fn a_failure_branch_off_one_chosen_node_fires() {
        // The probe runs on one node chosen by a parameter; its other instances are skipped.
        let plan = plan(concat!(
            "  - {id: probe, title: P, on: each, action: etcd.health}\n",
            "  - {id: fallback, title: F, on: cluster, action: etcd.alarm.disarm, needs: [{step: probe, outcome: failure}]}\n",
            "  - {id: main, title: M, on: cluster, action: etcd.defrag, needs: [probe]}\n",
        ));
        let vacuous = || {
            StepState::Skipped(SkipReason::Condition {
                expression: "x".into(),
            })
        };
        let mut schedule = Schedule::new(&plan);
        schedule.decide();
        finish(&mut schedule, &plan, "probe@a", vacuous());
        finish(&mut schedule, &plan, "probe@b", StepState::Failed);
        assert_eq!(
            keys(&plan, &schedule.decide()),
            [
                "run fallback",
                "skip main (Dependency { dependency: \"probe@b\" })"
            ]
        );

        let mut schedule = Schedule::new(&plan);
        schedule.decide();
        finish(&mut schedule, &plan, "probe@a", vacuous());
        finish(&mut schedule, &plan, "probe@b", vacuous());
        assert_eq!(
            keys(&plan, &schedule.decide()),
            [
                "skip fallback (Dependency { dependency: \"probe@a\" })",
                "run main"
            ],
            "a probe that had nothing to do failed nowhere"
        );
    }

    #[test]
    fn probes_check_mode_did_not_run_let_the_main_path_go_on_and_take_no_alternative() {
        let plan = plan(ALTERNATIVE);
        let mut schedule = Schedule::new(&plan);
        schedule.decide();
        finish(
            &mut schedule,
            &plan,
            "check",
            StepState::Skipped(SkipReason::CheckMode {
                dependency: "stop".into(),
            }),
        );
        assert_eq!(
            keys(&plan, &schedule.decide()),
            [
                "skip fix (Dependency { dependency: \"check\" })",
                "run use@a",
                "run use@b"
            ]
        );
    }

    #[test]
    fn interruption_skips_what_has_not_started() {
        let plan = plan(
            "  - {id: a, title: A, on: cluster, action: etcd.health}\n  - {id: b, title: B, on: cluster, action: etcd.health, needs: [a]}\n",
        );
        let mut schedule = Schedule::new(&plan);
        schedule.decide();
        schedule.interrupt();
        finish(&mut schedule, &plan, "a", StepState::Succeeded);
        assert_eq!(keys(&plan, &schedule.decide()), ["skip b (Interrupted)"]);
        assert_eq!(schedule.result(), RunResult::Interrupted);
    }

    fn journal(events: Vec<Event>) -> Journal {
        Journal {
            header: crate::journal::JournalHeader {
                format: crate::journal::JOURNAL_FORMAT.into(),
                version: crate::journal::JOURNAL_VERSION,
                minor: 0,
                run_id: "r".into(),
                plan_digest: "d".into(),
                created_at: Timestamp::now(),
            },
            records: events
                .into_iter()
                .enumerate()
                .map(|(i, event)| Record {
                    seq: i as u64 + 1,
                    at: Timestamp::now(),
                    event,
                })
                .collect(),
            torn_tail: false,
        }
    }

    fn started(step: &str) -> Event {
        Event::StepStarted {
            step: step.into(),
            attempt: 1,
        }
    }

    fn succeeded(step: &str) -> Event {
        Event::StepFinished {
            step: step.into(),
            attempt: 1,
            result: StepResult::Succeeded,
            duration_ms: 1,
            exit_status: None,
            outputs: Default::default(),
            output_tail: String::new(),
        }
    }

    #[test]
    fn resume_continues_after_the_last_completed_step() {
        let plan = plan(
            "  - {id: stop, title: S, on: each, action: etcd.stop_member}\n  - {id: start, title: St, on: each, action: etcd.start_member, needs: [stop]}\n",
        );
        // The controller died while stop@b was running; stopping is idempotent.
        let journal = journal(vec![
            started("stop@a"),
            started("stop@b"),
            succeeded("stop@a"),
        ]);
        let mut schedule = Schedule::resume(&plan, &RunState::replay(&journal)).unwrap();
        assert_eq!(
            keys(&plan, &schedule.decide()),
            ["run stop@b", "run start@a"]
        );
    }

    #[test]
    fn resume_refuses_a_non_idempotent_step_in_doubt() {
        let plan = plan(
            "  - {id: add, title: A, on: cluster, action: etcd.member.add, with: {name: x, peer_url: 'https://10.0.0.9:2380'}}\n",
        );
        let journal = journal(vec![started("add")]);
        let err = Schedule::resume(&plan, &RunState::replay(&journal)).unwrap_err();
        assert_eq!(
            err,
            ResumeError::InDoubt {
                step: "add".into(),
                attempt: 1
            }
        );
        assert!(err.to_string().contains("not idempotent"));
        // In a check run the step only had its preflight checked: it is checked again.
        let checking = self::journal(vec![
            Event::RunStarted {
                runbook: "t".into(),
                inventory: "i".into(),
                check: true,
                etcdrill: "0".into(),
            },
            started("add"),
        ]);
        let mut schedule = Schedule::resume(&plan, &RunState::replay(&checking)).unwrap();
        assert_eq!(keys(&plan, &schedule.decide()), ["run add"]);
    }

    #[test]
    fn a_stopped_run_resumes_with_the_steps_the_stop_skipped() {
        let plan = plan(
            "  - {id: stop, title: S, on: each, action: etcd.stop_member}\n  - {id: start, title: St, on: each, action: etcd.start_member, needs: [stop]}\n",
        );
        // Ctrl-C while stop@a ran: it finished, start@a was skipped, the run ended interrupted.
        let journal = journal(vec![
            started("stop@a"),
            started("stop@b"),
            Event::Interrupted {
                reason: "stop requested".into(),
            },
            succeeded("stop@a"),
            succeeded("stop@b"),
            Event::StepSkipped {
                step: "start@a".into(),
                reason: SkipReason::Interrupted,
            },
            Event::StepSkipped {
                step: "start@b".into(),
                reason: SkipReason::Interrupted,
            },
            Event::RunFinished {
                result: RunResult::Interrupted,
            },
        ]);
        let mut schedule = Schedule::resume(&plan, &RunState::replay(&journal)).unwrap();
        assert_eq!(
            keys(&plan, &schedule.decide()),
            ["run start@a", "run start@b"]
        );
    }

    #[test]
    fn resume_refuses_a_finished_run_and_unknown_steps() {
        let plan = plan("  - {id: a, title: A, on: cluster, action: etcd.health}\n");
        let done = journal(vec![Event::RunFinished {
            result: RunResult::Succeeded,
        }]);
        assert_eq!(
            Schedule::resume(&plan, &RunState::replay(&done)).unwrap_err(),
            ResumeError::Finished(RunResult::Succeeded)
        );
        let other = journal(vec![started("zz")]);
        assert_eq!(
            Schedule::resume(&plan, &RunState::replay(&other)).unwrap_err(),
            ResumeError::UnknownStep("zz".into())
        );
    }
}
