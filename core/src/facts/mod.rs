//! Node facts: what each node says about its etcd, gathered before a run touches anything. The
//! node is the source of truth and the inventory a claim to check.
//!
//! One script per node reads the static pod manifest (or the external service's environment
//! file) and measures the data dir and the backup dir (mount point, filesystem, free space), the
//! etcdctl and etcdutl versions and the running etcd process. The manifest is parsed as the Pod it
//! is ([`config`]): `--data-dir`, the hostPath behind it, `--name`, the URLs, the cluster token,
//! the corrupt-check and quota flags, the image tag. [`reconcile`] then compares them with the
//! inventory: a field the inventory states and the node contradicts refuses the run at that
//! field's place in the file; a field the inventory leaves out takes the node's value.

pub mod config;
pub mod probe;
pub mod unit;

use serde::{Deserialize, Serialize};

pub use config::EtcdConfig;
pub use probe::{DirFacts, ProcessFacts};

use crate::diagnostic::{Diagnostic, Diagnostics};
use crate::inventory::{Cluster, Management};
use crate::plan::{Host, Operation, Plan, Rollback};
use crate::source::YamlPath;

/// What one node said about its etcd.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeFacts {
    /// The node's name in the inventory.
    pub node: String,
    /// The user id node commands ran as (0 when sudo works).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<u32>,
    /// Where the configuration was read: a manifest, an environment file or the process.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_source: Option<String>,
    /// The etcd settings the node's configuration gives.
    pub config: EtcdConfig,
    /// The host data dir (the configuration's, else the inventory's), measured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<DirFacts>,
    /// The backup dir, measured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup_dir: Option<DirFacts>,
    /// `etcdctl version`, when it answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etcdctl_version: Option<String>,
    /// `etcdutl version`, when it answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etcdutl_version: Option<String>,
    /// The running etcd process, if one runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub process: Option<ProcessFacts>,
    /// Whether the process was looked for (not on the local sandbox, where every member runs on
    /// one machine).
    #[serde(default)]
    pub process_looked_for: bool,
    /// Whether that process keeps its data in the host data dir (same `member/`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub process_uses_data_dir: Option<bool>,
    /// Why the configuration could not be read, when it could not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_problem: Option<String>,
}

/// The nodes a plan runs commands on (steps or their rollbacks): the ones whose facts matter.
/// A plan that only calls etcd's API (a backup from a CronJob) needs no access to the nodes.
pub fn nodes_touched(plan: &Plan) -> Vec<String> {
    let on_node = |op: &Operation| {
        matches!(
            op,
            Operation::Script { .. } | Operation::Copy { .. } | Operation::Distribute { .. }
        )
    };
    let mut names: Vec<String> = plan
        .graph
        .node_weights()
        .filter(|step| {
            on_node(&step.operation)
                || matches!(&step.rollback, Rollback::Run { operation } if on_node(operation))
        })
        .filter_map(|step| match &step.host {
            Host::Node(name) => Some(name.clone()),
            _ => None,
        })
        .collect();
    names.sort_unstable();
    names.dedup();
    names
}

/// An inventory field compared with the node.
struct Field<'a> {
    name: &'static str,
    stated: Option<YamlPath>,
    inventory: &'a str,
    node: Option<&'a str>,
    same: fn(&str, &str) -> bool,
}

