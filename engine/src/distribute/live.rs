//! A round's bytes taken live from a member (the Maintenance.Snapshot stream, read to its end:
//! the digest comes last) and written to the controller's file as they pass, so that a retry or
//! a node that failed reads the same snapshot from that file instead of taking another one.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::io::{AsyncWriteExt, BufWriter};

use super::fanout::Source;
use crate::etcd::{Ctx, EtcdAccess};
use crate::inventory::Cluster;

/// Where a new snapshot is taken from.
pub(crate) struct Save<'a> {
    /// How etcd is reached.
    pub access: &'a EtcdAccess,
    /// The inventory, to name members.
    pub cluster: &'a Cluster,
    /// The members that may serve it: the first voting follower that answers is asked.
    pub endpoints: &'a [String],
}

/// A snapshot stream opened on a member.
pub(crate) struct Opened {
    stream: etcd_client::SnapshotStreaming,
    /// The member serving it, as messages show it.
    pub member: String,
}

/// Opens the snapshot stream on the member `save` chooses, within `timeout` per call.
pub(crate) async fn open(save: &Save<'_>, timeout: Duration) -> Result<Opened, String> {
    let ctx = Ctx::new(save.access, save.cluster, save.endpoints, timeout);
    let failed = |err: crate::etcd::EtcdError| crate::humanize::error_chain(&err);
    let endpoint = crate::etcd::snapshot_source(&ctx).await.map_err(failed)?;
    let member = ctx.label(&endpoint);
    let mut client = ctx.client_for(&endpoint).await.map_err(failed)?;
    let stream = client
        .snapshot()
        .await
        .map_err(|err| format!("snapshot from {member}: {err}"))?;
    Ok(Opened { stream, member })
}

/// The open stream, each chunk also written to `from`'s part file on the controller.
pub(crate) struct Live {
    stream: etcd_client::SnapshotStreaming,
    member: String,
    file: BufWriter<tokio::fs::File>,
    part: PathBuf,
}

impl Live {
    /// Starts writing what `opened` streams to the part file beside `from`.
    pub(crate) async fn create(opened: Opened, from: &Path) -> Result<Live, String> {
        if let Some(dir) = from.parent().filter(|d| !d.as_os_str().is_empty()) {
            tokio::fs::create_dir_all(dir)
                .await
                .map_err(|err| format!("create {}: {err}", dir.display()))?;
        }
        let part = crate::atomic_file::part_path(from);
        let file = tokio::fs::File::create(&part)
            .await
            .map_err(|err| format!("create {}: {err}", part.display()))?;
        Ok(Live {
            stream: opened.stream,
            member: opened.member,
            file: BufWriter::with_capacity(super::fanout::CHUNK, file),
            part,
        })
    }

    /// Makes the part file `from` (fsync, rename, directory fsync), once the stream checked out.
    pub(crate) async fn keep(mut self, from: &Path) -> Result<(), String> {
        let part = self.part.clone();
        let flushed = self.file.flush().await;
        drop(self.file);
        flushed.map_err(|err| format!("write {}: {err}", part.display()))?;
        let to = from.to_path_buf();
        tokio::task::spawn_blocking(move || crate::atomic_file::commit(&part, &to))
            .await
            .map_err(|join| join.to_string())?
            .map_err(|err| format!("commit the snapshot into {}: {err}", from.display()))
    }

    /// Removes the part file: the stream did not check out.
    pub(crate) async fn discard(self) {
        drop(self.file);
        let _ = tokio::fs::remove_file(&self.part).await;
    }
}

impl Source for Live {
    /// Gathers the stream's messages (etcd sends 32 KiB at a time) into chunks of about
    /// [`CHUNK`](super::fanout::CHUNK) bytes, so that the writers' queues hold as much as they
    /// do for a file.
    async fn next_chunk(&mut self) -> Result<Option<Vec<u8>>, String> {
        let mut chunk = Vec::with_capacity(super::fanout::CHUNK);
        while chunk.len() < super::fanout::CHUNK {
            let message = self
                .stream
                .message()
                .await
                .map_err(|err| format!("snapshot from {}: {err}", self.member))?;
            let Some(message) = message else {
                break;
            };
            let blob = message.blob();
            self.file
                .write_all(blob)
                .await
                .map_err(|err| format!("write {}: {err}", self.part.display()))?;
            chunk.extend_from_slice(blob);
        }
        Ok(Some(chunk).filter(|c| !c.is_empty()))
    }
}
