//! The plan as a Graphviz `digraph`: one box per step (probes as ellipses, destructive steps red
//! and bold), the steps of a wave on one rank, edges labelled with the outcome they wait for when
//! it is not success.
//!
//! Node ids are `s<index>`, never keys: keys hold node names, which may hold anything.

use std::fmt::{Result, Write};

use petgraph::visit::EdgeRef;

use super::describe::one_line;
use crate::plan::Plan;
use crate::runbook::action::Nature;
use crate::runbook::step::Outcome;

/// Renders `plan` as a Graphviz graph.
pub fn render(plan: &Plan) -> String {
    let mut out = String::new();
    write_graph(&mut out, plan).expect("writing to a String cannot fail");
    out
}

fn write_graph(out: &mut String, plan: &Plan) -> Result {
    let header = &plan.header;
    writeln!(out, "digraph plan {{")?;
    writeln!(
        out,
        "  graph [rankdir=TB, labelloc=t, label={}];",
        quote(&one_line(&format!(
            "runbook {} on inventory {}",
            header.runbook, header.inventory
        )))
    )?;
    writeln!(out, "  node [shape=box, fontname=\"Helvetica\"];")?;
    writeln!(out, "  edge [fontname=\"Helvetica\"];")?;
    for (index, step) in plan.steps() {
        let mut label = format!("{}\n{}", one_line(&step.key), one_line(&step.title));
        let mut attributes = Vec::new();
        if step.nature == Nature::Probe {
            attributes.push("shape=ellipse");
        }
        if step.destructive {
            label.push_str("\nDESTRUCTIVE");
            attributes.push("color=red, fontcolor=red, style=bold, penwidth=2");
        }
        let attributes: String = attributes.iter().map(|a| format!(", {a}")).collect();
        writeln!(
            out,
            "  s{} [label={}{attributes}];",
            index.index(),
            quote(&label)
        )?;
    }
    let mut edges: Vec<_> = plan.graph.edge_references().collect();
    edges.sort_by_key(|edge| (edge.source(), edge.target()));
    for edge in edges {
        let style = match edge.weight() {
            Outcome::Success => String::new(),
            outcome => format!(" [label={}, style=dashed]", quote(&outcome.to_string())),
        };
        writeln!(
            out,
            "  s{} -> s{}{style};",
            edge.source().index(),
            edge.target().index()
        )?;
    }
    for wave in plan.waves().iter().filter(|wave| wave.len() > 1) {
        let ids: Vec<String> = wave
            .iter()
            .map(|index| format!("s{};", index.index()))
            .collect();
        writeln!(out, "  {{ rank=same; {} }}", ids.join(" "))?;
    }
    writeln!(out, "}}")
}

/// A DOT double-quoted string: backslashes and quotes escaped, line breaks as `\n`.
fn quote(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            other => out.push(other),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_quoted_and_escaped() {
        let cases = [
            ("stop@cp1", r#""stop@cp1""#),
            ("a \"b\"", r#""a \"b\"""#),
            ("back\\slash \\l", r#""back\\slash \\l""#),
            ("two\nlines", r#""two\nlines""#),
            ("<html> {rec|ord} ;", r#""<html> {rec|ord} ;""#),
        ];
        for (input, expected) in cases {
            assert_eq!(quote(input), expected, "{input}");
        }
    }
}
