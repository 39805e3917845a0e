//! Helpers shared by the integration tests: copies of the corpus repos and a loopback
//! HTTP server that serves a directory and can be told to fail.
#![allow(dead_code)] // each test binary uses a different subset

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// The corpus repo `name` (`base` or `updates`), read-only (strata-corpus finds the corpus).
pub fn corpus_repo(name: &str) -> PathBuf {
    strata_corpus::repo(name)
}

/// How many packages the corpus repo `name` holds, from the corpus's manifest.
pub fn corpus_count(name: &str) -> usize {
    strata_corpus::manifest().count(name)
}

/// The `<revision>` of a repo's repomd.xml, read as text (not with the parser under test).
pub fn repomd_revision(repo: &Path) -> String {
    let text = std::fs::read_to_string(repo.join("repodata/repomd.xml")).unwrap();
    let start = text.find("<revision>").expect("repomd.xml has a revision") + "<revision>".len();
    text[start..].split("</revision>").next().unwrap().to_string()
}

/// A writable copy of a corpus repo's `repodata/` (the RPMs are not needed) in `dir`.
pub fn copy_repodata(name: &str, dir: &Path) -> PathBuf {
    let src = corpus_repo(name).join("repodata");
    let dst = dir.join(name).join("repodata");
    std::fs::create_dir_all(&dst).unwrap();
    for e in std::fs::read_dir(&src).unwrap() {
        let e = e.unwrap();
        let to = dst.join(e.file_name());
        std::fs::copy(e.path(), &to).unwrap();
        let mut perm = std::fs::metadata(&to).unwrap().permissions();
        #[allow(clippy::permissions_set_readonly_false)]
        perm.set_readonly(false);
        std::fs::set_permissions(&to, perm).unwrap();
    }
    dir.join(name)
}

/// The repodata file of `kind` (`primary`, `filelists`, ...) in a repo copy.
pub fn data_file(repo: &Path, kind: &str) -> PathBuf {
    std::fs::read_dir(repo.join("repodata"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.file_name().unwrap().to_str().unwrap().contains(&format!("-{kind}.xml")))
        .unwrap_or_else(|| panic!("no {kind} in {}", repo.display()))
}

/// A loopback HTTP/1.1 server over a directory. `fail(path, n)` makes the next `n`
/// requests for `path` answer 500; every request is counted per path.
pub struct FileServer {
    pub url: String,
    failures: Arc<Mutex<HashMap<String, usize>>>,
    hits: Arc<Mutex<HashMap<String, usize>>>,
    stop: Arc<AtomicUsize>,
}

impl FileServer {
    pub fn start(root: &Path) -> FileServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let failures: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
        let hits: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
        let stop = Arc::new(AtomicUsize::new(0));
        let (root, f, h, s) = (root.to_path_buf(), failures.clone(), hits.clone(), stop.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if s.load(Ordering::SeqCst) != 0 {
                    return;
                }
                let Ok(stream) = stream else { continue };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut request = String::new();
                if reader.read_line(&mut request).is_err() {
                    continue;
                }
                let mut line = String::new();
                while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                    line.clear();
                }
                let path = request.split_whitespace().nth(1).unwrap_or("/").to_string();
                *h.lock().unwrap().entry(path.clone()).or_default() += 1;
                let fail = f.lock().unwrap().get_mut(&path).filter(|n| **n > 0).map(|n| *n -= 1).is_some();
                let (status, body) = if fail {
                    (500, b"oops".to_vec())
                } else {
                    match std::fs::read(root.join(path.trim_start_matches('/'))) {
                        Ok(b) => (200, b),
                        Err(_) => (404, b"not found".to_vec()),
                    }
                };
                let mut out = stream;
                let head =
                    format!("HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len());
                let _ = out.write_all(head.as_bytes());
                let _ = out.write_all(&body);
            }
        });
        FileServer { url, failures, hits, stop }
    }

    pub fn fail(&self, path: &str, times: usize) {
        self.failures.lock().unwrap().insert(path.to_string(), times);
    }

    pub fn hits(&self, path: &str) -> usize {
        self.hits.lock().unwrap().get(path).copied().unwrap_or(0)
    }

    pub fn total_hits(&self) -> usize {
        self.hits.lock().unwrap().values().sum()
    }
}

impl Drop for FileServer {
    fn drop(&mut self) {
        self.stop.store(1, Ordering::SeqCst);
        // Wake the accept loop so the thread sees the flag.
        let _ = std::net::TcpStream::connect(self.url.trim_start_matches("http://"));
    }
}

/// A URL on which nothing listens.
pub fn dead_url() -> String {
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    format!("http://127.0.0.1:{port}/repo")
}

/// Every file below `dir`, relative, sorted.
pub fn tree(dir: &Path) -> Vec<String> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
        let Ok(rd) = std::fs::read_dir(dir) else { return };
        for e in rd {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(base, &p, out);
            } else {
                out.push(p.strip_prefix(base).unwrap().display().to_string());
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}
