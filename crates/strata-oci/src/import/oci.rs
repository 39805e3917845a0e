//! Loading an oci-archive: a tar of an OCI image layout (`oci-layout`, `index.json`,
//! `blobs/sha256/<hex>`), as skopeo, buildah, podman and `strata save --format oci-archive`
//! write it.
//!
//! Every blob goes straight into the store, verified against the digest its name claims, so
//! the layout's own addressing is the integrity check and the manifest bytes stay exactly as
//! they were (same digest in, same digest out). `index.json` is read only after the whole
//! stream. An image's name is the `io.containerd.image.name` annotation when present (what
//! containerd and strata write), else an `org.opencontainers.image.ref.name` of the form
//! `NAME:TAG` (skopeo's `oci-archive:FILE:NAME:TAG`); a bare tag such as `latest` names no
//! image and leaves it to the caller.

use super::{bad, digest_of_blob_path, image_label, not_the_only_image, same_name, tag_all, walk, ImportOptions, Imported, Select, MAX_JSON};
use crate::archive::CONTAINERD_NAME_ANNOTATION;
use crate::digest::parse_sha256;
use crate::error::IoContext;
use crate::store::{Store, REF_NAME_ANNOTATION};
use crate::{Error, Result};
use oci_spec::image::{Descriptor, Digest, MediaType};
use serde_json::Value;
use std::io::Read;

/// Loads the images of an oci-archive read from `input` into `store`; see the module docs.
pub fn load_oci_archive<R: Read>(store: &Store, input: R, opts: &ImportOptions) -> Result<Vec<Imported>> {
    let (mut index, mut layout) = (None, None);
    let links = walk(input, |path, size, r| {
        let small = |name: &str, r: &mut dyn Read| -> Result<Vec<u8>> {
            if size > MAX_JSON {
                return Err(bad(format!("{name} is {size} bytes, over the limit of {MAX_JSON}")));
            }
            let mut b = Vec::new();
            r.read_to_end(&mut b).ctx(|| format!("reading {name}"))?;
            Ok(b)
        };
        match path {
            "index.json" => index = Some(small(path, r)?),
            "oci-layout" => layout = Some(small(path, r)?),
            p if p.starts_with("blobs/") => {
                let digest = digest_of_blob_path(p).ok_or_else(|| bad(format!("{p}: only blobs/sha256/<64 hex digits> blobs are supported")))?;
                store.put_blob(r, Some(&digest)).map_err(|e| match e {
                    Error::DigestMismatch { actual, .. } => bad(format!("{p} holds content whose digest is {actual}, not the one its name claims")),
                    other => other,
                })?;
            }
            // Anything else (a docker manifest.json beside the layout) is not ours to read.
            _ => {}
        }
        Ok(())
    })?;
    if let Some(link) = links.keys().next() {
        return Err(bad(format!("{link} is a link; an oci-archive holds only files and directories")));
    }
    let layout: Value = layout
        .as_deref()
        .and_then(|b| serde_json::from_slice(b).ok())
        .ok_or_else(|| bad("it has no readable oci-layout file, so it is not an oci-archive\nhint: a tar with manifest.json is a docker-archive (docker-archive:FILE)".into()))?;
    if layout["imageLayoutVersion"] != "1.0.0" {
        return Err(bad(format!("unsupported imageLayoutVersion {}", layout["imageLayoutVersion"])));
    }
    let index: Value = serde_json::from_slice(index.as_deref().ok_or_else(|| bad("it has no index.json".into()))?)
        .map_err(|e| bad(format!("index.json: {e}")))?;
    let entries = index["manifests"].as_array().map(Vec::as_slice).unwrap_or_default();
    if entries.is_empty() {
        return Err(bad("its index.json lists no image".into()));
    }
    let chosen: Vec<&Value> = match &opts.select {
        Select::All => entries.iter().collect(),
        Select::Only if entries.len() == 1 => vec![&entries[0]],
        Select::Only => {
            // An entry is labelled by what `oci-archive:FILE:REF` matches: its ref name, else
            // containerd's image name.
            let names: Vec<Vec<String>> = entries
                .iter()
                .map(|e| {
                    let a = &e["annotations"];
                    a[REF_NAME_ANNOTATION].as_str().or(a[CONTAINERD_NAME_ANNOTATION].as_str()).map(String::from).into_iter().collect()
                })
                .collect();
            let labels: Vec<String> = names.iter().enumerate().map(|(i, n)| image_label(n, i)).collect();
            let hint = if names.iter().any(|n| !n.is_empty()) {
                "choose one: oci-archive:FILE:REF (REF a name above)"
            } else {
                // oci-archive: has no @N, so an unnamed image cannot be chosen at all.
                "its images have no ref name (org.opencontainers.image.ref.name), so oci-archive:FILE:REF cannot choose one: write one image per archive (skopeo copy ... oci-archive:FILE:NAME:TAG also names it)"
            };
            return Err(not_the_only_image(&labels, hint));
        }
        Select::Index(n) => vec![entries.get(*n).ok_or_else(|| Error::ImageNotFound(format!("@{n} (the archive holds {} images)", entries.len())))?],
        Select::Name(name) => {
            let hit = entries.iter().find(|e| {
                e["annotations"][REF_NAME_ANNOTATION].as_str() == Some(name.as_str())
                    || e["annotations"][CONTAINERD_NAME_ANNOTATION].as_str().is_some_and(|n| same_name(n, name))
            });
            let names: Vec<&str> = entries.iter().filter_map(|e| e["annotations"][REF_NAME_ANNOTATION].as_str()).collect();
            vec![hit.ok_or_else(|| Error::ImageNotFound(format!("{name} in the archive (its names: {})", names.join(", "))))?]
        }
    };
    super::check_tag_policy(&opts.tags, chosen.len())?;
    let mut staged = Vec::new();
    for entry in chosen {
        let (manifest, manifest_bytes) = image_manifest(store, entry)?;
        let parsed: Value = serde_json::from_slice(&manifest_bytes).map_err(|e| bad(format!("manifest {}: {e}", manifest.digest())))?;
        let config = blob_ref(&parsed["config"]).ok_or_else(|| bad(format!("manifest {} names no config", manifest.digest())))?;
        let layers = parsed["layers"].as_array().map(Vec::as_slice).unwrap_or_default();
        for (what, d) in std::iter::once(("config", Some(config.clone()))).chain(layers.iter().map(|l| ("layer", blob_ref(l)))) {
            let d = d.ok_or_else(|| bad(format!("manifest {} has a {what} without a sha256 digest", manifest.digest())))?;
            if !store.has_blob(&d) {
                return Err(bad(format!("manifest {} names {what} {d}, which the archive does not hold", manifest.digest())));
            }
        }
        let annotations = &entry["annotations"];
        let name = annotations[CONTAINERD_NAME_ANNOTATION]
            .as_str()
            .or_else(|| annotations[REF_NAME_ANNOTATION].as_str().filter(|n| n.contains(':')));
        staged.push((manifest, config, name.map(String::from).into_iter().collect(), true));
    }
    tag_all(store, staged, &opts.tags)
}

