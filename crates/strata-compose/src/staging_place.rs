//! Where an image's staging root goes, decided per image from its installed size (the file
//! sizes in the RPM headers, read anyway to install them — not primary.xml's claim): a tmpfs
//! only while the root is small and leaves ample memory, else the cache directory on disk;
//! `STRATA_STAGING_DIR` when the user names a place. The chosen file system must have room
//! for the whole root before anything is extracted, counting what images staging at the same
//! time in this process have reserved.
//!
//! A tmpfs is worth having for the usual small roots: they live seconds, and on disk ext4's
//! slow inode allocation after many deletions cost a quarter of compose time (measured).
//! It is not worth memory a package with gigabytes of content would take.

use crate::Error;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use strata_package::{FileKind, Package};

/// Largest estimated root staged on a tmpfs. The corpus's images stay well below it (the
/// biggest is ~200 MB), so composing them never touches the disk; a package with a few GiB
/// of content goes to disk rather than into memory.
pub const TMPFS_MAX: u64 = 1 << 30;
/// Staging on a tmpfs must leave at least this much memory available ...
const MIN_MEM_LEFT: u64 = 1 << 30;
/// ... and at least this fraction (1/n) of the machine's memory.
const MEM_LEFT_FRACTION: u64 = 4;
/// Blocks are allocated whole: a file takes its size rounded up, a directory one block.
const BLOCK: u64 = 4096;

/// The places staging roots may go, and the bytes images of this process have reserved on
/// each while they stage.
#[derive(Debug)]
pub struct StagingArea {
    /// Used for every image whatever its size (still checked for room).
    forced: Option<PathBuf>,
    /// A directory on a tmpfs, for small roots.
    tmpfs: Option<PathBuf>,
    /// On disk: the default for roots too large for the tmpfs.
    disk: PathBuf,
    reserved: Mutex<HashMap<PathBuf, u64>>,
    /// Memory figures; a test substitutes its own.
    memory: fn() -> Option<Memory>,
}

/// `/proc/meminfo`'s MemTotal and MemAvailable, in bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Memory {
    pub total: u64,
    pub available: u64,
}

/// A place chosen for one image, with its bytes reserved until dropped.
#[derive(Debug)]
pub(crate) struct Reservation<'a> {
    area: &'a StagingArea,
    pub dir: PathBuf,
    bytes: u64,
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        let mut r = self.area.reserved.lock().unwrap();
        if let Some(v) = r.get_mut(&self.dir) {
            *v = v.saturating_sub(self.bytes);
        }
    }
}

impl StagingArea {
    /// `forced` (e.g. `$STRATA_STAGING_DIR`) if given; else `tmpfs` for small roots and
    /// `disk` for the others.
    pub fn new(forced: Option<PathBuf>, tmpfs: Option<PathBuf>, disk: PathBuf) -> StagingArea {
        StagingArea { forced, tmpfs, disk, reserved: Mutex::new(HashMap::new()), memory: read_meminfo }
    }

    /// The usual places: `$STRATA_STAGING_DIR` if set; `/dev/shm/strata-staging-UID` when
    /// /dev/shm is a tmpfs; `CACHE/staging`.
    pub fn from_env(cache_root: &Path) -> StagingArea {
        let forced = std::env::var_os("STRATA_STAGING_DIR").filter(|d| !d.is_empty()).map(PathBuf::from);
        let shm = Path::new("/dev/shm");
        let is_tmpfs = rustix::fs::statfs(shm).is_ok_and(|s| s.f_type == TMPFS_MAGIC);
        let tmpfs = is_tmpfs.then(|| shm.join(format!("strata-staging-{}", rustix::process::geteuid().as_raw())));
        StagingArea::new(forced, tmpfs, cache_root.join("staging"))
    }

    /// Every place a root may be in, for [`crate::remove_stale_staging`].
    pub fn dirs(&self) -> Vec<&Path> {
        match &self.forced {
            Some(d) => vec![d.as_path()],
            None => self.tmpfs.iter().map(PathBuf::as_path).chain([self.disk.as_path()]).collect(),
        }
    }

