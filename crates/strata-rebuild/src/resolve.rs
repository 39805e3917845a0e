//! Resolving a registered spec again, as its build would now: the whole spec against the
//! repositories' current metadata (refreshed), merged over the lock its commit holds and
//! layers planned as `strata resolve` plans them — the complete lock a rebuild composes
//! with `--locked`.

use crate::Fresh;
use std::collections::BTreeMap;
use std::path::Path;
use strata_client::Source;
use strata_lock::Lockfile;
use strata_pipeline::RepoSettings;
use strata_spec::Spec;

/// The complete lock of the spec at `spec_path` resolved now.
pub fn resolve_spec_dir(spec_path: &Path, settings: &RepoSettings) -> Result<Lockfile, String> {
    if !std::fs::symlink_metadata(spec_path).is_ok_and(|m| m.file_type().is_file()) {
        return Err(format!("{}: not a regular file (a symlink is not followed)", spec_path.display()));
    }
    let spec = Spec::load(spec_path).map_err(|e| format!("{}: {e}", spec_path.display()))?;
    let opts = RepoSettings { refresh: true, ..settings.clone() }.resolve_options(Vec::new());
    let fresh = strata_lock::resolve_spec(&spec, &opts).map_err(|e| e.to_string())?;
    let lock_path = strata_lock::default_lock_path(spec_path);
    // Only a regular file (never through a symlink a repository may hold).
    let regular = std::fs::symlink_metadata(&lock_path).is_ok_and(|m| m.file_type().is_file());
    let existing = if regular { Lockfile::read(&lock_path).ok() } else { None };
    let settings = strata_lock::layer_settings(&spec.layers);
    Ok(strata_lock::updated(existing.as_ref(), fresh, |n| spec.images.contains_key(n), false, &settings))
}

/// The lock's images as the planner sees them, all built from `source`.
pub fn fresh_images(lock: &Lockfile, source: &Source, moved_from: Option<&str>, spec_digest: &str) -> BTreeMap<String, Fresh> {
    lock.images
        .iter()
        .map(|(name, img)| {
            let packages = img.packages.iter().map(|p| (p.nevra(), lock.repos.get(&p.repo).map_or_else(|| p.repo.clone(), |r| r.baseurl.clone()))).collect();
            let fresh = Fresh { content: img.content_digest(), packages, source: source.clone(), moved_from: moved_from.map(str::to_string), spec_digest: spec_digest.to_string() };
            (name.clone(), fresh)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_spec_that_is_a_symlink_is_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("elsewhere.json"), "{}").unwrap();
        std::os::unix::fs::symlink(dir.path().join("elsewhere.json"), dir.path().join("strata.json")).unwrap();
        let err = super::resolve_spec_dir(&dir.path().join("strata.json"), &Default::default()).unwrap_err();
        assert!(err.contains("not a regular file"), "{err}");
    }
}
