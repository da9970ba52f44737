//! Folds a plan and its journal into a [`Report`]: per-step attempts and results, the verdict,
//! downtime, findings and where the time went.

use std::collections::BTreeMap;

use crate::journal::{
    DrillStage, Journal, RollbackSkip, RunResult, SkipReason, StepResult, Timestamp,
};
use crate::plan::{Host, Operation, Phase, Plan, PlanStep, Rollback};
use crate::redact::{MASK, Redactor};
use crate::run_state::{MilestoneKind, RunState, StepHistory};
use crate::runbook::action::{ActionKind, Nature};

use super::{
    Attempt, Downtime, Finding, FindingKind, Marker, MarkerKind, OperationArg, OperationSummary,
    Outcome, REPORT_FORMAT, REPORT_VERSION, Report, ReportContext, Reproduce, RollbackReport,
    RunInfo, StepReport, StepStatus, TimeShare, TimeSpent, Timing, Verdict, human_ms,
};

/// Steps slower than this are always findings.
const SLOW_MS: u64 = 30_000;
/// The slowest steps listed as findings, whatever their duration.
const SLOWEST: usize = 3;
/// What the downtime window measures.
pub(super) const DOWNTIME_LABEL: &str = "downtime (first member stop to healthy)";

pub(super) fn build(plan: &Plan, journal: &Journal, context: ReportContext) -> Report {
    let state = RunState::replay(journal);
    let (origin, last) = state
        .span
        .unwrap_or((journal.header.created_at, journal.header.created_at));
    let off = |at: Timestamp| at.since(origin).as_millis() as u64;
    let total_ms = off(last);
    let markers = state
        .milestones
        .iter()
        .map(|m| {
            let (kind, label) = match &m.kind {
                MilestoneKind::Started => (MarkerKind::Started, "run started".to_string()),
                MilestoneKind::Resumed { previous_records } => (
                    MarkerKind::Resumed,
                    format!("resumed after {previous_records} records"),
                ),
                MilestoneKind::Interrupted { reason } => {
                    (MarkerKind::Interrupted, format!("interrupted: {reason}"))
                }
                MilestoneKind::Finished { result } => {
                    (MarkerKind::Finished, format!("finished: {result}"))
                }
            };
            Marker {
                at_ms: off(m.at),
                kind,
                label,
            }
        })
        .collect();
    let check = state.check;
    let journal_drill = drill_facts(&state.drill);
    let mut histories = state.steps;

    let steps: Vec<StepReport> = plan
        .steps()
        .map(|(_, step)| step_report(step, histories.remove(&step.key).unwrap_or_default(), &off))
        .collect();
    let unknown: Vec<String> = histories.into_keys().collect();

    let lanes = lanes(plan);
    let drill = context.drill.clone().or(journal_drill);
    let plan_digest = plan.digest();
    let mut run = RunInfo {
        id: journal.header.run_id.clone(),
        runbook: plan.header.runbook.clone(),
        summary: plan.header.summary.clone(),
        inventory: plan.header.inventory.clone(),
        production: plan.header.production,
        check,
        etcdrill: state.etcdrill,
        plan_digest: journal.header.plan_digest.clone(),
        plan_matches: journal.header.plan_digest == plan_digest,
        runbook_file: plan.header.runbook_file.path.clone(),
        inventory_file: plan.header.inventory_file.path.clone(),
        run_dir: context.run_dir.as_ref().map(|d| d.display().to_string()),
        generated_at: context.generated_at,
        torn_journal: journal.torn_tail,
    };
    if let Some(record) = &context.record {
        run.runbook_file = record.runbook.display().to_string();
        run.inventory_file = record.inventory.display().to_string();
    }
    let verdict = verdict(
        &steps,
        state.finished,
        state.interruption,
        check,
        drill.as_ref(),
        state.rollback_requested,
    );
    let findings = findings(&steps, &run, drill.as_ref(), total_ms, &unknown);
    let report = Report {
        format: REPORT_FORMAT.into(),
        version: REPORT_VERSION,
        downtime: downtime(&steps),
        time_spent: time_spent(&steps, &lanes),
        reproduce: reproduce(plan, &context, verdict.outcome, check),
        verdict,
        run,
        timing: Timing {
            started_at: origin,
            ended_at: last,
            total_ms,
            sessions: state.sessions.max(1),
        },
        drill,
        node_facts: state.node_facts,
        findings,
        lanes,
        markers,
        steps,
    };
    redact(report, &Redactor::new(context.secrets))
}

