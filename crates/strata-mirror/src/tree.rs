//! The mirror folder on disk: its lock, atomic writes that leave unchanged files alone,
//! and refusals of whatever stands where the mirror needs a file or a folder.
//!
//! Every file is written to a `.strata-tmp-*` name in its own folder, synced and renamed
//! over its final name, so a reader (an http server, rsync) sees the old file or the new one,
//! never half of one; a kill leaves at most temporaries, which the next publish sweeps.
//! Nothing inside the tree is followed through a symlink: a link where the mirror writes
//! could send bytes outside it, so it is refused.

use crate::Error;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};

/// Prefix of every temporary the mirror writes; the next publish removes stale ones.
pub const TMP_PREFIX: &str = ".strata-tmp-";
/// The lock file: held (flock) by one publisher at a time.
pub const LOCK_FILE: &str = ".strata-mirror.lock";

/// What writing a file did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The file is new or its bytes changed.
    Written,
    /// The file already had exactly these bytes; it was not touched.
    Unchanged,
}

/// An open, locked mirror folder.
pub struct Tree {
    root: PathBuf,
    /// Held for the life of the publish; closing it releases the flock.
    _lock: File,
}

fn io_at(path: &Path, what: &str) -> impl FnOnce(io::Error) -> Error {
    let context = format!("{what} {}", path.display());
    move |source| Error::Io { context, source }
}

/// The kind of a file, for messages.
pub fn kind_of(md: &std::fs::Metadata) -> &'static str {
    let ft = md.file_type();
    if ft.is_symlink() {
        "a symlink"
    } else if ft.is_dir() {
        "a directory"
    } else if ft.is_file() {
        "a regular file"
    } else if ft.is_fifo() {
        "a FIFO"
    } else if ft.is_socket() {
        "a socket"
    } else {
        "a device"
    }
}

/// A folder the mirror creates is 0755 whatever the publisher's umask: its files are 0644
/// so that a web server's user can serve them, and a 0700 folder would hide them.
fn served_dir_mode(dir: &Path) -> Result<(), Error> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).map_err(io_at(dir, "setting the mode of"))
}

impl Tree {
    /// Opens (creating it when absent) the mirror folder `root` and takes its lock, waiting
    /// for another publisher to finish (`waiting` is called once if it has to).
    pub fn open(root: &Path, waiting: &mut dyn FnMut(&Path)) -> Result<Tree, Error> {
        match std::fs::metadata(root) {
            Ok(md) if md.is_dir() => {}
            Ok(md) => {
                return Err(Error::Invalid(format!(
                    "--mirror {} is {}, not a folder\n  hint: give the folder the mirror lives in (it is created when absent)",
                    root.display(),
                    kind_of(&md)
                )))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                if std::fs::symlink_metadata(root).is_ok() {
                    return Err(Error::Invalid(format!("--mirror {} is a symlink to nothing\n  hint: create the folder it names, or give another", root.display())));
                }
                std::fs::create_dir_all(root).map_err(io_at(root, "creating the mirror folder"))?;
                served_dir_mode(root)?;
            }
            Err(e) => return Err(io_at(root, "reading")(e)),
        }
        let lock_path = root.join(LOCK_FILE);
        if let Ok(md) = std::fs::symlink_metadata(&lock_path) {
            if !md.file_type().is_file() {
                return Err(in_the_way(&lock_path, &md, "the mirror's lock file"));
            }
        }
        let lock = std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(&lock_path).map_err(io_at(&lock_path, "opening the lock file"))?;
        if rustix::fs::flock(lock.as_fd(), rustix::fs::FlockOperation::NonBlockingLockExclusive).is_err() {
            waiting(&lock_path);
            rustix::fs::flock(lock.as_fd(), rustix::fs::FlockOperation::LockExclusive).map_err(|e| io_at(&lock_path, "locking")(e.into()))?;
        }
        let tree = Tree { root: root.to_path_buf(), _lock: lock };
        tree.sweep(root, 0);
        Ok(tree)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Absolute path of a mirror-relative one.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    /// Removes temporaries a killed publish left (they were never renamed into place, so
    /// nothing names them). Only the mirror's own depth is walked, never through links.
    fn sweep(&self, dir: &Path, depth: usize) {
        let Ok(entries) = std::fs::read_dir(dir) else { return };
        for e in entries.flatten() {
            let name = e.file_name();
            let Ok(ft) = e.file_type() else { continue };
            if name.to_string_lossy().starts_with(TMP_PREFIX) {
                let _ = if ft.is_dir() { std::fs::remove_dir_all(e.path()) } else { std::fs::remove_file(e.path()) };
            } else if ft.is_dir() && depth < 3 {
                self.sweep(&e.path(), depth + 1);
            }
        }
    }

    /// Makes sure the folder `rel` (mirror-relative, `/`-separated) exists, creating each
    /// missing part; a part that is not a folder (a file, a symlink) is refused.
    pub fn ensure_dir(&self, rel: &str) -> Result<PathBuf, Error> {
        let mut cur = self.root.clone();
        for part in rel.split('/').filter(|p| !p.is_empty()) {
            cur.push(part);
            match std::fs::symlink_metadata(&cur) {
                Ok(md) if md.is_dir() => {}
                Ok(md) => return Err(in_the_way(&cur, &md, "a folder of the mirror")),
                Err(e) if e.kind() == io::ErrorKind::NotFound => match std::fs::create_dir(&cur) {
                    Ok(()) => served_dir_mode(&cur)?,
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists && cur.is_dir() => {}
                    Err(e) => return Err(io_at(&cur, "creating")(e)),
                },
                Err(e) => return Err(io_at(&cur, "reading")(e)),
            }
        }
        Ok(cur)
    }

    /// Refuses anything but a regular file (or nothing) at `rel`.
    pub fn check_file_slot(&self, rel: &str) -> Result<Option<std::fs::Metadata>, Error> {
        let path = self.path(rel);
        match std::fs::symlink_metadata(&path) {
            Ok(md) if md.file_type().is_file() => Ok(Some(md)),
            Ok(md) => Err(in_the_way(&path, &md, "a file of the mirror")),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_at(&path, "reading")(e)),
        }
    }

