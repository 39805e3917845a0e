//! Getting the RPMs of a lock onto local disk for composing (`strata-fetch`), with a
//! progress bar on a terminal.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use strata_fetch::{jobs_for, Progress, RpmCache};
use strata_lock::{LockedPackage, Lockfile};

/// The fetched files, by checksum value.
pub struct FetchedRpms {
    paths: HashMap<String, PathBuf>,
}

impl strata_compose::RpmLocator for FetchedRpms {
    fn locate(&self, pkg: &LockedPackage) -> Result<PathBuf, String> {
        self.paths.get(&pkg.checksum.value).cloned().ok_or_else(|| "not in the RPM cache".to_string())
    }
}

/// Fetches every package of `images` into `CACHE/rpms`.
pub fn fetch_for(lock: &Lockfile, images: &[String], cache_root: &Path, show_progress: bool) -> anyhow::Result<FetchedRpms> {
    let jobs = jobs_for(lock, images);
    let cache = RpmCache::open(cache_root.join("rpms"));
    let bar = Bar::new(show_progress);
    let paths = cache.fetch_all(&jobs, 4, &bar)?;
    Ok(FetchedRpms { paths })
}

/// Bytes-weighted bar over packages; absent unless stderr is a terminal.
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
            b.set_length(bytes);
            b.set_style(
                indicatif::ProgressStyle::with_template("{msg:>12} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}")
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
                    .progress_chars("=> "),
            );
            b.set_message(format!("{jobs} RPMs"));
            b.set_draw_target(indicatif::ProgressDrawTarget::stderr());
        }
    }
    fn done(&self, _name: &str, bytes: u64, _downloaded: bool) {
        if let Some(b) = &self.0 {
            b.inc(bytes);
        }
    }
    fn finish(&self) {
        if let Some(b) = &self.0 {
            b.finish_and_clear();
        }
    }
}
