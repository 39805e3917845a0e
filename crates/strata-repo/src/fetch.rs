//! Getting bytes from a repository location: `file://` URLs, absolute paths, and
//! `http(s)://` with retries on transient failures.
//!
//! Every failure becomes [`RepoError::Unreachable`] naming the repo and the URL, with a detail
//! a user can act on ("HTTP 404 Not Found", "connection refused", "no such file"); a failure to
//! write the destination of [`Fetcher::get_to_file`] is a [`RepoError::Cache`] instead, since
//! the fix is on this machine, not on the mirror.

use crate::RepoError;
use std::fs::File;
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

/// Fetches URLs; one per process is enough (the HTTP agent pools connections per host).
pub struct Fetcher {
    /// Built on first HTTP use: loading the system trust store costs a few milliseconds and
    /// local-only runs never need it.
    agent: OnceLock<ureq::Agent>,
    /// Pause before each retry of a transient failure; its length is the number of retries.
    /// dnf-like defaults; tests shrink them.
    pub(crate) backoff: Vec<Duration>,
}

/// Why one attempt failed, and so whether another attempt can help.
enum Failure {
    /// Worth retrying: connect errors, timeouts, 5xx, 429, a body cut short.
    Transient(String),
    /// Retrying gives the same answer: 404 and other 4xx, a bad URL, a TLS certificate problem.
    Permanent(String),
    /// Writing our own destination failed; not the server's fault, reported as is.
    Local(RepoError),
}

/// Connect timeout: long enough for a slow mirror, short enough to move on to the next one.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// A server that has sent nothing for this long is stalled. This is per read rather than a
/// whole-body limit, so a large primary.xml or RPM over a slow link still completes.
const READ_TIMEOUT: Duration = Duration::from_secs(60);
/// Chunk size of streaming copies.
const COPY_BUF: usize = 64 * 1024;
/// Upper bound of what a Content-Length may make us preallocate; the body still grows past it.
const MAX_PREALLOC: u64 = 64 << 20;

impl Default for Fetcher {
    fn default() -> Fetcher {
        Fetcher::new()
    }
}

impl Fetcher {
    pub fn new() -> Fetcher {
        Fetcher::with_backoff(vec![Duration::from_millis(200), Duration::from_millis(800)])
    }

    /// A Fetcher that pauses `backoff[i]` before retry `i` of a transient failure, so
    /// `backoff.len() + 1` attempts in all.
    pub fn with_backoff(backoff: Vec<Duration>) -> Fetcher {
        Fetcher {
            agent: OnceLock::new(),
            backoff,
        }
    }

    fn agent(&self) -> &ureq::Agent {
        self.agent.get_or_init(|| {
            let tls = ureq::tls::TlsConfig::builder()
                .root_certs(root_certs())
                .build();
            let config = ureq::Agent::config_builder()
                .timeout_connect(Some(CONNECT_TIMEOUT))
                .timeout_recv_response(Some(READ_TIMEOUT))
                .timeout_per_read(Some(READ_TIMEOUT))
                // Statuses are classified below (retry 5xx, fail 4xx), not turned into errors.
                .http_status_as_error(false)
                .tls_config(tls)
                .user_agent(concat!("strata/", env!("CARGO_PKG_VERSION")))
                .build();
            ureq::Agent::new_with_config(config)
        })
    }

    /// The whole body of `url`: `file://...`, an absolute path `/...`, or `http(s)://...`.
    pub fn get(&self, repo: &str, url: &str) -> Result<Vec<u8>, RepoError> {
        self.get_limited(repo, url, u64::MAX)
    }

