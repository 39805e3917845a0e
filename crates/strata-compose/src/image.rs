//! Composing one image: staging root → rpmdb → layer → config → store.

use crate::config::{annotations, config};
use crate::dbpath::image_dbpath;
use crate::{Error, INPUTS_ANNOTATION};
use sha2::{Digest as _, Sha256};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use strata_install::rootfs::RootFs;
use strata_install::{install, InstallOptions, ScriptRunner};
use strata_lock::{LockedImage, LockedPackage};
use strata_oci::compress::Compression;
use strata_oci::layer::WriteOptions;
use strata_oci::reference::ImageRef;
use strata_oci::store::{NewImage, Store};
use strata_package::Package;
use strata_rpmdb::{write_rpmdb, InstalledPackage};
use strata_spec::{ImageSpec, ScriptletPolicy};

/// Bumped whenever the same inputs would now give a different image, so stored images
/// built by an older strata are rebuilt rather than reused.
const COMPOSE_FORMAT: u32 = 1;

/// Where the RPM file of a locked package is on local disk (the fetch cache).
pub trait RpmLocator: Sync {
    fn locate(&self, pkg: &LockedPackage) -> Result<PathBuf, String>;
}

pub struct ComposeOptions<'a> {
    pub store: &'a Store,
    /// Staging roots are made (and removed) here.
    pub work_dir: PathBuf,
    /// Fixed `created` and upper bound of every timestamp; else the newest package build time.
    pub source_date_epoch: Option<u64>,
    /// The scriptlet sandbox; `None` only when the caller checked that the spec skips them.
    pub runner: Option<&'a dyn ScriptRunner>,
    pub compression: Compression,
    pub threads: usize,
    /// Rebuild even when the stored image has the same inputs.
    pub force: bool,
}

#[derive(Debug, Clone)]
pub struct Composed {
    pub name: String,
    pub reference: String,
    pub manifest_digest: String,
    pub image_id: String,
    pub packages: usize,
    pub layers: usize,
    pub size: u64,
    /// True when the stored image already had these inputs and nothing was built.
    pub reused: bool,
    pub warnings: Vec<String>,
    /// Scriptlet runs and their output.
    pub log: Vec<String>,
}

/// Digest of everything the image is made from.
pub fn inputs_digest(spec: &ImageSpec, locked: &LockedImage, sde: Option<u64>) -> String {
    let packages: Vec<(String, &str, &str)> = locked.packages.iter().map(|p| (p.nevra(), p.checksum.kind.as_str(), p.checksum.value.as_str())).collect();
    let doc = serde_json::json!({"format": COMPOSE_FORMAT, "spec": spec, "arch": locked.arch, "packages": packages, "source_date_epoch": sde});
    format!("sha256:{}", hex::encode(Sha256::digest(doc.to_string().as_bytes())))
}

fn lock_digest(locked: &LockedImage) -> String {
    let text = serde_json::to_string(&locked.packages).unwrap_or_default();
    format!("sha256:{}", hex::encode(Sha256::digest(text.as_bytes())))
}

