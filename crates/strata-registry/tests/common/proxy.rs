//! A TCP proxy in front of a real registry, for dropped connections a registry will not
//! produce on demand. It reads each HTTP/1.1 request a client sends, counts the bytes of
//! `PATCH` bodies (chunks of blob uploads), and cuts the connection — both sides — once that
//! count crosses a point the test armed ([`Proxy::cut_after`]). Responses are copied back
//! untouched.
//!
//! How a request reaches the registry decides what a cut leaves there:
//! - [`Forward::Buffered`]: only once its body is complete and its client still waits for
//!   the answer, as nginx does by default (`proxy_request_buffering on`,
//!   `proxy_ignore_client_abort off`; idealised: nginx may race the client's close): a cut
//!   chunk, or a killed client's, never reaches the registry.
//! - [`Forward::Streaming`]: byte by byte as it arrives: the registry keeps what came.
//!
//! A bandwidth (`bytes_per_sec`) paces what the proxy reads from clients, so a transfer
//! takes the time a real link would and a kill lands mid-chunk, not in the registry's
//! bookkeeping between chunks.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Forward {
    Buffered,
    Streaming,
}

#[derive(Default)]
struct Counters {
    /// PATCH body bytes read from clients, cut requests included.
    patch_bytes: u64,
    /// Cut when `patch_bytes` reaches these (ascending).
    cuts: Vec<u64>,
    cuts_done: usize,
}

struct Shared {
    upstream: String,
    forward: Forward,
    bytes_per_sec: Option<u64>,
    counters: Mutex<Counters>,
    stop: AtomicBool,
    connections: AtomicU64,
}

/// The proxy; stops accepting on drop (open connections end with their clients).
pub struct Proxy {
    pub port: u16,
    shared: Arc<Shared>,
}