/// The drill's measurements, from its stages in the journal; `None` when it has none.
fn drill_facts(stages: &[DrillStage]) -> Option<super::DrillFacts> {
    if stages.is_empty() {
        return None;
    }
    let mut facts = super::DrillFacts::default();
    for stage in stages {
        if let DrillStage::Verified {
            rto_ms,
            rpo,
            checks,
        } = stage
        {
            facts.rto = rto_ms.map(std::time::Duration::from_millis);
            facts.rpo = rpo.as_ref().map(|rpo| super::RpoFacts {
                snapshot_age: std::time::Duration::from_millis(rpo.snapshot_age_ms),
                revisions_lost: rpo.revisions_lost,
            });
            facts.verifications = checks
                .iter()
                .map(|check| super::Verification {
                    name: check.name.clone(),
                    passed: check.passed,
                    detail: check.detail.clone(),
                })
                .collect();
        }
    }
    Some(facts)
}

fn summary(operation: &Operation, host: &Host) -> OperationSummary {
    let (headline, args, script) = crate::format::operation_words(operation, host);
    OperationSummary {
        headline,
        args: args
            .into_iter()
            .map(|(name, value)| OperationArg { name, value })
            .collect(),
        script,
    }
}

fn step_report(step: &PlanStep, seen: StepHistory, off: &impl Fn(Timestamp) -> u64) -> StepReport {
    let attempts: Vec<Attempt> = seen
        .attempts
        .iter()
        .map(|a| Attempt {
            number: a.number,
            start_ms: off(a.started),
            duration_ms: a.duration_ms,
            result: a.result.clone(),
            exit_status: a.exit_status,
        })
        .collect();
    let last = attempts.last();
    let status = if seen.skip.is_some() {
        StepStatus::Skipped
    } else {
        match last.map(|a| a.result.as_ref()) {
            None => StepStatus::NotRun,
            Some(None) => StepStatus::NoRecordedEnd,
            Some(Some(StepResult::Succeeded)) => StepStatus::Succeeded,
            Some(Some(StepResult::Failed { .. })) => StepStatus::Failed,
            Some(Some(StepResult::TimedOut)) => StepStatus::TimedOut,
            Some(Some(StepResult::Shown)) => StepStatus::Shown,
        }
    };
    let error = match last.and_then(|a| a.result.as_ref()) {
        Some(StepResult::Failed { error }) if seen.skip.is_none() => Some(error.clone()),
        Some(StepResult::TimedOut) if seen.skip.is_none() => {
            Some(format!("timed out after {}", step.timeout))
        }
        _ => None,
    };
    let start_ms = attempts.iter().map(|a| a.start_ms).min();
    let end_ms = attempts.iter().map(|a| a.start_ms + a.duration_ms).max();
    let mut rollback = seen.rollback.map(|r| RollbackReport {
        start_ms: off(r.started),
        duration_ms: r.duration_ms,
        result: r.result,
        operation: None,
        output_tail: r.output_tail,
    });
    if let (Some(rollback), Rollback::Run { operation }) = (&mut rollback, &step.rollback) {
        rollback.operation = Some(summary(operation, &step.host));
    }
    StepReport {
        key: step.key.clone(),
        step: step.step.clone(),
        title: step.title.clone(),
        lane: step.host.to_string(),
        node: match &step.host {
            Host::Node(name) => Some(name.clone()),
            _ => None,
        },
        phase: phase_name(step.phase).into(),
        action: step.action.to_string(),
        probe: step.nature == Nature::Probe,
        destructive: step.destructive,
        status,
        error,
        skip: seen.skip,
        start_ms,
        end_ms,
        duration_ms: start_ms.zip(end_ms).map(|(s, e)| e - s),
        attempts,
        operation: summary(&step.operation, &step.host),
        output_tail: seen.output_tail,
        rollback,
        rollback_skipped: seen.rollback_skipped,
    }
}

