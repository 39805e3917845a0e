//! A streaming reader for rpm's cpio payloads: the SVR4 "newc" format (`070701`, and
//! `070702` with checksums) and rpm ≥ 4.12's stripped format (`07070X`) used for packages
//! with files over 4 GiB, whose entries carry only an index into the header's file list.
//!
//! Content is never buffered: after [`CpioReader::next_entry`] the entry's bytes can be
//! read through [`CpioReader::content`]; whatever is left unread is skipped on the next call.

use std::io::{self, Read};

const NEWC_HEADER: usize = 110;
const STRIPPED_HEADER: usize = 14;
/// rpm refuses longer names too (PATH_MAX); anything larger is corruption.
const MAX_NAME: usize = 4096;

/// One entry's header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CpioEntry {
    /// The name as stored (rpm writes `./usr/bin/bash`); empty for stripped entries.
    pub name: Vec<u8>,
    /// For stripped entries: the file's index in the header's file list.
    pub index: Option<u32>,
    pub mode: u32,
    pub ino: u32,
    pub nlink: u32,
    pub mtime: u32,
    /// Content bytes that follow the header (0 for all but one member of a hardlink set).
    pub size: u64,
}

pub struct CpioReader<R> {
    inner: R,
    remaining: u64,
    pad: u64,
    finished: bool,
}

fn hex_field(h: &[u8], i: usize) -> io::Result<u32> {
    let s = &h[6 + 8 * i..6 + 8 * (i + 1)];
    let text = std::str::from_utf8(s).map_err(|_| bad("non-hex header field"))?;
    u32::from_str_radix(text, 16).map_err(|_| bad("non-hex header field"))
}

fn bad(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("cpio payload: {msg}"))
}

fn pad4(n: u64) -> u64 {
    (4 - n % 4) % 4
}

impl<R: Read> CpioReader<R> {
    pub fn new(inner: R) -> Self {
        CpioReader { inner, remaining: 0, pad: 0, finished: false }
    }

    /// The next entry, or `None` after the `TRAILER!!!` entry. A stream that ends early is
    /// an `UnexpectedEof` error, so a truncated payload can never look complete.
    pub fn next_entry(&mut self) -> io::Result<Option<CpioEntry>> {
        if self.finished {
            return Ok(None);
        }
        self.skip(self.remaining + self.pad)?;
        self.remaining = 0;
        self.pad = 0;
        let mut magic = [0u8; 6];
        self.inner.read_exact(&mut magic)?;
        match &magic {
            b"070701" | b"070702" => self.newc(magic),
            b"07070X" => {
                let mut rest = [0u8; STRIPPED_HEADER - 6];
                self.inner.read_exact(&mut rest)?;
                let text = std::str::from_utf8(&rest).map_err(|_| bad("bad stripped header"))?;
                let index = u32::from_str_radix(text, 16).map_err(|_| bad("bad stripped header"))?;
                // Size comes from the header's file list: the caller sets it.
                Ok(Some(CpioEntry { name: Vec::new(), index: Some(index), mode: 0, ino: 0, nlink: 0, mtime: 0, size: 0 }))
            }
            _ => Err(bad(&format!("bad entry magic {:?}", String::from_utf8_lossy(&magic)))),
        }
    }

    fn newc(&mut self, magic: [u8; 6]) -> io::Result<Option<CpioEntry>> {
        let mut h = [0u8; NEWC_HEADER];
        h[..6].copy_from_slice(&magic);
        self.inner.read_exact(&mut h[6..])?;
        let field = |i| hex_field(&h, i);
        let (ino, mode, nlink, mtime, size, namesize) = (field(0)?, field(1)?, field(4)?, field(5)?, field(6)?, field(11)?);
        let namesize = namesize as usize;
        if namesize == 0 || namesize > MAX_NAME {
            return Err(bad(&format!("implausible name size {namesize}")));
        }
        let mut name = vec![0u8; namesize];
        self.inner.read_exact(&mut name)?;
        if name.pop() != Some(0) {
            return Err(bad("entry name is not NUL-terminated"));
        }
        self.skip(pad4((NEWC_HEADER + namesize) as u64))?;
        if name == b"TRAILER!!!" {
            self.finished = true;
            return Ok(None);
        }
        self.remaining = u64::from(size);
        self.pad = pad4(u64::from(size));
        Ok(Some(CpioEntry { name, index: None, mode, ino, nlink, mtime, size: u64::from(size) }))
    }

    /// For stripped entries: how many content bytes follow (from the header's file list).
    pub fn set_content_size(&mut self, size: u64) {
        self.remaining = size;
        self.pad = pad4(size);
    }

    /// The current entry's content; reads past its end return 0.
    pub fn content(&mut self) -> Content<'_, R> {
        Content { reader: self }
    }

    fn skip(&mut self, n: u64) -> io::Result<()> {
        let copied = io::copy(&mut (&mut self.inner).take(n), &mut io::sink())?;
        if copied != n {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "cpio payload ends early"));
        }
        Ok(())
    }
}

pub struct Content<'a, R> {
    reader: &'a mut CpioReader<R>,
}

