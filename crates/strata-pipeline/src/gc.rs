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

/// What one [`gc`] removed (the field names are `strata gc --json`'s keys; it prints them sorted, as it always has).
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
    /// RPM cache entries (`CACHE/rpms`) not used for longer than the RPM max age.
    pub rpms_removed: usize,
    /// Bytes of those entries and of the partial downloads removed.
    pub rpm_bytes_freed: u64,
    /// Partial downloads of killed runs in `CACHE/rpms/tmp` older than a day.
    pub rpm_partials_removed: usize,
    /// What the RPM cache holds that the cache did not put there (other names, symlinks,
    /// directories): left alone.
    pub rpm_entries_skipped: usize,
}

impl GcReport {
    /// Whether nothing at all was removed.
    pub fn is_empty(&self) -> bool {
        let GcReport { blobs_removed, bytes_freed: _, blobs_kept_young: _, cache_entries_removed, unpacked_layers_removed, upload_records_removed, rpms_removed, rpm_bytes_freed: _, rpm_partials_removed, rpm_entries_skipped: _ } = *self;
        blobs_removed + cache_entries_removed + unpacked_layers_removed + upload_records_removed + rpms_removed + rpm_partials_removed == 0
    }
}

/// How long an RPM cache entry may go unused before a gc removes it, unless told otherwise
/// (`strata gc --rpm-max-age`; the build service's worker always uses this). A month keeps
/// what a fleet rebuilt weekly or after each update uses, and lets go of the versions
/// updates replaced.
pub const DEFAULT_RPM_MAX_AGE: Duration = Duration::from_secs(30 * 24 * 3600);

/// What a [`gc_with`] keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GcOptions {
    /// Unreferenced blobs, unpacked layers and upload records younger than this stay.
    pub grace: Duration,
    /// RPM cache entries used within this stay; zero keeps them all.
    pub rpm_max_age: Duration,
}

