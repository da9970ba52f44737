//! The plan's header: what it was compiled from (files and their digests, nodes, parameters with
//! secrets masked).

use serde_json::Value;

use crate::document::Document;
use crate::inventory::{Cluster, Management, TransportKind};
use crate::plan::{FileDigest, NodeSummary, PlanHeader};
use crate::runbook::Runbook;
use crate::runbook::param::ParamValues;

pub(super) fn header(
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
