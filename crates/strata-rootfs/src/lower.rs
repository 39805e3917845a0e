//! The merged view of a stack of unpacked layers (overlay lowerdirs with whiteouts as
//! markers), computed the way overlayfs computes it, without mounting anything.
//!
//! Both diffs compare the state after a step with this view of the state before it, and the
//! plain-directory fallback materialises it; so both backends see the same "before" by
//! construction.
//!
//! Overlayfs' rules: a name is taken from the uppermost layer that has it; a whiteout there
//! hides it. A directory merges the same-named directories of every layer below it, down to
//! and including the first one that is opaque, stopping at a layer where the name is a
//! non-directory or a whiteout.

use crate::fsx::{self, child, is_whiteout, join, split};
use std::collections::{BTreeMap, HashMap};
use std::fs::Metadata;
use std::io;
use std::path::{Path, PathBuf};
use std::rc::Rc;

/// One entry of the merged view.
#[derive(Debug, Clone)]
pub(crate) struct Found {
    /// Where it lives: inside one layer directory.
    pub path: PathBuf,
    pub md: Metadata,
}

pub(crate) struct LowerView {
    /// Uppermost first.
    layers: Vec<PathBuf>,
    /// Layers (indices) contributing to each merged directory looked at so far; `None` when
    /// the path is not a directory in the merged view.
    dirs: HashMap<Vec<u8>, Option<Rc<Vec<usize>>>>,
}

