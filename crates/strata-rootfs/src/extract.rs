//! Applying a layer tar onto a directory, as containerd's applier does, without ever writing
//! outside it.
//!
//! Every parent is resolved with `openat2(RESOLVE_IN_ROOT)` from the target, so `..`,
//! absolute symlinks and links planted earlier in the same or a lower layer resolve inside it
//! the way a chroot would; the final component is then created, replaced or removed with
//! `*at` calls that never follow it. Names with `..` are refused outright (no writer emits
//! them), absolute names are read as relative to the target (as GNU tar does).
//!
//! Directory times are set after the whole layer, since adding children changes them; the
//! times of existing directories this layer only writes into are restored, so the result does
//! not depend on when it was extracted.

use crate::error::{Context, Error, Result};
use crate::fsx::{self, child, display, split, InRoot, OPAQUE_XATTR};
use crate::tarball::{self, Hashing, Kind, TarEntry};
use strata_oci::targuard::TarGuard;
use rustix::fs::{self as rfs, AtFlags, FileType, Gid, Mode, OFlags, Timestamps, Uid, XattrFlags};
use rustix::io::Errno;
use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;
use strata_oci::layer::{OPAQUE_MARKER, WHITEOUT_PREFIX};
use strata_oci::oci_spec::image::Digest;

/// What OCI whiteouts turn into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Whiteouts {
    /// Delete from the target what the layers below put there: the target holds the merged
    /// result of every layer applied so far.
    Apply,
    /// Keep them as overlayfs markers: `.wh.NAME` becomes a character device 0:0 at NAME and
    /// `.wh..wh..opq` sets `trusted.overlay.opaque=y` on its directory, so the target can serve
    /// as an overlay lowerdir on top of the layers below. Needs root.
    OverlayMarkers,
}

/// What to do with character and block device entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceNodes {
    /// mknod them (needs CAP_MKNOD).
    Create,
    /// Leave them out, as rootless runtimes do.
    Skip,
    /// Refuse the layer.
    Refuse,
}

#[derive(Debug, Clone)]
pub struct ExtractOptions {
    pub whiteouts: Whiteouts,
    pub devices: DeviceNodes,
    /// When set, the layer is reported as [`Error::DiffIdMismatch`] unless its uncompressed
    /// bytes hash to this. The check can only come at the end of the stream: on mismatch the
    /// target holds an unverified layer and must be thrown away.
    pub expected_diff_id: Option<Digest>,
}

impl Default for ExtractOptions {
    /// Apply whiteouts; create device nodes when running as root, skip them otherwise.
    fn default() -> Self {
        let root = rustix::process::geteuid().is_root();
        ExtractOptions {
            whiteouts: Whiteouts::Apply,
            devices: if root { DeviceNodes::Create } else { DeviceNodes::Skip },
            expected_diff_id: None,
        }
    }
}

/// What an extraction read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extracted {
    /// sha256 of the uncompressed tar.
    pub diff_id: Digest,
    pub tar_size: u64,
    /// Tar entries processed (whiteouts included).
    pub entries: u64,
}

/// Extracts the layer blob `layer` (plain, gzip or zstd tar; told by its magic) onto
/// `target`, an existing directory.
pub fn extract(layer: impl Read, target: &Path, opts: &ExtractOptions) -> Result<Extracted> {
    let what = || format!("extracting a layer into {}", target.display());
    let stream = Hashing::new(tarball::decompress(layer).ctx(what)?);
    // The guard sits above the hash: bytes after the archive's end still count for the diff_id.
    let mut archive = tar::Archive::new(TarGuard::new(stream));
    let mut x = Extractor::new(target, opts)?;
    let mut entries = 0;
    for e in archive.entries().ctx(what)? {
        let mut e = e.ctx(what)?;
        let Some(te) = tarball::parse(&mut e)? else { continue };
        x.entry(te, &mut e)?;
        entries += 1;
    }
    x.finish()?;
    let (diff_id, tar_size) = archive.into_inner().into_inner().finish().ctx(what)?;
    if let Some(expected) = &opts.expected_diff_id {
        if *expected != diff_id {
            return Err(Error::DiffIdMismatch { expected: expected.to_string(), actual: diff_id.to_string() });
        }
    }
    Ok(Extracted { diff_id, tar_size, entries })
}

