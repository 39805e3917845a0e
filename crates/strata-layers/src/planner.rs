//! The planning algorithm: items → layers (reusing the previous plan) → budget → order.

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
}

/// Plans the fleet's layers. `previous` (the plan recorded last time) keeps layer ids and
/// membership stable; it is ignored when it was made in another mode.
pub fn plan(fleet: &Fleet, settings: &Settings, previous: Option<&Plan>) -> Plan {
    let mut out = Plan { mode: settings.mode, max_per_image: settings.max_per_image.max(1), layers: Vec::new() };
    if settings.mode == Mode::Single || out.max_per_image <= 1 {
        return out;
    }
    let items = items(fleet);
    let mut layers: Vec<Layer> = Vec::new();
    let mut placed: BTreeSet<Item> = BTreeSet::new();

    // 1. What the previous plan said still holds: a member stays where it was as long as the
    //    same images use the same build of it.
    if let Some(prev) = previous.filter(|p| p.mode == settings.mode) {
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
            layers.push(Layer { id: pl.id.clone(), images, members, replaces: BTreeSet::new() });
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
        layers.push(Layer { id, images, members, replaces: BTreeSet::new() });
    }

    // 3. The budget.
    let size = |l: &Layer| -> u64 {
        l.members.iter().map(|k| items.get(&Item { key: k.clone(), images: l.images.clone() }).map_or_else(|| size_anywhere(&items, k), |i| i.size)).sum()
    };
    enforce_budget(&mut layers, fleet, out.max_per_image, &size, &mut used);

    // 4. Order: more widely shared first, then by image set and id (stable across runs).
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
            e.2 += m.size;
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
    items.iter().find(|(i, _)| i.key == key).map_or(0, |(_, info)| info.size)
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
    let count = |layers: &[Layer], img: &str| layers.iter().filter(|l| l.images.contains(img)).count();
    let mut stuck: BTreeSet<String> = BTreeSet::new();
    loop {
        let over = fleet
            .keys()
            .filter(|img| !stuck.contains(*img))
            .map(|img| (count(layers, img), img))
            .filter(|(c, _)| *c > limit)
            .max_by(|a, b| a.0.cmp(&b.0).then_with(|| b.1.cmp(a.1)));
        let Some((_, image)) = over else { break };
        let image = image.clone();
        let mine: Vec<usize> = (0..layers.len()).filter(|&i| layers[i].images.contains(&image)).collect();
        // The pair with the smallest combined size, so big (often updated) layers stay apart.
        let mut best: Option<(u64, usize, usize)> = None;
        for (x, &i) in mine.iter().enumerate() {
            for &j in &mine[x + 1..] {
                if layers[i].images == layers[j].images {
                    let s = size(&layers[i]) + size(&layers[j]);
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
        let (keep, gone) = if (size(&layers[i]), &layers[j].id) >= (size(&layers[j]), &layers[i].id) { (i, j) } else { (j, i) };
        let moved = std::mem::take(&mut layers[gone].members);
        layers[keep].members.extend(moved);
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
        layers.push(Layer { id, images, members, replaces });
    }
}
