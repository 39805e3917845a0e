//! Writing inside an image root without ever leaving it.
//!
//! Every path is resolved with `openat2(RESOLVE_IN_ROOT)`: the kernel treats the root
//! directory as `/` for the lookup, so absolute symlinks, `..` and symlinks planted by an
//! earlier package all stay inside, exactly as if rpm ran chrooted. Only the final path
//! component is then created or replaced, with `*at` calls that do not follow it.

use rustix::fs::{self as rfs, AtFlags, Mode, OFlags, ResolveFlags, Timespec, Timestamps};
use rustix::io::Errno;
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

pub struct RootFs {
    root: OwnedFd,
    /// The root's own path as the kernel names it (`/proc/self/fd` of `root`): what a
    /// resolved directory's name starts with.
    host: String,
    /// The parent directory used last: rpm payloads are sorted, so neighbours share it.
    /// With it, the path it resolves to inside the root (`usr/bin` for `bin` when `/bin`
    /// links to `usr/bin`), filled on first use.
    last_parent: Option<(String, OwnedFd, Option<String>)>,
}

/// Ownership, permissions and time to apply to a placed entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attrs {
    pub uid: u32,
    pub gid: u32,
    /// Permission bits (incl. setuid/setgid/sticky).
    pub perms: u32,
    pub mtime: u32,
    /// Binary `security.capability` value.
    pub caps: Option<Vec<u8>>,
}

fn err(path: &str, what: &str, e: Errno) -> io::Error {
    io::Error::new(io::Error::from(e).kind(), format!("{what} {path}: {e}"))
}

/// `/a/b/c` → (`a/b`, `c`). Refuses `..`, `.`, empty and NUL components outright: a
/// payload naming them is hostile or broken, and rpm refuses such paths too.
pub fn split(path: &str) -> io::Result<(&str, &str)> {
    let rel = path.trim_start_matches('/');
    let bad = |why: &str| io::Error::new(io::ErrorKind::InvalidInput, format!("refusing path {path:?}: {why}"));
    if rel.is_empty() {
        return Err(bad("it names the root itself"));
    }
    if rel.contains('\0') {
        return Err(bad("it contains NUL"));
    }
    if rel.split('/').any(|c| c == ".." || c == "." || c.is_empty()) {
        return Err(bad("it has an empty, `.` or `..` component"));
    }
    Ok(match rel.rfind('/') {
        Some(i) => (&rel[..i], &rel[i + 1..]),
        None => ("", rel),
    })
}

