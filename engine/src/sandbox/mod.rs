//! The sandbox: a local etcd cluster of N members on 127.0.0.1 with mutual TLS, in a directory of
//! the user's, run without root through the local transport. `etcdrill sandbox up|status|down`.
//!
//! Layout of a sandbox directory (default [`DEFAULT_DIR`]):
//!
//! ```text
//! .etcdrill-sandbox      marker: the sandbox's state (JSON); `down` removes nothing without it
//! inventory.yaml         an etcdrill inventory of the members (transport: local)
//! pki/                   CA, per-member server and peer certificates, the client certificate
//! bin/etcd-<id>-m1       a link to etcd per member, so each member has a process name of its own
//! m1/data m1/backups     data dir and backup dir
//! m1/etcd.env            the member's flags as ETCD_* variables
//! m1/service             start | stop | status (the inventory's start and stop commands)
//! m1/etcd.pid m1/etcd.log
//! ```
//!
//! Every member runs detached from etcdrill in a session of its own, so the sandbox outlives the
//! command that started it, and stock runbooks stop, restore and start members exactly as they
//! would on real nodes: `etcd.data_dir.replace` renames within `mN/`, and stops wait with
//! `pgrep -x` on the member's own process name.

mod binaries;
mod certs;
pub mod cli;
mod create;
mod inventory;
mod process;
mod service;
#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

pub use binaries::{DIR_VAR, DISTRO_DIR, EtcdBinaries};
pub use service::STOP_GRACE_SECS;

use crate::diagnostic::Diagnostics;
use crate::etcd::{EtcdError, member_health};
use crate::inventory::TlsFiles;

/// Where `etcdrill sandbox` puts the sandbox unless told otherwise (relative to the current
/// directory).
pub const DEFAULT_DIR: &str = ".etcdrill/sandbox";

/// The marker file that makes a directory a sandbox.
pub const MARKER: &str = ".etcdrill-sandbox";

/// The inventory file in a sandbox directory.
pub const INVENTORY: &str = "inventory.yaml";

/// Most members a sandbox may have.
pub const MAX_MEMBERS: usize = 9;

/// Version of the marker's format.
const FORMAT: u32 = 1;

/// How long `up` waits for every member to be healthy.
const HEALTHY_WITHIN: Duration = Duration::from_secs(60);

/// How long `down` waits for killed members to be gone.
pub const KILL_WAIT: Duration = Duration::from_secs(10);

/// Processes, each as its pid and process name.
pub type Processes = Vec<(u32, String)>;

