//! Checks the graph of step ids that `needs` draws: every id known, no step needing itself, and
//! no cycle (a cycle is printed in full).

use std::collections::HashMap;

use petgraph::algo::tarjan_scc;
use petgraph::graphmap::DiGraphMap;

use super::Runbook;
use crate::diagnostic::DiagnosticSink;
use crate::document::Document;
use crate::source::YamlPath;

pub(super) fn check(document: &Document<Runbook>, sink: &mut DiagnosticSink) {
    let steps = &document.value.steps;
    let index: HashMap<&str, usize> = steps
        .iter()
        .enumerate()
        .map(|(i, s)| (s.id.as_str(), i))
        .collect();
    let mut graph = DiGraphMap::<usize, usize>::new();
    for i in 0..steps.len() {
        graph.add_node(i);
    }
    let need_path = |step: usize, need: usize| {
        YamlPath::root()
            .key("steps")
            .index(step)
            .key("needs")
            .index(need)
    };

    for (i, step) in steps.iter().enumerate() {
        for (n, need) in step.needs.iter().enumerate() {
            let path = need_path(i, n);
            match index.get(need.step.as_str()) {
                None => sink.push(
                    document
                        .error_at(
                            &path,
                            format!("step `{}` needs unknown step `{}`", step.id, need.step),
                        )
                        .expected("the id of a step in this runbook")
                        .suggest(&need.step, steps.iter().map(|s| s.id.as_str())),
                ),
                Some(&j) if j == i => sink.push(
                    document
                        .error_at(&path, format!("step `{}` needs itself", step.id))
                        .hint("remove it from its own `needs`"),
                ),
                // Edge from the dependency to the dependent, labelled with the `needs` entry.
                Some(&j) => {
                    graph.add_edge(j, i, n);
                }
            }
        }
    }

    for component in tarjan_scc(&graph) {
        if component.len() < 2 {
            continue;
        }
        // Walk the cycle in dependency order, starting from the step listed first in the file.
        let start = *component.iter().min().expect("component is not empty");
        let mut cycle = vec![start];
        let mut current = start;
        loop {
            let next = graph
                .neighbors(current)
                .filter(|n| component.contains(n))
                .min()
                .expect("every member of a cycle has a successor in it");
            if next == start || cycle.contains(&next) {
                break;
            }
            cycle.push(next);
            current = next;
        }
        let names: Vec<&str> = cycle
            .iter()
            .chain(std::iter::once(&start))
            .map(|&i| steps[i].id.as_str())
            .collect();
        // Point at the `needs` entry that closes the cycle: the start needs the last step.
        let last = *cycle.last().expect("cycle is not empty");
        let entry = graph.edge_weight(last, start).copied().unwrap_or(0);
        sink.push(
            document
                .error_at(&need_path(start, entry), format!("dependency cycle: {}", names.join(" -> ")))
                .hint("a step cannot wait, directly or indirectly, for a step that waits for it; remove one of these `needs`"),
        );
    }
}

#[cfg(test)]
mod tests {
    use crate::runbook::Runbook;
    use crate::source::SourceFile;

    fn errors(steps: &str) -> String {
        let text = format!("name: t\nsummary: s\nsteps:\n{steps}");
        Runbook::load(SourceFile::new("rb.yaml", text))
            .unwrap_err()
            .to_string()
    }

    fn step(id: &str, needs: &str) -> String {
        format!(
            "  - id: {id}\n    title: T\n    on: cluster\n    action: etcd.health\n    needs: [{needs}]\n"
        )
    }

    #[test]
    fn cycles_are_printed_in_full() {
        let err = errors(&(step("a", "c") + &step("b", "a") + &step("c", "b")));
        assert!(err.contains("dependency cycle: a -> b -> c -> a"), "{err}");
        assert!(err.contains("rb.yaml:8:13"), "{err}");
    }

    #[test]
    fn unknown_needs_suggest_a_close_id() {
        let err = errors(&(step("stop-members", "") + &step("b", "stop-membrs")));
        assert!(err.contains("needs unknown step `stop-membrs`"), "{err}");
        assert!(err.contains("did you mean `stop-members`?"), "{err}");
    }

    #[test]
    fn self_needs_are_refused() {
        let err = errors(&step("a", "a"));
        assert!(err.contains("step `a` needs itself"), "{err}");
    }
}
