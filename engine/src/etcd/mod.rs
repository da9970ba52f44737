//! The in-process etcd API layer: the typed etcd actions of a plan (`Operation::Etcd`) and the
//! controller-native ones (`Operation::Native`), run from the controller with etcd's gRPC API.
//!
//! Every call is bounded by its step's timeout, names the endpoint it failed on, and never shows
//! key material. Verifications that do not hold are [`EtcdError::Refused`] with a message a person
//! can act on. The runner (`exec/`) owns retries, journaling and events; this layer only calls.
//!
//! - `access`: TLS material and credentials, and the clients made from them.
//! - `context`: what every call runs in: connecting, the time allowed, error mapping.
//! - `status`: `etcd.status` and the status probes other commands reuse.
//! - `health`: endpoint health, `wait.healthy`, leader and follower roles.
//! - `members`: membership changes and matching members to inventory nodes.
//! - `alarms`: listing, disarming and verifying alarms.
//! - `leader`: moving and verifying the leader.
//! - `maintenance`: defragmentation and compaction.
//! - `kv`: putting, getting and verifying single keys.
//! - `hashkv`: keyspace hashes and checking that members agree.
//! - `snapshot`: streaming a snapshot to a file and verifying a snapshot file.

mod access;
mod alarms;
mod context;
mod error;
mod hashkv;
mod health;
mod kv;
mod leader;
mod maintenance;
mod members;
mod snapshot;
mod status;
#[cfg(test)]
mod test_cluster;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::time::Duration;

pub use access::EtcdAccess;
pub use error::{ApiError, EtcdError};
pub use health::{Roles, current_member_health, member_health, roles};
pub use snapshot::{SnapshotFile, verify_snapshot_file};
pub(crate) use snapshot::{TrailerHasher, host_name, source_member as snapshot_source};

// For `diagnose` and the inspection commands, which reuse these probes rather than repeat them.
pub(crate) use alarms::active_alarms;
pub(crate) use context::{Ctx, endpoint_status};
pub(crate) use health::check_endpoint;
pub(crate) use members::{list_any, node_of_member, same_url};
pub(crate) use status::{cluster_id, largest_db_size};

use crate::inventory::Cluster;
use crate::runbook::action::Action;
use crate::transfer::TransferMeter;

/// What an etcd action produced.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallOutcome {
    /// Outputs, named exactly as the action declares them in the catalog.
    pub outputs: BTreeMap<String, String>,
    /// One line for the journal and the terminal.
    pub summary: String,
}

impl CallOutcome {
    /// An outcome with no outputs yet.
    pub(crate) fn new(summary: impl Into<String>) -> Self {
        Self {
            outputs: BTreeMap::new(),
            summary: summary.into(),
        }
    }

    /// Adds an output.
    pub(crate) fn output(mut self, name: &str, value: impl ToString) -> Self {
        self.outputs.insert(name.to_string(), value.to_string());
        self
    }
}

/// Runs one typed etcd API action (an `Operation::Etcd`) against `endpoints` within `timeout`.
/// Outputs use exactly the names declared in the action catalog for that action.
///
/// `wait.healthy` polls until `timeout` and then fails naming the unhealthy endpoints; every
/// other action fails with [`EtcdError::Timeout`] when it does not finish in time.
pub async fn execute(
    access: &EtcdAccess,
    cluster: &Cluster,
    endpoints: &[String],
    call: &Action,
    timeout: Duration,
    meter: Option<&TransferMeter>,
) -> Result<CallOutcome, EtcdError> {
    if endpoints.is_empty() {
        return Err(EtcdError::Config {
            reason: format!("{} was given no endpoints", call.kind()),
        });
    }
    let ctx = Ctx {
        access,
        cluster,
        endpoints,
        timeout,
        meter,
    };
    if let Action::WaitHealthy(args) = call {
        return health::wait_healthy(&ctx, args.members).await;
    }
    let what = format!("{} on {}", call.kind(), endpoints.join(","));
    match tokio::time::timeout(timeout, run(&ctx, call)).await {
        Ok(result) => result,
        Err(_) => Err(EtcdError::Timeout { what, timeout }),
    }
}

