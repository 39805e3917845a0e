//! A loopback HTTP server over a directory that misbehaves on request, and helpers to build
//! jobs from the corpus.
#![allow(dead_code)] // each test binary uses a different part

use sha2::{Digest, Sha256};
use std::collections::{HashMap, VecDeque};
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use strata_fetch::{FetchJob, Progress};
use strata_lock::Checksum;

/// The corpus repositories (`out/repos` of the corpus strata-corpus finds; read only: tests
/// never write there).
pub fn corpus() -> PathBuf {
    strata_corpus::dir().join("out/repos")
}

pub fn corpus_rpms() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(corpus().join("base/Packages"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "rpm"))
        .collect();
    v.sort();
    v
}

/// The `n` smallest corpus RPMs, for tests that need a few cheap packages.
pub fn small_rpms(n: usize) -> Vec<PathBuf> {
    let mut v = corpus_rpms();
    v.sort_by_key(|p| std::fs::metadata(p).unwrap().len());
    v.truncate(n);
    v
}

pub fn sha256_file(path: &Path) -> String {
    hex::encode(Sha256::digest(std::fs::read(path).unwrap()))
}

/// The job fetching `file` from `url`, with its true checksum and size.
pub fn job_for(file: &Path, url: String) -> FetchJob {
    FetchJob {
        name: file.file_stem().unwrap().to_string_lossy().into_owned(),
        repo: "base".into(),
        url,
        checksum: Checksum {
            kind: "sha256".into(),
            value: sha256_file(file),
        },
        size: std::fs::metadata(file).unwrap().len(),
        gpg_keys: None,
    }
}

/// Jobs for corpus `files` served by `server` (rooted at [`corpus`]).
pub fn http_jobs(server: &Server, files: &[PathBuf]) -> Vec<FetchJob> {
    files.iter().map(|f| job_for(f, server.url_of(f))).collect()
}

/// How the next requests for a path misbehave.
#[derive(Debug, Clone, Copy)]
pub enum Fault {
    /// Answer with this status and a short body.
    Status(u16),
    /// Send half the body; `honest` declares that half as Content-Length, otherwise the full
    /// length is declared and the connection closed early.
    Truncate { honest: bool },
    /// Send the full length with one byte changed.
    FlipByte,
    /// Send the body in 4 KiB pieces with this pause between them.
    Slow(Duration),
}

struct State {
    root: PathBuf,
    faults: Mutex<HashMap<String, VecDeque<Fault>>>,
    hits: Mutex<HashMap<String, usize>>,
    total: AtomicUsize,
    stop: AtomicBool,
}

pub struct Server {
    pub url: String,
    state: Arc<State>,
}

impl Server {
    /// Serves the files under `root`, one thread per connection; stops when dropped.
    pub fn start(root: &Path) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let state = Arc::new(State {
            root: root.into(),
            faults: Mutex::default(),
            hits: Mutex::default(),
            total: AtomicUsize::new(0),
            stop: AtomicBool::new(false),
        });
        let st = state.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if st.stop.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(stream) = stream else { continue };
                let st = st.clone();
                std::thread::spawn(move || handle(&st, stream));
            }
        });
        Server { url, state }
    }

    pub fn corpus() -> Server {
        Server::start(&corpus())
    }

    /// The URL of `file`, which must be under the server's root.
    pub fn url_of(&self, file: &Path) -> String {
        format!(
            "{}/{}",
            self.url,
            file.strip_prefix(&self.state.root).unwrap().display()
        )
    }

    /// The next `times` requests for the path of `url` get `fault`.
    pub fn fault(&self, url: &str, fault: Fault, times: usize) {
        let path = url.strip_prefix(&self.url).unwrap().to_string();
        self.state
            .faults
            .lock()
            .unwrap()
            .entry(path)
            .or_default()
            .extend(std::iter::repeat_n(fault, times));
    }

    pub fn hits(&self, url: &str) -> usize {
        let path = url.strip_prefix(&self.url).unwrap();
        self.state
            .hits
            .lock()
            .unwrap()
            .get(path)
            .copied()
            .unwrap_or(0)
    }

    pub fn total_hits(&self) -> usize {
        self.state.total.load(Ordering::SeqCst)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.state.stop.store(true, Ordering::SeqCst);
        // Wakes the accept loop so it sees the flag.
        let _ = TcpStream::connect(self.url.trim_start_matches("http://"));
    }
}

