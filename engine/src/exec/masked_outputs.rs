//! Step outputs that held a secret, which the journal keeps only masked, and how a resumed run
//! gets their real values back.
//!
//! A later step must get an output's real value, never [`MASK`]. When a run is resumed, every
//! step still to run that reads such an output makes resume either run the producing step again,
//! if it is read-only (a probe: running it again changes nothing), or refuse, naming both steps,
//! before anything runs. An undo of a completed step that reads such an output is not run: it is
//! reported failed, for a person.

use std::collections::{BTreeMap, HashMap};

use petgraph::graph::NodeIndex;

use crate::plan::{Host, Plan};
use crate::redact::MASK;
use crate::run_state::RunState;
use crate::runbook::action::Nature;
use crate::schedule::Schedule;

/// A step still to run that reads an output the journal keeps masked, from a step that changes
/// things and so is not run again to recover it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "step `{reader}` needs output `{output}` of step `{producer}`, which held a secret: the journal keeps only its masked value, and `{producer}` is not read-only, so resume does not run it again to recover the value; roll back with `etcdrill rollback {run}` and run the runbook again (a step whose output carries a secret is best declared `probe: true`, which resume runs again)"
)]
pub struct MaskedOutputError {
    /// The step that reads the output.
    pub reader: String,
    /// The step that produced it.
    pub producer: String,
    /// The output's name.
    pub output: String,
    /// The run's directory, for the hint.
    pub run: String,
}

/// Decides, for a run resumed from its journal's replay `state`, which finished steps run again to recover outputs
/// that later steps read and the journal keeps masked, and marks them in `schedule` to run
/// again before the steps that read them. Refuses when such a step is not read-only.
pub(super) fn recover(
    plan: &Plan,
    state: &RunState,
    schedule: &mut Schedule<'_>,
    run: &str,
) -> Result<Vec<NodeIndex>, MaskedOutputError> {
    let masked = masked_outputs(state);
    let mut again = Vec::new();
    for reader in plan.graph.node_indices() {
        if schedule.state(reader).is_settled() {
            continue;
        }
        let reading = &plan.graph[reader];
        let text = serde_json::to_string(reading).unwrap_or_default();
        for (producer, output) in masked_reads(plan, &masked, &reading.host, &text) {
            let producing = &plan.graph[producer];
            if producing.nature != Nature::Probe {
                return Err(MaskedOutputError {
                    reader: reading.key.clone(),
                    producer: producing.key.clone(),
                    output: output.to_owned(),
                    run: run.to_owned(),
                });
            }
            again.push((producer, reader));
        }
    }
    for &(producer, reader) in &again {
        schedule.run_again(producer, reader);
    }
    let mut producers: Vec<NodeIndex> = again.into_iter().map(|(producer, _)| producer).collect();
    producers.sort();
    producers.dedup();
    Ok(producers)
}

/// For each of `completed` (steps an earlier controller completed) whose undo reads an output
/// the journal keeps masked, why the undo is not run: a rollback never runs it with the masked
/// value, and cannot run the producing step again (a rollback runs no steps forward).
pub(super) fn masked_undos(
    plan: &Plan,
    state: &RunState,
    completed: impl IntoIterator<Item = NodeIndex>,
) -> HashMap<NodeIndex, String> {
    let masked = masked_outputs(state);
    let mut undos = HashMap::new();
    for index in completed {
        let step = &plan.graph[index];
        let text = serde_json::to_string(&step.rollback).unwrap_or_default();
        if let Some((producer, output)) = masked_reads(plan, &masked, &step.host, &text).first() {
            undos.insert(
                index,
                format!(
                    "this step's undo needs output `{output}` of step `{}`, which held a secret: the journal keeps only its masked value, so the undo is not run with it; a person must undo this step",
                    plan.graph[*producer].key
                ),
            );
        }
    }
    undos
}

/// The outputs of each step's last successful end that hold a masked secret, by name.
fn masked_outputs(state: &RunState) -> BTreeMap<&str, Vec<&str>> {
    state
        .outputs()
        .map(|(step, outputs)| {
            let names = outputs
                .iter()
                .filter(|(_, value)| value.contains(MASK))
                .map(|(name, _)| name.as_str())
                .collect();
            (step, names)
        })
        .collect()
}

/// The masked outputs (producing step, output name) that `text`, rendered for a step on `host`,
/// reads.
fn masked_reads<'m>(
    plan: &Plan,
    masked: &BTreeMap<&str, Vec<&'m str>>,
    host: &Host,
    text: &str,
) -> Vec<(NodeIndex, &'m str)> {
    let mut reads = Vec::new();
    for (&key, names) in masked {
        let Some(producer) = plan.find(key) else {
            continue;
        };
        let step = &plan.graph[producer].step;
        if !reads_instance(plan, host, step, key) {
            continue;
        }
        for &output in names {
            if mentions(text, &format!("steps.{step}.outputs.{output}")) {
                reads.push((producer, output));
            }
        }
    }
    reads
}

/// Whether a step on `host` reads the outputs of instance `key` of runbook step `step`: its own
/// node's instance when there is one, else the step's single instance.
fn reads_instance(plan: &Plan, host: &Host, step: &str, key: &str) -> bool {
    match host {
        Host::Node(node) if plan.find(&format!("{step}@{node}")).is_some() => {
            key == format!("{step}@{node}")
        }
        _ => true,
    }
}

/// Whether `text` mentions the template path `path` as a whole (not `path` followed by more of a
/// name).
fn mentions(text: &str, path: &str) -> bool {
    text.match_indices(path).any(|(at, _)| {
        !text[at + path.len()..]
            .chars()
            .next()
            .is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '-')
    })
}

#[cfg(test)]
mod tests {
    use super::mentions;

    #[test]
    fn a_path_is_mentioned_only_whole() {
        let path = "steps.print.outputs.said";
        for (text, whole) in [
            ("⟨steps.print.outputs.said⟩", true),
            ("{{steps.print.outputs.said}}", true),
            ("steps.print.outputs.said == 'x'", true),
            ("⟨steps.print.outputs.said_more⟩", false),
            (
                "⟨steps.print.outputs.said-more⟩ ⟨steps.print.outputs.said⟩",
                true,
            ),
            ("⟨steps.print.outputs.other⟩", false),
        ] {
            assert_eq!(mentions(text, path), whole, "{text}");
        }
    }
}
