//! Loading archives into the store: docker-archive (what `docker save`, `podman save` and
//! `strata save` write) and oci-archive. The reverse of [`crate::archive`].
//!
//! Both loaders read the tar once, front to back, from any `Read` (a file, a pipe from a
//! daemon, an RPM payload): nothing is unpacked to a temporary directory. Every entry is
//! judged before it is used — absolute or `..` paths, links leaving the archive, devices,
//! duplicate names, oversized JSON and oversized tar extension headers ([`crate::targuard`])
//! are refused with an error naming the entry — and blobs go into the store through
//! [`Store::blob_writer`], so they are verified and renamed into place whole. Tags are
//! written last, after every image of the archive is complete; an archive refused anywhere
//! leaves no tag (only untagged blobs, which `strata gc` removes).
//!
//! **docker-archive**: `manifest.json` names each image's config and layer files. The order
//! of files in the tar is not fixed (docker writes `manifest.json` last), so each file is
//! handled as it streams past: small JSON documents are kept in memory (bounded), anything
//! else is treated as a possible layer and stored at once. A plain-tar layer is hashed (its
//! diff_id) while being compressed with the store's deterministic compressor, so an image
//! strata composed comes back with byte-identical layer blobs; a gzip or zstd layer (strata's
//! `--layers as-stored`, docker's containerd store) is stored as it is and its diff_id taken
//! while decompressing. Each layer's diff_id is then checked against the config. The manifest
//! is the original one when the archive carries it (strata's own `StrataManifest` key in
//! `manifest.json`, or an OCI manifest among the archive's blobs, as docker ≥ 25 writes one)
//! and it names exactly this config and these layer blobs; otherwise a fresh OCI manifest.
//!
//! **oci-archive**: see [`load_oci_archive`].

mod oci;
#[cfg(test)]
mod tests;

pub use oci::load_oci_archive;

use crate::compress::{Codec, Compression};
use crate::config::{build_manifest, JsonBlob};
use crate::digest::{parse_sha256, Sha256Writer};
use crate::error::IoContext;
use crate::reference::ImageRef;
use crate::store::Store;
use crate::targuard::TarGuard;
use crate::{Error, Result};
use oci_spec::image::{Descriptor, Digest, MediaType};
use serde::Deserialize;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{self, Read, Write};

/// Largest JSON document (manifest.json, index.json, a config or manifest) kept in memory.
/// Real ones are kilobytes; docker's own loader has no limit, which is the hazard.
pub const MAX_JSON: u64 = 16 << 20;
/// All JSON documents of one archive together.
const MAX_JSON_TOTAL: usize = 128 << 20;
/// Entries in one archive (files, directories and links). `docker save` of a hundred
/// images with a hundred layers each stays well below.
pub const MAX_ENTRIES: usize = 100_000;
/// Symlink hops followed when resolving a file named by `manifest.json`.
const MAX_LINK_HOPS: usize = 16;

/// Which images of an archive to load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Select {
    /// Every image the archive lists.
    All,
    /// The archive's one image, as skopeo reads `oci-archive:FILE` and `docker-archive:FILE`
    /// given no reference: an archive listing several is refused with their names and how to
    /// choose, never read as its first image (which one is "first" is the writer's choice).
    Only,
    /// The image listed under this name (a docker-archive's `RepoTags` entry, an
    /// oci-archive's ref name), as skopeo's `docker-archive:FILE:NAME:TAG`.
    Name(String),
    /// The n-th image (from 0), as skopeo's `docker-archive:FILE:@N`.
    Index(usize),
}

/// Which tags a loaded image gets in the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TagPolicy {
    /// The names the archive gives it (`RepoTags`; an oci-archive's image name).
    ArchiveNames,
    /// None: the image is stored, and returned, but not listed. The caller tags it.
    Untagged,
    /// Exactly these (the archive's names are ignored). Refused when more than one image is
    /// selected, since every image would claim the same tags.
    As(Vec<ImageRef>),
}

/// How an archive is loaded.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    /// Compression of layers the archive carries as plain tar. The default is what
    /// `strata compose` writes, so a saved and loaded image gets its own blobs back.
    pub compression: Compression,
    /// Compression threads; never changes the bytes.
    pub threads: usize,
    pub select: Select,
    pub tags: TagPolicy,
}

impl Default for ImportOptions {
    fn default() -> Self {
        ImportOptions {
            compression: Compression::default(),
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            select: Select::All,
            tags: TagPolicy::ArchiveNames,
        }
    }
}

