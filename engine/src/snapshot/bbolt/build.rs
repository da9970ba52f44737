//! A tiny bbolt writer for tests: a database of top-level buckets whose entries are key/value
//! pairs or nested buckets, with the layout choices bbolt makes (inline small buckets, leaf
//! pages split under a branch page) so the walker meets each structure.

use super::meta_page::fnv64a;
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