/// Why a sandbox command failed.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// The etcd binaries were not found.
    #[error("etcd binaries: {reason}")]
    Binaries {
        /// What was looked for.
        reason: String,
    },
    /// The member count is not an odd number from 1 to [`MAX_MEMBERS`].
    #[error("a sandbox has an odd number of members from 1 to {MAX_MEMBERS}, not {0}")]
    Members(usize),
    /// The directory holds something already.
    #[error("{} is not empty{}", dir.display(), if *is_sandbox { ": a sandbox is there already (`etcdrill sandbox status` or `down`)" } else { "; choose another directory" })]
    Exists {
        /// The directory.
        dir: PathBuf,
        /// Whether it holds a sandbox.
        is_sandbox: bool,
    },
    /// There is no sandbox directory.
    #[error("there is no sandbox at {} (`etcdrill sandbox up --dir {}` makes one)", dir.display(), dir.display())]
    Missing {
        /// The directory.
        dir: PathBuf,
    },
    /// The directory is not a sandbox (no marker file).
    #[error("{} is not an etcdrill sandbox (it has no {MARKER} file); nothing was touched", dir.display())]
    NotASandbox {
        /// The directory.
        dir: PathBuf,
    },
    /// A path is not valid UTF-8 (scripts and the inventory need text).
    #[error("the sandbox path {} is not valid UTF-8", path.display())]
    NotUtf8 {
        /// The path.
        path: PathBuf,
    },
    /// A file operation failed.
    #[error("failed to {what} {}", path.display())]
    Io {
        /// What was being done.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Certificates could not be made.
    #[error("certificates: {reason}")]
    Certs {
        /// What failed.
        reason: String,
    },
    /// The marker file is unreadable or of another format.
    #[error("the sandbox marker {} is unreadable: {reason}", path.display())]
    Marker {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The generated inventory does not load (a bug).
    #[error("the sandbox's inventory is invalid")]
    Inventory(#[source] Diagnostics),
    /// A member did not start.
    #[error("member {member} did not start: {reason}")]
    Start {
        /// The member.
        member: String,
        /// What its service script said.
        reason: String,
    },
    /// The members did not all become healthy; they were stopped again.
    #[error(
        "the sandbox did not become healthy within {}: {reason}; its members were stopped, \
         their logs are in {}/m*/etcd.log (`etcdrill sandbox down --dir {}` removes it)",
        crate::humanize::limit(*within),
        dir.display(),
        dir.display()
    )]
    Unhealthy {
        /// The sandbox directory.
        dir: PathBuf,
        /// How long was waited.
        within: Duration,
        /// What was unhealthy.
        reason: String,
    },
    /// Members are down or unhealthy (`status`).
    #[error("not every member runs and is healthy: {}", members.join("; "))]
    Degraded {
        /// Each failing member and why.
        members: Vec<String>,
    },
    /// Processes of the sandbox would not die.
    #[error(
        "processes of the sandbox are still running after SIGKILL: {pids:?}; the directory was kept"
    )]
    Survivors {
        /// Their pids.
        pids: Vec<u32>,
    },
    /// The etcd API could not be used.
    #[error(transparent)]
    Etcd(#[from] EtcdError),
}

impl SandboxError {
    fn io(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> SandboxError {
        let path = path.to_path_buf();
        move |source| SandboxError::Io { what, path, source }
    }
}

/// One member of a sandbox: its names, URLs and files (absolute paths).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Member {
    /// Member and node name: `m1`, `m2`, ...
    pub name: String,
    /// The process name (`comm`) the member runs under, unique to this sandbox.
    pub process_name: String,
    /// The member's link to the etcd binary, named `process_name`.
    pub bin: String,
    /// Client URL, `https://127.0.0.1:PORT`.
    pub client_url: String,
    /// Peer URL, `https://127.0.0.1:PORT`.
    pub peer_url: String,
    /// Metrics URL, `http://127.0.0.1:PORT`.
    pub metrics_url: String,
    /// Data dir.
    pub data_dir: String,
    /// Backup dir.
    pub backup_dir: String,
    /// The env file of `ETCD_*` variables.
    pub env_file: String,
    /// The `service start|stop|status` script.
    pub service: String,
    /// The pid file `service start` writes.
    pub pid_file: String,
    /// The log.
    pub log: String,
    /// Certificates the member serves with.
    pub tls: MemberTls,
}

/// The certificates a member serves with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemberTls {
    /// The CA clients and peers must be signed by.
    pub ca: String,
    /// Client-facing certificate.
    pub server_cert: String,
    /// Its key.
    pub server_key: String,
    /// Peer certificate.
    pub peer_cert: String,
    /// Its key.
    pub peer_key: String,
}

/// A sandbox: what its marker file records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sandbox {
    /// Format of the marker file.
    pub format: u32,
    /// A short random id, part of every process name.
    pub id: String,
    /// The sandbox directory (absolute).
    pub dir: PathBuf,
    /// The etcd binaries' version line, e.g. `3.5.1`.
    pub etcd_version: String,
    /// The binaries used.
    pub etcd: String,
    /// etcdctl.
    pub etcdctl: String,
    /// etcdutl (etcdctl for etcd 3.4).
    pub etcdutl: String,
    /// The client certificate etcdctl and the controller use.
    pub client_tls: TlsFiles,
    /// The members.
    pub members: Vec<Member>,
}

/// One member's state, as `status` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberStatus {
    /// Member name.
    pub name: String,
    /// Its client URL.
    pub client_url: String,
    /// The pid of its running process, if it runs.
    pub pid: Option<u32>,
    /// Endpoint health: Ok, or why not.
    pub health: Result<(), String>,
    /// Whether it is the leader (per its own status).
    pub leader: bool,
    /// Its database size in bytes, if it answered.
    pub db_size: Option<i64>,
}

