//! Resolving a reference to one image manifest: fetch what the tag or digest names, check
//! its digest, and descend through an index or manifest list to the wanted platform.

use crate::client::{Access, Failure, Repo, Request, Subject};
use crate::media::{self, Kind, SelectError};
use crate::platform::Platform;
use crate::reference::Reference;
use crate::{Client, Error, Result};
use std::io::Read;
use strata_oci::oci_spec::image::{Descriptor, Digest, ImageManifest, MediaType};
use strata_oci::sha256_hex_of;

/// containers/image's limit: a manifest is a small JSON document; anything bigger is an
/// error page or an attack.
const MAX_MANIFEST: u64 = 4 << 20;

/// A reference resolved to the image manifest for one platform.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub reference: Reference,
    /// Digest of the document the reference names: the index (or manifest list) for a
    /// multi-platform image, else the image manifest. `name@digest` resolves to exactly
    /// the same image again, so this is what a build records as its base.
    pub digest: Digest,
    /// Media type of that document.
    pub media_type: String,
    /// The image manifest for the platform: equal to `digest` unless the reference named
    /// an index.
    pub manifest: Descriptor,
    /// The manifest's exact bytes (their sha256 is `manifest.digest()`).
    pub manifest_bytes: Vec<u8>,
    pub image: ImageManifest,
    /// The index entry's platform, when resolved through an index.
    pub platform: Option<Platform>,
}

/// A manifest as fetched and verified.
#[derive(Clone)]
struct Fetched {
    bytes: Vec<u8>,
    digest: Digest,
    kind: Kind,
    media_type: String,
}

impl Client {
    /// Resolves `reference` to the image manifest for `platform` without downloading any
    /// blob. Refuses Docker schema 1 and non-image artifacts by name.
    pub fn resolve(&self, reference: &Reference, platform: &Platform) -> Result<Resolved> {
        let repo = Repo::new(self, reference, Access::Pull);
        self.resolve_in(&repo, reference, platform)
    }

    pub(crate) fn resolve_in(
        &self,
        repo: &Repo<'_>,
        reference: &Reference,
        platform: &Platform,
    ) -> Result<Resolved> {
        let name = reference.manifest_reference();
        let top = self.fetch_manifest(repo, &name, reference.digest(), None)?;
        let unsupported = |at: &str, media_type: &str, detail: &str| Error::UnsupportedMediaType {
            registry: repo.registry.clone(),
            repository: repo.repository.clone(),
            reference: at.to_string(),
            media_type: media_type.to_string(),
            detail: detail.to_string(),
        };
        let mut current = top.clone();
        let mut at = name.clone();
        let mut chosen_platform = None;
        // An index may point at another index (rare); two levels is already unusual.
        for _ in 0..3 {
            match current.kind {
                Kind::Image => {
                    return self.finish(repo, reference, &at, top, current, chosen_platform);
                }
                Kind::Index => {
                    let entry = media::select(&current.bytes, platform).map_err(|e| match e {
                        SelectError::Malformed(detail) => self.invalid(repo, &at, detail),
                        SelectError::NoMatch(available) => Error::NoMatchingPlatform {
                            registry: repo.registry.clone(),
                            repository: repo.repository.clone(),
                            reference: at.clone(),
                            wanted: platform.to_string(),
                            available,
                        },
                    })?;
                    let digest = Digest::try_from(entry.digest.as_str())
                        .ok()
                        .filter(is_sha256)
                        .ok_or_else(|| {
                            self.invalid(
                                repo,
                                &at,
                                format!("entry digest {:?} is not sha256", entry.digest),
                            )
                        })?;
                    chosen_platform = entry
                        .platform
                        .as_ref()
                        .map(|p| Platform::new(&p.os, &p.architecture, p.variant.as_deref()));
                    at = digest.to_string();
                    current = self.fetch_manifest(repo, &at, Some(&digest), Some(entry.size))?;
                }
                Kind::Schema1 => {
                    return Err(unsupported(
                        &at,
                        &current.media_type,
                        "Docker schema 1 manifests are not supported (deprecated since 2017, \
                         removed from docker 20.10); re-push the image with a current docker, \
                         podman or `skopeo copy --format v2s2`",
                    ))
                }
                Kind::Other => {
                    return Err(unsupported(
                        &at,
                        &current.media_type,
                        "not a container image manifest, OCI index or Docker manifest list",
                    ))
                }
            }
        }
        Err(self.invalid(repo, &at, "indexes nested more than two deep".into()))
    }

