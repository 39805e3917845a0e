//! `compose --check` (what would change, per image) and `compose --report` (layers, bytes
//! stored, bytes pulled, bytes an update costs a client that has the previous image).

use crate::resolve::human_bytes;
use std::collections::{BTreeMap, BTreeSet};
use std::process::ExitCode;
use strata_compose::{ComposeRecord, Composed, ImageJob};
use strata_lock::{diff, LockedImage, Lockfile};
use strata_oci::store::Store;

/// What would change for each image; exit status 0 when nothing, 1 otherwise.
pub fn check(jobs: &[ImageJob<'_>], inputs: &[String], store: Option<&Store>, json: bool) -> anyhow::Result<ExitCode> {
    let mut out = serde_json::Map::new();
    let mut changed = false;
    for (job, inputs) in jobs.iter().zip(inputs) {
        let reasons = reasons(job, inputs, store)?;
        changed |= !reasons.is_empty();
        if !json {
            if reasons.is_empty() {
                println!("{}: up to date", job.name);
            } else {
                println!("{}: would be rebuilt", job.name);
                for r in &reasons {
                    println!("  {r}");
                }
            }
        }
        out.insert(job.name.to_string(), serde_json::json!({"up_to_date": reasons.is_empty(), "changes": reasons}));
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&serde_json::json!({"images": out}))?);
    }
    Ok(if changed { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

/// Why `job` would be rebuilt, in words; empty when the stored image is current.
fn reasons(job: &ImageJob<'_>, inputs: &str, store: Option<&Store>) -> anyhow::Result<Vec<String>> {
    let Some(store) = store else { return Ok(vec!["not built yet (no image store)".into()]) };
    if job.current(store, inputs)?.is_some() {
        return Ok(Vec::new());
    }
    let reference = job.reference()?.to_string();
    let Ok(stored) = store.resolve(&reference) else { return Ok(vec![format!("not built yet ({reference} is not in the store)")]) };
    let Some(record) = ComposeRecord::read(store, stored.manifest_descriptor.digest().as_ref())? else {
        return Ok(vec![format!("{reference} in the store was not composed by this strata (no compose record)")]);
    };
    let as_lock = |image: &LockedImage, repos: &BTreeMap<String, strata_lock::LockedRepo>| {
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
    let layers_now: Vec<(&str, &Vec<String>)> = job.plan.layers_for(job.name).map(|l| (l.id.as_str(), &l.packages)).collect();
    let layers_then: Vec<&str> = record.layers.iter().filter(|l| l.id != "top").map(|l| l.id.as_str()).collect();
    if layers_now.iter().map(|(id, _)| *id).collect::<Vec<_>>() != layers_then {
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
pub struct Report {
    images: Vec<ImageReport>,
}

struct ImageReport {
    name: String,
    layers: Vec<(String, usize, String, u64, bool)>,
    config_size: u64,
    manifest_size: u64,
    /// Bytes a client holding the previous build must pull for this one.
    update_bytes: Option<u64>,
    previous: Option<String>,
}

impl Report {
    pub fn new(store: &Store, composed: &[Composed]) -> anyhow::Result<Report> {
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
            images.push(ImageReport {
                name: c.name.clone(),
                layers: c.layers.iter().map(|l| (l.id.clone(), l.packages, l.digest.clone(), l.size, l.reused)).collect(),
                config_size,
                manifest_size,
                update_bytes,
                previous: previous.map(|p| p.manifest),
            });
        }
        Ok(Report { images })
    }

    /// Distinct layer blobs of all the images, and their bytes.
    fn unique(&self) -> (usize, u64) {
        let mut seen: BTreeMap<&str, u64> = BTreeMap::new();
        for i in &self.images {
            for (_, _, d, s, _) in &i.layers {
                seen.insert(d, *s);
            }
        }
        (seen.len(), seen.values().sum())
    }

    fn users(&self, digest: &str) -> usize {
        self.images.iter().filter(|i| i.layers.iter().any(|l| l.2 == digest)).count()
    }

    pub fn to_json(&self) -> serde_json::Value {
        let (count, unique) = self.unique();
        let meta: u64 = self.images.iter().map(|i| i.config_size + i.manifest_size).sum();
        let naive: u64 = self.images.iter().map(|i| i.layers.iter().map(|l| l.3).sum::<u64>()).sum();
        let images: serde_json::Map<String, serde_json::Value> = self
            .images
            .iter()
            .map(|i| {
                let layers: Vec<_> = i.layers.iter().map(|(id, n, d, s, r)| serde_json::json!({"id": id, "packages": n, "digest": d, "size": s, "reused": r, "images": self.users(d)})).collect();
                (
                    i.name.clone(),
                    serde_json::json!({"layers": layers, "size": i.layers.iter().map(|l| l.3).sum::<u64>(), "config_size": i.config_size, "manifest_size": i.manifest_size,
                        "previous": i.previous, "update_bytes": i.update_bytes}),
                )
            })
            .collect();
        serde_json::json!({
            "images": images,
            "unique_layers": count,
            "unique_layer_bytes": unique,
            "pull_all_bytes": unique + meta,
            "sum_of_image_sizes": naive,
        })
    }

    pub fn print(&self) {
        for i in &self.images {
            println!("\n{}:", i.name);
            println!("  {:<28} {:>8} {:>10} {:>7}  DIGEST", "LAYER", "PACKAGES", "SIZE", "IMAGES");
            for (id, n, d, s, _) in &i.layers {
                println!("  {:<28} {:>8} {:>10} {:>7}  {}", id, n, human_bytes(*s), self.users(d), crate::compose::short(d));
            }
            match i.update_bytes {
                Some(b) => println!("  a client with the previous build pulls {}", human_bytes(b)),
                None => println!("  no previous build"),
            }
        }
        let (count, unique) = self.unique();
        let meta: u64 = self.images.iter().map(|i| i.config_size + i.manifest_size).sum();
        let naive: u64 = self.images.iter().map(|i| i.layers.iter().map(|l| l.3).sum::<u64>()).sum();
        println!("\n{} images: {count} distinct layers, {} stored; a client pulling every image downloads {}; without sharing {}", self.images.len(), human_bytes(unique), human_bytes(unique + meta), human_bytes(naive));
    }
}