fn io_err(path: &[u8], what: &str, e: Errno) -> Error {
    Error::io(format!("{what} {}", display(path)), e.into())
}

struct Extractor<'o> {
    root: InRoot,
    opts: &'o ExtractOptions,
    /// Paths this layer created (entries and implicit parents): whiteouts and opaque markers
    /// only hide what the layers below put there.
    seen: HashSet<Vec<u8>>,
    dir_times: Vec<(Vec<u8>, Timestamps)>,
    /// Parents this layer created without a directory entry; they get time 0.
    implicit: Vec<Vec<u8>>,
    /// Times of directories from below, before this layer wrote into them.
    restore: HashMap<Vec<u8>, Timestamps>,
    /// The parent used last: layers are sorted, so neighbours share it.
    parent: Option<(Vec<u8>, OwnedFd)>,
}

impl<'o> Extractor<'o> {
    fn new(target: &Path, opts: &'o ExtractOptions) -> Result<Self> {
        let root = InRoot::open(target).ctx(|| format!("opening {}", target.display()))?;
        Ok(Extractor {
            root,
            opts,
            seen: HashSet::new(),
            dir_times: Vec::new(),
            implicit: Vec::new(),
            restore: HashMap::new(),
            parent: None,
        })
    }

    fn entry(&mut self, te: TarEntry, content: &mut dyn Read) -> Result<()> {
        let (dir, base) = split(&te.path);
        if let Some(name) = base.strip_prefix(WHITEOUT_PREFIX.as_bytes()) {
            if base == OPAQUE_MARKER.as_bytes() {
                return self.opaque(dir);
            }
            if name.starts_with(WHITEOUT_PREFIX.as_bytes()) {
                // AUFS bookkeeping (`.wh..wh.plnk`, `.wh..wh.aufs`): meaningless here.
                return Ok(());
            }
            if name.is_empty() || name == b"." || name == b".." {
                return Err(Error::hostile(&te.path, "whiteout of an empty, `.` or `..` name"));
            }
            return self.whiteout(dir, name);
        }
        if te.path.is_empty() {
            return self.root_entry(&te);
        }
        if let Kind::Char(0, 0) = te.kind {
            return Err(Error::hostile(&te.path, "character device 0:0 is how overlayfs marks a deletion"));
        }
        let skip_device = match te.kind {
            Kind::Char(..) | Kind::Block(..) => match self.opts.devices {
                DeviceNodes::Create => false,
                DeviceNodes::Skip => true,
                DeviceNodes::Refuse => return Err(Error::unsupported(&te.path, "device nodes are not allowed here")),
            },
            _ => false,
        };
        if skip_device {
            return Ok(());
        }
        let dir = dir.to_vec();
        let name = base.to_vec();
        let pfd = self.take_parent(&dir)?;
        let done = self.place(pfd.as_fd(), &name, &te, content);
        self.parent = Some((dir, pfd));
        done?;
        self.seen.insert(te.path);
        Ok(())
    }

