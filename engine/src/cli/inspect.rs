//! `health`, `status`, `members`, `diagnose` and `snapshot save|verify|status`: the commands that
//! look at a cluster (or a snapshot file) and change nothing in it.
//!
//! Endpoints and TLS files come from flags, else the inventory, else the `ETCDCTL_*` variables,
//! else kubeadm's defaults ([`crate::diagnose::target`]). `diagnose` exits 0 when nothing is
//! worse than info, 3 for a warning, 4 for an urgent finding and 5 for a critical one.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Args, Subcommand};

use super::CliError;
use super::load::read_inventory;
use super::output::{OutputArgs, print, print_document};
use crate::diagnose::collect::{self, Options};
use crate::diagnose::{Facts, Severity, Target, TargetFlags, findings, rules, table};
use crate::etcd::{self, EtcdAccess, EtcdError};
use crate::inventory::Cluster;
use crate::runbook::action::{Action, SnapshotSaveArgs};
use crate::snapshot::meta::SnapshotMeta;
use crate::source::SourceFile;

/// Which cluster to ask, and how.
#[derive(Debug, Clone, Args)]
pub struct TargetArgs {
    /// The inventory: its nodes' client URLs and `controller.tls`.
    #[arg(short, long, value_name = "FILE")]
    pub inventory: Option<PathBuf>,
    /// Client URLs, comma-separated (overrides the inventory and ETCDCTL_ENDPOINTS).
    #[arg(long, value_name = "URLS")]
    pub endpoints: Option<String>,
    /// CA certificate that signed the members' certificates.
    #[arg(long, value_name = "FILE")]
    pub cacert: Option<PathBuf>,
    /// Client certificate.
    #[arg(long, value_name = "FILE")]
    pub cert: Option<PathBuf>,
    /// Client key.
    #[arg(long, value_name = "FILE")]
    pub key: Option<PathBuf>,
    /// Time allowed for each call to a member.
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
}

/// Arguments of `etcdrill health`, `status` and `members`.
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// The cluster.
    #[command(flatten)]
    pub target: TargetArgs,
    /// Output format.
    #[command(flatten)]
    pub output: OutputArgs,
}

/// Arguments of `etcdrill diagnose`.
#[derive(Debug, Args)]
pub struct DiagnoseArgs {
    /// The cluster.
    #[command(flatten)]
    pub target: TargetArgs,
    /// Output format.
    #[command(flatten)]
    pub output: OutputArgs,
    /// Where snapshots are kept (with their `.meta.json` files): a directory,
    /// ssh://[USER@]HOST[:PORT]/DIR or s3://BUCKET[/PREFIX]; repeat for each place.
    #[arg(long, value_name = "DEST")]
    pub backups: Vec<String>,
    /// Directory of run directories holding drill reports (default: the inventory's
    /// `controller.work_dir`/runs, else `.etcdrill/runs`).
    #[arg(long, value_name = "DIR")]
    pub runs: Option<PathBuf>,
}

/// Arguments of `etcdrill snapshot`.
#[derive(Debug, Args)]
pub struct SnapshotArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: SnapshotCommand,
}

