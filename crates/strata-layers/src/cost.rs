//! The pull-cost model: what a layer costs the people who pull it.
//!
//! A pull costs time for its bytes (bytes / bandwidth) and for each layer (a request, a
//! decompression stream, an extraction and a registration in the engine: `per_layer`). An
//! image is pulled cold once per host and then once per update; the update pulls only the
//! layers holding a package that changed. How likely a layer is to change at the next update
//! comes from the repositories' history as the lock records it: each package's build time.
//! A source package last rebuilt long ago is unlikely to change next month, one rebuilt last
//! week likely will (the rate of a Poisson process estimated from the time since its last
//! event). The model only compares plans; its figures are estimates, not promises.
//!
//! Everything here is plain IEEE arithmetic (`+ - * /`, no `exp`/`ln` from the platform's
//! libm), so a plan comes out the same on every host.

use crate::{Fleet, Plan};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// What a pull looks like: the spec's `bandwidth` and `per_layer` (or a profile's).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cost {
    /// Effective pull throughput in bits per second: the link, or the engine's
    /// decompression and extraction when those are slower.
    pub bandwidth_bits: u64,
    /// The fixed cost of one more layer, in microseconds. 0 turns the model off: layers are
    /// then split as finely as sharing allows (the byte floor; strata before the model).
    pub per_layer_us: u64,
}

impl Cost {
    /// A close registry, the default: docker 20.10 pulling web + nodejs from a loopback
    /// registry extracted at about 230 Mbit/s (91.9 MB single-layer in ~3.2 s) and spent
    /// about 25 ms per extra layer (16 → 85 layers: +1.6 s) — issue 18's table. bench/pull.sh
    /// measures both engines; docs/decisions.md says what it found and why this stays.
    pub const LAN: Cost = Cost { bandwidth_bits: 250_000_000, per_layer_us: 25_000 };
    /// A distant registry: a slower link, and round trips (token, manifest, blob redirect)
    /// that make each layer dearer.
    pub const WAN: Cost = Cost { bandwidth_bits: 50_000_000, per_layer_us: 100_000 };
    /// The model turned off (no per-layer cost): layers as fine as sharing allows, the plan
    /// strata made before the model.
    pub const OFF: Cost = Cost { bandwidth_bits: 0, per_layer_us: 0 };

    /// Whether the model merges anything at all.
    pub fn active(&self) -> bool {
        self.per_layer_us > 0 && self.bandwidth_bits > 0
    }

    /// [`Cost::OFF`] for every inactive model, so that plans compare by what they mean.
    pub fn normalized(self) -> Cost {
        if self.active() { self } else { Cost::OFF }
    }

    pub(crate) fn off() -> Cost {
        Cost::OFF
    }

    pub(crate) fn is_off(&self) -> bool {
        *self == Cost::OFF
    }

    fn seconds_per_byte(&self) -> f64 {
        8.0 / self.bandwidth_bits.max(1) as f64
    }

    fn per_layer_s(&self) -> f64 {
        self.per_layer_us as f64 / 1e6
    }

    /// Seconds to pull `bytes` in `layers` layers.
    pub fn seconds(&self, bytes: f64, layers: f64) -> f64 {
        bytes * self.seconds_per_byte() + layers * self.per_layer_s()
    }
}

impl Default for Cost {
    fn default() -> Self {
        Cost::LAN
    }
}

/// Gzip-compressed layer bytes per installed byte, measured on the corpus fleet (80.4 MiB of
/// per-package layers for 212.9 MiB installed). The planner knows installed sizes only.
pub const COMPRESSED_PER_INSTALLED: f64 = 0.38;
/// Update pulls per cold pull: a host pulls an image once, then an update a month for the
/// two years a host typically runs a release (tuned on the corpus update: 12 let merges of
/// old small libraries make busybox's update pull 1.42x the floor, 24 keeps it under 1.25x).
pub const UPDATES_PER_COLD_PULL: f64 = 24.0;
/// The time between two updates of an image, in days.
pub const UPDATE_INTERVAL_DAYS: f64 = 30.0;
/// Added to every package's age, so a package built today is likely, not certain, to change.
pub const PRIOR_DAYS: f64 = 30.0;
/// The age assumed for a package whose build time is unknown (old locks).
pub const UNKNOWN_AGE_DAYS: f64 = 365.0;
/// A merge decided once is undone only when the merged layer now costs more than the
/// separate layers by this fraction: plans do not flap between updates.
pub const SPLIT_THRESHOLD: f64 = 0.5;

/// The probability that a source package built at `buildtime` (0: unknown) changes before
/// the next update, `now` being the newest build time in the fleet: the rate 1/(age + prior)
/// over one interval, as `x / (1 + x)` (≈ 1 − e^−x, and never 1).
pub fn change_probability(buildtime: u64, now: u64) -> f64 {
    let age = if buildtime == 0 { UNKNOWN_AGE_DAYS } else { now.saturating_sub(buildtime) as f64 / 86_400.0 };
    let x = UPDATE_INTERVAL_DAYS / (age + PRIOR_DAYS);
    x / (1.0 + x)
}

/// What one layer is to the model: its compressed bytes and the probability that it stays
/// the same through the next update.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Weight {
    pub bytes: f64,
    pub stays: f64,
}

impl Weight {
    pub const EMPTY: Weight = Weight { bytes: 0.0, stays: 1.0 };

    /// A layer holding both (their sources are distinct, so their changes are independent).
    pub fn join(self, other: Weight) -> Weight {
        Weight { bytes: self.bytes + other.bytes, stays: self.stays * other.stays }
    }

