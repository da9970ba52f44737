//! The Plan: a DAG of concrete steps, one per node where a step runs per node, each with its
//! rendered operation, rollback and flags. Dry-run prints it; the executor runs exactly it.

mod compiler;
mod context;
mod host_path;
mod node_script;

use indexmap::IndexMap;
use petgraph::graph::{DiGraph, NodeIndex};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::human_duration::HumanDuration;
use crate::runbook::action::{Action, ActionKind, CopyDirection, Nature};
use crate::runbook::step::{Outcome, OutputCapture, Retries};

pub use compiler::referenced_step_ids;
pub use compiler::{ParamInput, compile, compile_for_run};
pub use context::RunValues;
pub use node_script::room_check;

/// A compiled runbook, ready to review or run.
#[derive(Debug, Clone)]
pub struct Plan {
    /// What was compiled, and with what.
    pub header: PlanHeader,
    /// Steps and the outcomes their edges wait for; an edge runs from dependency to dependent.
    pub graph: DiGraph<PlanStep, Outcome>,
}

/// What a plan was compiled from.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlanHeader {
    /// Runbook name.
    pub runbook: String,
    /// Runbook summary.
    pub summary: String,
    /// Runbook file as given, and the sha256 of its text.
    pub runbook_file: FileDigest,
    /// Inventory (cluster) name.
    pub inventory: String,
    /// Inventory file as given, and the sha256 of its text.
    pub inventory_file: FileDigest,
    /// Whether the inventory is marked production.
    pub production: bool,
    /// The nodes, in inventory order.
    pub nodes: Vec<NodeSummary>,
    /// Parameter values; secret ones are masked.
    pub params: IndexMap<String, serde_json::Value>,
}

/// A file and the digest of its content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileDigest {
    /// The path as given.
    pub path: String,
    /// Hex sha256 of the text.
    pub sha256: String,
}

impl FileDigest {
    /// The digest of `text` read from `path`.
    pub fn of(path: &std::path::Path, text: &str) -> Self {
        Self {
            path: path.display().to_string(),
            sha256: crate::humanize::hex(&Sha256::digest(text.as_bytes())),
        }
    }
}

/// A node as a plan shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NodeSummary {
    /// Node name.
    pub name: String,
    /// Address.
    pub address: String,
    /// `static_pod` or `external`.
    pub management: String,
    /// `ssh` or `local`.
    pub transport: String,
}

/// Which part of a run a step belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Steady-state probes checked before the first step.
    SteadyBefore,
    /// The runbook's steps.
    Main,
    /// Steady-state probes checked after the last step.
    SteadyAfter,
}

/// Where a step runs.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(tag = "kind", content = "node", rename_all = "snake_case")]
pub enum Host {
    /// The machine running etcdrill.
    Controller,
    /// The cluster as a whole, through the etcd API.
    Cluster,
    /// One node.
    Node(String),
}

impl std::fmt::Display for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Host::Controller => f.write_str("controller"),
            Host::Cluster => f.write_str("cluster"),
            Host::Node(name) => f.write_str(name),
        }
    }
}

/// A role resolved at run time that decides whether a per-node instance runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RoleGuard {
    /// Runs only on the node that is the leader.
    Leader,
    /// Runs only on nodes that are followers.
    Follower,
}

/// What a step does, fully rendered.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Operation {
    /// A POSIX shell script run on the step's host (a node, or the controller).
    Script {
        /// The script.
        script: String,
    },
    /// An etcd API call from the controller.
    Etcd {
        /// Endpoints to call (one member's, or every member's).
        endpoints: Vec<String>,
        /// The typed call and its arguments.
        call: Action,
    },
    /// Work etcdrill does itself on the controller (e.g. verifying a snapshot file).
    Native {
        /// The typed action and its arguments.
        call: Action,
    },
    /// A file copied between the controller and the step's node.
    Copy {
        /// Push (controller to node) or pull.
        direction: CopyDirection,
        /// Source path.
        from: String,
        /// Destination path.
        to: String,
    },
    /// A snapshot file on the controller streamed to the step's node: one read of the file
    /// serves every node whose instance starts with it, both ends hash the bytes, and the copy
    /// is renamed into place only when they agree and the sha256 trailer checks out.
    Distribute {
        /// The snapshot on the controller.
        from: String,
        /// Where it goes on the node.
        to: String,
        /// The endpoints a new snapshot is taken from into `from` when it does not exist yet;
        /// empty when `from` must exist.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        save_from: Vec<String>,
    },
}

impl Operation {
    /// Whether the operation still holds values only known at run time.
    pub fn is_deferred(&self) -> bool {
        use crate::render::has_placeholder;
        match self {
            Operation::Script { script } => has_placeholder(script),
            Operation::Copy { from, to, .. } => has_placeholder(from) || has_placeholder(to),
            Operation::Distribute {
                from,
                to,
                save_from,
            } => {
                has_placeholder(from)
                    || has_placeholder(to)
                    || save_from.iter().any(|e| has_placeholder(e))
            }
            // Any string of the call: its JSON, scanned as it is written, never held.
            Operation::Etcd { .. } | Operation::Native { .. } => {
                let mut scan = PlaceholderScan::default();
                // The scan stops the writer at the first placeholder, as an error.
                let _ = serde_json::to_writer(&mut scan, self);
                scan.found
            }
        }
    }
}

