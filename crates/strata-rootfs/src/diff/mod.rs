//! What a step changed, as a layer.
//!
//! Two collectors find the changes: [`upper`] reads an overlay upper directory (small: only
//! what the step touched) and [`walk`] compares a plain directory with its snapshot. Both
//! compare against the same merged view of the layers below ([`crate::lower::LowerView`])
//! with the same rules ([`node`]), and both express deletions the same way — a whiteout for
//! each topmost deleted path, never an opaque marker — so the same change gives the same
//! layer bytes whichever backend ran the step. That is why the overlay collector drops
//! copied-up entries that did not really change, and turns an opaque upper directory into
//! whiteouts for the lower names it no longer has.

mod node;
pub(crate) mod upper;
pub(crate) mod walk;

use crate::error::{Context, Result};
use crate::fsx::{self, display, join, parent};
use crate::lower::LowerView;
pub(crate) use node::{type_of as node_type, Type};
use std::collections::{BTreeMap, HashMap};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use strata_oci::layer::{LayerBuilder, Meta, Node};

/// How a diff is turned into a layer.
#[derive(Debug, Clone, Default)]
pub struct DiffOptions {
    /// SOURCE_DATE_EPOCH: entries (and whiteouts) newer than this are written with this
    /// mtime, so a rebuild gives the same bytes.
    pub clamp_mtime: Option<u64>,
    /// Paths (e.g. `/etc/hosts`, `/etc/resolv.conf`) the caller bind-mounts into the step, or
    /// the runtime creates as mount points. When such a path did not exist in the layers
    /// below and is still an empty file or an empty directory, it is left out, together with
    /// the directories that were created only to hold it. A path that existed below is diffed
    /// like any other; one the step filled with content is kept.
    pub ephemeral: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    /// Not in the layers below.
    Added,
    /// Below, but different now.
    Modified,
    /// Gone: the layer carries a whiteout.
    Deleted,
}

/// One path the step changed (parents that are only in the layer to hold them are not
/// listed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// Relative to the root, e.g. `usr/bin/tool`.
    pub path: String,
    pub kind: ChangeKind,
}

/// A step's changes as a layer ready to finish. Content is read from the stage's directory
/// when the layer is finished, so finish it before the stage is removed.
#[derive(Debug)]
pub struct Diff {
    layer: LayerBuilder,
    changes: Vec<Change>,
}

impl Diff {
    /// True when the step changed nothing: no layer should be written (history only).
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }

    /// What changed, sorted by path.
    pub fn changes(&self) -> &[Change] {
        &self.changes
    }

    pub fn into_layer(self) -> LayerBuilder {
        self.layer
    }
}

/// The raw findings of a collector.
#[derive(Debug, Default)]
pub(crate) struct Changes {
    map: BTreeMap<Vec<u8>, ChangeKind>,
    /// Regular files with more than one link on the new side, by inode.
    links: HashMap<(u64, u64), Vec<Vec<u8>>>,
}

impl Changes {
    pub(crate) fn set(&mut self, rel: Vec<u8>, kind: ChangeKind) {
        self.map.insert(rel, kind);
    }

    pub(crate) fn note_links(&mut self, rel: &[u8], md: &std::fs::Metadata) {
        if md.is_file() && md.nlink() > 1 {
            self.links.entry((md.dev(), md.ino())).or_default().push(rel.to_vec());
        }
    }

    fn has_below(&self, dir: &[u8]) -> bool {
        let mut prefix = dir.to_vec();
        prefix.push(b'/');
        self.map.range(prefix.clone()..).next().is_some_and(|(k, _)| k.starts_with(&prefix))
    }
}

/// Whether `new` differs from `old` (absent → added), for collectors.
pub(crate) fn classify(old: Option<&crate::lower::Found>, new: &Path, nmd: &std::fs::Metadata) -> Result<Option<ChangeKind>> {
    let Some(old) = old else { return Ok(Some(ChangeKind::Added)) };
    let differs = node::differs(&old.path, &old.md, new, nmd).ctx(|| format!("comparing {} with {}", new.display(), old.path.display()))?;
    Ok(differs.then_some(ChangeKind::Modified))
}

fn normalize_ephemeral(p: &str) -> Vec<u8> {
    p.as_bytes()
        .split(|&b| b == b'/')
        .filter(|c| !c.is_empty() && *c != b".")
        .collect::<Vec<_>>()
        .join(&b'/')
}

