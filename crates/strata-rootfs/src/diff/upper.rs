//! Changes from an overlay upper directory.
//!
//! The upper directory holds everything the step touched: new and copied-up entries,
//! whiteouts (character devices 0:0) for deletions and opaque directories for directories
//! that were removed and created again. Copy-up also happens for changes that end up as no
//! change (`chmod` to the same mode, a file opened for writing and left alone, the parents of
//! anything created), so every upper entry is compared with the layers below before it goes
//! into the diff.
//!
//! The stage mounts with `redirect_dir=off`, `metacopy=off` and `index=off`, so the upper
//! directory is a plain tree: a renamed directory is copied, and a metacopy-only entry
//! cannot exist. Should one appear anyway, the diff is refused rather than misread.

use super::{classify, node, ChangeKind, Changes};
use crate::error::{Context, Error, Result};
use crate::fsx::{self, child, display, is_whiteout, join};
use crate::lower::LowerView;
use std::collections::HashSet;
use std::path::Path;

const REFUSED_XATTRS: [&str; 4] =
    ["trusted.overlay.redirect", "trusted.overlay.metacopy", "user.overlay.redirect", "user.overlay.metacopy"];

pub(crate) fn collect(upper: &Path, old: &mut LowerView) -> Result<Changes> {
    let mut ch = Changes::default();
    visit(upper, b"", false, old, &mut ch)?;
    Ok(ch)
}

/// `hides_lower`: the merged directory shows nothing from below (it, or an ancestor, is
/// opaque), so every lower name missing from the upper directory was deleted.
fn visit(upper: &Path, dir: &[u8], hides_lower: bool, old: &mut LowerView, ch: &mut Changes) -> Result<()> {
    let dir_path = join(upper, dir);
    let names = fsx::list(&dir_path).ctx(|| format!("reading {}", dir_path.display()))?;
    if hides_lower {
        let present: HashSet<&Vec<u8>> = names.iter().collect();
        let below = old.list(dir).ctx(|| format!("listing {} below", display(dir)))?;
        for name in below.keys().filter(|n| !present.contains(n)) {
            ch.set(child(dir, name), ChangeKind::Deleted);
        }
    }
    for name in names {
        let rel = child(dir, &name);
        let path = join(upper, &rel);
        let md = std::fs::symlink_metadata(&path).ctx(|| format!("reading {}", path.display()))?;
        if is_whiteout(&md) {
            if old.exists(&rel).ctx(|| format!("looking up {}", display(&rel)))? {
                ch.set(rel, ChangeKind::Deleted);
            }
            continue;
        }
        if node::type_of(&md) == node::Type::Socket {
            continue;
        }
        let all = fsx::xattrs(&path).ctx(|| format!("reading xattrs of {}", path.display()))?;
        if let Some(x) = REFUSED_XATTRS.iter().find(|x| all.contains_key(**x)) {
            return Err(Error::unsupported(&rel, format!("upper entry carries {x}: the overlay was not mounted as a plain diff")));
        }
        let below = old.lookup(&rel).ctx(|| format!("looking up {}", display(&rel)))?;
        if let Some(kind) = classify(below.as_ref(), &path, &md)? {
            ch.set(rel.clone(), kind);
        }
        ch.note_links(&rel, &md);
        if md.is_dir() {
            let was_dir = below.as_ref().is_some_and(|b| b.md.is_dir());
            let opaque = fsx::is_opaque(&path).ctx(|| format!("reading xattrs of {}", path.display()))?;
            visit(upper, &rel, was_dir && (hides_lower || opaque), old, ch)?;
        }
    }
    Ok(())
}
