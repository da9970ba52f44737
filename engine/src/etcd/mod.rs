//! The in-process etcd API layer: the typed etcd actions of a plan (`Operation::Etcd`) and the
//! controller-native ones (`Operation::Native`), run from the controller with etcd's gRPC API.
//!
//! Every call is bounded by its step's timeout, names the endpoint it failed on, and never shows
//! key material. Verifications that do not hold are [`EtcdError::Refused`] with a message a person
//! can act on. The runner (`exec/`) owns retries, journaling and events; this layer only calls.
//!
//! - `access`: TLS material and credentials, and the clients made from them.
//! - `context`: the call context, the probes, day-2 actions and verifications.
//! - `health`: endpoint health, `wait.healthy`, leader and follower roles.
//! - `members`: membership changes and matching members to inventory nodes.
//! - `snapshot`: streaming a snapshot to a file and verifying a snapshot file.

mod access;
mod context;
mod error;
mod health;
mod members;
mod snapshot;
#[cfg(test)]
mod test_cluster;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::task::Poll;
use std::time::Duration;

pub use access::EtcdAccess;
pub use error::{ApiError, EtcdError};
pub use health::{Roles, current_member_health, member_health, roles};
pub use snapshot::{SnapshotFile, verify_snapshot_file};
pub(crate) use snapshot::{TrailerHasher, host_name};

// For `diagnose` and the inspection commands, which reuse these probes rather than repeat them.
pub(crate) use context::{
    Ctx, active_alarms, cluster_id, endpoint_status, human_bytes, largest_db_size,
};
pub(crate) use health::check_endpoint;
pub(crate) use members::{list_any, node_of_member, same_url};

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
    let ctx = context::Ctx {
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
    match tokio::time::timeout(timeout, context::run(&ctx, call)).await {
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

/// Polls every future to completion concurrently on the current task; outputs in input order.
pub(crate) async fn join_all<F: Future>(futures: Vec<F>) -> Vec<F::Output> {
    let mut futures: Vec<Pin<Box<F>>> = futures.into_iter().map(Box::pin).collect();
    let mut outputs: Vec<Option<F::Output>> = futures.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (future, output) in futures.iter_mut().zip(outputs.iter_mut()) {
            if output.is_none() {
                match future.as_mut().poll(cx) {
                    Poll::Ready(value) => *output = Some(value),
                    Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    })
    .await;
    outputs.into_iter().flatten().collect()
}