/// A `snapshot` subcommand.
#[derive(Debug, Subcommand)]
pub enum SnapshotCommand {
    /// Stream a snapshot from a member to PATH, and write PATH.meta.json beside it.
    #[command(after_help = "Examples:
  etcdrill snapshot save /var/backups/etcd/etcd.db -i inventory.yaml
  etcdrill snapshot save /var/backups/etcd/etcd.db -i inventory.yaml --from cp2 -o json")]
    Save(SnapshotSaveCliArgs),
    /// Check a snapshot file: sha256 trailer and bbolt structure (no etcdutl needed).
    #[command(after_help = "Examples:
  etcdrill snapshot verify /var/backups/etcd/etcd.db")]
    Verify(SnapshotFileArgs),
    /// Show what `etcdutl snapshot status` shows (hash, revision, keys, size), natively.
    #[command(after_help = "Examples:
  etcdrill snapshot status /var/backups/etcd/etcd.db -w json")]
    Status(SnapshotFileArgs),
    /// Copy a snapshot to directories, backup hosts (SSH) or S3, reading every copy back.
    #[command(after_help = "Examples:
  etcdrill snapshot ship /var/backups/etcd/etcd.db --to s3://etcd-backups/prod --to ssh://backup@vault/srv/etcd")]
    Ship(super::backup::ShipArgs),
    /// List the copies in a destination, newest first (--verify reads each back).
    #[command(after_help = "Examples:
  etcdrill snapshot list s3://etcd-backups/prod --verify
  etcdrill snapshot list /var/backups/etcd -o yaml")]
    List(super::backup::ListArgs),
    /// Delete the copies a retention policy does not keep, per cluster.
    #[command(after_help = "Examples:
  etcdrill snapshot prune s3://etcd-backups/prod --keep-last 7 --keep-daily 14 --keep-weekly 8 --dry-run")]
    Prune(super::backup::PruneArgs),
}

/// Arguments of `etcdrill snapshot save`.
#[derive(Debug, Args)]
pub struct SnapshotSaveCliArgs {
    /// Where to write the snapshot on this machine.
    pub path: PathBuf,
    /// The cluster.
    #[command(flatten)]
    pub target: TargetArgs,
    /// The inventory node to stream from (default: a follower that answers).
    #[arg(long, value_name = "NODE")]
    pub from: Option<String>,
    /// Time allowed for the whole save.
    #[arg(long, value_name = "DURATION", default_value = "30m", value_parser = humantime::parse_duration)]
    pub save_timeout: Duration,
    /// Output format.
    #[command(flatten)]
    pub output: OutputArgs,
}

/// Arguments of `etcdrill snapshot verify` and `snapshot status`.
#[derive(Debug, Args)]
pub struct SnapshotFileArgs {
    /// The snapshot file.
    pub path: PathBuf,
    /// Output format.
    #[command(flatten)]
    pub output: OutputArgs,
}

/// Which inspection command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inspect {
    /// `etcdrill health`.
    Health,
    /// `etcdrill status`.
    Status,
    /// `etcdrill members`.
    Members,
}

/// The inventory when given, else an empty cluster; and whether one was given.
fn load_cluster(target: &TargetArgs) -> Result<(Cluster, bool), CliError> {
    match &target.inventory {
        Some(path) => Ok((Cluster::load(read_inventory(path)?)?, true)),
        None => Ok((empty_cluster(), false)),
    }
}

fn empty_cluster() -> Cluster {
    let source = SourceFile::new("command line", "name: endpoints\nnodes: []\n");
    let document = crate::document::Document::parse(source).expect("a fixed document parses");
    Cluster {
        document,
        nodes: Vec::new(),
    }
}

fn resolve(
    target: &TargetArgs,
    cluster: Option<&Cluster>,
) -> Result<(Target, EtcdAccess), CliError> {
    let flags = TargetFlags {
        endpoints: target.endpoints.clone(),
        cacert: target.cacert.clone(),
        cert: target.cert.clone(),
        key: target.key.clone(),
    };
    let env = |name: &str| std::env::var(name).ok();
    let resolved = Target::resolve(&flags, cluster, env);
    let access = resolved.access(env)?;
    Ok((resolved, access))
}

pub(super) fn runtime() -> Result<tokio::runtime::Runtime, CliError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(CliError::Runtime)
}

