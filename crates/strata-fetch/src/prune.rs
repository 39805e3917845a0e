//! Pruning the RPM cache by age: entries not used for longer than a maximum age, and the
//! partial downloads killed runs left in `tmp/`. Without it a build host keeps every
//! package version it ever fetched. A cache hit renews an entry's mtime
//! ([`mark_used`]), so an entry's age is the time since it was last used, not since it
//! was downloaded.
//!
//! The cache directory may hold anything a person or a hostile co-user put there, so
//! pruning removes only regular files with the names the cache gives (a checksum type's
//! directory, a hex name of that type's length; `tmp/`'s `HEX.PID.N.part`), and counts
//! everything else as skipped. It walks through directory descriptors opened with
//! `O_NOFOLLOW` and removes with `unlinkat` relative to them, so neither a symlink in the
//! cache nor one swapped in while pruning runs makes it look at or remove anything outside
//! (unlink never follows the last component: a symlink itself would be removed, never its
//! target — and symlinks are skipped anyway). The cache directory itself is followed: it
//! is the caller's configuration, and may be a link to another disk.
//!
//! Concurrent composes: an entry is removed only when its mtime is older than the maximum
//! age. A compose that uses an entry touches it first, so an entry a running compose
//! fetched stays; one removed between a compose's check and its open fails that compose's
//! open, after which strata-compose rechecks the image's packages and fetches the missing
//! one again. A reader that already opened the file keeps reading it (unix semantics:
//! the inode lives until its last descriptor closes).

use crate::digest::KINDS;
use rustix::fs::{
    AtFlags, Dir, FileType, Mode, OFlags, Timespec, Timestamps, CWD, UTIME_NOW, UTIME_OMIT,
};
use rustix::io::Errno;
use std::ffi::CStr;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;
use std::time::{Duration, SystemTime};

/// Partial downloads older than this, and held by no live download, are a killed run's.
/// (A live download writes, and so renews the mtime, far more often.)
pub const PARTIAL_MAX_AGE: Duration = Duration::from_secs(24 * 3600);

/// A hit renews the entry's mtime only when it is older than this. Renewing it changes the
/// ctime too, which the once-per-process verification keys on (`cache.rs`'s `Stamp`); so a
/// second use within the minute neither touches nor hashes again. Ages of a day or a month
/// do not notice the minute.
const TOUCH_AFTER: Duration = Duration::from_secs(60);

/// What [`prune`] removed and left.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pruned {
    /// Entries (verified `.rpm` files) not used for longer than the maximum age.
    pub removed: usize,
    /// Bytes of the removed entries and partial downloads.
    pub bytes_freed: u64,
    /// Partial downloads of killed runs, older than [`PARTIAL_MAX_AGE`].
    pub partials_removed: usize,
    /// Things in the cache directory that are not the cache's own (other names, symlinks,
    /// directories where files belong): left alone.
    pub skipped: usize,
}

/// Marks the entry at `path` as used now (its mtime; atime is left alone). Best effort: a
/// read-only cache, or one owned by another user, is used all the same. A symlink is not
/// followed (its own time would be set), so a link planted in the cache cannot make this
/// touch a file outside.
pub(crate) fn mark_used(path: &Path) {
    let fresh = std::fs::symlink_metadata(path)
        .and_then(|m| m.modified())
        .is_ok_and(|t| t.elapsed().is_ok_and(|age| age < TOUCH_AFTER));
    if fresh {
        return;
    }
    let times = Timestamps {
        last_access: Timespec {
            tv_sec: 0,
            tv_nsec: UTIME_OMIT,
        },
        last_modification: Timespec {
            tv_sec: 0,
            tv_nsec: UTIME_NOW,
        },
    };
    if let Err(e) = rustix::fs::utimensat(CWD, path, &times, AtFlags::SYMLINK_NOFOLLOW) {
        tracing::debug!("cannot mark {} as used: {e}", path.display());
    }
}

/// Removes from the RPM cache at `dir` the entries whose mtime is older than `max_age`
/// (zero keeps every entry) and the partial downloads older than [`PARTIAL_MAX_AGE`] that
/// no live download holds. A missing `dir` is an empty cache. Errors reading the cache's
/// directories fail the prune; an entry that vanished meanwhile (another prune, a
/// recheck's eviction) is not an error.
pub fn prune(dir: &Path, max_age: Duration, now: SystemTime) -> std::io::Result<Pruned> {
    let mut out = Pruned::default();
    let root = match rustix::fs::open(
        dir,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    ) {
        Ok(fd) => fd,
        Err(Errno::NOENT) => return Ok(out),
        Err(e) => return Err(e.into()),
    };
    let entry_cutoff = (!max_age.is_zero()).then(|| cutoff(now, max_age));
    for name in names(&root)? {
        let name = name.as_c_str();
        let hex_len = KINDS
            .iter()
            .find(|(k, _)| k.as_bytes() == name.to_bytes())
            .map(|(_, len)| len * 2);
        let Some(sub) = subdir(&root, name)? else {
            out.skipped += 1;
            continue;
        };
        match (name.to_bytes(), hex_len) {
            (b"tmp", _) => prune_partials(&sub, cutoff(now, PARTIAL_MAX_AGE), &mut out)?,
            (_, Some(hex_len)) => prune_entries(&sub, hex_len, entry_cutoff, &mut out)?,
            _ => out.skipped += 1,
        }
    }
    Ok(out)
}

