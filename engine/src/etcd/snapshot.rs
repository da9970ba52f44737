//! Snapshot files: streaming the Snapshot RPC into a file on the controller (with its
//! `PATH.meta.json`, [`crate::snapshot::meta`]), and verifying a snapshot file's sha256 trailer.
//!
//! A snapshot is the member's bbolt database followed by the 32-byte sha256 of it; the server
//! sends that digest as the stream's last message, so the stream is read to its end (stopping at
//! `remaining_bytes == 0` loses it: etcdv3/etcd-client issue 83). Both directions use constant
//! memory whatever the size. Verifying a file also checks its bbolt structure
//! ([`crate::snapshot`]).

use std::path::{Path, PathBuf};

use futures_util::future::join_all;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncWriteExt, BufWriter};

use super::CallOutcome;
use super::context::{Ctx, call_error};
use super::error::EtcdError;
use super::members::same_url;
use crate::journal::Timestamp;
use crate::runbook::action::SnapshotSaveArgs;
use crate::snapshot::meta::{META_FORMAT, META_VERSION, SnapshotMeta};

/// Length of the sha256 trailer.
const TRAILER: usize = 32;
/// bbolt pages are a multiple of 512 bytes, so a snapshot is `512 * k + 32` bytes long.
const PAGE_ALIGN: u64 = 512;
/// Read and write buffer size.
const BUFFER: usize = 1 << 20;

/// A verified snapshot file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotFile {
    /// Size of the file in bytes, trailer included.
    pub size: u64,
    /// Hex sha256 of the database part (equal to the trailer).
    pub sha256: String,
}

/// Hashes a byte stream except its last 32 bytes, which it keeps aside as the trailer.
#[derive(Default)]
pub(crate) struct TrailerHasher {
    hasher: Sha256,
    tail: Vec<u8>,
    total: u64,
}

impl TrailerHasher {
    /// Adds the next bytes of the stream.
    pub(crate) fn update(&mut self, bytes: &[u8]) {
        self.total += bytes.len() as u64;
        if bytes.len() >= TRAILER {
            self.hasher.update(&self.tail);
            let (body, tail) = bytes.split_at(bytes.len() - TRAILER);
            self.hasher.update(body);
            self.tail.clear();
            self.tail.extend_from_slice(tail);
        } else {
            self.tail.extend_from_slice(bytes);
            if self.tail.len() > TRAILER {
                let extra = self.tail.len() - TRAILER;
                self.hasher.update(&self.tail[..extra]);
                self.tail.drain(..extra);
            }
        }
    }

    /// The sha256 of every byte so far, the last 32 included: what `sha256sum` prints for a
    /// file of these bytes.
    pub(crate) fn whole_sha256(&self) -> String {
        let mut whole = self.hasher.clone();
        whole.update(&self.tail);
        crate::humanize::hex(&whole.finalize())
    }

    /// The digest, if the last 32 bytes are the sha256 of everything before them; otherwise why
    /// not, in words that say "no sha256 trailer" or "corrupt".
    pub(crate) fn finish(self) -> Result<SnapshotFile, String> {
        let size = self.total;
        if size < TRAILER as u64 || size % PAGE_ALIGN != TRAILER as u64 {
            return Err(format!(
                "no sha256 trailer: {size} bytes is not 512*k + 32 (truncated, or a raw \
                 member/snap/db copy, which needs skip_hash_check on restore)"
            ));
        }
        let digest = self.hasher.finalize();
        if digest.as_slice() != self.tail.as_slice() {
            return Err(format!(
                "corrupt: the sha256 of the data is {}, the trailer says {}",
                crate::humanize::hex(&digest),
                crate::humanize::hex(&self.tail)
            ));
        }
        Ok(SnapshotFile {
            size,
            sha256: crate::humanize::hex(&digest),
        })
    }
}

/// Checks a snapshot file on the controller with [`crate::snapshot::verify`]: its size is
/// `512 * k + 32`, its last 32 bytes are the sha256 of the rest, and the rest is a sound bbolt
/// database (the consistency checks `etcdutl snapshot status` runs). Reads it in constant memory,
/// on a blocking thread.
pub async fn verify_snapshot_file(path: &Path) -> Result<SnapshotFile, EtcdError> {
    let owned = path.to_path_buf();
    let checked = tokio::task::spawn_blocking(move || crate::snapshot::verify(&owned))
        .await
        .map_err(|join| EtcdError::Io {
            what: "verify snapshot",
            path: path.to_path_buf(),
            source: std::io::Error::other(join.to_string()),
        })?;
    match checked {
        Ok(status) => match status.sha256_trailer {
            crate::snapshot::TrailerCheck::Valid { sha256 } => Ok(SnapshotFile {
                size: status.file_size,
                sha256,
            }),
            // `verify` accepts only a valid trailer; never report anything else as sound.
            other => Err(EtcdError::Snapshot {
                path: path.to_path_buf(),
                reason: format!("corrupt: sha256 trailer {other:?}"),
            }),
        },
        Err(err) => Err(match err.kind {
            crate::snapshot::SnapshotErrorKind::Io { what, source } => EtcdError::Io {
                what,
                path: err.path,
                source,
            },
            kind => EtcdError::Snapshot {
                path: err.path,
                reason: kind.to_string(),
            },
        }),
    }
}

