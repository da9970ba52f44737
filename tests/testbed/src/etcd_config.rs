//! How etcd is configured on a node, in kubeadm's terms: the flags kubeadm sets, rendered either as a
//! static pod manifest (`/etc/kubernetes/manifests/etcd.yaml`) or, for external etcd, as an `ETCD_*`
//! environment file plus a service script.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use crate::config::parse_flag;
use crate::{BedConfig, BedError, EtcdVersion};

/// Node-side paths, as kubeadm lays them out.
pub(crate) mod paths {
    /// The static pod manifest.
    pub(crate) const MANIFEST: &str = "/etc/kubernetes/manifests/etcd.yaml";
    /// Where [`Bed::stop_member`](crate::Bed::stop_member) parks the manifest of a stopped static pod.
    pub(crate) const PARKED_MANIFEST: &str = "/etc/kubernetes/etcd.yaml";
    /// The data directory.
    pub(crate) const DATA_DIR: &str = "/var/lib/etcd";
    /// The host data dir of a bed whose `etcd-data` hostPath was moved.
    pub(crate) const MOVED_DATA_DIR: &str = "/var/lib/etcd-restore-1";
    /// The backup directory.
    pub(crate) const BACKUP_DIR: &str = "/var/backups/etcd";
    /// etcd's PKI directory.
    pub(crate) const PKI: &str = "/etc/kubernetes/pki/etcd";
    /// The external etcd environment file.
    pub(crate) const EXTERNAL_ENV: &str = "/etc/etcd/etcd.conf";
    /// The external etcd service script.
    pub(crate) const SERVICE: &str = "/usr/local/sbin/etcd-service";
    /// Binaries on the node.
    pub(crate) const ETCD: &str = "/usr/local/bin/etcd";
    pub(crate) const ETCDCTL: &str = "/usr/local/bin/etcdctl";
    pub(crate) const ETCDUTL: &str = "/usr/local/bin/etcdutl";
    /// etcd's log (both modes).
    pub(crate) const ETCD_LOG: &str = "/var/log/etcd.log";
}

/// One member as the cluster sees it.
#[derive(Debug, Clone)]
pub(crate) struct Member {
    pub(crate) name: String,
    pub(crate) address: Ipv4Addr,
}

/// The flags kubeadm gives etcd on `member`, with the bed's quota and extra flags applied, sorted by
/// name as in kubeadm's manifests.
pub(crate) fn flags(
    config: &BedConfig,
    members: &[Member],
    member: &Member,
    token: &str,
) -> Result<BTreeMap<String, String>, BedError> {
    let address = member.address;
    let pki = paths::PKI;
    let initial_cluster = members
        .iter()
        .map(|m| format!("{}=https://{}:2380", m.name, m.address))
        .collect::<Vec<_>>()
        .join(",");
    let mut flags: BTreeMap<String, String> = [
        ("name", member.name.clone()),
        ("data-dir", paths::DATA_DIR.to_owned()),
        (
            "listen-client-urls",
            format!("https://127.0.0.1:2379,https://{address}:2379"),
        ),
        ("advertise-client-urls", format!("https://{address}:2379")),
        ("listen-peer-urls", format!("https://{address}:2380")),
        (
            "initial-advertise-peer-urls",
            format!("https://{address}:2380"),
        ),
        ("initial-cluster", initial_cluster),
        ("initial-cluster-state", "new".to_owned()),
        ("initial-cluster-token", token.to_owned()),
        ("listen-metrics-urls", "http://127.0.0.1:2381".to_owned()),
        ("client-cert-auth", "true".to_owned()),
        ("peer-client-cert-auth", "true".to_owned()),
        ("cert-file", format!("{pki}/server.crt")),
        ("key-file", format!("{pki}/server.key")),
        ("trusted-ca-file", format!("{pki}/ca.crt")),
        ("peer-cert-file", format!("{pki}/peer.crt")),
        ("peer-key-file", format!("{pki}/peer.key")),
        ("peer-trusted-ca-file", format!("{pki}/ca.crt")),
        ("snapshot-count", "10000".to_owned()),
    ]
    .into_iter()
    .map(|(name, value)| (name.to_owned(), value))
    .collect();
    if let Some(bytes) = config.quota_backend_bytes {
        flags.insert("quota-backend-bytes".to_owned(), bytes.to_string());
    }
    for flag in &config.extra_flags {
        let (name, value) = parse_flag(flag)?;
        flags.insert(name, value);
    }
    Ok(flags)
}

