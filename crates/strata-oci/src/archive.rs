//! Saving images from the store as single tar files.
//!
//! **docker-archive** (what `docker save` writes and `docker load` / `podman load` read):
//! `manifest.json` is a list of `{"Config", "RepoTags", "Layers"}` with paths inside the
//! tar. Files are named as docker ≥ 25 names them, `blobs/sha256/<hex>` with `<hex>` the
//! sha256 of that very file, so identical layers of several images are stored once. Layers
//! are written uncompressed by default — every docker and podman version loads that — or as
//! stored (gzip/zstd), which docker's loader and containers/image also accept because they
//! sniff compression, and which saves decompressing. No legacy `repositories` file or
//! per-layer `json`/`VERSION`: loaders since docker 1.10 use `manifest.json` only.
//!
//! manifest.json has no place for the image's manifest (its annotations, its compressed
//! layer digests), so each row also carries `StrataManifest`, the path of the original
//! manifest stored as one more `blobs/sha256/<hex>` file. docker, containerd and
//! containers/image decode manifest.json into structs and ignore keys they do not know, and
//! a stray blob is never read; [`crate::import::load_docker_archive`] uses it to give back
//! the very manifest digest that was saved. (docker ≥ 25 instead adds a whole OCI layout,
//! but that must name blobs the archive holds, and the original manifest's layers are the
//! compressed ones a docker-archive does not carry.)
//!
//! **oci-archive**: a tar of an OCI image layout holding just the saved images; the index
//! names each with `org.opencontainers.image.ref.name` and `io.containerd.image.name`.
//!
//! Both are deterministic: entries sorted by name, mtime 0, root-owned, fixed modes.

use crate::compress::codec_of_media_type;
use crate::config::canonical_json;
use crate::digest::{sha256_hex, sha256_hex_of, Sha256Writer};
use crate::error::IoContext;
use crate::store::{ResolvedImage, Store, REF_NAME_ANNOTATION};
use crate::tarfmt::{self, Kind};
use crate::{Error, Result};
use oci_spec::image::{Digest, ImageIndexBuilder, MediaType};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::io::{self, Read, Write};

/// The annotation containerd (and docker's containerd store) reads for the full image name.
pub const CONTAINERD_NAME_ANNOTATION: &str = "io.containerd.image.name";

/// How a docker-archive carries layers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LayerForm {
    /// Plain tar, verified against the config's diff_ids while writing.
    #[default]
    Uncompressed,
    /// The blob exactly as stored (compressed as in the store).
    AsStored,
}

/// One row of docker's manifest.json.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct DockerManifestEntry {
    config: String,
    repo_tags: Vec<String>,
    layers: Vec<String>,
    /// The image's own manifest, a file of the archive: see the module docs.
    strata_manifest: String,
}

/// What a file in the archive is made of.
enum Content {
    Bytes(Vec<u8>),
    /// A store blob copied as is.
    Blob {
        digest: Digest,
        size: u64,
    },
    /// A compressed store blob, decompressed; `size` is the uncompressed size.
    Decompressed {
        digest: Digest,
        media_type: MediaType,
        size: u64,
    },
}

/// One image to save and the names it is given in the archive.
#[derive(Debug, Clone)]
pub struct SaveItem<'a> {
    /// `NAME[:TAG]` or manifest digest in the store.
    pub image: &'a str,
    /// Names in the archive (docker's `RepoTags`, an OCI ref name); `None` keeps the store's
    /// tag the image was found under.
    pub names: Option<Vec<String>>,
}

