//! The values templates see: `params`, `inventory`, `cluster`, `nodes`, `node`, `steps`, `run`.

use serde_json::{Map, Value, json};

use crate::inventory::{Cluster, Management, Node};
use crate::render::{placeholder, shell_join};
use crate::runbook::param::ParamValues;

/// Values known once a run is under way: they replace the plan's placeholders when a deferred
/// step is compiled again just before it runs.
#[derive(Debug, Clone, Default)]
pub struct RunValues {
    /// `run.*` values by name (`id`, `dir`, `started_at`).
    pub run: std::collections::BTreeMap<String, String>,
    /// Outputs by plan step key (`save`, `save@cp1`), then by output name.
    pub outputs: std::collections::BTreeMap<String, std::collections::BTreeMap<String, String>>,
}

impl RunValues {
    /// The output `name` of runbook step `step` as seen from `node`: the same node's instance
    /// first, then the step's single instance.
    fn output(&self, step: &str, node: Option<&str>, name: &str) -> Option<&str> {
        let own = node.and_then(|n| self.outputs.get(&format!("{step}@{n}")));
        own.or_else(|| self.outputs.get(step))
            .and_then(|outputs| outputs.get(name))
            .map(String::as_str)
    }
}

/// Run-time values every template may use; they render as placeholders in a plan.
pub(crate) const RUN_VALUES: &[&str] = &["id", "dir", "started_at"];

/// The part of the context shared by every step of a plan.
pub(crate) fn base(
    cluster: &Cluster,
    params: &ParamValues,
    secrets: &[&str],
    values: Option<&RunValues>,
) -> Value {
    let params: Map<String, Value> = params
        .iter()
        .map(|(name, value)| {
            let shown = if secrets.contains(&name.as_str()) && values.is_none() {
                Value::String(placeholder(&format!("secret.{name}")))
            } else {
                value.clone()
            };
            (name.clone(), shown)
        })
        .collect();
    let nodes: Map<String, Value> = cluster
        .nodes
        .iter()
        .map(|n| (n.name.clone(), node(n)))
        .collect();
    let inventory = cluster.inventory();
    json!({
        "params": params,
        "inventory": {
            "name": inventory.name,
            "production": inventory.production,
            "node_count": cluster.nodes.len(),
        },
        "cluster": {
            "initial_cluster": cluster.initial_cluster(),
            "endpoints": cluster.endpoints(),
            "size": cluster.nodes.len(),
            "quorum": cluster.nodes.len() / 2 + 1,
            "members": cluster.nodes.iter().map(|n| n.etcd.member.clone()).collect::<Vec<_>>(),
        },
        "nodes": nodes,
        "run": RUN_VALUES
            .iter()
            .map(|v| {
                let value = values
                    .and_then(|values| values.run.get(*v).cloned())
                    .unwrap_or_else(|| placeholder(&format!("run.{v}")));
                (v.to_string(), Value::String(value))
            })
            .collect::<Map<_, _>>(),
    })
}

/// The facts about one node that templates see as `node.*` or `nodes.<name>.*`.
pub(crate) fn node(node: &Node) -> Value {
    let etcd = &node.etcd;
    let mut etcdctl = etcd.etcdctl.clone();
    etcdctl.extend([
        format!("--endpoints={}", etcd.client_url),
        format!("--cacert={}", etcd.tls.ca),
        format!("--cert={}", etcd.tls.cert),
        format!("--key={}", etcd.tls.key),
    ]);
    let (management, manifest) = match &etcd.management {
        Management::StaticPod(pod) => ("static_pod", Value::String(pod.manifest.clone())),
        Management::External(_) => ("external", Value::Null),
    };
    json!({
        "name": node.name,
        "member": etcd.member,
        "address": node.address,
        "groups": node.groups,
        "client_url": etcd.client_url,
        "peer_url": etcd.peer_url,
        "data_dir": etcd.data_dir,
        "backup_dir": etcd.backup_dir,
        "process_name": etcd.process_name,
        "management": management,
        "manifest": manifest,
        // Pre-quoted command prefixes, for raw insertion: `{{{node.etcdctl}}} member list`.
        "etcdctl": format!("ETCDCTL_API=3 {}", shell_join(&etcdctl)),
        "etcdutl": shell_join(&etcd.etcdutl),
    })
}

/// The context of the step instances that run at one place (`node`, or the controller or the
/// cluster for `None`) and use no step's outputs: the base, the node, and no `steps`. The compiler
/// builds it once per place and shares it.
pub(crate) fn for_place(base: &Value, node: Option<&Node>) -> Value {
    let mut context = base.clone();
    let object = context
        .as_object_mut()
        .expect("the base context is an object");
    if let Some(n) = node {
        object.insert("node".into(), self::node(n));
    }
    object.insert("steps".into(), Value::Object(Map::new()));
    context
}

/// The context of one step instance at `node`: its place's context (from [`for_place`]) with its
/// dependencies' outputs as `steps`.
pub(crate) fn with_outputs(
    place: &Value,
    node: Option<&Node>,
    outputs: &[(&str, Vec<String>)],
    values: Option<&RunValues>,
) -> Value {
    let mut context = place.clone();
    let object = context
        .as_object_mut()
        .expect("the base context is an object");
    let steps: Map<String, Value> = outputs
        .iter()
        .map(|(step, names)| {
            let values: Map<String, Value> = names
                .iter()
                .map(|name| {
                    let path = format!("steps.{step}.outputs.{name}");
                    let known = values.and_then(|values| {
                        values.output(step, node.map(|n| n.name.as_str()), name)
                    });
                    let value = known.map_or_else(|| placeholder(&path), str::to_owned);
                    (name.clone(), Value::String(value))
                })
                .collect();
            (step.to_string(), json!({ "outputs": values }))
        })
        .collect();
    object.insert("steps".into(), Value::Object(steps));
    context
}
