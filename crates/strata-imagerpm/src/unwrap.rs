//! An image RPM → the image it carries, loaded into the store: the second half of
//! `strata pull 'rpm:CAPABILITY'`, and the inverse of [`crate::wrap_image`].
//!
//! The package says which image it is (Provides `container-image-id(sha256:ID)` /
//! `docker-image-id = 0:sha256:ID`, `container-image(NAME:TAG)`); its payload carries the
//! docker-archive at [`meta::archive_path`] and the JSON record beside it. The payload is
//! streamed (`strata-package`: each file checked against the header's digest as it is
//! read), the archive goes straight into `strata_oci::import` without a temporary copy,
//! and the image is tagged only once everything agrees: the id the archive's config hashes
//! to, the id the Provides name and the id the record names. A package whose archive holds
//! another image than it claims is refused and leaves no tag (blobs it wrote are
//! unreferenced and go with the next `strata gc`).

use crate::meta;
use serde::Deserialize;
use std::collections::BTreeSet;
use std::io::Read;
use std::path::Path;
use strata_oci::import::{ImportOptions, TagPolicy};
use strata_oci::reference::ImageRef;
use strata_oci::store::Store;
use strata_package::Package;

/// The record is a few kB (an image of a thousand packages is ~60 kB); anything much
/// larger is not one strata wrote.
const MAX_RECORD: u64 = 4 << 20;

#[derive(Debug, thiserror::Error)]
pub enum UnwrapError {
    #[error(transparent)]
    Package(#[from] strata_package::Error),
    #[error(transparent)]
    Oci(#[from] strata_oci::Error),
    #[error("{rpm}: {message}\nhint: {hint}")]
    Refused { rpm: String, message: String, hint: String },
}

/// What [`load_image_rpm`] put into the store.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Unwrapped {
    /// The package's NEVRA.
    pub package: String,
    /// The tag given to the image in the store, `NAME:TAG`.
    pub image: String,
    pub image_id: String,
    pub manifest: String,
    /// Bytes of the docker-archive read from the payload.
    pub archive_size: u64,
}

/// The image an RPM says it carries, from its header's Provides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claimed {
    pub image_id: String,
    /// From `container-image(NAME:TAG)`; `None` for a package without one (the record
    /// then names it).
    pub reference: Option<ImageRef>,
    pub manifest: Option<String>,
}

/// The JSON record installed beside the archive (the fields read back).
#[derive(Deserialize)]
struct RecordIn {
    image: String,
    image_id: String,
    manifest: Option<String>,
}

/// Reads the image identity from `pkg`'s Provides. More than one image id, or a Provides
/// that names no image at all, is refused: such a package is not an image RPM.
pub fn claimed(pkg: &Package) -> Result<Claimed, UnwrapError> {
    let provides = pkg.provides();
    let mut ids = BTreeSet::new();
    let mut refs = BTreeSet::new();
    let mut manifests = BTreeSet::new();
    for p in &provides {
        if let Some(id) = p.name.strip_prefix("container-image-id(").and_then(|s| s.strip_suffix(')')) {
            ids.insert(id.to_string());
        } else if p.name == "docker-image-id" && !p.version.is_empty() {
            // `0:sha256:ID` (epoch written out) or `sha256:ID`: the id is the version.
            ids.insert(strata_rpm::EvrRef::parse(&p.version).version.to_string());
        } else if let Some(m) = p.name.strip_prefix("container-image-manifest(").and_then(|s| s.strip_suffix(')')) {
            manifests.insert(m.to_string());
        } else if let Some(r) = p.name.strip_prefix("container-image(").and_then(|s| s.strip_suffix(')')) {
            // `container-image(NAME)` is versioned; `container-image(NAME:TAG)` is not.
            if p.version.is_empty() && has_tag(r) {
                refs.insert(r.to_string());
            }
        }
    }
    let refuse = |message: String| refused(pkg, message, "only image RPMs (strata rpm, or the seed's docker-image-NAME packages) can be pulled");
    let image_id = match ids.len() {
        1 => ids.into_iter().next().expect("one"),
        0 => return Err(refuse("provides no container-image-id(sha256:…) or docker-image-id: it names no image".into())),
        _ => return Err(refuse(format!("provides {} different image ids ({}): it cannot say which image it carries", ids.len(), ids.into_iter().collect::<Vec<_>>().join(", ")))),
    };
    if !is_sha256_digest(&image_id) {
        return Err(refuse(format!("its image id {image_id:?} is not sha256:<64 hex>")));
    }
    let reference = match refs.len() {
        0 => None,
        1 => Some(ImageRef::parse(refs.iter().next().expect("one")).map_err(|e| refuse(format!("container-image({}) is not an image reference: {e}", refs.iter().next().expect("one"))))?),
        _ => return Err(refuse(format!("provides several image tags ({}): it cannot say which one it carries", refs.into_iter().collect::<Vec<_>>().join(", ")))),
    };
    let manifest = if manifests.len() == 1 { manifests.into_iter().next() } else { None };
    Ok(Claimed { image_id, reference, manifest })
}