    /// Writes `bytes` to `rel` unless the file already holds exactly them.
    pub fn write(&self, rel: &str, bytes: &[u8]) -> Result<Outcome, Error> {
        if let Some(md) = self.check_file_slot(rel)? {
            if md.len() == bytes.len() as u64 && same_bytes(&self.path(rel), bytes) {
                return Ok(Outcome::Unchanged);
            }
        }
        self.write_with(rel, |w| w.write_all(bytes))?;
        Ok(Outcome::Written)
    }

    /// Writes `rel` through `fill`, into a temporary renamed over it once `fill` succeeded
    /// and the bytes are on disk. The folder must exist ([`Tree::ensure_dir`]).
    pub fn write_with<T>(&self, rel: &str, fill: impl FnOnce(&mut dyn Write) -> io::Result<T>) -> Result<T, Error> {
        self.check_file_slot(rel)?;
        let dest = self.path(rel);
        let dir = dest.parent().unwrap_or(&self.root).to_path_buf();
        let mut tmp = tempfile::Builder::new().prefix(TMP_PREFIX).tempfile_in(&dir).map_err(io_at(&dir, "creating a temporary file in"))?;
        let value = {
            let mut w = io::BufWriter::with_capacity(1 << 20, tmp.as_file_mut());
            let v = fill(&mut w).map_err(io_at(&dest, "writing"))?;
            w.flush().map_err(io_at(&dest, "writing"))?;
            v
        };
        tmp.as_file().sync_all().map_err(io_at(&dest, "writing"))?;
        rustix::fs::fchmod(tmp.as_file().as_fd(), rustix::fs::Mode::from_raw_mode(0o644)).map_err(|e| io_at(&dest, "writing")(e.into()))?;
        tmp.persist(&dest).map_err(|e| io_at(&dest, "renaming into place")(e.error))?;
        sync_dir(&dir);
        Ok(value)
    }

    /// Moves a finished file (written under a temporary name in the same folder tree) to
    /// `rel`, unless `rel` already holds the same bytes (then the new one is dropped).
    pub fn place(&self, from: &Path, rel: &str) -> Result<Outcome, Error> {
        let dest = self.path(rel);
        if let Some(md) = self.check_file_slot(rel)? {
            let new_len = std::fs::metadata(from).map_err(io_at(from, "reading"))?.len();
            if md.len() == new_len && same_files(from, &dest).map_err(io_at(&dest, "comparing"))? {
                let _ = std::fs::remove_file(from);
                return Ok(Outcome::Unchanged);
            }
        }
        std::fs::rename(from, &dest).map_err(io_at(&dest, "renaming into place"))?;
        if let Some(dir) = dest.parent() {
            sync_dir(dir);
        }
        Ok(Outcome::Written)
    }

    /// A temporary folder inside `rel_dir` (same file system, so its files can be renamed
    /// into place), removed when dropped.
    pub fn staging(&self, rel_dir: &str) -> Result<tempfile::TempDir, Error> {
        let dir = self.ensure_dir(rel_dir)?;
        tempfile::Builder::new().prefix(TMP_PREFIX).tempdir_in(&dir).map_err(io_at(&dir, "creating a staging folder in"))
    }

    /// Removes `rel` if it is a regular file (old metadata nothing names any more).
    pub fn remove(&self, rel: &str) -> Result<bool, Error> {
        match self.check_file_slot(rel)? {
            Some(_) => {
                let path = self.path(rel);
                std::fs::remove_file(&path).map_err(io_at(&path, "removing"))?;
                Ok(true)
            }
            None => Ok(false),
        }
    }
}

