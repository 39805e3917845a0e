//! Merging layers whose separation does not pay for itself, and undoing merges that have
//! become clearly worse — both only among layers used by exactly the same images, so no
//! sharing is lost and no image gets a package it does not have.

use crate::cost::{Cost, Facts, Weight, SPLIT_THRESHOLD};
use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap};

/// A layer as the merge sees it: its images and its members as `(key, source, installed
/// size)`.
pub(crate) struct Candidate<'a> {
    pub images: usize,
    pub members: Vec<(&'a str, &'a str, u64)>,
}

impl Candidate<'_> {
    fn weight(&self, facts: &Facts) -> Weight {
        facts.weight(self.members.iter().map(|&(_, s, z)| (s, z)))
    }
}

/// For a merged layer kept from the previous plan: its members grouped by source, when
/// keeping them together now costs more than [`SPLIT_THRESHOLD`] over separate layers.
/// `None`: the layer stays as it is.
pub(crate) fn split_if_worse<'a>(layer: &Candidate<'a>, facts: &Facts, cost: &Cost) -> Option<Vec<Vec<&'a str>>> {
    let mut units: BTreeMap<&str, Vec<(&str, &str, u64)>> = BTreeMap::new();
    for &m in &layer.members {
        units.entry(m.1).or_default().push(m);
    }
    if units.len() < 2 {
        return None;
    }
    let together = layer.weight(facts).cost(layer.images, cost);
    let apart: f64 = units.values().map(|u| facts.weight(u.iter().map(|&(_, s, z)| (s, z))).cost(layer.images, cost)).sum();
    (together > apart * (1.0 + SPLIT_THRESHOLD)).then(|| units.into_values().map(|u| u.into_iter().map(|(k, _, _)| k).collect()).collect())
}

/// A merge and what it saves.
struct Pair {
    gain: f64,
    i: usize,
    j: usize,
    /// The versions of `i` and `j` the gain was computed for (a merge changes a layer).
    vi: u32,
    vj: u32,
}

impl PartialEq for Pair {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Pair {}
impl PartialOrd for Pair {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Pair {
    /// The biggest gain first; ties by position, so the result does not depend on the heap.
    fn cmp(&self, other: &Self) -> Ordering {
        self.gain.total_cmp(&other.gain).then_with(|| other.i.cmp(&self.i)).then_with(|| other.j.cmp(&self.j))
    }
}

/// Greedy agglomeration of layers used by the same images: repeatedly the merge that saves
/// the most modelled cost, until none saves anything. Returns groups of indices into
/// `layers` (each group becomes one layer; singletons stay as they were), in index order.
pub(crate) fn merge_same_images(layers: &[Candidate<'_>], facts: &Facts, cost: &Cost) -> Vec<Vec<usize>> {
    let n = layers.first().map_or(0, |l| l.images);
    debug_assert!(layers.iter().all(|l| l.images == n));
    let mut weight: Vec<Weight> = layers.iter().map(|l| l.weight(facts)).collect();
    let mut groups: Vec<BTreeSet<usize>> = (0..layers.len()).map(|i| BTreeSet::from([i])).collect();
    let mut alive = vec![true; layers.len()];
    let mut version = vec![0u32; layers.len()];
    let gain = |a: Weight, b: Weight| a.cost(n, cost) + b.cost(n, cost) - a.join(b).cost(n, cost);
    let mut heap = BinaryHeap::new();
    for i in 0..layers.len() {
        for j in i + 1..layers.len() {
            let g = gain(weight[i], weight[j]);
            if g > 0.0 {
                heap.push(Pair { gain: g, i, j, vi: 0, vj: 0 });
            }
        }
    }
    while let Some(p) = heap.pop() {
        if !alive[p.i] || !alive[p.j] || version[p.i] != p.vi || version[p.j] != p.vj {
            continue;
        }
        let moved = std::mem::take(&mut groups[p.j]);
        groups[p.i].extend(moved);
        weight[p.i] = weight[p.i].join(weight[p.j]);
        alive[p.j] = false;
        version[p.i] += 1;
        for k in (0..layers.len()).filter(|&k| alive[k] && k != p.i) {
            let g = gain(weight[p.i], weight[k]);
            if g > 0.0 {
                let (i, j) = if p.i < k { (p.i, k) } else { (k, p.i) };
                heap.push(Pair { gain: g, i, j, vi: version[i], vj: version[j] });
            }
        }
    }
    groups.into_iter().zip(alive).filter(|(_, a)| *a).map(|(g, _)| g.into_iter().collect()).collect()
}
