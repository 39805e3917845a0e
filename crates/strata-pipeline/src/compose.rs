//! Composing a spec's images (`strata compose`): lock (resolve or read as it is), decide
//! what is out of date, fetch, compose those images into the store; and [`check`], which
//! says what would change without building anything.

use crate::error::chain_text;
use crate::report::{reasons, CheckReport, ImageCheck, Report};
use crate::resolve::resolve_into_lock;
use crate::sandbox::SandboxRunner;
use crate::{checked_lock_path, fetch, Cancel, Error, Event, FetchedRpms, Progress, RepoSettings, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use strata_compose::{compose_image, ComposeOptions, Composed, ImageJob, LayerCache, RpmLocator, StagingArea};
use strata_install::{ScriptInvocation, ScriptOutcome, ScriptRunner};
use strata_layers::Plan;
use strata_lock::{inputs_digest, LockedPackage, Lockfile};
use strata_oci::compress::Compression;
use strata_oci::store::Store;
use strata_spec::{RepoEntry, ScriptletPolicy, Spec, Vars};

/// What to compose, from which lock, into which store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ComposeRequest {
    /// The spec (JSON).
    pub spec: PathBuf,
    /// Compose only these images (empty: all).
    pub images: Vec<String>,
    /// Use the lock as it is (no resolve); fail if it does not match the spec.
    pub locked: bool,
    /// Lock file; `None`: `strata.lock` beside the spec (never through a symlink).
    pub lock: Option<PathBuf>,
    /// The image store (an OCI image layout; created when missing).
    pub store: PathBuf,
    /// Rebuild even images whose stored build has the same inputs.
    pub force: bool,
    /// Layer compression; `None`: the spec's, else gzip.
    pub compression: Option<strata_spec::Compression>,
    /// Do not verify RPM signatures, even for repos with gpgcheck on.
    pub nogpgcheck: bool,
    /// Fixed `created` time and upper bound of every timestamp (`SOURCE_DATE_EPOCH`; see
    /// [`source_date_epoch_from_env`](crate::source_date_epoch_from_env)).
    pub source_date_epoch: Option<u64>,
    /// Also compute the layers-and-bytes [`Report`] of the composed images.
    pub report: bool,
    pub repos: RepoSettings,
}

impl ComposeRequest {
    /// Every image of `spec` into `store`, resolving first, default settings otherwise.
    pub fn new(spec: impl Into<PathBuf>, store: impl Into<PathBuf>) -> ComposeRequest {
        ComposeRequest {
            spec: spec.into(),
            images: Vec::new(),
            locked: false,
            lock: None,
            store: store.into(),
            force: false,
            compression: None,
            nogpgcheck: false,
            source_date_epoch: None,
            report: false,
            repos: RepoSettings::default(),
        }
    }
}

/// One layer of a composed image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerResult {
    /// The layer plan's id (`top` for the image's own top layer; empty for an image stored
    /// without a compose record).
    pub id: String,
    /// How many packages the layer holds.
    pub packages: usize,
    pub digest: String,
    pub size: u64,
    /// Taken from the store (built before, by this image or another) rather than built now.
    pub reused: bool,
}

/// One image in the store after [`compose`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageResult {
    pub name: String,
    pub tag: String,
    /// `NAME:TAG` in the store.
    pub reference: String,
    pub manifest_digest: String,
    /// The config's digest, which docker calls the image id.
    pub config_digest: String,
    /// The packages of its lock entry, in the lock's order.
    pub packages: Vec<LockedPackage>,
    pub layers: Vec<LayerResult>,
    /// Bytes of its layers as stored.
    pub size: u64,
    /// Nothing was built: the stored image had the same inputs.
    pub reused: bool,
    pub warnings: Vec<String>,
    /// Scriptlet runs and their output (also in `CACHE/logs/NAME.log`).
    pub log: Vec<String>,
}

/// An image that failed to compose.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageFailure {
    pub name: String,
    /// `composing image NAME: ` and the whole cause chain.
    pub message: String,
}

/// The outcome of [`compose`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ComposeReport {
    /// Every selected image, in the spec's order.
    pub images: Vec<ImageResult>,
    pub store: PathBuf,
    pub lock_file: PathBuf,
    /// With [`ComposeRequest::report`].
    pub report: Option<Report>,
}

/// Everything the images' jobs borrow: spec, lock, plan.
struct Prepared {
    spec: Spec,
    selected: Vec<String>,
    lock: Lockfile,
    plan: Plan,
    lock_file: PathBuf,
    compression: Compression,
}