    /// [`get`](Self::get), refusing a body longer than `max` bytes as soon as that shows (a
    /// Content-Length, a file size, or the bytes as they arrive), so a hostile server cannot
    /// make us hold more than `max` bytes of it.
    pub fn get_limited(&self, repo: &str, url: &str, max: u64) -> Result<Vec<u8>, RepoError> {
        let too_large = || RepoError::TooLarge {
            repo: repo.into(),
            file: url.into(),
            detail: format!("it is larger than {max} bytes, the most it may be"),
        };
        match classify(url) {
            Location::Local(path) => {
                let file = File::open(&path).map_err(|e| unreachable(repo, url, io_detail(&e)))?;
                let len = file.metadata().map(|m| m.len()).unwrap_or(0);
                if len > max {
                    return Err(too_large());
                }
                let mut body = Vec::with_capacity(len.min(MAX_PREALLOC) as usize);
                // `take`: the file may grow between the size check and the read.
                file.take(max.saturating_add(1))
                    .read_to_end(&mut body)
                    .map_err(|e| unreachable(repo, url, io_detail(&e)))?;
                if body.len() as u64 > max {
                    return Err(too_large());
                }
                Ok(body)
            }
            Location::Invalid(detail) => Err(unreachable(repo, url, detail)),
            Location::Http => self.with_retries(repo, url, || {
                let (mut resp, declared) = self.request(url)?;
                if declared.is_some_and(|n| n > max) {
                    return Err(Failure::Local(too_large()));
                }
                let body = Vec::with_capacity(declared.unwrap_or(0).min(MAX_PREALLOC) as usize);
                let mut capped = Capped { body, max };
                // The only write error a Vec with a cap can give is the cap.
                let n = copy_body(&mut resp, &mut capped, |_| Failure::Local(too_large()))?;
                check_length(n, declared)?;
                Ok(capped.body)
            }),
        }
    }

    /// Streams `url` into `dest` (created or truncated), returning the bytes written.
    ///
    /// `dest` is only created once a server has answered with a success status, so a 404
    /// leaves no empty file behind; a retry after a cut-off body starts the file over.
    pub fn get_to_file(&self, repo: &str, url: &str, dest: &Path) -> Result<u64, RepoError> {
        self.download(repo, url, dest, &mut |_, _| Ok(()))
    }

    /// [`get_to_file`](Self::get_to_file) that also says when the source was last modified:
    /// the server's `Last-Modified` (absent or unparsable: `None`), or a local file's mtime.
    /// The file written keeps its own mtime either way (a metadata cache judges expiry by it).
    pub fn get_dated(&self, repo: &str, url: &str, dest: &Path) -> Result<(u64, Option<SystemTime>), RepoError> {
        let mut modified = None;
        let n = self.fetch(repo, url, dest, &mut |_, _| Ok(()), &mut modified)?;
        Ok((n, modified))
    }

    /// [`get_to_file`](Self::get_to_file) that also hands `on_data` each chunk with its offset
    /// in `dest` before writing it, so a caller can hash and show progress as bytes arrive.
    /// Offset 0 after earlier chunks means a retry started the file over. An error from
    /// `on_data` stops the download without retrying and is returned as [`RepoError::Cache`].
    pub fn download(
        &self,
        repo: &str,
        url: &str,
        dest: &Path,
        on_data: &mut dyn FnMut(u64, &[u8]) -> std::io::Result<()>,
    ) -> Result<u64, RepoError> {
        self.fetch(repo, url, dest, on_data, &mut None)
    }