/// Gathers the facts `options` asks for; also why the endpoints that failed most likely failed
/// (see [`failure_hint`]).
pub(super) fn gather(
    target: &TargetArgs,
    options: impl FnOnce(&Cluster, bool) -> Options,
) -> Result<(Facts, Option<String>), CliError> {
    let (cluster, with_inventory) = load_cluster(target)?;
    let (resolved, access) = resolve(target, with_inventory.then_some(&cluster))?;
    let options = options(&cluster, with_inventory);
    let runtime = runtime()?;
    let facts = runtime.block_on(collect::collect(
        &resolved,
        &access,
        &cluster,
        with_inventory,
        &options,
    ));
    let hint = failure_hint(&access, &facts);
    Ok((facts, hint))
}

/// The first explanation [`EtcdAccess::explain_failure`] finds for an endpoint's error.
fn failure_hint(access: &EtcdAccess, facts: &Facts) -> Option<String> {
    facts.endpoints.iter().find_map(|endpoint| {
        [&endpoint.status_error, &endpoint.health_error]
            .into_iter()
            .flatten()
            .find_map(|error| access.explain_failure(&endpoint.endpoint, error))
            .map(|why| format!("{}: {why}", endpoint.endpoint))
    })
}

/// The error of a read command whose endpoints did not all answer.
fn unhealthy(unhealthy: usize, total: usize, hint: Option<String>) -> CliError {
    CliError::Unhealthy {
        unhealthy,
        total,
        hint,
    }
}

/// `etcdrill health`, `status` and `members`.
pub(super) fn inspect(
    which: Inspect,
    args: &InspectArgs,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let (facts, hint) = gather(&args.target, |_, _| Options {
        timeout: args.target.timeout,
        health: which == Inspect::Health,
        metrics: false,
        discover: which != Inspect::Health,
        backups: Vec::new(),
        runs: None,
        inventory: None,
    })?;
    let json = args.output.is_document();
    match which {
        Inspect::Health => {
            if json {
                print_document(out, args.output, &table::health_json(&facts))?;
            } else {
                print(out, &table::health_table(&facts))?;
            }
            let total = facts.endpoints.len();
            let unhealthy = facts
                .endpoints
                .iter()
                .filter(|e| e.healthy != Some(true))
                .count();
            if unhealthy > 0 {
                return Err(self::unhealthy(unhealthy, total, hint));
            }
        }
        Inspect::Status => {
            if json {
                print_document(out, args.output, &table::status_json(&facts))?;
            } else {
                print(out, &table::status_table(&facts))?;
            }
            if !facts.endpoints.iter().any(|e| e.status.is_some()) {
                return Err(unhealthy(
                    facts.endpoints.len(),
                    facts.endpoints.len(),
                    hint,
                ));
            }
        }
        Inspect::Members => {
            if json {
                print_document(out, args.output, &table::members_json(&facts))?;
            } else {
                print(out, &table::members_table(&facts))?;
            }
            if facts.members.is_none() {
                return Err(unhealthy(
                    facts.endpoints.len(),
                    facts.endpoints.len(),
                    hint,
                ));
            }
        }
    }
    Ok(())
}

/// `etcdrill diagnose`.
pub(super) fn diagnose(args: &DiagnoseArgs, out: &mut dyn Write) -> Result<(), CliError> {
    let backups = args
        .backups
        .iter()
        .map(|text| super::backup::destination(text))
        .collect::<Result<Vec<_>, _>>()?;
    let (facts, hint) = gather(&args.target, |cluster, with_inventory| {
        let runs = args.runs.clone().unwrap_or_else(|| {
            with_inventory
                .then(|| cluster.inventory().controller.work_dir.clone())
                .flatten()
                .map_or_else(|| PathBuf::from(".etcdrill"), PathBuf::from)
                .join("runs")
        });
        Options {
            timeout: args.target.timeout,
            health: true,
            metrics: true,
            discover: true,
            backups,
            runs: Some(runs),
            inventory: args
                .target
                .inventory
                .as_ref()
                .map(|p| p.display().to_string()),
        }
    })?;
    let found = rules::evaluate(&facts);
    if args.output.is_document() {
        print_document(out, args.output, &table::diagnose_json(&facts, &found))?;
    } else {
        print(out, &table::diagnose_table(&facts, &found))?;
    }
    match findings::worst(&found) {
        Some(worst) if worst > Severity::Info => Err(CliError::Findings { worst, hint }),
        _ => Ok(()),
    }
}