impl GcOptions {
    /// `grace`, and the [`DEFAULT_RPM_MAX_AGE`].
    pub fn new(grace: Duration) -> GcOptions {
        GcOptions { grace, rpm_max_age: DEFAULT_RPM_MAX_AGE }
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

    /// The hold `now` (non-blocking) gives, else — after `on_wait`, to say why nothing
    /// happens — the one `blocking` waits for.
    fn wait_for(&self, now: rustix::fs::FlockOperation, blocking: rustix::fs::FlockOperation, on_wait: impl FnOnce()) -> io::Result<Held> {
        if let Some(held) = self.lock(now)? {
            return Ok(held);
        }
        on_wait();
        self.lock(blocking).map(|h| h.expect("a blocking lock is taken or fails"))
    }

    /// A build's hold, at once if no gc runs (`None` means one does: wait with [`build`]).
    ///
    /// [`build`]: Gate::build
    pub fn try_build(&self) -> io::Result<Option<Held>> {
        self.lock(rustix::fs::FlockOperation::NonBlockingLockShared)
    }

    /// A build's hold, waiting for a running gc to end (`on_wait` first, if it must).
    pub fn build_waiting(&self, on_wait: impl FnOnce()) -> io::Result<Held> {
        self.wait_for(rustix::fs::FlockOperation::NonBlockingLockShared, rustix::fs::FlockOperation::LockShared, on_wait)
    }

    /// A build's hold, waiting silently for a running gc to end.
    pub fn build(&self) -> io::Result<Held> {
        self.build_waiting(|| {})
    }

    /// A gc's hold if no build holds the gate.
    pub fn try_gc(&self) -> io::Result<Option<Held>> {
        self.lock(rustix::fs::FlockOperation::NonBlockingLockExclusive)
    }

    /// A gc's hold, waiting for the builds that hold the gate to end (`on_wait` first, if it
    /// must): `strata gc` by hand on a worker's store.
    pub fn gc_waiting(&self, on_wait: impl FnOnce()) -> io::Result<Held> {
        self.wait_for(rustix::fs::FlockOperation::NonBlockingLockExclusive, rustix::fs::FlockOperation::LockExclusive, on_wait)
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
/// image is not tagged yet (reusing a blob renews its age). The RPM cache keeps what was
/// used within [`DEFAULT_RPM_MAX_AGE`] ([`gc_with`] chooses).
pub fn gc(store: &Store, cache_dir: &Path, grace: Duration) -> Result<GcReport> {
    gc_with(store, cache_dir, &GcOptions::new(grace))
}

/// [`gc`], and then the RPM cache `cache_dir/rpms`: the entries not used within
/// `opts.rpm_max_age` and the partial downloads of killed runs (strata-fetch's `prune`,
/// which says why a compose running meanwhile is safe).
pub fn gc_with(store: &Store, cache_dir: &Path, opts: &GcOptions) -> Result<GcReport> {
    let grace = opts.grace;
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
    // Last: nothing above depends on it, and no image or cache entry names an RPM.
    let rpms = crate::fetch::rpm_cache_dir(cache_dir);
    let pruned = strata_fetch::prune(&rpms, opts.rpm_max_age, SystemTime::now()).map_err(|source| crate::Error::PruneRpms { path: rpms.clone(), source })?;
    Ok(GcReport {
        blobs_removed: removed.blobs_removed,
        bytes_freed: removed.bytes_freed,
        blobs_kept_young: removed.blobs_kept_young,
        cache_entries_removed: entries,
        unpacked_layers_removed: unpacked,
        upload_records_removed: uploads,
        rpms_removed: pruned.removed,
        rpm_bytes_freed: pruned.bytes_freed,
        rpm_partials_removed: pruned.partials_removed,
        rpm_entries_skipped: pruned.skipped,
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

    /// A link planted where the gate's lock file goes is not followed: locking fails (a
    /// gc does not run, a build goes on unlocked) and the link's target is left untouched.
    #[test]
    fn a_link_in_place_of_the_gate_is_not_followed() {
        let d = tempfile::tempdir().unwrap();
        let store = d.path().join("store");
        std::fs::create_dir_all(store.join("strata")).unwrap();
        let outside = d.path().join("outside");
        std::fs::write(&outside, b"keep").unwrap();
        let gate = Gate::new(&store);
        std::os::unix::fs::symlink(&outside, gate.path()).unwrap();
        assert!(gate.try_gc().is_err());
        assert!(gate.try_build().is_err());
        assert!(gate.gc_waiting(|| panic!("nothing to wait for")).is_err());
        assert_eq!(std::fs::read(&outside).unwrap(), b"keep");
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

    const DAY: Duration = Duration::from_secs(24 * 3600);

    /// Sets `path`'s mtime `ago` back, as if it had last been used then.
    fn age(path: &Path, ago: Duration) {
        let f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
        f.set_modified(SystemTime::now() - ago).unwrap();
    }

    fn file(path: &Path, len: usize, ago: Duration) -> PathBuf {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, vec![7u8; len]).unwrap();
        age(path, ago);
        path.to_path_buf()
    }

    fn hex(c: char, n: usize) -> String {
        std::iter::repeat_n(c, n).collect()
    }

    fn rpm_gc(store: &Store, cache: &Path, rpm_max_age: Duration) -> GcReport {
        gc_with(store, cache, &GcOptions { grace: Duration::from_secs(3600), rpm_max_age }).unwrap()
    }

    #[test]
    fn rpm_entries_unused_past_the_max_age_go_and_nothing_else_in_the_cache_does() {
        let d = tempfile::tempdir().unwrap();
        let store = Store::open_or_create(d.path().join("store")).unwrap();
        let cache = d.path().join("cache");
        let rpms = cache.join("rpms");
        let old = file(&rpms.join("sha256").join(hex('a', 64)), 1000, 40 * DAY);
        let young = file(&rpms.join("sha256").join(hex('b', 64)), 10, 5 * DAY);
        let old_sha1 = file(&rpms.join("sha1").join(hex('e', 40)), 20, 31 * DAY);
        // Not the cache's own: old, but left alone and counted.
        let odd = [
            file(&rpms.join("sha256").join("not-a-checksum"), 1, 40 * DAY),
            file(&rpms.join("sha256").join(hex('a', 63)), 1, 40 * DAY),
            file(&rpms.join("sha256").join(hex('A', 64)), 1, 40 * DAY),
            file(&rpms.join("sha1").join(hex('a', 64)), 1, 40 * DAY),
            file(&rpms.join("md5").join(hex('a', 32)), 1, 40 * DAY),
            file(&rpms.join("README"), 1, 40 * DAY),
        ];
        std::fs::create_dir_all(rpms.join("sha256").join(hex('c', 64))).unwrap();
        // Symlinks into the world outside: an entry's name and a type directory's.
        let outside = d.path().join("outside");
        let target = file(&outside.join(hex('d', 64)), 5, 40 * DAY);
        let target512 = file(&outside.join(hex('f', 128)), 5, 40 * DAY);
        std::os::unix::fs::symlink(&target, rpms.join("sha256").join(hex('d', 64))).unwrap();
        std::os::unix::fs::symlink(&outside, rpms.join("sha512")).unwrap();

        let report = rpm_gc(&store, &cache, 30 * DAY);
        assert_eq!((report.rpms_removed, report.rpm_bytes_freed, report.rpm_partials_removed), (2, 1020, 0), "{report:?}");
        // md5/, README, sha512 -> outside; in sha256/: 3 odd names, a directory, a symlink;
        // in sha1/: a name of sha256's length.
        assert_eq!(report.rpm_entries_skipped, 9, "{report:?}");
        assert!(!report.is_empty());
        assert!(!old.exists() && !old_sha1.exists());
        assert!(young.exists());
        assert!(odd.iter().all(|p| p.exists()), "odd names stay");
        assert!(target.exists() && target512.exists(), "a symlink's target outside the cache survives");
        assert!(std::fs::symlink_metadata(rpms.join("sha256").join(hex('d', 64))).unwrap().file_type().is_symlink());

        // A max age of zero keeps every entry, however old.
        age(&young, 400 * DAY);
        let report = rpm_gc(&store, &cache, Duration::ZERO);
        assert_eq!((report.rpms_removed, report.rpm_entries_skipped), (0, 9), "{report:?}");
        assert!(young.exists());
    }

    #[test]
    fn partial_downloads_of_killed_runs_go_after_a_day_unless_a_download_holds_them() {
        let d = tempfile::tempdir().unwrap();
        let store = Store::open_or_create(d.path().join("store")).unwrap();
        let cache = d.path().join("cache");
        let tmp = cache.join("rpms").join("tmp");
        let killed = file(&tmp.join("0123456789abcdef.4242.7.part"), 300, 2 * DAY);
        let recent = file(&tmp.join("0123456789abcdef.4242.8.part"), 30, Duration::from_secs(3600));
        let held = file(&tmp.join("fedcba9876543210.99.1.part"), 30, 2 * DAY);
        let odd = file(&tmp.join("notes.txt"), 3, 2 * DAY);
        let lock = std::fs::File::open(&held).unwrap();
        rustix::fs::flock(&lock, rustix::fs::FlockOperation::NonBlockingLockExclusive).unwrap();

        // Partials go whatever the entries' max age (zero keeps only entries).
        let report = rpm_gc(&store, &cache, Duration::ZERO);
        assert_eq!((report.rpm_partials_removed, report.rpm_bytes_freed, report.rpm_entries_skipped), (1, 300, 1), "{report:?}");
        assert!(!killed.exists());
        assert!(recent.exists() && held.exists() && odd.exists());
        drop(lock);
        assert_eq!(rpm_gc(&store, &cache, Duration::ZERO).rpm_partials_removed, 1, "let go of, it is a leftover");
        assert!(!held.exists());
    }

    #[test]
    fn a_cache_hit_renews_the_entry_so_gc_ages_by_last_use() {
        let d = tempfile::tempdir().unwrap();
        let store = Store::open_or_create(d.path().join("store")).unwrap();
        let cache = d.path().join("cache");
        let source = d.path().join("p-1-1.noarch.rpm");
        let bytes = b"a package, as far as the cache's sums can tell".to_vec();
        std::fs::write(&source, &bytes).unwrap();
        let job = strata_fetch::FetchJob {
            name: "p-1-1.noarch".into(),
            repo: "local".into(),
            url: source.display().to_string(),
            checksum: strata_lock::Checksum { kind: "sha256".into(), value: strata_oci::sha256_hex_of(&bytes).digest().to_string() },
            size: bytes.len() as u64,
            gpg_keys: None,
        };
        let rpm_cache = strata_fetch::RpmCache::open(crate::fetch::rpm_cache_dir(&cache)).unwrap();
        let fetch = || rpm_cache.fetch_all(std::slice::from_ref(&job), &strata_fetch::FetchOptions::default(), &strata_fetch::NoProgress).unwrap().remove(0);
        let entry = fetch();
        let used_ago = || std::fs::metadata(&entry).unwrap().modified().unwrap().elapsed().unwrap_or_default();

        // Downloaded 40 days ago and used now: it stays.
        age(&entry, 40 * DAY);
        assert_eq!(fetch(), entry);
        assert!(used_ago() < Duration::from_secs(60), "a hit touches the entry: {:?}", used_ago());
        assert_eq!(rpm_gc(&store, &cache, 30 * DAY).rpms_removed, 0);
        assert!(entry.exists());

        // Not used for 40 days: it goes, and the next compose fetches it again.
        age(&entry, 40 * DAY);
        let report = rpm_gc(&store, &cache, 30 * DAY);
        assert_eq!((report.rpms_removed, report.rpm_bytes_freed), (1, bytes.len() as u64), "{report:?}");
        assert!(!entry.exists());
        assert_eq!(fetch(), entry);
        assert_eq!(std::fs::read(&entry).unwrap(), bytes);
    }
}
