//! Adding a directory tree on disk (an assembled image root) to a layer.

use super::{LayerBuilder, Meta, CAPABILITY_XATTR};
use crate::error::IoContext;
use crate::{Error, Result};
use std::collections::HashMap;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

/// How a tree entry's modification time is chosen; `rel` is the path inside the tree
/// (`usr/bin/bash`) and `mtime` what the disk says.
pub trait MtimePolicy {
    fn mtime(&self, rel: &[u8], is_dir: bool, mtime: i64) -> u64;
}

impl<F: Fn(&[u8], bool, i64) -> u64> MtimePolicy for F {
    fn mtime(&self, rel: &[u8], is_dir: bool, mtime: i64) -> u64 {
        self(rel, is_dir, mtime)
    }
}

impl LayerBuilder {
    /// Adds every entry below `root` (not `root` itself) with its mode, numeric owner,
    /// file capabilities, symlink target and hardlinks as found on disk; times come from
    /// `mtimes`. `skip` leaves out a path (and everything below it) by its relative name.
    pub fn add_tree(&mut self, root: &Path, mtimes: &dyn MtimePolicy, skip: &dyn Fn(&[u8]) -> bool) -> Result<()> {
        let mut links: HashMap<(u64, u64), Vec<u8>> = HashMap::new();
        let mut stack = vec![Vec::<u8>::new()];
        while let Some(dir_rel) = stack.pop() {
            let dir = root.join(std::ffi::OsStr::from_bytes(&dir_rel));
            for entry in fs::read_dir(&dir).ctx(|| format!("reading {}", dir.display()))? {
                let entry = entry.ctx(|| format!("reading {}", dir.display()))?;
                let mut rel = dir_rel.clone();
                if !rel.is_empty() {
                    rel.push(b'/');
                }
                rel.extend_from_slice(entry.file_name().as_bytes());
                if skip(&rel) {
                    continue;
                }
                let path = entry.path();
                let md = fs::symlink_metadata(&path).ctx(|| format!("reading {}", path.display()))?;
                let ft = md.file_type();
                let mut meta = Meta::new(md.mode() & 0o7777).owner(u64::from(md.uid()), u64::from(md.gid()));
                meta.mtime = mtimes.mtime(&rel, ft.is_dir(), md.mtime());
                if ft.is_dir() {
                    self.add_dir(&rel, &meta)?;
                    stack.push(rel);
                } else if ft.is_symlink() {
                    let target = fs::read_link(&path).ctx(|| format!("reading link {}", path.display()))?;
                    self.add_symlink(&rel, &meta, target.as_os_str().as_bytes())?;
                } else if ft.is_file() {
                    if md.nlink() > 1 {
                        if let Some(first) = links.get(&(md.dev(), md.ino())) {
                            self.add_hardlink(&rel, first.clone())?;
                            continue;
                        }
                        links.insert((md.dev(), md.ino()), rel.clone());
                    }
                    if let Ok(Some(caps)) = read_xattr(&path, CAPABILITY_XATTR) {
                        meta = meta.xattr(CAPABILITY_XATTR, caps);
                    }
                    self.add_file_from_path(&rel, &meta, &path)?;
                } else if ft.is_socket() {
                    // Sockets are runtime artefacts; no layer format carries them usefully.
                    continue;
                } else {
                    return Err(Error::InvalidEntry {
                        path: String::from_utf8_lossy(&rel).into_owned(),
                        reason: "device nodes and FIFOs are not supported in layers".into(),
                    });
                }
            }
        }
        Ok(())
    }
}

/// An extended attribute of `path` itself (a final symlink is not followed); `None` when the
/// file has none or the filesystem has no xattrs.
pub fn read_xattr(path: &Path, name: &str) -> std::io::Result<Option<Vec<u8>>> {
    let mut buf = vec![0u8; 256];
    match rustix::fs::lgetxattr(path, name, &mut buf) {
        Ok(n) => {
            buf.truncate(n);
            Ok(Some(buf))
        }
        Err(rustix::io::Errno::NODATA) | Err(rustix::io::Errno::NOTSUP) => Ok(None),
        Err(e) => Err(e.into()),
    }
}