fn lstat(path: &Path) -> io::Result<Option<Metadata>> {
    match std::fs::symlink_metadata(path) {
        Ok(md) => Ok(Some(md)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        // A non-directory in the middle of the path: the name does not exist there.
        Err(e) if e.raw_os_error() == Some(20) => Ok(None),
        Err(e) => Err(e),
    }
}

impl LowerView {
    /// `layers` uppermost first, as overlayfs' `lowerdir=` lists them.
    pub(crate) fn new(layers: Vec<PathBuf>) -> Self {
        LowerView { layers, dirs: HashMap::new() }
    }

    fn dir_stack(&mut self, rel: &[u8]) -> io::Result<Option<Rc<Vec<usize>>>> {
        if let Some(s) = self.dirs.get(rel) {
            return Ok(s.clone());
        }
        let stack = if rel.is_empty() {
            // Every layer's root takes part; overlayfs does not look for opaque roots.
            Some(Rc::new((0..self.layers.len()).collect()))
        } else {
            let (parent, _) = split(rel);
            match self.dir_stack(parent)? {
                None => None,
                Some(pstack) => {
                    let mut out = Vec::new();
                    for &l in pstack.iter() {
                        let p = join(&self.layers[l], rel);
                        let Some(md) = lstat(&p)? else { continue };
                        if !md.is_dir() {
                            // A whiteout or a non-directory hides everything below it.
                            break;
                        }
                        out.push(l);
                        if fsx::is_opaque(&p)? {
                            break;
                        }
                    }
                    (!out.is_empty()).then(|| Rc::new(out))
                }
            }
        };
        self.dirs.insert(rel.to_vec(), stack.clone());
        Ok(stack)
    }

    /// The entry at `rel` in the merged view, if any.
    pub(crate) fn lookup(&mut self, rel: &[u8]) -> io::Result<Option<Found>> {
        if self.layers.is_empty() {
            return Ok(None);
        }
        if rel.is_empty() {
            let path = self.layers[0].clone();
            let md = std::fs::symlink_metadata(&path)?;
            return Ok(Some(Found { path, md }));
        }
        let (parent, _) = split(rel);
        let Some(stack) = self.dir_stack(parent)? else { return Ok(None) };
        for &l in stack.iter() {
            let path = join(&self.layers[l], rel);
            if let Some(md) = lstat(&path)? {
                if is_whiteout(&md) {
                    return Ok(None);
                }
                return Ok(Some(Found { path, md }));
            }
        }
        Ok(None)
    }

    pub(crate) fn exists(&mut self, rel: &[u8]) -> io::Result<bool> {
        Ok(self.lookup(rel)?.is_some())
    }

    /// The children of the merged directory `rel`, by name; empty if it is not a directory.
    pub(crate) fn list(&mut self, rel: &[u8]) -> io::Result<BTreeMap<Vec<u8>, Found>> {
        let mut out = BTreeMap::new();
        let Some(stack) = self.dir_stack(rel)? else { return Ok(out) };
        let mut hidden = std::collections::HashSet::new();
        for &l in stack.iter() {
            let dir = join(&self.layers[l], rel);
            for name in fsx::list(&dir)? {
                if out.contains_key(&name) || hidden.contains(&name) {
                    continue;
                }
                let path = join(&self.layers[l], &child(rel, &name));
                let md = std::fs::symlink_metadata(&path)?;
                if is_whiteout(&md) {
                    hidden.insert(name);
                } else {
                    out.insert(name, Found { path, md });
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn whiteout(path: &Path) {
        rustix::fs::mknodat(rustix::fs::CWD, path, rustix::fs::FileType::CharacterDevice, rustix::fs::Mode::empty(), 0).unwrap();
    }

    #[test]
    fn merges_like_overlayfs() {
        if !rustix::process::geteuid().is_root() {
            eprintln!("skipped: whiteout markers need root");
            assert!(std::env::var_os("CI").is_none(), "CI runs these tests as root");
            return;
        }
        let t = tempfile::tempdir().unwrap();
        let (bottom, mid, top) = (t.path().join("b"), t.path().join("m"), t.path().join("t"));
        for d in [&bottom, &mid, &top] {
            fs::create_dir(d).unwrap();
        }
        fs::create_dir_all(bottom.join("d/sub")).unwrap();
        fs::write(bottom.join("d/a"), "bottom").unwrap();
        fs::write(bottom.join("d/sub/x"), "x").unwrap();
        fs::write(bottom.join("gone"), "g").unwrap();
        fs::create_dir_all(bottom.join("o")).unwrap();
        fs::write(bottom.join("o/old"), "old").unwrap();
        fs::create_dir(mid.join("d")).unwrap();
        fs::write(mid.join("d/a"), "mid").unwrap();
        whiteout(&mid.join("gone"));
        fs::create_dir(mid.join("o")).unwrap();
        fs::write(mid.join("o/new"), "new").unwrap();
        rustix::fs::setxattr(mid.join("o"), "trusted.overlay.opaque", b"y", rustix::fs::XattrFlags::empty()).unwrap();
        fs::write(top.join("d"), "file over dir").unwrap();
        fs::create_dir(top.join("o")).unwrap();

        let mut v = LowerView::new(vec![mid.clone(), bottom.clone()]);
        assert_eq!(fs::read(v.lookup(b"d/a").unwrap().unwrap().path).unwrap(), b"mid");
        assert!(v.exists(b"d/sub/x").unwrap());
        assert!(!v.exists(b"gone").unwrap());
        assert!(!v.exists(b"o/old").unwrap(), "opaque dir hides the lower content");
        let names: Vec<_> = v.list(b"o").unwrap().into_keys().collect();
        assert_eq!(names, vec![b"new".to_vec()]);
        let root: Vec<_> = v.list(b"").unwrap().into_keys().collect();
        assert_eq!(root, vec![b"d".to_vec(), b"o".to_vec()]);

        let mut v = LowerView::new(vec![top, mid, bottom]);
        assert!(v.lookup(b"d").unwrap().unwrap().md.is_file());
        assert!(!v.exists(b"d/a").unwrap(), "a file hides the directory below");
        assert!(v.exists(b"o/new").unwrap(), "a plain dir merges down to the opaque one");
        assert!(!v.exists(b"o/old").unwrap());
    }
}
