//! The top layer: whatever makes the stacked package layers into exactly the installed root
//! — the rpmdb, files scriptlets wrote or changed, entries nobody owns, directory metadata
//! the package layers do not end with, and whiteouts for what scriptlets deleted.
//!
//! It is the difference between the root and the union of the package layers as an
//! extractor applies them (later layers win; each layer's implicit parent directories are
//! `0755 root:root` at that layer's time, since a directory entry's metadata is applied when
//! seen). Every parent of a top-layer entry is written with its final metadata for the same
//! reason.

use crate::pkglayer::{pristine, Body, Entry, PackageLayer, Src};
use crate::Error;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;
use strata_install::InstallReport;
use strata_oci::layer::{read_xattr, LayerBuilder, Meta, CAPABILITY_XATTR};

/// What the image shows at each path once the package layers are applied.
struct Union {
    entries: BTreeMap<String, Entry>,
}

impl Union {
    fn new(layers: &[PackageLayer]) -> Union {
        let mut entries = BTreeMap::new();
        for layer in layers {
            let implicit = Meta::new(0o755).mtime(layer.time);
            for (path, (e, _)) in &layer.entries {
                let mut parent = path.rsplit_once('/').map(|(p, _)| p);
                while let Some(p) = parent {
                    if !layer.entries.contains_key(p) {
                        entries.insert(p.to_string(), Entry { meta: implicit.clone(), body: Body::Dir });
                    }
                    parent = p.rsplit_once('/').map(|(q, _)| q);
                }
                entries.insert(path.clone(), e.clone());
            }
        }
        Union { entries }
    }
}

/// What the final root holds at a path, as a layer entry.
enum Final {
    /// Exactly a package layer's entry (placed and untouched since).
    Layer(Entry),
    /// Anything else, read from the root: `meta` for the tar, `nlink`/`ino` for hardlinks.
    Disk { meta: Meta, kind: DiskKind, ino: u64, nlink: u64 },
}

enum DiskKind {
    Dir,
    File,
    Symlink(Vec<u8>),
}

pub(crate) struct TopInput<'a> {
    pub root: &'a Path,
    /// The image's package layers, lowest first.
    pub layers: &'a [PackageLayer],
    pub report: &'a InstallReport,
    /// `created`: the time given to entries of the top layer with no better one.
    pub created: u64,
}

/// Fills `builder` with the top layer.
pub(crate) fn top_layer(input: &TopInput<'_>, builder: &mut LayerBuilder) -> Result<(), Error> {
    let union = Union::new(input.layers);
    let layer_of: HashMap<usize, usize> = input.layers.iter().enumerate().flat_map(|(li, l)| l.packages.iter().map(move |&p| (p, li))).collect();
    builder.set_default_mtime(input.created);

    let mut seen: BTreeSet<String> = BTreeSet::new();
    let mut dirs: BTreeMap<String, Meta> = BTreeMap::new();
    let mut added: BTreeSet<String> = BTreeSet::new();
    let mut inodes: HashMap<u64, String> = HashMap::new();
    let mut stack: Vec<String> = vec![String::new()];
    while let Some(dir) = stack.pop() {
        let abs = input.root.join(&dir);
        let mut names: Vec<Vec<u8>> = fs::read_dir(&abs)?.map(|e| e.map(|e| e.file_name().as_bytes().to_vec())).collect::<Result<_, _>>()?;
        names.sort();
        for name in names {
            let name = String::from_utf8(name).map_err(|n| Error::Layer(format!("{}/{}: file name is not UTF-8", abs.display(), String::from_utf8_lossy(n.as_bytes()))))?;
            let rel = if dir.is_empty() { name } else { format!("{dir}/{name}") };
            let Some(fin) = final_entry(input, &layer_of, &rel)? else { continue };
            seen.insert(rel.clone());
            let is_dir = match &fin {
                Final::Layer(e) => e.body == Body::Dir,
                Final::Disk { kind, .. } => matches!(kind, DiskKind::Dir),
            };
            if is_dir {
                dirs.insert(rel.clone(), e_meta(&fin).clone());
                stack.push(rel.clone());
            }
            let same = match (&fin, union.entries.get(&rel)) {
                (Final::Layer(e), Some(u)) => e == u,
                (Final::Disk { meta, kind: DiskKind::Dir, .. }, Some(u)) => u.body == Body::Dir && &u.meta == meta,
                _ => false,
            };
            if same {
                continue;
            }
            add(builder, input.root, &rel, &fin, &mut inodes)?;
            added.insert(rel);
        }
    }

    // What the package layers have and the root does not: deleted by a scriptlet. One
    // whiteout at the highest missing path covers everything below it.
    let mut whiteouts: Vec<String> = Vec::new();
    for path in union.entries.keys() {
        if seen.contains(path) {
            continue;
        }
        let parent = path.rsplit_once('/').map(|(p, _)| p);
        let parent_is_dir = parent.is_none_or(|p| dirs.contains_key(p));
        if parent_is_dir {
            builder.add_whiteout(path)?;
            whiteouts.push(path.clone());
        }
    }

    // Every parent of what the top layer carries, with its final metadata.
    let mut parents: BTreeSet<String> = BTreeSet::new();
    for path in added.iter().chain(whiteouts.iter()) {
        let mut p = path.rsplit_once('/').map(|(p, _)| p);
        while let Some(d) = p {
            if !added.contains(d) {
                parents.insert(d.to_string());
            }
            p = d.rsplit_once('/').map(|(q, _)| q);
        }
    }
    for d in parents {
        let meta = dirs.get(&d).ok_or_else(|| Error::Layer(format!("{d}: parent of a top-layer entry is not a directory")))?;
        builder.add_dir(&d, meta)?;
    }
    Ok(())
}

