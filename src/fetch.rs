//! Getting the RPMs of a lock onto local disk for composing (`strata-fetch`), with the
//! signature keys of repos that have `gpgcheck` on and a progress bar on a terminal.

use anyhow::Context;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use strata_fetch::{jobs_for, FetchJob, FetchOptions, GpgKey, Progress, Recheck, RpmCache};
use strata_lock::{LockedPackage, Lockfile};
use strata_repo::Fetcher;
use strata_spec::RepoEntry;

/// The fetched files, by checksum value, and what fetched them (to fetch one again).
pub struct FetchedRpms {
    paths: HashMap<String, PathBuf>,
    jobs: HashMap<String, FetchJob>,
    cache: RpmCache,
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

/// Fetches every package of `images` into `CACHE/rpms`. `repos` are the spec's repos: those
/// with `gpgcheck` on have every package's header signature verified with their `gpgkey`s.
pub fn fetch_for(lock: &Lockfile, images: &[String], repos: &[RepoEntry], cache_root: &Path, show_progress: bool) -> anyhow::Result<FetchedRpms> {
    let keys = repo_keys(repos)?;
    let mut jobs = jobs_for(lock, images)?;
    for job in &mut jobs {
        job.gpg_keys = keys.get(&job.repo).cloned();
    }
    let cache = RpmCache::open(cache_root.join("rpms"))?;
    let bar = Bar::new(show_progress);
    let paths = cache.fetch_all(&jobs, &FetchOptions::default(), &bar)?;
    Ok(FetchedRpms {
        paths: jobs.iter().map(|j| j.checksum.value.clone()).zip(paths).collect(),
        jobs: jobs.into_iter().map(|j| (j.checksum.value.clone(), j)).collect(),
        cache,
    })
}

/// gpgcheck repos → their keys (local files as paths, remote keys downloaded now).
fn repo_keys(repos: &[RepoEntry]) -> anyhow::Result<BTreeMap<String, Vec<GpgKey>>> {
    let fetcher = Fetcher::new();
    let mut out = BTreeMap::new();
    for repo in repos.iter().filter(|r| r.gpgcheck()) {
        if repo.gpgkey.is_empty() {
            anyhow::bail!("repo {} has gpgcheck on but no gpgkey; add its key URL, or pass --nogpgcheck", repo.id);
        }
        let mut keys = Vec::new();
        for url in &repo.gpgkey {
            let key = match url.strip_prefix("file://").or_else(|| url.starts_with('/').then_some(url.as_str())) {
                Some(path) => GpgKey::File(PathBuf::from(path)),
                None => GpgKey::Data(fetcher.get(&repo.id, url).with_context(|| format!("fetching gpgkey {url} of repo {}", repo.id))?),
            };
            keys.push(key);
        }
        out.insert(repo.id.clone(), keys);
    }
    Ok(out)
}

/// Bytes-weighted bar over the packages to download; absent unless stderr is a terminal.
struct Bar(Option<indicatif::ProgressBar>);

impl Bar {
    fn new(wanted: bool) -> Bar {
        if !wanted || !std::io::IsTerminal::is_terminal(&std::io::stderr()) {
            return Bar(None);
        }
        Bar(Some(indicatif::ProgressBar::hidden()))
    }
}

impl Progress for Bar {
    fn start(&self, jobs: usize, bytes: u64) {
        if let Some(b) = &self.0 {
            if bytes == 0 {
                return; // everything cached: nothing to show
            }
            b.set_length(bytes);
            b.set_style(
                indicatif::ProgressStyle::with_template("{msg:>14} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}")
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
                    .progress_chars("=> "),
            );
            b.set_message(format!("{jobs} RPMs"));
            b.set_draw_target(indicatif::ProgressDrawTarget::stderr());
        }
    }
    fn advance(&self, _name: &str, bytes: u64) {
        if let Some(b) = &self.0 {
            b.inc(bytes);
        }
    }
    fn done_one(&self, _name: &str, _cached: bool) {}
    fn finish(&self) {
        if let Some(b) = &self.0 {
            b.finish_and_clear();
        }
    }
}
