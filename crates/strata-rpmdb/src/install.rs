//! Turning a package's headers into the header rpm stores for an installed package.
//!
//! rpm (4.16+, `rpmdbAdd` → `headerExport`) stores: the package's immutable region
//! byte for byte, then entries it added after reading the package, sorted by tag, with
//! their data appended in the same order at increasing, type-aligned offsets:
//! - the signature header's tags, merged as `headerMergeLegacySigs` does (renamed
//!   legacy tags, range and size filters, never overriding a main-header tag);
//! - install-time tags: `FILESTATES`, `INSTALLTIME`, `INSTALLCOLOR`, `INSTALLTID`, and
//!   `INSTPREFIXES` for relocatable packages installed without relocation.

use crate::header::{parse_rpm, rpm_headers_len, tag, DataType, Entry, Header};
use crate::index::ByteOrder;
use crate::Error;
use std::io::Read;
use std::path::Path;

/// State of one file of an installed package (`rpmfileState`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FileState {
    /// Installed on disk.
    Normal,
    /// Replaced by another package's file.
    Replaced,
    /// Deliberately not installed (excluded docs, languages, `--excludepath`).
    NotInstalled,
    /// On a network share, not installed.
    NetShared,
    /// Not installed because of a multilib colour conflict.
    WrongColor,
}

impl FileState {
    fn raw(self) -> u8 {
        match self {
            FileState::Normal => 0,
            FileState::Replaced => 1,
            FileState::NotInstalled => 2,
            FileState::NetShared => 3,
            FileState::WrongColor => 4,
        }
    }
}

/// Transaction-wide install data. Fixed values make the rpmdb reproducible.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InstallOptions {
    /// `INSTALLTIME` of every package (seconds since the epoch).
    pub install_time: u32,
    /// `INSTALLTID`: rpm uses the transaction's start time; one value per write.
    pub install_tid: u32,
    /// `INSTALLCOLOR`: the transaction colour (`%_transaction_color`): 3 on 64-bit
    /// multilib arches (x86_64, aarch64, ppc64le, s390x), 0 where there is no multilib.
    pub install_color: u32,
    /// Byte order of integer index keys: the image's architecture's.
    pub index_byte_order: ByteOrder,
}

impl InstallOptions {
    /// Both time stamps set to `time`, the 64-bit multilib colour, little-endian keys.
    pub fn at(time: u32) -> Self {
        InstallOptions {
            install_time: time,
            install_tid: time,
            install_color: 3,
            index_byte_order: ByteOrder::Little,
        }
    }
}

/// One package to record as installed: its headers as found in the `.rpm`, plus the
/// state of each of its files.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InstalledPackage {
    /// Main header blob without magic; validated to have a full immutable region.
    main: Vec<u8>,
    /// Signature header blob without magic, if known.
    signature: Option<Vec<u8>>,
    file_states: Vec<FileState>,
}

/// A value rpm adds to the header at install time.
struct Added {
    tag: u32,
    ty: DataType,
    count: u32,
    data: Vec<u8>,
}

impl InstalledPackage {
    /// From the two header blobs (each with or without the 8-byte header magic). Without
    /// the signature header the rpmdb lacks `SHA1HEADER`/`SIGMD5`, so `rpm -V` cannot
    /// check the header digest and the Sha1header/Sigmd5 indexes stay empty; rpm itself
    /// always has it.
    pub fn from_headers(main: &[u8], signature: Option<&[u8]>) -> Result<Self, Error> {
        let (h, _) = Header::parse_prefix(main)?;
        h.check_full_region(tag::HEADERIMMUTABLE)?;
        for t in [tag::INSTALLTIME, tag::INSTALLTID, tag::FILESTATES] {
            if h.has(t) {
                return Err(Error::header(format!(
                    "header already carries install-time tag {t}: it comes from an rpmdb, not a package"
                )));
            }
        }
        let files = h.strings(tag::BASENAMES).len();
        let main = h.blob.to_vec();
        let signature = match signature {
            Some(bytes) => {
                let (s, _) = Header::parse_prefix(bytes)?;
                Some(s.blob.to_vec())
            }
            None => None,
        };
        Ok(InstalledPackage {
            main,
            signature,
            file_states: vec![FileState::Normal; files],
        })
    }

