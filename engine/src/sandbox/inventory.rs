//! The sandbox as an etcdrill inventory: every member a node of its own on this machine, and the
//! cluster, etcd access and endpoints made from it.

use std::path::PathBuf;

use super::{INVENTORY, Sandbox, SandboxError};
use crate::etcd::EtcdAccess;
use crate::inventory::{
    Cluster, ControllerSettings, EtcdSettings, ExternalService, Inventory, ManagementSpec,
    NodeEntry, NodeSettings, SshSettings, TransportKind,
};
use crate::source::SourceFile;

impl Sandbox {
    /// The inventory file.
    pub fn inventory_path(&self) -> PathBuf {
        self.dir.join(INVENTORY)
    }

    /// The inventory, as written: every member a node of its own on this machine.
    pub fn inventory(&self) -> Inventory {
        let nodes = self
            .members
            .iter()
            .map(|m| NodeEntry {
                name: m.name.clone(),
                address: "127.0.0.1".into(),
                groups: Vec::new(),
                transport: None,
                ssh: SshSettings::default(),
                etcd: EtcdSettings {
                    management: Some(ManagementSpec {
                        static_pod: None,
                        external: Some(ExternalService {
                            start: format!("{} start", crate::render::shell_quote(&m.service)),
                            stop: format!("{} stop", crate::render::shell_quote(&m.service)),
                            env_file: Some(m.env_file.clone()),
                            unit: None,
                        }),
                    }),
                    data_dir: Some(m.data_dir.clone()),
                    backup_dir: Some(m.backup_dir.clone()),
                    client_url: Some(m.client_url.clone()),
                    peer_url: Some(m.peer_url.clone()),
                    process_name: Some(m.process_name.clone()),
                    ..EtcdSettings::default()
                },
            })
            .collect();
        Inventory {
            name: format!("sandbox-{}", self.id),
            description: format!(
                "etcdrill sandbox in {}: {} members of etcd {} on 127.0.0.1 with mutual TLS",
                self.dir.display(),
                self.members.len(),
                self.etcd_version
            ),
            production: false,
            controller: ControllerSettings {
                tls: Some(self.client_tls.clone()),
                work_dir: None,
            },
            defaults: NodeSettings {
                transport: Some(TransportKind::Local),
                ssh: SshSettings::default(),
                etcd: EtcdSettings {
                    tls: Some(self.client_tls.clone()),
                    etcdctl: Some(vec![self.etcdctl.clone()]),
                    etcdutl: Some(vec![self.etcdutl.clone()]),
                    ..EtcdSettings::default()
                },
            },
            nodes,
        }
    }

    pub(super) fn inventory_yaml(&self) -> Result<String, SandboxError> {
        let body =
            serde_yaml::to_string(&self.inventory()).map_err(|err| SandboxError::Marker {
                path: self.inventory_path(),
                reason: err.to_string(),
            })?;
        Ok(format!(
            "# Written by `etcdrill sandbox up`; `etcdrill sandbox down --dir {}` removes it.\n{body}",
            self.dir.display()
        ))
    }

    pub(super) fn cluster_from(&self, text: &str) -> Result<Cluster, SandboxError> {
        Cluster::load(SourceFile::new(self.inventory_path(), text)).map_err(SandboxError::Inventory)
    }

    /// The inventory, loaded.
    pub fn cluster(&self) -> Result<Cluster, SandboxError> {
        self.cluster_from(&self.inventory_yaml()?)
    }

    /// etcd access with the sandbox's client certificate.
    pub fn access(&self) -> Result<EtcdAccess, SandboxError> {
        Ok(EtcdAccess::resolve_with(Some(&self.client_tls), |_| None)?)
    }

    /// Every client URL.
    pub fn endpoints(&self) -> Vec<String> {
        self.members.iter().map(|m| m.client_url.clone()).collect()
    }
}