    /// Chooses where `image`'s root of about `need` bytes goes and reserves the room, or says
    /// why there is none.
    pub(crate) fn reserve(&self, image: &str, need: u64) -> Result<Reservation<'_>, Error> {
        let mut reserved = self.reserved.lock().unwrap();
        let taken = |d: &Path| reserved.get(d).copied().unwrap_or(0);
        let (dir, why) = match (&self.forced, &self.tmpfs) {
            (Some(d), _) => (d.clone(), "STRATA_STAGING_DIR".to_string()),
            (None, Some(t)) if need <= TMPFS_MAX => match self.tmpfs_refusal(t, need, taken(t)) {
                None => (t.clone(), format!("a tmpfs: the root is small (at most {})", human(TMPFS_MAX))),
                Some(why) => (self.disk.clone(), format!("disk: {why}")),
            },
            (None, Some(_)) => (self.disk.clone(), format!("disk: the root is larger than {} (the most staged in memory)", human(TMPFS_MAX))),
            (None, None) => (self.disk.clone(), "disk: no tmpfs at /dev/shm".to_string()),
        };
        tracing::info!(image, dir = %dir.display(), need = %human(need), "staging on {why}");
        std::fs::create_dir_all(&dir).map_err(|e| Error::Staging(format!("cannot create the staging directory {}: {e}", dir.display())))?;
        let free = free_bytes(&dir).map_err(|e| Error::Staging(format!("cannot tell the free space of {}: {e}", dir.display())))?;
        let available = free.saturating_sub(taken(&dir));
        if available < need {
            let others = if taken(&dir) > 0 { format!(" once the images staging beside it have their {}", human(taken(&dir))) } else { String::new() };
            return Err(Error::Staging(format!(
                    "not enough space to stage it in {}: it needs about {} (the installed size its packages' headers declare, plus room for scriptlets), and {} is free there{others}\nhint: free some space there, or point STRATA_STAGING_DIR at a file system with more room",
                    dir.display(),
                    human(need),
                human(available)
            )));
        }
        *reserved.entry(dir.clone()).or_insert(0) += need;
        Ok(Reservation { area: self, dir, bytes: need })
    }

    /// Why `need` more bytes should not go to the tmpfs at `dir` (which has `taken` reserved
    /// already), or `None` when they may.
    fn tmpfs_refusal(&self, dir: &Path, need: u64, taken: u64) -> Option<String> {
        let Ok(free) = free_bytes(dir.parent().unwrap_or(dir)) else { return Some("the tmpfs cannot be inspected".into()) };
        if free.saturating_sub(taken) < need {
            return Some(format!("the tmpfs has {} free", human(free.saturating_sub(taken))));
        }
        // tmpfs pages are memory: what stays available once this root (and the others in
        // flight, not yet written) is in it.
        let Some(mem) = (self.memory)() else { return Some("memory figures are unavailable".into()) };
        let left = mem.available.saturating_sub(taken).saturating_sub(need);
        let ample = MIN_MEM_LEFT.max(mem.total / MEM_LEFT_FRACTION);
        (left < ample).then(|| format!("staging it in memory would leave {} available, less than {}", human(left), human(ample)))
    }
}

/// Bytes the root of `packages` takes once installed: the files their headers list (ghosts
/// aside), each rounded up to whole blocks, plus a margin for what scriptlets and the rpmdb
/// add (a tenth, and 64 MiB).
pub(crate) fn estimate(packages: &[Package]) -> Result<u64, Error> {
    let mut total: u64 = 0;
    for p in packages {
        for f in p.files()? {
            if f.flags.is_ghost() {
                continue;
            }
            total = total.saturating_add(match f.kind {
                FileKind::Regular => f.size.div_ceil(BLOCK).saturating_mul(BLOCK),
                FileKind::Directory => BLOCK,
                _ => 0,
            });
        }
    }
    Ok(total.saturating_add(total / 10).saturating_add(64 << 20))
}

