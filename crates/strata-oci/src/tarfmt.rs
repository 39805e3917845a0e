//! Encoding of tar headers: POSIX ustar blocks plus PAX extended headers where ustar has no
//! room (long paths and link targets, big ids and sizes, long user names, xattrs).
//!
//! Written by hand rather than through the `tar` crate's builder so every byte is decided
//! here: no atime/ctime, device numbers only on device entries, fixed PAX header names, and
//! one PAX record order (sorted keys). The `tar` crate is used in tests to read the result back.

use std::io::{self, Write};

/// Size of a tar block.
pub(crate) const BLOCK: u64 = 512;

/// The entry types this crate writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    File,
    Hardlink,
    Symlink,
    Dir,
    /// Character device (major, minor).
    Char(u32, u32),
    /// Block device (major, minor).
    Block(u32, u32),
    Fifo,
}

impl Kind {
    fn typeflag(self) -> u8 {
        match self {
            Kind::File => b'0',
            Kind::Hardlink => b'1',
            Kind::Symlink => b'2',
            Kind::Char(..) => b'3',
            Kind::Block(..) => b'4',
            Kind::Dir => b'5',
            Kind::Fifo => b'6',
        }
    }

    fn device(self) -> (u64, u64) {
        match self {
            Kind::Char(major, minor) | Kind::Block(major, minor) => (u64::from(major), u64::from(minor)),
            _ => (0, 0),
        }
    }
}

/// One entry's metadata as it goes into the archive.
pub(crate) struct Header<'a> {
    /// The name as stored; directories carry a trailing `/`.
    pub path: &'a [u8],
    pub kind: Kind,
    /// Permission bits including setuid/setgid/sticky (masked to 0o7777).
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub uname: &'a [u8],
    pub gname: &'a [u8],
    pub mtime: u64,
    /// Content size; only regular files have one.
    pub size: u64,
    /// Symlink or hardlink target.
    pub link: &'a [u8],
    /// Extended attributes, sorted by name (caller's duty, so output is stable).
    pub xattrs: &'a [(String, Vec<u8>)],
}

// Largest values the ustar octal fields hold: 7 digits for ids, 11 for size and mtime.
const MAX_ID: u64 = 0o7777777;
const MAX_SIZE: u64 = 0o77777777777;

/// Writes the header block(s) for `h`: a PAX extended header first if needed, then the ustar
/// block. Returns the number of bytes written.
pub(crate) fn write_header(w: &mut impl Write, h: &Header) -> io::Result<u64> {
    let mut pax: Vec<(String, Vec<u8>)> = Vec::new();
    if h.path.len() > 100 {
        pax.push(("path".into(), h.path.to_vec()));
    }
    if h.link.len() > 100 {
        pax.push(("linkpath".into(), h.link.to_vec()));
    }
    if h.uid > MAX_ID {
        pax.push(("uid".into(), h.uid.to_string().into_bytes()));
    }
    if h.gid > MAX_ID {
        pax.push(("gid".into(), h.gid.to_string().into_bytes()));
    }
    if h.size > MAX_SIZE {
        pax.push(("size".into(), h.size.to_string().into_bytes()));
    }
    if h.mtime > MAX_SIZE {
        pax.push(("mtime".into(), h.mtime.to_string().into_bytes()));
    }
    // ustar name fields are NUL-terminated strings of at most 31 bytes.
    if h.uname.len() > 31 {
        pax.push(("uname".into(), h.uname.to_vec()));
    }
    if h.gname.len() > 31 {
        pax.push(("gname".into(), h.gname.to_vec()));
    }
    for (name, value) in h.xattrs {
        pax.push((format!("SCHILY.xattr.{name}"), value.clone()));
    }

    let mut written = 0;
    if !pax.is_empty() {
        pax.sort_by(|a, b| a.0.cmp(&b.0));
        let mut data = Vec::new();
        for (k, v) in &pax {
            data.extend_from_slice(&pax_record(k, v));
        }
        let name = pax_header_name(h.path);
        let block = ustar_block(
            &Header {
                path: &name,
                kind: Kind::File,
                mode: 0o644,
                uid: 0,
                gid: 0,
                uname: b"",
                gname: b"",
                mtime: h.mtime.min(MAX_SIZE),
                size: data.len() as u64,
                link: b"",
                xattrs: &[],
            },
            b'x',
        );
        w.write_all(&block)?;
        w.write_all(&data)?;
        written += BLOCK + data.len() as u64;
        written += write_padding(w, data.len() as u64)?;
    }
    w.write_all(&ustar_block(h, h.kind.typeflag()))?;
    Ok(written + BLOCK)
}

