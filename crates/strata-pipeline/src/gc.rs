//! Garbage collection of an image store and the caches beside it: what `strata gc` does
//! and what the build service's worker does between builds. Every compose or build
//! re-tags its images, so the previous build's manifests, configs and layers lose their
//! last reference; this removes them and everything that named them.

use crate::Result;
use serde::Serialize;
use std::collections::BTreeSet;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};
use strata_oci::store::Store;

/// What one [`gc`] removed (the field names are `strata gc --json`'s keys, in its order).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct GcReport {
    pub blobs_removed: usize,
    pub bytes_freed: u64,
    /// Unreferenced blobs spared because they are younger than the grace period.
    pub blobs_kept_young: usize,
    /// Layer-cache, step-cache, compose-record and build-record entries naming blobs that
    /// are gone.
    pub cache_entries_removed: usize,
    /// Unpacked build layers (`CACHE/build/layers`) of no tagged image.
    pub unpacked_layers_removed: usize,
    /// Upload records of killed pushes not touched within the grace period.
    pub upload_records_removed: usize,
}

impl GcReport {
    /// Whether nothing at all was removed.
    pub fn is_empty(&self) -> bool {
        let GcReport { blobs_removed, bytes_freed: _, blobs_kept_young: _, cache_entries_removed, unpacked_layers_removed, upload_records_removed } = *self;
        blobs_removed + cache_entries_removed + unpacked_layers_removed + upload_records_removed == 0
    }
}

/// The lock the build service's builds hold shared and a gc exclusively:
/// `STORE/strata/worker-builds.lock`. A build's blobs are unreferenced until its last step
/// tags them, and a build may run longer than any grace period worth having, so the grace
/// alone cannot keep a gc off them (strata-worker's `gc.rs` says more).
#[derive(Debug, Clone)]
pub struct Gate {
    path: PathBuf,
}

