//! [`compose_image`]'s second chance: a cached RPM damaged after it was verified fails the
//! first attempt, is fetched again through [`RpmLocator::recheck`], and the image comes out
//! exactly as from an undamaged cache; an intact cache leaves the first error standing.

use crate::{compose_image, ComposeOptions, ImageJob, LayerCache, RpmLocator, StagingArea};
use sha2::{Digest as _, Sha256};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use strata_lock::{Checksum, LockedImage, LockedPackage, Lockfile};
use strata_oci::compress::Compression;
use strata_oci::store::Store;

/// A small corpus package without scriptlets (gzip payload).
fn corpus_rpm() -> PathBuf {
    let dir = strata_corpus::repo("base").join("Packages");
    let found = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("corpus missing at {}: {e}", dir.display())).map(|e| e.unwrap().path()).find(|p| p.file_name().unwrap().to_string_lossy().starts_with("libatomic1-"));
    found.unwrap_or_else(|| panic!("no libatomic1 rpm in {}", dir.display()))
}

/// Serves `current`, and on recheck puts `good` back in its place when `repairs` says so.
struct Cache {
    current: PathBuf,
    good: PathBuf,
    repairs: bool,
    rechecks: Mutex<usize>,
}

impl RpmLocator for Cache {
    fn locate(&self, _: &LockedPackage) -> Result<PathBuf, String> {
        Ok(self.current.clone())
    }
    fn recheck(&self, _: &LockedPackage) -> Result<bool, String> {
        *self.rechecks.lock().unwrap() += 1;
        let damaged = std::fs::read(&self.current).unwrap() != std::fs::read(&self.good).unwrap();
        if damaged && self.repairs {
            std::fs::copy(&self.good, &self.current).unwrap();
        }
        Ok(damaged && self.repairs)
    }
}

fn compose(rpm: &Path, cache: &Cache, work: &Path) -> Result<String, crate::Error> {
    let bytes = std::fs::read(rpm).unwrap();
    let pkg = strata_package::Package::open(rpm).unwrap();
    let h = pkg.header();
    let s = |t| h.string(t).unwrap_or_default();
    use strata_rpmdb::header::tag;
    let locked = LockedPackage {
        name: s(tag::NAME),
        epoch: 0,
        version: s(tag::VERSION),
        release: s(tag::RELEASE),
        arch: s(tag::ARCH),
        repo: "base".into(),
        location: "Packages/x.rpm".into(),
        checksum: Checksum { kind: "sha256".into(), value: hex::encode(Sha256::digest(&bytes)) },
        size: bytes.len() as u64,
        installed_size: 0,
        sourcerpm: String::new(),
        buildtime: 0,
    };
    let mut lock = Lockfile::new();
    lock.images.insert("app".into(), LockedImage { inputs: String::new(), arch: "x86_64".into(), packages: vec![locked] });
    let plan = lock.checked_plan(&Default::default()).unwrap();
    let spec: strata_spec::ImageSpec = serde_json::from_value(serde_json::json!({"packages": ["x"], "scriptlets": "skip"})).unwrap();
    let store = Store::open_or_create(work.join("store")).unwrap();
    let staging = StagingArea::new(Some(work.join("staging")), None, work.join("staging"));
    let layers = LayerCache::new();
    let opts = ComposeOptions { store: &store, staging: &staging, source_date_epoch: Some(1_700_000_000), runner: None, compression: Compression::default(), threads: 1, force: true, layers: &layers };
    let job = ImageJob { name: "app", spec: &spec, locked: &lock.images["app"], repos: Default::default(), plan: &plan };
    compose_image(&job, cache, &opts).map(|c| c.manifest_digest)
}

fn damaged_copy(good: &Path, dir: &Path) -> PathBuf {
    let mut bytes = std::fs::read(good).unwrap();
    let at = bytes.len() - 200; // inside the compressed payload
    bytes[at] ^= 0x04;
    let path = dir.join("cached.rpm");
    std::fs::write(&path, bytes).unwrap();
    path
}

#[test]
fn a_damaged_cached_rpm_is_fetched_again_and_the_image_retried_once() {
    let good = corpus_rpm();
    let tmp = tempfile::tempdir().unwrap();
    let clean = Cache { current: good.clone(), good: good.clone(), repairs: true, rechecks: Mutex::new(0) };
    let expected = compose(&good, &clean, &tmp.path().join("clean")).unwrap();
    assert_eq!(*clean.rechecks.lock().unwrap(), 0, "a clean compose rechecks nothing");

    let cache = Cache { current: damaged_copy(&good, tmp.path()), good: good.clone(), repairs: true, rechecks: Mutex::new(0) };
    let got = compose(&good, &cache, &tmp.path().join("damaged")).unwrap();
    assert_eq!(got, expected, "the retried image is the clean one");
    assert_eq!(*cache.rechecks.lock().unwrap(), 1);
    assert!(std::fs::read_dir(tmp.path().join("damaged/staging")).unwrap().next().is_none(), "no staging root is left behind");
}

#[test]
fn an_intact_cache_leaves_the_first_error_standing() {
    let good = corpus_rpm();
    let tmp = tempfile::tempdir().unwrap();
    let cache = Cache { current: damaged_copy(&good, tmp.path()), good: good.clone(), repairs: false, rechecks: Mutex::new(0) };
    let err = compose(&good, &cache, &tmp.path().join("w")).unwrap_err().to_string();
    assert!(err.contains("libatomic1"), "the error names the package: {err}");
    assert_eq!(*cache.rechecks.lock().unwrap(), 1, "rechecked once, not retried");
}
