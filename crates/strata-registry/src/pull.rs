//! Pulling: resolve the manifest, stream config and layers into the store (each verified
//! before it becomes visible), store the manifest's exact bytes, tag.

use crate::client::failure::io_failure;
use crate::client::{Access, Failure, Repo, Request, Subject};
use crate::platform::Platform;
use crate::progress::{BlobEvent, BlobKind, BlobTransfer, Outcome, Progress, Silent};
use crate::reference::Reference;
use crate::{parallel, Client, Error, Result};
use std::io::{Read, Write};
use strata_oci::oci_spec::image::{Descriptor, Digest, ImageConfiguration};
use strata_oci::reference::ImageRef;
use strata_oci::store::{BlobWriter, Store};

/// How to pull.
pub struct PullOptions<'a> {
    /// The platform to pick from a multi-platform image (default linux/amd64).
    pub platform: Platform,
    /// Names to tag the image under in the store; none leaves it untagged (its blobs are
    /// then garbage for the store's gc once the grace period passes).
    pub tags: Vec<ImageRef>,
    pub progress: Option<&'a dyn Progress>,
    /// Blobs downloaded at once.
    pub max_parallel: usize,
}

impl Default for PullOptions<'_> {
    fn default() -> Self {
        PullOptions {
            platform: Platform::default(),
            tags: Vec::new(),
            progress: None,
            max_parallel: 3,
        }
    }
}

/// What was pulled.
#[derive(Debug, Clone)]
pub struct Pulled {
    /// The reference, the digest it resolved to, the platform manifest and its bytes.
    pub resolved: crate::Resolved,
    pub config: ImageConfiguration,
    /// Config first, then layers in manifest order (each distinct digest once).
    pub blobs: Vec<BlobTransfer>,
}

impl Pulled {
    /// The digest `reference` resolved to (see [`crate::Resolved::digest`]).
    pub fn digest(&self) -> &Digest {
        &self.resolved.digest
    }

    /// The image manifest that is in the store (and tagged).
    pub fn manifest(&self) -> &Descriptor {
        &self.resolved.manifest
    }
}

/// Bytes per read of a blob body.
const CHUNK: usize = 256 * 1024;

impl Client {
    /// Pulls `reference` into `store`: see the crate docs for the guarantees.
    pub fn pull(
        &self,
        reference: &Reference,
        store: &Store,
        opts: &PullOptions<'_>,
    ) -> Result<Pulled> {
        let repo = Repo::new(self, reference, Access::Pull);
        let resolved = self.resolve_in(&repo, reference, &opts.platform)?;
        let progress: &dyn Progress = opts.progress.unwrap_or(&Silent);

        let mut wanted: Vec<(Descriptor, BlobKind)> =
            vec![(resolved.image.config().clone(), BlobKind::Config)];
        for l in resolved.image.layers() {
            if !wanted.iter().any(|(d, _)| d.digest() == l.digest()) {
                wanted.push((l.clone(), BlobKind::Layer));
            }
        }
        let blobs = parallel::map(&wanted, opts.max_parallel, |(d, kind)| {
            self.fetch_blob(&repo, store, d, *kind, progress)
        })?;

        let config_digest = resolved.image.config().digest();
        let config_bytes = store.read_blob(config_digest).map_err(|e| {
            Error::store(format!("reading the config {config_digest} just pulled"), e)
        })?;
        let config: ImageConfiguration = serde_json::from_slice(&config_bytes)
            .map_err(|e| self.invalid(&repo, config_digest.as_ref(), format!("config: {e}")))?;
        // The store refuses to resolve an image whose layers and diff_ids disagree; better
        // to say so now than to tag something unusable.
        if config.rootfs().diff_ids().len() != resolved.image.layers().len() {
            return Err(self.invalid(
                &repo,
                resolved.manifest.digest().as_ref(),
                format!(
                    "{} layers but the config lists {} diff_ids",
                    resolved.image.layers().len(),
                    config.rootfs().diff_ids().len()
                ),
            ));
        }
        store
            .put_blob(
                &resolved.manifest_bytes[..],
                Some(resolved.manifest.digest()),
            )
            .map_err(|e| Error::store("storing the manifest", e))?;
        if !opts.tags.is_empty() {
            store.tag_manifest(&resolved.manifest, &opts.tags).map_err(|e| Error::store("tagging the pulled image", e))?;
        }
        Ok(Pulled {
            resolved,
            config,
            blobs,
        })
    }

