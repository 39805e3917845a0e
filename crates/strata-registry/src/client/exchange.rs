//! One authenticated HTTP exchange with a repository of a registry: the request goes out
//! with the best credentials we have for its scopes; a 401 is answered once with a fresh
//! token for the scopes the registry's challenge names, then reported.

use super::endpoint::{challenges, AuthScheme, Endpoint, RegistryState};
use super::failure::{describe, error_body, http_error, retry_after, transport, Failure, Subject};
use super::Client;
use crate::reference::Reference;
use crate::Error;
use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::sync::Arc;
use ureq::http::Response;
use url::Url;

/// What a repository is opened for; decides the token scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    Pull,
    Push,
}

impl Access {
    fn actions(self) -> &'static str {
        match self {
            Access::Pull => "pull",
            Access::Push => "pull,push",
        }
    }
}

/// A request body that can be produced again for a second attempt.
pub(crate) enum Body<'a> {
    Empty,
    Bytes(&'a [u8]),
    /// `len` bytes of a file from `offset`; `on_sent` hears the running count.
    File {
        path: PathBuf,
        offset: u64,
        len: u64,
        on_sent: &'a (dyn Fn(u64) + Sync),
    },
}

pub(crate) struct Request<'a> {
    pub method: &'static str,
    pub url: Url,
    pub headers: Vec<(&'static str, String)>,
    pub body: Body<'a>,
}

impl<'a> Request<'a> {
    pub fn new(method: &'static str, url: Url) -> Request<'a> {
        Request {
            method,
            url,
            headers: Vec::new(),
            body: Body::Empty,
        }
    }

    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    pub fn body(mut self, body: Body<'a>) -> Self {
        self.body = body;
        self
    }

    pub fn describe(&self) -> String {
        describe(self.method, &self.url)
    }
}

/// A repository on a registry, opened for pulling or pushing.
pub(crate) struct Repo<'c> {
    pub client: &'c Client,
    reg: Arc<RegistryState>,
    pub registry: String,
    pub repository: String,
    access: Access,
}

impl<'c> Repo<'c> {
    pub fn new(client: &'c Client, reference: &Reference, access: Access) -> Repo<'c> {
        Repo {
            client,
            reg: client.registry(reference.registry()),
            registry: reference.registry().to_string(),
            repository: reference.repository().to_string(),
            access,
        }
    }

    fn scope(&self) -> String {
        format!("repository:{}:{}", self.repository, self.access.actions())
    }

    /// `<base>/v2/<repository>/<path>`.
    pub fn url(&self, path: &str) -> Result<Url, Failure> {
        let ep = self.reg.endpoint(self.client)?;
        ep.base
            .join(&format!("v2/{}/{path}", self.repository))
            .map_err(|e| Failure::fatal(self.http_error(path, None, format!("bad URL: {e}"))))
    }

    /// A `Location` header, absolute or relative to the registry.
    pub fn location(&self, resp: &Response<ureq::Body>, request: &str) -> Result<Url, Failure> {
        let ep = self.reg.endpoint(self.client)?;
        let loc = resp
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| {
                Failure::fatal(self.http_error(
                    request,
                    None,
                    "no Location header in the answer".into(),
                ))
            })?;
        ep.base.join(loc).map_err(|e| {
            Failure::fatal(self.http_error(request, None, format!("bad Location {loc:?}: {e}")))
        })
    }

    /// Whether `url` is on the registry itself (the scheme, host and port it answers on):
    /// the only place an upload URL read back from disk may send a blob's bytes.
    pub fn is_on_registry(&self, url: &Url) -> bool {
        self.reg.endpoint(self.client).is_ok_and(|ep| {
            url.scheme() == ep.base.scheme()
                && url.host_str() == ep.base.host_str()
                && url.port_or_known_default() == ep.base.port_or_known_default()
        })
    }

    pub fn http_error(&self, request: &str, status: Option<u16>, detail: String) -> Error {
        http_error(&self.registry, request, status, detail)
    }

    /// Sends `req` with authorization for this repository (plus `extra_scopes`, such as
    /// pull on the source of a mount) and returns the response, whatever its status,
    /// except that a 401 is answered once and then reported.
    pub fn send(
        &self,
        req: &Request<'_>,
        extra_scopes: &[String],
    ) -> Result<Response<ureq::Body>, Failure> {
        let ep = self.reg.endpoint(self.client)?;
        let mut scopes = vec![self.scope()];
        scopes.extend_from_slice(extra_scopes);
        let mut auth = self
            .reg
            .authorization(self.client, &self.repository, &scopes, false)?;
        let mut retried = false;
        loop {
            let resp = self.raw(&ep, req, auth.as_deref())?;
            if resp.status().as_u16() != 401 {
                return Ok(resp);
            }
            let ch = challenges(&resp);
            let bearer = ch.iter().find(|c| c.scheme == "bearer");
            let denied_scope = bearer
                .filter(|c| c.param("error") == Some("insufficient_scope"))
                .is_some();
            if retried {
                return Err(Failure::fatal(self.refused(
                    resp,
                    denied_scope,
                    auth.is_some(),
                )));
            }
            retried = true;
            let was_anonymous = matches!(self.reg.auth_scheme(), AuthScheme::Anonymous);
            if was_anonymous || bearer.is_some() {
                self.reg.learn(&ch);
            }
            // The registry names the scopes it wants; ask for ours and those.
            if let Some(s) = bearer.and_then(|c| c.param("scope")) {
                for s in s.split(' ').filter(|s| !s.is_empty()) {
                    if !scopes.iter().any(|x| x == s) {
                        scopes.push(s.to_string());
                    }
                }
            }
            let fresh = self
                .reg
                .authorization(self.client, &self.repository, &scopes, true)?;
            if fresh.is_none() || (fresh == auth && bearer.is_none()) {
                // Nothing new to offer: the same Basic credentials, or none.
                return Err(Failure::fatal(self.refused(
                    resp,
                    denied_scope,
                    auth.is_some(),
                )));
            }
            auth = fresh;
        }
    }

