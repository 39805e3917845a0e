//! Resolving a spec into a lock (`strata resolve`).

use crate::{checked_lock_path, Cancel, Error, Event, Progress, RepoSettings, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use strata_lock::{diff, resolve_spec, Lockfile, ResolveOptions, ResolveStep};
use strata_spec::Spec;

/// What to resolve and where the lock is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResolveRequest {
    /// The spec (JSON).
    pub spec: PathBuf,
    /// Resolve only these images (empty: all); the lock's other images are kept.
    pub images: Vec<String>,
    /// Lock file; `None`: `strata.lock` beside the spec (never through a symlink).
    pub lock: Option<PathBuf>,
    /// Write nothing: fail, naming every difference, unless the lock already matches.
    pub locked: bool,
    pub repos: RepoSettings,
}

impl ResolveRequest {
    /// Every image of `spec`, the default lock and repo settings.
    pub fn new(spec: impl Into<PathBuf>) -> ResolveRequest {
        ResolveRequest { spec: spec.into(), images: Vec::new(), lock: None, locked: false, repos: RepoSettings::default() }
    }
}

/// The outcome of [`resolve`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Resolved {
    /// What the resolve found for the requested images (not merged with the lock's others):
    /// what `strata resolve --json` prints.
    pub lock: Lockfile,
    /// The lock file written (or, with `locked`, checked).
    pub lock_file: PathBuf,
    /// Whether the lock file was checked (`locked`) rather than written.
    pub locked: bool,
}

/// Resolves the requested images and writes the lock file (only when it changed), keeping
/// the lock's other images and replanning layers for all; with `locked`, fails unless the
/// lock already matches.
pub fn resolve(req: &ResolveRequest, progress: &dyn Progress, cancel: &Cancel) -> Result<Resolved> {
    cancel.check()?;
    let spec = Spec::load(&req.spec)?;
    let lock_file = checked_lock_path(&req.spec, req.lock.as_deref())?;
    let fresh = resolve_reported(&spec, &req.repos, &req.images, progress)?;
    cancel.check()?;

    // Only a regular file is read back: `--lock /dev/stdout` or a FIFO is an output only.
    let existing = if lock_file.is_file() || req.locked { Some(Lockfile::read(&lock_file)?) } else { None };
    let settings = strata_lock::layer_settings(&spec.layers);
    if req.locked {
        let mut old = existing.expect("read above when locked");
        let mut expected = strata_lock::updated(Some(&old), fresh.clone(), |n| spec.images.contains_key(n), true, &settings);
        if !req.images.is_empty() {
            old.images.retain(|n, _| req.images.contains(n));
            expected.images.retain(|n, _| req.images.contains(n));
        }
        let differences = diff(&old, &expected);
        if !differences.is_empty() {
            return Err(Error::LockMismatch { path: lock_file, differences: differences.iter().map(ToString::to_string).collect() });
        }
    } else {
        // Images resolved now replace their old entries; with a selection the others stay,
        // unless the spec no longer has them. Layers are planned again for all images.
        let merged = strata_lock::updated(existing.as_ref(), fresh.clone(), |n| spec.images.contains_key(n), !req.images.is_empty(), &settings);
        merged.write(&lock_file)?;
    }
    Ok(Resolved { lock: fresh, lock_file, locked: req.locked })
}

/// `resolve_spec` between ResolveStarted and ResolveFinished (sent also when it fails).
pub(crate) fn resolve_reported(spec: &Spec, repos: &RepoSettings, images: &[String], progress: &dyn Progress) -> Result<Lockfile> {
    progress.event(&Event::ResolveStarted { images });
    let on_step = |step: ResolveStep<'_>| match step {
        ResolveStep::LoadingRepo(repo) => progress.event(&Event::RepoLoading { repo }),
        ResolveStep::Solving(image) => progress.event(&Event::Solving { image }),
    };
    let opts = ResolveOptions { on_step: Some(&on_step), ..repos.resolve_options(images.to_vec()) };
    let fresh = resolve_spec(spec, &opts);
    progress.event(&Event::ResolveFinished);
    Ok(fresh?)
}

/// For compose: resolves the selected images and merges them into the lock, written (only
/// when it changed) when `write`. An unreadable old lock is resolved over, not an error.
pub(crate) fn resolve_into_lock(spec: &Spec, repos: &RepoSettings, selected: &[String], lock_file: &Path, write: bool, progress: &dyn Progress) -> Result<Lockfile> {
    let fresh = resolve_reported(spec, repos, selected, progress)?;
    let existing = if lock_file.is_file() { Lockfile::read(lock_file).ok() } else { None };
    let settings = strata_lock::layer_settings(&spec.layers);
    let merged = strata_lock::updated(existing.as_ref(), fresh, |n| spec.images.contains_key(n), true, &settings);
    if write {
        merged.write(lock_file)?;
    }
    Ok(merged)
}
