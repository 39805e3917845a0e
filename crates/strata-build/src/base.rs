//! Where a FROM (or `COPY --from=<image>`) image comes from: the store first — composed
//! images by name (`FROM web`), anything by digest (`name@sha256:...`) — then a registry,
//! through the caller's [`Puller`].

use crate::image::ImageState;
use crate::Error;
use std::str::FromStr;
use strata_oci::oci_spec::image::Digest;
use strata_oci::store::Store;

/// Fetches an image the store does not have into it; `strata build` passes one backed by
/// the registry client. Returns the digest of the image manifest it stored (for a
/// multi-platform reference, the chosen platform's; the client verified a pull by digest).
pub trait Puller: Sync {
    fn pull(&self, reference: &str, store: &Store) -> Result<String, String>;
}

/// When a FROM image is looked up in a registry although the store has it (docker's
/// `--pull`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum PullPolicy {
    /// Only images the store lacks (the default).
    #[default]
    Missing,
    /// Every reference that names a registry and no digest is resolved to its current
    /// digest at the registry, then taken by that digest (the store keeps the blobs it
    /// has): a tag that moved since an earlier pull is never built on stale. Names
    /// without a registry (`FROM web`, a composed image) stay store-only.
    Always,
}

/// Whether a reference's first component is a registry host (`localhost`, a name with a
/// dot, or `HOST:PORT`), as docker tells a registry from a repository path.
pub fn names_registry(reference: &str) -> bool {
    match reference.split_once('/') {
        Some((first, _)) => first == "localhost" || first.contains('.') || first.contains(':'),
        None => false,
    }
}

pub(crate) fn resolve(store: &Store, name: &str, puller: Option<&dyn Puller>, policy: PullPolicy) -> Result<ImageState, Error> {
    let fail = |message: String| Error::Base { name: name.to_string(), message };
    if let Some((_, digest)) = name.split_once('@') {
        let d = Digest::from_str(digest).map_err(|e| fail(format!("bad digest: {e}")))?;
        if let Ok(img) = store.load_manifest(&d) {
            return ImageState::from_image(&img, name);
        }
    } else if policy == PullPolicy::Always && puller.is_some() && names_registry(name) {
        // Straight to the registry: the store's copy of this tag may be older.
    } else if let Ok(img) = store.resolve(name) {
        return ImageState::from_image(&img, name);
    }
    let Some(puller) = puller else {
        return Err(fail("not in the image store (`strata images` lists it), and no registry access was given".into()));
    };
    let digest = puller.pull(name, store).map_err(|e| fail(format!("not in the image store, and pulling it failed: {e}")))?;
    let d = Digest::from_str(&digest).map_err(|e| fail(format!("the registry client returned digest {digest:?}: {e}")))?;
    let img = store.load_manifest(&d)?;
    ImageState::from_image(&img, name)
}

#[cfg(test)]
mod tests {
    #[test]
    fn registry_references_are_told_from_store_names() {
        use super::names_registry;
        assert!(names_registry("127.0.0.1:5000/web:latest"));
        assert!(names_registry("registry.example.org/base/bb"));
        assert!(names_registry("localhost/web"));
        assert!(!names_registry("web"));
        assert!(!names_registry("web:1"));
        assert!(!names_registry("library/web"));
    }
}
