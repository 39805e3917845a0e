//! `strata compose`: lock (resolve or read), decide what is out of date, fetch, then compose
//! those images; `--check` only says what would change, `--report` shows layers and bytes.

use crate::resolve::{checked_lock_path, Spinner};
use crate::RepoArgs;
use anyhow::{bail, Context};
use clap::Args;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use strata_compose::{compose_image, ComposeOptions, Composed, ImageJob, LayerCache, StagingArea};
use strata_layers::Plan;
use strata_lock::{inputs_digest, resolve_spec, Lockfile};
use strata_oci::compress::Compression;
use strata_oci::store::Store;
use strata_spec::{RepoEntry, ScriptletPolicy, Spec, Vars};

#[derive(Args, Debug)]
pub struct ComposeArgs {
    /// The spec (JSON).
    spec: PathBuf,
    /// Compose only this image (repeatable).
    #[arg(long, value_name = "NAME")]
    image: Vec<String>,
    /// Use strata.lock as it is (no resolve); fail if it does not match the spec.
    #[arg(long)]
    locked: bool,
    /// Lock file [default: strata.lock beside the spec].
    #[arg(long, value_name = "FILE")]
    lock: Option<PathBuf>,
    #[command(flatten)]
    store: StoreArg,
    /// Rebuild even if the stored image was built from the same inputs.
    #[arg(long)]
    force: bool,
    /// Layer compression [default: the spec's "compression", else gzip].
    #[arg(long, value_enum)]
    compression: Option<CompressionArg>,
    /// Do not verify RPM signatures, even for repos with gpgcheck on.
    #[arg(long)]
    nogpgcheck: bool,
    /// Build nothing and write nothing: exit 0 when every image is up to date, 1 otherwise,
    /// listing what changed for each image.
    #[arg(long, conflicts_with = "force")]
    check: bool,
    /// After composing, show each image's layers and the bytes stored and pulled.
    #[arg(long)]
    report: bool,
    /// Print the results as JSON on stdout.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    repos: RepoArgs,
}

#[derive(Args, Debug, Clone)]
pub struct StoreArg {
    /// Image store (an OCI image layout) [default: $STRATA_STORE, else $XDG_DATA_HOME/strata/store].
    #[arg(long, value_name = "DIR", global = true)]
    pub store: Option<PathBuf>,
}

impl StoreArg {
    pub fn path(&self) -> PathBuf {
        if let Some(p) = &self.store {
            return p.clone();
        }
        if let Some(p) = std::env::var_os("STRATA_STORE").filter(|p| !p.is_empty()) {
            return p.into();
        }
        let data = std::env::var_os("XDG_DATA_HOME")
            .filter(|d| !d.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap_or_else(|| "/tmp".into())).join(".local/share"));
        data.join("strata").join("store")
    }

    pub fn open(&self) -> anyhow::Result<Store> {
        let p = self.path();
        Store::open(&p).with_context(|| format!("opening image store {}", p.display()))
    }
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum CompressionArg {
    Gzip,
    Zstd,
}

