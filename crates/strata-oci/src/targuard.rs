//! Bounds on a tar stream's extension headers, checked on the bytes before the `tar` crate
//! sees them.
//!
//! The `tar` crate reads a GNU long name (`L`/`K`) or a PAX header (`x`/`g`) whole into memory
//! before the entry it describes, whatever size its header claims: a layer or an ADD archive
//! holding one 8 GiB PAX header takes 8 GiB of RAM. This reader follows the tar framing (512-byte
//! headers, content padded to 512, a PAX `size` record resizing the next entry, GNU sparse
//! extension blocks) and refuses such a header as soon as its size field is seen, before a byte
//! of its content is handed on. The bounds are fixed: an archive that trips one is hostile or
//! broken, and there is nothing to configure (docs/decisions.md, "Bounded parsers").

use std::io::{self, Read};

/// Content of one PAX or GNU extension header. Go's archive/tar (which writes most layers)
/// refuses more with the same figure (`maxSpecialFileSize`); real ones hold a long path and a
/// few xattrs, each at most 64 KiB on Linux.
pub const MAX_EXTENSION: u64 = 1 << 20;
/// A path or link target (PATH_MAX): nothing longer can have been read from a file system by
/// the tool that wrote the archive.
pub const MAX_PATH: usize = 4096;

const BLOCK: usize = 512;

enum State {
    /// Collecting a 512-byte header.
    Header,
    /// Passing `left` bytes of content and padding; the first `keep` of them are collected
    /// when the content is a PAX header whose records matter.
    Content { left: u64, keep: u64 },
    /// Collecting GNU sparse extension blocks, `size` being the data that follows them.
    SparseExt { size: u64 },
    /// The framing no longer makes sense (bad checksum, unparsable size): the `tar` crate will
    /// refuse the archive itself, so stop looking.
    Lost,
}

pub struct TarGuard<R> {
    inner: R,
    state: State,
    block: Vec<u8>,
    /// Bytes of the stream seen, for messages.
    offset: u64,
    /// Content of the PAX header being read.
    pax: Vec<u8>,
    /// A PAX `size` record for the next entry that is not itself an extension header.
    next_size: Option<u64>,
}

impl<R: Read> TarGuard<R> {
    pub fn new(inner: R) -> Self {
        TarGuard { inner, state: State::Header, block: Vec::with_capacity(BLOCK), offset: 0, pax: Vec::new(), next_size: None }
    }

    pub fn into_inner(self) -> R {
        self.inner
    }

