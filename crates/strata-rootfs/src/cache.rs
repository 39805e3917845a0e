//! The unpacked-layer cache: `CACHE/layers/<diff_id hex>/`, one directory per layer,
//! extracted once with whiteouts kept as overlay markers, for use as overlay lowerdirs.
//!
//! A directory under a digest name exists only once its layer was extracted completely and
//! hashed to that digest: extraction goes into `.tmp-*` beside it and is renamed (with
//! `RENAME_NOREPLACE`) at the end. A killed extraction leaves a `.tmp-*` directory that no
//! lookup ever trusts; the next [`LayerCache::open`] removes it once no live process holds
//! its lock.

use crate::error::{Context, Error, Result};
use crate::extract::{extract, DeviceNodes, ExtractOptions, Whiteouts};
use rustix::fs::{self as rfs, FlockOperation, RenameFlags};
use rustix::io::Errno;
use std::fs::{self, File};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use strata_oci::oci_spec::image::Digest;
use strata_oci::store::Store;

const TMP_PREFIX: &str = ".tmp-";

/// Unpacked layers, `CACHE/layers/<diff_id hex>/`, each extracted once with whiteouts as
/// overlay markers and published by a rename only after its diff_id checked out. Safe to
/// share between threads and processes.
#[derive(Debug, Clone)]
pub struct LayerCache {
    dir: PathBuf,
}

fn hex_of(diff_id: &Digest) -> Result<&str> {
    let hex = diff_id.digest();
    let ok = diff_id.algorithm().as_ref() == "sha256" && hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    if ok {
        Ok(hex)
    } else {
        Err(Error::unsupported(diff_id.to_string().as_bytes(), "only sha256 diff_ids name cached layers"))
    }
}

fn lock(path: &Path, block: bool) -> Result<Option<File>> {
    let f = File::options().create(true).truncate(false).write(true).open(path).ctx(|| format!("opening {}", path.display()))?;
    let op = if block { FlockOperation::LockExclusive } else { FlockOperation::NonBlockingLockExclusive };
    match rfs::flock(&f, op) {
        Ok(()) => Ok(Some(f)),
        Err(Errno::WOULDBLOCK) => Ok(None),
        Err(e) => Err(Error::io(format!("locking {}", path.display()), e.into())),
    }
}

fn remove_tree(path: &Path) -> Result<()> {
    match fs::remove_dir_all(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io(format!("removing {}", path.display()), e)),
    }
}

fn unique() -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    format!("{}-{nanos:08x}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed))
}

