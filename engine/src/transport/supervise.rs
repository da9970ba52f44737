//! Supervising a running command by its process group: the prologue that reports the group, feeding
//! the script only once the group is known, the timeout (`SIGTERM`, grace, `SIGKILL`), and the kill
//! when a run is dropped.

use std::future::Future;
use std::sync::OnceLock;
use std::time::Duration;

use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::Notify;

use super::{PGID_TAG, local, ssh};

/// How long to wait for a killed command's streams to close before giving up on it.
const REAP_TIMEOUT: Duration = Duration::from_secs(5);
/// A signal for a process group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Signal {
    Term,
    Kill,
}

impl Signal {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Signal::Term => "TERM",
            Signal::Kill => "KILL",
        }
    }
}

/// Sends signals to a process group on the transport's host; cheap to clone into a task.
#[derive(Clone)]
pub(crate) enum Killer {
    Ssh(ssh::SshKiller),
    Local,
}

impl Killer {
    async fn signal(&self, pgid: i32, signal: Signal, sudo: bool) {
        // The group id comes from the remote shell: never let 0, 1 or garbage become `kill -- -1`.
        if pgid <= 1 {
            return;
        }
        match self {
            Killer::Ssh(ssh) => ssh.signal(pgid, signal, sudo).await,
            Killer::Local => local::signal(pgid, signal, sudo).await,
        }
    }
}

/// The prologue that reports the shell's process group id as the first line of stderr.
pub(super) fn prologue() -> String {
    format!(
        "if [ -r /proc/$$/stat ]; then read -r _ _ _ _ __etcdrill_pgid _ </proc/$$/stat; \
         else __etcdrill_pgid=$(ps -o pgid= -p $$); fi; \
         printf '{PGID_TAG}%s\\n' $__etcdrill_pgid >&2; unset __etcdrill_pgid\n"
    )
}

/// The script as `sh -s` receives it after the prologue: parsed whole, with stdin empty.
pub(super) fn script_body(script: &str) -> String {
    let mut text = String::from("{\n");
    text.push_str(script);
    if !script.ends_with('\n') {
        text.push('\n');
    }
    text.push_str("} </dev/null\n");
    text
}

/// Feeds `sh -s`: the prologue, then `body` only once the group line has been read (`pgid` is
/// set); if stderr ends first, the shell is gone and nothing more is sent. Closes stdin after.
pub(super) async fn feed_after_group<W: AsyncWrite + Unpin>(
    stdin: &mut W,
    body: &str,
    pgid: &GroupId,
    stderr_ended: &Notify,
) {
    // A shell that exits early stops reading: a broken pipe is not an error here.
    if stdin.write_all(prologue().as_bytes()).await.is_err() || stdin.flush().await.is_err() {
        return;
    }
    let known = tokio::select! {
        _ = pgid.wait() => true,
        () = stderr_ended.notified() => pgid.get().is_some(),
    };
    if known {
        let _ = stdin.write_all(body.as_bytes()).await;
    }
    let _ = stdin.shutdown().await;
}

/// The process group id a command reported, set once by the stderr reader.
#[derive(Debug, Default)]
pub(super) struct GroupId {
    value: OnceLock<i32>,
    reported: Notify,
}

impl GroupId {
    pub(super) fn get(&self) -> Option<i32> {
        self.value.get().copied()
    }

    pub(super) fn set(&self, group: i32) {
        if self.value.set(group).is_ok() {
            // Every waiter wakes: the feed (to send the script) and the supervisor (to signal).
            self.reported.notify_waiters();
        }
    }

    /// Waits until the group is known; any number of tasks may wait.
    pub(super) async fn wait(&self) -> i32 {
        loop {
            // Registered before the value is checked, so a `set` in between still wakes it.
            let notified = self.reported.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(group) = self.get() {
                return group;
            }
            notified.await;
        }
    }
}

/// Races `work` against `timeout`; on expiry signals the group (TERM, `grace`, KILL) and waits a
/// little for `work` to see the end. Returns its result (if it finished), whether the timeout
/// expired, and a note for stderr when the command could not be confirmed stopped.
pub(super) async fn supervise<T>(
    killer: &Killer,
    pgid: &GroupId,
    sudo: bool,
    timeout: Duration,
    grace: Duration,
    work: impl Future<Output = T>,
) -> (Option<T>, bool, Option<String>) {
    tokio::pin!(work);
    tokio::select! {
        result = &mut work => return (Some(result), false, None),
        _ = tokio::time::sleep(timeout) => {}
    }
    let group = match pgid.get() {
        Some(group) => group,
        // The command may still be starting: give it a moment to report its group.
        None => tokio::select! {
            result = &mut work => return (Some(result), true, None),
            group = pgid.wait() => group,
            _ = tokio::time::sleep(REAP_TIMEOUT) => return (
                None,
                true,
                Some(format!(
                    "\n[etcdrill: timed out after {}; the command never reported its process group, so it may still be running]\n",
                    crate::humanize::limit(timeout)
                )),
            ),
        },
    };
    killer.signal(group, Signal::Term, sudo).await;
    tokio::select! {
        result = &mut work => return (Some(result), true, None),
        _ = tokio::time::sleep(grace) => {}
    }
    killer.signal(group, Signal::Kill, sudo).await;
    tokio::select! {
        result = &mut work => (Some(result), true, None),
        _ = tokio::time::sleep(REAP_TIMEOUT) => (
            None,
            true,
            Some(format!(
                "\n[etcdrill: process group {group} was sent SIGKILL but its output did not close within {REAP_TIMEOUT:?}]\n"
            )),
        ),
    }
}

/// Stops a command's process group when a run is dropped before it ends (cancellation).
pub(super) struct KillOnDrop<'a> {
    killer: Option<Killer>,
    pgid: &'a GroupId,
    sudo: bool,
    grace: Duration,
}

impl<'a> KillOnDrop<'a> {
    pub(super) fn new(killer: Killer, pgid: &'a GroupId, sudo: bool, grace: Duration) -> Self {
        Self {
            killer: Some(killer),
            pgid,
            sudo,
            grace,
        }
    }

    pub(super) fn disarm(&mut self) {
        self.killer = None;
    }
}

impl Drop for KillOnDrop<'_> {
    fn drop(&mut self) {
        let (Some(killer), Some(group)) = (self.killer.take(), self.pgid.get()) else {
            return;
        };
        let (sudo, grace) = (self.sudo, self.grace);
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                killer.signal(group, Signal::Term, sudo).await;
                tokio::time::sleep(grace).await;
                killer.signal(group, Signal::Kill, sudo).await;
            });
        } else if matches!(killer, Killer::Local) && !sudo {
            local::signal_now(group, Signal::Kill);
        }
    }
}
