//! Gathering the [`Facts`]: every endpoint's status, health and `/metrics` at once, the member
//! list (and the members' own client URLs when they were not given, as `etcdctl --cluster`
//! does), the alarms, the backups (metadata files in directories, listings of SSH and S3
//! destinations) and the drill reports.
//!
//! Nothing here judges: a failure to reach something is recorded as a fact for the rules.

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures_util::future::join_all;

use super::facts::{
    AlarmFacts, BackupDestinationFacts, BackupFacts, BackupRecord, ClusterIdChange, DrillFacts,
    DrillPass, EndpointFacts, Facts, MemberFacts, NodeFacts, StatusFacts,
};
use super::fetch::MetricsClient;
use super::metrics::{MemberMetrics, Scrape};
use super::target::Target;
use crate::backup::destination::Destination;
use crate::backup::store::StoredSnapshot;
use crate::etcd::{
    Ctx, EtcdAccess, active_alarms, check_endpoint, endpoint_status, list_any, node_of_member,
    same_url,
};
use crate::inventory::Cluster;
use crate::snapshot::meta::{META_SUFFIX, SnapshotMeta};

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

/// Copies of this cluster only, when a member told its cluster id: a bucket or directory shared
/// by several clusters must not make another cluster's fresh copy count as this one's. Copies
/// taken before a snapshot restore that `restores` records (the cluster's earlier IDs, followed
/// back through every restore) are this cluster's too, and those IDs are kept (`earlier_ids`).
/// The others are listed apart (`other_clusters`).
fn of_this_cluster(
    mut facts: BackupFacts,
    endpoints: &[EndpointFacts],
    restores: &[ClusterIdChange],
) -> BackupFacts {
    let Some(cluster_id) = endpoints
        .iter()
        .find_map(|e| e.status.as_ref().map(|s| s.cluster_id.clone()))
    else {
        return facts;
    };
    facts.earlier_ids = earlier_ids(&cluster_id, restores);
    let ours = |id: &str| id == cluster_id || facts.earlier_ids.iter().any(|c| c.from == id);
    let (ours, others): (Vec<_>, Vec<_>) = std::mem::take(&mut facts.backups)
        .into_iter()
        .partition(|b| ours(&b.meta.cluster_id));
    facts.backups = ours;
    facts.other_clusters = others
        .iter()
        .map(|b| format!("{} ({} {})", b.location, b.meta.cluster, b.meta.cluster_id))
        .collect();
    facts
}

/// The restores that led to `current`, newest first: the one that made it, the one that made the
/// ID before it, and so on (a cycle, which IDs make unlikely, ends the walk).
fn earlier_ids(current: &str, restores: &[ClusterIdChange]) -> Vec<ClusterIdChange> {
    let mut chain: Vec<ClusterIdChange> = Vec::new();
    let mut visited: Vec<&str> = vec![current];
    while let Some(change) = restores
        .iter()
        .find(|c| c.to == visited[visited.len() - 1] && !visited.contains(&c.from.as_str()))
    {
        visited.push(&change.from);
        chain.push(change.clone());
    }
    chain
}

