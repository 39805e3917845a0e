//! The planning algorithm: items → layers (reusing the previous plan) → merges the cost
//! model asks for → budget → order.

use crate::cost::{Cost, Facts};
use crate::merge::{merge_same_images, split_if_worse, Candidate};
use crate::{Fleet, Mode, Plan, PlannedLayer, Settings};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};

type Images = BTreeSet<String>;

/// A package key together with exactly the images that contain the same build of it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Item {
    key: String,
    images: Images,
}

struct ItemInfo {
    source: String,
    /// Installed size in one image (all images of an item hold the same build).
    size: u64,
}

#[derive(Debug, Clone)]
struct Layer {
    id: String,
    images: Images,
    members: BTreeSet<String>,
    /// A private layer of one image: the shared layers it stands in for, for that image.
    replaces: BTreeSet<String>,
    /// Made now rather than kept from the previous plan: free to merge.
    fresh: bool,
}

/// Plans the fleet's layers. `previous` (the plan recorded last time) keeps layer ids and
/// membership stable; it is ignored when it was made in another mode or with another cost
/// model (the options changed: plan afresh).
pub fn plan(fleet: &Fleet, settings: &Settings, previous: Option<&Plan>) -> Plan {
    let cost = settings.cost.normalized();
    let mut out = Plan { mode: settings.mode, max_per_image: settings.max_per_image.max(1), cost, layers: Vec::new() };
    if settings.mode == Mode::Single || out.max_per_image <= 1 {
        return out;
    }
    let items = items(fleet);
    let mut layers: Vec<Layer> = Vec::new();
    let mut placed: BTreeSet<Item> = BTreeSet::new();

    // 1. What the previous plan said still holds: a member stays where it was as long as the
    //    same images use the same build of it.
    if let Some(prev) = previous.filter(|p| p.mode == settings.mode && p.cost.normalized() == cost) {
        for pl in prev.layers.iter().filter(|l| l.replaces.is_empty()) {
            let images: Images = pl.images.iter().cloned().collect();
            let members: BTreeSet<String> = pl
                .packages
                .iter()
                .filter(|k| {
                    let item = Item { key: (*k).clone(), images: images.clone() };
                    items.contains_key(&item) && !placed.contains(&item)
                })
                .cloned()
                .collect();
            if members.is_empty() {
                continue;
            }
            for k in &members {
                placed.insert(Item { key: k.clone(), images: images.clone() });
            }
            layers.push(Layer { id: pl.id.clone(), images, members, replaces: BTreeSet::new(), fresh: false });
        }
    }

    // 2. Everything else: one new layer per (source, images), or per item in package mode.
    let mut fresh: BTreeMap<(String, Images), BTreeSet<String>> = BTreeMap::new();
    for (item, info) in &items {
        if placed.contains(item) {
            continue;
        }
        let unit = match settings.mode {
            Mode::Package => item.key.rsplit_once('.').map_or(item.key.as_str(), |(n, _)| n).to_string(),
            _ => info.source.clone(),
        };
        fresh.entry((unit, item.images.clone())).or_default().insert(item.key.clone());
    }
    // Ids: the unit's name; a second unit of that name (same source, other images) gets a
    // suffix from its image set, which does not depend on what else is in the fleet.
    let mut used: BTreeSet<String> = layers.iter().map(|l| l.id.clone()).collect();
    let mut fresh: Vec<((String, Images), BTreeSet<String>)> = fresh.into_iter().collect();
    fresh.sort_by(|a, b| b.0 .1.len().cmp(&a.0 .1.len()).then_with(|| a.0.cmp(&b.0)));
    for ((unit, images), members) in fresh {
        let id = fresh_id(&unit, &images, &used);
        used.insert(id.clone());
        layers.push(Layer { id, images, members, replaces: BTreeSet::new(), fresh: true });
    }

    // 3. What the cost model says: merges of fresh layers that pay for themselves, and
    //    kept merges that no longer do undone. Package mode is the floor: never merged.
    if cost.active() && settings.mode == Mode::Auto {
        layers = apply_cost(layers, &items, &Facts::new(fleet), &cost, out.max_per_image, &mut used);
    }

    // 4. The budget.
    enforce_budget(&mut layers, fleet, out.max_per_image, &|l: &Layer| layer_size(&items, l), &mut used);

    // 5. Order: more widely shared first, then by image set and id (stable across runs).
    layers.sort_by(|a, b| b.images.len().cmp(&a.images.len()).then_with(|| a.images.cmp(&b.images)).then_with(|| a.id.cmp(&b.id)));
    out.layers = layers
        .into_iter()
        .map(|l| PlannedLayer { id: l.id, images: l.images.into_iter().collect(), packages: l.members.into_iter().collect(), replaces: l.replaces.into_iter().collect() })
        .collect();
    out
}

/// One image's builds of a key: checksums, source, installed size.
type Builds<'a> = (Vec<&'a str>, &'a str, u64);

