//! `etcdrill drill run`: prepare a drill, gather its nodes' facts, run it, and write its report.

use std::path::PathBuf;

use clap::Args;

use super::CliError;
use super::execute::{
    ExecArgs, ProgressArgs, WorkDirArgs, node_facts, options, reporter, secret_values, with_runtime,
};
use super::report::write_report_with;
use crate::exec::progress::Verbosity;
use crate::exec::terminal::Terminal;
use crate::exec::{self, TerminalPrompter};
use crate::plan::compile;

/// Arguments of `etcdrill drill`.
#[derive(Debug, Args)]
pub struct DrillArgs {
    /// What to do with a drill.
    #[command(subcommand)]
    pub command: DrillCommand,
}

/// A drill subcommand.
#[derive(Debug, clap::Subcommand)]
pub enum DrillCommand {
    /// Stage the drill's disaster, run its runbook, verify the recovery and write the report.
    #[command(after_help = "Examples:
  etcdrill drill run drills/restore-3-node.yaml --yes
  etcdrill drill run drills/sandbox-restore.yaml --yes -o json")]
    Run(DrillRunArgs),
}

/// Arguments of `etcdrill drill run`.
#[derive(Debug, Args)]
pub struct DrillRunArgs {
    /// The drill file.
    pub drill: PathBuf,
    /// Consent and scheduling.
    #[command(flatten)]
    pub exec: ExecArgs,
    /// Progress.
    #[command(flatten)]
    pub progress: ProgressArgs,
    /// Run directories.
    #[command(flatten)]
    pub work_dir: WorkDirArgs,
}

/// `etcdrill drill run`.
pub(super) fn drill(args: &DrillArgs, verbosity: Verbosity) -> Result<(), CliError> {
    let DrillCommand::Run(args) = &args.command;
    let mut prepared = crate::drill::prepare(&args.drill, args.work_dir.work_dir.as_deref())?;
    let work_dir = prepared.cluster.work_dir(args.work_dir.work_dir.as_deref());
    let options = options(&args.exec, false);
    let terminal = Terminal::detect();
    let mut reporter = reporter(args.progress, verbosity, &terminal);
    // The node is the truth for a drill too: the disaster is staged, and the runbook run, where
    // each member really keeps its data.
    prepared.facts = node_facts(&mut prepared.cluster, &prepared.plan, &mut reporter)?;
    if !prepared.facts.is_empty() {
        prepared.plan = compile(&prepared.runbook, &prepared.cluster, &prepared.params)?;
    }
    let outcome = with_runtime(|shutdown| async {
        crate::drill::run(
            &prepared,
            options,
            &mut TerminalPrompter::new(terminal.clone(), shutdown.clone()),
            &mut reporter,
            &work_dir,
            shutdown,
        )
        .await
        .map_err(|err| match err {
            crate::drill::DrillError::Exec(exec) => exec,
            other => exec::ExecError::Refused(exec::error_chain(&other)),
        })
    })?;
    let secrets = secret_values(&prepared.runbook, &prepared.params);
    // Made from the journal alone, which holds the drill's stages and checks, exactly as
    // `etcdrill report` makes it again later.
    let built = write_report_with(&prepared.plan, &outcome.run.dir, &secrets, &mut reporter)?;
    reporter.note(&format!(
        "drill `{}`: {}{}",
        prepared.drill.value.name,
        if outcome.passed() { "PASSED" } else { "FAILED" },
        outcome
            .facts
            .rto
            .map(|rto| format!(" (RTO {})", crate::humanize::duration(rto)))
            .unwrap_or_default()
    ));
    if outcome.passed() {
        Ok(())
    } else {
        Err(CliError::DrillFailed {
            verdict: built.verdict.title,
            dir: outcome.run.dir.path.clone(),
        })
    }
}