fn phase_name(phase: Phase) -> &'static str {
    match phase {
        Phase::SteadyBefore => "steady_before",
        Phase::Main => "main",
        Phase::SteadyAfter => "steady_after",
    }
}

/// The controller and cluster lanes (when a step runs there), then every node of the inventory.
fn lanes(plan: &Plan) -> Vec<String> {
    let hosts: Vec<&Host> = plan.graph.node_weights().map(|s| &s.host).collect();
    let mut lanes = Vec::new();
    for (host, name) in [(Host::Controller, "controller"), (Host::Cluster, "cluster")] {
        if hosts.contains(&&host) {
            lanes.push(name.to_string());
        }
    }
    lanes.extend(plan.header.nodes.iter().map(|n| n.name.clone()));
    for host in hosts {
        if let Host::Node(name) = host {
            if !lanes.contains(name) {
                lanes.push(name.clone());
            }
        }
    }
    lanes
}

fn verdict(
    steps: &[StepReport],
    finished: Option<RunResult>,
    interruption: Option<String>,
    check: bool,
    drill: Option<&super::DrillFacts>,
    rollback_requested: Option<Option<RunResult>>,
) -> Verdict {
    let failed_verification = drill.and_then(|d| d.verifications.iter().find(|v| !v.passed));
    let mut outcome = match finished {
        None => Outcome::Incomplete,
        Some(RunResult::Succeeded) => Outcome::Succeeded,
        Some(RunResult::Failed) => Outcome::Failed,
        Some(RunResult::RolledBack) => Outcome::RolledBack,
        Some(RunResult::RollbackFailed) => Outcome::RollbackFailed,
        Some(RunResult::Interrupted) => Outcome::Interrupted,
    };
    if outcome == Outcome::Succeeded && failed_verification.is_some() {
        outcome = Outcome::Failed;
    }
    let first_failure = steps
        .iter()
        .filter(|s| s.status.is_failure())
        .min_by_key(|s| (s.end_ms, s.key.clone()))
        .map(|s| {
            format!(
                "`{}` {}",
                s.key,
                match s.status {
                    StepStatus::TimedOut => s.error.clone().unwrap_or_else(|| "timed out".into()),
                    _ => format!(
                        "failed: {}",
                        s.error.as_deref().unwrap_or("no error recorded")
                    ),
                }
            )
        });
    let failed_rollbacks: Vec<String> = steps
        .iter()
        .filter(|s| {
            s.rollback
                .as_ref()
                .is_some_and(|r| r.result != Some(StepResult::Succeeded))
        })
        .map(|s| format!("`{}`", s.key))
        .collect();
    let reason = match outcome {
        Outcome::Succeeded if check => {
            let waiting = steps
                .iter()
                .filter(|s| matches!(s.skip, Some(SkipReason::CheckMode { .. })))
                .count();
            Some(if waiting == 0 {
                "check mode: probes ran live, actions were shown and not run".to_string()
            } else {
                format!(
                    "check mode: probes ran live, actions were shown and not run; {waiting} \
                     probe(s) after those actions were not run either"
                )
            })
        }
        Outcome::Succeeded => None,
        Outcome::Failed => match (&first_failure, failed_verification) {
            (Some(failure), _) if check => Some(failure.clone()),
            (Some(failure), _) => Some(format!("{failure}; nothing was undone")),
            (None, Some(v)) => Some(format!("verification `{}` failed: {}", v.name, v.detail)),
            (None, None) => None,
        },
        Outcome::RolledBack | Outcome::RollbackFailed
            if rollback_requested == Some(Some(RunResult::Succeeded)) =>
        {
            Some(format!(
                "the run had succeeded; `etcdrill rollback` then {}",
                rollback_words(steps)
            ))
        }
        Outcome::RolledBack
            if steps
                .iter()
                .any(|s| s.rollback_skipped == Some(RollbackSkip::Declined)) =>
        {
            Some(format!(
                "{}; the rollback {}",
                first_failure.unwrap_or_else(|| "the run failed".into()),
                rollback_words(steps)
            ))
        }
        Outcome::RolledBack => Some(format!(
            "{}; every completed step was rolled back",
            first_failure.unwrap_or_else(|| "the run failed".into())
        )),
        Outcome::RollbackFailed => Some(format!(
            "{}; the rollback of {} failed: the cluster needs a person",
            first_failure.unwrap_or_else(|| "the run failed".into()),
            if failed_rollbacks.is_empty() {
                "a step".to_string()
            } else {
                failed_rollbacks.join(", ")
            }
        )),
        Outcome::Interrupted => Some(format!(
            "stopped before the end: {}",
            interruption.unwrap_or_else(|| "no reason recorded".into())
        )),
        Outcome::Incomplete => Some(
            "the journal has no end: the controller stopped before finishing, or is still running"
                .into(),
        ),
    };
    let noun = if drill.is_some() {
        "Drill"
    } else if check {
        "Check run"
    } else {
        "Run"
    };
    let title = match outcome {
        Outcome::RolledBack if rollback_requested == Some(Some(RunResult::Succeeded)) => {
            format!("{noun} SUCCEEDED, then ROLLED BACK")
        }
        Outcome::RollbackFailed if rollback_requested == Some(Some(RunResult::Succeeded)) => {
            format!("{noun} SUCCEEDED, then ROLLBACK FAILED")
        }
        _ => format!("{noun} {}", outcome.word()),
    };
    Verdict {
        outcome,
        drill: drill.is_some(),
        title,
        reason,
    }
}

