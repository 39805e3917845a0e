//! Changes in a plain directory, found by walking it and comparing with a snapshot taken
//! before the step.
//!
//! The snapshot holds each entry's inode, size, mtime and ctime. An entry whose four values
//! are unchanged was not touched (any write, chmod, chown, xattr change or new link moves the
//! ctime, and userspace cannot set it back); only the others are compared with the layers
//! below, content last. Directories are always descended into, since a change deep down does
//! not touch their own times.

use super::{classify, node, ChangeKind, Changes};
use crate::error::{Context, Result};
use crate::fsx::{self, child, display, join, parent};
use crate::lower::LowerView;
use std::collections::{HashMap, HashSet};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl Stamp {
    fn of(md: &std::fs::Metadata) -> Self {
        Stamp {
            dev: md.dev(),
            ino: md.ino(),
            size: md.size(),
            mtime: (md.mtime(), md.mtime_nsec()),
            ctime: (md.ctime(), md.ctime_nsec()),
        }
    }
}

/// Every entry of a directory tree as it was at one moment.
#[derive(Debug, Default)]
pub(crate) struct Snapshot {
    entries: HashMap<Vec<u8>, Stamp>,
}

impl Snapshot {
    pub(crate) fn take(root: &Path) -> Result<Snapshot> {
        let mut snap = Snapshot::default();
        walk(root, &mut |rel, md| {
            snap.entries.insert(rel.to_vec(), Stamp::of(md));
            Ok(())
        })?;
        Ok(snap)
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }
}

/// Calls `f` for every entry below `root` (not `root` itself), parents before children.
fn walk(root: &Path, f: &mut dyn FnMut(&[u8], &std::fs::Metadata) -> Result<()>) -> Result<()> {
    let mut stack = vec![Vec::new()];
    while let Some(dir) = stack.pop() {
        let dir_path = join(root, &dir);
        for name in fsx::list(&dir_path).ctx(|| format!("reading {}", dir_path.display()))? {
            let rel = child(&dir, &name);
            let path = join(root, &rel);
            let md = std::fs::symlink_metadata(&path).ctx(|| format!("reading {}", path.display()))?;
            f(&rel, &md)?;
            if md.is_dir() {
                stack.push(rel);
            }
        }
    }
    Ok(())
}

pub(crate) fn collect(root: &Path, snap: &Snapshot, old: &mut LowerView) -> Result<Changes> {
    let mut ch = Changes::default();
    let mut dirs: HashSet<Vec<u8>> = HashSet::new();
    let mut seen: HashSet<Vec<u8>> = HashSet::with_capacity(snap.len());
    walk(root, &mut |rel, md| {
        seen.insert(rel.to_vec());
        if node::type_of(md) == node::Type::Socket {
            return Ok(());
        }
        ch.note_links(rel, md);
        if md.is_dir() {
            dirs.insert(rel.to_vec());
        }
        // `walk` descends into directories whatever this says about their own metadata.
        if snap.entries.get(rel) == Some(&Stamp::of(md)) {
            return Ok(());
        }
        let below = old.lookup(rel).ctx(|| format!("looking up {}", display(rel)))?;
        if let Some(kind) = classify(below.as_ref(), &join(root, rel), md)? {
            ch.set(rel.to_vec(), kind);
        }
        Ok(())
    })?;
    for rel in snap.entries.keys().filter(|p| !seen.contains(*p)) {
        // Only the topmost deleted path needs a whiteout; below a deleted directory, or below
        // a directory replaced by a file, nothing is left to hide.
        let top = match parent(rel) {
            Some(p) if !p.is_empty() => dirs.contains(p),
            _ => true,
        };
        if top {
            ch.set(rel.clone(), ChangeKind::Deleted);
        }
    }
    Ok(ch)
}
