//! Endpoint health as `etcdctl endpoint health` judges it (a linearizable read and no active
//! alarm), waiting for health, the quorum guard's per-member view, and leader/follower roles.

use std::time::Duration;

use tokio::time::Instant;

use futures_util::future::join_all;

use super::alarms::{active_alarms, format_alarms};
use super::context::{Ctx, endpoint_status};
use super::error::EtcdError;
use super::members::{self, node_of_member};
use super::{CallOutcome, EtcdAccess};
use crate::inventory::Cluster;

/// Pause between `wait.healthy` polls during its first [`FAST_POLLING_FOR`]: a member restarted
/// by a restore or a replacement is usually healthy within seconds, and the wait is downtime, so
/// it should end within a tenth of a second of health (a doubling backoff from 200 ms ended up to
/// 2 s late, 0.4 s on average in the restore benchmark).
const FAST_POLL: Duration = Duration::from_millis(100);
/// How long `wait.healthy` polls every [`FAST_POLL`] before backing off.
const FAST_POLLING_FOR: Duration = Duration::from_secs(30);
/// Longest pause between `wait.healthy` polls, reached by doubling after the fast phase.
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// Whether one endpoint is healthy: a linearizable read of `health` succeeds (permission denied
/// counts as success, as in etcdctl) and no alarm is active. The error is the reason.
pub(crate) async fn check_endpoint(ctx: &Ctx<'_>, endpoint: &str) -> Result<(), String> {
    let mut client = ctx.client_for(endpoint).await.map_err(|e| e.to_string())?;
    match client.get("health", None).await {
        Ok(_) => {}
        Err(err) => {
            let api = super::ApiError(err);
            if !api.is_permission_denied() {
                return Err(format!("linearizable read failed: {api}"));
            }
        }
    }
    let alarms = active_alarms(ctx, &mut client)
        .await
        .map_err(|e| e.to_string())?;
    if !alarms.is_empty() {
        let members = members::list_with(ctx, &mut client)
            .await
            .unwrap_or_default();
        return Err(format!(
            "active alarm(s): {}",
            format_alarms(ctx.cluster, &members, &alarms)
        ));
    }
    Ok(())
}

/// Health of every endpoint of the call, concurrently, each bounded by the call's timeout.
async fn check_all(ctx: &Ctx<'_>) -> Vec<(String, Result<(), String>)> {
    let results = join_all(ctx.endpoints.iter().map(|ep| async move {
        match tokio::time::timeout(ctx.timeout, check_endpoint(ctx, ep)).await {
            Ok(result) => result,
            Err(_) => Err(format!(
                "no answer within {}",
                crate::humanize::limit(ctx.timeout)
            )),
        }
    }))
    .await;
    ctx.endpoints.iter().cloned().zip(results).collect()
}