    fn place(&mut self, pfd: BorrowedFd<'_>, name: &[u8], te: &TarEntry, content: &mut dyn Read) -> Result<()> {
        let path = &te.path;
        let n = fsx::os(name);
        let ts = fsx::timestamps(te.mtime, te.mtime_nsec);
        match &te.kind {
            Kind::Dir => {
                match rfs::statat(pfd, n, AtFlags::SYMLINK_NOFOLLOW) {
                    Ok(st) if FileType::from_raw_mode(st.st_mode) == FileType::Directory => {}
                    Ok(_) => {
                        fsx::remove_at(pfd, name).ctx(|| format!("replacing {}", display(path)))?;
                        rfs::mkdirat(pfd, n, Mode::from_raw_mode(0o700)).map_err(|e| io_err(path, "creating directory", e))?;
                    }
                    Err(Errno::NOENT) => {
                        rfs::mkdirat(pfd, n, Mode::from_raw_mode(0o700)).map_err(|e| io_err(path, "creating directory", e))?
                    }
                    Err(e) => return Err(io_err(path, "reading", e)),
                }
                let fd = rfs::openat(pfd, n, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC, Mode::empty())
                    .map_err(|e| io_err(path, "opening directory", e))?;
                apply_meta(&fd, te)?;
                self.dir_times.push((path.clone(), ts));
            }
            Kind::File => {
                fsx::remove_at(pfd, name).ctx(|| format!("replacing {}", display(path)))?;
                let fd = rfs::openat(
                    pfd,
                    n,
                    OFlags::CREATE | OFlags::EXCL | OFlags::WRONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::from_raw_mode(0o600),
                )
                .map_err(|e| io_err(path, "creating", e))?;
                let mut file = File::from(fd);
                io::copy(content, &mut file).ctx(|| format!("writing {}", display(path)))?;
                apply_meta(&file, te)?;
                rfs::futimens(&file, &ts).map_err(|e| io_err(path, "setting times of", e))?;
            }
            Kind::Symlink(target) => {
                fsx::remove_at(pfd, name).ctx(|| format!("replacing {}", display(path)))?;
                rfs::symlinkat(fsx::os(target), pfd, n).map_err(|e| io_err(path, "creating symlink", e))?;
                self.owner_and_times_at(pfd, name, te, &ts)?;
            }
            Kind::Hardlink(target) => self.hardlink(pfd, name, path, target)?,
            Kind::Char(major, minor) | Kind::Block(major, minor) => {
                let ft = if matches!(te.kind, Kind::Char(..)) { FileType::CharacterDevice } else { FileType::BlockDevice };
                self.node(pfd, name, te, ft, rfs::makedev(*major, *minor), &ts)?;
            }
            Kind::Fifo => self.node(pfd, name, te, FileType::Fifo, 0, &ts)?,
        }
        Ok(())
    }

    fn node(&self, pfd: BorrowedFd<'_>, name: &[u8], te: &TarEntry, ft: FileType, dev: u64, ts: &Timestamps) -> Result<()> {
        let path = &te.path;
        fsx::remove_at(pfd, name).ctx(|| format!("replacing {}", display(path)))?;
        let n = fsx::os(name);
        rfs::mknodat(pfd, n, ft, Mode::from_raw_mode(0o600), dev).map_err(|e| io_err(path, "creating node", e))?;
        rfs::chownat(pfd, n, Some(Uid::from_raw(te.uid)), Some(Gid::from_raw(te.gid)), AtFlags::SYMLINK_NOFOLLOW)
            .map_err(|e| io_err(path, "chown", e))?;
        // chmodat cannot refuse to follow, but the name was created by mknodat just above.
        rfs::chmodat(pfd, n, Mode::from_raw_mode(te.mode), AtFlags::empty()).map_err(|e| io_err(path, "chmod", e))?;
        rfs::utimensat(pfd, n, ts, AtFlags::SYMLINK_NOFOLLOW).map_err(|e| io_err(path, "setting times of", e))
    }

    fn owner_and_times_at(&self, pfd: BorrowedFd<'_>, name: &[u8], te: &TarEntry, ts: &Timestamps) -> Result<()> {
        let n = fsx::os(name);
        rfs::chownat(pfd, n, Some(Uid::from_raw(te.uid)), Some(Gid::from_raw(te.gid)), AtFlags::SYMLINK_NOFOLLOW)
            .map_err(|e| io_err(&te.path, "chown", e))?;
        rfs::utimensat(pfd, n, ts, AtFlags::SYMLINK_NOFOLLOW).map_err(|e| io_err(&te.path, "setting times of", e))
    }

