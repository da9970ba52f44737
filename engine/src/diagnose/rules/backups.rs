//! Findings about backups: destinations not given or unreadable, no good backup, the newest too
//! old, copies kept only on etcd hosts, off-host copies trailing, damaged copies, and copies from
//! before a restore.

use std::collections::BTreeSet;

use super::{BACKUP_URGENT_AGE_SECS, BACKUP_WARN_AGE_SECS, View, age};
use crate::diagnose::facts::{BackupDestinationFacts, BackupRecord, Facts};
use crate::diagnose::findings::{Finding, Severity};

/// The newest good backup in any destination, for the restore suggestion.
pub(super) fn newest_good_backup(facts: &Facts) -> Option<&BackupRecord> {
    facts
        .backups
        .backups
        .iter()
        .filter(|b| b.good)
        .max_by_key(|b| b.taken_at)
}

/// Every finding about the backups in the destinations given with `--backups`.
pub(super) fn backups(facts: &Facts, view: &View<'_>, findings: &mut Vec<Finding>) {
    let destinations = &facts.backups.destinations;
    if destinations.is_empty() {
        findings.push(not_checked());
        return;
    }
    let failed: Vec<_> = destinations.iter().filter(|d| d.error.is_some()).collect();
    if failed.len() == destinations.len() {
        findings.push(none_readable(&failed));
        return;
    }
    if !failed.is_empty() {
        findings.push(some_unreadable(&failed));
    }
    let good: Vec<_> = facts.backups.backups.iter().filter(|b| b.good).collect();
    let bad = not_good(facts);
    let read: Vec<_> = destinations.iter().filter(|d| d.error.is_none()).collect();
    earlier_incarnations(facts, findings);
    let Some(newest) = good.iter().max_by_key(|b| b.taken_at) else {
        findings.push(no_good_backup(facts, &read, &bad));
        return;
    };
    findings.extend(newest_too_old(facts, newest));
    let hosts = etcd_hosts(facts, view);
    if !good
        .iter()
        .any(|b| b.off_host || !on_etcd_host(&hosts, &b.meta.written_on))
    {
        findings.push(only_on_etcd_hosts(&good, &read));
    }
    findings.extend(stale_off_host_copies(&good, &read, newest));
    if !bad.is_empty() {
        findings.push(Finding::new(
            Severity::Info,
            "backup-damaged",
            format!("{} backup(s) are not good", bad.len()),
            bad.join("\n"),
            "delete or replace them; never restore from them",
        ));
    }
}

/// No `--backups` destination was given.
fn not_checked() -> Finding {
    Finding::new(
        Severity::Info,
        "backups-not-checked",
        "backups not checked",
        "no --backups destination was given",
        "give --backups DEST for each place snapshots are kept: a directory, \
         ssh://[USER@]HOST/DIR or s3://BUCKET/PREFIX holding snapshots saved by `etcdrill \
         snapshot save` or shipped by `etcdrill snapshot ship`, with their .meta.json files",
    )
}

