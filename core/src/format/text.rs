//! The plan for a terminal: the header, then every step wave by wave (what runs in parallel),
//! with its host, guards, dependencies, the fully rendered operation and its rollback.

use std::fmt::{Result, Write};

use petgraph::graph::NodeIndex;

use super::describe::{self, OperationView, RollbackView, Style, one_line};
use crate::plan::{Host, Operation, Plan};

/// Keys and expressions in backticks; everything from a user's file on one line, escaped.
const STYLE: Style = Style {
    code: |text| format!("`{}`", one_line(text)),
    plain: one_line,
};

/// Indentation of a step's details under its title line.
const DETAIL: &str = "    ";
/// Indentation of a script or of arguments under their headline.
const BODY: &str = "        ";

/// Renders `plan` as plain text.
pub fn render(plan: &Plan) -> String {
    let mut out = String::new();
    write_plan(&mut out, plan).expect("writing to a String cannot fail");
    out
}

fn write_plan(out: &mut String, plan: &Plan) -> Result {
    header(out, plan)?;
    let waves = plan.waves();
    for (number, wave) in waves.iter().enumerate() {
        let size = match wave.len() {
            1 => "1 step".to_string(),
            n => format!("{n} steps in parallel"),
        };
        let title = format!("Wave {} of {} ({size})", number + 1, waves.len());
        writeln!(out, "\n{title}\n{}", "=".repeat(title.chars().count()))?;
        for &index in wave {
            step(out, plan, index)?;
        }
    }
    writeln!(out, "\nSummary: {}", describe::summary(plan))
}

fn header(out: &mut String, plan: &Plan) -> Result {
    let header = &plan.header;
    writeln!(
        out,
        "Plan: runbook `{}` on inventory `{}`",
        one_line(&header.runbook),
        one_line(&header.inventory)
    )?;
    if !header.summary.is_empty() {
        writeln!(out, "{}", one_line(&header.summary))?;
    }
    writeln!(out)?;
    for (label, file) in [
        ("runbook:   ", &header.runbook_file),
        ("inventory: ", &header.inventory_file),
    ] {
        writeln!(
            out,
            "{label} {} (sha256 {})",
            one_line(&file.path),
            describe::short_digest(&file.sha256)
        )?;
    }
    let production = if header.production {
        "YES: destructive steps need an explicit flag to run"
    } else {
        "no"
    };
    writeln!(out, "production: {production}")?;
    writeln!(out, "nodes:")?;
    for node in &header.nodes {
        writeln!(
            out,
            "  {} {} ({}, {})",
            one_line(&node.name),
            one_line(&node.address),
            node.management,
            node.transport
        )?;
    }
    if header.params.is_empty() {
        writeln!(out, "params:     none")?;
    } else {
        writeln!(out, "params:")?;
        let names: Vec<String> = header.params.keys().map(|name| one_line(name)).collect();
        let width = names
            .iter()
            .map(|name| name.chars().count())
            .max()
            .unwrap_or(0);
        for (name, value) in names.iter().zip(header.params.values()) {
            writeln!(out, "  {name:width$} = {}", one_line(&value.to_string()))?;
        }
    }
    if describe::has_placeholders(plan) {
        writeln!(out, "\n{}", describe::PLACEHOLDER_LEGEND)?;
    }
    Ok(())
}

fn step(out: &mut String, plan: &Plan, index: NodeIndex) -> Result {
    let step = &plan.graph[index];
    write!(out, "\n{}: {}", one_line(&step.key), one_line(&step.title))?;
    if step.destructive {
        write!(out, "   *** DESTRUCTIVE ***")?;
    }
    writeln!(out)?;
    let mut details = vec![format!(
        "{} {} on {}; {}",
        describe::nature(step),
        step.action,
        describe::host(&STYLE, &step.host),
        describe::limits(step)
    )];
    details.extend(describe::phase(step).map(str::to_string));
    details.extend(describe::role(&STYLE, step));
    details.extend(describe::condition(&STYLE, step));
    details.extend(
        step.confirm
            .as_ref()
            .map(|question| format!("CONFIRM before running: {}", one_line(question))),
    );
    details.extend(describe::waits(&STYLE, plan, index));
    details.extend(describe::outputs(&STYLE, step).map(|outputs| format!("outputs: {outputs}")));
    for line in details {
        writeln!(out, "{DETAIL}{line}")?;
    }
    operation(
        out,
        "does",
        &describe::operation(&STYLE, &step.operation, &step.host),
    )?;
    match describe::rollback(&STYLE, step) {
        RollbackView::Sentence(sentence) => writeln!(out, "{DETAIL}rollback: {sentence}"),
        RollbackView::Run(view) => operation(out, "rollback", &view),
    }
}

/// One operation as the text plan shows it, e.g. for check mode's "shown, not run".
pub fn describe_operation(op: &Operation, host: &Host) -> String {
    let mut out = String::new();
    operation(
        &mut out,
        "would run",
        &describe::operation(&STYLE, op, host),
    )
    .expect("writing to a String cannot fail");
    out
}

fn operation(out: &mut String, label: &str, view: &OperationView) -> Result {
    writeln!(out, "{DETAIL}{label}: {}", view.headline)?;
    for (name, value) in &view.args {
        writeln!(out, "{BODY}{name}: {value}")?;
    }
    let script = view
        .script
        .as_deref()
        .map(describe::block)
        .unwrap_or_default();
    for line in script.lines() {
        if line.is_empty() {
            writeln!(out)?;
        } else {
            writeln!(out, "{BODY}{line}")?;
        }
    }
    Ok(())
}