/// The image manifest an index entry names: itself, or for an image index the manifest for
/// this machine's platform (the only one, if just one is listed).
fn image_manifest(store: &Store, entry: &Value) -> Result<(Descriptor, Vec<u8>)> {
    let digest = blob_ref(entry).ok_or_else(|| bad("an index.json entry has no sha256 digest".into()))?;
    let bytes = read_listed(store, &digest)?;
    let v: Value = serde_json::from_slice(&bytes).map_err(|e| bad(format!("manifest {digest}: {e}")))?;
    let Some(children) = v["manifests"].as_array() else {
        let media_type = v["mediaType"].as_str().or(entry["mediaType"].as_str()).map_or(MediaType::ImageManifest, MediaType::from);
        return Ok((Descriptor::new(media_type, bytes.len() as u64, digest), bytes));
    };
    let arch = goarch();
    let child = children
        .iter()
        .find(|c| c["platform"]["os"] == "linux" && c["platform"]["architecture"] == arch)
        .or_else(|| (children.len() == 1).then(|| &children[0]))
        .ok_or_else(|| bad(format!("image index {digest} has no linux/{arch} image")))?;
    image_manifest(store, child)
}

/// A blob of the archive, verified (`read_blob` rehashes it).
fn read_listed(store: &Store, digest: &Digest) -> Result<Vec<u8>> {
    let size = std::fs::metadata(store.blob_path(digest)?).map(|m| m.len()).ok();
    match size {
        None => Err(bad(format!("index.json names {digest}, which the archive does not hold"))),
        Some(s) if s > MAX_JSON => Err(bad(format!("manifest {digest} is {s} bytes, over the limit of {MAX_JSON}"))),
        Some(_) => store.read_blob(digest),
    }
}

fn blob_ref(desc: &Value) -> Option<Digest> {
    parse_sha256(desc["digest"].as_str()?).ok()
}

/// This machine's architecture as OCI platforms name it (Go's GOARCH).
fn goarch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "powerpc64" => "ppc64le",
        other => other,
    }
}
