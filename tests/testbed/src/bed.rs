//! A running bed: starting it, talking to its etcd cluster from the controller side, stopping and
//! starting members, and tearing it all down.

use std::fs;
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::Deserialize;

use crate::binaries::{EtcdBinaries, HelperBinaries};
use crate::etcd_config::{self, Member, paths};
use crate::exec::{ExecOutput, NODE_PATH, run};
use crate::node_setup::{lay_out, make_host_dir, spawn_node, tail};
use crate::pki::Pki;
use crate::resources::{Resources, parent_of, process_start_time};
use crate::slot::{Slot, make_dir};
use crate::{
    BedConfig, BedError, Management, Node, SshFacts, TlsFacts, availability, network, ssh,
};

/// Prefix of the keys [`Bed::seed`] writes.
pub const SEED_PREFIX: &str = "/testbed/seed/";
/// Prefix of the keys [`Bed::put_canary`] writes.
pub const CANARY_PREFIX: &str = "/testbed/canary/";

/// A canary key written by [`Bed::put_canary`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Canary {
    /// The key, under [`CANARY_PREFIX`].
    pub key: String,
    /// The unique value written.
    pub value: String,
}

/// One entry of `etcdctl member list`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct MemberInfo {
    /// Member ID.
    #[serde(rename = "ID")]
    pub id: u64,
    /// Member name (empty until a newly added member has started).
    #[serde(default)]
    pub name: String,
    /// Peer URLs.
    #[serde(rename = "peerURLs", default)]
    pub peer_urls: Vec<String>,
    /// Client URLs.
    #[serde(rename = "clientURLs", default)]
    pub client_urls: Vec<String>,
    /// Whether the member is a learner.
    #[serde(rename = "isLearner", default)]
    pub is_learner: bool,
}

/// A running test bed: N control-plane nodes with a healthy etcd cluster over mutual TLS, reachable
/// over SSH. Dropping it tears everything down (also when the test panics).
#[derive(Debug)]
pub struct Bed {
    config: BedConfig,
    nodes: Vec<Node>,
    ssh: SshFacts,
    tls: TlsFacts,
    binaries: EtcdBinaries,
    guard: Guard,
}

/// Owns the slot and the node processes; tears down on drop.
#[derive(Debug)]
struct Guard {
    slot: Option<Slot>,
    number: u16,
    dir: PathBuf,
    /// Each node's `unshare` process and the host PID of its child, the node's PID 1.
    children: Vec<(Child, u32)>,
}

impl Guard {
    fn teardown(&mut self) -> Result<(), BedError> {
        let Some(slot) = self.slot.take() else {
            return Ok(());
        };
        // Killing a node's PID 1 makes the kernel kill every process of its PID namespace; `unshare` then
        // reaps it and exits, and is reaped here, so no zombie is left to the host's init.
        for (child, init_pid) in &mut self.children {
            if parent_of(*init_pid) == Some(child.id()) {
                if let Ok(pid) = libc::pid_t::try_from(*init_pid) {
                    // SAFETY: kill(2) has no memory-safety preconditions; the PID is our grandchild.
                    unsafe { libc::kill(pid, libc::SIGKILL) };
                }
            } else {
                // PID 1 is gone already; killing `unshare` would kill it anyway (--kill-child).
                let _ = child.kill();
            }
            let _ = child.wait();
        }
        self.children.clear();
        network::remove_slot(self.number)?;
        slot.release()
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Err(error) = self.teardown() {
            eprintln!(
                "etcdrill-testbed: teardown of bed b{} failed: {error}",
                self.number
            );
        }
    }
}

