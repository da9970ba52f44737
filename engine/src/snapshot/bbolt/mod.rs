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

/// FNV-1a, 64 bits: bbolt's meta checksum.
fn fnv64a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// Parses and validates the meta struct of a page whose first `PAGE_HEADER + META` bytes are
/// `page`, as bbolt's `meta.validate` does: magic, version, checksum.
fn parse_meta(page: &[u8]) -> Result<Meta, String> {
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
fn read_meta_bytes<S: Source + ?Sized>(
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

    /// Runs every check and calls `visit` for every entry of every bucket, in bbolt's order.
    pub(crate) fn walk(&mut self, visit: &mut Visit<'_>) -> Result<(), WalkError> {
        self.reachable.insert(0);
        self.reachable.insert(1);
        self.load_freelist()?;
        let root = self.meta.root;
        let meta_page = self.meta_page;
        let mut bounds = Bounds::default();
        self.walk_tree(
            root,
            0,
            0,
            &mut bounds,
            &|| format!("meta page {meta_page}"),
            visit,
        )?;
        if self.meta.freelist != NO_FREELIST {
            let mut missing = (2..self.meta.pgid)
                .filter(|&p| !self.reachable.contains(p) && !self.freed.contains(p));
            if let Some(first) = missing.next() {
                let more = missing.count();
                let detail = if more == 0 {
                    "unreachable and not on the freelist".to_string()
                } else {
                    format!("unreachable and not on the freelist (and {more} more pages like it)")
                };
                return Err(Corruption::at(first, detail).into());
            }
        }
        Ok(())
    }

    /// Walks the B+tree under page `id` in key order. `level` counts branch levels above,
    /// `depth` the bucket nesting; `bounds` holds the key range the parent allows and the last
    /// key seen in this bucket.
    fn walk_tree(
        &mut self,
        id: u64,
        level: usize,
        depth: usize,
        bounds: &mut Bounds,
        from: &dyn Fn() -> String,
        visit: &mut Visit<'_>,
    ) -> Result<(), WalkError> {
        if level > MAX_TREE_DEPTH {
            return Err(Corruption::at(
                id,
                format!("the B+tree is deeper than {MAX_TREE_DEPTH} levels"),
            )
            .into());
        }
        let page = self.read_page(id, from)?;
        match page.flags {
            LEAF_PAGE => {
                self.walk_leaf(Some(page.id), &page.bytes, page.count, depth, bounds, visit)
            }
            BRANCH_PAGE => {
                let count = usize::from(page.count);
                if count == 0 {
                    return Err(Corruption::at(id, "branch page with no elements").into());
                }
                check_elements_fit(id, count, page.bytes.len(), "branch")?;
                let element = |i: usize| -> Result<(&[u8], u64), Corruption> {
                    let at = PAGE_HEADER + i * ELEMENT;
                    let pos = u64::from(u32_at(&page.bytes, at));
                    let ksize = u64::from(u32_at(&page.bytes, at + 4));
                    let child = u64_at(&page.bytes, at + 8);
                    let key = slice(&page.bytes, at as u64 + pos, ksize).ok_or_else(|| {
                        Corruption::at(
                            id,
                            format!(
                                "branch element {i}'s key ({ksize} bytes at offset {}) runs \
                                 past the page's {} bytes",
                                at as u64 + pos,
                                page.bytes.len()
                            ),
                        )
                    })?;
                    Ok((key, child))
                };
                let outer_upper = bounds.upper.clone();
                for i in 0..count {
                    let (key, child) = element(i)?;
                    if i == 0
                        && let Some(lower) = &bounds.lower
                        && key < lower.as_slice()
                    {
                        return Err(Corruption::at(
                            id,
                            "its first key sorts before its parent's key for it",
                        )
                        .into());
                    }
                    if let Some(upper) = &outer_upper
                        && key >= upper.as_slice()
                    {
                        return Err(Corruption::at(
                            id,
                            format!("branch element {i}'s key sorts at or after the next key in its parent"),
                        )
                        .into());
                    }
                    let next = if i + 1 < count {
                        Some(element(i + 1)?.0.to_vec())
                    } else {
                        outer_upper.clone()
                    };
                    bounds.lower = Some(key.to_vec());
                    bounds.upper = next;
                    let from = || format!("page {id} branch element {i}");
                    self.walk_tree(child, level + 1, depth, bounds, &from, visit)?;
                }
                bounds.upper = outer_upper;
                Ok(())
            }
            other => Err(Corruption::at(
                id,
                format!(
                    "expected a branch or leaf page (referenced by {}), found {}",
                    from(),
                    describe_flags(other)
                ),
            )
            .into()),
        }
    }

    /// Walks the elements of a leaf page (`page` is `None` for an inline bucket's page).
    fn walk_leaf(
        &mut self,
        page: Option<u64>,
        bytes: &[u8],
        count: u16,
        depth: usize,
        bounds: &mut Bounds,
        visit: &mut Visit<'_>,
    ) -> Result<(), WalkError> {
        let count = usize::from(count);
        let here = |detail: String| match page {
            Some(id) => Corruption::at(id, detail),
            None => Corruption::file(format!("inline bucket page: {detail}")),
        };
        if PAGE_HEADER + count * ELEMENT > bytes.len() {
            return Err(here(format!(
                "{count} leaf elements do not fit in the page's {} bytes",
                bytes.len()
            ))
            .into());
        }
        for i in 0..count {
            let at = PAGE_HEADER + i * ELEMENT;
            let flags = u32_at(bytes, at);
            let pos = u64::from(u32_at(bytes, at + 4));
            let ksize = u64::from(u32_at(bytes, at + 8));
            let vsize = u64::from(u32_at(bytes, at + 12));
            let start = at as u64 + pos;
            let (Some(key), Some(value)) = (
                slice(bytes, start, ksize),
                slice(bytes, start + ksize, vsize),
            ) else {
                return Err(here(format!(
                    "leaf element {i} ({ksize}-byte key and {vsize}-byte value at offset \
                     {start}) runs past the page's {} bytes",
                    bytes.len()
                ))
                .into());
            };
            if let Some(lower) = &bounds.lower
                && key < lower.as_slice()
            {
                return Err(here(format!(
                    "leaf element {i}'s key sorts before its parent's key for this page"
                ))
                .into());
            }
            if let Some(upper) = &bounds.upper
                && key >= upper.as_slice()
            {
                return Err(here(format!(
                    "leaf element {i}'s key sorts at or after the next key in the parent page"
                ))
                .into());
            }
            if let Some(last) = &bounds.last
                && key <= last.as_slice()
            {
                return Err(here(format!(
                    "leaf element {i}'s key does not sort after the previous key"
                ))
                .into());
            }
            match &mut bounds.last {
                Some(last) => {
                    last.clear();
                    last.extend_from_slice(key);
                }
                None => bounds.last = Some(key.to_vec()),
            }
            if flags & BUCKET_LEAF == 0 {
                visit(depth, key, Some(value))?;
                continue;
            }
            visit(depth, key, None)?;
            if depth + 1 > MAX_BUCKET_DEPTH {
                return Err(here(format!(
                    "buckets nested deeper than {MAX_BUCKET_DEPTH} levels"
                ))
                .into());
            }
            if value.len() < BUCKET_HEADER {
                return Err(here(format!(
                    "leaf element {i} is a bucket whose {}-byte value is shorter than a \
                     bucket header",
                    value.len()
                ))
                .into());
            }
            let root = u64_at(value, 0);
            let mut inner = Bounds::default();
            if root == 0 {
                let inline = &value[BUCKET_HEADER..];
                if inline.len() < PAGE_HEADER {
                    return Err(here(format!(
                        "leaf element {i} is an inline bucket too short for a page header"
                    ))
                    .into());
                }
                let flags = u16_at(inline, 8);
                if flags != LEAF_PAGE {
                    return Err(here(format!(
                        "leaf element {i} is an inline bucket whose page is {}, not a leaf",
                        describe_flags(flags)
                    ))
                    .into());
                }
                let count = u16_at(inline, 10);
                self.walk_leaf(None, inline, count, depth + 1, &mut inner, visit)?;
            } else {
                let from = || match page {
                    Some(id) => format!("the bucket in page {id} leaf element {i}"),
                    None => format!("the bucket in inline leaf element {i}"),
                };
                self.walk_tree(root, 0, depth + 1, &mut inner, &from, visit)?;
            }
        }
        Ok(())
    }
}

/// Key bounds while walking one bucket: `[lower, upper)` from the parent branch elements, and the
/// last key seen (keys strictly increase across the bucket's leaves).
#[derive(Default)]
struct Bounds {
    lower: Option<Vec<u8>>,
    upper: Option<Vec<u8>>,
    last: Option<Vec<u8>>,
}

fn check_elements_fit(id: u64, count: usize, len: usize, kind: &str) -> Result<(), Corruption> {
    if PAGE_HEADER + count * ELEMENT > len {
        return Err(Corruption::at(
            id,
            format!("{count} {kind} elements do not fit in the page's {len} bytes"),
        ));
    }
    Ok(())
}

/// `bytes[start..start + len]`, or `None` if that is not inside `bytes`.
fn slice(bytes: &[u8], start: u64, len: u64) -> Option<&[u8]> {
    let end = start.checked_add(len)?;
    if end > bytes.len() as u64 {
        return None;
    }
    Some(&bytes[start as usize..end as usize])
}

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

#[cfg(test)]
pub(crate) mod build {
    //! A tiny bbolt writer for tests: a database of top-level buckets whose entries are key/value
    //! pairs or nested buckets, with the layout choices bbolt makes (inline small buckets, leaf
    //! pages split under a branch page) so the walker meets each structure.

    use super::*;

    /// What a bucket holds.
    #[derive(Clone, Debug)]
    pub(crate) enum Item {
        /// A key/value pair.
        Value(Vec<u8>, Vec<u8>),
        /// A nested bucket.
        Bucket(Vec<u8>, Vec<Item>),
    }

    impl Item {
        fn key(&self) -> &[u8] {
            match self {
                Item::Value(k, _) | Item::Bucket(k, _) => k,
            }
        }
    }

    /// Layout options.
    #[derive(Clone, Copy, Debug)]
    pub(crate) struct Options {
        pub(crate) page_size: usize,
        /// Entries per leaf page; more entries make a branch page above the leaves.
        pub(crate) per_leaf: usize,
        /// Buckets with at most this many entries and no sub-buckets are stored inline.
        pub(crate) inline_max: usize,
        /// Write a synced freelist page (listing `free_pages` trailing free pages).
        pub(crate) freelist: bool,
        pub(crate) free_pages: usize,
    }

    impl Default for Options {
        fn default() -> Options {
            Options {
                page_size: 4096,
                per_leaf: 8,
                inline_max: 2,
                freelist: false,
                free_pages: 0,
            }
        }
    }

    struct Writer {
        ps: usize,
        pages: Vec<Vec<u8>>,
        opts: Options,
    }

    impl Writer {
        /// Appends a page (with overflow as needed) and returns its id.
        fn push(&mut self, flags: u16, count: usize, body: &[u8]) -> u64 {
            let id = self.pages.len() as u64;
            let total = PAGE_HEADER + body.len();
            let npages = total.div_ceil(self.ps).max(1);
            let mut bytes = vec![0u8; npages * self.ps];
            bytes[0..8].copy_from_slice(&id.to_le_bytes());
            bytes[8..10].copy_from_slice(&flags.to_le_bytes());
            bytes[10..12].copy_from_slice(&(count as u16).to_le_bytes());
            bytes[12..16].copy_from_slice(&((npages - 1) as u32).to_le_bytes());
            bytes[PAGE_HEADER..total].copy_from_slice(body);
            for chunk in bytes.chunks(self.ps) {
                self.pages.push(chunk.to_vec());
            }
            id
        }

        /// A leaf page body (after the header) for entries `(flags, key, value)`.
        fn leaf_body(entries: &[(u32, Vec<u8>, Vec<u8>)]) -> Vec<u8> {
            let mut elems = Vec::new();
            let mut data = Vec::new();
            let n = entries.len();
            for (i, (flags, k, v)) in entries.iter().enumerate() {
                let elem_at = i * ELEMENT;
                let pos = n * ELEMENT + data.len() - elem_at;
                elems.extend_from_slice(&flags.to_le_bytes());
                elems.extend_from_slice(&(pos as u32).to_le_bytes());
                elems.extend_from_slice(&(k.len() as u32).to_le_bytes());
                elems.extend_from_slice(&(v.len() as u32).to_le_bytes());
                data.extend_from_slice(k);
                data.extend_from_slice(v);
            }
            elems.extend_from_slice(&data);
            elems
        }

        /// Writes a bucket's items and returns its bucket value (header and any inline page).
        fn bucket(&mut self, items: &[Item]) -> Vec<u8> {
            let mut items = items.to_vec();
            items.sort_by(|a, b| a.key().cmp(b.key()));
            let has_sub = items.iter().any(|i| matches!(i, Item::Bucket(..)));
            let entries: Vec<(u32, Vec<u8>, Vec<u8>)> = items
                .iter()
                .map(|item| match item {
                    Item::Value(k, v) => (0, k.clone(), v.clone()),
                    Item::Bucket(k, sub) => (BUCKET_LEAF, k.clone(), self.bucket(sub)),
                })
                .collect();
            let mut value = vec![0u8; BUCKET_HEADER];
            if !has_sub && entries.len() <= self.opts.inline_max {
                let mut page = vec![0u8; PAGE_HEADER];
                page[8..10].copy_from_slice(&LEAF_PAGE.to_le_bytes());
                page[10..12].copy_from_slice(&(entries.len() as u16).to_le_bytes());
                page.extend_from_slice(&Self::leaf_body(&entries));
                value.extend_from_slice(&page);
                return value;
            }
            let root = self.tree(&entries);
            value[0..8].copy_from_slice(&root.to_le_bytes());
            value
        }

        /// Writes entries as leaves (and a branch page when more than one leaf); the root id.
        fn tree(&mut self, entries: &[(u32, Vec<u8>, Vec<u8>)]) -> u64 {
            let chunks: Vec<_> = entries.chunks(self.opts.per_leaf.max(1)).collect();
            if chunks.len() <= 1 {
                return self.push(LEAF_PAGE, entries.len(), &Self::leaf_body(entries));
            }
            let mut branch: Vec<(Vec<u8>, u64)> = Vec::new();
            for chunk in chunks {
                let id = self.push(LEAF_PAGE, chunk.len(), &Self::leaf_body(chunk));
                branch.push((chunk[0].1.clone(), id));
            }
            let n = branch.len();
            let mut elems = Vec::new();
            let mut data = Vec::new();
            for (i, (k, id)) in branch.iter().enumerate() {
                let pos = n * ELEMENT + data.len() - i * ELEMENT;
                elems.extend_from_slice(&(pos as u32).to_le_bytes());
                elems.extend_from_slice(&(k.len() as u32).to_le_bytes());
                elems.extend_from_slice(&id.to_le_bytes());
                data.extend_from_slice(k);
            }
            elems.extend_from_slice(&data);
            self.push(BRANCH_PAGE, n, &elems)
        }
    }

    fn meta_page(ps: usize, id: u64, root: u64, freelist: u64, pgid: u64, txid: u64) -> Vec<u8> {
        let mut p = vec![0u8; ps];
        p[0..8].copy_from_slice(&id.to_le_bytes());
        p[8..10].copy_from_slice(&META_PAGE.to_le_bytes());
        let m = &mut p[PAGE_HEADER..PAGE_HEADER + META];
        m[0..4].copy_from_slice(&MAGIC.to_le_bytes());
        m[4..8].copy_from_slice(&VERSION.to_le_bytes());
        m[8..12].copy_from_slice(&(ps as u32).to_le_bytes());
        m[16..24].copy_from_slice(&root.to_le_bytes());
        m[32..40].copy_from_slice(&freelist.to_le_bytes());
        m[40..48].copy_from_slice(&pgid.to_le_bytes());
        m[48..56].copy_from_slice(&txid.to_le_bytes());
        let sum = fnv64a(&m[..META_CHECKSUMMED]);
        p[PAGE_HEADER + META_CHECKSUMMED..PAGE_HEADER + META].copy_from_slice(&sum.to_le_bytes());
        p
    }

    /// A database holding `buckets` (top-level name, items).
    pub(crate) fn db(buckets: &[(&str, Vec<Item>)], opts: Options) -> Vec<u8> {
        let ps = opts.page_size;
        let mut w = Writer {
            ps,
            pages: vec![vec![0; ps], vec![0; ps]],
            opts,
        };
        let mut root_entries = Vec::new();
        let mut names: Vec<_> = buckets.iter().collect();
        names.sort_by(|a, b| a.0.cmp(b.0));
        for (name, items) in names {
            let v = w.bucket(items);
            root_entries.push((BUCKET_LEAF, name.as_bytes().to_vec(), v));
        }
        let root = w.tree(&root_entries);
        let freelist = if opts.freelist {
            let first_free = w.pages.len() as u64 + 1;
            let ids: Vec<u64> = (0..opts.free_pages as u64)
                .map(|i| first_free + i)
                .collect();
            let mut body = Vec::new();
            for id in &ids {
                body.extend_from_slice(&id.to_le_bytes());
            }
            let id = w.push(FREELIST_PAGE, ids.len(), &body);
            for _ in &ids {
                w.pages.push(vec![0; ps]);
            }
            id
        } else {
            NO_FREELIST
        };
        let pgid = w.pages.len() as u64;
        w.pages[0] = meta_page(ps, 0, root, freelist, pgid, 2);
        w.pages[1] = meta_page(ps, 1, root, freelist, pgid, 1);
        w.pages.concat()
    }

    /// A raw database of at least `bytes` bytes: a `key` bucket of etcd-like revisions with 8 KiB
    /// values (overflow pages), for tests that need a real bbolt file of some size.
    pub(crate) fn sample(bytes: usize) -> Vec<u8> {
        let n = bytes / 8192 + 1;
        let items = (1..=n as u64)
            .map(|r| {
                let mut k = r.to_be_bytes().to_vec();
                k.push(b'_');
                k.extend_from_slice(&0u64.to_be_bytes());
                Item::Value(k, vec![(r % 251) as u8; 8192])
            })
            .collect();
        db(&[("key", items), ("meta", vec![])], Options::default())
    }

    /// Appends the sha256 trailer, making a snapshot file.
    pub(crate) fn with_trailer(mut db: Vec<u8>) -> Vec<u8> {
        use sha2::{Digest, Sha256};
        let digest = Sha256::digest(&db);
        db.extend_from_slice(&digest);
        db
    }
}
