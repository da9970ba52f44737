//! The etcd API actions and verifications: one function per action, dispatched by [`run`].

use std::time::Duration;

use etcd_client::{
    AlarmAction, AlarmOptions, AlarmType, Client, CompactionOptions, HashKvResponse, StatusResponse,
};

use super::error::{ApiError, EtcdError};
use super::members::{self, label_of_id, member_of_node, same_url};
use super::{CallOutcome, EtcdAccess, health, join_all, snapshot};
use crate::inventory::Cluster;
use crate::runbook::action::{
    Action, CompactArgs, KvGetArgs, KvPutArgs, MoveLeaderArgs, VerifyKeyArgs, VerifyLeaderArgs,
};
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
        let probes = join_all(
            self.endpoints
                .iter()
                .map(|endpoint| async move {
                    let mut client = self.client_for(endpoint).await?;
                    endpoint_status_with(self, &mut client, endpoint).await?;
                    Ok::<_, EtcdError>(client)
                })
                .collect(),
        )
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

/// Runs one etcd API action (not `wait.healthy`, which polls on its own clock).
pub(crate) async fn run(ctx: &Ctx<'_>, call: &Action) -> Result<CallOutcome, EtcdError> {
    match call {
        Action::EtcdHealth(_) => health::health(ctx).await,
        Action::EtcdStatus(_) => status(ctx).await,
        Action::EtcdMemberList(_) => members::member_list(ctx).await,
        Action::EtcdMemberAdd(args) => members::member_add(ctx, args).await,
        Action::EtcdMemberPromote(args) => members::member_promote(ctx, args).await,
        Action::EtcdMemberRemove(args) => members::member_remove(ctx, args).await,
        Action::EtcdSnapshotSave(args) => snapshot::save(ctx, args).await,
        Action::EtcdDefrag(_) => defrag(ctx).await,
        Action::EtcdCompact(args) => compact(ctx, args).await,
        Action::EtcdAlarmList(_) => alarm_list(ctx).await,
        Action::EtcdAlarmDisarm(_) => alarm_disarm(ctx).await,
        Action::EtcdMoveLeader(args) => move_leader(ctx, args).await,
        Action::EtcdKvPut(args) => kv_put(ctx, args).await,
        Action::EtcdKvGet(args) => kv_get(ctx, args).await,
        Action::EtcdHashKv(_) => hashkv(ctx).await,
        Action::WaitHealthy(args) => health::wait_healthy(ctx, args.members).await,
        Action::VerifyHealthy(args) => health::verify_healthy(ctx, args.min_healthy).await,
        Action::VerifyMemberCount(args) => members::verify_member_count(ctx, args).await,
        Action::VerifyKey(args) => verify_key(ctx, args).await,
        Action::VerifyHashKv(_) => verify_hashkv(ctx).await,
        Action::VerifyNoAlarms(_) => verify_no_alarms(ctx).await,
        Action::VerifyLeader(args) => verify_leader(ctx, args).await,
        Action::EtcdSnapshotVerify(_)
        | Action::Shell(_)
        | Action::EtcdSnapshotRestore(_)
        | Action::EtcdStopMember(_)
        | Action::EtcdStartMember(_)
        | Action::EtcdConfigureMember(_)
        | Action::EtcdDataDirReplace(_)
        | Action::EtcdDataDirSetAside(_)
        | Action::FileCopy(_)
        | Action::BackupShip(_)
        | Action::BackupPrune(_) => Err(EtcdError::Unsupported {
            action: call.kind().name(),
        }),
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
    let results = join_all(ctx.endpoints.iter().map(|ep| f(ctx, ep)).collect()).await;
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
            .map(|endpoint| tokio::time::timeout(timeout, endpoint_status(&ctx, endpoint)))
            .collect(),
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

/// A byte count for people: `24.6 kB`, `1.2 GB`.
pub(crate) fn human_bytes(bytes: i64) -> String {
    let units = ["B", "kB", "MB", "GB", "TB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit + 1 < units.len() {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", units[unit])
    }
}

fn header_revision(status: &StatusResponse) -> i64 {
    status.header().map_or(0, |h| h.revision())
}

fn header_member(status: &StatusResponse) -> u64 {
    status.header().map_or(0, |h| h.member_id())
}

/// `etcd.status`.
async fn status(ctx: &Ctx<'_>) -> Result<CallOutcome, EtcdError> {
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
            human_bytes(s.db_size()),
            human_bytes(s.raft_used_db_size()),
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

/// `etcd.defrag`: one endpoint at a time, in the order given.
async fn defrag(ctx: &Ctx<'_>) -> Result<CallOutcome, EtcdError> {
    let mut done = Vec::new();
    for endpoint in ctx.endpoints {
        let before = endpoint_status(ctx, endpoint).await?.db_size();
        let mut client = ctx.client_for(endpoint).await?;
        client
            .defragment()
            .await
            .map_err(|err| call_error(format!("defragment of {}", ctx.label(endpoint)), err))?;
        let after = endpoint_status(ctx, endpoint).await?.db_size();
        done.push(format!(
            "{}: {} -> {}",
            ctx.short(endpoint),
            human_bytes(before),
            human_bytes(after)
        ));
    }
    Ok(CallOutcome::new(format!(
        "defragmented {}",
        done.join(", ")
    )))
}

/// The current revision, from a read's header.
async fn current_revision(ctx: &Ctx<'_>, client: &mut Client) -> Result<i64, EtcdError> {
    let resp = client
        .get(
            "health",
            Some(etcd_client::GetOptions::new().with_count_only()),
        )
        .await
        .map_err(|err| call_error(format!("read on {}", ctx.endpoints.join(",")), err))?;
    Ok(resp.header().map_or(0, |h| h.revision()))
}

/// `etcd.compact`: to the current revision minus `keep_revisions`, or to `revision` if that
/// keeps the window. Compacting to an already compacted revision succeeds (a retry).
async fn compact(ctx: &Ctx<'_>, args: &CompactArgs) -> Result<CallOutcome, EtcdError> {
    let mut client = ctx.client().await?;
    let current = current_revision(ctx, &mut client).await?;
    let newest_allowed = current - args.keep_revisions as i64;
    let target = match args.revision {
        Some(revision) if revision as i64 > newest_allowed => {
            return Err(EtcdError::Refused {
                what: "etcd.compact".into(),
                reason: format!(
                    "refusing to compact to revision {revision}: the current revision is \
                     {current} and keep_revisions {} allows at most {}",
                    args.keep_revisions,
                    newest_allowed.max(0)
                ),
            });
        }
        Some(revision) => revision as i64,
        None => newest_allowed,
    };
    if target < 1 {
        return Ok(CallOutcome::new(format!(
            "nothing to compact: the current revision {current} is within the {} kept",
            args.keep_revisions
        ))
        .output("revision", 0));
    }
    let options = args
        .physical
        .then(|| CompactionOptions::new().with_physical());
    match client.compact(target, options).await {
        Ok(_) => Ok(CallOutcome::new(format!(
            "compacted to revision {target} (current {current}{})",
            if args.physical {
                ", physically applied"
            } else {
                ""
            }
        ))
        .output("revision", target)),
        Err(err) => {
            let api = ApiError(err);
            if api
                .message()
                .contains("required revision has been compacted")
            {
                Ok(CallOutcome::new(format!(
                    "already compacted to revision {target} or later (current {current})"
                ))
                .output("revision", target))
            } else {
                Err(EtcdError::Call {
                    what: format!("compact to revision {target}"),
                    source: api,
                })
            }
        }
    }
}

/// Active alarms as `(member id, type)`, from any endpoint (alarms are cluster-wide).
pub(crate) async fn active_alarms(
    ctx: &Ctx<'_>,
    client: &mut Client,
) -> Result<Vec<(u64, AlarmType)>, EtcdError> {
    let resp = client
        .alarm(AlarmAction::Get, AlarmType::None, None)
        .await
        .map_err(|err| call_error(format!("alarm list on {}", ctx.endpoints.join(",")), err))?;
    Ok(resp
        .alarms()
        .iter()
        .map(|a| (a.member_id(), a.alarm()))
        .collect())
}

/// `NOSPACE@cp2,CORRUPT@cp1`.
pub(crate) fn format_alarms(
    cluster: &Cluster,
    members: &[etcd_client::Member],
    alarms: &[(u64, AlarmType)],
) -> String {
    alarms
        .iter()
        .map(|(id, kind)| {
            format!(
                "{}@{}",
                kind.as_str_name(),
                label_of_id(cluster, members, *id)
            )
        })
        .collect::<Vec<_>>()
        .join(",")
}

async fn alarms_text(ctx: &Ctx<'_>) -> Result<(Vec<(u64, AlarmType)>, String), EtcdError> {
    let mut client = ctx.client().await?;
    let alarms = active_alarms(ctx, &mut client).await?;
    if alarms.is_empty() {
        return Ok((alarms, "none".into()));
    }
    let members = members::list_with(ctx, &mut client).await?;
    let text = format_alarms(ctx.cluster, &members, &alarms);
    Ok((alarms, text))
}

/// `etcd.alarm.list`.
async fn alarm_list(ctx: &Ctx<'_>) -> Result<CallOutcome, EtcdError> {
    let (alarms, text) = alarms_text(ctx).await?;
    Ok(
        CallOutcome::new(format!("{} active alarm(s): {text}", alarms.len()))
            .output("alarms", text),
    )
}

/// `etcd.alarm.disarm`: disarms every active alarm.
async fn alarm_disarm(ctx: &Ctx<'_>) -> Result<CallOutcome, EtcdError> {
    let (alarms, text) = alarms_text(ctx).await?;
    let mut client = ctx.client().await?;
    for (member, kind) in &alarms {
        let mut options = AlarmOptions::new();
        options.with_member(*member);
        client
            .alarm(AlarmAction::Deactivate, *kind, Some(options))
            .await
            .map_err(|err| {
                call_error(
                    format!("disarm of {} on member {member:x}", kind.as_str_name()),
                    err,
                )
            })?;
    }
    Ok(CallOutcome::new(if alarms.is_empty() {
        "no active alarm to disarm".to_string()
    } else {
        format!("disarmed {text}")
    }))
}

/// `verify.no_alarms`.
async fn verify_no_alarms(ctx: &Ctx<'_>) -> Result<CallOutcome, EtcdError> {
    let (alarms, text) = alarms_text(ctx).await?;
    if !alarms.is_empty() {
        return Err(EtcdError::Refused {
            what: "verify.no_alarms".into(),
            reason: format!(
                "active alarm(s): {text} (NOSPACE: compact, defragment every member, then \
                 disarm)"
            ),
        });
    }
    Ok(CallOutcome::new("no active alarm"))
}

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
async fn move_leader(ctx: &Ctx<'_>, args: &MoveLeaderArgs) -> Result<CallOutcome, EtcdError> {
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
async fn verify_leader(ctx: &Ctx<'_>, args: &VerifyLeaderArgs) -> Result<CallOutcome, EtcdError> {
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

/// `etcd.kv.put`.
async fn kv_put(ctx: &Ctx<'_>, args: &KvPutArgs) -> Result<CallOutcome, EtcdError> {
    let mut client = ctx.client().await?;
    let resp = client
        .put(args.key.as_bytes(), args.value.as_bytes(), None)
        .await
        .map_err(|err| call_error(format!("put of {}", args.key), err))?;
    let revision = resp.header().map_or(0, |h| h.revision());
    Ok(
        CallOutcome::new(format!("put {} at revision {revision}", args.key))
            .output("revision", revision),
    )
}

/// A key's value (lossy UTF-8) and the read's revision.
async fn get(ctx: &Ctx<'_>, key: &str) -> Result<(Option<String>, i64), EtcdError> {
    let mut client = ctx.client().await?;
    let resp = client
        .get(key.as_bytes(), None)
        .await
        .map_err(|err| call_error(format!("get of {key}"), err))?;
    let revision = resp.header().map_or(0, |h| h.revision());
    let value = resp
        .kvs()
        .first()
        .map(|kv| String::from_utf8_lossy(kv.value()).into_owned());
    Ok((value, revision))
}

/// `etcd.kv.get`: a missing key gives an empty value, and the summary says it is missing.
async fn kv_get(ctx: &Ctx<'_>, args: &KvGetArgs) -> Result<CallOutcome, EtcdError> {
    let (value, revision) = get(ctx, &args.key).await?;
    let summary = match &value {
        Some(value) => format!(
            "{} = {} bytes at revision {revision}",
            args.key,
            value.len()
        ),
        None => format!(
            "{} is missing at revision {revision} (value output is empty)",
            args.key
        ),
    };
    Ok(CallOutcome::new(summary)
        .output("value", value.unwrap_or_default())
        .output("revision", revision))
}

/// `verify.key`.
async fn verify_key(ctx: &Ctx<'_>, args: &VerifyKeyArgs) -> Result<CallOutcome, EtcdError> {
    let (value, revision) = get(ctx, &args.key).await?;
    let refuse = |reason: String| EtcdError::Refused {
        what: format!("verify.key {}", args.key),
        reason,
    };
    match (args.present, value, &args.value) {
        (true, None, _) => Err(refuse(format!("the key is missing at revision {revision}"))),
        (true, Some(found), Some(expected)) if &found != expected => Err(refuse(format!(
            "the value is {found:?}, expected {expected:?} (revision {revision})"
        ))),
        (true, Some(_), _) => Ok(CallOutcome::new(format!(
            "{} is present as expected at revision {revision}",
            args.key
        ))),
        (false, Some(_), _) => Err(refuse(format!(
            "the key exists at revision {revision}, expected it absent"
        ))),
        (false, None, _) => Ok(CallOutcome::new(format!(
            "{} is absent as expected at revision {revision}",
            args.key
        ))),
    }
}

async fn endpoint_hashkv(
    ctx: &Ctx<'_>,
    endpoint: &str,
    revision: i64,
) -> Result<HashKvResponse, EtcdError> {
    let mut client = ctx.client_for(endpoint).await?;
    client.hash_kv(revision).await.map_err(|err| {
        call_error(
            format!("hashkv at revision {revision} of {}", ctx.label(endpoint)),
            err,
        )
    })
}

/// The revision a HashKV answer is for: the requested one, or the header's current one.
fn hashed_revision(resp: &HashKvResponse, requested: i64) -> i64 {
    if requested > 0 {
        requested
    } else {
        resp.header().map_or(0, |h| h.revision())
    }
}

/// `etcd.hashkv`: each endpoint at its current revision; outputs from the first.
async fn hashkv(ctx: &Ctx<'_>) -> Result<CallOutcome, EtcdError> {
    let results = all_ok(
        "etcd.hashkv",
        per_endpoint(ctx, |ctx, ep| endpoint_hashkv(ctx, ep, 0)).await,
    )?;
    let summary = results
        .iter()
        .map(|(ep, r)| {
            format!(
                "{}: hash {} at revision {} (compacted at {})",
                ctx.short(ep),
                r.hash(),
                hashed_revision(r, 0),
                r.compact_version()
            )
        })
        .collect::<Vec<_>>()
        .join(", ");
    let (_, first) = &results[0];
    Ok(CallOutcome::new(summary)
        .output("hash", first.hash())
        .output("revision", hashed_revision(first, 0)))
}

/// `verify.hashkv`: every endpoint hashes the same revision (the lowest current revision among
/// them) and must report the same hash; tried twice in case a compaction raced.
async fn verify_hashkv(ctx: &Ctx<'_>) -> Result<CallOutcome, EtcdError> {
    let mut last = None;
    for _ in 0..2 {
        match hashkv_once(ctx).await? {
            Ok(outcome) => return Ok(outcome),
            Err(reason) => last = Some(reason),
        }
    }
    Err(EtcdError::Refused {
        what: "verify.hashkv".into(),
        reason: last.unwrap_or_default(),
    })
}

async fn hashkv_once(ctx: &Ctx<'_>) -> Result<Result<CallOutcome, String>, EtcdError> {
    let statuses = all_ok(
        "verify.hashkv",
        per_endpoint(ctx, |ctx, ep| endpoint_status(ctx, ep)).await,
    )?;
    let revision = statuses
        .iter()
        .map(|(_, s)| header_revision(s))
        .min()
        .unwrap_or(0);
    let results = per_endpoint(ctx, |ctx, ep| endpoint_hashkv(ctx, ep, revision)).await;
    let mut hashes = Vec::new();
    for (endpoint, result) in results {
        match result {
            Ok(resp) => hashes.push((endpoint, resp)),
            // Compacted past the revision between status and hash: try again.
            Err(EtcdError::Call { source, .. })
                if source
                    .message()
                    .contains("required revision has been compacted") =>
            {
                return Ok(Err(format!(
                    "revision {revision} was compacted while hashing; try again"
                )));
            }
            Err(err) => return Err(err),
        }
    }
    let (first_ep, first) = &hashes[0];
    let differing: Vec<String> = hashes
        .iter()
        .filter(|(_, r)| r.hash() != first.hash() || r.compact_version() != first.compact_version())
        .map(|(ep, r)| {
            format!(
                "{} reports hash {} at revision {revision} (compacted at {})",
                ctx.short(ep),
                r.hash(),
                r.compact_version()
            )
        })
        .collect();
    if differing.is_empty() {
        return Ok(Ok(CallOutcome::new(format!(
            "{} members agree: hash {} at revision {revision}",
            hashes.len(),
            first.hash()
        ))));
    }
    Ok(Err(format!(
        "{}, {} reports {} (compacted at {}): the members' data differs; find the odd one out \
         (etcd's corruption check, `etcdctl endpoint hashkv`) before trusting it",
        differing.join(", "),
        ctx.short(first_ep),
        first.hash(),
        first.compact_version()
    )))
}
