//! The SSH transport: one multiplexed OpenSSH master per node, through the `openssh` crate.
//!
//! The master is started with strict host key checking (`StrictHostKeyChecking=yes`, batch mode:
//! an unknown or changed key is refused, never added), the inventory's user, port, identity file,
//! jump host and known_hosts file, a connect timeout and keep-alives. Everything the inventory
//! leaves unset falls to `~/.ssh/config`, which ssh reads as usual. The control socket lives in a
//! private (0700) directory under the system temp dir. Every command is a new channel of that
//! master; a failed connection is classified from ssh's own messages (a table of them).

use std::sync::Arc;
use std::time::Duration;

use openssh::{KnownHosts, Session, SessionBuilder, Stdio};

use super::{Proc, Signal, TransportError, with_sudo};
use crate::inventory::{Node, SshSettings};
use crate::render::shell_join;

/// How long ssh may take to open the TCP connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Keep-alive interval; ssh gives up after three unanswered ones.
const SERVER_ALIVE_INTERVAL: Duration = Duration::from_secs(15);
/// How long a `kill` over a second channel may take.
const SIGNAL_TIMEOUT: Duration = Duration::from_secs(10);

/// A connection to one node.
#[derive(Debug)]
pub struct SshTransport {
    session: Arc<Session>,
    /// `user@address:port`, as far as the inventory says.
    target: String,
    /// `node (target)`, for errors.
    host: String,
}

/// Sends signals over a second channel of a transport's master.
#[derive(Debug, Clone)]
pub(crate) struct SshKiller {
    session: Arc<Session>,
}

impl SshTransport {
    /// Starts the master connection to `node`.
    pub async fn connect(node: &Node) -> Result<SshTransport, TransportError> {
        Self::connect_to(&node.name, &node.address, &node.ssh).await
    }

    /// Starts the master connection to a host that is not an inventory node (a backup host):
    /// `name` is how it is shown in errors.
    pub async fn connect_to(
        name: &str,
        address: &str,
        settings: &SshSettings,
    ) -> Result<SshTransport, TransportError> {
        let given = address;
        let address = given
            .strip_prefix('[')
            .and_then(|a| a.strip_suffix(']'))
            .unwrap_or(given);
        let target = target(settings.user.as_deref(), address, settings.port);
        let host = format!("{name} ({target})");
        // ssh would read an address starting with `-` as an option.
        if address.is_empty() || address.starts_with('-') || address.contains(char::is_whitespace) {
            return Err(TransportError::Unreachable {
                host,
                detail: format!("`{given}` is not a host name or address"),
            });
        }
        if let Some(key) = &settings.identity_file {
            let path = expand_home(key);
            if let Err(source) = std::fs::metadata(&path) {
                return Err(TransportError::Io {
                    what: format!("read the identity file {key} of {name}"),
                    source,
                });
            }
        }
        let mut builder = SessionBuilder::default();
        builder
            .known_hosts_check(KnownHosts::Strict)
            .connect_timeout(CONNECT_TIMEOUT)
            .server_alive_interval(SERVER_ALIVE_INTERVAL)
            .control_directory(std::env::temp_dir());
        if let Some(user) = &settings.user {
            builder.user(user.clone());
        }
        if let Some(port) = settings.port {
            builder.port(port);
        }
        if let Some(key) = &settings.identity_file {
            builder.keyfile(expand_home(key));
        }
        if let Some(jump) = &settings.jump_host {
            builder.jump_hosts([jump]);
        }
        if let Some(file) = &settings.known_hosts {
            builder.user_known_hosts_file(expand_home(file));
        }
        let session = builder
            .connect_mux(address)
            .await
            .map_err(|e| connect_error(&host, name, settings, address, e))?;
        Ok(SshTransport {
            session: Arc::new(session),
            target,
            host,
        })
    }

    /// `ssh user@address:port`.
    pub fn describe(&self) -> String {
        format!("ssh {}", self.target)
    }

    /// Whether the master connection is still up.
    pub async fn check(&self) -> Result<(), TransportError> {
        self.session
            .check()
            .await
            .map_err(|e| TransportError::Remote {
                host: self.host.clone(),
                detail: format!("the connection is down: {}", chain(&e)),
            })
    }

