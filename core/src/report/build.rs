//! Folds a plan and its journal, through their one replay ([`RunState`]), into a [`Report`]:
//! per-step attempts and results, lanes, how to run it again; the verdict ([`super::verdict`]),
//! findings ([`super::findings`]) and timing ([`super::timing`]) are computed from those steps.

use crate::journal::{DrillStage, Journal, StepResult, Timestamp};
use crate::plan::{Host, Operation, Phase, Plan, PlanStep, Rollback};
use crate::redact::{MASK, Redactor};
use crate::run_state::{MilestoneKind, RunState, StepHistory};
use crate::runbook::action::Nature;

use super::{
    Attempt, Marker, MarkerKind, OperationArg, OperationSummary, Outcome, REPORT_FORMAT,
    REPORT_VERSION, Report, ReportContext, Reproduce, RollbackReport, RunInfo, StepReport,
    StepStatus, Timing,
};

use super::findings::findings;
use super::timing::{downtime, time_spent};
use super::verdict::verdict;

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

pub(super) fn phase_name(phase: Phase) -> &'static str {
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
