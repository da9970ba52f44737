//! Capturing a command's output: the kept tail of each stream (at most [`OUTPUT_CAP_BYTES`]), live
//! chunks of whole lines, and the process group line taken out of stderr.

use std::pin::Pin;

use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::mpsc::UnboundedSender;

use super::supervise::GroupId;
use super::{OUTPUT_CAP_BYTES, OutputChunk, PGID_TAG};

/// Which stream a capture reads.
#[derive(Debug, Clone, Copy)]
pub(super) enum Stream {
    Stdout,
    Stderr,
}

/// Collects one output stream: the tail for the result, whole-line chunks for `live`, and (on
/// stderr) the process group line taken out.
pub(super) struct Capture<'l> {
    tail: TailBuffer,
    lines: LineSplitter,
    live: Option<(&'l UnboundedSender<OutputChunk>, Stream)>,
    tag: TagFilter,
}

impl<'l> Capture<'l> {
    pub(super) fn new(live: Option<(&'l UnboundedSender<OutputChunk>, Stream)>) -> Self {
        Self {
            tail: TailBuffer::new(OUTPUT_CAP_BYTES),
            lines: LineSplitter::default(),
            live,
            tag: TagFilter::default(),
        }
    }

    fn accept(&mut self, bytes: &[u8]) {
        self.tail.push(bytes);
        if let Some((sender, stream)) = self.live {
            if let Some(chunk) = self.lines.push(bytes) {
                let _ = sender.send(match stream {
                    Stream::Stdout => OutputChunk::Stdout(chunk),
                    Stream::Stderr => OutputChunk::Stderr(chunk),
                });
            }
        }
    }

    pub(super) fn finish(mut self, name: &str) -> String {
        let rest = self.tag.finish();
        self.accept(&rest);
        if let Some((sender, stream)) = self.live {
            if let Some(chunk) = self.lines.finish() {
                let _ = sender.send(match stream {
                    Stream::Stdout => OutputChunk::Stdout(chunk),
                    Stream::Stderr => OutputChunk::Stderr(chunk),
                });
            }
        }
        self.tail.into_string(name)
    }
}

/// Reads a stream to its end into `capture`, taking out the process group line if `pgid` is given.
pub(super) async fn pump(
    mut reader: Pin<Box<dyn AsyncRead + Send + '_>>,
    capture: &mut Capture<'_>,
    pgid: Option<&GroupId>,
) -> std::io::Result<()> {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = reader.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        match pgid {
            Some(pgid) => {
                let passed = capture.tag.push(&buf[..n], pgid);
                capture.accept(&passed);
            }
            None => capture.accept(&buf[..n]),
        }
    }
}

/// Finds the tagged process group line among the first lines of stderr and removes it.
#[derive(Debug, Default)]
pub(super) struct TagFilter {
    pending: Vec<u8>,
    done: bool,
}

impl TagFilter {
    /// Give up looking after this many bytes without the tag.
    const LIMIT: usize = 64 * 1024;

    /// Takes in bytes, returns what passes through.
    pub(super) fn push(&mut self, bytes: &[u8], pgid: &GroupId) -> Vec<u8> {
        if self.done {
            return bytes.to_vec();
        }
        self.pending.extend_from_slice(bytes);
        let mut passed = Vec::new();
        let mut start = 0;
        while let Some(end) = self.pending[start..].iter().position(|&b| b == b'\n') {
            let line = &self.pending[start..start + end + 1];
            start += end + 1;
            if let Some(rest) = line.strip_prefix(PGID_TAG.as_bytes()) {
                if let Some(group) = std::str::from_utf8(rest)
                    .ok()
                    .and_then(|s| s.trim().parse::<i32>().ok())
                    .filter(|&g| g > 1)
                {
                    pgid.set(group);
                }
                self.done = true;
                passed.extend_from_slice(&self.pending[start..]);
                self.pending.clear();
                return passed;
            }
            passed.extend_from_slice(line);
        }
        self.pending.drain(..start);
        if self.pending.len() > Self::LIMIT {
            self.done = true;
            passed.append(&mut self.pending);
        }
        passed
    }

    /// What is left at the end of the stream.
    pub(super) fn finish(&mut self) -> Vec<u8> {
        self.done = true;
        std::mem::take(&mut self.pending)
    }
}

/// Keeps the last `cap` bytes of a stream and counts what was cut.
#[derive(Debug)]
pub(super) struct TailBuffer {
    cap: usize,
    bytes: Vec<u8>,
    cut: u64,
}

impl TailBuffer {
    pub(super) fn new(cap: usize) -> Self {
        Self {
            cap,
            bytes: Vec::new(),
            cut: 0,
        }
    }

    pub(super) fn push(&mut self, data: &[u8]) {
        if data.len() >= self.cap {
            self.cut += (self.bytes.len() + data.len() - self.cap) as u64;
            self.bytes.clear();
            self.bytes.extend_from_slice(&data[data.len() - self.cap..]);
            return;
        }
        self.bytes.extend_from_slice(data);
        // Compact only when twice the cap is reached, so that trimming stays amortised O(1).
        if self.bytes.len() >= 2 * self.cap {
            let excess = self.bytes.len() - self.cap;
            self.bytes.drain(..excess);
            self.cut += excess as u64;
        }
    }

    /// Lossy UTF-8 of the kept end, starting at a character boundary, with a note of the cut.
    pub(super) fn into_string(mut self, name: &str) -> String {
        if self.bytes.len() > self.cap {
            let excess = self.bytes.len() - self.cap;
            self.bytes.drain(..excess);
            self.cut += excess as u64;
        }
        if self.cut == 0 {
            return String::from_utf8_lossy(&self.bytes).into_owned();
        }
        // Skip a character the cut went through (at most 3 continuation bytes).
        let skip = self
            .bytes
            .iter()
            .take(3)
            .take_while(|&&b| b & 0xC0 == 0x80)
            .count();
        format!(
            "[etcdrill: the first {} bytes of {name} were cut]\n{}",
            self.cut + skip as u64,
            String::from_utf8_lossy(&self.bytes[skip..])
        )
    }
}

/// Turns a byte stream into chunks of whole lines (lossy UTF-8); a line longer than
/// [`LineSplitter::MAX_PENDING`] is sent in pieces cut at character boundaries.
#[derive(Debug, Default)]
pub(super) struct LineSplitter {
    pending: Vec<u8>,
}

impl LineSplitter {
    pub(super) const MAX_PENDING: usize = 8 * 1024;

    pub(super) fn push(&mut self, bytes: &[u8]) -> Option<String> {
        self.pending.extend_from_slice(bytes);
        let end = match self.pending.iter().rposition(|&b| b == b'\n') {
            Some(i) => i + 1,
            None if self.pending.len() >= Self::MAX_PENDING => {
                match std::str::from_utf8(&self.pending) {
                    Ok(_) => self.pending.len(),
                    // Keep an incomplete character at the end for the next push.
                    Err(e) if e.error_len().is_none() && e.valid_up_to() > 0 => e.valid_up_to(),
                    Err(_) => self.pending.len(),
                }
            }
            None => return None,
        };
        let chunk: Vec<u8> = self.pending.drain(..end).collect();
        Some(String::from_utf8_lossy(&chunk).into_owned())
    }

    pub(super) fn finish(&mut self) -> Option<String> {
        if self.pending.is_empty() {
            return None;
        }
        let chunk = std::mem::take(&mut self.pending);
        Some(String::from_utf8_lossy(&chunk).into_owned())
    }
}