/// `etcdrill snapshot ...`.
pub(super) fn snapshot(args: &SnapshotArgs, out: &mut dyn Write) -> Result<(), CliError> {
    match &args.command {
        SnapshotCommand::Save(args) => snapshot_save(args, out),
        SnapshotCommand::Verify(args) => snapshot_verify(args, out),
        SnapshotCommand::Status(args) => snapshot_status(args, out),
        SnapshotCommand::Ship(args) => super::backup::ship(args, out),
        SnapshotCommand::List(args) => super::backup::list(args, out),
        SnapshotCommand::Prune(args) => super::backup::prune(args, out),
    }
}

fn snapshot_save(args: &SnapshotSaveCliArgs, out: &mut dyn Write) -> Result<(), CliError> {
    let (cluster, with_inventory) = load_cluster(&args.target)?;
    let (resolved, access) = resolve(&args.target, with_inventory.then_some(&cluster))?;
    let runtime = runtime()?;
    runtime.block_on(async {
        let candidates = match &args.from {
            Some(name) => {
                let node = cluster.node(name).ok_or_else(|| EtcdError::Config {
                    reason: if with_inventory {
                        format!("no node named {name} in the inventory")
                    } else {
                        "--from names an inventory node: give -i INVENTORY".into()
                    },
                })?;
                vec![node.etcd.client_url.clone()]
            }
            None => resolved.endpoints.clone(),
        };
        let options = Options {
            timeout: args.target.timeout,
            health: false,
            metrics: false,
            discover: false,
            backups: Vec::new(),
            runs: None,
            inventory: None,
        };
        let probe_target = Target {
            endpoints: candidates,
            ..resolved.clone()
        };
        let facts =
            collect::collect(&probe_target, &access, &cluster, with_inventory, &options).await;
        // A follower first: streaming the whole database loads the member that sends it.
        let answering: Vec<_> = facts
            .endpoints
            .iter()
            .filter_map(|e| e.status.as_ref().map(|s| (e, s)))
            .collect();
        let endpoint = answering
            .iter()
            .find(|(_, s)| s.leader.as_deref() != Some(s.member_id.as_str()) && !s.is_learner)
            .or_else(|| answering.first())
            .map(|(endpoint, _)| *endpoint)
            .ok_or_else(|| EtcdError::Refused {
                what: "snapshot save".into(),
                reason: format!(
                    "no endpoint answers: {}",
                    facts
                        .endpoints
                        .iter()
                        .filter_map(|e| e
                            .status_error
                            .as_ref()
                            .map(|err| format!("{}: {err}", e.endpoint)))
                        .collect::<Vec<_>>()
                        .join("; ")
                ),
            })?;
        let action = Action::EtcdSnapshotSave(SnapshotSaveArgs {
            path: args.path.display().to_string(),
        });
        etcd::execute(
            &access,
            &cluster,
            std::slice::from_ref(&endpoint.endpoint),
            &action,
            args.save_timeout,
            None,
        )
        .await
        .map(drop)
    })?;
    let meta_path = SnapshotMeta::path_for(&args.path);
    let meta = SnapshotMeta::read(&meta_path)?;
    if args.output.is_document() {
        let mut value = serde_json::to_value(&meta).expect("metadata serialises");
        value["path"] = args.path.display().to_string().into();
        value["meta_path"] = meta_path.display().to_string().into();
        print_document(out, args.output, &value)
    } else {
        print(
            out,
            &format!(
                "saved {} from {} ({}): {} bytes at revision {}, sha256 {}\nmetadata: {}\n",
                args.path.display(),
                meta.member,
                meta.endpoint,
                meta.size,
                meta.revision,
                meta.sha256,
                meta_path.display()
            ),
        )
    }
}

