//! `etcd.status` and the status probes other commands reuse: the cluster ID, the largest
//! database, and byte counts shown for people.

use std::time::Duration;

use etcd_client::StatusResponse;
use futures_util::future::join_all;

use super::context::{Ctx, all_ok, endpoint_status, per_endpoint};
use super::error::EtcdError;
use super::members::{self, label_of_id};
use super::{CallOutcome, EtcdAccess};
use crate::inventory::Cluster;

/// The status of every member that answers within `timeout`, all asked at once.
async fn answering_statuses(
    access: &EtcdAccess,
    cluster: &Cluster,
    timeout: Duration,
) -> Vec<StatusResponse> {
    let endpoints = cluster.client_urls();
    let ctx = Ctx::new(access, cluster, &endpoints, timeout);
    join_all(
        endpoints
            .iter()
            .map(|endpoint| tokio::time::timeout(timeout, endpoint_status(&ctx, endpoint))),
    )
    .await
    .into_iter()
    .filter_map(|answer| answer.ok()?.ok())
    .collect()
}

/// The cluster ID (hex) as the first member to answer a status request says; `None` when none
/// answers within `timeout`.
pub(crate) async fn cluster_id(
    access: &EtcdAccess,
    cluster: &Cluster,
    timeout: Duration,
) -> Option<String> {
    answering_statuses(access, cluster, timeout)
        .await
        .into_iter()
        .find_map(|status| status.header().map(|h| format!("{:x}", h.cluster_id())))
}

/// The largest database file among the members that answer: about what a snapshot takes.
pub(crate) async fn largest_db_size(
    access: &EtcdAccess,
    cluster: &Cluster,
    timeout: Duration,
) -> Option<i64> {
    answering_statuses(access, cluster, timeout)
        .await
        .iter()
        .map(StatusResponse::db_size)
        .max()
}

pub(crate) fn header_revision(status: &StatusResponse) -> i64 {
    status.header().map_or(0, |h| h.revision())
}

pub(crate) fn header_member(status: &StatusResponse) -> u64 {
    status.header().map_or(0, |h| h.member_id())
}

/// `etcd.status`.
pub(crate) async fn status(ctx: &Ctx<'_>) -> Result<CallOutcome, EtcdError> {
    let statuses = all_ok(
        "etcd.status",
        per_endpoint(ctx, |ctx, ep| endpoint_status(ctx, ep)).await,
    )?;
    let members = members::list(ctx).await?;
    let leader_id = statuses
        .iter()
        .max_by_key(|(_, s)| s.raft_term())
        .map(|(_, s)| s.leader())
        .unwrap_or(0);
    let mut lines = Vec::new();
    for (endpoint, s) in &statuses {
        let mut line = format!(
            "{}: v{} db {} (in use {}) leader {} term {} index {} applied {}",
            ctx.short(endpoint),
            s.version(),
            crate::humanize::bytes(s.db_size() as f64),
            crate::humanize::bytes(s.raft_used_db_size() as f64),
            if s.leader() == 0 {
                "none".to_string()
            } else {
                label_of_id(ctx.cluster, &members, s.leader())
            },
            s.raft_term(),
            s.raft_index(),
            s.raft_applied_index(),
        );
        if s.is_learner() {
            line.push_str(" learner");
        }
        if !s.errors().is_empty() {
            line.push_str(&format!(" errors: {}", s.errors().join(", ")));
        }
        lines.push(line);
    }
    let summary = lines.join(" | ");
    if leader_id == 0 {
        return Err(EtcdError::Refused {
            what: "etcd.status".into(),
            reason: format!("no member knows a leader (quorum lost?): {summary}"),
        });
    }
    let leader = label_of_id(ctx.cluster, &members, leader_id);
    let revision = statuses
        .iter()
        .map(|(_, s)| header_revision(s))
        .max()
        .unwrap_or(0);
    let raft_term = statuses
        .iter()
        .map(|(_, s)| s.raft_term())
        .max()
        .unwrap_or(0);
    let db_size = statuses.iter().map(|(_, s)| s.db_size()).max().unwrap_or(0);
    Ok(CallOutcome::new(summary)
        .output("leader", leader)
        .output("revision", revision)
        .output("raft_term", raft_term)
        .output("db_size", db_size)
        .output("member_count", members.len()))
}