    /// Downloads one blob into the store unless it is there. The bytes go into a store
    /// temporary file that is renamed into `blobs/` only after its size and digest
    /// matched; a cut-off download resumes with a Range request when the registry allows.
    fn fetch_blob(
        &self,
        repo: &Repo<'_>,
        store: &Store,
        desc: &Descriptor,
        kind: BlobKind,
        progress: &dyn Progress,
    ) -> Result<BlobTransfer> {
        let digest = desc.digest();
        let size = desc.size();
        let what = match kind {
            BlobKind::Config => "config",
            BlobKind::Layer => "layer",
        };
        let transfer = |outcome| BlobTransfer {
            digest: digest.clone(),
            kind,
            size,
            outcome,
            sent: 0,
            resumed_from: None,
        };
        let size_mismatch = |actual: u64| Error::SizeMismatch {
            registry: repo.registry.clone(),
            repository: repo.repository.clone(),
            what,
            digest: digest.to_string(),
            expected: size,
            actual,
        };
        let path = store
            .blob_path(digest)
            .map_err(|e| Error::store(format!("{what} {digest}"), e))?;
        if let Ok(md) = std::fs::metadata(&path) {
            // Same digest, same bytes: a different size means the manifest is wrong.
            if md.len() != size {
                return Err(size_mismatch(md.len()));
            }
            progress.event(&BlobEvent::Finished {
                digest,
                outcome: Outcome::Present,
            });
            return Ok(transfer(Outcome::Present));
        }
        progress.event(&BlobEvent::Started { digest, kind, size });

        let mut partial: Option<BlobWriter> = None;
        let downloaded = self.with_retries(
            || {
                let offset = partial.as_ref().map_or(0, BlobWriter::size);
                let url = repo.url(&format!("blobs/{digest}"))?;
                let mut req = Request::new("GET", url);
                if offset > 0 {
                    req = req.header("range", format!("bytes={offset}-"));
                }
                let request = req.describe();
                let mut resp = repo.send(&req, &[])?;
                match resp.status().as_u16() {
                    200 => {
                        // Whole blob (the registry ignored our range, or this is the
                        // first attempt): start the file over.
                        if offset > 0 {
                            partial = None;
                        }
                    }
                    206 if offset > 0 && content_range_start(&resp) == Some(offset) => {}
                    206 => {
                        partial = None;
                        return Err(Failure::transient(repo.http_error(
                            &request,
                            Some(206),
                            "the registry answered with a range we did not ask for".into(),
                        )));
                    }
                    _ => {
                        return Err(repo.status_failure(
                            &request,
                            resp,
                            Subject::Blob(digest.as_ref()),
                        ))
                    }
                }
                let w = match &mut partial {
                    Some(w) => w,
                    None => partial.insert(
                        store
                            .blob_writer()
                            .map_err(|e| Error::store(format!("storing {what} {digest}"), e))?,
                    ),
                };
                // One byte more than needed tells an oversized body from an exact one.
                let remaining = size.saturating_sub(w.size());
                let mut body = resp.body_mut().as_reader().take(remaining + 1);
                let mut buf = vec![0u8; CHUNK];
                loop {
                    let n = match body.read(&mut buf) {
                        Ok(0) => break,
                        Ok(n) => n,
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                        Err(e) => {
                            let doing = format!("download interrupted after {} bytes", w.size());
                            return Err(io_failure(&repo.registry, &request, &e, &doing));
                        }
                    };
                    w.write_all(&buf[..n])
                        .map_err(Error::io(format!("writing {what} {digest} into the store")))?;
                    progress.event(&BlobEvent::Bytes {
                        digest,
                        done: w.size(),
                        size,
                    });
                }
                let got = w.size();
                if got > size {
                    partial = None;
                    return Err(Failure::fatal(size_mismatch(got)));
                }
                if got < size {
                    // Cut short: kept, so the next attempt asks for the rest.
                    return Err(Failure::transient(size_mismatch(got)));
                }
                let w = partial.take().expect("writer present");
                match w.commit(Some(digest)) {
                    Ok(_) => Ok(()),
                    Err(strata_oci::Error::DigestMismatch { expected, actual }) => {
                        Err(Failure::fatal(Error::DigestMismatch {
                            registry: repo.registry.clone(),
                            repository: repo.repository.clone(),
                            what,
                            expected,
                            actual,
                        }))
                    }
                    Err(e) => Err(Failure::fatal(Error::store(
                        format!("storing {what} {digest}"),
                        e,
                    ))),
                }
            },
            |attempt, error| {
                progress.event(&BlobEvent::Retrying {
                    digest,
                    attempt,
                    reason: &error.to_string(),
                })
            },
        );
        downloaded?;
        progress.event(&BlobEvent::Finished {
            digest,
            outcome: Outcome::Transferred,
        });
        Ok(transfer(Outcome::Transferred))
    }
}

/// The first byte of `Content-Range: bytes FIRST-LAST/TOTAL`.
fn content_range_start(resp: &ureq::http::Response<ureq::Body>) -> Option<u64> {
    let v = resp.headers().get("content-range")?.to_str().ok()?;
    let rest = v.trim().strip_prefix("bytes")?.trim_start();
    rest.split('-').next()?.trim().parse().ok()
}
