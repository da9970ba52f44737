//! The runbook language: a typed procedure of steps, parsed from YAML and checked on its own,
//! before any inventory is involved.

pub mod action;
pub mod builtin;
pub mod param;
pub mod step;
mod step_graph;

use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::diagnostic::{DiagnosticSink, Diagnostics};
use crate::document::Document;
use crate::source::{SourceFile, YamlPath};

use action::{ActionKind, Nature, Placement};
use param::ParamSpec;
use step::{SteadyProbe, Step, Target};

/// A runbook: metadata, parameters, a steady-state hypothesis and steps.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Runbook {
    /// Short name, e.g. `restore-3-node`.
    pub name: String,
    /// One line saying what it does.
    pub summary: String,
    /// When to use it, and what it assumes.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub purpose: String,
    /// etcd minor versions it was written and tested for, e.g. `["3.4", "3.5"]`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub etcd_versions: Vec<String>,
    /// Constraints on the cluster it may run against.
    #[serde(default)]
    pub topology: Topology,
    /// Parameters, by name, in the order they are shown.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub params: IndexMap<String, ParamSpec>,
    /// Probes that must hold before the runbook starts and after it ends.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub steady_state: Vec<SteadyProbe>,
    /// The steps.
    pub steps: Vec<Step>,
}

/// Constraints on the member count of the cluster a runbook runs against.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Topology {
    /// The member count must be odd (quorum arithmetic assumes it).
    #[serde(default)]
    pub odd_members: bool,
    /// Fewest members.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_members: Option<u32>,
    /// Most members.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_members: Option<u32>,
}

impl Runbook {
    /// Parses and checks a runbook file: everything that can be known without an inventory.
    pub fn load(source: SourceFile) -> Result<Document<Runbook>, Diagnostics> {
        let document = Document::<Runbook>::parse(source)?;
        let mut sink = DiagnosticSink::default();
        check(&document, &mut sink);
        sink.finish(document)
    }

    /// The step with this id.
    pub fn step(&self, id: &str) -> Option<&Step> {
        self.steps.iter().find(|s| s.id == id)
    }
}

