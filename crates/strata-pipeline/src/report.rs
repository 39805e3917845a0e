//! `compose --check` (what would change, per image) and `compose --report` (layers, bytes
//! stored, bytes pulled, bytes an update costs a client that has the previous image).

use crate::{ImageResult, LayerResult, Result};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use strata_compose::{ComposeRecord, ImageJob};
use strata_lock::{diff, LockedImage, LockedRepo, Lockfile};
use strata_oci::store::Store;

/// What [`check`](crate::check) found: per image, whether it is up to date and, if not, why
/// it would be rebuilt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckReport {
    /// In the spec's order.
    pub images: Vec<ImageCheck>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageCheck {
    pub name: String,
    pub up_to_date: bool,
    /// Why it would be rebuilt, in words; empty when up to date.
    pub changes: Vec<String>,
}

impl CheckReport {
    /// Whether any image would be rebuilt (`strata compose --check` then exits 1).
    pub fn changed(&self) -> bool {
        self.images.iter().any(|i| !i.up_to_date)
    }
}

/// Why `job` would be rebuilt, in words; empty when the stored image is current.
pub(crate) fn reasons(job: &ImageJob<'_>, inputs: &str, store: Option<&Store>) -> Result<Vec<String>> {
    let Some(store) = store else { return Ok(vec!["not built yet (no image store)".into()]) };
    if job.current(store, inputs)?.is_some() {
        return Ok(Vec::new());
    }
    let reference = job.reference()?.to_string();
    let Ok(stored) = store.resolve(&reference) else { return Ok(vec![format!("not built yet ({reference} is not in the store)")]) };
    let Some(record) = ComposeRecord::read(store, stored.manifest_descriptor.digest().as_ref())? else {
        return Ok(vec![format!("{reference} in the store was not composed by this strata (no compose record)")]);
    };
    let as_lock = |image: &LockedImage, repos: &BTreeMap<String, LockedRepo>| {
        let mut l = Lockfile::new();
        l.images.insert(job.name.to_string(), image.clone());
        l.repos = repos.clone();
        l
    };
    let mut out: Vec<String> = diff(&as_lock(&record.lock, &record.repos), &as_lock(job.locked, &job.repos))
        .iter()
        .map(|d| {
            let s = d.to_string();
            s.strip_prefix(&format!("image {}: ", job.name)).map(str::to_string).unwrap_or(s)
        })
        .collect();
    if &record.spec != job.spec {
        out.push("its spec entry changed".into());
    }
    let layers_now: Vec<&str> = job.plan.layers_for(job.name).map(|l| l.id.as_str()).collect();
    let layers_then: Vec<&str> = record.layers.iter().filter(|l| l.id != "top").map(|l| l.id.as_str()).collect();
    if layers_now != layers_then {
        out.push("its layer plan changed".into());
    }
    if record.strata_version != env!("CARGO_PKG_VERSION") {
        out.push(format!("built by strata {}, this is {}", record.strata_version, env!("CARGO_PKG_VERSION")));
    }
    if out.is_empty() {
        out.push("build options changed (compression, SOURCE_DATE_EPOCH or strata's image format)".into());
    }
    Ok(out)
}

/// Layers and byte counts of a set of composed images, from their compose records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    pub images: Vec<ImageBytes>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageBytes {
    pub name: String,
    pub layers: Vec<LayerResult>,
    pub config_size: u64,
    pub manifest_size: u64,
    /// Bytes a client holding the previous build must pull for this one.
    pub update_bytes: Option<u64>,
    /// Manifest digest of the build this one replaced.
    pub previous: Option<String>,
    /// What the layer planner's cost model expects pulls of this image to take.
    pub modelled: Option<PullModel>,
}

/// Modelled pull times of one image (strata-layers' cost model, with the spec's pull
/// conditions), in milliseconds: its plan next to one layer and a layer per package.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PullModel {
    /// The conditions modelled.
    pub bandwidth_bits: u64,
    pub per_layer_us: u64,
    /// Layers of the image as planned, its top layer included.
    pub layers: usize,
    pub cold_ms: u64,
    /// The expected next update pull.
    pub update_ms: u64,
    pub single_cold_ms: u64,
    pub single_update_ms: u64,
    pub package_layers: usize,
    pub package_cold_ms: u64,
    pub package_update_ms: u64,
}