/// A writer that only notes whether the text written holds a placeholder's opening mark.
#[derive(Default)]
struct PlaceholderScan {
    found: bool,
    /// The last bytes written, for a mark split between two writes.
    tail: Vec<u8>,
}

impl std::io::Write for PlaceholderScan {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let mut mark = [0; 4];
        let mark = crate::render::PLACEHOLDER_OPEN
            .encode_utf8(&mut mark)
            .as_bytes();
        self.tail.extend_from_slice(buf);
        if self.tail.windows(mark.len()).any(|w| w == mark) {
            self.found = true;
            return Err(std::io::Error::other("placeholder found"));
        }
        let keep = self.tail.len().saturating_sub(mark.len() - 1);
        self.tail.drain(..keep);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// What undoes a step.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Rollback {
    /// Nothing to undo: the step only reads, or leaves nothing that matters.
    NotNeeded,
    /// The step cannot be undone; a failed run after it needs a person.
    Irreversible,
    /// The runbook says not to undo it.
    Declined,
    /// This operation undoes it.
    Run {
        /// The undoing operation, on the step's host.
        operation: Operation,
    },
}

/// When a step runs, beyond its dependencies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "expression", rename_all = "snake_case")]
pub enum Condition {
    /// Always.
    Always,
    /// Evaluated at run time (it refers to outputs or run values).
    AtRunTime(String),
    /// Evaluated false at compile time: the step is shown but will be skipped.
    SkippedAtCompile(String),
}

/// One concrete step of a plan.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlanStep {
    /// Unique key: the step id, with `@node` for per-node instances.
    pub key: String,
    /// The runbook step (or steady-state probe) id.
    pub step: String,
    /// Title.
    pub title: String,
    /// Phase.
    pub phase: Phase,
    /// Where it runs.
    pub host: Host,
    /// A run-time role this instance is subject to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<RoleGuard>,
    /// The action kind.
    pub action: ActionKind,
    /// Probe or action.
    pub nature: Nature,
    /// Destroys data or membership.
    pub destructive: bool,
    /// Safe to run again (resume may re-run it).
    pub idempotent: bool,
    /// The rendered operation; placeholders `⟨…⟩` mark run-time values.
    pub operation: Operation,
    /// What undoes it.
    pub rollback: Rollback,
    /// What check mode runs in its place: a read-only check of what the operation needs on its
    /// node (binaries, room, no leftovers, the manifest), for actions with something to check.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preflight: Option<Operation>,
    /// Its condition.
    pub when: Condition,
    /// A question a person must confirm first.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub confirm: Option<String>,
    /// Longest time one attempt may take.
    pub timeout: HumanDuration,
    /// Retries.
    pub retries: Retries,
    /// Output names later steps may use.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub outputs: Vec<String>,
    /// How a `shell` step's outputs are captured.
    #[serde(skip_serializing_if = "IndexMap::is_empty")]
    pub captures: IndexMap<String, OutputCapture>,
    /// What the executor re-renders when the operation is deferred.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub template: Option<StepTemplate>,
}

/// The unrendered action and context of a step whose operation depends on run-time values.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StepTemplate {
    /// The step's `with:` as written.
    pub with: serde_json::Value,
    /// The compile-time context (params, inventory, node...); run-time values are added to it.
    /// Instances with the same context share one copy.
    #[serde(serialize_with = "shared_value")]
    pub context: std::sync::Arc<serde_json::Value>,
}

fn shared_value<S: serde::Serializer>(
    value: &std::sync::Arc<serde_json::Value>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serde::Serialize::serialize(value.as_ref(), serializer)
}

/// Counts shown at the end of a plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct PlanSummary {
    /// Step instances.
    pub steps: usize,
    /// Probes among them.
    pub probes: usize,
    /// Destructive ones.
    pub destructive: usize,
    /// Nodes touched.
    pub nodes: usize,
    /// Waves of parallel work.
    pub waves: usize,
}

impl Plan {
    /// The steps in waves: every step of a wave depends only on steps of earlier waves.
    pub fn waves(&self) -> Vec<Vec<NodeIndex>> {
        let order = petgraph::algo::toposort(&self.graph, None).expect("a plan graph has no cycle");
        let mut level = vec![0usize; self.graph.node_count()];
        for &index in &order {
            let here = self
                .graph
                .neighbors_directed(index, petgraph::Direction::Incoming)
                .map(|dependency| level[dependency.index()] + 1)
                .max()
                .unwrap_or(0);
            level[index.index()] = here;
        }
        let mut waves: Vec<Vec<NodeIndex>> = Vec::new();
        for &index in &order {
            let wave = level[index.index()];
            if waves.len() <= wave {
                waves.resize_with(wave + 1, Vec::new);
            }
            waves[wave].push(index);
        }
        for wave in &mut waves {
            wave.sort();
        }
        waves
    }

