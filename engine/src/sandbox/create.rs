//! Creating a sandbox: choosing its id and free ports, and writing every file of a new sandbox
//! (the marker, certificates, each member's home, flags and service script, the inventory);
//! nothing is started here.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Stdio};

use super::{
    EtcdBinaries, FORMAT, MARKER, MAX_MEMBERS, Member, MemberTls, Sandbox, SandboxError, certs,
    mkdir, service, utf8, write_file,
};
use crate::inventory::TlsFiles;

fn random_u64() -> u64 {
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    hasher.write_u32(std::process::id());
    hasher.finish()
}

/// The low end of the kernel's range for outgoing connections' ports; ports below it are never
/// taken by a connection etcd itself opens.
fn ephemeral_low() -> u16 {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(32768)
}

/// `n` distinct free ports on 127.0.0.1, chosen at random between 10000 and the ephemeral range
/// (so no outgoing connection takes one while its member is down during a restore); any free port
/// when too few are found there. They are held until all are chosen.
fn free_ports(n: usize) -> Result<Vec<u16>, SandboxError> {
    let low = 10_000u16;
    let high = ephemeral_low().max(low + 1000);
    let mut held: Vec<TcpListener> = Vec::new();
    for _ in 0..n * 50 {
        if held.len() == n {
            break;
        }
        let port = low + (random_u64() % u64::from(high - low)) as u16;
        if let Ok(listener) = TcpListener::bind(("127.0.0.1", port)) {
            held.push(listener);
        }
    }
    while held.len() < n {
        held.push(
            TcpListener::bind(("127.0.0.1", 0))
                .map_err(SandboxError::io("bind a port on", Path::new("127.0.0.1")))?,
        );
    }
    held.iter()
        .map(|l| {
            l.local_addr()
                .map(|a| a.port())
                .map_err(SandboxError::io("read a port of", Path::new("127.0.0.1")))
        })
        .collect()
}

/// `etcd --version`'s version, e.g. `3.5.1`.
fn etcd_version(etcd: &Path) -> String {
    Command::new(etcd)
        .arg("--version")
        .stdin(Stdio::null())
        .output()
        .ok()
        .and_then(|out| {
            String::from_utf8_lossy(&out.stdout).lines().find_map(|l| {
                l.strip_prefix("etcd Version:")
                    .map(|v| v.trim().to_string())
            })
        })
        .unwrap_or_else(|| "unknown".into())
}

impl Sandbox {
    /// Writes every file of a new sandbox; starts nothing.
    pub(super) fn create(
        dir: &Path,
        members: usize,
        binaries: &EtcdBinaries,
    ) -> Result<Sandbox, SandboxError> {
        if members % 2 == 0 || members > MAX_MEMBERS {
            return Err(SandboxError::Members(members));
        }
        if let Ok(mut entries) = std::fs::read_dir(dir)
            && entries.next().is_some()
        {
            return Err(SandboxError::Exists {
                dir: dir.to_path_buf(),
                is_sandbox: dir.join(MARKER).exists(),
            });
        }
        mkdir(dir, 0o755)?;
        let dir = dir
            .canonicalize()
            .map_err(SandboxError::io("resolve", dir))?;
        utf8(&dir)?;
        let id = format!("{:06x}", random_u64() & 0xff_ffff);
        let names: Vec<String> = (1..=members).map(|i| format!("m{i}")).collect();
        let ports = free_ports(3 * members)?;
        let etcd = binaries
            .etcd
            .canonicalize()
            .map_err(SandboxError::io("resolve", &binaries.etcd))?;
        let pki = dir.join("pki");
        let bin = dir.join("bin");
        let path = |p: &Path| utf8(p);
        let mut list = Vec::new();
        for (i, name) in names.iter().enumerate() {
            let home = dir.join(name);
            let process_name = format!("etcd-{id}-{name}");
            let pem = |suffix: &str| path(&pki.join(format!("{name}-{suffix}")));
            list.push(Member {
                name: name.clone(),
                bin: path(&bin.join(&process_name))?,
                process_name,
                client_url: format!("https://127.0.0.1:{}", ports[3 * i]),
                peer_url: format!("https://127.0.0.1:{}", ports[3 * i + 1]),
                metrics_url: format!("http://127.0.0.1:{}", ports[3 * i + 2]),
                data_dir: path(&home.join("data"))?,
                backup_dir: path(&home.join("backups"))?,
                env_file: path(&home.join("etcd.env"))?,
                service: path(&home.join("service"))?,
                pid_file: path(&home.join("etcd.pid"))?,
                log: path(&home.join("etcd.log"))?,
                tls: MemberTls {
                    ca: path(&pki.join("ca.crt"))?,
                    server_cert: pem("server.crt")?,
                    server_key: pem("server.key")?,
                    peer_cert: pem("peer.crt")?,
                    peer_key: pem("peer.key")?,
                },
            });
        }
        let client_tls = TlsFiles {
            ca: path(&pki.join("ca.crt"))?,
            cert: path(&pki.join("client.crt"))?,
            key: path(&pki.join("client.key"))?,
        };
        let sandbox = Sandbox {
            format: FORMAT,
            id,
            dir: dir.clone(),
            etcd_version: etcd_version(&etcd),
            etcd: path(&etcd)?,
            etcdctl: path(&binaries.etcdctl)?,
            etcdutl: path(&binaries.etcdutl)?,
            client_tls,
            members: list,
        };
        // The marker first: from here on `down` can clean up whatever follows.
        sandbox.write_marker()?;
        mkdir(&pki, 0o700)?;
        certs::make(&pki, &names)?;
        mkdir(&bin, 0o755)?;
        let initial_cluster = sandbox
            .members
            .iter()
            .map(|m| format!("{}={}", m.name, m.peer_url))
            .collect::<Vec<_>>()
            .join(",");
        let token = format!("etcdrill-sandbox-{}", sandbox.id);
        for member in &sandbox.members {
            let home = dir.join(&member.name);
            mkdir(&home, 0o755)?;
            mkdir(Path::new(&member.data_dir), 0o700)?;
            mkdir(Path::new(&member.backup_dir), 0o755)?;
            std::os::unix::fs::symlink(&etcd, &member.bin)
                .map_err(SandboxError::io("link etcd as", Path::new(&member.bin)))?;
            write_file(
                Path::new(&member.env_file),
                &service::env_file(member, &initial_cluster, &token),
                0o644,
            )?;
            write_file(Path::new(&member.service), &service::script(member), 0o755)?;
        }
        let inventory = sandbox.inventory_yaml()?;
        // Load it back: a sandbox whose inventory etcdrill refuses is useless.
        sandbox.cluster_from(&inventory)?;
        write_file(&sandbox.inventory_path(), &inventory, 0o644)?;
        Ok(sandbox)
    }
}
