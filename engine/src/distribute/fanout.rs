//! One reader, many writers: a snapshot read once and handed to every node's writer as it is
//! read. Memory stays bounded (each writer has a queue of [`QUEUED_CHUNKS`] chunks of [`CHUNK`]
//! bytes) and the reader goes at the pace of the slowest writer still writing; a writer that
//! stops (its node failed) is dropped and the others go on. The bytes are hashed as they pass:
//! the sha256 of the whole stream, which each node's own hash of what it wrote must equal, and
//! etcd's trailer check (the size is `512 * k + 32` and the last 32 bytes are the sha256 of the
//! rest).

use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::mpsc;

use crate::etcd::TrailerHasher;

/// The most bytes one read takes from the source.
pub(crate) const CHUNK: usize = 1024 * 1024;
/// Chunks queued for one writer before the reader waits for it.
pub(crate) const QUEUED_CHUNKS: usize = 8;

/// A piece of the source, shared by every writer it goes to.
pub(crate) type Chunk = Arc<Vec<u8>>;

/// What the reader read, once its trailer checked out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Digest {
    /// Bytes read, trailer included.
    pub size: u64,
    /// The sha256 of every byte read: what a node's copy must hash to.
    pub file_sha256: String,
    /// The sha256 of the data, equal to its trailer (what `etcd.snapshot.verify` reports).
    pub sha256: String,
}

/// A writer's queue: a new one and the reader's end of it.
pub(crate) fn queue() -> (mpsc::Sender<Chunk>, mpsc::Receiver<Chunk>) {
    mpsc::channel(QUEUED_CHUNKS)
}

/// Where a round's bytes come from, a chunk at a time.
pub(crate) trait Source {
    /// The next chunk, `None` at the end; `Err` says why reading stopped.
    async fn next_chunk(&mut self) -> Result<Option<Vec<u8>>, String>;
}

/// A file (or any reader) read [`CHUNK`] bytes at a time.
pub(crate) struct Reader<R>(pub R);

impl<R: AsyncRead + Unpin> Source for Reader<R> {
    async fn next_chunk(&mut self) -> Result<Option<Vec<u8>>, String> {
        let mut buffer = vec![0u8; CHUNK];
        let read = self.0.read(&mut buffer).await.map_err(|e| e.to_string())?;
        buffer.truncate(read);
        Ok(Some(buffer).filter(|b| !b.is_empty()))
    }
}

/// Reads `source` to its end once, sending every chunk to each writer in `writers` that still
/// takes them, and checks the sha256 trailer. The writers' queues close when it returns: after
/// the last byte, or early when the source fails or no writer is left. `Err` says why in words
/// that name the trailer (`no sha256 trailer`, `corrupt`) or the read.
pub(crate) async fn fan_out(
    source: &mut impl Source,
    mut writers: Vec<mpsc::Sender<Chunk>>,
) -> Result<Digest, String> {
    let mut hasher = TrailerHasher::default();
    let mut size = 0u64;
    loop {
        let buffer = match source.next_chunk().await {
            Ok(Some(buffer)) => buffer,
            Ok(None) => break,
            Err(err) => return Err(format!("read failed after {size} bytes: {err}")),
        };
        hasher.update(&buffer);
        size += buffer.len() as u64;
        let chunk = Arc::new(buffer);
        // In turn: a full queue holds the reader until its writer takes a chunk, so the reader
        // never runs ahead of the slowest writer by more than its queue.
        let mut kept = Vec::with_capacity(writers.len());
        for writer in writers {
            if writer.send(Arc::clone(&chunk)).await.is_ok() {
                kept.push(writer);
            }
        }
        writers = kept;
        if writers.is_empty() {
            return Err(format!(
                "no node is receiving any more (stopped after {size} bytes)"
            ));
        }
    }
    drop(writers);
    let file_sha256 = hasher.whole_sha256();
    let checked = hasher.finish()?;
    Ok(Digest {
        size,
        file_sha256,
        sha256: checked.sha256,
    })
}

#[cfg(test)]
mod tests {
    use std::pin::Pin;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::task::{Context, Poll};

    use sha2::{Digest as _, Sha256};
    use tokio::io::ReadBuf;

    use super::*;

    /// A snapshot-shaped byte string: `pages * 512` bytes of data and their sha256.
    fn snapshot(pages: usize) -> Vec<u8> {
        let mut data: Vec<u8> = (0..pages * 512).map(|i| (i * 7 % 251) as u8).collect();
        let digest = Sha256::digest(&data);
        data.extend_from_slice(&digest);
        data
    }

