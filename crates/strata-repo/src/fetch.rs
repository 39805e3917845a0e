//! Getting bytes from a repository location: `file://` URLs, absolute paths, and
//! `http(s)://` with retries on transient failures.

use crate::RepoError;
use std::io::Read;
use std::path::Path;
use std::sync::OnceLock;
use std::time::Duration;

/// Fetches URLs; one per cache, shared by every repo load (the HTTP agent pools connections).
pub(crate) struct Fetcher {
    agent: OnceLock<ureq::Agent>,
    /// Pause before each retry; the number of retries is its length.
    pub(crate) backoff: Vec<Duration>,
}

/// Whether a failed attempt is worth repeating.
enum Failure {
    Transient(String),
    Permanent(String),
}

impl Fetcher {
    pub(crate) fn new() -> Fetcher {
        Fetcher { agent: OnceLock::new(), backoff: vec![Duration::from_millis(200), Duration::from_millis(800)] }
    }

    fn agent(&self) -> &ureq::Agent {
        self.agent.get_or_init(|| {
            ureq::Agent::new_with_config(
                ureq::config::Config::builder()
                    .timeout_connect(Some(Duration::from_secs(30)))
                    .timeout_recv_body(Some(Duration::from_secs(300)))
                    .http_status_as_error(false)
                    .user_agent(concat!("strata/", env!("CARGO_PKG_VERSION")))
                    .build(),
            )
        })
    }

    /// The whole body of `url`.
    pub(crate) fn get(&self, repo: &str, url: &str) -> Result<Vec<u8>, RepoError> {
        if let Some(path) = local_path(url) {
            return std::fs::read(path).map_err(|e| unreachable(repo, url, io_detail(&e)));
        }
        let mut attempt = 0;
        loop {
            match self.try_http(url) {
                Ok(body) => return Ok(body),
                Err(Failure::Permanent(d)) => return Err(unreachable(repo, url, d)),
                Err(Failure::Transient(d)) => match self.backoff.get(attempt) {
                    Some(pause) => {
                        tracing::warn!(repo, url, "{d}; retrying in {pause:?}");
                        std::thread::sleep(*pause);
                        attempt += 1;
                    }
                    None => {
                        return Err(unreachable(repo, url, format!("{d} (after {} attempts)", attempt + 1)))
                    }
                },
            }
        }
    }

    fn try_http(&self, url: &str) -> Result<Vec<u8>, Failure> {
        let mut resp = self.agent().get(url).call().map_err(|e| match e {
            ureq::Error::BadUri(m) => Failure::Permanent(format!("bad URL: {m}")),
            other => Failure::Transient(other.to_string()),
        })?;
        let status = resp.status();
        if !status.is_success() {
            let detail = format!("HTTP {status}");
            return Err(if status.is_server_error() || status.as_u16() == 429 || status.as_u16() == 408 {
                Failure::Transient(detail)
            } else {
                Failure::Permanent(detail)
            });
        }
        let expected: Option<u64> = resp
            .headers()
            .get("content-length")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok());
        let mut body = Vec::with_capacity(expected.unwrap_or(0).min(1 << 30) as usize);
        resp.body_mut()
            .as_reader()
            .read_to_end(&mut body)
            .map_err(|e| Failure::Transient(format!("download interrupted: {e}")))?;
        match expected {
            Some(n) if n != body.len() as u64 => {
                Err(Failure::Transient(format!("got {} of {n} bytes (connection dropped?)", body.len())))
            }
            _ => Ok(body),
        }
    }
}

fn unreachable(repo: &str, url: &str, detail: String) -> RepoError {
    RepoError::Unreachable { repo: repo.into(), url: url.into(), detail }
}

fn io_detail(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file".into(),
        std::io::ErrorKind::PermissionDenied => "permission denied".into(),
        _ => e.to_string(),
    }
}

/// The path behind a `file://` URL or an absolute path; `None` for network URLs.
pub(crate) fn local_path(url: &str) -> Option<&Path> {
    if let Some(rest) = url.strip_prefix("file://") {
        return Some(Path::new(rest));
    }
    url.starts_with('/').then(|| Path::new(url))
}