/// `etcd.snapshot.save`: streams from one member into a part file beside `PATH`
/// ([`crate::atomic_file`]), checks the trailer, then commits it (fsync, rename, directory fsync), then writes `PATH.meta.json`. A failed save leaves
/// no `PATH`. Given several endpoints (`on: cluster`), it streams from a voting follower that
/// answers, in the order given, else from any member that answers: sending the whole database
/// loads the member, and the leader has the most to do.
pub(crate) async fn save(ctx: &Ctx<'_>, args: &SnapshotSaveArgs) -> Result<CallOutcome, EtcdError> {
    let endpoint = &source_member(ctx).await?;
    let path = PathBuf::from(&args.path);
    let part = crate::atomic_file::part_path(&path);
    let result = stream_to(ctx, endpoint, &path, &part).await;
    if result.is_err() {
        let _ = tokio::fs::remove_file(&part).await;
    }
    let (file, revision) = result?;
    let meta = describe(ctx, endpoint, revision, &file).await?;
    let meta_path = SnapshotMeta::path_for(&path);
    let written = meta.clone();
    tokio::task::spawn_blocking(move || written.write(&meta_path))
        .await
        .map_err(|join| EtcdError::Io {
            what: "write snapshot metadata",
            path: path.clone(),
            source: std::io::Error::other(join.to_string()),
        })?
        .map_err(|err| EtcdError::Snapshot {
            path: path.clone(),
            reason: err.to_string(),
        })?;
    Ok(CallOutcome::new(format!(
        "saved {} from {}: {} bytes at revision {revision}, sha256 {}",
        path.display(),
        ctx.short(endpoint),
        file.size,
        file.sha256
    ))
    .output("path", path.display())
    .output("revision", revision)
    .output("size", file.size)
    .output("sha256", file.sha256)
    .output("member", meta.member)
    .output("time", humantime::format_rfc3339_millis(meta.time.0)))
}

/// The endpoint to stream from: the first voting follower that answers, else the first member
/// that answers.
pub(crate) async fn source_member(ctx: &Ctx<'_>) -> Result<String, EtcdError> {
    if ctx.endpoints.len() == 1 {
        return Ok(ctx.endpoints[0].clone());
    }
    let answers = join_all(ctx.endpoints.iter().map(|endpoint| async move {
        let mut client = ctx.client_for(endpoint).await?;
        let status = client
            .status()
            .await
            .map_err(|err| call_error(format!("status of {}", ctx.label(endpoint)), err))?;
        let member = status.header().map_or(0, |h| h.member_id());
        Ok::<_, EtcdError>(status.leader() != member && !status.is_learner())
    }))
    .await;
    let mut errors = Vec::new();
    let mut answering = None;
    for (endpoint, answer) in ctx.endpoints.iter().zip(answers) {
        match answer {
            Ok(true) => return Ok(endpoint.clone()),
            Ok(false) => {
                answering.get_or_insert_with(|| endpoint.clone());
            }
            Err(err) => errors.push(err.to_string()),
        }
    }
    answering.ok_or_else(|| EtcdError::Refused {
        what: "snapshot save".into(),
        reason: format!("no endpoint answers: {}", errors.join("; ")),
    })
}