/// Pads content of `size` bytes to the block boundary; returns the padding written.
pub(crate) fn write_padding(w: &mut impl Write, size: u64) -> io::Result<u64> {
    let pad = (BLOCK - size % BLOCK) % BLOCK;
    w.write_all(&[0u8; BLOCK as usize][..pad as usize])?;
    Ok(pad)
}

/// The end-of-archive marker: two zero blocks.
pub(crate) fn write_end(w: &mut impl Write) -> io::Result<u64> {
    w.write_all(&[0u8; 2 * BLOCK as usize])?;
    Ok(2 * BLOCK)
}

/// Name of the PAX header entry for `path`: `<dir>/PaxHeaders.0/<base>` as Go's archive/tar
/// writes it, truncated to fit ustar. Readers ignore it; it only has to be stable.
fn pax_header_name(path: &[u8]) -> Vec<u8> {
    let trimmed = path.strip_suffix(b"/").unwrap_or(path);
    let (dir, base) = match trimmed.iter().rposition(|&b| b == b'/') {
        Some(i) => (&trimmed[..=i], &trimmed[i + 1..]),
        None => (&b""[..], trimmed),
    };
    let mut name = Vec::with_capacity(100);
    name.extend_from_slice(dir);
    name.extend_from_slice(b"PaxHeaders.0/");
    name.extend_from_slice(base);
    name.truncate(100);
    name
}

/// One PAX record: `"<len> <key>=<value>\n"` where `len` counts the whole record.
fn pax_record(key: &str, value: &[u8]) -> Vec<u8> {
    let rest = key.len() + value.len() + 3; // ' ', '=', '\n'
    let mut len = rest + 1;
    while len.to_string().len() + rest != len {
        len = len.to_string().len() + rest;
    }
    let mut rec = Vec::with_capacity(len);
    rec.extend_from_slice(len.to_string().as_bytes());
    rec.push(b' ');
    rec.extend_from_slice(key.as_bytes());
    rec.push(b'=');
    rec.extend_from_slice(value);
    rec.push(b'\n');
    rec
}

fn ustar_block(h: &Header, typeflag: u8) -> [u8; BLOCK as usize] {
    let mut b = [0u8; BLOCK as usize];
    put_bytes(&mut b[0..100], h.path);
    put_octal(&mut b[100..108], u64::from(h.mode & 0o7777));
    put_octal(&mut b[108..116], h.uid.min(MAX_ID));
    put_octal(&mut b[116..124], h.gid.min(MAX_ID));
    put_octal(&mut b[124..136], h.size.min(MAX_SIZE));
    put_octal(&mut b[136..148], h.mtime.min(MAX_SIZE));
    b[156] = typeflag;
    put_bytes(&mut b[157..257], h.link);
    b[257..263].copy_from_slice(b"ustar\0");
    b[263..265].copy_from_slice(b"00");
    if h.uname.len() <= 31 {
        put_bytes(&mut b[265..297], h.uname);
    }
    if h.gname.len() <= 31 {
        put_bytes(&mut b[297..329], h.gname);
    }
    // Device numbers beyond ustar's 7 octal digits do not occur on Linux (12/20 bits).
    let (major, minor) = h.kind.device();
    put_octal(&mut b[329..337], major.min(MAX_ID));
    put_octal(&mut b[337..345], minor.min(MAX_ID));
    // The checksum is computed with its own field read as spaces.
    b[148..156].fill(b' ');
    let sum: u32 = b.iter().map(|&x| u32::from(x)).sum();
    let digits = format!("{sum:06o}");
    b[148..154].copy_from_slice(digits.as_bytes());
    b[154] = 0;
    b[155] = b' ';
    b
}

