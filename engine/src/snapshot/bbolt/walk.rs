//! The walk over every bucket's B+tree in key order, inline and nested buckets included, with
//! bbolt's `Tx.Check` consistency checks on the way: page types, key order within and across
//! pages and against the parent's bounds, depth limits, and (with a synced freelist) every page
//! below the high-water mark reachable or free.

use super::{
    BRANCH_PAGE, BUCKET_HEADER, BUCKET_LEAF, Corruption, Db, ELEMENT, LEAF_PAGE, MAX_BUCKET_DEPTH,
    MAX_TREE_DEPTH, NO_FREELIST, PAGE_HEADER, Source, Visit, WalkError, describe_flags, slice,
    u16_at, u32_at, u64_at,
};

impl<'s, S: Source + ?Sized> Db<'s, S> {
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
