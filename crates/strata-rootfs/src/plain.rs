//! The fallback root: the merged view of the lower layers copied into one plain directory,
//! as overlayfs would show it. Hardlinks between lower files are not kept: overlayfs (with
//! `index=off`) breaks them on the first write too, so a step changes the same files
//! whichever backend it runs on.

use crate::diff::node_type;
use crate::error::{Context, Error, Result};
use crate::fsx::{self, child, display};
use crate::lower::{Found, LowerView};
use rustix::fs::{self as rfs, AtFlags, FileType, Gid, Mode, OFlags, Uid, XattrFlags};
use std::fs::{File, Metadata};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

pub(crate) fn materialise(view: &mut LowerView, target: &Path) -> Result<()> {
    let fd = rfs::open(target, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
        .map_err(|e| Error::io(format!("opening {}", target.display()), e.into()))?;
    copy_dir(view, b"", fd.as_fd())?;
    if let Some(root) = view.lookup(b"").ctx(|| "reading the lower root".into())? {
        set_meta(&fd, &root, b"")?;
        futimes(&fd, &root.md, b"")?;
    }
    Ok(())
}

fn err(rel: &[u8], what: &str, e: rustix::io::Errno) -> Error {
    Error::io(format!("{what} {}", display(rel)), e.into())
}

fn ts(md: &Metadata) -> rfs::Timestamps {
    fsx::timestamps(md.mtime(), md.mtime_nsec())
}

fn set_meta(fd: &impl AsFd, found: &Found, rel: &[u8]) -> Result<()> {
    rfs::fchown(fd, Some(Uid::from_raw(found.md.uid())), Some(Gid::from_raw(found.md.gid()))).map_err(|e| err(rel, "chown", e))?;
    rfs::fchmod(fd, Mode::from_raw_mode(found.md.mode() & 0o7777)).map_err(|e| err(rel, "chmod", e))?;
    let xattrs = fsx::image_xattrs(&found.path).ctx(|| format!("reading xattrs of {}", found.path.display()))?;
    for (k, v) in xattrs {
        rfs::fsetxattr(fd, k.as_str(), &v, XattrFlags::empty()).map_err(|e| err(rel, &format!("setting {k} on"), e))?;
    }
    Ok(())
}

fn futimes(fd: &impl AsFd, md: &Metadata, rel: &[u8]) -> Result<()> {
    rfs::futimens(fd, &ts(md)).map_err(|e| err(rel, "setting times of", e))
}

fn copy_dir(view: &mut LowerView, rel: &[u8], dir: BorrowedFd<'_>) -> Result<()> {
    let children = view.list(rel).ctx(|| format!("listing {} below", display(rel)))?;
    for (name, found) in children {
        let crel = child(rel, &name);
        let n = fsx::os(&name);
        match node_type(&found.md) {
            crate::diff::Type::Dir => {
                rfs::mkdirat(dir, n, Mode::from_raw_mode(0o700)).map_err(|e| err(&crel, "creating", e))?;
                let sub: OwnedFd = rfs::openat(dir, n, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC, Mode::empty())
                    .map_err(|e| err(&crel, "opening", e))?;
                copy_dir(view, &crel, sub.as_fd())?;
                set_meta(&sub, &found, &crel)?;
                futimes(&sub, &found.md, &crel)?;
            }
            crate::diff::Type::File => {
                let mut src = File::open(&found.path).ctx(|| format!("opening {}", found.path.display()))?;
                let fd = rfs::openat(dir, n, OFlags::CREATE | OFlags::EXCL | OFlags::WRONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC, Mode::from_raw_mode(0o600))
                    .map_err(|e| err(&crel, "creating", e))?;
                let mut dst = File::from(fd);
                std::io::copy(&mut src, &mut dst).ctx(|| format!("copying {}", display(&crel)))?;
                set_meta(&dst, &found, &crel)?;
                futimes(&dst, &found.md, &crel)?;
            }
            crate::diff::Type::Symlink => {
                let target = std::fs::read_link(&found.path).ctx(|| format!("reading {}", found.path.display()))?;
                rfs::symlinkat(target.as_os_str(), dir, n).map_err(|e| err(&crel, "creating", e))?;
                owner_and_times_at(dir, n, &found.md, &crel)?;
            }
            crate::diff::Type::Char | crate::diff::Type::Block | crate::diff::Type::Fifo => {
                let ft = FileType::from_raw_mode(found.md.mode());
                rfs::mknodat(dir, n, ft, Mode::from_raw_mode(0o600), found.md.rdev()).map_err(|e| err(&crel, "creating", e))?;
                rfs::chownat(dir, n, Some(Uid::from_raw(found.md.uid())), Some(Gid::from_raw(found.md.gid())), AtFlags::SYMLINK_NOFOLLOW)
                    .map_err(|e| err(&crel, "chown", e))?;
                // chmodat cannot refuse to follow, but the name was created by mknodat just above.
                rfs::chmodat(dir, n, Mode::from_raw_mode(found.md.mode() & 0o7777), AtFlags::empty()).map_err(|e| err(&crel, "chmod", e))?;
                rfs::utimensat(dir, n, &ts(&found.md), AtFlags::SYMLINK_NOFOLLOW).map_err(|e| err(&crel, "setting times of", e))?;
            }
            crate::diff::Type::Socket => {}
        }
    }
    Ok(())
}

fn owner_and_times_at(dir: BorrowedFd<'_>, n: &std::ffi::OsStr, md: &Metadata, rel: &[u8]) -> Result<()> {
    rfs::chownat(dir, n, Some(Uid::from_raw(md.uid())), Some(Gid::from_raw(md.gid())), AtFlags::SYMLINK_NOFOLLOW)
        .map_err(|e| err(rel, "chown", e))?;
    rfs::utimensat(dir, n, &ts(md), AtFlags::SYMLINK_NOFOLLOW).map_err(|e| err(rel, "setting times of", e))
}
