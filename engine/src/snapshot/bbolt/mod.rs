//! A read-only walker over a bbolt database file, written for checking etcd snapshots.
//!
//! It reads the two meta pages, picks the one bbolt would use (the valid one with the higher
//! transaction id), and walks every bucket's B+tree in key order, inline and nested buckets
//! included, calling back for each entry. Along the way it runs the consistency checks of bbolt's
//! `Tx.Check` (which `etcdutl snapshot status` runs first): every page is referenced once, no
//! reachable page is on the freelist, no page is freed twice, pages are branch or leaf pages, keys
//! are sorted within and across pages and lie within their parent's bounds, and with a synced
//! freelist every page below the high-water mark is reachable or free.
//!
//! Nothing here trusts the file: every offset and length is checked against the page and the file
//! before it is used, each page is visited at most once (so a cycle is an error, not a loop), the
//! recursion depth is bounded, and a damaged file is a [`Corruption`] naming the page, never a
//! panic. Pages are read one at a time with positioned reads, so memory stays at a few pages
//! (plus one bit per page) whatever the size of the file.

use std::fmt;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

#[cfg(test)]
pub(crate) mod build;
mod meta_page;
mod walk;

use meta_page::{Meta, parse_meta, read_meta_bytes};

/// The magic number of a bbolt meta page.
const MAGIC: u32 = 0xED0C_DAED;
/// The only data file version bbolt writes.
const VERSION: u32 = 2;
/// Size of a page header: id u64, flags u16, count u16, overflow u32.
const PAGE_HEADER: usize = 16;
/// Size of a branch or leaf element header.
const ELEMENT: usize = 16;
/// Bytes of the meta struct covered by its checksum (everything before the checksum field).
const META_CHECKSUMMED: usize = 56;
/// Size of the meta struct.
const META: usize = 64;
/// Size of a bucket header: root pgid u64, sequence u64.
const BUCKET_HEADER: usize = 16;
/// Page flags.
const BRANCH_PAGE: u16 = 0x01;
const LEAF_PAGE: u16 = 0x02;
const META_PAGE: u16 = 0x04;
const FREELIST_PAGE: u16 = 0x10;
/// Leaf element flag: the value is a bucket.
const BUCKET_LEAF: u32 = 0x01;
/// The meta's freelist id when the freelist is not synced to disk (etcd runs bbolt this way).
const NO_FREELIST: u64 = u64::MAX;
/// A freelist page whose count field is this keeps the real count in its first element.
const FREELIST_COUNT_OVERFLOW: u16 = 0xFFFF;
/// Deepest B+tree (branch levels) accepted; bbolt trees of any realistic size are under 10.
const MAX_TREE_DEPTH: usize = 32;
/// Deepest bucket nesting accepted; etcd nests none.
const MAX_BUCKET_DEPTH: usize = 16;
/// The largest page (with its overflow) read into memory at once. A page this large would hold a
/// value far beyond what etcd accepts; a larger one is reported as not readable.
const MAX_PAGE_SPAN: u64 = 256 << 20;
/// bbolt's smallest and largest page sizes that etcdrill accepts.
const MIN_PAGE_SIZE: u32 = 512;
const MAX_PAGE_SIZE: u32 = 1 << 24;

/// What is wrong with a bbolt file, and on which page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Corruption {
    /// The page the problem was found on, when there is one.
    pub page: Option<u64>,
    /// What is wrong, e.g. "branch element 3 points to page 9000, beyond the 300 pages".
    pub detail: String,
}

impl Corruption {
    fn at(page: u64, detail: impl Into<String>) -> Corruption {
        Corruption {
            page: Some(page),
            detail: detail.into(),
        }
    }

    fn file(detail: impl Into<String>) -> Corruption {
        Corruption {
            page: None,
            detail: detail.into(),
        }
    }
}

impl fmt::Display for Corruption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.page {
            Some(page) => write!(f, "page {page}: {}", self.detail),
            None => f.write_str(&self.detail),
        }
    }
}

/// Why a walk stopped: the file could not be read, or it is not a sound bbolt database.
#[derive(Debug)]
pub(crate) enum WalkError {
    Io(io::Error),
    Corrupt(Corruption),
}