    /// A source that counts the bytes read from it.
    struct Counted<'a> {
        inner: &'a [u8],
        read: &'a AtomicU64,
    }

    impl AsyncRead for Counted<'_> {
        fn poll_read(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<std::io::Result<()>> {
            let before = buf.filled().len();
            let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
            self.read
                .fetch_add((buf.filled().len() - before) as u64, Ordering::SeqCst);
            polled
        }
    }

    /// Takes every chunk; `pause` yields to the runtime that many times before each one.
    async fn drain(mut queue: mpsc::Receiver<Chunk>, pause: usize, got: &AtomicU64) -> Vec<u8> {
        let mut bytes = Vec::new();
        while let Some(chunk) = queue.recv().await {
            for _ in 0..pause {
                tokio::task::yield_now().await;
            }
            bytes.extend_from_slice(&chunk);
            got.fetch_add(chunk.len() as u64, Ordering::SeqCst);
        }
        bytes
    }

    #[tokio::test]
    async fn every_writer_gets_every_byte_and_the_reader_waits_for_the_slowest() {
        let source = snapshot(5 * CHUNK / 512 + 3);
        let read = AtomicU64::new(0);
        let (fast, slow) = (AtomicU64::new(0), AtomicU64::new(0));
        let (to_fast, fast_queue) = queue();
        let (to_slow, slow_queue) = queue();
        let ahead = std::cell::Cell::new(0u64);
        let mut counted = Reader(Counted {
            inner: &source,
            read: &read,
        });
        let reader = fan_out(&mut counted, vec![to_fast, to_slow]);
        let watch = async {
            // Samples how far the reader is ahead of the slow writer while they run.
            loop {
                let lead = read.load(Ordering::SeqCst) - slow.load(Ordering::SeqCst);
                ahead.set(ahead.get().max(lead));
                if slow.load(Ordering::SeqCst) == source.len() as u64 {
                    break;
                }
                tokio::task::yield_now().await;
            }
        };
        let (digest, fast_bytes, slow_bytes, ()) = tokio::join!(
            reader,
            drain(fast_queue, 0, &fast),
            drain(slow_queue, 50, &slow),
            watch
        );
        let digest = digest.unwrap();
        assert_eq!(
            read.load(Ordering::SeqCst),
            source.len() as u64,
            "read once"
        );
        assert_eq!(fast_bytes, source);
        assert_eq!(slow_bytes, source);
        assert_eq!(digest.size, source.len() as u64);
        assert_eq!(
            digest.file_sha256,
            crate::humanize::hex(&Sha256::digest(&source))
        );
        assert_eq!(
            digest.sha256,
            crate::humanize::hex(&source[source.len() - 32..])
        );
        // Bounded memory: the queue, the chunk in hand and the one being sent.
        let bound = ((QUEUED_CHUNKS + 2) * CHUNK) as u64;
        assert!(ahead.get() <= bound, "{} > {bound}", ahead.get());
    }

    #[tokio::test]
    async fn a_writer_that_stops_is_dropped_and_the_others_finish() {
        let source = snapshot(3 * CHUNK / 512);
        let (to_ok, ok_queue) = queue();
        let (to_failing, mut failing_queue) = queue();
        let failing = async move {
            // Takes one chunk, then fails: its queue closes.
            let first = failing_queue.recv().await;
            drop(failing_queue);
            first.map(|c| c.len())
        };
        let got = AtomicU64::new(0);
        let mut reader = Reader(&source[..]);
        let (digest, bytes, first) = tokio::join!(
            fan_out(&mut reader, vec![to_ok, to_failing]),
            drain(ok_queue, 0, &got),
            failing
        );
        assert!(digest.is_ok(), "{digest:?}");
        assert_eq!(bytes, source);
        assert_eq!(first, Some(CHUNK));
    }

    #[tokio::test]
    async fn the_reader_stops_when_no_writer_is_left() {
        let source = snapshot(8 * CHUNK / 512);
        let (to_gone, gone) = queue();
        drop(gone);
        let err = fan_out(&mut Reader(&source[..]), vec![to_gone])
            .await
            .unwrap_err();
        assert!(err.contains("no node is receiving"), "{err}");
    }

    #[tokio::test]
    async fn a_corrupted_or_truncated_source_is_caught_by_the_trailer() {
        let mut flipped = snapshot(40);
        flipped[1000] ^= 0x01;
        let truncated = &snapshot(40)[..40 * 512];
        for (source, why) in [
            (&flipped[..], "corrupt: the sha256 of the data is"),
            (truncated, "no sha256 trailer"),
        ] {
            let (to_writer, writer) = queue();
            let got = AtomicU64::new(0);
            let mut reader = Reader(source);
            let (digest, bytes) = tokio::join!(
                fan_out(&mut reader, vec![to_writer]),
                drain(writer, 0, &got)
            );
            let err = digest.unwrap_err();
            assert!(err.contains(why), "{err}");
            // The writer got the bytes; only the verdict keeps them from being renamed.
            assert_eq!(bytes, source);
        }
    }
}
