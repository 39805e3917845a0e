//! The image as a compressed docker-archive: what `strata save` writes (docker's
//! `manifest.json` layout, layers uncompressed so xz sees the plain tar), through a
//! single-threaded xz encoder at a fixed preset, so the same image always gives the same
//! bytes. `docker load` and `podman load` read xz-compressed archives directly.

use crate::tree::{HashWriter, Tree};
use crate::Error;
use std::io::{self, Write};
use strata_oci::archive::{save_docker_archive, LayerForm};
use strata_oci::store::Store;

/// xz's default preset (`xz -6`): about a quarter of the tar for a distribution image.
pub const DEFAULT_XZ_PRESET: u32 = 6;

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
        let stream = liblzma::stream::Stream::new_easy_encoder(preset, liblzma::stream::Check::Crc64).map_err(io::Error::other)?;
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
