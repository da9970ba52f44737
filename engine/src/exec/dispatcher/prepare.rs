//! Preparing a step, just before it would run: its condition, its role, its confirmation gate,
//! the quorum guard, rendering it again with run-time values, and, in check mode, showing an
//! action with the read-only check of what it needs.

use std::collections::BTreeMap;
use std::time::Duration;

use petgraph::graph::NodeIndex;

use crate::etcd::{self};
use crate::exec::guard::{self, Answer, Prompter};
use crate::exec::step_run::error_chain;
use crate::exec::{ExecError, STATUS_TIMEOUT};
use crate::journal::{Event, SkipReason, StepResult};
use crate::plan::{Condition, Host, Operation, PlanStep, RoleGuard, Rollback};
use crate::runbook::action::{Action, Nature};
use crate::schedule::StepState;

use super::{Dispatcher, Prepared};

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

impl Dispatcher<'_> {
    /// Everything that decides, just before a step would run, whether and what it runs.
    pub(super) async fn prepare(
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
    pub(super) fn refers_to_missing_outputs(&self, expression: &str) -> bool {
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
    pub(super) fn shown_ancestor(&self, index: NodeIndex) -> Option<String> {
        let plan = self.inputs.plan;
        plan.nearest_dependency(index, |dependency| self.shown.contains(&dependency))
            .map(|dependency| plan.graph[dependency].step.clone())
    }

    /// Check mode: an action is shown with its real rendered operation, after the read-only
    /// check of what it needs on its node, when it has one.
    pub(super) fn show(
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
            // A snapshot still to be taken from a member: its size is not known yet.
            (
                None,
                Operation::Distribute {
                    from, save_from, ..
                },
            ) if !save_from.is_empty() && !std::path::Path::new(from).exists() => None,
            (
                None,
                Operation::Copy {
                    direction: crate::runbook::action::CopyDirection::Push,
                    from,
                    to,
                }
                | Operation::Distribute { from, to, .. },
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
    pub(super) fn fail_before_start(
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

    pub(super) async fn role_matches(
        &mut self,
        step: &PlanStep,
        role: RoleGuard,
    ) -> Result<bool, String> {
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
    pub(super) async fn quorum_guard(&self, member: &str) -> Result<(), String> {
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
}