/// Every cluster ID change journaled by the runs under `dir` (`ClusterIdChanged`, written when a
/// run restored a snapshot). Journals that cannot be read are passed over.
pub fn scan_cluster_ids(dir: &Path) -> Vec<ClusterIdChange> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut changes = Vec::new();
    for entry in entries.flatten() {
        let run = entry.path();
        let Ok(journal) = crate::journal::Journal::read(&run.join("journal.jsonl")) else {
            continue;
        };
        for record in journal.records {
            if let crate::journal::Event::ClusterIdChanged { from, to } = record.event {
                changes.push(ClusterIdChange {
                    from,
                    to,
                    run: run.clone(),
                });
            }
        }
    }
    changes.sort_by(|a, b| a.run.cmp(&b.run));
    changes
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
        .map_err(|_| format!("alarm list: no answer within {:?}", ctx.timeout))?
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
            Err(_) => Err(format!("no answer within {:?}", ctx.timeout)),
        }
    };
    let health = async {
        if !options.health {
            return None;
        }
        let started = Instant::now();
        let result = match tokio::time::timeout(ctx.timeout, check_endpoint(ctx, endpoint)).await {
            Ok(result) => result,
            Err(_) => Err(format!("no answer within {:?}", ctx.timeout)),
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

/// Listing an SSH or S3 destination may take this many member-call timeouts (two minutes with
/// the default 5 s): it opens a connection and reads every metadata file.
const BACKUP_LIST_TIMEOUTS: u32 = 24;

fn backup_list_timeout(timeout: Duration) -> Duration {
    timeout.saturating_mul(BACKUP_LIST_TIMEOUTS)
}

/// Every copy in `destinations`, all read at once, newest first. A directory is scanned with
/// [`scan_backups`]; an SSH or S3 destination is listed, each copy checked by its listing (there,
/// with the metadata's size) within `timeout`. A destination that cannot be read is recorded
/// with its error; the others still count.
pub async fn collect_backups(destinations: &[Destination], timeout: Duration) -> BackupFacts {
    let scanned = join_all(
        destinations
            .iter()
            .map(|destination| scan_destination(destination, timeout)),
    )
    .await;
    let mut facts = BackupFacts::default();
    for one in scanned {
        facts.destinations.extend(one.destinations);
        facts.backups.extend(one.backups);
        facts.unreadable.extend(one.unreadable);
    }
    facts.backups.sort_by_key(|b| std::cmp::Reverse(b.taken_at));
    facts
}

async fn scan_destination(destination: &Destination, timeout: Duration) -> BackupFacts {
    if let Destination::Dir(dir) = destination {
        return scan_backups(dir);
    }
    let shown = destination.to_string();
    let off_host = destination.is_off_host();
    let mut facts = BackupFacts {
        destinations: vec![BackupDestinationFacts {
            destination: shown.clone(),
            off_host,
            error: None,
        }],
        ..BackupFacts::default()
    };
    match crate::backup::list(destination, false, timeout).await {
        Ok(copies) => {
            facts.backups = copies
                .into_iter()
                .map(|copy| stored_record(copy, &shown, off_host))
                .collect();
        }
        Err(err) => {
            let text = crate::exec::error_chain(&err);
            // The rules name the destination; the error need not say it twice.
            let text = text
                .strip_prefix(&format!("{shown}: "))
                .map_or_else(|| text.clone(), str::to_string);
            facts.destinations[0].error = Some(text);
        }
    }
    facts
}

fn stored_record(copy: StoredSnapshot, destination: &str, off_host: bool) -> BackupRecord {
    BackupRecord {
        location: copy.location,
        destination: destination.to_string(),
        off_host,
        good: copy.problem.is_none(),
        problem: copy.problem,
        taken_at: taken_at(&copy.meta),
        meta: copy.meta,
    }
}

fn taken_at(meta: &SnapshotMeta) -> u64 {
    meta.time
        .0
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Every `*.meta.json` in `dir` (not recursive), each checked against its snapshot: present,
/// the recorded size, and a trailer equal to the recorded sha256 (read from the file's end, not
/// recomputed: `etcdrill snapshot verify` does the full check).
pub fn scan_backups(dir: &Path) -> BackupFacts {
    let shown = dir.display().to_string();
    let mut facts = BackupFacts {
        destinations: vec![BackupDestinationFacts {
            destination: shown.clone(),
            off_host: false,
            error: None,
        }],
        ..BackupFacts::default()
    };
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(err) => {
            facts.destinations[0].error = Some(format!("cannot read the directory: {err}"));
            return facts;
        }
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let Some(snapshot) = path
            .file_name()
            .and_then(|n| n.to_str())
            .filter(|n| n.ends_with(META_SUFFIX))
            .and_then(|_| SnapshotMeta::snapshot_for(&path))
        else {
            continue;
        };
        let meta = match SnapshotMeta::read(&path) {
            Ok(meta) => meta,
            Err(err) => {
                facts.unreadable.push(err.to_string());
                continue;
            }
        };
        let problem = check_backup(&snapshot, &meta).err();
        facts.backups.push(BackupRecord {
            location: snapshot.display().to_string(),
            destination: shown.clone(),
            off_host: false,
            good: problem.is_none(),
            problem,
            taken_at: taken_at(&meta),
            meta,
        });
    }
    facts.backups.sort_by_key(|b| std::cmp::Reverse(b.taken_at));
    facts
}

fn check_backup(snapshot: &Path, meta: &SnapshotMeta) -> Result<(), String> {
    let mut file = std::fs::File::open(snapshot).map_err(|e| format!("cannot open it: {e}"))?;
    let size = file.metadata().map_err(|e| e.to_string())?.len();
    if size != meta.size {
        return Err(format!(
            "{size} bytes, the metadata says {} (truncated or replaced)",
            meta.size
        ));
    }
    if size < 32 {
        return Err("too short for a sha256 trailer".into());
    }
    let mut trailer = [0u8; 32];
    file.seek(SeekFrom::End(-32))
        .and_then(|_| file.read_exact(&mut trailer))
        .map_err(|e| format!("cannot read its trailer: {e}"))?;
    let hex: String = trailer.iter().map(|b| format!("{b:02x}")).collect();
    if hex != meta.sha256 {
        return Err(format!(
            "its sha256 trailer is {hex}, the metadata says {}",
            meta.sha256
        ));
    }
    Ok(())
}

/// The newest passing drill under `dir`: run directories whose `report.json` has drill facts and
/// the outcome `succeeded`. Read loosely (only the fields needed), so any report version works.
pub fn scan_drills(dir: &Path) -> DrillFacts {
    let mut facts = DrillFacts {
        dir: dir.to_path_buf(),
        ..DrillFacts::default()
    };
    let Ok(entries) = std::fs::read_dir(dir) else {
        return facts;
    };
    for entry in entries.flatten() {
        let run = entry.path();
        let Ok(text) = std::fs::read_to_string(run.join("report.json")) else {
            continue;
        };
        let Ok(report) = serde_json::from_str::<serde_json::Value>(&text) else {
            continue;
        };
        if report.get("drill").is_none_or(|d| d.is_null()) {
            continue;
        }
        facts.drills_seen += 1;
        if report.pointer("/verdict/outcome").and_then(|o| o.as_str()) != Some("succeeded") {
            continue;
        }
        let Some(ended_at) = report
            .pointer("/timing/ended_at")
            .or_else(|| report.pointer("/timing/started_at"))
            .and_then(|t| t.as_str())
            .and_then(|t| humantime::parse_rfc3339_weak(t).ok())
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map(|d| d.as_secs())
        else {
            continue;
        };
        let text = |pointer: &str| {
            report
                .pointer(pointer)
                .and_then(|v| v.as_str())
                .unwrap_or_default()
                .to_string()
        };
        let pass = DrillPass {
            run: run.clone(),
            runbook: text("/run/runbook"),
            inventory: text("/run/inventory"),
            ended_at,
        };
        if facts
            .newest_pass
            .as_ref()
            .is_none_or(|p| p.ended_at < pass.ended_at)
        {
            facts.newest_pass = Some(pass);
        }
    }
    facts
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::Timestamp;
    use crate::snapshot::meta::{META_FORMAT, META_VERSION};

    #[test]
    fn copies_of_other_clusters_are_set_apart() {
        let record = |cluster_id: &str, location: &str| BackupRecord {
            location: location.into(),
            destination: "s3://shared".into(),
            off_host: true,
            meta: SnapshotMeta {
                cluster_id: cluster_id.into(),
                ..meta(20512, "ab".repeat(32), 100)
            },
            good: true,
            problem: None,
            taken_at: 100,
        };
        let facts = BackupFacts {
            backups: vec![
                record("1", "s3://shared/ours.db"),
                record("2", "s3://shared/theirs.db"),
            ],
            ..BackupFacts::default()
        };
        let endpoint = EndpointFacts {
            status: Some(StatusFacts {
                cluster_id: "1".into(),
                ..StatusFacts::default()
            }),
            ..EndpointFacts::default()
        };
        let kept = of_this_cluster(facts.clone(), std::slice::from_ref(&endpoint), &[]);
        assert_eq!(kept.backups.len(), 1);
        assert_eq!(kept.backups[0].location, "s3://shared/ours.db");
        assert_eq!(kept.other_clusters.len(), 1);
        assert!(kept.other_clusters[0].contains("theirs.db"));
        assert!(kept.earlier_ids.is_empty());
        // No member answered: nothing to compare with, everything counts.
        assert_eq!(of_this_cluster(facts.clone(), &[], &[]).backups.len(), 2);

        // Cluster 1 was restored from a snapshot twice, once as 0 -> 3 and then 3 -> 1: copies
        // of 0 and 3 are its own; 2 stays another cluster.
        let change = |from: &str, to: &str, run: &str| ClusterIdChange {
            from: from.into(),
            to: to.into(),
            run: run.into(),
        };
        let mut facts = facts;
        facts
            .backups
            .push(record("3", "s3://shared/before-restore.db"));
        facts.backups.push(record("0", "s3://shared/long-ago.db"));
        let restores = [
            change("3", "1", "runs/b"),
            change("2", "5", "runs/x"),
            change("0", "3", "runs/a"),
        ];
        let kept = of_this_cluster(facts, std::slice::from_ref(&endpoint), &restores);
        let locations: Vec<&str> = kept.backups.iter().map(|b| b.location.as_str()).collect();
        assert_eq!(
            locations,
            [
                "s3://shared/ours.db",
                "s3://shared/before-restore.db",
                "s3://shared/long-ago.db"
            ]
        );
        assert_eq!(kept.earlier_ids, [restores[0].clone(), restores[2].clone()]);
        assert_eq!(kept.other_clusters.len(), 1);
    }

    #[test]
    fn cluster_id_changes_are_read_from_run_journals() {
        let dir = tempfile::tempdir().unwrap();
        let run = dir.path().join("r1");
        std::fs::create_dir(&run).unwrap();
        let mut journal =
            crate::journal::JournalWriter::create(&run.join("journal.jsonl"), "r1", "d").unwrap();
        journal
            .append(crate::journal::Event::ClusterIdChanged {
                from: "a1".into(),
                to: "b2".into(),
            })
            .unwrap();
        std::fs::create_dir(dir.path().join("not-a-run")).unwrap();
        assert_eq!(
            scan_cluster_ids(dir.path()),
            [ClusterIdChange {
                from: "a1".into(),
                to: "b2".into(),
                run,
            }]
        );
        assert!(scan_cluster_ids(&dir.path().join("none")).is_empty());
    }

    fn meta(size: u64, sha256: String, secs: u64) -> SnapshotMeta {
        SnapshotMeta {
            format: META_FORMAT.into(),
            version: META_VERSION,
            cluster: "c".into(),
            cluster_id: "1".into(),
            member: "cp1".into(),
            member_id: "a".into(),
            endpoint: "https://x:2379".into(),
            etcd_version: "3.5.1".into(),
            revision: 9,
            time: Timestamp(UNIX_EPOCH + Duration::from_secs(secs)),
            size,
            sha256,
            written_on: "host".into(),
        }
    }

    #[test]
    fn backups_are_checked_against_their_metadata() {
        let dir = tempfile::tempdir().unwrap();
        let mut bytes = vec![7u8; 512];
        let trailer = [0xabu8; 32];
        bytes.extend_from_slice(&trailer);
        let sha = "ab".repeat(32);
        let write = |name: &str, meta: SnapshotMeta| {
            let path = dir.path().join(name);
            std::fs::write(&path, &bytes).unwrap();
            meta.write(&SnapshotMeta::path_for(&path)).unwrap();
        };
        write("good.db", meta(544, sha.clone(), 2000));
        write("short.db", meta(9999, sha.clone(), 3000));
        write("other.db", meta(544, "cd".repeat(32), 1000));
        meta(544, sha, 4000)
            .write(&dir.path().join("missing.db.meta.json"))
            .unwrap();
        std::fs::write(dir.path().join("junk.db.meta.json"), "{}").unwrap();
        std::fs::write(dir.path().join("plain.db"), b"x").unwrap();

        let facts = scan_backups(dir.path());
        let seen: Vec<(String, bool)> = facts
            .backups
            .iter()
            .map(|b| {
                (
                    Path::new(&b.location)
                        .file_name()
                        .unwrap()
                        .to_string_lossy()
                        .into_owned(),
                    b.good,
                )
            })
            .collect();
        assert_eq!(
            seen,
            vec![
                ("missing.db".into(), false),
                ("short.db".into(), false),
                ("good.db".into(), true),
                ("other.db".into(), false),
            ]
        );
        assert!(facts.backups[1].problem.as_ref().unwrap().contains("9999"));
        assert!(
            facts.backups[3]
                .problem
                .as_ref()
                .unwrap()
                .contains("trailer")
        );
        assert_eq!(facts.unreadable.len(), 1);
        assert!(facts.backups.iter().all(|b| !b.off_host));
        assert_eq!(facts.destinations.len(), 1);
        assert_eq!(facts.destinations[0].error, None);
        let missing = scan_backups(&dir.path().join("nope"));
        assert!(missing.destinations[0].error.is_some());
        assert!(missing.backups.is_empty());
    }

    #[tokio::test]
    async fn an_unreachable_destination_is_a_fact_and_the_others_still_count() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let mut bytes = vec![7u8; 512];
        bytes.extend_from_slice(&[0xabu8; 32]);
        for (dir, secs) in [(&a, 1000), (&b, 2000)] {
            let path = dir.path().join("s.db");
            std::fs::write(&path, &bytes).unwrap();
            meta(544, "ab".repeat(32), secs)
                .write(&SnapshotMeta::path_for(&path))
                .unwrap();
        }
        // Nothing listens on the discard port: the listing fails (or runs out of time).
        let unreachable = Destination::parse("ssh://nobody@127.0.0.1:9/srv/etcd").unwrap();
        let facts = collect_backups(
            &[
                Destination::Dir(a.path().to_path_buf()),
                unreachable,
                Destination::Dir(b.path().to_path_buf()),
            ],
            Duration::from_secs(2),
        )
        .await;
        let shown: Vec<(&str, bool, bool)> = facts
            .destinations
            .iter()
            .map(|d| (d.destination.as_str(), d.off_host, d.error.is_some()))
            .collect();
        let (a_shown, b_shown) = (
            a.path().display().to_string(),
            b.path().display().to_string(),
        );
        assert_eq!(
            shown,
            vec![
                (a_shown.as_str(), false, false),
                ("ssh://nobody@127.0.0.1:9/srv/etcd", true, true),
                (b_shown.as_str(), false, false),
            ]
        );
        let error = facts.destinations[1].error.as_deref().unwrap();
        assert!(!error.starts_with("ssh://"), "{error}");
        let found: Vec<(&str, u64)> = facts
            .backups
            .iter()
            .map(|r| (r.destination.as_str(), r.taken_at))
            .collect();
        assert_eq!(
            found,
            vec![(b_shown.as_str(), 2000), (a_shown.as_str(), 1000)]
        );
        assert!(facts.backups.iter().all(|r| r.good));
    }

    #[test]
    fn the_newest_passing_drill_is_found() {
        let dir = tempfile::tempdir().unwrap();
        let report = |name: &str, outcome: &str, drill: bool, ended: &str| {
            let run = dir.path().join(name);
            std::fs::create_dir_all(&run).unwrap();
            let value = serde_json::json!({
                "verdict": {"outcome": outcome, "drill": drill, "title": "x"},
                "run": {"runbook": "restore-3-node", "inventory": "bed"},
                "timing": {"started_at": ended, "ended_at": ended},
                "drill": if drill { serde_json::json!({"rto_ms": 1}) } else { serde_json::Value::Null },
            });
            std::fs::write(run.join("report.json"), value.to_string()).unwrap();
        };
        report("a", "succeeded", true, "2024-01-01T00:00:00.000Z");
        report("b", "succeeded", true, "2024-02-01T00:00:00.000Z");
        report("c", "failed", true, "2024-03-01T00:00:00.000Z");
        report("d", "succeeded", false, "2024-04-01T00:00:00.000Z");
        let facts = scan_drills(dir.path());
        assert_eq!(facts.drills_seen, 3);
        let pass = facts.newest_pass.unwrap();
        assert_eq!(pass.run, dir.path().join("b"));
        assert_eq!(pass.runbook, "restore-3-node");
        assert_eq!(pass.ended_at, 1_706_745_600);
        assert!(scan_drills(&dir.path().join("none")).newest_pass.is_none());
    }
}
