//! The etcdrill inventory that describes a bed: its nodes, SSH, certificates and etcd tools.

use std::path::Path;

use crate::{Bed, Management};

impl Bed {
    /// An etcdrill inventory for this bed that trusts the host keys in `known_hosts` and keeps
    /// run directories under `work_dir`.
    pub fn etcdrill_inventory(&self, work_dir: &Path, known_hosts: &Path) -> String {
        let ssh = self.ssh();
        let tls = self.tls();
        let node = &self.nodes()[0];
        let management = match self.config().management {
            Management::StaticPod => "{static_pod: {}}".to_string(),
            Management::External => format!(
                "{{external: {{start: {}, stop: {}, env_file: {}}}}}",
                quoted(&node.start_command().unwrap_or_default()),
                quoted(&node.stop_command().unwrap_or_default()),
                quoted(&node.external_env_path().display().to_string()),
            ),
        };
        // etcd 3.4 has no etcdutl: its etcdctl restores, with the v3 API.
        let etcdutl = match node.etcdutl_path() {
            Some(path) => format!("[{}]", quoted(&path.display().to_string())),
            None => format!(
                "[env, ETCDCTL_API=3, {}]",
                quoted(&node.etcdctl_path().display().to_string())
            ),
        };
        let mut text = format!(
            "name: bed-{id}\nproduction: false\ncontroller:\n  tls: {{ca: {ca}, cert: {cert}, key: {key}}}\n  work_dir: {work}\ndefaults:\n  ssh: {{user: {user}, sudo: {sudo}, port: {port}, identity_file: {identity}, known_hosts: {known}}}\n  etcd:\n    management: {management}\n    etcdctl: [{etcdctl}]\n    etcdutl: {etcdutl}\nnodes:\n",
            id = self.id(),
            ca = quoted(&tls.ca_cert.display().to_string()),
            cert = quoted(&tls.client_cert.display().to_string()),
            key = quoted(&tls.client_key.display().to_string()),
            work = quoted(&work_dir.display().to_string()),
            user = quoted(&ssh.user),
            sudo = ssh.sudo,
            port = ssh.port,
            identity = quoted(&ssh.identity_file.display().to_string()),
            known = quoted(&known_hosts.display().to_string()),
            etcdctl = quoted(&node.etcdctl_path().display().to_string()),
        );
        for node in self.nodes() {
            text.push_str(&format!(
                "  - {{name: {}, address: {}}}\n",
                quoted(node.name()),
                node.address()
            ));
        }
        text
    }
}

/// A YAML double-quoted scalar (JSON string syntax is valid YAML).
fn quoted(text: &str) -> String {
    serde_json::to_string(text).expect("a string serialises")
}