    /// Closes the master connection.
    pub async fn close(self) -> Result<(), TransportError> {
        match Arc::try_unwrap(self.session) {
            Ok(session) => session.close().await.map_err(|e| TransportError::Remote {
                host: self.host,
                detail: format!("closing the connection failed: {}", chain(&e)),
            }),
            // A background kill still uses the master; it closes when that ends.
            Err(_) => Ok(()),
        }
    }

    pub(crate) fn killer(&self) -> super::Killer {
        super::Killer::Ssh(SshKiller {
            session: Arc::clone(&self.session),
        })
    }

    /// Starts `argv` (quoted into one command line for the remote login shell) on a new channel.
    pub(crate) async fn spawn(&self, argv: &[String]) -> Result<Proc<'_>, TransportError> {
        let mut child = self
            .session
            .raw_command(shell_join(argv))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .await
            .map_err(|e| TransportError::Remote {
                host: self.host.clone(),
                detail: format!("could not start a command: {}", chain(&e)),
            })?;
        let (Some(stdin), Some(stdout), Some(stderr)) = (
            child.stdin().take(),
            child.stdout().take(),
            child.stderr().take(),
        ) else {
            return Err(TransportError::Remote {
                host: self.host.clone(),
                detail: "the command's standard streams were not set up".into(),
            });
        };
        let session = &self.session;
        let host = &self.host;
        let exit = async move {
            match child.wait().await {
                Ok(status) => Ok(status.code()),
                // openssh turns exit status 127 into an error; it is an ordinary exit here.
                Err(openssh::Error::Remote(e)) if e.kind() == std::io::ErrorKind::NotFound => {
                    Ok(Some(127))
                }
                // Killed by a signal, or the connection dropped: the master tells which.
                Err(openssh::Error::RemoteProcessTerminated) => match session.check().await {
                    Ok(()) => Ok(None),
                    Err(e) => Err(TransportError::Remote {
                        host: host.clone(),
                        detail: format!(
                            "the connection was lost while a command ran ({}); the command may still be running there (without a terminal it gets no hangup): check the node before running the step again",
                            chain(&e)
                        ),
                    }),
                },
                Err(e) => Err(TransportError::Remote {
                    host: host.clone(),
                    detail: format!("the command's channel failed: {}", chain(&e)),
                }),
            }
        };
        Ok(Proc {
            stdin: Box::pin(stdin),
            stdout: Box::pin(stdout),
            stderr: Box::pin(stderr),
            exit: Box::pin(exit),
        })
    }
}

impl SshKiller {
    /// Sends `signal` to the remote process group `pgid`; failures (the group is already gone)
    /// are ignored.
    pub(crate) async fn signal(&self, pgid: i32, signal: Signal, sudo: bool) {
        let group = format!("-{pgid}");
        let argv = with_sudo(sudo, &["kill", "-s", signal.name(), "--", &group]);
        let mut command = self.session.raw_command(shell_join(&argv));
        command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let _ = tokio::time::timeout(SIGNAL_TIMEOUT, command.status()).await;
    }
}

/// `user@address:port`, IPv6 bracketed when a port follows.
fn target(user: Option<&str>, address: &str, port: Option<u16>) -> String {
    let user = user.map(|u| format!("{u}@")).unwrap_or_default();
    match port {
        Some(port) if address.contains(':') => format!("{user}[{address}]:{port}"),
        Some(port) => format!("{user}{address}:{port}"),
        None => format!("{user}{address}"),
    }
}

/// `~/x` as `$HOME/x`, for checking a file exists (ssh expands `~` itself).
fn expand_home(path: &str) -> std::path::PathBuf {
    match (path.strip_prefix("~/"), std::env::var_os("HOME")) {
        (Some(rest), Some(home)) => std::path::Path::new(&home).join(rest),
        _ => path.into(),
    }
}

/// An error and its causes, joined.
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// What kind of failure ssh reported when connecting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Failure {
    /// The node offered a key other than the one recorded.
    HostKeyChanged,
    /// No key is recorded for the node.
    HostKeyUnknown,
    /// Login refused.
    AuthFailed,
    /// TCP connection refused.
    Refused,
    /// TCP connect or handshake timed out.
    TimedOut,
    /// No route or network.
    NoRoute,
    /// The name does not resolve.
    NameResolution,
    /// The server hung up during the handshake.
    Closed,
    /// Anything else.
    Other,
}

