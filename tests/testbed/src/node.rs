//! One control-plane node of a bed: its facts (name, address, URLs, kubeadm paths) and running things
//! inside its namespaces.
//!
//! A node is a network namespace (address `10.213.<slot>.<10+n>` on the bed's bridge), a mount
//! namespace in which `/etc/kubernetes`, `/etc/etcd`, `/var`, `/tmp`, `/root`, `/usr/local/bin` and
//! `/usr/local/sbin` are the node's own directories, a UTS namespace (its hostname is its name) and a
//! PID namespace (so `pgrep etcd` sees this node's etcd only). It runs sshd and, in static pod mode, the
//! kubelet stand-in.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::etcd_config::paths;
use crate::exec::{ExecOutput, NODE_PATH, run};
use crate::{BedError, Management};

/// The node's private directories: `(path on the node, directory under the node's host dir "fs/")`.
pub(crate) const PRIVATE_DIRS: [(&str, &str); 7] = [
    ("/etc/kubernetes", "etc-kubernetes"),
    ("/etc/etcd", "etc-etcd"),
    ("/var", "var"),
    ("/tmp", "tmp"),
    ("/root", "root"),
    ("/usr/local/bin", "usr-local-bin"),
    ("/usr/local/sbin", "usr-local-sbin"),
];

/// One node of a [`Bed`](crate::Bed).
#[derive(Debug)]
pub struct Node {
    pub(crate) index: usize,
    pub(crate) name: String,
    pub(crate) address: Ipv4Addr,
    pub(crate) netns: String,
    pub(crate) host_dir: PathBuf,
    pub(crate) management: Management,
    pub(crate) has_etcdutl: bool,
    /// Bind mounts made inside the node after its private directories: `(path on the node, host
    /// directory)`, e.g. a data dir that is a mount point, or a backup dir shared by the nodes.
    pub(crate) mounts: Vec<(&'static str, PathBuf)>,
    /// Small disks (tmpfs) mounted inside the node after the bind mounts: `(path on the node, MiB)`.
    pub(crate) disks: Vec<(&'static str, u64)>,
    /// Host PID of the node's PID 1 (`testbed-init`), the target of `nsenter`.
    pub(crate) init_pid: u32,
}

impl Node {
    /// 1-based position of the node in the bed.
    pub fn index(&self) -> usize {
        self.index
    }

    /// The node's name (`node1`, ...): its hostname, its etcd member name, a DNS SAN of its certificates.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The node's address on the bed's network.
    pub fn address(&self) -> Ipv4Addr {
        self.address
    }

    /// The member's client URL, `https://<address>:2379` (also listening on `https://127.0.0.1:2379`
    /// inside the node).
    pub fn client_url(&self) -> String {
        format!("https://{}:2379", self.address)
    }

    /// The member's peer URL, `https://<address>:2380`.
    pub fn peer_url(&self) -> String {
        format!("https://{}:2380", self.address)
    }

    /// The member's metrics URL, `http://127.0.0.1:2381`, reachable from inside the node only.
    pub fn metrics_url(&self) -> &'static str {
        "http://127.0.0.1:2381"
    }

    /// etcd's data directory on the node, `/var/lib/etcd`.
    pub fn data_dir(&self) -> &'static Path {
        Path::new(paths::DATA_DIR)
    }

