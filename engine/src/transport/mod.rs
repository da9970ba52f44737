//! Transports: how etcdrill runs a shell script on a node and copies files to and from it.
//!
//! A [`Transport`] is either an SSH connection (one multiplexed OpenSSH master per node, strict
//! host key checking, see [`ssh`]) or the machine etcdrill runs on (see [`local`]). Both run a
//! POSIX `sh` script fed on standard input, never on a command line, and both copy files by
//! streaming them through `sh` on the other side with the `.part` + fsync + rename discipline.
//!
//! # Process groups, timeouts and cancellation
//!
//! Every script starts with a one-line prologue that prints the shell's process group id on
//! standard error as a tagged first line ([`PGID_TAG`]); the line is removed from the output.
//! sshd starts every session in a session (and so a process group) of its own, and the local
//! transport starts `sh` in a new process group, so that group holds the script and everything it
//! started. On timeout the whole group gets `SIGTERM`, then `SIGKILL` after the grace period,
//! sent over a second channel of the same master. Dropping a running [`Transport::run`] future
//! does the same in the background. Processes that leave the group (`setsid`, daemons started
//! through systemd) are not touched.
//!
//! A script is sent in two parts: the prologue alone, then, once its group line has been read,
//! the script itself. So nothing of a script runs before its group is known, and a run dropped
//! early (a forced stop, a second Ctrl-C) either is killed by group or never ran its script: its
//! stdin closes after the prologue and the shell exits. (Copies keep their script on the command
//! line; they only wait for data on stdin.)
//!
//! # What a script sees
//!
//! The script is wrapped in `{ ... } </dev/null`: the shell parses all of it before running any
//! of it (a syntax error anywhere runs nothing), and commands in it read an empty standard input
//! instead of the rest of the script.

pub mod local;
pub mod ssh;

mod capture;
mod copy;
#[cfg(test)]
mod sshd_harness;
mod supervise;
#[cfg(test)]
mod tests;

use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::Notify;
use tokio::sync::mpsc::UnboundedSender;

use capture::{Capture, Stream, pump};
pub(crate) use copy::Landed;
use supervise::{GroupId, KillOnDrop, feed_after_group, script_body, supervise};
pub(crate) use supervise::{Killer, Signal};

/// The most bytes of stdout, and of stderr, a [`CommandOutput`] keeps: the end, where errors are.
pub const OUTPUT_CAP_BYTES: usize = 1 << 20;

/// The tag of the first stderr line every script prints: its process group id.
pub const PGID_TAG: &str = "ETCDRILL-PGID ";

/// One command for a transport.
#[derive(Debug, Clone, Copy)]
pub struct CommandRequest<'a> {
    /// The POSIX `sh` script to run.
    pub script: &'a str,
    /// Run it through `sudo -n`.
    pub sudo: bool,
    /// How long it may run before it is stopped.
    pub timeout: Duration,
    /// How long after `SIGTERM` it gets before `SIGKILL`.
    pub grace: Duration,
}

/// What a command did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandOutput {
    /// The exit code; `None` when the script was killed by a signal (or never reported one).
    pub exit_status: Option<i32>,
    /// Standard output, lossy UTF-8, at most [`OUTPUT_CAP_BYTES`] of its end plus a note of the cut.
    pub stdout: String,
    /// Standard error, the same way, without the process group line.
    pub stderr: String,
    /// The timeout expired and the command was stopped.
    pub timed_out: bool,
    /// Wall-clock time from start to end (including any kill).
    pub duration: Duration,
}

impl CommandOutput {
    /// Whether the script ran to the end and exited 0.
    pub fn success(&self) -> bool {
        self.exit_status == Some(0) && !self.timed_out
    }
}

/// A chunk of live output, for progress display: whole lines where possible.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutputChunk {
    /// Standard output.
    Stdout(String),
    /// Standard error.
    Stderr(String),
}

/// How commands reach a node.
#[derive(Debug)]
pub enum Transport {
    /// Over SSH.
    Ssh(ssh::SshTransport),
    /// On this machine.
    Local(local::LocalTransport),
}

/// Why a transport could not do what it was asked.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// The node's host key is unknown or has changed; etcdrill never accepts a key by itself.
    #[error("host key check failed for {host}: {detail}")]
    HostKey {
        /// The node, as `name (user@address:port)`.
        host: String,
        /// What was wrong and how to check the fingerprint.
        detail: String,
    },
    /// The node could not be reached or refused the login.
    #[error("cannot reach {host}: {detail}")]
    Unreachable {
        /// The node.
        host: String,
        /// Which failure: refused, timed out, no route, name resolution, authentication.
        detail: String,
    },
    /// A local file or process operation failed.
    #[error("failed to {what}")]
    Io {
        /// What was being done, e.g. `open /x/snap.db`.
        what: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The connection or the remote side failed while running a command or copying a file.
    #[error("{host}: {detail}")]
    Remote {
        /// The node.
        host: String,
        /// What failed.
        detail: String,
    },
}

