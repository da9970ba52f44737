//! Undoing a run's completed steps, newest first.

use petgraph::graph::NodeIndex;

use crate::exec::step_run::run_rollback;
use crate::exec::{ExecError, no_return};
use crate::journal::{Event, RollbackSkip, RunResult, StepResult};
use crate::plan::Rollback;
use crate::runbook::action::Nature;

use super::Dispatcher;

impl Dispatcher<'_> {
    /// Undoes the completed steps, newest first. One failing rollback does not stop the others;
    /// a failed rollback makes the result `RollbackFailed`. Past an irreversible step, nothing is
    /// undone and the run stays `Failed`.
    pub(in crate::exec) async fn roll_back(&mut self) -> Result<RunResult, ExecError> {
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
                Rollback::Run { .. } if self.masked_undos.contains_key(&index) => {
                    all_undone = false;
                    let error = self.masked_undos[&index].clone();
                    self.emit(Event::RollbackStarted {
                        step: step.key.clone(),
                    })?;
                    self.emit(Event::RollbackFinished {
                        step: step.key.clone(),
                        result: StepResult::Failed { error },
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
