//! The inventory: the cluster's nodes and the facts about each that runbooks must not hard-code
//! (how etcd is managed, data dir, URLs, certificates, where etcdctl and etcdutl are, SSH).
//!
//! Node entries override `defaults`, which override kubeadm's conventions. Loading resolves every
//! node completely or reports every missing or conflicting field with its location.

use std::collections::HashSet;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::diagnostic::{DiagnosticSink, Diagnostics};
use crate::document::Document;
use crate::source::{SourceFile, YamlPath};

/// An inventory file as written.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Inventory {
    /// Name of the cluster, e.g. `staging-east`.
    pub name: String,
    /// Free text about the cluster.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// A production cluster: destructive steps need an extra, explicit flag.
    #[serde(default)]
    pub production: bool,
    /// Settings for the machine running etcdrill.
    #[serde(default)]
    pub controller: ControllerSettings,
    /// Settings every node inherits unless it overrides them.
    #[serde(default)]
    pub defaults: NodeSettings,
    /// The etcd nodes.
    pub nodes: Vec<NodeEntry>,
}

/// Settings for the machine running etcdrill.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ControllerSettings {
    /// Client certificate for etcd API calls from the controller; `ETCDCTL_*` variables otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsFiles>,
    /// Where snapshots and run directories go on the controller. Default `.etcdrill`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub work_dir: Option<String>,
}

/// One node as written: identity plus overrides of the defaults.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NodeEntry {
    /// Node name; also the etcd member name unless `etcd.member` says otherwise.
    pub name: String,
    /// Address used for SSH and in the default etcd URLs.
    pub address: String,
    /// Groups, for `on: group:NAME`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    /// Overrides `defaults.transport`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transport: Option<TransportKind>,
    /// Overrides of `defaults.ssh`.
    #[serde(default)]
    pub ssh: SshSettings,
    /// Overrides of `defaults.etcd`.
    #[serde(default)]
    pub etcd: EtcdSettings,
}

/// Settings a node may inherit or override.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NodeSettings {
    /// How commands reach the node: `ssh` (default) or `local` (the sandbox on this machine).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transport: Option<TransportKind>,
    /// SSH settings.
    #[serde(default)]
    pub ssh: SshSettings,
    /// etcd settings.
    #[serde(default)]
    pub etcd: EtcdSettings,
}

/// How commands reach a node.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TransportKind {
    /// Over SSH.
    #[default]
    Ssh,
    /// On this machine (the local sandbox).
    Local,
}

/// SSH settings; `~/.ssh/config` applies to anything left unset.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SshSettings {
    /// Login user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// Private key file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity_file: Option<String>,
    /// Jump host (`ProxyJump`), e.g. `admin@bastion:22`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jump_host: Option<String>,
    /// known_hosts file checked strictly; the user's own by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub known_hosts: Option<String>,
    /// Run node commands through `sudo -n`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sudo: Option<bool>,
}

/// etcd settings of a node.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EtcdSettings {
    /// How the member is started and stopped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub management: Option<ManagementSpec>,
    /// Member name, when it differs from the node name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub member: Option<String>,
    /// Data directory. Default `/var/lib/etcd`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<String>,
    /// Client URL. Default `https://ADDRESS:2379`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_url: Option<String>,
    /// Peer URL. Default `https://ADDRESS:2380`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer_url: Option<String>,
    /// Certificates etcdctl uses on the node. Default kubeadm's `/etc/kubernetes/pki/etcd`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsFiles>,
    /// The etcdctl command on the node, as words. Default `[etcdctl]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etcdctl: Option<Vec<String>>,
    /// The etcdutl command on the node, as words. Default `[etcdutl]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etcdutl: Option<Vec<String>>,
    /// Where snapshots are kept on the node. Default `/var/backups/etcd`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup_dir: Option<String>,
    /// The etcd process name, to wait for it to be gone. Default `etcd`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub process_name: Option<String>,
}

/// How an etcd member is started and stopped, as written: exactly one of the two forms.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ManagementSpec {
    /// A kubeadm static pod.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub static_pod: Option<StaticPod>,
    /// A service of its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external: Option<ExternalService>,
}

/// A kubeadm static pod: the kubelet runs etcd while the manifest is in the manifests dir.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StaticPod {
    /// The manifest. Default `/etc/kubernetes/manifests/etcd.yaml`.
    #[serde(default = "default_manifest")]
    pub manifest: String,
    /// Where the manifest waits while the member is stopped. Default `/etc/kubernetes/etcdrill`.
    #[serde(default = "default_parked_dir")]
    pub parked_dir: String,
}

