//! How etcd is configured on a node, read from what the node itself says: the static pod manifest
//! (parsed as the Kubernetes Pod it is), the external service's environment file, or the running
//! process's command line. Pure functions over text, so they are tested as such.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The etcd settings a node's own configuration gives.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EtcdConfig {
    /// `--data-dir` as etcd sees it (inside the pod for a static pod).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<String>,
    /// The directory on the host that holds that data dir: for a static pod, the `hostPath` of
    /// the volume mounted at (or above) `--data-dir`; otherwise `--data-dir` itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_data_dir: Option<String>,
    /// `--name`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `--initial-advertise-peer-urls` as given (comma-separated).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer_url: Option<String>,
    /// `--advertise-client-urls` as given (comma-separated).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_url: Option<String>,
    /// `--initial-cluster-token`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initial_cluster_token: Option<String>,
    /// `--experimental-initial-corrupt-check` (or `--initial-corrupt-check`), when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initial_corrupt_check: Option<String>,
    /// `--quota-backend-bytes`, when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quota_backend_bytes: Option<String>,
    /// The container image's tag (static pods), e.g. `3.5.1-0`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_tag: Option<String>,
}

/// Why a node's configuration could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// The manifest is not a pod manifest.
    #[error("the manifest is not a pod manifest: {0}")]
    Manifest(String),
    /// The pod runs no etcd.
    #[error("the manifest's pod has no container running etcd")]
    NoEtcd,
}