/// ssh's messages and what they mean, most specific first: a changed key also says "Host key
/// verification failed".
const FAILURES: &[(&str, Failure)] = &[
    (
        "REMOTE HOST IDENTIFICATION HAS CHANGED",
        Failure::HostKeyChanged,
    ),
    (
        "has changed and you have requested strict checking",
        Failure::HostKeyChanged,
    ),
    ("host key is known for", Failure::HostKeyUnknown),
    ("Host key verification failed", Failure::HostKeyUnknown),
    ("Permission denied", Failure::AuthFailed),
    ("Too many authentication failures", Failure::AuthFailed),
    ("Connection refused", Failure::Refused),
    ("timed out", Failure::TimedOut),
    ("No route to host", Failure::NoRoute),
    ("Network is unreachable", Failure::NoRoute),
    ("Could not resolve hostname", Failure::NameResolution),
    ("Name or service not known", Failure::NameResolution),
    ("Connection closed by", Failure::Closed),
    ("Connection reset", Failure::Closed),
    ("kex_exchange_identification", Failure::Closed),
];

/// Classifies ssh's error output.
pub(crate) fn classify(text: &str) -> Failure {
    FAILURES
        .iter()
        .find(|(needle, _)| text.contains(needle))
        .map_or(Failure::Other, |&(_, failure)| failure)
}

/// Turns a failed master start into an error that says what to do.
fn connect_error(
    host: &str,
    name: &str,
    settings: &SshSettings,
    address: &str,
    error: openssh::Error,
) -> TransportError {
    let io = match error {
        // The ssh binary could not be run, or its log not read: a local problem.
        openssh::Error::Connect(io) | openssh::Error::Master(io) if io.raw_os_error().is_some() => {
            return TransportError::Io {
                what: format!("start ssh for {name}"),
                source: io,
            };
        }
        openssh::Error::Connect(io) => io.to_string(),
        other => chain(&other),
    };
    let ssh_says = ssh_says(&io);
    let port = settings.port;
    let known_hosts = settings.known_hosts.clone().unwrap_or_else(|| {
        "~/.ssh/known_hosts (or the UserKnownHostsFile set in ~/.ssh/config)".into()
    });
    let pattern = match port {
        Some(p) if p != 22 => format!("[{address}]:{p}"),
        _ => address.to_owned(),
    };
    let scan_port = port.map(|p| format!(" -p {p}")).unwrap_or_default();
    let host = host.to_owned();
    let failure = classify(&io);
    let unreachable = |what: String| TransportError::Unreachable {
        host: host.clone(),
        detail: format!("{what}; ssh says: {ssh_says}"),
    };
    match failure {
        Failure::HostKeyUnknown => TransportError::HostKey {
            host,
            detail: format!(
                "no host key for {pattern} is recorded in {known_hosts}, and etcdrill never accepts an \
                 unknown key. Read the key's fingerprint on the node itself (`ssh-keygen -lf \
                 /etc/ssh/ssh_host_ed25519_key.pub` on its console), compare it with `ssh-keyscan{scan_port} \
                 {address} | ssh-keygen -lf -`, and only if they match append the scanned line to \
                 {known_hosts}; ssh says: {ssh_says}"
            ),
        },
        Failure::HostKeyChanged => {
            let offered = io
                .split_whitespace()
                .find(|w| w.starts_with("SHA256:"))
                .map(|f| format!(" The node now offers {f}."))
                .unwrap_or_default();
            let offending = io
                .lines()
                .find(|l| l.contains("Offending"))
                .map(|l| format!(" ({})", l.trim()))
                .unwrap_or_default();
            TransportError::HostKey {
                host,
                detail: format!(
                    "the host key of {pattern} is NOT the one recorded in {known_hosts}{offending}: the \
                     node was reinstalled, or someone is intercepting the connection.{offered} Check the \
                     fingerprint on the node itself (`ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub` \
                     on its console); only if it matches, remove the old entry with `ssh-keygen -R \
                     '{pattern}' -f {known_hosts}` and record the new key"
                ),
            }
        }
        Failure::AuthFailed => unreachable(format!(
            "authentication failed: the server did not accept {} for user {}",
            settings
                .identity_file
                .as_deref()
                .map_or("any offered key".to_owned(), |k| format!("the key {k}")),
            settings.user.as_deref().unwrap_or("(from ~/.ssh/config)")
        )),
        Failure::Refused => unreachable(format!(
            "connection refused: nothing listens on port {} or a firewall rejects it",
            port.map_or("22 (or the one in ~/.ssh/config)".to_owned(), |p| p.to_string())
        )),
        Failure::TimedOut => unreachable(format!(
            "connection timed out (limit {CONNECT_TIMEOUT:?}): the host is down, the address is wrong, or a firewall drops packets"
        )),
        Failure::NoRoute => unreachable("no route to the host".into()),
        Failure::NameResolution => unreachable("the host name does not resolve".into()),
        Failure::Closed => unreachable(
            "the server closed the connection during the handshake (sshd refusing connections, MaxStartups, or a jump host failing)".into(),
        ),
        Failure::Other => unreachable("ssh could not connect".into()),
    }
}