impl From<Corruption> for WalkError {
    fn from(c: Corruption) -> WalkError {
        WalkError::Corrupt(c)
    }
}

/// Something bytes can be read from at an offset: a file, or (in tests) a buffer.
pub(crate) trait Source: Sync {
    /// Fills `buf` from `offset`; an error when the source ends before.
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()>;
}

impl Source for File {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        FileExt::read_exact_at(self, buf, offset)
    }
}

impl Source for [u8] {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        let start = usize::try_from(offset).ok().filter(|&s| s <= self.len());
        match start.and_then(|s| self.get(s..s.checked_add(buf.len())?)) {
            Some(bytes) => {
                buf.copy_from_slice(bytes);
                Ok(())
            }
            None => Err(io::ErrorKind::UnexpectedEof.into()),
        }
    }
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    let mut x = [0u8; 4];
    x.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(x)
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut x = [0u8; 8];
    x.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(x)
}

/// An entry the walker reports: `depth` 0 is the root bucket (whose entries are the top-level
/// bucket names), 1 a top-level bucket's entries, and so on. `value` is `None` for a sub-bucket,
/// whose own entries follow at `depth + 1` before the next entry at `depth`.
pub(crate) type Visit<'v> = dyn FnMut(usize, &[u8], Option<&[u8]>) -> Result<(), Corruption> + 'v;

/// A bit per page.
struct PageSet(Vec<u64>);

impl PageSet {
    fn new(pages: u64) -> PageSet {
        // `pages` is bounded by the file length divided by the page size.
        PageSet(vec![0; (pages as usize).div_ceil(64)])
    }

    /// Sets the bit; returns whether it was already set.
    fn insert(&mut self, id: u64) -> bool {
        let (word, bit) = ((id / 64) as usize, id % 64);
        let was = self.0[word] & (1 << bit) != 0;
        self.0[word] |= 1 << bit;
        was
    }

    fn contains(&self, id: u64) -> bool {
        self.0[(id / 64) as usize] & (1 << (id % 64)) != 0
    }
}

/// A page read from the file, with its overflow.
struct Page {
    id: u64,
    flags: u16,
    count: u16,
    bytes: Vec<u8>,
}

/// An open bbolt database: the chosen meta and the file it came from.
pub(crate) struct Db<'s, S: Source + ?Sized> {
    src: &'s S,
    /// Length of the database part of the source (a snapshot's trailer excluded).
    len: u64,
    /// The meta bbolt would use.
    pub(crate) meta: Meta,
    /// Which meta page that is, 0 or 1.
    pub(crate) meta_page: u64,
    reachable: PageSet,
    freed: PageSet,
}

