//! The rollback policy past a point of no return: once a step that cannot be undone has succeeded
//! (`--force-new-cluster`, a member removal, a compaction, a restored cluster that served), a later
//! failure undoes nothing. Undoing the steps after it would stop members that serve the new state
//! (the survivor of a quorum recovery, the restored cluster) and undoing those before it cannot
//! bring the old state back; the cluster is left as it is, and the run says exactly what was done,
//! what failed and what a person must still do, in order.

use petgraph::graph::NodeIndex;

use crate::journal::SkipReason;
use crate::plan::{Condition, Plan, Rollback};
use crate::schedule::{Schedule, StepState};

/// Why a failed run is not rolled back, and what a person must do next; `None` when no completed
/// step is irreversible (the run is rolled back as usual).
pub(crate) fn advice(
    plan: &Plan,
    completed: &[(NodeIndex, Rollback)],
    schedule: &Schedule<'_>,
    run_dir: &std::path::Path,
) -> Option<String> {
    let points: Vec<&str> = completed
        .iter()
        .filter(|(_, rollback)| *rollback == Rollback::Irreversible)
        .map(|(index, _)| plan.graph[*index].key.as_str())
        .collect();
    let last = *points.last()?;
    let failed_at: Vec<NodeIndex> = plan
        .graph
        .node_indices()
        .filter(|i| *schedule.state(*i) == StepState::Failed)
        .collect();
    let failed: Vec<String> = failed_at
        .iter()
        .map(|i| format!("`{}` ({})", plan.graph[*i].key, plan.graph[*i].title))
        .collect();
    // What the failure kept from running: everything after a failed step that had something to
    // do (not a path that was not taken, not a step whose condition ruled it out).
    let mut after = std::collections::HashSet::new();
    let mut walk = petgraph::visit::Dfs::empty(&plan.graph);
    for start in &failed_at {
        walk.move_to(*start);
        while let Some(i) = walk.next(&plan.graph) {
            after.insert(i);
        }
    }
    let not_run: Vec<String> = plan
        .graph
        .node_indices()
        .filter(|i| after.contains(i) && !failed_at.contains(i))
        .filter(|i| !matches!(plan.graph[*i].when, Condition::SkippedAtCompile(_)))
        .filter(|i| {
            !matches!(
                schedule.state(*i),
                StepState::Succeeded
                    | StepState::Failed
                    | StepState::Skipped(SkipReason::Condition { .. } | SkipReason::Role { .. })
            )
        })
        .map(|i| format!("`{}` ({})", plan.graph[i].key, plan.graph[i].title))
        .collect();
    let mut text = format!(
        "nothing was undone: `{last}` succeeded and cannot be undone (the point of no return{}), so \
         undoing the steps after it would stop members that serve now, and undoing those before it \
         cannot bring the old cluster back.",
        if points.len() > 1 {
            format!("; also {}", points[..points.len() - 1].join(", "))
        } else {
            String::new()
        }
    );
    text.push_str("\nwhat a person must do next, in order:");
    let mut n = 1;
    let mut item = |text: &mut String, line: String| {
        text.push_str(&format!("\n  {n}. {line}"));
        n += 1;
    };
    if !failed.is_empty() {
        item(
            &mut text,
            format!(
                "find why {} failed: `etcdrill report {}` shows its error and output",
                failed.join(", "),
                run_dir.display()
            ),
        );
    }
    if not_run.is_empty() {
        item(
            &mut text,
            "fix that cause by hand; no step was left unrun".into(),
        );
    } else {
        item(
            &mut text,
            format!(
                "fix it, then carry out by hand the failed step and these steps, which did not \
                 run, in this order (`etcdrill plan` with the same runbook, inventory and \
                 parameters shows their commands):\n     - {}",
                not_run.join("\n     - ")
            ),
        );
    }
    item(
        &mut text,
        "check the cluster: `etcdrill health` and `etcdrill members` with the same inventory"
            .into(),
    );
    Some(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::Cluster;
    use crate::plan::{Operation, compile};
    use crate::runbook::Runbook;
    use crate::source::SourceFile;

    /// A plan of controller steps `stop -> force -> start -> add`.
    fn plan() -> Plan {
        let step = |id: &str, needs: &str| {
            format!(
                "  - {{id: {id}, title: {id}, on: controller, action: shell, with: {{run: 'true'}}{needs}}}\n"
            )
        };
        let steps = [
            step("stop", ""),
            step("force", ", needs: [stop]"),
            step("start", ", needs: [force]"),
            step("add", ", needs: [start]"),
        ]
        .concat();
        let runbook = Runbook::load(SourceFile::new(
            "rb.yaml",
            format!("name: t\nsummary: s\nsteps:\n{steps}"),
        ))
        .unwrap();
        let inventory = "name: lab\ndefaults: {etcd: {management: {static_pod: {}}}}\nnodes:\n  - {name: a, address: 10.0.0.1}\n";
        let cluster = Cluster::load(SourceFile::new("inv.yaml", inventory)).unwrap();
        compile(&runbook, &cluster, &[]).unwrap()
    }

    fn run(script: &str) -> Rollback {
        Rollback::Run {
            operation: Operation::Script {
                script: script.into(),
            },
        }
    }

    #[test]
    fn only_an_irreversible_completed_step_stops_the_rollback() {
        let plan = plan();
        let idx = |key: &str| plan.find(key).unwrap();
        let mut schedule = Schedule::new(&plan);
        for (key, state) in [
            ("stop", StepState::Succeeded),
            ("force", StepState::Succeeded),
            ("start", StepState::Failed),
        ] {
            schedule.decide();
            schedule.finish(idx(key), state);
        }
        schedule.decide();
        let reversible = [(idx("stop"), run("start"))];
        assert_eq!(advice(&plan, &reversible, &schedule, "/r".as_ref()), None);
        let past = [
            (idx("stop"), run("start")),
            (idx("force"), Rollback::Irreversible),
        ];
        let text = advice(&plan, &past, &schedule, "/r".as_ref()).unwrap();
        assert!(
            text.contains("`force` succeeded and cannot be undone"),
            "{text}"
        );
        assert!(
            text.contains("find why `start` (start) failed: `etcdrill report /r`"),
            "{text}"
        );
        assert!(text.contains("commands):\n     - `add` (add)"), "{text}");
        assert!(!text.contains("`stop`"), "{text}");
    }
}
