//! The test bed's error type.

use std::path::PathBuf;
use std::time::Duration;

/// Everything that can go wrong while starting, using or tearing down a test bed.
#[derive(Debug, thiserror::Error)]
pub enum BedError {
    /// The machine cannot host a test bed (not root, a tool or an etcd binary is missing, ...).
    #[error("test bed unavailable: {reason}")]
    Unavailable {
        /// What is missing, and how to fix it.
        reason: String,
    },
    /// The [`BedConfig`](crate::BedConfig) asks for something the bed cannot do.
    #[error("invalid test bed configuration: {0}")]
    Config(String),
    /// A program could not be started at all.
    #[error("failed to run `{command}`")]
    Spawn {
        /// The program and its arguments.
        command: String,
        /// Why it could not be started.
        #[source]
        source: std::io::Error,
    },
    /// A program ran and failed.
    #[error("`{command}` failed ({status}): {stderr}")]
    Command {
        /// The program and its arguments (or the shell script).
        command: String,
        /// How it ended, e.g. `exit status: 1`.
        status: String,
        /// Its standard error, trimmed.
        stderr: String,
    },
    /// A file or directory of the bed could not be read or written.
    #[error("failed to {action} {}", path.display())]
    Io {
        /// What was being done, e.g. "write".
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A condition did not become true before its deadline.
    #[error("timed out after {waited:?} waiting for {what}; last state: {last}")]
    Timeout {
        /// The condition that was awaited.
        what: String,
        /// How long it was awaited.
        waited: Duration,
        /// The last observed state, with log excerpts where they help.
        last: String,
    },
    /// Output of a program could not be understood.
    #[error("unexpected output from {what}: {detail}")]
    Parse {
        /// The program or file whose output was parsed.
        what: String,
        /// What was wrong with it.
        detail: String,
    },
    /// Every bed slot on this machine is taken by a live bed.
    #[error("no free test bed slot: all {0} slots are used by running beds")]
    NoFreeSlot(u16),
}

impl BedError {
    /// Wraps an I/O error on `path`.
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> BedError {
        let path = path.into();
        move |source| BedError::Io {
            action,
            path,
            source,
        }
    }
}