/// etcd run as a service of its own, started and stopped by commands.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExternalService {
    /// Starts the member, e.g. `systemctl start etcd`.
    pub start: String,
    /// Stops the member, e.g. `systemctl stop etcd`.
    pub stop: String,
    /// File of `ETCD_*` variables the service reads; needed to change flags.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env_file: Option<String>,
    /// The systemd unit that runs etcd: a name (`etcd.service`, read with `systemctl cat`, else
    /// from the unit directories with its drop-ins) or the unit file's absolute path. Its
    /// `ExecStart` flags, `Environment=` and `EnvironmentFile=`s are the node's facts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
}

/// How an etcd member is started and stopped on its node.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Management {
    /// A kubeadm static pod.
    StaticPod(StaticPod),
    /// A service of its own.
    External(ExternalService),
}

fn default_manifest() -> String {
    "/etc/kubernetes/manifests/etcd.yaml".into()
}

fn default_parked_dir() -> String {
    "/etc/kubernetes/etcdrill".into()
}

/// A client certificate, key and the CA that signed the server's certificate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TlsFiles {
    /// CA certificate.
    pub ca: String,
    /// Client certificate.
    pub cert: String,
    /// Client key. Only its path is ever shown.
    pub key: String,
}

impl TlsFiles {
    fn kubeadm() -> Self {
        Self {
            ca: "/etc/kubernetes/pki/etcd/ca.crt".into(),
            cert: "/etc/kubernetes/pki/etcd/server.crt".into(),
            key: "/etc/kubernetes/pki/etcd/server.key".into(),
        }
    }
}

/// A loaded inventory with every node resolved.
#[derive(Debug)]
pub struct Cluster {
    /// The file, for locating later errors.
    pub document: Document<Inventory>,
    /// The nodes, in inventory order.
    pub nodes: Vec<Node>,
}

/// One node with every setting resolved.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Node {
    /// Node name.
    pub name: String,
    /// Address.
    pub address: String,
    /// Groups.
    pub groups: Vec<String>,
    /// Transport.
    pub transport: TransportKind,
    /// SSH settings (unset fields fall to `~/.ssh/config`).
    pub ssh: SshSettings,
    /// etcd settings.
    pub etcd: NodeEtcd,
    /// Where the node entry is in the inventory.
    #[serde(skip)]
    pub path: YamlPath,
}

/// A node's resolved etcd settings.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NodeEtcd {
    /// How the member is started and stopped.
    pub management: Management,
    /// Member name.
    pub member: String,
    /// Data directory.
    pub data_dir: String,
    /// Client URL.
    pub client_url: String,
    /// Peer URL.
    pub peer_url: String,
    /// Certificates etcdctl uses on the node.
    pub tls: TlsFiles,
    /// etcdctl command words.
    pub etcdctl: Vec<String>,
    /// etcdutl command words.
    pub etcdutl: Vec<String>,
    /// Backup directory on the node.
    pub backup_dir: String,
    /// etcd process name.
    pub process_name: String,
}

impl Cluster {
    /// Where runs keep their directories: `given` (`--work-dir`), else the inventory's
    /// `controller.work_dir`, else `.etcdrill`.
    pub fn work_dir(&self, given: Option<&std::path::Path>) -> std::path::PathBuf {
        given
            .map(std::path::Path::to_path_buf)
            .or_else(|| {
                self.inventory()
                    .controller
                    .work_dir
                    .clone()
                    .map(std::path::PathBuf::from)
            })
            .unwrap_or_else(|| std::path::PathBuf::from(".etcdrill"))
    }

    /// Parses an inventory and resolves every node.
    pub fn load(source: SourceFile) -> Result<Self, Diagnostics> {
        let document = Document::<Inventory>::parse(source)?;
        let mut sink = DiagnosticSink::default();
        let nodes = resolve_nodes(&document, &mut sink);
        sink.finish(Self { document, nodes })
    }

    /// The inventory as written.
    pub fn inventory(&self) -> &Inventory {
        &self.document.value
    }

    /// The node with this name.
    pub fn node(&self, name: &str) -> Option<&Node> {
        self.nodes.iter().find(|n| n.name == name)
    }