/// A static pod manifest shaped like the one `kubeadm init` writes for etcd.
pub(crate) fn static_pod_manifest(
    flags: &BTreeMap<String, String>,
    version: EtcdVersion,
    host_data: &str,
) -> String {
    let image = match version {
        EtcdVersion::V3_5 => "registry.k8s.io/etcd:3.5.1-0",
        EtcdVersion::V3_4 => "registry.k8s.io/etcd:3.4.23-0",
    };
    let advertise = flags
        .get("advertise-client-urls")
        .map(String::as_str)
        .unwrap_or_default();
    let command: String = flags
        .iter()
        .map(|(name, value)| format!("    - --{name}={value}\n"))
        .collect();
    format!(
        r#"apiVersion: v1
kind: Pod
metadata:
  annotations:
    kubeadm.kubernetes.io/etcd.advertise-client-urls: {advertise}
  creationTimestamp: null
  labels:
    component: etcd
    tier: control-plane
  name: etcd
  namespace: kube-system
spec:
  containers:
  - command:
    - etcd
{command}    image: {image}
    imagePullPolicy: IfNotPresent
    livenessProbe:
      failureThreshold: 8
      httpGet:
        host: 127.0.0.1
        path: /health?exclude=NOSPACE&serializable=true
        port: 2381
        scheme: HTTP
      initialDelaySeconds: 10
      periodSeconds: 10
      timeoutSeconds: 15
    name: etcd
    resources:
      requests:
        cpu: 100m
        memory: 100Mi
    volumeMounts:
    - mountPath: {data}
      name: etcd-data
    - mountPath: {pki}
      name: etcd-certs
  hostNetwork: true
  priority: 2000001000
  priorityClassName: system-node-critical
  securityContext:
    seccompProfile:
      type: RuntimeDefault
  volumes:
  - hostPath:
      path: {pki}
      type: DirectoryOrCreate
    name: etcd-certs
  - hostPath:
      path: {host_data}
      type: DirectoryOrCreate
    name: etcd-data
status: {{}}
"#,
        data = paths::DATA_DIR,
        pki = paths::PKI,
    )
}

/// The external etcd environment file: one `ETCD_<FLAG>` variable per flag, as etcd reads them.
pub(crate) fn external_env(flags: &BTreeMap<String, String>) -> String {
    let mut env = String::from(
        "# etcd's configuration on this member, read by /usr/local/sbin/etcd-service.\n\
         # Each ETCD_<NAME> variable is etcd's --<name> flag.\n",
    );
    for (name, value) in flags {
        let variable = name.to_uppercase().replace('-', "_");
        env.push_str(&format!(
            "ETCD_{variable}={}\n",
            crate::exec::shell_quote(value)
        ));
    }
    env
}

/// The service script of external etcd: `start`, `stop` (waits until the process is gone) and `status`
/// (exit 0 when running, 3 when stopped).
pub(crate) const SERVICE_SCRIPT: &str = r#"#!/bin/sh
# etcd as a service of its own (external etcd), controlled like an init script.
set -eu
env_file=/etc/etcd/etcd.conf
log=/var/log/etcd.log
running() { pgrep -x etcd >/dev/null; }
case "${1:-}" in
start)
    if running; then echo "etcd is already running"; exit 0; fi
    set -a; . "$env_file"; set +a
    setsid /usr/local/bin/etcd >>"$log" 2>&1 </dev/null &
    echo "etcd started"
    ;;
