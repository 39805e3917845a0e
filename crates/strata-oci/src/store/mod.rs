//! The local image store: an OCI image layout directory.
//!
//! ```text
//! <root>/oci-layout          {"imageLayoutVersion":"1.0.0"}
//! <root>/index.json          one manifest descriptor per tag, annotated
//!                            org.opencontainers.image.ref.name = "NAME:TAG"
//! <root>/blobs/sha256/<hex>  content-addressed blobs
//! <root>/.tmp/               blobs being written (ignored by other OCI tools)
//! <root>/.lock               flock(2) serialising index.json updates
//! ```
//!
//! Crash safety comes from ordering: blobs are written to `.tmp`, synced and renamed into
//! `blobs/` first; `index.json` is replaced last, atomically (temporary file + rename),
//! under the lock. A crash at any point leaves either the old index or the new one, and an
//! index only ever names blobs that were complete before it was written. Blobs of an image
//! that never got into the index are garbage, which [`Store::gc`] removes.
//!
//! Concurrent writers are safe: blob writes need no lock (same digest ⇒ same bytes, and
//! rename is atomic), index updates are read-modify-write under the lock. `gc` spares blobs
//! younger than a grace period, because a concurrent build may have stored blobs whose
//! image is not in the index yet; a blob that is stored again is renamed afresh, which
//! renews its age.

mod blob;
mod copy;
mod meta;
#[cfg(test)]
pub(crate) mod tests;

pub use blob::BlobWriter;

use crate::config::{build_manifest, canonical_json, JsonBlob};
use crate::digest::{parse_sha256, sha256_hex, sha256_hex_of};
use crate::error::IoContext;
use crate::layer::{LayerBuilder, LayerInfo, WriteOptions};
use crate::reference::ImageRef;
use crate::{Error, Result};
use blob::{sync_dir, write_atomic};
use oci_spec::image::{
    Descriptor, Digest, ImageConfiguration, ImageIndex, ImageIndexBuilder, ImageManifest, MediaType,
};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// The annotation that names an image in an OCI layout's index.
pub const REF_NAME_ANNOTATION: &str = "org.opencontainers.image.ref.name";

const LAYOUT_FILE: &str = "oci-layout";
const LAYOUT_VERSION: &str = "1.0.0";

/// An image as the store lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageEntry {
    pub reference: ImageRef,
    /// The manifest descriptor (without the ref-name annotation).
    pub manifest: Descriptor,
}

/// An image resolved to its manifest and config.
#[derive(Debug, Clone)]
pub struct ResolvedImage {
    /// The tag it was found under, if resolved by name.
    pub reference: Option<ImageRef>,
    pub manifest_descriptor: Descriptor,
    pub manifest: ImageManifest,
    pub config: ImageConfiguration,
    /// The config exactly as stored (its digest is the image id).
    pub config_bytes: Vec<u8>,
}

/// The parts of an image whose layers are already in the store.
#[derive(Debug, Clone)]
pub struct NewImage {
    pub config: ImageConfiguration,
    pub layers: Vec<Descriptor>,
    pub annotations: BTreeMap<String, String>,
}

/// An image whose blobs are stored but which no tag names yet.
#[derive(Debug, Clone)]
pub struct StagedImage {
    pub manifest: Descriptor,
    pub config: Descriptor,
}

/// What [`Store::gc`] removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GcReport {
    pub blobs_removed: usize,
    pub bytes_freed: u64,
    /// Unreferenced blobs spared because they are younger than the grace period.
    pub blobs_kept_young: usize,
}

/// An OCI image layout directory; see the module docs.
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
}

