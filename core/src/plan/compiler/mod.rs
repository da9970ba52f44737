//! Compiles a runbook, an inventory and parameter values into a [`Plan`].
//!
//! Everything is validated here, before the first side effect of any run: parameters, topology,
//! targets, templates (strict), typed arguments, node scripts and the pairing of dependencies.
//! Problems are collected and reported together, each at its place in its file.

use std::collections::{BTreeSet, HashMap};

use indexmap::IndexMap;
use petgraph::graph::{DiGraph, NodeIndex};
use serde_json::Value;

use super::context::{self, RunValues};
use super::node_script::{self, ScriptError};
use super::{
    Condition, FileDigest, Host, NodeSummary, Operation, Phase, Plan, PlanHeader, PlanStep,
    RoleGuard, Rollback, StepTemplate,
};
use crate::diagnostic::{Diagnostic, DiagnosticSink, Diagnostics, closest};
use crate::document::{Document, yaml_diagnostic};
use crate::human_duration::HumanDuration;
use crate::inventory::{Cluster, Management, Node, TransportKind};
use crate::render::{Escape, Renderer, TemplateError, refers_to_run_time};
use crate::runbook::Runbook;
use crate::runbook::action::{Action, ActionKind, Nature, Placement};
use crate::runbook::param::ParamValues;
use crate::runbook::step::{
    CheckPhase, Need, Outcome, OutputCapture, Pairing, Retries, RollbackSpec, Target,
};
use crate::source::{Location, SourceFile, YamlPath};

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
    let params = resolve_params(runbook, cluster, inputs, &mut sink);
    check_topology(runbook, cluster, &mut sink);
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
    let mut compiler = Compiler {
        runbook,
        cluster,
        renderer: Renderer::new(),
        base,
        values,
        graph: DiGraph::new(),
        instances: HashMap::new(),
        sink: DiagnosticSink::default(),
    };
    compiler.expand_all();
    compiler.connect_all();
    let header = header(runbook, cluster, &params, &secrets);
    let graph = compiler.graph;
    compiler.sink.finish(Plan { header, graph })
}

fn header(
    runbook: &Document<Runbook>,
    cluster: &Cluster,
    params: &ParamValues,
    secrets: &[&str],
) -> PlanHeader {
    let inventory = cluster.inventory();
    PlanHeader {
        runbook: runbook.value.name.clone(),
        summary: runbook.value.summary.clone(),
        runbook_file: FileDigest::of(runbook.source.path(), runbook.source.text()),
        inventory: inventory.name.clone(),
        inventory_file: FileDigest::of(
            cluster.document.source.path(),
            cluster.document.source.text(),
        ),
        production: inventory.production,
        nodes: cluster
            .nodes
            .iter()
            .map(|n| NodeSummary {
                name: n.name.clone(),
                address: n.address.clone(),
                management: match n.etcd.management {
                    Management::StaticPod(_) => "static_pod".into(),
                    Management::External(_) => "external".into(),
                },
                transport: match n.transport {
                    TransportKind::Ssh => "ssh".into(),
                    TransportKind::Local => "local".into(),
                },
            })
            .collect(),
        params: params
            .iter()
            .map(|(name, value)| {
                let shown = if secrets.contains(&name.as_str()) {
                    Value::String("********".into())
                } else {
                    value.clone()
                };
                (name.clone(), shown)
            })
            .collect(),
    }
}

