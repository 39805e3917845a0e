//! The image as a compressed docker-archive: what `strata save` writes (docker's
//! `manifest.json` layout, layers uncompressed so xz sees the plain tar), through liblzma's
//! multithreaded encoder at a fixed preset and a block size fixed by the preset: each block
//! is compressed on its own, so the stream is the same for any number of threads and the
//! same image always gives the same bytes on any host. `docker load` and `podman load` read
//! xz-compressed archives (several blocks included) directly.

use crate::tree::{HashWriter, Tree};
use crate::Error;
use std::io::{self, Write};
use strata_oci::archive::{save_docker_archive, LayerForm};
use strata_oci::store::Store;

/// xz's default preset (`xz -6`): about a quarter of the tar for a distribution image.
pub const DEFAULT_XZ_PRESET: u32 = 6;

/// Most encoder threads: each holds about 3 blocks plus the preset's encoder memory
/// (~100 MiB at -6), and a shared worker host has other builds to run.
const MAX_XZ_THREADS: u32 = 4;

/// The block size for `preset`: three times its LZMA2 dictionary, as `xz -T` picks, written
/// out so that it never changes with liblzma's defaults (the bytes would).
fn xz_block_size(preset: u32) -> u64 {
    let dict: u64 = match preset {
        0 => 256 << 10,
        1 => 1 << 20,
        2 => 2 << 20,
        3 | 4 => 4 << 20,
        5 | 6 => 8 << 20,
        7 => 16 << 20,
        8 => 32 << 20,
        _ => 64 << 20,
    };
    3 * dict
}

/// An xz encoder for `preset` with `threads` threads (its output does not depend on them).
fn xz_encoder(preset: u32, threads: u32) -> io::Result<liblzma::stream::Stream> {
    liblzma::stream::MtStreamBuilder::new()
        .preset(preset)
        .threads(threads.max(1))
        .block_size(xz_block_size(preset))
        .check(liblzma::stream::Check::Crc64)
        .encoder()
        .map_err(io::Error::other)
}

fn xz_threads() -> u32 {
    std::thread::available_parallelism().map_or(1, |n| n.get() as u32).min(MAX_XZ_THREADS)
}

/// The archive written: its size and sha256.
#[derive(Debug, Clone)]
pub struct Written {
    pub size: u64,
    pub sha256: String,
}

/// Counts and hashes what passes through to the file.
struct Tee<'a, W: Write> {
    inner: W,
    hash: HashWriter<'a>,
    size: u64,
}

impl<W: Write> Write for Tee<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hash.write_all(&buf[..n])?;
        self.size += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Writes `reference`'s docker-archive, xz-compressed at `preset`, to `rel` in the mirror
/// (temporary + rename).
pub fn write_xz_archive(tree: &Tree, store: &Store, reference: &str, rel: &str, preset: u32) -> Result<Written, Error> {
    let mut sha = <sha2::Sha256 as sha2::Digest>::new();
    let size = tree.write_with(rel, |file| {
        let stream = xz_encoder(preset, xz_threads())?;
        let tee = Tee { inner: file, hash: HashWriter(&mut sha), size: 0 };
        let xz = liblzma::write::XzEncoder::new_stream(tee, stream);
        let xz = save_docker_archive(store, &[reference], LayerForm::Uncompressed, xz).map_err(io::Error::other)?;
        let mut tee = xz.finish()?;
        tee.flush()?;
        Ok(tee.size)
    })?;
    use sha2::Digest;
    Ok(Written { size, sha256: hex::encode(sha.finalize()) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn compress(data: &[u8], preset: u32, threads: u32) -> Vec<u8> {
        let mut xz = liblzma::write::XzEncoder::new_stream(Vec::new(), xz_encoder(preset, threads).unwrap());
        xz.write_all(data).unwrap();
        xz.finish().unwrap()
    }

    /// The archive's bytes must not depend on the host's cores: the same input through 1, 2
    /// and 3 threads, over several blocks, is the same stream, and it reads back whole.
    #[test]
    fn xz_bytes_do_not_depend_on_threads() {
        // Several preset-0 blocks (768 KiB each) of text-like, compressible data.
        let data: Vec<u8> = (0u32..700_000).flat_map(|i| format!("{} {}\n", i % 977, i / 13).into_bytes()).collect();
        assert!(data.len() as u64 > 3 * xz_block_size(0));
        let one = compress(&data, 0, 1);
        assert_eq!(compress(&data, 0, 2), one);
        assert_eq!(compress(&data, 0, 3), one);
        assert!(one.len() < data.len() / 3, "{} of {}", one.len(), data.len());
        let mut back = Vec::new();
        liblzma::read::XzDecoder::new_multi_decoder(&one[..]).read_to_end(&mut back).unwrap();
        assert_eq!(back, data);
    }

    #[test]
    fn block_sizes_are_three_dictionaries() {
        assert_eq!(xz_block_size(DEFAULT_XZ_PRESET), 24 << 20);
        assert_eq!(xz_block_size(0), 768 << 10);
        assert_eq!(xz_block_size(9), 192 << 20);
    }
}
