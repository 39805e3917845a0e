//! Reading layer tars: the compression is told by the stream's magic bytes (a layer's media
//! type is a claim, its bytes are the fact), the uncompressed stream is hashed on the way for
//! the diff_id, and each entry is turned into a checked [`TarEntry`] before anything touches
//! the disk.

use crate::error::{Error, Result};
use sha2::{Digest as _, Sha256};
use std::io::{self, Read};
use strata_oci::compress::Codec;
use strata_oci::oci_spec::image::Digest;

/// The uncompressed bytes of a layer blob, whichever of plain tar, gzip or zstd it is.
pub fn decompress<'a>(mut blob: impl Read + 'a) -> io::Result<Box<dyn Read + 'a>> {
    let mut magic = [0u8; 4];
    let mut got = 0;
    while got < magic.len() {
        match blob.read(&mut magic[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let codec = match magic {
        [0x1f, 0x8b, ..] => Codec::Gzip,
        [0x28, 0xb5, 0x2f, 0xfd] => Codec::Zstd,
        _ => Codec::Plain,
    };
    let whole = io::Cursor::new(magic[..got].to_vec()).chain(blob);
    codec.decoder(whole)
}

/// Hashes and counts what passes through: the diff_id is the sha256 of the whole
/// uncompressed stream, end-of-archive blocks and trailing padding included.
pub(crate) struct Hashing<R> {
    inner: R,
    hasher: Sha256,
    count: u64,
}

impl<R: Read> Hashing<R> {
    pub(crate) fn new(inner: R) -> Self {
        Hashing { inner, hasher: Sha256::new(), count: 0 }
    }

    /// Reads what is left, then returns the digest and the byte count.
    pub(crate) fn finish(mut self) -> io::Result<(Digest, u64)> {
        io::copy(&mut self, &mut io::sink())?;
        let hex = hex::encode(self.hasher.finalize());
        let digest = Digest::try_from(format!("sha256:{hex}")).map_err(io::Error::other)?;
        Ok((digest, self.count))
    }
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Kind {
    File,
    Dir,
    Symlink(Vec<u8>),
    /// Target path, normalised like entry paths.
    Hardlink(Vec<u8>),
    Char(u32, u32),
    Block(u32, u32),
    Fifo,
}

#[derive(Debug, Clone)]
pub(crate) struct TarEntry {
    /// Normalised: relative, no `.`/empty components, `""` for the root itself.
    pub path: Vec<u8>,
    pub kind: Kind,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime: i64,
    pub mtime_nsec: i64,
    /// Only the ones an image may carry ([`crate::fsx::image_xattr`]); the rest are dropped
    /// here so nothing below ever sets `trusted.overlay.*` from a tarball.
    pub xattrs: Vec<(String, Vec<u8>)>,
}

/// An entry name as the extractor will use it. Leading `/` and `.` components are dropped
/// (GNU tar does the same: an absolute name means "inside the root"); `..` is refused, since
/// no layer writer produces it and it only serves to climb out.
pub(crate) fn normalize(raw: &[u8]) -> Result<Vec<u8>> {
    if raw.contains(&0) {
        return Err(Error::hostile(raw, "name contains NUL"));
    }
    let mut out = Vec::with_capacity(raw.len());
    for comp in raw.split(|&b| b == b'/') {
        match comp {
            b"" | b"." => {}
            b".." => return Err(Error::hostile(raw, "name has a `..` component")),
            c => {
                if !out.is_empty() {
                    out.push(b'/');
                }
                out.extend_from_slice(c);
            }
        }
    }
    Ok(out)
}

fn parse_num<T: std::str::FromStr>(path: &[u8], key: &str, v: &[u8]) -> Result<T> {
    std::str::from_utf8(v)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| Error::hostile(path, format!("bad PAX {key} {:?}", String::from_utf8_lossy(v))))
}

/// `1700000000` or `1700000000.5` (PAX allows a fraction, and a sign).
fn parse_pax_time(path: &[u8], v: &[u8]) -> Result<(i64, i64)> {
    let s = std::str::from_utf8(v).map_err(|_| Error::hostile(path, "bad PAX mtime"))?;
    let (sec, frac) = s.split_once('.').unwrap_or((s, ""));
    let sec: i64 = parse_num(path, "mtime", sec.as_bytes())?;
    let digits: String = frac.chars().take(9).collect();
    if !digits.chars().all(|c| c.is_ascii_digit()) {
        return Err(Error::hostile(path, "bad PAX mtime"));
    }
    let nsec = if digits.is_empty() { 0 } else { format!("{digits:0<9}").parse::<i64>().unwrap_or(0) };
    // A negative time with a fraction counts down from the whole second.
    Ok(if sec < 0 && nsec > 0 { (sec - 1, 1_000_000_000 - nsec) } else { (sec, nsec) })
}

/// Reads one entry's header (PAX records included) into a [`TarEntry`]; `None` for entries
/// that carry no file (global PAX headers).
pub(crate) fn parse<R: Read>(e: &mut tar::Entry<'_, R>) -> Result<Option<TarEntry>> {
    let raw_path = e.path_bytes().into_owned();
    let bad = |what: &str, err: io::Error| Error::hostile(&raw_path, format!("{what}: {err}"));
    let mut pax = Vec::new();
    if let Some(records) = e.pax_extensions().map_err(|err| bad("PAX header", err))? {
        for rec in records {
            let rec = rec.map_err(|err| bad("PAX record", err))?;
            pax.push((rec.key_bytes().to_vec(), rec.value_bytes().to_vec()));
        }
    }
    let h = e.header();
    let mut uid = h.uid().map_err(|err| bad("uid", err))?;
    let mut gid = h.gid().map_err(|err| bad("gid", err))?;
    let mut mtime = h.mtime().map_err(|err| bad("mtime", err))? as i64;
    let mut mtime_nsec = 0;
    let mode = h.mode().map_err(|err| bad("mode", err))? & 0o7777;
    let ty = h.entry_type();
    let dev = || -> Result<(u32, u32)> {
        let major = h.device_major().map_err(|err| bad("device major", err))?.unwrap_or(0);
        let minor = h.device_minor().map_err(|err| bad("device minor", err))?.unwrap_or(0);
        Ok((major, minor))
    };
    let link = || -> Result<Vec<u8>> {
        match e.link_name_bytes() {
            Some(l) if !l.is_empty() => Ok(l.into_owned()),
            _ => Err(Error::hostile(&raw_path, "link without a target")),
        }
    };
    let kind = match ty {
        tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::GNUSparse => {
            // Pre-POSIX tars mark directories with a trailing slash only.
            if raw_path.ends_with(b"/") && e.size() == 0 {
                Kind::Dir
            } else {
                Kind::File
            }
        }
        tar::EntryType::Directory => Kind::Dir,
        tar::EntryType::Symlink => Kind::Symlink(link()?),
        tar::EntryType::Link => Kind::Hardlink(normalize(&link()?)?),
        tar::EntryType::Char => {
            let (a, b) = dev()?;
            Kind::Char(a, b)
        }
        tar::EntryType::Block => {
            let (a, b) = dev()?;
            Kind::Block(a, b)
        }
        tar::EntryType::Fifo => Kind::Fifo,
        tar::EntryType::XGlobalHeader => return Ok(None),
        other => return Err(Error::unsupported(&raw_path, format!("tar entry type {:?}", other.as_byte() as char))),
    };
    let mut xattrs = Vec::new();
    for (key, value) in pax {
        match key.as_slice() {
            b"uid" => uid = parse_num(&raw_path, "uid", &value)?,
            b"gid" => gid = parse_num(&raw_path, "gid", &value)?,
            b"mtime" => (mtime, mtime_nsec) = parse_pax_time(&raw_path, &value)?,
            _ => {
                if let Some(name) = key.strip_prefix(b"SCHILY.xattr.") {
                    let name = String::from_utf8_lossy(name).into_owned();
                    if crate::fsx::image_xattr(&name) {
                        xattrs.push((name, value));
                    }
                }
            }
        }
    }
    let uid = u32::try_from(uid).map_err(|_| Error::hostile(&raw_path, "uid out of range"))?;
    let gid = u32::try_from(gid).map_err(|_| Error::hostile(&raw_path, "gid out of range"))?;
    Ok(Some(TarEntry { path: normalize(&raw_path)?, kind, mode, uid, gid, mtime, mtime_nsec, xattrs }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_neutralised_or_refused() {
        assert_eq!(normalize(b"./usr/bin/").unwrap(), b"usr/bin");
        assert_eq!(normalize(b"/etc//passwd").unwrap(), b"etc/passwd");
        assert_eq!(normalize(b"./").unwrap(), b"");
        assert_eq!(normalize(b"a..b/..c").unwrap(), b"a..b/..c");
        for bad in [&b"../x"[..], b"a/../../x", b"a/..", b"a\0b"] {
            assert!(normalize(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn pax_times_keep_their_fraction() {
        assert_eq!(parse_pax_time(b"x", b"12").unwrap(), (12, 0));
        assert_eq!(parse_pax_time(b"x", b"12.5").unwrap(), (12, 500_000_000));
        assert_eq!(parse_pax_time(b"x", b"-1.25").unwrap(), (-2, 750_000_000));
        assert!(parse_pax_time(b"x", b"1.x").is_err());
    }

    #[test]
    fn compression_is_told_by_magic() {
        let data = b"not a tar, just bytes".repeat(100);
        let mut gz = flate_gz(&data);
        let mut out = Vec::new();
        decompress(&gz[..]).unwrap().read_to_end(&mut out).unwrap();
        assert_eq!(out, data);
        let zst = zstd_bytes(&data);
        out.clear();
        decompress(&zst[..]).unwrap().read_to_end(&mut out).unwrap();
        assert_eq!(out, data);
        out.clear();
        decompress(&data[..]).unwrap().read_to_end(&mut out).unwrap();
        assert_eq!(out, data);
        out.clear();
        decompress(&b"ab"[..]).unwrap().read_to_end(&mut out).unwrap();
        assert_eq!(out, b"ab", "streams shorter than a magic are plain");
        gz.truncate(gz.len() / 2);
        assert!(decompress(&gz[..]).unwrap().read_to_end(&mut out).is_err(), "a cut gzip stream is an error");
    }

    fn flate_gz(data: &[u8]) -> Vec<u8> {
        let mut w = strata_oci::compress::Compression::Gzip { level: 6 }.writer(Vec::new(), 1).unwrap();
        io::Write::write_all(&mut w, data).unwrap();
        w.finish().unwrap()
    }

    fn zstd_bytes(data: &[u8]) -> Vec<u8> {
        let mut w = strata_oci::compress::Compression::zstd().writer(Vec::new(), 1).unwrap();
        io::Write::write_all(&mut w, data).unwrap();
        w.finish().unwrap()
    }
}