/// What a rollback undid and what it left, from its events: `undid 2 step(s) (`a`, `b`); left
/// as they were: `c` (the runbook does not undo this step)`.
fn rollback_words(steps: &[StepReport]) -> String {
    let undone: Vec<String> = steps
        .iter()
        .filter(|s| {
            s.rollback
                .as_ref()
                .is_some_and(|r| r.result == Some(StepResult::Succeeded))
        })
        .map(|s| format!("`{}`", s.key))
        .collect();
    let mut left: Vec<String> = steps
        .iter()
        .filter_map(|s| match (&s.rollback, s.rollback_skipped) {
            (Some(r), _) if r.result != Some(StepResult::Succeeded) => Some(format!(
                "`{}` ({})",
                s.key,
                super::result_words(r.result.as_ref())
            )),
            (None, Some(RollbackSkip::Declined)) => {
                Some(format!("`{}` ({})", s.key, RollbackSkip::Declined))
            }
            _ => None,
        })
        .collect();
    let mut words = if undone.is_empty() {
        "undid nothing".to_string()
    } else {
        format!("undid {} step(s): {}", undone.len(), undone.join(", "))
    };
    if left.is_empty() {
        words.push_str("; nothing else needed undoing");
    } else {
        left.sort();
        words.push_str(&format!("; NOT undone: {}", left.join(", ")));
    }
    words
}

