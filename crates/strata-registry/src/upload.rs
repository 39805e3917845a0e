//! The requests of one blob upload (OCI distribution spec, "pushing blobs"): opening a
//! session (`POST`, maybe as a cross-repository mount), asking how far a session got
//! (`GET` → `Range`), sending a chunk (`PATCH` with `Content-Range`), closing it with the
//! digest (`PUT ?digest=`), and telling which failures leave the session usable. A blob
//! counts as in the repository only on a `HEAD` 200 or a `201` naming its digest (asked
//! with `HEAD` when the registry does not say): that is what lets the manifest go up.

use crate::client::failure::error_body;
use crate::client::{Body, Failure, Repo, Request, Subject};
use crate::progress::{BlobEvent, Progress};
use crate::Error;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use strata_oci::oci_spec::image::Digest;
use url::Url;

/// An upload session and how far it got.
#[derive(Debug, Clone)]
pub(crate) struct Session {
    pub location: Url,
    /// Bytes the registry has acknowledged.
    pub offset: u64,
    /// An attempt failed mid-way (or the session comes from an earlier push): ask the
    /// registry how much it has before going on.
    pub unsure: bool,
    pub min_chunk: u64,
}

impl Session {
    /// A session an earlier push recorded: to be asked about before use.
    pub fn recorded(location: Url, offset: u64) -> Session {
        Session { location, offset, unsure: true, min_chunk: 0 }
    }
}

/// What a `POST blobs/uploads/?mount=` got.
pub(crate) enum Mount {
    Done,
    /// The registry opened an ordinary upload instead.
    Upload(Session),
    Refused,
}

/// A failed `PATCH` or closing `PUT`.
pub(crate) enum UploadFailure {
    /// The registry may have some of the chunk, or the whole blob: ask it
    /// ([`BlobUpload::status`], a `HEAD`).
    Unsure(Failure),
    /// The registry no longer has the session (404, 416), or refused what it holds (a
    /// digest or size that does not check out): the next attempt opens a new one.
    Gone(Failure),
}

/// One blob on its way into one repository: what every request of its upload needs, and
/// the body bytes sent so far (failed attempts included).
pub(crate) struct BlobUpload<'a, 'c> {
    pub repo: &'a Repo<'c>,
    pub path: PathBuf,
    pub digest: &'a Digest,
    pub size: u64,
    progress: &'a dyn Progress,
    sent: AtomicU64,
}

/// `HEAD blobs/<digest>`, once: whether the repository has the blob.
pub(crate) fn head_blob(repo: &Repo<'_>, digest: &Digest) -> Result<bool, Failure> {
    let url = repo.url(&format!("blobs/{digest}"))?;
    let req = Request::new("HEAD", url);
    let resp = repo.send(&req, &[])?;
    match resp.status().as_u16() {
        200 => Ok(true),
        404 => Ok(false),
        _ => Err(repo.status_failure(&req.describe(), resp, Subject::Blob(digest.as_ref()))),
    }
}