/// Applies the hardlink and ephemeral rules, adds parents, and builds the layer from the
/// entries as they are under `new_root`.
pub(crate) fn build(mut ch: Changes, new_root: &Path, old: &mut LowerView, opts: &DiffOptions) -> Result<Diff> {
    // A link group goes in whole if any member does: the layer needs the content under one of
    // its names, and an extractor links the others to it.
    for members in ch.links.values() {
        if members.iter().any(|m| ch.map.get(m).is_some_and(|k| *k != ChangeKind::Deleted)) {
            for m in members {
                ch.map.entry(m.clone()).or_insert(ChangeKind::Modified);
            }
        }
    }
    for e in opts.ephemeral.iter().map(|e| normalize_ephemeral(e)) {
        if e.is_empty() || ch.map.get(&e) != Some(&ChangeKind::Added) {
            continue;
        }
        let path = join(new_root, &e);
        let md = std::fs::symlink_metadata(&path).ctx(|| format!("reading {}", path.display()))?;
        let empty = match node::type_of(&md) {
            Type::File => md.len() == 0,
            Type::Dir => fsx::list(&path).ctx(|| format!("reading {}", path.display()))?.is_empty(),
            _ => false,
        };
        if !empty {
            continue;
        }
        ch.map.remove(&e);
        let mut up = parent(&e);
        while let Some(dir) = up.filter(|d| !d.is_empty()) {
            if ch.map.get(dir) != Some(&ChangeKind::Added) || ch.has_below(dir) {
                break;
            }
            ch.map.remove(dir);
            up = parent(dir);
        }
    }

    let changes: Vec<Change> = ch.map.iter().map(|(p, k)| Change { path: display(p), kind: *k }).collect();
    let mut entries: BTreeMap<Vec<u8>, bool> = ch.map.iter().map(|(p, k)| (p.clone(), *k == ChangeKind::Deleted)).collect();
    for p in ch.map.keys() {
        let mut up = parent(p);
        while let Some(dir) = up.filter(|d| !d.is_empty()) {
            if entries.contains_key(dir) {
                break;
            }
            entries.insert(dir.to_vec(), false);
            up = parent(dir);
        }
    }

    // The smallest name of each group carries the content; the others link to it.
    let mut link_to: HashMap<Vec<u8>, Vec<u8>> = HashMap::new();
    for members in ch.links.values() {
        let mut present: Vec<&Vec<u8>> = members.iter().filter(|m| entries.contains_key(*m)).collect();
        present.sort();
        if let Some((first, rest)) = present.split_first() {
            for m in rest {
                link_to.insert((*m).clone(), (*first).clone());
            }
        }
    }

    let mut layer = LayerBuilder::new();
    layer.set_default_mtime(opts.clamp_mtime.unwrap_or(0));
    for (rel, deleted) in &entries {
        if *deleted {
            if old.exists(rel).ctx(|| format!("looking up {}", display(rel)))? {
                layer.add_whiteout(rel)?;
            }
            continue;
        }
        if let Some(first) = link_to.get(rel) {
            layer.add_hardlink(rel, first)?;
            continue;
        }
        add_entry(&mut layer, new_root, rel, opts)?;
    }
    Ok(Diff { layer, changes })
}

fn add_entry(layer: &mut LayerBuilder, root: &Path, rel: &[u8], opts: &DiffOptions) -> Result<()> {
    let path = join(root, rel);
    let md = std::fs::symlink_metadata(&path).ctx(|| format!("reading {}", path.display()))?;
    let mut mtime = md.mtime().max(0) as u64;
    if let Some(clamp) = opts.clamp_mtime {
        mtime = mtime.min(clamp);
    }
    let mut meta = Meta::new(md.mode() & 0o7777).owner(u64::from(md.uid()), u64::from(md.gid())).mtime(mtime);
    let ty = node::type_of(&md);
    if matches!(ty, Type::Dir | Type::File) {
        meta.xattrs = fsx::image_xattrs(&path).ctx(|| format!("reading xattrs of {}", path.display()))?;
    }
    match ty {
        Type::Dir => layer.add_dir(rel, &meta)?,
        Type::File => layer.add_file_from_path(rel, &meta, &path)?,
        Type::Symlink => {
            let target = std::fs::read_link(&path).ctx(|| format!("reading {}", path.display()))?;
            layer.add_symlink(rel, &meta, target.as_os_str().as_bytes())?
        }
        // A socket is a runtime artefact; no layer carries one usefully.
        Type::Socket => {}
        // Device nodes and FIFOs (from an ADD archive, or mknod in RUN) go in as tar entries,
        // as Docker's layers carry them.
        Type::Char | Type::Block | Type::Fifo => {
            let (major, minor) = (rustix::fs::major(md.rdev()), rustix::fs::minor(md.rdev()));
            let node = match ty {
                Type::Char => Node::Char { major, minor },
                Type::Block => Node::Block { major, minor },
                _ => Node::Fifo,
            };
            layer.add_node(rel, &meta, node)?
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ephemeral_paths_are_normalised() {
        assert_eq!(normalize_ephemeral("/etc/hosts"), b"etc/hosts");
        assert_eq!(normalize_ephemeral("etc//resolv.conf/"), b"etc/resolv.conf");
        assert_eq!(normalize_ephemeral("/"), b"");
    }
}
