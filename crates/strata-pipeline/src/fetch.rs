//! Getting the RPMs of a lock onto local disk for composing (`strata-fetch`), with the
//! signature keys of repos that have `gpgcheck` on.

use crate::{Cancel, Error, Event, Progress, Result};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use strata_fetch::{jobs_for, FetchJob, FetchOptions, GpgKey, Recheck, RpmCache};
use strata_lock::{LockedPackage, Lockfile};
use strata_repo::Fetcher;
use strata_spec::RepoEntry;

/// The fetched files, by checksum value, and what fetched them (to fetch one again when
/// composing finds it damaged). It is the [`strata_compose::RpmLocator`] of a compose.
pub struct FetchedRpms {
    paths: HashMap<String, PathBuf>,
    jobs: HashMap<String, FetchJob>,
    cache: RpmCache,
}

impl FetchedRpms {
    /// The cached file of `pkg`, if it was fetched.
    pub fn path(&self, pkg: &LockedPackage) -> Option<&Path> {
        self.paths.get(&pkg.checksum.value).map(PathBuf::as_path)
    }
}

impl strata_compose::RpmLocator for FetchedRpms {
    fn locate(&self, pkg: &LockedPackage) -> Result<PathBuf, String> {
        self.paths.get(&pkg.checksum.value).cloned().ok_or_else(|| "not in the RPM cache".to_string())
    }

    fn recheck(&self, pkg: &LockedPackage) -> Result<bool, String> {
        let job = self.jobs.get(&pkg.checksum.value).ok_or_else(|| "not in the RPM cache".to_string())?;
        match self.cache.recheck(job, &FetchOptions::default()) {
            Ok(Recheck::Intact) => Ok(false),
            Ok(Recheck::Refetched) => Ok(true),
            Err(e) => Err(e.to_string()),
        }
    }
}

/// Fetches every package of `images` in `lock` into `CACHE/rpms`, verified. `repos` are the
/// spec's repos: those with `gpgcheck` on have every package's header signature verified
/// with their `gpgkey`s. Downloads run in parallel; `cancel` is checked before and after.
pub fn fetch(lock: &Lockfile, images: &[String], repos: &[RepoEntry], cache_root: &Path, progress: &dyn Progress, cancel: &Cancel) -> Result<FetchedRpms> {
    cancel.check()?;
    let keys = repo_keys(repos)?;
    let mut jobs = jobs_for(lock, images)?;
    for job in &mut jobs {
        job.gpg_keys = keys.get(&job.repo).cloned();
    }
    let cache = RpmCache::open(rpm_cache_dir(cache_root))?;
    let paths = cache.fetch_all(&jobs, &FetchOptions::default(), &Relay(progress))?;
    cancel.check()?;
    Ok(FetchedRpms {
        paths: jobs.iter().map(|j| j.checksum.value.clone()).zip(paths).collect(),
        jobs: jobs.into_iter().map(|j| (j.checksum.value.clone(), j)).collect(),
        cache,
    })
}

/// The RPM cache under a cache folder (what [`fetch`] fills and [`gc`](crate::gc) prunes).
pub fn rpm_cache_dir(cache_root: &Path) -> PathBuf {
    cache_root.join("rpms")
}

/// gpgcheck repos → their keys (local files as paths, remote keys downloaded now).
fn repo_keys(repos: &[RepoEntry]) -> Result<BTreeMap<String, Vec<GpgKey>>> {
    let fetcher = Fetcher::new();
    let mut out = BTreeMap::new();
    for repo in repos.iter().filter(|r| r.gpgcheck()) {
        if repo.gpgkey.is_empty() {
            return Err(Error::NoGpgKey { repo: repo.id.clone() });
        }
        let mut keys = Vec::new();
        for url in &repo.gpgkey {
            let key = match url.strip_prefix("file://").or_else(|| url.starts_with('/').then_some(url.as_str())) {
                Some(path) => GpgKey::File(PathBuf::from(path)),
                None => GpgKey::Data(fetcher.get(&repo.id, url).map_err(|e| Error::GpgKey { url: url.clone(), repo: repo.id.clone(), source: Box::new(e) })?),
            };
            keys.push(key);
        }
        out.insert(repo.id.clone(), keys);
    }
    Ok(out)
}

/// strata-fetch's progress calls as [`Event`]s.
struct Relay<'a>(&'a dyn Progress);

impl strata_fetch::Progress for Relay<'_> {
    fn start(&self, packages: usize, bytes: u64) {
        self.0.event(&Event::FetchStarted { packages, bytes });
    }
    fn advance(&self, package: &str, bytes: u64) {
        self.0.event(&Event::FetchAdvanced { package, bytes });
    }
    fn done_one(&self, package: &str, cached: bool) {
        self.0.event(&Event::PackageFetched { package, cached });
    }
    fn finish(&self) {
        self.0.event(&Event::FetchFinished);
    }
}
