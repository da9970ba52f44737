//! Copies in a directory on the controller, each written through [`crate::atomic_file`] (a
//! `.part` file, fsync'd, renamed, the directory fsync'd), so a crash leaves either no copy or a
//! whole one.

use std::path::{Path, PathBuf};

use tokio::io::{AsyncReadExt, AsyncWriteExt, BufWriter};

use super::BackupError;
use super::store::{Digest, LocalSnapshot, StoredSnapshot, snapshot_of_meta};
use crate::atomic_file;
use crate::snapshot::meta::SnapshotMeta;

/// Read and write buffer size.
const BUFFER: usize = 1 << 20;

/// Runs blocking file work off the async runtime.
async fn blocking(
    work: impl FnOnce() -> std::io::Result<()> + Send + 'static,
) -> std::io::Result<()> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|join| std::io::Error::other(join.to_string()))
        .and_then(|result| result)
}

/// A backup directory on this machine.
#[derive(Debug)]
pub struct DirStore {
    root: PathBuf,
}

impl DirStore {
    /// The directory `root` (created on the first upload).
    pub fn new(root: PathBuf) -> DirStore {
        DirStore { root }
    }

    /// The directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The path of the snapshot `name`.
    pub fn path(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    fn io(&self, what: impl Into<String>) -> impl FnOnce(std::io::Error) -> BackupError {
        let destination = self.root.display().to_string();
        let what = what.into();
        move |source| BackupError::Io {
            destination,
            what,
            source,
        }
    }

    pub(crate) async fn read_meta(&self, name: &str) -> Result<Option<SnapshotMeta>, BackupError> {
        let path = SnapshotMeta::path_for(&self.path(name));
        if !tokio::fs::try_exists(&path)
            .await
            .map_err(self.io(format!("look for {}", path.display())))?
        {
            return Ok(None);
        }
        let meta = tokio::task::spawn_blocking(move || SnapshotMeta::read(&path))
            .await
            .map_err(|join| self.io("read metadata")(std::io::Error::other(join.to_string())))?
            .map_err(|err| BackupError::Copy {
                location: self.path(name).display().to_string(),
                reason: err.to_string(),
            })?;
        Ok(Some(meta))
    }

    pub(crate) async fn upload(&self, local: &LocalSnapshot) -> Result<(), BackupError> {
        tokio::fs::create_dir_all(&self.root)
            .await
            .map_err(self.io("create the directory"))?;
        let target = self.path(&local.name);
        let part = atomic_file::part_path(&target);
        let result = async {
            let mut source = tokio::fs::File::open(&local.path)
                .await
                .map_err(self.io(format!("open {}", local.path.display())))?;
            let file = tokio::fs::File::create(&part)
                .await
                .map_err(self.io(format!("create {}", part.display())))?;
            let mut writer = BufWriter::with_capacity(BUFFER, file);
            tokio::io::copy(&mut source, &mut writer)
                .await
                .map_err(self.io(format!(
                    "copy {} to {}",
                    local.path.display(),
                    part.display()
                )))?;
            writer
                .flush()
                .await
                .map_err(self.io(format!("write {}", part.display())))?;
            let what = format!("move the copy into {}", target.display());
            let (part, target) = (part.clone(), target.clone());
            blocking(move || atomic_file::commit(&part, &target))
                .await
                .map_err(self.io(what))
        }
        .await;
        if result.is_err() {
            let _ = tokio::fs::remove_file(&part).await;
        }
        result
    }

    pub(crate) async fn upload_meta(&self, name: &str, bytes: Vec<u8>) -> Result<(), BackupError> {
        let path = SnapshotMeta::path_for(&self.path(name));
        let shown = path.display().to_string();
        blocking(move || atomic_file::write(&path, &bytes))
            .await
            .map_err(self.io(format!("write {shown}")))
    }

    pub(crate) async fn digest(&self, name: &str) -> Result<Digest, BackupError> {
        let path = self.path(name);
        let mut file = match tokio::fs::File::open(&path).await {
            Ok(file) => file,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Digest::Missing),
            Err(err) => return Err(self.io(format!("open {}", path.display()))(err)),
        };
        let mut digest = Digest::of_chunks();
        let mut buffer = vec![0u8; BUFFER];
        loop {
            let n = file
                .read(&mut buffer)
                .await
                .map_err(self.io(format!("read {}", path.display())))?;
            if n == 0 {
                return Ok(digest.finish());
            }
            digest.update(&buffer[..n]);
        }
    }

    pub(crate) async fn list(&self) -> Result<Vec<StoredSnapshot>, BackupError> {
        let mut entries = match tokio::fs::read_dir(&self.root).await {
            Ok(entries) => entries,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(err) => return Err(self.io("list the directory")(err)),
        };
        let mut found = Vec::new();
        while let Some(entry) = entries
            .next_entry()
            .await
            .map_err(self.io("list the directory"))?
        {
            let file_name = entry.file_name();
            let Some(name) = file_name.to_str().and_then(snapshot_of_meta) else {
                continue;
            };
            let Some(meta) = self.read_meta(name).await? else {
                continue;
            };
            let size = match tokio::fs::metadata(self.path(name)).await {
                Ok(m) => Some(m.len()),
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => None,
                Err(err) => return Err(self.io(format!("stat {name}"))(err)),
            };
            found.push(StoredSnapshot::new(
                name.to_string(),
                self.path(name).display().to_string(),
                meta,
                size,
            ));
        }
        Ok(found)
    }

    pub(crate) async fn delete(&self, name: &str) -> Result<(), BackupError> {
        for path in [SnapshotMeta::path_for(&self.path(name)), self.path(name)] {
            match tokio::fs::remove_file(&path).await {
                Ok(()) => {}
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
                Err(err) => return Err(self.io(format!("delete {}", path.display()))(err)),
            }
        }
        self.sync_dir().await
    }

    async fn sync_dir(&self) -> Result<(), BackupError> {
        let root = self.root.clone();
        blocking(move || std::fs::File::open(&root)?.sync_all())
            .await
            .map_err(self.io("fsync the directory"))
    }
}