fn findings(
    steps: &[StepReport],
    run: &RunInfo,
    drill: Option<&super::DrillFacts>,
    total_ms: u64,
    unknown: &[String],
) -> Vec<Finding> {
    let mut findings = Vec::new();
    let mut push = |kind, step: Option<&str>, message: String| {
        findings.push(Finding {
            kind,
            step: step.map(str::to_string),
            message,
        })
    };
    for step in steps.iter().filter(|s| s.status == StepStatus::Failed) {
        push(
            FindingKind::Failed,
            Some(&step.key),
            format!(
                "`{}` failed: {}",
                step.key,
                step.error.as_deref().unwrap_or("no error recorded")
            ),
        );
    }
    for step in steps {
        if let Some(rollback) = &step.rollback {
            if rollback.result != Some(StepResult::Succeeded) {
                push(
                    FindingKind::RollbackFailed,
                    Some(&step.key),
                    format!(
                        "the rollback of `{}` {}",
                        step.key,
                        super::result_words(rollback.result.as_ref())
                    ),
                );
            }
        }
    }
    for step in steps {
        let timeouts: Vec<String> = step
            .attempts
            .iter()
            .filter(|a| a.result == Some(StepResult::TimedOut))
            .map(|a| a.number.to_string())
            .collect();
        if !timeouts.is_empty() {
            push(
                FindingKind::TimedOut,
                Some(&step.key),
                format!(
                    "`{}` ran out of time (attempt {} of {})",
                    step.key,
                    timeouts.join(", "),
                    step.attempts.len()
                ),
            );
        }
    }
    for step in steps.iter().filter(|s| s.attempts.len() > 1) {
        let outcome = match step.status {
            StepStatus::Succeeded => "succeeded on the last",
            StepStatus::NoRecordedEnd => "the last has no recorded end",
            _ => "none succeeded",
        };
        push(
            FindingKind::Retried,
            Some(&step.key),
            format!(
                "`{}` needed {} attempts; {outcome}",
                step.key,
                step.attempts.len()
            ),
        );
    }
    let mut ran: Vec<&StepReport> = steps
        .iter()
        .filter(|s| s.duration_ms.is_some_and(|d| d > 0))
        .collect();
    ran.sort_by(|a, b| {
        b.duration_ms
            .cmp(&a.duration_ms)
            .then_with(|| a.key.cmp(&b.key))
    });
    for (rank, step) in ran.iter().enumerate() {
        let duration = step.duration_ms.unwrap_or(0);
        if rank >= SLOWEST && duration <= SLOW_MS {
            continue;
        }
        let share = (duration * 100)
            .checked_div(total_ms)
            .map(|percent| format!(", {percent}% of the run"))
            .unwrap_or_default();
        let over = if duration > SLOW_MS {
            " (over 30 s)"
        } else {
            ""
        };
        push(
            FindingKind::Slow,
            Some(&step.key),
            format!("`{}` took {}{share}{over}", step.key, human_ms(duration)),
        );
    }
    for (reason, kind, why) in [
        (
            SkipReason::FailFast,
            FindingKind::SkippedByFailFast,
            "did not run because an earlier step failed (fail-fast)",
        ),
        (
            SkipReason::Interrupted,
            FindingKind::SkippedByInterruption,
            "did not run because the run was stopped",
        ),
    ] {
        let keys: Vec<String> = steps
            .iter()
            .filter(|s| s.skip.as_ref() == Some(&reason))
            .map(|s| format!("`{}`", s.key))
            .collect();
        if !keys.is_empty() {
            let count = if keys.len() == 1 {
                "1 step".to_string()
            } else {
                format!("{} steps", keys.len())
            };
            push(kind, None, format!("{count} {why}: {}", keys.join(", ")));
        }
    }
    for step in steps
        .iter()
        .filter(|s| s.status == StepStatus::NoRecordedEnd)
    {
        push(
            FindingKind::NoRecordedEnd,
            Some(&step.key),
            format!(
                "`{}` started and has no recorded end: whether it took effect is unknown",
                step.key
            ),
        );
    }
    for verification in drill.iter().flat_map(|d| &d.verifications) {
        if !verification.passed {
            push(
                FindingKind::VerificationFailed,
                None,
                format!(
                    "verification `{}` failed: {}",
                    verification.name, verification.detail
                ),
            );
        }
    }
    if run.torn_journal {
        push(
            FindingKind::TornJournal,
            None,
            "the journal's last line was cut short (the controller stopped mid-write) and was dropped".into(),
        );
    }
    if !run.plan_matches {
        push(
            FindingKind::PlanMismatch,
            None,
            "the plan this report was made with is not the plan the run executed (the digests differ): step details may not match".into(),
        );
    }
    if !unknown.is_empty() {
        let keys: Vec<String> = unknown.iter().map(|k| format!("`{k}`")).collect();
        push(
            FindingKind::PlanMismatch,
            None,
            format!(
                "the journal names steps the plan does not have: {}",
                keys.join(", ")
            ),
        );
    }
    findings
}