    fn finish(
        &self,
        repo: &Repo<'_>,
        reference: &Reference,
        at: &str,
        top: Fetched,
        image: Fetched,
        platform: Option<Platform>,
    ) -> Result<Resolved> {
        let parsed: ImageManifest = serde_json::from_slice(&image.bytes)
            .map_err(|e| self.invalid(repo, at, e.to_string()))?;
        let unsupported = |media_type: String, detail: String| Error::UnsupportedMediaType {
            registry: repo.registry.clone(),
            repository: repo.repository.clone(),
            reference: at.to_string(),
            media_type,
            detail,
        };
        let config_type = parsed.config().media_type().to_string();
        if !media::is_image_config(&config_type) {
            return Err(unsupported(
                config_type,
                "the config is not an image config: this is an artifact, not a container image"
                    .into(),
            ));
        }
        for l in parsed.layers() {
            let t = l.media_type().to_string();
            if !media::is_layer(&t) {
                return Err(unsupported(
                    t,
                    format!("layer {} is not a tar layer", l.digest()),
                ));
            }
            if !is_sha256(l.digest()) {
                return Err(self.invalid(
                    repo,
                    at,
                    format!("layer digest {} is not sha256", l.digest()),
                ));
            }
        }
        if !is_sha256(parsed.config().digest()) {
            return Err(self.invalid(repo, at, "config digest is not sha256".into()));
        }
        let manifest = Descriptor::new(
            MediaType::from(image.media_type.as_str()),
            image.bytes.len() as u64,
            image.digest.clone(),
        );
        Ok(Resolved {
            reference: reference.clone(),
            digest: top.digest,
            media_type: top.media_type,
            manifest,
            manifest_bytes: image.bytes,
            image: parsed,
            platform,
        })
    }

    pub(crate) fn invalid(&self, repo: &Repo<'_>, at: &str, detail: String) -> Error {
        Error::InvalidManifest {
            registry: repo.registry.clone(),
            repository: repo.repository.clone(),
            reference: at.to_string(),
            detail,
        }
    }

    /// GETs one manifest (with retries) and verifies it against `expected` (digest and
    /// size) and against the registry's own `Docker-Content-Digest`.
    fn fetch_manifest(
        &self,
        repo: &Repo<'_>,
        name: &str,
        expected: Option<&Digest>,
        expected_size: Option<u64>,
    ) -> Result<Fetched> {
        let accept = media::manifest_accept();
        self.with_retries(
            || {
                let url = repo.url(&format!("manifests/{name}"))?;
                let req = Request::new("GET", url).header("accept", accept.as_str());
                let request = req.describe();
                let mut resp = repo.send(&req, &[])?;
                if resp.status().as_u16() != 200 {
                    return Err(repo.status_failure(&request, resp, Subject::Manifest(name)));
                }
                let header = |h: &str| {
                    resp.headers()
                        .get(h)
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_string)
                };
                let content_type = header("content-type");
                let claimed = header("docker-content-digest");
                let declared: Option<u64> = header("content-length").and_then(|v| v.parse().ok());
                let mut bytes = Vec::new();
                resp.body_mut()
                    .as_reader()
                    .take(MAX_MANIFEST + 1)
                    .read_to_end(&mut bytes)
                    .map_err(|e| {
                        crate::client::failure::io_failure(
                            &repo.registry,
                            &request,
                            &e,
                            "reading the manifest",
                        )
                    })?;
                if bytes.len() as u64 > MAX_MANIFEST {
                    return Err(Failure::fatal(self.invalid(
                        repo,
                        name,
                        format!("larger than {MAX_MANIFEST} bytes"),
                    )));
                }
                if declared.is_some_and(|n| n != bytes.len() as u64) {
                    return Err(Failure::transient(repo.http_error(
                        &request,
                        None,
                        format!(
                            "got {} of {} bytes (connection dropped?)",
                            bytes.len(),
                            declared.unwrap_or_default()
                        ),
                    )));
                }
                let digest = sha256_hex_of(&bytes);
                let mismatch = |expected: String| {
                    Failure::fatal(Error::DigestMismatch {
                        registry: repo.registry.clone(),
                        repository: repo.repository.clone(),
                        what: "manifest",
                        expected,
                        actual: digest.to_string(),
                    })
                };
                if let Some(e) = expected {
                    if e != &digest {
                        return Err(mismatch(e.to_string()));
                    }
                }
                if let Some(c) = claimed.filter(|c| c.starts_with("sha256:")) {
                    if c != digest.to_string() {
                        return Err(mismatch(format!(
                            "{c} (the registry's Docker-Content-Digest)"
                        )));
                    }
                }
                if let Some(size) = expected_size {
                    if size != bytes.len() as u64 {
                        return Err(Failure::fatal(Error::SizeMismatch {
                            registry: repo.registry.clone(),
                            repository: repo.repository.clone(),
                            what: "manifest",
                            digest: digest.to_string(),
                            expected: size,
                            actual: bytes.len() as u64,
                        }));
                    }
                }
                let (kind, media_type) = media::classify(&bytes, content_type.as_deref());
                Ok(Fetched {
                    bytes,
                    digest,
                    kind,
                    media_type,
                })
            },
            |_, _| {},
        )
    }
}

pub(crate) fn is_sha256(d: &Digest) -> bool {
    let hex = d.digest();
    d.algorithm().as_ref() == "sha256"
        && hex.len() == 64
        && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}
