//! Composing one image: staging root → rpmdb → package layers (cached) → top layer →
//! config → store → record.

use crate::cache::LayerCache;
use crate::config::{annotations, config};
use crate::dbpath::image_dbpath;
use crate::pkglayer::{self, PackageLayer};
use crate::record::{ComposeRecord, Previous, RecordLayer, RECORD_KIND};
use crate::staging::Staging;
use crate::staging_place::{estimate, StagingArea};
use crate::top::{top_layer, TopInput};
use crate::{Error, INPUTS_ANNOTATION};
use sha2::{Digest as _, Sha256};
use std::collections::BTreeMap;
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use strata_install::rootfs::RootFs;
use strata_install::{install, InstallOptions, ScriptRunner};
use strata_layers::Plan;
use strata_lock::{LockedImage, LockedPackage, LockedRepo};
use strata_oci::compress::Compression;
use strata_oci::layer::{LayerInfo, WriteOptions};
use strata_oci::reference::ImageRef;
use strata_oci::store::{NewImage, ResolvedImage, Store};
use strata_package::Package;
use strata_rpmdb::{write_rpmdb, InstalledPackage};
use strata_spec::{ImageSpec, ScriptletPolicy};

/// Bumped whenever the same inputs would now give a different image, so stored images
/// built by an older strata are rebuilt rather than reused.
const COMPOSE_FORMAT: u32 = 2;

/// Where the RPM file of a locked package is on local disk (the fetch cache).
pub trait RpmLocator: Sync {
    fn locate(&self, pkg: &LockedPackage) -> Result<PathBuf, String>;

    /// Called when a file in `pkg`'s payload did not match its header digest: check the
    /// local file against the lock's checksum again and, if it no longer matches, evict it
    /// and fetch it again. `Ok(true)` when it was replaced (the image is then composed once
    /// more), `Ok(false)` when it matches (the package itself is corrupt).
    fn recheck(&self, pkg: &LockedPackage) -> Result<bool, String> {
        let _ = pkg;
        Ok(false)
    }
}

pub struct ComposeOptions<'a> {
    pub store: &'a Store,
    /// Where staging roots are made (and removed): tmpfs or disk, chosen per image.
    pub staging: &'a StagingArea,
    /// Fixed `created` and upper bound of every timestamp; else the newest package build time.
    pub source_date_epoch: Option<u64>,
    /// The scriptlet sandbox; `None` only when the caller checked that the spec skips them.
    pub runner: Option<&'a dyn ScriptRunner>,
    pub compression: Compression,
    pub threads: usize,
    /// Rebuild even when the stored image has the same inputs.
    pub force: bool,
    /// Layers already built in this run or recorded in the store.
    pub layers: &'a LayerCache,
}

/// One image to compose: its spec entry, lock entry, the repos its packages come from and
/// the fleet's layer plan.
pub struct ImageJob<'a> {
    pub name: &'a str,
    pub spec: &'a ImageSpec,
    pub locked: &'a LockedImage,
    pub repos: BTreeMap<String, LockedRepo>,
    pub plan: &'a Plan,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComposedLayer {
    pub id: String,
    pub packages: usize,
    pub digest: String,
    pub size: u64,
    pub reused: bool,
}

#[derive(Debug, Clone)]
pub struct Composed {
    pub name: String,
    pub reference: String,
    pub manifest_digest: String,
    pub image_id: String,
    pub packages: usize,
    pub layers: Vec<ComposedLayer>,
    pub size: u64,
    /// True when the stored image already had these inputs and nothing was built.
    pub reused: bool,
    pub warnings: Vec<String>,
    /// Scriptlet runs and their output.
    pub log: Vec<String>,
}

