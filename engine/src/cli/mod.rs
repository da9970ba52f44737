//! The command line: its subcommands, their arguments, and the one error type the binary turns
//! into an exit code.
//!
//! `plan`, `validate`, `schema`, `completions` and `man` touch no network and no node: `plan` is
//! a dry run whose only side effect is the file named by `--out` (in `authoring`). `run`, `resume`
//! and `rollback` (in `execute`, with `reopen` for a run that exists), `drill` and the day-2
//! commands (in `day2`) do; the read commands (in `inspect`) only ask, and `report` writes a run's
//! report again. `-o` means the same everywhere (see `output`). `load` reads a command's inputs;
//! `error` is the one error type and its exit codes.

mod authoring;
mod backup;
mod day2;
mod docs;
mod drill;
mod error;
mod execute;
mod inspect;
mod load;
mod output;
mod param_source;
mod reopen;
mod report;

use std::io::Write;

use clap::{Args, Parser, Subcommand};

use crate::exec::progress::Verbosity;

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
    Report(report::ReportArgs),
    /// Restore drills: stage a disaster, recover with a runbook, prove it, report.
    #[command(after_help = "Examples:
  etcdrill drill run drills/restore-3-node.yaml --yes")]
    Drill(drill::DrillArgs),
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

pub use authoring::{PlanArgs, SchemaArgs, ValidateArgs};
pub use backup::{ListArgs, PruneArgs, ShipArgs};
pub use day2::{AlarmArgs, AlarmCommand, Day2Args, DefragArgs, DisarmArgs, MoveLeaderArgs};
pub use docs::{CompletionsArgs, ManArgs};
pub use drill::{DrillArgs, DrillCommand, DrillRunArgs};
pub use error::CliError;
pub use execute::{
    ExecArgs, MetricsArgs, Output, ProgressArgs, ResumeArgs, RollbackArgs, RunArgs, WorkDirArgs,
};
pub use inspect::{
    DiagnoseArgs, InspectArgs, SnapshotArgs, SnapshotCommand, SnapshotFileArgs,
    SnapshotSaveCliArgs, TargetArgs,
};
pub(crate) use load::param_inputs;
pub use output::{OutputArgs, OutputFormat};
pub use reopen::RunRefArgs;
pub use report::ReportArgs;

/// Runs a parsed command line, writing results to `out` and per-file problems to `err`.
pub fn run(cli: Cli, out: &mut dyn Write, err: &mut dyn Write) -> Result<(), CliError> {
    let verbosity = cli.global.verbosity();
    match cli.command {
        Command::Plan(args) => authoring::plan(&args, out),
        Command::Validate(args) => authoring::validate(&args, out, err),
        Command::Schema(args) => authoring::write_schemas(&args, out),
        Command::Run(args) => execute::run(&args, verbosity),
        Command::Resume(args) => execute::resume(&args, verbosity),
        Command::Rollback(args) => execute::rollback(&args, verbosity),
        Command::Report(args) => report::report(&args, verbosity),
        Command::Drill(args) => drill::drill(&args, verbosity),
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
