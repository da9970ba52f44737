//! `snapshot ship`, `snapshot list` and `snapshot prune`: off-host copies and their retention.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;

use super::CliError;
use super::inspect::runtime;
use super::output::{OutputArgs, print, print_document};
use crate::backup;
use crate::backup::destination::Destination;
use crate::backup::retention::RetentionPolicy;
use crate::diagnose::table::render_table;
use crate::exec::error_chain;

/// Arguments of `etcdrill snapshot ship`.
#[derive(Debug, Args)]
pub struct ShipArgs {
    /// The snapshot (its PATH.meta.json must be beside it).
    pub path: PathBuf,
    /// A destination: /DIR, ssh://[USER@]HOST[:PORT]/DIR or s3://BUCKET[/PREFIX]; repeat for several.
    #[arg(long = "to", value_name = "DEST", required = true)]
    pub to: Vec<String>,
    /// Time allowed for each destination.
    #[arg(long, value_name = "DURATION", default_value = "30m", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
    /// Output format.
    #[command(flatten)]
    pub output: OutputArgs,
}

/// Arguments of `etcdrill snapshot list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// The destination: /DIR, ssh://[USER@]HOST[:PORT]/DIR or s3://BUCKET[/PREFIX].
    pub destination: String,
    /// Read every copy back in full and check it against its metadata.
    #[arg(long)]
    pub verify: bool,
    /// Time allowed.
    #[arg(long, value_name = "DURATION", default_value = "30m", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
    /// Output format.
    #[command(flatten)]
    pub output: OutputArgs,
}

/// Arguments of `etcdrill snapshot prune`.
#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Destinations to prune, each on its own.
    #[arg(required = true, value_name = "DEST")]
    pub destinations: Vec<String>,
    /// Keep the newest N copies (of each cluster).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub keep_last: u32,
    /// Keep the newest copy of each of the last N days that have one (UTC).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub keep_daily: u32,
    /// Keep the newest copy of each of the last N weeks that have one (Monday to Sunday, UTC).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub keep_weekly: u32,
    /// Show what would be deleted; delete nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Time allowed for each destination.
    #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
    /// Output format.
    #[command(flatten)]
    pub output: OutputArgs,
}

/// Parses destinations given on the command line; a relative directory is taken from the
/// current one.
pub(super) fn destination(text: &str) -> Result<Destination, CliError> {
    if !text.contains("://") && !text.starts_with('/') {
        let cwd = std::env::current_dir().map_err(CliError::Output)?;
        return Ok(Destination::Dir(cwd.join(text)));
    }
    Destination::parse(text).map_err(|err| CliError::Backup(err.into()))
}

/// `etcdrill snapshot ship`.
pub(super) fn ship(args: &ShipArgs, out: &mut dyn Write) -> Result<(), CliError> {
    let destinations: Vec<Destination> = args
        .to
        .iter()
        .map(|t| destination(t))
        .collect::<Result<_, _>>()?;
    let mut copies = Vec::new();
    let result = runtime()?.block_on(backup::ship(
        Path::new(&args.path),
        &destinations,
        args.timeout,
        |destination, result| {
            copies.push(match result {
                Ok(copy) => serde_json::json!({ "ok": true, "copy": copy }),
                Err(err) => serde_json::json!({
                    "ok": false,
                    "destination": destination.to_string(),
                    "error": error_chain(err),
                }),
            });
        },
    ));
    if args.output.is_document() {
        print_document(
            out,
            args.output,
            &serde_json::json!({ "snapshot": args.path.display().to_string(), "copies": copies }),
        )?;
    } else if let Ok(shipped) = &result {
        // A failure is the error, which lists every destination.
        let text: String = shipped
            .iter()
            .map(|copy| {
                format!(
                    "ok: {} ({} bytes, read back whole{})\n",
                    copy.location,
                    copy.bytes,
                    if copy.already_there {
                        "; it was already there"
                    } else {
                        ""
                    }
                )
            })
            .collect();
        print(out, &text)?;
    }
    result.map(drop).map_err(CliError::Backup)
}