/// One image loaded into the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Imported {
    /// Digest of the manifest as stored.
    pub manifest_digest: Digest,
    /// The manifest descriptor (media type, size, digest).
    pub manifest: Descriptor,
    /// The config digest: docker's and podman's image id.
    pub image_id: Digest,
    /// The names the archive gives the image (may be empty).
    pub repo_tags: Vec<String>,
    /// The tags written in the store.
    pub tagged: Vec<ImageRef>,
    /// Whether the manifest is the archive's original one (else built afresh, annotations lost).
    pub original_manifest: bool,
}

/// One row of a docker-archive's manifest.json. Unknown keys (docker's `LayerSources`) are
/// ignored, as docker and containers/image ignore them.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ManifestItem {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
    /// strata's own key: the image's original manifest, stored as a file of the archive
    /// (docker's manifest.json has no place for its annotations or layer media types).
    #[serde(default)]
    strata_manifest: Option<String>,
}

/// The key strata's docker-archive writer adds to each manifest.json row.
pub const STRATA_MANIFEST_KEY: &str = "StrataManifest";

/// A file of a docker-archive, as handled while it streamed past.
enum Item {
    /// Small JSON, kept whole.
    Json(Vec<u8>),
    /// Stored in the store as a possible layer.
    Layer(Box<StoredLayer>),
}

#[derive(Debug, Clone)]
struct StoredLayer {
    descriptor: Descriptor,
    diff_id: Digest,
}

/// Loads the images of a docker-archive read from `input` into `store`; see the module docs.
/// Returns the loaded images in manifest.json's order.
pub fn load_docker_archive<R: Read>(store: &Store, input: R, opts: &ImportOptions) -> Result<Vec<Imported>> {
    let mut items: HashMap<String, Item> = HashMap::new();
    let mut json_total = 0usize;
    let links = walk(input, |path, size, r| {
        let head = peek(r, 4).ctx(|| format!("reading {path}"))?;
        let is_json = matches!(head.first(), Some(b'{' | b'['));
        if is_json && size <= MAX_JSON {
            json_total += size as usize;
            if json_total > MAX_JSON_TOTAL {
                return Err(bad(format!("its JSON files add up to more than {MAX_JSON_TOTAL} bytes")));
            }
            let mut bytes = head;
            r.read_to_end(&mut bytes).ctx(|| format!("reading {path}"))?;
            items.insert(path.to_string(), Item::Json(bytes));
        } else if path == "manifest.json" || path == "index.json" {
            return Err(bad(format!("{path} is {size} bytes, over the limit of {MAX_JSON}")));
        } else {
            let layer = store_layer(store, &mut (&head[..]).chain(r), opts).map_err(|e| in_file(path, e))?;
            items.insert(path.to_string(), Item::Layer(Box::new(layer)));
        }
        Ok(())
    })?;
    let lookup = |path: &str| -> Result<(String, &Item)> {
        let path = resolve_link(&links, &normalize(path).map_err(|r| bad(format!("manifest.json names {path:?}: {r}")))?)?;
        let item = items.get(&path).ok_or_else(|| bad(format!("manifest.json names {path}, which the archive does not hold")))?;
        Ok((path, item))
    };
    let (_, manifest_json) = lookup("manifest.json").map_err(|_| {
        bad("it has no manifest.json, so it is not a docker-archive\nhint: an OCI layout in a tar is an oci-archive (oci-archive:FILE)".into())
    })?;
    let Item::Json(manifest_json) = manifest_json else { return Err(bad("manifest.json is not JSON".into())) };
    let rows: Vec<ManifestItem> =
        serde_json::from_slice(manifest_json).map_err(|e| bad(format!("manifest.json is not a docker-archive manifest: {e}")))?;
    let chosen = select_rows(&rows, &opts.select)?;
    check_tag_policy(&opts.tags, chosen.len())?;

    let candidates = archived_manifests(&items);
    let mut staged = Vec::new();
    for &i in &chosen {
        let row = &rows[i];
        let (config_path, config) = lookup(&row.config)?;
        let Item::Json(config_bytes) = config else {
            return Err(bad(format!("config {config_path} of image {} is not a JSON document of at most {MAX_JSON} bytes", row_name(row, i))));
        };
        let diff_ids = config_diff_ids(config_bytes).map_err(|r| bad(format!("config {config_path}: {r}")))?;
        if diff_ids.len() != row.layers.len() {
            return Err(bad(format!(
                "image {} lists {} layers, its config {} diff_ids",
                row_name(row, i),
                row.layers.len(),
                diff_ids.len()
            )));
        }
        let mut layers = Vec::with_capacity(row.layers.len());
        for (n, (path, want)) in row.layers.iter().zip(&diff_ids).enumerate() {
            let (path, item) = lookup(path)?;
            let layer = match item {
                Item::Layer(l) => (**l).clone(),
                // A layer that happened to start like JSON: store it now.
                Item::Json(bytes) => store_layer(store, &mut &bytes[..], opts).map_err(|e| in_file(&path, e))?,
            };
            if &layer.diff_id != want {
                return Err(bad(format!(
                    "layer {} ({path}) of image {} is the tar {}, its config's diff_id says {want}",
                    n + 1,
                    row_name(row, i),
                    layer.diff_id
                )));
            }
            layers.push(layer.descriptor);
        }
        let image_id = store.put_bytes(config_bytes)?;
        let original = row
            .strata_manifest
            .as_deref()
            .and_then(|p| lookup(p).ok())
            .and_then(|(_, item)| match item {
                Item::Json(b) => Some(b.as_slice()),
                Item::Layer(_) => None,
            })
            .filter(|b| manifest_matches(b, &image_id, &layers))
            .or_else(|| {
                // Without strata's key: an OCI manifest of this very image among the blobs
                // (docker ≥ 25 with the containerd image store writes the original one).
                let mut found = candidates.iter().filter(|b| manifest_matches(b, &image_id, &layers));
                let first = found.next()?;
                found.all(|b| b == first).then_some(first.as_slice())
            });
        let (manifest, original_manifest) = match original {
            Some(bytes) => (store_manifest_bytes(store, bytes)?, true),
            None => {
                let config = Descriptor::new(MediaType::ImageConfig, config_bytes.len() as u64, image_id.clone());
                let m = JsonBlob::new(&build_manifest(config, layers, &BTreeMap::new())?, MediaType::ImageManifest)?;
                store.put_blob(&m.bytes[..], Some(m.descriptor.digest()))?;
                (m.descriptor, false)
            }
        };
        let repo_tags = row.repo_tags.clone().unwrap_or_default();
        staged.push((manifest, image_id, repo_tags, original_manifest));
    }
    tag_all(store, staged, &opts.tags)
}

