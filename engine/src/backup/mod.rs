//! Off-host copies of snapshots and their retention: destinations (a directory, a host over SSH,
//! S3-compatible object storage), shipping with verification, listing and pruning.
//!
//! [`ship`] copies one verified local snapshot to every destination and reads every copy back;
//! it tries all of them and fails if any failed, naming each. [`prune`] applies a
//! [`RetentionPolicy`](retention::RetentionPolicy) per cluster within one destination, counting
//! only copies whose listing is whole and never deleting the newest.

pub use etcdrill_core::backup::{destination, retention};
mod dir_store;
mod s3_store;
mod ssh_store;
pub mod step;
pub mod store;

use std::path::{Path, PathBuf};
use std::time::Duration;

pub use dir_store::DirStore;
pub use s3_store::S3Store;
pub use ssh_store::SshStore;

use destination::{Destination, DestinationError};
use retention::{Candidate, KeepReason, RetentionError, RetentionPolicy};
use store::{ShippedCopy, Store, StoredSnapshot};

/// Why a backup operation failed.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    /// A destination could not be read.
    #[error(transparent)]
    Destination(#[from] DestinationError),
    /// The local snapshot cannot be shipped.
    #[error("snapshot {}: {reason}", path.display())]
    Local {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// A local file operation on a directory destination failed.
    #[error("{destination}: cannot {what}")]
    Io {
        /// The destination.
        destination: String,
        /// What was being done.
        what: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The backup host could not be reached, or a copy to it failed.
    #[error("{destination}")]
    Transport {
        /// The destination.
        destination: String,
        /// Why.
        #[source]
        source: crate::transport::TransportError,
    },
    /// A command on the backup host failed.
    #[error("{destination}: cannot {what}: {detail}")]
    Remote {
        /// The destination.
        destination: String,
        /// What was being done.
        what: String,
        /// What the host said.
        detail: String,
    },
    /// Object storage refused or failed a request.
    #[error("{destination}: cannot {what}")]
    S3 {
        /// The destination.
        destination: String,
        /// What was being done.
        what: String,
        /// Why.
        #[source]
        source: object_store::Error,
    },
    /// A copy is not what it should be.
    #[error("{location}: {reason}")]
    Copy {
        /// The copy.
        location: String,
        /// What is wrong.
        reason: String,
    },
    /// The retention policy is unusable.
    #[error(transparent)]
    Retention(#[from] RetentionError),
    /// Some destinations failed; the others were done.
    #[error("{failed} of {total} failed:\n{}", lines.join("\n"))]
    Incomplete {
        /// How many failed.
        failed: usize,
        /// Out of how many.
        total: usize,
        /// One line per destination or copy: done, or why not.
        lines: Vec<String>,
    },
}

/// Copies `snapshot` (with its `.meta.json`, checked first) to every destination, reading each
/// copy back. Every destination is tried; `each` hears of every copy as it ends.
pub async fn ship(
    snapshot: &Path,
    destinations: &[Destination],
    timeout: Duration,
    mut each: impl FnMut(&Destination, &Result<ShippedCopy, BackupError>),
) -> Result<Vec<ShippedCopy>, BackupError> {
    let local = store::local_snapshot(snapshot).await?;
    let mut copies = Vec::new();
    let mut lines = Vec::new();
    for destination in destinations {
        let result = within(timeout, destination, async {
            let store = Store::open(destination, timeout).await?;
            let result = store.put(&local).await;
            store.close().await;
            result
        })
        .await;
        each(destination, &result);
        match result {
            Ok(copy) => {
                lines.push(format!(
                    "ok: {} ({} bytes{})",
                    copy.location,
                    copy.bytes,
                    if copy.already_there {
                        ", already there"
                    } else {
                        ""
                    }
                ));
                copies.push(copy);
            }
            Err(err) => lines.push(failure_line(destination, &err)),
        }
    }
    if copies.len() < destinations.len() {
        return Err(BackupError::Incomplete {
            failed: destinations.len() - copies.len(),
            total: destinations.len(),
            lines,
        });
    }
    Ok(copies)
}

/// Every copy in `destination`, newest first; with `verify`, each is read back in full and a
/// damaged one gets its problem.
pub async fn list(
    destination: &Destination,
    verify: bool,
    timeout: Duration,
) -> Result<Vec<StoredSnapshot>, BackupError> {
    within(timeout, destination, async {
        let store = Store::open(destination, timeout).await?;
        let result = async {
            let mut copies = store.list().await?;
            if verify {
                for copy in copies.iter_mut().filter(|c| c.problem.is_none()) {
                    if let Err(err) = store.check(&copy.name, &copy.meta).await {
                        copy.problem = Some(match err {
                            BackupError::Copy { reason, .. } => reason,
                            other => crate::exec::error_chain(&other),
                        });
                    }
                }
            }
            Ok(copies)
        }
        .await;
        store.close().await;
        result
    })
    .await
}

/// What [`prune`] decided for one copy.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct PruneDecision {
    /// The copy.
    pub copy: StoredSnapshot,
    /// Kept by the policy (else deleted, or to be deleted in a dry run).
    pub keep: bool,
    /// The rules that keep it.
    pub reasons: Vec<KeepReason>,
}

/// What [`prune`] did in one destination.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct PruneOutcome {
    /// Whole copies, newest first, with the policy's verdict.
    pub decisions: Vec<PruneDecision>,
    /// Copies whose listing is not whole (missing snapshot, wrong size): not counted, not deleted.
    pub not_counted: Vec<StoredSnapshot>,
    /// Names deleted (empty in a dry run).
    pub deleted: Vec<String>,
}

/// Applies `policy` to the copies in `destination`, separately for each cluster found there;
/// with `dry_run`, only decides. A copy whose listing is not whole is neither counted nor
/// deleted. A failed delete is reported after the others were tried.
pub async fn prune(
    destination: &Destination,
    policy: &RetentionPolicy,
    dry_run: bool,
    timeout: Duration,
) -> Result<PruneOutcome, BackupError> {
    policy.validate()?;
    within(timeout, destination, async {
        let store = Store::open(destination, timeout).await?;
        let result = prune_in(&store, policy, dry_run).await;
        store.close().await;
        result
    })
    .await
}

async fn prune_in(
    store: &Store,
    policy: &RetentionPolicy,
    dry_run: bool,
) -> Result<PruneOutcome, BackupError> {
    let copies = store.list().await?;
    let (whole, not_counted): (Vec<_>, Vec<_>) =
        copies.into_iter().partition(StoredSnapshot::is_complete);
    let mut clusters: Vec<&str> = whole.iter().map(|c| c.meta.cluster_id.as_str()).collect();
    clusters.sort_unstable();
    clusters.dedup();
    let mut decisions = Vec::new();
    for cluster in clusters {
        let group: Vec<&StoredSnapshot> = whole
            .iter()
            .filter(|c| c.meta.cluster_id == cluster)
            .collect();
        let candidates: Vec<Candidate<'_>> = group
            .iter()
            .map(|c| Candidate {
                name: &c.name,
                time: c.meta.time.0,
            })
            .collect();
        for verdict in retention::select(policy, &candidates)? {
            let copy = group
                .iter()
                .find(|c| c.name == verdict.name)
                .map(|c| (*c).clone())
                .expect("a verdict names a candidate");
            decisions.push(PruneDecision {
                copy,
                keep: verdict.keep,
                reasons: verdict.reasons,
            });
        }
    }
    let mut deleted = Vec::new();
    let mut failures = Vec::new();
    if !dry_run {
        for decision in decisions.iter().filter(|d| !d.keep) {
            match store.delete(&decision.copy.name).await {
                Ok(()) => deleted.push(decision.copy.name.clone()),
                Err(err) => failures.push(format!(
                    "FAILED to delete {}: {}",
                    decision.copy.location,
                    crate::exec::error_chain(&err)
                )),
            }
        }
    }
    if !failures.is_empty() {
        let total = deleted.len() + failures.len();
        let mut lines: Vec<String> = deleted.iter().map(|d| format!("deleted: {d}")).collect();
        lines.extend(failures.iter().cloned());
        return Err(BackupError::Incomplete {
            failed: failures.len(),
            total,
            lines,
        });
    }
    Ok(PruneOutcome {
        decisions,
        not_counted,
        deleted,
    })
}

/// Runs `work` within `timeout`, naming the destination when it runs out.
async fn within<T>(
    timeout: Duration,
    destination: &Destination,
    work: impl Future<Output = Result<T, BackupError>>,
) -> Result<T, BackupError> {
    tokio::time::timeout(timeout, work)
        .await
        .unwrap_or_else(|_| {
            Err(BackupError::Remote {
                destination: destination.to_string(),
                what: "finish".into(),
                detail: format!("timed out after {}", crate::humanize::limit(timeout)),
            })
        })
}

/// `FAILED: DEST: why`, naming the destination once.
pub(crate) fn failure_line(destination: &Destination, err: &BackupError) -> String {
    let text = crate::exec::error_chain(err);
    let shown = destination.to_string();
    if text.starts_with(&shown) {
        format!("FAILED: {text}")
    } else {
        format!("FAILED: {shown}: {text}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::Timestamp;
    use crate::snapshot::meta::SnapshotMeta;
    use crate::snapshot::test_db;

    const T: Duration = Duration::from_secs(30);

    /// Writes a snapshot of about `bytes` and its metadata, taken `hours` after a fixed time.
    fn snapshot(dir: &Path, name: &str, bytes: usize, hours: u64) -> PathBuf {
        let file = test_db::with_trailer(test_db::sample(bytes));
        let path = dir.join(name);
        std::fs::write(&path, &file).unwrap();
        let base = crate::snapshot::meta::tests::sample();
        let meta = SnapshotMeta {
            size: file.len() as u64,
            sha256: crate::humanize::hex(&file[file.len() - 32..]),
            time: Timestamp(base.time.0 + Duration::from_secs(hours * 3600)),
            ..base
        };
        meta.write(&SnapshotMeta::path_for(&path)).unwrap();
        path
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_different_snapshot_never_overwrites_a_copy() {
        let local = tempfile::tempdir().unwrap();
        let remote = tempfile::tempdir().unwrap();
        let to = [Destination::Dir(remote.path().to_path_buf())];
        let first = snapshot(local.path(), "etcd.db", 4096, 0);
        ship(&first, &to, T, |_, _| {}).await.unwrap();
        let kept = std::fs::read(remote.path().join("etcd.db")).unwrap();
        // The same snapshot again is found whole and not sent.
        let again = ship(&first, &to, T, |_, _| {}).await.unwrap();
        assert!(again[0].already_there);
        // Another snapshot under the same name is refused and the copy is left as it was.
        let other = tempfile::tempdir().unwrap();
        let second = snapshot(other.path(), "etcd.db", 20_000, 1);
        let err = ship(&second, &to, T, |_, _| {}).await.unwrap_err();
        let text = crate::exec::error_chain(&err);
        assert!(text.contains("refusing to overwrite"), "{text}");
        assert_eq!(std::fs::read(remote.path().join("etcd.db")).unwrap(), kept);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn prune_leaves_incomplete_copies_alone_and_keeps_the_newest() {
        let local = tempfile::tempdir().unwrap();
        let remote = tempfile::tempdir().unwrap();
        let to = Destination::Dir(remote.path().to_path_buf());
        for (i, name) in ["a.db", "b.db", "c.db"].iter().enumerate() {
            let path = snapshot(local.path(), name, 4096, i as u64);
            ship(&path, std::slice::from_ref(&to), T, |_, _| {})
                .await
                .unwrap();
        }
        // The oldest copy loses its snapshot: its listing is not whole.
        std::fs::remove_file(remote.path().join("a.db")).unwrap();
        let policy = RetentionPolicy {
            keep_last: 1,
            ..RetentionPolicy::default()
        };
        let dry = prune(&to, &policy, true, T).await.unwrap();
        assert!(dry.deleted.is_empty());
        assert_eq!(names(remote.path()).len(), 5);
        let outcome = prune(&to, &policy, false, T).await.unwrap();
        assert_eq!(outcome.deleted, vec!["b.db".to_string()]);
        assert_eq!(outcome.not_counted.len(), 1);
        assert_eq!(outcome.not_counted[0].name, "a.db");
        assert_eq!(
            names(remote.path()),
            vec!["a.db.meta.json", "c.db", "c.db.meta.json"]
        );
    }
}
