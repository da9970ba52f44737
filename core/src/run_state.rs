//! The one replay of a journal: [`RunState::apply`] folds records, one at a time, into what the
//! run has done so far.
//!
//! Every consumer of a journal reads it through this fold: resume ([`crate::schedule::Schedule`]
//! settles steps from it), the executor (outputs, roles, the completed steps to roll back), the
//! report and the metrics. A rule about what an event means is therefore written once, here.
//!
//! The rules:
//! - A step's latest event settles it: an attempt that starts after a skip (a stopped run that
//!   was resumed) clears the skip.
//! - An attempt with a start and no end is *in doubt*: it may have done its work or not. A resume
//!   closes its clock (at the session's last record) but it stays in doubt, so a resume of a resume
//!   still refuses to run a non-idempotent step again.
//! - Outputs are those of a step's last successful attempt, as journaled (redacted).

use std::collections::BTreeMap;

use crate::facts::NodeFacts;
use crate::journal::{
    DrillStage, Event, Journal, Record, RollbackSkip, RunResult, SkipReason, StepResult, Timestamp,
};

/// What a run's journal says happened, record by record.
#[derive(Debug, Clone, Default)]
pub struct RunState {
    /// Records applied.
    pub records: u64,
    /// The earliest and latest record times.
    pub span: Option<(Timestamp, Timestamp)>,
    /// When the run started (its `run_started` record).
    pub started_at: Option<Timestamp>,
    /// Controller sessions: the start and each resume.
    pub sessions: u32,
    /// Check mode: probes ran, actions were only shown.
    pub check: bool,
    /// The etcdrill version that started the run.
    pub etcdrill: Option<String>,
    /// Per plan step key, what happened to it.
    pub steps: BTreeMap<String, StepHistory>,
    /// Steps that succeeded, in the order they did.
    pub completed: Vec<String>,
    /// The leader and followers resolved for role targets.
    pub roles: Option<(Option<String>, Vec<String>)>,
    /// The cluster ID journaled when the run began.
    pub cluster_id_before: Option<String>,
    /// The latest end of the run (`etcdrill rollback` may end it again).
    pub finished: Option<RunResult>,
    /// Why the controller was last asked to stop.
    pub interruption: Option<String>,
    /// `Some(previous end)` once `etcdrill rollback` was asked to undo the run.
    pub rollback_requested: Option<Option<RunResult>>,
    /// The drill's stages, in order.
    pub drill: Vec<DrillStage>,
    /// What the nodes said before the run touched them (the latest gathering).
    pub node_facts: Vec<NodeFacts>,
    /// Starts, resumes, interruptions and ends, for a timeline.
    pub milestones: Vec<Milestone>,
}

/// What happened to one plan step.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StepHistory {
    /// Every attempt, in order.
    pub attempts: Vec<AttemptHistory>,
    /// Why it did not run, if its latest event was a skip.
    pub skip: Option<SkipReason>,
    /// The outputs of its last successful attempt.
    pub outputs: BTreeMap<String, String>,
    /// The end of the last attempt's output.
    pub output_tail: String,
    /// Its rollback, once one started.
    pub rollback: Option<RollbackHistory>,
    /// Why a rollback left it as it was.
    pub rollback_skipped: Option<RollbackSkip>,
}

/// One attempt of a step.
#[derive(Debug, Clone, PartialEq)]
pub struct AttemptHistory {
    /// From 1.
    pub number: u32,
    /// When it started; for an end without a recorded start, its end less its duration.
    pub started: Timestamp,
    /// How long it took; for an attempt with no recorded end, until its session's last record.
    pub duration_ms: u64,
    /// How it ended; `None` while no end is recorded.
    pub result: Option<StepResult>,
    /// The exit status of a script.
    pub exit_status: Option<i32>,
    /// Whether its clock still runs (no end, and its session has not ended).
    open: bool,
}

/// The rollback of one completed step.
#[derive(Debug, Clone, PartialEq)]
pub struct RollbackHistory {
    /// When it started.
    pub started: Timestamp,
    /// How long it took (so far, for one with no recorded end).
    pub duration_ms: u64,
    /// How it ended; `None` while no end is recorded.
    pub result: Option<StepResult>,
    /// The end of its output.
    pub output_tail: String,
}

/// A point on the run's timeline.
#[derive(Debug, Clone, PartialEq)]
pub struct Milestone {
    /// When.
    pub at: Timestamp,
    /// What.
    pub kind: MilestoneKind,
}

/// What a milestone marks.
#[derive(Debug, Clone, PartialEq)]
pub enum MilestoneKind {
    /// The run started.
    Started,
    /// A controller continued it, after this many records.
    Resumed {
        /// Records before the resume.
        previous_records: u64,
    },
    /// The controller was asked to stop.
    Interrupted {
        /// Why.
        reason: String,
    },
    /// The run ended.
    Finished {
        /// How.
        result: RunResult,
    },
}