/// `base` joined with a relative `href` (`repodata/repomd.xml`, `Packages/x.rpm`).
pub(crate) fn join_url(base: &str, href: &str) -> String {
    if href.contains("://") || base.is_empty() {
        return href.to_string();
    }
    format!("{}/{}", base.trim_end_matches('/'), href.trim_start_matches('/'))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::io::{BufRead, BufReader, Write};
    use std::net::TcpListener;

    /// A loopback HTTP server answering each connection with the next scripted response
    /// (status, body, declared length); it stops after the script.
    pub(crate) fn serve(script: Vec<(u16, Vec<u8>, Option<usize>)>) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            for (status, body, declared) in script {
                let Ok((stream, _)) = listener.accept() else { return };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                    line.clear();
                }
                let mut out = stream;
                let head = format!(
                    "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    declared.unwrap_or(body.len())
                );
                let _ = out.write_all(head.as_bytes());
                let _ = out.write_all(&body);
            }
        });
        format!("http://{addr}")
    }

    fn fast() -> Fetcher {
        let mut f = Fetcher::new();
        f.backoff = vec![Duration::from_millis(1), Duration::from_millis(1)];
        f
    }

    #[test]
    fn http_success_and_retry() {
        let base = serve(vec![(200, b"hello".to_vec(), None)]);
        assert_eq!(fast().get("r", &format!("{base}/x")).unwrap(), b"hello");
        let base = serve(vec![(500, vec![], None), (200, b"ok".to_vec(), None)]);
        assert_eq!(fast().get("r", &format!("{base}/x")).unwrap(), b"ok");
        // A body cut short of its Content-Length is retried.
        let base = serve(vec![(200, b"par".to_vec(), Some(10)), (200, b"full".to_vec(), None)]);
        assert_eq!(fast().get("r", &format!("{base}/x")).unwrap(), b"full");
    }

    #[test]
    fn http_failures_name_the_url() {
        let base = serve(vec![(404, vec![], None)]);
        let e = fast().get("base", &format!("{base}/repodata/repomd.xml")).unwrap_err().to_string();
        assert!(e.contains("404") && e.contains("repodata/repomd.xml") && e.contains("`base`"), "{e}");
        let base = serve(vec![(503, vec![], None), (503, vec![], None), (503, vec![], None)]);
        let e = fast().get("r", &format!("{base}/x")).unwrap_err().to_string();
        assert!(e.contains("503") && e.contains("3 attempts"), "{e}");
        // A port nobody listens on.
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let url = format!("http://127.0.0.1:{port}/repo/repodata/repomd.xml");
        let e = fast().get("r", &url).unwrap_err().to_string();
        assert!(e.contains(&url), "{e}");
    }

    #[test]
    fn local_files() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        std::fs::write(&p, b"data").unwrap();
        let f = fast();
        assert_eq!(f.get("r", p.to_str().unwrap()).unwrap(), b"data");
        assert_eq!(f.get("r", &format!("file://{}", p.display())).unwrap(), b"data");
        let e = f.get("r", "/nonexistent/strata/repomd.xml").unwrap_err().to_string();
        assert!(e.contains("no such file") && e.contains("/nonexistent/strata/repomd.xml"), "{e}");
    }

    #[test]
    fn joining() {
        assert_eq!(join_url("http://h/repo/", "repodata/repomd.xml"), "http://h/repo/repodata/repomd.xml");
        assert_eq!(join_url("http://h/repo", "repodata/repomd.xml"), "http://h/repo/repodata/repomd.xml");
        assert_eq!(join_url("/srv/repo", "Packages/a.rpm"), "/srv/repo/Packages/a.rpm");
        assert_eq!(join_url("file:///srv/repo/", "x"), "file:///srv/repo/x");
        assert_eq!(join_url("http://h/", "https://cdn/x.rpm"), "https://cdn/x.rpm");
    }
}
