//! The local transport: runs scripts on the machine etcdrill runs on (the local sandbox).
//!
//! `sh` starts in a process group of its own, so that a timeout or a dropped run stops the script
//! and everything it started with `kill(-pgid)`, exactly as the SSH transport does remotely.

use std::process::Stdio;
use std::time::Duration;

use super::{Proc, Signal, TransportError, with_sudo};

/// How long a `sudo kill` may take.
const SIGNAL_TIMEOUT: Duration = Duration::from_secs(10);

/// Runs commands on this machine.
#[derive(Debug, Clone, Default)]
pub struct LocalTransport {
    _private: (),
}

impl LocalTransport {
    /// The local transport.
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts `argv` in a new process group with piped standard streams.
    pub(crate) async fn spawn(&self, argv: &[String]) -> Result<Proc<'_>, TransportError> {
        let (program, args) = argv.split_first().ok_or_else(|| TransportError::Io {
            what: "start a command".into(),
            source: std::io::Error::new(std::io::ErrorKind::InvalidInput, "empty command"),
        })?;
        let mut child = tokio::process::Command::new(program)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .map_err(TransportError::io(format!("start `{program}`")))?;
        let (Some(stdin), Some(stdout), Some(stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            return Err(TransportError::Io {
                what: format!("set up the standard streams of `{program}`"),
                source: std::io::Error::other("a stream was not piped"),
            });
        };
        let program = program.clone();
        let exit = async move {
            child
                .wait()
                .await
                .map(|status| status.code())
                .map_err(TransportError::io(format!("wait for `{program}`")))
        };
        Ok(Proc {
            stdin: Box::pin(stdin),
            stdout: Box::pin(stdout),
            stderr: Box::pin(stderr),
            exit: Box::pin(exit),
        })
    }
}

/// Sends `signal` to the local process group `pgid`, through `sudo -n kill` when the group runs
/// as root under sudo; failures (the group is already gone) are ignored.
pub(crate) async fn signal(pgid: i32, signal: Signal, sudo: bool) {
    if !sudo {
        signal_now(pgid, signal);
        return;
    }
    let group = format!("-{pgid}");
    let argv = with_sudo(true, &["kill", "-s", signal.name(), "--", &group]);
    let status = tokio::process::Command::new(&argv[0])
        .args(&argv[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .status();
    let _ = tokio::time::timeout(SIGNAL_TIMEOUT, status).await;
}

/// `kill(-pgid, signal)`, now.
pub(crate) fn signal_now(pgid: i32, signal: Signal) {
    if pgid <= 1 {
        return;
    }
    let signo = match signal {
        Signal::Term => libc::SIGTERM,
        Signal::Kill => libc::SIGKILL,
    };
    // SAFETY: kill(2) takes plain integers and touches no memory of ours.
    unsafe {
        libc::kill(-pgid, signo);
    }
}
