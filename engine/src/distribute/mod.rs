//! `etcd.snapshot.distribute`: a snapshot file on the controller put on every node of a step in
//! one pass. The controller reads the file once for all the instances that start together and
//! hands the bytes to every node's transport at once ([`fanout`]); each node hashes what it
//! writes as it writes it and fsyncs it under a name of its own (`PATH.RUN.NODE.part`), and the
//! controller renames that part file into place only when the node's hash equals its own and the
//! sha256 trailer checked out. A node whose bytes do not hash right fails its own instance, and
//! nothing is left at `PATH`. With `save`, a round whose file does not exist yet takes the
//! snapshot from a member instead and writes it to the file as it passes ([`live`]): save, copy
//! and verify in one transfer.
//!
//! # Rounds
//!
//! The instances of one step are separate plan steps (each node's shows, retries and resumes on
//! its own), so they meet in a [`Rounds`] by source path. The first to arrive opens a round and
//! starts its reader as a task of its own; the reader lets the runtime go round a few times
//! before it seals the round, so that the instances the dispatcher started in the same wave join
//! it. An instance that comes later (a retry, a resumed run, a node held back by
//! `--concurrency`) opens a round of its own and reads the same file again: it gets the same
//! bytes, only not in the same pass.

mod fanout;
mod live;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch};

use crate::etcd::CallOutcome;
use crate::transfer::TransferMeter;
use crate::transport::{Landed, Transport};
use fanout::{Chunk, Digest};
pub(crate) use live::Save;
use live::{Live, Opened};

/// How many times a new round's reader yields to the runtime before it seals the round: the
/// instances started in the same wave of the dispatcher have joined by then.
const GATHER_YIELDS: usize = 4;

/// How a round ended, as every instance in it sees it.
#[derive(Debug)]
struct RoundEnd {
    /// The nodes that were sent the bytes.
    nodes: Vec<String>,
    /// The digest of what was read, or why the source is not a sound snapshot.
    digest: Result<Digest, String>,
    /// The member the snapshot was taken from, when it was taken live.
    taken_from: Option<String>,
}

/// Hands a live round's reader the stream its opener opened.
type Feed = oneshot::Sender<Result<Opened, String>>;

/// A round that still takes instances.
struct OpenRound {
    nodes: Vec<String>,
    writers: Vec<mpsc::Sender<Chunk>>,
    end: watch::Sender<Option<Arc<RoundEnd>>>,
    live: bool,
}

/// The rounds of a run: where instances streaming the same file meet. One per run, shared by
/// every step execution.
#[derive(Default)]
pub(crate) struct Rounds {
    open: Arc<Mutex<HashMap<PathBuf, OpenRound>>>,
}

/// One instance's place in a round.
struct Ticket {
    chunks: mpsc::Receiver<Chunk>,
    end: watch::Receiver<Option<Arc<RoundEnd>>>,
    /// The bytes come from a member, not from the file (whose size is not known yet).
    live: bool,
}

impl Rounds {
    /// Joins the open round reading `from`, or opens one and starts its reader. A new round is
    /// live when `save` is asked and `from` does not exist: then its opener gets the [`Feed`]
    /// to hand the reader the stream it opens.
    fn join(&self, from: &Path, node: &str, save: bool) -> (Ticket, Option<Feed>) {
        let (writer, chunks) = fanout::queue();
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(round) = open.get_mut(from) {
            round.nodes.push(node.to_owned());
            round.writers.push(writer);
            let ticket = Ticket {
                chunks,
                end: round.end.subscribe(),
                live: round.live,
            };
            return (ticket, None);
        }
        let live = save && !from.exists();
        let (end, seen) = watch::channel(None);
        open.insert(
            from.to_path_buf(),
            OpenRound {
                nodes: vec![node.to_owned()],
                writers: vec![writer],
                end,
                live,
            },
        );
        let (feed, fed) = if live {
            let (feed, fed) = oneshot::channel();
            (Some(feed), Some(fed))
        } else {
            (None, None)
        };
        tokio::spawn(read_round(Arc::clone(&self.open), from.to_path_buf(), fed));
        let ticket = Ticket {
            chunks,
            end: seen,
            live,
        };
        (ticket, feed)
    }
}

/// A round's reader: gathers the instances of the wave, seals the round, reads the file (or
/// the stream `fed` brings, into the file) once for all of them and tells each how it ended.
async fn read_round(
    open: Arc<Mutex<HashMap<PathBuf, OpenRound>>>,
    from: PathBuf,
    fed: Option<oneshot::Receiver<Result<Opened, String>>>,
) {
    for _ in 0..GATHER_YIELDS {
        tokio::task::yield_now().await;
    }
    let Some(round) = open.lock().unwrap_or_else(|e| e.into_inner()).remove(&from) else {
        return;
    };
    let (digest, taken_from) = match fed {
        None => match tokio::fs::File::open(&from).await {
            Ok(file) => (
                fanout::fan_out(&mut fanout::Reader(file), round.writers).await,
                None,
            ),
            Err(err) => (Err(format!("cannot open it: {err}")), None),
        },
        Some(fed) => match fed.await {
            Ok(Ok(opened)) => {
                let member = opened.member.clone();
                (take(opened, &from, round.writers).await, Some(member))
            }
            Ok(Err(reason)) => (Err(reason), None),
            Err(_) => (Err("nothing opened a snapshot stream".into()), None),
        },
    };
    round.end.send_replace(Some(Arc::new(RoundEnd {
        nodes: round.nodes,
        digest,
        taken_from,
    })));
}

