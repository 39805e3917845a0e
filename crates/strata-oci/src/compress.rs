//! Layer compression with output that depends only on the input bytes.
//!
//! gzip: the stream is cut into fixed 1 MiB chunks, each compressed independently (on a pool
//! of worker threads) into its own gzip member, and the members are written in input order.
//! Because the chunk size is fixed and every member is compressed alone, the bytes are the
//! same for 1 thread or 16, run after run. Multi-member gzip is standard (RFC 1952 §2.2) and
//! read by Go's `compress/gzip` (docker, containerd, podman, skopeo), `gzip -d` and flate2's
//! `MultiGzDecoder`. The cost is a slightly worse ratio (each member restarts its dictionary,
//! ~0.1% at 1 MiB) and 20 bytes of header/trailer per MiB. Multithreaded `gzp` was rejected:
//! its output changes from run to run.
//!
//! zstd: one single-threaded frame at the chosen level (zstd is fast enough that parallel
//! chunks buy little, and a single frame keeps the best ratio).
//!
//! Both codecs are pure functions of (input, level, library version): the versions are pinned
//! by Cargo.lock, and flate2 is built on zlib-rs only (see DEPENDENCIES.md's flate2 trap).

use oci_spec::image::MediaType;
use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// Size of the independently compressed gzip chunks. Part of the output format: changing it
/// changes every gzip layer digest.
pub const GZIP_CHUNK: usize = 1 << 20;

/// How layer blobs are compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// Plain tar.
    None,
    /// Chunked multi-member gzip at a zlib level (0–9).
    Gzip { level: u32 },
    /// A zstd frame at a zstd level (1–22).
    Zstd { level: i32 },
}

impl Default for Compression {
    /// gzip level 6: what every registry and runtime accepts, at zlib's usual trade-off.
    fn default() -> Self {
        Compression::Gzip { level: 6 }
    }
}

impl Compression {
    /// zstd at level 3, zstd's own default.
    pub fn zstd() -> Self {
        Compression::Zstd { level: 3 }
    }

    /// The OCI layer media type for blobs compressed this way.
    pub fn layer_media_type(self) -> MediaType {
        match self {
            Compression::None => MediaType::ImageLayer,
            Compression::Gzip { .. } => MediaType::ImageLayerGzip,
            Compression::Zstd { .. } => MediaType::ImageLayerZstd,
        }
    }

    /// Wraps `inner` in a compressing writer; `threads` only matters for gzip and never
    /// changes the output bytes.
    pub fn writer<W: Write>(self, inner: W, threads: usize) -> io::Result<Compressor<W>> {
        Ok(match self {
            Compression::None => Compressor::Plain(inner),
            Compression::Gzip { level } => {
                Compressor::Gzip(ChunkedGzip::new(inner, level.min(9), threads))
            }
            Compression::Zstd { level } => {
                let mut enc = zstd::stream::write::Encoder::new(inner, level)?;
                // Set explicitly so a library default change cannot change our bytes.
                enc.include_checksum(true)?;
                enc.include_contentsize(false)?;
                Compressor::Zstd(enc)
            }
        })
    }
}

/// The codec a layer media type implies, for reading layers back. `None` for media types
/// that are not layers this crate understands.
pub fn codec_of_media_type(media_type: &MediaType) -> Option<Codec> {
    match media_type.to_string().as_str() {
        "application/vnd.oci.image.layer.v1.tar"
        | "application/vnd.docker.image.rootfs.diff.tar" => Some(Codec::Plain),
        "application/vnd.oci.image.layer.v1.tar+gzip"
        | "application/vnd.docker.image.rootfs.diff.tar.gzip" => Some(Codec::Gzip),
        "application/vnd.oci.image.layer.v1.tar+zstd"
        | "application/vnd.docker.image.rootfs.diff.tar.zstd" => Some(Codec::Zstd),
        _ => None,
    }
}

/// A compression format, without its level (what a reader needs to know).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    Plain,
    Gzip,
    Zstd,
}

impl Codec {
    /// A reader yielding the uncompressed bytes of `r`.
    pub fn decoder<'a, R: Read + 'a>(self, r: R) -> io::Result<Box<dyn Read + 'a>> {
        Ok(match self {
            Codec::Plain => Box::new(r),
            // Multi-member: our own gzip layers are concatenated members.
            Codec::Gzip => Box::new(flate2::read::MultiGzDecoder::new(io::BufReader::new(r))),
            Codec::Zstd => Box::new(zstd::stream::read::Decoder::new(r)?),
        })
    }
}

