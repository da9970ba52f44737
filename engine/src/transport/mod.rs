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

#[cfg(test)]
mod sshd_harness;
#[cfg(test)]
mod tests;

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::OnceLock;

use std::time::{Duration, Instant};
use tokio::sync::Notify;

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::sync::mpsc::UnboundedSender;

use crate::render::shell_quote;
use crate::transfer::{Metered, TransferMeter};

/// The most bytes of stdout, and of stderr, a [`CommandOutput`] keeps: the end, where errors are.
pub const OUTPUT_CAP_BYTES: usize = 1 << 20;

/// The tag of the first stderr line every script prints: its process group id.
pub const PGID_TAG: &str = "ETCDRILL-PGID ";

/// How long push and pull wait between `SIGTERM` and `SIGKILL` after their timeout.
const COPY_GRACE: Duration = Duration::from_secs(3);

/// How long to wait for a killed command's streams to close before giving up on it.
const REAP_TIMEOUT: Duration = Duration::from_secs(5);

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

    /// Streams a local file to `remote` (written to `remote.WRITER.part`, fsync'd, renamed),
    /// creating parent dirs, counting the bytes sent on `meter`; returns bytes copied. `writer`
    /// names this copy (the run and the node), so that nodes sharing a directory (one NFS backup
    /// dir) never write the same temporary file.
    pub async fn push(
        &self,
        local: &Path,
        remote: &str,
        writer: &str,
        sudo: bool,
        timeout: Duration,
        meter: &TransferMeter,
    ) -> Result<u64, TransportError> {
        let file = tokio::fs::File::open(local)
            .await
            .map_err(TransportError::io(format!("open {}", local.display())))?;
        let expected = file
            .metadata()
            .await
            .map_err(TransportError::io(format!("stat {}", local.display())))?
            .len();
        meter.set_total(expected);
        let argv = with_sudo(sudo, &["sh", "-c", &push_script(remote, writer, expected)]);
        let Proc {
            mut stdin,
            mut stdout,
            stderr,
            exit,
        } = self.spawn(&argv).await?;
        let pgid = GroupId::default();
        let mut err = Capture::new(None);
        let mut reply = Vec::new();
        let mut guard = KillOnDrop::new(self.killer(), &pgid, sudo, COPY_GRACE);
        let (result, timed_out, _) = {
            let feed = async move {
                let mut reader = BufReader::with_capacity(256 * 1024, Metered::new(file, meter));
                let sent = tokio::io::copy_buf(&mut reader, &mut stdin).await;
                let _ = stdin.shutdown().await;
                drop(stdin);
                sent
            };
            let mut stdout = (&mut stdout).take(4096);
            let work = async {
                let (sent, _, _) = tokio::join!(
                    feed,
                    stdout.read_to_end(&mut reply),
                    pump(stderr, &mut err, Some(&pgid))
                );
                (sent, exit.await)
            };
            let supervised =
                supervise(&self.killer(), &pgid, sudo, timeout, COPY_GRACE, work).await;
            guard.disarm();
            supervised
        };
        let stderr = err.finish("stderr");
        let what = format!("push {} to {remote}", local.display());
        let Some((sent, status)) = result.filter(|_| !timed_out) else {
            return Err(self.remote(format!(
                "{what} timed out after {timeout:?}{}",
                tail(&stderr)
            )));
        };
        let status = status?;
        if status != Some(0) {
            return Err(self.remote(format!(
                "{what} failed ({}){}",
                exit_text(status),
                tail(&stderr)
            )));
        }
        let sent = sent.map_err(TransportError::io(format!("stream {}", local.display())))?;
        if sent != expected {
            return Err(TransportError::Io {
                what: format!("{what}: the file changed size while it was read"),
                source: std::io::Error::other(format!("expected {expected} bytes, read {sent}")),
            });
        }
        let landed = String::from_utf8_lossy(&reply).trim().parse::<u64>().ok();
        if landed != Some(expected) {
            return Err(self.remote(format!(
                "{what}: the remote side reports {} bytes, {expected} were sent",
                String::from_utf8_lossy(&reply).trim()
            )));
        }
        Ok(sent)
    }

    /// Streams a remote file to `local` (same `.WRITER.part` + fsync + rename discipline on the
    /// controller), creating parent dirs, counting the bytes received on `meter`; returns bytes
    /// copied.
    pub async fn pull(
        &self,
        remote: &str,
        local: &Path,
        writer: &str,
        sudo: bool,
        timeout: Duration,
        meter: &TransferMeter,
    ) -> Result<u64, TransportError> {
        let what = format!("pull {remote} to {}", local.display());
        let part = part_path(local, writer);
        if let Some(parent) = local.parent().filter(|p| !p.as_os_str().is_empty()) {
            tokio::fs::create_dir_all(parent)
                .await
                .map_err(TransportError::io(format!("create {}", parent.display())))?;
        }
        let file = tokio::fs::File::create(&part)
            .await
            .map_err(TransportError::io(format!("create {}", part.display())))?;
        let argv = with_sudo(sudo, &["sh", "-c", &pull_script(remote)]);
        let proc = match self.spawn(&argv).await {
            Ok(proc) => proc,
            Err(e) => {
                let _ = tokio::fs::remove_file(&part).await;
                return Err(e);
            }
        };
        let Proc {
            stdin,
            stdout,
            stderr,
            exit,
        } = proc;
        drop(stdin);
        let pgid = GroupId::default();
        let mut err = Capture::new(None);
        let mut guard = KillOnDrop::new(self.killer(), &pgid, sudo, COPY_GRACE);
        let (result, timed_out, _) = {
            let receive = async move {
                let mut reader = BufReader::with_capacity(256 * 1024, stdout);
                let mut header = Vec::new();
                (&mut reader)
                    .take(64)
                    .read_until(b'\n', &mut header)
                    .await?;
                if let Ok(announced) = String::from_utf8_lossy(&header).trim().parse() {
                    meter.set_total(announced);
                }
                let mut file = Metered::new(file, meter);
                let received = tokio::io::copy_buf(&mut reader, &mut file).await?;
                file.into_inner().sync_all().await?;
                Ok::<_, std::io::Error>((header, received))
            };
            let work = async {
                let (received, _) = tokio::join!(receive, pump(stderr, &mut err, Some(&pgid)));
                (received, exit.await)
            };
            let supervised =
                supervise(&self.killer(), &pgid, sudo, timeout, COPY_GRACE, work).await;
            guard.disarm();
            supervised
        };
        let stderr = err.finish("stderr");
        let checked = (|| {
            let Some((received, status)) = result.filter(|_| !timed_out) else {
                return Err(self.remote(format!(
                    "{what} timed out after {timeout:?}{}",
                    tail(&stderr)
                )));
            };
            let status = status?;
            if status != Some(0) {
                return Err(self.remote(format!(
                    "{what} failed ({}){}",
                    exit_text(status),
                    tail(&stderr)
                )));
            }
            let (header, received) =
                received.map_err(TransportError::io(format!("write {}", part.display())))?;
            let announced = String::from_utf8_lossy(&header).trim().parse::<u64>().ok();
            if announced != Some(received) {
                return Err(self.remote(format!(
                    "{what}: the remote side announced {} bytes, {received} arrived",
                    String::from_utf8_lossy(&header).trim()
                )));
            }
            Ok(received)
        })();
        let received = match checked {
            Ok(received) => received,
            Err(e) => {
                let _ = tokio::fs::remove_file(&part).await;
                return Err(e);
            }
        };
        tokio::fs::rename(&part, local)
            .await
            .map_err(TransportError::io(format!(
                "rename {} to {}",
                part.display(),
                local.display()
            )))?;
        sync_parent(local).await?;
        Ok(received)
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

/// `argv` behind `sudo -n` when asked.
fn with_sudo(sudo: bool, argv: &[&str]) -> Vec<String> {
    let prefix: &[&str] = if sudo { &["sudo", "-n", "--"] } else { &[] };
    prefix.iter().chain(argv).map(|s| s.to_string()).collect()
}

/// The prologue that reports the shell's process group id as the first line of stderr.
fn prologue() -> String {
    format!(
        "if [ -r /proc/$$/stat ]; then read -r _ _ _ _ __etcdrill_pgid _ </proc/$$/stat; \
         else __etcdrill_pgid=$(ps -o pgid= -p $$); fi; \
         printf '{PGID_TAG}%s\\n' $__etcdrill_pgid >&2; unset __etcdrill_pgid\n"
    )
}

/// The script as `sh -s` receives it after the prologue: parsed whole, with stdin empty.
fn script_body(script: &str) -> String {
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
async fn feed_after_group<W: AsyncWrite + Unpin>(
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

/// The remote side of a push: data on stdin into `remote.WRITER.part`, checked, fsync'd, renamed;
/// prints the size that landed.
fn push_script(remote: &str, writer: &str, expected: u64) -> String {
    format!(
        "{prologue}set -e\n\
         f={file}\n\
         p={part}\n\
         d=$(dirname -- \"$f\")\n\
         mkdir -p -- \"$d\"\n\
         trap 'rm -f -- \"$p\"' EXIT\n\
         cat > \"$p\"\n\
         n=$(wc -c < \"$p\")\n\
         if [ \"$n\" -ne {expected} ]; then echo \"etcdrill: received $n of {expected} bytes\" >&2; exit 1; fi\n\
         sync -- \"$p\" 2>/dev/null || sync\n\
         mv -f -- \"$p\" \"$f\"\n\
         trap - EXIT\n\
         sync -- \"$d\" 2>/dev/null || :\n\
         wc -c < \"$f\"\n",
        prologue = prologue(),
        file = shell_quote(remote),
        part = shell_quote(&part_name(remote, writer)),
    )
}

/// The remote side of a pull: the size on the first line of stdout, then the bytes.
fn pull_script(remote: &str) -> String {
    format!(
        "{prologue}set -e\n\
         f={file}\n\
         if [ ! -f \"$f\" ] || [ ! -r \"$f\" ]; then echo \"etcdrill: $f is not a readable file\" >&2; exit 1; fi\n\
         n=$(wc -c < \"$f\")\n\
         printf '%s\\n' $n\n\
         exec cat -- \"$f\"\n",
        prologue = prologue(),
        file = shell_quote(remote),
    )
}

/// `writer` as a file name part: every character outside `[A-Za-z0-9._-]` becomes `_`.
fn writer_tag(writer: &str) -> String {
    writer
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The temporary name a copy to `path` is written under: `PATH.WRITER.part`, unique per writer.
fn part_name(path: &str, writer: &str) -> String {
    format!("{path}.{}.part", writer_tag(writer))
}

/// `path` with `.WRITER.part` appended to its file name.
fn part_path(path: &Path, writer: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".{}.part", writer_tag(writer)));
    PathBuf::from(name)
}

/// fsyncs the directory holding `path`, so that a rename into it is durable.
async fn sync_parent(path: &Path) -> Result<(), TransportError> {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    };
    let dir = tokio::fs::File::open(&parent)
        .await
        .map_err(TransportError::io(format!("open {}", parent.display())))?;
    dir.sync_all()
        .await
        .map_err(TransportError::io(format!("fsync {}", parent.display())))
}

fn exit_text(status: Option<i32>) -> String {
    match status {
        Some(code) => format!("exit status {code}"),
        None => "killed by a signal".into(),
    }
}

/// The last lines of stderr, for an error message.
fn tail(stderr: &str) -> String {
    let text = stderr.trim();
    if text.is_empty() {
        return String::new();
    }
    let start = text.len().saturating_sub(2000);
    let start = (start..=text.len())
        .find(|&i| text.is_char_boundary(i))
        .unwrap_or(0);
    format!(": {}", &text[start..])
}

/// The process group id a command reported, set once by the stderr reader.
#[derive(Debug, Default)]
struct GroupId {
    value: OnceLock<i32>,
    reported: Notify,
}

impl GroupId {
    fn get(&self) -> Option<i32> {
        self.value.get().copied()
    }

    fn set(&self, group: i32) {
        if self.value.set(group).is_ok() {
            // Every waiter wakes: the feed (to send the script) and the supervisor (to signal).
            self.reported.notify_waiters();
        }
    }

    /// Waits until the group is known; any number of tasks may wait.
    async fn wait(&self) -> i32 {
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
async fn supervise<T>(
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
                    "\n[etcdrill: timed out after {timeout:?}; the command never reported its process group, so it may still be running]\n"
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
struct KillOnDrop<'a> {
    killer: Option<Killer>,
    pgid: &'a GroupId,
    sudo: bool,
    grace: Duration,
}

impl<'a> KillOnDrop<'a> {
    fn new(killer: Killer, pgid: &'a GroupId, sudo: bool, grace: Duration) -> Self {
        Self {
            killer: Some(killer),
            pgid,
            sudo,
            grace,
        }
    }

    fn disarm(&mut self) {
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

/// Which stream a capture reads.
#[derive(Debug, Clone, Copy)]
enum Stream {
    Stdout,
    Stderr,
}

/// Collects one output stream: the tail for the result, whole-line chunks for `live`, and (on
/// stderr) the process group line taken out.
struct Capture<'l> {
    tail: TailBuffer,
    lines: LineSplitter,
    live: Option<(&'l UnboundedSender<OutputChunk>, Stream)>,
    tag: TagFilter,
}

impl<'l> Capture<'l> {
    fn new(live: Option<(&'l UnboundedSender<OutputChunk>, Stream)>) -> Self {
        Self {
            tail: TailBuffer::new(OUTPUT_CAP_BYTES),
            lines: LineSplitter::default(),
            live,
            tag: TagFilter::default(),
        }
    }

    fn accept(&mut self, bytes: &[u8]) {
        self.tail.push(bytes);
        if let Some((sender, stream)) = self.live {
            if let Some(chunk) = self.lines.push(bytes) {
                let _ = sender.send(match stream {
                    Stream::Stdout => OutputChunk::Stdout(chunk),
                    Stream::Stderr => OutputChunk::Stderr(chunk),
                });
            }
        }
    }

    fn finish(mut self, name: &str) -> String {
        let rest = self.tag.finish();
        self.accept(&rest);
        if let Some((sender, stream)) = self.live {
            if let Some(chunk) = self.lines.finish() {
                let _ = sender.send(match stream {
                    Stream::Stdout => OutputChunk::Stdout(chunk),
                    Stream::Stderr => OutputChunk::Stderr(chunk),
                });
            }
        }
        self.tail.into_string(name)
    }
}

/// Reads a stream to its end into `capture`, taking out the process group line if `pgid` is given.
async fn pump(
    mut reader: Pin<Box<dyn AsyncRead + Send + '_>>,
    capture: &mut Capture<'_>,
    pgid: Option<&GroupId>,
) -> std::io::Result<()> {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = reader.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        match pgid {
            Some(pgid) => {
                let passed = capture.tag.push(&buf[..n], pgid);
                capture.accept(&passed);
            }
            None => capture.accept(&buf[..n]),
        }
    }
}

/// Finds the tagged process group line among the first lines of stderr and removes it.
#[derive(Debug, Default)]
struct TagFilter {
    pending: Vec<u8>,
    done: bool,
}

impl TagFilter {
    /// Give up looking after this many bytes without the tag.
    const LIMIT: usize = 64 * 1024;

    /// Takes in bytes, returns what passes through.
    fn push(&mut self, bytes: &[u8], pgid: &GroupId) -> Vec<u8> {
        if self.done {
            return bytes.to_vec();
        }
        self.pending.extend_from_slice(bytes);
        let mut passed = Vec::new();
        let mut start = 0;
        while let Some(end) = self.pending[start..].iter().position(|&b| b == b'\n') {
            let line = &self.pending[start..start + end + 1];
            start += end + 1;
            if let Some(rest) = line.strip_prefix(PGID_TAG.as_bytes()) {
                if let Some(group) = std::str::from_utf8(rest)
                    .ok()
                    .and_then(|s| s.trim().parse::<i32>().ok())
                    .filter(|&g| g > 1)
                {
                    pgid.set(group);
                }
                self.done = true;
                passed.extend_from_slice(&self.pending[start..]);
                self.pending.clear();
                return passed;
            }
            passed.extend_from_slice(line);
        }
        self.pending.drain(..start);
        if self.pending.len() > Self::LIMIT {
            self.done = true;
            passed.append(&mut self.pending);
        }
        passed
    }

    /// What is left at the end of the stream.
    fn finish(&mut self) -> Vec<u8> {
        self.done = true;
        std::mem::take(&mut self.pending)
    }
}

/// Keeps the last `cap` bytes of a stream and counts what was cut.
#[derive(Debug)]
struct TailBuffer {
    cap: usize,
    bytes: Vec<u8>,
    cut: u64,
}

impl TailBuffer {
    fn new(cap: usize) -> Self {
        Self {
            cap,
            bytes: Vec::new(),
            cut: 0,
        }
    }

    fn push(&mut self, data: &[u8]) {
        if data.len() >= self.cap {
            self.cut += (self.bytes.len() + data.len() - self.cap) as u64;
            self.bytes.clear();
            self.bytes.extend_from_slice(&data[data.len() - self.cap..]);
            return;
        }
        self.bytes.extend_from_slice(data);
        // Compact only when twice the cap is reached, so that trimming stays amortised O(1).
        if self.bytes.len() >= 2 * self.cap {
            let excess = self.bytes.len() - self.cap;
            self.bytes.drain(..excess);
            self.cut += excess as u64;
        }
    }

    /// Lossy UTF-8 of the kept end, starting at a character boundary, with a note of the cut.
    fn into_string(mut self, name: &str) -> String {
        if self.bytes.len() > self.cap {
            let excess = self.bytes.len() - self.cap;
            self.bytes.drain(..excess);
            self.cut += excess as u64;
        }
        if self.cut == 0 {
            return String::from_utf8_lossy(&self.bytes).into_owned();
        }
        // Skip a character the cut went through (at most 3 continuation bytes).
        let skip = self
            .bytes
            .iter()
            .take(3)
            .take_while(|&&b| b & 0xC0 == 0x80)
            .count();
        format!(
            "[etcdrill: the first {} bytes of {name} were cut]\n{}",
            self.cut + skip as u64,
            String::from_utf8_lossy(&self.bytes[skip..])
        )
    }
}

/// Turns a byte stream into chunks of whole lines (lossy UTF-8); a line longer than
/// [`LineSplitter::MAX_PENDING`] is sent in pieces cut at character boundaries.
#[derive(Debug, Default)]
struct LineSplitter {
    pending: Vec<u8>,
}

impl LineSplitter {
    const MAX_PENDING: usize = 8 * 1024;

    fn push(&mut self, bytes: &[u8]) -> Option<String> {
        self.pending.extend_from_slice(bytes);
        let end = match self.pending.iter().rposition(|&b| b == b'\n') {
            Some(i) => i + 1,
            None if self.pending.len() >= Self::MAX_PENDING => {
                match std::str::from_utf8(&self.pending) {
                    Ok(_) => self.pending.len(),
                    // Keep an incomplete character at the end for the next push.
                    Err(e) if e.error_len().is_none() && e.valid_up_to() > 0 => e.valid_up_to(),
                    Err(_) => self.pending.len(),
                }
            }
            None => return None,
        };
        let chunk: Vec<u8> = self.pending.drain(..end).collect();
        Some(String::from_utf8_lossy(&chunk).into_owned())
    }

    fn finish(&mut self) -> Option<String> {
        if self.pending.is_empty() {
            return None;
        }
        let chunk = std::mem::take(&mut self.pending);
        Some(String::from_utf8_lossy(&chunk).into_owned())
    }
}
