//! Copies in a directory on a backup host, over SSH with strict host key checking.
//!
//! The snapshot is streamed with the transport's push (`.part`, fsync, rename); reading it back
//! runs the trailer check of [`crate::remote_checksum`] on the host, so the check covers the bytes
//! on the host's disk without bringing them back. Only POSIX `sh` and coreutils are needed there.

use std::time::Duration;

use super::BackupError;
use super::destination::SshDestination;
use super::store::{Digest, LocalSnapshot, StoredSnapshot, snapshot_of_meta};
use crate::remote_checksum;
use crate::render::shell_quote;
use crate::snapshot::meta::SnapshotMeta;
use crate::transfer::TransferMeter;
use crate::transport::ssh::SshTransport;
use crate::transport::{CommandOutput, CommandRequest, Transport};

/// Marks "no such file" in a script's output.
const ABSENT: &str = "ETCDRILL-ABSENT";
/// Starts each listed copy in `list`'s output.
const ENTRY: &str = "ETCDRILL-ENTRY ";
/// How long a killed command gets between SIGTERM and SIGKILL.
const GRACE: Duration = Duration::from_secs(3);

/// A backup directory on another host.
#[derive(Debug)]
pub struct SshStore {
    transport: Transport,
    destination: SshDestination,
    shown: String,
    timeout: Duration,
}

impl SshStore {
    /// Connects to the backup host.
    pub async fn connect(
        destination: &SshDestination,
        timeout: Duration,
    ) -> Result<SshStore, BackupError> {
        let shown = super::destination::Destination::Ssh(destination.clone()).to_string();
        let transport = SshTransport::connect_to(
            &format!("backup host {}", destination.host),
            &destination.host,
            &destination.ssh,
        )
        .await
        .map_err(|source| BackupError::Transport {
            destination: shown.clone(),
            source,
        })?;
        Ok(SshStore {
            transport: Transport::Ssh(transport),
            destination: destination.clone(),
            shown,
            timeout,
        })
    }

    /// `ssh://…/DIR`.
    pub fn root(&self) -> String {
        self.shown.clone()
    }

    /// Where the snapshot `name` is.
    pub fn location(&self, name: &str) -> String {
        format!("{}/{name}", self.shown.trim_end_matches('/'))
    }

    fn remote_path(&self, name: &str) -> String {
        format!("{}/{name}", self.destination.dir.trim_end_matches('/'))
    }

    fn sudo(&self) -> bool {
        self.destination.ssh.sudo.unwrap_or(false)
    }

    /// Runs a script on the host; its stdout when it exits 0.
    async fn run(&self, what: &str, script: &str) -> Result<String, BackupError> {
        let output = self.run_output(script).await?;
        if output.success() {
            Ok(output.stdout)
        } else {
            Err(self.failed(what, &output))
        }
    }

    /// Runs a script on the host, whatever its exit.
    async fn run_output(&self, script: &str) -> Result<CommandOutput, BackupError> {
        let request = CommandRequest {
            script,
            sudo: self.sudo(),
            timeout: self.timeout,
            grace: GRACE,
        };
        self.transport
            .run(&request, None)
            .await
            .map_err(|source| BackupError::Transport {
                destination: self.shown.clone(),
                source,
            })
    }

    /// The error of a script doing `what` that did not exit 0.
    fn failed(&self, what: &str, output: &CommandOutput) -> BackupError {
        let why = if output.timed_out {
            format!("timed out after {}", crate::humanize::limit(self.timeout))
        } else {
            match output.exit_status {
                Some(code) => format!("exit status {code}"),
                None => "killed by a signal".to_string(),
            }
        };
        BackupError::Remote {
            destination: self.shown.clone(),
            what: what.to_string(),
            detail: format!("{why}: {}", output.stderr.trim()),
        }
    }

    pub(crate) async fn read_meta(&self, name: &str) -> Result<Option<SnapshotMeta>, BackupError> {
        let path = shell_quote(&format!("{}.meta.json", self.remote_path(name)));
        let script = format!("if [ -e {path} ]; then cat -- {path}; else echo {ABSENT}; fi");
        let text = self.run("read metadata", &script).await?;
        if text.trim() == ABSENT {
            return Ok(None);
        }
        SnapshotMeta::parse(&text)
            .map(Some)
            .map_err(|reason| BackupError::Copy {
                location: self.location(name),
                reason: format!("its metadata is unreadable: {reason}"),
            })
    }