    fn fetch(
        &self,
        repo: &str,
        url: &str,
        dest: &Path,
        on_data: &mut dyn FnMut(u64, &[u8]) -> std::io::Result<()>,
        modified: &mut Option<SystemTime>,
    ) -> Result<u64, RepoError> {
        let dest_err = |e: std::io::Error| RepoError::cache(dest, e);
        match classify(url) {
            Location::Local(path) => {
                let mut src =
                    File::open(&path).map_err(|e| unreachable(repo, url, io_detail(&e)))?;
                *modified = src.metadata().and_then(|m| m.modified()).ok();
                let mut out = File::create(dest).map_err(dest_err)?;
                let mut w = Observed {
                    inner: &mut out,
                    offset: 0,
                    on_data: &mut *on_data,
                };
                let n = copy_local(&mut src, &mut w).map_err(|e| match e {
                    CopyError::Read(e) => unreachable(repo, url, io_detail(&e)),
                    CopyError::Write(e) => dest_err(e),
                })?;
                out.flush().map_err(dest_err)?;
                Ok(n)
            }
            Location::Invalid(detail) => Err(unreachable(repo, url, detail)),
            Location::Http => {
                let mut file: Option<File> = None;
                self.with_retries(repo, url, || {
                    let (mut resp, declared) = self.request(url)?;
                    *modified = resp
                        .headers()
                        .get(ureq::http::header::LAST_MODIFIED)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| httpdate::parse_http_date(v).ok());
                    let out = match &mut file {
                        Some(f) => {
                            // An earlier attempt wrote part of the body: start over.
                            f.set_len(0)
                                .and_then(|()| f.rewind())
                                .map_err(|e| Failure::Local(dest_err(e)))?;
                            f
                        }
                        None => file
                            .insert(File::create(dest).map_err(|e| Failure::Local(dest_err(e)))?),
                    };
                    let mut w = Observed {
                        inner: std::io::BufWriter::with_capacity(COPY_BUF, &*out),
                        offset: 0,
                        on_data: &mut *on_data,
                    };
                    let n = copy_body(&mut resp, &mut w, |e| Failure::Local(dest_err(e)))?;
                    w.flush().map_err(|e| Failure::Local(dest_err(e)))?;
                    check_length(n, declared)?;
                    Ok(n)
                })
            }
        }
    }

    /// Runs `attempt` until it succeeds, fails permanently, or the backoff schedule runs out.
    fn with_retries<T>(
        &self,
        repo: &str,
        url: &str,
        mut attempt: impl FnMut() -> Result<T, Failure>,
    ) -> Result<T, RepoError> {
        let mut pauses = self.backoff.iter();
        let mut attempts = 1;
        loop {
            match attempt() {
                Ok(v) => return Ok(v),
                Err(Failure::Local(e)) => return Err(e),
                Err(Failure::Permanent(d)) => return Err(unreachable(repo, url, d)),
                Err(Failure::Transient(d)) => match pauses.next() {
                    Some(pause) => {
                        tracing::warn!(repo, url, "{d}; retrying in {pause:?}");
                        std::thread::sleep(*pause);
                        attempts += 1;
                    }
                    None if attempts == 1 => return Err(unreachable(repo, url, d)),
                    None => {
                        return Err(unreachable(
                            repo,
                            url,
                            format!("{d} (after {attempts} attempts)"),
                        ));
                    }
                },
            }
        }
    }

    /// Sends the GET and classifies the status; returns the response and its Content-Length.
    fn request(
        &self,
        url: &str,
    ) -> Result<(ureq::http::Response<ureq::Body>, Option<u64>), Failure> {
        let resp = self.agent().get(url).call().map_err(call_failure)?;
        let status = resp.status();
        if !status.is_success() {
            let detail = match status.canonical_reason() {
                Some(reason) => format!("HTTP {} {reason}", status.as_u16()),
                None => format!("HTTP {}", status.as_u16()),
            };
            let code = status.as_u16();
            // 408 Request Timeout and 429 Too Many Requests are the 4xx that can pass.
            return Err(if status.is_server_error() || code == 429 || code == 408 {
                Failure::Transient(detail)
            } else {
                Failure::Permanent(detail)
            });
        }
        let declared = resp
            .headers()
            .get(ureq::http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse().ok());
        Ok((resp, declared))
    }
}

/// Roots for TLS: the system store when it has any certificate (corporate CAs live there),
/// else the webpki roots compiled into ureq, so a minimal container without ca-certificates
/// can still reach public mirrors.
fn root_certs() -> ureq::tls::RootCerts {
    let found = rustls_native_certs::load_native_certs();
    for e in &found.errors {
        tracing::debug!("system certificate store: {e}");
    }
    if found.certs.is_empty() {
        tracing::debug!("no system CA certificates found; using the bundled webpki roots");
        return ureq::tls::RootCerts::WebPki;
    }
    let certs: Vec<_> = found
        .certs
        .iter()
        .map(|c| ureq::tls::Certificate::from_der(c.as_ref()).to_owned())
        .collect();
    ureq::tls::RootCerts::new_with_certs(&certs)
}