/// The names of the destinations that could not be read, and one line per destination saying why.
fn unreadable(failed: &[&BackupDestinationFacts]) -> (String, String) {
    let failed_names = failed
        .iter()
        .map(|d| d.destination.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    let failed_lines = failed
        .iter()
        .map(|d| {
            format!(
                "{}: {}",
                d.destination,
                d.error.as_deref().unwrap_or_default()
            )
        })
        .collect::<Vec<_>>()
        .join("\n");
    (failed_names, failed_lines)
}

/// No destination could be read: as good as no backup.
fn none_readable(failed: &[&BackupDestinationFacts]) -> Finding {
    let (failed_names, failed_lines) = unreadable(failed);
    Finding::new(
        Severity::Urgent,
        "no-backup",
        format!("cannot read backups in {failed_names}"),
        failed_lines,
        "check that the destination can be read from here (path, SSH host and key, bucket \
         and AWS_* credentials); take a snapshot now (`etcdrill snapshot save`) and check \
         the backup job",
    )
}

/// Some destinations could not be read: their copies are not counted.
fn some_unreadable(failed: &[&BackupDestinationFacts]) -> Finding {
    let (failed_names, failed_lines) = unreadable(failed);
    Finding::new(
        Severity::Warning,
        "backup-destination-unreadable",
        format!("cannot read backups in {failed_names}"),
        format!("copies there, if any, are not counted.\n{failed_lines}"),
        "check that the destination can be read from here: the path, the SSH host and key, \
         or the bucket, endpoint and AWS_* credentials",
    )
}

/// The copies that are not good, and the metadata files that could not be read, one line each.
fn not_good(facts: &Facts) -> Vec<String> {
    facts
        .backups
        .backups
        .iter()
        .filter(|b| !b.good)
        .map(|b| {
            format!(
                "{}: {}",
                b.location,
                b.problem.as_deref().unwrap_or("not good")
            )
        })
        .chain(facts.backups.unreadable.iter().cloned())
        .collect()
}

/// No good backup in the destinations read, saying why the copies found do not count.
fn no_good_backup(facts: &Facts, read: &[&BackupDestinationFacts], bad: &[String]) -> Finding {
    let others = &facts.backups.other_clusters;
    Finding::new(
        Severity::Urgent,
        "no-backup",
        format!(
            "no good backup in {}",
            read.iter()
                .map(|d| d.destination.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
        match (bad.is_empty(), others.is_empty()) {
            (true, true) => "no snapshot metadata file (*.db.meta.json) found".to_string(),
            (false, true) => bad.join("\n"),
            (_, false) => {
                let mut lines = bad.to_vec();
                lines.push(format!(
                    "{} copy(ies) of other clusters (another cluster ID than this one's, {}) \
                     are not counted: {}. If this cluster was restored from a snapshot \
                     outside etcdrill, its ID changed and its earlier copies look like \
                     another cluster's",
                    others.len(),
                    current_cluster_id(facts).unwrap_or("unknown"),
                    others.join(", ")
                ));
                lines.join("\n")
            }
        },
        "take a snapshot now (`etcdrill snapshot save PATH`), ship it off the etcd hosts \
         (`etcdrill snapshot ship PATH --to DEST`), and schedule both",
    )
}

/// The newest good backup is older than [`BACKUP_WARN_AGE_SECS`].
fn newest_too_old(facts: &Facts, newest: &BackupRecord) -> Option<Finding> {
    let elapsed = facts.now.saturating_sub(newest.taken_at);
    (elapsed > BACKUP_WARN_AGE_SECS).then(|| {
        Finding::new(
            if elapsed > BACKUP_URGENT_AGE_SECS {
                Severity::Urgent
            } else {
                Severity::Warning
            },
            "backup-old",
            format!("the newest good backup is {} old", age(elapsed)),
            format!(
                "{} at revision {}; a restore from it loses every write since",
                newest.location, newest.meta.revision
            ),
            "check the backup job; take a snapshot now (`etcdrill snapshot save`)",
        )
    })
}

/// Hosts that run etcd, in lower case: inventory nodes (names and addresses) and member names.
fn etcd_hosts(facts: &Facts, view: &View<'_>) -> BTreeSet<String> {
    let mut hosts: BTreeSet<String> = BTreeSet::new();
    for node in &facts.nodes {
        hosts.insert(node.name.to_ascii_lowercase());
        hosts.insert(node.address.to_ascii_lowercase());
    }
    for member in &view.members {
        hosts.insert(member.label.to_ascii_lowercase());
    }
    hosts
}

/// Whether a copy was written on one of the etcd `hosts`, also comparing short host names.
fn on_etcd_host(hosts: &BTreeSet<String>, written_on: &str) -> bool {
    let short = |h: &str| h.split('.').next().unwrap_or(h).to_ascii_lowercase();
    let written = written_on.to_ascii_lowercase();
    hosts.contains(&written) || hosts.iter().any(|h| short(h) == short(&written))
}

/// Every good copy was written on an etcd host and is kept there: no good copy off-host (SSH,
/// S3) or written elsewhere survives losing the etcd hosts.
fn only_on_etcd_hosts(good: &[&BackupRecord], read: &[&BackupDestinationFacts]) -> Finding {
    let writers: BTreeSet<&str> = good.iter().map(|b| b.meta.written_on.as_str()).collect();
    let kept: BTreeSet<&str> = good.iter().map(|b| b.destination.as_str()).collect();
    let off_host: Vec<&str> = read
        .iter()
        .filter(|d| d.off_host)
        .map(|d| d.destination.as_str())
        .collect();
    Finding::new(
        Severity::Warning,
        "backups-on-etcd-hosts",
        "backups are kept only on etcd hosts",
        format!(
            "every good backup was written on an etcd node ({}) and is kept only in {}, on \
             this machine; {}: losing that node loses the cluster and its backups together",
            writers.into_iter().collect::<Vec<_>>().join(", "),
            kept.into_iter().collect::<Vec<_>>().join(", "),
            if off_host.is_empty() {
                "no off-host destination (ssh://, s3://) was given".to_string()
            } else {
                format!("no good copy in {}", off_host.join(", "))
            }
        ),
        "ship every snapshot off the etcd hosts (`etcdrill snapshot ship PATH --to \
         ssh://HOST/DIR` or `--to s3://BUCKET/PREFIX`) and give those destinations to \
         --backups, or save snapshots from a separate machine",
    )
}

/// Off-host destinations whose newest good copy trails the newest backup by a day or more.
fn stale_off_host_copies(
    good: &[&BackupRecord],
    read: &[&BackupDestinationFacts],
    newest: &BackupRecord,
) -> Option<Finding> {
    let stale: Vec<String> = read
        .iter()
        .filter(|d| d.off_host)
        .filter_map(|d| {
            let there = good
                .iter()
                .filter(|b| b.destination == d.destination)
                .max_by_key(|b| b.taken_at);
            match there {
                None => Some(format!("{}: no good copy", d.destination)),
                Some(copy) => {
                    let behind = newest.taken_at.saturating_sub(copy.taken_at);
                    (behind > BACKUP_WARN_AGE_SECS).then(|| {
                        format!(
                            "{}: the newest good copy is {} older than {}",
                            d.destination,
                            age(behind),
                            newest.location
                        )
                    })
                }
            }
        })
        .collect();
    (!stale.is_empty()).then(|| {
        Finding::new(
            Severity::Warning,
            "backup-copies-stale",
            "off-host copies trail the newest backup",
            format!(
                "after losing the etcd hosts, a restore would start from an older copy.\n{}",
                stale.join("\n")
            ),
            "check the job that ships snapshots (`etcdrill snapshot ship`) and its credentials",
        )
    })
}

/// The cluster ID the members report.
fn current_cluster_id(facts: &Facts) -> Option<&str> {
    facts
        .endpoints
        .iter()
        .find_map(|e| e.status.as_ref().map(|s| s.cluster_id.as_str()))
}

/// Copies taken before a snapshot restore carry the cluster's earlier ID; they are counted as
/// its own, and the finding says so.
fn earlier_incarnations(facts: &Facts, findings: &mut Vec<Finding>) {
    let earlier = &facts.backups.earlier_ids;
    let copies: Vec<&BackupRecord> = facts
        .backups
        .backups
        .iter()
        .filter(|b| earlier.iter().any(|c| c.from == b.meta.cluster_id))
        .collect();
    if copies.is_empty() {
        return;
    }
    let restores: Vec<String> = earlier
        .iter()
        .map(|c| {
            format!(
                "cluster ID {} became {} (restored by run {})",
                c.from,
                c.to,
                c.run.display()
            )
        })
        .collect();
    findings.push(Finding::new(
        Severity::Info,
        "backups-of-earlier-incarnation",
        format!(
            "{} backup(s) predate a restore and are counted as this cluster's",
            copies.len()
        ),
        format!(
            "a snapshot restore gives the cluster a new ID; copies taken before it carry the old \
             one and hold the same data's history.\n{}\n{}",
            restores.join("\n"),
            copies
                .iter()
                .map(|b| format!("{} (cluster ID {})", b.location, b.meta.cluster_id))
                .collect::<Vec<_>>()
                .join("\n")
        ),
        "nothing is wrong; a restore from one of them brings the data back as it was before the \
         earlier restore. New snapshots carry the new ID",
    ));
}