/// Whether `id` is usable as a step id: it must be a template path segment and a file name.
fn valid_id(id: &str) -> bool {
    let mut chars = id.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

fn check(document: &Document<Runbook>, sink: &mut DiagnosticSink) {
    let runbook = &document.value;
    let root = YamlPath::root();

    if let (Some(min), Some(max)) = (runbook.topology.min_members, runbook.topology.max_members) {
        if min > max {
            sink.push(document.error_at(
                &root.key("topology"),
                format!("min_members {min} is above max_members {max}"),
            ));
        }
    }

    for (name, spec) in &runbook.params {
        let path = root.key("params").key(name);
        if !valid_id(name) {
            sink.push(
                document
                    .error_at_key(
                        &path,
                        format!("parameter name `{name}` cannot be used in templates"),
                    )
                    .expected("letters, digits, `-` and `_`, starting with a letter or digit"),
            );
        }
        if let Some(default) = &spec.default {
            if let Err(err) = spec.check(default) {
                sink.push(
                    document
                        .error_at(
                            &path.key("default"),
                            format!("default of `{name}`: {}", err.message),
                        )
                        .expected(err.expected),
                );
            }
        }
        if spec.kind == param::ParamType::Choice && spec.choices.is_empty() {
            sink.push(
                document
                    .error_at(&path, format!("choice parameter `{name}` lists no choices"))
                    .hint("add `choices: [a, b]`"),
            );
        }
    }

    let mut probe_ids = std::collections::HashSet::new();
    for (i, probe) in runbook.steady_state.iter().enumerate() {
        let path = root.key("steady_state").index(i);
        if !probe_ids.insert(probe.id.as_str()) {
            sink.push(document.error_at(
                &path.key("id"),
                format!("duplicate probe id `{}`", probe.id),
            ));
        }
        if probe.action.info().nature != Nature::Probe {
            sink.push(
                document
                    .error_at(&path.key("action"), format!("`{}` changes state; the steady state takes probes only", probe.action))
                    .expected("a read-only action such as `verify.healthy`, `verify.member_count` or `verify.key`"),
            );
        }
        check_placement(document, sink, &path, &probe.on, probe.action);
    }

    let mut seen = std::collections::HashSet::new();
    for (i, step) in runbook.steps.iter().enumerate() {
        let path = root.key("steps").index(i);
        if !valid_id(&step.id) {
            sink.push(
                document
                    .error_at(
                        &path.key("id"),
                        format!("step id `{}` cannot be used in templates", step.id),
                    )
                    .expected("letters, digits, `-` and `_`, starting with a letter or digit"),
            );
        } else if !seen.insert(step.id.as_str()) {
            sink.push(
                document
                    .error_at(&path.key("id"), format!("duplicate step id `{}`", step.id))
                    .hint("every step needs its own id; `needs` and outputs refer to it"),
            );
        }
        check_step(document, sink, &path, step);
    }

    step_graph::check(document, sink);
}

fn check_step(
    document: &Document<Runbook>,
    sink: &mut DiagnosticSink,
    path: &YamlPath,
    step: &Step,
) {
    let info = step.action.info();
    check_placement(document, sink, path, &step.on, step.action);

    if step.action != ActionKind::Shell {
        if let Some(key) = [
            ("outputs", !step.outputs.is_empty()),
            ("probe", step.probe.is_some()),
        ]
        .into_iter()
        .find_map(|(key, set)| set.then_some(key))
        {
            sink.push(
                document
                    .error_at_key(
                        &path.key(key),
                        format!("`{key}` can only be declared on a `shell` step"),
                    )
                    .hint(format!(
                        "`{}` declares its own outputs ({}) and nature",
                        step.action,
                        if info.outputs.is_empty() {
                            "none".into()
                        } else {
                            info.outputs.join(", ")
                        }
                    )),
            );
        }
        if info.destructive && step.destructive == Some(false) {
            sink.push(
                document
                    .error_at(
                        &path.key("destructive"),
                        format!(
                            "`{}` is destructive and cannot be declared otherwise",
                            step.action
                        ),
                    )
                    .hint("remove `destructive: false`"),
            );
        }
    }
    if step.probe == Some(true) && step.destructive == Some(true) {
        sink.push(
            document
                .error_at(
                    &path.key("probe"),
                    "a step cannot be both a probe and destructive",
                )
                .hint("a probe only reads; drop one of `probe` and `destructive`"),
        );
    }
    if step.serial && !step.on.is_per_node() {
        sink.push(
            document
                .error_at(
                    &path.key("serial"),
                    format!(
                        "`serial` has no effect on a step that runs on `{}`",
                        step.on
                    ),
                )
                .hint("`serial` orders the instances of a per-node step; remove it"),
        );
    }
    if step.confirm.as_deref().is_some_and(|c| c.trim().is_empty()) {
        sink.push(document.error_at(&path.key("confirm"), "an empty confirmation question"));
    }
    if let Some(when) = &step.when {
        if when.contains("{{") {
            sink.push(
                document
                    .error_at(&path.key("when"), "`when` is an expression, not a template")
                    .expected("an expression such as `params.rehearse` or `(eq params.mode \"snapshot\")`")
                    .hint("remove the `{{ }}`"),
            );
        }
    }
    for (name, _) in &step.outputs {
        if !valid_id(name) {
            sink.push(
                document
                    .error_at_key(
                        &path.key("outputs").key(name),
                        format!("output name `{name}` cannot be used in templates"),
                    )
                    .expected("letters, digits, `-` and `_`"),
            );
        }
    }
}

/// Checks that an action can run where its step targets.
fn check_placement(
    document: &Document<Runbook>,
    sink: &mut DiagnosticSink,
    path: &YamlPath,
    target: &Target,
    action: ActionKind,
) {
    let problem = match (action.info().placement, target) {
        (Placement::Node, Target::Controller | Target::Cluster) => Some((
            "runs on nodes",
            "a node target: `each`, `leader`, `followers`, `node:NAME` or `group:NAME`",
        )),
        (Placement::EtcdApi, Target::Controller) => Some((
            "calls the etcd API",
            "`cluster` for every endpoint, or a node target for one member's",
        )),
        (Placement::ControllerOrNode, Target::Cluster) => {
            Some(("runs on a machine", "`controller`, or a node target"))
        }
        (Placement::Controller, target) if !matches!(target, Target::Controller) => {
            Some(("runs on the controller", "`controller`"))
        }
        _ => None,
    };
    if let Some((what, expected)) = problem {
        sink.push(
            document
                .error_at(
                    &path.key("on"),
                    format!("`{action}` {what} and cannot target `{target}`"),
                )
                .expected(expected),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<Document<Runbook>, String> {
        Runbook::load(SourceFile::new("rb.yaml", text)).map_err(|e| e.to_string())
    }

    const HEAD: &str = "name: t\nsummary: s\nsteps:\n";

    #[test]
    fn a_small_runbook_loads() {
        let doc = load(&format!(
            "{HEAD}  - id: a\n    title: A\n    on: cluster\n    action: etcd.health\n  - id: b\n    title: B\n    on: each\n    action: etcd.stop_member\n    needs: [a]\n"
        ))
        .unwrap();
        assert_eq!(doc.value.steps.len(), 2);
        assert_eq!(doc.value.step("b").unwrap().needs[0].step, "a");
    }

    #[test]
    fn misplaced_actions_are_refused() {
        let err = load(&format!(
            "{HEAD}  - id: a\n    title: A\n    on: controller\n    action: etcd.stop_member\n"
        ))
        .unwrap_err();
        assert!(
            err.contains("`etcd.stop_member` runs on nodes and cannot target `controller`"),
            "{err}"
        );
        assert!(err.contains("rb.yaml:6:9"), "{err}");
    }

    #[test]
    fn outputs_belong_to_shell_steps() {
        let err = load(&format!(
            "{HEAD}  - id: a\n    title: A\n    on: cluster\n    action: etcd.status\n    outputs: {{x: stdout}}\n"
        ))
        .unwrap_err();
        assert!(
            err.contains("`outputs` can only be declared on a `shell` step"),
            "{err}"
        );
        assert!(err.contains("leader, revision"), "{err}");
    }

    #[test]
    fn ids_must_be_template_safe() {
        assert!(valid_id("stop-members_2"));
        assert!(!valid_id("-x"));
        assert!(!valid_id("a.b"));
        assert!(!valid_id(""));
    }
}