/// Turns a ureq error from sending a request into a user-facing, classified failure.
fn call_failure(e: ureq::Error) -> Failure {
    use ureq::Error as E;
    match e {
        E::Io(io) => io_failure(&io),
        E::Timeout(t) => Failure::Transient(format!("timed out ({t})")),
        E::HostNotFound => Failure::Transient("host not found (DNS lookup failed)".into()),
        E::ConnectionFailed => Failure::Transient("connection failed".into()),
        E::BadUri(m) => Failure::Permanent(format!("bad URL: {m}")),
        E::TooManyRedirects => Failure::Permanent("too many redirects".into()),
        E::InvalidProxyUrl => Failure::Permanent(
            "invalid proxy URL in the environment (HTTPS_PROXY/HTTP_PROXY/ALL_PROXY)".into(),
        ),
        // A certificate the system does not trust stays untrusted on the next attempt.
        E::Tls(m) => Failure::Permanent(format!("TLS error: {m}")),
        E::Rustls(r) => Failure::Permanent(format!("TLS error: {r}")),
        other => Failure::Transient(other.to_string()),
    }
}

/// Connection-level I/O errors, in words; all are worth another attempt except TLS
/// rejections that rustls reports through io::Error.
fn io_failure(e: &std::io::Error) -> Failure {
    use std::io::ErrorKind as K;
    let detail = match e.kind() {
        K::ConnectionRefused => "connection refused".to_string(),
        K::ConnectionReset => "connection reset by the server".to_string(),
        K::ConnectionAborted => "connection aborted".to_string(),
        K::TimedOut => "timed out".to_string(),
        K::UnexpectedEof => "connection closed before the response was complete".to_string(),
        K::InvalidData if e.get_ref().is_some_and(|inner| inner.is::<rustls::Error>()) => {
            return Failure::Permanent(format!("TLS error: {e}"));
        }
        _ => e.to_string(),
    };
    Failure::Transient(detail)
}

/// Copies a response body into `out`. Read errors are transient (the connection dropped);
/// write errors go through `on_write`.
fn copy_body(
    resp: &mut ureq::http::Response<ureq::Body>,
    out: &mut impl Write,
    on_write: impl Fn(std::io::Error) -> Failure,
) -> Result<u64, Failure> {
    // `as_reader` has no size limit (unlike `read_to_vec`'s 10 MB), which primary.xml needs.
    let mut reader = resp.body_mut().as_reader();
    let mut buf = vec![0u8; COPY_BUF];
    let mut total = 0u64;
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                let why = match io_failure(&e) {
                    Failure::Transient(d) | Failure::Permanent(d) => d,
                    Failure::Local(_) => e.to_string(),
                };
                return Err(Failure::Transient(format!(
                    "download interrupted after {total} bytes: {why}"
                )));
            }
        };
        out.write_all(&buf[..n]).map_err(&on_write)?;
        total += n as u64;
    }
}

/// A body shorter than its Content-Length is a dropped connection, worth retrying.
fn check_length(got: u64, declared: Option<u64>) -> Result<(), Failure> {
    match declared {
        Some(n) if n != got => Err(Failure::Transient(format!(
            "got {got} of {n} bytes (connection dropped?)"
        ))),
        _ => Ok(()),
    }
}

/// A body that refuses to grow past `max` bytes.
struct Capped {
    body: Vec<u8>,
    max: u64,
}

impl Write for Capped {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.body.len() as u64 + buf.len() as u64 > self.max {
            return Err(std::io::Error::other("body over its size limit"));
        }
        self.body.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Shows every chunk to `on_data` before passing it on.
struct Observed<'a, W> {
    inner: W,
    offset: u64,
    on_data: &'a mut dyn FnMut(u64, &[u8]) -> std::io::Result<()>,
}