/// `NAME:TAG`, the tag after the last `/` (a registry port is not a tag).
fn has_tag(reference: &str) -> bool {
    reference.rsplit('/').next().is_some_and(|last| last.contains(':'))
}

fn is_sha256_digest(s: &str) -> bool {
    s.strip_prefix("sha256:").is_some_and(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()))
}

fn refused(pkg: &Package, message: impl Into<String>, hint: impl Into<String>) -> UnwrapError {
    UnwrapError::Refused { rpm: format!("{} ({})", pkg.nevra(), pkg.path().display()), message: message.into(), hint: hint.into() }
}

/// Loads the image `rpm` carries into `store` and tags it `tag` (default: the package's
/// `container-image(NAME:TAG)`). Refused, with nothing tagged, when the archive's image is
/// not the one the package's Provides and record name.
pub fn load_image_rpm(store: &Store, rpm: &Path, tag: Option<&ImageRef>) -> Result<Unwrapped, UnwrapError> {
    let pkg = Package::open(rpm)?;
    let claim = claimed(&pkg)?;
    let files = pkg.files()?;
    // Where the archive and record are: strata's layout for the claimed NAME:TAG, else the
    // package's only archive under IMAGE_DIR (with the record beside it, if any).
    let under_image_dir = |f: &&strata_package::FileEntry| f.path.starts_with(&format!("{}/", meta::IMAGE_DIR)) && f.kind == strata_package::FileKind::Regular;
    let archive_path = match &claim.reference {
        Some(r) if files.iter().any(|f| f.path == meta::archive_path(r.name(), r.tag())) => meta::archive_path(r.name(), r.tag()),
        _ => {
            let tars: Vec<&strata_package::FileEntry> = files.iter().filter(under_image_dir).filter(|f| f.path.ends_with(".tar")).collect();
            match tars.as_slice() {
                [one] => one.path.clone(),
                [] => return Err(refused(&pkg, format!("installs no image archive (a .tar under {})", meta::IMAGE_DIR), "only image RPMs can be pulled")),
                _ => return Err(refused(&pkg, format!("installs {} image archives under {} and its Provides do not say which is the image", tars.len(), meta::IMAGE_DIR), "pull an RPM that carries one image")),
            }
        }
    };
    let record_path = format!("{}.json", archive_path.strip_suffix(".tar").expect("a .tar path"));
    if let Some(f) = files.iter().find(|f| f.path == record_path) {
        if f.size > MAX_RECORD {
            return Err(refused(&pkg, format!("its record {record_path} is {} bytes; a record is a few kB (at most {MAX_RECORD})", f.size), "this is not an RPM strata wrote"));
        }
    }

    let mut payload = pkg.payload()?;
    let mut record: Option<RecordIn> = None;
    let mut loaded = None;
    let mut archive_size = 0;
    let content_err = |payload: &strata_package::PayloadReader, path: &str, e: std::io::Error| match payload.digest_mismatch() {
        Some(m) => refused(&pkg, format!("{m}"), "the package was altered after it was built; fetch it again from a trusted repository"),
        None => refused(&pkg, format!("reading {path} from the payload: {e}"), "the package is damaged; fetch it again"),
    };
    while let Some((index, _entry)) = payload.next_file()? {
        let path = files[index as usize].path.as_str();
        if path == record_path {
            let mut bytes = Vec::new();
            let read = payload.content().take(MAX_RECORD + 1).read_to_end(&mut bytes);
            read.map_err(|e| content_err(&payload, path, e))?;
            let parsed: RecordIn = serde_json::from_slice(&bytes).map_err(|e| refused(&pkg, format!("its record {record_path} is not strata's JSON record: {e}"), "this is not an RPM strata wrote"))?;
            record = Some(parsed);
        } else if path == archive_path {
            let mut counted = Counted { inner: payload.content(), n: 0 };
            let imported = strata_oci::import::load_docker_archive(store, &mut counted, &ImportOptions { tags: TagPolicy::Untagged, ..ImportOptions::default() });
            // Whatever the loader left unread is read now, so that the header's digest for
            // the whole file is checked (and a damaged archive named as such).
            let drained = std::io::copy(&mut counted, &mut std::io::sink());
            archive_size = counted.n;
            if let Err(e) = drained {
                return Err(content_err(&payload, path, e));
            }
            if let Some(m) = payload.digest_mismatch() {
                return Err(refused(&pkg, m.to_string(), "the package was altered after it was built; fetch it again from a trusted repository"));
            }
            loaded = Some(imported.map_err(|e| refused(&pkg, format!("its archive {archive_path} does not load: {e}"), "the package is damaged or not an image RPM"))?);
        }
    }
    let Some(images) = loaded else {
        return Err(refused(&pkg, format!("its payload has no {archive_path}, though its header lists it"), "the package is damaged; fetch it again"));
    };
    let image = match images.as_slice() {
        [one] => one,
        _ => return Err(refused(&pkg, format!("its archive holds {} images; an image RPM carries one", images.len()), "pull an RPM that carries one image")),
    };
    let hostile = "the package claims an image it does not carry: do not trust this repository's image RPMs until it is understood";
    let loaded_id = image.image_id.to_string();
    if loaded_id != claim.image_id {
        return Err(refused(&pkg, format!("its archive holds image {loaded_id}, but the package provides container-image-id({}); nothing was tagged", claim.image_id), hostile));
    }
    if let Some(rec) = &record {
        if rec.image_id != claim.image_id {
            return Err(refused(&pkg, format!("its record names image {}, but the package provides container-image-id({}); nothing was tagged", rec.image_id, claim.image_id), hostile));
        }
    }
    let manifest = image.manifest_digest.to_string();
    // The manifest the package claims is checked against its record only: an archive
    // without strata's original manifest (docker's, the seed's) loads under a manifest
    // built afresh, whose digest no one could have claimed; the image id is what names it.
    if let (Some(claimed), Some(rec_manifest)) = (&claim.manifest, record.as_ref().and_then(|r| r.manifest.as_ref())) {
        if claimed != rec_manifest {
            return Err(refused(&pkg, format!("its record names manifest {rec_manifest}, but the package provides container-image-manifest({claimed}); nothing was tagged"), hostile));
        }
    }
    let target = match (tag, &claim.reference, &record) {
        (Some(t), _, _) => t.clone(),
        (None, Some(r), _) => r.clone(),
        (None, None, Some(rec)) => ImageRef::parse(&rec.image).map_err(|e| refused(&pkg, format!("its record's image {:?} is not NAME:TAG: {e}", rec.image), "give -t NAME[:TAG]"))?,
        (None, None, None) => return Err(refused(&pkg, "names no image tag (no container-image(NAME:TAG) and no record)", "give -t NAME[:TAG]")),
    };
    store.tag_manifest(&image.manifest, std::slice::from_ref(&target))?;
    Ok(Unwrapped { package: pkg.nevra(), image: target.to_string(), image_id: loaded_id, manifest, archive_size })
}

/// A reader that counts what passed through it.
struct Counted<R> {
    inner: R,
    n: u64,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.n += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_are_after_the_last_slash() {
        assert!(has_tag("web:latest"));
        assert!(has_tag("registry.local:5000/web:1.2"));
        assert!(!has_tag("registry.local:5000/web"));
        assert!(!has_tag("web"));
    }

    #[test]
    fn image_ids_are_full_sha256_digests() {
        assert!(is_sha256_digest(&format!("sha256:{}", "a".repeat(64))));
        assert!(!is_sha256_digest(&format!("sha256:{}", "A".repeat(64))));
        assert!(!is_sha256_digest("sha256:abc"));
        assert!(!is_sha256_digest(&"a".repeat(64)));
    }
}
