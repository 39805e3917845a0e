//! Pushing: upload what the repository lacks (HEAD first, cross-repository mount when
//! the caller names a repository that has the blob, one PUT for small blobs, PATCH chunks
//! that resume after a failure — in this push or, through the store's upload records, a
//! later one — for big ones), then PUT the manifest's exact bytes.
//!
//! Kill-safety: a manifest goes up only after every blob it names is confirmed in its
//! repository (HEAD 200, or the upload's or mount's 201 naming the digest), so a push
//! killed at any point never leaves a tag at a manifest with a missing blob; with `--all`
//! every blob of every image is placed before the first manifest.

use crate::client::{Access, Body, Failure, Repo, Request, Subject};
use crate::media;
use crate::progress::{BlobEvent, BlobKind, BlobTransfer, Outcome, Progress, Silent};
use crate::reference::Reference;
use crate::resume::Claim;
use crate::upload::{head_blob, BlobUpload, UploadFailure, Mount, Session};
use crate::{parallel, Client, Error, Result};
use strata_oci::oci_spec::image::{Descriptor, Digest};
use strata_oci::sha256_hex_of;
use strata_oci::store::Store;

#[path = "push_many.rs"]
mod push_many;

/// How to push.
pub struct PushOptions<'a> {
    /// Repositories on the target registry that may already have the blobs (the base
    /// image's, typically); each missing blob is mounted from the first that has it
    /// instead of uploaded.
    pub mount_from: Vec<String>,
    /// Blobs up to this size go up in one PUT; bigger ones in PATCH chunks of this size,
    /// so a failure costs one chunk, not the blob. The default is 32 MiB, or
    /// [`CHUNK_SIZE_ENV`].
    pub chunk_size: u64,
    pub progress: Option<&'a dyn Progress>,
    /// Blobs uploaded at once.
    pub max_parallel: usize,
    pub format: ManifestFormat,
}

/// Which manifest document goes up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ManifestFormat {
    /// The store's bytes, so the remote digest is the store's; if the registry refuses OCI
    /// media types, the Docker schema 2 conversion instead (a new digest, reported).
    #[default]
    Auto,
    /// The store's bytes or nothing.
    AsStored,
    /// Docker v2 schema 2 (converted when the image is OCI).
    Docker,
}

/// The environment variable that sets [`PushOptions::default`]'s chunk size: bytes, or
/// with a `K`, `M` or `G` suffix (KiB, MiB, GiB), from 1K to 4G. Smaller chunks lose less
/// to a dropped connection or a killed push; tests use it to put kills mid-blob. A value
/// that does not parse fails the push naming it ([`chunk_size_from_env`]).
pub const CHUNK_SIZE_ENV: &str = "STRATA_PUSH_CHUNK_SIZE";

const DEFAULT_CHUNK_SIZE: u64 = 32 << 20;

/// [`CHUNK_SIZE_ENV`] parsed, `None` when unset.
pub fn chunk_size_from_env() -> Result<Option<u64>> {
    let Some(raw) = std::env::var_os(CHUNK_SIZE_ENV) else { return Ok(None) };
    let invalid = |reason: &str| Error::InvalidSetting {
        name: CHUNK_SIZE_ENV,
        value: raw.to_string_lossy().into_owned(),
        reason: reason.to_string(),
    };
    let text = raw.to_str().ok_or_else(|| invalid("not UTF-8"))?;
    parse_chunk_size(text).map(Some).map_err(invalid)
}

fn parse_chunk_size(text: &str) -> std::result::Result<u64, &'static str> {
    let text = text.trim();
    let (digits, unit) = match text.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => (&text[..i], c.to_ascii_uppercase()),
        _ => (text, 'B'),
    };
    let shift = match unit {
        'B' => 0,
        'K' => 10,
        'M' => 20,
        'G' => 30,
        _ => return Err("the unit must be K, M or G (e.g. 256K, 32M)"),
    };
    let n: u64 = digits.parse().map_err(|_| "expected a size in bytes, or with K, M or G (e.g. 256K, 32M)")?;
    let bytes = n.checked_shl(shift).filter(|b| b >> shift == n).ok_or("too large")?;
    if !(1 << 10..=4 << 30).contains(&bytes) {
        return Err("must be from 1K to 4G");
    }
    Ok(bytes)
}