/// Takes the snapshot `opened` streams into `from` on the controller while fanning it out; `from`
/// exists afterwards only if the stream checked out.
async fn take(
    opened: Opened,
    from: &Path,
    writers: Vec<mpsc::Sender<Chunk>>,
) -> Result<Digest, String> {
    let mut live = Live::create(opened, from).await?;
    match fanout::fan_out(&mut live, writers).await {
        Ok(digest) => live.keep(from).await.map(|()| digest),
        Err(reason) => {
            live.discard().await;
            Err(reason)
        }
    }
}

/// Where and how one instance writes.
pub(crate) struct Destination<'a> {
    /// The node's transport.
    pub transport: &'a Transport,
    /// The node's name.
    pub node: &'a str,
    /// The path on the node.
    pub to: &'a str,
    /// Names the part file: the run and the node.
    pub writer: &'a str,
    /// Through `sudo -n`.
    pub sudo: bool,
}

/// Why an instance failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Failure {
    /// The snapshot on the controller cannot be read or is not sound (no trailer, corrupt):
    /// another attempt would read the same bytes, so none is made.
    Source(String),
    /// Getting the bytes onto this node failed; another attempt may not.
    Node(String),
}

/// One instance of `etcd.snapshot.distribute`: streams `from` to the destination within
/// `timeout`, counting the bytes sent on `meter`; with `save`, takes the snapshot from a member
/// into `from` as it streams when `from` does not exist yet. Outputs `path`, `size` and `sha256`
/// (of the data, equal to its trailer, as `etcd.snapshot.verify` reports it).
pub(crate) async fn distribute(
    rounds: &Rounds,
    from: &str,
    save: Option<&Save<'_>>,
    at: &Destination<'_>,
    timeout: Duration,
    meter: &TransferMeter,
) -> Result<CallOutcome, Failure> {
    let source = Path::new(from);
    // Before the first await: the instances polled together join together.
    let (
        Ticket {
            chunks,
            mut end,
            live,
        },
        feed,
    ) = rounds.join(source, at.node, save.is_some());
    if let (Some(feed), Some(save)) = (feed, save) {
        // The reader waits for it; whether it went is what the round's end says.
        let _ = feed.send(live::open(save, timeout).await);
    }
    let size = if live {
        None
    } else {
        let size = tokio::fs::metadata(source)
            .await
            .map_err(|err| {
                Failure::Source(format!(
                    "cannot read the snapshot {from} on the controller: {err}"
                ))
            })?
            .len();
        meter.set_total(size);
        Some(size)
    };
    let transport = at.transport;
    let landed = transport
        .receive(chunks, size, at.to, at.writer, at.sudo, timeout, meter)
        .await
        .map_err(|err| Failure::Node(crate::humanize::error_chain(&err)))?;
    let end = match end.wait_for(Option::is_some).await {
        Ok(end) => end.clone().expect("waited for it"),
        Err(_) => {
            return Err(Failure::Node(
                "the controller's reader of the snapshot stopped".into(),
            ));
        }
    };
    let refuse = |reason: Failure| async move {
        // The part file is the only thing written; a failure to remove it is secondary.
        let _ = transport
            .settle_part(at.to, at.writer, false, at.sudo, timeout)
            .await;
        Err(reason)
    };
    let digest = match &end.digest {
        Ok(digest) => digest,
        // A live stream that failed may go better the next time; a file reads the same.
        Err(reason) if live => {
            let reason = format!("taking the snapshot into {from}: {reason}");
            return refuse(Failure::Node(reason)).await;
        }
        Err(reason) => {
            let reason = format!("the snapshot {from} on the controller: {reason}");
            return refuse(Failure::Source(reason)).await;
        }
    };
    if let Err(reason) = same_bytes(&landed, digest, at.node) {
        return refuse(Failure::Node(reason)).await;
    }
    transport
        .settle_part(at.to, at.writer, true, at.sudo, timeout)
        .await
        .map_err(|err| Failure::Node(crate::humanize::error_chain(&err)))?;
    let shared = if end.nodes.len() > 1 {
        let mut nodes = end.nodes.clone();
        nodes.sort();
        format!(", one read for {}", nodes.join(", "))
    } else {
        String::new()
    };
    let taken = match &end.taken_from {
        Some(member) => format!("took a snapshot from {member} into {from} and streamed it"),
        None => format!("streamed {from}"),
    };
    Ok(CallOutcome::new(format!(
        "{taken} to {} on {}: {} bytes, sha256 of the file {} on both ends, trailer sha256 {}{shared}",
        at.to, at.node, digest.size, digest.file_sha256, digest.sha256
    ))
    .output("path", at.to)
    .output("size", digest.size)
    .output("sha256", &digest.sha256))
}

/// Whether what landed on `node` is what the controller read: the same size and sha256.
fn same_bytes(landed: &Landed, read: &Digest, node: &str) -> Result<(), String> {
    if landed.size == read.size && landed.sha256 == read.file_sha256 {
        return Ok(());
    }
    Err(format!(
        "the copy on {node} is not the snapshot: {} bytes hashing to {} landed, {} bytes hashing to {} were read",
        landed.size, landed.sha256, read.size, read.file_sha256
    ))
}

#[cfg(test)]
mod tests;