fn in_the_way(path: &Path, md: &std::fs::Metadata, needed: &str) -> Error {
    Error::InTheWay(format!(
        "{} is {}, where the mirror needs {needed}\n  hint: move it out of the mirror folder; strata never replaces or follows what it did not write there",
        path.display(),
        kind_of(md)
    ))
}

fn sync_dir(dir: &Path) {
    // Best effort: some file systems refuse fsync on a directory.
    if let Ok(d) = File::open(dir) {
        let _ = rustix::fs::fsync(d.as_fd());
    }
}

fn same_bytes(path: &Path, bytes: &[u8]) -> bool {
    std::fs::read(path).map(|b| b == bytes).unwrap_or(false)
}

fn same_files(a: &Path, b: &Path) -> io::Result<bool> {
    let (mut fa, mut fb) = (io::BufReader::new(File::open(a)?), io::BufReader::new(File::open(b)?));
    let (mut ba, mut bb) = (vec![0u8; 1 << 16], vec![0u8; 1 << 16]);
    loop {
        let na = read_full(&mut fa, &mut ba)?;
        let nb = read_full(&mut fb, &mut bb)?;
        if na != nb || ba[..na] != bb[..nb] {
            return Ok(false);
        }
        if na == 0 {
            return Ok(true);
        }
    }
}

fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

/// The size of a file and the sha256 of its bytes.
pub fn hash_file(path: &Path) -> Result<(u64, String), Error> {
    use sha2::Digest;
    let mut f = File::open(path).map_err(io_at(path, "reading"))?;
    let mut h = sha2::Sha256::new();
    let n = io::copy(&mut f, &mut HashWriter(&mut h)).map_err(io_at(path, "reading"))?;
    Ok((n, hex::encode(h.finalize())))
}

/// Feeds written bytes to a hasher.
pub struct HashWriter<'a>(pub &'a mut sha2::Sha256);

impl Write for HashWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        sha2::Digest::update(self.0, buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    fn open(dir: &Path) -> Tree {
        Tree::open(dir, &mut |_| panic!("nobody else holds the lock")).unwrap()
    }

    #[test]
    fn unchanged_files_are_not_rewritten() {
        let d = tempfile::tempdir().unwrap();
        let t = open(d.path());
        t.ensure_dir("a/b").unwrap();
        assert_eq!(t.write("a/b/f", b"one").unwrap(), Outcome::Written);
        let ino = std::fs::metadata(t.path("a/b/f")).unwrap().ino();
        assert_eq!(t.write("a/b/f", b"one").unwrap(), Outcome::Unchanged);
        assert_eq!(std::fs::metadata(t.path("a/b/f")).unwrap().ino(), ino);
        assert_eq!(t.write("a/b/f", b"two").unwrap(), Outcome::Written);
        assert_eq!(std::fs::read(t.path("a/b/f")).unwrap(), b"two");
    }

    #[test]
    fn things_in_the_way_are_refused_by_name() {
        let d = tempfile::tempdir().unwrap();
        let t = open(d.path());
        std::fs::write(d.path().join("web"), b"x").unwrap();
        let e = t.ensure_dir("web/0").unwrap_err().to_string();
        assert!(e.contains("web is a regular file") && e.contains("needs a folder"), "{e}");
        std::fs::create_dir(d.path().join("index.json")).unwrap();
        let e = t.write("index.json", b"{}").unwrap_err().to_string();
        assert!(e.contains("index.json is a directory"), "{e}");
        std::os::unix::fs::symlink("/etc", d.path().join("etc")).unwrap();
        let e = t.ensure_dir("etc/x").unwrap_err().to_string();
        assert!(e.contains("is a symlink"), "{e}");
        let file = d.path().join("file");
        std::fs::write(&file, b"").unwrap();
        let e = Tree::open(&file, &mut |_| {}).err().unwrap().to_string();
        assert!(e.contains("is a regular file, not a folder"), "{e}");
    }

    #[test]
    fn stale_temporaries_are_swept_and_the_lock_is_exclusive() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("web/0")).unwrap();
        std::fs::write(d.path().join("web/0/.strata-tmp-abc"), b"half").unwrap();
        let t = open(d.path());
        assert!(!d.path().join("web/0/.strata-tmp-abc").exists());
        let lock = File::open(d.path().join(LOCK_FILE)).unwrap();
        assert!(rustix::fs::flock(lock.as_fd(), rustix::fs::FlockOperation::NonBlockingLockShared).is_err(), "held while open");
        drop(t);
        assert!(rustix::fs::flock(lock.as_fd(), rustix::fs::FlockOperation::NonBlockingLockShared).is_ok(), "released on drop");
    }
}