    /// Links to a path already inside the target (written by this layer or one below). The
    /// target's parent is resolved inside the root like any other path, so `/etc/passwd`
    /// means the image's, never the host's.
    fn hardlink(&self, pfd: BorrowedFd<'_>, name: &[u8], path: &[u8], target: &[u8]) -> Result<()> {
        if target.is_empty() || target == path {
            return Err(Error::hostile(path, "hardlink to the root or to itself"));
        }
        let (tdir, tname) = split(target);
        let missing = || Error::hostile(path, format!("hardlink target {} is not in the target tree", display(target)));
        let tfd = match self.root.dir(tdir) {
            Ok(fd) => fd,
            Err(Errno::NOENT) | Err(Errno::NOTDIR) => return Err(missing()),
            Err(e) => return Err(io_err(target, "resolving hardlink target", e)),
        };
        let st = match rfs::statat(&tfd, fsx::os(tname), AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => st,
            Err(Errno::NOENT) => return Err(missing()),
            Err(e) => return Err(io_err(target, "reading hardlink target", e)),
        };
        let ft = FileType::from_raw_mode(st.st_mode);
        if ft == FileType::Directory {
            return Err(Error::hostile(path, "hardlink to a directory"));
        }
        if ft == FileType::CharacterDevice && st.st_rdev == 0 {
            return Err(Error::hostile(path, "hardlink to a deleted path"));
        }
        fsx::remove_at(pfd, name).ctx(|| format!("replacing {}", display(path)))?;
        rfs::linkat(&tfd, fsx::os(tname), pfd, fsx::os(name), AtFlags::empty()).map_err(|e| io_err(path, "hard-linking", e))
    }

    fn root_entry(&mut self, te: &TarEntry) -> Result<()> {
        if te.kind != Kind::Dir {
            return Err(Error::hostile(b"/", "the root entry is not a directory"));
        }
        let fd = self.root.open_at(b"", OFlags::RDONLY | OFlags::DIRECTORY).map_err(|e| io_err(b"/", "opening", e))?;
        apply_meta(&fd, te)?;
        self.dir_times.push((Vec::new(), fsx::timestamps(te.mtime, te.mtime_nsec)));
        self.seen.insert(Vec::new());
        Ok(())
    }

    /// The parent directory `dir`, created with its missing ancestors if absent; taken out of
    /// the one-slot cache (the caller puts it back).
    fn take_parent(&mut self, dir: &[u8]) -> Result<OwnedFd> {
        if let Some((p, fd)) = self.parent.take() {
            if p == dir {
                return Ok(fd);
            }
        }
        match self.root.dir(dir) {
            Ok(fd) => {
                self.note_write_into(dir, &fd)?;
                Ok(fd)
            }
            // make_dirs finds which component is missing or not a directory, and says so.
            Err(Errno::NOENT) | Err(Errno::NOTDIR) => self.make_dirs(dir),
            Err(e) => Err(io_err(dir, "opening parent directory", e)),
        }
    }

    /// Remembers the times of a directory from below before this layer changes its content.
    fn note_write_into(&mut self, dir: &[u8], fd: &OwnedFd) -> Result<()> {
        if self.seen.contains(dir) || self.restore.contains_key(dir) {
            return Ok(());
        }
        let st = rfs::fstat(fd).map_err(|e| io_err(dir, "reading", e))?;
        let t = Timestamps {
            last_access: rfs::Timespec { tv_sec: st.st_atime as _, tv_nsec: st.st_atime_nsec as _ },
            last_modification: rfs::Timespec { tv_sec: st.st_mtime as _, tv_nsec: st.st_mtime_nsec as _ },
        };
        self.restore.insert(dir.to_vec(), t);
        Ok(())
    }

