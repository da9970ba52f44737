//! Setting a node up on the host: its private directories, configuration and binary mount points,
//! and the process that enters its namespaces, mounts them and ends as the node's PID 1.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::binaries::{EtcdBinaries, HelperBinaries};
use crate::etcd_config::{self, paths};
use crate::exec::{NODE_PATH, shell_quote};
use crate::node::PRIVATE_DIRS;
use crate::slot::{make_dir, write_file};
use crate::{BedConfig, BedError, Management, Node, wait_until};

/// Creates a node's host directories, configuration and binary mount points under its host dir.
pub(crate) fn lay_out(
    node: &Node,
    config: &BedConfig,
    flags: &BTreeMap<String, String>,
    binaries: &EtcdBinaries,
    helpers: &HelperBinaries,
) -> Result<(), BedError> {
    let host = &node.host_dir;
    let fs_dir = host.join("fs");
    for (_, dir) in PRIVATE_DIRS {
        let mode = match dir {
            "tmp" => 0o1777,
            "root" => 0o700,
            _ => 0o755,
        };
        make_dir(&fs_dir.join(dir), mode)?;
    }
    for (dir, mode) in [
        ("etc-kubernetes/manifests", 0o755),
        ("etc-kubernetes/pki/etcd", 0o755),
        ("var/lib/etcd", 0o700),
        ("var/backups/etcd", 0o700),
        ("var/log", 0o755),
        ("var/tmp", 0o1777),
        ("ssh", 0o700),
    ] {
        let path = if dir == "ssh" {
            host.join(dir)
        } else {
            fs_dir.join(dir)
        };
        make_dir(&path, mode)?;
    }
    for (link, target) in [("var/run", "/run"), ("var/lock", "/run/lock")] {
        let link = fs_dir.join(link);
        std::os::unix::fs::symlink(target, &link).map_err(BedError::io("create", &link))?;
    }
    // Each binary is bind-mounted inside the node onto an empty file in `bin/` (the originals may live
    // under a directory the node hides, such as /tmp or /root), and /usr/local/bin links to them.
    // The node's own mount sources (a data dir disk); shared ones are made by the bed.
    for (_, source) in node.mounts.iter().filter(|(_, s)| s.starts_with(host)) {
        make_dir(source, 0o700)?;
    }
    make_dir(&host.join("bin"), 0o755)?;
    for (name, _) in node_binaries(binaries, helpers) {
        write_file(&host.join("bin").join(name), b"", 0o755)?;
        if !name.starts_with("testbed-") {
            let link = fs_dir.join("usr-local-bin").join(name);
            std::os::unix::fs::symlink(host.join("bin").join(name), &link)
                .map_err(BedError::io("create", &link))?;
        }
    }
    match config.management {
        Management::StaticPod => {
            let host_data = if config.moved_host_path {
                make_dir(&fs_dir.join("var/lib/etcd-restore-1"), 0o700)?;
                paths::MOVED_DATA_DIR
            } else {
                paths::DATA_DIR
            };
            let manifest = etcd_config::static_pod_manifest(flags, config.version, host_data);
            write_file(
                &fs_dir.join("etc-kubernetes/manifests/etcd.yaml"),
                manifest.as_bytes(),
                0o600,
            )?;
        }
        Management::External => {
            let env = etcd_config::external_env(flags);
            write_file(&fs_dir.join("etc-etcd/etcd.conf"), env.as_bytes(), 0o644)?;
            let service = fs_dir.join("usr-local-sbin/etcd-service");
            write_file(&service, etcd_config::SERVICE_SCRIPT.as_bytes(), 0o755)?;
        }
    }
    Ok(())
}

/// `(name in bin/, host path)` of every program a node needs.
fn node_binaries<'a>(
    binaries: &'a EtcdBinaries,
    helpers: &'a HelperBinaries,
) -> Vec<(&'static str, &'a Path)> {
    let mut list = vec![
        ("etcd", binaries.etcd.as_path()),
        ("etcdctl", binaries.etcdctl.as_path()),
        ("testbed-kubelet", helpers.kubelet.as_path()),
        ("testbed-init", helpers.init.as_path()),
    ];
    if let Some(etcdutl) = &binaries.etcdutl {
        list.push(("etcdutl", etcdutl.as_path()));
    }
    list
}

