//! The command line: its subcommands, their arguments, and the one error type the binary turns
//! into an exit code.
//!
//! `plan`, `validate`, `schema`, `completions` and `man` touch no network and no node: `plan` is
//! a dry run whose only side effect is the file named by `--out`. `run`, `resume` and `rollback`
//! (in `execute`) and the day-2 commands (in `day2`) do; the read commands (in `inspect`) only
//! ask. `-o` means the same everywhere (see `output`).

mod backup;
mod day2;
mod docs;
mod execute;
mod inspect;
mod output;
mod param_source;

use std::error::Error as _;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use clap::{Args, Parser, Subcommand};

use crate::diagnostic::{Diagnostic, DiagnosticSink, Diagnostics};
use crate::document::Document;
use crate::exec::progress::Verbosity;
use crate::format::Format;
use crate::inventory::Cluster;
use crate::plan::{ParamInput, compile};
use crate::runbook::Runbook;
use crate::schema;
use crate::source::{Location, SourceFile};

/// The exit codes, as `--help` and the README show them.
pub const EXIT_CODES: &str = "\
Exit codes:
  0  success; diagnose: nothing worse than info; rollback: every undo it ran succeeded
  1  the command failed: invalid input, a run that did not succeed, an undo that failed, an unhealthy endpoint
  2  usage error: an unknown command, flag or value
  3  diagnose: the worst finding is a warning
  4  diagnose: the worst finding is urgent
  5  diagnose: the worst finding is critical";