pub fn run(args: ComposeArgs) -> anyhow::Result<ExitCode> {
    if !args.check && !rustix::process::geteuid().is_root() {
        bail!("strata compose needs root, as rpm --root and dnf --installroot do: files get their owners and modes, and scriptlets run in namespaces (try: sudo strata compose ...; `--check` works without)");
    }
    let spec = Spec::load(&args.spec)?;
    let selected: Vec<String> = spec.select_images(&args.image)?.into_iter().map(|(n, _)| n.to_string()).collect();
    check_image_names(&spec, &selected)?;
    let lock_file = checked_lock_path(&args.spec, args.lock.as_deref())?;
    let settings = strata_lock::layer_settings(&spec.layers);
    let lock = if args.locked { read_locked(&args, &spec, &selected, &lock_file)? } else { resolve_now(&args, &spec, &selected, &lock_file)? };
    let plan: Plan = match lock.checked_plan(&settings) {
        Ok(p) => p,
        Err(e) => bail!("{} cannot be used as it is: {e}; run `strata resolve`", lock_file.display()),
    };
    let compression = match (args.compression, spec.compression) {
        (Some(CompressionArg::Zstd), _) | (None, Some(strata_spec::Compression::Zstd)) => Compression::zstd(),
        _ => Compression::default(),
    };
    let sde = source_date_epoch()?;
    let jobs: Vec<ImageJob<'_>> = selected
        .iter()
        .map(|name| {
            let locked = &lock.images[name];
            let repos = lock.repos.iter().filter(|(id, _)| locked.packages.iter().any(|p| &p.repo == *id)).map(|(k, v)| (k.clone(), v.clone())).collect();
            ImageJob { name, spec: &spec.images[name], locked, repos, plan: &plan }
        })
        .collect();
    let inputs: Vec<String> = jobs.iter().map(|j| j.inputs(sde, compression)).collect();

    let store_path = args.store.path();
    if args.check {
        let store = if store_path.join("index.json").exists() { Some(args.store.open()?) } else { None };
        return crate::report::check(&jobs, &inputs, store.as_ref(), args.json);
    }

    // What is already built is not even fetched.
    let store = Store::open_or_create(&store_path).with_context(|| format!("opening image store {}", store_path.display()))?;
    let mut current: Vec<Option<Composed>> = Vec::new();
    for (job, inputs) in jobs.iter().zip(&inputs) {
        current.push(if args.force { None } else { job.current(&store, inputs)? });
    }
    let todo: Vec<usize> = (0..jobs.len()).filter(|&i| current[i].is_none()).collect();
    let mut built: BTreeMap<usize, anyhow::Result<Composed>> = BTreeMap::new();
    let cache_root = args.repos.cache_dir.clone().unwrap_or_else(strata_repo::MetadataCache::default_root);
    if !todo.is_empty() {
        let names: Vec<String> = todo.iter().map(|&i| jobs[i].name.to_string()).collect();
        let repos = spec_repos(&spec, &args, &names)?;
        let rpms = crate::fetch::fetch_for(&lock, &names, &repos, &cache_root, !args.json)?;
        let needs_scriptlets = names.iter().any(|n| spec.images[n].scriptlets != Some(ScriptletPolicy::Skip));
        let sandbox = if needs_scriptlets { Some(crate::sandbox::SandboxRunner::new()?) } else { None };
        let staging = StagingArea::from_env(&cache_root);
        for dir in staging.dirs() {
            strata_compose::remove_stale_staging(dir);
        }
        let layer_cache = LayerCache::new();
        let opts = ComposeOptions {
            store: &store,
            staging: &staging,
            source_date_epoch: sde,
            runner: sandbox.as_ref().map(|s| s as &dyn strata_install::ScriptRunner),
            compression,
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            force: args.force,
            layers: &layer_cache,
        };
        // Images are independent: build two at a time (one installs while the other
        // compresses); results are reported in spec order.
        let spinner = Spinner::start(!args.json, &format!("composing {} image(s)", todo.len()));
        let workers = opts.threads.clamp(1, 2).min(todo.len());
        let next = std::sync::atomic::AtomicUsize::new(0);
        let slots: Vec<std::sync::Mutex<Option<anyhow::Result<Composed>>>> = todo.iter().map(|_| std::sync::Mutex::new(None)).collect();
        std::thread::scope(|s| {
            for _ in 0..workers {
                s.spawn(|| loop {
                    let k = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(&i) = todo.get(k) else { break };
                    let r = compose_image(&jobs[i], &rpms, &opts).with_context(|| format!("composing image {}", jobs[i].name));
                    *slots[k].lock().expect("slot") = Some(r);
                });
            }
        });
        spinner.finish();
        for (k, slot) in slots.into_iter().enumerate() {
            built.insert(todo[k], slot.into_inner().expect("slot").expect("every image was attempted"));
        }
    }

    let mut results: Vec<Composed> = Vec::new();
    let mut failures = Vec::new();
    for (i, cur) in current.into_iter().enumerate() {
        match cur.map(Ok).or_else(|| built.remove(&i)).expect("every image is current or was built") {
            Ok(r) => results.push(r),
            Err(e) => failures.push(format!("{e:#}")),
        }
    }
    for r in &results {
        write_log(&cache_root, r)?;
        for w in &r.warnings {
            eprintln!("warning: {}: {w}", r.name);
        }
        if !args.json {
            let new_layers = r.layers.iter().filter(|l| !l.reused).count();
            let status = if r.reused { "up to date".to_string() } else { format!("built ({} of {} layers new)", new_layers, r.layers.len()) };
            println!("{}  {}  {} packages  {} layers  {}  {}", r.reference, short(&r.image_id), r.packages, r.layers.len(), crate::resolve::human_bytes(r.size), status);
        }
    }
    if !failures.is_empty() {
        bail!("{}", failures.join("\n"));
    }
    let report = if args.report { Some(crate::report::Report::new(&store, &results)?) } else { None };
    if args.json {
        let out: serde_json::Map<String, serde_json::Value> = results
            .iter()
            .map(|r| {
                let layers: Vec<_> = r.layers.iter().map(|l| serde_json::json!({"id": l.id, "packages": l.packages, "digest": l.digest, "size": l.size, "reused": l.reused})).collect();
                (
                    r.name.clone(),
                    serde_json::json!({"reference": r.reference, "manifest": r.manifest_digest, "image_id": r.image_id,
                        "packages": r.packages, "layers": layers, "size": r.size, "reused": r.reused, "warnings": r.warnings}),
                )
            })
            .collect();
        let mut doc = serde_json::json!({"images": out, "store": store_path});
        if let Some(rep) = &report {
            doc["report"] = rep.to_json();
        }
        println!("{}", serde_json::to_string_pretty(&doc)?);
    } else if let Some(rep) = &report {
        rep.print();
    }
    Ok(ExitCode::SUCCESS)
}

