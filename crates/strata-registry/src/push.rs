//! Pushing: upload what the repository lacks (HEAD first, cross-repository mount when
//! the caller names a repository that has the blob, one PUT for small blobs, PATCH chunks
//! that resume after a failure for big ones), then PUT the manifest's exact bytes.

use crate::client::{Access, Body, Failure, Repo, Request, Subject};
use crate::media;
use crate::progress::{BlobEvent, BlobKind, BlobTransfer, Outcome, Progress, Silent};
use crate::reference::Reference;
use crate::{parallel, Client, Error, Result};
use strata_oci::oci_spec::image::{Descriptor, Digest};
use strata_oci::sha256_hex_of;
use strata_oci::store::Store;
use url::Url;

#[path = "push_many.rs"]
mod push_many;

/// How to push.
pub struct PushOptions<'a> {
    /// Repositories on the target registry that may already have the blobs (the base
    /// image's, typically); each missing blob is mounted from the first that has it
    /// instead of uploaded.
    pub mount_from: Vec<String>,
    /// Blobs up to this size go up in one PUT; bigger ones in PATCH chunks of this size,
    /// so a failure costs one chunk, not the blob.
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

impl Default for PushOptions<'_> {
    fn default() -> Self {
        PushOptions {
            mount_from: Vec::new(),
            chunk_size: 32 << 20,
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

/// An upload session and how far it got.
struct Session {
    location: Url,
    offset: u64,
    /// An attempt failed mid-way: ask the registry how much it has before going on.
    unsure: bool,
    min_chunk: u64,
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
    /// mounted from the first of `mount_from` that has it, else uploaded.
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
        let transfer = |outcome| {
            progress.event(&BlobEvent::Finished { digest, outcome });
            BlobTransfer {
                digest: digest.clone(),
                kind,
                size,
                outcome,
            }
        };
        if check && self.blob_exists(repo, digest)? {
            return Ok(transfer(Outcome::Present));
        }
        let path = store
            .blob_path(digest)
            .map_err(|e| Error::store(format!("pushing blob {digest}"), e))?;
        match std::fs::metadata(&path) {
            Ok(md) if md.len() == size => {}
            Ok(md) => {
                return Err(Error::store(
                    format!("pushing blob {digest}"),
                    strata_oci::Error::InvalidImage(format!(
                        "the store's blob is {} bytes, the manifest says {size}",
                        md.len()
                    )),
                ))
            }
            Err(_) => {
                return Err(Error::store(
                    "pushing",
                    strata_oci::Error::BlobNotFound(digest.to_string()),
                ))
            }
        }
        progress.event(&BlobEvent::Started { digest, kind, size });

        let mut session = None;
        for source in mount_from.iter().copied().filter(|s| *s != repo.repository) {
            match self.try_mount(repo, digest, source) {
                Ok(Mount::Done) => return Ok(transfer(Outcome::Mounted)),
                // The registry opened an ordinary upload instead: use it.
                Ok(Mount::Upload(s)) => {
                    session = Some(s);
                    break;
                }
                Ok(Mount::Refused) => {}
                // A mount is an optimisation; the plain upload below reports real problems.
                Err(e) => tracing::debug!("mounting {digest} from {source}: {e}"),
            }
        }

        let chunked = size > opts.chunk_size.max(1);
        self.with_retries(
            || {
                let mut s = match session.take() {
                    Some(s) if s.unsure => match self.upload_status(repo, s)? {
                        Some(s) => s,
                        None => self.start_upload(repo, &[])?.1,
                    },
                    Some(s) => s,
                    None => self.start_upload(repo, &[])?.1,
                };
                if chunked {
                    let chunk = opts.chunk_size.max(s.min_chunk).max(1);
                    while s.offset < size {
                        let end = (s.offset + chunk).min(size);
                        match self.patch_chunk(repo, &path, digest, &mut s, end, size, progress) {
                            Ok(()) => {}
                            Err(f) => {
                                s.unsure = true;
                                session = Some(s);
                                return Err(f);
                            }
                        }
                    }
                }
                // On failure the session is dropped: the next attempt starts a new one.
                self.finish_upload(repo, &path, digest, &s, chunked, size, progress)
            },
            |attempt, error| {
                progress.event(&BlobEvent::Retrying {
                    digest,
                    attempt,
                    reason: &error.to_string(),
                })
            },
        )?;
        Ok(transfer(Outcome::Transferred))
    }

    pub(crate) fn blob_exists(&self, repo: &Repo<'_>, digest: &Digest) -> Result<bool> {
        self.with_retries(
            || {
                let url = repo.url(&format!("blobs/{digest}"))?;
                let req = Request::new("HEAD", url);
                let resp = repo.send(&req, &[])?;
                match resp.status().as_u16() {
                    200 => Ok(true),
                    404 => Ok(false),
                    _ => Err(repo.status_failure(
                        &req.describe(),
                        resp,
                        Subject::Blob(digest.as_ref()),
                    )),
                }
            },
            |_, _| {},
        )
    }

    /// `POST /blobs/uploads/` (with `query`, e.g. a mount): the response and, for a 202,
    /// the session it opened.
    fn start_upload(
        &self,
        repo: &Repo<'_>,
        query: &[(&str, &str)],
    ) -> Result<(u16, Session), Failure> {
        let (status, s) = self.post_upload(repo, query, &[])?;
        match s {
            Some(s) => Ok((status, s)),
            None => Err(Failure::fatal(repo.http_error(
                "POST blobs/uploads/",
                Some(status),
                "the registry did not open an upload".into(),
            ))),
        }
    }

    fn post_upload(
        &self,
        repo: &Repo<'_>,
        query: &[(&str, &str)],
        extra_scopes: &[String],
    ) -> Result<(u16, Option<Session>), Failure> {
        let mut url = repo.url("blobs/uploads/")?;
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        let req = Request::new("POST", url);
        let request = req.describe();
        let resp = repo.send(&req, extra_scopes)?;
        match resp.status().as_u16() {
            201 => Ok((201, None)),
            202 => {
                let location = repo.location(&resp, &request)?;
                let min_chunk = resp
                    .headers()
                    .get("oci-chunk-min-length")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0);
                Ok((
                    202,
                    Some(Session {
                        location,
                        offset: 0,
                        unsure: false,
                        min_chunk,
                    }),
                ))
            }
            _ => Err(repo.status_failure(&request, resp, Subject::Other)),
        }
    }

    fn try_mount(&self, repo: &Repo<'_>, digest: &Digest, source: &str) -> Result<Mount> {
        let d = digest.to_string();
        let scope = [format!("repository:{source}:pull")];
        let r = self.with_retries(
            || self.post_upload(repo, &[("mount", &d), ("from", source)], &scope),
            |_, _| {},
        )?;
        Ok(match r {
            (201, _) => Mount::Done,
            (_, Some(s)) => Mount::Upload(s),
            _ => Mount::Refused,
        })
    }

    /// `GET` on an upload: how many bytes the registry has (`Range: 0-LAST`). `None` when
    /// the session is gone, so the caller starts a new one.
    fn upload_status(&self, repo: &Repo<'_>, mut s: Session) -> Result<Option<Session>, Failure> {
        let req = Request::new("GET", s.location.clone());
        let request = req.describe();
        let resp = repo.send(&req, &[])?;
        if resp.status().as_u16() != 204 {
            return Ok(None);
        }
        s.offset = range_end(&resp).unwrap_or(0);
        if resp.headers().contains_key("location") {
            s.location = repo.location(&resp, &request)?;
        }
        s.unsure = false;
        Ok(Some(s))
    }

    #[allow(clippy::too_many_arguments)]
    fn patch_chunk(
        &self,
        repo: &Repo<'_>,
        path: &std::path::Path,
        digest: &Digest,
        s: &mut Session,
        end: u64,
        size: u64,
        progress: &dyn Progress,
    ) -> Result<(), Failure> {
        let start = s.offset;
        let on_sent = |n: u64| {
            progress.event(&BlobEvent::Bytes {
                digest,
                done: start + n,
                size,
            })
        };
        let req = Request::new("PATCH", s.location.clone())
            .header("content-type", "application/octet-stream")
            .header("content-range", format!("{start}-{}", end - 1))
            .body(Body::File {
                path: path.to_path_buf(),
                offset: start,
                len: end - start,
                on_sent: &on_sent,
            });
        let request = req.describe();
        let resp = repo.send(&req, &[])?;
        if resp.status().as_u16() != 202 {
            return Err(repo.status_failure(&request, resp, Subject::Other));
        }
        if let Some(have) = range_end(&resp) {
            if have != end {
                return Err(Failure::transient(repo.http_error(
                    &request,
                    Some(202),
                    format!("the registry has {have} bytes after a chunk ending at {end}"),
                )));
            }
        }
        s.location = repo.location(&resp, &request)?;
        s.offset = end;
        Ok(())
    }

    /// The closing `PUT ?digest=`: with the whole blob as body for a monolithic upload,
    /// empty after chunks.
    #[allow(clippy::too_many_arguments)]
    fn finish_upload(
        &self,
        repo: &Repo<'_>,
        path: &std::path::Path,
        digest: &Digest,
        s: &Session,
        chunked: bool,
        size: u64,
        progress: &dyn Progress,
    ) -> Result<(), Failure> {
        let mut url = s.location.clone();
        url.query_pairs_mut().append_pair("digest", digest.as_ref());
        let on_sent = |n: u64| {
            progress.event(&BlobEvent::Bytes {
                digest,
                done: n,
                size,
            })
        };
        let mut req = Request::new("PUT", url).header("content-type", "application/octet-stream");
        if !chunked {
            req = req.body(Body::File {
                path: path.to_path_buf(),
                offset: 0,
                len: size,
                on_sent: &on_sent,
            });
        }
        let request = req.describe();
        let resp = repo.send(&req, &[])?;
        if resp.status().as_u16() != 201 {
            return Err(repo.status_failure(&request, resp, Subject::Blob(digest.as_ref())));
        }
        let claimed = resp
            .headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok());
        if let Some(c) = claimed.filter(|c| *c != digest.to_string()) {
            return Err(Failure::fatal(Error::DigestMismatch {
                registry: repo.registry.clone(),
                repository: repo.repository.clone(),
                what: "uploaded blob",
                expected: digest.to_string(),
                actual: c.to_string(),
            }));
        }
        Ok(())
    }
}

enum Mount {
    Done,
    Upload(Session),
    Refused,
}

/// One past the last byte of `Range: 0-LAST` (distribution writes `0--1` for none).
fn range_end(resp: &ureq::http::Response<ureq::Body>) -> Option<u64> {
    let v = resp.headers().get("range")?.to_str().ok()?;
    let v = v.trim().trim_start_matches("bytes=");
    let (_, last) = v.split_once('-')?;
    match last.parse::<u64>() {
        Ok(l) => Some(l + 1),
        Err(_) if last == "-1" => Some(0),
        Err(_) => None,
    }
}
