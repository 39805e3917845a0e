//! `docker-daemon:`: a running docker reached over its Engine API socket.
//!
//! Export is `POST /images/load` with the docker-archive as the request body, written by a
//! thread as it is produced and sent in chunks (`Transfer-Encoding: chunked`); import is
//! `GET /images/{name}/get` with the response body handed to the loader as it arrives. No
//! temporary file either way, and memory stays at a few chunks. HTTP is hyper 1's client
//! connection over a tokio `UnixStream` (or `TcpStream` for `tcp://`), on a current-thread
//! runtime that lives for the one request: hyper and tokio are in the tree already (the
//! service's axum), where bollard would add its generated API types and a second HTTP
//! stack for the three calls used here (docs/decisions.md).

use crate::{Error, Result};
use http_body_util::BodyExt;
use hyper::body::{Body, Bytes, Frame, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use std::io::{self, Read, Write};
use std::path::PathBuf;
use std::pin::Pin;
use std::task::{Context, Poll};

/// The default socket, as docker's CLI uses it.
pub const DEFAULT_HOST: &str = "unix:///var/run/docker.sock";
/// Chunk size of the streamed archive.
const CHUNK: usize = 1 << 20;
/// Largest JSON answer read (load's progress messages, inspect).
const MAX_ANSWER: usize = 4 << 20;

/// Where the daemon listens.
#[derive(Debug, Clone)]
pub struct Host {
    shown: String,
    addr: Addr,
}

#[derive(Debug, Clone)]
enum Addr {
    Unix(PathBuf),
    Tcp(String),
}

impl Host {
    /// `unix:///path` or `tcp://host:port` (plain HTTP); `None` reads `$DOCKER_HOST`.
    pub fn from_option(host: Option<&str>) -> Result<Host> {
        let env = std::env::var("DOCKER_HOST").ok().filter(|h| !h.is_empty());
        let shown = host.map(String::from).or(env).unwrap_or_else(|| DEFAULT_HOST.to_string());
        let addr = if let Some(p) = shown.strip_prefix("unix://") {
            Addr::Unix(PathBuf::from(p))
        } else if let Some(a) = shown.strip_prefix("tcp://").or_else(|| shown.strip_prefix("http://")) {
            Addr::Tcp(a.trim_end_matches('/').to_string())
        } else {
            return Err(Error::Daemon {
                host: shown.clone(),
                reason: "not a unix:// or tcp:// address\nhint: DOCKER_HOST=unix:///var/run/docker.sock (TLS endpoints are not supported)".into(),
            });
        };
        Ok(Host { shown, addr })
    }

    fn err(&self, reason: impl std::fmt::Display) -> Error {
        Error::Daemon { host: self.shown.clone(), reason: reason.to_string() }
    }
}

/// Loads the docker-archive `write` produces into the daemon; returns docker's own line
/// about it (`Loaded image: NAME:TAG`).
pub fn load(host: &Host, write: impl FnOnce(&mut dyn Write) -> strata_oci::Result<()> + Send + 'static) -> Result<String> {
    let (tx, rx) = tokio::sync::mpsc::channel::<io::Result<Bytes>>(4);
    let writer = std::thread::spawn(move || {
        let mut w = ChannelWriter { tx, buf: Vec::with_capacity(CHUNK) };
        let result = write(&mut w).and_then(|()| w.flush().map_err(|e| strata_oci::Error::Io { what: "sending the archive".into(), source: e }));
        if let Err(e) = &result {
            // Fails the request body, so the daemon discards what it got.
            let _ = w.tx.blocking_send(Err(io::Error::other(e.to_string())));
        }
        result
    });
    let answer = runtime(host)?.block_on(async {
        let req = Request::post("/images/load?quiet=1")
            .header("host", "docker")
            .header("content-type", "application/x-tar")
            .body(ChannelBody(rx))
            .map_err(|e| host.err(e))?;
        let resp = send(host, req).await?;
        read_answer(host, resp).await
    });
    let written = writer.join().map_err(|_| host.err("the archive writer panicked"))?;
    written?; // the archive's own error says more than the broken request
    let (status, body) = answer?;
    if !status.is_success() {
        return Err(host.err(format!("load refused ({status}): {}", message(&body))));
    }
    // A JSON stream: {"stream":"Loaded image: web:1\n"} or {"error": ..., "errorDetail": ...}.
    let mut loaded = String::new();
    for line in body.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        let v: serde_json::Value = serde_json::from_slice(line).map_err(|e| host.err(format!("unreadable answer to load: {e}")))?;
        if let Some(e) = v["error"].as_str() {
            return Err(host.err(format!("load failed: {e}")));
        }
        if let Some(s) = v["stream"].as_str() {
            loaded.push_str(s.trim());
        }
    }
    Ok(loaded)
}

/// The id docker gives the image `name` (`docker image inspect --format {{.Id}}`).
pub fn image_id(host: &Host, name: &str) -> Result<String> {
    let (status, body) = runtime(host)?.block_on(async {
        let req = Request::get(format!("/images/{}/json", escape(name))).header("host", "docker").body(http_body_util::Empty::<Bytes>::new()).map_err(|e| host.err(e))?;
        read_answer(host, send(host, req).await?).await
    })?;
    if !status.is_success() {
        return Err(host.err(format!("inspecting {name} ({status}): {}", message(&body))));
    }
    let v: serde_json::Value = serde_json::from_slice(&body).map_err(|e| host.err(format!("unreadable inspect answer: {e}")))?;
    v["Id"].as_str().map(String::from).ok_or_else(|| host.err("inspect answer has no Id"))
}

