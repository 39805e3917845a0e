//! Getting the RPMs of a lock onto local disk for composing.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use strata_lock::{LockedPackage, Lockfile};

pub struct LocalRpms {
    paths: HashMap<String, PathBuf>,
}

impl strata_compose::RpmLocator for LocalRpms {
    fn locate(&self, pkg: &LockedPackage) -> Result<PathBuf, String> {
        self.paths.get(&pkg.checksum.value).cloned().ok_or_else(|| "not fetched".to_string())
    }
}

pub fn fetch_for(lock: &Lockfile, images: &[String], _cache_root: &Path, _progress: bool) -> anyhow::Result<LocalRpms> {
    let mut paths = HashMap::new();
    for name in images {
        for p in &lock.images[name].packages {
            let base = &lock.repos[&p.repo].baseurl;
            let base = base.strip_prefix("file://").unwrap_or(base);
            paths.insert(p.checksum.value.clone(), Path::new(base).join(&p.location));
        }
    }
    Ok(LocalRpms { paths })
}