impl<'s, S: Source + ?Sized> Db<'s, S> {
    /// Reads the meta pages of the database in the first `len` bytes of `src`, as bbolt's `Open`
    /// does, and checks that the chosen meta describes a database that fits in `len` bytes.
    pub(crate) fn open(src: &'s S, len: u64) -> Result<Db<'s, S>, WalkError> {
        let first = read_meta_bytes(src, len, 0)?;
        let meta0 = first.as_ref().map(|b| parse_meta(b));
        // The page size comes from meta 0, or else from meta 1 found by probing the page sizes
        // bbolt would (1 KiB to 16 MiB), as bbolt's `getPageSize` does.
        let page_size = match &meta0 {
            Some(Ok(m)) => m.page_size,
            _ => {
                let mut found = None;
                for shift in 0..=14u32 {
                    let pos = 1024u64 << shift;
                    if pos >= len.saturating_sub(1024) {
                        break;
                    }
                    if let Some(Ok(m)) = read_meta_bytes(src, len, pos)?.map(|b| parse_meta(&b))
                        && u64::from(m.page_size) == pos
                    {
                        found = Some(m.page_size);
                        break;
                    }
                }
                match (found, &meta0) {
                    (Some(ps), _) => ps,
                    (None, None) => {
                        return Err(Corruption::file(format!(
                            "{len} bytes is too short for a bbolt database"
                        ))
                        .into());
                    }
                    (None, Some(Err(why))) => {
                        return Err(Corruption::file(format!(
                            "not a bbolt database: meta page 0 has {why}, and no valid meta \
                             page 1 was found"
                        ))
                        .into());
                    }
                    (None, Some(Ok(_))) => unreachable!("meta 0 valid is handled above"),
                }
            }
        };
        if !page_size.is_power_of_two() || !(MIN_PAGE_SIZE..=MAX_PAGE_SIZE).contains(&page_size) {
            return Err(Corruption::file(format!("implausible page size {page_size}")).into());
        }
        let ps = u64::from(page_size);
        if len < 2 * ps {
            return Err(Corruption::file(format!(
                "{len} bytes is shorter than the two {ps}-byte meta pages: truncated"
            ))
            .into());
        }
        let meta1 = read_meta_bytes(src, len, ps)?.map(|b| parse_meta(&b));
        let meta0 = meta0.unwrap_or_else(|| Err("no data".into()));
        let meta1 = meta1.unwrap_or_else(|| Err("no data".into()));
        // bbolt's `db.meta()`: the higher txid first, the other if that one is invalid.
        let order = match (&meta0, &meta1) {
            (Ok(a), Ok(b)) if b.txid > a.txid => [1, 0],
            _ => [0, 1],
        };
        let metas = [&meta0, &meta1];
        let (meta_page, meta) = match order
            .iter()
            .find_map(|&i| metas[i].as_ref().ok().map(|m| (i as u64, *m)))
        {
            Some(found) => found,
            None => {
                return Err(Corruption::file(format!(
                    "both meta pages are invalid: page 0 has {}, page 1 has {}",
                    meta0.unwrap_err(),
                    meta1.unwrap_err()
                ))
                .into());
            }
        };
        if meta.page_size != page_size {
            return Err(Corruption::at(
                meta_page,
                format!(
                    "meta says page size {}, the other meta {page_size}",
                    meta.page_size
                ),
            )
            .into());
        }
        let pages_in_file = len / ps;
        if meta.pgid < 2 || meta.pgid > pages_in_file {
            return Err(Corruption::at(
                meta_page,
                format!(
                    "meta (txid {}) says the database has {} pages of {ps} bytes, the file holds \
                     {pages_in_file}{}",
                    meta.txid,
                    meta.pgid,
                    if meta.pgid > pages_in_file {
                        ": truncated"
                    } else {
                        ""
                    }
                ),
            )
            .into());
        }
        if meta.root < 2 || meta.root >= meta.pgid {
            return Err(Corruption::at(
                meta_page,
                format!(
                    "the root bucket's page {} is outside the database's {} pages",
                    meta.root, meta.pgid
                ),
            )
            .into());
        }
        if meta.freelist != NO_FREELIST && (meta.freelist < 2 || meta.freelist >= meta.pgid) {
            return Err(Corruption::at(
                meta_page,
                format!(
                    "the freelist page {} is outside the database's {} pages",
                    meta.freelist, meta.pgid
                ),
            )
            .into());
        }
        Ok(Db {
            src,
            len,
            meta,
            meta_page,
            reachable: PageSet::new(meta.pgid),
            freed: PageSet::new(meta.pgid),
        })
    }

    /// The database size bbolt reports (`Tx.Size`): high-water mark times page size.
    pub(crate) fn size(&self) -> u64 {
        self.meta.pgid * u64::from(self.meta.page_size)
    }

    /// Reads page `id` with its overflow; `from` names the referring page for the message.
    fn read_page(&mut self, id: u64, from: &dyn Fn() -> String) -> Result<Page, WalkError> {
        let pgid = self.meta.pgid;
        if id < 2 || id >= pgid {
            return Err(Corruption::file(format!(
                "{} points to page {id}, outside the database's pages 2..{pgid}",
                from()
            ))
            .into());
        }
        let ps = u64::from(self.meta.page_size);
        let mut header = [0u8; PAGE_HEADER];
        self.src
            .read_exact_at(&mut header, id * ps)
            .map_err(WalkError::Io)?;
        let stored = u64_at(&header, 0);
        if stored != id {
            return Err(Corruption::at(
                id,
                format!(
                    "the page header says page {stored} ({} points here): overwritten or \
                     misplaced page",
                    from()
                ),
            )
            .into());
        }
        let overflow = u64::from(u32_at(&header, 12));
        let end = id + overflow + 1;
        if end > pgid {
            return Err(Corruption::at(
                id,
                format!(
                    "its {overflow} overflow pages run past the database's {pgid} pages{}",
                    if end * ps > self.len {
                        " and the file"
                    } else {
                        ""
                    }
                ),
            )
            .into());
        }
        let span = (overflow + 1) * ps;
        if span > MAX_PAGE_SPAN {
            return Err(Corruption::at(
                id,
                format!(
                    "spans {span} bytes ({overflow} overflow pages), more than the {} MiB \
                     etcdrill reads at once",
                    MAX_PAGE_SPAN >> 20
                ),
            )
            .into());
        }
        for p in id..end {
            if self.reachable.insert(p) {
                return Err(Corruption::at(
                    p,
                    format!(
                        "referenced twice (again by {}): a cycle or a corrupt reference",
                        from()
                    ),
                )
                .into());
            }
            if self.freed.contains(p) {
                return Err(Corruption::at(
                    p,
                    format!("reachable (from {}) but on the freelist", from()),
                )
                .into());
            }
        }
        let mut bytes = vec![0u8; span as usize];
        self.src
            .read_exact_at(&mut bytes, id * ps)
            .map_err(WalkError::Io)?;
        Ok(Page {
            id,
            flags: u16_at(&bytes, 8),
            count: u16_at(&bytes, 10),
            bytes,
        })
    }

    /// Reads the freelist (when synced), marks its pages reachable and the listed pages freed.
    fn load_freelist(&mut self) -> Result<(), WalkError> {
        if self.meta.freelist == NO_FREELIST {
            return Ok(());
        }
        let meta_page = self.meta_page;
        let page = self.read_page(self.meta.freelist, &|| format!("meta page {meta_page}"))?;
        if page.flags != FREELIST_PAGE {
            return Err(Corruption::at(
                page.id,
                format!(
                    "the meta's freelist page has flags {:#06x}, not a freelist page",
                    page.flags
                ),
            )
            .into());
        }
        let (count, start) = if page.count == FREELIST_COUNT_OVERFLOW {
            (u64_at(&page.bytes, PAGE_HEADER), PAGE_HEADER + 8)
        } else {
            (u64::from(page.count), PAGE_HEADER)
        };
        let room = ((page.bytes.len() - start) / 8) as u64;
        if count > room {
            return Err(Corruption::at(
                page.id,
                format!("the freelist claims {count} pages, its page holds at most {room}"),
            )
            .into());
        }
        for i in 0..count as usize {
            let freed = u64_at(&page.bytes, start + i * 8);
            // bbolt ignores ids beyond the high-water mark; so does this check.
            if freed < self.meta.pgid && self.freed.insert(freed) {
                return Err(Corruption::at(freed, "freed twice on the freelist").into());
            }
        }
        // The freelist's own pages are reachable; a freelist listing them is corrupt.
        for p in page.id..page.id + (page.bytes.len() as u64 / u64::from(self.meta.page_size)) {
            if self.freed.contains(p) {
                return Err(Corruption::at(p, "the freelist lists its own page as free").into());
            }
        }
        Ok(())
    }
}

/// `bytes[start..start + len]`, or `None` if that is not inside `bytes`.
fn slice(bytes: &[u8], start: u64, len: u64) -> Option<&[u8]> {
    let end = start.checked_add(len)?;
    if end > bytes.len() as u64 {
        return None;
    }
    Some(&bytes[start as usize..end as usize])
}

/// How a page's flags are shown in a message.
fn describe_flags(flags: u16) -> String {
    let name = match flags {
        BRANCH_PAGE => "a branch page",
        LEAF_PAGE => "a leaf page",
        META_PAGE => "a meta page",
        FREELIST_PAGE => "a freelist page",
        _ => "an unknown page type",
    };
    format!("{name} (flags {flags:#06x})")
}
