//! A [`Store`] is an opened [`Destination`]: it uploads a snapshot copy and proves it by reading
//! it back, lists the copies it holds with their metadata, and deletes them.
//!
//! A copy is two objects side by side: `NAME` (the snapshot) and `NAME.meta.json` (its
//! [`SnapshotMeta`]). The snapshot goes first and is read back in full, its sha256 trailer and
//! size checked against the metadata; only then is the metadata written, so a listed copy with
//! metadata has a snapshot that was proven whole when it was written. Deleting goes the other
//! way: metadata first.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::destination::Destination;
use super::{BackupError, dir_store::DirStore, s3_store::S3Store, ssh_store::SshStore};
use crate::etcd::TrailerHasher;
use crate::snapshot::meta::{META_SUFFIX, SnapshotMeta};

/// A snapshot on the controller, with its metadata, ready to ship.
#[derive(Debug, Clone)]
pub struct LocalSnapshot {
    /// The file.
    pub path: PathBuf,
    /// Its file name, which the copies keep.
    pub name: String,
    /// Its metadata (`PATH.meta.json`).
    pub meta: SnapshotMeta,
}

/// One copy found in a destination.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct StoredSnapshot {
    /// The snapshot's name.
    pub name: String,
    /// Where it is: path, `ssh://…` or `s3://…` of the snapshot object.
    pub location: String,
    /// Its metadata.
    pub meta: SnapshotMeta,
    /// The snapshot object's size, `None` when it is missing.
    pub size: Option<u64>,
    /// Why the copy cannot be trusted, if it cannot: a missing snapshot, a size that is not the
    /// metadata's, or (after reading it back) a digest that is not.
    pub problem: Option<String>,
}

impl StoredSnapshot {
    /// Whether the copy looks whole from its listing (size checked, content not read).
    pub fn is_complete(&self) -> bool {
        self.problem.is_none()
    }

    /// Finds the listing's problem: a missing snapshot or a size that is not the metadata's.
    pub(crate) fn new(
        name: String,
        location: String,
        meta: SnapshotMeta,
        size: Option<u64>,
    ) -> StoredSnapshot {
        let problem = match size {
            None => Some("the snapshot is missing (only its metadata is there)".to_string()),
            Some(size) if size != meta.size => Some(format!(
                "the snapshot is {size} bytes, its metadata says {}",
                meta.size
            )),
            Some(_) => None,
        };
        StoredSnapshot {
            name,
            location,
            meta,
            size,
            problem,
        }
    }
}

/// One shipped copy.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ShippedCopy {
    /// The destination, as shown.
    pub destination: String,
    /// Where the snapshot is.
    pub location: String,
    /// Bytes in the copy.
    pub bytes: u64,
    /// The same snapshot was already there and read back whole: nothing was sent.
    pub already_there: bool,
}

/// An opened destination.
#[derive(Debug)]
pub enum Store {
    /// A directory on the controller.
    Dir(DirStore),
    /// A directory on a backup host.
    Ssh(SshStore),
    /// S3-compatible object storage.
    S3(S3Store),
}

impl Store {
    /// Opens `destination` (connects, for SSH); `timeout` bounds each remote command.
    pub async fn open(destination: &Destination, timeout: Duration) -> Result<Store, BackupError> {
        Ok(match destination {
            Destination::Dir(path) => Store::Dir(DirStore::new(path.clone())),
            Destination::Ssh(ssh) => Store::Ssh(SshStore::connect(ssh, timeout).await?),
            Destination::S3(s3) => Store::S3(S3Store::new(s3)?),
        })
    }

    /// Copies `local` here and reads the copy back, unless the same snapshot is already here
    /// and reads back whole. A different snapshot under the same name is an error, never
    /// overwritten.
    pub async fn put(&self, local: &LocalSnapshot) -> Result<ShippedCopy, BackupError> {
        check_name(&local.name).map_err(|reason| self.error(&local.name, reason))?;
        let location = self.location(&local.name);
        let copy = |already_there| ShippedCopy {
            destination: self.to_string(),
            location: location.clone(),
            bytes: local.meta.size,
            already_there,
        };
        if let Some(existing) = self.read_meta(&local.name).await? {
            if existing.sha256 != local.meta.sha256 {
                return Err(self.error(
                    &local.name,
                    format!(
                        "a different snapshot (sha256 {}) is already there under this name; \
                         refusing to overwrite it",
                        existing.sha256
                    ),
                ));
            }
            if self.check(&local.name, &existing).await.is_ok() {
                return Ok(copy(true));
            }
        }
        self.upload(local).await?;
        if let Err(err) = self.check(&local.name, &local.meta).await {
            // Leave no unproven copy behind; the error says why.
            let _ = self.delete(&local.name).await;
            return Err(err);
        }
        let mut meta = serde_json::to_string_pretty(&local.meta).expect("metadata serialises");
        meta.push('\n');
        self.upload_meta(&local.name, meta.into_bytes()).await?;
        Ok(copy(false))
    }

