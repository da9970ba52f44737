//! The plan as Markdown for a pull-request review: a heading, the parameters, one table of every
//! step, then a section per step with its scripts in fenced `sh` blocks.
//!
//! Text from users' files is escaped (or put in code spans long enough to hold its backticks) so
//! that a name or a script can neither break the layout nor inject markup.

use std::fmt::{Result, Write};

use petgraph::graph::NodeIndex;

use super::describe::{self, OperationView, RollbackView, Style, one_line};
use crate::plan::Plan;

/// Keys and expressions as code spans; everything else from a user's file escaped.
const STYLE: Style = Style {
    code: code_line,
    plain: |text| escape(&one_line(text)),
};

/// Renders `plan` as Markdown.
pub fn render(plan: &Plan) -> String {
    let mut out = String::new();
    write_plan(&mut out, plan).expect("writing to a String cannot fail");
    out
}

fn write_plan(out: &mut String, plan: &Plan) -> Result {
    header(out, plan)?;
    overview(out, plan)?;
    for (number, wave) in plan.waves().iter().enumerate() {
        let parallel = if wave.len() > 1 { " (in parallel)" } else { "" };
        writeln!(out, "\n## Wave {}{parallel}", number + 1)?;
        for &index in wave {
            step(out, plan, index)?;
        }
    }
    writeln!(out, "\n## Summary\n\n{}", describe::summary(plan))
}

fn header(out: &mut String, plan: &Plan) -> Result {
    let header = &plan.header;
    writeln!(
        out,
        "# Plan: {} on {}",
        code_line(&header.runbook),
        code_line(&header.inventory)
    )?;
    if !header.summary.is_empty() {
        writeln!(out, "\n{}", (STYLE.plain)(&header.summary))?;
    }
    writeln!(out, "\n| | |\n|---|---|")?;
    for (label, file) in [
        ("Runbook", &header.runbook_file),
        ("Inventory", &header.inventory_file),
    ] {
        row(
            out,
            &[
                label,
                &format!(
                    "{} (sha256 `{}`)",
                    code_line(&file.path),
                    describe::short_digest(&file.sha256)
                ),
            ],
        )?;
    }
    let production = if header.production {
        "**YES**: destructive steps need an explicit flag to run"
    } else {
        "no"
    };
    row(out, &["Production", production])?;
    let nodes: Vec<String> = header
        .nodes
        .iter()
        .map(|node| {
            format!(
                "{} {} ({}, {})",
                code_line(&node.name),
                (STYLE.plain)(&node.address),
                node.management,
                node.transport
            )
        })
        .collect();
    row(out, &["Nodes", &nodes.join("<br>")])?;

    writeln!(out, "\n## Parameters\n")?;
    if header.params.is_empty() {
        writeln!(out, "None.")?;
    } else {
        writeln!(out, "| Name | Value |\n|---|---|")?;
        for (name, value) in &header.params {
            row(out, &[&code_line(name), &code_line(&value.to_string())])?;
        }
    }
    if describe::has_placeholders(plan) {
        writeln!(out, "\n> {}", describe::PLACEHOLDER_LEGEND)?;
    }
    Ok(())
}

fn overview(out: &mut String, plan: &Plan) -> Result {
    writeln!(out, "\n## Steps\n")?;
    writeln!(
        out,
        "| Wave | Step | Host | Kind | Destructive | Rollback |"
    )?;
    writeln!(out, "|---:|---|---|---|---|---|")?;
    for (number, wave) in plan.waves().iter().enumerate() {
        for &index in wave {
            let step = &plan.graph[index];
            let rollback = match describe::rollback_summary(step) {
                "IRREVERSIBLE" => "**IRREVERSIBLE**",
                other => other,
            };
            row(
                out,
                &[
                    &(number + 1).to_string(),
                    &code_line(&step.key),
                    &describe::host(&STYLE, &step.host),
                    &format!(
                        "{} `{}`",
                        describe::nature(step).to_lowercase(),
                        step.action
                    ),
                    if step.destructive {
                        "**DESTRUCTIVE**"
                    } else {
                        ""
                    },
                    rollback,
                ],
            )?;
        }
    }
    Ok(())
}