impl Prepared {
    fn load(req: &ComposeRequest, write_lock: bool, progress: &dyn Progress) -> Result<Prepared> {
        let spec = Spec::load(&req.spec)?;
        let selected: Vec<String> = spec.select_images(&req.images)?.into_iter().map(|(n, _)| n.to_string()).collect();
        check_image_names(&spec, &selected)?;
        let lock_file = checked_lock_path(&req.spec, req.lock.as_deref())?;
        let settings = strata_lock::layer_settings(&spec.layers);
        let lock = if req.locked {
            read_locked(req, &spec, &selected, &lock_file)?
        } else {
            resolve_into_lock(&spec, &req.repos, &selected, &lock_file, write_lock, progress)?
        };
        let plan = lock.checked_plan(&settings).map_err(|e| Error::LockPlan { path: lock_file.clone(), problem: e.to_string() })?;
        let compression = match (req.compression, spec.compression) {
            (Some(strata_spec::Compression::Zstd), _) | (None, Some(strata_spec::Compression::Zstd)) => Compression::zstd(),
            _ => Compression::default(),
        };
        Ok(Prepared { spec, selected, lock, plan, lock_file, compression })
    }

    fn jobs(&self) -> Vec<ImageJob<'_>> {
        self.selected
            .iter()
            .map(|name| {
                let locked = &self.lock.images[name];
                let repos = self.lock.repos.iter().filter(|(id, _)| locked.packages.iter().any(|p| &p.repo == *id)).map(|(k, v)| (k.clone(), v.clone())).collect();
                ImageJob { name, spec: &self.spec.images[name], locked, repos, plan: &self.plan }
            })
            .collect()
    }
}

/// What would change for each selected image, building and writing nothing (not even the
/// lock); needs no root.
pub fn check(req: &ComposeRequest, progress: &dyn Progress, cancel: &Cancel) -> Result<CheckReport> {
    cancel.check()?;
    let prepared = Prepared::load(req, false, progress)?;
    let jobs = prepared.jobs();
    let store = if req.store.join("index.json").exists() { Some(Store::open(&req.store).map_err(|e| Error::OpenStore { path: req.store.clone(), source: Box::new(e) })?) } else { None };
    let mut images = Vec::new();
    for job in &jobs {
        let changes = reasons(job, &job.inputs(req.source_date_epoch, prepared.compression), store.as_ref())?;
        images.push(ImageCheck { name: job.name.to_string(), up_to_date: changes.is_empty(), changes });
    }
    Ok(CheckReport { images })
}

/// Composes the selected images into the store: resolves first (writing the lock, only if
/// it changed) unless `locked`; an image whose stored build has the same inputs is neither
/// fetched nor rebuilt (unless `force`); the others' RPMs are fetched, then they are built
/// two at a time. Needs root. When some images fail the others are still built, and the
/// error ([`Error::Images`]) carries both. When the [`Cancel`] stopped an image, it
/// returns [`Error::Canceled`]; one that came too late to stop any changes nothing (the
/// images are in the store).
pub fn compose(req: &ComposeRequest, progress: &dyn Progress, cancel: &Cancel) -> Result<ComposeReport> {
    if !rustix::process::geteuid().is_root() {
        return Err(Error::NeedsRoot);
    }
    cancel.check()?;
    let prepared = Prepared::load(req, true, progress)?;
    cancel.check()?;
    let jobs = prepared.jobs();
    let sde = req.source_date_epoch;
    let inputs: Vec<String> = jobs.iter().map(|j| j.inputs(sde, prepared.compression)).collect();

    // What is already built is not even fetched.
    let store = Store::open_or_create(&req.store).map_err(|e| Error::OpenStore { path: req.store.clone(), source: Box::new(e) })?;
    let mut current: Vec<Option<Composed>> = Vec::new();
    for (job, inputs) in jobs.iter().zip(&inputs) {
        current.push(if req.force { None } else { job.current(&store, inputs)? });
    }
    let todo: Vec<usize> = (0..jobs.len()).filter(|&i| current[i].is_none()).collect();
    let cache_root = req.repos.cache_root();
    let mut built: BTreeMap<usize, Result<Composed, String>> = BTreeMap::new();
    if !todo.is_empty() {
        let names: Vec<String> = todo.iter().map(|&i| jobs[i].name.to_string()).collect();
        let repos = spec_repos(&prepared.spec, req, &names)?;
        let rpms = fetch(&prepared.lock, &names, &repos, &cache_root, progress, cancel)?;
        built = build(&prepared, &jobs, &todo, &rpms, &store, req, progress, cancel)?;
    }

    let mut images = Vec::new();
    let mut failures = Vec::new();
    for (i, cur) in current.into_iter().enumerate() {
        match cur.map(Ok).or_else(|| built.remove(&i)).expect("every image is current or was built") {
            Ok(c) => images.push(image_result(c, &jobs[i])),
            Err(message) => failures.push(ImageFailure { name: jobs[i].name.to_string(), message }),
        }
    }
    for image in &images {
        write_log(&cache_root, image)?;
    }
    for image in &images {
        for message in &image.warnings {
            progress.event(&Event::Warning { image: &image.name, message });
        }
    }
    // Canceled while images were still being built: those stopped, and that is the outcome.
    if cancel.is_canceled() && !failures.is_empty() {
        return Err(Error::Canceled);
    }
    if !failures.is_empty() {
        return Err(Error::Images { failures, composed: images });
    }
    let report = if req.report {
        let modelled = crate::PullModel::for_lock(&prepared.lock, &prepared.plan, &strata_lock::pull_cost(&prepared.spec.layers));
        Some(Report::new(&store, &images, &modelled)?)
    } else {
        None
    };
    Ok(ComposeReport { images, store: req.store.clone(), lock_file: prepared.lock_file, report })
}