    /// From the bytes of a `.rpm` file (only its headers are looked at).
    pub fn from_rpm_bytes(bytes: &[u8]) -> Result<Self, Error> {
        let headers = parse_rpm(bytes)?;
        Self::from_headers(headers.main.blob, Some(headers.signature.blob))
    }

    /// Reads a `.rpm` file's headers, without reading its payload.
    pub fn from_rpm_file(path: &Path) -> Result<Self, Error> {
        let io = |e: std::io::Error| Error::Io(path.display().to_string(), e);
        let mut file = std::fs::File::open(path).map_err(io)?;
        let mut bytes = Vec::new();
        // Grow the read until both headers are in: the lead and intro words say how far.
        loop {
            let want = match rpm_headers_len(&bytes)? {
                Some(n) if n <= bytes.len() => break,
                Some(n) => n - bytes.len(),
                None => 4096,
            };
            let got = (&mut file)
                .take(want as u64)
                .read_to_end(&mut bytes)
                .map_err(io)?;
            if got == 0 {
                return Err(Error::header(format!(
                    "{}: file ends inside the rpm headers",
                    path.display()
                )));
            }
        }
        Self::from_rpm_bytes(&bytes)
    }

    /// The main header (without magic), as found in the package.
    pub fn main_header(&self) -> Header<'_> {
        // Validated in the constructor; a failure here would be a bug, so fall back to
        // an error-free empty view rather than panic.
        Header::parse(&self.main).unwrap_or_else(|_| Header {
            blob: &[],
            entries: Vec::new(),
            store: &[],
        })
    }

    /// Paths of the package's files, in header order (the order file states follow).
    pub fn file_paths(&self) -> Vec<String> {
        let h = self.main_header();
        let dirs = h.strings(tag::DIRNAMES);
        let idx = h.u32s(tag::DIRINDEXES);
        h.strings(tag::BASENAMES)
            .into_iter()
            .enumerate()
            .map(|(i, base)| {
                let dir = idx
                    .get(i)
                    .and_then(|&d| dirs.get(d as usize))
                    .map(String::as_str)
                    .unwrap_or("");
                format!("{dir}{base}")
            })
            .collect()
    }

    /// Sets every file's state; one state per file, in header order.
    pub fn with_file_states(mut self, states: Vec<FileState>) -> Result<Self, Error> {
        if states.len() != self.file_states.len() {
            return Err(Error::Input(format!(
                "{} file states given for {} files",
                states.len(),
                self.file_states.len()
            )));
        }
        self.file_states = states;
        Ok(self)
    }

    pub fn file_states(&self) -> &[FileState] {
        &self.file_states
    }

    /// The header blob rpm would store in `Packages.blob` for this package.
    pub fn installed_blob(&self, opts: &InstallOptions) -> Result<Vec<u8>, Error> {
        let main = Header::parse(&self.main)?;
        let mut added = Vec::new();
        if let Some(sig) = &self.signature {
            merge_legacy_sigs(&main, &Header::parse(sig)?, &mut added);
        }
        // Relocatable package installed where it was built for: rpm records the
        // prefixes it used (`rpmRelocationBuild` with no relocations).
        if let Some(prefixes) = main.entry(tag::PREFIXES) {
            if !main.has(tag::INSTPREFIXES) && prefixes.ty == DataType::StringArray {
                added.push(Added {
                    tag: tag::INSTPREFIXES,
                    ty: DataType::StringArray,
                    count: prefixes.count,
                    data: main.data(prefixes).to_vec(),
                });
            }
        }
        if !self.file_states.is_empty() {
            added.push(Added {
                tag: tag::FILESTATES,
                ty: DataType::Char,
                count: self.file_states.len() as u32,
                data: self.file_states.iter().map(|s| s.raw()).collect(),
            });
        }
        for (t, v) in [
            (tag::INSTALLTID, opts.install_tid),
            (tag::INSTALLTIME, opts.install_time),
            (tag::INSTALLCOLOR, opts.install_color),
        ] {
            added.push(Added {
                tag: t,
                ty: DataType::Int32,
                count: 1,
                data: v.to_be_bytes().to_vec(),
            });
        }
        Ok(export(&main, added))
    }
}