impl Default for PushOptions<'_> {
    fn default() -> Self {
        PushOptions {
            mount_from: Vec::new(),
            // A malformed value is reported by the push itself.
            chunk_size: chunk_size_from_env().ok().flatten().unwrap_or(DEFAULT_CHUNK_SIZE),
            progress: None,
            max_parallel: 3,
            format: ManifestFormat::Auto,
        }
    }
}

/// What was pushed.
#[derive(Debug, Clone)]
pub struct Pushed {
    /// The remote reference, pinned to the manifest digest.
    pub reference: Reference,
    /// The manifest digest: the store's, unless the manifest was converted.
    pub digest: Digest,
    /// The manifest went up as Docker schema 2, converted from the store's OCI manifest.
    pub converted: bool,
    pub media_type: String,
    pub size: u64,
    /// Config first, then layers (each distinct digest once).
    pub blobs: Vec<BlobTransfer>,
}

/// A store image read for pushing: its manifest's bytes and the blobs it needs.
pub(crate) struct Prepared {
    pub manifest_digest: Digest,
    pub bytes: Vec<u8>,
    pub media_type: String,
    /// Config first, then layers (each distinct digest once).
    pub wanted: Vec<(Descriptor, BlobKind)>,
}

impl Prepared {
    /// Reads the store image `local` (`NAME[:TAG]` or a manifest digest); nothing goes
    /// over the network.
    pub(crate) fn new(store: &Store, local: &str) -> Result<Prepared> {
        let img = store
            .resolve(local)
            .map_err(|e| Error::store(format!("pushing {local}"), e))?;
        let manifest_digest = img.manifest_descriptor.digest().clone();
        let bytes = store
            .read_blob(&manifest_digest)
            .map_err(|e| Error::store(format!("reading the manifest of {local}"), e))?;
        // Push what the store has: the document's own mediaType, which is what its digest
        // covers (the store's index may label every entry as OCI).
        let media_type = img
            .manifest
            .media_type()
            .as_ref()
            .map_or(media::OCI_MANIFEST.to_string(), |m| m.to_string());
        let mut wanted: Vec<(Descriptor, BlobKind)> =
            vec![(img.manifest.config().clone(), BlobKind::Config)];
        for l in img.manifest.layers() {
            if !wanted.iter().any(|(d, _)| d.digest() == l.digest()) {
                wanted.push((l.clone(), BlobKind::Layer));
            }
        }
        Ok(Prepared { manifest_digest, bytes, media_type, wanted })
    }
}

impl Client {
    /// Pushes the store image `local` (`NAME[:TAG]` or a manifest digest the store's index
    /// lists) to `remote`, under its tag (or, with none, by digest). The manifest goes up
    /// byte for byte, so the remote digest is the store's.
    pub fn push(
        &self,
        store: &Store,
        local: &str,
        remote: &Reference,
        opts: &PushOptions<'_>,
    ) -> Result<Pushed> {
        chunk_size_from_env()?;
        let prepared = Prepared::new(store, local)?;
        let repo = Repo::new(self, remote, Access::Push);
        let progress: &dyn Progress = opts.progress.unwrap_or(&Silent);
        let mount_from: Vec<&str> = opts.mount_from.iter().map(String::as_str).collect();
        let blobs = parallel::map(&prepared.wanted, opts.max_parallel, |(d, kind)| {
            self.upload_blob(&repo, store, d, *kind, opts, &mount_from, true, progress)
        })?;
        self.finish_push(&repo, remote, prepared, blobs, opts)
    }