    /// The static pod manifest on the node, `/etc/kubernetes/manifests/etcd.yaml` (static pod mode).
    pub fn manifest_path(&self) -> &'static Path {
        Path::new(paths::MANIFEST)
    }

    /// The node's backup directory, `/var/backups/etcd`.
    pub fn backup_dir(&self) -> &'static Path {
        Path::new(paths::BACKUP_DIR)
    }

    /// etcd's PKI directory on the node, `/etc/kubernetes/pki/etcd` (`ca.crt`, `server.crt`, ...).
    pub fn pki_dir(&self) -> &'static Path {
        Path::new(paths::PKI)
    }

    /// The external etcd environment file, `/etc/etcd/etcd.conf` (external mode).
    pub fn external_env_path(&self) -> &'static Path {
        Path::new(paths::EXTERNAL_ENV)
    }

    /// The etcd server binary on the node, `/usr/local/bin/etcd`.
    pub fn etcd_path(&self) -> &'static Path {
        Path::new(paths::ETCD)
    }

    /// `etcdctl` on the node, `/usr/local/bin/etcdctl`.
    pub fn etcdctl_path(&self) -> &'static Path {
        Path::new(paths::ETCDCTL)
    }

    /// `etcdutl` on the node, `/usr/local/bin/etcdutl`, for etcd 3.5 (3.4 has none).
    pub fn etcdutl_path(&self) -> Option<&'static Path> {
        self.has_etcdutl.then_some(Path::new(paths::ETCDUTL))
    }

    /// The command that starts etcd on the node, for external etcd (`None` for static pods, which
    /// start when their manifest is in `/etc/kubernetes/manifests`).
    pub fn start_command(&self) -> Option<String> {
        self.service_command("start")
    }

    /// The command that stops etcd on the node and returns once the process is gone, for external etcd.
    pub fn stop_command(&self) -> Option<String> {
        self.service_command("stop")
    }

    /// The command that tells whether etcd runs on the node (exit 0) or not (exit 3), for external etcd.
    pub fn status_command(&self) -> Option<String> {
        self.service_command("status")
    }

    fn service_command(&self, verb: &str) -> Option<String> {
        (self.management == Management::External).then(|| format!("{} {verb}", paths::SERVICE))
    }

    /// Name of the node's network namespace (`ip netns exec <name> ...` works from the host).
    pub fn netns(&self) -> &str {
        &self.netns
    }

    /// Host PID of the node's PID 1, for `nsenter --target`.
    pub fn init_pid(&self) -> u32 {
        self.init_pid
    }

    /// The host path of `node_path` when it lies in one of the node's private directories (for
    /// inspecting a node's files from a test), e.g. `/var/lib/etcd/member`.
    pub fn host_path(&self, node_path: impl AsRef<Path>) -> Option<PathBuf> {
        let node_path = node_path.as_ref();
        let mounted = self.mounts.iter().find_map(|(at, source)| {
            let rest = node_path.strip_prefix(at).ok()?;
            Some(source.join(rest))
        });
        mounted.or_else(|| {
            PRIVATE_DIRS.iter().find_map(|(private, dir)| {
                let rest = node_path.strip_prefix(private).ok()?;
                Some(self.host_dir.join("fs").join(dir).join(rest))
            })
        })
    }

    /// Host path of etcd's log on the node (`/var/log/etcd.log`).
    pub fn etcd_log(&self) -> PathBuf {
        self.host_dir.join("fs/var/log/etcd.log")
    }

    /// Host path of the kubelet stand-in's log (`/var/log/kubelet.log`).
    pub fn kubelet_log(&self) -> PathBuf {
        self.host_dir.join("fs/var/log/kubelet.log")
    }

    /// Host path of sshd's log (`/var/log/sshd.log`).
    pub fn sshd_log(&self) -> PathBuf {
        self.host_dir.join("fs/var/log/sshd.log")
    }

    /// Runs `script` with `/bin/sh -c` inside the node's namespaces, as root, with a clean environment.
    /// `Err` only when it could not be run; check [`ExecOutput::success`].
    pub fn exec(&self, script: &str) -> Result<ExecOutput, BedError> {
        let mut command = self.nsenter();
        command.args(["/bin/sh", "-c", script]);
        run(command, None)
    }

    /// Like [`Node::exec`], and returns standard output, failing when the script fails.
    pub fn exec_ok(&self, script: &str) -> Result<String, BedError> {
        self.exec(script)?.into_stdout()
    }

    /// Runs the node's `etcdctl` against its local member (`https://127.0.0.1:2379`) with the node's
    /// CA and healthcheck client certificate; `args` follow the connection flags, so they can override
    /// them (e.g. `--endpoints=...`).
    pub fn etcdctl(&self, args: &[&str]) -> Result<ExecOutput, BedError> {
        let pki = paths::PKI;
        let mut command = self.nsenter();
        command
            .env("ETCDCTL_API", "3")
            .arg(paths::ETCDCTL)
            .args([
                "--endpoints=https://127.0.0.1:2379".to_owned(),
                format!("--cacert={pki}/ca.crt"),
                format!("--cert={pki}/healthcheck-client.crt"),
                format!("--key={pki}/healthcheck-client.key"),
                "--dial-timeout=3s".to_owned(),
            ])
            .args(args);
        run(command, None)
    }

    /// PIDs (in the node's PID namespace) of the processes named `etcd` on the node.
    pub fn etcd_pids(&self) -> Result<Vec<u32>, BedError> {
        let output = self.exec("pgrep -x etcd")?;
        match output.status.code() {
            Some(0) => Ok(output
                .stdout
                .split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect()),
            Some(1) => Ok(Vec::new()),
            _ => output.into_stdout().map(|_| Vec::new()),
        }
    }

    /// `nsenter` into all of the node's namespaces, with a clean environment.
    fn nsenter(&self) -> Command {
        let mut command = Command::new("nsenter");
        command
            .arg(format!("--target={}", self.init_pid))
            .args(["--net", "--mount", "--uts", "--pid", "--"])
            .env_clear()
            .env("PATH", NODE_PATH)
            .env("HOME", "/root")
            .current_dir("/");
        command
    }
}