/// rpm's `headerMergeLegacySigs`: copy signature-header tags into the main header.
fn merge_legacy_sigs(main: &Header<'_>, sig: &Header<'_>, added: &mut Vec<Added>) {
    for e in &sig.entries {
        let target = match e.tag {
            tag::sig::SIZE => tag::SIGSIZE,
            tag::sig::PGP => tag::SIGPGP,
            tag::sig::MD5 => tag::SIGMD5,
            tag::sig::GPG => tag::SIGGPG,
            tag::sig::PGP5 => tag::SIGPGP5,
            tag::sig::PAYLOADSIZE => tag::ARCHIVESIZE,
            tag::sig::FILESIGNATURES => tag::FILESIGNATURES,
            tag::sig::FILESIGNATURELENGTH => tag::FILESIGNATURELENGTH,
            // rpm keeps the fs-verity tags under their signature numbers (276, 277): they
            // are RPMTAG_VERITYSIGNATURES/ALGO themselves (5092/5093 are the payload digest).
            t if (tag::SIGBASE..tag::TAGBASE).contains(&t) => t,
            _ => continue,
        };
        if main.has(target) || added.iter().any(|a| a.tag == target) {
            continue;
        }
        let keep = match e.ty {
            DataType::Null | DataType::I18nString => false,
            DataType::Char
            | DataType::Int8
            | DataType::Int16
            | DataType::Int32
            | DataType::Int64 => e.count == 1,
            DataType::String | DataType::StringArray | DataType::Bin => e.count < 16 * 1024,
        };
        if keep {
            added.push(Added {
                tag: target,
                ty: e.ty,
                count: e.count,
                data: sig.data(e).to_vec(),
            });
        }
    }
}