/// A writer that compresses into `W`; call [`Compressor::finish`] to flush the tail.
pub enum Compressor<W: Write> {
    Plain(W),
    Gzip(ChunkedGzip<W>),
    Zstd(zstd::stream::write::Encoder<'static, W>),
}

impl<W: Write> Compressor<W> {
    /// Writes any buffered data and the stream trailer; returns the inner writer.
    pub fn finish(self) -> io::Result<W> {
        match self {
            Compressor::Plain(w) => Ok(w),
            Compressor::Gzip(g) => g.finish(),
            Compressor::Zstd(z) => z.finish(),
        }
    }
}

impl<W: Write> Write for Compressor<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Compressor::Plain(w) => w.write(buf),
            Compressor::Gzip(g) => g.write(buf),
            Compressor::Zstd(z) => z.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        // Flushing must not end a gzip member early (that would make the bytes depend on
        // when callers flush), so only the inner writer is flushed.
        match self {
            Compressor::Plain(w) => w.flush(),
            Compressor::Gzip(g) => g.inner.flush(),
            Compressor::Zstd(z) => z.get_mut().flush(),
        }
    }
}

/// Compresses one chunk as a complete gzip member with a fixed header (no name, mtime 0,
/// OS "unknown"), so the member depends only on the data and the level.
pub fn gzip_member(data: &[u8], level: u32) -> io::Result<Vec<u8>> {
    let out = Vec::with_capacity(data.len() / 2 + 64);
    let mut enc = flate2::GzBuilder::new()
        .mtime(0)
        .operating_system(255)
        .write(out, flate2::Compression::new(level));
    enc.write_all(data)?;
    enc.finish()
}

type Job = (u64, Vec<u8>);
type Done = (u64, io::Result<Vec<u8>>);

/// Worker threads compressing chunks; results come back tagged with their sequence number.
struct Pool {
    jobs: Option<SyncSender<Job>>,
    results: Receiver<Done>,
    workers: Vec<JoinHandle<()>>,
}

impl Pool {
    fn new(threads: usize, level: u32) -> Pool {
        let (job_tx, job_rx) = mpsc::sync_channel::<Job>(threads);
        let (done_tx, done_rx) = mpsc::channel::<Done>();
        let job_rx = Arc::new(Mutex::new(job_rx));
        let workers = (0..threads)
            .map(|_| {
                let job_rx = Arc::clone(&job_rx);
                let done_tx = done_tx.clone();
                std::thread::spawn(move || loop {
                    // The lock is held only while taking a job, not while compressing.
                    let job = match job_rx.lock() {
                        Ok(rx) => rx.recv(),
                        Err(_) => return,
                    };
                    let Ok((seq, data)) = job else { return };
                    if done_tx.send((seq, gzip_member(&data, level))).is_err() {
                        return;
                    }
                })
            })
            .collect();
        Pool {
            jobs: Some(job_tx),
            results: done_rx,
            workers,
        }
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        // Closing the job channel ends the workers' loops; then wait for them.
        self.jobs.take();
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}

/// Deterministic parallel gzip: see the module docs.
pub struct ChunkedGzip<W: Write> {
    inner: W,
    level: u32,
    buf: Vec<u8>,
    pool: Option<Pool>,
    /// Chunks handed out / written so far; the difference is the work in flight.
    sent: u64,
    written: u64,
    /// Finished chunks that arrived before an earlier one.
    ready: BTreeMap<u64, Vec<u8>>,
    max_in_flight: u64,
}

impl<W: Write> ChunkedGzip<W> {
    /// `threads` ≤ 1 compresses on the caller's thread.
    pub fn new(inner: W, level: u32, threads: usize) -> Self {
        let pool = (threads > 1).then(|| Pool::new(threads, level));
        ChunkedGzip {
            inner,
            level,
            buf: Vec::with_capacity(GZIP_CHUNK),
            pool,
            sent: 0,
            written: 0,
            ready: BTreeMap::new(),
            // Two chunks per thread keeps workers busy while bounding memory (~4 MiB/thread).
            max_in_flight: 2 * threads.max(1) as u64,
        }
    }

    fn submit(&mut self, chunk: Vec<u8>) -> io::Result<()> {
        let Some(pool) = &self.pool else {
            let member = gzip_member(&chunk, self.level)?;
            self.sent += 1;
            self.written += 1;
            return self.inner.write_all(&member);
        };
        let jobs = pool.jobs.as_ref().ok_or_else(workers_gone)?.clone();
        while self.sent - self.written >= self.max_in_flight {
            self.receive_one()?;
        }
        jobs.send((self.sent, chunk)).map_err(|_| workers_gone())?;
        self.sent += 1;
        // Write whatever is already done without waiting.
        while let Some(Ok(done)) = self.pool.as_ref().map(|p| p.results.try_recv()) {
            self.accept(done)?;
        }
        Ok(())
    }

    /// Blocks for one finished chunk and writes every chunk that is now next in order.
    fn receive_one(&mut self) -> io::Result<()> {
        let pool = self.pool.as_ref().ok_or_else(workers_gone)?;
        let done = pool.results.recv().map_err(|_| workers_gone())?;
        self.accept(done)
    }