/// Compares the inventory with the facts. A field the inventory states (on the node or in
/// `defaults`) that the node contradicts is an error at that field, naming what the node says; a
/// field left out takes the node's value. Returns what was filled, one line each.
pub fn reconcile(cluster: &mut Cluster, facts: &[NodeFacts]) -> Result<Vec<String>, Diagnostics> {
    let mut errors: Vec<Diagnostic> = Vec::new();
    let mut filled = Vec::new();
    let document = &cluster.document;
    let inventory = &document.value;
    let root = YamlPath::root();
    for (i, node) in cluster.nodes.iter_mut().enumerate() {
        let Some(fact) = facts.iter().find(|f| f.node == node.name) else {
            continue;
        };
        let entry = &inventory.nodes[i];
        let defaults = &inventory.defaults.etcd;
        let own = root.key("nodes").index(i).key("etcd");
        let base = root.key("defaults").key("etcd");
        let stated = |own_set: bool, base_set: bool, field: &str| {
            if own_set {
                Some(own.key(field))
            } else if base_set {
                Some(base.key(field))
            } else {
                None
            }
        };
        let source = fact.config_source.as_deref().unwrap_or("the node");
        let management = stated(
            entry.etcd.management.is_some(),
            defaults.management.is_some(),
            "management",
        )
        .unwrap_or_else(|| root.key("nodes").index(i));
        if let Some(problem) = &fact.config_problem {
            errors.push(
                document
                    .error_at(&management, format!("node `{}`: {source}: {problem}", node.name))
                    .hint("etcdrill reads the member's settings from it; fix the file or the inventory's `management`"),
            );
        }
        match &node.etcd.management {
            Management::StaticPod(pod) if fact.config_source.is_none() => errors.push(
                document
                    .error_at(
                        &management,
                        format!(
                            "node `{}` has no etcd manifest at {} nor parked in {}",
                            node.name, pod.manifest, pod.parked_dir
                        ),
                    )
                    .hint("set `static_pod.manifest` (and `parked_dir`) to where the node keeps etcd's static pod manifest"),
            ),
            Management::External(service)
                if service.env_file.is_some()
                    && service.unit.is_none()
                    && fact.config_source.as_deref().is_none_or(|s| !s.starts_with("env file")) =>
            {
                errors.push(
                    document
                        .error_at(
                            &management,
                            format!(
                                "node `{}` has no file {}",
                                node.name,
                                service.env_file.as_deref().unwrap_or_default()
                            ),
                        )
                        .hint("set `external.env_file` to the file of ETCD_* variables the service reads"),
                )
            }
            _ => {}
        }
        // The node may advertise several URLs: the inventory's must be one of them.
        let url = (|list: &str, url: &str| {
            list.split(',')
                .any(|listed| crate::inventory::same_url(listed.trim(), url))
        }) as fn(&str, &str) -> bool;
        let fields = [
            Field {
                name: "data_dir",
                stated: stated(
                    entry.etcd.data_dir.is_some(),
                    defaults.data_dir.is_some(),
                    "data_dir",
                ),
                inventory: &node.etcd.data_dir,
                node: fact.config.host_data_dir.as_deref(),
                same: |a, b| a.trim_end_matches('/') == b.trim_end_matches('/'),
            },
            Field {
                name: "member",
                stated: stated(entry.etcd.member.is_some(), false, "member"),
                inventory: &node.etcd.member,
                node: fact.config.name.as_deref(),
                same: |a, b| a == b,
            },
            Field {
                name: "peer_url",
                stated: stated(
                    entry.etcd.peer_url.is_some(),
                    defaults.peer_url.is_some(),
                    "peer_url",
                ),
                inventory: &node.etcd.peer_url,
                node: fact.config.peer_url.as_deref(),
                same: url,
            },
            Field {
                name: "client_url",
                stated: stated(
                    entry.etcd.client_url.is_some(),
                    defaults.client_url.is_some(),
                    "client_url",
                ),
                inventory: &node.etcd.client_url,
                node: fact.config.client_url.as_deref(),
                same: url,
            },
        ];
        let mut fills: Vec<(&'static str, String)> = Vec::new();
        for field in fields {
            let Some(seen) = field
                .node
                .filter(|seen| !(field.same)(seen, field.inventory))
            else {
                continue;
            };
            match field.stated {
                Some(path) => errors.push(
                    document
                        .error_at(
                            &path,
                            format!(
                                "`{}` of node `{}` is `{}`, but the node says `{seen}` ({source})",
                                field.name, node.name, field.inventory
                            ),
                        )
                        .hint(format!(
                            "write `{seen}` here, or leave `{}` out: etcdrill then takes it from the node",
                            field.name
                        )),
                ),
                None => fills.push((field.name, seen.to_owned())),
            }
        }
        for (name, value) in fills {
            // Of several advertised URLs, the first.
            let value = match name {
                "peer_url" | "client_url" => value
                    .split(',')
                    .next()
                    .unwrap_or_default()
                    .trim()
                    .to_owned(),
                _ => value,
            };
            filled.push(format!("{}: {name} = {value} (from {source})", node.name));
            match name {
                "data_dir" => node.etcd.data_dir = value,
                "member" => node.etcd.member = value,
                "peer_url" => node.etcd.peer_url = value,
                _ => node.etcd.client_url = value,
            }
        }
    }
    if errors.is_empty() {
        Ok(filled)
    } else {
        Err(Diagnostics::new(errors))
    }
}

/// What the nodes say now that differs from what a run started from, one line per node whose
/// host data dir moved (a repoint of that run, or a change by hand).
pub fn changed_since(started: &[NodeFacts], now: &[NodeFacts]) -> Vec<String> {
    now.iter()
        .filter_map(|now| {
            let then = started.iter().find(|f| f.node == now.node)?;
            let (was, is) = (
                then.config.host_data_dir.as_deref()?,
                now.config.host_data_dir.as_deref()?,
            );
            (was != is).then(|| {
                format!(
                    "{}: the data dir is {is} now, {was} when the run started (its plan keeps {was})",
                    now.node
                )
            })
        })
        .collect()
}

/// The facts as a person reads them: one block per node.
pub fn summary(facts: &[NodeFacts]) -> String {
    let gib = |bytes: Option<u64>| {
        bytes.map_or("?".to_owned(), |b| {
            format!("{} free", crate::humanize::bytes(b as f64))
        })
    };
    let dir = |d: &Option<DirFacts>| match d {
        Some(d) if d.exists => format!(
            "{} ({}{}, {})",
            d.path,
            if d.mount_point {
                "its own mount point, "
            } else {
                ""
            },
            d.filesystem,
            gib(d.free_bytes)
        ),
        Some(d) => format!(
            "{} (missing; {}, {})",
            d.path,
            d.filesystem,
            gib(d.free_bytes)
        ),
        None => "?".to_owned(),
    };
    let mut text = String::from("node facts:");
    for f in facts {
        let c = &f.config;
        text.push_str(&format!(
            "\n  {}: {}\n    data dir {}{}\n    backup dir {}\n    etcdctl {}, etcdutl {}, runs as uid {}",
            f.node,
            f.config_source.as_deref().unwrap_or("no configuration found"),
            dir(&f.data_dir),
            c.data_dir
                .as_deref()
                .filter(|d| Some(*d) != c.host_data_dir.as_deref())
                .map(|d| format!(", --data-dir {d} in the pod"))
                .unwrap_or_default(),
            dir(&f.backup_dir),
            f.etcdctl_version.as_deref().unwrap_or("absent"),
            f.etcdutl_version.as_deref().unwrap_or("absent"),
            match f.uid {
                Some(0) => "0".to_owned(),
                Some(uid) => format!(
                    "{uid} (not root: node actions that touch etcd's files will fail; set `ssh.sudo: true`)"
                ),
                None => "?".to_owned(),
            },
        ));
        let mut flags = Vec::new();
        for (name, value) in [
            ("name", &c.name),
            ("image", &c.image_tag),
            ("initial-cluster-token", &c.initial_cluster_token),
            ("corrupt-check", &c.initial_corrupt_check),
            ("quota-backend-bytes", &c.quota_backend_bytes),
        ] {
            if let Some(value) = value {
                flags.push(format!("{name} {value}"));
            }
        }
        if !flags.is_empty() {
            text.push_str(&format!("\n    {}", flags.join(", ")));
        }
        match (&f.process, f.process_uses_data_dir) {
            (Some(p), Some(uses)) => text.push_str(&format!(
                "\n    etcd runs (pid {}, for {} s) {}",
                p.pid,
                p.running_for_s,
                if uses {
                    "on this data dir"
                } else {
                    "on ANOTHER data dir"
                }
            )),
            (Some(p), None) => text.push_str(&format!("\n    etcd runs (pid {})", p.pid)),
            (None, _) if f.process_looked_for => text.push_str("\n    etcd is not running"),
            (None, _) => {}
        }
    }
    text
}

/// The facts a run recorded in its directory, if it recorded any that can be read.
pub fn read(run_dir: &std::path::Path) -> Option<Vec<NodeFacts>> {
    let json = std::fs::read(run_dir.join("facts.json")).ok()?;
    serde_json::from_slice(&json).ok()
}

/// Writes the facts as `facts.json` into a run directory, atomically and durably.
pub fn write(run_dir: &std::path::Path, facts: &[NodeFacts]) -> std::io::Result<()> {
    let json = serde_json::to_vec_pretty(facts).map_err(std::io::Error::other)?;
    crate::atomic_file::write(&run_dir.join("facts.json"), &json)
}

#[cfg(test)]
mod tests;
