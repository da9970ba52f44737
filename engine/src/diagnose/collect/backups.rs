//! Gathering the backups: every copy in the destinations given (directories scanned, SSH and S3
//! destinations listed), each checked against its metadata, and which copies are this cluster's
//! (its earlier cluster IDs followed back through the restores its runs journaled).

use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::time::{Duration, UNIX_EPOCH};

use futures_util::future::join_all;

use crate::backup::destination::Destination;
use crate::backup::store::StoredSnapshot;
use crate::diagnose::facts::{
    BackupDestinationFacts, BackupFacts, BackupRecord, ClusterIdChange, EndpointFacts,
};
use crate::snapshot::meta::{META_SUFFIX, SnapshotMeta};

/// Copies of this cluster only, when a member told its cluster id: a bucket or directory shared
/// by several clusters must not make another cluster's fresh copy count as this one's. Copies
/// taken before a snapshot restore that `restores` records (the cluster's earlier IDs, followed
/// back through every restore) are this cluster's too, and those IDs are kept (`earlier_ids`).
/// The others are listed apart (`other_clusters`).
pub(super) fn of_this_cluster(
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

/// Listing an SSH or S3 destination may take this many member-call timeouts (two minutes with
/// the default 5 s): it opens a connection and reads every metadata file.
const BACKUP_LIST_TIMEOUTS: u32 = 24;

pub(super) fn backup_list_timeout(timeout: Duration) -> Duration {
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
    let hex = crate::humanize::hex(&trailer);
    if hex != meta.sha256 {
        return Err(format!(
            "its sha256 trailer is {hex}, the metadata says {}",
            meta.sha256
        ));
    }
    Ok(())
}