/// What `status` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxStatus {
    /// The sandbox.
    pub sandbox: Sandbox,
    /// Every member, in order.
    pub members: Vec<MemberStatus>,
}

impl SandboxStatus {
    /// The leader's name, if a member says it leads.
    pub fn leader(&self) -> Option<&str> {
        self.members
            .iter()
            .find(|m| m.leader)
            .map(|m| m.name.as_str())
    }

    /// Whether every member runs and is healthy.
    pub fn all_healthy(&self) -> bool {
        self.members
            .iter()
            .all(|m| m.pid.is_some() && m.health.is_ok())
    }
}

/// What `down` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DownReport {
    /// The directory removed.
    pub dir: PathBuf,
    /// The processes stopped.
    pub stopped: Processes,
}

fn utf8(path: &Path) -> Result<String, SandboxError> {
    path.to_str()
        .map(str::to_string)
        .ok_or_else(|| SandboxError::NotUtf8 {
            path: path.to_path_buf(),
        })
}

fn write_file(path: &Path, text: &str, mode: u32) -> Result<(), SandboxError> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text).map_err(SandboxError::io("write", path))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(SandboxError::io("set permissions of", path))
}

fn mkdir(path: &Path, mode: u32) -> Result<(), SandboxError> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(path).map_err(SandboxError::io("create", path))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(SandboxError::io("set permissions of", path))
}

impl Sandbox {
    /// Creates a sandbox of `members` members in `dir` (created if missing; it must be empty),
    /// starts every member and waits until all are healthy. On failure the members started are
    /// stopped again and the directory is kept, with the logs.
    pub async fn up(
        dir: &Path,
        members: usize,
        binaries: &EtcdBinaries,
    ) -> Result<Sandbox, SandboxError> {
        let sandbox = Self::create(dir, members, binaries)?;
        if let Err(err) = sandbox.start_and_wait().await {
            sandbox.stop_all();
            return Err(err);
        }
        Ok(sandbox)
    }

    async fn start_and_wait(&self) -> Result<(), SandboxError> {
        for member in &self.members {
            let out = Command::new(&member.service)
                .arg("start")
                .stdin(Stdio::null())
                .output()
                .map_err(SandboxError::io("run", Path::new(&member.service)))?;
            if !out.status.success() {
                return Err(SandboxError::Start {
                    member: member.name.clone(),
                    reason: String::from_utf8_lossy(&out.stderr).trim().to_string(),
                });
            }
        }
        self.wait_healthy(HEALTHY_WITHIN).await
    }