impl<W: Write> Write for Observed<'_, W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        (self.on_data)(self.offset, buf)?;
        self.inner.write_all(buf)?;
        self.offset += buf.len() as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

enum CopyError {
    Read(std::io::Error),
    Write(std::io::Error),
}

/// Like `io::copy`, but tells a source error from a destination error.
fn copy_local(src: &mut impl Read, out: &mut impl Write) -> Result<u64, CopyError> {
    let mut buf = vec![0u8; COPY_BUF];
    let mut total = 0u64;
    loop {
        let n = match src.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(CopyError::Read(e)),
        };
        out.write_all(&buf[..n]).map_err(CopyError::Write)?;
        total += n as u64;
    }
}

fn unreachable(repo: &str, url: &str, detail: String) -> RepoError {
    RepoError::Unreachable {
        repo: repo.into(),
        url: url.into(),
        detail,
    }
}

fn io_detail(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file".into(),
        std::io::ErrorKind::PermissionDenied => "permission denied".into(),
        std::io::ErrorKind::IsADirectory => "is a directory, not a file".into(),
        _ => e.to_string(),
    }
}

/// Where a URL points, as far as fetching is concerned.
enum Location {
    Local(PathBuf),
    Http,
    Invalid(String),
}

fn classify(url: &str) -> Location {
    if url.starts_with('/') {
        return Location::Local(PathBuf::from(url));
    }
    let Some((scheme, _)) = split_scheme(url) else {
        return Location::Invalid(
            "not an absolute path or a URL (expected /path, file://, http:// or https://)".into(),
        );
    };
    match scheme.to_ascii_lowercase().as_str() {
        "http" | "https" => Location::Http,
        // The url crate decodes %20 and friends and accepts file://localhost/.
        "file" => match url::Url::parse(url)
            .ok()
            .and_then(|u| u.to_file_path().ok())
        {
            Some(p) => Location::Local(p),
            None => {
                Location::Invalid("not a local file URL (expected file:///absolute/path)".into())
            }
        },
        other => Location::Invalid(format!(
            "unsupported URL scheme `{other}` (use http, https, file or an absolute path)"
        )),
    }
}

/// `("https", "//host/x")` for `https://host/x`; `None` when `s` does not start with a scheme.
pub(crate) fn split_scheme(s: &str) -> Option<(&str, &str)> {
    let (scheme, rest) = s.split_once(':')?;
    let mut chars = scheme.chars();
    let valid = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    (valid && rest.starts_with("//")).then_some((scheme, rest))
}

/// `base` (an http(s) URL, `file://` URL or absolute path, with or without trailing slash)
/// joined with a relative `href` such as `repodata/repomd.xml`.
///
/// Like dnf (librepo's path concatenation) a leading `/` on `href` does not make it
/// host-absolute: repodata hrefs are always relative to the repo. An `href` that is itself a
/// URL (a package's `xml:base` mirror) is returned as is. A query string on an http(s) base
/// (token-authenticated repos) stays at the end, after the joined path.
pub fn join_url(base: &str, href: &str) -> String {
    if base.is_empty() || split_scheme(href).is_some() {
        return href.to_string();
    }
    let is_http = split_scheme(base)
        .is_some_and(|(s, _)| s.eq_ignore_ascii_case("http") || s.eq_ignore_ascii_case("https"));
    let (base, query) = match base.find('?') {
        Some(i) if is_http => base.split_at(i),
        _ => (base, ""),
    };
    let trimmed = base.trim_end_matches('/');
    // "/" and "file:///" are roots: trimming them to "" or "file:" would lose the root.
    let base = if trimmed.is_empty() || trimmed.ends_with(':') {
        base
    } else {
        trimmed
    };
    let sep = if base.ends_with('/') { "" } else { "/" };
    format!("{base}{sep}{}{query}", href.trim_start_matches('/'))
}

#[cfg(test)]
#[path = "fetch_tests.rs"]
pub(crate) mod tests;
