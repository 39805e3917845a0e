//! The scale fleet (bench/scale-fleet.txt) and what a plan of it comes to: shared by the
//! `plan_scale` example (timed, bench/plan-scale.sh) and tests/plan_scale.rs (asserted).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use strata_layers::{Fleet, Plan};

/// bench/scale-fleet.txt of this workspace.
#[allow(dead_code)] // the example takes the file from its command line
pub fn fleet_file() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../bench/scale-fleet.txt")
}

/// The fleet file's package names, one a line; `#` starts a comment.
pub fn names(text: &str) -> Vec<String> {
    text.lines().map(|l| l.split('#').next().unwrap_or("").trim()).filter(|l| !l.is_empty()).map(str::to_string).collect()
}

/// The spec of the fleet: one image per name holding just that package, weak deps off,
/// x86_64, from the scale repository at `scale_repo`.
pub fn spec_json(names: &[String], scale_repo: &Path) -> String {
    let images: serde_json::Map<String, serde_json::Value> = names
        .iter()
        .map(|n| (n.clone(), serde_json::json!({"packages": [n], "install_weak_deps": false, "arch": "x86_64"})))
        .collect();
    serde_json::json!({"repos": [{"id": "scale", "baseurl": scale_repo}], "images": images}).to_string()
}

/// What a plan of a fleet comes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Figures {
    pub layers: usize,
    /// The most layers any image has, its top layer included (what the budget bounds).
    pub max_per_image: usize,
    /// Images with a private layer (one that `replaces` shared ones: the budget's last resort).
    pub private_images: usize,
    /// Installed bytes over all distinct layers: a package in several layers counts each time.
    pub fleet_bytes: u64,
    /// Installed bytes of the distinct items, each (package key, build) once: no plan stores less.
    pub floor_bytes: u64,
}

impl Figures {
    pub fn of(fleet: &Fleet, plan: &Plan) -> Figures {
        // Per image, each key's installed size (several builds of one key in an image add up,
        // as the planner counts them).
        let mut size: BTreeMap<&str, BTreeMap<&str, u64>> = BTreeMap::new();
        let mut floor: BTreeMap<(&str, &str), u64> = BTreeMap::new();
        for (image, members) in fleet {
            for m in members {
                *size.entry(image).or_default().entry(&m.key).or_default() += m.size;
                floor.insert((&m.key, &m.checksum), m.size);
            }
        }
        // A layer's images hold the same builds of its packages, so any of them says its size.
        let fleet_bytes = plan
            .layers
            .iter()
            .map(|l| {
                let sizes = l.images.first().and_then(|i| size.get(i.as_str()));
                l.packages.iter().map(|k| sizes.and_then(|s| s.get(k.as_str())).copied().unwrap_or(0)).sum::<u64>()
            })
            .sum();
        let private: BTreeSet<&str> = plan.layers.iter().filter(|l| !l.replaces.is_empty()).flat_map(|l| l.images.iter().map(String::as_str)).collect();
        Figures {
            layers: plan.layers.len(),
            max_per_image: fleet.keys().map(|i| plan.layers_for(i).count() + 1).max().unwrap_or(0),
            private_images: private.len(),
            fleet_bytes,
            floor_bytes: floor.values().sum(),
        }
    }

    /// Fleet bytes over the floor.
    pub fn ratio(&self) -> f64 {
        self.fleet_bytes as f64 / self.floor_bytes.max(1) as f64
    }
}