fn step(out: &mut String, plan: &Plan, index: NodeIndex) -> Result {
    let step = &plan.graph[index];
    writeln!(
        out,
        "\n### {}: {}\n",
        code_line(&step.key),
        (STYLE.plain)(&step.title)
    )?;
    if step.destructive {
        writeln!(out, "**DESTRUCTIVE**\n")?;
    }
    let mut details = vec![format!(
        "**{}** `{}` on {}; {}",
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
            .map(|question| format!("**Confirm** before running: {}", (STYLE.plain)(question))),
    );
    details.extend(describe::waits(&STYLE, plan, index));
    details.extend(describe::outputs(&STYLE, step).map(|outputs| format!("outputs: {outputs}")));
    for line in details {
        writeln!(out, "- {line}")?;
    }
    operation(
        out,
        "Does",
        &describe::operation(&STYLE, &step.operation, &step.host),
    )?;
    match describe::rollback(&STYLE, step) {
        RollbackView::Sentence(describe::IRREVERSIBLE) => {
            writeln!(out, "\nRollback: **{}**", describe::IRREVERSIBLE)
        }
        RollbackView::Sentence(sentence) => writeln!(out, "\nRollback: {sentence}"),
        RollbackView::Run(view) => operation(out, "Rollback", &view),
    }
}

fn operation(out: &mut String, label: &str, view: &OperationView) -> Result {
    writeln!(out, "\n{label}: {}", view.headline)?;
    if !view.args.is_empty() {
        writeln!(out)?;
    }
    for (name, value) in &view.args {
        writeln!(out, "- `{name}`: {}", code(&one_line(value)))?;
    }
    if let Some(script) = &view.script {
        let script = describe::block(script);
        let fence = "`".repeat(longest_run(&script, '`').max(2) + 1);
        writeln!(
            out,
            "\n{fence}sh\n{}\n{fence}",
            script.trim_end_matches('\n')
        )?;
    }
    Ok(())
}

/// A Markdown code span holding `text` on one line, for the run report.
pub(crate) fn code_span(text: &str) -> String {
    code_line(text)
}

/// `text` on one line with every markup character escaped, for the run report.
pub(crate) fn plain_text(text: &str) -> String {
    escape(&one_line(text))
}

/// A fenced code block holding `text` whatever backtick runs it contains, for the run report.
pub(crate) fn fenced_block(text: &str, language: &str) -> String {
    let text = describe::block(text);
    let fence = "`".repeat(longest_run(&text, '`').max(2) + 1);
    format!(
        "{fence}{language}\n{}\n{fence}",
        text.trim_end_matches('\n')
    )
}

/// One Markdown table row with pipes escaped, for the run report.
pub(crate) fn table_row(out: &mut String, cells: &[&str]) -> Result {
    row(out, cells)
}

/// One table row; pipes in cells are escaped, even inside code spans (GitHub's rule).
fn row(out: &mut String, cells: &[&str]) -> Result {
    let cells: Vec<String> = cells.iter().map(|cell| cell.replace('|', "\\|")).collect();
    writeln!(out, "| {} |", cells.join(" | "))
}

/// A code span of `text` on one line.
fn code_line(text: &str) -> String {
    code(&one_line(text))
}

/// A code span that holds `text` whatever backticks it contains.
fn code(text: &str) -> String {
    let ticks = "`".repeat(longest_run(text, '`') + 1);
    let pad = if text.starts_with('`') || text.ends_with('`') {
        " "
    } else {
        ""
    };
    format!("{ticks}{pad}{text}{pad}{ticks}")
}

/// Escapes every ASCII punctuation character Markdown could read as markup.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(
            c,
            '\\' | '`'
                | '*'
                | '_'
                | '['
                | ']'
                | '<'
                | '>'
                | '#'
                | '|'
                | '~'
                | '&'
                | '!'
                | '{'
                | '}'
        ) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The length of the longest run of `c` in `text`.
fn longest_run(text: &str, c: char) -> usize {
    text.split(|other| other != c)
        .map(str::len)
        .max()
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_spans_hold_any_backticks() {
        let cases = [
            ("plain", "`plain`"),
            ("a`b", "``a`b``"),
            ("`start", "`` `start ``"),
            ("a``b`", "``` a``b` ```"),
        ];
        for (input, expected) in cases {
            assert_eq!(code(input), expected, "{input}");
        }
    }

    #[test]
    fn markup_characters_are_escaped() {
        let cases = [
            ("cp1", "cp1"),
            ("*bold* _x_", "\\*bold\\* \\_x\\_"),
            ("<script>", "\\<script\\>"),
            ("[link](x)", "\\[link\\](x)"),
            ("a|b", "a\\|b"),
        ];
        for (input, expected) in cases {
            assert_eq!(escape(input), expected, "{input}");
        }
    }

    #[test]
    fn table_cells_escape_pipes() {
        let mut out = String::new();
        row(&mut out, &["`a|b`", "c"]).unwrap();
        assert_eq!(out, "| `a\\|b` | c |\n");
    }

    #[test]
    fn fences_are_longer_than_any_backtick_run_in_the_script() {
        assert_eq!(longest_run("a ``` b `", '`'), 3);
        assert_eq!(longest_run("none", '`'), 0);
    }
}