fn describe_unhealthy(ctx: &Ctx<'_>, results: &[(String, Result<(), String>)]) -> String {
    results
        .iter()
        .filter_map(|(ep, r)| {
            r.as_ref()
                .err()
                .map(|why| format!("{}: {why}", ctx.label(ep)))
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// `etcd.health`: fails if any targeted endpoint is unhealthy.
pub(crate) async fn health(ctx: &Ctx<'_>) -> Result<CallOutcome, EtcdError> {
    let results = check_all(ctx).await;
    let healthy = results.iter().filter(|(_, r)| r.is_ok()).count();
    let total = results.len();
    if healthy < total {
        return Err(EtcdError::Refused {
            what: "etcd.health".into(),
            reason: format!(
                "{healthy} of {total} endpoints healthy; {}",
                describe_unhealthy(ctx, &results)
            ),
        });
    }
    Ok(
        CallOutcome::new(format!("{healthy} of {total} endpoints healthy"))
            .output("healthy", healthy)
            .output("total", total),
    )
}

/// `verify.healthy`: at least `min_healthy` (all by default) endpoints are healthy.
pub(crate) async fn verify_healthy(
    ctx: &Ctx<'_>,
    min_healthy: Option<u32>,
) -> Result<CallOutcome, EtcdError> {
    let results = check_all(ctx).await;
    let healthy = results.iter().filter(|(_, r)| r.is_ok()).count();
    let total = results.len();
    let needed = min_healthy.map_or(total, |n| n as usize);
    let unhealthy = describe_unhealthy(ctx, &results);
    if healthy < needed {
        return Err(EtcdError::Refused {
            what: "verify.healthy".into(),
            reason: format!("{healthy} of {total} endpoints healthy, {needed} needed; {unhealthy}"),
        });
    }
    let mut summary = format!("{healthy} of {total} endpoints healthy");
    if !unhealthy.is_empty() {
        summary.push_str(&format!(" (unhealthy: {unhealthy})"));
    }
    Ok(CallOutcome::new(summary))
}

/// `wait.healthy`: polls (every 100 ms for 30 s, then backing off to 2 s) until `members` (all by default) endpoints are healthy or
/// the timeout passes; the error names the unhealthy endpoints and why.
pub(crate) async fn wait_healthy(
    ctx: &Ctx<'_>,
    members: Option<u32>,
) -> Result<CallOutcome, EtcdError> {
    let started = Instant::now();
    let deadline = started + ctx.timeout;
    let total = ctx.endpoints.len();
    let needed = members.map_or(total, |n| n as usize);
    let mut backoff = FAST_POLL;
    let mut polls = 0u32;
    loop {
        polls += 1;
        let remaining = deadline.saturating_duration_since(Instant::now());
        // Each poll may take at most what is left (and never less than a short moment, so the
        // last poll still has a chance to answer).
        let poll_ctx = Ctx {
            timeout: remaining.max(Duration::from_millis(100)),
            ..*ctx
        };
        let results = check_all(&poll_ctx).await;
        let healthy = results.iter().filter(|(_, r)| r.is_ok()).count();
        if healthy >= needed {
            return Ok(CallOutcome::new(format!(
                "{healthy} of {total} endpoints healthy after {:.1?} ({polls} poll(s))",
                started.elapsed()
            )));
        }
        let now = Instant::now();
        if now >= deadline {
            return Err(EtcdError::Refused {
                what: "wait.healthy".into(),
                reason: format!(
                    "{healthy} of {total} endpoints healthy after {:.1?} ({polls} poll(s)), \
                     {needed} needed; {}",
                    started.elapsed(),
                    describe_unhealthy(ctx, &results)
                ),
            });
        }
        tokio::time::sleep(backoff.min(deadline - now)).await;
        if started.elapsed() >= FAST_POLLING_FOR {
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }
}

/// The current leader and followers as inventory node names (members matched to nodes by
/// member name, else by peer URL). Followers are the other voting members that are inventory
/// nodes, in inventory order; learners are neither. When no member knows a leader (quorum lost),
/// `leader` is `None` and `followers` is empty.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Roles {
    /// The leader's node name, if a leader is known and runs on an inventory node.
    pub leader: Option<String>,
    /// The followers' node names.
    pub followers: Vec<String>,
}

/// Resolves [`Roles`] from the status of every reachable inventory member (the leader reported
/// with the highest raft term wins). Fails only when no member answers.
pub async fn roles(
    access: &EtcdAccess,
    cluster: &Cluster,
    timeout: Duration,
) -> Result<Roles, EtcdError> {
    let endpoints: Vec<String> = cluster.client_urls();
    let ctx = Ctx::new(access, cluster, &endpoints, timeout);
    let what = format!("roles from {}", endpoints.join(","));
    let work = async {
        let results = join_all(endpoints.iter().map(|ep| endpoint_status(&ctx, ep))).await;
        let mut first_error = None;
        let mut answered = false;
        let mut best: Option<(u64, u64)> = None;
        for result in results {
            match result {
                Ok(status) => {
                    answered = true;
                    if status.leader() != 0
                        && best.is_none_or(|(term, _)| status.raft_term() > term)
                    {
                        best = Some((status.raft_term(), status.leader()));
                    }
                }
                Err(err) => {
                    first_error.get_or_insert(err);
                }
            }
        }
        let Some((_, leader_id)) = best else {
            return match first_error {
                Some(err) if !answered => Err(err),
                _ => Ok(Roles::default()),
            };
        };
        let members = members::list_any(&ctx).await?;
        let leader_member = members.iter().find(|m| m.id() == leader_id);
        let leader = leader_member
            .and_then(|m| node_of_member(cluster, m))
            .map(|n| n.name.clone());
        let voting: Vec<String> = members
            .iter()
            .filter(|m| !m.is_learner() && m.id() != leader_id)
            .filter_map(|m| node_of_member(cluster, m).map(|n| n.name.clone()))
            .collect();
        let followers = cluster
            .nodes
            .iter()
            .filter(|n| voting.contains(&n.name))
            .map(|n| n.name.clone())
            .collect();
        Ok(Roles { leader, followers })
    };
    tokio::time::timeout(timeout, work)
        .await
        .map_err(|_| EtcdError::Timeout { what, timeout })?
}

/// Health of the inventory nodes that are members of the cluster now (for the quorum guard before
/// a member removal): a node removed earlier, e.g. by the same run, cannot cost quorum and is left
/// out. Every node is kept when no member answers a member list.
pub async fn current_member_health(
    access: &EtcdAccess,
    cluster: &Cluster,
    timeout: Duration,
) -> Vec<(String, Result<(), String>)> {
    let endpoints: Vec<String> = cluster.client_urls();
    let ctx = Ctx::new(access, cluster, &endpoints, timeout);
    let health = member_health(access, cluster, timeout).await;
    let Ok(Ok(members)) = tokio::time::timeout(timeout, members::list_any(&ctx)).await else {
        return health;
    };
    health
        .into_iter()
        .filter(|(name, _)| {
            cluster
                .node(name)
                .is_some_and(|node| members::member_of_node(&members, node).is_some())
        })
        .collect()
}

/// Health of every inventory member (for the quorum guard before a member removal): node name and
/// Ok or the reason it is unhealthy. Every check is bounded by `timeout`.
pub async fn member_health(
    access: &EtcdAccess,
    cluster: &Cluster,
    timeout: Duration,
) -> Vec<(String, Result<(), String>)> {
    let endpoints: Vec<String> = cluster.client_urls();
    let ctx = Ctx::new(access, cluster, &endpoints, timeout);
    let results = check_all(&ctx).await;
    cluster
        .nodes
        .iter()
        .map(|n| n.name.clone())
        .zip(results.into_iter().map(|(_, r)| r))
        .collect()
}