/// `etcdrill snapshot list`.
pub(super) fn list(args: &ListArgs, out: &mut dyn Write) -> Result<(), CliError> {
    let destination = destination(&args.destination)?;
    let copies = runtime()?
        .block_on(backup::list(&destination, args.verify, args.timeout))
        .map_err(CliError::Backup)?;
    let bad = copies.iter().filter(|c| c.problem.is_some()).count();
    if args.output.is_document() {
        print_document(
            out,
            args.output,
            &serde_json::json!({
                "destination": destination.to_string(),
                "verified": args.verify,
                "copies": copies,
            }),
        )?;
    } else {
        let rows: Vec<Vec<String>> = copies
            .iter()
            .map(|c| {
                vec![
                    c.name.clone(),
                    humantime::format_rfc3339_seconds(c.meta.time.0).to_string(),
                    c.meta.cluster.clone(),
                    c.meta.member.clone(),
                    c.meta.revision.to_string(),
                    crate::humanize::bytes(c.meta.size as f64),
                    match &c.problem {
                        Some(problem) => format!("BAD: {problem}"),
                        None if args.verify => "ok (read back)".into(),
                        None => "ok".into(),
                    },
                ]
            })
            .collect();
        let mut text = format!("{}: {} copies\n", destination, copies.len());
        if !rows.is_empty() {
            text.push_str(&render_table(
                &[
                    "NAME", "TAKEN", "CLUSTER", "MEMBER", "REVISION", "SIZE", "STATE",
                ],
                &rows,
            ));
        }
        print(out, &text)?;
    }
    if bad > 0 {
        return Err(CliError::Backup(backup::BackupError::Incomplete {
            failed: bad,
            total: copies.len(),
            lines: copies
                .iter()
                .filter_map(|c| c.problem.as_ref().map(|p| format!("{}: {p}", c.location)))
                .collect(),
        }));
    }
    Ok(())
}

/// `etcdrill snapshot prune`.
pub(super) fn prune(args: &PruneArgs, out: &mut dyn Write) -> Result<(), CliError> {
    let policy = RetentionPolicy {
        keep_last: args.keep_last,
        keep_daily: args.keep_daily,
        keep_weekly: args.keep_weekly,
    };
    policy
        .validate()
        .map_err(|err| CliError::Backup(err.into()))?;
    let destinations: Vec<Destination> = args
        .destinations
        .iter()
        .map(|t| destination(t))
        .collect::<Result<_, _>>()?;
    let runtime = runtime()?;
    let mut reports = Vec::new();
    let mut text = String::new();
    let mut failures = Vec::new();
    for destination in &destinations {
        match runtime.block_on(backup::prune(
            destination,
            &policy,
            args.dry_run,
            args.timeout,
        )) {
            Ok(outcome) => {
                text.push_str(&format!(
                    "{destination}: {policy}{}\n",
                    if args.dry_run { " (dry run)" } else { "" }
                ));
                for decision in &outcome.decisions {
                    let action = match (decision.keep, args.dry_run) {
                        (true, _) => format!(
                            "keep ({})",
                            decision
                                .reasons
                                .iter()
                                .map(|r| format!("{r:?}").to_ascii_lowercase())
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                        (false, true) => "would delete".into(),
                        (false, false) => "deleted".into(),
                    };
                    text.push_str(&format!(
                        "  {:<13} {}  {}  {}\n",
                        action,
                        humantime::format_rfc3339_seconds(decision.copy.meta.time.0),
                        decision.copy.meta.cluster,
                        decision.copy.name
                    ));
                }
                for copy in &outcome.not_counted {
                    text.push_str(&format!(
                        "  left alone    {}  (not counted: {})\n",
                        copy.name,
                        copy.problem.as_deref().unwrap_or_default()
                    ));
                }
                reports.push(serde_json::json!({
                    "destination": destination.to_string(),
                    "ok": true,
                    "outcome": outcome,
                }));
            }
            Err(err) => {
                text.push_str(&format!("{destination}: FAILED: {}\n", error_chain(&err)));
                reports.push(serde_json::json!({
                    "destination": destination.to_string(),
                    "ok": false,
                    "error": error_chain(&err),
                }));
                failures.push(format!("{destination}: {}", error_chain(&err)));
            }
        }
    }
    if args.output.is_document() {
        print_document(
            out,
            args.output,
            &serde_json::json!({ "dry_run": args.dry_run, "destinations": reports }),
        )?;
    } else {
        print(out, &text)?;
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(CliError::Backup(backup::BackupError::Incomplete {
            failed: failures.len(),
            total: destinations.len(),
            lines: failures,
        }))
    }
}
