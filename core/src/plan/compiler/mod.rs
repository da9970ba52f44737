//! Compiles a runbook, an inventory and parameter values into a [`Plan`].
//!
//! Everything is validated here, before the first side effect of any run. The stages, in order:
//!
//! 1. `parameters`: the values given are checked against the runbook's parameters.
//! 2. `topology`: the inventory's member count against the runbook's `topology`. Problems in
//!    either stop here: later stages would only repeat them in other words.
//! 3. `expansion`: each steady-state probe and step becomes one plan step per place it runs on,
//!    through
//!    - `placement`: the controller, the cluster or the nodes its target names;
//!    - `references`: the outputs of earlier steps its templates may use;
//!    - `templates`: its condition and `with:` rendered strictly, parsed into the typed action;
//!    - `operations`: the action made an etcd call, a node script or a native call;
//!    - `rollback`: how it is undone.
//! 4. `pairing`: the edges: `needs` node to node or to every instance, `serial` chains, and the
//!    steady-state probes around the main steps.
//! 5. `header`: what the plan was compiled from.
//!
//! Problems are collected and reported together, each at its place in its file.

mod expansion;
mod header;
mod operations;
mod pairing;
mod parameters;
mod placement;
mod references;
mod rollback;
mod templates;
mod topology;

use std::collections::HashMap;
use std::rc::Rc;

use indexmap::IndexMap;
use petgraph::graph::{DiGraph, NodeIndex};
use serde_json::Value;

use super::context::{self, RunValues};
use super::{Phase, Plan, PlanStep};
use crate::diagnostic::{Diagnostic, DiagnosticSink, Diagnostics};
use crate::document::Document;
use crate::human_duration::HumanDuration;
use crate::inventory::Cluster;
use crate::render::{Renderer, TemplateContext};
use crate::runbook::Runbook;
use crate::runbook::action::ActionKind;
use crate::runbook::step::{Outcome, OutputCapture, Retries, RollbackSpec, Target};
use crate::source::{Location, SourceFile, YamlPath};

pub use references::referenced_step_ids;

/// A parameter value given from outside the runbook, and where it was written.
#[derive(Debug, Clone)]
pub struct ParamInput {
    /// Parameter name.
    pub name: String,
    /// The value (text from `-p`, any YAML value from a drill file).
    pub value: serde_yaml::Value,
    /// The file or command line it came from, for errors.
    pub source: SourceFile,
    /// Where in it.
    pub location: Option<Location>,
}

/// Compiles `runbook` against `cluster` with the given parameter values.
pub fn compile(
    runbook: &Document<Runbook>,
    cluster: &Cluster,
    inputs: &[ParamInput],
) -> Result<Plan, Diagnostics> {
    compile_with(runbook, cluster, inputs, None)
}

/// Compiles again during a run, with the values known by then (run id, outputs of finished
/// steps) and secrets revealed, so that a deferred step runs exactly what the plan showed with its
/// placeholders filled in. The result is for execution only: it holds secrets, never print it.
pub fn compile_for_run(
    runbook: &Document<Runbook>,
    cluster: &Cluster,
    inputs: &[ParamInput],
    values: &RunValues,
) -> Result<Plan, Diagnostics> {
    compile_with(runbook, cluster, inputs, Some(values))
}

fn compile_with(
    runbook: &Document<Runbook>,
    cluster: &Cluster,
    inputs: &[ParamInput],
    values: Option<&RunValues>,
) -> Result<Plan, Diagnostics> {
    let mut sink = DiagnosticSink::default();
    let params = parameters::resolve_params(runbook, cluster, inputs, &mut sink);
    topology::check_topology(runbook, cluster, &mut sink);
    // Later stages would only repeat the same problems in other words.
    sink.finish(())?;
    let secrets: Vec<&str> = runbook
        .value
        .params
        .iter()
        .filter(|(_, spec)| spec.secret)
        .map(|(name, _)| name.as_str())
        .collect();
    let base = context::base(cluster, &params, &secrets, values);
    let places = std::iter::once(None)
        .chain(cluster.nodes.iter().map(Some))
        .map(|node| {
            (
                node.map(|n| n.name.as_str()),
                context::for_place(&base, node),
            )
        })
        .collect();
    let step_index = runbook
        .value
        .steps
        .iter()
        .enumerate()
        .map(|(i, s)| (s.id.as_str(), i))
        .collect();
    let mut compiler = Compiler {
        runbook,
        cluster,
        renderer: Renderer::new(),
        base,
        places,
        contexts: HashMap::new(),
        step_index,
        values,
        graph: DiGraph::new(),
        instances: HashMap::new(),
        sink: DiagnosticSink::default(),
    };
    compiler.expand_all();
    compiler.connect_all();
    let header = header::header(runbook, cluster, &params, &secrets);
    let graph = compiler.graph;
    compiler.sink.finish(Plan { header, graph })
}

/// Which runbook entry an instance comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Origin {
    Probe(usize, Phase),
    Step(usize),
}

/// What is common to steps and steady-state probes, for expansion.
struct Entry<'a> {
    id: &'a str,
    title: &'a str,
    path: YamlPath,
    target: &'a Target,
    action: ActionKind,
    with: &'a serde_yaml::Mapping,
    when: Option<&'a str>,
    timeout: Option<HumanDuration>,
    retries: Option<&'a Retries>,
    rollback: &'a RollbackSpec,
    confirm: Option<&'a str>,
    destructive: Option<bool>,
    idempotent: Option<bool>,
    probe: Option<bool>,
    captures: IndexMap<String, OutputCapture>,
}

/// The compiler's state through expansion and pairing: its inputs, the graph built so far and
/// the problems found.
struct Compiler<'a> {
    runbook: &'a Document<Runbook>,
    cluster: &'a Cluster,
    renderer: Renderer,
    base: Value,
    /// The context of each place (`None`: the controller or the cluster), by node name, before
    /// step outputs.
    places: HashMap<Option<&'a str>, Value>,
    /// The contexts made so far, by place and step outputs: instances with the same share one.
    contexts: HashMap<ContextKey<'a>, Rc<SharedContext>>,
    /// Each runbook step's index, by id.
    step_index: HashMap<&'a str, usize>,
    values: Option<&'a RunValues>,
    graph: DiGraph<PlanStep, Outcome>,
    /// Instances of each runbook entry, with their node (None for controller and cluster steps).
    instances: HashMap<Origin, Vec<(Option<String>, NodeIndex)>>,
    sink: DiagnosticSink,
}

/// What a template context depends on: the place (a node's name, or `None`) and the outputs of
/// the steps its templates use.
type ContextKey<'a> = (Option<&'a str>, Vec<(&'a str, Vec<String>)>);

/// A template context shared by the instances that see the same values.
struct SharedContext {
    /// For rendering.
    template: TemplateContext,
    /// For the plan's [`StepTemplate`](super::StepTemplate)s, made once the first deferred
    /// instance needs it.
    value: std::cell::OnceCell<std::sync::Arc<Value>>,
}

impl SharedContext {
    /// The context as a value steps can share.
    fn value(&self) -> std::sync::Arc<Value> {
        self.value
            .get_or_init(|| std::sync::Arc::new(self.template.value().clone()))
            .clone()
    }
}

impl<'a> Compiler<'a> {
    /// An error at `path` in the runbook.
    fn error(&self, path: &YamlPath, message: impl Into<String>) -> Diagnostic {
        self.runbook.error_at(path, message)
    }
}

#[cfg(test)]
mod tests;
