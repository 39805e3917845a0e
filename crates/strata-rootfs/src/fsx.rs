//! Small filesystem helpers shared by extraction, assembly and diffs: layer-relative paths
//! (bytes, `/`-separated, no leading slash, `""` for the root), lookups confined to a root,
//! removal without following links, and the xattr policy.

use rustix::fs::{self as rfs, AtFlags, Mode, OFlags, ResolveFlags, Timespec, Timestamps};
use rustix::io::Errno;
use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fs::Metadata;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

/// The xattr overlayfs reads to hide a lower directory's content.
pub(crate) const OPAQUE_XATTR: &str = "trusted.overlay.opaque";
/// The same with the `userxattr` mount option (unprivileged overlay).
pub(crate) const USER_OPAQUE_XATTR: &str = "user.overlay.opaque";

pub(crate) fn os(rel: &[u8]) -> &OsStr {
    OsStr::from_bytes(rel)
}

/// `root/rel`; `rel` is already validated, so this never climbs out of `root`.
pub(crate) fn join(root: &Path, rel: &[u8]) -> PathBuf {
    if rel.is_empty() {
        root.to_path_buf()
    } else {
        root.join(os(rel))
    }
}

/// `a/b/c` → (`a/b`, `c`); `c` → (``, `c`).
pub(crate) fn split(rel: &[u8]) -> (&[u8], &[u8]) {
    match rel.iter().rposition(|&b| b == b'/') {
        Some(i) => (&rel[..i], &rel[i + 1..]),
        None => (&[], rel),
    }
}

pub(crate) fn parent(rel: &[u8]) -> Option<&[u8]> {
    if rel.is_empty() {
        None
    } else {
        Some(split(rel).0)
    }
}

pub(crate) fn child(dir: &[u8], name: &[u8]) -> Vec<u8> {
    let mut p = Vec::with_capacity(dir.len() + 1 + name.len());
    if !dir.is_empty() {
        p.extend_from_slice(dir);
        p.push(b'/');
    }
    p.extend_from_slice(name);
    p
}

pub(crate) fn display(rel: &[u8]) -> String {
    String::from_utf8_lossy(rel).into_owned()
}

/// An overlayfs whiteout: a character device 0:0.
pub(crate) fn is_whiteout(md: &Metadata) -> bool {
    md.file_type().is_char_device() && md.rdev() == 0
}

pub(crate) fn timestamps(sec: i64, nsec: i64) -> Timestamps {
    let t = Timespec { tv_sec: sec, tv_nsec: nsec as _ };
    Timestamps { last_access: t, last_modification: t }
}

/// The extended attributes that belong to an image, both when reading a layer and when
/// writing one: file capabilities, POSIX ACLs and the `user.` namespace. Left out: overlayfs'
/// own bookkeeping (`trusted.overlay.*`, `user.overlay.*`, which a lower layer would obey),
/// other `trusted.*` values, and host labels such as `security.selinux` or `security.ima`,
/// which describe the build machine rather than the image.
pub(crate) fn image_xattr(name: &str) -> bool {
    match name {
        "security.capability" | "system.posix_acl_access" | "system.posix_acl_default" => true,
        _ => name.starts_with("user.") && !name.starts_with("user.overlay."),
    }
}

/// All xattrs of `path` (not following a final symlink).
pub(crate) fn xattrs(path: &Path) -> io::Result<BTreeMap<String, Vec<u8>>> {
    let mut out = BTreeMap::new();
    let len = match rfs::llistxattr_query(path) {
        Ok(n) => n,
        Err(Errno::NOTSUP) => return Ok(out),
        Err(e) => return Err(e.into()),
    };
    if len == 0 {
        return Ok(out);
    }
    let mut names = vec![0u8; len];
    let n = rfs::llistxattr(path, &mut names[..])?;
    for name in names[..n].split(|&b| b == 0).filter(|n| !n.is_empty()) {
        let Ok(name) = std::str::from_utf8(name) else { continue };
        if let Some(v) = xattr(path, name)? {
            out.insert(name.to_string(), v);
        }
    }
    Ok(out)
}

/// The image xattrs of `path` (see [`image_xattr`]).
pub(crate) fn image_xattrs(path: &Path) -> io::Result<BTreeMap<String, Vec<u8>>> {
    let mut all = xattrs(path)?;
    all.retain(|k, _| image_xattr(k));
    Ok(all)
}

pub(crate) fn xattr(path: &Path, name: &str) -> io::Result<Option<Vec<u8>>> {
    let mut buf = vec![0u8; 256];
    loop {
        match rfs::lgetxattr(path, name, &mut buf[..]) {
            Ok(n) => {
                buf.truncate(n);
                return Ok(Some(buf));
            }
            Err(Errno::RANGE) => {
                let n = rfs::lgetxattr_query(path, name)?;
                buf.resize(n.max(buf.len() * 2), 0);
            }
            Err(Errno::NODATA) | Err(Errno::NOTSUP) => return Ok(None),
            Err(e) => return Err(e.into()),
        }
    }
}