    /// The error for a final 401.
    fn refused(
        &self,
        mut resp: Response<ureq::Body>,
        insufficient_scope: bool,
        sent: bool,
    ) -> Error {
        let ch = challenges(&resp);
        let realm = ch.iter().find_map(|c| c.realm().map(str::to_string));
        let (_, detail) = error_body(&mut resp);
        if insufficient_scope {
            return Error::Denied {
                registry: self.registry.clone(),
                repository: self.repository.clone(),
                action: self.access.actions().to_string(),
                detail: format!("the token does not grant it ({detail})"),
            };
        }
        let why = if sent {
            "credentials refused"
        } else {
            "no credentials for this registry (log in, or add them to an auth file)"
        };
        Error::Unauthorized {
            registry: self.registry.clone(),
            repository: self.repository.clone(),
            realm,
            detail: format!("{why}: {detail}"),
        }
    }

    fn raw(
        &self,
        ep: &Endpoint,
        req: &Request<'_>,
        auth: Option<&str>,
    ) -> Result<Response<ureq::Body>, Failure> {
        let request = req.describe();
        let same_host =
            req.url.host_str() == ep.base.host_str() && req.url.port() == ep.base.port();
        let mut b = ureq::http::Request::builder()
            .method(req.method)
            .uri(req.url.as_str());
        for (k, v) in &req.headers {
            b = b.header(*k, v);
        }
        // Credentials only ever go to the registry itself, never to a host a Location
        // header points at.
        if let (Some(a), true) = (auth, same_host) {
            b = b.header("authorization", a);
        }
        let agent = self.client.agent(!same_host || ep.verify);
        let build = |e: ureq::http::Error| {
            Failure::fatal(self.http_error(&request, None, format!("building the request: {e}")))
        };
        let has_body_semantics = matches!(req.method, "PUT" | "POST" | "PATCH");
        let sent = match &req.body {
            Body::Empty if has_body_semantics => {
                agent.run(b.header("content-length", "0").body(()).map_err(build)?)
            }
            Body::Empty => agent.run(b.body(()).map_err(build)?),
            Body::Bytes(bytes) => agent.run(
                b.header("content-length", bytes.len().to_string())
                    .body(*bytes)
                    .map_err(build)?,
            ),
            Body::File {
                path,
                offset,
                len,
                on_sent,
            } => {
                let local = |e: std::io::Error| {
                    Failure::fatal(Error::io(format!(
                        "reading {} to upload it",
                        path.display()
                    ))(e))
                };
                let mut f = std::fs::File::open(path).map_err(local)?;
                f.seek(SeekFrom::Start(*offset)).map_err(local)?;
                let mut reader = Counting {
                    inner: f.take(*len),
                    done: 0,
                    on_sent: *on_sent,
                };
                let body = ureq::SendBody::from_reader(&mut reader);
                agent.run(
                    b.header("content-length", len.to_string())
                        .body(body)
                        .map_err(build)?,
                )
            }
        };
        sent.map_err(|e| transport(&self.registry, &request, e))
    }

    /// The failure for a response whose status the caller did not expect.
    pub fn status_failure(
        &self,
        request: &str,
        mut resp: Response<ureq::Body>,
        subject: Subject<'_>,
    ) -> Failure {
        let status = resp.status().as_u16();
        let (codes, detail) = error_body(&mut resp);
        let code = |c: &str| codes.iter().any(|x| x == c);
        match status {
            404 if code("MANIFEST_UNKNOWN") || matches!(subject, Subject::Manifest(_)) => {
                let reference = match subject {
                    Subject::Manifest(r) => r.to_string(),
                    _ => String::new(),
                };
                Failure::fatal(Error::ManifestUnknown {
                    registry: self.registry.clone(),
                    repository: self.repository.clone(),
                    reference,
                    detail,
                })
            }
            404 if code("BLOB_UNKNOWN") || matches!(subject, Subject::Blob(_)) => {
                let digest = match subject {
                    Subject::Blob(d) => d.to_string(),
                    _ => String::new(),
                };
                Failure::fatal(Error::BlobUnknown {
                    registry: self.registry.clone(),
                    repository: self.repository.clone(),
                    digest,
                })
            }
            403 => Failure::fatal(Error::Denied {
                registry: self.registry.clone(),
                repository: self.repository.clone(),
                action: self.access.actions().to_string(),
                detail,
            }),
            408 | 429 | 500..=599 => Failure::Transient {
                error: Box::new(self.http_error(request, Some(status), detail)),
                retry_after: retry_after(&resp),
            },
            _ => Failure::fatal(self.http_error(request, Some(status), detail)),
        }
    }
}

/// Counts bytes read, for upload progress.
struct Counting<'a, R> {
    inner: R,
    done: u64,
    on_sent: &'a (dyn Fn(u64) + Sync),
}

impl<R: Read> Read for Counting<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.done += n as u64;
        (self.on_sent)(self.done);
        Ok(n)
    }
}
