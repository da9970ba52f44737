//! The one error type of the command line: what failed, the exit code it means, and how it is
//! shown to a person (causes, and a hint when etcdrill can tell what to do).

use std::error::Error as _;
use std::io;
use std::path::PathBuf;

use crate::diagnostic::Diagnostics;

/// Why a command failed. Every variant means exit code 1; usage errors never get here (clap
/// reports them and exits with 2).
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// A file could not be read.
    #[error("failed to read `{}`", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The inventory file could not be read.
    #[error("failed to read the inventory `{}`", path.display())]
    ReadInventory {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// No run directory by the name given.
    #[error("no run `{run}` in {}", runs.display())]
    NoRun {
        /// The run as given.
        run: String,
        /// Where runs were looked for.
        runs: PathBuf,
        /// The newest runs there, newest first.
        newest: Vec<String>,
    },
    /// A day-2 command names a node the inventory does not have.
    #[error("no node `{node}` in the inventory `{}`", inventory.display())]
    UnknownNode {
        /// The node as given.
        node: String,
        /// The inventory file.
        inventory: PathBuf,
        /// Its nodes.
        nodes: Vec<String>,
    },
    /// A file could not be written.
    #[error("failed to write `{}`", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// Standard output or standard error could not be written.
    #[error("failed to write the output")]
    Output(#[source] io::Error),
    /// The input is invalid; every problem found is listed.
    #[error(transparent)]
    Invalid(#[from] Diagnostics),
    /// The async runtime could not start.
    #[error("failed to start the runtime")]
    Runtime(#[source] io::Error),
    /// A run could not start, or could not go on.
    #[error(transparent)]
    Exec(#[from] crate::exec::ExecError),
    /// A report could not be written.
    #[error("the report could not be written")]
    Report(#[from] crate::report::ReportError),
    /// A sandbox command failed.
    #[error(transparent)]
    Sandbox(#[from] crate::sandbox::SandboxError),
    /// A drill could not be prepared or run.
    #[error(transparent)]
    Drill(#[from] crate::drill::DrillError),
    /// A drill ran and its verdict is not a pass.
    #[error("{verdict}; the report is in {}", dir.display())]
    DrillFailed {
        /// The report's verdict.
        verdict: String,
        /// The run directory.
        dir: PathBuf,
    },
    /// A run ended without succeeding.
    #[error("the run did not succeed ({result:?}); its journal is in {}", dir.display())]
    RunFailed {
        /// How it ended.
        result: crate::journal::RunResult,
        /// Its directory.
        dir: PathBuf,
    },
    /// An etcd call or its configuration failed.
    #[error(transparent)]
    Etcd(#[from] crate::etcd::EtcdError),
    /// Some endpoints are unhealthy or did not answer (the table says which).
    #[error("{unhealthy} of {total} endpoint(s) unhealthy or not answering")]
    Unhealthy {
        /// How many.
        unhealthy: usize,
        /// Of how many.
        total: usize,
        /// Why they most likely did not answer, when a common mistake explains it.
        hint: Option<String>,
    },
    /// `diagnose` found something worse than info (already printed); the exit code says how bad.
    #[error("the worst finding is {}", worst.label())]
    Findings {
        /// The worst severity found.
        worst: crate::diagnose::Severity,
        /// Why endpoints most likely did not answer, when a common mistake explains it.
        hint: Option<String>,
    },
    /// The metrics textfile could not be written.
    #[error(transparent)]
    Metrics(crate::textfile::TextfileError),
    /// A backup copy, listing or prune failed.
    #[error(transparent)]
    Backup(crate::backup::BackupError),
    /// A snapshot file is unsound or unreadable.
    #[error(transparent)]
    Snapshot(#[from] crate::snapshot::SnapshotError),
    /// A snapshot metadata file could not be read or written.
    #[error(transparent)]
    SnapshotMeta(#[from] crate::snapshot::meta::MetaError),
    /// Some files given to `validate` are invalid (their problems were already printed).
    #[error("{failed} of {total} files failed validation")]
    ValidationFailed {
        /// How many failed.
        failed: usize,
        /// How many were given.
        total: usize,
    },
}

impl CliError {
    /// The exit code: `diagnose`'s findings give 3 (warning), 4 (urgent) or 5 (critical); every
    /// other error 1.
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Findings { worst, .. } => worst.exit_code(),
            _ => 1,
        }
    }

    /// The error as shown to a person: diagnostics as they are, anything else as `error: ...`
    /// followed by its causes, one per line.
    pub fn render(&self) -> String {
        let mut text = match self {
            CliError::Invalid(diagnostics)
            | CliError::Drill(crate::drill::DrillError::Invalid(diagnostics)) => {
                diagnostics.to_string()
            }
            CliError::Findings { worst, .. } => format!(
                "diagnose: the worst finding is {} (exit code {})",
                worst.label(),
                worst.exit_code()
            ),
            other => {
                let mut text = format!("error: {other}");
                let mut cause = other.source();
                while let Some(error) = cause {
                    text.push_str(&format!("\n  caused by: {error}"));
                    cause = error.source();
                }
                text
            }
        };
        if let Some(hint) = self.hint() {
            text.push_str(&format!("\n  hint: {hint}"));
        }
        if !text.ends_with('\n') {
            text.push('\n');
        }
        // Paths, names and causes can carry text from input: nothing raw reaches the terminal.
        crate::shown::escape(&text).into_owned()
    }

    /// What to do about the error, when etcdrill can tell.
    fn hint(&self) -> Option<String> {
        match self {
            CliError::ReadInventory { source, .. } if source.kind() == io::ErrorKind::NotFound => {
                Some(
                    "-i names the inventory of the cluster: its nodes, how etcd runs on each and \
                     the client certificate to connect with (docs/runbook-language.md, section 7; \
                     examples in drills/inventories/)"
                        .into(),
                )
            }
            CliError::NoRun { newest, .. } if newest.is_empty() => Some(
                "give the run's directory, or its id with --work-dir set to the work dir the run \
                 used (the inventory's controller.work_dir, if it sets one)"
                    .into(),
            ),
            CliError::NoRun { newest, .. } => Some(format!(
                "the newest runs there: {}; or give the run's directory, or --work-dir for \
                 another work dir",
                newest.join(", ")
            )),
            CliError::Unhealthy { hint, .. } | CliError::Findings { hint, .. } => hint.clone(),
            CliError::UnknownNode { node, nodes, .. } => {
                let closest = nodes
                    .iter()
                    .min_by_key(|n| strsim::levenshtein(n, node))
                    .filter(|n| strsim::levenshtein(n, node) <= 2);
                Some(match closest {
                    Some(near) => format!("did you mean `{near}`? its nodes: {}", nodes.join(", ")),
                    None => format!("its nodes: {}", nodes.join(", ")),
                })
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_show_their_causes() {
        let error = CliError::Read {
            path: "rb.yaml".into(),
            source: io::Error::new(io::ErrorKind::NotFound, "no such file"),
        };
        assert_eq!(
            error.render(),
            "error: failed to read `rb.yaml`\n  caused by: no such file\n"
        );
    }
}