impl Bed {
    /// Starts a bed: claims a slot (cleaning leftovers of dead beds first), creates the PKI, SSH keys,
    /// network and nodes, starts etcd on every node (static pods or external) and waits until every
    /// member is healthy.
    pub fn start(config: BedConfig) -> Result<Bed, BedError> {
        config.validate()?;
        availability::check(&config)?;
        let binaries = EtcdBinaries::locate(config.version)?;
        let helpers = HelperBinaries::locate()?;
        for dir in ["/etc/kubernetes", "/etc/etcd", "/run/sshd"] {
            make_host_dir(Path::new(dir))?;
        }
        let slot = Slot::claim()?;
        let mut guard = Guard {
            number: slot.number,
            dir: slot.dir.clone(),
            slot: Some(slot),
            children: Vec::new(),
        };
        let number = guard.number;
        let dir = guard.dir.clone();
        for sub in ["pki", "ssh", "nodes"] {
            make_dir(&dir.join(sub), 0o700)?;
        }
        let pki = Pki::create(&dir.join("pki"))?;
        let ssh = ssh::create_client(&dir.join("ssh"), config.sudo_user)?;
        let sudo_user = if config.sudo_user {
            Some(ssh::ensure_sudo_user()?)
        } else {
            None
        };
        network::create_bridge(number)?;

        let members: Vec<Member> = (1..=config.nodes)
            .map(|i| Member {
                name: format!("node{i}"),
                address: network::node_address(number, i),
            })
            .collect();
        let token = format!("etcdrill-testbed-b{number}");
        let mut nodes = Vec::new();
        let mut host_keys = Vec::new();
        let shared_backups = dir.join("shared-backups");
        if config.shared_backup_dir {
            make_dir(&shared_backups, 0o700)?;
        }
        for (position, member) in members.iter().enumerate() {
            let host_dir = dir.join("nodes").join(&member.name);
            let mut mounts = Vec::new();
            if config.data_dir_mount_point {
                // The disk holds the data etcd really uses: the moved hostPath, when it moved.
                let data_dir = if config.moved_host_path {
                    paths::MOVED_DATA_DIR
                } else {
                    paths::DATA_DIR
                };
                mounts.push((data_dir, host_dir.join("etcd-disk")));
            }
            if config.shared_backup_dir {
                mounts.push((paths::BACKUP_DIR, shared_backups.clone()));
            }
            let node = Node {
                index: position + 1,
                name: member.name.clone(),
                address: member.address,
                netns: network::netns_name(number, &member.name),
                host_dir,
                management: config.management,
                has_etcdutl: binaries.etcdutl.is_some(),
                mounts,
                disks: config
                    .data_dir_disk_mib
                    .map(|mib| (paths::DATA_DIR, mib))
                    .into_iter()
                    .collect(),
                init_pid: 0,
            };
            let flags = etcd_config::flags(&config, &members, member, &token)?;
            lay_out(&node, &config, &flags, &binaries, &helpers)?;
            if let Some(ids) = sudo_user {
                ssh::install_user_key(&node.host_dir.join("fs/var"), &ssh, ids)?;
            }
            pki.issue_node(
                &node.host_dir.join("fs/etc-kubernetes"),
                &node.name,
                node.address,
            )?;
            let (sshd_config, host_key) =
                ssh::create_node(&node.host_dir.join("ssh"), &node.name, node.address, &ssh)?;
            host_keys.push((node.address, host_key));
            network::create_node_network(number, node.index, &node.netns)?;
            let (child, init_pid) = spawn_node(&node, &sshd_config, &binaries, &helpers)?;
            guard.children.push((child, init_pid));
            nodes.push(Node { init_pid, ..node });
        }
        ssh::write_known_hosts(&ssh, &host_keys)?;
        let bed = Bed {
            config,
            nodes,
            ssh,
            tls: pki.facts().clone(),
            binaries,
            guard,
        };
        bed.wait_nodes_ready(Duration::from_secs(20))?;
        if bed.config.management == Management::External {
            for node in &bed.nodes {
                node.exec_ok(&format!("{} start", paths::SERVICE))?;
            }
        }
        bed.wait_healthy(bed.config.health_timeout)?;
        Ok(bed)
    }

    /// Stops every node and removes everything the bed created, reporting failures (dropping the bed
    /// does the same but can only print them).
    pub fn teardown(mut self) -> Result<(), BedError> {
        self.guard.teardown()
    }

    /// The configuration the bed was started with.
    pub fn config(&self) -> &BedConfig {
        &self.config
    }

    /// The bed's id, `b<slot>`, unique among running beds on this machine.
    pub fn id(&self) -> String {
        format!("b{}", self.guard.number)
    }

    /// The bed's state directory on the host (PKI, SSH keys, each node's private directories and logs).
    pub fn state_dir(&self) -> &Path {
        &self.guard.dir
    }

    /// The nodes, in order (`node1` first).
    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    /// The host's address on the bed's network (where connections to the nodes come from).
    pub fn controller_address(&self) -> Ipv4Addr {
        network::host_address(self.guard.number)
    }

    /// How to log into the nodes.
    pub fn ssh(&self) -> &SshFacts {
        &self.ssh
    }

    /// Controller-side TLS material for the nodes' client URLs.
    pub fn tls(&self) -> &TlsFacts {
        &self.tls
    }