/// Items of the fleet: for each key, the images grouped by the exact builds they hold.
fn items(fleet: &Fleet) -> BTreeMap<Item, ItemInfo> {
    let mut by_key: BTreeMap<&str, BTreeMap<&str, Builds<'_>>> = BTreeMap::new();
    for (image, members) in fleet {
        for m in members {
            let e = by_key.entry(&m.key).or_default().entry(image).or_insert((Vec::new(), &m.source, 0));
            e.0.push(&m.checksum);
            e.2 = e.2.saturating_add(m.size); // sizes come from repository metadata: no overflow
        }
    }
    let mut out = BTreeMap::new();
    for (key, per_image) in by_key {
        // Images holding the same builds (usually one) share an item.
        let mut classes: BTreeMap<Vec<&str>, (Images, &str, u64)> = BTreeMap::new();
        for (image, (mut sums, source, size)) in per_image {
            sums.sort_unstable();
            let c = classes.entry(sums).or_insert((Images::new(), source, size));
            c.0.insert(image.to_string());
        }
        for (_, (images, source, size)) in classes {
            out.insert(Item { key: key.to_string(), images }, ItemInfo { source: source.to_string(), size });
        }
    }
    out
}

fn size_anywhere(items: &BTreeMap<Item, ItemInfo>, key: &str) -> u64 {
    items.range(Item { key: key.to_string(), images: Images::new() }..).take_while(|(i, _)| i.key == key).next().map_or(0, |(_, info)| info.size)
}

/// A layer's installed size. A member whose item has other images than the layer (a budget
/// merge joins image sets) is counted at its size in any image.
fn layer_size(items: &BTreeMap<Item, ItemInfo>, layer: &Layer) -> u64 {
    layer.members.iter().map(|k| info(items, k, &layer.images).map_or_else(|| size_anywhere(items, k), |i| i.size)).fold(0, u64::saturating_add)
}

fn fresh_id(unit: &str, images: &Images, used: &BTreeSet<String>) -> String {
    if !used.contains(unit) {
        return unit.to_string();
    }
    let joined: Vec<&str> = images.iter().map(String::as_str).collect();
    let h = hex::encode(Sha256::digest(joined.join("\n").as_bytes()));
    for n in (4..=h.len()).step_by(4) {
        let id = format!("{unit}~{}", &h[..n]);
        if !used.contains(&id) {
            return id;
        }
    }
    (2..).map(|i| format!("{unit}~{h}-{i}")).find(|id| !used.contains(id)).expect("an unused id exists")
}

/// Brings every image within `max` layers (its top layer included): first by merging
/// layers used by the same images (no sharing lost), then, for an image still over, by a
/// private layer copying its smallest layers (it *replaces* them for that image only, so the
/// shared layers, and therefore a re-plan, are unaffected).
fn enforce_budget(layers: &mut Vec<Layer>, fleet: &Fleet, max: u32, size: &dyn Fn(&Layer) -> u64, used: &mut BTreeSet<String>) {
    let limit = (max as usize).saturating_sub(1); // room for the top layer
    // Kept up to date through the merges (recounting per merge was most of the planning time
    // of a big fleet).
    let mut sizes: Vec<u64> = layers.iter().map(size).collect();
    let mut counts: BTreeMap<&str, usize> = fleet.keys().map(|img| (img.as_str(), 0)).collect();
    for image in layers.iter().flat_map(|l| &l.images) {
        if let Some(c) = counts.get_mut(image.as_str()) {
            *c += 1;
        }
    }
    let mut stuck: BTreeSet<String> = BTreeSet::new();
    loop {
        let over = counts.iter().filter(|(img, c)| **c > limit && !stuck.contains(**img)).max_by(|a, b| a.1.cmp(b.1).then_with(|| b.0.cmp(a.0)));
        let Some((image, _)) = over else { break };
        let image = image.to_string();
        let mine: Vec<usize> = (0..layers.len()).filter(|&i| layers[i].images.contains(&image)).collect();
        // The pair with the smallest combined size, so big (often updated) layers stay apart.
        let mut best: Option<(u64, usize, usize)> = None;
        for (x, &i) in mine.iter().enumerate() {
            for &j in &mine[x + 1..] {
                if layers[i].images == layers[j].images {
                    let s = sizes[i].saturating_add(sizes[j]);
                    if best.is_none_or(|(bs, _, _)| s < bs) {
                        best = Some((s, i, j));
                    }
                }
            }
        }
        let Some((_, i, j)) = best else {
            stuck.insert(image);
            continue;
        };
        // The bigger layer keeps its id; the smaller one's members join it.
        let (keep, gone) = if (sizes[i], &layers[j].id) >= (sizes[j], &layers[i].id) { (i, j) } else { (j, i) };
        let moved = std::mem::take(&mut layers[gone].members);
        layers[keep].members.extend(moved);
        sizes[keep] = sizes[keep].saturating_add(sizes[gone]);
        for img in &layers[gone].images {
            if let Some(c) = counts.get_mut(img.as_str()) {
                *c -= 1;
            }
        }
        sizes.remove(gone);
        layers.remove(gone);
    }
    for image in stuck {
        let mut mine: Vec<usize> = (0..layers.len()).filter(|&i| layers[i].images.contains(&image)).collect();
        if mine.len() <= limit {
            continue;
        }
        mine.sort_by(|&a, &b| size(&layers[a]).cmp(&size(&layers[b])).then_with(|| layers[a].id.cmp(&layers[b].id)));
        let take = mine.len() - limit + 1;
        let mut members = BTreeSet::new();
        let mut replaces = BTreeSet::new();
        for &i in &mine[..take] {
            members.extend(layers[i].members.iter().cloned());
            replaces.insert(layers[i].id.clone());
        }
        let images = Images::from([image.clone()]);
        let id = fresh_id(&format!("{image}~own"), &images, used);
        used.insert(id.clone());
        layers.push(Layer { id, images, members, replaces, fresh: true });
    }
}

