//! `strata-package` reads `.rpm` files for installation: the header facts an installer needs
//! (file list with modes, owners, flags, digests, capabilities; scriptlets, classic and file triggers;
//! requires and provides for ordering) and the payload, streamed as cpio entries matched to
//! the header's file list, each regular file checked against the header's digest as it is
//! read, as rpm does. It never writes anything; placing files is `strata-install`'s job.

mod caps;
mod cpio;
mod deps;
mod digest;
mod files;
mod payload;
mod scripts;

pub use caps::{parse_caps_text, CapsError};
pub use cpio::{CpioEntry, CpioReader};
pub use deps::Dep;
pub use digest::{DigestAlgo, DigestMismatch};
pub use files::{FileEntry, FileFlags, FileKind};
pub use payload::{FileContent, PayloadReader};
pub use scripts::{ClassicKind, ClassicTrigger, FileTrigger, Scriptlet, ScriptletKind, TriggerKind};

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use strata_rpmdb::header::{parse_rpm, rpm_headers_len, tag, Header};

/// Header tags read here that `strata_rpmdb::header::tag` does not name.
pub(crate) mod tags {
    pub const BUILDTIME: u32 = 1006;
    pub const FILESIZES: u32 = 1028;
    pub const FILEMODES: u32 = 1030;
    pub const FILERDEVS: u32 = 1033;
    pub const FILEMTIMES: u32 = 1034;
    pub const FILEDIGESTS: u32 = 1035;
    pub const FILELINKTOS: u32 = 1036;
    pub const FILEFLAGS: u32 = 1037;
    pub const FILEUSERNAME: u32 = 1039;
    pub const FILEGROUPNAME: u32 = 1040;
    pub const FILEDEVICES: u32 = 1095;
    pub const FILEINODES: u32 = 1096;
    pub const FILELANGS: u32 = 1097;
    pub const LONGFILESIZES: u32 = 5008;
    pub const FILECAPS: u32 = 5010;
    pub const FILEDIGESTALGO: u32 = 5011;
    pub const PAYLOADFORMAT: u32 = 1124;
    pub const PAYLOADCOMPRESSOR: u32 = 1125;
    pub const PROVIDEFLAGS: u32 = 1112;
    pub const PROVIDEVERSION: u32 = 1113;
    pub const REQUIREVERSION: u32 = 1050;
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path}: {message}")]
    Malformed { path: PathBuf, message: String },
}

/// One `.rpm` file: its headers held in memory (tens of kB), its payload read on demand.
#[derive(Debug)]
pub struct Package {
    path: PathBuf,
    /// Lead, signature header and main header, exactly as in the file.
    head: Vec<u8>,
    main_start: usize,
    sig_range: (usize, usize),
    payload_offset: u64,
}

impl Package {
    /// Reads the headers of `path` (not the payload).
    pub fn open(path: &Path) -> Result<Package, Error> {
        let io = |source| Error::Io { path: path.to_path_buf(), source };
        let bad = |message: String| Error::Malformed { path: path.to_path_buf(), message };
        let mut file = File::open(path).map_err(io)?;
        let mut head = Vec::new();
        loop {
            let want = match rpm_headers_len(&head).map_err(|e| bad(e.to_string()))? {
                Some(n) if n <= head.len() => break,
                Some(n) => n - head.len(),
                None => 4096,
            };
            let got = (&mut file).take(want as u64).read_to_end(&mut head).map_err(io)?;
            if got == 0 {
                return Err(bad("file ends inside the rpm headers".into()));
            }
        }
        let headers = parse_rpm(&head).map_err(|e| bad(e.to_string()))?;
        let offset_of = |s: &[u8]| s.as_ptr() as usize - head.as_ptr() as usize;
        let sig_start = offset_of(headers.signature.blob);
        let sig_range = (sig_start, sig_start + headers.signature.blob.len());
        let main_start = offset_of(headers.main.blob);
        let payload_offset = headers.payload_offset as u64;
        head.truncate(headers.payload_offset);
        let pkg = Package { path: path.to_path_buf(), head, main_start, sig_range, payload_offset };
        let format = pkg.header().string(tags::PAYLOADFORMAT).unwrap_or_else(|| "cpio".into());
        if format != "cpio" {
            return Err(bad(format!("payload format {format:?} is not supported (only cpio)")));
        }
        Ok(pkg)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The main header; parsed on each call (cheap: an index walk over a few hundred entries).
    pub fn header(&self) -> Header<'_> {
        // `open` parsed exactly these bytes successfully.
        Header::parse(&self.head[self.main_start..]).expect("header parsed at open")
    }

    /// The main header blob without magic, as the rpmdb stores it.
    pub fn main_blob(&self) -> &[u8] {
        &self.head[self.main_start..]
    }

    /// The signature header blob without magic.
    pub fn signature_blob(&self) -> &[u8] {
        &self.head[self.sig_range.0..self.sig_range.1]
    }

    pub fn name(&self) -> String {
        self.header().string(tag::NAME).unwrap_or_default()
    }

    /// `name-[epoch:]version-release.arch`, as rpm prints it.
    pub fn nevra(&self) -> String {
        let h = self.header();
        let s = |t| h.string(t).unwrap_or_default();
        let epoch = h.u32s(tag::EPOCH).first().map(|e| format!("{e}:")).unwrap_or_default();
        format!("{}-{epoch}{}-{}.{}", s(tag::NAME), s(tag::VERSION), s(tag::RELEASE), s(tag::ARCH))
    }

    /// BUILDTIME, seconds since the epoch (0 when absent).
    pub fn build_time(&self) -> u64 {
        self.header().u32s(tags::BUILDTIME).first().copied().unwrap_or(0) as u64
    }

    /// The algorithm of the header's per-file digests: `FILEDIGESTALGO`, md5 when absent (as
    /// in rpm); an algorithm rpm does not know makes the package unreadable, as for rpm.
    pub fn digest_algo(&self) -> Result<DigestAlgo, Error> {
        match self.header().u32s(tags::FILEDIGESTALGO).first() {
            None => Ok(DigestAlgo::Md5),
            Some(&v) => DigestAlgo::from_tag(v).ok_or_else(|| self.malformed(format!("unknown file digest algorithm {v} (FILEDIGESTALGO)"))),
        }
    }

    /// The payload as a stream of cpio entries.
    pub fn payload(&self) -> Result<PayloadReader, Error> {
        PayloadReader::open(self)
    }

    pub(crate) fn malformed(&self, message: impl Into<String>) -> Error {
        Error::Malformed { path: self.path.clone(), message: message.into() }
    }
}

#[cfg(test)]
pub(crate) mod testdata {
    use std::path::PathBuf;

    /// The corpus's base repo packages (the corpus strata-corpus finds).
    pub fn corpus_rpm(prefix: &str) -> PathBuf {
        let dir = strata_corpus::repo("base").join("Packages");
        let mut found: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("corpus missing at {}: {e}", dir.display()))
            .map(|e| e.unwrap().path())
            .filter(|p| {
                let n = p.file_name().unwrap().to_string_lossy().into_owned();
                n.starts_with(prefix) && n[prefix.len()..].starts_with(|c: char| c.is_ascii_digit())
            })
            .collect();
        found.sort();
        found.pop().unwrap_or_else(|| panic!("no {prefix}* rpm in {}", dir.display()))
    }
}
