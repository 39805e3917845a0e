//! Producing a lock from a spec: load every enabled repository once (in parallel), solve
//! each image against them, and record exactly what was chosen.

use crate::{inputs_digest, Checksum, LockedImage, LockedPackage, LockedRepo, Lockfile};
use std::collections::BTreeMap;
use std::sync::Arc;
use strata_repo::{LoadOptions, LoadedRepo, MetadataCache, RepoError, RepoSource};
use strata_solve::{PoolRepo, Request, SolveError};
use strata_spec::{RepoEntry, RepoOptions, Spec, SpecError, Vars};

/// How a spec is resolved: where metadata is cached and how repos are selected.
pub struct ResolveOptions<'a> {
    pub cache: MetadataCache,
    pub repos: RepoOptions,
    pub releasever: Option<String>,
    pub refresh: bool,
    /// Images to resolve; all when empty.
    pub images: Vec<String>,
    /// Told of each step as it starts (a front end's progress); called from the threads
    /// that load repos too.
    pub on_step: Option<&'a (dyn Fn(ResolveStep<'_>) + Sync)>,
}

/// A step of [`resolve_spec`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResolveStep<'a> {
    /// Repo `id`'s metadata is being loaded (from the cache when it is current).
    LoadingRepo(&'a str),
    /// Image `name` is being solved.
    Solving(&'a str),
}

impl ResolveOptions<'_> {
    fn step(&self, step: ResolveStep<'_>) {
        if let Some(f) = self.on_step {
            f(step);
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error(transparent)]
    Spec(#[from] SpecError),
    #[error(transparent)]
    Repo(#[from] RepoError),
    /// Every image that failed, each with its own explanation.
    #[error("{}", render_image_errors(.0))]
    Images(Vec<(String, SolveError)>),
}

fn render_image_errors(errors: &[(String, SolveError)]) -> String {
    errors
        .iter()
        .map(|(image, e)| format!("image {image}: {e}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// A repository loaded for one resolve, with the options the spec gave it.
struct Loaded {
    entry: RepoEntry,
    repo: Arc<LoadedRepo>,
}

/// Resolves the selected images of `spec` into a lock holding just those images.
pub fn resolve_spec(spec: &Spec, opts: &ResolveOptions<'_>) -> Result<Lockfile, ResolveError> {
    let images = spec.select_images(&opts.images)?;

    // Images of one arch share one set of loaded repos; repos with identical sources are
    // loaded once even across arches (the cache is keyed by source).
    let mut by_arch: BTreeMap<String, Vec<(&str, &strata_spec::ImageSpec)>> = BTreeMap::new();
    for (name, image) in &images {
        by_arch.entry(image.arch_or_host()).or_default().push((name, image));
    }

    let mut lock = Lockfile::new();
    let mut failures = Vec::new();
    let mut loaded_by_source: BTreeMap<String, Arc<LoadedRepo>> = BTreeMap::new();
    for (arch, images) in by_arch {
        let mut vars = Vars::for_arch(&arch);
        vars.releasever = opts.releasever.clone();
        let entries = spec.repos(&opts.repos, &vars)?;
        let loaded = load_all(&entries, opts, &mut loaded_by_source)?;
        for (name, image) in images {
            let pool: Vec<PoolRepo<'_>> = loaded
                .iter()
                .map(|l| PoolRepo {
                    repo: &l.repo,
                    priority: l.entry.priority(),
                    cost: l.entry.cost(),
                    excludes: l.entry.exclude.clone(),
                })
                .collect();
            opts.step(ResolveStep::Solving(name));
            let request = Request {
                packages: image.packages.clone(),
                exclude: image.exclude.clone(),
                install_weak_deps: image.install_weak_deps,
                arch: arch.clone(),
            };
            match strata_solve::solve(&pool, &request) {
                Ok(selected) => {
                    let packages = selected
                        .iter()
                        .map(|s| locked_package(&loaded[s.repo].repo, s.id))
                        .collect();
                    for s in &selected {
                        let r = &loaded[s.repo].repo;
                        lock.repos.insert(
                            r.id.clone(),
                            LockedRepo {
                                repomd_checksum: r.repomd_checksum.clone(),
                                baseurl: r.baseurl.clone(),
                            },
                        );
                    }
                    lock.images.insert(
                        name.to_string(),
                        LockedImage {
                            inputs: inputs_digest(image, &arch, &entries),
                            arch: arch.clone(),
                            packages,
                        },
                    );
                }
                Err(e) => failures.push((name.to_string(), e)),
            }
        }
    }
    if !failures.is_empty() {
        return Err(ResolveError::Images(failures));
    }
    Ok(lock)
}

/// Loads every repo, in parallel threads (downloads and index builds overlap), reusing
/// repos already loaded for another arch.
fn load_all(
    entries: &[RepoEntry],
    opts: &ResolveOptions<'_>,
    seen: &mut BTreeMap<String, Arc<LoadedRepo>>,
) -> Result<Vec<Loaded>, RepoError> {
    let sources: Vec<RepoSource> = entries.iter().map(source_of).collect();
    let keys: Vec<String> = sources.iter().map(source_key).collect();
    let load_opts = LoadOptions { refresh: opts.refresh };
    let results: Vec<Result<Arc<LoadedRepo>, RepoError>> = std::thread::scope(|scope| {
        let handles: Vec<_> = sources
            .iter()
            .zip(&keys)
            .map(|(src, key)| {
                let cached = seen.get(key).cloned();
                let cache = &opts.cache;
                let load_opts = &load_opts;
                scope.spawn(move || match cached {
                    Some(r) => Ok(r),
                    None => {
                        opts.step(ResolveStep::LoadingRepo(&src.id));
                        cache.load(src, load_opts).map(Arc::new)
                    }
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("repo loader thread panicked")).collect()
    });
    let mut out = Vec::with_capacity(entries.len());
    for ((entry, key), result) in entries.iter().zip(keys).zip(results) {
        let repo = result?;
        seen.insert(key, repo.clone());
        out.push(Loaded { entry: entry.clone(), repo });
    }
    Ok(out)
}

/// Where a spec's repo entry loads its metadata from (also for `strata pull rpm:`).
pub fn source_of(e: &RepoEntry) -> RepoSource {
    RepoSource {
        id: e.id.clone(),
        baseurls: e.baseurl.clone(),
        mirrorlist: e.mirrorlist.clone(),
        metalink: e.metalink.clone(),
        metadata_expire: e.metadata_expire.map(|x| x.max_age().unwrap_or(std::time::Duration::MAX)),
    }
}

fn source_key(s: &RepoSource) -> String {
    format!("{}\n{:?}\n{:?}\n{:?}", s.id, s.baseurls, s.mirrorlist, s.metalink)
}

/// Package `id` of `repo` as the lock records it: exact NEVRA, location, checksum, sizes.
pub fn locked_package(repo: &LoadedRepo, id: strata_repo::PkgId) -> LockedPackage {
    let p = repo.index.package(id);
    let evr = p.evr();
    let (kind, value) = p.checksum();
    LockedPackage {
        name: p.name().to_string(),
        epoch: evr.epoch.unwrap_or(0),
        version: evr.version.to_string(),
        release: evr.release.unwrap_or("").to_string(),
        arch: p.arch().to_string(),
        repo: repo.id.clone(),
        location: p.location().to_string(),
        checksum: Checksum { kind: kind.to_string(), value: value.to_string() },
        size: p.size_package(),
        installed_size: p.size_installed(),
        sourcerpm: p.sourcerpm().to_string(),
        buildtime: p.buildtime(),
    }
}