/// The `Docker-Content-Digest` a 201 names.
fn claimed_digest(resp: &ureq::http::Response<ureq::Body>) -> Option<String> {
    resp.headers()
        .get("docker-content-digest")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

impl<'a, 'c> BlobUpload<'a, 'c> {
    pub fn new(repo: &'a Repo<'c>, path: PathBuf, digest: &'a Digest, size: u64, progress: &'a dyn Progress) -> Self {
        BlobUpload { repo, path, digest, size, progress, sent: AtomicU64::new(0) }
    }

    /// Body bytes sent for this blob so far.
    pub fn sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }

    /// Counts what a request body has sent (`n` of it so far, `last` the previous count)
    /// and reports the blob's progress (`start` + `n` of it through).
    fn count(&self, start: u64, last: &AtomicU64, n: u64) {
        let before = last.swap(n, Ordering::Relaxed);
        self.sent.fetch_add(n.saturating_sub(before), Ordering::Relaxed);
        self.progress.event(&BlobEvent::Bytes { digest: self.digest, done: start + n, size: self.size });
    }

    /// `POST blobs/uploads/`: a new session.
    pub fn start(&self) -> Result<Session, Failure> {
        match self.post(&[], &[])? {
            (_, Some(s)) => Ok(s),
            (status, None) => Err(Failure::fatal(self.repo.http_error(
                "POST blobs/uploads/",
                Some(status),
                "the registry did not open an upload".into(),
            ))),
        }
    }

    /// `POST blobs/uploads/?mount=DIGEST&from=SOURCE`, once.
    pub fn mount(&self, source: &str) -> Result<Mount, Failure> {
        let d = self.digest.to_string();
        let scope = [format!("repository:{source}:pull")];
        Ok(match self.post(&[("mount", &d), ("from", source)], &scope)? {
            (201, _) => Mount::Done,
            (_, Some(s)) => Mount::Upload(s),
            _ => Mount::Refused,
        })
    }

    /// The response status and, for a 202, the session it opened. A 201 (a mount done)
    /// counts only when confirmed ([`BlobUpload::confirmed`]); otherwise it is reported as
    /// a 409, a refusal.
    fn post(&self, query: &[(&str, &str)], extra_scopes: &[String]) -> Result<(u16, Option<Session>), Failure> {
        let mut url = self.repo.url("blobs/uploads/")?;
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        let req = Request::new("POST", url);
        let request = req.describe();
        let resp = self.repo.send(&req, extra_scopes)?;
        match resp.status().as_u16() {
            201 => match claimed_digest(&resp) {
                Some(c) if c != self.digest.to_string() => {
                    tracing::debug!("{request}: the registry mounted {c}, not {}", self.digest);
                    Ok((409, None))
                }
                c if self.confirmed(c.as_deref())? => Ok((201, None)),
                _ => Ok((409, None)),
            },
            202 => {
                let location = self.repo.location(&resp, &request)?;
                let min_chunk = resp
                    .headers()
                    .get("oci-chunk-min-length")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0);
                Ok((202, Some(Session { location, offset: 0, unsure: false, min_chunk })))
            }
            _ => Err(self.repo.status_failure(&request, resp, Subject::Other)),
        }
    }

    /// After a 201: the blob is in when the registry named its digest (`claimed`, already
    /// checked), else when a `HEAD` finds it.
    fn confirmed(&self, claimed: Option<&str>) -> Result<bool, Failure> {
        match claimed {
            Some(_) => Ok(true),
            None => head_blob(self.repo, self.digest),
        }
    }

    /// `GET` on a session: how many bytes the registry has (`Range: 0-LAST`). `None` when
    /// the registry no longer has the session (purged, completed, or — distribution —
    /// cancelled because it holds more bytes than the URL's signed state says), so the
    /// caller starts a new one. Transient failures keep the session for another attempt.
    pub fn status(&self, s: &Session) -> Result<Option<Session>, Failure> {
        let req = Request::new("GET", s.location.clone());
        let request = req.describe();
        let resp = self.repo.send(&req, &[])?;
        match resp.status().as_u16() {
            204 => {}
            400 | 404 | 416 => {
                tracing::debug!("{request}: the registry no longer has the upload session ({})", resp.status());
                return Ok(None);
            }
            _ => return Err(self.repo.status_failure(&request, resp, Subject::Other)),
        }
        let offset = match range_end(&resp) {
            Some(o) if o <= self.size => o,
            other => {
                tracing::debug!("{request}: unusable Range ({other:?} of {} bytes); starting afresh", self.size);
                return Ok(None);
            }
        };
        let location = match resp.headers().contains_key("location") {
            true => self.repo.location(&resp, &request)?,
            false => s.location.clone(),
        };
        Ok(Some(Session { location, offset, unsure: false, min_chunk: s.min_chunk }))
    }

    /// `PATCH` bytes `s.offset..end` of the blob into the session.
    pub fn patch(&self, s: &mut Session, end: u64) -> Result<(), UploadFailure> {
        let start = s.offset;
        let last = AtomicU64::new(0);
        let on_sent = |n: u64| self.count(start, &last, n);
        let req = Request::new("PATCH", s.location.clone())
            .header("content-type", "application/octet-stream")
            .header("content-range", format!("{start}-{}", end - 1))
            .body(Body::File { path: self.path.clone(), offset: start, len: end - start, on_sent: &on_sent });
        let request = req.describe();
        let mut resp = self.repo.send(&req, &[]).map_err(UploadFailure::Unsure)?;
        match resp.status().as_u16() {
            202 => {}
            // Distribution answers 404 once the session is gone; 416 is a registry that
            // holds another number of bytes than we send from.
            status @ (404 | 416) => {
                let (_, detail) = error_body(&mut resp);
                return Err(UploadFailure::Gone(Failure::transient(self.repo.http_error(
                    &request,
                    Some(status),
                    format!("the registry no longer accepts this upload session ({detail}); starting the blob again"),
                ))));
            }
            _ => return Err(UploadFailure::Unsure(self.repo.status_failure(&request, resp, Subject::Other))),
        }
        if let Some(have) = range_end(&resp) {
            // `0-0` is also what distribution says after a first chunk of one byte.
            if have != end && !(end == 1 && have == 0) {
                return Err(UploadFailure::Unsure(Failure::transient(self.repo.http_error(
                    &request,
                    Some(202),
                    format!("the registry has {have} bytes after a chunk ending at {end}"),
                ))));
            }
        }
        s.location = self.repo.location(&resp, &request).map_err(UploadFailure::Unsure)?;
        s.offset = end;
        Ok(())
    }

    /// The closing `PUT ?digest=`: the whole blob as body for a monolithic upload, empty
    /// after chunks. The registry verifies the digest over everything it has.
    pub fn finish(&self, s: &Session, chunked: bool) -> Result<(), UploadFailure> {
        let mut url = s.location.clone();
        url.query_pairs_mut().append_pair("digest", self.digest.as_ref());
        let last = AtomicU64::new(0);
        let on_sent = |n: u64| self.count(0, &last, n);
        let mut req = Request::new("PUT", url).header("content-type", "application/octet-stream");
        if !chunked {
            req = req.body(Body::File { path: self.path.clone(), offset: 0, len: self.size, on_sent: &on_sent });
        }
        let request = req.describe();
        let mut resp = self.repo.send(&req, &[]).map_err(UploadFailure::Unsure)?;
        match resp.status().as_u16() {
            201 => {}
            status @ (400 | 404) => {
                let (codes, detail) = error_body(&mut resp);
                let refused = |c: &str| matches!(c, "DIGEST_INVALID" | "SIZE_INVALID" | "BLOB_UPLOAD_INVALID" | "BLOB_UPLOAD_UNKNOWN");
                let error = self.repo.http_error(&request, Some(status), detail);
                return Err(if status == 404 || codes.iter().any(|c| refused(c)) {
                    // What the session holds is not the blob (a cut chunk the registry kept
                    // part of, say): the whole blob again, in a new session. Should the
                    // store's own file be damaged, the retries run out naming this.
                    UploadFailure::Gone(Failure::transient(error))
                } else {
                    UploadFailure::Unsure(Failure::fatal(error))
                });
            }
            _ => return Err(UploadFailure::Unsure(self.repo.status_failure(&request, resp, Subject::Blob(self.digest.as_ref())))),
        }
        self.check_created(&request, &resp).map_err(UploadFailure::Unsure)
    }

    /// A 201 for our blob: the digest the registry names is ours, or (naming none) a
    /// `HEAD` finds the blob.
    fn check_created(&self, request: &str, resp: &ureq::http::Response<ureq::Body>) -> Result<(), Failure> {
        let claimed = claimed_digest(resp);
        if let Some(c) = claimed.as_deref().filter(|c| *c != self.digest.to_string()) {
            return Err(Failure::fatal(Error::DigestMismatch {
                registry: self.repo.registry.clone(),
                repository: self.repo.repository.clone(),
                what: "uploaded blob",
                expected: self.digest.to_string(),
                actual: c.to_string(),
            }));
        }
        if !self.confirmed(claimed.as_deref())? {
            return Err(Failure::fatal(self.repo.http_error(
                request,
                Some(201),
                format!("the registry answered 201 Created but a HEAD does not find {}", self.digest),
            )));
        }
        Ok(())
    }

    /// `DELETE` on a session we give up (best effort: the registry purges old sessions
    /// anyway).
    pub fn cancel(&self, location: &Url) {
        let req = Request::new("DELETE", location.clone());
        match self.repo.send(&req, &[]) {
            Ok(resp) => tracing::debug!("{}: {}", req.describe(), resp.status()),
            Err(e) => tracing::debug!("{}: {e:?}", req.describe()),
        }
    }
}