    fn accept(&mut self, (seq, member): Done) -> io::Result<()> {
        self.ready.insert(seq, member?);
        while let Some(member) = self.ready.remove(&self.written) {
            self.inner.write_all(&member)?;
            self.written += 1;
        }
        Ok(())
    }

    /// Compresses the tail, waits for all chunks, stops the workers, returns the writer.
    pub fn finish(mut self) -> io::Result<W> {
        // An empty input still yields one (empty) member: a valid gzip stream.
        if !self.buf.is_empty() || self.sent == 0 {
            let tail = std::mem::take(&mut self.buf);
            self.submit(tail)?;
        }
        while self.written < self.sent {
            self.receive_one()?;
        }
        self.pool.take();
        Ok(self.inner)
    }
}

fn workers_gone() -> io::Error {
    io::Error::other("gzip worker threads stopped unexpectedly")
}

impl<W: Write> Write for ChunkedGzip<W> {
    fn write(&mut self, mut data: &[u8]) -> io::Result<usize> {
        let total = data.len();
        while !data.is_empty() {
            let take = (GZIP_CHUNK - self.buf.len()).min(data.len());
            self.buf.extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.buf.len() == GZIP_CHUNK {
                let chunk = std::mem::replace(&mut self.buf, Vec::with_capacity(GZIP_CHUNK));
                self.submit(chunk)?;
            }
        }
        Ok(total)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Compressible but not trivial data: a counter mixed into text.
    fn sample(len: usize) -> Vec<u8> {
        let mut v = Vec::with_capacity(len);
        let mut i: u64 = 0;
        while v.len() < len {
            v.extend_from_slice(
                format!("line {i} {}\n", i.wrapping_mul(2654435761) % 9973).as_bytes(),
            );
            i += 1;
        }
        v.truncate(len);
        v
    }

    fn gzip(data: &[u8], threads: usize, write_size: usize) -> Vec<u8> {
        let mut c = Compression::default().writer(Vec::new(), threads).unwrap();
        for part in data.chunks(write_size.max(1)) {
            c.write_all(part).unwrap();
        }
        c.finish().unwrap()
    }

    #[test]
    fn gzip_identical_for_any_thread_count_and_write_pattern() {
        let data = sample(3 * GZIP_CHUNK + 12_345);
        let one = gzip(&data, 1, 64 * 1024);
        assert_eq!(one, gzip(&data, 2, 7_777));
        assert_eq!(one, gzip(&data, 4, data.len()));
        let mut back = Vec::new();
        Codec::Gzip
            .decoder(&one[..])
            .unwrap()
            .read_to_end(&mut back)
            .unwrap();
        assert_eq!(back, data);
    }

    #[test]
    fn gzip_is_one_member_per_chunk() {
        let data = sample(2 * GZIP_CHUNK + 1);
        let out = gzip(&data, 2, 1 << 16);
        // Every member starts with the fixed header: magic, deflate, no flags, mtime 0.
        let header = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0];
        let members = out.windows(8).filter(|w| *w == header).count();
        assert!(members >= 3, "found {members} member headers");
        assert_eq!(&out[..8], &header);
    }

    #[test]
    fn empty_input_is_a_valid_gzip_stream() {
        for threads in [1, 2] {
            let out = gzip(&[], threads, 1);
            let mut back = Vec::new();
            Codec::Gzip
                .decoder(&out[..])
                .unwrap()
                .read_to_end(&mut back)
                .unwrap();
            assert!(back.is_empty());
            assert_eq!(&out[..2], &[0x1f, 0x8b]);
        }
    }

    #[test]
    fn zstd_round_trips_and_is_stable() {
        let data = sample(500_000);
        let run = || {
            let mut c = Compression::zstd().writer(Vec::new(), 2).unwrap();
            c.write_all(&data).unwrap();
            c.finish().unwrap()
        };
        let a = run();
        assert_eq!(a, run());
        let mut back = Vec::new();
        Codec::Zstd
            .decoder(&a[..])
            .unwrap()
            .read_to_end(&mut back)
            .unwrap();
        assert_eq!(back, data);
    }

    #[test]
    fn media_types_match_codecs() {
        for c in [
            Compression::None,
            Compression::default(),
            Compression::zstd(),
        ] {
            let codec = codec_of_media_type(&c.layer_media_type()).unwrap();
            let expected = match c {
                Compression::None => Codec::Plain,
                Compression::Gzip { .. } => Codec::Gzip,
                Compression::Zstd { .. } => Codec::Zstd,
            };
            assert_eq!(codec, expected);
        }
        assert_eq!(codec_of_media_type(&MediaType::ImageConfig), None);
    }
}
