//! Gathering node facts: one fact script per node over its transport, all nodes at once. What the
//! facts are, and how they are compared with the inventory, is the core's [`etcdrill_core::facts`].

use std::time::Duration;

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;

pub use etcdrill_core::facts::*;

use crate::inventory::{Cluster, Management, Node};
use crate::transport::{CommandRequest, Transport, TransportError};

/// How long gathering a node's facts may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(60);

/// Why a node's facts could not be gathered.
#[derive(Debug, thiserror::Error)]
pub enum NodeFactsError {
    /// The node could not be reached.
    #[error("node `{node}` could not be reached")]
    Node {
        /// The node.
        node: String,
        /// What went wrong.
        #[source]
        source: TransportError,
    },
    /// The fact script ended badly.
    #[error("node `{node}`: the fact script failed: {detail}")]
    Script {
        /// The node.
        node: String,
        /// Its exit status and stderr.
        detail: String,
    },
}

/// Why facts could not be gathered: every node that failed, one line each.
#[derive(Debug, thiserror::Error)]
#[error("nothing was run: the facts of {} node(s) could not be gathered:\n{}", .0.len(), lines(.0))]
pub struct FactsError(pub Vec<NodeFactsError>);

fn lines(errors: &[NodeFactsError]) -> String {
    errors
        .iter()
        .map(|e| format!("  {}", crate::humanize::error_chain(e)))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Gathers the facts of the nodes named, one script per node, all nodes at once.
pub async fn gather(cluster: &Cluster, names: &[String]) -> Result<Vec<NodeFacts>, FactsError> {
    let mut pending: FuturesUnordered<_> = cluster
        .nodes
        .iter()
        .filter(|node| names.contains(&node.name))
        .map(gather_node)
        .collect();
    let mut all = Vec::new();
    let mut failed = Vec::new();
    while let Some(facts) = pending.next().await {
        match facts {
            Ok(facts) => all.push(facts),
            Err(error) => failed.push(error),
        }
    }
    if !failed.is_empty() {
        return Err(FactsError(failed));
    }
    all.sort_by_key(|f| cluster.nodes.iter().position(|n| n.name == f.node));
    Ok(all)
}

async fn run(transport: &Transport, node: &Node, script: &str) -> Result<String, NodeFactsError> {
    let request = CommandRequest {
        script,
        sudo: node.ssh.sudo.unwrap_or(false),
        timeout: PROBE_TIMEOUT,
        grace: Duration::from_secs(5),
    };
    let output = transport
        .run(&request, None)
        .await
        .map_err(|source| NodeFactsError::Node {
            node: node.name.clone(),
            source,
        })?;
    if output.exit_status != Some(0) {
        return Err(NodeFactsError::Script {
            node: node.name.clone(),
            detail: format!(
                "exit status {:?}: {}",
                output.exit_status,
                output.stderr.trim()
            ),
        });
    }
    Ok(output.stdout)
}

async fn gather_node(node: &Node) -> Result<NodeFacts, NodeFactsError> {
    let transport = Transport::connect(node)
        .await
        .map_err(|source| NodeFactsError::Node {
            node: node.name.clone(),
            source,
        })?;
    let probed = probe::parse(&run(&transport, node, &probe::script(node)).await?);
    let mut facts = NodeFacts {
        node: node.name.clone(),
        uid: probed.uid,
        config_source: None,
        config: EtcdConfig::default(),
        data_dir: None,
        backup_dir: probed
            .dirs
            .iter()
            .find(|d| d.path == node.etcd.backup_dir)
            .cloned(),
        etcdctl_version: probed.etcdctl_version.clone(),
        etcdutl_version: probed.etcdutl_version.clone(),
        process: probed.process.clone(),
        process_looked_for: node.transport != crate::inventory::TransportKind::Local,
        process_uses_data_dir: None,
        config_problem: None,
    };
    match (&node.etcd.management, &probed.manifest, &probed.env_file) {
        (Management::StaticPod(_), Some((path, text)), _) => {
            match config::from_manifest(text) {
                Ok(config) => facts.config = config,
                Err(error) => facts.config_problem = Some(error.to_string()),
            }
            facts.config_source = Some(format!("manifest {path}"));
        }
        (Management::External(service), _, env_file) if probed.unit.is_some() => {
            let unit = unit::parse(probed.unit.as_deref().unwrap_or_default());
            let mut files = probed.unit_env_files.clone();
            if let Some(path) = &service.env_file {
                facts.config_problem = match env_file {
                    None => Some(format!("there is no file {path}")),
                    Some(_) if !unit.environment_files.contains(path) => Some(format!(
                        "the unit reads no `EnvironmentFile={path}`, so what etcdrill writes there would not reach etcd"
                    )),
                    Some(text) => {
                        files.retain(|(p, _)| p != path);
                        files.push((path.clone(), text.clone()));
                        None
                    }
                };
            }
            facts.config = unit::etcd_config(&unit, &files);
            facts.config_source = service.unit.as_ref().map(|u| format!("unit {u}"));
        }
        (Management::External(service), _, Some(text)) => {
            facts.config = config::from_env_file(text);
            facts.config_source = service.env_file.as_ref().map(|f| format!("env file {f}"));
        }
        _ => {}
    }
    // What the running process says fills what the files left out (an external service whose
    // flags are in its unit's command line).
    if let Some(process) = &probed.process {
        let seen = config::from_command_line(&process.cmdline);
        let config = &mut facts.config;
        if config.data_dir.is_none() && config.name.is_none() {
            if facts.config_source.is_none() && seen.data_dir.is_some() {
                facts.config_source = Some(format!("the running etcd (pid {})", process.pid));
            }
            *config = EtcdConfig {
                image_tag: config.image_tag.take(),
                ..seen
            };
        }
    }
    let host = facts
        .config
        .host_data_dir
        .clone()
        .unwrap_or_else(|| node.etcd.data_dir.clone());
    facts.data_dir = match probed.dirs.iter().find(|d| d.path == host) {
        Some(dir) => Some(dir.clone()),
        None => probe::parse(&run(&transport, node, &probe::measure_script(&[&host])).await?)
            .dirs
            .into_iter()
            .next(),
    };
    facts.process_uses_data_dir = match (&probed.process, &facts.data_dir) {
        (Some(process), Some(dir)) => {
            Some(process.member.is_some() && process.member == dir.member)
        }
        _ => None,
    };
    Ok(facts)
}
