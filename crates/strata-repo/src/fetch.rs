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
pub(crate) mod tests {
    use super::*;
    use std::io::{BufRead, BufReader};
    use std::net::TcpListener;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    /// One scripted answer of the test server.
    pub(crate) struct Reply {
        pub status: u16,
        pub body: Vec<u8>,
        /// Content-Length to declare when it should differ from the body (a cut-off body).
        pub declared: Option<usize>,
    }

    pub(crate) fn reply(status: u16, body: &[u8]) -> Reply {
        Reply {
            status,
            body: body.to_vec(),
            declared: None,
        }
    }

    /// A loopback HTTP/1.1 server answering each connection with the next scripted reply,
    /// then closing it; it stops after the script. Returns its base URL and a counter of the
    /// requests it has read, so tests can tell "retried" from "failed at once".
    pub(crate) fn serve(script: Vec<Reply>) -> (String, Arc<AtomicUsize>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let hits = Arc::new(AtomicUsize::new(0));
        let counter = hits.clone();
        std::thread::spawn(move || {
            for r in script {
                let Ok((stream, _)) = listener.accept() else {
                    return;
                };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                // Request line and headers, up to the blank line.
                while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                    line.clear();
                }
                counter.fetch_add(1, Ordering::SeqCst);
                let mut out = stream;
                let head = format!(
                    "HTTP/1.1 {} X\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    r.status,
                    r.declared.unwrap_or(r.body.len())
                );
                let _ = out.write_all(head.as_bytes());
                let _ = out.write_all(&r.body);
            }
        });
        (format!("http://{addr}"), hits)
    }

    /// A Fetcher with the production retry count but millisecond pauses.
    pub(crate) fn fast() -> Fetcher {
        let mut f = Fetcher::new();
        f.backoff = vec![Duration::from_millis(1), Duration::from_millis(1)];
        f
    }

    /// A URL on a loopback port nobody listens on.
    pub(crate) fn refused_url(path: &str) -> String {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        format!("http://127.0.0.1:{port}{path}")
    }

    fn hits(c: &AtomicUsize) -> usize {
        c.load(Ordering::SeqCst)
    }

    #[test]
    fn fetcher_is_shareable() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Fetcher>();
        assert_eq!(
            Fetcher::new().backoff,
            [Duration::from_millis(200), Duration::from_millis(800)]
        );
    }

    #[test]
    fn http_200() {
        let (base, n) = serve(vec![reply(200, b"hello")]);
        assert_eq!(fast().get("r", &format!("{base}/x")).unwrap(), b"hello");
        assert_eq!(hits(&n), 1);
    }

    #[test]
    fn http_500_then_200_is_retried() {
        let (base, n) = serve(vec![reply(500, b"oops"), reply(200, b"ok")]);
        assert_eq!(fast().get("r", &format!("{base}/x")).unwrap(), b"ok");
        assert_eq!(hits(&n), 2);
        let (base, n) = serve(vec![reply(429, b""), reply(503, b""), reply(200, b"third")]);
        assert_eq!(fast().get("r", &format!("{base}/x")).unwrap(), b"third");
        assert_eq!(hits(&n), 3);
    }

    #[test]
    fn http_404_fails_at_once() {
        let (base, n) = serve(vec![
            reply(404, b"not here"),
            reply(200, b"would be a retry"),
        ]);
        let url = format!("{base}/repo/repodata/repomd.xml");
        let e = fast().get("base", &url).unwrap_err();
        let RepoError::Unreachable {
            repo,
            url: u,
            detail,
        } = &e
        else {
            panic!("{e:?}")
        };
        assert_eq!(
            (repo.as_str(), u.as_str(), detail.as_str()),
            ("base", url.as_str(), "HTTP 404 Not Found")
        );
        let msg = e.to_string();
        assert!(
            msg.contains("404") && msg.contains(&url) && msg.contains("`base`"),
            "{msg}"
        );
        assert_eq!(hits(&n), 1, "a 404 must not be retried");
        let (base, n) = serve(vec![reply(403, b""), reply(200, b"")]);
        let e = fast()
            .get("r", &format!("{base}/x"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("HTTP 403 Forbidden"), "{e}");
        assert_eq!(hits(&n), 1);
    }

    #[test]
    fn persistent_5xx_gives_up_after_three_attempts() {
        let (base, n) = serve(vec![
            reply(503, b""),
            reply(503, b""),
            reply(503, b""),
            reply(200, b"late"),
        ]);
        let e = fast()
            .get("r", &format!("{base}/x"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("HTTP 503 Service Unavailable") && e.contains("after 3 attempts"),
            "{e}"
        );
        assert_eq!(hits(&n), 3);
    }

    #[test]
    fn short_body_is_retried() {
        let cut = Reply {
            status: 200,
            body: b"par".to_vec(),
            declared: Some(10),
        };
        let (base, n) = serve(vec![cut, reply(200, b"full body!")]);
        assert_eq!(
            fast().get("r", &format!("{base}/x")).unwrap(),
            b"full body!"
        );
        assert_eq!(hits(&n), 2);
    }

    #[test]
    fn connection_refused_names_the_url() {
        let url = refused_url("/repo/repodata/repomd.xml");
        let e = fast().get("r", &url).unwrap_err().to_string();
        assert!(
            e.contains(&url) && e.contains("connection refused") && e.contains("3 attempts"),
            "{e}"
        );
    }

    #[test]
    fn local_files() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("my repo.xml");
        std::fs::write(&p, b"data").unwrap();
        let f = fast();
        assert_eq!(f.get("r", p.to_str().unwrap()).unwrap(), b"data");
        let file_url = url::Url::from_file_path(&p).unwrap().to_string();
        assert!(file_url.contains("%20"), "{file_url}");
        assert_eq!(f.get("r", &file_url).unwrap(), b"data");
        assert_eq!(
            f.get(
                "r",
                &format!("file://localhost{}", p.display()).replace(' ', "%20")
            )
            .unwrap(),
            b"data"
        );
        let e = f
            .get("r", "/nonexistent/strata/repomd.xml")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("no such file") && e.contains("/nonexistent/strata/repomd.xml"),
            "{e}"
        );
        let e = f
            .get("r", "file:///nonexistent/strata/repomd.xml")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("no such file") && e.contains("file:///nonexistent"),
            "{e}"
        );
    }

    #[test]
    fn unusable_locations() {
        let f = fast();
        let e = f
            .get("r", "ftp://h/repo/repomd.xml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("unsupported URL scheme `ftp`"), "{e}");
        let e = f.get("r", "repo/repomd.xml").unwrap_err().to_string();
        assert!(e.contains("not an absolute path or a URL"), "{e}");
        let e = f.get("r", "file://otherhost/x").unwrap_err().to_string();
        assert!(e.contains("not a local file URL"), "{e}");
    }

    #[test]
    fn to_file_over_http_restarts_after_a_cut() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("primary.xml.gz");
        let cut = Reply {
            status: 200,
            body: b"0123456789abcdef".to_vec(),
            declared: Some(100),
        };
        let (base, n) = serve(vec![cut, reply(200, b"complete")]);
        assert_eq!(
            fast()
                .get_to_file("r", &format!("{base}/p"), &dest)
                .unwrap(),
            8
        );
        // Only the second body: the partial first one was discarded, not appended to.
        assert_eq!(std::fs::read(&dest).unwrap(), b"complete");
        assert_eq!(hits(&n), 2);
        // An existing file is truncated.
        let (base, _) = serve(vec![reply(200, b"new")]);
        assert_eq!(
            fast()
                .get_to_file("r", &format!("{base}/p"), &dest)
                .unwrap(),
            3
        );
        assert_eq!(std::fs::read(&dest).unwrap(), b"new");
    }

    #[test]
    fn download_shows_each_chunk_and_restarts_at_offset_zero() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("x.rpm");
        let cut = Reply {
            status: 200,
            body: b"0123".to_vec(),
            declared: Some(10),
        };
        let (base, _) = serve(vec![cut, reply(200, b"abcdefghij")]);
        let mut seen = Vec::new();
        let n = fast()
            .download("r", &format!("{base}/x"), &dest, &mut |off, chunk| {
                seen.push((off, chunk.to_vec()));
                Ok(())
            })
            .unwrap();
        assert_eq!(n, 10);
        assert_eq!(seen.first().unwrap(), &(0, b"0123".to_vec()));
        let restart = seen.iter().rposition(|(off, _)| *off == 0).unwrap();
        assert!(restart > 0, "the retry starts again at offset 0");
        let again: Vec<u8> = seen[restart..]
            .iter()
            .flat_map(|(_, c)| c.clone())
            .collect();
        assert_eq!(again, b"abcdefghij");

        // An error from the callback stops at once, without a retry.
        let (base, hits) = serve(vec![reply(200, b"abc"), reply(200, b"abc")]);
        let e = fast()
            .download("r", &format!("{base}/x"), &dest, &mut |_, _| {
                Err(std::io::Error::other("enough"))
            })
            .unwrap_err();
        assert!(
            matches!(&e, RepoError::Cache { path, .. } if *path == dest),
            "{e:?}"
        );
        assert_eq!(hits.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn to_file_404_creates_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("x.rpm");
        let (base, _) = serve(vec![reply(404, b"")]);
        let e = fast()
            .get_to_file("r", &format!("{base}/x.rpm"), &dest)
            .unwrap_err()
            .to_string();
        assert!(e.contains("404"), "{e}");
        assert!(!dest.exists());
    }

    #[test]
    fn to_file_local_and_errors() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src");
        let big: Vec<u8> = (0..200_000u32).map(|i| i as u8).collect();
        std::fs::write(&src, &big).unwrap();
        let dest = dir.path().join("dest");
        std::fs::write(&dest, vec![b'x'; 300_000]).unwrap();
        let f = fast();
        assert_eq!(
            f.get_to_file("r", src.to_str().unwrap(), &dest).unwrap(),
            big.len() as u64
        );
        assert_eq!(std::fs::read(&dest).unwrap(), big);
        let e = f
            .get_to_file("r", "/nonexistent/strata/x", &dest)
            .unwrap_err()
            .to_string();
        assert!(e.contains("no such file"), "{e}");
        // The destination's directory is missing: a cache error naming the path, not the mirror.
        let bad = dir.path().join("no/such/dir/x");
        let e = f.get_to_file("r", src.to_str().unwrap(), &bad).unwrap_err();
        assert!(
            matches!(&e, RepoError::Cache { path, .. } if *path == bad),
            "{e:?}"
        );
        let (base, _) = serve(vec![reply(200, b"body")]);
        let e = f.get_to_file("r", &format!("{base}/x"), &bad).unwrap_err();
        assert!(
            matches!(&e, RepoError::Cache { path, .. } if *path == bad),
            "{e:?}"
        );
    }

    #[test]
    fn joining() {
        let cases = [
            (
                "http://h/repo/",
                "repodata/repomd.xml",
                "http://h/repo/repodata/repomd.xml",
            ),
            (
                "http://h/repo",
                "repodata/repomd.xml",
                "http://h/repo/repodata/repomd.xml",
            ),
            (
                "http://h/repo//",
                "/repodata/repomd.xml",
                "http://h/repo/repodata/repomd.xml",
            ),
            ("https://h", "x", "https://h/x"),
            (
                "https://h/r?token=a/b",
                "repodata/repomd.xml",
                "https://h/r/repodata/repomd.xml?token=a/b",
            ),
            ("/srv/repo", "Packages/a.rpm", "/srv/repo/Packages/a.rpm"),
            ("/srv/repo/", "Packages/a.rpm", "/srv/repo/Packages/a.rpm"),
            ("/srv/what?", "x", "/srv/what?/x"),
            ("/", "repodata/repomd.xml", "/repodata/repomd.xml"),
            ("file:///srv/repo/", "x", "file:///srv/repo/x"),
            ("file:///srv/repo", "x", "file:///srv/repo/x"),
            ("file:///", "x", "file:///x"),
            ("http://h/", "https://cdn/x.rpm", "https://cdn/x.rpm"),
            ("", "repodata/repomd.xml", "repodata/repomd.xml"),
        ];
        for (base, href, want) in cases {
            assert_eq!(join_url(base, href), want, "join_url({base:?}, {href:?})");
        }
    }
}