#[derive(Debug, Deserialize)]
struct Pod {
    spec: PodSpec,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PodSpec {
    #[serde(default)]
    containers: Vec<Container>,
    #[serde(default)]
    volumes: Vec<Volume>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Container {
    #[serde(default)]
    command: Vec<String>,
    #[serde(default)]
    args: Vec<String>,
    #[serde(default)]
    image: Option<String>,
    #[serde(default)]
    volume_mounts: Vec<VolumeMount>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct VolumeMount {
    name: String,
    mount_path: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Volume {
    name: String,
    #[serde(default)]
    host_path: Option<HostPath>,
}

#[derive(Debug, Deserialize)]
struct HostPath {
    path: String,
}

/// Reads a kubeadm-style static pod manifest.
pub fn from_manifest(text: &str) -> Result<EtcdConfig, ConfigError> {
    let pod: Pod = serde_yaml::from_str(text).map_err(|e| ConfigError::Manifest(e.to_string()))?;
    let container = pod
        .spec
        .containers
        .iter()
        .find(|c| {
            c.command
                .first()
                .or(c.args.first())
                .is_some_and(|program| program.rsplit('/').next() == Some("etcd"))
        })
        .ok_or(ConfigError::NoEtcd)?;
    let argv: Vec<&str> = container
        .command
        .iter()
        .chain(&container.args)
        .map(String::as_str)
        .collect();
    let flags = flags(&argv[1..]);
    let mut config = from_flags(&flags);
    config.image_tag = container
        .image
        .as_deref()
        .and_then(|image| image.rsplit_once(':'))
        .filter(|(_, tag)| !tag.contains('/'))
        .map(|(_, tag)| tag.to_owned());
    // The host directory behind --data-dir: the hostPath of the deepest mount holding it.
    config.host_data_dir = config.data_dir.as_deref().map(|data_dir| {
        container
            .volume_mounts
            .iter()
            .filter_map(|mount| {
                let rest = below(data_dir, &mount.mount_path)?;
                let volume = pod.spec.volumes.iter().find(|v| v.name == mount.name)?;
                let host = &volume.host_path.as_ref()?.path;
                Some((mount.mount_path.len(), join(host, rest)))
            })
            .max_by_key(|(depth, _)| *depth)
            .map_or_else(|| data_dir.to_owned(), |(_, host)| host)
    });
    Ok(config)
}

/// Reads an environment file of `ETCD_*` variables (`KEY=value`, optionally quoted or exported).
pub fn from_env_file(text: &str) -> EtcdConfig {
    let mut config = from_flags(&etcd_env_flags(env_assignments(text)));
    config.host_data_dir = config.data_dir.clone();
    config
}

/// The `KEY=value` lines of an environment file, in order: `export ` and one pair of quotes
/// around the value are removed; other lines are passed over.
pub(crate) fn env_assignments(text: &str) -> Vec<(String, String)> {
    let mut assignments = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        let line = line.strip_prefix("export ").unwrap_or(line);
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let value = value.trim();
        let value = value
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .or_else(|| value.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
            .unwrap_or(value);
        assignments.push((key.trim().to_owned(), value.to_owned()));
    }
    assignments
}

/// The flags etcd takes from `ETCD_*` variables: `ETCD_DATA_DIR` is `data-dir`.
pub(crate) fn etcd_env_flags<K: AsRef<str>, V: AsRef<str>>(
    env: impl IntoIterator<Item = (K, V)>,
) -> BTreeMap<String, String> {
    env.into_iter()
        .filter_map(|(key, value)| {
            key.as_ref().strip_prefix("ETCD_").map(|name| {
                (
                    name.to_ascii_lowercase().replace('_', "-"),
                    value.as_ref().to_owned(),
                )
            })
        })
        .collect()
}

/// Reads a process's command line (NUL-separated, the program first).
pub fn from_command_line(cmdline: &[u8]) -> EtcdConfig {
    let words: Vec<String> = cmdline
        .split(|b| *b == 0)
        .filter(|w| !w.is_empty())
        .map(|w| String::from_utf8_lossy(w).into_owned())
        .collect();
    let words: Vec<&str> = words.iter().map(String::as_str).collect();
    let mut config = from_flags(&flags(words.get(1..).unwrap_or_default()));
    config.host_data_dir = config.data_dir.clone();
    config
}

/// `--flag=value`, `--flag value` and `-flag value` into a map; a bare `--flag` is `true`.
pub(crate) fn flags(args: &[impl AsRef<str>]) -> BTreeMap<String, String> {
    let args: Vec<&str> = args.iter().map(AsRef::as_ref).collect();
    let mut map = BTreeMap::new();
    let mut i = 0;
    while i < args.len() {
        let Some(body) = args[i]
            .strip_prefix("--")
            .or_else(|| args[i].strip_prefix('-'))
        else {
            i += 1;
            continue;
        };
        match body.split_once('=') {
            Some((name, value)) => {
                map.insert(name.to_owned(), value.to_owned());
            }
            None => match args.get(i + 1).filter(|next| !next.starts_with('-')) {
                Some(value) => {
                    map.insert(body.to_owned(), (*value).to_owned());
                    i += 1;
                }
                None => {
                    map.insert(body.to_owned(), "true".to_owned());
                }
            },
        }
        i += 1;
    }
    map
}

/// etcd's settings from its flags (names without dashes).
pub(crate) fn from_flags(flags: &BTreeMap<String, String>) -> EtcdConfig {
    let get = |name: &str| flags.get(name).filter(|v| !v.is_empty()).cloned();
    EtcdConfig {
        data_dir: get("data-dir"),
        host_data_dir: None,
        name: get("name"),
        peer_url: get("initial-advertise-peer-urls"),
        client_url: get("advertise-client-urls"),
        initial_cluster_token: get("initial-cluster-token"),
        initial_corrupt_check: get("experimental-initial-corrupt-check")
            .or_else(|| get("initial-corrupt-check")),
        quota_backend_bytes: get("quota-backend-bytes"),
        image_tag: None,
    }
}

/// What is left of `path` below `dir`, if `path` is `dir` or inside it.
fn below<'p>(path: &'p str, dir: &str) -> Option<&'p str> {
    let dir = dir.trim_end_matches('/');
    let rest = path.strip_prefix(dir)?;
    (rest.is_empty() || rest.starts_with('/')).then_some(rest)
}

fn join(dir: &str, rest: &str) -> String {
    if rest.is_empty() {
        dir.trim_end_matches('/').to_owned()
    } else {
        format!("{}{rest}", dir.trim_end_matches('/'))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KUBEADM: &str = r#"apiVersion: v1
kind: Pod
metadata: {name: etcd, namespace: kube-system}
spec:
  containers:
  - command:
    - etcd
    - --advertise-client-urls=https://10.0.0.11:2379
    - --data-dir=/var/lib/etcd
    - --experimental-initial-corrupt-check=true
    - --initial-advertise-peer-urls=https://10.0.0.11:2380
    - --initial-cluster=cp1=https://10.0.0.11:2380
    - --name=cp1
    image: registry.k8s.io/etcd:3.5.1-0
    name: etcd
    volumeMounts:
    - {mountPath: /var/lib/etcd, name: etcd-data}
    - {mountPath: /etc/kubernetes/pki/etcd, name: etcd-certs}
  volumes:
  - hostPath: {path: /etc/kubernetes/pki/etcd, type: DirectoryOrCreate}
    name: etcd-certs
  - hostPath: {path: HOST, type: DirectoryOrCreate}
    name: etcd-data
"#;

    #[test]
    fn a_kubeadm_manifest_gives_its_flags_and_the_host_data_dir() {
        let config = from_manifest(&KUBEADM.replace("HOST", "/var/lib/etcd")).unwrap();
        assert_eq!(
            config,
            EtcdConfig {
                data_dir: Some("/var/lib/etcd".into()),
                host_data_dir: Some("/var/lib/etcd".into()),
                name: Some("cp1".into()),
                peer_url: Some("https://10.0.0.11:2380".into()),
                client_url: Some("https://10.0.0.11:2379".into()),
                initial_cluster_token: None,
                initial_corrupt_check: Some("true".into()),
                quota_backend_bytes: None,
                image_tag: Some("3.5.1-0".into()),
            }
        );
    }

    #[test]
    fn a_moved_host_path_is_the_host_data_dir() {
        // The Kubernetes documentation's restore repoints etcd-data and keeps --data-dir.
        let moved = from_manifest(&KUBEADM.replace("HOST", "/var/lib/etcd-restore-1")).unwrap();
        assert_eq!(moved.data_dir.as_deref(), Some("/var/lib/etcd"));
        assert_eq!(
            moved.host_data_dir.as_deref(),
            Some("/var/lib/etcd-restore-1")
        );
        // A data dir below the mount path keeps its rest.
        let deeper = KUBEADM
            .replace("HOST", "/mnt/disk")
            .replace("--data-dir=/var/lib/etcd", "--data-dir=/var/lib/etcd/data");
        assert_eq!(
            from_manifest(&deeper).unwrap().host_data_dir.as_deref(),
            Some("/mnt/disk/data")
        );
    }

    #[test]
    fn manifests_that_are_not_etcd_pods_are_refused() {
        assert!(matches!(
            from_manifest("spec: [1, 2]"),
            Err(ConfigError::Manifest(_))
        ));
        assert_eq!(
            from_manifest("spec: {containers: [{command: [kube-apiserver]}]}"),
            Err(ConfigError::NoEtcd)
        );
    }

    #[test]
    fn env_files_and_command_lines_give_the_same_settings() {
        let env = from_env_file(
            "# etcd\nETCD_NAME=etcd1\nexport ETCD_DATA_DIR=\"/srv/etcd\"\nETCD_INITIAL_ADVERTISE_PEER_URLS='https://a:2380,https://b:2380'\nETCD_QUOTA_BACKEND_BYTES=8589934592\nOTHER=x\n",
        );
        assert_eq!(env.name.as_deref(), Some("etcd1"));
        assert_eq!(env.data_dir.as_deref(), Some("/srv/etcd"));
        assert_eq!(env.host_data_dir.as_deref(), Some("/srv/etcd"));
        assert_eq!(
            env.peer_url.as_deref(),
            Some("https://a:2380,https://b:2380")
        );
        assert_eq!(env.quota_backend_bytes.as_deref(), Some("8589934592"));
        let process = from_command_line(
            b"/usr/bin/etcd\0--name\0etcd1\0--data-dir=/srv/etcd\0--initial-advertise-peer-urls\0https://a:2380,https://b:2380\0--enable-v2\0",
        );
        assert_eq!(process.name, env.name);
        assert_eq!(process.data_dir, env.data_dir);
        assert_eq!(process.peer_url, env.peer_url);
    }
}