/// From the first member stop to the last successful health wait or verification after it.
fn downtime(steps: &[StepReport]) -> Option<Downtime> {
    let (start_ms, from_step) = steps
        .iter()
        .filter(|s| s.action == ActionKind::EtcdStopMember.name())
        .filter_map(|s| s.start_ms.map(|start| (start, s.key.clone())))
        .min()?;
    let end = steps
        .iter()
        .filter(|s| s.phase == phase_name(Phase::Main) && s.status == StepStatus::Succeeded)
        .filter(|s| s.action == ActionKind::WaitHealthy.name() || s.action.starts_with("verify."))
        .filter_map(|s| s.end_ms.map(|end| (end, s.key.clone())))
        .filter(|(end, _)| *end >= start_ms)
        .max();
    Some(Downtime {
        label: DOWNTIME_LABEL.into(),
        start_ms,
        from_step,
        end_ms: end.as_ref().map(|(end, _)| *end),
        duration_ms: end.as_ref().map(|(end, _)| end - start_ms),
        to_step: end.map(|(_, key)| key),
    })
}

fn time_spent(steps: &[StepReport], lanes: &[String]) -> TimeSpent {
    // (start, duration) of each piece of work.
    let work = |step: &StepReport| -> Vec<(u64, u64)> {
        step.attempts
            .iter()
            .map(|a| (a.start_ms, a.duration_ms))
            .collect()
    };
    let share = |name: String, pieces: Vec<Vec<(u64, u64)>>| -> TimeShare {
        let steps = pieces.iter().filter(|p| !p.is_empty()).count();
        let flat: Vec<(u64, u64)> = pieces.into_iter().flatten().collect();
        let start = flat.iter().map(|(s, _)| *s).min().unwrap_or(0);
        let end = flat.iter().map(|(s, d)| s + d).max().unwrap_or(0);
        TimeShare {
            name,
            steps,
            busy_ms: flat.iter().map(|(_, d)| d).sum(),
            span_ms: end.saturating_sub(start),
        }
    };
    let mut by_phase = Vec::new();
    for (phase, name) in [
        (Phase::SteadyBefore, "steady state before"),
        (Phase::Main, "main steps"),
        (Phase::SteadyAfter, "steady state after"),
    ] {
        let in_phase: Vec<&StepReport> = steps
            .iter()
            .filter(|s| s.phase == phase_name(phase))
            .collect();
        if !in_phase.is_empty() {
            by_phase.push(share(name.into(), in_phase.into_iter().map(work).collect()));
        }
    }
    let rollbacks: Vec<Vec<(u64, u64)>> = steps
        .iter()
        .filter_map(|s| s.rollback.as_ref())
        .map(|r| vec![(r.start_ms, r.duration_ms)])
        .collect();
    if !rollbacks.is_empty() {
        by_phase.push(share("rollback".into(), rollbacks));
    }
    let by_lane = lanes
        .iter()
        .map(|lane| {
            let pieces = steps
                .iter()
                .filter(|s| &s.lane == lane)
                .map(|s| {
                    let mut pieces = work(s);
                    pieces.extend(s.rollback.as_ref().map(|r| (r.start_ms, r.duration_ms)));
                    pieces
                })
                .collect();
            share(lane.clone(), pieces)
        })
        .collect();
    let mut groups: BTreeMap<&str, Vec<Vec<(u64, u64)>>> = BTreeMap::new();
    for step in steps {
        groups.entry(&step.step).or_default().push(work(step));
    }
    let mut by_step: Vec<TimeShare> = groups
        .into_iter()
        .map(|(name, pieces)| share(name.into(), pieces))
        .filter(|share| share.steps > 0)
        .collect();
    by_step.sort_by(|a, b| {
        (b.span_ms, b.busy_ms)
            .cmp(&(a.span_ms, a.busy_ms))
            .then_with(|| a.name.cmp(&b.name))
    });
    TimeSpent {
        by_phase,
        by_lane,
        by_step,
    }
}

