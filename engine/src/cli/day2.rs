//! The day-2 commands an admin reaches for without writing a runbook. `alarm list` only reads,
//! like `members`. `alarm disarm`, `move-leader NODE` and `defrag NODE` change the cluster: each
//! runs a built-in runbook (`runbooks/builtin/`) through the same executor as `etcdrill run`, with
//! its guards, a run directory, a journal and a report, so `resume`, `rollback` and `report` work on
//! them as on any run, and `--check` shows what would be done.

use std::io::Write;
use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::CliError;
use super::execute::{Launch, ProgressArgs, WorkDirArgs};
use super::inspect::{InspectArgs, gather};
use super::load::load_with;
use super::output::{print, print_document};
use crate::diagnose::collect::Options;
use crate::diagnose::table::render_table;
use crate::etcd::EtcdError;
use crate::exec::progress::Verbosity;
use crate::exec::{OnFailure, RunOptions};
use crate::runbook::builtin::Builtin;

/// What every day-2 run takes.
#[derive(Debug, Args)]
pub struct Day2Args {
    /// The inventory of the cluster.
    #[arg(short, long, value_name = "FILE")]
    pub inventory: PathBuf,
    /// Check mode: the guards run against the cluster; the change is only shown.
    #[arg(long)]
    pub check: bool,
    /// Progress.
    #[command(flatten)]
    pub progress: ProgressArgs,
    /// Run directories.
    #[command(flatten)]
    pub work_dir: WorkDirArgs,
}

/// Arguments of `etcdrill alarm`.
#[derive(Debug, Args)]
pub struct AlarmArgs {
    /// What to do with alarms.
    #[command(subcommand)]
    pub command: AlarmCommand,
}

/// An `alarm` subcommand.
#[derive(Debug, Subcommand)]
pub enum AlarmCommand {
    /// List the active alarms (NOSPACE, CORRUPT) and the members that raised them.
    #[command(after_help = "Examples:
  etcdrill alarm list -i inventory.yaml
  etcdrill alarm list --endpoints https://10.0.0.11:2379 -o json")]
    List(InspectArgs),
    /// Disarm every active alarm; CORRUPT only with --corrupt. A run with a journal.
    #[command(after_help = "Examples:
  etcdrill alarm disarm -i inventory.yaml
  etcdrill alarm disarm -i inventory.yaml --check")]
    Disarm(DisarmArgs),
}

/// Arguments of `etcdrill alarm disarm`.
#[derive(Debug, Args)]
pub struct DisarmArgs {
    /// Disarm a CORRUPT alarm too: only after the corrupted member was restored (its state purged,
    /// the member replaced, or the cluster restored).
    #[arg(long)]
    pub corrupt: bool,
    /// The run.
    #[command(flatten)]
    pub run: Day2Args,
}

/// Arguments of `etcdrill move-leader`.
#[derive(Debug, Args)]
pub struct MoveLeaderArgs {
    /// The inventory node whose member takes over leadership.
    pub node: String,
    /// The run.
    #[command(flatten)]
    pub run: Day2Args,
}

/// Arguments of `etcdrill defrag`.
#[derive(Debug, Args)]
pub struct DefragArgs {
    /// The inventory node whose member is defragmented.
    pub node: String,
    /// Defragment the member even if it leads: every write of the cluster waits while it runs.
    #[arg(long)]
    pub allow_leader: bool,
    /// The run.
    #[command(flatten)]
    pub run: Day2Args,
}

/// `etcdrill alarm list|disarm`.
pub(super) fn alarm(
    args: &AlarmArgs,
    verbosity: Verbosity,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    match &args.command {
        AlarmCommand::List(args) => alarm_list(args, out),
        AlarmCommand::Disarm(args) => launch(
            "alarm-disarm",
            &args.run,
            None,
            &[format!("corrupt={}", args.corrupt)],
            verbosity,
        ),
    }
}

/// `etcdrill move-leader NODE`.
pub(super) fn move_leader(args: &MoveLeaderArgs, verbosity: Verbosity) -> Result<(), CliError> {
    launch("move-leader", &args.run, Some(&args.node), &[], verbosity)
}

/// `etcdrill defrag NODE`.
pub(super) fn defrag(args: &DefragArgs, verbosity: Verbosity) -> Result<(), CliError> {
    launch(
        "defrag",
        &args.run,
        Some(&args.node),
        &[format!("allow_leader={}", args.allow_leader)],
        verbosity,
    )
}

/// Runs the built-in runbook `name` with `node` (when it takes one) and `params`.
fn launch(
    name: &str,
    args: &Day2Args,
    node: Option<&str>,
    params: &[String],
    verbosity: Verbosity,
) -> Result<(), CliError> {
    let builtin = Builtin::named(name).expect("every day-2 command has its built-in runbook");
    let mut params = params.to_vec();
    params.extend(node.map(|node| format!("node={node}")));
    let (runbook, cluster, inputs) = load_with(builtin.source(), &args.inventory, &params)?;
    if let Some(node) = node
        && cluster.node(node).is_none()
    {
        return Err(CliError::UnknownNode {
            node: node.to_string(),
            inventory: args.inventory.clone(),
            nodes: cluster.nodes.iter().map(|n| n.name.clone()).collect(),
        });
    }
    let path = builtin.path();
    let launch = Launch {
        runbook_path: &path,
        inventory_path: &args.inventory,
        check: args.check,
        // Nothing a built-in runbook does is destructive or asks for confirmation, and none of
        // its steps has anything to undo: a refused guard ends the run FAILED, nothing undone.
        options: RunOptions {
            check: args.check,
            yes: false,
            allow_production: false,
            concurrency: 1,
            on_failure: OnFailure::Stop,
        },
        progress: args.progress,
        verbosity,
        work_dir: args.work_dir.work_dir.as_deref(),
        metrics_textfile: None,
    };
    launch.run(&runbook, cluster, &inputs)
}

/// `etcdrill alarm list`: a table, or `{"alarms": [...]}`; fails when the alarms cannot be read.
fn alarm_list(args: &InspectArgs, out: &mut dyn Write) -> Result<(), CliError> {
    let (facts, hint) = gather(&args.target, |_, _| Options {
        timeout: args.target.timeout,
        health: false,
        metrics: false,
        discover: true,
        backups: Vec::new(),
        runs: None,
        inventory: None,
    })?;
    if let Some(error) = &facts.alarm_error {
        let total = facts.endpoints.len();
        let answering = facts
            .endpoints
            .iter()
            .filter(|e| e.status.is_some())
            .count();
        return Err(match answering {
            0 => CliError::Unhealthy {
                unhealthy: total,
                total,
                hint,
            },
            _ => EtcdError::Refused {
                what: "alarm list".into(),
                reason: error.clone(),
            }
            .into(),
        });
    }
    if args.output.is_document() {
        return print_document(
            out,
            args.output,
            &serde_json::json!({ "alarms": facts.alarms }),
        );
    }
    if facts.alarms.is_empty() {
        return print(out, "no active alarm\n");
    }
    let rows: Vec<Vec<String>> = facts
        .alarms
        .iter()
        .map(|a| vec![a.alarm.clone(), a.member.clone(), a.member_id.clone()])
        .collect();
    print(out, &render_table(&["ALARM", "MEMBER", "MEMBER ID"], &rows))
}
