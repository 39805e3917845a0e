//! The build record: what a `strata build` was made from (base image digest, Dockerfile,
//! context, build arguments) and what it made (manifest and config digests, every step and
//! whether it came from the cache), kept in the store beside the image
//! (`STORE/strata/builds/<manifest hex>`).

use crate::context::SourceTree;
use crate::exec::{Builder, StepReport};
use crate::image::{BaseInfo, ImageState};
use crate::Error;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;
use strata_oci::store::{StagedImage, Store};

pub(crate) const NAMESPACE: &str = "builds";
pub const RECORD_KIND: &str = "strata.build/1";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BuildRecord {
    pub kind: String,
    pub strata_version: String,
    pub created: u64,
    pub dockerfile: String,
    pub dockerfile_digest: String,
    pub context: String,
    pub context_digest: String,
    pub build_args: BTreeMap<String, String>,
    pub target: Option<String>,
    /// `--build-context NAME=VALUE`s given, by NAME.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub build_contexts: BTreeMap<String, String>,
    /// The FROM of the target stage, as written (after expansion).
    pub from: String,
    pub base: Option<RecordBase>,
    pub steps: Vec<RecordStep>,
    pub manifest: String,
    pub config: String,
    pub tags: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct RecordBase {
    /// The FROM as written (after expansion).
    pub name: String,
    /// The manifest digest built on.
    pub digest: String,
    /// The image a `--build-context` put in place of `name` (`digest` is its digest).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build_context: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct RecordStep {
    pub stage: usize,
    pub step: String,
    pub cached: bool,
    pub layer: Option<String>,
}

impl BuildRecord {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(b: &Builder<'_, '_>, state: &ImageState, df_path: &Path, text: &str, context: &SourceTree, args: &BTreeMap<String, String>, from: &str, staged: &StagedImage) -> Result<BuildRecord, Error> {
        let base = state.base.as_ref().map(|BaseInfo { name, digest, build_context }| RecordBase { name: name.clone(), digest: digest.clone(), build_context: build_context.clone() });
        Ok(BuildRecord {
            kind: RECORD_KIND.into(),
            strata_version: env!("CARGO_PKG_VERSION").into(),
            created: b.created,
            dockerfile: df_path.display().to_string(),
            dockerfile_digest: strata_oci::sha256_hex_of(text.as_bytes()).to_string(),
            context: context.dir.display().to_string(),
            context_digest: context.digest("")?,
            build_args: args.clone(),
            target: b.opts.target.clone(),
            build_contexts: b.opts.contexts.clone(),
            from: from.to_string(),
            base,
            steps: b.steps.iter().map(|StepReport { stage, text, cached, layer }| RecordStep { stage: *stage, step: text.clone(), cached: *cached, layer: layer.clone() }).collect(),
            manifest: staged.manifest.digest().to_string(),
            config: staged.config.digest().to_string(),
            tags: b.opts.tags.iter().map(|t| t.to_string()).collect(),
        })
    }

    pub fn write(&self, store: &Store) -> Result<(), Error> {
        let key = self.manifest.strip_prefix("sha256:").unwrap_or(&self.manifest);
        store.write_meta(NAMESPACE, key, &serde_json::to_vec_pretty(self).expect("serialises"))?;
        Ok(())
    }

    /// The record of the image with this manifest digest, if strata built it.
    pub fn read(store: &Store, manifest: &str) -> Result<Option<BuildRecord>, Error> {
        let key = manifest.strip_prefix("sha256:").unwrap_or(manifest);
        let Some(bytes) = store.read_meta(NAMESPACE, key)? else { return Ok(None) };
        Ok(serde_json::from_slice::<BuildRecord>(&bytes).ok().filter(|r| r.kind == RECORD_KIND))
    }
}