impl<'a> SaveItem<'a> {
    fn list(references: &[&'a str]) -> Vec<SaveItem<'a>> {
        references.iter().map(|image| SaveItem { image, names: None }).collect()
    }

    fn names_of(&self, img: &ResolvedImage) -> Vec<String> {
        self.names.clone().unwrap_or_else(|| img.reference.iter().map(|r| r.to_string()).collect())
    }
}

/// Saves images (each `NAME[:TAG]` or manifest digest) as a docker-archive into `out`.
pub fn save_docker_archive<W: Write>(
    store: &Store,
    references: &[&str],
    form: LayerForm,
    out: W,
) -> Result<W> {
    save_docker_archive_items(store, &SaveItem::list(references), form, out)
}

/// [`save_docker_archive`] with the names each image gets in the archive.
pub fn save_docker_archive_items<W: Write>(
    store: &Store,
    items: &[SaveItem<'_>],
    form: LayerForm,
    out: W,
) -> Result<W> {
    let mut files: BTreeMap<String, Content> = BTreeMap::new();
    let mut entries = Vec::new();
    for item in items {
        let img = store.resolve(item.image)?;
        let config_path = blob_name(img.manifest.config().digest())?;
        files.insert(
            config_path.clone(),
            Content::Bytes(img.config_bytes.clone()),
        );
        let mut layers = Vec::new();
        for (desc, diff_id) in img
            .manifest
            .layers()
            .iter()
            .zip(img.config.rootfs().diff_ids())
        {
            let (path, content) = match form {
                LayerForm::AsStored => (
                    blob_name(desc.digest())?,
                    Content::Blob {
                        digest: desc.digest().clone(),
                        size: desc.size(),
                    },
                ),
                LayerForm::Uncompressed => {
                    let diff_id = crate::digest::parse_sha256(diff_id)?;
                    let path = blob_name(&diff_id)?;
                    if files.contains_key(&path) {
                        layers.push(path);
                        continue;
                    }
                    let size = verify_uncompressed(
                        store,
                        &img,
                        desc.digest(),
                        desc.media_type(),
                        &diff_id,
                    )?;
                    let content = Content::Decompressed {
                        digest: desc.digest().clone(),
                        media_type: desc.media_type().clone(),
                        size,
                    };
                    (path, content)
                }
            };
            files.insert(path.clone(), content);
            layers.push(path);
        }
        let manifest_path = blob_name(img.manifest_descriptor.digest())?;
        files.insert(manifest_path.clone(), Content::Bytes(store.read_blob(img.manifest_descriptor.digest())?));
        entries.push(DockerManifestEntry {
            config: config_path,
            repo_tags: item.names_of(&img),
            layers,
            strata_manifest: manifest_path,
        });
    }
    files.insert(
        "manifest.json".into(),
        Content::Bytes(canonical_json(&entries)?),
    );
    write_archive(store, files, out)
}

/// Saves images as an oci-archive (a tar of an OCI layout holding just them) into `out`.
pub fn save_oci_archive<W: Write>(store: &Store, references: &[&str], out: W) -> Result<W> {
    save_oci_archive_items(store, &SaveItem::list(references), out)
}

/// [`save_oci_archive`] with the ref name each image gets (the first of its names; a name
/// that is a full `NAME:TAG` is also written as containerd's image name).
pub fn save_oci_archive_items<W: Write>(store: &Store, items: &[SaveItem<'_>], out: W) -> Result<W> {
    let mut files: BTreeMap<String, Content> = BTreeMap::new();
    let mut index_entries = Vec::new();
    for item in items {
        let img = store.resolve(item.image)?;
        let mut desc = img.manifest_descriptor.clone();
        if let Some(name) = item.names_of(&img).first() {
            let mut annotations = HashMap::from([(REF_NAME_ANNOTATION.to_string(), name.clone())]);
            if crate::reference::ImageRef::parse(name).is_ok() && name.contains(':') {
                annotations.insert(CONTAINERD_NAME_ANNOTATION.to_string(), name.clone());
            }
            desc.set_annotations(Some(annotations));
        }
        index_entries.push(desc);
        let manifest_bytes = store.read_blob(img.manifest_descriptor.digest())?;
        files.insert(
            blob_name(img.manifest_descriptor.digest())?,
            Content::Bytes(manifest_bytes),
        );
        files.insert(
            blob_name(img.manifest.config().digest())?,
            Content::Bytes(img.config_bytes.clone()),
        );
        for l in img.manifest.layers() {
            let content = Content::Blob {
                digest: l.digest().clone(),
                size: l.size(),
            };
            files.insert(blob_name(l.digest())?, content);
        }
    }
    index_entries.sort_by_key(|d| canonical_json(d).unwrap_or_default());
    index_entries.dedup();
    let index = ImageIndexBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageIndex)
        .manifests(index_entries)
        .build()?;
    files.insert("index.json".into(), Content::Bytes(canonical_json(&index)?));
    let layout = serde_json::json!({ "imageLayoutVersion": "1.0.0" });
    files.insert(
        "oci-layout".into(),
        Content::Bytes(canonical_json(&layout)?),
    );
    write_archive(store, files, out)
}

fn blob_name(digest: &Digest) -> Result<String> {
    Ok(format!("blobs/sha256/{}", sha256_hex(digest)?))
}

/// Decompresses a layer once to learn its tar size (needed up front for the tar header)
/// and to check it against the config's diff_id, so a damaged blob fails the save
/// instead of producing an archive `docker load` rejects.
fn verify_uncompressed(
    store: &Store,
    img: &ResolvedImage,
    digest: &Digest,
    media_type: &MediaType,
    diff_id: &Digest,
) -> Result<u64> {
    let codec = codec_of_media_type(media_type).ok_or_else(|| {
        Error::InvalidImage(format!(
            "layer {digest} has unsupported media type {media_type}"
        ))
    })?;
    let mut reader = codec
        .decoder(store.open_blob(digest)?)
        .ctx(|| format!("decompressing layer {digest}"))?;
    let mut hasher = Sha256Writer::new(io::sink());
    io::copy(&mut reader, &mut hasher).ctx(|| format!("decompressing layer {digest}"))?;
    let (_, actual, size) = hasher.finish();
    if &actual != diff_id {
        return Err(Error::InvalidImage(format!(
            "{}: layer {digest} decompresses to {actual}, config says {diff_id}",
            img.reference.as_ref().map_or_else(
                || img.manifest_descriptor.digest().to_string(),
                |r| r.to_string()
            )
        )));
    }
    Ok(size)
}

/// Writes the sorted files (and their parent directories) as a tar.
fn write_archive<W: Write>(store: &Store, files: BTreeMap<String, Content>, out: W) -> Result<W> {
    let mut w = io::BufWriter::with_capacity(1 << 20, out);
    let mut dirs_done: Vec<String> = Vec::new();
    for (path, content) in &files {
        // Parents first; `files` is sorted, so each new directory appears once, in order.
        let mut prefix = String::new();
        for component in path
            .split('/')
            .rev()
            .skip(1)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
        {
            prefix.push_str(component);
            prefix.push('/');
            if !dirs_done.contains(&prefix) {
                write_header(&mut w, &prefix, Kind::Dir, 0)?;
                dirs_done.push(prefix.clone());
            }
        }
        match content {
            Content::Bytes(b) => {
                write_header(&mut w, path, Kind::File, b.len() as u64)?;
                w.write_all(b).ctx(|| format!("writing {path}"))?;
                tarfmt::write_padding(&mut w, b.len() as u64).ctx(|| format!("writing {path}"))?;
            }
            Content::Blob { digest, size } => {
                write_header(&mut w, path, Kind::File, *size)?;
                copy_exact(store.open_blob(digest)?, *size, &mut w, path)?;
            }
            Content::Decompressed {
                digest,
                media_type,
                size,
            } => {
                write_header(&mut w, path, Kind::File, *size)?;
                let codec = codec_of_media_type(media_type).ok_or_else(|| {
                    Error::InvalidImage(format!("unsupported media type {media_type}"))
                })?;
                let reader = codec
                    .decoder(store.open_blob(digest)?)
                    .ctx(|| format!("reading {digest}"))?;
                copy_exact(reader, *size, &mut w, path)?;
            }
        }
    }
    tarfmt::write_end(&mut w).ctx(|| "writing archive".into())?;
    w.into_inner()
        .map_err(|e| Error::io("writing archive", e.into_error()))
}

fn write_header(w: &mut impl Write, path: &str, kind: Kind, size: u64) -> Result<()> {
    let header = tarfmt::Header {
        path: path.as_bytes(),
        kind,
        mode: if kind == Kind::Dir { 0o755 } else { 0o644 },
        uid: 0,
        gid: 0,
        uname: b"",
        gname: b"",
        mtime: 0,
        size,
        link: b"",
        xattrs: &[],
    };
    tarfmt::write_header(w, &header).ctx(|| format!("writing {path}"))?;
    Ok(())
}

/// Copies exactly `size` bytes (a blob that changed under us fails the save) plus padding.
fn copy_exact(r: impl Read, size: u64, w: &mut impl Write, path: &str) -> Result<()> {
    let copied = io::copy(&mut r.take(size), w).ctx(|| format!("writing {path}"))?;
    if copied != size {
        return Err(Error::SizeMismatch {
            path: path.to_string(),
            expected: size,
            actual: copied,
        });
    }
    tarfmt::write_padding(w, size).ctx(|| format!("writing {path}"))?;
    Ok(())
}

/// Digest of the config as docker names the image (`docker images` IMAGE ID).
pub fn image_id(img: &ResolvedImage) -> Digest {
    sha256_hex_of(&img.config_bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reference::ImageRef;
    use crate::store::tests::new_image;
    use serde_json::Value;
    use std::collections::BTreeMap;

    fn store_with_image(dir: &std::path::Path) -> Store {
        let store = Store::open_or_create(dir.join("store")).unwrap();
        let image = new_image(&store, "hello");
        store
            .put_image(&image, &[ImageRef::parse("app:1").unwrap()])
            .unwrap();
        store
    }

    /// name → content of every regular file; also checks directories come first.
    fn files(tar_bytes: &[u8]) -> BTreeMap<String, Vec<u8>> {
        let mut out = BTreeMap::new();
        let mut names = Vec::new();
        for e in tar::Archive::new(tar_bytes).entries().unwrap() {
            let mut e = e.unwrap();
            let name = String::from_utf8(e.path_bytes().to_vec()).unwrap();
            if let Some((parent, _)) = name.trim_end_matches('/').rsplit_once('/') {
                assert!(
                    names.contains(&format!("{parent}/")),
                    "{name} before its parent"
                );
            }
            assert_eq!(
                (e.header().mtime().unwrap(), e.header().uid().unwrap()),
                (0, 0)
            );
            names.push(name.clone());
            if e.header().entry_type().is_file() {
                let mut data = Vec::new();
                e.read_to_end(&mut data).unwrap();
                out.insert(name, data);
            }
        }
        out
    }

    #[test]
    fn docker_archive_structure() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_with_image(dir.path());
        let bytes =
            save_docker_archive(&store, &["app:1"], LayerForm::Uncompressed, Vec::new()).unwrap();
        let files = files(&bytes);
        let manifest: Value = serde_json::from_slice(&files["manifest.json"]).unwrap();
        let entry = &manifest.as_array().unwrap()[0];
        assert_eq!(entry["RepoTags"], serde_json::json!(["app:1"]));
        let img = store.resolve("app:1").unwrap();
        let config_path = entry["Config"].as_str().unwrap();
        assert_eq!(files[config_path], img.config_bytes);
        assert_eq!(
            config_path,
            format!("blobs/sha256/{}", image_id(&img).digest())
        );
        let layer_path = entry["Layers"][0].as_str().unwrap();
        let layer = &files[layer_path];
        assert_eq!(
            sha256_hex_of(layer).to_string(),
            img.config.rootfs().diff_ids()[0]
        );
        // The layer is a plain tar holding the file.
        let inner = self::files(layer);
        assert_eq!(inner["etc/content"], b"hello");
        let manifest_path = entry["StrataManifest"].as_str().unwrap();
        assert_eq!(files[manifest_path], store.read_blob(img.manifest_descriptor.digest()).unwrap());
        assert_eq!(
            files.keys().collect::<Vec<_>>().len(),
            4,
            "config, layer, the original manifest and manifest.json only: {:?}",
            files.keys()
        );
    }

    #[test]
    fn docker_archive_as_stored_and_deterministic() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_with_image(dir.path());
        let a = save_docker_archive(&store, &["app:1"], LayerForm::AsStored, Vec::new()).unwrap();
        let b = save_docker_archive(&store, &["app:1"], LayerForm::AsStored, Vec::new()).unwrap();
        assert_eq!(a, b);
        let img = store.resolve("app:1").unwrap();
        let layer = &img.manifest.layers()[0];
        let files = files(&a);
        let stored = std::fs::read(store.blob_path(layer.digest()).unwrap()).unwrap();
        assert_eq!(files[&blob_name(layer.digest()).unwrap()], stored);
        assert_eq!(&stored[..2], &[0x1f, 0x8b], "stored layer is gzip");
    }

    #[test]
    fn shared_layers_are_written_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_with_image(dir.path());
        store
            .tag("app:1", &ImageRef::parse("app:2").unwrap())
            .unwrap();
        let bytes = save_docker_archive(
            &store,
            &["app:1", "app:2"],
            LayerForm::Uncompressed,
            Vec::new(),
        )
        .unwrap();
        let files = files(&bytes);
        let manifest: Value = serde_json::from_slice(&files["manifest.json"]).unwrap();
        assert_eq!(manifest.as_array().unwrap().len(), 2);
        assert_eq!(manifest[0]["Layers"], manifest[1]["Layers"]);
        assert_eq!(files.len(), 4, "one config, layer and manifest for both tags: {:?}", files.keys());
    }

    #[test]
    fn damaged_layer_fails_the_save() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_with_image(dir.path());
        let img = store.resolve("app:1").unwrap();
        let path = store.blob_path(img.manifest.layers()[0].digest()).unwrap();
        // A valid gzip stream of different content: only the diff_id check can catch it.
        let other = crate::compress::gzip_member(&[0u8; 1024], 6).unwrap();
        std::fs::write(&path, other).unwrap();
        let err = save_docker_archive(&store, &["app:1"], LayerForm::Uncompressed, Vec::new());
        assert!(matches!(err, Err(Error::InvalidImage(_))), "{err:?}");
    }

