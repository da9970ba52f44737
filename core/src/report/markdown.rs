//! The report as Markdown: the verdict as the title, then RTO/RPO, verification, findings, where
//! the time went, a timeline table per lane, the commands that ran and how to run it again.
//!
//! Text from runbooks, inventories and journals is escaped or put in code spans, as in the plan's
//! Markdown, so a node name cannot inject markup.

use std::fmt::{Result, Write};

use super::{FactsRow, OperationSummary, Report, StepReport, StepStatus, offset_ms, result_words};
use crate::format::markdown::{code_span, fenced_block, plain_text, table_row};
use crate::humanize::{duration, human_ms};

/// Renders `report` as Markdown.
pub fn render(report: &Report) -> String {
    let mut out = String::new();
    write_report(&mut out, report).expect("writing to a String cannot fail");
    out
}

fn write_report(out: &mut String, report: &Report) -> Result {
    verdict(out, report)?;
    drill(out, report)?;
    verification(out, report)?;
    node_facts(out, report)?;
    findings(out, report)?;
    time_spent(out, report)?;
    timeline(out, report)?;
    commands(out, report)?;
    reproduce(out, report)?;
    run(out, report)
}

fn verdict(out: &mut String, report: &Report) -> Result {
    let verdict = &report.verdict;
    match &verdict.reason {
        Some(reason) => writeln!(out, "# {}: {}", verdict.title, rich(reason))?,
        None => writeln!(out, "# {}", verdict.title)?,
    }
    let run = &report.run;
    let mut facts = vec![format!(
        "Runbook {} on inventory {}",
        code_span(&run.runbook),
        code_span(&run.inventory)
    )];
    if run.production {
        facts.push("**production**".into());
    }
    if run.check {
        facts.push("check mode".into());
    }
    writeln!(out, "\n{}.", facts.join(", "))?;
    if !run.summary.is_empty() {
        writeln!(out, "\n{}", plain_text(&run.summary))?;
    }
    writeln!(out, "\n| | |\n|---|---|")?;
    let timing = &report.timing;
    table_row(out, &["Started", &super::timestamp_text(timing.started_at)])?;
    table_row(
        out,
        &["Last event", &super::timestamp_text(timing.ended_at)],
    )?;
    let sessions = match timing.sessions {
        1 => String::new(),
        n => format!(" ({n} sessions: resumed {} times)", n - 1),
    };
    table_row(
        out,
        &["Total", &format!("{}{sessions}", human_ms(timing.total_ms))],
    )?;
    if let Some(downtime) = &report.downtime {
        let value = match (downtime.duration_ms, &downtime.to_step) {
            (Some(ms), Some(to)) => format!(
                "{} ({} to {})",
                human_ms(ms),
                code_span(&downtime.from_step),
                code_span(to)
            ),
            _ => format!(
                "**not over**: no health wait or verification succeeded after {} began",
                code_span(&downtime.from_step)
            ),
        };
        table_row(out, &[&capitalised(&downtime.label), &value])?;
    }
    table_row(out, &["Steps", &counts(&report.steps)])
}

/// A sentence whose backticked parts are keys: those as code spans, the rest escaped. With an
/// odd number of backticks the whole sentence is escaped text.
fn rich(text: &str) -> String {
    if text.matches('`').count() % 2 == 1 {
        return plain_text(text);
    }
    text.split('`')
        .enumerate()
        .map(|(i, part)| {
            if i % 2 == 1 {
                code_span(part)
            } else {
                plain_text(part)
            }
        })
        .collect()
}