    fn refuse(&self, what: String) -> io::Error {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("tar entry at byte {}: {what}; refusing the archive as hostile or broken (a fixed limit, not a setting)", self.offset),
        )
    }

    /// Follows the framing over `bytes`, which the caller hands on only if this succeeds.
    fn observe(&mut self, mut bytes: &[u8]) -> io::Result<()> {
        while !bytes.is_empty() {
            match &mut self.state {
                State::Lost => return Ok(()),
                State::Content { left, keep } => {
                    let n = bytes.len().min((*left).min(usize::MAX as u64) as usize);
                    let k = n.min((*keep).min(usize::MAX as u64) as usize);
                    self.pax.extend_from_slice(&bytes[..k]);
                    *keep -= k as u64;
                    *left -= n as u64;
                    let (done, pax_done) = (*left == 0, k > 0 && *keep == 0);
                    bytes = &bytes[n..];
                    self.offset += n as u64;
                    if pax_done {
                        self.pax_records()?;
                    }
                    if done {
                        self.state = State::Header;
                    }
                }
                State::Header | State::SparseExt { .. } => {
                    let n = bytes.len().min(BLOCK - self.block.len());
                    self.block.extend_from_slice(&bytes[..n]);
                    bytes = &bytes[n..];
                    if self.block.len() == BLOCK {
                        let block = std::mem::take(&mut self.block);
                        let next = match self.state {
                            State::SparseExt { size } => Ok(after_sparse(&block, size)),
                            _ => self.header(&block),
                        };
                        self.block = block;
                        self.block.clear();
                        self.state = next?;
                    }
                    self.offset += n as u64;
                }
            }
        }
        Ok(())
    }

    /// The state after a complete header block.
    fn header(&mut self, h: &[u8]) -> io::Result<State> {
        if h.iter().all(|&b| b == 0) {
            return Ok(State::Header); // end-of-archive blocks
        }
        let (Some(declared), true) = (number(&h[124..136]), checksum_ok(h)) else {
            return Ok(State::Lost);
        };
        let kind = h[156];
        let extension = matches!(kind, b'x' | b'g' | b'L' | b'K');
        let size = if extension { declared } else { self.next_size.take().unwrap_or(declared) };
        let (what, max) = match kind {
            b'x' | b'g' => ("PAX header", MAX_EXTENSION),
            b'L' => ("GNU long name", MAX_PATH as u64 + 1),
            b'K' => ("GNU long link name", MAX_PATH as u64 + 1),
            _ => ("", u64::MAX),
        };
        if size > max {
            return Err(self.refuse(format!("a {what} of {size} bytes, over the limit of {max}")));
        }
        let padded = size.div_ceil(BLOCK as u64) * BLOCK as u64;
        // Only a local PAX header's records change what follows (the tar crate ignores a
        // global one's `size`), so only its content is kept.
        let keep = if kind == b'x' { size } else { 0 };
        self.pax.clear();
        // An old-GNU sparse header with `isextended` set is followed by extension blocks.
        if kind == b'S' && h[482] != 0 {
            return Ok(State::SparseExt { size: padded });
        }
        if padded == 0 {
            return Ok(State::Header);
        }
        Ok(State::Content { left: padded, keep })
    }

    /// A complete local PAX header: its `size` resizes the next entry; paths are bounded.
    fn pax_records(&mut self) -> io::Result<()> {
        let pax = std::mem::take(&mut self.pax);
        let mut rest = &pax[..];
        while !rest.is_empty() {
            // "LEN key=value\n", LEN counting the whole record.
            let Some(sp) = rest.iter().position(|&b| b == b' ') else { break };
            let Some(len) = std::str::from_utf8(&rest[..sp]).ok().and_then(|s| s.parse::<usize>().ok()) else { break };
            if len <= sp || len > rest.len() {
                break; // malformed: the tar crate reports it
            }
            let record = &rest[sp + 1..len];
            let record = record.strip_suffix(b"\n").unwrap_or(record);
            if let Some(eq) = record.iter().position(|&b| b == b'=') {
                let (key, value) = (&record[..eq], &record[eq + 1..]);
                match key {
                    b"size" => self.next_size = std::str::from_utf8(value).ok().and_then(|v| v.parse().ok()),
                    b"path" | b"linkpath" if value.len() > MAX_PATH => {
                        let key = String::from_utf8_lossy(key).into_owned();
                        return Err(self.refuse(format!("a PAX {key} of {} bytes, over the limit of {MAX_PATH}", value.len())));
                    }
                    _ => {}
                }
            }
            rest = &rest[len..];
        }
        Ok(())
    }
}

/// After one GNU sparse extension block: another one, or the entry's data.
fn after_sparse(block: &[u8], padded: u64) -> State {
    if block[504] != 0 {
        State::SparseExt { size: padded }
    } else if padded == 0 {
        State::Header
    } else {
        State::Content { left: padded, keep: 0 }
    }
}

/// A numeric header field as the tar crate reads it: octal text, or base-256 when the high
/// bit of the first byte is set (GNU, for values octal cannot hold).
fn number(field: &[u8]) -> Option<u64> {
    if field[0] & 0x80 != 0 {
        let tail = &field[field.len() - 8..];
        return Some(u64::from_be_bytes(tail.try_into().ok()?));
    }
    let end = field.iter().position(|&b| b == 0).unwrap_or(field.len());
    let text = std::str::from_utf8(&field[..end]).ok()?.trim();
    if text.is_empty() {
        return Some(0);
    }
    u64::from_str_radix(text, 8).ok()
}

/// The header checksum (bytes summed with the checksum field as spaces), as the tar crate
/// verifies it: a block that fails is not a header this reader should judge.
fn checksum_ok(h: &[u8]) -> bool {
    let Some(stored) = number(&h[148..156]) else { return false };
    let sum: u64 = h.iter().enumerate().map(|(i, &b)| if (148..156).contains(&i) { u64::from(b' ') } else { u64::from(b) }).sum();
    sum == stored
}