    #[test]
    fn oci_archive_is_a_layout_holding_the_image() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_with_image(dir.path());
        // A second image that must not end up in the archive.
        store
            .put_image(
                &new_image(&store, "other"),
                &[ImageRef::parse("other:1").unwrap()],
            )
            .unwrap();
        let bytes = save_oci_archive(&store, &["app:1"], Vec::new()).unwrap();
        assert_eq!(
            bytes,
            save_oci_archive(&store, &["app:1"], Vec::new()).unwrap()
        );
        let files = files(&bytes);
        assert_eq!(files.len(), 5, "{:?}", files.keys());
        let index: Value = serde_json::from_slice(&files["index.json"]).unwrap();
        let ann = &index["manifests"][0]["annotations"];
        assert_eq!(ann[REF_NAME_ANNOTATION], "app:1");
        assert_eq!(ann[CONTAINERD_NAME_ANNOTATION], "app:1");
        for (name, data) in &files {
            if let Some(hex) = name.strip_prefix("blobs/sha256/") {
                assert_eq!(
                    sha256_hex_of(data).digest(),
                    hex,
                    "{name} not content-addressed"
                );
            }
        }
        // Unpacked with GNU tar, it opens as a store and resolves.
        let out = dir.path().join("unpacked");
        std::fs::create_dir(&out).unwrap();
        let archive = dir.path().join("img.tar");
        std::fs::write(&archive, &bytes).unwrap();
        let status = std::process::Command::new("tar")
            .arg("-xf")
            .arg(&archive)
            .arg("-C")
            .arg(&out)
            .status()
            .expect("the tar CLI must be installed for this test");
        assert!(status.success());
        let unpacked = Store::open(&out).unwrap();
        let img = unpacked.resolve("app:1").unwrap();
        assert_eq!(
            img.manifest_descriptor,
            store.resolve("app:1").unwrap().manifest_descriptor
        );
        assert!(unpacked.resolve("other:1").is_err());
    }
}