fn resolve_params(
    runbook: &Document<Runbook>,
    cluster: &Cluster,
    inputs: &[ParamInput],
    sink: &mut DiagnosticSink,
) -> ParamValues {
    let specs = &runbook.value.params;
    // The line a value was given on is shown only when the value is known not to be secret: a
    // misspelt name may carry a secret as much as a secret parameter does.
    let at = |input: &ParamInput, message: String| match specs.get(&input.name) {
        Some(spec) if !spec.secret => Diagnostic::at(&input.source, input.location, message),
        _ => Diagnostic::at_unshown(&input.source, input.location, message),
    };
    let mut given: HashMap<&str, &ParamInput> = HashMap::new();
    for input in inputs {
        if !specs.contains_key(&input.name) {
            let known: Vec<&str> = specs.keys().map(String::as_str).collect();
            let mut diagnostic = at(
                input,
                format!(
                    "runbook `{}` has no parameter `{}`",
                    runbook.value.name, input.name
                ),
            )
            .expected(if known.is_empty() {
                "no parameters: this runbook takes none".to_string()
            } else {
                format!(
                    "one of {}",
                    known
                        .iter()
                        .map(|k| format!("`{k}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            });
            if let Some(best) = closest(&input.name, known.iter().copied()) {
                diagnostic = diagnostic.hint(format!("did you mean `{best}`?"));
            }
            sink.push(diagnostic);
        } else if given.insert(input.name.as_str(), input).is_some() {
            sink.push(
                at(input, format!("parameter `{}` is given twice", input.name))
                    .hint("give each parameter once"),
            );
        }
    }
    let mut values = ParamValues::new();
    for (name, spec) in specs {
        let path = YamlPath::root().key("params").key(name);
        let checked = match (given.get(name.as_str()), &spec.default) {
            (Some(input), _) => spec.check(&input.value).map_err(|err| {
                at(input, format!("parameter `{name}`: {}", err.message)).expected(err.expected)
            }),
            (None, Some(default)) => spec.check(default).map_err(|err| {
                runbook.error_at(
                    &path.key("default"),
                    format!("default of `{name}`: {}", err.message),
                )
            }),
            (None, None) => Err(runbook
                .error_at_key(&path, format!("parameter `{name}` is required"))
                .expected(spec.expected())
                .hint(format!("pass `-p {name}=...`"))),
        };
        match checked {
            Ok(value) => {
                if spec.kind == crate::runbook::param::ParamType::Node {
                    let node = value.as_str().unwrap_or_default();
                    if cluster.node(node).is_none() {
                        let names = cluster.nodes.iter().map(|n| n.name.as_str());
                        let mut diagnostic = match given.get(name.as_str()) {
                            Some(input) => at(
                                input,
                                format!("parameter `{name}`: no node `{node}` in the inventory"),
                            ),
                            None => runbook.error_at(
                                &path.key("default"),
                                format!("default of `{name}`: no node `{node}` in the inventory"),
                            ),
                        };
                        diagnostic = diagnostic.expected(format!(
                            "one of {}",
                            names
                                .clone()
                                .map(|n| format!("`{n}`"))
                                .collect::<Vec<_>>()
                                .join(", ")
                        ));
                        sink.push(diagnostic.suggest(node, names));
                        continue;
                    }
                }
                values.insert(name.clone(), value);
            }
            Err(diagnostic) => sink.push(diagnostic),
        }
    }
    values
}

fn check_topology(runbook: &Document<Runbook>, cluster: &Cluster, sink: &mut DiagnosticSink) {
    let topology = &runbook.value.topology;
    let count = cluster.nodes.len() as u32;
    let path = YamlPath::root().key("topology");
    let inventory = &cluster.document;
    let mut fail = |message: String, hint: &str| {
        sink.push(
            inventory
                .error_at(&YamlPath::root().key("nodes"), message)
                .hint(hint.to_string()),
        );
        // Also point at the rule, so both files are named.
        sink.push(runbook.error_at(
            &path,
            format!("required by `topology` of runbook `{}`", runbook.value.name),
        ));
    };
    if topology.odd_members && count % 2 == 0 {
        fail(
            format!(
                "the inventory has {count} members, but runbook `{}` needs an odd count",
                runbook.value.name
            ),
            "an even count tolerates no more failures than the odd count below it; add or remove a member first",
        );
    }
    if let Some(min) = topology.min_members.filter(|&min| count < min) {
        fail(
            format!(
                "the inventory has {count} members, but runbook `{}` needs at least {min}",
                runbook.value.name
            ),
            "use an inventory that lists every member of the cluster",
        );
    }
    if let Some(max) = topology.max_members.filter(|&max| count > max) {
        fail(
            format!(
                "the inventory has {count} members, but runbook `{}` handles at most {max}",
                runbook.value.name
            ),
            "use a runbook written for this cluster size",
        );
    }
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

struct Compiler<'a> {
    runbook: &'a Document<Runbook>,
    cluster: &'a Cluster,
    renderer: Renderer,
    base: Value,
    values: Option<&'a RunValues>,
    graph: DiGraph<PlanStep, Outcome>,
    /// Instances of each runbook entry, with their node (None for controller and cluster steps).
    instances: HashMap<Origin, Vec<(Option<String>, NodeIndex)>>,
    sink: DiagnosticSink,
}

impl<'a> Compiler<'a> {
    fn error(&self, path: &YamlPath, message: impl Into<String>) -> Diagnostic {
        self.runbook.error_at(path, message)
    }

    fn expand_all(&mut self) {
        let runbook = &self.runbook.value;
        let before: Vec<usize> = (0..runbook.steady_state.len())
            .filter(|&i| runbook.steady_state[i].check != CheckPhase::After)
            .collect();
        let after: Vec<usize> = (0..runbook.steady_state.len())
            .filter(|&i| runbook.steady_state[i].check != CheckPhase::Before)
            .collect();
        for &i in &before {
            self.expand(Origin::Probe(i, Phase::SteadyBefore));
        }
        for i in 0..runbook.steps.len() {
            self.expand(Origin::Step(i));
        }
        for &i in &after {
            self.expand(Origin::Probe(i, Phase::SteadyAfter));
        }
    }

    fn entry(&self, origin: Origin) -> Entry<'a> {
        let runbook = &self.runbook.value;
        match origin {
            Origin::Probe(i, _) => {
                let probe = &runbook.steady_state[i];
                Entry {
                    id: &probe.id,
                    title: &probe.title,
                    path: YamlPath::root().key("steady_state").index(i),
                    target: &probe.on,
                    action: probe.action,
                    with: &probe.with,
                    when: None,
                    timeout: probe.timeout,
                    retries: probe.retries.as_ref(),
                    rollback: &RollbackSpec::Natural,
                    confirm: None,
                    destructive: None,
                    idempotent: None,
                    probe: None,
                    captures: IndexMap::new(),
                }
            }
            Origin::Step(i) => {
                let step = &runbook.steps[i];
                Entry {
                    id: &step.id,
                    title: &step.title,
                    path: YamlPath::root().key("steps").index(i),
                    target: &step.on,
                    action: step.action,
                    with: &step.with,
                    when: step.when.as_deref(),
                    timeout: step.timeout,
                    retries: step.retries.as_ref(),
                    rollback: &step.rollback,
                    confirm: step.confirm.as_deref(),
                    destructive: step.destructive,
                    idempotent: step.idempotent,
                    probe: step.probe,
                    captures: step.outputs.clone(),
                }
            }
        }
    }

    /// The nodes (or none, for controller and cluster steps) an entry runs on.
    fn placements(
        &mut self,
        entry: &Entry<'_>,
    ) -> Vec<(Host, Option<&'a Node>, Option<RoleGuard>)> {
        let cluster = self.cluster;
        let all = || cluster.nodes.iter();
        let on = entry.path.key("on");
        match entry.target {
            Target::Controller => vec![(Host::Controller, None, None)],
            Target::Cluster => vec![(Host::Cluster, None, None)],
            Target::Each => all()
                .map(|n| (Host::Node(n.name.clone()), Some(n), None))
                .collect(),
            Target::Leader | Target::Followers => {
                let role = if *entry.target == Target::Leader {
                    RoleGuard::Leader
                } else {
                    RoleGuard::Follower
                };
                all()
                    .map(|n| (Host::Node(n.name.clone()), Some(n), Some(role)))
                    .collect()
            }
            Target::Node(name) => match cluster.node(name) {
                Some(n) => vec![(Host::Node(n.name.clone()), Some(n), None)],
                None => {
                    let names = all().map(|n| n.name.as_str());
                    let diagnostic = self
                        .error(
                            &on,
                            format!(
                                "no node `{name}` in inventory `{}`",
                                cluster.inventory().name
                            ),
                        )
                        .expected(format!(
                            "one of {}",
                            names
                                .clone()
                                .map(|n| format!("`{n}`"))
                                .collect::<Vec<_>>()
                                .join(", ")
                        ))
                        .suggest(name, names);
                    self.sink.push(diagnostic);
                    vec![]
                }
            },
            Target::Group(group) => {
                let members: Vec<_> = all()
                    .filter(|n| n.groups.iter().any(|g| g == group))
                    .map(|n| (Host::Node(n.name.clone()), Some(n), None))
                    .collect();
                if members.is_empty() {
                    let groups: BTreeSet<&str> = all()
                        .flat_map(|n| n.groups.iter().map(String::as_str))
                        .collect();
                    let diagnostic = self
                        .error(
                            &on,
                            format!(
                                "no node of inventory `{}` is in group `{group}`",
                                cluster.inventory().name
                            ),
                        )
                        .expected(if groups.is_empty() {
                            "a group listed under a node's `groups` (this inventory has none)"
                                .to_string()
                        } else {
                            format!(
                                "one of {}",
                                groups
                                    .iter()
                                    .map(|g| format!("`{g}`"))
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            )
                        })
                        .suggest(group, groups.iter().copied());
                    self.sink.push(diagnostic);
                }
                members
            }
        }
    }

    /// Output names of the steps `origin`'s templates refer to, among the steps it depends on
    /// (transitively). Only referenced steps go into the context: a long chain of steps must not
    /// make every context as long as the chain. A reference to a step that is not a dependency is
    /// left out, so strict rendering reports it.
    fn referenced_outputs(&self, origin: Origin, entry: &Entry<'_>) -> Vec<(&'a str, Vec<String>)> {
        let Origin::Step(start) = origin else {
            return Vec::new();
        };
        let steps = &self.runbook.value.steps;
        let mut text = serde_yaml::to_string(entry.with).unwrap_or_default();
        text.extend(entry.when);
        if let RollbackSpec::Custom(rollback) = entry.rollback {
            text.push_str(&serde_yaml::to_string(&rollback.with).unwrap_or_default());
        }
        let referenced = referenced_step_ids(&text);
        if referenced.is_empty() {
            return Vec::new();
        }
        let index: HashMap<&str, usize> = steps
            .iter()
            .enumerate()
            .map(|(i, s)| (s.id.as_str(), i))
            .collect();
        let mut seen = BTreeSet::new();
        let mut stack = vec![start];
        while let Some(i) = stack.pop() {
            for need in &steps[i].needs {
                if let Some(&j) = index.get(need.step.as_str()) {
                    if seen.insert(j) {
                        stack.push(j);
                    }
                }
            }
        }
        seen.into_iter()
            .filter(|&j| referenced.contains(steps[j].id.as_str()))
            .map(|j| {
                let step = &steps[j];
                let names = if step.action == ActionKind::Shell {
                    step.outputs.keys().cloned().collect()
                } else {
                    step.action
                        .info()
                        .outputs
                        .iter()
                        .map(|s| s.to_string())
                        .collect()
                };
                (step.id.as_str(), names)
            })
            .collect()
    }

    fn expand(&mut self, origin: Origin) {
        let entry = self.entry(origin);
        let phase = match origin {
            Origin::Probe(_, phase) => phase,
            Origin::Step(_) => Phase::Main,
        };
        let outputs = self.referenced_outputs(origin, &entry);
        let placements = self.placements(&entry);
        let per_node = entry.target.is_per_node();
        let mut made = Vec::new();
        for (host, node, role) in placements {
            let key_base = match phase {
                Phase::Main => entry.id.to_string(),
                Phase::SteadyBefore => format!("steady-before.{}", entry.id),
                Phase::SteadyAfter => format!("steady-after.{}", entry.id),
            };
            let key = match (&host, per_node) {
                (Host::Node(name), true) => format!("{key_base}@{name}"),
                _ => key_base,
            };
            let context = context::for_instance(&self.base, node, &outputs, self.values);
            if let Some(step) = self.instance(&entry, phase, key, host, node, role, context) {
                let index = self.graph.add_node(step);
                made.push((node.map(|n| n.name.clone()), index));
            }
        }
        self.instances.insert(origin, made);
    }

    #[allow(clippy::too_many_arguments)]
    fn instance(
        &mut self,
        entry: &Entry<'_>,
        phase: Phase,
        key: String,
        host: Host,
        node: Option<&Node>,
        role: Option<RoleGuard>,
        context: Value,
    ) -> Option<PlanStep> {
        let when = match entry.when {
            None => Condition::Always,
            // Once run values are known (a run-time compile), such conditions are evaluated.
            Some(expression) if refers_to_run_time(expression) && self.values.is_none() => {
                // Evaluate once with placeholders so unknown variables are caught now.
                self.template(&entry.path.key("when"), |r| {
                    r.condition(expression, &context)
                })?;
                Condition::AtRunTime(expression.to_string())
            }
            Some(expression) => {
                if self.template(&entry.path.key("when"), |r| {
                    r.condition(expression, &context)
                })? {
                    Condition::Always
                } else {
                    Condition::SkippedAtCompile(expression.to_string())
                }
            }
        };
        let action = self.action(entry.action, entry.with, &entry.path, &context)?;
        let operation = self.operation(&action, &host, node, &entry.path)?;
        let rollback = self.rollback(entry, &action, &host, node, &context)?;
        let preflight = node
            .filter(|_| matches!(operation, Operation::Script { .. }))
            .and_then(|node| node_script::preflight(&action, node))
            .map(|script| Operation::Script { script });
        let info = entry.action.info();
        let nature = match (entry.action, entry.probe) {
            (ActionKind::Shell, Some(true)) => Nature::Probe,
            _ => info.nature,
        };
        let force = matches!(&action, Action::EtcdStartMember(args) if args.force_new_cluster);
        let destructive = info.destructive || force || entry.destructive == Some(true);
        let outputs = if entry.action == ActionKind::Shell {
            entry.captures.keys().cloned().collect()
        } else {
            info.outputs.iter().map(|s| s.to_string()).collect()
        };
        let deferred = operation.is_deferred()
            || matches!(&rollback, Rollback::Run { operation } if operation.is_deferred())
            || preflight.as_ref().is_some_and(Operation::is_deferred);
        let template = deferred.then(|| StepTemplate {
            with: serde_json::to_value(entry.with).unwrap_or(Value::Null),
            context: context.clone(),
        });
        Some(PlanStep {
            key,
            step: entry.id.to_string(),
            title: entry.title.to_string(),
            phase,
            host,
            role,
            action: entry.action,
            nature,
            destructive,
            idempotent: entry
                .idempotent
                .unwrap_or_else(|| default_idempotent(entry.action, nature)),
            operation,
            rollback,
            preflight,
            when,
            confirm: entry.confirm.map(str::to_string),
            timeout: entry
                .timeout
                .unwrap_or_else(|| default_timeout(entry.action)),
            retries: entry.retries.cloned().unwrap_or_else(Retries::none),
            outputs,
            captures: entry.captures.clone(),
            template,
        })
    }

    /// Runs a template operation, turning its error into a located diagnostic.
    fn template<T>(
        &mut self,
        path: &YamlPath,
        render: impl FnOnce(&Renderer) -> Result<T, TemplateError>,
    ) -> Option<T> {
        match render(&self.renderer) {
            Ok(value) => Some(value),
            Err(err) => {
                let diagnostic = self.template_diagnostic(path, &err);
                self.sink.push(diagnostic);
                None
            }
        }
    }

    fn template_diagnostic(&self, path: &YamlPath, err: &TemplateError) -> Diagnostic {
        let diagnostic = self.error(path, err.to_string());
        match err {
            TemplateError::MissingVariable(variable) => {
                let mut parts = variable.split('.');
                match (parts.next(), parts.next(), parts.next(), parts.next()) {
                    (Some("steps"), Some(step), _, name) => {
                        let known = self.runbook.value.step(step);
                        match known {
                            None => diagnostic
                                .hint("`steps.<id>.outputs.<name>` names a step of this runbook")
                                .suggest(step, self.runbook.value.steps.iter().map(|s| s.id.as_str())),
                            Some(s) => {
                                let declared: Vec<String> = if s.action == ActionKind::Shell {
                                    s.outputs.keys().cloned().collect()
                                } else {
                                    s.action.info().outputs.iter().map(|o| o.to_string()).collect()
                                };
                                if name.is_some_and(|n| declared.iter().any(|d| d == n)) {
                                    diagnostic.hint(format!(
                                        "step `{step}` is not a dependency of this step, so its outputs do not exist yet; add it to `needs`"
                                    ))
                                } else {
                                    diagnostic.hint(format!(
                                        "step `{step}` has outputs: {}",
                                        if declared.is_empty() { "none".into() } else { declared.join(", ") }
                                    ))
                                }
                            }
                        }
                    }
                    (Some(root), Some(name), _, _) => {
                        let candidates: Vec<String> = self.base.get(root)
                            .and_then(Value::as_object)
                            .map(|o| o.keys().cloned().collect())
                            .or_else(|| (root == "node").then(|| {
                                ["name", "member", "address", "groups", "client_url", "peer_url", "data_dir", "backup_dir", "management", "manifest", "etcdctl", "etcdutl"].map(String::from).to_vec()
                            }))
                            .unwrap_or_default();
                        let hint = if root == "node" && candidates.iter().any(|c| c == name) {
                            "`node` exists only in steps that run per node (`each`, `leader`, `followers`, `node:`, `group:`)".to_string()
                        } else if let Some(best) = closest(name, candidates.iter().map(String::as_str)) {
                            format!("did you mean `{root}.{best}`?")
                        } else {
                            format!("templates see `params`, `inventory`, `cluster`, `nodes`, `node`, `steps` and `run`; `{root}` has: {}", candidates.join(", "))
                        };
                        diagnostic.hint(hint)
                    }
                    _ => diagnostic.hint("templates see `params`, `inventory`, `cluster`, `nodes`, `node`, `steps` and `run`"),
                }
            }
            TemplateError::Syntax { .. } => {
                diagnostic.hint("check the `{{ }}` pairs and block helpers (`{{#if}}…{{/if}}`)")
            }
            TemplateError::Other(_) => diagnostic,
        }
    }

    /// Renders a `with:` mapping and parses it into the typed action.
    fn action(
        &mut self,
        kind: ActionKind,
        with: &serde_yaml::Mapping,
        path: &YamlPath,
        context: &Value,
    ) -> Option<Action> {
        let with_path = path.key("with");
        let mut rendered = serde_yaml::Mapping::new();
        let mut ok = true;
        for (key, value) in with {
            let field = key.as_str().unwrap_or_default();
            let escape = if kind == ActionKind::Shell && field == "run" {
                Escape::Shell
            } else {
                Escape::Plain
            };
            match self.render_value(value, escape, &with_path.key(field), context) {
                Some(value) => {
                    rendered.insert(key.clone(), value);
                }
                None => ok = false,
            }
        }
        if !ok {
            return None;
        }
        match kind.parse_args(serde_yaml::Value::Mapping(rendered)) {
            Ok(action) => match action.check_values() {
                Ok(()) => Some(action),
                Err(problem) => {
                    let diagnostic = self
                        .error(&with_path.key(problem.field), problem.message)
                        .hint(problem.hint);
                    self.sink.push(diagnostic);
                    None
                }
            },
            Err(err) => {
                // With no `with:` at all, the action line is where the arguments are missing.
                let at = if with.is_empty() {
                    path.key("action")
                } else {
                    err.field
                        .iter()
                        .fold(with_path, |p, segment| p.join(segment))
                };
                let mut diagnostic =
                    yaml_diagnostic(&self.runbook.source, &self.runbook.map, &at, &err.error);
                diagnostic.message = format!("`{kind}` arguments: {}", diagnostic.message);
                self.sink.push(diagnostic.hint(format!("see the arguments of `{kind}` in docs/runbook-language.md or the runbook schema")));
                None
            }
        }
    }

    fn render_value(
        &mut self,
        value: &serde_yaml::Value,
        escape: Escape,
        path: &YamlPath,
        context: &Value,
    ) -> Option<serde_yaml::Value> {
        use serde_yaml::Value as Y;
        match value {
            Y::String(template) => {
                // A scalar that is exactly one `{{path}}` takes the type of the value it names.
                if let Some(typed) = single_expression(template).and_then(|p| lookup(context, p)) {
                    if !typed.is_string() && !typed.is_object() && !typed.is_array() {
                        return serde_yaml::to_value(typed).ok();
                    }
                }
                self.template(path, |r| r.render(escape, template, context))
                    .map(Y::String)
            }
            Y::Sequence(items) => {
                let mut out = Vec::new();
                for (i, item) in items.iter().enumerate() {
                    out.push(self.render_value(item, escape, &path.index(i), context)?);
                }
                Some(Y::Sequence(out))
            }
            Y::Mapping(map) => {
                let mut out = serde_yaml::Mapping::new();
                for (key, item) in map {
                    let field = key.as_str().unwrap_or_default();
                    out.insert(
                        key.clone(),
                        self.render_value(item, escape, &path.key(field), context)?,
                    );
                }
                Some(Y::Mapping(out))
            }
            other => Some(other.clone()),
        }
    }

    fn operation(
        &mut self,
        action: &Action,
        host: &Host,
        node: Option<&Node>,
        path: &YamlPath,
    ) -> Option<Operation> {
        let kind = action.kind();
        match (kind.info().placement, node) {
            (Placement::EtcdApi, _) => Some(Operation::Etcd {
                endpoints: self.endpoints(kind, node),
                call: action.clone(),
            }),
            (Placement::ControllerOrNode, None) if kind == ActionKind::Shell => {
                let Action::Shell(args) = action else {
                    unreachable!()
                };
                Some(Operation::Script {
                    script: args.run.clone(),
                })
            }
            (Placement::ControllerOrNode | Placement::Controller, None) => {
                Some(Operation::Native {
                    call: action.clone(),
                })
            }
            (_, Some(node)) => match node_script::operation(action, node, self.cluster) {
                Ok(operation) => Some(operation),
                Err(err) => {
                    self.script_error(err, node, path);
                    None
                }
            },
            (Placement::Node, None) => {
                unreachable!("placement is checked when the runbook loads: {host}")
            }
        }
    }

    fn script_error(&mut self, err: ScriptError, node: &Node, path: &YamlPath) {
        let diagnostic = if err.inventory {
            self.cluster.document.error_at(&node.path, err.message)
        } else {
            self.error(&path.key("with").key(err.field), err.message)
        };
        self.sink.push(diagnostic.hint(err.hint));
    }

    /// The endpoints an etcd API call goes to.
    fn endpoints(&self, kind: ActionKind, node: Option<&Node>) -> Vec<String> {
        let all = || self.cluster.nodes.iter();
        let subject_is_target = matches!(
            kind,
            ActionKind::EtcdHealth
                | ActionKind::EtcdStatus
                | ActionKind::EtcdHashKv
                | ActionKind::EtcdDefrag
                | ActionKind::EtcdSnapshotSave
                | ActionKind::WaitHealthy
                | ActionKind::VerifyHealthy
                | ActionKind::VerifyHashKv
                | ActionKind::VerifyNoAlarms
                | ActionKind::EtcdAlarmList
        );
        match node {
            Some(node) if subject_is_target => vec![node.etcd.client_url.clone()],
            // Membership changes go to the rest of the cluster, not to the member they concern.
            Some(node)
                if matches!(
                    kind,
                    ActionKind::EtcdMemberAdd
                        | ActionKind::EtcdMemberRemove
                        | ActionKind::EtcdMemberPromote
                ) =>
            {
                all()
                    .filter(|n| n.name != node.name)
                    .map(|n| n.etcd.client_url.clone())
                    .collect()
            }
            _ => self.cluster.client_urls(),
        }
    }

    fn rollback(
        &mut self,
        entry: &Entry<'_>,
        action: &Action,
        host: &Host,
        node: Option<&Node>,
        context: &Value,
    ) -> Option<Rollback> {
        let info = entry.action.info();
        match entry.rollback {
            RollbackSpec::None => Some(Rollback::Declined),
            RollbackSpec::Irreversible => Some(Rollback::Irreversible),
            RollbackSpec::Custom(step) => {
                let path = entry.path.key("rollback");
                if step.action.info().placement == Placement::Node && node.is_none() {
                    self.sink.push(
                        self.error(
                            &path.key("action"),
                            format!(
                                "`{}` runs on nodes, but this step runs on `{host}`",
                                step.action
                            ),
                        )
                        .hint("a rollback runs where its step runs"),
                    );
                    return None;
                }
                let undo = self.action(step.action, &step.with, &path, context)?;
                let operation = self.operation(&undo, host, node, &path)?;
                Some(Rollback::Run { operation })
            }
            RollbackSpec::Natural if info.nature == Nature::Probe || entry.probe == Some(true) => {
                Some(Rollback::NotNeeded)
            }
            RollbackSpec::Natural => Some(match (info.placement, node) {
                (Placement::Node | Placement::ControllerOrNode, Some(node)) => {
                    node_script::natural_rollback(action, node)
                }
                (Placement::ControllerOrNode, None) => Rollback::Declined,
                // Copies are harmless to keep; deleted copies cannot come back.
                (Placement::Controller, _) => match action {
                    Action::BackupPrune(_) => Rollback::Irreversible,
                    _ => Rollback::NotNeeded,
                },
                (Placement::EtcdApi, _) => match action {
                    Action::EtcdMemberAdd(args) => Rollback::Run {
                        operation: Operation::Etcd {
                            endpoints: self.endpoints(ActionKind::EtcdMemberRemove, node),
                            call: Action::EtcdMemberRemove(
                                crate::runbook::action::MemberNameArgs {
                                    name: args.name.clone(),
                                },
                            ),
                        },
                    },
                    Action::EtcdMemberPromote(_)
                    | Action::EtcdMemberRemove(_)
                    | Action::EtcdCompact(_) => Rollback::Irreversible,
                    _ => Rollback::NotNeeded,
                },
                (Placement::Node, None) => {
                    unreachable!("placement is checked when the runbook loads")
                }
            }),
        }
    }

    fn connect_all(&mut self) {
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

/// The step ids a template text refers to as `steps.<id>`.
pub fn referenced_step_ids(text: &str) -> BTreeSet<&str> {
    text.match_indices("steps.")
        .filter(|(at, _)| {
            text[..*at]
                .chars()
                .next_back()
                .is_none_or(|c| !(c.is_alphanumeric() || matches!(c, '_' | '.' | '-')))
        })
        .filter_map(|(at, prefix)| {
            let rest = &text[at + prefix.len()..];
            let end = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'))
                .unwrap_or(rest.len());
            (end > 0).then(|| &rest[..end])
        })
        .collect()
}

/// The path of a scalar that is exactly one `{{path}}`, if it is one.
fn single_expression(template: &str) -> Option<&str> {
    let inner = template
        .trim()
        .strip_prefix("{{")?
        .strip_suffix("}}")?
        .trim();
    let simple = !inner.is_empty()
        && inner
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '.' | '_' | '-'));
    simple.then_some(inner)
}

fn lookup<'v>(context: &'v Value, path: &str) -> Option<&'v Value> {
    path.split('.')
        .try_fold(context, |value, part| value.get(part))
}

fn default_timeout(kind: ActionKind) -> HumanDuration {
    use ActionKind as K;
    HumanDuration::from_secs(match kind {
        K::BackupShip => 3600,
        K::EtcdSnapshotSave
        | K::EtcdSnapshotRestore
        | K::FileCopy
        | K::EtcdDefrag
        | K::BackupPrune => 600,
        K::WaitHealthy
        | K::EtcdStopMember
        | K::EtcdStartMember
        | K::EtcdConfigureMember
        | K::Shell => 120,
        K::EtcdSnapshotVerify => 300,
        _ => 30,
    })
}

fn default_idempotent(kind: ActionKind, nature: Nature) -> bool {
    use ActionKind as K;
    nature == Nature::Probe
        || matches!(
            kind,
            K::EtcdStopMember
                | K::EtcdStartMember
                | K::EtcdConfigureMember
                | K::EtcdSnapshotSave
                | K::EtcdDefrag
                | K::EtcdAlarmDisarm
                | K::EtcdKvPut
                | K::FileCopy
                | K::BackupShip
                | K::BackupPrune
        )
}

#[cfg(test)]
mod tests;