/// Builds the images `todo` (indexes into `jobs`), two at a time — one installs while the
/// other compresses — each result a failure's full text or the image.
#[allow(clippy::too_many_arguments)]
fn build(
    prepared: &Prepared,
    jobs: &[ImageJob<'_>],
    todo: &[usize],
    rpms: &FetchedRpms,
    store: &Store,
    req: &ComposeRequest,
    progress: &dyn Progress,
    cancel: &Cancel,
) -> Result<BTreeMap<usize, Result<Composed, String>>> {
    let needs_scriptlets = todo.iter().any(|&i| prepared.spec.images[jobs[i].name].scriptlets != Some(ScriptletPolicy::Skip));
    let sandbox = if needs_scriptlets { Some(SandboxRunner::new()?.cancel_on(cancel)) } else { None };
    let runner = sandbox.as_ref().map(|s| Cancelable { inner: s, cancel });
    let staging = StagingArea::from_env(&req.repos.cache_root());
    for dir in staging.dirs() {
        strata_compose::remove_stale_staging(dir);
    }
    let layer_cache = LayerCache::new();
    let opts = ComposeOptions {
        store,
        staging: &staging,
        source_date_epoch: req.source_date_epoch,
        runner: runner.as_ref().map(|r| r as &dyn ScriptRunner),
        compression: prepared.compression,
        threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
        force: req.force,
        layers: &layer_cache,
    };
    let locator = Cancelable { inner: rpms, cancel };
    progress.event(&Event::ComposeStarted { images: todo.len() });
    let workers = opts.threads.clamp(1, 2).min(todo.len());
    let next = AtomicUsize::new(0);
    let slots: Vec<Mutex<Option<Result<Composed, String>>>> = todo.iter().map(|_| Mutex::new(None)).collect();
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| loop {
                let k = next.fetch_add(1, Ordering::Relaxed);
                let Some(&i) = todo.get(k) else { break };
                let job = &jobs[i];
                let r = if cancel.is_canceled() {
                    Err(Error::Canceled.to_string())
                } else {
                    progress.event(&Event::ImageStarted { image: job.name });
                    compose_image(job, &locator, &opts).map_err(|e| format!("composing image {}: {}", job.name, chain_text(&e)))
                };
                match &r {
                    Ok(c) => {
                        let image = image_result(c.clone(), job);
                        for layer in &image.layers {
                            progress.event(&Event::Layer { image: job.name, layer });
                        }
                        for line in &image.log {
                            progress.event(&Event::Log { image: job.name, line });
                        }
                        progress.event(&Event::ImageDone { image: &image });
                    }
                    Err(error) => progress.event(&Event::ImageFailed { image: job.name, error }),
                }
                *slots[k].lock().expect("slot") = Some(r);
            });
        }
    });
    progress.event(&Event::ComposeFinished);
    Ok(slots.into_iter().enumerate().map(|(k, slot)| (todo[k], slot.into_inner().expect("slot").expect("every image was attempted"))).collect())
}

