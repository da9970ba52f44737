//! Stage 1: the parameter values given (`-p`, a drill file) checked against the runbook's
//! parameters: unknown and repeated names, types, defaults, required values, node names.

use std::collections::HashMap;

use serde_json::Value;

use super::ParamInput;
use crate::diagnostic::{Diagnostic, DiagnosticSink, closest, one_of};
use crate::document::Document;
use crate::inventory::Cluster;
use crate::runbook::Runbook;
use crate::runbook::param::{ParamSpec, ParamType, ParamValues};
use crate::source::YamlPath;

pub(super) fn resolve_params(
    runbook: &Document<Runbook>,
    cluster: &Cluster,
    inputs: &[ParamInput],
    sink: &mut DiagnosticSink,
) -> ParamValues {
    let given = given_values(runbook, inputs, sink);
    let mut values = ParamValues::new();
    for (name, spec) in &runbook.value.params {
        let input = given.get(name.as_str()).copied();
        if let Some(value) = check_value(runbook, cluster, name, spec, input, sink) {
            values.insert(name.clone(), value);
        }
    }
    values
}

/// An error at the place `input` was given. The line it was given on is shown only when the
/// value is known not to be secret: a misspelt name may carry a secret as much as a secret
/// parameter does.
fn at_input(runbook: &Document<Runbook>, input: &ParamInput, message: String) -> Diagnostic {
    match runbook.value.params.get(&input.name) {
        Some(spec) if !spec.secret => Diagnostic::at(&input.source, input.location, message),
        _ => Diagnostic::at_unshown(&input.source, input.location, message),
    }
}

/// The values given, by parameter name; a name the runbook does not know, or one given twice,
/// is an error.
fn given_values<'i>(
    runbook: &Document<Runbook>,
    inputs: &'i [ParamInput],
    sink: &mut DiagnosticSink,
) -> HashMap<&'i str, &'i ParamInput> {
    let specs = &runbook.value.params;
    let mut given: HashMap<&str, &ParamInput> = HashMap::new();
    for input in inputs {
        if !specs.contains_key(&input.name) {
            let known: Vec<&str> = specs.keys().map(String::as_str).collect();
            let mut diagnostic = at_input(
                runbook,
                input,
                format!(
                    "runbook `{}` has no parameter `{}`",
                    runbook.value.name, input.name
                ),
            )
            .expected(if known.is_empty() {
                "no parameters: this runbook takes none".to_string()
            } else {
                one_of(&known)
            });
            if let Some(best) = closest(&input.name, known.iter().copied()) {
                diagnostic = diagnostic.hint(format!("did you mean `{best}`?"));
            }
            sink.push(diagnostic);
        } else if given.insert(input.name.as_str(), input).is_some() {
            sink.push(
                at_input(
                    runbook,
                    input,
                    format!("parameter `{}` is given twice", input.name),
                )
                .hint("give each parameter once"),
            );
        }
    }
    given
}

/// The value of parameter `name`: the one given, else its default, checked against its type;
/// a missing required value is an error.
fn check_value(
    runbook: &Document<Runbook>,
    cluster: &Cluster,
    name: &str,
    spec: &ParamSpec,
    input: Option<&ParamInput>,
    sink: &mut DiagnosticSink,
) -> Option<Value> {
    let path = YamlPath::root().key("params").key(name);
    let value = match (input, &spec.default) {
        (Some(input), _) => spec.check(&input.value).map_err(|err| {
            at_input(
                runbook,
                input,
                format!("parameter `{name}`: {}", err.message),
            )
            .expected(err.expected)
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
    let problem = match value {
        Ok(value) if spec.kind != ParamType::Node => return Some(value),
        Ok(value) => match node_problem(runbook, cluster, name, &value, input) {
            None => return Some(value),
            Some(problem) => problem,
        },
        Err(problem) => problem,
    };
    sink.push(problem);
    None
}

/// What is wrong with the value of a `node` parameter, if it names no node of the inventory.
fn node_problem(
    runbook: &Document<Runbook>,
    cluster: &Cluster,
    name: &str,
    value: &Value,
    input: Option<&ParamInput>,
) -> Option<Diagnostic> {
    let node = value.as_str().unwrap_or_default();
    if cluster.node(node).is_some() {
        return None;
    }
    let names = cluster.nodes.iter().map(|n| n.name.as_str());
    let diagnostic = match input {
        Some(input) => at_input(
            runbook,
            input,
            format!("parameter `{name}`: no node `{node}` in the inventory"),
        ),
        None => runbook.error_at(
            &YamlPath::root().key("params").key(name).key("default"),
            format!("default of `{name}`: no node `{node}` in the inventory"),
        ),
    };
    Some(
        diagnostic
            .expected(one_of(names.clone()))
            .suggest(node, names),
    )
}
