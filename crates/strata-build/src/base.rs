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

pub(crate) fn resolve(store: &Store, name: &str, puller: Option<&dyn Puller>) -> Result<ImageState, Error> {
    let fail = |message: String| Error::Base { name: name.to_string(), message };
    if let Some((_, digest)) = name.split_once('@') {
        let d = Digest::from_str(digest).map_err(|e| fail(format!("bad digest: {e}")))?;
        if let Ok(img) = store.load_manifest(&d) {
            return ImageState::from_image(&img, name);
        }
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
