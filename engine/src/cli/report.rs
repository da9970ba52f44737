//! `etcdrill report`, and writing a run's report (Markdown, HTML, JSON, JUnit) from its plan and
//! journal, as every command that runs steps does when it ends.

use clap::Args;

use super::CliError;
use super::execute::{ProgressArgs, reporter, secret_values};
use super::reopen::{Facts, RunRefArgs, reopen};
use crate::exec;
use crate::exec::progress::{Reporter, Verbosity};
use crate::exec::run_dir::RunDir;
use crate::exec::terminal::Terminal;
use crate::journal::{Journal, Timestamp};
use crate::plan::Plan;
use crate::report::{self, Report, ReportContext};

/// Arguments of `etcdrill report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The run.
    #[command(flatten)]
    pub run: RunRefArgs,
}

/// `etcdrill report`: writes a run's report again from its plan and journal.
pub(super) fn report(args: &ReportArgs, verbosity: Verbosity) -> Result<(), CliError> {
    let (dir, runbook, _cluster, inputs, plan) = reopen(&args.run, Facts::Recorded)?;
    let terminal = Terminal::detect();
    let mut reporter = reporter(ProgressArgs::default(), verbosity, &terminal);
    write_report(
        &plan,
        &dir,
        &secret_values(&runbook, &inputs),
        &mut reporter,
    )
}

/// Computes the report from the plan and the journal and writes it into the run directory.
fn write_report(
    plan: &Plan,
    dir: &RunDir,
    secrets: &[String],
    reporter: &mut Reporter,
) -> Result<(), CliError> {
    write_report_with(plan, dir, secrets, reporter).map(|_| ())
}

/// Like [`write_report`]; returns the report.
pub(super) fn write_report_with(
    plan: &Plan,
    dir: &RunDir,
    secrets: &[String],
    reporter: &mut Reporter,
) -> Result<Report, CliError> {
    write_report_from(plan, dir, &read_journal(dir)?, secrets, reporter)
}

/// Reads the run's journal.
pub(super) fn read_journal(dir: &RunDir) -> Result<Journal, CliError> {
    Ok(Journal::read(&dir.journal()).map_err(exec::ExecError::from)?)
}

/// Computes the report from the plan and `journal` (the run's, already read) and writes it.
pub(super) fn write_report_from(
    plan: &Plan,
    dir: &RunDir,
    journal: &Journal,
    secrets: &[String],
    reporter: &mut Reporter,
) -> Result<Report, CliError> {
    // A drill's measurements come from its journal, like everything else.
    let context = ReportContext {
        run_dir: Some(dir.path.clone()),
        record: dir.read_record().ok(),
        drill: None,
        generated_at: Some(Timestamp::now()),
        secrets: secrets.to_vec(),
    };
    let built = Report::build(plan, journal, context);
    let written = report::write_all(&dir.path, &built)?;
    if let Some(path) = written
        .iter()
        .find(|p| p.extension().is_some_and(|e| e == "md"))
    {
        reporter.note(&format!(
            "report: {} ({})",
            path.display(),
            built.verdict.title
        ));
    }
    Ok(built)
}
