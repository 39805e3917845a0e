//! The compose record: what an image was made from and of, kept in the store beside it
//! (`STORE/strata/records/<manifest hex>`). `compose --check` compares a new lock with it,
//! `compose --report` reads layer sizes and the previous build from it.

use crate::Error;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use strata_lock::{LockedImage, LockedRepo};
use strata_oci::store::Store;
use strata_spec::ImageSpec;

pub(crate) const NAMESPACE: &str = "records";
pub const RECORD_KIND: &str = "strata.compose/1";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ComposeRecord {
    pub kind: String,
    pub image: String,
    pub reference: String,
    pub inputs: String,
    pub manifest: String,
    pub manifest_size: u64,
    pub config: String,
    pub config_size: u64,
    pub created: u64,
    pub strata_version: String,
    pub spec: ImageSpec,
    pub lock: LockedImage,
    pub repos: BTreeMap<String, LockedRepo>,
    pub layers: Vec<RecordLayer>,
    /// The image this build replaced under the same tag, if any.
    pub previous: Option<Previous>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordLayer {
    /// The plan's layer id, or `top`.
    pub id: String,
    /// NEVRAs.
    pub packages: Vec<String>,
    pub digest: String,
    pub diff_id: String,
    pub size: u64,
    /// Taken from the layer cache rather than built by this compose.
    pub reused: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Previous {
    pub manifest: String,
    pub manifest_size: u64,
    pub config_size: u64,
    /// `(digest, size)` of each layer.
    pub layers: Vec<(String, u64)>,
}

fn key(manifest: &str) -> &str {
    manifest.strip_prefix("sha256:").unwrap_or(manifest)
}

impl ComposeRecord {
    pub fn write(&self, store: &Store) -> Result<(), Error> {
        let bytes = serde_json::to_vec_pretty(self).expect("record serialises");
        store.write_meta(NAMESPACE, key(&self.manifest), &bytes)?;
        Ok(())
    }

    /// The record of the image with this manifest digest, if strata composed it.
    pub fn read(store: &Store, manifest: &str) -> Result<Option<ComposeRecord>, Error> {
        let Some(bytes) = store.read_meta(NAMESPACE, key(manifest))? else { return Ok(None) };
        Ok(serde_json::from_slice::<ComposeRecord>(&bytes).ok().filter(|r| r.kind == RECORD_KIND))
    }
}