/// Copies as much of `src` as fits (callers move longer values to PAX records).
fn put_bytes(field: &mut [u8], src: &[u8]) {
    let n = src.len().min(field.len());
    field[..n].copy_from_slice(&src[..n]);
}

/// Zero-padded octal followed by NUL, the form GNU tar and Go write.
fn put_octal(field: &mut [u8], value: u64) {
    let width = field.len() - 1;
    let s = format!("{value:0width$o}");
    field[..width].copy_from_slice(&s.as_bytes()[s.len() - width..]);
    field[width] = 0;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pax_record_length_counts_itself() {
        // 9 + "path" + "=" + "abc" + "\n"... checked against the definition, not a constant.
        for value_len in [0usize, 1, 5, 90, 95, 96, 97, 990, 995, 996, 10_000] {
            let rec = pax_record("path", &vec![b'a'; value_len]);
            let sp = rec.iter().position(|&b| b == b' ').unwrap();
            let len: usize = std::str::from_utf8(&rec[..sp]).unwrap().parse().unwrap();
            assert_eq!(len, rec.len(), "value length {value_len}");
        }
    }

    #[test]
    fn checksum_and_fields_read_back() {
        let h = Header {
            path: b"usr/bin/ping",
            kind: Kind::File,
            mode: 0o4755,
            uid: 3,
            gid: 4,
            uname: b"u",
            gname: b"g",
            mtime: 1_700_000_000,
            size: 5,
            link: b"",
            xattrs: &[],
        };
        let mut out = Vec::new();
        assert_eq!(write_header(&mut out, &h).unwrap(), 512);
        let hdr = tar::Header::from_byte_slice(&out);
        assert_eq!(hdr.cksum().unwrap(), {
            let mut c = out.clone();
            c[148..156].fill(b' ');
            c.iter().map(|&x| u32::from(x)).sum::<u32>()
        });
        assert_eq!(hdr.mode().unwrap(), 0o4755);
        assert_eq!(hdr.size().unwrap(), 5);
        assert_eq!(hdr.mtime().unwrap(), 1_700_000_000);
        assert_eq!(hdr.path_bytes().as_ref(), b"usr/bin/ping");
    }

    #[test]
    fn long_values_go_to_pax() {
        let long = vec![b'x'; 150];
        let h = Header {
            path: &long,
            kind: Kind::Symlink,
            mode: 0o777,
            uid: 5_000_000,
            gid: 0,
            uname: b"",
            gname: b"",
            mtime: 0,
            size: 0,
            link: &long,
            xattrs: &[],
        };
        let mut out = Vec::new();
        let n = write_header(&mut out, &h).unwrap();
        assert_eq!(n as usize, out.len());
        assert_eq!(out[156], b'x');
        let text = String::from_utf8_lossy(&out);
        assert!(text.contains(" path=xxxx"));
        assert!(text.contains(" linkpath=xxxx"));
        assert!(text.contains(" uid=5000000\n"));
    }

    #[test]
    fn pax_header_names_are_stable_and_short() {
        assert_eq!(pax_header_name(b"a/b/c"), b"a/b/PaxHeaders.0/c");
        assert_eq!(pax_header_name(b"dir/"), b"PaxHeaders.0/dir");
        assert!(pax_header_name(&[b'y'; 300]).len() <= 100);
    }
}
