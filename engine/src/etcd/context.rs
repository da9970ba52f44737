//! The call context every etcd action runs in: how to connect (a client for the cluster or for
//! one endpoint), the time allowed, how endpoints are shown, running a call on every endpoint, and
//! mapping client errors to [`EtcdError`].

use std::time::Duration;

use etcd_client::{Client, StatusResponse};
use futures_util::future::join_all;

use super::EtcdAccess;
use super::error::{ApiError, EtcdError};
use crate::inventory::{Cluster, same_url};
use crate::transfer::TransferMeter;

/// What every call needs: how to connect, the inventory, the endpoints and the time allowed.
pub(crate) struct Ctx<'a> {
    pub(crate) access: &'a EtcdAccess,
    pub(crate) cluster: &'a Cluster,
    pub(crate) endpoints: &'a [String],
    pub(crate) timeout: Duration,
    /// Where a call that streams bytes (a snapshot) counts them.
    pub(crate) meter: Option<&'a TransferMeter>,
}

impl<'a> Ctx<'a> {
    /// A context for calls that move no bulk bytes (no transfer meter).
    pub(crate) fn new(
        access: &'a EtcdAccess,
        cluster: &'a Cluster,
        endpoints: &'a [String],
        timeout: Duration,
    ) -> Self {
        Self {
            access,
            cluster,
            endpoints,
            timeout,
            meter: None,
        }
    }

    /// A client for a cluster-wide call: the first endpoint, in the order given, that answers a
    /// status request (asked of all at once). A dead member is skipped rather than failing the
    /// call, which a balanced client does when it picks the dead one.
    pub(crate) async fn client(&self) -> Result<Client, EtcdError> {
        if self.endpoints.len() == 1 {
            return self.client_for(&self.endpoints[0]).await;
        }
        let probes = join_all(self.endpoints.iter().map(|endpoint| async move {
            let mut client = self.client_for(endpoint).await?;
            endpoint_status_with(self, &mut client, endpoint).await?;
            Ok::<_, EtcdError>(client)
        }))
        .await;
        let mut errors = Vec::new();
        for probe in probes {
            match probe {
                Ok(client) => return Ok(client),
                Err(err) => errors.push(err),
            }
        }
        Err(EtcdError::Refused {
            what: format!("connect to {}", self.endpoints.join(",")),
            reason: format!(
                "no endpoint answers: {}",
                errors
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
        })
    }

    /// A client for one endpoint.
    pub(crate) async fn client_for(&self, endpoint: &str) -> Result<Client, EtcdError> {
        self.access
            .client_within(&[endpoint.to_string()], Some(self.timeout))
            .await
    }

    /// How an endpoint is shown: `node (url)`, or the URL when no node has it.
    pub(crate) fn label(&self, endpoint: &str) -> String {
        endpoint_label(self.cluster, endpoint)
    }

    /// The inventory node name of an endpoint, or the URL.
    pub(crate) fn short(&self, endpoint: &str) -> String {
        self.cluster
            .nodes
            .iter()
            .find(|n| same_url(&n.etcd.client_url, endpoint))
            .map(|n| n.name.clone())
            .unwrap_or_else(|| endpoint.to_string())
    }
}

/// How an endpoint is shown: `node (url)`, or the URL when no node has it.
pub(crate) fn endpoint_label(cluster: &Cluster, endpoint: &str) -> String {
    match cluster
        .nodes
        .iter()
        .find(|n| same_url(&n.etcd.client_url, endpoint))
    {
        Some(node) => format!("{} ({endpoint})", node.name),
        None => endpoint.to_string(),
    }
}

/// Wraps a client error with what was being done.
pub(crate) fn call_error(what: impl Into<String>, err: etcd_client::Error) -> EtcdError {
    EtcdError::Call {
        what: what.into(),
        source: ApiError(err),
    }
}

/// Every result, or the failures: one failure as it is, several as one `Refused` naming each.
pub(crate) fn all_ok<T>(
    what: &str,
    results: Vec<(String, Result<T, EtcdError>)>,
) -> Result<Vec<(String, T)>, EtcdError> {
    let total = results.len();
    let mut oks = Vec::new();
    let mut errors = Vec::new();
    for (endpoint, result) in results {
        match result {
            Ok(value) => oks.push((endpoint, value)),
            Err(err) => errors.push(err),
        }
    }
    match errors.len() {
        0 => Ok(oks),
        1 => Err(errors.remove(0)),
        n => Err(EtcdError::Refused {
            what: what.to_string(),
            reason: format!(
                "{n} of {total} endpoints failed: {}",
                errors
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
        }),
    }
}

/// Runs `f` on every endpoint concurrently; results in endpoint order.
pub(crate) async fn per_endpoint<'c, T, F, Fut>(
    ctx: &'c Ctx<'c>,
    f: F,
) -> Vec<(String, Result<T, EtcdError>)>
where
    F: Fn(&'c Ctx<'c>, &'c str) -> Fut,
    Fut: std::future::Future<Output = Result<T, EtcdError>>,
{
    let results = join_all(ctx.endpoints.iter().map(|ep| f(ctx, ep))).await;
    ctx.endpoints.iter().cloned().zip(results).collect()
}

/// Maintenance status of one endpoint.
pub(crate) async fn endpoint_status(
    ctx: &Ctx<'_>,
    endpoint: &str,
) -> Result<StatusResponse, EtcdError> {
    let mut client = ctx.client_for(endpoint).await?;
    endpoint_status_with(ctx, &mut client, endpoint).await
}

async fn endpoint_status_with(
    ctx: &Ctx<'_>,
    client: &mut Client,
    endpoint: &str,
) -> Result<StatusResponse, EtcdError> {
    client.status().await.map_err(|err| {
        let error = call_error(format!("status of {}", ctx.label(endpoint)), err);
        // A closed or broken connection says nothing by itself; say what most likely caused it.
        match ctx.access.explain_failure(endpoint, &error.to_string()) {
            Some(why) => EtcdError::Refused {
                what: format!("status of {}", ctx.label(endpoint)),
                reason: format!("{}; {why}", error_source(&error)),
            },
            None => error,
        }
    })
}

/// The library's part of a call error, without the call.
fn error_source(error: &EtcdError) -> String {
    match error {
        EtcdError::Call { source, .. } => source.to_string(),
        other => other.to_string(),
    }
}
