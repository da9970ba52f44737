//! Preparing a drill: loading the drill file, its inventory and its runbook, checking every node
//! it names, choosing the snapshot path of a restore drill, and compiling the runbook, all before
//! the drill touches anything.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use super::{DisasterKind, Drill, DrillError, PreparedDrill};
use crate::diagnostic::Diagnostics;
use crate::document::Document;
use crate::inventory::Cluster;
use crate::plan::{ParamInput, compile};
use crate::runbook::Runbook;
use crate::source::{SourceFile, YamlPath};

fn read(path: &Path) -> Result<SourceFile, DrillError> {
    SourceFile::read(path).map_err(|source| DrillError::Read {
        path: path.to_owned(),
        source,
    })
}

/// Loads a drill and everything it names, and compiles the runbook: every input is checked here,
/// before the drill touches anything.
pub fn prepare(drill_path: &Path, work_dir: Option<&Path>) -> Result<PreparedDrill, DrillError> {
    let drill = Drill::load(read(drill_path)?)?;
    let disaster = drill.value.disaster_kind(&drill)?;
    let base = drill_path.parent().unwrap_or(Path::new("."));
    let inventory_path = base.join(&drill.value.inventory);
    let runbook_path = base.join(&drill.value.runbook);
    let cluster = Cluster::load(read(&inventory_path)?);
    let runbook = Runbook::load(read(&runbook_path)?);
    let (cluster, runbook) = match (cluster, runbook) {
        (Ok(c), Ok(r)) => (c, r),
        (c, r) => {
            let all = [c.err(), r.err()]
                .into_iter()
                .flatten()
                .flat_map(|d| d.iter().cloned().collect::<Vec<_>>());
            return Err(Diagnostics::new(all.collect()).into());
        }
    };
    check_nodes(&drill, &disaster, &cluster)?;
    let work_dir = cluster.work_dir(work_dir);
    let mut params: Vec<ParamInput> = drill
        .value
        .params
        .iter()
        .map(|(name, value)| ParamInput {
            name: name.clone(),
            value: value.clone(),
            source: drill.source.clone(),
            location: drill.map.value(&YamlPath::root().key("params").key(name)),
        })
        .collect();
    let snapshot = match &disaster {
        DisasterKind::Restore(restore) => {
            let stamp: String = humantime::format_rfc3339_seconds(SystemTime::now())
                .to_string()
                .chars()
                .filter(char::is_ascii_alphanumeric)
                .collect();
            let path = absolute(
                &work_dir
                    .join("drills")
                    .join(format!("{}-{stamp}.db", drill.value.name)),
            );
            params.push(ParamInput {
                name: restore.snapshot_param.clone(),
                value: serde_yaml::Value::String(path.display().to_string()),
                source: drill.source.clone(),
                location: drill
                    .map
                    .value(&YamlPath::root().key("disaster").key("restore")),
            });
            Some(path)
        }
        _ => None,
    };
    let plan = compile(&runbook, &cluster, &params)?;
    Ok(PreparedDrill {
        drill,
        disaster,
        cluster,
        runbook,
        params,
        plan,
        snapshot,
        paths: (runbook_path, inventory_path),
        facts: Vec::new(),
    })
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_owned())
}

/// Every node a drill names must be in the inventory.
fn check_nodes(
    drill: &Document<Drill>,
    disaster: &DisasterKind,
    cluster: &Cluster,
) -> Result<(), Diagnostics> {
    let named: Vec<(&str, YamlPath)> = match disaster {
        DisasterKind::Restore(r) => r
            .from
            .iter()
            .map(|n| {
                (
                    n.as_str(),
                    YamlPath::root().key("disaster").key("restore").key("from"),
                )
            })
            .collect(),
        DisasterKind::LoseMember(l) => vec![(
            l.node.as_str(),
            YamlPath::root()
                .key("disaster")
                .key("lose_member")
                .key("node"),
        )],
        DisasterKind::LoseMajority(l) => vec![(
            l.survivor.as_str(),
            YamlPath::root()
                .key("disaster")
                .key("lose_majority")
                .key("survivor"),
        )],
    };
    let leader = drill
        .value
        .expect
        .leader
        .iter()
        .map(|n| (n.as_str(), YamlPath::root().key("expect").key("leader")));
    let mut problems = Vec::new();
    for (node, path) in named.into_iter().chain(leader) {
        if cluster.node(node).is_none() {
            let names = cluster.nodes.iter().map(|n| n.name.as_str());
            problems.push(
                drill
                    .error_at(
                        &path,
                        format!(
                            "no node `{node}` in inventory `{}`",
                            cluster.inventory().name
                        ),
                    )
                    .suggest(node, names),
            );
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(Diagnostics::new(problems))
    }
}