/// One past the last byte of `Range: [bytes=]0-LAST`. Distribution writes `0-0` for an
/// empty session (and `0--1` in older versions); both are 0 here. A registry meaning one
/// byte by `0-0` then answers our `PATCH` from 0 with 416, and the blob starts afresh.
fn range_end(resp: &ureq::http::Response<ureq::Body>) -> Option<u64> {
    let v = resp.headers().get("range")?.to_str().ok()?;
    let v = v.trim().trim_start_matches("bytes=");
    let (first, last) = v.split_once('-')?;
    if first != "0" {
        return None;
    }
    match last {
        "0" | "-1" => Some(0),
        _ => last.parse::<u64>().ok().map(|l| l + 1),
    }
}

#[cfg(test)]
mod tests {
    use super::range_end;

    fn with_range(v: &str) -> ureq::http::Response<ureq::Body> {
        ureq::http::Response::builder().header("range", v).body(ureq::Body::builder().data(Vec::new())).unwrap()
    }

    #[test]
    fn ranges_as_registries_write_them() {
        assert_eq!(range_end(&with_range("0-0")), Some(0), "distribution's empty session");
        assert_eq!(range_end(&with_range("0--1")), Some(0));
        assert_eq!(range_end(&with_range("0-1048575")), Some(1 << 20));
        assert_eq!(range_end(&with_range("bytes=0-9")), Some(10));
        for bad in ["5-9", "0-x", "", "0"] {
            assert_eq!(range_end(&with_range(bad)), None, "{bad}");
        }
    }
}