/// Starts a node: `ip netns exec` into its network namespace, `unshare` its mount, UTS and PID
/// namespaces, run its setup script there and end as `testbed-init`. Returns the `unshare` child and the
/// host PID of the node's PID 1.
pub(crate) fn spawn_node(
    node: &Node,
    sshd_config: &Path,
    binaries: &EtcdBinaries,
    helpers: &HelperBinaries,
) -> Result<(Child, u32), BedError> {
    let host = &node.host_dir;
    let q = |path: &Path| shell_quote(&path.to_string_lossy());
    let mut script = format!("set -eu\nhostname {}\n", node.name);
    // Drop this mount namespace's copies of other nodes' network namespace mounts, which would keep
    // those namespaces alive after their beds delete them.
    script.push_str("umount -l /run/netns 2>/dev/null || true\n");
    for (name, source) in node_binaries(binaries, helpers) {
        script.push_str(&format!(
            "mount --bind {} {}\n",
            q(source),
            q(&host.join("bin").join(name))
        ));
    }
    // The private directories live under /run, which Debian mounts noexec; a node's /tmp or
    // /usr/local/sbin must run programs, so each bind mount is made executable.
    for (private, dir) in PRIVATE_DIRS {
        script.push_str(&format!(
            "mount --bind {} {private}\nmount -o remount,bind,exec {private}\n",
            q(&host.join("fs").join(dir))
        ));
    }
    for (at, source) in &node.mounts {
        script.push_str(&format!("mount --bind {} {at}\n", q(source)));
    }
    for (at, mib) in &node.disks {
        script.push_str(&format!(
            "mkdir -p {at}\nmount -t tmpfs -o size={mib}m,mode=700 etcd-disk {at}\n"
        ));
    }
    script.push_str(&format!(
        "/usr/sbin/sshd -f {} -E /var/log/sshd.log\n",
        q(sshd_config)
    ));
    if node.management == Management::StaticPod {
        script.push_str(&format!(
            "{} /etc/kubernetes/manifests {} {} >>/var/log/kubelet.log 2>&1 </dev/null &\n",
            q(&host.join("bin/testbed-kubelet")),
            paths::ETCD,
            paths::ETCD_LOG
        ));
    }
    script.push_str(&format!(
        "touch {}\nexec {}\n",
        q(&host.join("ready")),
        q(&host.join("bin/testbed-init"))
    ));
    write_file(&host.join("init.sh"), script.as_bytes(), 0o644)?;

    let log_path = host.join("init.log");
    let log = fs::File::create(&log_path).map_err(BedError::io("create", &log_path))?;
    let log_err = log.try_clone().map_err(BedError::io("open", &log_path))?;
    let mut command = Command::new("ip");
    command
        .args([
            "netns",
            "exec",
            &node.netns,
            "unshare",
            "--mount",
            "--uts",
            "--pid",
            "--fork",
        ])
        .args([
            "--kill-child",
            "--mount-proc",
            "--propagation",
            "private",
            "/bin/sh",
        ])
        .arg(host.join("init.sh"))
        .env_clear()
        .env("PATH", NODE_PATH)
        .env("HOME", "/root")
        .current_dir("/")
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log_err);
    let describe = crate::exec::describe(&command);
    let mut child = command.spawn().map_err(|source| BedError::Spawn {
        command: describe,
        source,
    })?;
    let children = PathBuf::from(format!("/proc/{0}/task/{0}/children", child.id()));
    let mut init_pid = None;
    let found = wait_until(
        &format!("{}'s PID 1 to start", node.name),
        Duration::from_secs(10),
        || {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!(
                    "unshare exited ({status}): {}",
                    tail(&log_path, 10)
                ));
            }
            init_pid = fs::read_to_string(&children)
                .ok()
                .and_then(|pids| pids.split_whitespace().next().and_then(|p| p.parse().ok()));
            init_pid.map(drop).ok_or_else(|| "no child yet".to_owned())
        },
    );
    match (found, init_pid) {
        (Ok(()), Some(pid)) => Ok((child, pid)),
        (result, _) => {
            let _ = child.kill();
            let _ = child.wait();
            Err(result
                .err()
                .unwrap_or_else(|| BedError::Config("node PID 1 not found".to_owned())))
        }
    }
}

/// Creates an empty mount-point directory on the host if it is missing (never changes an existing one).
pub(crate) fn make_host_dir(dir: &Path) -> Result<(), BedError> {
    if dir.is_dir() {
        return Ok(());
    }
    make_dir(dir, 0o755)
}

/// The last `lines` lines of a text file (empty if it cannot be read).
pub(crate) fn tail(path: &Path, lines: usize) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