impl RootFs {
    pub fn open(root: &Path) -> io::Result<RootFs> {
        let fd = rfs::open(root, OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
            .map_err(|e| err(&root.display().to_string(), "open root", e))?;
        let host = fd_path(&fd).map_err(|e| err(&root.display().to_string(), "resolve root", e))?;
        Ok(RootFs { root: fd, host, last_parent: None })
    }

    fn resolve(&self, rel: &str, flags: OFlags) -> Result<OwnedFd, Errno> {
        let rel = if rel.is_empty() { "." } else { rel };
        rfs::openat2(
            &self.root,
            rel,
            flags | OFlags::CLOEXEC,
            Mode::empty(),
            ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
        )
    }

    /// The directory `rel`, created (0755 root:root, like rpm's implicit parents) with its
    /// missing ancestors when absent.
    fn parent_dir(&mut self, rel: &str) -> io::Result<&OwnedFd> {
        if self.last_parent.as_ref().map(|(p, _, _)| p.as_str()) != Some(rel) {
            let fd = match self.resolve(rel, OFlags::PATH | OFlags::DIRECTORY) {
                Ok(fd) => fd,
                Err(Errno::NOENT) => self.make_dirs(rel)?,
                Err(e) => return Err(err(rel, "open directory", e)),
            };
            self.last_parent = Some((rel.to_string(), fd, None));
        }
        Ok(&self.last_parent.as_ref().expect("just set").1)
    }

    /// Where `path` really is inside the root: its parent directories resolved through
    /// the root's symlinks (the chroot way), its last component as is. In a merged-/usr
    /// root `/bin/x` is `/usr/bin/x`: the name rpm's fingerprints give the file, under
    /// which conflicts, layers and "placed last" are kept. The parent must exist.
    pub fn resolved(&mut self, path: &str) -> io::Result<String> {
        let (parent, name) = split(path)?;
        self.parent_dir(parent)?;
        let host = &self.host;
        let (_, fd, real) = self.last_parent.as_mut().expect("parent_dir sets it");
        if real.is_none() {
            let full = fd_path(fd).map_err(|e| err(path, "resolve directory of", e))?;
            let inside = if host == "/" { full.as_str() } else { full.strip_prefix(host.as_str()).unwrap_or(&full) };
            *real = Some(inside.trim_matches('/').to_string());
        }
        let real = real.as_deref().expect("just set");
        Ok(if real.is_empty() { format!("/{name}") } else { format!("/{real}/{name}") })
    }

    /// Names in the directory `path` inside the root (links followed the chroot way);
    /// empty when it does not exist.
    pub fn list(&self, path: &str) -> io::Result<Vec<String>> {
        let fd = match self.resolve(path.trim_start_matches('/'), OFlags::RDONLY | OFlags::DIRECTORY) {
            Ok(fd) => fd,
            Err(Errno::NOENT) | Err(Errno::NOTDIR) => return Ok(Vec::new()),
            Err(e) => return Err(err(path, "open directory", e)),
        };
        let mut out = Vec::new();
        for entry in rfs::Dir::read_from(&fd).map_err(|e| err(path, "read directory", e))? {
            let entry = entry.map_err(|e| err(path, "read directory", e))?;
            let name = entry.file_name().to_string_lossy();
            if name != "." && name != ".." {
                out.push(name.into_owned());
            }
        }
        Ok(out)
    }

    fn make_dirs(&self, rel: &str) -> io::Result<OwnedFd> {
        let dir_flags = OFlags::PATH | OFlags::DIRECTORY;
        let mut prefix = String::new();
        for comp in rel.split('/') {
            // Each prefix is resolved from the root, so a symlinked component
            // (`/lib -> /usr/lib`) is followed the chroot way, never the host way.
            let parent = self.resolve(&prefix, dir_flags).map_err(|e| err(&prefix, "open directory", e))?;
            if !prefix.is_empty() {
                prefix.push('/');
            }
            prefix.push_str(comp);
            match self.resolve(&prefix, dir_flags) {
                Ok(_) => {}
                Err(Errno::NOENT) => {
                    rfs::mkdirat(&parent, comp, Mode::from_raw_mode(0o755)).map_err(|e| match (e, rfs::readlinkat(&parent, comp, Vec::new())) {
                        // Missing for openat2, present for mkdir: a symlink to nothing. rpm
                        // fails here too; following it would let the package pick where
                        // directories appear.
                        (Errno::EXIST, Ok(target)) => {
                            let below = if prefix == rel { String::new() } else { format!("cannot create /{rel}: ") };
                            io::Error::new(
                                io::ErrorKind::AlreadyExists,
                                format!(
                                    "{below}/{prefix} is a symlink to {}, which does not exist in the image, and files are never written through a dangling symlink (rpm refuses it too)\nhint: install what provides {0} before this package (the link's owner should require it)",
                                    target.to_string_lossy()
                                ),
                            )
                        }
                        (e, _) => err(&prefix, "create directory", e),
                    })?;
                    // Exact mode whatever the umask.
                    rfs::chmodat(&parent, comp, Mode::from_raw_mode(0o755), AtFlags::empty()).map_err(|e| err(&prefix, "chmod", e))?;
                }
                Err(e) => return Err(err(&prefix, "parent is not a usable directory:", e)),
            }
        }
        self.resolve(rel, dir_flags).map_err(|e| err(rel, "open directory", e))
    }

    /// Removes whatever non-directory sits at `name` so a new entry can take its place.
    fn clear(dir: &OwnedFd, name: &str, path: &str) -> io::Result<()> {
        match rfs::unlinkat(dir, name, AtFlags::empty()) {
            Ok(()) | Err(Errno::NOENT) => Ok(()),
            Err(Errno::ISDIR) => Err(io::Error::other(format!("cannot replace directory {path} with a file"))),
            Err(e) => Err(err(path, "remove", e)),
        }
    }

    /// Creates a regular file with `content`, replacing a previous non-directory.
    pub fn write_file(&mut self, path: &str, content: &mut dyn io::Read, attrs: &Attrs) -> io::Result<u64> {
        let (parent, name) = split(path)?;
        let dir = self.parent_dir(parent)?;
        Self::clear(dir, name, path)?;
        let fd = rfs::openat(dir, name, OFlags::CREATE | OFlags::EXCL | OFlags::WRONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC, Mode::from_raw_mode(0o600))
            .map_err(|e| err(path, "create", e))?;
        let mut file = File::from(fd);
        let n = io::copy(content, &mut file).map_err(|e| io::Error::new(e.kind(), format!("write {path}: {e}")))?;
        apply_fd(&file, path, attrs)?;
        Ok(n)
    }

    pub fn symlink(&mut self, path: &str, target: &str, attrs: &Attrs) -> io::Result<()> {
        let (parent, name) = split(path)?;
        let dir = self.parent_dir(parent)?;
        Self::clear(dir, name, path)?;
        rfs::symlinkat(target, dir, name).map_err(|e| err(path, "symlink", e))?;
        rfs::chownat(dir, name, Some(uid(attrs.uid)), Some(gid(attrs.gid)), AtFlags::SYMLINK_NOFOLLOW).map_err(|e| err(path, "chown", e))?;
        rfs::utimensat(dir, name, &times(attrs.mtime), AtFlags::SYMLINK_NOFOLLOW).map_err(|e| err(path, "set time of", e))
    }

    /// Creates a directory, or updates an existing one's metadata. An existing symlink to a
    /// directory is kept (a merged-/usr `/lib -> usr/lib` stays a link, as with rpm).
    pub fn dir(&mut self, path: &str, attrs: &Attrs) -> io::Result<()> {
        let (parent, name) = split(path)?;
        let dir = self.parent_dir(parent)?;
        let open = |dir: &OwnedFd| rfs::openat(dir, name, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC, Mode::empty());
        let fd = match open(dir) {
            Ok(fd) => fd,
            Err(Errno::NOENT) => {
                rfs::mkdirat(dir, name, Mode::from_raw_mode(0o700)).map_err(|e| err(path, "create directory", e))?;
                open(dir).map_err(|e| err(path, "open directory", e))?
            }
            Err(Errno::LOOP) | Err(Errno::NOTDIR) => {
                let is_dir_link = self.resolve(&format!("{parent}/{name}"), OFlags::PATH | OFlags::DIRECTORY).is_ok();
                if is_dir_link {
                    return Ok(());
                }
                let dir = self.parent_dir(parent)?;
                Self::clear(dir, name, path)?;
                rfs::mkdirat(dir, name, Mode::from_raw_mode(0o700)).map_err(|e| err(path, "create directory", e))?;
                open(dir).map_err(|e| err(path, "open directory", e))?
            }
            Err(e) => return Err(err(path, "open directory", e)),
        };
        apply_fd(&fd, path, attrs)
    }

    /// Hard-links `path` to the already written `existing` (both inside the root).
    pub fn hardlink(&mut self, path: &str, existing: &str) -> io::Result<()> {
        let (eparent, ename) = split(existing)?;
        let edir = self.resolve(eparent, OFlags::PATH | OFlags::DIRECTORY).map_err(|e| err(existing, "open directory of", e))?;
        let (parent, name) = split(path)?;
        let dir = self.parent_dir(parent)?;
        Self::clear(dir, name, path)?;
        rfs::linkat(&edir, ename, dir, name, AtFlags::empty()).map_err(|e| err(path, "hard-link", e))
    }

    /// Device nodes, FIFOs and sockets (rare in packages, but rpm supports them).
    pub fn special(&mut self, path: &str, mode: u32, rdev: u64, attrs: &Attrs) -> io::Result<()> {
        let (parent, name) = split(path)?;
        let dir = self.parent_dir(parent)?;
        Self::clear(dir, name, path)?;
        let kind = rfs::FileType::from_raw_mode(mode);
        rfs::mknodat(dir, name, kind, Mode::from_raw_mode(0o600), rdev).map_err(|e| err(path, "mknod", e))?;
        let fd = rfs::openat(dir, name, OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC, Mode::empty()).map_err(|e| err(path, "open", e))?;
        let _ = fd;
        rfs::chownat(dir, name, Some(uid(attrs.uid)), Some(gid(attrs.gid)), AtFlags::SYMLINK_NOFOLLOW).map_err(|e| err(path, "chown", e))?;
        rfs::chmodat(dir, name, Mode::from_raw_mode(attrs.perms), AtFlags::empty()).map_err(|e| err(path, "chmod", e))?;
        rfs::utimensat(dir, name, &times(attrs.mtime), AtFlags::SYMLINK_NOFOLLOW).map_err(|e| err(path, "set time of", e))
    }

    /// The directory `path` inside the root, created 0755 with missing parents, opened for
    /// use as a `*at` base or via `/proc/self/fd` (e.g. for SQLite), never outside the root.
    pub fn ensure_dir(&mut self, path: &str) -> io::Result<OwnedFd> {
        let rel = path.trim_start_matches('/').trim_end_matches('/');
        if !rel.is_empty() {
            split(path)?;
        }
        match self.resolve(rel, OFlags::RDONLY | OFlags::DIRECTORY) {
            Ok(fd) => Ok(fd),
            Err(Errno::NOENT) => {
                self.make_dirs(rel)?;
                self.resolve(rel, OFlags::RDONLY | OFlags::DIRECTORY).map_err(|e| err(path, "open directory", e))
            }
            Err(e) => Err(err(path, "open directory", e)),
        }
    }

    /// Reads a small file inside the root (e.g. `/etc/passwd`), following links the chroot way.
    pub fn read(&self, path: &str) -> io::Result<Option<Vec<u8>>> {
        self.read_bounded(path, usize::MAX)
    }

    /// [`read`](Self::read), refusing a file longer than `max` bytes (or not a regular
    /// file: a FIFO would block) with an error naming it.
    pub fn read_bounded(&self, path: &str, max: usize) -> io::Result<Option<Vec<u8>>> {
        match self.resolve(path.trim_start_matches('/'), OFlags::RDONLY | OFlags::NONBLOCK) {
            Ok(fd) => {
                let mut file = File::from(fd);
                if max != usize::MAX && !file.metadata()?.is_file() {
                    return Err(io::Error::new(io::ErrorKind::InvalidData, format!("{path} is not a regular file")));
                }
                let mut buf = Vec::new();
                io::Read::read_to_end(&mut io::Read::take(&mut file, max.saturating_add(1) as u64), &mut buf)?;
                if buf.len() > max {
                    return Err(io::Error::new(io::ErrorKind::InvalidData, format!("{path} is larger than {max} bytes")));
                }
                Ok(Some(buf))
            }
            Err(Errno::NOENT) | Err(Errno::NOTDIR) => Ok(None),
            Err(e) => Err(err(path, "read", e)),
        }
    }

    /// `(inode, ctime)` of an entry, not following a final symlink: what placement left, to
    /// tell later whether a scriptlet touched it.
    pub fn stamp(&mut self, path: &str) -> io::Result<(u64, i64, i64)> {
        let (parent, name) = split(path)?;
        let dir = self.parent_dir(parent)?;
        let st = rfs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW).map_err(|e| err(path, "stat", e))?;
        Ok((st.st_ino, st.st_ctime, st.st_ctime_nsec as i64))
    }