/// Runs a controller-native action (`Operation::Native`): today `etcd.snapshot.verify` of a file
/// on the controller (size and sha256 trailer; the bbolt structure check comes later).
pub async fn execute_native(call: &Action, timeout: Duration) -> Result<CallOutcome, EtcdError> {
    match call {
        Action::EtcdSnapshotVerify(args) => {
            let path = std::path::PathBuf::from(&args.path);
            let what = format!("etcd.snapshot.verify of {}", path.display());
            let file = tokio::time::timeout(timeout, verify_snapshot_file(&path))
                .await
                .map_err(|_| EtcdError::Timeout { what, timeout })??;
            Ok(CallOutcome::new(format!(
                "{}: {} bytes, sha256 trailer {} matches the data",
                path.display(),
                file.size,
                file.sha256
            ))
            .output("size", file.size)
            .output("sha256", file.sha256))
        }
        other => Err(EtcdError::Unsupported {
            action: other.kind().name(),
        }),
    }
}

/// Runs one etcd API action (not `wait.healthy`, which polls on its own clock).
async fn run(ctx: &Ctx<'_>, call: &Action) -> Result<CallOutcome, EtcdError> {
    match call {
        Action::EtcdHealth(_) => health::health(ctx).await,
        Action::EtcdStatus(_) => status::status(ctx).await,
        Action::EtcdMemberList(_) => members::member_list(ctx).await,
        Action::EtcdMemberAdd(args) => members::member_add(ctx, args).await,
        Action::EtcdMemberPromote(args) => members::member_promote(ctx, args).await,
        Action::EtcdMemberRemove(args) => members::member_remove(ctx, args).await,
        Action::EtcdSnapshotSave(args) => snapshot::save(ctx, args).await,
        Action::EtcdDefrag(_) => maintenance::defrag(ctx).await,
        Action::EtcdCompact(args) => maintenance::compact(ctx, args).await,
        Action::EtcdAlarmList(_) => alarms::alarm_list(ctx).await,
        Action::EtcdAlarmDisarm(_) => alarms::alarm_disarm(ctx).await,
        Action::EtcdMoveLeader(args) => leader::move_leader(ctx, args).await,
        Action::EtcdKvPut(args) => kv::kv_put(ctx, args).await,
        Action::EtcdKvGet(args) => kv::kv_get(ctx, args).await,
        Action::EtcdHashKv(_) => hashkv::hashkv(ctx).await,
        Action::WaitHealthy(args) => health::wait_healthy(ctx, args.members).await,
        Action::VerifyHealthy(args) => health::verify_healthy(ctx, args.min_healthy).await,
        Action::VerifyMemberCount(args) => members::verify_member_count(ctx, args).await,
        Action::VerifyKey(args) => kv::verify_key(ctx, args).await,
        Action::VerifyHashKv(_) => hashkv::verify_hashkv(ctx).await,
        Action::VerifyNoAlarms(_) => alarms::verify_no_alarms(ctx).await,
        Action::VerifyLeader(args) => leader::verify_leader(ctx, args).await,
        Action::EtcdSnapshotVerify(_)
        | Action::Shell(_)
        | Action::EtcdSnapshotRestore(_)
        | Action::EtcdStopMember(_)
        | Action::EtcdStartMember(_)
        | Action::EtcdConfigureMember(_)
        | Action::EtcdDataDirReplace(_)
        | Action::EtcdDataDirSetAside(_)
        | Action::EtcdDataDirRepoint(_)
        | Action::FileCopy(_)
        | Action::EtcdSnapshotDistribute(_)
        | Action::BackupShip(_)
        | Action::BackupPrune(_) => Err(EtcdError::Unsupported {
            action: call.kind().name(),
        }),
    }
}