fn image_result(c: Composed, job: &ImageJob<'_>) -> ImageResult {
    ImageResult {
        tag: job.spec.tag.clone().unwrap_or_else(|| "latest".into()),
        name: c.name,
        reference: c.reference,
        manifest_digest: c.manifest_digest,
        config_digest: c.image_id,
        packages: job.locked.packages.clone(),
        layers: c.layers.into_iter().map(|l| LayerResult { id: l.id, packages: l.packages, digest: l.digest, size: l.size, reused: l.reused }).collect(),
        size: c.size,
        reused: c.reused,
        warnings: c.warnings,
        log: c.log,
    }
}

/// A compose's RPM locator and scriptlet runner, stopped by a [`Cancel`]: the image then
/// fails at its next package or scriptlet, and nothing is rechecked or refetched.
struct Cancelable<'a, T: ?Sized> {
    inner: &'a T,
    cancel: &'a Cancel,
}

impl<T: RpmLocator + ?Sized> RpmLocator for Cancelable<'_, T> {
    fn locate(&self, pkg: &LockedPackage) -> Result<PathBuf, String> {
        if self.cancel.is_canceled() {
            return Err(Error::Canceled.to_string());
        }
        self.inner.locate(pkg)
    }

    fn recheck(&self, pkg: &LockedPackage) -> Result<bool, String> {
        if self.cancel.is_canceled() {
            return Ok(false);
        }
        self.inner.recheck(pkg)
    }
}

impl<T: ScriptRunner + ?Sized> ScriptRunner for Cancelable<'_, T> {
    fn run(&self, root: &Path, inv: &ScriptInvocation<'_>) -> Result<ScriptOutcome, String> {
        if self.cancel.is_canceled() {
            return Err(Error::Canceled.to_string());
        }
        self.inner.run(root, inv)
    }
}

/// Every image becomes a store tag `NAME:TAG`, so its name must be a valid repository name
/// (lowercase, `/`-separated components like `apps/web`); said before anything is resolved.
fn check_image_names(spec: &Spec, selected: &[String]) -> Result<()> {
    for name in selected {
        let tag = spec.images[name].tag.as_deref().unwrap_or("latest");
        if let Err(e) = strata_oci::reference::ImageRef::new(name, tag) {
            return Err(Error::ImageName { spec: spec.path.clone(), image: name.clone(), tag: tag.to_string(), reason: e.to_string() });
        }
    }
    Ok(())
}

/// `locked`: the lock as it is, refused when the spec changed since.
fn read_locked(req: &ComposeRequest, spec: &Spec, selected: &[String], lock_file: &Path) -> Result<Lockfile> {
    let lock = Lockfile::read(lock_file)?;
    let repo_opts = req.repos.repo_options();
    for name in selected {
        let image = &spec.images[name];
        let Some(locked) = lock.images.get(name) else {
            return Err(Error::LockMissingImage { path: lock_file.to_path_buf(), image: name.clone() });
        };
        let arch = image.arch_or_host();
        let mut vars = Vars::for_arch(&arch);
        vars.releasever = req.repos.releasever.clone();
        let repos = spec.repos(&repo_opts, &vars)?;
        if locked.inputs != inputs_digest(image, &arch, &repos) {
            return Err(Error::LockStale { path: lock_file.to_path_buf(), image: name.clone() });
        }
    }
    Ok(lock)
}

/// The spec's repos for the selected images (all arches), `gpgcheck` off with `nogpgcheck`.
fn spec_repos(spec: &Spec, req: &ComposeRequest, selected: &[String]) -> Result<Vec<RepoEntry>> {
    let repo_opts = req.repos.repo_options();
    let mut out: Vec<RepoEntry> = Vec::new();
    for name in selected {
        let mut vars = Vars::for_arch(&spec.images[name].arch_or_host());
        vars.releasever = req.repos.releasever.clone();
        for mut repo in spec.repos(&repo_opts, &vars)? {
            if req.nogpgcheck {
                repo.gpgcheck = Some(false);
            }
            if !out.iter().any(|r| r.id == repo.id) {
                out.push(repo);
            }
        }
    }
    Ok(out)
}

/// The scriptlet log of a build, beside the cache: `logs/NAME.log` (last build of NAME; an
/// image named `apps/web` logs to `logs/apps/web.log`).
fn write_log(cache_root: &Path, image: &ImageResult) -> Result<()> {
    if image.reused {
        return Ok(());
    }
    let path = cache_root.join("logs").join(format!("{}.log", image.name));
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|source| Error::CreateDir { path: dir.to_path_buf(), source })?;
    }
    let mut text = String::new();
    for l in image.log.iter().chain(image.warnings.iter()) {
        text.push_str(l);
        text.push('\n');
    }
    Ok(strata_output::write(&path, text.as_bytes())?)
}
