//! A capability → the image RPM that provides it, chosen from yum repositories as dnf
//! would, then fetched and verified: the first half of `strata pull 'rpm:CAPABILITY'`.
//!
//! The repositories are the spec's (or `.repo` files', or ad-hoc `--repo URL`s) with the
//! same options a compose honours (baseurl/mirrorlist/metalink, gpgcheck and gpgkey,
//! priority, cost, excludes, metadata_expire). The choice is `strata-solve`'s: a one-package
//! request for the capability with Requires ignored (`dnf download`), so the provider is the
//! one `dnf` would take (highest EVR among providers, arch policy, repository priority and
//! cost, excludes). Requires are ignored because an image RPM is used whole: its `Requires:
//! container-image-id(BASE)` names what it was built from, and followed it would keep a
//! newer image of a package name from being chosen over the older one it was built FROM.
//! Only the image RPM is fetched; with `with_base` the base image RPMs its Requires name
//! too, each chosen the same way.
//! Fetching is `strata-fetch`'s (through `strata-pipeline`): size and checksum from the
//! metadata, header signatures for gpgcheck repos, the content-addressed RPM cache.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use strata_lock::{LockedImage, LockedPackage, LockedRepo, Lockfile};
use strata_pipeline::RepoSettings;
use strata_repo::{LoadOptions, LoadedRepo, MetadataCache, PkgId, RepoError};
use strata_solve::{PoolRepo, Request, SolveError};
use strata_spec::{RepoEntry, RepoOptions, Spec, Vars};

/// The image name in the lock handed to the fetcher (never written anywhere).
const FETCH_SET: &str = "rpm-pull";

