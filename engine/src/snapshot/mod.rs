//! Native `snapshot status` and `snapshot verify` of etcd snapshot files, without etcdutl.
//!
//! A snapshot saved by `etcdctl snapshot save` (or etcdrill's `etcd.snapshot.save`) is a bbolt
//! database followed by the 32-byte sha256 of it. [`status`] reports what
//! `etcdutl snapshot status` reports, computed the same way (its CRC-32C hash, revision, total
//! keys and total size; see [`status`](self::status) for the details) after the same bbolt
//! consistency checks; like etcdutl it does not hash the data, so it only says whether a trailer is
//! there. [`verify`] also requires the trailer to be present and to be the sha256 of the data.
//!
//! The bbolt file is read by a small read-only page walker of etcdrill's own (`bbolt`), which
//! bounds-checks every offset against the page and the file, so a truncated or damaged file is an
//! error naming the page, never a panic or a loop. Memory stays at a few pages whatever the size
//! of the file; verify's sha256 pass runs on a second thread while the pages are walked, so it
//! costs the time of the slower of the two (the sha256, at about 1.7 GB/s with SHA-NI).

mod bbolt;
pub mod meta;
mod status;
#[cfg(test)]
mod tests;

/// A tiny bbolt writer for tests elsewhere in the crate (`test_db::sample(bytes)` is a sound raw
/// database of at least that size; `test_db::with_trailer` makes it a snapshot).
#[cfg(test)]
pub(crate) use bbolt::build as test_db;

use std::fmt;
use std::path::{Path, PathBuf};

pub use bbolt::Corruption;

/// The state of a snapshot file's sha256 trailer.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum TrailerCheck {
    /// The last 32 bytes are the sha256 of the rest.
    Valid {
        /// That sha256, lowercase hex.
        sha256: String,
    },
    /// The file is not `512 * k + 32` bytes long, so it has no trailer: a raw `member/snap/db`
    /// copy, or a truncated snapshot.
    Missing,
    /// The file has a trailer, not checked against the data: `status` does not hash the data
    /// (etcdutl's does not either); `verify` does.
    Unchecked {
        /// The trailer, lowercase hex.
        trailer: String,
    },
    /// The file has a trailer that is not the sha256 of the rest: the file is damaged.
    Mismatch {
        /// The trailer, lowercase hex.
        expected: String,
        /// The sha256 of the data, lowercase hex.
        actual: String,
    },
}

/// What `status` learns about a snapshot file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SnapshotStatus {
    /// etcdutl's HASH: CRC-32C (Castagnoli) over every top-level bucket's name and its keys and
    /// values, in order.
    pub hash: u32,
    /// etcdutl's REVISION: the main revision of the last key in the `key` bucket (0 if empty).
    pub revision: i64,
    /// etcdutl's TOTAL KEYS: entries of all top-level buckets (a nested bucket counts as one).
    pub total_keys: u64,
    /// etcdutl's TOTAL SIZE: bbolt's size, pages in use times page size; for a snapshot, the file
    /// without its trailer.
    pub total_size: u64,
    /// The storage version etcd 3.6 and later record in the `meta` bucket; `None` before 3.6.
    pub version: Option<String>,
    /// Size of the file, trailer included.
    pub file_size: u64,
    /// bbolt page size.
    pub page_size: u32,
    /// bbolt transaction id of the meta page in use.
    pub txid: u64,
    /// The sha256 trailer.
    pub sha256_trailer: TrailerCheck,
}

/// Why a snapshot file could not be read, or is not sound.
#[derive(Debug, thiserror::Error)]
#[error("snapshot {}: {kind}", path.display())]
pub struct SnapshotError {
    /// The file.
    pub path: PathBuf,
    /// What went wrong.
    #[source]
    pub kind: SnapshotErrorKind,
}