impl<R: Read> Read for TarGuard<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.observe(&buf[..n])?;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(name: &str, kind: tar::EntryType, size: u64) -> tar::Header {
        let mut h = tar::Header::new_ustar();
        h.set_path(name).unwrap();
        h.set_entry_type(kind);
        h.set_size(size);
        h.set_mode(0o644);
        h.set_cksum();
        h
    }

    /// A local PAX header entry holding `records`.
    fn pax(b: &mut tar::Builder<Vec<u8>>, records: &[(&str, &[u8])]) {
        let mut data = Vec::new();
        for (k, v) in records {
            let body = k.len() + v.len() + 3; // ' ', '=', '\n'
            let mut len = body + 1;
            while len != body + len.to_string().len() {
                len = body + len.to_string().len();
            }
            data.extend_from_slice(format!("{len} {k}=").as_bytes());
            data.extend_from_slice(v);
            data.push(b'\n');
        }
        b.append(&header("pax", tar::EntryType::XHeader, data.len() as u64), &data[..]).unwrap();
    }

    fn read_all(bytes: &[u8]) -> io::Result<Vec<(String, Vec<u8>)>> {
        let mut a = tar::Archive::new(TarGuard::new(bytes));
        let mut out = Vec::new();
        for e in a.entries()? {
            let mut e = e?;
            let name = String::from_utf8_lossy(&e.path_bytes()).into_owned();
            let mut data = Vec::new();
            e.read_to_end(&mut data)?;
            out.push((name, data));
        }
        Ok(out)
    }

    #[test]
    fn ordinary_archives_pass_unchanged() {
        let mut b = tar::Builder::new(Vec::new());
        let long = format!("{}/file", "d".repeat(300));
        b.append_data(&mut header("x", tar::EntryType::Regular, 3), &long, &b"abc"[..]).unwrap(); // GNU long name
        b.append(&header("empty", tar::EntryType::Regular, 0), &b""[..]).unwrap();
        b.append(&header("dir/", tar::EntryType::Directory, 0), &b""[..]).unwrap();
        pax(&mut b, &[("SCHILY.xattr.user.a", b"v"), ("path", b"p/q")]);
        b.append(&header("ignored", tar::EntryType::Regular, 2), &b"hi"[..]).unwrap();
        let bytes = b.into_inner().unwrap();
        let got = read_all(&bytes).unwrap();
        let names: Vec<&str> = got.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, [long.as_str(), "empty", "dir/", "p/q"]);
        assert_eq!(got[0].1, b"abc");
        assert_eq!(got[3].1, b"hi");
    }

    #[test]
    fn a_giant_pax_header_is_refused_before_it_is_read() {
        // Claims 8 GiB of PAX records; only its header block exists.
        let mut bytes = header("pax", tar::EntryType::XHeader, 8 << 30).as_bytes().to_vec();
        bytes.extend_from_slice(&[b'9'; 4096]);
        let e = read_all(&bytes).unwrap_err();
        assert!(e.to_string().contains("a PAX header of 8589934592 bytes, over the limit of 1048576"), "{e}");
        let bytes = header("ln", tar::EntryType::GNULongName, 5000).as_bytes().to_vec();
        let e = read_all(&bytes).unwrap_err();
        assert!(e.to_string().contains("a GNU long name of 5000 bytes, over the limit of 4097"), "{e}");
    }

    #[test]
    fn pax_paths_are_bounded_and_pax_size_followed() {
        let mut b = tar::Builder::new(Vec::new());
        let long = "a/".repeat(2100);
        pax(&mut b, &[("path", long.as_bytes())]);
        b.append(&header("x", tar::EntryType::Regular, 0), &b""[..]).unwrap();
        let e = read_all(&b.into_inner().unwrap()).unwrap_err();
        assert!(e.to_string().contains("a PAX path of 4200 bytes, over the limit of 4096"), "{e}");
        // A PAX size record resizes the next entry: the guard must follow it, or it would
        // judge content as headers. Content made to look like a huge PAX header proves it.
        let trap = header("trap", tar::EntryType::XHeader, 8 << 30);
        let mut b = tar::Builder::new(Vec::new());
        pax(&mut b, &[("size", b"512")]);
        b.append(&header("f", tar::EntryType::Regular, 0), &trap.as_bytes()[..]).unwrap();
        let mut bytes = b.into_inner().unwrap();
        bytes.truncate(bytes.len() - 1024);
        bytes.extend_from_slice(trap.as_bytes());
        bytes.extend(vec![0; 1024]);
        let bytes_ok = {
            let mut v = bytes.clone();
            let at = v.len() - 1024 - 512;
            v.drain(at..at + 512); // without the real trap header after the data
            v
        };
        let got = read_all(&bytes_ok).unwrap();
        assert_eq!(got[0].1.len(), 512);
        let e = read_all(&bytes).unwrap_err();
        assert!(e.to_string().contains("a PAX header of 8589934592 bytes"), "the real header after the data is judged: {e}");
    }
}
