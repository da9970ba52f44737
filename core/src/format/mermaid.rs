//! The plan as a Mermaid `flowchart TD`: one box per step (probes as stadiums, destructive steps
//! red and bold), edges labelled with the outcome they wait for when it is not success.
//!
//! Node ids are `s<index>`, never keys: keys hold node names, which may hold anything. Labels are
//! quoted, with Mermaid's `#name;` entities for characters that would end or mark them up.

use std::fmt::{Result, Write};

use petgraph::visit::EdgeRef;

use super::describe::one_line;
use crate::plan::Plan;
use crate::runbook::action::Nature;
use crate::runbook::step::Outcome;

/// Renders `plan` as a Mermaid flowchart.
pub fn render(plan: &Plan) -> String {
    let mut out = String::new();
    write_flowchart(&mut out, plan).expect("writing to a String cannot fail");
    out
}

fn write_flowchart(out: &mut String, plan: &Plan) -> Result {
    writeln!(out, "flowchart TD")?;
    let mut destructive = Vec::new();
    for (index, step) in plan.steps() {
        let mut label = format!("{}<br/>{}", escape(&step.key), escape(&step.title));
        if step.destructive {
            label.push_str("<br/>DESTRUCTIVE");
            destructive.push(format!("s{}", index.index()));
        }
        let (open, close) = match step.nature {
            Nature::Probe => ("([", "])"),
            Nature::Action => ("[", "]"),
        };
        writeln!(out, "  s{}{open}\"{label}\"{close}", index.index())?;
    }
    let mut edges: Vec<_> = plan.graph.edge_references().collect();
    edges.sort_by_key(|edge| (edge.source(), edge.target()));
    for edge in edges {
        let arrow = match edge.weight() {
            Outcome::Success => "-->".to_string(),
            outcome => format!("-.->|{outcome}|"),
        };
        writeln!(
            out,
            "  s{} {arrow} s{}",
            edge.source().index(),
            edge.target().index()
        )?;
    }
    if !destructive.is_empty() {
        writeln!(
            out,
            "  classDef destructive fill:#fdd,stroke:#c00,stroke-width:3px,color:#900,font-weight:bold"
        )?;
        writeln!(out, "  class {} destructive", destructive.join(","))?;
    }
    Ok(())
}

/// Text for inside a quoted Mermaid label: one line, with entities for `"`, `#`, `<`, `>`, `&`
/// and the backtick (which starts Markdown strings).
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in one_line(text).chars() {
        match c {
            '"' => out.push_str("#quot;"),
            '#' => out.push_str("#35;"),
            '<' => out.push_str("#lt;"),
            '>' => out.push_str("#gt;"),
            '&' => out.push_str("#amp;"),
            '`' => out.push_str("#96;"),
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_use_entities_for_markup() {
        let cases = [
            ("stop@cp1", "stop@cp1"),
            ("say \"hi\"", "say #quot;hi#quot;"),
            ("#35; <b> & `x`", "#35;35; #lt;b#gt; #amp; #96;x#96;"),
            ("two\nlines", "two\\nlines"),
            (
                "[brackets] (parens) {braces};",
                "[brackets] (parens) {braces};",
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(escape(input), expected, "{input}");
        }
    }
}