impl TransportError {
    fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> TransportError {
        let what = what.into();
        move |source| TransportError::Io { what, source }
    }
}

impl Transport {
    /// Connects to a node as its inventory says (SSH: one multiplexed master connection, strict
    /// host key checking) or returns the local transport.
    pub async fn connect(node: &crate::inventory::Node) -> Result<Transport, TransportError> {
        match node.transport {
            crate::inventory::TransportKind::Ssh => {
                Ok(Transport::Ssh(ssh::SshTransport::connect(node).await?))
            }
            crate::inventory::TransportKind::Local => Ok(Transport::local()),
        }
    }

    /// The transport that runs commands on this machine.
    pub fn local() -> Transport {
        Transport::Local(local::LocalTransport::new())
    }

    /// Runs a POSIX sh script (fed on stdin to `sh -s`, never put on a command line), streaming
    /// chunks to `live` if given; on timeout kills the whole remote process group (SIGTERM,
    /// grace, SIGKILL) and returns `timed_out = true`.
    pub async fn run(
        &self,
        request: &CommandRequest<'_>,
        live: Option<&UnboundedSender<OutputChunk>>,
    ) -> Result<CommandOutput, TransportError> {
        let started = Instant::now();
        let argv = with_sudo(request.sudo, &["sh", "-s"]);
        let proc = self.spawn(&argv).await?;
        let Proc {
            mut stdin,
            stdout,
            stderr,
            exit,
        } = proc;
        let pgid = GroupId::default();
        let mut out = Capture::new(live.map(|l| (l, Stream::Stdout)));
        let mut err = Capture::new(live.map(|l| (l, Stream::Stderr)));
        let mut guard = KillOnDrop::new(self.killer(), &pgid, request.sudo, request.grace);
        let body = script_body(request.script);
        let stderr_ended = Notify::new();
        let (status, timed_out, note) = {
            let (body, group, ended) = (&body, &pgid, &stderr_ended);
            let feed = async move {
                feed_after_group(&mut stdin, body, group, ended).await;
                drop(stdin);
            };
            let errors = async {
                let result = pump(stderr, &mut err, Some(&pgid)).await;
                stderr_ended.notify_one();
                result
            };
            let work = async {
                let (_, r1, r2) = tokio::join!(feed, pump(stdout, &mut out, None), errors);
                let status = exit.await;
                r1.and(r2)
                    .map_err(|e| self.remote(format!("reading output failed: {e}")))?;
                status
            };
            let supervised = supervise(
                &self.killer(),
                &pgid,
                request.sudo,
                request.timeout,
                request.grace,
                work,
            )
            .await;
            guard.disarm();
            supervised
        };
        let exit_status = match status {
            Some(result) => result?,
            None => None,
        };
        let mut stderr = err.finish("stderr");
        if let Some(note) = note {
            stderr.push_str(&note);
        }
        Ok(CommandOutput {
            exit_status,
            stdout: out.finish("stdout"),
            stderr,
            timed_out,
            duration: started.elapsed(),
        })
    }

    /// Closes the master connection.
    pub async fn close(self) -> Result<(), TransportError> {
        match self {
            Transport::Ssh(ssh) => ssh.close().await,
            Transport::Local(_) => Ok(()),
        }
    }

    /// `ssh root@10.0.0.11:22` / `local`, for messages.
    pub fn describe(&self) -> String {
        match self {
            Transport::Ssh(ssh) => ssh.describe(),
            Transport::Local(_) => "local".into(),
        }
    }

    async fn spawn(&self, argv: &[String]) -> Result<Proc<'_>, TransportError> {
        match self {
            Transport::Ssh(ssh) => ssh.spawn(argv).await,
            Transport::Local(local) => local.spawn(argv).await,
        }
    }

    fn killer(&self) -> Killer {
        match self {
            Transport::Ssh(ssh) => ssh.killer(),
            Transport::Local(_) => Killer::Local,
        }
    }

    fn remote(&self, detail: String) -> TransportError {
        TransportError::Remote {
            host: self.describe(),
            detail,
        }
    }
}

/// A started command: its standard streams and its exit code (`None`: killed by a signal).
pub(crate) struct Proc<'a> {
    pub(crate) stdin: Pin<Box<dyn AsyncWrite + Send + 'a>>,
    pub(crate) stdout: Pin<Box<dyn AsyncRead + Send + 'a>>,
    pub(crate) stderr: Pin<Box<dyn AsyncRead + Send + 'a>>,
    pub(crate) exit: Pin<Box<dyn Future<Output = Result<Option<i32>, TransportError>> + Send + 'a>>,
}

/// `argv` behind `sudo -n` when asked.
fn with_sudo(sudo: bool, argv: &[&str]) -> Vec<String> {
    let prefix: &[&str] = if sudo { &["sudo", "-n", "--"] } else { &[] };
    prefix.iter().chain(argv).map(|s| s.to_string()).collect()
}