/// Holds the store's lock file locked; released on drop.
struct IndexLock(#[allow(dead_code)] File);

impl Store {
    /// Opens the store at `root`, creating an empty layout if the directory has none.
    pub fn open_or_create(root: impl Into<PathBuf>) -> Result<Store> {
        let store = Store { root: root.into() };
        for dir in [store.blobs_dir(), store.tmp_dir()] {
            fs::create_dir_all(&dir).ctx(|| format!("creating {}", dir.display()))?;
        }
        let _lock = store.lock()?;
        let layout = store.root.join(LAYOUT_FILE);
        if !layout.exists() {
            let v = serde_json::json!({ "imageLayoutVersion": LAYOUT_VERSION });
            write_atomic(&layout, &canonical_json(&v)?)?;
        }
        if !store.index_path().exists() {
            store.write_index(Vec::new())?;
        }
        store.check_layout()?;
        Ok(store)
    }

    /// Opens an existing store; fails if `root` is not an OCI layout.
    pub fn open(root: impl Into<PathBuf>) -> Result<Store> {
        let store = Store { root: root.into() };
        store.check_layout()?;
        for dir in [store.blobs_dir(), store.tmp_dir()] {
            fs::create_dir_all(&dir).ctx(|| format!("creating {}", dir.display()))?;
        }
        Ok(store)
    }

    fn check_layout(&self) -> Result<()> {
        let bad = |reason: String| Error::BadLayout {
            path: self.root.clone(),
            reason,
        };
        let layout = self.root.join(LAYOUT_FILE);
        let text = fs::read(&layout).map_err(|e| bad(format!("reading {LAYOUT_FILE}: {e}")))?;
        let v: Value =
            serde_json::from_slice(&text).map_err(|e| bad(format!("{LAYOUT_FILE}: {e}")))?;
        if v["imageLayoutVersion"] != LAYOUT_VERSION {
            return Err(bad(format!(
                "unsupported imageLayoutVersion {}",
                v["imageLayoutVersion"]
            )));
        }
        self.read_index()?;
        Ok(())
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn blobs_dir(&self) -> PathBuf {
        self.root.join("blobs").join("sha256")
    }

    fn tmp_dir(&self) -> PathBuf {
        self.root.join(".tmp")
    }

    fn index_path(&self) -> PathBuf {
        self.root.join("index.json")
    }

    fn lock(&self) -> Result<IndexLock> {
        let path = self.root.join(".lock");
        let f = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .ctx(|| format!("opening {}", path.display()))?;
        rustix::fs::flock(&f, rustix::fs::FlockOperation::LockExclusive)
            .map_err(|e| Error::io(format!("locking {}", path.display()), e.into()))?;
        Ok(IndexLock(f))
    }

    // ---- blobs ----

    /// Path of a blob (whether or not it exists); refuses non-sha256 digests.
    pub fn blob_path(&self, digest: &Digest) -> Result<PathBuf> {
        Ok(self.blobs_dir().join(sha256_hex(digest)?))
    }

    pub fn has_blob(&self, digest: &Digest) -> bool {
        self.blob_path(digest).is_ok_and(|p| p.is_file())
    }

    /// Opens a blob for reading.
    pub fn open_blob(&self, digest: &Digest) -> Result<File> {
        let p = self.blob_path(digest)?;
        File::open(&p).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => Error::BlobNotFound(digest.to_string()),
            _ => Error::io(format!("opening {}", p.display()), e),
        })
    }

    /// Reads a (small, JSON) blob whole and verifies its digest.
    pub fn read_blob(&self, digest: &Digest) -> Result<Vec<u8>> {
        let mut bytes = Vec::new();
        self.open_blob(digest)?
            .read_to_end(&mut bytes)
            .ctx(|| format!("reading blob {digest}"))?;
        let actual = sha256_hex_of(&bytes);
        if &actual != digest {
            return Err(Error::DigestMismatch {
                expected: digest.to_string(),
                actual: actual.to_string(),
            });
        }
        Ok(bytes)
    }

    /// Starts writing a blob of yet unknown digest.
    pub fn blob_writer(&self) -> Result<BlobWriter> {
        BlobWriter::new(&self.tmp_dir(), &self.blobs_dir())
    }

    /// Stores the bytes of `reader`, verifying them against `expected` if given. When the
    /// expected blob is already present the reader is not read at all.
    pub fn put_blob(
        &self,
        mut reader: impl Read,
        expected: Option<&Digest>,
    ) -> Result<(Digest, u64)> {
        if let Some(d) = expected {
            let path = self.blob_path(d)?;
            if let Ok(md) = fs::metadata(&path) {
                touch(&path)?;
                return Ok((d.clone(), md.len()));
            }
        }
        let mut w = self.blob_writer()?;
        io::copy(&mut reader, &mut w).ctx(|| "copying blob".into())?;
        w.commit(expected)
    }

    /// Stores a byte slice; returns its digest.
    pub fn put_bytes(&self, bytes: &[u8]) -> Result<Digest> {
        let digest = sha256_hex_of(bytes);
        self.put_blob(bytes, Some(&digest))?;
        Ok(digest)
    }

    /// A layer builder that spills file content into the store's own temporary directory:
    /// same disk as the blobs, and not a RAM-backed `/tmp`, since layers can be large.
    pub fn new_layer(&self) -> LayerBuilder {
        LayerBuilder::with_spill_dir(self.tmp_dir())
    }

    /// Writes a layer straight into the store.
    pub fn put_layer(&self, layer: LayerBuilder, opts: WriteOptions) -> Result<LayerInfo> {
        let (w, info) = layer.finish(self.blob_writer()?, opts)?;
        w.commit(Some(&info.digest))?;
        Ok(info)
    }

    // ---- images ----

    /// Stores config and manifest for layers already in the store and tags the image with
    /// every reference in `tags` (replacing the images those tags named). Returns the
    /// manifest descriptor.
    pub fn put_image(&self, image: &NewImage, tags: &[ImageRef]) -> Result<Descriptor> {
        let staged = self.stage_image(image)?;
        self.tag_staged(&staged, tags)?;
        Ok(staged.manifest)
    }

    /// Stores config and manifest without tagging: the image is complete in the store but
    /// not listed until [`Store::tag_staged`], so a caller can record things about it first.
    pub fn stage_image(&self, image: &NewImage) -> Result<StagedImage> {
        for l in &image.layers {
            let path = self.blob_path(l.digest())?;
            let size = fs::metadata(&path).map(|m| m.len()).ok();
            if size != Some(l.size()) {
                return Err(match size {
                    None => Error::InvalidImage(missing_layer(l.digest())),
                    Some(s) => Error::InvalidImage(format!("layer {} is {s} bytes in the store, the manifest says {} bytes", l.digest(), l.size())),
                });
            }
        }
        let config = JsonBlob::new(&image.config, MediaType::ImageConfig)?;
        self.put_blob(&config.bytes[..], Some(config.descriptor.digest()))?;
        let manifest = build_manifest(config.descriptor.clone(), image.layers.clone(), &image.annotations)?;
        let manifest = JsonBlob::new(&manifest, MediaType::ImageManifest)?;
        self.put_blob(&manifest.bytes[..], Some(manifest.descriptor.digest()))?;
        Ok(StagedImage { manifest: manifest.descriptor, config: config.descriptor })
    }

    /// Like [`Store::stage_image`] for a config given as JSON, so fields the typed config
    /// does not know (Docker's `Healthcheck`, `OnBuild`, `Shell`) are kept.
    pub fn stage_image_json(&self, config: &Value, layers: Vec<Descriptor>, annotations: &BTreeMap<String, String>) -> Result<StagedImage> {
        for l in &layers {
            if !self.has_blob(l.digest()) {
                return Err(Error::InvalidImage(missing_layer(l.digest())));
            }
        }
        let config = JsonBlob::new(config, MediaType::ImageConfig)?;
        self.put_blob(&config.bytes[..], Some(config.descriptor.digest()))?;
        let manifest = build_manifest(config.descriptor.clone(), layers, annotations)?;
        let manifest = JsonBlob::new(&manifest, MediaType::ImageManifest)?;
        self.put_blob(&manifest.bytes[..], Some(manifest.descriptor.digest()))?;
        Ok(StagedImage { manifest: manifest.descriptor, config: config.descriptor })
    }

    /// Tags an image stored by [`Store::stage_image`].
    pub fn tag_staged(&self, staged: &StagedImage, tags: &[ImageRef]) -> Result<()> {
        self.tag_descriptor(&staged.manifest, tags)
    }

    /// Points `tag` at the image `source` resolves to (like `docker tag`).
    pub fn tag(&self, source: &str, tag: &ImageRef) -> Result<()> {
        let img = self.resolve(source)?;
        self.tag_descriptor(&img.manifest_descriptor, std::slice::from_ref(tag))
    }

    /// Tags a manifest already stored (e.g. pulled from a registry, whose bytes must stay
    /// as they are): index entries carry its media type, OCI's or Docker's.
    pub fn tag_manifest(&self, manifest: &Descriptor, tags: &[ImageRef]) -> Result<()> {
        self.tag_descriptor(manifest, tags)
    }

    fn tag_descriptor(&self, manifest: &Descriptor, tags: &[ImageRef]) -> Result<()> {
        // Blobs renamed into place must be durable before an index can name them.
        sync_dir(&self.blobs_dir())?;
        let _lock = self.lock()?;
        self.check_collected(manifest.digest(), tags)?;
        let mut entries = self.read_index()?.manifests().clone();
        let names: BTreeSet<String> = tags.iter().map(|t| t.to_string()).collect();
        entries.retain(|d| ref_name(d).is_none_or(|n| !names.contains(n)));
        for name in names {
            let mut d = Descriptor::new(
                manifest.media_type().clone(),
                manifest.size(),
                manifest.digest().clone(),
            );
            d.set_annotations(Some(HashMap::from([(
                REF_NAME_ANNOTATION.to_string(),
                name,
            )])));
            entries.push(d);
        }
        self.write_index(entries)
    }

    /// Under the index lock, before a tag makes an image reachable: every blob it names must
    /// still be here. Blobs written for an image are unreachable until it is tagged, and
    /// `strata gc` with a grace period shorter than the build removes them (gc takes the same
    /// lock, so once tagged the image is safe). Without this check the tag would name an
    /// image with missing blobs, and the failure would surface later as a bare "not found".
    fn check_collected(&self, manifest: &Digest, tags: &[ImageRef]) -> Result<()> {
        let collected = |digest: &str, what: &str| Error::BlobCollected {
            digest: digest.to_string(),
            what: what.to_string(),
            image: tags.iter().map(ToString::to_string).collect::<Vec<_>>().join(", "),
        };
        let bytes = match self.read_blob(manifest) {
            Ok(b) => b,
            Err(Error::BlobNotFound(_)) => return Err(collected(manifest.as_ref(), "manifest")),
            Err(e) => return Err(e),
        };
        let Ok(v) = serde_json::from_slice::<Value>(&bytes) else { return Ok(()) };
        let named = std::iter::once((&v["config"], "config"))
            .chain(v["layers"].as_array().into_iter().flatten().map(|l| (l, "layer")));
        // An index's child manifests are not checked: a pull keeps only its platform's.
        for (d, what) in named {
            let Some(Ok(digest)) = d["digest"].as_str().map(parse_sha256) else { continue };
            if !self.has_blob(&digest) {
                return Err(collected(digest.as_ref(), what));
            }
        }
        Ok(())
    }

    /// Removes a tag. Returns whether it existed. Blobs stay until [`Store::gc`].
    pub fn untag(&self, tag: &ImageRef) -> Result<bool> {
        let _lock = self.lock()?;
        let mut entries = self.read_index()?.manifests().clone();
        let name = tag.to_string();
        let before = entries.len();
        entries.retain(|d| ref_name(d) != Some(name.as_str()));
        if entries.len() == before {
            return Ok(false);
        }
        self.write_index(entries)?;
        Ok(true)
    }

    /// Every tagged image, sorted by reference. Index entries whose name is not a
    /// `NAME:TAG` (written by other tools) are not listed but still protect their blobs.
    pub fn list(&self) -> Result<Vec<ImageEntry>> {
        let mut out: Vec<ImageEntry> = self
            .read_index()?
            .manifests()
            .iter()
            .filter_map(|d| {
                let reference = ImageRef::parse(ref_name(d)?).ok()?;
                let mut manifest = d.clone();
                manifest.set_annotations(None);
                Some(ImageEntry {
                    reference,
                    manifest,
                })
            })
            .collect();
        out.sort_by(|a, b| a.reference.cmp(&b.reference));
        Ok(out)
    }

    /// Resolves `NAME[:TAG]` (tag defaults to `latest`) or a manifest digest
    /// `sha256:<hex>` that the index lists, and loads manifest and config.
    pub fn resolve(&self, reference: &str) -> Result<ResolvedImage> {
        let index = self.read_index()?;
        let (found, tag) = if reference.starts_with("sha256:") {
            let digest = parse_sha256(reference)?;
            (
                index
                    .manifests()
                    .iter()
                    .find(|d| d.digest() == &digest)
                    .cloned(),
                None,
            )
        } else {
            let r = ImageRef::parse(reference)?;
            let name = r.to_string();
            let d = index
                .manifests()
                .iter()
                .find(|d| ref_name(d) == Some(name.as_str()))
                .cloned();
            (d, Some(r))
        };
        let Some(mut desc) = found else {
            return Err(Error::ImageNotFound(reference.to_string()));
        };
        desc.set_annotations(None);
        self.load(desc, tag, reference)
    }

    /// Loads the image whose manifest blob has `digest`, listed in the index or not (a
    /// pulled base image kept only by digest, a stage of a build).
    pub fn load_manifest(&self, digest: &Digest) -> Result<ResolvedImage> {
        let path = self.blob_path(digest)?;
        let size = fs::metadata(&path).map_err(|_| Error::ImageNotFound(digest.to_string()))?.len();
        self.load(Descriptor::new(MediaType::ImageManifest, size, digest.clone()), None, digest.as_ref())
    }

    fn load(&self, desc: Descriptor, tag: Option<ImageRef>, reference: &str) -> Result<ResolvedImage> {
        let manifest_bytes = self.read_blob(desc.digest())?;
        let manifest: ImageManifest = serde_json::from_slice(&manifest_bytes)
            .map_err(|e| Error::json(format!("manifest {}", desc.digest()), e))?;
        let config_bytes = self.read_blob(manifest.config().digest())?;
        let config: ImageConfiguration = serde_json::from_slice(&config_bytes)
            .map_err(|e| Error::json(format!("config {}", manifest.config().digest()), e))?;
        if config.rootfs().diff_ids().len() != manifest.layers().len() {
            return Err(Error::InvalidImage(format!(
                "{}: {} layers but {} diff_ids",
                reference,
                manifest.layers().len(),
                config.rootfs().diff_ids().len()
            )));
        }
        Ok(ResolvedImage {
            reference: tag,
            manifest_descriptor: desc,
            manifest,
            config,
            config_bytes,
        })
    }

    // ---- index ----

    fn read_index(&self) -> Result<ImageIndex> {
        let path = self.index_path();
        let bytes = fs::read(&path).map_err(|e| Error::BadLayout {
            path: self.root.clone(),
            reason: format!("reading index.json: {e}"),
        })?;
        serde_json::from_slice(&bytes).map_err(|e| Error::BadLayout {
            path: self.root.clone(),
            reason: format!("index.json: {e}"),
        })
    }

    /// Replaces index.json; callers hold the lock. Entries are sorted so the file is a
    /// function of its content.
    fn write_index(&self, mut manifests: Vec<Descriptor>) -> Result<()> {
        manifests.sort_by(|a, b| {
            (ref_name(a), a.digest().to_string()).cmp(&(ref_name(b), b.digest().to_string()))
        });
        manifests.dedup();
        let index = ImageIndexBuilder::default()
            .schema_version(2u32)
            .media_type(MediaType::ImageIndex)
            .manifests(manifests)
            .build()?;
        write_atomic(&self.index_path(), &canonical_json(&index)?)
    }

    // ---- garbage collection ----

    /// Removes blobs no index entry reaches (through manifests, image indexes, configs and
    /// layers) that are older than `grace`, and temporary files older than `grace`.
    /// Pass `Duration::ZERO` only when no other build is writing to this store.
    pub fn gc(&self, grace: Duration) -> Result<GcReport> {
        let _lock = self.lock()?;
        let live = self.reachable()?;
        let cutoff = SystemTime::now()
            .checked_sub(grace)
            .unwrap_or(SystemTime::UNIX_EPOCH);
        let mut report = GcReport::default();
        let dir = self.blobs_dir();
        for entry in fs::read_dir(&dir).ctx(|| format!("listing {}", dir.display()))? {
            let entry = entry.ctx(|| format!("listing {}", dir.display()))?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if live.contains(name) {
                continue;
            }
            let md = entry.metadata().ctx(|| format!("inspecting blob {name}"))?;
            if md.modified().is_ok_and(|m| m > cutoff) {
                report.blobs_kept_young += 1;
                continue;
            }
            fs::remove_file(entry.path()).ctx(|| format!("removing blob {name}"))?;
            report.blobs_removed += 1;
            report.bytes_freed += md.len();
        }
        let tmp = self.tmp_dir();
        if let Ok(rd) = fs::read_dir(&tmp) {
            for entry in rd.flatten() {
                let old = entry
                    .metadata()
                    .and_then(|m| m.modified())
                    .is_ok_and(|m| m <= cutoff);
                if old {
                    // Best effort: a stray temporary file is harmless.
                    let _ = fs::remove_file(entry.path());
                }
            }
        }
        Ok(report)
    }

    /// Hex digests of every blob reachable from index.json.
    fn reachable(&self) -> Result<BTreeSet<String>> {
        let mut live = BTreeSet::new();
        let mut todo: Vec<(Digest, bool)> = self
            .read_index()?
            .manifests()
            .iter()
            .map(|d| (d.digest().clone(), true))
            .collect();
        while let Some((digest, walk)) = todo.pop() {
            let hex = sha256_hex(&digest)?.to_string();
            if !live.insert(hex) || !walk {
                continue;
            }
            // Manifests and indexes (OCI or Docker) are followed through their JSON fields,
            // so images written by other tools keep their blobs too.
            let bytes = match self.read_blob(&digest) {
                Ok(b) => b,
                Err(Error::BlobNotFound(_)) => continue,
                Err(e) => return Err(e),
            };
            let Ok(v) = serde_json::from_slice::<Value>(&bytes) else {
                continue;
            };
            let mut push = |d: &Value, walk: bool| {
                if let Some(s) = d["digest"].as_str() {
                    if let Ok(d) = parse_sha256(s) {
                        todo.push((d, walk));
                    }
                }
            };
            push(&v["config"], false);
            for l in v["layers"].as_array().into_iter().flatten() {
                push(l, false);
            }
            for m in v["manifests"].as_array().into_iter().flatten() {
                push(m, true);
            }
            push(&v["subject"], true);
        }
        Ok(live)
    }
}

/// A layer missing when its image is staged: most often written moments ago by this very
/// build and collected by a concurrent `strata gc` (see [`Store::check_collected`]).
fn missing_layer(digest: &Digest) -> String {
    format!("layer {digest} is not in the store: it was never written, or a concurrent `strata gc` with a --grace shorter than this build removed it\nhint: re-run the command (it writes the layer again)")
}

/// The ref-name annotation of an index entry.
fn ref_name(d: &Descriptor) -> Option<&str> {
    d.annotations()
        .as_ref()?
        .get(REF_NAME_ANNOTATION)
        .map(String::as_str)
}

/// Renews a blob's mtime so a concurrent gc's grace period counts from its reuse.
fn touch(path: &Path) -> Result<()> {
    let f = fs::OpenOptions::new()
        .append(true)
        .open(path)
        .ctx(|| format!("opening {}", path.display()))?;
    f.set_modified(SystemTime::now())
        .ctx(|| format!("touching {}", path.display()))
}