fn capitalised(text: &str) -> String {
    let mut chars = text.chars();
    chars
        .next()
        .map(|first| first.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

/// `10 succeeded, 1 failed, 2 skipped`.
pub(super) fn counts(steps: &[StepReport]) -> String {
    let order = [
        StepStatus::Succeeded,
        StepStatus::Shown,
        StepStatus::Failed,
        StepStatus::TimedOut,
        StepStatus::NoRecordedEnd,
        StepStatus::Skipped,
        StepStatus::NotRun,
    ];
    let parts: Vec<String> = order
        .iter()
        .filter_map(|status| {
            let n = steps.iter().filter(|s| s.status == *status).count();
            (n > 0).then(|| format!("{n} {}", status.words()))
        })
        .collect();
    if parts.is_empty() {
        "none".into()
    } else {
        parts.join(", ")
    }
}

fn drill(out: &mut String, report: &Report) -> Result {
    writeln!(out, "\n## RTO / RPO\n")?;
    let Some(drill) = &report.drill else {
        return writeln!(out, "Not a drill: no RTO or RPO was measured.");
    };
    writeln!(out, "| | |\n|---|---|")?;
    let rto = drill.rto.map_or("not measured".to_string(), duration);
    table_row(
        out,
        &[
            "RTO (disaster declared to quorum healthy and verified)",
            &rto,
        ],
    )?;
    match &drill.rpo {
        Some(rpo) => {
            table_row(out, &["RPO: snapshot age", &duration(rpo.snapshot_age)])?;
            let lost = rpo
                .revisions_lost
                .map_or("unknown".to_string(), |n| n.to_string());
            table_row(out, &["RPO: revisions lost", &lost])
        }
        None => table_row(out, &["RPO", "not measured"]),
    }
}

/// Steps that check the cluster: steady-state probes, health waits and `verify.*` steps.
pub(super) fn is_check(step: &StepReport) -> bool {
    step.phase != "main" || step.action == "wait.healthy" || step.action.starts_with("verify.")
}

fn verification(out: &mut String, report: &Report) -> Result {
    writeln!(out, "\n## Verification\n")?;
    let mut any = false;
    if let Some(drill) = &report.drill {
        if !drill.verifications.is_empty() {
            any = true;
            writeln!(out, "| Drill check | Result | Detail |\n|---|---|---|")?;
            for v in &drill.verifications {
                table_row(
                    out,
                    &[
                        &plain_text(&v.name),
                        if v.passed { "passed" } else { "**FAILED**" },
                        &plain_text(&v.detail),
                    ],
                )?;
            }
            writeln!(out)?;
        }
    }
    let checks: Vec<&StepReport> = report.steps.iter().filter(|s| is_check(s)).collect();
    if !checks.is_empty() {
        any = true;
        writeln!(out, "| Check step | Action | Result |\n|---|---|---|")?;
        for step in checks {
            table_row(
                out,
                &[
                    &code_span(&step.key),
                    &code_span(&step.action),
                    &emphasised(step, &status_text(step)),
                ],
            )?;
        }
    }
    if !any {
        writeln!(out, "No verification ran.")?;
    }
    Ok(())
}

/// A step's status with its error or skip reason, escaped.
fn status_text(step: &StepReport) -> String {
    let text = match (&step.status, &step.error, &step.skip) {
        (StepStatus::Skipped, _, Some(reason)) => format!("skipped: {reason}"),
        (StepStatus::Failed, Some(error), _) => format!("failed: {error}"),
        (_, Some(error), _) => error.clone(),
        (status, _, _) => status.words().to_string(),
    };
    rich(&text)
}

fn emphasised(step: &StepReport, text: &str) -> String {
    if step.status.is_failure() || step.status == StepStatus::NoRecordedEnd {
        format!("**{text}**")
    } else {
        text.to_string()
    }
}

/// What each node said before the run touched it: the real paths the run acted on.
fn node_facts(out: &mut String, report: &Report) -> Result {
    if report.node_facts.is_empty() {
        return Ok(());
    }
    writeln!(out, "\n## Node facts\n")?;
    table_row(out, &FactsRow::COLUMNS)?;
    writeln!(out, "|---|---|---|---|---|---|")?;
    for facts in &report.node_facts {
        let row = FactsRow::of(facts);
        table_row(
            out,
            &[
                &code_span(&row.node),
                &row.configuration
                    .as_deref()
                    .map_or_else(String::new, code_span),
                &row.data_dir.as_deref().map_or_else(String::new, code_span),
                &plain_text(&row.filesystem),
                &plain_text(&row.process),
                &plain_text(&row.etcdutl),
            ],
        )?;
    }
    Ok(())
}

fn findings(out: &mut String, report: &Report) -> Result {
    writeln!(out, "\n## Findings\n")?;
    if report.findings.is_empty() {
        writeln!(out, "Nothing stood out.")?;
    }
    for finding in &report.findings {
        let kind = serde_json::to_value(finding.kind)
            .ok()
            .and_then(|v| v.as_str().map(|s| s.replace('_', " ")))
            .unwrap_or_default();
        writeln!(out, "- **{kind}**: {}", rich(&finding.message))?;
    }
    let failed: Vec<&StepReport> = report
        .steps
        .iter()
        .filter(|s| s.status.is_failure() && !s.output_tail.is_empty())
        .collect();
    let failed_rollbacks: Vec<&StepReport> = report
        .steps
        .iter()
        .filter(|s| {
            s.rollback.as_ref().is_some_and(|r| {
                r.result != Some(crate::journal::StepResult::Succeeded) && !r.output_tail.is_empty()
            })
        })
        .collect();
    if !failed.is_empty() || !failed_rollbacks.is_empty() {
        writeln!(out, "\n### Output of what failed")?;
    }
    for step in failed {
        writeln!(
            out,
            "\n{} (last lines):\n\n{}",
            code_span(&step.key),
            fenced_block(&step.output_tail, "text")
        )?;
    }
    for step in failed_rollbacks {
        let tail = step
            .rollback
            .as_ref()
            .map(|r| r.output_tail.as_str())
            .unwrap_or_default();
        writeln!(
            out,
            "\nRollback of {} (last lines):\n\n{}",
            code_span(&step.key),
            fenced_block(tail, "text")
        )?;
    }
    Ok(())
}

fn time_spent(out: &mut String, report: &Report) -> Result {
    writeln!(out, "\n## Where the time went")?;
    let spent = &report.time_spent;
    for (title, shares, code) in [
        ("Phase", &spent.by_phase, false),
        ("Lane", &spent.by_lane, true),
        ("Runbook step", &spent.by_step, true),
    ] {
        writeln!(
            out,
            "\n| {title} | Steps run | Wall-clock | Busy (sum of attempts) |\n|---|---:|---:|---:|"
        )?;
        for share in shares {
            let name = if code {
                code_span(&share.name)
            } else {
                plain_text(&share.name)
            };
            table_row(
                out,
                &[
                    &name,
                    &share.steps.to_string(),
                    &human_ms(share.span_ms),
                    &human_ms(share.busy_ms),
                ],
            )?;
        }
    }
    Ok(())
}

fn timeline(out: &mut String, report: &Report) -> Result {
    writeln!(out, "\n## Timeline\n")?;
    writeln!(out, "Offsets count from the run's start.\n")?;
    for marker in &report.markers {
        writeln!(
            out,
            "- `{}` {}",
            offset_ms(marker.at_ms),
            plain_text(&marker.label)
        )?;
    }
    for lane in &report.lanes {
        let mut steps: Vec<&StepReport> = report.steps.iter().filter(|s| &s.lane == lane).collect();
        if steps.is_empty() {
            continue;
        }
        // Steps that ran in start order; the others after them, in plan order.
        steps.sort_by_key(|s| s.start_ms.unwrap_or(u64::MAX));
        writeln!(out, "\n### {}\n", code_span(lane))?;
        writeln!(
            out,
            "| Start | Step | Duration | Attempts | Result |\n|---:|---|---:|---:|---|"
        )?;
        for step in steps {
            let mut result = emphasised(step, &status_text(step));
            if let Some(rollback) = &step.rollback {
                result.push_str(&format!(
                    "; rolled back at `{}`: {}",
                    offset_ms(rollback.start_ms),
                    plain_text(&result_words(rollback.result.as_ref()))
                ));
            }
            if let Some(skip) = step.rollback_skipped {
                result.push_str(&format!("; left as it was by the rollback: {}", skip));
            }
            table_row(
                out,
                &[
                    &step
                        .start_ms
                        .map(offset_ms)
                        .map_or("".into(), |o| format!("`{o}`")),
                    &code_span(&step.key),
                    &step.duration_ms.map(human_ms).unwrap_or_default(),
                    &step.attempts.len().to_string(),
                    &result,
                ],
            )?;
        }
    }
    Ok(())
}

fn commands(out: &mut String, report: &Report) -> Result {
    writeln!(out, "\n## Commands that ran\n")?;
    writeln!(
        out,
        "As the plan rendered them; `⟨…⟩` marks values filled in when the step ran. Output is in the journal."
    )?;
    let mut ran: Vec<&StepReport> = report
        .steps
        .iter()
        .filter(|s| !s.attempts.is_empty())
        .collect();
    ran.sort_by_key(|s| s.start_ms);
    if ran.is_empty() {
        writeln!(out, "\nNone.")?;
    }
    // Instances of one step that ran the same script with the same result are shown once.
    let mut groups: Vec<Vec<&StepReport>> = Vec::new();
    for step in ran {
        match groups.last_mut() {
            Some(group)
                if group[0].step == step.step
                    && group[0].status == step.status
                    && group[0].operation.script.is_some()
                    && group[0].operation.script == step.operation.script
                    && group[0].operation.args == step.operation.args =>
            {
                group.push(step)
            }
            _ => groups.push(vec![step]),
        }
    }
    for group in groups {
        let keys: Vec<String> = group.iter().map(|s| code_span(&s.key)).collect();
        let lanes: Vec<String> = group.iter().map(|s| code_span(&s.lane)).collect();
        writeln!(
            out,
            "\n### {} on {}: {}",
            keys.join(", "),
            lanes.join(", "),
            plain_text(group[0].status.words())
        )?;
        if group.len() == 1 {
            operation(out, &group[0].operation)?;
        } else {
            writeln!(out, "\nThe same shell script on each:")?;
            if let Some(script) = &group[0].operation.script {
                writeln!(out, "\n{}", fenced_block(script, "sh"))?;
            }
        }
    }
    let mut rollbacks: Vec<&StepReport> = report
        .steps
        .iter()
        .filter(|s| s.rollback.is_some())
        .collect();
    rollbacks.sort_by_key(|s| s.rollback.as_ref().map(|r| r.start_ms));
    for step in rollbacks {
        let rollback = step.rollback.as_ref().expect("filtered on rollbacks");
        writeln!(
            out,
            "\n### Rollback of {} on {}: {}",
            code_span(&step.key),
            code_span(&step.lane),
            plain_text(&result_words(rollback.result.as_ref()))
        )?;
        match &rollback.operation {
            Some(op) => operation(out, op)?,
            None => writeln!(out, "\nNothing could run: the step cannot be undone.")?,
        }
    }
    Ok(())
}

fn operation(out: &mut String, op: &OperationSummary) -> Result {
    writeln!(out, "\n{}", plain_text(&op.headline))?;
    if !op.args.is_empty() {
        writeln!(out)?;
    }
    for arg in &op.args {
        writeln!(out, "- {}: {}", code_span(&arg.name), code_span(&arg.value))?;
    }
    if let Some(script) = &op.script {
        writeln!(out, "\n{}", fenced_block(script, "sh"))?;
    }
    Ok(())
}

fn reproduce(out: &mut String, report: &Report) -> Result {
    writeln!(out, "\n## Reproduce\n")?;
    let reproduce = &report.reproduce;
    let commands: Vec<&str> = [&reproduce.run, &reproduce.resume, &reproduce.rollback]
        .into_iter()
        .flatten()
        .map(String::as_str)
        .collect();
    let labels = [
        reproduce.run.as_ref().map(|_| "# run it again"),
        reproduce.resume.as_ref().map(|_| "# continue this run"),
        reproduce
            .rollback
            .as_ref()
            .map(|_| "# undo what this run completed"),
    ];
    let mut text = String::new();
    for (label, command) in labels.into_iter().flatten().zip(&commands) {
        text.push_str(&format!("{label}\n{command}\n"));
    }
    writeln!(out, "{}", fenced_block(&text, "sh"))?;
    if !reproduce.secret_params.is_empty() {
        let names: Vec<String> = reproduce
            .secret_params
            .iter()
            .map(|n| code_span(n))
            .collect();
        writeln!(
            out,
            "\nSecret parameters are never stored: give {} again in place of `...`.",
            names.join(", ")
        )?;
    }
    Ok(())
}

fn run(out: &mut String, report: &Report) -> Result {
    writeln!(out, "\n## Run\n\n| | |\n|---|---|")?;
    let run = &report.run;
    table_row(out, &["Run id", &code_span(&run.id)])?;
    if let Some(dir) = &run.run_dir {
        table_row(out, &["Directory", &code_span(dir)])?;
    }
    for file in &report.reproduce.files {
        table_row(out, &["File", &code_span(file)])?;
    }
    table_row(out, &["Runbook file", &code_span(&run.runbook_file)])?;
    table_row(out, &["Inventory file", &code_span(&run.inventory_file)])?;
    let digest = if run.plan_matches {
        format!("`{}`", short(&run.plan_digest))
    } else {
        format!(
            "`{}` (**not** the plan this report was made with)",
            short(&run.plan_digest)
        )
    };
    table_row(out, &["Plan digest", &digest])?;
    if let Some(version) = &run.etcdrill {
        table_row(out, &["etcdrill", &code_span(version)])?;
    }
    if let Some(at) = &run.generated_at {
        table_row(out, &["Report generated", &super::timestamp_text(*at)])?;
    }
    Ok(())
}

fn short(digest: &str) -> &str {
    digest.get(..12).unwrap_or(digest)
}