/// `headerExport` of a package header plus added entries: region index and data kept
/// verbatim, added entries sorted by tag, their data appended with type alignment.
fn export(main: &Header<'_>, mut added: Vec<Added>) -> Vec<u8> {
    added.sort_by_key(|a| a.tag);
    let mut store = main.store.to_vec();
    let mut index: Vec<Entry> = main.entries.clone();
    for a in added {
        while !store.len().is_multiple_of(a.ty.align()) {
            store.push(0);
        }
        index.push(Entry {
            tag: a.tag,
            ty: a.ty,
            offset: store.len() as i32,
            count: a.count,
            len: a.data.len(),
        });
        store.extend_from_slice(&a.data);
    }
    let mut out = Vec::with_capacity(8 + index.len() * 16 + store.len());
    out.extend_from_slice(&(index.len() as u32).to_be_bytes());
    out.extend_from_slice(&(store.len() as u32).to_be_bytes());
    for e in &index {
        out.extend_from_slice(&e.tag.to_be_bytes());
        out.extend_from_slice(&e.ty.raw().to_be_bytes());
        out.extend_from_slice(&e.offset.to_be_bytes());
        out.extend_from_slice(&e.count.to_be_bytes());
    }
    out.extend_from_slice(&store);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::header::tests::{build, e, i32s, s, sa};

    fn bin(bytes: &[u8]) -> (DataType, u32, Vec<u8>) {
        (DataType::Bin, bytes.len() as u32, bytes.to_vec())
    }

    fn package() -> (Vec<u8>, Vec<u8>) {
        let main = build(
            tag::HEADERIMMUTABLE,
            &[
                e(tag::NAME, s("p")),
                e(tag::VERSION, s("1")),
                e(tag::RELEASE, s("2")),
                e(tag::DIRINDEXES, i32s(&[0, 1])),
                e(tag::BASENAMES, sa(&["a", "b"])),
                e(tag::DIRNAMES, sa(&["/x/", "/y/"])),
            ],
        );
        let sig = build(
            tag::HEADERSIGNATURES,
            &[
                e(tag::SHA1HEADER, s("0123")),
                e(tag::sig::SIZE, i32s(&[99])),
                e(tag::sig::MD5, bin(&[7; 16])),
                e(tag::sig::PAYLOADSIZE, i32s(&[5])),
                // Outside the signature range: rpm drops it.
                e(1008, bin(&[0; 4])),
                // Arrays of integers are not merged either.
                e(270, (DataType::Int64, 2, vec![0; 16])),
            ],
        );
        (main, sig)
    }

    #[test]
    fn blob_keeps_region_and_appends_sorted_aligned_tags() {
        let (main, sig) = package();
        let pkg = InstalledPackage::from_headers(&main, Some(&sig)).unwrap();
        assert_eq!(pkg.file_paths(), vec!["/x/a", "/y/b"]);
        let pkg = pkg
            .with_file_states(vec![FileState::Normal, FileState::NotInstalled])
            .unwrap();
        let blob = pkg.installed_blob(&InstallOptions::at(1_000)).unwrap();
        let h = Header::parse(&blob).unwrap();
        let orig = Header::parse(&main).unwrap();
        // Region index and data untouched.
        assert_eq!(&h.entries[..orig.entries.len()], &orig.entries[..]);
        assert_eq!(&h.store[..orig.store.len()], orig.store);
        let tags: Vec<u32> = h.entries[orig.entries.len()..]
            .iter()
            .map(|e| e.tag)
            .collect();
        assert_eq!(
            tags,
            vec![
                tag::SIGSIZE,
                tag::SIGMD5,
                tag::SHA1HEADER,
                tag::INSTALLTIME,
                tag::FILESTATES,
                tag::ARCHIVESIZE,
                tag::INSTALLCOLOR,
                tag::INSTALLTID
            ]
        );
        let offsets: Vec<i32> = h.entries[orig.entries.len()..]
            .iter()
            .map(|e| e.offset)
            .collect();
        assert!(offsets.windows(2).all(|w| w[0] < w[1]), "{offsets:?}");
        for e in &h.entries {
            assert_eq!(e.offset as usize % e.ty.align(), 0, "tag {}", e.tag);
        }
        assert_eq!(h.u32s(tag::INSTALLTIME), vec![1_000]);
        assert_eq!(h.u32s(tag::SIGSIZE), vec![99]);
        assert_eq!(h.u32s(tag::ARCHIVESIZE), vec![5]);
        assert_eq!(h.data(h.entry(tag::FILESTATES).unwrap()), &[0, 2]);
        // Integer arrays from the signature header are not merged.
        assert!(!h.has(270));
        // The result is a complete header with no trailing bytes.
        assert_eq!(8 + h.entries.len() * 16 + h.store.len(), blob.len());
    }

    #[test]
    fn main_header_tags_win_over_signature_tags() {
        let main = build(
            tag::HEADERIMMUTABLE,
            &[e(tag::NAME, s("p")), e(tag::SHA1HEADER, s("main"))],
        );
        let sig = build(tag::HEADERSIGNATURES, &[e(tag::SHA1HEADER, s("sig"))]);
        let pkg = InstalledPackage::from_headers(&main, Some(&sig)).unwrap();
        let blob = pkg.installed_blob(&InstallOptions::at(1)).unwrap();
        let h = Header::parse(&blob).unwrap();
        assert_eq!(h.strings(tag::SHA1HEADER), vec!["main"]);
        assert_eq!(
            h.entries
                .iter()
                .filter(|e| e.tag == tag::SHA1HEADER)
                .count(),
            1
        );
        // No files: no FILESTATES entry at all, as rpm does.
        assert!(!h.has(tag::FILESTATES));
    }

    #[test]
    fn relocatable_packages_get_instprefixes() {
        let main = build(
            tag::HEADERIMMUTABLE,
            &[e(tag::NAME, s("p")), e(tag::PREFIXES, sa(&["/opt"]))],
        );
        let pkg = InstalledPackage::from_headers(&main, None).unwrap();
        let blob = pkg.installed_blob(&InstallOptions::at(1)).unwrap();
        let h = Header::parse(&blob).unwrap();
        assert_eq!(h.strings(tag::INSTPREFIXES), vec!["/opt"]);
    }

    #[test]
    fn rejects_wrong_state_count_and_installed_headers() {
        let (main, sig) = package();
        let pkg = InstalledPackage::from_headers(&main, Some(&sig)).unwrap();
        assert!(pkg
            .clone()
            .with_file_states(vec![FileState::Normal])
            .is_err());
        let blob = pkg.installed_blob(&InstallOptions::at(1)).unwrap();
        // An rpmdb blob is not a package header: extra entries outside the region.
        assert!(InstalledPackage::from_headers(&blob, None).is_err());
    }
}