    /// Reads the copy `name` back in full and checks it against `meta`: size, sha256 trailer
    /// matching the data, and that digest being the metadata's.
    pub async fn check(&self, name: &str, meta: &SnapshotMeta) -> Result<(), BackupError> {
        let digest = match self {
            Store::Dir(store) => store.digest(name).await?,
            Store::Ssh(store) => store.digest(name).await?,
            Store::S3(store) => store.digest(name).await?,
        };
        compare(&digest, meta).map_err(|reason| self.error(name, reason))
    }

    /// Every copy with metadata here, newest first, with listing problems found.
    pub async fn list(&self) -> Result<Vec<StoredSnapshot>, BackupError> {
        let mut list = match self {
            Store::Dir(store) => store.list().await?,
            Store::Ssh(store) => store.list().await?,
            Store::S3(store) => store.list().await?,
        };
        list.sort_by(|a, b| b.meta.time.0.cmp(&a.meta.time.0).then(a.name.cmp(&b.name)));
        Ok(list)
    }

    /// Deletes the copy `name`: its metadata first, then the snapshot. Missing objects are fine.
    pub async fn delete(&self, name: &str) -> Result<(), BackupError> {
        check_name(name).map_err(|reason| self.error(name, reason))?;
        match self {
            Store::Dir(store) => store.delete(name).await,
            Store::Ssh(store) => store.delete(name).await,
            Store::S3(store) => store.delete(name).await,
        }
    }

    /// Closes the connection, if any.
    pub async fn close(self) {
        if let Store::Ssh(store) = self {
            store.close().await;
        }
    }

    /// Where the snapshot `name` is, as shown.
    pub fn location(&self, name: &str) -> String {
        match self {
            Store::Dir(store) => store.path(name).display().to_string(),
            Store::Ssh(store) => store.location(name),
            Store::S3(store) => store.location(name),
        }
    }

    async fn read_meta(&self, name: &str) -> Result<Option<SnapshotMeta>, BackupError> {
        match self {
            Store::Dir(store) => store.read_meta(name).await,
            Store::Ssh(store) => store.read_meta(name).await,
            Store::S3(store) => store.read_meta(name).await,
        }
    }

    async fn upload(&self, local: &LocalSnapshot) -> Result<(), BackupError> {
        match self {
            Store::Dir(store) => store.upload(local).await,
            Store::Ssh(store) => store.upload(local).await,
            Store::S3(store) => store.upload(local).await,
        }
    }

    async fn upload_meta(&self, name: &str, bytes: Vec<u8>) -> Result<(), BackupError> {
        match self {
            Store::Dir(store) => store.upload_meta(name, bytes).await,
            Store::Ssh(store) => store.upload_meta(name, bytes).await,
            Store::S3(store) => store.upload_meta(name, bytes).await,
        }
    }

    fn error(&self, name: &str, reason: String) -> BackupError {
        BackupError::Copy {
            location: self.location(name),
            reason,
        }
    }
}

impl std::fmt::Display for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Store::Dir(store) => write!(f, "{}", store.root().display()),
            Store::Ssh(store) => f.write_str(&store.root()),
            Store::S3(store) => f.write_str(&store.root()),
        }
    }
}

/// What reading a copy back found: its size and sha256 trailer check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Digest {
    /// The snapshot object is not there.
    Missing,
    /// Read in full: the size, and the trailer verdict (`Err` says why it does not match).
    Read {
        /// Bytes read.
        size: u64,
        /// The data's sha256 when the trailer matches it.
        sha256: Result<String, String>,
    },
}

impl Digest {
    /// Digests a stream fed in chunks.
    pub(crate) fn of_chunks() -> DigestBuilder {
        DigestBuilder(TrailerHasher::default(), 0)
    }
}

/// Feeds chunks of a copy being read back.
pub(crate) struct DigestBuilder(TrailerHasher, u64);

impl DigestBuilder {
    /// The next bytes.
    pub(crate) fn update(&mut self, bytes: &[u8]) {
        self.1 += bytes.len() as u64;
        self.0.update(bytes);
    }

    /// The digest of everything fed.
    pub(crate) fn finish(self) -> Digest {
        Digest::Read {
            size: self.1,
            sha256: self.0.finish().map(|file| file.sha256),
        }
    }
}