    /// The layer's expected cost to a fleet where `images` images use it: each image pulls it
    /// cold once and then at each update where it changed; a host pulling the whole fleet
    /// pulls it once more.
    pub fn cost(self, images: usize, cost: &Cost) -> f64 {
        let pull = cost.seconds(self.bytes, 1.0);
        images as f64 * pull * (1.0 + UPDATES_PER_COLD_PULL * (1.0 - self.stays)) + pull
    }
}

/// Per-package facts the model reads from the fleet: compressed size and change
/// probability of each source, by `name.arch` key and image.
pub(crate) struct Facts {
    now: u64,
    /// Newest build time per source package.
    source_time: BTreeMap<String, u64>,
}

impl Facts {
    pub(crate) fn new(fleet: &Fleet) -> Facts {
        let mut source_time: BTreeMap<String, u64> = BTreeMap::new();
        for m in fleet.values().flatten() {
            let t = source_time.entry(m.source.clone()).or_insert(0);
            *t = (*t).max(m.buildtime);
        }
        let now = source_time.values().copied().max().unwrap_or(0);
        Facts { now, source_time }
    }

    /// The weight of packages (`(source, installed size)` each).
    pub(crate) fn weight<'a>(&self, members: impl IntoIterator<Item = (&'a str, u64)>) -> Weight {
        let mut bytes = 0.0;
        let mut sources: BTreeSet<&str> = BTreeSet::new();
        for (source, size) in members {
            bytes += size as f64 * COMPRESSED_PER_INSTALLED;
            sources.insert(source);
        }
        let stays = sources.iter().map(|s| 1.0 - change_probability(self.source_time.get(*s).copied().unwrap_or(0), self.now)).product();
        Weight { bytes, stays }
    }
}

/// One image's modelled pull times, in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PullTimes {
    /// Into an engine that has nothing.
    pub cold: f64,
    /// The expected next update pull, holding this build.
    pub update: f64,
}

/// One image's modelled pull times under its plan and the two simple alternatives.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Modelled {
    pub layers: usize,
    pub plan: PullTimes,
    /// One layer holding everything.
    pub single: PullTimes,
    /// A layer per package.
    pub package: PullTimes,
}

/// The modelled pull times of every image of `fleet` under `plan` (its top layer, which
/// every update changes, counted as one empty layer everywhere), the single-layer image and
/// a layer per package, with `cost`.
pub fn modelled(fleet: &Fleet, plan: &Plan, cost: &Cost) -> BTreeMap<String, Modelled> {
    let facts = Facts::new(fleet);
    let top = PullTimes { cold: cost.seconds(0.0, 1.0), update: cost.seconds(0.0, 1.0) };
    let times = |layers: &[Weight]| -> PullTimes {
        layers.iter().fold(top, |t, w| PullTimes { cold: t.cold + cost.seconds(w.bytes, 1.0), update: t.update + (1.0 - w.stays) * cost.seconds(w.bytes, 1.0) })
    };
    fleet
        .iter()
        .map(|(image, members)| {
            let size_of: BTreeMap<&str, (&str, u64)> = members.iter().map(|m| (m.key.as_str(), (m.source.as_str(), m.size))).collect();
            let planned: Vec<Weight> = plan.layers_for(image).map(|l| facts.weight(l.packages.iter().filter_map(|k| size_of.get(k.as_str()).copied()))).collect();
            let package: Vec<Weight> = members.iter().map(|m| facts.weight([(m.source.as_str(), m.size)])).collect();
            let all = facts.weight(members.iter().map(|m| (m.source.as_str(), m.size)));
            let single = if members.is_empty() { Vec::new() } else { vec![all] };
            // A single-mode plan has no package layers: the image is its top layer.
            let planned = if plan.layers.is_empty() { single.clone() } else { planned };
            let m = Modelled { layers: planned.len() + 1, plan: times(&planned), single: times(&single), package: times(&package) };
            (image.clone(), m)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn older_builds_change_less_often() {
        let now = 1_800_000_000;
        let today = change_probability(now, now);
        let month = change_probability(now - 30 * 86_400, now);
        let years = change_probability(now - 1400 * 86_400, now);
        assert!(today > month && month > years, "{today} {month} {years}");
        assert!((today - 0.5).abs() < 1e-12, "30 days of prior, 30-day interval: x = 1");
        assert!(years < 0.03);
        assert_eq!(change_probability(0, now), change_probability(now - 365 * 86_400, now));
    }

    #[test]
    fn a_layer_pays_for_itself_when_it_is_big_or_volatile() {
        let c = Cost::LAN;
        let small_stable = Weight { bytes: 50_000.0, stays: 0.98 };
        let other_small_stable = Weight { bytes: 80_000.0, stays: 0.98 };
        let merged = small_stable.join(other_small_stable);
        assert!(merged.cost(5, &c) < small_stable.cost(5, &c) + other_small_stable.cost(5, &c), "two small stable layers merge");
        let big_volatile = Weight { bytes: 5_000_000.0, stays: 0.5 };
        let big_stable = Weight { bytes: 5_000_000.0, stays: 0.98 };
        let merged = big_volatile.join(big_stable);
        assert!(merged.cost(5, &c) > big_volatile.cost(5, &c) + big_stable.cost(5, &c), "a big stable layer stays off a volatile one");
        let off = Cost { per_layer_us: 0, ..c };
        assert!(!off.active());
        assert_eq!(off.normalized(), Cost::OFF);
        assert!(small_stable.join(other_small_stable).cost(5, &off) >= small_stable.cost(5, &off) + other_small_stable.cost(5, &off) - 1e-12);
    }
}
