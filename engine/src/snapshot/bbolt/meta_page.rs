//! The meta pages of a bbolt file: parsing and validating one (magic, version, checksum) as bbolt's
//! `meta.validate` does, and reading the bytes of one at an offset.

use super::{
    MAGIC, META, META_CHECKSUMMED, PAGE_HEADER, Source, VERSION, WalkError, u32_at, u64_at,
};

/// The fields of a bbolt meta page that matter here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Meta {
    /// Page size in bytes.
    pub(crate) page_size: u32,
    /// Root page of the root bucket.
    pub(crate) root: u64,
    /// Freelist page, or [`NO_FREELIST`].
    pub(crate) freelist: u64,
    /// High-water mark: the number of pages in use.
    pub(crate) pgid: u64,
    /// Transaction id.
    pub(crate) txid: u64,
}

/// FNV-1a, 64 bits: bbolt's meta checksum.
pub(super) fn fnv64a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// Parses and validates the meta struct of a page whose first `PAGE_HEADER + META` bytes are
/// `page`, as bbolt's `meta.validate` does: magic, version, checksum.
pub(super) fn parse_meta(page: &[u8]) -> Result<Meta, String> {
    let m = &page[PAGE_HEADER..PAGE_HEADER + META];
    let magic = u32_at(m, 0);
    if magic != MAGIC {
        return Err(format!("no bbolt magic (found {magic:#010x})"));
    }
    let version = u32_at(m, 4);
    if version != VERSION {
        return Err(format!("bbolt file version {version}, not {VERSION}"));
    }
    let checksum = u64_at(m, META_CHECKSUMMED);
    let sum = fnv64a(&m[..META_CHECKSUMMED]);
    if checksum != sum {
        return Err(format!(
            "meta checksum mismatch (stored {checksum:#018x}, computed {sum:#018x})"
        ));
    }
    Ok(Meta {
        page_size: u32_at(m, 8),
        root: u64_at(m, 16),
        freelist: u64_at(m, 32),
        pgid: u64_at(m, 40),
        txid: u64_at(m, 48),
    })
}

/// Reads up to `PAGE_HEADER + META` bytes at `offset`, `None` if the source is shorter.
pub(super) fn read_meta_bytes<S: Source + ?Sized>(
    src: &S,
    len: u64,
    offset: u64,
) -> Result<Option<[u8; PAGE_HEADER + META]>, WalkError> {
    let mut buf = [0u8; PAGE_HEADER + META];
    if offset.saturating_add(buf.len() as u64) > len {
        return Ok(None);
    }
    src.read_exact_at(&mut buf, offset).map_err(WalkError::Io)?;
    Ok(Some(buf))
}