impl ImageJob<'_> {
    pub fn reference(&self) -> Result<ImageRef, Error> {
        Ok(ImageRef::new(self.name, self.spec.tag.as_deref().unwrap_or("latest"))?)
    }

    /// Digest of everything the image is made from: spec entry, lock entry, its part of the
    /// layer plan, strata's version and the build options that change bytes.
    pub fn inputs(&self, sde: Option<u64>, compression: Compression) -> String {
        let packages: Vec<(String, &str, &str)> = self.locked.packages.iter().map(|p| (p.nevra(), p.checksum.kind.as_str(), p.checksum.value.as_str())).collect();
        let doc = serde_json::json!({
            "format": COMPOSE_FORMAT,
            "strata": env!("CARGO_PKG_VERSION"),
            "spec": self.spec,
            "arch": self.locked.arch,
            "packages": packages,
            "layers": self.plan.image_fingerprint(self.name),
            "source_date_epoch": sde,
            "compression": format!("{compression:?}"),
        });
        format!("sha256:{}", hex::encode(Sha256::digest(doc.to_string().as_bytes())))
    }

    /// The stored image, if it was built from exactly these inputs.
    pub fn current(&self, store: &Store, inputs: &str) -> Result<Option<Composed>, Error> {
        let reference = self.reference()?;
        let Ok(existing) = store.resolve(&reference.to_string()) else { return Ok(None) };
        if existing.manifest.annotations().as_ref().and_then(|a| a.get(INPUTS_ANNOTATION)).map(String::as_str) != Some(inputs) {
            return Ok(None);
        }
        let record = ComposeRecord::read(store, existing.manifest_descriptor.digest().as_ref())?;
        let layers = match record {
            Some(r) => r.layers.iter().map(|l| ComposedLayer { id: l.id.clone(), packages: l.packages.len(), digest: l.digest.clone(), size: l.size, reused: true }).collect(),
            None => existing.manifest.layers().iter().map(|l| ComposedLayer { id: String::new(), packages: 0, digest: l.digest().to_string(), size: l.size(), reused: true }).collect(),
        };
        Ok(Some(Composed {
            name: self.name.into(),
            reference: reference.to_string(),
            manifest_digest: existing.manifest_descriptor.digest().to_string(),
            image_id: strata_oci::archive::image_id(&existing).to_string(),
            packages: self.locked.packages.len(),
            size: existing.manifest.layers().iter().map(|l| l.size()).sum(),
            layers,
            reused: true,
            warnings: Vec::new(),
            log: Vec::new(),
        }))
    }
}

fn lock_digest(locked: &LockedImage) -> String {
    let text = serde_json::to_string(&locked.packages).unwrap_or_default();
    format!("sha256:{}", hex::encode(Sha256::digest(text.as_bytes())))
}

/// Composes one image. When that fails — a file not matching its header digest, a payload
/// that does not decompress, or any other error — every package's cached file is checked
/// against the lock's checksum again ([`RpmLocator::recheck`]): if one was damaged, it has
/// been fetched again and the image is composed once more from a fresh staging root.
/// Otherwise the first error stands (for a digest mismatch, saying the package itself is
/// corrupt). Rechecking hashes the image's RPMs, which only a failure pays for.
pub fn compose_image(job: &ImageJob<'_>, rpms: &dyn RpmLocator, opts: &ComposeOptions<'_>) -> Result<Composed, Error> {
    let first = match compose_once(job, rpms, opts) {
        Err(e) => e,
        done => return done,
    };
    let fail = Error::Corrupt;
    let mut replaced = Vec::new();
    for p in &job.locked.packages {
        match rpms.recheck(p) {
            Ok(true) => replaced.push(p.nevra()),
            Ok(false) => {}
            Err(e) => return Err(fail(format!("{first}\nThe cached RPM of {} was damaged, and fetching it again failed: {e}", p.nevra()))),
        }
    }
    if !replaced.is_empty() {
        tracing::warn!(image = job.name, "{first}; the cached RPM of {} was damaged and has been fetched again; composing the image once more", replaced.join(", "));
        return compose_once(job, rpms, opts);
    }
    match first {
        Error::Digest { .. } => Err(fail(format!("{first}\nThe cached RPM matches the lock's checksum, so the package is corrupt as its repository serves it; rpm would refuse it too.\nhint: rebuild or replace the package in the repository"))),
        other => Err(other),
    }
}