impl StepHistory {
    /// The latest attempt.
    pub fn last_attempt(&self) -> Option<&AttemptHistory> {
        self.attempts.last()
    }

    /// The number of an attempt that started and has no recorded end, if the latest one is such.
    pub fn in_doubt(&self) -> Option<u32> {
        self.last_attempt()
            .filter(|a| a.result.is_none())
            .map(|a| a.number)
    }

    fn attempt(&mut self, number: u32, ended: Timestamp, duration_ms: u64) -> &mut AttemptHistory {
        let open = self
            .attempts
            .iter()
            .rposition(|a| a.open && a.number == number);
        let index = open.unwrap_or_else(|| {
            // An end without a recorded start: place it by its duration.
            self.attempts.push(AttemptHistory {
                number,
                started: before(ended, duration_ms),
                duration_ms: 0,
                result: None,
                exit_status: None,
                open: true,
            });
            self.attempts.len() - 1
        });
        &mut self.attempts[index]
    }

    /// Stops the clocks still running at `until` (a session's last record).
    fn close(&mut self, until: Timestamp) {
        for attempt in self.attempts.iter_mut().filter(|a| a.open) {
            attempt.open = false;
            attempt.duration_ms = until.since(attempt.started).as_millis() as u64;
        }
        if let Some(rollback) = &mut self.rollback
            && rollback.result.is_none()
            && rollback.duration_ms == 0
        {
            rollback.duration_ms = until.since(rollback.started).as_millis() as u64;
        }
    }
}

impl RunState {
    /// The state after every record of `journal`, with the clocks of what has no recorded end
    /// stopped at the last record.
    pub fn replay(journal: &Journal) -> Self {
        let mut state = Self::default();
        for record in &journal.records {
            state.apply(record);
        }
        state.close();
        state
    }

    /// Folds one record in.
    pub fn apply(&mut self, record: &Record) {
        let at = record.at;
        let previous = self.span.map(|(_, last)| last);
        self.records += 1;
        self.span = Some(match self.span {
            Some((first, last)) => (first.min(at), last.max(at)),
            None => (at, at),
        });
        match &record.event {
            Event::RunStarted {
                check, etcdrill, ..
            } => {
                self.sessions += 1;
                self.check |= *check;
                self.etcdrill = Some(etcdrill.clone());
                self.started_at.get_or_insert(at);
                self.milestone(at, MilestoneKind::Started);
            }
            Event::RunResumed { previous_records } => {
                self.sessions += 1;
                if let Some(previous) = previous {
                    self.steps.values_mut().for_each(|s| s.close(previous));
                }
                self.milestone(
                    at,
                    MilestoneKind::Resumed {
                        previous_records: *previous_records,
                    },
                );
            }
            Event::RolesResolved { leader, followers } => {
                self.roles = Some((leader.clone(), followers.clone()));
            }
            Event::Confirmed { .. } => {}
            Event::StepStarted { step, attempt } => {
                let history = self.step(step);
                history.skip = None;
                history.attempts.push(AttemptHistory {
                    number: *attempt,
                    started: at,
                    duration_ms: 0,
                    result: None,
                    exit_status: None,
                    open: true,
                });
            }
            Event::StepFinished {
                step,
                attempt,
                result,
                duration_ms,
                exit_status,
                outputs,
                output_tail,
            } => {
                let history = self.step(step);
                let entry = history.attempt(*attempt, at, *duration_ms);
                entry.open = false;
                entry.duration_ms = *duration_ms;
                entry.result = Some(result.clone());
                entry.exit_status = *exit_status;
                history.output_tail.clone_from(output_tail);
                if *result == StepResult::Succeeded {
                    history.outputs.clone_from(outputs);
                    if !self.completed.contains(step) {
                        self.completed.push(step.clone());
                    }
                }
            }
            Event::StepSkipped { step, reason } => {
                self.step(step).skip = Some(reason.clone());
            }
            Event::RollbackStarted { step } => {
                self.step(step).rollback = Some(RollbackHistory {
                    started: at,
                    duration_ms: 0,
                    result: None,
                    output_tail: String::new(),
                });
            }
            Event::RollbackFinished {
                step,
                result,
                duration_ms,
                output_tail,
            } => {
                let rollback = self
                    .step(step)
                    .rollback
                    .get_or_insert_with(|| RollbackHistory {
                        started: before(at, *duration_ms),
                        duration_ms: 0,
                        result: None,
                        output_tail: String::new(),
                    });
                rollback.duration_ms = *duration_ms;
                rollback.result = Some(result.clone());
                rollback.output_tail.clone_from(output_tail);
            }
            Event::RollbackRequested { previous } => self.rollback_requested = Some(*previous),
            Event::RollbackSkipped { step, reason } => {
                self.step(step).rollback_skipped = Some(*reason);
            }
            Event::Drill { stage } => self.drill.push(stage.clone()),
            Event::NodeFacts { facts } => self.node_facts.clone_from(facts),
            Event::ClusterIdentified { cluster_id } => {
                self.cluster_id_before = Some(cluster_id.clone());
            }
            Event::ClusterIdChanged { .. } => {}
            Event::Interrupted { reason } => {
                self.interruption = Some(reason.clone());
                self.milestone(
                    at,
                    MilestoneKind::Interrupted {
                        reason: reason.clone(),
                    },
                );
            }
            Event::RunFinished { result } => {
                self.finished = Some(*result);
                self.milestone(at, MilestoneKind::Finished { result: *result });
            }
            // A newer minor version's event: nothing this build acts on.
            Event::Unknown => {}
        }
    }

