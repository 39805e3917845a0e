//! Tests of fetch.rs, and the loopback HTTP server other modules' tests use (kept apart:
//! fetch.rs was past 800 lines with them).

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