/// The item of `key` used by exactly `images`, found without cloning the image set.
fn info<'a>(items: &'a BTreeMap<Item, ItemInfo>, key: &str, images: &Images) -> Option<&'a ItemInfo> {
    items
        .range(Item { key: key.to_string(), images: Images::new() }..)
        .take_while(|(i, _)| i.key == key)
        .find(|(i, _)| &i.images == images)
        .map(|(_, info)| info)
}

fn candidate<'a>(layer: &'a Layer, items: &'a BTreeMap<Item, ItemInfo>) -> Candidate<'a> {
    let members = layer
        .members
        .iter()
        .map(|k| info(items, k, &layer.images).map_or((k.as_str(), k.as_str(), 0), |i| (k.as_str(), i.source.as_str(), i.size)))
        .collect();
    Candidate { images: layer.images.len(), members }
}

/// Step 3 of [`plan`]: kept merges split when they have become clearly worse, then fresh
/// layers of the same images merged greedily. A merged layer keeps the id of its biggest
/// part, so a layer's name still says what is mostly in it. A split that would take one of
/// its images over `max` is not made: that merge is the budget's, and undoing it would only
/// have the budget merge again, perhaps otherwise (plans must not flap).
fn apply_cost(layers: Vec<Layer>, items: &BTreeMap<Item, ItemInfo>, facts: &Facts, cost: &Cost, max: u32, used: &mut BTreeSet<String>) -> Vec<Layer> {
    let limit = (max as usize).saturating_sub(1); // room for the top layer
    let mut count: BTreeMap<String, usize> = BTreeMap::new();
    for image in layers.iter().flat_map(|l| &l.images) {
        *count.entry(image.clone()).or_default() += 1;
    }
    let mut out: Vec<Layer> = Vec::with_capacity(layers.len());
    for layer in layers {
        let parts = if layer.fresh || !layer.replaces.is_empty() { None } else { split_if_worse(&candidate(&layer, items), facts, cost) };
        let Some(parts) = parts.filter(|p| layer.images.iter().all(|i| count[i] + p.len() - 1 <= limit)) else {
            out.push(layer);
            continue;
        };
        for image in &layer.images {
            *count.get_mut(image).expect("counted above") += parts.len() - 1;
        }
        let mut parts: Vec<Layer> = parts
            .into_iter()
            .map(|keys| Layer { id: String::new(), images: layer.images.clone(), members: keys.into_iter().map(str::to_string).collect(), replaces: BTreeSet::new(), fresh: true })
            .collect();
        parts.sort_by_key(|p| std::cmp::Reverse(layer_size(items, p)));
        for (n, mut part) in parts.into_iter().enumerate() {
            part.id = if n == 0 {
                layer.id.clone()
            } else {
                let first = part.members.iter().next().expect("a part has members");
                let id = fresh_id(&info(items, first, &part.images).map_or(first.clone(), |i| i.source.clone()), &part.images, used);
                used.insert(id.clone());
                id
            };
            out.push(part);
        }
    }

    let mut classes: BTreeMap<Images, Vec<usize>> = BTreeMap::new();
    for (i, l) in out.iter().enumerate().filter(|(_, l)| l.fresh && l.replaces.is_empty()) {
        classes.entry(l.images.clone()).or_default().push(i);
    }
    let mut absorbed: BTreeMap<usize, usize> = BTreeMap::new(); // layer → the layer it joins
    for idx in classes.values().filter(|idx| idx.len() > 1) {
        let candidates: Vec<Candidate<'_>> = idx.iter().map(|&i| candidate(&out[i], items)).collect();
        for group in merge_same_images(&candidates, facts, cost).into_iter().filter(|g| g.len() > 1) {
            let group: Vec<usize> = group.into_iter().map(|g| idx[g]).collect();
            let keep = *group.iter().max_by(|&&a, &&b| layer_size(items, &out[a]).cmp(&layer_size(items, &out[b])).then_with(|| out[b].id.cmp(&out[a].id))).expect("a group has layers");
            for &g in group.iter().filter(|&&g| g != keep) {
                absorbed.insert(g, keep);
            }
        }
    }
    for (&gone, &keep) in &absorbed {
        let moved = std::mem::take(&mut out[gone].members);
        out[keep].members.extend(moved);
    }
    out.into_iter().enumerate().filter(|(i, _)| !absorbed.contains_key(i)).map(|(_, l)| l).collect()
}