impl<R: Read> Read for Content<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let r = &mut *self.reader;
        if r.remaining == 0 || buf.is_empty() {
            return Ok(0);
        }
        let want = buf.len().min(r.remaining.min(usize::MAX as u64) as usize);
        let got = r.inner.read(&mut buf[..want])?;
        if got == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "cpio payload ends inside a file"));
        }
        r.remaining -= got as u64;
        Ok(got)
    }
}

/// The most bytes an rpm cpio archive of these files can take: per file a newc header, its
/// name as rpm writes it (`./` + path without `/`, NUL), its content, padding to 4 bytes
/// twice; then the trailer. Stripped (`07070X`) archives are smaller. When the header
/// declares the archive size (rpm always writes it), the smaller of the two figures applies:
/// a payload never needs more than either says.
pub(crate) fn archive_bound(declared: Option<u64>, files: impl Iterator<Item = (usize, u64)>) -> u64 {
    const TRAILER: u64 = NEWC_HEADER as u64 + 11 + 3;
    let from_files = files.fold(TRAILER, |sum, (path_len, size)| {
        sum.saturating_add(NEWC_HEADER as u64 + path_len as u64 + 2 + 3).saturating_add(size).saturating_add(3)
    });
    declared.map_or(from_files, |d| d.min(from_files))
}

/// A decompressed payload held to `limit` bytes: one byte more is an `InvalidData` error
/// naming the limit, so a small package cannot expand into more than its header declares.
pub(crate) struct Bounded<R> {
    inner: R,
    left: u64,
    limit: u64,
}

impl<R: Read> Bounded<R> {
    pub(crate) fn new(inner: R, limit: u64) -> Self {
        Bounded { inner, left: limit, limit }
    }
}

impl<R: Read> Read for Bounded<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        // Ask for one byte past the limit, so going over shows without reading further.
        let want = buf.len().min(self.left.saturating_add(1).min(usize::MAX as u64) as usize);
        let n = self.inner.read(&mut buf[..want])?;
        if n as u64 > self.left {
            return Err(bad(&format!(
                "decompresses to more than {} bytes, what the header's archive size and file sizes \
                 allow; refusing it as hostile or broken",
                self.limit
            )));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn newc(name: &str, mode: u32, data: &[u8]) -> Vec<u8> {
        let mut v = format!(
            "070701{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}",
            1, mode, 0, 0, 1, 0, data.len(), 0, 0, 0, 0, name.len() + 1, 0
        )
        .into_bytes();
        v.extend_from_slice(name.as_bytes());
        v.push(0);
        while v.len() % 4 != 0 {
            v.push(0);
        }
        v.extend_from_slice(data);
        while v.len() % 4 != 0 {
            v.push(0);
        }
        v
    }

    #[test]
    fn reads_entries_and_skips_unread_content() {
        let mut archive = newc("./a", 0o100644, b"hello");
        archive.extend(newc("./b", 0o100600, b"world!"));
        archive.extend(newc("TRAILER!!!", 0, b""));
        let mut r = CpioReader::new(&archive[..]);
        let a = r.next_entry().unwrap().unwrap();
        assert_eq!((a.name.as_slice(), a.size), (&b"./a"[..], 5));
        let b = r.next_entry().unwrap().unwrap();
        let mut s = String::new();
        r.content().read_to_string(&mut s).unwrap();
        assert_eq!((b.mode, s.as_str()), (0o100600, "world!"));
        assert!(r.next_entry().unwrap().is_none());
        assert!(r.next_entry().unwrap().is_none());
    }

    #[test]
    fn payload_is_held_to_its_bound() {
        let mut archive = newc("./a", 0o100644, b"hello");
        archive.extend(newc("TRAILER!!!", 0, b""));
        let bound = archive_bound(None, [(2usize, 5u64)].into_iter());
        assert!(bound >= archive.len() as u64, "{bound} < {}", archive.len());
        assert_eq!(archive_bound(Some(10), [(2usize, 5u64)].into_iter()), 10);
        let mut out = Vec::new();
        Bounded::new(&archive[..], archive.len() as u64).read_to_end(&mut out).unwrap();
        assert_eq!(out, archive);
        let e = Bounded::new(&archive[..], archive.len() as u64 - 1).read_to_end(&mut Vec::new()).unwrap_err();
        assert!(e.to_string().contains(&format!("more than {} bytes", archive.len() - 1)), "{e}");
        // An endless stream stops at the limit.
        let e = Bounded::new(io::repeat(b'0'), 1 << 20).read_to_end(&mut Vec::new()).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
    }

    #[test]
    fn truncation_and_garbage_are_errors() {
        let mut archive = newc("./a", 0o100644, b"hello");
        archive.extend(newc("TRAILER!!!", 0, b""));
        for cut in [3, 50, 113, 118, archive.len() - 1] {
            let mut r = CpioReader::new(&archive[..cut]);
            let err = (|| -> io::Result<()> {
                while r.next_entry()?.is_some() {
                    io::copy(&mut r.content(), &mut io::sink())?;
                }
                Ok(())
            })();
            assert!(err.is_err(), "cut at {cut} must fail");
        }
        let mut garbage = archive.clone();
        garbage[0] = b'X';
        assert!(CpioReader::new(&garbage[..]).next_entry().is_err());
    }
}