    /// Stops every clock still running at the last record.
    pub fn close(&mut self) {
        if let Some((_, last)) = self.span {
            self.steps.values_mut().for_each(|s| s.close(last));
        }
    }

    /// The history of the step `key`, empty if nothing happened to it.
    pub fn history(&self, key: &str) -> Option<&StepHistory> {
        self.steps.get(key)
    }

    /// The outputs of every step that produced some, by step key.
    pub fn outputs(&self) -> impl Iterator<Item = (&str, &BTreeMap<String, String>)> {
        self.steps
            .iter()
            .filter(|(_, h)| !h.outputs.is_empty())
            .map(|(k, h)| (k.as_str(), &h.outputs))
    }

    fn step(&mut self, key: &str) -> &mut StepHistory {
        self.steps.entry(key.to_owned()).or_default()
    }

    fn milestone(&mut self, at: Timestamp, kind: MilestoneKind) {
        self.milestones.push(Milestone { at, kind });
    }
}

/// `duration_ms` before `at` (or `at`, if that is before the clock's origin).
fn before(at: Timestamp, duration_ms: u64) -> Timestamp {
    let duration = std::time::Duration::from_millis(duration_ms);
    Timestamp(at.0.checked_sub(duration).unwrap_or(at.0))
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use super::*;

    fn record(seq: u64, secs: u64, event: Event) -> Record {
        Record {
            seq,
            at: Timestamp(SystemTime::UNIX_EPOCH + Duration::from_secs(secs)),
            event,
        }
    }

    fn started(step: &str, attempt: u32) -> Event {
        Event::StepStarted {
            step: step.into(),
            attempt,
        }
    }

    fn finished(step: &str, attempt: u32, result: StepResult) -> Event {
        Event::StepFinished {
            step: step.into(),
            attempt,
            result,
            duration_ms: 1000,
            exit_status: None,
            outputs: BTreeMap::from([("rev".to_string(), attempt.to_string())]),
            output_tail: String::new(),
        }
    }

    fn replay(events: Vec<Event>) -> RunState {
        let mut state = RunState::default();
        for (i, event) in events.into_iter().enumerate() {
            state.apply(&record(i as u64 + 1, i as u64 * 10, event));
        }
        state.close();
        state
    }

    #[test]
    fn a_step_run_after_its_skip_is_no_longer_skipped() {
        let state = replay(vec![
            Event::StepSkipped {
                step: "a".into(),
                reason: SkipReason::Interrupted,
            },
            Event::RunResumed {
                previous_records: 1,
            },
            started("a", 1),
            finished("a", 1, StepResult::Succeeded),
        ]);
        let a = state.history("a").unwrap();
        assert_eq!(a.skip, None);
        assert_eq!(state.completed, ["a"]);
        assert_eq!(state.sessions, 1);
    }

    #[test]
    fn an_attempt_without_an_end_stays_in_doubt_across_resumes_and_its_clock_stops() {
        let state = replay(vec![
            started("a", 1),
            Event::RunResumed {
                previous_records: 1,
            },
            Event::RunResumed {
                previous_records: 2,
            },
        ]);
        let a = state.history("a").unwrap();
        assert_eq!(a.in_doubt(), Some(1));
        // Closed at the first resume's previous record (the start itself): no time was seen.
        assert_eq!(a.attempts[0].duration_ms, 0);
    }

    #[test]
    fn outputs_are_the_last_successful_attempts() {
        let state = replay(vec![
            started("a", 1),
            finished("a", 1, StepResult::Failed { error: "x".into() }),
            started("a", 2),
            finished("a", 2, StepResult::Succeeded),
        ]);
        let a = state.history("a").unwrap();
        assert_eq!(a.outputs["rev"], "2");
        assert_eq!(a.attempts.len(), 2);
        assert_eq!(a.in_doubt(), None);
    }

    #[test]
    fn an_end_without_a_start_is_placed_by_its_duration() {
        let state = replay(vec![
            Event::RunStarted {
                runbook: "r".into(),
                inventory: "i".into(),
                check: false,
                etcdrill: "0".into(),
            },
            finished("a", 1, StepResult::Succeeded),
        ]);
        let a = &state.history("a").unwrap().attempts[0];
        assert_eq!(
            a.started.since(state.started_at.unwrap()),
            Duration::from_secs(9)
        );
        assert_eq!(a.duration_ms, 1000);
    }
}