/// The images `select` asks for, as indexes into `rows`.
fn select_rows(rows: &[ManifestItem], select: &Select) -> Result<Vec<usize>> {
    if rows.is_empty() {
        return Err(bad("its manifest.json lists no image".into()));
    }
    match select {
        Select::All => Ok((0..rows.len()).collect()),
        Select::Only if rows.len() == 1 => Ok(vec![0]),
        Select::Only => {
            let labels: Vec<String> = rows.iter().enumerate().map(|(i, r)| image_label(r.repo_tags.as_deref().unwrap_or_default(), i)).collect();
            let by_position = format!("docker-archive:FILE:@N (N from 0 to {})", rows.len() - 1);
            let hint = if rows.iter().any(|r| r.repo_tags.as_ref().is_some_and(|t| !t.is_empty())) {
                format!("choose one: docker-archive:FILE:NAME:TAG (a name above) or {by_position}")
            } else {
                format!("choose one by its position: {by_position}")
            };
            Err(not_the_only_image(&labels, &hint))
        }
        Select::Index(n) if *n < rows.len() => Ok(vec![*n]),
        Select::Index(n) => Err(Error::ImageNotFound(format!("@{n} (the archive holds {} images, @0 to @{})", rows.len(), rows.len() - 1))),
        Select::Name(name) => {
            let found = rows.iter().position(|r| r.repo_tags.iter().flatten().any(|t| same_name(t, name)));
            found.map(|i| vec![i]).ok_or_else(|| {
                let names: Vec<&str> = rows.iter().flat_map(|r| r.repo_tags.iter().flatten().map(String::as_str)).collect();
                Error::ImageNotFound(format!("{name} in the archive (it holds {})", if names.is_empty() { "no named image".into() } else { names.join(", ") }))
            })
        }
    }
}

/// Most images a refusal of [`Select::Only`] lists by name; the rest are counted.
const LISTED_IMAGES: usize = 10;

