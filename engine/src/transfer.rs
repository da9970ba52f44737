//! Bytes a running step moves (a snapshot streamed from a member, a file copied to or from a node),
//! counted as they move so progress can show how far a long copy is and how fast it goes. The
//! meter is shared between the step doing the work and the progress reporter reading it.

use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// How many bytes a step has moved, and of how many when that is known.
#[derive(Debug, Default)]
pub struct TransferMeter {
    done: AtomicU64,
    /// 0 while the size is not known.
    total: AtomicU64,
}

impl TransferMeter {
    /// Counts `bytes` more as moved.
    pub fn add(&self, bytes: u64) {
        self.done.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Records the size of the whole transfer.
    pub fn set_total(&self, bytes: u64) {
        self.total.store(bytes, Ordering::Relaxed);
    }

    /// Bytes moved so far.
    pub fn done(&self) -> u64 {
        self.done.load(Ordering::Relaxed)
    }

    /// The size of the whole transfer, when known.
    pub fn total(&self) -> Option<u64> {
        Some(self.total.load(Ordering::Relaxed)).filter(|&n| n > 0)
    }
}

/// A reader or writer that counts what passes through it on a [`TransferMeter`].
pub struct Metered<'m, T> {
    inner: T,
    meter: &'m TransferMeter,
}

impl<'m, T> Metered<'m, T> {
    /// Counts what passes through `inner` on `meter`.
    pub fn new(inner: T, meter: &'m TransferMeter) -> Self {
        Self { inner, meter }
    }

    /// The reader or writer inside.
    pub fn into_inner(self) -> T {
        self.inner
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Metered<'_, T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = polled {
            self.meter.add((buf.filled().len() - before) as u64);
        }
        polled
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Metered<'_, T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, data);
        if let Poll::Ready(Ok(written)) = polled {
            self.meter.add(written as u64);
        }
        polled
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    #[tokio::test]
    async fn counts_what_is_read_and_what_is_written() {
        let meter = TransferMeter::default();
        assert_eq!(meter.total(), None);
        meter.set_total(11);
        let mut text = String::new();
        Metered::new(&b"hello world"[..], &meter)
            .read_to_string(&mut text)
            .await
            .unwrap();
        assert_eq!((meter.done(), meter.total()), (11, Some(11)));

        let written = TransferMeter::default();
        let mut sink = Metered::new(Vec::new(), &written);
        sink.write_all(b"abc").await.unwrap();
        sink.flush().await.unwrap();
        assert_eq!(written.done(), 3);
        assert_eq!(sink.into_inner(), b"abc");
    }
}
