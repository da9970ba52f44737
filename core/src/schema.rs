//! JSON Schemas of the files people write (runbooks, inventories), for editors and reviewers.
//!
//! Generated from the same types the loader uses, so they cannot drift from what etcdrill
//! accepts. The runbook schema is refined so that an editor completes and checks `with:` for the
//! `action:` a step names. The checked-in copies under `schemas/` are compared with these by a
//! test; `etcdrill schema` rewrites them.

use std::collections::BTreeSet;

use schemars::generate::SchemaSettings;
use schemars::{Schema, SchemaGenerator};
use serde_json::{Map, Value, json};

use crate::inventory::Inventory;
use crate::runbook::Runbook;
use crate::runbook::action::ActionKind;

/// A schema file: its name under `schemas/`, and its pretty-printed content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaFile {
    /// File name, e.g. `runbook.schema.json`.
    pub name: &'static str,
    /// The schema, pretty-printed, ending with a newline.
    pub content: String,
}

/// Every schema etcdrill publishes.
pub fn files() -> Vec<SchemaFile> {
    vec![
        SchemaFile {
            name: "runbook.schema.json",
            content: pretty(runbook()),
        },
        SchemaFile {
            name: "inventory.schema.json",
            content: pretty(inventory()),
        },
        SchemaFile {
            name: "drill.schema.json",
            content: pretty(drill()),
        },
    ]
}

/// The schema of a runbook file, with `with:` typed per `action:`.
pub fn runbook() -> Schema {
    let mut generator = generator();
    let mut arguments: Vec<(ActionKind, Value)> = ActionKind::ALL
        .iter()
        .map(|&kind| (kind, kind.args_schema(&mut generator).to_value()))
        .collect();
    let mut schema = generator.root_schema_for::<Runbook>();
    let Some(definitions) = schema.get_mut("$defs").and_then(Value::as_object_mut) else {
        return schema;
    };
    // Several actions share an arguments type; relax each definition once.
    let mut shared = BTreeSet::new();
    for (_, arguments) in &mut arguments {
        match definition_name(arguments) {
            Some(name) => {
                shared.insert(name.to_string());
            }
            None => allow_templates(arguments),
        }
    }
    for name in shared {
        if let Some(definition) = definitions.get_mut(&name) {
            allow_templates(definition);
        }
    }
    let conditions: Vec<Value> = arguments
        .into_iter()
        .map(|(kind, arguments)| {
            json!({
                "if": {"properties": {"action": {"const": kind.name()}}, "required": ["action"]},
                "then": {"properties": {"with": arguments}}
            })
        })
        .collect();
    // Every place that pairs an `action` with its `with`: steps, rollbacks, steady-state probes.
    for definition in definitions.values_mut().filter_map(Value::as_object_mut) {
        let properties = definition.get("properties").and_then(Value::as_object);
        if properties.is_some_and(|p| p.contains_key("action") && p.contains_key("with")) {
            if let Value::Array(all_of) = definition.entry("allOf").or_insert_with(|| json!([])) {
                all_of.extend(conditions.iter().cloned());
            }
        }
    }
    schema
}

/// The schema of a drill file.
pub fn drill() -> Schema {
    generator().into_root_schema_for::<crate::drill::Drill>()
}

/// The schema of an inventory file.
pub fn inventory() -> Schema {
    generator().into_root_schema_for::<Inventory>()
}

fn generator() -> SchemaGenerator {
    SchemaSettings::draft2020_12()
        .for_deserialize()
        .into_generator()
}

fn pretty(schema: Schema) -> String {
    let mut text = serde_json::to_string_pretty(&schema).expect("a schema serialises");
    text.push('\n');
    text
}

/// The `$defs` entry a `$ref` schema points to.
fn definition_name(schema: &Value) -> Option<&str> {
    schema.get("$ref")?.as_str()?.strip_prefix("#/$defs/")
}

/// A string holding a template, accepted wherever a template may produce another type.
fn template_string() -> Value {
    json!({
        "type": "string",
        "pattern": "\\{\\{",
        "description": "A template, rendered when the plan is compiled."
    })
}