    /// Polls until every member is healthy, or fails with what is unhealthy after `within`.
    pub async fn wait_healthy(&self, within: Duration) -> Result<(), SandboxError> {
        let cluster = self.cluster()?;
        let access = self.access()?;
        let deadline = Instant::now() + within;
        loop {
            let health = member_health(&access, &cluster, Duration::from_secs(3)).await;
            let bad: Vec<String> = health
                .iter()
                .filter_map(|(name, r)| r.as_ref().err().map(|why| format!("{name}: {why}")))
                .collect();
            if bad.is_empty() {
                return Ok(());
            }
            let dead: Vec<&str> = self
                .members
                .iter()
                .filter(|m| self.pid(m).is_none())
                .map(|m| m.name.as_str())
                .collect();
            if Instant::now() >= deadline || !dead.is_empty() {
                let reason = if dead.is_empty() {
                    bad.join("; ")
                } else {
                    format!("{} exited", dead.join(", "))
                };
                return Err(SandboxError::Unhealthy {
                    dir: self.dir.clone(),
                    within,
                    reason,
                });
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Opens the sandbox in `dir` from its marker file.
    pub fn open(dir: &Path) -> Result<Sandbox, SandboxError> {
        let path = dir.join(MARKER);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound && !dir.exists() => {
                return Err(SandboxError::Missing {
                    dir: dir.to_path_buf(),
                });
            }
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                return Err(SandboxError::NotASandbox {
                    dir: dir.to_path_buf(),
                });
            }
            Err(source) => {
                return Err(SandboxError::Io {
                    what: "read",
                    path,
                    source,
                });
            }
        };
        let sandbox: Sandbox = serde_json::from_str(&text).map_err(|err| SandboxError::Marker {
            path: path.clone(),
            reason: err.to_string(),
        })?;
        if sandbox.format != FORMAT {
            return Err(SandboxError::Marker {
                path,
                reason: format!(
                    "format {} (this etcdrill reads format {FORMAT})",
                    sandbox.format
                ),
            });
        }
        Ok(sandbox)
    }

    fn write_marker(&self) -> Result<(), SandboxError> {
        let text = serde_json::to_string_pretty(self).expect("a sandbox serializes");
        write_file(&self.dir.join(MARKER), &(text + "\n"), 0o644)
    }

    /// The pid of `member`'s running process, if it runs.
    pub fn pid(&self, member: &Member) -> Option<u32> {
        process::read_pid(Path::new(&member.pid_file))
            .filter(|&pid| process::alive(pid, &member.process_name))
    }

    /// Every running process of this sandbox's members: from the pid files and by process name.
    pub fn processes(&self) -> Processes {
        let names: Vec<String> = self
            .members
            .iter()
            .map(|m| m.process_name.clone())
            .collect();
        let mut procs = process::find_by_name(&names);
        for member in &self.members {
            if let Some(pid) = self.pid(member)
                && !procs.iter().any(|(p, _)| *p == pid)
            {
                procs.push((pid, member.process_name.clone()));
            }
        }
        procs
    }

    /// Kills every member process with SIGKILL, leaving the directory; returns the processes
    /// killed and those still alive [`KILL_WAIT`] later. Only for a sandbox about to be removed
    /// or one that failed to come up: SIGTERM to all members at once makes leadership bounce
    /// between members that are all shutting down, which took ~7 s; a graceful stop of one
    /// member is `mN/service stop`.
    pub fn stop_all(&self) -> (Processes, Processes) {
        let procs = self.processes();
        let left = process::kill(&procs, KILL_WAIT);
        (procs, left)
    }

    /// Each member's process, health, leadership and database size.
    pub async fn status(dir: &Path) -> Result<SandboxStatus, SandboxError> {
        let sandbox = Self::open(dir)?;
        let cluster = sandbox.cluster()?;
        let access = sandbox.access()?;
        let timeout = Duration::from_secs(3);
        let health = member_health(&access, &cluster, timeout).await;
        let mut members = Vec::new();
        for (member, (_, health)) in sandbox.members.iter().zip(health) {
            let status = async {
                let endpoint = [member.client_url.clone()];
                let mut client = access.client_within(&endpoint, Some(timeout)).await.ok()?;
                let status = client.status().await.ok()?;
                let own = status.header().map(|h| h.member_id());
                Some((status.db_size(), own == Some(status.leader())))
            };
            let status = tokio::time::timeout(timeout, status).await.ok().flatten();
            members.push(MemberStatus {
                name: member.name.clone(),
                client_url: member.client_url.clone(),
                pid: sandbox.pid(member),
                health,
                leader: status.is_some_and(|(_, leader)| leader),
                db_size: status.map(|(size, _)| size),
            });
        }
        Ok(SandboxStatus { sandbox, members })
    }

    /// Kills every member (its data is about to go) and removes the directory. Refuses a
    /// directory without the marker file, and keeps the directory if a process survives SIGKILL.
    pub fn down(dir: &Path) -> Result<DownReport, SandboxError> {
        let sandbox = Self::open(dir)?;
        let (stopped, left) = sandbox.stop_all();
        if !left.is_empty() {
            return Err(SandboxError::Survivors {
                pids: left.into_iter().map(|(pid, _)| pid).collect(),
            });
        }
        std::fs::remove_dir_all(dir).map_err(SandboxError::io("remove", dir))?;
        Ok(DownReport {
            dir: sandbox.dir,
            stopped,
        })
    }
}
