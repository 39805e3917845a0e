//! `strata-layers` decides which packages go into which layer, for a whole fleet of images
//! at once (every image of a spec), so that what several images share is stored, pushed
//! and pulled once, and so that an update touches as few layers as possible.
//!
//! The unit of sharing is an *item*: a package name.arch together with the exact set of
//! images that contain that very build of it. Items with the same image set and the same
//! source RPM form one layer (`auto`), or each item is its own layer (`package`). A layer is
//! therefore used by exactly the images it names, each of which needs all of it: nothing is
//! duplicated and nothing is extra. Layers used by more images sit lower, so images stack
//! their own layers on the shared ones — a package's dependencies are in at least the images
//! that contain it, so they land at its level or below.
//!
//! The plan is recorded (in the lock) and handed back on the next run: a layer keeps its id
//! and its members as long as they are still used by the same images, so a security update
//! changes the layers holding the updated packages and nothing else. New packages form new
//! layers. Only when an image would exceed its layer budget are layers merged — first layers
//! used by the same images (no sharing lost), smallest first; only if that is not enough,
//! an image gets a private layer holding copies of its smallest shared ones.
//!
//! Layers are not free, though: each costs a request, a decompression stream, an extraction
//! and a registration in the engine. With a [`Cost`] (the spec's `bandwidth` and `per_layer`,
//! or a profile) the planner merges layers of the same images whose separation does not pay
//! for itself: cold pulls get faster, and what an update is likely to touch (a package's
//! build age says how likely) stays apart (`cost.rs`, `merge.rs`). A merge is kept across
//! updates unless it has become clearly worse ([`cost::SPLIT_THRESHOLD`]).
//!
//! This crate knows nothing about files or tars: it plans membership and order. Building the
//! layers is `strata-compose`'s job.

mod check;
pub mod cost;
mod merge;
mod planner;
mod source;

pub use check::PlanError;
pub use cost::{modelled, Cost, Modelled, PullTimes};
pub use planner::plan;
pub use source::source_name;

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The default per-image layer budget, the image's own top layer included. Docker and
/// podman refuse images of more than 127 layers; 100 leaves room for the layers a Dockerfile
/// adds on top (`strata build`).
pub const DEFAULT_MAX_PER_IMAGE: u32 = 100;

/// How packages are grouped into layers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// Packages of one source RPM used by the same images share a layer.
    #[default]
    Auto,
    /// Every package is its own layer (the finest split; the benchmark's floor).
    Package,
    /// No package layers: each image is one layer (the classic single-layer image).
    Single,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Auto => "auto",
            Mode::Package => "package",
            Mode::Single => "single",
        }
    }
}

/// What the user asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    pub mode: Mode,
    /// Layers per image, the top layer included; at least 1.
    pub max_per_image: u32,
    /// What pulls cost; see [`Settings::new`] for the form plans record.
    pub cost: Cost,
}

impl Settings {
    /// Settings as plans record and compare them: a cost model that is off is one value
    /// (`Cost::OFF`), whatever bandwidth came with it.
    pub fn new(mode: Mode, max_per_image: u32, cost: Cost) -> Settings {
        Settings { mode, max_per_image, cost: cost.normalized() }
    }
}

impl Default for Settings {
    fn default() -> Self {
        Settings::new(Mode::Auto, DEFAULT_MAX_PER_IMAGE, Cost::default())
    }
}

/// One package of one image, as the planner sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// `name.arch`: what identifies a package across updates.
    pub key: String,
    /// Identifies the exact build (the lock's checksum).
    pub checksum: String,
    /// The source package name (see [`source_name`]).
    pub source: String,
    /// Installed size, to merge small layers first.
    pub size: u64,
    /// Build time (seconds since the epoch; 0 when unknown): how recently its source
    /// changed, which the cost model reads as how likely it is to change again.
    pub buildtime: u64,
}

/// Every image's packages.
pub type Fleet = BTreeMap<String, Vec<Member>>;

/// The recorded plan: settings it was made with and the layers in stacking order (lowest
/// first).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Plan {
    pub mode: Mode,
    pub max_per_image: u32,
    /// The cost model the plan was made with; absent (plans from before the model, or the
    /// model turned off) is `Cost::OFF`.
    #[serde(default = "Cost::off", skip_serializing_if = "Cost::is_off")]
    pub cost: Cost,
    pub layers: Vec<PlannedLayer>,
}

/// One layer: the images that use it and the packages (`name.arch`) it holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlannedLayer {
    /// Stable name, from the source package of its members (`openssl`, `glibc~3f2a`).
    pub id: String,
    /// Sorted.
    pub images: Vec<String>,
    /// Sorted `name.arch` keys.
    pub packages: Vec<String>,
    /// Only in an image's private layer (made when the budget could not be met by merging
    /// shared layers): the shared layers it stands in for, for that one image.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub replaces: Vec<String>,
}

impl Plan {
    pub fn settings(&self) -> Settings {
        Settings::new(self.mode, self.max_per_image, self.cost)
    }

    /// The layers `image` uses, lowest first.
    pub fn layers_for<'a>(&'a self, image: &'a str) -> impl Iterator<Item = &'a PlannedLayer> + 'a {
        let replaced: Vec<&'a str> = self
            .layers
            .iter()
            .filter(|l| !l.replaces.is_empty() && l.images.len() == 1 && l.images[0] == image)
            .flat_map(|l| l.replaces.iter().map(String::as_str))
            .collect();
        self.layers.iter().filter(move |l| l.images.iter().any(|i| i == image) && !replaced.contains(&l.id.as_str()))
    }

    /// The part of the plan `image` depends on, as canonical text: goes into the image's
    /// input hash, so an image is rebuilt when (and only when) its own layering changes.
    pub fn image_fingerprint(&self, image: &str) -> String {
        let mut s = format!("{}:{}", self.mode.as_str(), self.max_per_image);
        for l in self.layers_for(image) {
            s.push('\n');
            s.push_str(&l.id);
            s.push('=');
            s.push_str(&l.packages.join(","));
        }
        s
    }
}

#[cfg(test)]
mod cost_tests;
#[cfg(test)]
mod tests;