/// etcdrill: declarative runbooks for etcd operations and restore drills.
#[derive(Debug, Parser)]
#[command(
    name = "etcdrill",
    version,
    propagate_version = true,
    after_help = EXIT_CODES,
)]
pub struct Cli {
    /// Options of every command.
    #[command(flatten)]
    pub global: GlobalArgs,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command takes.
#[derive(Debug, Clone, Copy, Args)]
pub struct GlobalArgs {
    /// Print only errors and the final result (a run: failed steps and its result).
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// Print more: each step's operation when it starts and its output when it succeeds.
    #[arg(short, long, global = true)]
    pub verbose: bool,
}

impl GlobalArgs {
    /// How much progress to show.
    pub fn verbosity(&self) -> Verbosity {
        match (self.quiet, self.verbose) {
            (true, _) => Verbosity::Quiet,
            (false, true) => Verbosity::Verbose,
            (false, false) => Verbosity::Normal,
        }
    }
}

/// A subcommand.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Compile a runbook against an inventory and print the plan. Touches nothing.
    #[command(after_help = "Examples:
  etcdrill plan runbooks/restore-3-node.yaml -i inventory.yaml -p snapshot=/var/backups/etcd/etcd.db
  etcdrill plan runbooks/defrag-rolling.yaml -i inventory.yaml --format markdown --out plan.md")]
    Plan(PlanArgs),
    /// Check runbook, inventory and drill files (a drill with its inventory and runbook).
    #[command(after_help = "Examples:
  etcdrill validate runbooks/*.yaml drills/*.yaml drills/inventories/*.yaml")]
    Validate(ValidateArgs),
    /// Write the JSON Schemas of runbook, inventory and drill files.
    #[command(after_help = "Examples:
  etcdrill schema --out schemas")]
    Schema(SchemaArgs),
    /// Compile a runbook exactly as `plan` does and execute it against the cluster.
    #[command(after_help = "Examples:
  etcdrill run runbooks/compact.yaml -i inventory.yaml --check
  etcdrill run runbooks/restore-3-node.yaml -i inventory.yaml -p snapshot=/var/backups/etcd/etcd.db --yes
  etcdrill run runbooks/backup.yaml -i inventory.yaml -p copy_to=s3://etcd-backups/prod --yes -o json")]
    Run(execute::RunArgs),
    /// Continue a run whose controller stopped, after its last completed step.
    #[command(after_help = "Examples:
  etcdrill resume 20261126T001500Z-restore-3-node-1a2b3c
  etcdrill resume /srv/etcdrill/runs/20261126T001500Z-restore-3-node-1a2b3c -p token=...")]
    Resume(execute::ResumeArgs),
    /// Undo the completed steps of a failed or stopped run, newest first.
    #[command(after_help = "Examples:
  etcdrill rollback 20261126T001500Z-restore-3-node-1a2b3c")]
    Rollback(execute::RollbackArgs),
    /// Write a run's report again (Markdown, HTML, JSON, JUnit) from its plan and journal.
    #[command(after_help = "Examples:
  etcdrill report 20261126T001500Z-restore-3-node-1a2b3c
  etcdrill report 20261126T001500Z-restore-3-node-1a2b3c --work-dir /srv/etcdrill")]
    Report(execute::ReportArgs),
    /// Restore drills: stage a disaster, recover with a runbook, prove it, report.
    #[command(after_help = "Examples:
  etcdrill drill run drills/restore-3-node.yaml --yes")]
    Drill(execute::DrillArgs),
    /// Start, inspect or remove the local etcd sandbox (no root, no SSH).
    #[command(after_help = "Examples:
  etcdrill sandbox up --members 3
  etcdrill sandbox status
  etcdrill sandbox down")]
    Sandbox(crate::sandbox::cli::SandboxArgs),
    /// Health of each endpoint (a linearizable read and no alarm); exit 1 if any is unhealthy.
    #[command(after_help = "Examples:
  etcdrill health -i inventory.yaml
  etcdrill health --endpoints https://10.0.0.11:2379 --cacert ca.crt --cert client.crt --key client.key -o json")]
    Health(inspect::InspectArgs),
    /// Status of each endpoint: member, version, DB size and size in use, leader, raft indexes.
    #[command(after_help = "Examples:
  etcdrill status -i inventory.yaml
  etcdrill status -i inventory.yaml -w yaml")]
    Status(inspect::InspectArgs),
    /// The member list, learners marked, and active alarms.
    #[command(after_help = "Examples:
  etcdrill members -i inventory.yaml
  etcdrill members -i inventory.yaml -o json")]
    Members(inspect::InspectArgs),
    /// Find what is wrong or at risk and say what to do; exit 0 ok, 3 warning, 4 urgent, 5 critical.
    #[command(after_help = "Examples:
  etcdrill diagnose -i inventory.yaml
  etcdrill diagnose -i inventory.yaml --backups /var/backups/etcd --backups s3://etcd-backups/prod -o json")]
    Diagnose(inspect::DiagnoseArgs),
    /// Save, verify and show snapshots; ship them off the host, list and prune the copies.
    #[command(after_help = "Examples:
  etcdrill snapshot save /var/backups/etcd/etcd.db -i inventory.yaml
  etcdrill snapshot verify /var/backups/etcd/etcd.db
  etcdrill snapshot list s3://etcd-backups/prod --verify")]
    Snapshot(inspect::SnapshotArgs),
    /// List the active alarms, or disarm them (a run with a journal, refusing CORRUPT).
    #[command(after_help = "Examples:
  etcdrill alarm list -i inventory.yaml
  etcdrill alarm disarm -i inventory.yaml")]
    Alarm(day2::AlarmArgs),
    /// Hand leadership to a member and wait until it leads (a run with a journal).
    #[command(after_help = "Examples:
  etcdrill move-leader cp2 -i inventory.yaml")]
    MoveLeader(day2::MoveLeaderArgs),
    /// Defragment one member, refusing the leader and a cluster with a member down (a run).
    #[command(after_help = "Examples:
  etcdrill defrag cp2 -i inventory.yaml
  etcdrill move-leader cp2 -i inventory.yaml && etcdrill defrag cp1 -i inventory.yaml")]
    Defrag(day2::DefragArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    #[command(after_help = "Examples:
  etcdrill completions bash > /etc/bash_completion.d/etcdrill
  etcdrill completions zsh > \"${fpath[1]}/_etcdrill\"
  etcdrill completions fish > ~/.config/fish/completions/etcdrill.fish")]
    Completions(docs::CompletionsArgs),
    /// Print the man page, or write one page per command into a directory.
    #[command(after_help = "Examples:
  etcdrill man | man -l -
  etcdrill man --out /usr/local/share/man/man1")]
    Man(docs::ManArgs),
}

pub use backup::{ListArgs, PruneArgs, ShipArgs};
pub use day2::{AlarmArgs, AlarmCommand, Day2Args, DefragArgs, DisarmArgs, MoveLeaderArgs};
pub use docs::{CompletionsArgs, ManArgs};
pub use execute::{
    DrillArgs, DrillCommand, DrillRunArgs, ExecArgs, MetricsArgs, Output, ProgressArgs, ReportArgs,
    ResumeArgs, RollbackArgs, RunArgs, RunRefArgs, WorkDirArgs,
};
pub use inspect::{
    DiagnoseArgs, InspectArgs, SnapshotArgs, SnapshotCommand, SnapshotFileArgs,
    SnapshotSaveCliArgs, TargetArgs,
};
pub use output::{OutputArgs, OutputFormat};

/// Arguments of `etcdrill plan`.
#[derive(Debug, Args)]
pub struct PlanArgs {
    /// The runbook file.
    pub runbook: PathBuf,
    /// The inventory file of the cluster to plan for.
    #[arg(short, long, value_name = "FILE")]
    pub inventory: PathBuf,
    /// A parameter value; repeat for several.
    #[arg(short = 'p', long = "param", value_name = "NAME=VALUE")]
    pub params: Vec<String>,
    /// Output format (`-o`/`--output` mean the same here as on every command).
    #[arg(
        long,
        short = 'o',
        visible_alias = "output",
        visible_short_alias = 'w',
        value_enum,
        default_value_t = Format::Text
    )]
    pub format: Format,
    /// Write the plan to this file instead of standard output.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

/// Arguments of `etcdrill validate`.
#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// Runbook and inventory files; the kind of each is told from its top-level keys.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
}

/// Arguments of `etcdrill schema`.
#[derive(Debug, Args)]
pub struct SchemaArgs {
    /// The directory to write the schemas into.
    #[arg(long, value_name = "DIR", default_value = "schemas")]
    pub out: PathBuf,
}

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

/// Runs a parsed command line, writing results to `out` and per-file problems to `err`.
pub fn run(cli: Cli, out: &mut dyn Write, err: &mut dyn Write) -> Result<(), CliError> {
    let verbosity = cli.global.verbosity();
    match cli.command {
        Command::Plan(args) => plan(&args, out),
        Command::Validate(args) => validate(&args, out, err),
        Command::Schema(args) => write_schemas(&args, out),
        Command::Run(args) => execute::run(&args, verbosity),
        Command::Resume(args) => execute::resume(&args, verbosity),
        Command::Rollback(args) => execute::rollback(&args, verbosity),
        Command::Report(args) => execute::report(&args, verbosity),
        Command::Drill(args) => execute::drill(&args, verbosity),
        Command::Sandbox(args) => crate::sandbox::cli::run(&args, out).map_err(CliError::from),
        Command::Health(args) => inspect::inspect(inspect::Inspect::Health, &args, out),
        Command::Status(args) => inspect::inspect(inspect::Inspect::Status, &args, out),
        Command::Members(args) => inspect::inspect(inspect::Inspect::Members, &args, out),
        Command::Diagnose(args) => inspect::diagnose(&args, out),
        Command::Snapshot(args) => inspect::snapshot(&args, out),
        Command::Alarm(args) => day2::alarm(&args, verbosity, out),
        Command::MoveLeader(args) => day2::move_leader(&args, verbosity),
        Command::Defrag(args) => day2::defrag(&args, verbosity),
        Command::Completions(args) => docs::completions(&args, out),
        Command::Man(args) => docs::man(&args, out),
    }?;
    out.flush().map_err(CliError::Output)
}

fn plan(args: &PlanArgs, out: &mut dyn Write) -> Result<(), CliError> {
    let (runbook, cluster, inputs) = load_all(&args.runbook, &args.inventory, &args.params)?;
    let plan = compile(&runbook, &cluster, &inputs)?;
    let rendered = args.format.render(&plan);
    match &args.out {
        Some(path) => std::fs::write(path, rendered).map_err(|source| CliError::Write {
            path: path.clone(),
            source,
        }),
        None => out.write_all(rendered.as_bytes()).map_err(CliError::Output),
    }
}

/// Loads a runbook, an inventory and `-p` values, reporting the problems of all three together,
/// as the compiler does.
pub(crate) fn load_all(
    runbook: &Path,
    inventory: &Path,
    params: &[String],
) -> Result<(Document<Runbook>, Cluster, Vec<ParamInput>), CliError> {
    load_with(read(runbook)?, inventory, params)
}

/// Like [`load_all`], with the runbook's text already at hand (a built-in runbook).
pub(crate) fn load_with(
    runbook: SourceFile,
    inventory: &Path,
    params: &[String],
) -> Result<(Document<Runbook>, Cluster, Vec<ParamInput>), CliError> {
    let runbook = Runbook::load(runbook);
    let declared: Vec<&str> = match &runbook {
        Ok(runbook) => runbook.value.params.keys().map(String::as_str).collect(),
        Err(_) => Vec::new(),
    };
    let inputs = param_inputs(params, &declared);
    let cluster = Cluster::load(read_inventory(inventory)?);
    match (runbook, cluster, inputs) {
        (Ok(runbook), Ok(cluster), Ok(inputs)) => {
            let names = runbook.value.params.keys().map(String::as_str);
            let inputs = param_source::with_environment(names, inputs, param_source::process_env);
            Ok((runbook, cluster, inputs))
        }
        (runbook, cluster, inputs) => {
            let problems = [runbook.err(), cluster.err(), inputs.err()];
            let all = problems
                .into_iter()
                .flatten()
                .flat_map(|d| d.iter().cloned().collect::<Vec<_>>());
            Err(Diagnostics::new(all.collect()).into())
        }
    }
}

/// Turns `-p NAME=VALUE` arguments into parameter inputs, each located on its own synthetic
/// "command line" source (`-p NAME=VALUE`), so a bad value gets a caret under its argument.
///
/// No error shows the whole command line, nor an argument that may hold a secret: an argument
/// without a name, or without `=` unless it is one of the `declared` parameter names. The
/// compiler shows an argument's line only for a parameter it knows is not secret.
pub(crate) fn param_inputs(
    params: &[String],
    declared: &[&str],
) -> Result<Vec<ParamInput>, Diagnostics> {
    let mut sink = DiagnosticSink::default();
    let mut inputs = Vec::new();
    let mut stdin_taken = false;
    for (index, param) in params.iter().enumerate() {
        // Control characters are shown escaped so the line stays one line and columns stay true.
        let shown: String = param
            .chars()
            .map(|c| {
                if c.is_control() {
                    c.escape_default().to_string()
                } else {
                    c.to_string()
                }
            })
            .collect();
        let source = SourceFile::new("command line", format!("-p {shown}"));
        let location = Some(Location {
            line: 1,
            column: "-p ".len() + 1,
        });
        let argument = format!("`-p` argument {} of {}", index + 1, params.len());
        match param.split_once('=') {
            Some((name, value)) if !name.is_empty() => {
                let from = param_source::ValueSource::of(value);
                if matches!(from, param_source::ValueSource::Stdin) {
                    if stdin_taken {
                        sink.push(
                            Diagnostic::at(&source, location, "standard input is read once")
                                .hint("give one parameter with `@-`; the others with `@FILE` or `ETCDRILL_PARAM_<NAME>`"),
                        );
                        continue;
                    }
                    stdin_taken = true;
                }
                match from.read(&mut io::stdin().lock()) {
                    Ok(value) => inputs.push(ParamInput {
                        name: name.to_string(),
                        value: serde_yaml::Value::String(value),
                        source: source.clone(),
                        location,
                    }),
                    // Only `@FILE` and `@-` fail here, so the line shows a path, not a value.
                    Err(problem) => sink.push(
                        Diagnostic::at(&source, location, format!("parameter `{name}`: {problem}"))
                            .hint("`-p NAME=@FILE` reads the value from FILE, `-p NAME=@-` from standard input; write `@@` for a value that begins with `@`"),
                    ),
                }
            }
            Some(_) => sink.push(
                Diagnostic::at_unshown(&source, None, format!("{argument} has no name"))
                    .expected("NAME=VALUE")
                    .hint("the argument is not shown, as its value may be a secret"),
            ),
            None if declared.contains(&param.as_str()) => sink.push(
                Diagnostic::at(
                    &source,
                    location,
                    format!("parameter `{shown}` has no value"),
                )
                .expected("NAME=VALUE")
                .hint(format!("write `-p {shown}=VALUE`")),
            ),
            None => sink.push(
                Diagnostic::at_unshown(&source, None, format!("{argument} has no `=`"))
                    .expected("NAME=VALUE")
                    .hint(
                        "the argument is not shown, as it may be a secret given without its name",
                    ),
            ),
        }
    }
    sink.finish(inputs)
}

fn read(path: &Path) -> Result<SourceFile, CliError> {
    SourceFile::read(path).map_err(|source| CliError::Read {
        path: path.to_owned(),
        source,
    })
}

/// Reads the inventory file given with `-i`.
pub(crate) fn read_inventory(path: &Path) -> Result<SourceFile, CliError> {
    SourceFile::read(path).map_err(|source| CliError::ReadInventory {
        path: path.to_owned(),
        source,
    })
}

/// What a file given to `validate` turned out to be.
enum Checked {
    Runbook {
        name: String,
        steps: usize,
    },
    Inventory {
        name: String,
        nodes: usize,
    },
    Drill {
        name: String,
        runbook: String,
        inventory: String,
        steps: usize,
    },
}

fn validate(args: &ValidateArgs, out: &mut dyn Write, err: &mut dyn Write) -> Result<(), CliError> {
    let mut failed = 0;
    for path in &args.files {
        let shown = path.display();
        let line = match check(path) {
            Ok(Checked::Runbook { name, steps }) => {
                format!("ok: {shown} (runbook {name}, {steps} steps)")
            }
            Ok(Checked::Inventory { name, nodes }) => {
                format!("ok: {shown} (inventory {name}, {nodes} nodes)")
            }
            Ok(Checked::Drill {
                name,
                runbook,
                inventory,
                steps,
            }) => {
                format!(
                    "ok: {shown} (drill {name}: runbook {runbook} on inventory {inventory}, {steps} plan steps)"
                )
            }
            Err(error) => {
                failed += 1;
                // A blank line keeps one file's problems apart from the next one's.
                writeln!(err, "{}", error.render()).map_err(CliError::Output)?;
                continue;
            }
        };
        writeln!(out, "{line}").map_err(CliError::Output)?;
    }
    match failed {
        0 => Ok(()),
        failed => Err(CliError::ValidationFailed {
            failed,
            total: args.files.len(),
        }),
    }
}

/// Loads a file as whatever its top-level keys say it is.
fn check(path: &Path) -> Result<Checked, CliError> {
    let source = read(path)?;
    let document = Document::<serde_yaml::Value>::parse(source.clone())?;
    let has = |key: &str| document.value.get(key).is_some();
    if has("steps") {
        let runbook = Runbook::load(source)?.value;
        Ok(Checked::Runbook {
            steps: runbook.steps.len(),
            name: runbook.name,
        })
    } else if has("nodes") {
        let cluster = Cluster::load(source)?;
        Ok(Checked::Inventory {
            name: cluster.inventory().name.clone(),
            nodes: cluster.nodes.len(),
        })
    } else if has("runbook") && has("inventory") {
        // A drill is checked whole: its inventory and runbook load and compile together.
        let prepared = crate::drill::prepare(path, None)?;
        Ok(Checked::Drill {
            name: prepared.drill.value.name.clone(),
            runbook: prepared.runbook.value.name.clone(),
            inventory: prepared.cluster.inventory().name.clone(),
            steps: prepared.plan.graph.node_count(),
        })
    } else {
        Err(Diagnostics::from(
            Diagnostic::at(&source, None, "cannot tell what kind of file this is").expected(
                "a runbook (a mapping with `steps`), an inventory (with `nodes`) or a drill (with `runbook` and `inventory`)",
            ),
        )
        .into())
    }
}

fn write_schemas(args: &SchemaArgs, out: &mut dyn Write) -> Result<(), CliError> {
    let failed = |path: &Path| {
        let path = path.to_owned();
        move |source| CliError::Write { path, source }
    };
    std::fs::create_dir_all(&args.out).map_err(failed(&args.out))?;
    for file in schema::files() {
        let path = args.out.join(file.name);
        std::fs::write(&path, file.content).map_err(failed(&path))?;
        writeln!(out, "wrote {}", path.display()).map_err(CliError::Output)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(args: &[&str]) -> Result<Vec<ParamInput>, Diagnostics> {
        param_inputs(
            &args.iter().map(|a| a.to_string()).collect::<Vec<_>>(),
            &["a"],
        )
    }

    #[test]
    fn params_are_located_at_their_argument() {
        let inputs = params(&["a=1", "snapshot=/x=y", "empty="]).unwrap();
        let cases = [
            ("a", "1", "-p a=1"),
            ("snapshot", "/x=y", "-p snapshot=/x=y"),
            ("empty", "", "-p empty="),
        ];
        assert_eq!(inputs.len(), cases.len());
        for (input, (name, value, line)) in inputs.iter().zip(cases) {
            assert_eq!(input.name, name);
            assert_eq!(input.value, serde_yaml::Value::String(value.into()));
            assert_eq!(input.location, Some(Location { line: 1, column: 4 }));
            assert_eq!(input.source.text(), line);
        }
    }

    #[test]
    fn malformed_params_show_no_argument_that_may_be_a_secret() {
        let cases = [
            (
                &["token=hunter2", "a"][..],
                "parameter `a` has no value",
                Some("-p a\n  |    ^"),
            ),
            (
                &["token=hunter2", "hunter3"][..],
                "`-p` argument 2 of 2 has no `=`",
                None,
            ),
            (&["=hunter2"][..], "`-p` argument 1 of 1 has no name", None),
        ];
        for (args, message, caret) in cases {
            let rendered = params(args).unwrap_err().to_string();
            assert!(rendered.contains(message), "{rendered}");
            assert!(rendered.contains("--> command line"), "{rendered}");
            if let Some(caret) = caret {
                assert!(rendered.contains(caret), "{rendered}");
            }
            assert!(!rendered.contains("hunter"), "{rendered}");
        }
    }

    #[test]
    fn control_characters_keep_the_line_one_line() {
        let inputs = params(&["a=x\ny", "b=2"]).unwrap();
        assert_eq!(inputs[0].value, serde_yaml::Value::String("x\ny".into()));
        assert_eq!(inputs[0].source.text(), "-p a=x\\ny");
    }

    #[test]
    fn the_command_line_is_consistent() {
        <Cli as clap::CommandFactory>::command().debug_assert();
    }

    #[test]
    fn quiet_and_verbose_choose_the_verbosity() {
        let cases = [
            (&["etcdrill", "health"][..], Verbosity::Normal),
            (&["etcdrill", "-q", "health"][..], Verbosity::Quiet),
            (&["etcdrill", "health", "--verbose"][..], Verbosity::Verbose),
        ];
        for (args, expected) in cases {
            let cli = Cli::try_parse_from(args).unwrap();
            assert_eq!(cli.global.verbosity(), expected, "{args:?}");
        }
        assert!(Cli::try_parse_from(["etcdrill", "-q", "-v", "health"]).is_err());
    }

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