    /// PUTs the manifest of a prepared image whose blobs are all in `repo` (converting it
    /// as `opts.format` says) and reports the push.
    pub(crate) fn finish_push(
        &self,
        repo: &Repo<'_>,
        remote: &Reference,
        prepared: Prepared,
        blobs: Vec<BlobTransfer>,
        opts: &PushOptions<'_>,
    ) -> Result<Pushed> {
        let Prepared { manifest_digest, bytes, media_type, .. } = prepared;
        let stored_type = media_type.clone();
        let convert = |bytes: &[u8]| {
            media::to_docker_schema2(bytes).map_err(|detail| Error::ManifestRejected {
                registry: repo.registry.clone(),
                repository: repo.repository.clone(),
                reference: remote.tag().unwrap_or("(digest)").to_string(),
                media_type: stored_type.clone(),
                detail: format!("converting to Docker schema 2: {detail}"),
                type_refused: false,
            })
        };
        let (bytes, media_type) = match opts.format {
            ManifestFormat::Docker if media_type != media::DOCKER_MANIFEST => (convert(&bytes)?, media::DOCKER_MANIFEST.to_string()),
            _ => (bytes, media_type),
        };
        let (pushed, bytes, media_type) = match self.put_manifest(repo, remote, &bytes, &media_type) {
            Err(Error::ManifestRejected { type_refused: true, .. }) if opts.format == ManifestFormat::Auto && remote.digest().is_none() => {
                let docker = convert(&bytes)?;
                let d = self.put_manifest(repo, remote, &docker, media::DOCKER_MANIFEST)?;
                (d, docker, media::DOCKER_MANIFEST.to_string())
            }
            other => (other?, bytes, media_type),
        };
        let converted = pushed != manifest_digest;
        Ok(Pushed {
            reference: remote.with_digest(pushed.clone()),
            digest: pushed,
            converted,
            media_type,
            size: bytes.len() as u64,
            blobs,
        })
    }

    /// PUTs a manifest or index exactly as given (everything it references must already be
    /// in the repository) under `remote`'s tag, or by digest when it has none. Returns the
    /// digest.
    pub fn push_manifest(
        &self,
        remote: &Reference,
        bytes: &[u8],
        media_type: &str,
    ) -> Result<Digest> {
        let repo = Repo::new(self, remote, Access::Push);
        self.put_manifest(&repo, remote, bytes, media_type)
    }

    fn put_manifest(
        &self,
        repo: &Repo<'_>,
        remote: &Reference,
        bytes: &[u8],
        media_type: &str,
    ) -> Result<Digest> {
        let digest = sha256_hex_of(bytes);
        if let Some(d) = remote.digest() {
            if d != &digest {
                return Err(Error::DigestMismatch {
                    registry: repo.registry.clone(),
                    repository: repo.repository.clone(),
                    what: "manifest",
                    expected: d.to_string(),
                    actual: digest.to_string(),
                });
            }
        }
        let name = remote
            .tag()
            .map_or_else(|| digest.to_string(), str::to_string);
        let rejected = |detail: String, type_refused: bool| Error::ManifestRejected {
            registry: repo.registry.clone(),
            repository: repo.repository.clone(),
            reference: name.clone(),
            media_type: media_type.to_string(),
            detail,
            type_refused,
        };
        self.with_retries(
            || {
                let url = repo.url(&format!("manifests/{name}"))?;
                let req = Request::new("PUT", url)
                    .header("content-type", media_type)
                    .body(Body::Bytes(bytes));
                let request = req.describe();
                let mut resp = repo.send(&req, &[])?;
                let status = resp.status().as_u16();
                if (200..300).contains(&status) {
                    let claimed = resp
                        .headers()
                        .get("docker-content-digest")
                        .and_then(|v| v.to_str().ok());
                    if let Some(c) = claimed.filter(|c| *c != digest.to_string()) {
                        return Err(Failure::fatal(rejected(
                            format!("the registry stored it as {c}, not {digest} (it rewrote the manifest)"),
                            false,
                        )));
                    }
                    return Ok(());
                }
                if matches!(status, 400 | 415) {
                    let (codes, detail) = crate::client::failure::error_body(&mut resp);
                    let oci = media_type.starts_with("application/vnd.oci.");
                    let about_type = status == 415
                        || codes
                            .iter()
                            .any(|c| c == "MANIFEST_INVALID" || c == "UNSUPPORTED");
                    let hint = if oci && about_type {
                        "; the registry may not accept OCI media types (push --format docker \
                         converts to Docker v2 schema 2, with a new digest)"
                    } else {
                        ""
                    };
                    return Err(Failure::fatal(rejected(format!("{detail}{hint}"), oci && about_type)));
                }
                Err(repo.status_failure(&request, resp, Subject::Manifest(&name)))
            },
            |_, _| {},
        )?;
        Ok(digest)
    }