stop)
    pkill -TERM -x etcd || true
    tries=0
    while running; do
        tries=$((tries + 1))
        if [ "$tries" -eq 300 ]; then echo "etcd ignored SIGTERM for 30s, killing it" >&2; pkill -KILL -x etcd || true; fi
        sleep 0.1
    done
    echo "etcd stopped"
    ;;
status)
    if running; then echo "etcd is running (pid $(pgrep -x etcd | tr '\n' ' '))"; else echo "etcd is stopped"; exit 3; fi
    ;;
*)
    echo "usage: $0 start|stop|status" >&2
    exit 2
    ;;
esac
"#;

#[cfg(test)]
mod tests {
    use super::*;

    fn cluster() -> (Vec<Member>, BedConfig) {
        let members = (1..=3)
            .map(|i| Member {
                name: format!("node{i}"),
                address: Ipv4Addr::new(10, 213, 1, 10 + i),
            })
            .collect();
        let config = BedConfig::new(3)
            .quota_backend_bytes(1 << 20)
            .extra_flag("--snapshot-count=5")
            .extra_flag("--experimental-initial-corrupt-check");
        (members, config)
    }

    #[test]
    fn flags_are_kubeadms_with_overrides() {
        let (members, config) = cluster();
        let flags = flags(&config, &members, &members[1], "tok").unwrap();
        assert_eq!(flags["name"], "node2");
        assert_eq!(
            flags["listen-client-urls"],
            "https://127.0.0.1:2379,https://10.213.1.12:2379"
        );
        assert_eq!(
            flags["initial-cluster"],
            "node1=https://10.213.1.11:2380,node2=https://10.213.1.12:2380,node3=https://10.213.1.13:2380"
        );
        assert_eq!(flags["quota-backend-bytes"], "1048576");
        assert_eq!(flags["snapshot-count"], "5");
        assert_eq!(flags["experimental-initial-corrupt-check"], "true");
        assert_eq!(flags["listen-metrics-urls"], "http://127.0.0.1:2381");
    }

    #[test]
    fn manifest_is_kubeadm_shaped_yaml() {
        let (members, config) = cluster();
        let flags = flags(&config, &members, &members[0], "tok").unwrap();
        let manifest = static_pod_manifest(&flags, EtcdVersion::V3_5, paths::DATA_DIR);
        let pod: serde_yaml::Value = serde_yaml::from_str(&manifest).unwrap();
        assert_eq!(pod["kind"], "Pod");
        assert_eq!(pod["metadata"]["name"], "etcd");
        assert_eq!(pod["metadata"]["namespace"], "kube-system");
        assert_eq!(pod["spec"]["hostNetwork"], true);
        let command: Vec<String> =
            serde_yaml::from_value(pod["spec"]["containers"][0]["command"].clone()).unwrap();
        assert_eq!(command[0], "etcd");
        assert_eq!(command.len(), flags.len() + 1);
        assert!(command.contains(&"--data-dir=/var/lib/etcd".to_owned()));
        assert!(command.contains(&"--client-cert-auth=true".to_owned()));
        let volumes = pod["spec"]["volumes"].as_sequence().unwrap();
        let data = volumes.iter().find(|v| v["name"] == "etcd-data").unwrap();
        assert_eq!(data["hostPath"]["path"], "/var/lib/etcd");
    }

    #[test]
    fn external_env_names_every_flag() {
        let (members, config) = cluster();
        let flags = flags(&config, &members, &members[2], "tok").unwrap();
        let env = external_env(&flags);
        assert!(env.contains("ETCD_NAME=node3\n"));
        assert!(env.contains("ETCD_INITIAL_CLUSTER_STATE=new\n"));
        assert!(
            env.contains(
                "ETCD_LISTEN_CLIENT_URLS=https://127.0.0.1:2379,https://10.213.1.13:2379\n"
            )
        );
        assert_eq!(
            env.lines().filter(|l| l.starts_with("ETCD_")).count(),
            flags.len()
        );
    }
}