fn compare(digest: &Digest, meta: &SnapshotMeta) -> Result<(), String> {
    match digest {
        Digest::Missing => Err("the snapshot is missing".into()),
        Digest::Read { size, .. } if *size != meta.size => Err(format!(
            "the copy is {size} bytes, the snapshot is {}",
            meta.size
        )),
        Digest::Read {
            sha256: Err(why), ..
        } => Err(format!("the copy is damaged: {why}")),
        Digest::Read {
            sha256: Ok(sha256), ..
        } if *sha256 != meta.sha256 => Err(format!(
            "the copy's sha256 is {sha256}, the snapshot's is {}",
            meta.sha256
        )),
        Digest::Read { .. } => Ok(()),
    }
}

/// Snapshot names travel into shell scripts and object keys: letters, digits, `.`, `_`, `-`,
/// not starting with `.`, and not a metadata file's name.
pub(crate) fn check_name(name: &str) -> Result<(), String> {
    let safe = !name.is_empty()
        && !name.starts_with('.')
        && name.len() <= 200
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if !safe {
        return Err(format!(
            "`{name}` is not a usable snapshot name: use letters, digits, `.`, `_` and `-`, not \
             starting with `.`"
        ));
    }
    if name.ends_with(META_SUFFIX) || name.ends_with(".part") {
        return Err(format!("`{name}` ends like a metadata or partial file"));
    }
    Ok(())
}

/// The snapshot name a metadata object's name belongs to.
pub(crate) fn snapshot_of_meta(meta_name: &str) -> Option<&str> {
    meta_name
        .strip_suffix(META_SUFFIX)
        .filter(|name| check_name(name).is_ok())
}

/// Reads a snapshot on the controller and its metadata file, checking that they agree (size and
/// sha256 trailer; the bbolt structure too) before anything is sent anywhere.
pub async fn local_snapshot(path: &Path) -> Result<LocalSnapshot, BackupError> {
    let local = |reason: String| BackupError::Local {
        path: path.to_path_buf(),
        reason,
    };
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| local("has no file name".into()))?
        .to_string();
    check_name(&name).map_err(local)?;
    let meta_path = SnapshotMeta::path_for(path);
    let meta = SnapshotMeta::read(&meta_path).map_err(|err| {
        local(format!(
            "{err}; ship snapshots saved by `etcdrill snapshot save` or the etcd.snapshot.save \
             step, which write {}",
            meta_path.display()
        ))
    })?;
    let file = crate::etcd::verify_snapshot_file(path)
        .await
        .map_err(|err| local(err.to_string()))?;
    if file.size != meta.size || file.sha256 != meta.sha256 {
        return Err(local(format!(
            "does not match {}: the file is {} bytes with sha256 {}, the metadata says {} bytes \
             with sha256 {}",
            meta_path.display(),
            file.size,
            file.sha256,
            meta.size,
            meta.sha256
        )));
    }
    Ok(LocalSnapshot {
        path: path.to_path_buf(),
        name,
        meta,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_reach_shells_and_keys_are_plain() {
        for good in ["etcd-20261126T030000Z.db", "a", "snap_1.db"] {
            assert!(check_name(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            ".hidden",
            "a b",
            "a/b",
            "$(x)",
            "x.db.meta.json",
            "x.part",
            "ä",
        ] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
        assert_eq!(snapshot_of_meta("a.db.meta.json"), Some("a.db"));
        assert_eq!(snapshot_of_meta("a b.meta.json"), None);
        assert_eq!(snapshot_of_meta("a.db"), None);
    }

    #[test]
    fn a_copy_is_compared_with_its_metadata() {
        let db = crate::snapshot::test_db::with_trailer(crate::snapshot::test_db::sample(4096));
        let mut builder = Digest::of_chunks();
        for chunk in db.chunks(1000) {
            builder.update(chunk);
        }
        let digest = builder.finish();
        let Digest::Read {
            size,
            sha256: Ok(sha256),
        } = &digest
        else {
            panic!("{digest:?}")
        };
        let meta = |size, sha256: &str| SnapshotMeta {
            size,
            sha256: sha256.into(),
            ..crate::snapshot::meta::tests::sample()
        };
        assert_eq!(compare(&digest, &meta(*size, sha256)), Ok(()));
        assert!(
            compare(&digest, &meta(*size + 512, sha256))
                .unwrap_err()
                .contains("bytes")
        );
        assert!(
            compare(&digest, &meta(*size, &"0".repeat(64)))
                .unwrap_err()
                .contains("sha256")
        );
        assert!(compare(&Digest::Missing, &meta(*size, sha256)).is_err());
        let mut damaged = db.clone();
        damaged[100] ^= 1;
        let mut builder = Digest::of_chunks();
        builder.update(&damaged);
        let err = compare(&builder.finish(), &meta(*size, sha256)).unwrap_err();
        assert!(err.contains("damaged"), "{err}");
    }
}
