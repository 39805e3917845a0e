//! Package layers: the entries a group of packages placed, as a layer that depends on
//! nothing but those entries — so the same packages, installed the same way, give the same
//! bytes in every image, and a layer already in the store is reused by its key alone.
//!
//! The content is what installation *placed*, not what the root holds at the end: a file a
//! scriptlet later changed is still the package's own file here (the top layer carries the
//! change). It is read from the root where the root still holds it untouched (its inode and
//! ctime are those recorded right after placement) and otherwise streamed once more from the
//! package's payload.

use crate::Error;
use sha2::{Digest as _, Sha256};
use std::collections::{BTreeMap, HashMap};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use strata_install::{InstallReport, PlacedKind};
use strata_oci::compress::Compression;
use strata_oci::layer::{LayerBuilder, Meta, CAPABILITY_XATTR};
use strata_package::Package;

/// Bumped whenever the same placements would now give different layer bytes.
const LAYER_FORMAT: u32 = 1;

/// What a layer holds at one path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Entry {
    pub meta: Meta,
    pub body: Body,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Body {
    Dir,
    /// Content identified by the header digest.
    File { size: u64, digest: String },
    Symlink(String),
    /// Relative path of the file this is another name of.
    Hardlink(String),
}

/// Where an entry came from: package index and placement index in the install report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Src {
    pub package: usize,
    pub placement: usize,
}

/// A planned layer of one image, with everything needed to key, build and diff it.
pub(crate) struct PackageLayer {
    pub id: String,
    /// Indices into the image's package list.
    pub packages: Vec<usize>,
    /// Default mtime (implicit parents) and upper bound of every mtime in the layer.
    pub time: u64,
    /// Relative path → entry (the package placing it last, in install order, wins).
    pub entries: BTreeMap<String, (Entry, Src)>,
    /// Content key: equal keys mean byte-identical layers.
    pub key: String,
}

pub(crate) fn rel(path: &str) -> &str {
    path.trim_start_matches('/')
}

/// The layer `id` of `members` (package indices) as installation placed them.
pub(crate) fn contents(
    id: &str,
    members: &[usize],
    packages: &[Package],
    checksums: &[String],
    report: &InstallReport,
    sde: Option<u64>,
    compression: Compression,
) -> Result<PackageLayer, Error> {
    let newest = members.iter().map(|&i| packages[i].build_time()).max().unwrap_or(0);
    let time = sde.map_or(newest, |s| s.min(newest));
    // Install order, so that a path placed by two members is the later one's.
    let position: HashMap<usize, usize> = report.packages.iter().enumerate().map(|(pos, p)| (p.index, pos)).collect();
    let mut ordered: Vec<usize> = members.to_vec();
    ordered.sort_by_key(|i| position.get(i).copied().unwrap_or(usize::MAX));

    let mut entries: BTreeMap<String, (Entry, Src)> = BTreeMap::new();
    for &pkg in &ordered {
        for (k, p) in report.placements[pkg].iter().enumerate() {
            let mut meta = Meta::new(p.attrs.perms & 0o7777).owner(u64::from(p.attrs.uid), u64::from(p.attrs.gid)).mtime(u64::from(p.attrs.mtime).min(time));
            let body = match &p.kind {
                PlacedKind::Dir => Body::Dir,
                PlacedKind::File { size, digest } => {
                    if let Some(caps) = &p.attrs.caps {
                        meta = meta.xattr(CAPABILITY_XATTR, caps.clone());
                    }
                    Body::File { size: *size, digest: digest.clone() }
                }
                PlacedKind::Symlink { target } => {
                    meta.mode = 0o777;
                    Body::Symlink(target.clone())
                }
                PlacedKind::Hardlink { target } => Body::Hardlink(rel(target).to_string()),
                PlacedKind::Special { .. } => {
                    return Err(Error::Layer(format!("{}: {} is a device node or FIFO, which image layers cannot carry", packages[pkg].nevra(), p.path)))
                }
            };
            entries.insert(rel(&p.path).to_string(), (Entry { meta, body }, Src { package: pkg, placement: k }));
        }
    }
    // A hardlink's metadata is its target's, as the tar will say.
    let targets: Vec<(String, Meta)> = entries
        .iter()
        .filter_map(|(path, (e, _))| match &e.body {
            Body::Hardlink(t) => entries.get(t).map(|(te, _)| (path.clone(), te.meta.clone())),
            _ => None,
        })
        .collect();
    for (path, meta) in targets {
        if let Some((e, _)) = entries.get_mut(&path) {
            e.meta = meta;
        }
    }

    let mut sums: Vec<&str> = members.iter().map(|&i| checksums[i].as_str()).collect();
    sums.sort_unstable();
    let key = key(&entries, time, &sums, compression);
    Ok(PackageLayer { id: id.to_string(), packages: members.to_vec(), time, entries, key })
}