    /// `name=peer_url,...` for `--initial-cluster`.
    pub fn initial_cluster(&self) -> String {
        self.nodes
            .iter()
            .map(|n| format!("{}={}", n.etcd.member, n.etcd.peer_url))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Every client URL, comma-separated, for `--endpoints`.
    pub fn endpoints(&self) -> String {
        self.client_urls().join(",")
    }

    /// Every node's client URL, in inventory order.
    pub fn client_urls(&self) -> Vec<String> {
        self.nodes
            .iter()
            .map(|n| n.etcd.client_url.clone())
            .collect()
    }
}

/// Refuses node paths that begin with `-`: `mv`, `cp`, `grep` and etcdutl would take them as
/// options. Located at the node's own field, or at the default it inherited.
fn refuse_option_like_paths(
    document: &Document<Inventory>,
    sink: &mut DiagnosticSink,
    node: &YamlPath,
    resolved: &NodeEtcd,
) {
    // Where each path is written, under a node or under `defaults`.
    type Under = fn(YamlPath) -> YamlPath;
    let mut paths: Vec<(&str, Under, &str)> = vec![
        (
            "data_dir",
            |b| b.key("etcd").key("data_dir"),
            &resolved.data_dir,
        ),
        (
            "backup_dir",
            |b| b.key("etcd").key("backup_dir"),
            &resolved.backup_dir,
        ),
    ];
    if let Management::StaticPod(spec) = &resolved.management {
        fn pod(b: YamlPath) -> YamlPath {
            b.key("etcd").key("management").key("static_pod")
        }
        paths.push(("manifest", |b| pod(b).key("manifest"), &spec.manifest));
        paths.push(("parked_dir", |b| pod(b).key("parked_dir"), &spec.parked_dir));
    }
    for (field, under, value) in paths.into_iter().filter(|(_, _, v)| v.starts_with('-')) {
        let own = under(node.clone());
        let at = if document.map.key_exact(&own).is_some() {
            own
        } else {
            under(YamlPath::root().key("defaults"))
        };
        sink.push(
            document
                .error_at(
                    &at,
                    format!("`{field}` is `{value}`, which begins with `-`: a command would take it as an option"),
                )
                .expected("an absolute path such as `/var/lib/etcd`"),
        );
    }
}

/// Formats an address for a URL, bracketing IPv6.
fn url_host(address: &str) -> String {
    if address.contains(':') && !address.starts_with('[') {
        format!("[{address}]")
    } else {
        address.to_owned()
    }
}

/// Resolves every node of the inventory, reporting each problem at its place: the inventory as a
/// whole, then per node its identity, how its member is managed, its etcd settings (paths,
/// commands, unique member names and URLs) and its SSH settings.
fn resolve_nodes(document: &Document<Inventory>, sink: &mut DiagnosticSink) -> Vec<Node> {
    check_inventory(document, sink);
    let inventory = &document.value;
    let defaults = &inventory.defaults;
    let mut names = HashSet::new();
    let mut taken = Taken::default();
    let mut nodes = Vec::new();
    for (i, entry) in inventory.nodes.iter().enumerate() {
        let path = YamlPath::root().key("nodes").index(i);
        let unique_name = check_identity(document, sink, &path, entry, &mut names);
        let Some(management) = management(document, sink, &path, entry) else {
            continue;
        };
        let etcd = resolve_etcd(entry, &defaults.etcd, management);
        refuse_option_like_paths(document, sink, &path, &etcd);
        check_commands(document, sink, &path, &etcd);
        taken.check(document, sink, &path, &etcd, unique_name);
        nodes.push(Node {
            name: entry.name.clone(),
            address: entry.address.clone(),
            groups: entry.groups.clone(),
            transport: entry.transport.or(defaults.transport).unwrap_or_default(),
            ssh: resolve_ssh(&entry.ssh, &defaults.ssh),
            etcd,
            path,
        });
    }
    nodes
}

/// The inventory as a whole: it lists nodes, and its defaults name no member.
fn check_inventory(document: &Document<Inventory>, sink: &mut DiagnosticSink) {
    let root = YamlPath::root();
    if document.value.nodes.is_empty() {
        sink.push(
            document
                .error_at(&root.key("nodes"), "the inventory lists no nodes")
                .hint("add at least one entry with `name` and `address`"),
        );
    }
    if document.value.defaults.etcd.member.is_some() {
        sink.push(
            document
                .error_at_key(&root.key("defaults").key("etcd").key("member"), "a member name cannot be a default")
                .hint("every member needs its own name: set `etcd.member` on the node, or leave it out to use the node name"),
        );
    }
}

/// A node's name and address are set, and its name is not taken; returns whether the name is new.
fn check_identity<'i>(
    document: &Document<Inventory>,
    sink: &mut DiagnosticSink,
    path: &YamlPath,
    entry: &'i NodeEntry,
    names: &mut HashSet<&'i str>,
) -> bool {
    let unique_name = names.insert(entry.name.as_str());
    if entry.name.is_empty() {
        sink.push(document.error_at(&path.key("name"), "a node name cannot be empty"));
    } else if !unique_name {
        sink.push(
            document
                .error_at(
                    &path.key("name"),
                    format!("duplicate node name `{}`", entry.name),
                )
                .hint("node names must be unique; they name the etcd members"),
        );
    }
    if entry.address.is_empty() {
        sink.push(document.error_at(&path.key("address"), "a node address cannot be empty"));
    }
    unique_name
}

