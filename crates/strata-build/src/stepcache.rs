//! The step cache: a filesystem step's chain key → the layer it made (or that it made none),
//! kept in the store beside the blobs (`STORE/strata/build-steps/<key>`). A hit whose blob
//! the store no longer has is a miss.

use crate::image::LayerRef;
use crate::Error;
use serde::{Deserialize, Serialize};
use std::str::FromStr;
use strata_oci::oci_spec::image::{Digest, MediaType};
use strata_oci::store::Store;

const NAMESPACE: &str = "build-steps";

#[derive(Serialize, Deserialize)]
struct Cached {
    /// `None`: the step changed no file.
    layer: Option<(String, String, u64, String)>,
}

fn name(key: &str) -> &str {
    key.strip_prefix("sha256:").unwrap_or(key)
}

/// `Some(None)`: cached, no layer; `Some(Some(l))`: cached layer `l`; `None`: not cached.
pub(crate) fn lookup(store: &Store, key: &str) -> Result<Option<Option<LayerRef>>, Error> {
    let Some(bytes) = store.read_meta(NAMESPACE, name(key))? else { return Ok(None) };
    let Ok(c) = serde_json::from_slice::<Cached>(&bytes) else { return Ok(None) };
    let Some((digest, diff_id, size, media)) = c.layer else { return Ok(Some(None)) };
    let (Ok(digest), Ok(diff_id)) = (Digest::from_str(&digest), Digest::from_str(&diff_id)) else { return Ok(None) };
    if !store.reuse_blob(&digest, size)? {
        return Ok(None);
    }
    Ok(Some(Some(LayerRef { digest, diff_id, size, media_type: MediaType::from(media.as_str()) })))
}

pub(crate) fn record(store: &Store, key: &str, layer: Option<&LayerRef>) -> Result<(), Error> {
    let c = Cached { layer: layer.map(|l| (l.digest.to_string(), l.diff_id.to_string(), l.size, l.media_type.to_string())) };
    store.write_meta(NAMESPACE, name(key), &serde_json::to_vec(&c).expect("serialises"))?;
    Ok(())
}

/// Forgets step-cache entries and build records whose blobs the store no longer has (a gc
/// removed them). Returns how many went.
pub fn prune_metadata(store: &Store) -> Result<usize, Error> {
    let steps = store.prune_meta(NAMESPACE, |_, bytes| {
        let c: Cached = serde_json::from_slice(bytes).ok()?;
        match c.layer {
            None => Some(Vec::new()),
            Some((digest, ..)) => Some(vec![Digest::from_str(&digest).ok()?]),
        }
    })?;
    let builds = store.prune_meta(crate::record::NAMESPACE, |key, _| Some(vec![Digest::from_str(&format!("sha256:{key}")).ok()?]))?;
    let created = store.prune_meta(CREATED_NAMESPACE, |_, bytes| {
        let f: FirstBuilt = serde_json::from_slice(bytes).ok()?;
        f.layers.iter().map(|d| Digest::from_str(d).ok()).collect()
    })?;
    Ok(steps + builds + created)
}

/// Where the time each built image's content was first built is kept.
const CREATED_NAMESPACE: &str = "build-created";

#[derive(Serialize, Deserialize)]
struct FirstBuilt {
    created: u64,
    /// The image's layers: the entry goes when the store no longer has one (gc).
    layers: Vec<String>,
}

/// The `created` time for an image whose config (with every time taken out) and layers
/// are `timeless` and `layers`: the time this same content was first built, else `now`
/// (recorded). Without `SOURCE_DATE_EPOCH`, a rebuild that changes nothing (every step
/// cached, or run again to the same bytes) is then the same image with the same digest,
/// instead of a new one that differs only in its timestamps.
pub(crate) fn first_created(store: &Store, timeless: &[u8], layers: &[&Digest], now: u64) -> Result<u64, Error> {
    let key = strata_oci::sha256_hex_of(timeless);
    let key = name(key.as_ref()).to_string();
    if let Some(bytes) = store.read_meta(CREATED_NAMESPACE, &key)? {
        if let Ok(f) = serde_json::from_slice::<FirstBuilt>(&bytes) {
            return Ok(f.created);
        }
    }
    let f = FirstBuilt { created: now, layers: layers.iter().map(|d| d.to_string()).collect() };
    store.write_meta(CREATED_NAMESPACE, &key, &serde_json::to_vec(&f).expect("serialises"))?;
    Ok(now)
}
