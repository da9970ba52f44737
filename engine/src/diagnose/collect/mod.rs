//! Gathering the [`Facts`]: every endpoint's status, health and `/metrics` at once, the member
//! list (and the members' own client URLs when they were not given, as `etcdctl --cluster`
//! does), the alarms, the backups (metadata files in directories, listings of SSH and S3
//! destinations) and the drill reports.
//!
//! Nothing here judges: a failure to reach something is recorded as a fact for the rules. This
//! file gathers from the cluster; `backups` and `drills` gather from the destinations and the
//! run directories.

mod backups;
mod drills;
#[cfg(test)]
mod tests;

pub use backups::{collect_backups, scan_backups, scan_cluster_ids};
pub use drills::scan_drills;

use backups::{backup_list_timeout, of_this_cluster};

use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures_util::future::join_all;

use super::facts::{
    AlarmFacts, DrillFacts, EndpointFacts, Facts, MemberFacts, NodeFacts, StatusFacts,
};
use super::fetch::MetricsClient;
use super::metrics::{MemberMetrics, Scrape};
use super::target::Target;
use crate::backup::destination::Destination;
use crate::etcd::{
    Ctx, EtcdAccess, active_alarms, check_endpoint, endpoint_status, list_any, node_of_member,
    same_url,
};
use crate::inventory::Cluster;

/// What to gather.
#[derive(Debug, Clone)]
pub struct Options {
    /// Bound of each call to a member.
    pub timeout: Duration,
    /// Check health (`health`, `diagnose`).
    pub health: bool,
    /// Read `/metrics` (`diagnose`).
    pub metrics: bool,
    /// Ask the members found in the member list that were not given.
    pub discover: bool,
    /// The `--backups` destinations; empty to skip backups.
    pub backups: Vec<Destination>,
    /// The `--runs` directory; `None` to skip drill reports.
    pub runs: Option<PathBuf>,
    /// The inventory file as given.
    pub inventory: Option<String>,
}