/// How the node's member is managed, from the node or the defaults: exactly one form.
fn management(
    document: &Document<Inventory>,
    sink: &mut DiagnosticSink,
    path: &YamlPath,
    entry: &NodeEntry,
) -> Option<Management> {
    let base = &document.value.defaults.etcd;
    let (spec, spec_path) = match (&entry.etcd.management, &base.management) {
        (Some(spec), _) => (spec, path.key("etcd").key("management")),
        (None, Some(spec)) => (
            spec,
            YamlPath::root()
                .key("defaults")
                .key("etcd")
                .key("management"),
        ),
        (None, None) => {
            sink.push(
                document
                    .error_at(path, format!("node `{}` does not say how its etcd member is managed", entry.name))
                    .expected("`etcd.management` on the node or in `defaults`: `static_pod: {}` or `external: {start, stop}`")
                    .hint("kubeadm clusters use `defaults: {etcd: {management: {static_pod: {}}}}`"),
            );
            return None;
        }
    };
    match (&spec.static_pod, &spec.external) {
        (Some(pod), None) => Some(Management::StaticPod(pod.clone())),
        (None, Some(service)) => Some(Management::External(service.clone())),
        (both, _) => {
            let message = if both.is_some() {
                "`management` names both `static_pod` and `external`"
            } else {
                "`management` names neither `static_pod` nor `external`"
            };
            sink.push(
                document
                    .error_at(&spec_path, message)
                    .expected("exactly one of `static_pod: {}` or `external: {start, stop}`"),
            );
            None
        }
    }
}

/// The node's etcd settings: its own, else the defaults, else kubeadm's conventions.
fn resolve_etcd(entry: &NodeEntry, base: &EtcdSettings, management: Management) -> NodeEtcd {
    let etcd = &entry.etcd;
    let host = url_host(&entry.address);
    let pick = |own: &Option<String>, base: &Option<String>, fallback: String| {
        own.clone().or_else(|| base.clone()).unwrap_or(fallback)
    };
    NodeEtcd {
        management,
        member: pick(&etcd.member, &None, entry.name.clone()),
        data_dir: pick(&etcd.data_dir, &base.data_dir, "/var/lib/etcd".into()),
        client_url: pick(
            &etcd.client_url,
            &base.client_url,
            format!("https://{host}:2379"),
        ),
        peer_url: pick(
            &etcd.peer_url,
            &base.peer_url,
            format!("https://{host}:2380"),
        ),
        tls: etcd
            .tls
            .clone()
            .or_else(|| base.tls.clone())
            .unwrap_or_else(TlsFiles::kubeadm),
        etcdctl: etcd
            .etcdctl
            .clone()
            .or_else(|| base.etcdctl.clone())
            .unwrap_or_else(|| vec!["etcdctl".into()]),
        etcdutl: etcd
            .etcdutl
            .clone()
            .or_else(|| base.etcdutl.clone())
            .unwrap_or_else(|| vec!["etcdutl".into()]),
        backup_dir: pick(
            &etcd.backup_dir,
            &base.backup_dir,
            "/var/backups/etcd".into(),
        ),
        process_name: pick(&etcd.process_name, &base.process_name, "etcd".into()),
    }
}

/// `etcdctl` and `etcdutl` name a command.
fn check_commands(
    document: &Document<Inventory>,
    sink: &mut DiagnosticSink,
    path: &YamlPath,
    etcd: &NodeEtcd,
) {
    for (field, words) in [("etcdctl", &etcd.etcdctl), ("etcdutl", &etcd.etcdutl)] {
        if words.is_empty() || words[0].is_empty() {
            sink.push(
                document
                    .error_at(
                        &path.key("etcd").key(field),
                        format!("`{field}` names no command"),
                    )
                    .expected("a list of words such as `[/usr/local/bin/etcdutl]`"),
            );
        }
    }
}

/// The member names and URLs earlier nodes took: no two nodes may share one.
#[derive(Default)]
struct Taken {
    members: HashSet<String>,
    urls: HashSet<String>,
}