pub fn compose_image(name: &str, spec: &ImageSpec, locked: &LockedImage, rpms: &dyn RpmLocator, opts: &ComposeOptions<'_>) -> Result<Composed, Error> {
    let fail = |message: String| Error::Image { image: name.to_string(), message };
    let reference = ImageRef::new(name, spec.tag.as_deref().unwrap_or("latest"))?;
    let inputs = inputs_digest(spec, locked, opts.source_date_epoch);
    if !opts.force {
        if let Ok(existing) = opts.store.resolve(&reference.to_string()) {
            let same = existing.manifest.annotations().as_ref().and_then(|a| a.get(INPUTS_ANNOTATION)) == Some(&inputs);
            if same {
                return Ok(Composed {
                    name: name.into(),
                    reference: reference.to_string(),
                    manifest_digest: existing.manifest_descriptor.digest().to_string(),
                    image_id: strata_oci::archive::image_id(&existing).to_string(),
                    packages: locked.packages.len(),
                    layers: existing.manifest.layers().len(),
                    size: existing.manifest.layers().iter().map(|l| l.size()).sum(),
                    reused: true,
                    warnings: Vec::new(),
                    log: Vec::new(),
                });
            }
        }
    }

    let packages: Vec<Package> = locked
        .packages
        .iter()
        .map(|p| {
            let path = rpms.locate(p).map_err(|e| fail(format!("{}: {e}", p.nevra())))?;
            Ok(Package::open(&path)?)
        })
        .collect::<Result<_, Error>>()?;
    let created = opts.source_date_epoch.unwrap_or_else(|| packages.iter().map(Package::build_time).max().unwrap_or(0));

    let staging = Staging::new(&opts.work_dir, name)?;
    let root = staging.root();
    let install_opts = InstallOptions { no_docs: spec.docs == Some(false), langs: spec.langs.clone() };
    let runner = if spec.scriptlets == Some(ScriptletPolicy::Skip) { None } else { opts.runner };
    if runner.is_none() && spec.scriptlets != Some(ScriptletPolicy::Skip) {
        return Err(fail("no scriptlet sandbox available; set \"scriptlets\": \"skip\" to build without running scriptlets".into()));
    }
    let t = std::time::Instant::now();
    let mut report = install(root, &packages, &install_opts, runner)?;
    tracing::info!(image = name, secs = t.elapsed().as_secs_f64(), "installed into the staging root");
    for path in crate::normalize::remove_volatile(root)? {
        report.log.push(format!("removed {path} (differs on every run; see strata-compose normalize)"));
    }

    // The rpmdb, in install order, with fixed install time.
    let installed: Vec<InstalledPackage> = report
        .packages
        .iter()
        .map(|ip| {
            let p = &packages[ip.index];
            Ok(InstalledPackage::from_headers(p.main_blob(), Some(p.signature_blob()))?.with_file_states(ip.file_states.clone())?)
        })
        .collect::<Result<_, Error>>()?;
    let dbpath = image_dbpath(root);
    let mut fs = RootFs::open(root)?;
    let dbdir = fs.ensure_dir(&dbpath)?;
    let db_file = PathBuf::from(format!("/proc/self/fd/{}/{}", dbdir.as_raw_fd(), strata_rpmdb::DB_FILE));
    write_rpmdb(&db_file, &installed, &strata_rpmdb::InstallOptions::at(created.min(u64::from(u32::MAX)) as u32))?;
    drop(dbdir);

    // One layer of the whole root. Package files keep rpm's times; anything newer (made by
    // scriptlets now) is clamped to `created`, so the tar does not depend on the clock.
    let placed = &report.placed;
    let mtimes = |rel: &[u8], is_dir: bool, disk: i64| -> u64 {
        if is_dir {
            let key = format!("/{}", String::from_utf8_lossy(rel));
            return placed.get(&key).map_or(created, |p| u64::from(p.mtime).min(created));
        }
        if disk >= 0 && (disk as u64) <= created { disk as u64 } else { created }
    };
    let t = std::time::Instant::now();
    let mut layer = opts.store.new_layer();
    layer.set_default_mtime(created);
    layer.add_tree(root, &mtimes, &|_| false)?;
    let info = opts.store.put_layer(layer, WriteOptions { compression: opts.compression, threads: opts.threads })?;
    tracing::info!(image = name, secs = t.elapsed().as_secs_f64(), bytes = info.size, "layer written");

    let history = vec![format!("strata compose: {} packages ({})", locked.packages.len(), name)];
    let cfg = config(spec, &lock_digest(locked), &locked.arch, created, vec![info.diff_id.clone()], history)?;
    let image = NewImage { config: cfg, layers: vec![info.descriptor()], annotations: annotations(spec, name, created, &inputs) };
    let manifest = opts.store.put_image(&image, std::slice::from_ref(&reference))?;
    let resolved = opts.store.resolve(&reference.to_string())?;
    Ok(Composed {
        name: name.into(),
        reference: reference.to_string(),
        manifest_digest: manifest.digest().to_string(),
        image_id: strata_oci::archive::image_id(&resolved).to_string(),
        packages: packages.len(),
        layers: 1,
        size: info.size,
        reused: false,
        warnings: report.warnings,
        log: report.log,
    })
}

/// A staging root under the work dir, removed when dropped. Its lock file is taken before
/// the directory exists, so [`remove_stale_staging`] never mistakes a starting build for a
/// dead one.
struct Staging {
    dir: PathBuf,
    root: PathBuf,
    lock: Option<tempfile::NamedTempFile>,
}

impl Staging {
    fn new(work: &Path, name: &str) -> Result<Staging, Error> {
        std::fs::create_dir_all(work)?;
        let lock = tempfile::Builder::new().prefix(&format!(".staging-{name}-")).suffix(".lock").tempfile_in(work)?;
        flock(lock.as_file(), false)?;
        let lock_name = lock.path().to_string_lossy().into_owned();
        let dir = PathBuf::from(lock_name.strip_suffix(".lock").unwrap_or(&lock_name));
        std::fs::create_dir(&dir)?;
        let root = dir.join("root");
        std::fs::create_dir(&root)?;
        Ok(Staging { dir, root, lock: Some(lock) })
    }

    fn root(&self) -> &Path {
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