fn key(entries: &BTreeMap<String, (Entry, Src)>, time: u64, sums: &[&str], compression: Compression) -> String {
    let mut h = Sha256::new();
    h.update(format!("strata-layer {LAYER_FORMAT}\n{compression:?}\n{time}\n{}\n", sums.join(" ")).as_bytes());
    for (path, (e, _)) in entries {
        let (kind, size, what) = match &e.body {
            Body::Dir => ("d", 0, ""),
            Body::File { size, digest } => ("f", *size, digest.as_str()),
            Body::Symlink(t) => ("l", 0, t.as_str()),
            Body::Hardlink(t) => ("h", 0, t.as_str()),
        };
        let m = &e.meta;
        let caps = m.xattrs.get(CAPABILITY_XATTR).map(hex::encode).unwrap_or_default();
        h.update(format!("{path}\0{kind}\0{:o}\0{}\0{}\0{}\0{size}\0{what}\0{caps}\n", m.mode, m.uid, m.gid, m.mtime).as_bytes());
    }
    format!("sha256:{}", hex::encode(h.finalize()))
}

/// `(inode, ctime)` of the entry at `rel` in `root`, not following a final symlink.
pub(crate) fn stamp_of(root: &Path, rel: &str) -> Option<(u64, i64, i64)> {
    let md = std::fs::symlink_metadata(root.join(rel)).ok()?;
    Some((md.ino(), md.ctime(), md.ctime_nsec()))
}

/// Whether the root still holds, at `rel`, exactly what `src` placed there (or, for a file
/// two packages shipped, the same content placed by the other one).
pub(crate) fn pristine(root: &Path, rel: &str, src: Src, report: &InstallReport) -> bool {
    let Some(now) = stamp_of(root, rel) else { return false };
    let mine = &report.placements[src.package][src.placement];
    if mine.stamp == now {
        return true;
    }
    let Some(last) = report.placed.get(&mine.path) else { return false };
    if last.package == src.package || last.stamp != now {
        return false;
    }
    match (&mine.kind, report.placements[last.package].iter().find(|p| p.path == mine.path).map(|p| &p.kind)) {
        (PlacedKind::File { digest: a, size: sa }, Some(PlacedKind::File { digest: b, size: sb })) => !a.is_empty() && a == b && sa == sb,
        _ => false,
    }
}

/// Writes the layer: untouched files straight from the root, the others from their
/// package's payload.
pub(crate) fn build(layer: &PackageLayer, root: &Path, packages: &[Package], report: &InstallReport, builder: &mut LayerBuilder) -> Result<(), Error> {
    builder.set_default_mtime(layer.time);
    let mut from_payload: BTreeMap<usize, HashMap<u32, String>> = BTreeMap::new();
    for (path, (e, src)) in &layer.entries {
        match &e.body {
            Body::Dir => builder.add_dir(path, &e.meta)?,
            Body::Symlink(t) => builder.add_symlink(path, &e.meta, t)?,
            Body::Hardlink(t) => builder.add_hardlink(path, t)?,
            Body::File { .. } => {
                if pristine(root, path, *src, report) {
                    builder.add_file_from_path(path, &e.meta, root.join(path))?;
                } else {
                    let file = report.placements[src.package][src.placement].file as u32;
                    from_payload.entry(src.package).or_default().insert(file, path.clone());
                }
            }
        }
    }
    for (pkg, mut wanted) in from_payload {
        let mut payload = packages[pkg].payload()?;
        while let Some((index, _)) = payload.next_file()? {
            let Some(path) = wanted.remove(&index) else { continue };
            let (e, _) = &layer.entries[&path];
            let Body::File { size, .. } = e.body else { continue };
            if let Err(e) = builder.add_file(&path, &e.meta, size, payload.content()) {
                return Err(match payload.digest_mismatch() {
                    Some(m) => Error::Digest { package: packages[pkg].nevra(), index: pkg, mismatch: m.clone() },
                    None => e.into(),
                });
            }
            if wanted.is_empty() {
                break;
            }
        }
        if let Some(path) = wanted.values().next() {
            return Err(Error::Layer(format!("{}: {path} is not in its payload any more", packages[pkg].nevra())));
        }
    }
    Ok(())
}
