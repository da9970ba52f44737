//! Stage 4: the edges of the plan. Each `needs` entry pairs instances node to node or waits for
//! every instance, `serial` steps chain their instances, and steady-state probes bracket the
//! main steps.

use std::collections::HashMap;

use petgraph::graph::NodeIndex;

use super::{Compiler, Origin};
use crate::plan::Phase;
use crate::runbook::step::{Need, Outcome, Pairing};
use crate::source::YamlPath;

impl<'a> Compiler<'a> {
    pub(super) fn connect_all(&mut self) {
        let runbook = &self.runbook.value;
        let step_index: HashMap<&str, usize> = runbook
            .steps
            .iter()
            .enumerate()
            .map(|(i, s)| (s.id.as_str(), i))
            .collect();
        for (i, step) in runbook.steps.iter().enumerate() {
            for (n, need) in step.needs.iter().enumerate() {
                let Some(&j) = step_index.get(need.step.as_str()) else {
                    continue;
                };
                self.connect(
                    i,
                    j,
                    need,
                    &YamlPath::root().key("steps").index(i).key("needs").index(n),
                );
            }
            if step.serial {
                let chain: Vec<NodeIndex> = self.instances[&Origin::Step(i)]
                    .iter()
                    .map(|(_, idx)| *idx)
                    .collect();
                for pair in chain.windows(2) {
                    self.graph.update_edge(pair[0], pair[1], Outcome::Success);
                }
            }
        }
        // Steady-state probes bracket the main steps.
        let probes = |phase: Phase| -> Vec<NodeIndex> {
            (0..runbook.steady_state.len())
                .filter_map(|i| self.instances.get(&Origin::Probe(i, phase)))
                .flatten()
                .map(|(_, idx)| *idx)
                .collect()
        };
        let before = probes(Phase::SteadyBefore);
        let after = probes(Phase::SteadyAfter);
        let main: Vec<NodeIndex> = (0..runbook.steps.len())
            .flat_map(|i| self.instances[&Origin::Step(i)].iter().map(|(_, idx)| *idx))
            .collect();
        let has = |idx: NodeIndex, direction| {
            self.graph
                .neighbors_directed(idx, direction)
                .next()
                .is_some()
        };
        let roots: Vec<NodeIndex> = main
            .iter()
            .copied()
            .filter(|&m| !has(m, petgraph::Direction::Incoming))
            .collect();
        let sinks: Vec<NodeIndex> = main
            .iter()
            .copied()
            .filter(|&m| !has(m, petgraph::Direction::Outgoing))
            .collect();
        for &probe in &before {
            for &root in &roots {
                self.graph.update_edge(probe, root, Outcome::Success);
            }
        }
        let last = if main.is_empty() { &before } else { &sinks };
        for &probe in &after {
            for &sink in last {
                self.graph.update_edge(sink, probe, Outcome::Success);
            }
        }
    }

    /// Draws the edges of one `needs` entry: step `i` waits for step `j`.
    fn connect(&mut self, i: usize, j: usize, need: &Need, path: &YamlPath) {
        let runbook = &self.runbook.value;
        let (dependent, dependency) = (&runbook.steps[i], &runbook.steps[j]);
        let both_per_node = dependent.on.is_per_node() && dependency.on.is_per_node();
        // Node to node by default only between steps that both run on several nodes; a step on
        // one named node is simply waited for, or waits for every instance.
        let both_multi_node = dependent.on.is_multi_node() && dependency.on.is_multi_node();
        let pairing = match need.pairing {
            Pairing::Auto if both_multi_node => Pairing::Node,
            Pairing::Auto => Pairing::All,
            explicit => explicit,
        };
        if pairing == Pairing::Node && !both_per_node {
            self.sink.push(
                self.error(path, format!("`pairing: node` needs two per-node steps, but `{}` runs on `{}` and `{}` on `{}`", dependent.id, dependent.on, dependency.id, dependency.on))
                    .hint("use `pairing: all`, or leave pairing out"),
            );
            return;
        }
        let sources = self.instances[&Origin::Step(j)].clone();
        let targets = self.instances[&Origin::Step(i)].clone();
        for (node, target) in targets {
            let matched: Vec<NodeIndex> = match pairing {
                Pairing::Node => sources
                    .iter()
                    .filter(|(n, _)| *n == node)
                    .map(|(_, idx)| *idx)
                    .collect(),
                _ => sources.iter().map(|(_, idx)| *idx).collect(),
            };
            if matched.is_empty() && pairing == Pairing::Node {
                let node = node.unwrap_or_default();
                self.sink.push(
                    self.error(path, format!("`{}` on node `{node}` pairs with no instance of `{}`, which runs on `{}`", dependent.id, dependency.id, dependency.on))
                        .hint("per-node steps pair node to node; set `pairing: all` to wait for every instance instead"),
                );
                continue;
            }
            for source in matched {
                self.graph.update_edge(source, target, need.outcome);
            }
        }
    }
}