/// How a refusal names one image of an archive: its names, else its position `@N` (which
/// is how `docker-archive:FILE:@N` chooses it).
pub(crate) fn image_label(names: &[String], position: usize) -> String {
    match names {
        [] => format!("@{position}"),
        [one] => one.clone(),
        [first, rest @ ..] => format!("{first} (also {})", rest.join(", ")),
    }
}

/// The refusal of [`Select::Only`] for an archive listing more than one image (each given
/// by [`image_label`]); `hint` says how this archive format chooses one (`oci:DIR` sources
/// are refused alike by `Store::resolve_ref_name`: the count, the names, how to choose).
pub(crate) fn not_the_only_image(labels: &[String], hint: &str) -> Error {
    let mut shown = labels.iter().take(LISTED_IMAGES).cloned().collect::<Vec<_>>().join(", ");
    if labels.len() > LISTED_IMAGES {
        shown.push_str(&format!(" and {} more", labels.len() - LISTED_IMAGES));
    }
    bad(format!("its only image was asked for (no reference given), but it lists {} images: {shown}\nhint: {hint}", labels.len()))
}

/// Names equal as docker compares them: `busybox:latest` is `docker.io/library/busybox:latest`.
pub(crate) fn same_name(a: &str, b: &str) -> bool {
    fn short(s: &str) -> &str {
        let s = s.strip_prefix("docker.io/").unwrap_or(s);
        s.strip_prefix("library/").unwrap_or(s)
    }
    let with_tag = |s: &str| -> String {
        let last = s.rsplit('/').next().unwrap_or(s);
        if last.contains(':') || s.contains('@') { s.to_string() } else { format!("{s}:latest") }
    };
    short(&with_tag(a)) == short(&with_tag(b))
}

fn row_name(row: &ManifestItem, i: usize) -> String {
    row.repo_tags.as_ref().and_then(|t| t.first()).cloned().unwrap_or_else(|| format!("@{i}"))
}

fn check_tag_policy(tags: &TagPolicy, images: usize) -> Result<()> {
    match tags {
        TagPolicy::As(t) if images > 1 && !t.is_empty() => Err(Error::InvalidImage(format!(
            "the archive holds {images} images and each would be tagged {}\nhint: choose one image (FILE:NAME:TAG or FILE:@N)",
            t.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
        ))),
        _ => Ok(()),
    }
}

/// Tags every staged image, after all of them are complete: `(manifest, image id, archive names, original?)`.
fn tag_all(store: &Store, staged: Vec<(Descriptor, Digest, Vec<String>, bool)>, policy: &TagPolicy) -> Result<Vec<Imported>> {
    let mut planned = Vec::with_capacity(staged.len());
    // Parse every name before writing any tag, so a bad name tags nothing.
    for (manifest, image_id, repo_tags, original_manifest) in staged {
        let tags = match policy {
            TagPolicy::Untagged => Vec::new(),
            TagPolicy::As(t) => t.clone(),
            TagPolicy::ArchiveNames => repo_tags
                .iter()
                .map(|t| ImageRef::parse(t).map_err(|e| bad(format!("the image name {t:?} in the archive is not usable: {e}"))))
                .collect::<Result<_>>()?,
        };
        planned.push(Imported { manifest_digest: manifest.digest().clone(), manifest, image_id, repo_tags, tagged: tags, original_manifest });
    }
    for image in &planned {
        if !image.tagged.is_empty() {
            store.tag_manifest(&image.manifest, &image.tagged)?;
        }
    }
    Ok(planned)
}

/// A config's `rootfs.diff_ids`, each a well-formed sha256 digest.
fn config_diff_ids(config: &[u8]) -> std::result::Result<Vec<Digest>, String> {
    let v: Value = serde_json::from_slice(config).map_err(|e| format!("not JSON: {e}"))?;
    let ids = v["rootfs"]["diff_ids"].as_array().ok_or("no rootfs.diff_ids")?;
    ids.iter()
        .map(|d| d.as_str().ok_or_else(|| "a diff_id is not a string".to_string()).and_then(|s| parse_sha256(s).map_err(|e| e.to_string())))
        .collect()
}

/// Whether `bytes` is an image manifest naming config `image_id` and exactly `layers`.
fn manifest_matches(bytes: &[u8], image_id: &Digest, layers: &[Descriptor]) -> bool {
    let Ok(v) = serde_json::from_slice::<Value>(bytes) else { return false };
    let config_ok = v["config"]["digest"].as_str() == Some(image_id.as_ref());
    let listed = v["layers"].as_array().map(Vec::as_slice).unwrap_or_default();
    config_ok
        && listed.len() == layers.len()
        && listed.iter().zip(layers).all(|(l, d)| {
            l["digest"].as_str() == Some(d.digest().as_ref()) && l["size"].as_u64() == Some(d.size())
        })
}

