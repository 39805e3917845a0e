//! sha256 digests: hashing while writing, and checking the `sha256:<hex>` form.

use crate::{Error, Result};
use oci_spec::image::Digest;
use sha2::{Digest as _, Sha256};
use std::io::{self, Write};

/// A writer that hashes and counts every byte passed through to `inner`.
pub struct Sha256Writer<W> {
    inner: W,
    hasher: Sha256,
    count: u64,
}

impl<W: Write> Sha256Writer<W> {
    pub fn new(inner: W) -> Self {
        Sha256Writer {
            inner,
            hasher: Sha256::new(),
            count: 0,
        }
    }

    /// Bytes written so far.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The inner writer, for callers that need to reach it before finishing.
    pub fn get_mut(&mut self) -> &mut W {
        &mut self.inner
    }

    /// Returns the inner writer, the digest (`sha256:<hex>`) and the byte count.
    pub fn finish(self) -> (W, Digest, u64) {
        let hex = hex::encode(self.hasher.finalize());
        (self.inner, sha256_digest(&hex), self.count)
    }
}

impl<W: Write> Write for Sha256Writer<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// The `sha256:<hex>` digest of a byte slice.
pub fn sha256_hex_of(data: &[u8]) -> Digest {
    sha256_digest(&hex::encode(Sha256::digest(data)))
}

/// Builds a digest from 64 lowercase hex characters we computed ourselves.
pub(crate) fn sha256_digest(hex: &str) -> Digest {
    // The string is produced by `hex::encode` of a sha256, so it always parses; going
    // through the parser (rather than an unchecked constructor) keeps one code path.
    Digest::try_from(format!("sha256:{hex}")).unwrap_or_else(|_| unreachable_digest())
}

#[cold]
fn unreachable_digest() -> Digest {
    // A fixed, valid digest; only reachable if `hex::encode` broke its contract.
    Digest::try_from("sha256:0000000000000000000000000000000000000000000000000000000000000000")
        .expect("constant digest parses")
}

/// The hex part of a sha256 digest, refusing other algorithms and malformed values so a
/// digest can safely become a file name under `blobs/sha256/`.
pub(crate) fn sha256_hex(digest: &Digest) -> Result<&str> {
    let hex = digest.digest();
    let ok = digest.algorithm().as_ref() == "sha256"
        && hex.len() == 64
        && hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if ok {
        Ok(hex)
    } else {
        Err(Error::BadDigest(digest.to_string()))
    }
}

/// Parses `sha256:<hex>` from a string, with the same checks as [`sha256_hex`].
pub(crate) fn parse_sha256(s: &str) -> Result<Digest> {
    let d = Digest::try_from(s).map_err(|_| Error::BadDigest(s.to_string()))?;
    sha256_hex(&d)?;
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_and_counts() {
        let mut w = Sha256Writer::new(Vec::new());
        w.write_all(b"abc").unwrap();
        let (inner, d, n) = w.finish();
        assert_eq!(inner, b"abc");
        assert_eq!(n, 3);
        assert_eq!(
            d.to_string(),
            "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(sha256_hex_of(b"abc"), d);
    }

    #[test]
    fn refuses_other_algorithms_and_bad_hex() {
        assert!(parse_sha256("sha512:abcd").is_err());
        assert!(parse_sha256("sha256:../../etc/passwd").is_err());
        assert!(parse_sha256("sha256:ABC").is_err());
        let ok = "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        assert_eq!(parse_sha256(ok).unwrap().to_string(), ok);
    }
}
