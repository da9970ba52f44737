//! Stage 2: the inventory's member count checked against the runbook's `topology` (odd count,
//! minimum, maximum), naming both files.

use crate::diagnostic::DiagnosticSink;
use crate::document::Document;
use crate::inventory::Cluster;
use crate::runbook::Runbook;
use crate::source::YamlPath;

pub(super) fn check_topology(
    runbook: &Document<Runbook>,
    cluster: &Cluster,
    sink: &mut DiagnosticSink,
) {
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