/// JSON documents under `blobs/sha256/` that look like image manifests.
fn archived_manifests(items: &HashMap<String, Item>) -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = items
        .iter()
        .filter(|(p, _)| p.starts_with("blobs/"))
        .filter_map(|(_, i)| match i {
            Item::Json(b) if serde_json::from_slice::<Value>(b).is_ok_and(|v| v["config"].is_object() && v["layers"].is_array()) => Some(b.clone()),
            _ => None,
        })
        .collect();
    out.sort();
    out
}

/// Stores manifest bytes exactly; the descriptor takes its media type from the document.
pub(crate) fn store_manifest_bytes(store: &Store, bytes: &[u8]) -> Result<Descriptor> {
    let digest = store.put_bytes(bytes)?;
    let v: Value = serde_json::from_slice(bytes).map_err(|e| Error::json("manifest", e))?;
    let media_type = v["mediaType"].as_str().map_or(MediaType::ImageManifest, MediaType::from);
    Ok(Descriptor::new(media_type, bytes.len() as u64, digest))
}

/// Stores one possible layer: a plain tar is compressed with `opts.compression` while its
/// diff_id is computed; a gzip or zstd one (told by its magic) is stored as is while its
/// diff_id is computed through the decompressor.
fn store_layer(store: &Store, r: &mut dyn Read, opts: &ImportOptions) -> Result<StoredLayer> {
    let head = peek(r, 4).ctx(|| "reading".into())?;
    let mut r = (&head[..]).chain(r);
    let codec = sniff(&head);
    let blob = store.blob_writer()?;
    let (blob, diff_id, media_type) = match codec {
        Codec::Plain => {
            let mut w = Sha256Writer::new(opts.compression.writer(blob, opts.threads).ctx(|| "compressing".into())?);
            io::copy(&mut r, &mut w).ctx(|| "compressing".into())?;
            let (compressor, diff_id, _) = w.finish();
            (compressor.finish().ctx(|| "compressing".into())?, diff_id, opts.compression.layer_media_type())
        }
        Codec::Gzip | Codec::Zstd => {
            let mut tee = Tee { inner: r, copy: blob };
            let mut hash = Sha256Writer::new(io::sink());
            {
                let mut dec = codec.decoder(&mut tee).ctx(|| "decompressing".into())?;
                io::copy(&mut dec, &mut hash).map_err(|e| bad(format!("it is not valid {codec:?}: {e}")))?;
            }
            // Whatever follows the compressed stream is part of the blob too.
            io::copy(&mut tee.inner, &mut tee.copy).ctx(|| "reading".into())?;
            let media_type = if codec == Codec::Gzip { MediaType::ImageLayerGzip } else { MediaType::ImageLayerZstd };
            (tee.copy, hash.finish().1, media_type)
        }
    };
    let (digest, size) = blob.commit(None)?;
    Ok(StoredLayer { descriptor: Descriptor::new(media_type, size, digest), diff_id })
}

/// The codec of a blob from its first bytes.
fn sniff(head: &[u8]) -> Codec {
    if head.starts_with(&[0x1f, 0x8b]) {
        Codec::Gzip
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Codec::Zstd
    } else {
        Codec::Plain
    }
}

/// Reads up to `n` bytes (fewer only at the end of the stream).
fn peek(r: &mut dyn Read, n: usize) -> io::Result<Vec<u8>> {
    let mut head = Vec::with_capacity(n);
    r.take(n as u64).read_to_end(&mut head)?;
    Ok(head)
}

/// A reader that copies everything read through it into `copy`.
struct Tee<R, W> {
    inner: R,
    copy: W,
}

impl<R: Read, W: Write> Read for Tee<R, W> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.copy.write_all(&buf[..n])?;
        Ok(n)
    }
}

pub(crate) fn bad(reason: String) -> Error {
    Error::BadArchive(reason)
}

fn in_file(path: &str, e: Error) -> Error {
    match e {
        Error::BadArchive(r) => bad(format!("{path}: {r}")),
        other => Error::BadArchive(format!("{path}: {other}")),
    }
}