    /// Host paths of the selected etcd release's programs (for controller-side use).
    pub fn etcd_binaries(&self) -> &EtcdBinaries {
        &self.binaries
    }

    /// Every node's client URL.
    pub fn client_urls(&self) -> Vec<String> {
        self.nodes.iter().map(Node::client_url).collect()
    }

    /// An `ssh` command running `remote_command` on `node` with the bed's strict SSH options.
    pub fn ssh_command(&self, node: &Node, remote_command: &str) -> Command {
        self.ssh.command(node.address, remote_command)
    }

    /// Runs the host's `etcdctl` against every node's client URL with the controller's client
    /// certificate; `args` come after the connection flags and may override them.
    pub fn etcdctl(&self, args: &[&str]) -> Result<ExecOutput, BedError> {
        run(self.etcdctl_command(args), None)
    }

    fn etcdctl_command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(&self.binaries.etcdctl);
        command
            .env_clear()
            .env("PATH", NODE_PATH)
            .env("ETCDCTL_API", "3")
            .arg(format!("--endpoints={}", self.client_urls().join(",")))
            .arg(format!("--cacert={}", self.tls.ca_cert.display()))
            .arg(format!("--cert={}", self.tls.client_cert.display()))
            .arg(format!("--key={}", self.tls.client_key.display()))
            .arg("--dial-timeout=2s")
            .args(args);
        command
    }

    /// Polls until every node's member answers `endpoint health` over mutual TLS, or fails after
    /// `timeout` with the last answer and the nodes' log tails.
    pub fn wait_healthy(&self, timeout: Duration) -> Result<(), BedError> {
        let result = wait_until("every member to be healthy", timeout, || {
            let output = self
                .etcdctl(&["endpoint", "health", "--command-timeout=2s"])
                .map_err(|e| e.to_string())?;
            if output.success() {
                Ok(())
            } else {
                Err(format!("{}{}", output.stdout, output.stderr))
            }
        });
        result.map_err(|error| self.with_diagnostics(error))
    }

    /// `etcdctl member list` through the controller.
    pub fn member_list(&self) -> Result<Vec<MemberInfo>, BedError> {
        #[derive(Deserialize)]
        struct List {
            #[serde(default)]
            members: Vec<MemberInfo>,
        }
        let stdout = self
            .etcdctl(&["member", "list", "-w", "json"])?
            .into_stdout()?;
        let list: List = parse_json("etcdctl member list", &stdout)?;
        Ok(list.members)
    }

    /// Writes `keys` keys of `value_bytes` bytes each under [`SEED_PREFIX`] (`<prefix>00000000`, ...),
    /// with the values of [`seed_value`], in transactions of at most 128 puts and about 1 MB.
    pub fn seed(&self, keys: usize, value_bytes: usize) -> Result<(), BedError> {
        const MAX_OPS: usize = 128;
        const MAX_BYTES: usize = 1_000_000;
        if value_bytes > MAX_BYTES {
            return Err(BedError::Config(format!(
                "seed values are at most {MAX_BYTES} bytes, not {value_bytes}"
            )));
        }
        let mut batch = String::new();
        let mut ops = 0;
        for index in 0..keys {
            let line = format!(
                "put {SEED_PREFIX}{index:08} \"{}\"\n",
                seed_value(index, value_bytes)
            );
            if ops == MAX_OPS || (ops > 0 && batch.len() + line.len() > MAX_BYTES) {
                self.txn(&batch)?;
                batch.clear();
                ops = 0;
            }
            batch.push_str(&line);
            ops += 1;
        }
        if ops > 0 {
            self.txn(&batch)?;
        }
        Ok(())
    }

    /// Runs one `etcdctl txn` with no comparisons and `puts` as its success operations.
    fn txn(&self, puts: &str) -> Result<(), BedError> {
        let input = format!("\n{puts}\n\n");
        let output = run(
            self.etcdctl_command(&["txn", "--command-timeout=30s"]),
            Some(input.as_bytes()),
        )?;
        let stdout = output.clone().into_stdout()?;
        if stdout.starts_with("SUCCESS") {
            Ok(())
        } else {
            Err(BedError::Parse {
                what: output.command,
                detail: format!("expected SUCCESS, got {stdout:?}"),
            })
        }
    }

    /// Writes a canary key `<CANARY_PREFIX><name>` with a unique value and returns it.
    pub fn put_canary(&self, name: &str) -> Result<Canary, BedError> {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        let canary = Canary {
            key: format!("{CANARY_PREFIX}{name}"),
            value: format!("{name}-{nanos}"),
        };
        self.etcdctl(&["put", &canary.key, &canary.value])?
            .into_stdout()?;
        Ok(canary)
    }

    /// Reads `key` (a linearizable read through the controller); `None` when it does not exist.
    pub fn get(&self, key: &str) -> Result<Option<String>, BedError> {
        #[derive(Deserialize)]
        struct Kv {
            value: Option<String>,
        }
        #[derive(Deserialize)]
        struct Get {
            #[serde(default)]
            kvs: Vec<Kv>,
        }
        let stdout = self.etcdctl(&["get", key, "-w", "json"])?.into_stdout()?;
        let get: Get = parse_json("etcdctl get", &stdout)?;
        let Some(kv) = get.kvs.into_iter().next() else {
            return Ok(None);
        };
        let bytes = base64_decode(kv.value.as_deref().unwrap_or_default()).ok_or_else(|| {
            BedError::Parse {
                what: "etcdctl get".to_owned(),
                detail: "value is not base64".to_owned(),
            }
        })?;
        Ok(Some(String::from_utf8_lossy(&bytes).into_owned()))
    }

    /// Counts the keys under `prefix` (a linearizable read through the controller).
    pub fn count_keys(&self, prefix: &str) -> Result<u64, BedError> {
        #[derive(Deserialize)]
        struct Count {
            #[serde(default)]
            count: u64,
        }
        // The response's count is the number of keys in the range, whatever the limit (etcdctl 3.4 has
        // no --count-only).
        let stdout = self
            .etcdctl(&["get", prefix, "--prefix", "--limit=1", "-w", "json"])?
            .into_stdout()?;
        Ok(parse_json::<Count>("etcdctl get", &stdout)?.count)
    }

    /// Stops etcd on `node` the way its management does (static pod: moves the manifest out of
    /// `/etc/kubernetes/manifests` to `/etc/kubernetes/etcd.yaml`; external: `etcd-service stop`) and
    /// waits until the process is gone.
    pub fn stop_member(&self, node: &Node) -> Result<(), BedError> {
        let script = match self.config.management {
            Management::StaticPod => format!(
                "if [ -f {m} ]; then mv {m} {p}; fi",
                m = paths::MANIFEST,
                p = paths::PARKED_MANIFEST
            ),
            Management::External => format!("{} stop", paths::SERVICE),
        };
        node.exec_ok(&script)?;
        wait_until(
            &format!("etcd on {} to stop", node.name),
            Duration::from_secs(45),
            || match node.etcd_pids().map_err(|e| e.to_string())? {
                pids if pids.is_empty() => Ok(()),
                pids => Err(format!("etcd still running as {pids:?}")),
            },
        )
        .map_err(|error| self.with_diagnostics(error))
    }

    /// Starts etcd on `node` again (static pod: moves the parked manifest back; external:
    /// `etcd-service start`) and waits until the process runs. It does not wait for health: a member
    /// alone may have no quorum; use [`Bed::wait_healthy`].
    pub fn start_member(&self, node: &Node) -> Result<(), BedError> {
        let script = match self.config.management {
            Management::StaticPod => format!(
                "if [ -f {p} ]; then mv {p} {m}; fi; test -f {m}",
                m = paths::MANIFEST,
                p = paths::PARKED_MANIFEST
            ),
            Management::External => format!("{} start", paths::SERVICE),
        };
        node.exec_ok(&script)?;
        wait_until(
            &format!("etcd on {} to start", node.name),
            Duration::from_secs(15),
            || match node.etcd_pids().map_err(|e| e.to_string())? {
                pids if pids.is_empty() => Err("no etcd process".to_owned()),
                _ => Ok(()),
            },
        )
        .map_err(|error| self.with_diagnostics(error))
    }

    /// Names of everything the bed created on the host, and its nodes' processes right now.
    pub fn resources(&self) -> Result<Resources, BedError> {
        let mut processes = Vec::new();
        for node in &self.nodes {
            for pid in network::netns_pids(&node.netns)? {
                if let Some(start) = process_start_time(pid) {
                    let name = fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
                    processes.push((pid, start, name.trim().to_owned()));
                }
            }
        }
        let number = self.guard.number;
        let mut links = vec![network::bridge_name(number)];
        links.extend(
            self.nodes
                .iter()
                .map(|n| network::veth_name(number, n.index)),
        );
        Ok(Resources {
            netns: self.nodes.iter().map(|n| n.netns.clone()).collect(),
            links,
            state_dir: self.guard.dir.clone(),
            processes,
        })
    }

    /// The last lines of every node's init, kubelet, sshd and etcd logs, for failure messages.
    pub fn diagnostics(&self) -> String {
        let mut text = String::new();
        for node in &self.nodes {
            for log in [
                node.host_dir.join("init.log"),
                node.kubelet_log(),
                node.sshd_log(),
                node.etcd_log(),
            ] {
                let tail = tail(&log, 12);
                if !tail.is_empty() {
                    text.push_str(&format!(
                        "\n--- {} {} ---\n{tail}",
                        node.name,
                        log.display()
                    ));
                }
            }
        }
        text
    }

    fn with_diagnostics(&self, error: BedError) -> BedError {
        match error {
            BedError::Timeout { what, waited, last } => BedError::Timeout {
                what,
                waited,
                last: format!("{last}{}", self.diagnostics()),
            },
            other => other,
        }
    }

    /// Waits until every node has finished its setup and its sshd accepts connections.
    fn wait_nodes_ready(&self, timeout: Duration) -> Result<(), BedError> {
        for node in &self.nodes {
            let ssh = SocketAddr::from((node.address, self.ssh.port));
            wait_until(&format!("{} to be up", node.name), timeout, || {
                if !node.host_dir.join("ready").exists() {
                    return Err("node setup has not finished".to_owned());
                }
                TcpStream::connect_timeout(&ssh, Duration::from_secs(1))
                    .map(drop)
                    .map_err(|e| format!("sshd at {ssh}: {e}"))
            })
            .map_err(|error| self.with_diagnostics(error))?;
        }
        Ok(())
    }
}