/// Lets every property of an arguments schema that does not already accept any string take a
/// template instead: `{{params.members}}` renders to a number at compile time.
fn allow_templates(arguments: &mut Value) {
    let Some(properties) = arguments
        .get_mut("properties")
        .and_then(Value::as_object_mut)
    else {
        return;
    };
    for property in properties.values_mut() {
        if accepts_any_string(property) {
            continue;
        }
        let mut original = std::mem::take(property);
        let mut wrapper = Map::new();
        for key in ["description", "default"] {
            if let Some(value) = original.as_object_mut().and_then(|o| o.remove(key)) {
                wrapper.insert(key.to_string(), value);
            }
        }
        wrapper.insert("anyOf".into(), json!([original, template_string()]));
        *property = Value::Object(wrapper);
    }
}

/// Whether a schema accepts every string, or is a container a template cannot stand for.
fn accepts_any_string(schema: &Value) -> bool {
    let restricted = [
        "enum", "const", "pattern", "format", "$ref", "anyOf", "oneOf",
    ]
    .iter()
    .any(|key| schema.get(key).is_some());
    let types: Vec<&str> = match schema.get("type") {
        Some(Value::String(one)) => vec![one.as_str()],
        Some(Value::Array(many)) => many.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    let container = types.iter().any(|t| matches!(*t, "object" | "array"));
    container || (!restricted && types.contains(&"string"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runbook_json() -> Value {
        runbook().to_value()
    }

    #[test]
    fn with_is_typed_per_action() {
        let schema = runbook_json();
        let all_of = schema["$defs"]["Step"]["allOf"].as_array().unwrap();
        assert_eq!(all_of.len(), ActionKind::ALL.len());
        let put = all_of
            .iter()
            .find(|c| c["if"]["properties"]["action"]["const"] == "etcd.kv.put")
            .unwrap();
        assert_eq!(
            put["then"]["properties"]["with"]["$ref"],
            "#/$defs/KvPutArgs"
        );
        for pairing in ["RollbackStep", "SteadyProbe"] {
            assert!(schema["$defs"][pairing]["allOf"].is_array(), "{pairing}");
        }
    }

    #[test]
    fn typed_arguments_also_take_templates() {
        let schema = runbook_json();
        let defs = &schema["$defs"];
        let count = &defs["VerifyMemberCountArgs"]["properties"]["voting"];
        assert_eq!(count["anyOf"][1]["pattern"], "\\{\\{");
        assert!(count["description"].is_string(), "{count}");
        let direction = &defs["FileCopyArgs"]["properties"]["direction"];
        assert!(direction["anyOf"].is_array(), "{direction}");
        let key = &defs["KvPutArgs"]["properties"]["key"];
        assert_eq!(
            key["type"], "string",
            "plain strings stay as they are: {key}"
        );
    }

    #[test]
    fn cases_of_accepting_any_string() {
        let cases = [
            (json!({"type": "string"}), true),
            (json!({"type": ["string", "null"]}), true),
            (json!({"type": "object"}), true),
            (json!({"type": "array", "items": {"type": "string"}}), true),
            (json!({"type": "integer"}), false),
            (json!({"type": ["integer", "null"]}), false),
            (json!({"type": "boolean"}), false),
            (json!({"type": "string", "enum": ["push", "pull"]}), false),
            (json!({"$ref": "#/$defs/CopyDirection"}), false),
        ];
        for (schema, expected) in cases {
            assert_eq!(accepts_any_string(&schema), expected, "{schema}");
        }
    }

    #[test]
    fn output_is_deterministic() {
        assert_eq!(files(), files());
    }

    #[test]
    fn checked_in_schemas_are_current() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .unwrap();
        let dir = root.join("schemas");
        for file in files() {
            let path = dir.join(file.name);
            let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
            assert!(
                checked_in == file.content,
                "{} is out of date; run `cargo run -- schema` at the repository root and commit the result",
                path.display()
            );
        }
    }
}
