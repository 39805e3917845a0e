//! Real files from the corpus, served from disk and by a small loopback HTTP server that
//! can misbehave on purpose.

use super::*;
use sha2::Digest as _;
use std::io::Write;
use std::net::TcpListener;
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;

fn corpus_rpms(n: usize) -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus/out/repos/base/Packages");
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir).expect("corpus").map(|e| e.unwrap().path()).collect();
    v.sort_by_key(|p| std::fs::metadata(p).unwrap().len());
    v.truncate(n);
    v
}

fn job_for(path: &Path, url: String) -> FetchJob {
    let bytes = std::fs::read(path).unwrap();
    FetchJob {
        name: path.file_name().unwrap().to_string_lossy().into_owned(),
        repo: "test".into(),
        url,
        checksum: Checksum { kind: "sha256".into(), value: hex::encode(sha2::Sha256::digest(&bytes)) },
        size: bytes.len() as u64,
    }
}

/// Serves `body` for every request; the first `bad` requests get `bad_body` instead.
fn serve(body: Vec<u8>, bad: usize, bad_body: Vec<u8>) -> (String, Arc<AtomicUsize>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/x.rpm", l.local_addr().unwrap());
    let count = Arc::new(AtomicUsize::new(0));
    let c = count.clone();
    std::thread::spawn(move || {
        for stream in l.incoming() {
            let Ok(mut s) = stream else { continue };
            let mut req = [0u8; 4096];
            let _ = std::io::Read::read(&mut s, &mut req);
            let n = c.fetch_add(1, Ordering::SeqCst);
            let b = if n < bad { &bad_body } else { &body };
            // Content-Length of the real body: a short bad body is a cut-off transfer.
            let _ = write!(s, "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", if n < bad && bad_body.len() < body.len() { body.len() } else { b.len() });
            let _ = s.write_all(b);
        }
    });
    (url, count)
}

#[test]
fn fetches_in_parallel_verifies_and_reuses_the_cache() {
    let cache = tempfile::tempdir().unwrap();
    let rpms = corpus_rpms(12);
    let jobs: Vec<FetchJob> = rpms.iter().map(|p| job_for(p, p.display().to_string())).collect();
    let c = RpmCache::open(cache.path());
    let got = c.fetch_all(&jobs, 4, &NoProgress).unwrap();
    assert_eq!(got.len(), 12);
    for j in &jobs {
        assert_eq!(std::fs::read(&got[&j.checksum.value]).unwrap(), std::fs::read(&j.url).unwrap());
    }
    struct Count(AtomicUsize);
    impl Progress for Count {
        fn done(&self, _: &str, _: u64, downloaded: bool) {
            if downloaded {
                self.0.fetch_add(1, Ordering::SeqCst);
            }
        }
    }
    let count = Count(AtomicUsize::new(0));
    c.fetch_all(&jobs, 4, &count).unwrap();
    assert_eq!(count.0.load(Ordering::SeqCst), 0, "second run: all cache hits");
}

#[test]
fn corrupt_source_is_refused_and_never_cached() {
    let cache = tempfile::tempdir().unwrap();
    let src = tempfile::tempdir().unwrap();
    let rpm = &corpus_rpms(1)[0];
    let mut job = job_for(rpm, String::new());
    let mut bytes = std::fs::read(rpm).unwrap();
    bytes[200] ^= 0xff;
    let bad = src.path().join("bad.rpm");
    std::fs::write(&bad, &bytes).unwrap();
    job.url = format!("file://{}", bad.display());
    let c = RpmCache::open(cache.path());
    let err = c.fetch_all(std::slice::from_ref(&job), 2, &NoProgress).unwrap_err().to_string();
    assert!(err.contains("checksum mismatch") && err.contains("bad.rpm") && err.contains(&job.name), "{err}");
    assert!(!c.path_of(&job.checksum).exists());
    let leftovers = std::fs::read_dir(cache.path().join("sha256")).unwrap().count();
    assert_eq!(leftovers, 0, "no temp file left behind");
    // Truncated: named as such.
    std::fs::write(&bad, &std::fs::read(rpm).unwrap()[..1000]).unwrap();
    let err = c.fetch_all(std::slice::from_ref(&job), 2, &NoProgress).unwrap_err().to_string();
    assert!(err.contains("truncated"), "{err}");
}

#[test]
fn http_cut_off_is_retried_then_succeeds_or_is_refused() {
    let rpm = &corpus_rpms(1)[0];
    let body = std::fs::read(rpm).unwrap();
    // Two cut-off transfers, then a good one: retried to success.
    let (url, count) = serve(body.clone(), 2, body[..body.len() / 2].to_vec());
    let job = job_for(rpm, url);
    let cache = tempfile::tempdir().unwrap();
    let c = RpmCache::open(cache.path());
    c.fetch_all(std::slice::from_ref(&job), 1, &NoProgress).unwrap();
    assert!(count.load(Ordering::SeqCst) >= 3);
    assert_eq!(std::fs::read(c.path_of(&job.checksum)).unwrap(), body);
    // Always corrupt (same length, flipped byte): refused after the attempts, nothing cached.
    let mut flipped = body.clone();
    flipped[300] ^= 1;
    let (url, _) = serve(flipped.clone(), 0, Vec::new());
    let job2 = FetchJob { url: url.clone(), ..job.clone() };
    let cache2 = tempfile::tempdir().unwrap();
    let c2 = RpmCache::open(cache2.path());
    let err = c2.fetch_all(std::slice::from_ref(&job2), 1, &NoProgress).unwrap_err().to_string();
    assert!(err.contains(&url) && err.contains("checksum mismatch"), "{err}");
    assert!(!c2.path_of(&job.checksum).exists());
}

#[test]
fn unreachable_source_names_the_url_and_all_failures_are_listed() {
    let rpms = corpus_rpms(2);
    let jobs: Vec<FetchJob> = rpms.iter().map(|p| job_for(p, format!("/nonexistent/{}", p.file_name().unwrap().to_string_lossy()))).collect();
    let cache = tempfile::tempdir().unwrap();
    let err = RpmCache::open(cache.path()).fetch_all(&jobs, 2, &NoProgress).unwrap_err().to_string();
    for j in &jobs {
        assert!(err.contains(&j.url), "{err}");
    }
}
