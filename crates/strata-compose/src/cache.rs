//! The layer cache: layers by content key, recorded in the store beside the blobs
//! (`STORE/strata/layers/<key>`), so a layer built once — for any image, in any run — is
//! reused as is, without reading, compressing or hashing its content again.

use crate::Error;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use strata_oci::layer::LayerInfo;
use strata_oci::oci_spec::image::{Digest, MediaType};
use strata_oci::store::Store;

const NAMESPACE: &str = "layers";

#[derive(Serialize, Deserialize)]
struct Cached {
    digest: String,
    diff_id: String,
    size: u64,
    tar_size: u64,
    media_type: String,
}

/// Shared by the images of one compose run: two images needing the same new layer at the
/// same time build it once (the second waits for the first).
#[derive(Default)]
pub struct LayerCache {
    inflight: Mutex<HashMap<String, Arc<Mutex<Option<LayerInfo>>>>>,
}

impl LayerCache {
    pub fn new() -> LayerCache {
        LayerCache::default()
    }

    /// The layer with `key`; `build` makes it when neither this run nor the store has it.
    /// The flag says whether it was reused.
    pub(crate) fn get_or_build(&self, store: &Store, key: &str, build: impl FnOnce() -> Result<LayerInfo, Error>) -> Result<(LayerInfo, bool), Error> {
        let slot = self.inflight.lock().expect("layer cache lock").entry(key.to_string()).or_default().clone();
        let mut slot = slot.lock().expect("layer slot lock");
        if let Some(info) = slot.as_ref() {
            return Ok((info.clone(), true));
        }
        let name = key.strip_prefix("sha256:").unwrap_or(key);
        if let Some(info) = lookup(store, name)? {
            *slot = Some(info.clone());
            return Ok((info, true));
        }
        let info = build()?;
        let cached = Cached {
            digest: info.digest.to_string(),
            diff_id: info.diff_id.to_string(),
            size: info.size,
            tar_size: info.tar_size,
            media_type: info.media_type.to_string(),
        };
        store.write_meta(NAMESPACE, name, &serde_json::to_vec(&cached).expect("serialises"))?;
        *slot = Some(info.clone());
        Ok((info, false))
    }
}

/// A recorded layer whose blob is still in the store (gc may have removed it).
fn lookup(store: &Store, name: &str) -> Result<Option<LayerInfo>, Error> {
    let Some(bytes) = store.read_meta(NAMESPACE, name)? else { return Ok(None) };
    // A record that does not parse is treated as absent: the layer is simply built again.
    let Ok(c) = serde_json::from_slice::<Cached>(&bytes) else { return Ok(None) };
    let (Ok(digest), Ok(diff_id)) = (Digest::from_str(&c.digest), Digest::from_str(&c.diff_id)) else { return Ok(None) };
    if !store.reuse_blob(&digest, c.size)? {
        return Ok(None);
    }
    Ok(Some(LayerInfo { diff_id, digest, size: c.size, tar_size: c.tar_size, media_type: MediaType::from(c.media_type.as_str()) }))
}

/// Forgets cached layers and compose records whose blobs the store no longer has (a gc
/// removed them), so the cache never offers what it cannot give. Returns how many went.
pub fn prune_metadata(store: &Store) -> Result<usize, Error> {
    let layers = store.prune_meta(NAMESPACE, |_, bytes| {
        let c: Cached = serde_json::from_slice(bytes).ok()?;
        Some(vec![Digest::from_str(&c.digest).ok()?])
    })?;
    let records = store.prune_meta(crate::record::NAMESPACE, |key, _| Some(vec![Digest::from_str(&format!("sha256:{key}")).ok()?]))?;
    Ok(layers + records)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use strata_oci::layer::{Meta, WriteOptions};

    fn build(store: &Store, content: &[u8], calls: &AtomicUsize) -> Result<LayerInfo, Error> {
        calls.fetch_add(1, Ordering::SeqCst);
        let mut b = store.new_layer();
        b.add_file("etc/x", &Meta::new(0o644), content.len() as u64, content)?;
        Ok(store.put_layer(b, WriteOptions::default())?)
    }

    #[test]
    fn a_key_is_built_once_per_run_and_reused_across_runs_while_its_blob_exists() {
        let d = tempfile::tempdir().unwrap();
        let store = Store::open_or_create(d.path()).unwrap();
        let calls = AtomicUsize::new(0);
        let cache = LayerCache::new();
        let results: Vec<(LayerInfo, bool)> = std::thread::scope(|s| {
            let hs: Vec<_> = (0..4).map(|_| s.spawn(|| cache.get_or_build(&store, "sha256:k1", || build(&store, b"one", &calls)).unwrap())).collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert_eq!(calls.load(Ordering::SeqCst), 1, "four images, one build");
        assert_eq!(results.iter().filter(|r| !r.1).count(), 1);
        assert!(results.windows(2).all(|w| w[0].0 == w[1].0));

        // A later run (new cache object) finds it in the store.
        let (again, reused) = LayerCache::new().get_or_build(&store, "sha256:k1", || build(&store, b"one", &calls)).unwrap();
        assert!(reused);
        assert_eq!(again, results[0].0);
        assert_eq!(calls.load(Ordering::SeqCst), 1);

        // Its blob gone (gc): built again, not trusted blindly.
        std::fs::remove_file(store.blob_path(&again.digest).unwrap()).unwrap();
        let (_, reused) = LayerCache::new().get_or_build(&store, "sha256:k1", || build(&store, b"one", &calls)).unwrap();
        assert!(!reused);
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }
}