/// Streams `docker save NAME` from the daemon into `read` (run on its own thread).
pub fn save<T: Send + 'static>(host: &Host, name: &str, read: impl FnOnce(&mut dyn Read) -> strata_oci::Result<T> + Send + 'static) -> Result<T> {
    let (tx, rx) = std::sync::mpsc::sync_channel::<io::Result<Bytes>>(4);
    let reader = std::thread::spawn(move || {
        let mut r = ChannelReader { rx, current: Bytes::new() };
        read(&mut r)
    });
    let streamed: Result<()> = runtime(host)?.block_on(async {
        let req = Request::get(format!("/images/{}/get", escape(name))).header("host", "docker").body(http_body_util::Empty::<Bytes>::new()).map_err(|e| host.err(e))?;
        let resp = send(host, req).await?;
        if !resp.status().is_success() {
            let (status, body) = read_answer(host, resp).await?;
            let hint = if status.as_u16() == 404 { "\nhint: `docker images` lists what the daemon has" } else { "" };
            let _ = tx.send(Err(io::Error::other(format!("docker: {}", message(&body)))));
            return Err(host.err(format!("{name}: {} ({status}){hint}", message(&body))));
        }
        let mut body = resp.into_body();
        while let Some(frame) = body.frame().await {
            match frame {
                Ok(f) => {
                    if let Ok(data) = f.into_data() {
                        if tx.send(Ok(data)).is_err() {
                            break; // the loader stopped (and says why)
                        }
                    }
                }
                Err(e) => {
                    let _ = tx.send(Err(io::Error::other(format!("the daemon's stream broke: {e}"))));
                    break;
                }
            }
        }
        Ok(())
    });
    drop(tx);
    let loaded = reader.join().map_err(|_| host.err("the archive reader panicked"))?;
    streamed?;
    Ok(loaded?)
}

fn runtime(host: &Host) -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread().enable_io().build().map_err(|e| host.err(format!("starting the I/O runtime: {e}")))
}

/// Opens a connection and sends one request on it.
async fn send<B>(host: &Host, req: Request<B>) -> Result<Response<Incoming>>
where
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let refused = |e: io::Error| {
        let hint = match e.kind() {
            io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused => "\nhint: is docker running? DOCKER_HOST names another daemon",
            io::ErrorKind::PermissionDenied => "\nhint: the socket is root's and the docker group's",
            _ => "",
        };
        host.err(format!("cannot connect: {e}{hint}"))
    };
    macro_rules! over {
        ($stream:expr) => {{
            let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new($stream)).await.map_err(|e| host.err(e))?;
            tokio::spawn(conn);
            sender.send_request(req).await.map_err(|e| host.err(format!("request failed: {e}")))
        }};
    }
    match &host.addr {
        Addr::Unix(p) => over!(tokio::net::UnixStream::connect(p).await.map_err(refused)?),
        Addr::Tcp(a) => over!(tokio::net::TcpStream::connect(a.as_str()).await.map_err(refused)?),
    }
}

/// Status and body (at most [`MAX_ANSWER`] bytes) of a JSON answer.
async fn read_answer(host: &Host, resp: Response<Incoming>) -> Result<(hyper::StatusCode, Vec<u8>)> {
    let status = resp.status();
    let mut body = resp.into_body();
    let mut out = Vec::new();
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame.map_err(|e| host.err(format!("reading the answer: {e}")))?.into_data() {
            if out.len() + data.len() > MAX_ANSWER {
                return Err(host.err(format!("an answer over {MAX_ANSWER} bytes")));
            }
            out.extend_from_slice(&data);
        }
    }
    Ok((status, out))
}

/// docker's `{"message": "..."}`, else the body as text.
fn message(body: &[u8]) -> String {
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v["message"].as_str().map(String::from))
        .unwrap_or_else(|| String::from_utf8_lossy(body).trim().to_string())
}

/// Percent-encodes what an image name or id may not carry in a path.
fn escape(name: &str) -> String {
    name.bytes()
        .map(|b| if b.is_ascii_alphanumeric() || b"._-/:@".contains(&b) { (b as char).to_string() } else { format!("%{b:02X}") })
        .collect()
}

/// The request body: chunks from the writer thread.
struct ChannelBody(tokio::sync::mpsc::Receiver<io::Result<Bytes>>);

impl Body for ChannelBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<std::result::Result<Frame<Bytes>, io::Error>>> {
        self.0.poll_recv(cx).map(|chunk| chunk.map(|r| r.map(Frame::data)))
    }
}

/// The writer thread's end: 1 MiB chunks into the channel.
struct ChannelWriter {
    tx: tokio::sync::mpsc::Sender<io::Result<Bytes>>,
    buf: Vec<u8>,
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let n = data.len().min(CHUNK - self.buf.len());
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() == CHUNK {
            self.flush()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK)));
        self.tx.blocking_send(Ok(chunk)).map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the docker daemon closed the connection"))
    }
}

/// The loader thread's end: bytes as the response body delivers them.
struct ChannelReader {
    rx: std::sync::mpsc::Receiver<io::Result<Bytes>>,
    current: Bytes,
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.current.is_empty() {
            match self.rx.recv() {
                Ok(chunk) => self.current = chunk?,
                Err(_) => return Ok(0), // the stream ended
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current.split_to(n));
        Ok(n)
    }
}