    fn make_dirs(&mut self, dir: &[u8]) -> Result<OwnedFd> {
        let mut prefix: Vec<u8> = Vec::new();
        for comp in dir.split(|&b| b == b'/') {
            let next = child(&prefix, comp);
            match self.root.dir(&next) {
                Ok(_) => {}
                Err(Errno::NOENT) => {
                    let pfd = self.root.dir(&prefix).map_err(|e| io_err(&prefix, "opening parent directory", e))?;
                    self.note_write_into(&prefix, &pfd)?;
                    let n = fsx::os(comp);
                    rfs::mkdirat(&pfd, n, Mode::from_raw_mode(0o755)).map_err(|e| match e {
                        // Not there for openat2, yet there for mkdir: a symlink to nothing.
                        Errno::EXIST => dangling_parent(&pfd, comp, &next, dir),
                        e => io_err(&next, "creating directory", e),
                    })?;
                    rfs::chmodat(&pfd, n, Mode::from_raw_mode(0o755), AtFlags::empty()).map_err(|e| io_err(&next, "chmod", e))?;
                    self.seen.insert(next.clone());
                    self.implicit.push(next.clone());
                }
                Err(Errno::NOTDIR) => {
                    let pfd = self.root.dir(&prefix).map_err(|e| io_err(&prefix, "opening parent directory", e))?;
                    return Err(not_a_directory(&pfd, comp, &next, dir));
                }
                Err(e) => return Err(io_err(&next, "opening parent directory", e)),
            }
            prefix = next;
        }
        self.root.dir(dir).map_err(|e| io_err(dir, "opening parent directory", e))
    }

    fn whiteout(&mut self, dir: &[u8], name: &[u8]) -> Result<()> {
        self.parent = None;
        let path = child(dir, name);
        if self.seen.contains(&path) {
            return Ok(());
        }
        match self.opts.whiteouts {
            Whiteouts::Apply => {
                let pfd = match self.root.dir(dir) {
                    Ok(fd) => fd,
                    Err(Errno::NOENT) | Err(Errno::NOTDIR) => return Ok(()),
                    Err(e) => return Err(io_err(dir, "opening", e)),
                };
                if rfs::statat(&pfd, fsx::os(name), AtFlags::SYMLINK_NOFOLLOW).is_ok() {
                    self.note_write_into(dir, &pfd)?;
                    fsx::remove_at(pfd.as_fd(), name).ctx(|| format!("deleting {}", display(&path)))?;
                }
            }
            Whiteouts::OverlayMarkers => {
                let pfd = self.take_parent(dir)?;
                fsx::remove_at(pfd.as_fd(), name).ctx(|| format!("replacing {}", display(&path)))?;
                rfs::mknodat(&pfd, fsx::os(name), FileType::CharacterDevice, Mode::empty(), 0)
                    .map_err(|e| io_err(&path, "creating whiteout", e))?;
            }
        }
        Ok(())
    }

    fn opaque(&mut self, dir: &[u8]) -> Result<()> {
        self.parent = None;
        let flags = OFlags::RDONLY | OFlags::DIRECTORY;
        match self.opts.whiteouts {
            Whiteouts::Apply => {
                let fd = match self.root.open_at(dir, flags) {
                    Ok(fd) => fd,
                    Err(Errno::NOENT) | Err(Errno::NOTDIR) => return Ok(()),
                    Err(e) => return Err(io_err(dir, "opening", e)),
                };
                self.note_write_into(dir, &fd)?;
                self.prune(fd.as_fd(), dir)
            }
            Whiteouts::OverlayMarkers => {
                let fd = match self.root.open_at(dir, flags) {
                    Ok(fd) => fd,
                    Err(Errno::NOENT) => {
                        self.make_dirs(dir)?;
                        self.root.open_at(dir, flags).map_err(|e| io_err(dir, "opening", e))?
                    }
                    Err(e) => return Err(io_err(dir, "opening", e)),
                };
                rfs::fsetxattr(&fd, OPAQUE_XATTR, b"y", XattrFlags::empty()).map_err(|e| io_err(dir, "marking opaque", e))
            }
        }
    }

    /// Removes everything below `rel` that this layer did not create.
    fn prune(&self, fd: BorrowedFd<'_>, rel: &[u8]) -> Result<()> {
        for name in fsx::read_names(fd).ctx(|| format!("reading {}", display(rel)))? {
            let path = child(rel, &name);
            if !self.seen.contains(&path) {
                fsx::remove_at(fd, &name).ctx(|| format!("deleting {}", display(&path)))?;
                continue;
            }
            let n = fsx::os(&name);
            let is_dir = rfs::statat(fd, n, AtFlags::SYMLINK_NOFOLLOW)
                .map(|st| FileType::from_raw_mode(st.st_mode) == FileType::Directory)
                .map_err(|e| io_err(&path, "reading", e))?;
            if is_dir {
                let sub = rfs::openat(fd, n, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC, Mode::empty())
                    .map_err(|e| io_err(&path, "opening", e))?;
                self.prune(sub.as_fd(), &path)?;
            }
        }
        Ok(())
    }