    /// The steps in a stable order: by wave, then by position in the runbook.
    pub fn steps(&self) -> impl Iterator<Item = (NodeIndex, &PlanStep)> {
        self.waves()
            .into_iter()
            .flatten()
            .map(|index| (index, &self.graph[index]))
    }

    /// The steps a step waits for, with the outcome it waits for.
    pub fn needs(&self, index: NodeIndex) -> Vec<(&PlanStep, Outcome)> {
        let mut needs: Vec<_> = self
            .graph
            .edges_directed(index, petgraph::Direction::Incoming)
            .map(|edge| {
                use petgraph::visit::EdgeRef;
                (edge.source(), *edge.weight())
            })
            .collect();
        needs.sort_by_key(|(source, _)| *source);
        needs
            .into_iter()
            .map(|(source, outcome)| (&self.graph[source], outcome))
            .collect()
    }

    /// The nearest step `index` waits for, directly or through others, that `wanted` accepts:
    /// breadth first along the edges, ties to the earlier step.
    pub fn nearest_dependency(
        &self,
        index: NodeIndex,
        wanted: impl Fn(NodeIndex) -> bool,
    ) -> Option<NodeIndex> {
        let mut queue = std::collections::VecDeque::from([index]);
        let mut seen = std::collections::HashSet::from([index]);
        while let Some(current) = queue.pop_front() {
            let mut dependencies: Vec<NodeIndex> = self
                .graph
                .neighbors_directed(current, petgraph::Direction::Incoming)
                .collect();
            dependencies.sort();
            for dependency in dependencies {
                if wanted(dependency) {
                    return Some(dependency);
                }
                if seen.insert(dependency) {
                    queue.push_back(dependency);
                }
            }
        }
        None
    }

    /// The step with this key.
    pub fn find(&self, key: &str) -> Option<NodeIndex> {
        self.graph
            .node_indices()
            .find(|&i| self.graph[i].key == key)
    }

    /// Counts for the plan's summary line.
    pub fn summary(&self) -> PlanSummary {
        let nodes: std::collections::HashSet<_> = self
            .graph
            .node_weights()
            .filter_map(|s| match &s.host {
                Host::Node(name) => Some(name.as_str()),
                _ => None,
            })
            .collect();
        PlanSummary {
            steps: self.graph.node_count(),
            probes: self
                .graph
                .node_weights()
                .filter(|s| s.nature == Nature::Probe)
                .count(),
            destructive: self.graph.node_weights().filter(|s| s.destructive).count(),
            nodes: nodes.len(),
            waves: self.waves().len(),
        }
    }

    /// The plan as one serialisable document: header, steps with their needs, waves, summary.
    pub fn document(&self) -> PlanDocument<'_> {
        PlanDocument {
            format: PLAN_FORMAT_VERSION,
            header: &self.header,
            steps: self
                .steps()
                .map(|(index, step)| DocumentStep {
                    needs: self
                        .needs(index)
                        .into_iter()
                        .map(|(dependency, outcome)| DocumentNeed {
                            step: dependency.key.clone(),
                            outcome,
                        })
                        .collect(),
                    step,
                })
                .collect(),
            waves: self
                .waves()
                .into_iter()
                .map(|wave| {
                    wave.into_iter()
                        .map(|i| self.graph[i].key.clone())
                        .collect()
                })
                .collect(),
            summary: self.summary(),
        }
    }

    /// The sha256 of the plan document: the identity resume checks before continuing a run.
    pub fn digest(&self) -> String {
        let json = serde_json::to_vec(&self.document()).expect("a plan serialises");
        crate::humanize::hex(&Sha256::digest(json))
    }
}

/// Version of the plan document format.
pub const PLAN_FORMAT_VERSION: u32 = 1;

/// A plan as one serialisable value.
#[derive(Debug, Serialize)]
pub struct PlanDocument<'a> {
    /// Document format version.
    pub format: u32,
    /// What was compiled.
    pub header: &'a PlanHeader,
    /// Steps in wave order.
    pub steps: Vec<DocumentStep<'a>>,
    /// Step keys by wave.
    pub waves: Vec<Vec<String>>,
    /// Counts.
    pub summary: PlanSummary,
}

/// A step in a [`PlanDocument`].
#[derive(Debug, Serialize)]
pub struct DocumentStep<'a> {
    /// The step.
    #[serde(flatten)]
    pub step: &'a PlanStep,
    /// What it waits for.
    pub needs: Vec<DocumentNeed>,
}

/// A dependency in a [`PlanDocument`].
#[derive(Debug, Serialize)]
pub struct DocumentNeed {
    /// The key of the step waited for.
    pub step: String,
    /// The outcome waited for.
    pub outcome: Outcome,
}
