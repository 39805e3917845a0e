//! Staging roots: where an image is installed before it becomes layers. Each is locked by
//! its build, so a later build can tell a dead build's root from a live one's.

use crate::Error;
use std::path::{Path, PathBuf};

/// A staging root under the work dir, removed when dropped. Its lock file is taken before
/// the directory exists, so [`remove_stale_staging`] never mistakes a starting build for a
/// dead one.
pub(crate) struct Staging {
    dir: PathBuf,
    root: PathBuf,
    lock: Option<tempfile::NamedTempFile>,
}

impl Staging {
    pub(crate) fn new(work: &Path, name: &str) -> Result<Staging, Error> {
        std::fs::create_dir_all(work)?;
        // Image names may have `/` (`apps/web`); the staging root is one entry of `work`.
        let flat = name.replace('/', "+");
        let lock = tempfile::Builder::new().prefix(&format!(".staging-{flat}-")).suffix(".lock").tempfile_in(work)?;
        flock(lock.as_file(), false)?;
        let lock_name = lock.path().to_string_lossy().into_owned();
        let dir = PathBuf::from(lock_name.strip_suffix(".lock").unwrap_or(&lock_name));
        std::fs::create_dir(&dir)?;
        let root = dir.join("root");
        std::fs::create_dir(&root)?;
        // The image's `/`: 0755 as in every image, never the caller's umask (a scriptlet
        // running as a service user under umask 077 could not even reach /bin).
        std::fs::set_permissions(&root, std::os::unix::fs::PermissionsExt::from_mode(0o755))?;
        Ok(Staging { dir, root, lock: Some(lock) })
    }

    pub(crate) fn root(&self) -> &Path {
        &self.root
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
        // Dropping the NamedTempFile unlinks the lock file and releases the lock.
        drop(self.lock.take());
    }
}

/// Removes staging roots left by killed builds: every `.staging-*` directory whose lock no
/// live build holds. Call once before starting builds.
pub fn remove_stale_staging(work: &Path) {
    let Ok(rd) = std::fs::read_dir(work) else { return };
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if !name.starts_with(".staging-") || name.ends_with(".lock") {
            continue;
        }
        let p = e.path();
        let lock_path = PathBuf::from(format!("{}.lock", p.display()));
        let Ok(lock) = std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(&lock_path) else { continue };
        if flock(&lock, true).is_ok() {
            tracing::info!("removing staging root {} left by an interrupted build", p.display());
            let _ = std::fs::remove_dir_all(&p);
            let _ = std::fs::remove_file(&lock_path);
        }
    }
}

fn flock(file: &std::fs::File, nonblocking: bool) -> std::io::Result<()> {
    use std::os::fd::AsFd;
    let op = if nonblocking { rustix::fs::FlockOperation::NonBlockingLockExclusive } else { rustix::fs::FlockOperation::LockExclusive };
    rustix::fs::flock(file.as_fd(), op).map_err(std::io::Error::from)
}
