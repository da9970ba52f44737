//! The leader: finding it from the members' statuses, `etcd.move_leader` and `verify.leader`.

use etcd_client::StatusResponse;

use super::CallOutcome;
use super::context::{Ctx, call_error, endpoint_status, per_endpoint};
use super::error::EtcdError;
use super::members::{self, label_of_id, member_of_node};
use super::status::header_member;
use crate::runbook::action::{MoveLeaderArgs, VerifyLeaderArgs};

/// The leader as seen by the endpoints that answer: its member id and the endpoint statuses.
async fn find_leader(
    ctx: &Ctx<'_>,
) -> Result<(u64, Vec<(String, StatusResponse)>, Vec<EtcdError>), EtcdError> {
    let results = per_endpoint(ctx, |ctx, ep| endpoint_status(ctx, ep)).await;
    let mut statuses = Vec::new();
    let mut errors = Vec::new();
    for (endpoint, result) in results {
        match result {
            Ok(status) => statuses.push((endpoint, status)),
            Err(err) => errors.push(err),
        }
    }
    if statuses.is_empty() {
        return Err(errors.remove(0));
    }
    let leader = statuses
        .iter()
        .filter(|(_, s)| s.leader() != 0)
        .max_by_key(|(_, s)| s.raft_term())
        .map_or(0, |(_, s)| s.leader());
    Ok((leader, statuses, errors))
}

/// `etcd.move_leader`: sent to the current leader.
pub(crate) async fn move_leader(
    ctx: &Ctx<'_>,
    args: &MoveLeaderArgs,
) -> Result<CallOutcome, EtcdError> {
    let what = format!("etcd.move_leader to {}", args.to);
    let node = ctx
        .cluster
        .node(&args.to)
        .ok_or_else(|| EtcdError::Refused {
            what: what.clone(),
            reason: format!("no node named {} in the inventory", args.to),
        })?;
    let (leader, statuses, _) = find_leader(ctx).await?;
    if leader == 0 {
        return Err(EtcdError::Refused {
            what,
            reason: "no member knows a leader (quorum lost?)".into(),
        });
    }
    let members = members::list(ctx).await?;
    let target = member_of_node(&members, node).ok_or_else(|| EtcdError::Refused {
        what: what.clone(),
        reason: format!("{} is not a member of the cluster", args.to),
    })?;
    if target.is_learner() {
        return Err(EtcdError::Refused {
            what,
            reason: format!("{} is a learner; promote it first", args.to),
        });
    }
    let leader_label = label_of_id(ctx.cluster, &members, leader);
    if target.id() == leader {
        return Ok(CallOutcome::new(format!("{} already leads", args.to)));
    }
    // The leader's own endpoint: one we were given whose status came from the leader, else the
    // leader's advertised client URLs.
    let leader_endpoints: Vec<String> =
        match statuses.iter().find(|(_, s)| header_member(s) == leader) {
            Some((endpoint, _)) => vec![endpoint.clone()],
            None => members
                .iter()
                .find(|m| m.id() == leader)
                .map(|m| m.client_urls().to_vec())
                .unwrap_or_default(),
        };
    if leader_endpoints.is_empty() {
        return Err(EtcdError::Refused {
            what,
            reason: format!("the leader {leader_label} advertises no client URL"),
        });
    }
    let mut client = ctx
        .access
        .client_within(&leader_endpoints, Some(ctx.timeout))
        .await?;
    client
        .move_leader(target.id())
        .await
        .map_err(|err| call_error(format!("{what} (sent to the leader {leader_label})"), err))?;
    Ok(CallOutcome::new(format!(
        "leadership moved from {leader_label} to {}",
        args.to
    )))
}

/// `verify.leader`.
pub(crate) async fn verify_leader(
    ctx: &Ctx<'_>,
    args: &VerifyLeaderArgs,
) -> Result<CallOutcome, EtcdError> {
    let (leader, _, errors) = find_leader(ctx).await?;
    if leader == 0 {
        return Err(EtcdError::Refused {
            what: "verify.leader".into(),
            reason: "no member knows a leader (quorum lost?)".into(),
        });
    }
    let members = members::list_any(ctx).await?;
    let leader_label = label_of_id(ctx.cluster, &members, leader);
    let leader_node = members
        .iter()
        .find(|m| m.id() == leader)
        .and_then(|m| members::node_of_member(ctx.cluster, m))
        .map(|n| n.name.clone());
    let unreachable = if errors.is_empty() {
        String::new()
    } else {
        format!(" ({} endpoint(s) did not answer)", errors.len())
    };
    match &args.node {
        Some(expected) if leader_node.as_deref() != Some(expected.as_str()) => {
            Err(EtcdError::Refused {
                what: "verify.leader".into(),
                reason: format!("the leader is {leader_label}, expected {expected}{unreachable}"),
            })
        }
        _ => Ok(CallOutcome::new(format!(
            "the leader is {leader_label}{unreachable}"
        ))),
    }
}