/// Polls `check` every 100 ms until it returns `Ok`, or fails after `timeout` with the last `Err` it
/// returned (a description of the state that is not yet the awaited one).
pub fn wait_until(
    what: &str,
    timeout: Duration,
    mut check: impl FnMut() -> Result<(), String>,
) -> Result<(), BedError> {
    let started = Instant::now();
    loop {
        let last = match check() {
            Ok(()) => return Ok(()),
            Err(last) => last,
        };
        if started.elapsed() >= timeout {
            return Err(BedError::Timeout {
                what: what.to_owned(),
                waited: started.elapsed(),
                last,
            });
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The value [`Bed::seed`] writes for key number `index`: `bytes` pseudo-random ASCII letters and
/// digits, the same for the same arguments.
pub fn seed_value(index: usize, bytes: usize) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let mut state = (index as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..bytes)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            ALPHABET[(state % ALPHABET.len() as u64) as usize] as char
        })
        .collect()
}

fn parse_json<T: serde::de::DeserializeOwned>(what: &str, text: &str) -> Result<T, BedError> {
    serde_json::from_str(text).map_err(|error| BedError::Parse {
        what: what.to_owned(),
        detail: error.to_string(),
    })
}

/// Decodes standard base64 (as etcdctl's JSON output uses).
fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let mut bits = 0u32;
    let mut count = 0;
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    for byte in text.bytes().filter(|&b| b != b'=') {
        let value = match byte {
            b'A'..=b'Z' => byte - b'A',
            b'a'..=b'z' => byte - b'a' + 26,
            b'0'..=b'9' => byte - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        };
        bits = (bits << 6) | u32::from(value);
        count += 6;
        if count >= 8 {
            count -= 8;
            out.push((bits >> count) as u8);
            bits &= (1 << count) - 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_base64() {
        for (encoded, decoded) in [
            ("", ""),
            ("YQ==", "a"),
            ("YWI=", "ab"),
            ("YWJj", "abc"),
            ("aGVsbG8gd29ybGQ=", "hello world"),
        ] {
            assert_eq!(
                base64_decode(encoded).as_deref(),
                Some(decoded.as_bytes()),
                "{encoded}"
            );
        }
        assert_eq!(base64_decode("a*b"), None);
    }

    #[test]
    fn seed_values_are_deterministic_alphanumerics() {
        assert_eq!(seed_value(7, 64), seed_value(7, 64));
        assert_ne!(seed_value(7, 64), seed_value(8, 64));
        assert_eq!(seed_value(3, 1000).len(), 1000);
        assert!(
            seed_value(3, 1000)
                .bytes()
                .all(|b| b.is_ascii_alphanumeric())
        );
        assert_eq!(seed_value(0, 0), "");
    }
}
