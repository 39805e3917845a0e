//! Temporary files of downloads in progress, in the cache's `tmp/` (same file system as the
//! entries, so the final rename is atomic).
//!
//! A writer holds an exclusive `flock` on its temp file until it has renamed or removed it.
//! Locks die with their process, so an unlocked temp file belongs to a killed run and can be
//! removed; one a live run (this process or another sharing the cache) is writing cannot.

use rustix::fs::{flock, FlockOperation};
use std::fs::{File, OpenOptions};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

const SUFFIX: &str = ".part";

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A locked temp file, removed on drop unless [`persist`](TempFile::persist)ed.
pub(crate) struct TempFile {
    path: PathBuf,
    file: File,
    persisted: bool,
}

impl TempFile {
    /// A new, empty, locked file in `dir` whose name starts with `stem`.
    pub(crate) fn create(dir: &Path, stem: &str) -> std::io::Result<TempFile> {
        loop {
            let n = COUNTER.fetch_add(1, Ordering::Relaxed);
            let path = dir.join(format!("{stem}.{}.{n}{SUFFIX}", std::process::id()));
            let file = match OpenOptions::new()
                .read(true)
                .write(true)
                .create_new(true)
                .open(&path)
            {
                Ok(f) => f,
                // Left by a killed run that had our pid; take the next name.
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            };
            match flock(&file, FlockOperation::NonBlockingLockExclusive) {
                Ok(()) => {}
                // A cleaner took it between create and lock and will remove it.
                Err(rustix::io::Errno::WOULDBLOCK) => continue,
                // No locks on this file system: stale files are then never cleaned, which
                // wastes space but cannot remove a live download.
                Err(e) => tracing::debug!("cannot lock {}: {e}", path.display()),
            }
            // A cleaner may have locked, removed and released it before we locked.
            if same_file(&file, &path) {
                return Ok(TempFile {
                    path,
                    file,
                    persisted: false,
                });
            }
        }
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Makes the content durable, then moves it to `dest` atomically (replacing what is there).
    pub(crate) fn persist(mut self, dest: &Path) -> std::io::Result<()> {
        self.file.sync_all()?;
        std::fs::rename(&self.path, dest)?;
        self.persisted = true;
        Ok(())
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        // Removed while still locked, so no cleaner ever sees it half-gone.
        if !self.persisted {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Removes the temp files in `dir` that no live writer holds, of any age (the gc's prune,
/// which walks without following links). Best effort: whatever cannot be checked or removed
/// is left, and never trusted, as it has no name in the cache.
pub(crate) fn clean_stale(dir: &Path) -> usize {
    let removed = crate::prune::prune_tmp(dir, i64::MAX).map_or(0, |p| p.partials_removed);
    if removed > 0 {
        tracing::debug!("removed {removed} files in {} left by interrupted downloads", dir.display());
    }
    removed
}

/// Whether `name` is one [`TempFile::create`] gives: `HEX.PID.N.part`.
pub(crate) fn is_temp_name(name: &[u8]) -> bool {
    let Some(stem) = name.strip_suffix(SUFFIX.as_bytes()) else {
        return false;
    };
    let parts: Vec<&[u8]> = stem.split(|&b| b == b'.').collect();
    let all = |s: &[u8], f: fn(&u8) -> bool| !s.is_empty() && s.iter().all(f);
    matches!(parts[..], [hex, pid, n] if all(hex, u8::is_ascii_hexdigit) && all(pid, u8::is_ascii_digit) && all(n, u8::is_ascii_digit))
}

fn same_file(file: &File, path: &Path) -> bool {
    match (file.metadata(), std::fs::symlink_metadata(path)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removed_unless_persisted() {
        let dir = tempfile::tempdir().unwrap();
        let t = TempFile::create(dir.path(), "abc").unwrap();
        let path = t.path().to_path_buf();
        assert!(path.exists());
        drop(t);
        assert!(!path.exists());

        let t = TempFile::create(dir.path(), "abc").unwrap();
        std::fs::write(t.path(), b"data").unwrap();
        let dest = dir.path().join("entry");
        t.persist(&dest).unwrap();
        assert_eq!(std::fs::read(&dest).unwrap(), b"data");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn only_unheld_temp_files_are_stale() {
        let dir = tempfile::tempdir().unwrap();
        let live = TempFile::create(dir.path(), "live").unwrap();
        let stale = dir.path().join("0123.4242.7.part");
        std::fs::write(&stale, b"half").unwrap();
        let other = dir.path().join("not-ours");
        std::fs::write(&other, b"").unwrap();
        assert_eq!(clean_stale(dir.path()), 1);
        assert!(!stale.exists() && live.path().exists() && other.exists());
        drop(live);
        assert_eq!(clean_stale(dir.path()), 0);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
