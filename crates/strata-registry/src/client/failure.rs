//! Classifying what went wrong (worth another attempt or not) and the retry loop.

use super::Client;
use crate::Error;
use serde::Deserialize;
use std::io::Read;
use std::time::Duration;
use ureq::http::Response;

/// One attempt's failure.
#[derive(Debug)]
pub(crate) enum Failure {
    /// Another attempt may succeed: connection errors, timeouts, 408/429/5xx, a body cut
    /// short. `retry_after` is the registry's own `Retry-After`.
    Transient {
        error: Box<Error>,
        retry_after: Option<Duration>,
    },
    /// The same request would fail the same way.
    Fatal(Box<Error>),
}

impl From<Error> for Failure {
    fn from(e: Error) -> Failure {
        Failure::fatal(e)
    }
}

impl Failure {
    pub(crate) fn transient(error: Error) -> Failure {
        Failure::Transient {
            error: Box::new(error),
            retry_after: None,
        }
    }

    pub(crate) fn fatal(error: Error) -> Failure {
        Failure::Fatal(Box::new(error))
    }
}

/// What a request was about, so a 404 can be told as "manifest unknown" or "blob unknown".
#[derive(Debug, Clone, Copy)]
pub(crate) enum Subject<'a> {
    Manifest(&'a str),
    Blob(&'a str),
    Other,
}

/// Names a request in errors: `GET https://reg/v2/x/manifests/1`, without the query (upload
/// URLs carry opaque state there).
pub(crate) fn describe(method: &str, url: &url::Url) -> String {
    let mut u = url.clone();
    u.set_query(None);
    format!("{method} {u}")
}

/// A failure from sending a request or reading a response (not an HTTP status).
pub(crate) fn transport(registry: &str, request: &str, e: ureq::Error) -> Failure {
    use ureq::Error as E;
    let (detail, transient) = match e {
        E::Io(io) => return io_failure(registry, request, &io, "request failed"),
        E::Timeout(t) => (format!("timed out ({t})"), true),
        E::HostNotFound => ("host not found (DNS lookup failed)".to_string(), true),
        E::ConnectionFailed => ("connection failed".to_string(), true),
        E::BadUri(m) => (format!("bad URL: {m}"), false),
        E::TooManyRedirects => ("too many redirects".to_string(), false),
        // A certificate the system does not trust stays untrusted on the next attempt.
        E::Tls(m) => (format!("TLS error: {m}"), false),
        E::Rustls(r) => (format!("TLS error: {r}"), false),
        other => (other.to_string(), true),
    };
    let error = http_error(registry, request, None, detail);
    if transient {
        Failure::transient(error)
    } else {
        Failure::fatal(error)
    }
}

/// I/O errors on a connection, in words; all transient except TLS rejections.
pub(crate) fn io_failure(
    registry: &str,
    request: &str,
    e: &std::io::Error,
    doing: &str,
) -> Failure {
    use std::io::ErrorKind as K;
    let detail = match e.kind() {
        K::ConnectionRefused => "connection refused".to_string(),
        K::ConnectionReset => "connection reset by the registry".to_string(),
        K::ConnectionAborted => "connection aborted".to_string(),
        K::TimedOut => "timed out".to_string(),
        K::UnexpectedEof => "connection closed before the response was complete".to_string(),
        K::InvalidData if e.get_ref().is_some_and(|i| i.is::<rustls::Error>()) => {
            return Failure::fatal(http_error(
                registry,
                request,
                None,
                format!("TLS error: {e}"),
            ));
        }
        _ => e.to_string(),
    };
    Failure::transient(http_error(
        registry,
        request,
        None,
        format!("{doing}: {detail}"),
    ))
}

pub(crate) fn http_error(
    registry: &str,
    request: &str,
    status: Option<u16>,
    detail: String,
) -> Error {
    Error::Http {
        registry: registry.to_string(),
        request: request.to_string(),
        status,
        detail,
    }
}

/// The registry's error document, `{"errors":[{"code","message","detail"}]}`.
#[derive(Deserialize)]
struct ErrorDoc {
    errors: Vec<ErrorItem>,
}

#[derive(Deserialize)]
struct ErrorItem {
    #[serde(default)]
    code: String,
    #[serde(default)]
    message: String,
}

/// The error codes and a readable summary of an error response's body.
pub(crate) fn error_body(resp: &mut Response<ureq::Body>) -> (Vec<String>, String) {
    let status = resp.status();
    let mut body = Vec::new();
    // An error body is small; a misbehaving server's HTML page is cut, not read whole.
    let _ = resp
        .body_mut()
        .as_reader()
        .take(64 * 1024)
        .read_to_end(&mut body);
    let reason = match status.canonical_reason() {
        Some(r) => format!("HTTP {} {r}", status.as_u16()),
        None => format!("HTTP {}", status.as_u16()),
    };
    if let Ok(doc) = serde_json::from_slice::<ErrorDoc>(&body) {
        if !doc.errors.is_empty() {
            let codes = doc.errors.iter().map(|e| e.code.clone()).collect();
            let text = doc
                .errors
                .iter()
                .map(|e| match (e.code.is_empty(), e.message.is_empty()) {
                    (false, false) => format!("{}: {}", e.code, e.message),
                    (false, true) => e.code.clone(),
                    _ => e.message.clone(),
                })
                .collect::<Vec<_>>()
                .join("; ");
            return (codes, format!("{reason}: {text}"));
        }
    }
    let text = String::from_utf8_lossy(&body);
    let text = text.trim();
    if text.is_empty() || text.starts_with('<') {
        (Vec::new(), reason)
    } else {
        let cut: String = text.chars().take(300).collect();
        (Vec::new(), format!("{reason}: {cut}"))
    }
}

/// `Retry-After` in seconds (the HTTP-date form is rare from registries; the backoff
/// schedule covers it).
pub(crate) fn retry_after(resp: &Response<ureq::Body>) -> Option<Duration> {
    resp.headers()
        .get("retry-after")?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs)
}

impl Client {
    /// Runs `attempt` until it succeeds, fails for good, or the backoff schedule runs out.
    /// `on_retry` hears about each retry (progress reporting); nothing is printed.
    pub(crate) fn with_retries<T>(
        &self,
        mut attempt: impl FnMut() -> Result<T, Failure>,
        mut on_retry: impl FnMut(u32, &Error),
    ) -> Result<T, Error> {
        let policy = &self.config().retry;
        let mut pauses = policy.backoff.iter();
        let mut attempts = 1u32;
        loop {
            match attempt() {
                Ok(v) => return Ok(v),
                // Reported as it is even after retries: it is not what the retries were about.
                Err(Failure::Fatal(e)) => return Err(*e),
                Err(Failure::Transient { error, retry_after }) => match pauses.next() {
                    Some(pause) => {
                        let wait = retry_after
                            .map_or(*pause, |r| r.min(policy.max_retry_after).max(*pause));
                        tracing::debug!("{error}; retrying in {wait:?}");
                        on_retry(attempts, &error);
                        std::thread::sleep(wait);
                        attempts += 1;
                    }
                    None if attempts == 1 => return Err(*error),
                    None => {
                        return Err(Error::GaveUp {
                            attempts,
                            source: error,
                        })
                    }
                },
            }
        }
    }
}