fn compose_once(job: &ImageJob<'_>, rpms: &dyn RpmLocator, opts: &ComposeOptions<'_>) -> Result<Composed, Error> {
    let name = job.name;
    let (spec, locked) = (job.spec, job.locked);
    let fail = |message: String| Error::Image { image: name.to_string(), message };
    let reference = job.reference()?;
    let inputs = job.inputs(opts.source_date_epoch, opts.compression);
    if !opts.force {
        if let Some(done) = job.current(opts.store, &inputs)? {
            return Ok(done);
        }
    }
    let previous = opts.store.resolve(&reference.to_string()).ok();

    let packages: Vec<Package> = locked
        .packages
        .iter()
        .map(|p| {
            let path = rpms.locate(p).map_err(|e| fail(format!("{}: {e}", p.nevra())))?;
            Ok(Package::open(&path)?)
        })
        .collect::<Result<_, Error>>()?;
    let created = opts.source_date_epoch.unwrap_or_else(|| packages.iter().map(Package::build_time).max().unwrap_or(0));

    // Room is checked (and reserved) before anything is extracted.
    let place = opts.staging.reserve(name, estimate(&packages)?)?;
    let staging = Staging::new(&place.dir, name)?;
    let root = staging.root();
    let install_opts = InstallOptions { no_docs: spec.docs == Some(false), langs: spec.langs.clone() };
    let runner = if spec.scriptlets == Some(ScriptletPolicy::Skip) { None } else { opts.runner };
    if runner.is_none() && spec.scriptlets != Some(ScriptletPolicy::Skip) {
        return Err(fail("no scriptlet sandbox available; set \"scriptlets\": \"skip\" to build without running scriptlets".into()));
    }
    let t = std::time::Instant::now();
    let mut report = install(root, &packages, &install_opts, runner).map_err(|e| match e {
        strata_install::Error::Digest { package, index, mismatch } => Error::Digest { package, index, mismatch },
        other => other.into(),
    })?;
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

    // Package layers, as the plan groups this image's packages.
    let t = std::time::Instant::now();
    let checksums: Vec<String> = locked.packages.iter().map(|p| format!("{}:{}", p.checksum.kind, p.checksum.value)).collect();
    let by_key: BTreeMap<String, Vec<usize>> = locked.packages.iter().enumerate().fold(BTreeMap::new(), |mut m, (i, p)| {
        m.entry(format!("{}.{}", p.name, p.arch)).or_insert_with(Vec::new).push(i);
        m
    });
    let mut planned: Vec<PackageLayer> = Vec::new();
    for l in job.plan.layers_for(name) {
        let mut members = Vec::new();
        for key in &l.packages {
            members.extend(by_key.get(key).ok_or_else(|| fail(format!("the lock's layer plan puts {key} in layer {}, but the image has no such package; run `strata resolve`", l.id)))?);
        }
        planned.push(pkglayer::contents(&l.id, &members, &packages, &checksums, &report, opts.source_date_epoch, opts.compression)?);
    }
    let write = WriteOptions { compression: opts.compression, threads: opts.threads };
    let mut infos: Vec<(LayerInfo, bool)> = Vec::new();
    for layer in &planned {
        let built = opts.layers.get_or_build(opts.store, &layer.key, || {
            let mut b = opts.store.new_layer();
            pkglayer::build(layer, root, &packages, &report, &mut b)?;
            Ok(opts.store.put_layer(b, write)?)
        })?;
        infos.push(built);
    }
    let mut top = opts.store.new_layer();
    top_layer(&TopInput { root, layers: &planned, report: &report, created }, &mut top)?;
    let top_info = opts.store.put_layer(top, write)?;
    tracing::info!(image = name, secs = t.elapsed().as_secs_f64(), layers = planned.len() + 1, reused = infos.iter().filter(|i| i.1).count(), "layers written");

    let mut history: Vec<String> = planned
        .iter()
        .map(|l| {
            let mut nevras: Vec<String> = l.packages.iter().map(|&i| locked.packages[i].nevra()).collect();
            nevras.sort();
            format!("strata compose: layer {}: {}", l.id, nevras.join(" "))
        })
        .collect();
    history.push(format!("strata compose: {name}: rpmdb, scriptlet output and unowned files ({} packages)", locked.packages.len()));
    let mut diff_ids: Vec<_> = infos.iter().map(|(i, _)| i.diff_id.clone()).collect();
    diff_ids.push(top_info.diff_id.clone());
    let cfg = config(spec, &lock_digest(locked), &inputs, &locked.arch, created, diff_ids, history)?;
    let mut descriptors: Vec<_> = infos.iter().map(|(i, _)| i.descriptor()).collect();
    descriptors.push(top_info.descriptor());
    let image = NewImage { config: cfg, layers: descriptors, annotations: annotations(spec, name, created, &inputs) };
    // The record first: an image that is tagged always has one.
    let staged = opts.store.stage_image(&image)?;
    let mut layers: Vec<RecordLayer> = planned
        .iter()
        .zip(&infos)
        .map(|(l, (info, reused))| RecordLayer {
            id: l.id.clone(),
            packages: l.packages.iter().map(|&i| locked.packages[i].nevra()).collect(),
            digest: info.digest.to_string(),
            diff_id: info.diff_id.to_string(),
            size: info.size,
            reused: *reused,
        })
        .collect();
    layers.push(RecordLayer { id: "top".into(), packages: Vec::new(), digest: top_info.digest.to_string(), diff_id: top_info.diff_id.to_string(), size: top_info.size, reused: false });
    let record = ComposeRecord {
        kind: RECORD_KIND.into(),
        image: name.into(),
        reference: reference.to_string(),
        inputs: inputs.clone(),
        manifest: staged.manifest.digest().to_string(),
        manifest_size: staged.manifest.size(),
        config: staged.config.digest().to_string(),
        config_size: staged.config.size(),
        created,
        strata_version: env!("CARGO_PKG_VERSION").into(),
        spec: spec.clone(),
        lock: locked.clone(),
        repos: job.repos.clone(),
        layers: layers.clone(),
        previous: previous.as_ref().filter(|p| p.manifest_descriptor.digest() != staged.manifest.digest()).map(previous_of).or_else(|| {
            // Rebuilt to the same manifest (--force): keep what the record said before.
            previous.as_ref().and_then(|p| ComposeRecord::read(opts.store, p.manifest_descriptor.digest().as_ref()).ok().flatten()).and_then(|r| r.previous)
        }),
    };
    record.write(opts.store)?;
    opts.store.tag_staged(&staged, std::slice::from_ref(&reference))?;
    let resolved = opts.store.resolve(&reference.to_string())?;
    Ok(Composed {
        name: name.into(),
        reference: reference.to_string(),
        manifest_digest: staged.manifest.digest().to_string(),
        image_id: strata_oci::archive::image_id(&resolved).to_string(),
        packages: packages.len(),
        size: layers.iter().map(|l| l.size).sum(),
        layers: layers.into_iter().map(|l| ComposedLayer { id: l.id, packages: l.packages.len(), digest: l.digest, size: l.size, reused: l.reused }).collect(),
        reused: false,
        warnings: report.warnings,
        log: report.log,
    })
}

fn previous_of(p: &ResolvedImage) -> Previous {
    Previous {
        manifest: p.manifest_descriptor.digest().to_string(),
        manifest_size: p.manifest_descriptor.size(),
        config_size: p.manifest.config().size(),
        layers: p.manifest.layers().iter().map(|l| (l.digest().to_string(), l.size())).collect(),
    }
}
