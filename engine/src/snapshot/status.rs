//! What `etcdutl snapshot status` reports, computed natively: the CRC-32C hash, the revision, the
//! key count and the size, plus the sha256 trailer check etcdutl does not make.
//!
//! etcdutl (`etcdutl/snapshot/v3_snapshot.go`, `Status`) opens the file with bbolt, runs
//! `Tx.Check`, and then, for each top-level bucket in order, feeds the bucket's name and each of
//! its keys and values (a nested bucket's value is empty) to a CRC-32C (Castagnoli); each entry of
//! a top-level bucket counts as one key (a nested bucket's own entries are not counted); the
//! revision is the main revision (first 8 bytes, big-endian) of the last key in the `key` bucket;
//! the size is bbolt's `Tx.Size`: high-water mark times page size, which for a snapshot is the
//! file without its 32-byte trailer. The same is done here in one pass over the pages, while a
//! second thread streams the database part through sha256 for the trailer.

use std::sync::atomic::{AtomicBool, Ordering};

use sha2::{Digest, Sha256};

use super::bbolt::{Corruption, Db, Source, WalkError};
use super::{SnapshotStatus, TrailerCheck};
use crate::humanize::hex;

/// Length of the sha256 trailer.
pub(crate) const TRAILER: u64 = 32;
/// `etcdctl snapshot save` files are `512 * k + 32` bytes: bbolt pages plus the trailer.
const TRAILER_ALIGN: u64 = 512;
/// Read size of the sha256 pass.
const BUFFER: usize = 1 << 20;
/// An etcd revision key: 8-byte main revision, `_`, 8-byte sub revision (a tombstone adds `t`).
const REVISION_KEY: usize = 17;
/// The bucket that holds the key-value history, keyed by revision.
const KEY_BUCKET: &[u8] = b"key";
/// The bucket and key where etcd 3.6 and later record the storage version.
const META_BUCKET: &[u8] = b"meta";
const STORAGE_VERSION: &[u8] = b"storageVersion";

/// Everything one pass learns: the structure result, and the trailer state.
pub(crate) struct Examined {
    /// The status, or why the bbolt structure is unsound.
    pub(crate) structure: Result<SnapshotStatus, Corruption>,
    /// The trailer state (also inside `structure` when that is `Ok`).
    pub(crate) trailer: TrailerCheck,
    /// Size of the file.
    pub(crate) file_size: u64,
}

/// Reads `src` (`len` bytes) once for the structure and, when `check_trailer`, once more on
/// another thread for the sha256 the trailer must be.
pub(crate) fn examine<S: Source + ?Sized>(
    src: &S,
    len: u64,
    check_trailer: bool,
) -> std::io::Result<Examined> {
    let has_trailer = len >= TRAILER && len % TRAILER_ALIGN == TRAILER;
    let db_len = if has_trailer { len - TRAILER } else { len };
    let stop = AtomicBool::new(false);
    let (walked, digest) = std::thread::scope(|scope| {
        let hasher = (has_trailer && check_trailer)
            .then(|| scope.spawn(|| sha256_prefix(src, db_len, &stop)));
        let walked = walk(src, db_len);
        // A corrupt structure still wants the sha256 (for the message); a read error makes it
        // moot.
        if matches!(walked, Err(WalkError::Io(_))) {
            stop.store(true, Ordering::Relaxed);
        }
        let digest = hasher.map(|h| match h.join() {
            Ok(result) => result,
            Err(panic) => std::panic::resume_unwind(panic),
        });
        (walked, digest)
    });
    let walked = match walked {
        Err(WalkError::Io(e)) => return Err(e),
        Err(WalkError::Corrupt(c)) => Err(c),
        Ok(status) => Ok(status),
    };
    let mut stored = [0u8; TRAILER as usize];
    if has_trailer {
        src.read_exact_at(&mut stored, db_len)?;
    }
    let trailer = match digest {
        None if has_trailer => TrailerCheck::Unchecked {
            trailer: hex(&stored),
        },
        None => TrailerCheck::Missing,
        Some(digest) => {
            let actual = digest?;
            if stored == actual {
                TrailerCheck::Valid {
                    sha256: hex(&actual),
                }
            } else {
                TrailerCheck::Mismatch {
                    expected: hex(&stored),
                    actual: hex(&actual),
                }
            }
        }
    };
    let structure = walked.map(|mut status| {
        status.file_size = len;
        status.sha256_trailer = trailer.clone();
        status
    });
    Ok(Examined {
        structure,
        trailer,
        file_size: len,
    })
}

/// The sha256 of the first `len` bytes, read in 1 MiB blocks.
fn sha256_prefix<S: Source + ?Sized>(
    src: &S,
    len: u64,
    stop: &AtomicBool,
) -> std::io::Result<[u8; 32]> {
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; BUFFER];
    let mut at = 0u64;
    while at < len {
        if stop.load(Ordering::Relaxed) {
            return Err(std::io::Error::other("stopped"));
        }
        let n = (len - at).min(BUFFER as u64) as usize;
        src.read_exact_at(&mut buffer[..n], at)?;
        hasher.update(&buffer[..n]);
        at += n as u64;
    }
    Ok(hasher.finalize().into())
}

/// Opens and walks the database, computing etcdutl's figures.
fn walk<S: Source + ?Sized>(src: &S, db_len: u64) -> Result<SnapshotStatus, WalkError> {
    let mut db = Db::open(src, db_len)?;
    let mut crc = 0u32;
    let mut total_keys = 0u64;
    let mut revision = 0i64;
    let mut version = None;
    let mut bucket: Vec<u8> = Vec::new();
    db.walk(&mut |depth, key, value| {
        match depth {
            0 => {
                if value.is_some() {
                    return Err(Corruption {
                        page: None,
                        detail: format!(
                            "the root bucket holds key {:?}, which is not a bucket",
                            String::from_utf8_lossy(key)
                        ),
                    });
                }
                crc = crc32c::crc32c_append(crc, key);
                bucket.clear();
                bucket.extend_from_slice(key);
            }
            1 => {
                crc = crc32c::crc32c_append(crc, key);
                if let Some(value) = value {
                    crc = crc32c::crc32c_append(crc, value);
                }
                total_keys += 1;
                if bucket == KEY_BUCKET {
                    if key.len() < REVISION_KEY {
                        return Err(Corruption {
                            page: None,
                            detail: format!(
                                "the key bucket holds a {}-byte key, not a {REVISION_KEY}-byte \
                                 revision",
                                key.len()
                            ),
                        });
                    }
                    let mut main = [0u8; 8];
                    main.copy_from_slice(&key[..8]);
                    revision = i64::from_be_bytes(main);
                } else if bucket == META_BUCKET
                    && key == STORAGE_VERSION
                    && let Some(value) = value
                {
                    version = Some(String::from_utf8_lossy(value).into_owned());
                }
            }
            _ => {}
        }
        Ok(())
    })?;
    Ok(SnapshotStatus {
        hash: crc,
        revision,
        total_keys,
        total_size: db.size(),
        version,
        file_size: 0,
        page_size: db.meta.page_size,
        txid: db.meta.txid,
        sha256_trailer: TrailerCheck::Missing,
    })
}

/// Whether the structure of a database in memory (any trailer ignored) is sound; no sha256.
#[cfg(test)]
pub(crate) fn walks(bytes: &[u8]) -> bool {
    let len = bytes.len() as u64;
    let db_len = if len >= TRAILER && len % TRAILER_ALIGN == TRAILER {
        len - TRAILER
    } else {
        len
    };
    walk(bytes, db_len).is_ok()
}
