//! Where things are and which repositories are used: the settings every operation shares,
//! with the defaults `strata` documents.

use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use strata_lock::ResolveOptions;
use strata_repo::MetadataCache;
use strata_spec::RepoOptions;

/// Options that pick and load repositories (the CLI's repo options).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepoSettings {
    /// Metadata (and RPM, log, staging) cache; `None`: `$STRATA_CACHE_DIR`, else
    /// `$XDG_CACHE_HOME/strata`, else `~/.cache/strata`.
    pub cache_dir: Option<PathBuf>,
    /// Value of `$releasever` in repo URLs.
    pub releasever: Option<String>,
    /// Folder of `.repo` files for repos the spec names by id only.
    pub reposdir: PathBuf,
    /// Repo id patterns to enable (applied after `disable`).
    pub enable: Vec<String>,
    /// Repo id patterns to disable (`*` for all).
    pub disable: Vec<String>,
    /// Check every repo's repomd.xml now, even if the cached copy has not expired.
    pub refresh: bool,
}

impl Default for RepoSettings {
    fn default() -> RepoSettings {
        RepoSettings {
            cache_dir: None,
            releasever: None,
            reposdir: PathBuf::from("/etc/yum.repos.d"),
            enable: Vec::new(),
            disable: Vec::new(),
            refresh: false,
        }
    }
}

impl RepoSettings {
    /// The cache folder, defaults applied.
    pub fn cache_root(&self) -> PathBuf {
        self.cache_dir.clone().unwrap_or_else(MetadataCache::default_root)
    }

    pub(crate) fn repo_options(&self) -> RepoOptions {
        RepoOptions { reposdir: self.reposdir.clone(), enable: self.enable.clone(), disable: self.disable.clone() }
    }

    /// What `strata_lock::resolve_spec` needs to resolve `images` (empty: all).
    pub fn resolve_options(&self, images: Vec<String>) -> ResolveOptions<'static> {
        ResolveOptions {
            cache: MetadataCache::new(self.cache_root()),
            repos: self.repo_options(),
            releasever: self.releasever.clone(),
            refresh: self.refresh,
            images,
            on_step: None,
        }
    }
}

/// The image store when none is named: `$STRATA_STORE`, else `$XDG_DATA_HOME/strata/store`,
/// else `~/.local/share/strata/store`.
pub fn default_store() -> PathBuf {
    if let Some(p) = std::env::var_os("STRATA_STORE").filter(|p| !p.is_empty()) {
        return p.into();
    }
    let data = std::env::var_os("XDG_DATA_HOME")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap_or_else(|| "/tmp".into())).join(".local/share"));
    data.join("strata").join("store")
}

/// `NAME.lock` beside the spec `NAME.json` unless told otherwise
/// ([`strata_lock::default_lock_path`]).
pub fn lock_path(spec: &Path, explicit: Option<&Path>) -> PathBuf {
    explicit.map(Path::to_path_buf).unwrap_or_else(|| strata_lock::default_lock_path(spec))
}

/// [`lock_path`], refused when the default lock beside the spec is a symlink: the spec's
/// folder may be someone else's repository, and a committed `strata.lock -> /etc/passwd`
/// would have a root `strata resolve` replace that file. A path given explicitly is the
/// user's own choice and follows strata-output's rule (links followed, streams written
/// through).
pub fn checked_lock_path(spec: &Path, explicit: Option<&Path>) -> Result<PathBuf> {
    let path = lock_path(spec, explicit);
    if explicit.is_none() {
        if let Ok(target) = std::fs::read_link(&path) {
            return Err(Error::LockIsSymlink { path, target });
        }
    }
    Ok(path)
}

/// `$SOURCE_DATE_EPOCH` as seconds; `None` when unset or blank.
pub fn source_date_epoch_from_env() -> Result<Option<u64>> {
    match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(v) if !v.trim().is_empty() => {
            v.trim().parse().map(Some).map_err(|source| Error::SourceDateEpoch { value: v.clone(), source })
        }
        _ => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_beside_spec() {
        assert_eq!(lock_path(Path::new("/a/b/images.json"), None), Path::new("/a/b/images.lock"));
        assert_eq!(lock_path(Path::new("/a/b/images-updates.json"), None), Path::new("/a/b/images-updates.lock"));
        assert_eq!(lock_path(Path::new("strata.json"), None), Path::new("strata.lock"));
        assert_eq!(lock_path(Path::new("images.json"), None), Path::new("images.lock"));
        assert_eq!(lock_path(Path::new("x.json"), Some(Path::new("/l"))), Path::new("/l"));
    }

    #[test]
    fn default_lock_through_a_symlink_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let spec = dir.path().join("spec.json");
        std::os::unix::fs::symlink("/etc/passwd", dir.path().join("spec.lock")).unwrap();
        let e = checked_lock_path(&spec, None).unwrap_err();
        assert!(e.to_string().starts_with(&format!("refusing to use {}: it is a symlink (to /etc/passwd)", dir.path().join("spec.lock").display())), "{e}");
        // Named explicitly, it is the user's choice.
        assert!(checked_lock_path(&spec, Some(&dir.path().join("spec.lock"))).is_ok());
    }
}