    pub(crate) async fn upload(&self, local: &LocalSnapshot) -> Result<(), BackupError> {
        // Several controllers may ship to one backup host: the temporary file names this one.
        let writer = format!("{}.{}", crate::etcd::host_name(), std::process::id());
        self.transport
            .push(
                &local.path,
                &self.remote_path(&local.name),
                &writer,
                self.sudo(),
                self.timeout,
                &TransferMeter::default(),
            )
            .await
            .map(drop)
            .map_err(|source| BackupError::Transport {
                destination: self.shown.clone(),
                source,
            })
    }

    pub(crate) async fn upload_meta(&self, name: &str, bytes: Vec<u8>) -> Result<(), BackupError> {
        let text = String::from_utf8_lossy(&bytes);
        let dir = shell_quote(&self.destination.dir);
        let part = shell_quote(&self.remote_path(&format!(".{name}.meta.part")));
        let path = shell_quote(&format!("{}.meta.json", self.remote_path(name)));
        let script = format!(
            "mkdir -p -- {dir} && printf '%s' {} > {part} && {{ sync {part} 2>/dev/null || true; }} \
             && mv -f -- {part} {path}",
            shell_quote(&text)
        );
        self.run("write metadata", &script).await.map(drop)
    }

    /// Reads the copy back on the host with the one trailer check ([`remote_checksum`]).
    pub(crate) async fn digest(&self, name: &str) -> Result<Digest, BackupError> {
        let path = self.remote_path(name);
        let script = format!(
            "if [ ! -e {} ]; then echo {ABSENT}; exit 0; fi\n{}",
            shell_quote(&path),
            remote_checksum::script(&path)
        );
        let output = self.run_output(&script).await?;
        if output.success() && output.stdout.trim() == ABSENT {
            return Ok(Digest::Missing);
        }
        let reported = remote_checksum::reported(&output.stdout);
        match (reported.size, reported.sha256) {
            (Some(size), Some(sha256)) if output.success() => Ok(Digest::Read {
                size,
                sha256: Ok(sha256),
            }),
            // The file was read and its trailer does not match: the script says why.
            (Some(size), _) if output.exit_status == Some(1) && !output.timed_out => {
                Ok(Digest::Read {
                    size,
                    sha256: Err(output.stderr.trim().to_string()),
                })
            }
            _ => Err(self.failed("read the copy back", &output)),
        }
    }

    pub(crate) async fn list(&self) -> Result<Vec<StoredSnapshot>, BackupError> {
        let dir = shell_quote(&self.destination.dir);
        let script = format!(
            "cd -- {dir} 2>/dev/null || exit 0\n\
             for m in *.meta.json; do\n\
             [ -f \"$m\" ] || continue\n\
             case $m in *[!A-Za-z0-9._-]*) continue;; esac\n\
             s=${{m%.meta.json}}\n\
             if [ -f \"$s\" ]; then size=$(wc -c < \"$s\"); else size=-; fi\n\
             printf '{ENTRY}%s %s\\n' \"$size\" \"$m\"\n\
             cat -- \"$m\"; echo\n\
             done\n"
        );
        let text = self.run("list copies", &script).await?;
        let mut found = Vec::new();
        let mut current: Option<(Option<u64>, String, String)> = None;
        let mut flush = |entry: Option<(Option<u64>, String, String)>| {
            if let Some((size, meta_name, json)) = entry
                && let Some(name) = snapshot_of_meta(&meta_name)
                && let Ok(meta) = SnapshotMeta::parse(&json)
            {
                found.push(StoredSnapshot::new(
                    name.to_string(),
                    self.location(name),
                    meta,
                    size,
                ));
            }
        };
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix(ENTRY) {
                flush(current.take());
                let (size, meta_name) = rest.split_once(' ').unwrap_or((rest, ""));
                current = Some((size.parse().ok(), meta_name.to_string(), String::new()));
            } else if let Some((_, _, json)) = current.as_mut() {
                json.push_str(line);
                json.push('\n');
            }
        }
        flush(current.take());
        Ok(found)
    }

    pub(crate) async fn delete(&self, name: &str) -> Result<(), BackupError> {
        let snapshot = shell_quote(&self.remote_path(name));
        let meta = shell_quote(&format!("{}.meta.json", self.remote_path(name)));
        self.run(
            "delete a copy",
            &format!("rm -f -- {meta} && rm -f -- {snapshot}"),
        )
        .await
        .map(drop)
    }

    /// Closes the connection.
    pub async fn close(self) {
        let _ = self.transport.close().await;
    }
}
