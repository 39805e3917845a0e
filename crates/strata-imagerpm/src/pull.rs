//! `strata pull 'rpm:CAPABILITY'`: the image RPM chosen for a capability
//! ([`crate::from_repo`]), fetched and verified, and the image it carries loaded into the
//! store and tagged ([`crate::unwrap`]); with `with_base`, its base images' RPMs too.

use crate::from_repo::{find_and_fetch, FindError, FoundRpm, RepoQuery};
use crate::unwrap::{load_image_rpm, UnwrapError, Unwrapped};
use serde::Serialize;
use std::path::PathBuf;
use strata_oci::reference::ImageRef;
use strata_oci::store::Store;

#[derive(Debug, thiserror::Error)]
pub enum PullError {
    #[error(transparent)]
    Find(#[from] FindError),
    #[error(transparent)]
    Unwrap(#[from] UnwrapError),
}

/// One image loaded from an RPM: what `strata pull rpm: --json` prints per image.
#[derive(Debug, Clone, Serialize)]
pub struct PulledRpm {
    #[serde(flatten)]
    pub image: Unwrapped,
    /// The repository it came from.
    pub repo: String,
    /// The verified RPM in the RPM cache.
    pub rpm: PathBuf,
}

#[derive(Debug, Clone, Serialize)]
pub struct RpmPullReport {
    pub capability: String,
    #[serde(flatten)]
    pub image: PulledRpm,
    /// With `with_base`: the base images loaded as well, base first.
    pub bases: Vec<PulledRpm>,
}

/// Resolves `query`, fetches the chosen image RPM (and with `with_base` its bases), and
/// loads each image into `store`: the bases under their own names, the image under `tag`
/// (default: the package's `container-image(NAME:TAG)`). Bases are loaded first, so an
/// image is never tagged while a base it was asked with is missing.
pub fn pull_from_repos(store: &Store, query: &RepoQuery, tag: Option<&ImageRef>) -> Result<RpmPullReport, PullError> {
    let found = find_and_fetch(query)?;
    let load = |rpm: &FoundRpm, tag: Option<&ImageRef>| -> Result<PulledRpm, PullError> {
        let image = load_image_rpm(store, &rpm.path, tag)?;
        Ok(PulledRpm { image, repo: rpm.package.repo.clone(), rpm: rpm.path.clone() })
    };
    let bases = found.bases.iter().map(|b| load(b, None)).collect::<Result<Vec<_>, _>>()?;
    let image = load(&found.image, tag)?;
    Ok(RpmPullReport { capability: query.capability.clone(), image, bases })
}