    /// Forget cached directory handles: a scriptlet may have replaced directories.
    pub fn invalidate(&mut self) {
        self.last_parent = None;
    }
}

/// The path the kernel gives an open file descriptor.
fn fd_path(fd: &OwnedFd) -> Result<String, Errno> {
    use std::os::fd::AsRawFd;
    let link = rfs::readlink(format!("/proc/self/fd/{}", fd.as_raw_fd()), Vec::new())?;
    Ok(link.to_string_lossy().into_owned())
}

fn uid(raw: u32) -> rfs::Uid {
    rfs::Uid::from_raw(raw)
}

fn gid(raw: u32) -> rfs::Gid {
    rfs::Gid::from_raw(raw)
}

fn times(mtime: u32) -> Timestamps {
    let t = Timespec { tv_sec: i64::from(mtime), tv_nsec: 0 };
    Timestamps { last_access: t, last_modification: t }
}

/// chown before chmod (chown clears setuid/setgid) and before the capability xattr (chown
/// drops capabilities too); the time last.
fn apply_fd<F: AsFd>(fd: &F, path: &str, a: &Attrs) -> io::Result<()> {
    rfs::fchown(fd, Some(uid(a.uid)), Some(gid(a.gid))).map_err(|e| err(path, "chown", e))?;
    rfs::fchmod(fd, Mode::from_raw_mode(a.perms)).map_err(|e| err(path, "chmod", e))?;
    if let Some(caps) = &a.caps {
        rfs::fsetxattr(fd, "security.capability", caps, rfs::XattrFlags::empty()).map_err(|e| err(path, "set capabilities on", e))?;
    }
    rfs::futimens(fd, &times(a.mtime)).map_err(|e| err(path, "set time of", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs() -> Attrs {
        Attrs { uid: 0, gid: 0, perms: 0o644, mtime: 1_000_000, caps: None }
    }

    #[test]
    fn hostile_paths_are_refused() {
        for p in ["/../etc/passwd", "/a/../../b", "/a//b", "/", "/a/./b", "/a\0b"] {
            assert!(split(p).is_err(), "{p:?}");
        }
        assert_eq!(split("/usr/bin/sh").unwrap(), ("usr/bin", "sh"));
    }

    #[test]
    fn symlinks_inside_the_root_never_lead_outside() {
        let outside = tempfile::tempdir().unwrap();
        let root = tempfile::tempdir().unwrap();
        let mut fs = RootFs::open(root.path()).unwrap();
        // An earlier "package" plants links pointing at the host: absolute and relative.
        fs.symlink("/evil", outside.path().to_str().unwrap(), &attrs()).unwrap();
        fs.symlink("/up", "../../../../../../..", &attrs()).unwrap();
        // The absolute link dangles inside the root: refused, as rpm would in a chroot.
        assert!(fs.write_file("/evil/x", &mut &b"1"[..], &attrs()).is_err());
        fs.write_file("/up/tmp/y", &mut &b"2"[..], &attrs()).unwrap();
        // Once its target exists inside the root, the link leads there and only there.
        let inner = root.path().join(outside.path().strip_prefix("/").unwrap());
        std::fs::create_dir_all(&inner).unwrap();
        fs.invalidate();
        fs.write_file("/evil/x", &mut &b"1"[..], &attrs()).unwrap();
        assert_eq!(std::fs::read_dir(outside.path()).unwrap().count(), 0, "nothing written outside");
        assert_eq!(std::fs::read(inner.join("x")).unwrap(), b"1");
        assert_eq!(std::fs::read(root.path().join("tmp/y")).unwrap(), b"2");
    }

    #[test]
    fn merged_usr_links_are_followed_and_kept() {
        let root = tempfile::tempdir().unwrap();
        let mut fs = RootFs::open(root.path()).unwrap();
        let d = Attrs { perms: 0o755, ..attrs() };
        fs.dir("/usr", &d).unwrap();
        fs.dir("/usr/lib", &d).unwrap();
        fs.symlink("/lib", "usr/lib", &attrs()).unwrap();
        fs.dir("/lib", &d).unwrap();
        fs.write_file("/lib/libx.so", &mut &b"elf"[..], &attrs()).unwrap();
        assert!(root.path().join("lib").symlink_metadata().unwrap().file_type().is_symlink());
        assert_eq!(std::fs::read(root.path().join("usr/lib/libx.so")).unwrap(), b"elf");
        assert_eq!(fs.resolved("/lib/libx.so").unwrap(), "/usr/lib/libx.so");
        assert_eq!(fs.resolved("/usr/lib/libx.so").unwrap(), "/usr/lib/libx.so");
        assert_eq!(fs.resolved("/lib").unwrap(), "/lib", "the last component is not followed");
    }

    #[test]
    fn files_replace_files_and_parents_appear() {
        let root = tempfile::tempdir().unwrap();
        let mut fs = RootFs::open(root.path()).unwrap();
        fs.write_file("/a/b/c", &mut &b"one"[..], &Attrs { perms: 0o4755, ..attrs() }).unwrap();
        fs.write_file("/a/b/c", &mut &b"two"[..], &attrs()).unwrap();
        fs.hardlink("/a/b/d", "/a/b/c").unwrap();
        use std::os::unix::fs::MetadataExt;
        let m = std::fs::metadata(root.path().join("a/b/c")).unwrap();
        assert_eq!((m.mode() & 0o7777, m.nlink(), m.mtime()), (0o644, 2, 1_000_000));
        assert_eq!(std::fs::metadata(root.path().join("a")).unwrap().mode() & 0o777, 0o755);
        assert!(fs.dir("/a/b/c", &attrs()).is_ok(), "a file makes way for a directory");
        assert!(fs.write_file("/a/b/c", &mut &b"x"[..], &attrs()).is_err(), "a directory is not replaced by a file");
    }
}