impl Proxy {
    /// Listens on a free loopback port and forwards to `upstream` (`host:port`).
    pub fn start(upstream: &str, forward: Forward, bytes_per_sec: Option<u64>) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let shared = Arc::new(Shared {
            upstream: upstream.to_string(),
            forward,
            bytes_per_sec,
            counters: Mutex::new(Counters::default()),
            stop: AtomicBool::new(false),
            connections: AtomicU64::new(0),
        });
        let s = shared.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if s.stop.load(Ordering::Relaxed) {
                    break;
                }
                let Ok(client) = conn else { continue };
                s.connections.fetch_add(1, Ordering::Relaxed);
                let s = s.clone();
                std::thread::spawn(move || serve(&s, client));
            }
        });
        Proxy { port, shared }
    }

    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Cuts the connection carrying the PATCH body in which `n` more body bytes have
    /// passed (after the cuts armed before).
    pub fn cut_after(&self, n: u64) {
        let mut c = self.shared.counters.lock().unwrap();
        let from = c.cuts.last().copied().unwrap_or(0).max(c.patch_bytes);
        c.cuts.push(from + n);
    }

    /// PATCH body bytes clients sent through the proxy (what a cut stopped included).
    pub fn patch_bytes(&self) -> u64 {
        self.shared.counters.lock().unwrap().patch_bytes
    }

    pub fn cuts_done(&self) -> usize {
        self.shared.counters.lock().unwrap().cuts_done
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// One client connection: requests parsed and forwarded in order over one upstream
/// connection; responses copied back by a second thread.
fn serve(s: &Shared, client: TcpStream) {
    let Ok(upstream) = TcpStream::connect(&s.upstream) else { return };
    let (Ok(up_read), Ok(client_write)) = (upstream.try_clone(), client.try_clone()) else { return };
    let back = std::thread::spawn(move || {
        let (mut from, mut to) = (up_read, client_write);
        let _ = std::io::copy(&mut from, &mut to);
        let _ = to.shutdown(Shutdown::Write);
    });
    let mut reader = BufReader::new(client.try_clone().unwrap());
    let mut up = upstream.try_clone().unwrap();
    // Not HTTP (a TLS hello, as a client tries for an insecure registry): passed through
    // untouched, so the registry answers it as it would.
    if reader.fill_buf().is_ok_and(|b| b.first().is_some_and(|c| !c.is_ascii_uppercase())) {
        let _ = std::io::copy(&mut reader, &mut up);
        let _ = upstream.shutdown(Shutdown::Write);
        let _ = back.join();
        return;
    }
    loop {
        match forward_request(s, &mut reader, &mut up) {
            Ok(true) => continue,
            Ok(false) => {
                // The client closed: so does the upstream side.
                let _ = upstream.shutdown(Shutdown::Write);
                break;
            }
            Err(Cut) => {
                let _ = client.shutdown(Shutdown::Both);
                let _ = upstream.shutdown(Shutdown::Both);
                break;
            }
        }
    }
    let _ = back.join();
}

struct Cut;

/// Forwards one request; `Ok(false)` when the client closed between requests.
fn forward_request(s: &Shared, reader: &mut BufReader<TcpStream>, up: &mut TcpStream) -> Result<bool, Cut> {
    let mut head = Vec::new();
    loop {
        let mut line = Vec::new();
        match reader.read_until(b'\n', &mut line) {
            Ok(0) if head.is_empty() => return Ok(false),
            Ok(0) | Err(_) => return Err(Cut),
            Ok(_) => {}
        }
        head.extend_from_slice(&line);
        if line == b"\r\n" || line == b"\n" {
            break;
        }
    }
    let text = String::from_utf8_lossy(&head).into_owned();
    let method = text.split(' ').next().unwrap_or("").to_string();
    let mut length = 0u64;
    for l in text.lines().skip(1) {
        if let Some((k, v)) = l.split_once(':') {
            let k = k.trim().to_ascii_lowercase();
            assert_ne!(k, "transfer-encoding", "the proxy only forwards Content-Length bodies: {text}");
            if k == "content-length" {
                length = v.trim().parse().unwrap();
            }
        }
    }
    let patch = method == "PATCH";
    let mut pending = head; // Buffered: the whole request before anything goes up.
    if s.forward == Forward::Streaming {
        up.write_all(&pending).map_err(|_| Cut)?;
        pending.clear();
    }
    let mut left = length;
    let mut buf = vec![0u8; 16 * 1024];
    while left > 0 {
        let want = buf.len().min(left as usize);
        let n = match reader.read(&mut buf[..want]) {
            Ok(0) | Err(_) => return Err(Cut),
            Ok(n) => n,
        };
        if let Some(rate) = s.bytes_per_sec {
            std::thread::sleep(Duration::from_nanos(n as u64 * 1_000_000_000 / rate));
        }
        // How much of this slice passes before a cut, if one falls inside it.
        let mut keep = n;
        let mut cut = false;
        if patch {
            let mut c = s.counters.lock().unwrap();
            if let Some(&at) = c.cuts.get(c.cuts_done) {
                if c.patch_bytes + n as u64 >= at {
                    keep = (at - c.patch_bytes.min(at)) as usize;
                    cut = true;
                    c.cuts_done += 1;
                }
            }
            c.patch_bytes += keep as u64;
        }
        match s.forward {
            Forward::Streaming => up.write_all(&buf[..keep]).map_err(|_| Cut)?,
            Forward::Buffered => pending.extend_from_slice(&buf[..keep]),
        }
        if cut {
            return Err(Cut);
        }
        left -= n as u64;
    }
    if s.forward == Forward::Buffered && client_gone(reader) {
        // Nobody is waiting for the answer (a killed client's kernel still delivers what
        // it had buffered): dropped, as nginx drops a request whose client aborted.
        return Err(Cut);
    }
    up.write_all(&pending).map_err(|_| Cut)?;
    Ok(true)
}

/// Whether the client has closed its side (its FIN is waiting to be read).
fn client_gone(reader: &BufReader<TcpStream>) -> bool {
    if !reader.buffer().is_empty() {
        return false;
    }
    let sock = reader.get_ref();
    if sock.set_nonblocking(true).is_err() {
        return false;
    }
    let gone = matches!(sock.peek(&mut [0u8; 1]), Ok(0));
    let _ = sock.set_nonblocking(false);
    gone
}
