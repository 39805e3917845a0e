//! Each run's private directory on the host (generated `/etc` files, handed-over files,
//! the runtime's bundle and logs), named so that a later process can tell whether the
//! run's owner is still alive and clean up after one that was killed.

use crate::Error;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

/// Where runs keep their state unless [`crate::Sandbox::with_state_dir`] says otherwise:
/// on `/run`, which is cleared at boot, like runc's and podman's own state.
pub const DEFAULT_STATE_DIR: &str = "/run/strata-sandbox";

const PREFIX: &str = "strata-";

/// `<state>/runs/<id>`, mode 0700, removed with everything in it on drop.
pub(crate) struct RunDir {
    path: PathBuf,
    id: String,
}

impl RunDir {
    pub(crate) fn new(state: &Path) -> Result<RunDir, Error> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let runs = state.join("runs");
        private_dir_all(&runs)?;
        loop {
            let n = COUNTER.fetch_add(1, Ordering::Relaxed);
            let (pid, start) = own_identity();
            let id = format!("{PREFIX}{pid}-{start}-{n}");
            let path = runs.join(&id);
            match std::fs::DirBuilder::new().mode(0o700).create(&path) {
                Ok(()) => return Ok(RunDir { path, id }),
                // A killed process of the same pid and start (impossible) or a stray
                // directory: take the next number.
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(Error::io(format!("create {}", path.display()))(e)),
            }
        }
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Unique on this machine while the run lasts; also the runtime's container id.
    pub(crate) fn id(&self) -> &str {
        &self.id
    }
}

impl Drop for RunDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// Creates `dir` and its parents as needed, each new one mode 0700: state that only root
/// may look into.
pub(crate) fn private_dir_all(dir: &Path) -> Result<(), Error> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(Error::io(format!("create {}", dir.display())))
}

/// This process's pid and start time (clock ticks after boot): a pair no other process
/// has, even after pid reuse.
fn own_identity() -> (u32, u64) {
    static ID: OnceLock<(u32, u64)> = OnceLock::new();
    *ID.get_or_init(|| {
        let pid = std::process::id();
        (pid, start_time(pid).unwrap_or(0))
    })
}

fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // After the command name, which may hold spaces and parentheses: field 3 onwards.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// Whether the process that made run `id` is gone (so its leftovers may be removed).
/// Names that are not strata's are never claimed.
pub(crate) fn owner_is_gone(id: &str) -> bool {
    let Some(rest) = id.strip_prefix(PREFIX) else {
        return false;
    };
    let mut parts = rest.split('-');
    let (Some(pid), Some(start)) = (
        parts.next().and_then(|p| p.parse::<u32>().ok()),
        parts.next().and_then(|s| s.parse::<u64>().ok()),
    ) else {
        return false;
    };
    start_time(pid) != Some(start)
}

/// Removes the run directories of processes that died without cleaning up. A runtime's
/// containers of theirs are deleted first by [`crate::runtime`]'s own sweep.
pub(crate) fn sweep_runs(state: &Path) {
    let Ok(entries) = std::fs::read_dir(state.join("runs")) else {
        return;
    };
    for e in entries.flatten() {
        if owner_is_gone(&e.file_name().to_string_lossy()) {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

/// Writes a whole file with exactly `mode` (open's mode passes through the umask, and may
/// drop setuid bits).
pub(crate) fn write_file(path: &Path, bytes: &[u8], mode: u32) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::File::options()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(bytes)?;
    f.set_permissions(std::fs::Permissions::from_mode(mode))
}