/// The meaningful lines of ssh's log, joined on one line.
fn ssh_says(log: &str) -> String {
    let lines: Vec<&str> = log
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.chars().all(|c| c == '@'))
        .collect();
    let start = lines.len().saturating_sub(12);
    let text = lines[start..].join(" / ");
    if text.is_empty() {
        "(nothing)".into()
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ssh_messages_are_classified() {
        let table: &[(&str, Failure)] = &[
            (
                "No ED25519 host key is known for [127.0.0.1]:2222 and you have requested strict checking.\r\nHost key verification failed.",
                Failure::HostKeyUnknown,
            ),
            ("Host key verification failed.", Failure::HostKeyUnknown),
            (
                "@@@@@@@@@@@\n@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @\nThe fingerprint for the ED25519 key sent by the remote host is\nSHA256:abc.\nOffending ED25519 key in /k:1\nHost key for [127.0.0.1]:2222 has changed and you have requested strict checking.\nHost key verification failed.",
                Failure::HostKeyChanged,
            ),
            (
                "ssh: connect to host 127.0.0.1 port 1: Connection refused",
                Failure::Refused,
            ),
            (
                "ssh: connect to host 10.9.9.9 port 22: Connection timed out",
                Failure::TimedOut,
            ),
            (
                "Connection timed out during banner exchange",
                Failure::TimedOut,
            ),
            (
                "root@127.0.0.1: Permission denied (publickey).",
                Failure::AuthFailed,
            ),
            (
                "Received disconnect from 1.2.3.4 port 22:2: Too many authentication failures",
                Failure::AuthFailed,
            ),
            (
                "ssh: connect to host 10.0.0.1 port 22: No route to host",
                Failure::NoRoute,
            ),
            (
                "ssh: connect to host 10.0.0.1 port 22: Network is unreachable",
                Failure::NoRoute,
            ),
            (
                "ssh: Could not resolve hostname nope: Name or service not known",
                Failure::NameResolution,
            ),
            (
                "kex_exchange_identification: Connection closed by remote host",
                Failure::Closed,
            ),
            ("something new", Failure::Other),
        ];
        for (text, expected) in table {
            assert_eq!(classify(text), *expected, "{text}");
        }
    }

    #[test]
    fn targets_bracket_ipv6_with_a_port() {
        assert_eq!(
            target(Some("root"), "10.0.0.11", Some(22)),
            "root@10.0.0.11:22"
        );
        assert_eq!(target(None, "fd00::2", Some(2222)), "[fd00::2]:2222");
        assert_eq!(target(Some("a"), "fd00::2", None), "a@fd00::2");
    }

    #[test]
    fn ssh_log_banners_are_dropped() {
        assert_eq!(
            ssh_says("@@@@@\n@ WARNING @\n\nHost key verification failed.\n"),
            "@ WARNING @ / Host key verification failed."
        );
        assert_eq!(ssh_says("\n"), "(nothing)");
    }
}