/// Every image becomes a store tag `NAME:TAG`, so its name must be a valid repository name
/// (lowercase, `/`-separated components like `apps/web`); said before anything is resolved.
fn check_image_names(spec: &Spec, selected: &[String]) -> anyhow::Result<()> {
    for name in selected {
        let tag = spec.images[name].tag.as_deref().unwrap_or("latest");
        if let Err(e) = strata_oci::reference::ImageRef::new(name, tag) {
            bail!("spec {}: image `{name}` cannot be stored as `{name}:{tag}`: {e}\nhint: image names are lowercase letters, digits and `._-`, in `/`-separated parts (`apps/web`)", spec.path.display());
        }
    }
    Ok(())
}

/// `--locked`: the lock as it is, refused when the spec changed since.
fn read_locked(args: &ComposeArgs, spec: &Spec, selected: &[String], lock_file: &std::path::Path) -> anyhow::Result<Lockfile> {
    let lock = Lockfile::read(lock_file)?;
    let repo_opts = args.repos.resolve_options(vec![]).repos;
    for name in selected {
        let image = &spec.images[name];
        let Some(locked) = lock.images.get(name) else {
            bail!("{} has no entry for image {name}; run `strata resolve` first", lock_file.display());
        };
        let arch = image.arch_or_host();
        let mut vars = Vars::for_arch(&arch);
        vars.releasever = args.repos.releasever.clone();
        let repos = spec.repos(&repo_opts, &vars)?;
        if locked.inputs != inputs_digest(image, &arch, &repos) {
            bail!("{} is stale for image {name}: the spec changed since it was resolved; run `strata resolve`", lock_file.display());
        }
    }
    Ok(lock)
}

/// Resolves the selected images and merges them into the lock (written unless `--check`,
/// and only when it changed).
fn resolve_now(args: &ComposeArgs, spec: &Spec, selected: &[String], lock_file: &std::path::Path) -> anyhow::Result<Lockfile> {
    let spinner = Spinner::start(!args.json, "resolving");
    let fresh = resolve_spec(spec, &args.repos.resolve_options(selected.to_vec()));
    spinner.finish();
    let fresh = fresh?;
    let existing = if lock_file.is_file() { Lockfile::read(lock_file).ok() } else { None };
    let settings = strata_lock::layer_settings(&spec.layers);
    let merged = strata_lock::updated(existing.as_ref(), fresh, |n| spec.images.contains_key(n), true, &settings);
    if !args.check {
        merged.write(lock_file)?;
    }
    Ok(merged)
}

/// The spec's repos for the selected images (all arches), `gpgcheck` off with `--nogpgcheck`.
fn spec_repos(spec: &Spec, args: &ComposeArgs, selected: &[String]) -> anyhow::Result<Vec<RepoEntry>> {
    let repo_opts = args.repos.resolve_options(vec![]).repos;
    let mut out: Vec<RepoEntry> = Vec::new();
    for name in selected {
        let mut vars = Vars::for_arch(&spec.images[name].arch_or_host());
        vars.releasever = args.repos.releasever.clone();
        for mut repo in spec.repos(&repo_opts, &vars)? {
            if args.nogpgcheck {
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
fn write_log(cache_root: &std::path::Path, r: &Composed) -> anyhow::Result<()> {
    if r.reused {
        return Ok(());
    }
    let path = cache_root.join("logs").join(format!("{}.log", r.name));
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let mut text = String::new();
    for l in r.log.iter().chain(r.warnings.iter()) {
        text.push_str(l);
        text.push('\n');
    }
    Ok(strata_output::write(&path, text.as_bytes())?)
}

pub fn short(digest: &str) -> &str {
    let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
    &hex[..hex.len().min(12)]
}

pub fn source_date_epoch() -> anyhow::Result<Option<u64>> {
    match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(v) if !v.trim().is_empty() => Ok(Some(v.trim().parse().with_context(|| format!("SOURCE_DATE_EPOCH={v:?} is not a number of seconds"))?)),
        _ => Ok(None),
    }
}