/// The metadata of a snapshot just streamed from `endpoint`: which cluster and member, at which
/// revision and time. The member's name comes from the inventory when a node has the endpoint,
/// else from the member list; the cluster's from the inventory, else its id.
async fn describe(
    ctx: &Ctx<'_>,
    endpoint: &str,
    revision: i64,
    file: &SnapshotFile,
) -> Result<SnapshotMeta, EtcdError> {
    let mut client = ctx.client_for(endpoint).await?;
    let what = || format!("status of {}", ctx.label(endpoint));
    let status = client
        .status()
        .await
        .map_err(|err| call_error(what(), err))?;
    let (cluster_id, member_id) = status
        .header()
        .map_or((0, 0), |h| (h.cluster_id(), h.member_id()));
    let node = ctx
        .cluster
        .nodes
        .iter()
        .find(|n| same_url(&n.etcd.client_url, endpoint));
    let member = match node {
        Some(node) => node.etcd.member.clone(),
        None => client
            .member_list()
            .await
            .map_err(|err| call_error(format!("member list of {}", ctx.label(endpoint)), err))?
            .members()
            .iter()
            .find(|m| m.id() == member_id && !m.name().is_empty())
            .map_or_else(|| format!("{member_id:x}"), |m| m.name().to_string()),
    };
    let cluster = if ctx.cluster.nodes.is_empty() {
        format!("{cluster_id:x}")
    } else {
        ctx.cluster.inventory().name.clone()
    };
    Ok(SnapshotMeta {
        format: META_FORMAT.into(),
        version: META_VERSION,
        cluster,
        cluster_id: format!("{cluster_id:x}"),
        member,
        member_id: format!("{member_id:x}"),
        endpoint: endpoint.to_string(),
        etcd_version: status.version().to_string(),
        revision,
        time: Timestamp::now(),
        size: file.size,
        sha256: file.sha256.clone(),
        written_on: host_name(),
    })
}

/// This machine's host name, or `unknown`.
pub(crate) fn host_name() -> String {
    let mut buffer = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname writes at most that many bytes.
    let rc = unsafe { libc::gethostname(buffer.as_mut_ptr().cast(), buffer.len()) };
    if rc != 0 {
        return "unknown".into();
    }
    let end = buffer.iter().position(|b| *b == 0).unwrap_or(buffer.len());
    String::from_utf8_lossy(&buffer[..end]).into_owned()
}

async fn stream_to(
    ctx: &Ctx<'_>,
    endpoint: &str,
    path: &Path,
    part: &Path,
) -> Result<(SnapshotFile, i64), EtcdError> {
    let io = |what: &'static str, at: &Path| {
        let at = at.to_path_buf();
        move |source| EtcdError::Io {
            what,
            path: at,
            source,
        }
    };
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    };
    tokio::fs::create_dir_all(&dir)
        .await
        .map_err(io("create directory", &dir))?;
    let file = tokio::fs::File::create(part)
        .await
        .map_err(io("create", part))?;
    let mut writer = BufWriter::with_capacity(BUFFER, file);

    let what = || format!("snapshot from {}", ctx.label(endpoint));
    let mut client = ctx.client_for(endpoint).await?;
    // etcd before 3.6 sends no header with the stream: the member's revision read just before
    // it is the snapshot's revision, or a lower bound when writes land in between.
    let before = member_revision(ctx, &mut client, endpoint).await?;
    let mut stream = client
        .snapshot()
        .await
        .map_err(|err| call_error(what(), err))?;
    let mut hasher = TrailerHasher::default();
    let mut revision = None;
    // To the end of the stream: the digest comes after the message with remaining_bytes == 0.
    while let Some(message) = stream
        .message()
        .await
        .map_err(|err| call_error(what(), err))?
    {
        if revision.is_none() {
            let header = message.header().map_or(0, |h| h.revision());
            revision = Some(if header > 0 { header } else { before });
        }
        let blob = message.blob();
        if let Some(meter) = ctx.meter {
            if meter.done() == 0 {
                meter.set_total(blob.len() as u64 + message.remaining_bytes());
            }
            meter.add(blob.len() as u64);
        }
        hasher.update(blob);
        writer.write_all(blob).await.map_err(io("write", part))?;
    }
    writer.flush().await.map_err(io("write", part))?;
    let file = writer.into_inner();
    let checked = hasher.finish().map_err(|reason| EtcdError::Snapshot {
        path: path.to_path_buf(),
        reason: format!("the stream from {} has {reason}", ctx.label(endpoint)),
    })?;
    drop(file);
    let (from, to) = (part.to_path_buf(), path.to_path_buf());
    tokio::task::spawn_blocking(move || crate::atomic_file::commit(&from, &to))
        .await
        .map_err(|join| std::io::Error::other(join.to_string()))
        .and_then(|r| r)
        .map_err(io("commit snapshot into", path))?;
    Ok((checked, revision.unwrap_or(before)))
}

/// The revision one member has applied, from a serializable read answered by that member.
async fn member_revision(
    ctx: &Ctx<'_>,
    client: &mut etcd_client::Client,
    endpoint: &str,
) -> Result<i64, EtcdError> {
    let options = etcd_client::GetOptions::new()
        .with_serializable()
        .with_count_only();
    let resp = client
        .get("health", Some(options))
        .await
        .map_err(|err| call_error(format!("read of {}", ctx.label(endpoint)), err))?;
    Ok(resp.header().map_or(0, |h| h.revision()))
}