/// Why a capability could not be turned into a fetched image RPM. Each message names the
/// capability and says what to do.
#[derive(Debug, thiserror::Error)]
pub enum FindError {
    #[error(transparent)]
    Spec(#[from] strata_spec::SpecError),
    #[error(transparent)]
    Repo(#[from] RepoError),
    #[error("{0}")]
    Fetch(Box<strata_pipeline::Error>),
    #[error("`{capability}` is not a capability: {reason}\nhint: give NAME, NAME OP VERSION (e.g. `container-image(web) >= 1.2`, `docker-image-id = 0:sha256:…`) or a package NEVRA")]
    BadCapability { capability: String, reason: String },
    #[error("no image RPM in {repos} provides `{capability}`{}\nhint: image RPMs provide container-image(NAME), container-image(NAME:TAG), container-image-id(sha256:ID), docker-image-NAME and docker-image-id = 0:sha256:ID", offered_list(.offered))]
    NotProvided { capability: String, repos: String, offered: Vec<String> },
    #[error("no image RPM in {repos} satisfies `{capability}`: {explanation}{}\nhint: loosen the version, or publish an image RPM that satisfies it (strata rpm, createrepo_c)", offered_list(.offered))]
    Unsatisfiable { capability: String, repos: String, explanation: String, offered: Vec<String> },
    #[error("`{capability}` resolved to {} packages ({packages}); an image is one package", if packages.is_empty() { "no" } else { "several" })]
    NoTarget { capability: String, packages: String },
    #[error("the base images of `{capability}` require each other in a cycle (or more than 64 deep): {chain}\nhint: pull without --with-base")]
    BaseCycle { capability: String, chain: String },
}

fn offered_list(offered: &[String]) -> String {
    if offered.is_empty() {
        return String::new();
    }
    format!("\n  the repositories offer: {}", offered.join(", "))
}

/// Where and how to look for an image RPM.
#[derive(Debug, Clone)]
pub struct RepoQuery {
    /// `container-image(web)`, `container-image(web) >= 1.2`, `docker-image-id =
    /// 0:sha256:…`, a package name or NEVRA: anything `dnf install` takes.
    pub capability: String,
    /// The repositories: a spec's (its `repos`, completed from `.repo` files), or none to
    /// take every enabled repository of `settings.reposdir`, as dnf does.
    pub spec: Option<PathBuf>,
    /// Ad-hoc repositories (`--repo URL`), searched besides the spec's.
    pub urls: Vec<String>,
    /// Keys that turn gpgcheck on for the `urls` repositories (`--gpgkey`).
    pub url_gpgkeys: Vec<String>,
    /// Target RPM arch (dnf's arch policy: compatible arches and noarch also qualify).
    pub arch: String,
    /// Also fetch the image RPMs the chosen one requires (its base images), transitively.
    pub with_base: bool,
    pub settings: RepoSettings,
}

/// What the repositories gave for a query.
#[derive(Debug, Clone)]
pub struct Found {
    /// The image RPM providing the capability, and where its verified file is.
    pub image: FoundRpm,
    /// With `with_base`: the image RPMs it requires, base first.
    pub bases: Vec<FoundRpm>,
}

#[derive(Debug, Clone)]
pub struct FoundRpm {
    pub package: LockedPackage,
    /// In the RPM cache, size and checksum verified (and signature, for gpgcheck repos).
    pub path: PathBuf,
}

/// Chooses the image RPM for `query.capability` and fetches it (and its bases with
/// `with_base`) into the RPM cache, verified.
pub fn find_and_fetch(query: &RepoQuery) -> Result<Found, FindError> {
    let entries = repo_entries(query)?;
    let cache = MetadataCache::new(query.settings.cache_root());
    let load_opts = LoadOptions { refresh: query.settings.refresh };
    let loaded: Vec<Arc<LoadedRepo>> = std::thread::scope(|scope| {
        let handles: Vec<_> = entries.iter().map(|e| scope.spawn(|| cache.load(&strata_lock::source_of(e), &load_opts).map(Arc::new))).collect();
        handles.into_iter().map(|h| h.join().expect("repo loader thread panicked")).collect::<Result<_, _>>()
    })?;
    let chosen = choose(&query.capability, &entries, &loaded, &query.arch, query.with_base)?;

    let mut lock = Lockfile::new();
    let mut packages = Vec::new();
    for &(repo, id) in &chosen {
        let r = &loaded[repo];
        lock.repos.insert(r.id.clone(), LockedRepo { repomd_checksum: r.repomd_checksum.clone(), baseurl: r.baseurl.clone() });
        packages.push(strata_lock::locked_package(r, id));
    }
    lock.images.insert(FETCH_SET.to_string(), LockedImage { inputs: String::new(), arch: query.arch.clone(), packages: packages.clone() });
    let fetched = strata_pipeline::fetch(&lock, &[FETCH_SET.to_string()], &entries, &query.settings.cache_root(), &strata_pipeline::NoProgress, &strata_pipeline::Cancel::new())
        .map_err(|e| FindError::Fetch(Box::new(e)))?;
    let mut found: Vec<FoundRpm> = packages
        .into_iter()
        .map(|package| {
            let path = fetched.path(&package).expect("every package of the lock was fetched").to_path_buf();
            FoundRpm { package, path }
        })
        .collect();
    let image = found.pop().expect("the chosen image is last");
    Ok(Found { image, bases: found })
}

/// The query's repositories, resolved as a spec's are: `.repo` files for ids given alone,
/// variables substituted, relative URLs anchored, enable/disable patterns applied.
pub fn repo_entries(query: &RepoQuery) -> Result<Vec<RepoEntry>, FindError> {
    let mut vars = Vars::for_arch(&query.arch);
    vars.releasever = query.settings.releasever.clone();
    let opts = RepoOptions { reposdir: query.settings.reposdir.clone(), enable: query.settings.enable.clone(), disable: query.settings.disable.clone() };
    let mut entries = Vec::new();
    if query.spec.is_some() || query.urls.is_empty() {
        let spec = match &query.spec {
            Some(path) => Spec::load(path)?,
            // No spec and no URL: every enabled repository of the reposdir, as dnf uses.
            None => Spec { path: PathBuf::from("."), repos: None, images: BTreeMap::new(), layers: Default::default(), compression: None },
        };
        entries = spec.repos(&opts, &vars)?;
    }
    for (i, url) in query.urls.iter().enumerate() {
        let id = url_repo_id(url, i, &entries);
        let gpgcheck = !query.url_gpgkeys.is_empty();
        let entry = RepoEntry { id, baseurl: vec![url.clone()], gpgcheck: Some(gpgcheck), gpgkey: query.url_gpgkeys.clone(), ..Default::default() };
        // Through a spec of its own so that `$basearch` and relative paths mean what they
        // mean in a spec (relative to the working folder here).
        let spec = Spec { path: PathBuf::from("./--repo"), repos: Some(vec![entry]), images: BTreeMap::new(), layers: Default::default(), compression: None };
        let no_selection = RepoOptions { reposdir: opts.reposdir.clone(), enable: Vec::new(), disable: Vec::new() };
        entries.extend(spec.repos(&no_selection, &vars)?);
    }
    Ok(entries)
}

/// `--repo URL`'s id: the URL's last path segment (as `dnf --repofrompath` users name
/// them), made unique among the other repositories.
fn url_repo_id(url: &str, index: usize, others: &[RepoEntry]) -> String {
    let path = url.split_once("://").map_or(url, |(_, rest)| rest);
    let last = path.trim_end_matches('/').rsplit('/').next().unwrap_or("");
    let clean: String = last.chars().map(|c| if c.is_ascii_alphanumeric() || "-_.".contains(c) { c } else { '-' }).collect();
    let base = if clean.trim_matches(['-', '.']).is_empty() { "repo".to_string() } else { clean };
    if others.iter().any(|e| e.id == base) || index > 0 {
        format!("{base}-{}", index + 1)
    } else {
        base
    }
}

/// How deep `with_base` follows bases of bases: far past any real image's ancestry, and a
/// bound for a repository whose image RPMs require each other in a cycle.
const MAX_BASE_DEPTH: usize = 64;

/// The image RPM for `capability` (the package a one-item request installs, its Requires
/// ignored), then with `with_base` the ones its `container-image-id(…)` Requires name,
/// each chosen the same way: base first, the image last. Indexes into `loaded`.
fn choose(capability: &str, entries: &[RepoEntry], loaded: &[Arc<LoadedRepo>], arch: &str, with_base: bool) -> Result<Vec<(usize, PkgId)>, FindError> {
    let pool: Vec<PoolRepo<'_>> = loaded.iter().zip(entries).map(|(repo, e)| PoolRepo { repo, priority: e.priority(), cost: e.cost(), excludes: e.exclude.clone() }).collect();
    let image = best(capability, &pool, loaded, arch)?;
    let mut chain = vec![image];
    while with_base && chain.len() <= MAX_BASE_DEPTH {
        let &(repo, id) = chain.last().expect("the image is first");
        let base_ids: Vec<String> = loaded[repo].index.package(id).requires().filter(|r| r.name.starts_with("container-image-id(")).map(|r| r.name.to_string()).collect();
        // An image has one base; a package naming several is followed along the first.
        let Some(base_id) = base_ids.into_iter().next() else { break };
        let base = best(&base_id, &pool, loaded, arch)?;
        if chain.contains(&base) || chain.len() >= MAX_BASE_DEPTH {
            let nevra = |&(r, i): &(usize, PkgId)| loaded[r].index.package(i).nevra();
            return Err(FindError::BaseCycle { capability: capability.to_string(), chain: chain.iter().chain([&base]).map(nevra).collect::<Vec<_>>().join(" → ") });
        }
        chain.push(base);
    }
    chain.reverse();
    Ok(chain)
}

/// The one package a request for `capability` installs, its Requires ignored.
fn best(capability: &str, pool: &[PoolRepo<'_>], loaded: &[Arc<LoadedRepo>], arch: &str) -> Result<(usize, PkgId), FindError> {
    let repos_named = || loaded.iter().map(|r| format!("`{}`", r.id)).collect::<Vec<_>>().join(", ");
    let request = Request { packages: vec![solver_form(capability)], exclude: Vec::new(), install_weak_deps: false, arch: arch.to_string() };
    match strata_solve::solve_without_requires(pool, &request) {
        Ok(selected) => match selected.as_slice() {
            [one] => Ok((one.repo, one.id)),
            _ => Err(FindError::NoTarget { capability: capability.to_string(), packages: selected.iter().map(|s| loaded[s.repo].index.package(s.id).nevra()).collect::<Vec<_>>().join(", ") }),
        },
        Err(SolveError::UnknownPackages(unknown)) => {
            let mut offered = unknown.into_iter().flat_map(|u| u.suggestions).collect::<Vec<_>>();
            offered.extend(images_offered(loaded, 8));
            offered.dedup();
            Err(FindError::NotProvided { capability: capability.to_string(), repos: repos_named(), offered })
        }
        Err(SolveError::Unsatisfiable { explanation }) => Err(FindError::Unsatisfiable { capability: capability.to_string(), repos: repos_named(), explanation, offered: providers_of(capability, loaded) }),
        Err(SolveError::BadRequest { reason, .. }) => Err(FindError::BadCapability { capability: capability.to_string(), reason }),
        Err(SolveError::Repo(e)) => Err(FindError::Repo(e)),
    }
}

/// The request as the solver reads it. strata-solve accepts only rpm's version characters
/// in a request's EVR, but the seed's `docker-image-id = 0:sha256:ID` carries a `:` in its
/// version; the rich-dependency form `(…)` is parsed with rpm's own EVR rule (epoch =
/// leading digits before the first `:`, as `parseEVR`) and means the same single
/// requirement.
fn solver_form(capability: &str) -> String {
    let words: Vec<&str> = capability.split_whitespace().collect();
    match words.as_slice() {
        [_, _, evr] if !capability.trim_start().starts_with('(') && strata_rpm::EvrRef::parse(evr).version.contains(':') => format!("({})", words.join(" ")),
        _ => capability.trim().to_string(),
    }
}

/// Up to `max` of the image names the repositories offer, as `container-image(NAME) =
/// V-R` (the newest of each package), for "what is there instead".
fn images_offered(loaded: &[Arc<LoadedRepo>], max: usize) -> Vec<String> {
    let mut out = BTreeMap::new();
    for repo in loaded {
        for name in repo.index.names() {
            for id in repo.index.ids_by_name(name) {
                let p = repo.index.package(id);
                if let Some(prov) = p.provides().find(|d| d.name.starts_with("container-image(") && !d.name.contains(':') && d.op.is_some()) {
                    out.insert(format!("{} ({})", prov, p.nevra()), ());
                }
            }
        }
    }
    out.into_keys().take(max).collect()
}

/// Every provide named as `capability`'s name, with the package giving it: the versions a
/// constraint could have matched.
fn providers_of(capability: &str, loaded: &[Arc<LoadedRepo>]) -> Vec<String> {
    let name = strata_rpm::Dep::parse(capability).map(|d| d.name).unwrap_or_else(|_| capability.to_string());
    let mut out = Vec::new();
    for repo in loaded {
        for (id, prov) in repo.index.whatprovides(&name) {
            out.push(format!("{prov} ({} in `{}`)", repo.index.package(id).nevra(), repo.id));
        }
    }
    out.sort();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_with_a_colon_in_the_version_go_to_the_solver_as_rich_dependencies() {
        assert_eq!(solver_form("docker-image-id = 0:sha256:ab"), "(docker-image-id = 0:sha256:ab)");
        assert_eq!(solver_form("docker-image-id = sha256:ab"), "(docker-image-id = sha256:ab)");
        assert_eq!(solver_form(" container-image(web) >= 1.2 "), "container-image(web) >= 1.2");
        assert_eq!(solver_form("container-image-id(sha256:ab)"), "container-image-id(sha256:ab)");
        assert_eq!(solver_form("web = 1:2-3"), "web = 1:2-3");
    }

    #[test]
    fn url_repos_are_named_after_their_folder() {
        assert_eq!(url_repo_id("file:///srv/images/rpms/", 0, &[]), "rpms");
        assert_eq!(url_repo_id("https://h/", 0, &[]), "h");
        assert_eq!(url_repo_id("file:///", 0, &[]), "repo");
        assert_eq!(url_repo_id("/x/rpms", 1, &[]), "rpms-2");
        let taken = [RepoEntry { id: "rpms".into(), ..Default::default() }];
        assert_eq!(url_repo_id("/x/rpms", 0, &taken), "rpms-1");
    }
}