fn reproduce(plan: &Plan, context: &ReportContext, outcome: Outcome, check: bool) -> Reproduce {
    let quote = |text: &str| -> String {
        shlex::try_quote(text).map_or_else(|_| format!("{text:?}"), |q| q.into_owned())
    };
    let mut params: Vec<(String, Option<String>)> = Vec::new();
    let (runbook, inventory) = match &context.record {
        Some(record) => {
            for param in &record.params {
                let value = param.value.as_ref().map(|value| match value {
                    serde_yaml::Value::String(text) => text.clone(),
                    other => serde_yaml::to_string(other)
                        .unwrap_or_default()
                        .trim_end()
                        .to_string(),
                });
                params.push((param.name.clone(), value));
            }
            (
                record.runbook.display().to_string(),
                record.inventory.display().to_string(),
            )
        }
        None => {
            // No run record: every parameter of the plan, defaults included.
            for (name, value) in &plan.header.params {
                let value = match value {
                    serde_json::Value::String(text) if text == MASK => None,
                    serde_json::Value::String(text) => Some(text.clone()),
                    other => Some(other.to_string()),
                };
                params.push((name.clone(), value));
            }
            (
                plan.header.runbook_file.path.clone(),
                plan.header.inventory_file.path.clone(),
            )
        }
    };
    let secret_params: Vec<String> = params
        .iter()
        .filter(|(_, value)| value.is_none())
        .map(|(name, _)| name.clone())
        .collect();
    let param_args = |secrets_only: bool| -> String {
        params
            .iter()
            .filter(|(_, value)| !secrets_only || value.is_none())
            .map(|(name, value)| match value {
                Some(value) => format!(" -p {}={}", quote(name), quote(value)),
                None => format!(" -p {}=...", quote(name)),
            })
            .collect()
    };
    let run = format!(
        "etcdrill run {} -i {}{}{}",
        quote(&runbook),
        quote(&inventory),
        param_args(false),
        if check { " --check" } else { "" }
    );
    let dir = context.run_dir.as_ref().map(|d| d.display().to_string());
    let target = dir
        .clone()
        .or_else(|| context.record.as_ref().map(|r| r.run_id.clone()));
    let unfinished = matches!(outcome, Outcome::Interrupted | Outcome::Incomplete);
    let undo = !check && (unfinished || outcome == Outcome::Failed);
    let with_target = |command: &str| {
        target
            .as_ref()
            .map(|t| format!("etcdrill {command} {}{}", quote(t), param_args(true)))
    };
    Reproduce {
        run: Some(run),
        resume: unfinished.then(|| with_target("resume")).flatten(),
        rollback: undo.then(|| with_target("rollback")).flatten(),
        secret_params,
        files: dir
            .map(|dir| {
                ["run.json", "plan.json", "journal.jsonl"]
                    .iter()
                    .map(|name| std::path::Path::new(&dir).join(name).display().to_string())
                    .collect()
            })
            .unwrap_or_default(),
    }
}

/// Masks secrets in every free-text string of the report. Tags of enums are left alone, so the
/// report still reads back.
fn redact(report: Report, redactor: &Redactor) -> Report {
    fn walk(value: &mut serde_json::Value, redactor: &Redactor) {
        match value {
            serde_json::Value::String(text) => {
                if let std::borrow::Cow::Owned(masked) = redactor.redact(text) {
                    *text = masked;
                }
            }
            serde_json::Value::Array(items) => items.iter_mut().for_each(|v| walk(v, redactor)),
            serde_json::Value::Object(fields) => {
                for (name, field) in fields.iter_mut() {
                    if !matches!(name.as_str(), "kind" | "status" | "outcome" | "format") {
                        walk(field, redactor);
                    }
                }
            }
            _ => {}
        }
    }
    let mut value = serde_json::to_value(&report).expect("a report serialises");
    walk(&mut value, redactor);
    serde_json::from_value(value).expect("a report with masked strings reads back")
}