/// Whether overlayfs treats the directory at `path` as opaque.
pub(crate) fn is_opaque(path: &Path) -> io::Result<bool> {
    for name in [OPAQUE_XATTR, USER_OPAQUE_XATTR] {
        if xattr(path, name)?.as_deref() == Some(b"y") {
            return Ok(true);
        }
    }
    Ok(false)
}

/// A directory handle through which every lookup stays inside it: `openat2` with
/// `RESOLVE_IN_ROOT` makes the kernel treat it as `/`, so `..`, absolute symlinks and
/// symlinks planted by a layer all resolve inside, exactly as in a chroot.
pub(crate) struct InRoot {
    fd: OwnedFd,
}

impl InRoot {
    pub(crate) fn open(root: &Path) -> io::Result<InRoot> {
        let fd = rfs::open(root, OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())?;
        Ok(InRoot { fd })
    }

    pub(crate) fn open_at(&self, rel: &[u8], flags: OFlags) -> Result<OwnedFd, Errno> {
        let rel: &[u8] = if rel.is_empty() { b"." } else { rel };
        rfs::openat2(
            &self.fd,
            os(rel),
            flags | OFlags::CLOEXEC,
            Mode::empty(),
            ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
        )
    }

    /// The directory `rel` as an `O_PATH` handle for `*at` calls.
    pub(crate) fn dir(&self, rel: &[u8]) -> Result<OwnedFd, Errno> {
        self.open_at(rel, OFlags::PATH | OFlags::DIRECTORY)
    }
}

/// Removes whatever is at `name` in `dir`, a whole tree for a directory, never following a
/// symlink. Returns whether something was there.
pub(crate) fn remove_at(dir: BorrowedFd<'_>, name: &[u8]) -> io::Result<bool> {
    match rfs::unlinkat(dir, os(name), AtFlags::empty()) {
        Ok(()) => Ok(true),
        Err(Errno::NOENT) => Ok(false),
        Err(Errno::ISDIR) => {
            let sub = rfs::openat(dir, os(name), OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC, Mode::empty())?;
            for child in read_names(sub.as_fd())? {
                remove_at(sub.as_fd(), &child)?;
            }
            drop(sub);
            rfs::unlinkat(dir, os(name), AtFlags::REMOVEDIR)?;
            Ok(true)
        }
        Err(e) => Err(e.into()),
    }
}

/// The entry names of a directory opened for reading, without `.` and `..`, sorted.
pub(crate) fn read_names(dir: BorrowedFd<'_>) -> io::Result<Vec<Vec<u8>>> {
    let mut names = Vec::new();
    for entry in rfs::Dir::read_from(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_bytes();
        if name != b"." && name != b".." {
            names.push(name.to_vec());
        }
    }
    names.sort();
    Ok(names)
}

/// The sorted entry names of the directory at `path`.
pub(crate) fn list(path: &Path) -> io::Result<Vec<Vec<u8>>> {
    let fd = rfs::open(path, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC, Mode::empty())?;
    read_names(fd.as_fd())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_pieces() {
        assert_eq!(split(b"a/b/c"), (&b"a/b"[..], &b"c"[..]));
        assert_eq!(split(b"c"), (&b""[..], &b"c"[..]));
        assert_eq!(parent(b""), None);
        assert_eq!(child(b"", b"x"), b"x");
        assert_eq!(child(b"a", b"x"), b"a/x");
    }

    #[test]
    fn xattr_policy_keeps_image_attributes_only() {
        for keep in ["security.capability", "user.mime_type", "system.posix_acl_access"] {
            assert!(image_xattr(keep), "{keep}");
        }
        for drop in ["trusted.overlay.opaque", "user.overlay.redirect", "security.selinux", "trusted.foo"] {
            assert!(!image_xattr(drop), "{drop}");
        }
    }

    #[test]
    fn remove_at_takes_trees_and_leaves_link_targets() {
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("keep"), b"x").unwrap();
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("d/e")).unwrap();
        std::fs::write(root.path().join("d/e/f"), b"1").unwrap();
        std::os::unix::fs::symlink(outside.path(), root.path().join("d/link")).unwrap();
        let dir = InRoot::open(root.path()).unwrap();
        let fd = dir.dir(b"").unwrap();
        assert!(remove_at(fd.as_fd(), b"d").unwrap());
        assert!(!remove_at(fd.as_fd(), b"d").unwrap());
        assert!(!root.path().join("d").exists());
        assert!(outside.path().join("keep").exists(), "a symlink is removed, never followed");
    }
}