/// What went wrong with a snapshot file.
#[derive(Debug)]
pub enum SnapshotErrorKind {
    /// The file could not be opened or read.
    Io {
        /// What was being done, e.g. `read`.
        what: &'static str,
        /// Why.
        source: std::io::Error,
    },
    /// The bbolt structure is unsound.
    Corrupt(Corruption),
    /// `verify` only: the file has no sha256 trailer.
    NoTrailer {
        /// The file's size.
        size: u64,
    },
    /// `verify` only: the trailer is not the sha256 of the data.
    TrailerMismatch {
        /// The trailer, lowercase hex.
        expected: String,
        /// The sha256 of the data, lowercase hex.
        actual: String,
        /// The structure problem too, when there is one.
        structure: Option<Corruption>,
    },
}

impl fmt::Display for SnapshotErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SnapshotErrorKind::Io { what, source } => write!(f, "cannot {what} the file: {source}"),
            SnapshotErrorKind::Corrupt(c) => write!(f, "corrupt bbolt database: {c}"),
            SnapshotErrorKind::NoTrailer { size } => write!(
                f,
                "no sha256 trailer: {size} bytes is not 512*k + 32 (truncated, or a raw \
                 member/snap/db copy, which needs skip_hash_check on restore)"
            ),
            SnapshotErrorKind::TrailerMismatch {
                expected,
                actual,
                structure,
            } => {
                write!(
                    f,
                    "corrupt: the sha256 of the data is {actual}, the trailer says {expected} \
                     (sha256 trailer mismatch)"
                )?;
                if let Some(c) = structure {
                    write!(f, "; the bbolt structure is damaged too: {c}")?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for SnapshotErrorKind {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SnapshotErrorKind::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

fn examine(path: &Path, check_trailer: bool) -> Result<status::Examined, SnapshotError> {
    let fail = |what: &'static str| {
        move |source| SnapshotError {
            path: path.to_path_buf(),
            kind: SnapshotErrorKind::Io { what, source },
        }
    };
    let file = std::fs::File::open(path).map_err(fail("open"))?;
    let len = file.metadata().map_err(fail("stat"))?.len();
    status::examine(&file, len, check_trailer).map_err(fail("read"))
}

/// What `etcdutl snapshot status` reports for the file at `path` (a snapshot, or a raw bbolt
/// `member/snap/db`), after the bbolt consistency checks; and whether it has a sha256 trailer,
/// which is not checked here (see [`verify`]). Reads the pages once, in constant memory.
pub fn status(path: &Path) -> Result<SnapshotStatus, SnapshotError> {
    let examined = examine(path, false)?;
    examined.structure.map_err(|c| SnapshotError {
        path: path.to_path_buf(),
        kind: SnapshotErrorKind::Corrupt(c),
    })
}

/// [`status`] of a snapshot held in memory, as text when it is not sound, with the sha256 trailer
/// checked as [`verify`] checks it (so both passes run): what etcdrill would say of a file with
/// these bytes. For the fuzz targets.
pub fn status_of_bytes(bytes: &[u8]) -> Result<SnapshotStatus, String> {
    let examined =
        status::examine(bytes, bytes.len() as u64, true).map_err(|err| err.to_string())?;
    examined
        .structure
        .map_err(|corruption| corruption.to_string())
}

/// [`status`], and the file must be a sound snapshot: a sha256 trailer that matches the data, and
/// a sound bbolt structure. A trailer problem is reported first (it is the stronger evidence);
/// the message says "corrupt" or "no sha256 trailer".
pub fn verify(path: &Path) -> Result<SnapshotStatus, SnapshotError> {
    let examined = examine(path, true)?;
    let fail = |kind| SnapshotError {
        path: path.to_path_buf(),
        kind,
    };
    match examined.trailer {
        TrailerCheck::Missing => Err(fail(SnapshotErrorKind::NoTrailer {
            size: examined.file_size,
        })),
        TrailerCheck::Unchecked { .. } => unreachable!("verify checks the trailer"),
        TrailerCheck::Mismatch { expected, actual } => {
            Err(fail(SnapshotErrorKind::TrailerMismatch {
                expected,
                actual,
                structure: examined.structure.err(),
            }))
        }
        TrailerCheck::Valid { .. } => examined
            .structure
            .map_err(|c| fail(SnapshotErrorKind::Corrupt(c))),
    }
}