/// Reads every entry of the tar `input`: regular files are handed to `file` (path, size,
/// content), directories skipped, links returned (path → target, both archive paths) for
/// [`resolve_link`]. Refuses unsafe paths, links leaving the archive, other entry types,
/// duplicate names and more than [`MAX_ENTRIES`] entries.
pub(crate) fn walk<R: Read>(input: R, mut file: impl FnMut(&str, u64, &mut dyn Read) -> Result<()>) -> Result<HashMap<String, String>> {
    let mut archive = tar::Archive::new(TarGuard::new(input));
    let mut seen: HashSet<String> = HashSet::new();
    let mut links = HashMap::new();
    let reading = || "reading the archive".to_string();
    for entry in archive.entries().map_err(|e| bad(format!("{}: {e}", reading())))? {
        let mut entry = entry.map_err(|e| bad(format!("{}: {e}", reading())))?;
        let raw = entry.path_bytes().into_owned();
        let shown = String::from_utf8_lossy(&raw).into_owned();
        let path = std::str::from_utf8(&raw)
            .map_err(|_| "not UTF-8")
            .and_then(normalize)
            .map_err(|r| bad(format!("entry {shown:?}: {r}")))?;
        if path.is_empty() {
            continue; // "./" itself
        }
        if seen.len() >= MAX_ENTRIES {
            return Err(bad(format!("it has more than {MAX_ENTRIES} entries")));
        }
        let kind = entry.header().entry_type();
        if kind.is_dir() {
            continue;
        }
        if !seen.insert(path.clone()) {
            return Err(bad(format!("{path} appears twice; which one is meant cannot be told")));
        }
        if kind.is_file() || kind == tar::EntryType::Continuous {
            let size = entry.size();
            file(&path, size, &mut entry)?;
        } else if kind.is_symlink() || kind.is_hard_link() {
            let target = entry.link_name_bytes().map(|t| t.into_owned()).unwrap_or_default();
            let target = std::str::from_utf8(&target).map_err(|_| bad(format!("link {path}: target is not UTF-8")))?;
            let resolved = if kind.is_symlink() {
                if target.starts_with('/') {
                    return Err(bad(format!("symlink {path} points to the absolute path {target}, outside the archive")));
                }
                let parent = path.rsplit_once('/').map_or("", |(p, _)| p);
                resolve_dots(&format!("{parent}/{target}"))
            } else {
                normalize(target)
            };
            let resolved = resolved.map_err(|r| bad(format!("link {path} -> {target}: {r}; it leads outside the archive")))?;
            links.insert(path, resolved);
        } else {
            return Err(bad(format!("{path} is a {kind:?} entry; an image archive holds only files, directories and links")));
        }
    }
    Ok(links)
}

/// An archive path in normal form (no `./`, no empty components, no trailing `/`); refuses
/// absolute paths and `..`.
pub(crate) fn normalize(path: &str) -> std::result::Result<String, &'static str> {
    if path.starts_with('/') {
        return Err("absolute path");
    }
    if path.contains('\0') {
        return Err("NUL in path");
    }
    let mut parts: Vec<&str> = Vec::new();
    for c in path.split('/') {
        match c {
            "" | "." => {}
            ".." => return Err("\"..\" in path"),
            c => parts.push(c),
        }
    }
    Ok(parts.join("/"))
}

/// A link target joined to its directory, `..` taken lexically; refuses leaving the root.
fn resolve_dots(path: &str) -> std::result::Result<String, &'static str> {
    let mut parts: Vec<&str> = Vec::new();
    for c in path.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop().ok_or("\"..\" above the archive's root")?;
            }
            c => parts.push(c),
        }
    }
    Ok(parts.join("/"))
}

/// Follows links recorded by [`walk`] to the file they name.
pub(crate) fn resolve_link(links: &HashMap<String, String>, path: &str) -> Result<String> {
    let mut p = path.to_string();
    for _ in 0..MAX_LINK_HOPS {
        match links.get(&p) {
            Some(next) => p = next.clone(),
            None => return Ok(p),
        }
    }
    Err(bad(format!("{path}: more than {MAX_LINK_HOPS} links deep (a loop?)")))
}

/// Parses `sha256:<hex>` for callers outside the crate's digest module.
pub(crate) fn digest_of_blob_path(path: &str) -> Option<Digest> {
    let hex = path.strip_prefix("blobs/sha256/")?;
    parse_sha256(&format!("sha256:{hex}")).ok()
}