impl Taken {
    /// Takes the node's member name and URLs, reporting any already taken (a member name only
    /// when the node's own name was new, so one mistake is reported once) and any URL that is
    /// not http(s).
    fn check(
        &mut self,
        document: &Document<Inventory>,
        sink: &mut DiagnosticSink,
        path: &YamlPath,
        etcd: &NodeEtcd,
        unique_name: bool,
    ) {
        if !self.members.insert(etcd.member.clone()) && unique_name {
            sink.push(
                document
                    .error_at(
                        path,
                        format!("duplicate etcd member name `{}`", etcd.member),
                    )
                    .hint("every member of a cluster needs its own name"),
            );
        }
        for (field, url) in [
            ("client_url", &etcd.client_url),
            ("peer_url", &etcd.peer_url),
        ] {
            if !url.starts_with("https://") && !url.starts_with("http://") {
                sink.push(
                    document
                        .error_at(
                            &path.key("etcd").key(field),
                            format!("`{url}` is not an http(s) URL"),
                        )
                        .expected("a URL such as `https://10.0.0.11:2379`"),
                );
            } else if !self.urls.insert(url.clone()) {
                sink.push(document.error_at(path, format!("URL `{url}` is used by two nodes")));
            }
        }
    }
}

/// The node's SSH settings: each its own, else the default (unset ones fall to `~/.ssh/config`).
fn resolve_ssh(own: &SshSettings, defaults: &SshSettings) -> SshSettings {
    SshSettings {
        user: own.user.clone().or_else(|| defaults.user.clone()),
        port: own.port.or(defaults.port),
        identity_file: own
            .identity_file
            .clone()
            .or_else(|| defaults.identity_file.clone()),
        jump_host: own.jump_host.clone().or_else(|| defaults.jump_host.clone()),
        known_hosts: own
            .known_hosts
            .clone()
            .or_else(|| defaults.known_hosts.clone()),
        sudo: own.sudo.or(defaults.sudo),
    }
}

/// Whether two URLs are the same endpoint: compared without a trailing slash, ignoring case.
pub fn same_url(a: &str, b: &str) -> bool {
    a.trim_end_matches('/')
        .eq_ignore_ascii_case(b.trim_end_matches('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<Cluster, String> {
        Cluster::load(SourceFile::new("inv.yaml", text)).map_err(|e| e.to_string())
    }

    #[test]
    fn nodes_inherit_defaults_and_kubeadm_conventions() {
        let cluster = load(
            "name: c\ndefaults:\n  ssh: {user: admin}\n  etcd: {management: {static_pod: {}}}\nnodes:\n  - {name: a, address: 10.0.0.1}\n  - {name: b, address: 'fd00::2', ssh: {user: root}, etcd: {data_dir: /data}}\n",
        )
        .unwrap();
        let [a, b] = &cluster.nodes[..] else { panic!() };
        assert_eq!(a.ssh.user.as_deref(), Some("admin"));
        assert_eq!(b.ssh.user.as_deref(), Some("root"));
        assert_eq!(a.etcd.data_dir, "/var/lib/etcd");
        assert_eq!(b.etcd.data_dir, "/data");
        assert_eq!(b.etcd.peer_url, "https://[fd00::2]:2380");
        assert_eq!(
            a.etcd.management,
            Management::StaticPod(StaticPod {
                manifest: "/etc/kubernetes/manifests/etcd.yaml".into(),
                parked_dir: "/etc/kubernetes/etcdrill".into()
            })
        );
        assert_eq!(
            cluster.initial_cluster(),
            "a=https://10.0.0.1:2380,b=https://[fd00::2]:2380"
        );
    }

    #[test]
    fn a_node_without_management_is_located() {
        let err = load("name: c\nnodes:\n  - name: a\n    address: 10.0.0.1\n").unwrap_err();
        assert!(
            err.contains("node `a` does not say how its etcd member is managed"),
            "{err}"
        );
        assert!(err.contains("inv.yaml:3:5"), "{err}");
    }

    #[test]
    fn duplicate_names_are_refused() {
        let err = load(
            "name: c\ndefaults: {etcd: {management: {static_pod: {}}}}\nnodes:\n  - {name: a, address: 10.0.0.1}\n  - {name: a, address: 10.0.0.2}\n",
        )
        .unwrap_err();
        assert!(err.contains("duplicate node name `a`"), "{err}");
    }

    #[test]
    fn management_takes_exactly_one_form() {
        let err = load("name: c\ndefaults: {etcd: {management: {}}}\nnodes:\n  - {name: a, address: 10.0.0.1}\n").unwrap_err();
        assert!(err.contains("names neither"), "{err}");
        assert!(err.contains("inv.yaml:2:31"), "{err}");
    }
}