/// Gathers the facts about the cluster at `target`. `cluster` is the inventory, or an empty one.
pub async fn collect(
    target: &Target,
    access: &EtcdAccess,
    cluster: &Cluster,
    with_inventory: bool,
    options: &Options,
) -> Facts {
    let metrics_client = if options.metrics {
        Some(MetricsClient::new(target.tls.as_ref()))
    } else {
        None
    };
    let ctx = Ctx::new(access, cluster, &target.endpoints, options.timeout);
    let mut endpoints = probe_all(
        &ctx,
        &target.endpoints,
        false,
        options,
        metrics_client.as_ref(),
    )
    .await;

    let (members, member_list_error) = if endpoints.iter().any(|e| e.status.is_some()) {
        let answering: Vec<String> = endpoints
            .iter()
            .filter(|e| e.status.is_some())
            .map(|e| e.endpoint.clone())
            .collect();
        let list_ctx = Ctx {
            endpoints: &answering,
            ..ctx
        };
        match list_any(&list_ctx).await {
            Ok(members) => (Some(members), None),
            Err(err) => (None, Some(err.to_string())),
        }
    } else {
        (None, Some("no endpoint answered".to_string()))
    };

    // Members nobody answered for, reachable at a client URL that was not given.
    if options.discover
        && let Some(members) = &members
    {
        let more: Vec<String> = members
            .iter()
            .filter(|m| {
                !endpoints.iter().any(|e| {
                    e.status
                        .as_ref()
                        .is_some_and(|s| s.member_id == format!("{:x}", m.id()))
                })
            })
            .filter_map(|m| m.client_urls().first().cloned())
            .filter(|url| !endpoints.iter().any(|e| same_url(&e.endpoint, url)))
            .collect();
        if !more.is_empty() {
            let discovered = probe_all(&ctx, &more, true, options, metrics_client.as_ref()).await;
            endpoints.extend(discovered);
        }
    }

    let member_facts: Option<Vec<MemberFacts>> = members.as_ref().map(|members| {
        members
            .iter()
            .map(|m| MemberFacts {
                id: format!("{:x}", m.id()),
                name: m.name().to_string(),
                peer_urls: m.peer_urls().to_vec(),
                client_urls: m.client_urls().to_vec(),
                is_learner: m.is_learner(),
                node: node_of_member(cluster, m).map(|n| n.name.clone()),
            })
            .collect()
    });

    let (alarms, alarm_error) = match endpoints.iter().find(|e| e.status.is_some()) {
        Some(endpoint) => match read_alarms(&ctx, &endpoint.endpoint).await {
            Ok(alarms) => (
                alarms
                    .into_iter()
                    .map(|(id, alarm)| {
                        let id = format!("{id:x}");
                        let member = member_facts
                            .as_deref()
                            .unwrap_or_default()
                            .iter()
                            .find(|m| m.id == id)
                            .map(MemberFacts::label)
                            .unwrap_or_else(|| format!("member {id}"));
                        AlarmFacts {
                            member_id: id,
                            member,
                            alarm,
                        }
                    })
                    .collect(),
                None,
            ),
            Err(err) => (Vec::new(), Some(err)),
        },
        None => (Vec::new(), Some("no endpoint answered".to_string())),
    };

    let inventory = with_inventory.then(|| cluster.inventory());
    let restores = match &options.runs {
        Some(dir) if !options.backups.is_empty() => scan_cluster_ids(dir),
        _ => Vec::new(),
    };
    let backups = of_this_cluster(
        collect_backups(&options.backups, backup_list_timeout(options.timeout)).await,
        &endpoints,
        &restores,
    );
    Facts {
        cluster: inventory.map(|i| i.name.clone()),
        inventory: options.inventory.clone(),
        production: inventory.is_some_and(|i| i.production),
        nodes: cluster
            .nodes
            .iter()
            .map(|n| NodeFacts {
                name: n.name.clone(),
                address: n.address.clone(),
                member: n.etcd.member.clone(),
                client_url: n.etcd.client_url.clone(),
            })
            .collect(),
        endpoints,
        members: member_facts,
        member_list_error,
        alarms,
        alarm_error,
        backups,
        drills: match &options.runs {
            Some(dir) => scan_drills(dir),
            None => DrillFacts::default(),
        },
        now: unix_now(),
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

async fn read_alarms(ctx: &Ctx<'_>, endpoint: &str) -> Result<Vec<(u64, String)>, String> {
    let mut client = ctx.client_for(endpoint).await.map_err(|e| e.to_string())?;
    let alarms = tokio::time::timeout(ctx.timeout, active_alarms(ctx, &mut client))
        .await
        .map_err(|_| {
            format!(
                "alarm list: no answer within {}",
                crate::humanize::limit(ctx.timeout)
            )
        })?
        .map_err(|e| e.to_string())?;
    Ok(alarms
        .into_iter()
        .map(|(id, kind)| (id, kind.as_str_name().to_string()))
        .collect())
}

/// Status, health and metrics of each endpoint, all at once.
async fn probe_all(
    ctx: &Ctx<'_>,
    endpoints: &[String],
    discovered: bool,
    options: &Options,
    metrics: Option<&Result<MetricsClient, String>>,
) -> Vec<EndpointFacts> {
    join_all(
        endpoints
            .iter()
            .map(|endpoint| probe(ctx, endpoint, discovered, options, metrics)),
    )
    .await
}

async fn probe(
    ctx: &Ctx<'_>,
    endpoint: &str,
    discovered: bool,
    options: &Options,
    metrics: Option<&Result<MetricsClient, String>>,
) -> EndpointFacts {
    let status = async {
        match tokio::time::timeout(ctx.timeout, endpoint_status(ctx, endpoint)).await {
            Ok(Ok(status)) => Ok(status),
            Ok(Err(err)) => Err(err.to_string()),
            Err(_) => Err(format!(
                "no answer within {}",
                crate::humanize::limit(ctx.timeout)
            )),
        }
    };
    let health = async {
        if !options.health {
            return None;
        }
        let started = Instant::now();
        let result = match tokio::time::timeout(ctx.timeout, check_endpoint(ctx, endpoint)).await {
            Ok(result) => result,
            Err(_) => Err(format!(
                "no answer within {}",
                crate::humanize::limit(ctx.timeout)
            )),
        };
        Some((result, started.elapsed()))
    };
    let scrape = async {
        match metrics {
            None => None,
            Some(Err(err)) => Some(Err(err.clone())),
            Some(Ok(client)) => Some(
                client
                    .metrics(endpoint, ctx.timeout)
                    .await
                    .and_then(|text| Scrape::parse(&text).map_err(|e| e.to_string()))
                    .map(|scrape| MemberMetrics::from_scrape(&scrape)),
            ),
        }
    };
    let (status, health, scrape) = tokio::join!(status, health, scrape);
    let node = ctx
        .cluster
        .nodes
        .iter()
        .find(|n| same_url(&n.etcd.client_url, endpoint))
        .map(|n| n.name.clone());
    let (status, status_error) = match status {
        Ok(s) => (
            Some(StatusFacts {
                member_id: format!("{:x}", s.header().map_or(0, |h| h.member_id())),
                cluster_id: format!("{:x}", s.header().map_or(0, |h| h.cluster_id())),
                version: s.version().to_string(),
                db_size: s.db_size(),
                db_size_in_use: s.raft_used_db_size(),
                leader: (s.leader() != 0).then(|| format!("{:x}", s.leader())),
                raft_term: s.raft_term(),
                raft_index: s.raft_index(),
                raft_applied_index: s.raft_applied_index(),
                is_learner: s.is_learner(),
                errors: s.errors().to_vec(),
                revision: s.header().map_or(0, |h| h.revision()),
            }),
            None,
        ),
        Err(err) => (None, Some(err)),
    };
    let (healthy, health_error, health_took_ms) = match health {
        None => (None, None, None),
        Some((Ok(()), took)) => (Some(true), None, Some(took.as_millis() as u64)),
        Some((Err(err), took)) => (Some(false), Some(err), Some(took.as_millis() as u64)),
    };
    let (metrics, metrics_error) = match scrape {
        None => (None, None),
        Some(Ok(m)) => (Some(m), None),
        Some(Err(err)) => (None, Some(err)),
    };
    EndpointFacts {
        endpoint: endpoint.to_string(),
        node,
        discovered,
        status,
        status_error,
        healthy,
        health_error,
        health_took_ms,
        metrics,
        metrics_error,
    }
}