fn handle(st: &State, stream: TcpStream) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut request = String::new();
    if reader.read_line(&mut request).is_err() {
        return;
    }
    let mut line = String::new();
    while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
        line.clear();
    }
    let path = request.split_whitespace().nth(1).unwrap_or("/").to_string();
    st.total.fetch_add(1, Ordering::SeqCst);
    *st.hits.lock().unwrap().entry(path.clone()).or_default() += 1;
    let fault = st
        .faults
        .lock()
        .unwrap()
        .get_mut(&path)
        .and_then(|q| q.pop_front());
    let mut out = stream;
    let body = match std::fs::read(st.root.join(percent_decode(&path[1..]))) {
        Ok(b) => b,
        Err(_) => return respond(&mut out, 404, b"not found", None),
    };
    match fault {
        None => respond(&mut out, 200, &body, None),
        Some(Fault::Status(code)) => respond(&mut out, code, b"scripted failure", None),
        Some(Fault::Truncate { honest }) => {
            let half = &body[..body.len() / 2];
            respond(&mut out, 200, half, (!honest).then_some(body.len()))
        }
        Some(Fault::FlipByte) => {
            let mut b = body;
            let mid = b.len() / 2;
            b[mid] ^= 0x40;
            respond(&mut out, 200, &b, None)
        }
        Some(Fault::Slow(pause)) => {
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = out.write_all(head.as_bytes());
            for piece in body.chunks(4096) {
                if out.write_all(piece).and_then(|()| out.flush()).is_err() {
                    return;
                }
                std::thread::sleep(pause);
            }
        }
    }
}

fn respond(out: &mut TcpStream, status: u16, body: &[u8], declared: Option<usize>) {
    let head = format!(
        "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        declared.unwrap_or(body.len())
    );
    let _ = out.write_all(head.as_bytes());
    let _ = out.write_all(body);
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = b
            .get(i + 1..i + 3)
            .and_then(|h| u8::from_str_radix(std::str::from_utf8(h).ok()?, 16).ok());
        match (b[i], hex) {
            (b'%', Some(v)) => {
                out.push(v);
                i += 3;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8(out).unwrap()
}

/// A [`Progress`] that records what it is told.
#[derive(Default)]
pub struct Recorder {
    pub started: Mutex<Option<(usize, u64)>>,
    pub bytes: AtomicUsize,
    pub advances: AtomicUsize,
    pub done: Mutex<Vec<(String, bool)>>,
    pub finished: AtomicUsize,
}

impl Recorder {
    pub fn cached_count(&self) -> usize {
        self.done.lock().unwrap().iter().filter(|(_, c)| *c).count()
    }
    pub fn done_count(&self) -> usize {
        self.done.lock().unwrap().len()
    }
}

impl Progress for Recorder {
    fn start(&self, jobs: usize, bytes: u64) {
        assert!(
            self.started
                .lock()
                .unwrap()
                .replace((jobs, bytes))
                .is_none(),
            "start called twice"
        );
    }
    fn advance(&self, _: &str, bytes: u64) {
        assert!(
            self.started.lock().unwrap().is_some(),
            "advance before start"
        );
        self.bytes.fetch_add(bytes as usize, Ordering::SeqCst);
        self.advances.fetch_add(1, Ordering::SeqCst);
    }
    fn done_one(&self, name: &str, cached: bool) {
        self.done.lock().unwrap().push((name.into(), cached));
    }
    fn finish(&self) {
        self.finished.fetch_add(1, Ordering::SeqCst);
    }
}

/// Files in the cache's `tmp/` directory.
pub fn temp_files(cache: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(cache.join("tmp"))
        .map(|d| d.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default()
}
