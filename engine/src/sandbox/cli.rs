//! `etcdrill sandbox up|status|down`: the arguments and what each prints.

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};

use super::{DEFAULT_DIR, EtcdBinaries, Sandbox, SandboxError, SandboxStatus};

/// Arguments of `etcdrill sandbox`.
#[derive(Debug, Args)]
pub struct SandboxArgs {
    /// What to do with the sandbox.
    #[command(subcommand)]
    pub command: SandboxCommand,
}

/// A `sandbox` subcommand.
#[derive(Debug, Subcommand)]
pub enum SandboxCommand {
    /// Start a local etcd cluster with mutual TLS on 127.0.0.1 and write its inventory.
    #[command(after_help = "Examples:
  etcdrill sandbox up
  etcdrill sandbox up --members 1 --dir /tmp/etcd-one")]
    Up {
        /// Number of members (odd, 1 to 9).
        #[arg(long, default_value_t = 3, value_name = "N")]
        members: usize,
        /// The sandbox directory (created; must be empty).
        #[arg(long, value_name = "DIR", default_value = DEFAULT_DIR)]
        dir: PathBuf,
    },
    /// Show each member's process, health, leadership and database size.
    #[command(after_help = "Examples:
  etcdrill sandbox status
  etcdrill sandbox status --dir /tmp/etcd-one -o json")]
    Status {
        /// The sandbox directory.
        #[arg(long, value_name = "DIR", default_value = DEFAULT_DIR)]
        dir: PathBuf,
        /// Output format.
        #[command(flatten)]
        output: crate::cli::OutputArgs,
    },
    /// Stop every member and remove the sandbox directory.
    #[command(after_help = "Examples:
  etcdrill sandbox down
  etcdrill sandbox down --dir /tmp/etcd-one")]
    Down {
        /// The sandbox directory.
        #[arg(long, value_name = "DIR", default_value = DEFAULT_DIR)]
        dir: PathBuf,
    },
}

/// Runs a `sandbox` subcommand, writing what it did to `out`. `status` fails when a member is
/// down or unhealthy (after printing the table).
pub fn run(args: &SandboxArgs, out: &mut dyn Write) -> Result<(), SandboxError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(SandboxError::io("start the runtime for", Path::new(".")))?;
    let text = match &args.command {
        SandboxCommand::Up { members, dir } => {
            let binaries = EtcdBinaries::locate()?;
            let sandbox = runtime.block_on(Sandbox::up(dir, *members, &binaries))?;
            up_text(&sandbox, &binaries)
        }
        SandboxCommand::Status { dir, output } => {
            let status = runtime.block_on(Sandbox::status(dir))?;
            let text = if output.is_document() {
                output.document(&status_json(&status))
            } else {
                status_text(&status)
            };
            if !status.all_healthy() {
                write(out, &text)?;
                let members = status
                    .members
                    .iter()
                    .filter_map(|m| match (&m.pid, &m.health) {
                        (None, _) => Some(format!("{} is stopped", m.name)),
                        (Some(_), Err(why)) => Some(format!("{}: {why}", m.name)),
                        (Some(_), Ok(())) => None,
                    })
                    .collect();
                return Err(SandboxError::Degraded { members });
            }
            text
        }
        SandboxCommand::Down { dir } => {
            let report = Sandbox::down(dir)?;
            format!(
                "stopped {} process(es), removed {}\n",
                report.stopped.len(),
                report.dir.display()
            )
        }
    };
    write(out, &text)
}

fn write(out: &mut dyn Write, text: &str) -> Result<(), SandboxError> {
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(SandboxError::io("write to", Path::new("standard output")))
}

/// What `up` prints.
pub fn up_text(sandbox: &Sandbox, binaries: &EtcdBinaries) -> String {
    let mut text = format!(
        "sandbox {} is up: {} members of etcd {} (from {}) in {}\n",
        sandbox.id,
        sandbox.members.len(),
        sandbox.etcd_version,
        binaries.found_in,
        sandbox.dir.display()
    );
    for member in &sandbox.members {
        let pid = sandbox
            .pid(member)
            .map_or_else(|| "-".into(), |p| p.to_string());
        text.push_str(&format!(
            "  {:<4} {}  pid {pid:<8} log {}\n",
            member.name, member.client_url, member.log
        ));
    }
    let inventory = sandbox.inventory_path();
    let no_bump = if has_bump_revision(&sandbox.etcd_version) {
        ""
    } else {
        " -p bump_revision=0 -p mark_compacted=false"
    };
    text.push_str(&format!(
        "inventory: {}\nrestore: etcdrill run runbooks/restore-3-node.yaml -i {} -p snapshot=FILE{no_bump}\nstop and remove: etcdrill sandbox down --dir {}\n",
        inventory.display(),
        inventory.display(),
        sandbox.dir.display()
    ));
    text
}

/// Whether this etcd version's etcdutl has `--bump-revision` (3.5.10 and later, 3.6).
fn has_bump_revision(version: &str) -> bool {
    let mut parts = version.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    let (major, minor, patch) = (
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
    );
    (major, minor, patch) >= (3, 6, 0) || (major, minor) == (3, 5) && patch >= 10
}

/// What `status -o json|yaml` prints.
fn status_json(status: &SandboxStatus) -> serde_json::Value {
    serde_json::json!({
        "id": status.sandbox.id,
        "dir": status.sandbox.dir,
        "etcd_version": status.sandbox.etcd_version,
        "inventory": status.sandbox.inventory_path(),
        "leader": status.leader(),
        "members": status.members.iter().map(|m| serde_json::json!({
            "name": m.name,
            "client_url": m.client_url,
            "pid": m.pid,
            "healthy": m.health.is_ok(),
            "health_error": m.health.as_ref().err(),
            "leader": m.leader,
            "db_size": m.db_size,
        })).collect::<Vec<_>>(),
    })
}

/// What `status` prints: one line per member.
pub fn status_text(status: &SandboxStatus) -> String {
    let sandbox = &status.sandbox;
    let mut text = format!(
        "sandbox {} in {} (etcd {}), leader: {}\n",
        sandbox.id,
        sandbox.dir.display(),
        sandbox.etcd_version,
        status.leader().unwrap_or("none")
    );
    for member in &status.members {
        let pid = member
            .pid
            .map_or_else(|| "stopped".into(), |p| format!("pid {p}"));
        let health = match &member.health {
            Ok(()) => "healthy".to_string(),
            Err(why) => format!("unhealthy: {why}"),
        };
        let db = member
            .db_size
            .map_or_else(|| "-".into(), |b| format!("{b} B"));
        let role = if member.leader { "leader" } else { "" };
        text.push_str(&format!(
            "  {:<4} {}  {pid:<12} db {db:<10} {role:<6} {health}\n",
            member.name, member.client_url
        ));
    }
    text
}

#[cfg(test)]
mod tests {
    #[test]
    fn bump_revision_arrived_in_3_5_10() {
        for (version, has) in [
            ("3.4.30", false),
            ("3.5.1", false),
            ("3.5.9", false),
            ("3.5.10", true),
            ("3.6.0", true),
            ("unknown", false),
        ] {
            assert_eq!(super::has_bump_revision(version), has, "{version}");
        }
    }
}