    /// Puts one blob into `repo`: present already (asked with HEAD when `check`), else
    /// mounted from the first of `mount_from` that has it, else uploaded — a big blob in
    /// chunks, continuing a session an earlier push recorded (see [`crate::resume`]) or a
    /// failed attempt left, at the offset the registry says it has. Returns only once the
    /// registry has confirmed the blob (HEAD 200, or a 201 naming its digest).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn upload_blob(
        &self,
        repo: &Repo<'_>,
        store: &Store,
        desc: &Descriptor,
        kind: BlobKind,
        opts: &PushOptions<'_>,
        mount_from: &[&str],
        check: bool,
        progress: &dyn Progress,
    ) -> Result<BlobTransfer> {
        let digest = desc.digest();
        let size = desc.size();
        let transfer = |outcome, sent, resumed_from| {
            progress.event(&BlobEvent::Finished { digest, outcome });
            BlobTransfer { digest: digest.clone(), kind, size, outcome, sent, resumed_from }
        };
        if check && self.blob_exists(repo, digest)? {
            self.forget_upload(repo, store, digest, size);
            return Ok(transfer(Outcome::Present, 0, None));
        }
        let path = store_blob_file(store, digest, size)?;
        progress.event(&BlobEvent::Started { digest, kind, size });
        let up = BlobUpload::new(repo, path, digest, size, progress);
        let chunk = opts.chunk_size.max(1);
        let chunked = size > chunk;
        // Only chunked uploads are recorded: a monolithic PUT cannot be continued.
        let claim = if chunked { Claim::take(store, repo, digest, size) } else { None };

        let mut session = None;
        for source in mount_from.iter().copied().filter(|s| *s != repo.repository) {
            match self.with_retries(|| up.mount(source), |_, _| {}) {
                Ok(Mount::Done) => {
                    self.drop_claim(&up, claim);
                    return Ok(transfer(Outcome::Mounted, 0, None));
                }
                Ok(Mount::Upload(s)) => {
                    session = Some(s);
                    break;
                }
                Ok(Mount::Refused) => {}
                // A mount is an optimisation; the plain upload below reports real problems.
                Err(e) => tracing::debug!("mounting {digest} from {source}: {e}"),
            }
        }
        // An earlier push's session beats the empty one a refused mount opened.
        let mut from_record = false;
        if let Some(saved) = claim.as_ref().and_then(|c| c.load(repo)) {
            if let Some(opened) = session.replace(Session::recorded(saved.location, saved.offset)) {
                up.cancel(&opened.location);
            }
            from_record = true;
        }

        let mut resumed_from = None;
        // The last attempt failed closing the upload: the registry may have the blob.
        let mut maybe_committed = false;
        let save = |s: &Session| {
            if let Some(c) = &claim {
                c.save(&s.location, s.offset);
            }
        };
        self.with_retries(
            || {
                if maybe_committed && head_blob(repo, digest)? {
                    return Ok(());
                }
                let mut s = match session.take() {
                    Some(s) if s.unsure => match up.status(&s) {
                        Ok(Some(now)) => {
                            if from_record {
                                resumed_from = Some(now.offset);
                            }
                            from_record = false;
                            now
                        }
                        Ok(None) => {
                            from_record = false;
                            up.start()?
                        }
                        Err(f) => {
                            session = Some(s);
                            return Err(f);
                        }
                    },
                    Some(s) => s,
                    None => up.start()?,
                };
                if chunked {
                    save(&s);
                    let step = chunk.max(s.min_chunk);
                    while s.offset < size {
                        let end = (s.offset + step).min(size);
                        match up.patch(&mut s, end) {
                            Ok(()) => save(&s),
                            Err(UploadFailure::Unsure(f)) => {
                                s.unsure = true;
                                session = Some(s);
                                return Err(f);
                            }
                            Err(UploadFailure::Gone(f)) => return Err(f),
                        }
                    }
                }
                match up.finish(&s, chunked) {
                    Ok(()) => Ok(()),
                    Err(UploadFailure::Unsure(f)) => {
                        maybe_committed = true;
                        // After chunks the session still holds every byte; a monolithic
                        // PUT's may hold part of its body, so the next attempt starts afresh.
                        if chunked {
                            s.unsure = true;
                            session = Some(s);
                        }
                        Err(f)
                    }
                    Err(UploadFailure::Gone(f)) => Err(f),
                }
            },
            |attempt, error| {
                progress.event(&BlobEvent::Retrying {
                    digest,
                    attempt,
                    reason: &error.to_string(),
                })
            },
        )?;
        if let Some(c) = claim {
            c.done();
        }
        Ok(transfer(Outcome::Transferred, up.sent(), resumed_from))
    }

    /// The blob is in `repo` without this push uploading it: an earlier push's record of
    /// it goes, and the session it names is cancelled.
    pub(crate) fn forget_upload(&self, repo: &Repo<'_>, store: &Store, digest: &Digest, size: u64) {
        if !Claim::exists(store, repo, digest) {
            return;
        }
        let claim = Claim::take(store, repo, digest, size);
        let up = BlobUpload::new(repo, std::path::PathBuf::new(), digest, size, &Silent);
        self.drop_claim(&up, claim);
    }

    fn drop_claim(&self, up: &BlobUpload<'_, '_>, claim: Option<Claim>) {
        if let Some(c) = claim {
            if let Some(saved) = c.load(up.repo) {
                up.cancel(&saved.location);
            }
            c.done();
        }
    }

    pub(crate) fn blob_exists(&self, repo: &Repo<'_>, digest: &Digest) -> Result<bool> {
        self.with_retries(|| head_blob(repo, digest), |_, _| {})
    }
}