/// Seconds since the epoch before which an mtime is too old.
fn cutoff(now: SystemTime, age: Duration) -> i64 {
    let t = now.checked_sub(age).unwrap_or(SystemTime::UNIX_EPOCH);
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// The names in a directory, but `.` and `..`.
fn names(dir: &OwnedFd) -> std::io::Result<Vec<std::ffi::CString>> {
    let mut out = Vec::new();
    for entry in Dir::read_from(dir)? {
        let name = entry?.file_name().to_owned();
        if name.as_bytes() != b"." && name.as_bytes() != b".." {
            out.push(name);
        }
    }
    Ok(out)
}

/// `name` in `dir` opened as a directory, never through a symlink; `None` if it is not a
/// directory (or a symlink to one), or vanished.
fn subdir(dir: &OwnedFd, name: &CStr) -> std::io::Result<Option<OwnedFd>> {
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    match rustix::fs::openat(dir, name, flags, Mode::empty()) {
        Ok(fd) => Ok(Some(fd)),
        Err(Errno::NOTDIR | Errno::LOOP | Errno::NOENT) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// `name`'s own status in `dir` if it is a regular file (symlinks are not followed).
fn regular_file(dir: &OwnedFd, name: &CStr) -> std::io::Result<Option<rustix::fs::Stat>> {
    match rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) if FileType::from_raw_mode(st.st_mode) == FileType::RegularFile => Ok(Some(st)),
        Ok(_) | Err(Errno::NOENT) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Seconds since the epoch (a `c_long`: 32 bits on some targets).
#[allow(clippy::useless_conversion)]
fn mtime(st: &rustix::fs::Stat) -> i64 {
    i64::from(st.st_mtime)
}

/// Removes `name` from `dir` and counts its bytes; gone already is fine.
fn remove(
    dir: &OwnedFd,
    name: &CStr,
    st: &rustix::fs::Stat,
    out: &mut Pruned,
) -> std::io::Result<bool> {
    match rustix::fs::unlinkat(dir, name, AtFlags::empty()) {
        Ok(()) => {
            out.bytes_freed += st.st_size as u64;
            Ok(true)
        }
        Err(Errno::NOENT) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// `name`'s stat when it is `named` as the cache names its files and is a regular file;
/// anything else is not the cache's own: left alone and counted as skipped.
fn own_file(dir: &OwnedFd, name: &CStr, named: bool, out: &mut Pruned) -> std::io::Result<Option<rustix::fs::Stat>> {
    let st = if named { regular_file(dir, name)? } else { None };
    if st.is_none() {
        out.skipped += 1;
    }
    Ok(st)
}

fn prune_entries(
    dir: &OwnedFd,
    hex_len: usize,
    cutoff: Option<i64>,
    out: &mut Pruned,
) -> std::io::Result<()> {
    for name in names(dir)? {
        let bytes = name.as_bytes();
        let named =
            bytes.len() == hex_len && bytes.iter().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        let Some(st) = own_file(dir, &name, named, out)? else { continue };
        // A compose touches what it uses before reading it, so an entry in use now is
        // younger than any cutoff and stays.
        if cutoff.is_some_and(|c| mtime(&st) < c) && remove(dir, &name, &st, out)? {
            out.removed += 1;
        }
    }
    Ok(())
}

/// The partial downloads in the cache's `tmp/` at `dir` that no live download holds and
/// whose mtime is before `cutoff` (`i64::MAX`: any age). What a fetch clears at its start
/// (`temp::clean_stale`) and what a gc clears of killed runs.
pub(crate) fn prune_tmp(dir: &Path, cutoff: i64) -> std::io::Result<Pruned> {
    let mut out = Pruned::default();
    let fd = rustix::fs::open(dir, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())?;
    prune_partials(&fd, cutoff, &mut out)?;
    Ok(out)
}

fn prune_partials(dir: &OwnedFd, cutoff: i64, out: &mut Pruned) -> std::io::Result<()> {
    for name in names(dir)? {
        let Some(st) = own_file(dir, &name, crate::temp::is_temp_name(name.as_bytes()), out)? else { continue };
        if mtime(&st) >= cutoff || held(dir, &name) {
            continue;
        }
        if remove(dir, &name, &st, out)? {
            out.partials_removed += 1;
        }
    }
    Ok(())
}

/// Whether a live download holds the temp file `name` (its writer's `flock`, see `temp.rs`).
/// Without locks on the file system, age alone decides.
fn held(dir: &OwnedFd, name: &CStr) -> bool {
    let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NONBLOCK;
    let Ok(fd) = rustix::fs::openat(dir, name, flags, Mode::empty()) else {
        return false;
    };
    // The lock is dropped with `fd`; a download starting meanwhile creates a new name.
    matches!(
        rustix::fs::flock(
            fd.as_fd(),
            rustix::fs::FlockOperation::NonBlockingLockExclusive
        ),
        Err(Errno::WOULDBLOCK)
    )
}