fn e_meta(f: &Final) -> &Meta {
    match f {
        Final::Layer(e) => &e.meta,
        Final::Disk { meta, .. } => meta,
    }
}

/// The final entry at `rel`; `None` for what layers do not carry (sockets).
fn final_entry(input: &TopInput<'_>, layer_of: &HashMap<usize, usize>, rel: &str) -> Result<Option<Final>, Error> {
    let abs = input.root.join(rel);
    let md = fs::symlink_metadata(&abs)?;
    let ft = md.file_type();
    let key = format!("/{rel}");
    let placed = input.report.placed.get(&key);
    // Placed by a package of this image's layers, and still as placed?
    if let Some(p) = placed {
        if let Some(&li) = layer_of.get(&p.package) {
            if let Some((e, src)) = input.layers[li].entries.get(rel) {
                if src.package == p.package && untouched(input, rel, e, *src, &md) {
                    return Ok(Some(Final::Layer(e.clone())));
                }
            }
        }
    }
    let created = input.created;
    let mut meta = Meta::new(md.mode() & 0o7777).owner(u64::from(md.uid()), u64::from(md.gid()));
    let kind = if ft.is_dir() {
        // A directory's disk mtime changes with its children; keep the package's (clamped)
        // where it has one, as the single-layer build did.
        meta.mtime = placed.map_or(created, |p| u64::from(p.mtime).min(created));
        DiskKind::Dir
    } else {
        let disk = md.mtime();
        meta.mtime = if disk >= 0 && (disk as u64) <= created { disk as u64 } else { created };
        if ft.is_symlink() {
            DiskKind::Symlink(fs::read_link(&abs)?.as_os_str().as_bytes().to_vec())
        } else if ft.is_file() {
            if let Some(caps) = read_xattr(&abs, CAPABILITY_XATTR)? {
                meta = meta.xattr(CAPABILITY_XATTR, caps);
            }
            DiskKind::File
        } else if ft.is_socket() {
            return Ok(None);
        } else {
            return Err(Error::Layer(format!("/{rel}: device nodes and FIFOs are not supported in layers")));
        }
    };
    Ok(Some(Final::Disk { meta, kind, ino: md.ino(), nlink: md.nlink() }))
}

/// Directories: same type, mode and owner as placed (children change a directory's times,
/// not its identity). Everything else: same inode and ctime as right after placement.
fn untouched(input: &TopInput<'_>, rel: &str, e: &Entry, src: Src, md: &fs::Metadata) -> bool {
    match e.body {
        Body::Dir => md.is_dir() && u64::from(md.mode() & 0o7777) == u64::from(e.meta.mode) && u64::from(md.uid()) == e.meta.uid && u64::from(md.gid()) == e.meta.gid,
        _ => pristine(input.root, rel, src, input.report),
    }
}

fn add(builder: &mut LayerBuilder, root: &Path, rel: &str, fin: &Final, inodes: &mut HashMap<u64, String>) -> Result<(), Error> {
    match fin {
        Final::Layer(e) => match &e.body {
            Body::Dir => builder.add_dir(rel, &e.meta)?,
            Body::File { .. } => builder.add_file_from_path(rel, &e.meta, root.join(rel))?,
            Body::Symlink(t) => builder.add_symlink(rel, &e.meta, t)?,
            // The other name is in a package layer: in this layer the file is a copy.
            Body::Hardlink(_) => builder.add_file_from_path(rel, &e.meta, root.join(rel))?,
        },
        Final::Disk { meta, kind, ino, nlink } => match kind {
            DiskKind::Dir => builder.add_dir(rel, meta)?,
            DiskKind::Symlink(t) => builder.add_symlink(rel, meta, t)?,
            DiskKind::File => {
                if *nlink > 1 {
                    if let Some(first) = inodes.get(ino) {
                        builder.add_hardlink(rel, first)?;
                        return Ok(());
                    }
                    inodes.insert(*ino, rel.to_string());
                }
                builder.add_file_from_path(rel, meta, root.join(rel))?;
            }
        },
    }
    Ok(())
}