impl PullModel {
    pub fn new(m: &strata_layers::Modelled, package_layers: usize, cost: &strata_layers::Cost) -> PullModel {
        let ms = |s: f64| (s * 1000.0).round() as u64;
        PullModel {
            bandwidth_bits: cost.bandwidth_bits,
            per_layer_us: cost.per_layer_us,
            layers: m.layers,
            cold_ms: ms(m.plan.cold),
            update_ms: ms(m.plan.update),
            single_cold_ms: ms(m.single.cold),
            single_update_ms: ms(m.single.update),
            package_layers,
            package_cold_ms: ms(m.package.cold),
            package_update_ms: ms(m.package.update),
        }
    }

    /// The model for every image of `lock` under `plan`, with the spec's pull conditions.
    pub fn for_lock(lock: &Lockfile, plan: &strata_layers::Plan, cost: &strata_layers::Cost) -> BTreeMap<String, PullModel> {
        let fleet = lock.fleet();
        strata_layers::modelled(&fleet, plan, cost).into_iter().map(|(name, m)| {
            let packages = fleet.get(&name).map_or(0, Vec::len) + 1;
            (name, PullModel::new(&m, packages, cost))
        }).collect()
    }
}

impl Report {
    pub fn new(store: &Store, composed: &[ImageResult], modelled: &BTreeMap<String, PullModel>) -> Result<Report> {
        let mut images = Vec::new();
        for c in composed {
            let record = ComposeRecord::read(store, &c.manifest_digest)?;
            let (config_size, manifest_size, previous) = match &record {
                Some(r) => (r.config_size, r.manifest_size, r.previous.clone()),
                None => (0, 0, None),
            };
            let update_bytes = previous.as_ref().map(|p| {
                let had: BTreeSet<&str> = p.layers.iter().map(|(d, _)| d.as_str()).collect();
                c.layers.iter().filter(|l| !had.contains(l.digest.as_str())).map(|l| l.size).sum::<u64>() + config_size + manifest_size
            });
            images.push(ImageBytes {
                name: c.name.clone(),
                layers: c.layers.clone(),
                config_size,
                manifest_size,
                update_bytes,
                previous: previous.map(|p| p.manifest),
                modelled: modelled.get(&c.name).copied(),
            });
        }
        Ok(Report { images })
    }

    /// Distinct layer blobs of all the images, and their bytes.
    pub fn unique_layers(&self) -> (usize, u64) {
        let mut seen: BTreeMap<&str, u64> = BTreeMap::new();
        for i in &self.images {
            for l in &i.layers {
                seen.insert(&l.digest, l.size);
            }
        }
        (seen.len(), seen.values().sum())
    }

    /// How many of the images use the layer `digest`.
    pub fn users(&self, digest: &str) -> usize {
        self.images.iter().filter(|i| i.layers.iter().any(|l| l.digest == digest)).count()
    }

    /// Configs and manifests of all the images.
    pub fn metadata_bytes(&self) -> u64 {
        self.images.iter().map(|i| i.config_size + i.manifest_size).sum()
    }

    /// What the images would store without sharing layers.
    pub fn sum_of_image_sizes(&self) -> u64 {
        self.images.iter().map(ImageBytes::size).sum()
    }

    /// The document `strata compose --report --json` prints under `"report"`.
    pub fn to_json(&self) -> serde_json::Value {
        let (count, unique) = self.unique_layers();
        let images: serde_json::Map<String, serde_json::Value> = self
            .images
            .iter()
            .map(|i| {
                let layers: Vec<_> = i.layers.iter().map(|l| serde_json::json!({"id": l.id, "packages": l.packages, "digest": l.digest, "size": l.size, "reused": l.reused, "images": self.users(&l.digest)})).collect();
                (
                    i.name.clone(),
                    serde_json::json!({"layers": layers, "size": i.size(), "config_size": i.config_size, "manifest_size": i.manifest_size,
                        "previous": i.previous, "update_bytes": i.update_bytes, "modelled": i.modelled}),
                )
            })
            .collect();
        serde_json::json!({
            "images": images,
            "unique_layers": count,
            "unique_layer_bytes": unique,
            "pull_all_bytes": unique + self.metadata_bytes(),
            "sum_of_image_sizes": self.sum_of_image_sizes(),
        })
    }
}

impl ImageBytes {
    /// The image's layer bytes.
    pub fn size(&self) -> u64 {
        self.layers.iter().map(|l| l.size).sum()
    }
}