/// The store's file of a blob about to be uploaded, checked against the manifest's size.
fn store_blob_file(store: &Store, digest: &Digest, size: u64) -> Result<std::path::PathBuf> {
    let path = store
        .blob_path(digest)
        .map_err(|e| Error::store(format!("pushing blob {digest}"), e))?;
    match std::fs::metadata(&path) {
        Ok(md) if md.len() == size => Ok(path),
        Ok(md) => Err(Error::store(
            format!("pushing blob {digest}"),
            strata_oci::Error::InvalidImage(format!(
                "the store's blob is {} bytes, the manifest says {size}",
                md.len()
            )),
        )),
        Err(_) => Err(Error::store("pushing", strata_oci::Error::BlobNotFound(digest.to_string()))),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn chunk_sizes_parse_strictly() {
        use super::parse_chunk_size as p;
        assert_eq!(p("262144"), Ok(262144));
        assert_eq!(p("256K"), Ok(256 << 10));
        assert_eq!(p(" 32m "), Ok(32 << 20));
        assert_eq!(p("4G"), Ok(4 << 30));
        assert_eq!(p("1K"), Ok(1024));
        for bad in ["", "K", "1023", "5G", "-1", "1.5M", "12Q", "99999999999999999999G", "0x100"] {
            assert!(p(bad).is_err(), "{bad}");
        }
    }
}