/// The metadata file beside `path`, checked against the file when present.
fn check_meta(
    path: &Path,
    sha256: Option<&str>,
    size: u64,
) -> Result<Option<SnapshotMeta>, CliError> {
    let meta_path = SnapshotMeta::path_for(path);
    if !meta_path.exists() {
        return Ok(None);
    }
    let meta = SnapshotMeta::read(&meta_path)?;
    let mut problems = Vec::new();
    if meta.size != size {
        problems.push(format!(
            "the file is {size} bytes, the metadata says {}",
            meta.size
        ));
    }
    if let Some(sha256) = sha256
        && meta.sha256 != sha256
    {
        problems.push(format!(
            "the sha256 is {sha256}, the metadata says {}",
            meta.sha256
        ));
    }
    if problems.is_empty() {
        Ok(Some(meta))
    } else {
        Err(EtcdError::Snapshot {
            path: path.to_path_buf(),
            reason: format!(
                "does not match {}: {}",
                meta_path.display(),
                problems.join("; ")
            ),
        }
        .into())
    }
}

fn snapshot_verify(args: &SnapshotFileArgs, out: &mut dyn Write) -> Result<(), CliError> {
    let status = crate::snapshot::verify(&args.path)?;
    let sha256 = match &status.sha256_trailer {
        crate::snapshot::TrailerCheck::Valid { sha256 } => sha256.clone(),
        _ => String::new(),
    };
    let meta = check_meta(&args.path, Some(&sha256), status.file_size)?;
    if args.output.is_document() {
        return print_document(
            out,
            args.output,
            &serde_json::json!({
                "path": args.path.display().to_string(),
                "ok": true,
                "status": status,
                "meta": meta,
            }),
        );
    }
    print(
        out,
        &format!(
            "ok: {}: sha256 trailer {} matches the data, bbolt structure sound; revision {}, {} keys, {} ({} bytes){}\n",
            args.path.display(),
            sha256,
            status.revision,
            status.total_keys,
            crate::humanize::bytes(status.total_size as f64),
            status.file_size,
            match &meta {
                Some(meta) => format!(
                    "; matches its metadata (cluster {}, member {}, taken {})",
                    meta.cluster,
                    meta.member,
                    humantime::format_rfc3339_seconds(meta.time.0)
                ),
                None => String::new(),
            }
        ),
    )
}

fn snapshot_status(args: &SnapshotFileArgs, out: &mut dyn Write) -> Result<(), CliError> {
    let status = crate::snapshot::status(&args.path)?;
    if args.output.is_document() {
        return print_document(
            out,
            args.output,
            &serde_json::to_value(&status).expect("status serialises"),
        );
    }
    let trailer = match &status.sha256_trailer {
        crate::snapshot::TrailerCheck::Valid { sha256 } => format!("valid ({sha256})"),
        crate::snapshot::TrailerCheck::Missing => {
            "missing (a raw db copy, or truncated)".to_string()
        }
        crate::snapshot::TrailerCheck::Unchecked { .. } => {
            "present, not checked (`etcdrill snapshot verify` checks it)".to_string()
        }
        crate::snapshot::TrailerCheck::Mismatch { expected, actual } => {
            format!("MISMATCH: the trailer says {expected}, the data hashes to {actual}")
        }
    };
    let mut text = table::render_table(
        &["HASH", "REVISION", "TOTAL KEYS", "TOTAL SIZE", "VERSION"],
        &[vec![
            format!("{:x}", status.hash),
            status.revision.to_string(),
            status.total_keys.to_string(),
            crate::humanize::bytes(status.total_size as f64),
            status.version.clone().unwrap_or_default(),
        ]],
    );
    text.push_str(&format!("sha256 trailer: {trailer}\n"));
    print(out, &text)
}