const TMPFS_MAGIC: rustix::fs::FsWord = 0x0102_1994;

fn free_bytes(dir: &Path) -> std::io::Result<u64> {
    let st = rustix::fs::statvfs(dir)?;
    Ok(st.f_bavail.saturating_mul(st.f_frsize))
}

fn read_meminfo() -> Option<Memory> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let field = |name: &str| -> Option<u64> {
        let line = text.lines().find(|l| l.starts_with(name))?;
        let kb: u64 = line[name.len()..].trim().trim_end_matches("kB").trim().parse().ok()?;
        Some(kb * 1024)
    };
    Some(Memory { total: field("MemTotal:")?, available: field("MemAvailable:")? })
}

fn human(n: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut unit = "B";
    for u in UNITS {
        if v < 1024.0 {
            break;
        }
        v /= 1024.0;
        unit = u;
    }
    if unit == "B" {
        format!("{n} B")
    } else {
        format!("{v:.1} {unit}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn area(tmpfs: &Path, disk: &Path, memory: fn() -> Option<Memory>) -> StagingArea {
        StagingArea { memory, ..StagingArea::new(None, Some(tmpfs.to_path_buf()), disk.to_path_buf()) }
    }

    fn plenty() -> Option<Memory> {
        Some(Memory { total: 64 << 30, available: 60 << 30 })
    }

    fn tight() -> Option<Memory> {
        Some(Memory { total: 8 << 30, available: 2 << 30 })
    }

    /// Both "places" are ordinary directories here: the choice is made on size and memory,
    /// so it can be tested without a tmpfs.
    #[test]
    fn small_roots_go_to_the_tmpfs_and_large_ones_to_disk() {
        let (t, d) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let free = free_bytes(d.path()).unwrap();
        assert!(free > 200 << 20, "the test needs 200 MiB free in the temp dir");
        let a = area(t.path(), d.path(), plenty);
        assert_eq!(a.reserve("small", 100 << 20).unwrap().dir, t.path());
        let big = TMPFS_MAX + 1;
        if free > big {
            assert_eq!(a.reserve("big", big).unwrap().dir, d.path());
        }
        // Small, but memory is short: disk.
        let a = area(t.path(), d.path(), tight);
        assert_eq!(a.reserve("small", 100 << 20).unwrap().dir, d.path());
        // Asked for: that place, whatever the size.
        let forced = StagingArea::new(Some(d.path().to_path_buf()), Some(t.path().to_path_buf()), t.path().to_path_buf());
        assert_eq!(forced.reserve("small", 1 << 20).unwrap().dir, d.path());
        assert_eq!(forced.dirs(), vec![d.path()]);
    }

    #[test]
    fn reservations_count_until_dropped_and_no_room_is_an_error_naming_both_sizes() {
        let d = tempfile::tempdir().unwrap();
        let a = StagingArea::new(Some(d.path().to_path_buf()), None, d.path().to_path_buf());
        let free = free_bytes(d.path()).unwrap();
        let err = a.reserve("huge", free.saturating_mul(2)).unwrap_err().to_string();
        assert!(err.contains("not enough space to stage it in") && err.contains(&d.path().display().to_string()), "{err}");
        assert!(err.contains(&format!("needs about {}", human(free * 2))) && err.contains("STRATA_STAGING_DIR"), "{err}");

        // Two thirds of the disk's free space each: the second does not fit beside the first.
        let share = free / 3 * 2;
        let first = a.reserve("one", share).unwrap();
        let err = a.reserve("two", share).unwrap_err().to_string();
        assert!(err.contains("images staging beside it"), "{err}");
        drop(first);
        assert!(a.reserve("two", share).is_ok());
    }

    #[test]
    fn human_sizes() {
        assert_eq!(human(512), "512 B");
        assert_eq!(human(3 << 30), "3.0 GiB");
        assert_eq!(human(1536 << 10), "1.5 MiB");
    }
}