impl LayerCache {
    /// The cache in `cache_dir/layers`, created if needed; leftovers of killed extractions
    /// are removed.
    pub fn open(cache_dir: &Path) -> Result<LayerCache> {
        let dir = cache_dir.join("layers");
        fs::create_dir_all(&dir).ctx(|| format!("creating {}", dir.display()))?;
        let cache = LayerCache { dir };
        cache.remove_partial()?;
        Ok(cache)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where the layer is (or would be) unpacked.
    pub fn path(&self, diff_id: &Digest) -> Result<PathBuf> {
        Ok(self.dir.join(hex_of(diff_id)?))
    }

    /// The unpacked layer, if it is in the cache.
    pub fn get(&self, diff_id: &Digest) -> Result<Option<PathBuf>> {
        let p = self.path(diff_id)?;
        Ok(p.is_dir().then_some(p))
    }

    /// The unpacked layer, extracting `blob` (plain, gzip or zstd) first if it is not cached
    /// yet. The blob's uncompressed bytes must hash to `diff_id`; if not, nothing is kept and
    /// [`Error::DiffIdMismatch`] is returned. Needs root (whiteouts are device nodes, opaque
    /// markers `trusted.` xattrs).
    pub fn unpack(&self, diff_id: &Digest, blob: impl Read) -> Result<PathBuf> {
        let hex = hex_of(diff_id)?;
        let final_path = self.dir.join(hex);
        if final_path.is_dir() {
            return Ok(final_path);
        }
        // One extraction per layer at a time; whoever waited finds it done.
        let _layer_lock = lock(&self.dir.join(format!(".lock-{hex}")), true)?;
        if final_path.is_dir() {
            return Ok(final_path);
        }
        let tmp = self.dir.join(format!("{TMP_PREFIX}{hex}-{}", unique()));
        let tmp_lock_path = tmp.with_extension("lock");
        let tmp_lock = lock(&tmp_lock_path, true)?;
        let result = self.extract_into(&tmp, &final_path, diff_id, blob);
        if result.is_err() {
            remove_tree(&tmp)?;
        }
        drop(tmp_lock);
        let _ = fs::remove_file(&tmp_lock_path);
        result.map(|()| final_path)
    }

    fn extract_into(&self, tmp: &Path, final_path: &Path, diff_id: &Digest, blob: impl Read) -> Result<()> {
        fs::create_dir(tmp).ctx(|| format!("creating {}", tmp.display()))?;
        // The layer's `/` is 0755 unless its tar says otherwise (a `./` entry), never the
        // caller's umask: the top lower's root becomes the stage's `/`, and under umask 077
        // a RUN as a non-root USER could reach nothing.
        fs::set_permissions(tmp, std::os::unix::fs::PermissionsExt::from_mode(0o755)).ctx(|| format!("chmod {}", tmp.display()))?;
        let opts = ExtractOptions {
            whiteouts: Whiteouts::OverlayMarkers,
            devices: if rustix::process::geteuid().is_root() { DeviceNodes::Create } else { DeviceNodes::Skip },
            expected_diff_id: Some(diff_id.clone()),
        };
        extract(blob, tmp, &opts)?;
        match rfs::renameat_with(rfs::CWD, tmp, rfs::CWD, final_path, RenameFlags::NOREPLACE) {
            Ok(()) => Ok(()),
            // Another process finished the same layer first; its copy is as good as ours.
            Err(Errno::EXIST) | Err(Errno::NOTEMPTY) => remove_tree(tmp),
            Err(e) => Err(Error::io(format!("renaming {} to {}", tmp.display(), final_path.display()), e.into())),
        }
    }

    /// [`LayerCache::unpack`] for a layer blob held in `store`.
    pub fn unpack_from_store(&self, store: &Store, blob: &Digest, diff_id: &Digest) -> Result<PathBuf> {
        if let Some(p) = self.get(diff_id)? {
            return Ok(p);
        }
        let file = store.open_blob(blob)?;
        self.unpack(diff_id, std::io::BufReader::with_capacity(1 << 20, file))
    }

    /// Removes one unpacked layer (the caller makes sure no stage uses it).
    pub fn remove(&self, diff_id: &Digest) -> Result<bool> {
        let p = self.path(diff_id)?;
        let existed = p.exists();
        remove_tree(&p)?;
        Ok(existed)
    }

    /// Removes the unpacked layers `keep` rejects that were extracted before `cutoff` (a
    /// stage being built now may use a younger one). Returns how many went.
    pub fn retain(&self, keep: impl Fn(&Digest) -> bool, cutoff: std::time::SystemTime) -> Result<usize> {
        let mut removed = 0;
        for entry in fs::read_dir(&self.dir).ctx(|| format!("reading {}", self.dir.display()))? {
            let entry = entry.ctx(|| format!("reading {}", self.dir.display()))?;
            let name = entry.file_name();
            let Some(hex) = name.to_str().filter(|n| n.len() == 64 && n.bytes().all(|b| b.is_ascii_hexdigit())) else { continue };
            let Ok(diff_id) = format!("sha256:{hex}").parse::<Digest>() else { continue };
            let old = entry.metadata().and_then(|m| m.modified()).is_ok_and(|m| m <= cutoff);
            if old && !keep(&diff_id) {
                remove_tree(&entry.path())?;
                let _ = fs::remove_file(self.dir.join(format!(".lock-{hex}")));
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// Removes `.tmp-*` directories whose extraction is no longer running.
    pub fn remove_partial(&self) -> Result<usize> {
        let mut removed = 0;
        for entry in fs::read_dir(&self.dir).ctx(|| format!("reading {}", self.dir.display()))? {
            let entry = entry.ctx(|| format!("reading {}", self.dir.display()))?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if !name.starts_with(TMP_PREFIX) || name.ends_with(".lock") {
                continue;
            }
            let tmp = entry.path();
            let lock_path = tmp.with_extension("lock");
            if let Some(held) = lock(&lock_path, false)? {
                remove_tree(&tmp)?;
                drop(held);
                let _ = fs::remove_file(&lock_path);
                removed += 1;
            }
        }
        Ok(removed)
    }
}