/// A hold on the gate; released when dropped (the file is closed).
#[derive(Debug)]
pub struct Held(#[allow(dead_code)] File);

impl Gate {
    pub fn new(store: &Path) -> Gate {
        Gate { path: store.join("strata").join("worker-builds.lock") }
    }

    fn open(&self) -> io::Result<File> {
        use std::os::unix::fs::OpenOptionsExt;
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        // Each hold opens the file anew: flock locks belong to the open file, so two
        // holds in one process exclude each other as two processes' do.
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
            .open(&self.path)
    }

    fn lock(&self, op: rustix::fs::FlockOperation) -> io::Result<Option<Held>> {
        use std::os::fd::AsFd;
        let file = self.open()?;
        loop {
            return match rustix::fs::flock(file.as_fd(), op) {
                Ok(()) => Ok(Some(Held(file))),
                Err(rustix::io::Errno::INTR) => continue,
                Err(rustix::io::Errno::WOULDBLOCK) => Ok(None),
                Err(e) => Err(e.into()),
            };
        }
    }

    /// A build's hold, at once if no gc runs (`None` means one does: wait with [`build`]).
    ///
    /// [`build`]: Gate::build
    pub fn try_build(&self) -> io::Result<Option<Held>> {
        self.lock(rustix::fs::FlockOperation::NonBlockingLockShared)
    }

    /// A build's hold, waiting for a running gc to end.
    pub fn build(&self) -> io::Result<Held> {
        self.lock(rustix::fs::FlockOperation::LockShared).map(|h| h.expect("a blocking lock is taken or fails"))
    }

    /// A gc's hold if no build holds the gate.
    pub fn try_gc(&self) -> io::Result<Option<Held>> {
        self.lock(rustix::fs::FlockOperation::NonBlockingLockExclusive)
    }

    /// A gc's hold, waiting for the builds that hold the gate to end (`strata gc` by hand on
    /// a worker's store).
    pub fn gc(&self) -> io::Result<Held> {
        self.lock(rustix::fs::FlockOperation::LockExclusive).map(|h| h.expect("a blocking lock is taken or fails"))
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Removes what no tagged image needs: unreachable blobs, then the layer-cache, step-cache
/// and record entries that named them, then the unpacked build layers under
/// `cache_dir/build/layers` of no tagged image, and the upload records of killed pushes.
/// Anything younger than `grace` stays: a build running now may have written blobs whose
/// image is not tagged yet (reusing a blob renews its age).
pub fn gc(store: &Store, cache_dir: &Path, grace: Duration) -> Result<GcReport> {
    let removed = store.gc(grace)?;
    // Entries first: the blobs they name are gone now, and a cache hit on a vanished blob
    // would fail the next build.
    let entries = strata_compose::prune_metadata(store)? + strata_build::prune_metadata(store)?;
    let mut live = BTreeSet::new();
    for entry in store.list()? {
        live.extend(store.load_manifest(entry.manifest.digest())?.config.rootfs().diff_ids().iter().cloned());
    }
    let cutoff = SystemTime::now().checked_sub(grace).unwrap_or(SystemTime::UNIX_EPOCH);
    // Records of killed pushes whose blob was never pushed again.
    let uploads = strata_registry::prune_upload_records(store, cutoff).map_err(|source| crate::Error::PruneUploads { source })?;
    let build = cache_dir.join("build");
    let unpacked = if build.join("layers").is_dir() {
        strata_rootfs::LayerCache::open(&build)?.retain(|d| live.contains(&d.to_string()), cutoff)?
    } else {
        0
    };
    Ok(GcReport {
        blobs_removed: removed.blobs_removed,
        bytes_freed: removed.bytes_freed,
        blobs_kept_young: removed.blobs_kept_young,
        cache_entries_removed: entries,
        unpacked_layers_removed: unpacked,
        upload_records_removed: uploads,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use strata_oci::config::{build_config, ConfigInput, ImageSettings};
    use strata_oci::layer::{Meta, WriteOptions};
    use strata_oci::reference::ImageRef;
    use strata_oci::store::NewImage;

    fn image(store: &Store, content: &[u8], tag: &str) -> strata_oci::oci_spec::image::Descriptor {
        let mut b = store.new_layer();
        b.add_file("etc/x", &Meta::new(0o644), content.len() as u64, content).unwrap();
        let layer = store.put_layer(b, WriteOptions::default()).unwrap();
        let input = ConfigInput { architecture: "amd64".into(), os: "linux".into(), variant: None, created: Some(0), history: Vec::new(), diff_ids: vec![layer.diff_id.clone()] };
        let img = NewImage { config: build_config(&ImageSettings::default(), &input).unwrap(), layers: vec![layer.descriptor()], annotations: Default::default() };
        store.put_image(&img, &[ImageRef::parse(tag).unwrap()]).unwrap()
    }

    #[test]
    fn a_retagged_image_leaves_the_old_one_to_gc_and_the_grace_spares_the_young() {
        let d = tempfile::tempdir().unwrap();
        let store = Store::open_or_create(d.path().join("store")).unwrap();
        let cache = d.path().join("cache");
        let old = image(&store, b"one", "app:latest");
        let new = image(&store, b"two", "app:latest");
        assert_ne!(old.digest(), new.digest());
        // All three blobs of the old image are unreferenced but young.
        let spared = gc(&store, &cache, Duration::from_secs(3600)).unwrap();
        assert_eq!((spared.blobs_removed, spared.blobs_kept_young), (0, 3), "{spared:?}");
        assert!(spared.is_empty());
        assert!(store.has_blob(old.digest()));
        let report = gc(&store, &cache, Duration::ZERO).unwrap();
        assert_eq!(report.blobs_removed, 3, "{report:?}");
        assert!(report.bytes_freed > 0 && !report.is_empty());
        assert!(!store.has_blob(old.digest()));
        let kept = store.resolve("app:latest").unwrap();
        assert_eq!(kept.manifest_descriptor.digest(), new.digest());
        assert!(kept.manifest.layers().iter().all(|l| store.has_blob(l.digest())));
        assert_eq!(gc(&store, &cache, Duration::ZERO).unwrap(), GcReport::default(), "a second gc finds nothing");
    }
}