    fn finish(mut self) -> Result<()> {
        self.parent = None;
        let restore: Vec<_> = self.restore.drain().filter(|(p, _)| !self.seen.contains(p)).collect();
        for (rel, ts) in &restore {
            self.set_times(rel, ts)?;
        }
        let zero = fsx::timestamps(0, 0);
        for rel in &self.implicit {
            self.set_times(rel, &zero)?;
        }
        for (rel, ts) in &self.dir_times {
            self.set_times(rel, ts)?;
        }
        Ok(())
    }

    fn set_times(&self, rel: &[u8], ts: &Timestamps) -> Result<()> {
        let done = if rel.is_empty() {
            self.root.open_at(b"", OFlags::RDONLY | OFlags::DIRECTORY).and_then(|fd| rfs::futimens(&fd, ts))
        } else {
            let (dir, name) = split(rel);
            self.root.dir(dir).and_then(|fd| rfs::utimensat(&fd, fsx::os(name), ts, AtFlags::SYMLINK_NOFOLLOW))
        };
        match done {
            // Deleted or replaced later in the same layer.
            Ok(()) | Err(Errno::NOENT) | Err(Errno::NOTDIR) => Ok(()),
            Err(e) => Err(io_err(rel, "setting times of", e)),
        }
    }
}

/// An entry below `dir` whose component `next` is a symlink to nothing. Creating what the
/// link names would let the archive pick where directories appear (and Docker's unpacker
/// fails here too), so the entry is refused, saying which link and where it leads.
fn dangling_parent(pfd: &OwnedFd, comp: &[u8], next: &[u8], dir: &[u8]) -> Error {
    match rfs::readlinkat(pfd, fsx::os(comp), Vec::new()) {
        Ok(target) => Error::Unsupported {
            path: display(dir),
            reason: format!(
                "/{} is a symlink to {}, which does not exist, and nothing is unpacked through a dangling symlink (the archive would choose where directories appear)\nhint: create {} in an earlier step, or unpack into another directory",
                display(next),
                target.to_string_lossy(),
                target.to_string_lossy()
            ),
        },
        Err(_) => io_err(next, "creating directory", Errno::EXIST),
    }
}

/// An entry below `dir` whose component `next` is not a directory (a file, or a link to one).
fn not_a_directory(pfd: &OwnedFd, comp: &[u8], next: &[u8], dir: &[u8]) -> Error {
    let what = match rfs::readlinkat(pfd, fsx::os(comp), Vec::new()) {
        Ok(target) => format!("a symlink to {}, which is not a directory", target.to_string_lossy()),
        Err(_) => "not a directory".to_string(),
    };
    Error::Unsupported { path: display(dir), reason: format!("/{} is {what}; an entry cannot be placed below it", display(next)) }
}

/// Owner, then mode (chown clears setuid/setgid), then xattrs (chown also drops
/// `security.capability`).
fn apply_meta(fd: &impl AsFd, te: &TarEntry) -> Result<()> {
    rfs::fchown(fd, Some(Uid::from_raw(te.uid)), Some(Gid::from_raw(te.gid))).map_err(|e| io_err(&te.path, "chown", e))?;
    rfs::fchmod(fd, Mode::from_raw_mode(te.mode)).map_err(|e| io_err(&te.path, "chmod", e))?;
    for (name, value) in &te.xattrs {
        match rfs::fsetxattr(fd, name.as_str(), value, XattrFlags::empty()) {
            // The filesystem cannot hold it (e.g. ACLs on a filesystem mounted without).
            Ok(()) | Err(Errno::NOTSUP) => {}
            Err(e) => return Err(io_err(&te.path, &format!("setting {name} on"), e)),
        }
    }
    Ok(())
}
