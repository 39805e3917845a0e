//! Opening a package's payload: decompression by `PAYLOADCOMPRESSOR`, then cpio entries
//! matched to the header's file list, each regular file's content checked against the
//! header's digest for it as it is read (see [`crate::digest`]).

use crate::cpio::{archive_bound, Bounded, Content, CpioEntry, CpioReader};
use crate::digest::{self, DigestAlgo, DigestMismatch, Pending, Seal};
use crate::{tags, Error, FileKind, Package};
use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom};

type Stream = Box<dyn Read + Send>;

/// Streams a package's payload entry by entry.
pub struct PayloadReader {
    cpio: CpioReader<Stream>,
    /// Path (without leading `/`) → index in [`Package::files`] order.
    by_path: HashMap<Vec<u8>, u32>,
    sizes: Vec<u64>,
    package: std::path::PathBuf,
    /// Per header file: its path, whether it is a regular file and its digest (hex).
    paths: Vec<String>,
    regular: Vec<bool>,
    digests: Vec<String>,
    algo: DigestAlgo,
    pending: Option<Pending>,
    mismatch: Option<DigestMismatch>,
    seal: Seal,
}

impl PayloadReader {
    pub(crate) fn open(pkg: &Package) -> Result<PayloadReader, Error> {
        let io_err = |source| Error::Io { path: pkg.path().to_path_buf(), source };
        let mut file = File::open(pkg.path()).map_err(io_err)?;
        let seal = Seal::of(&file);
        file.seek(SeekFrom::Start(pkg.payload_offset)).map_err(io_err)?;
        let mut input = BufReader::with_capacity(256 * 1024, file);
        let compressor = pkg.header().string(tags::PAYLOADCOMPRESSOR).unwrap_or_else(|| "gzip".into());
        let stream: Stream = match compressor.as_str() {
            // rpm reads "gzip" (also its default) through zlib, which passes data without
            // gzip's magic through as it is: rpmbuild's `w.ufdio` packages have no
            // PAYLOADCOMPRESSOR and an uncompressed payload.
            "gzip" if !input.fill_buf().map_err(io_err)?.starts_with(&[0x1f, 0x8b]) => Box::new(input),
            "gzip" => Box::new(flate2::read::MultiGzDecoder::new(input)),
            "bzip2" => Box::new(bzip2::read::MultiBzDecoder::new(input)),
            "xz" => Box::new(liblzma::read::XzDecoder::new_multi_decoder(input)),
            "lzma" => {
                let stream = liblzma::stream::Stream::new_lzma_decoder(u64::MAX)
                    .map_err(|e| pkg.malformed(format!("lzma decoder: {e}")))?;
                Box::new(liblzma::read::XzDecoder::new_stream(input, stream))
            }
            "zstd" => Box::new(zstd::stream::read::Decoder::with_buffer(input).map_err(io_err)?),
            "identity" | "none" => Box::new(input),
            other => return Err(pkg.malformed(format!("payload compressor {other:?} is not supported"))),
        };
        let files = pkg.files()?;
        let limit = archive_bound(declared_archive_size(pkg), files.iter().map(|f| (f.path.len(), f.size)));
        let stream: Stream = Box::new(Bounded::new(stream, limit));
        let by_path = files
            .iter()
            .enumerate()
            .map(|(i, f)| (f.path.trim_start_matches('/').as_bytes().to_vec(), i as u32))
            .collect();
        let sizes = files.iter().map(|f| f.size).collect();
        Ok(PayloadReader {
            cpio: CpioReader::new(stream),
            by_path,
            sizes,
            package: pkg.path().to_path_buf(),
            regular: files.iter().map(|f| f.kind == FileKind::Regular).collect(),
            digests: files.iter().map(|f| f.digest.clone()).collect(),
            paths: files.into_iter().map(|f| f.path).collect(),
            algo: pkg.digest_algo()?,
            pending: None,
            mismatch: None,
            seal,
        })
    }

    /// The next payload entry and the index of the header file it carries. Entries the
    /// header does not list are an error: rpm would refuse such a package too.
    pub fn next_file(&mut self) -> Result<Option<(u32, CpioEntry)>, Error> {
        if self.pending.take().is_some() {
            self.seal.skipped();
        }
        let entry = self.cpio.next_entry().map_err(|e| self.io(e))?;
        let Some(entry) = entry else {
            self.seal.finished(self.mismatch.is_none());
            return Ok(None);
        };
        let content_size = entry.size;
        let index = match entry.index {
            Some(i) => {
                let size = *self.sizes.get(i as usize).ok_or_else(|| self.bad(format!("stripped entry index {i} out of range")))?;
                self.cpio.set_content_size(size);
                i
            }
            None => {
                let name = entry.name.strip_prefix(b".").unwrap_or(&entry.name);
                let name = name.strip_prefix(b"/").unwrap_or(name);
                *self.by_path.get(name).ok_or_else(|| {
                    self.bad(format!("payload entry {:?} is not in the header's file list", String::from_utf8_lossy(&entry.name)))
                })?
            }
        };
        let i = index as usize;
        // The header says how big each file is; an entry may carry that or nothing (the other
        // members of a hardlink set, directories), never another figure.
        if entry.index.is_none() && content_size != 0 && content_size != self.sizes[i] {
            return Err(self.bad(format!(
                "payload entry {:?} holds {content_size} bytes, but the header says {}",
                String::from_utf8_lossy(&entry.name),
                self.sizes[i]
            )));
        }
        let size = if entry.index.is_some() { self.sizes[i] } else { content_size };
        // A hardlink set's content comes with one member; the others carry none to check.
        if self.regular[i] && size == self.sizes[i] && self.seal.checking() {
            self.pending = Some(Pending { file: index, hasher: self.algo.hasher(), size });
        }
        Ok(Some((index, entry)))
    }

    /// Content of the entry last returned by [`PayloadReader::next_file`]. For a regular
    /// file, reading it to the end checks it against the header's digest: a mismatch is an
    /// `InvalidData` error from the last read, and [`PayloadReader::digest_mismatch`] says
    /// which file and both digests.
    pub fn content(&mut self) -> FileContent<'_> {
        FileContent { inner: self.cpio.content(), pending: &mut self.pending, mismatch: &mut self.mismatch, paths: &self.paths, digests: &self.digests, algo: self.algo }
    }

    /// The digest mismatch that failed the last content read, if that is what failed it.
    pub fn digest_mismatch(&self) -> Option<&DigestMismatch> {
        self.mismatch.as_ref()
    }

    fn io(&self, source: io::Error) -> Error {
        Error::Io { path: self.package.clone(), source }
    }

    fn bad(&self, message: String) -> Error {
        Error::Malformed { path: self.package.clone(), message }
    }
}

/// The uncompressed archive size the package declares: LONGARCHIVESIZE (271) or
/// ARCHIVESIZE (1046) in the main header, else LONGARCHIVESIZE or PAYLOADSIZE (1007) in the
/// signature header. rpm writes it exactly (checked on the corpus: `rpm2cpio | wc -c`).
fn declared_archive_size(pkg: &Package) -> Option<u64> {
    const LONGARCHIVESIZE: u32 = 271;
    const SIG_PAYLOADSIZE: u32 = 1007;
    let main = pkg.header();
    let from = |h: &strata_rpmdb::header::Header<'_>, long: u32, short: u32| {
        h.u64s(long).first().copied().or_else(|| h.u32s(short).first().map(|&n| u64::from(n)))
    };
    from(&main, LONGARCHIVESIZE, strata_rpmdb::header::tag::ARCHIVESIZE).or_else(|| {
        let sig = strata_rpmdb::header::Header::parse(pkg.signature_blob()).ok()?;
        from(&sig, LONGARCHIVESIZE, SIG_PAYLOADSIZE)
    })
}

/// One entry's content; see [`PayloadReader::content`].
pub struct FileContent<'a> {
    inner: Content<'a, Stream>,
    pending: &'a mut Option<Pending>,
    mismatch: &'a mut Option<DigestMismatch>,
    paths: &'a [String],
    digests: &'a [String],
    algo: DigestAlgo,
}

impl Read for FileContent<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n > 0 {
            if let Some(p) = self.pending.as_mut() {
                p.hasher.update(&buf[..n]);
            }
            return Ok(n);
        }
        // An empty buffer reads nothing and settles nothing; otherwise this is the end.
        if buf.is_empty() {
            return Ok(0);
        }
        let Some(p) = self.pending.take() else { return Ok(0) };
        let actual = p.hasher.finish_hex();
        let expected = self.digests[p.file as usize].to_ascii_lowercase();
        if digest::matches(self.algo, &expected, &actual, p.size) {
            return Ok(0);
        }
        let m = DigestMismatch { file: p.file, path: self.paths[p.file as usize].clone(), algo: self.algo, expected, actual };
        let err = io::Error::new(io::ErrorKind::InvalidData, m.to_string());
        *self.mismatch = Some(m);
        Err(err)
    }
}

#[cfg(test)]
mod tests {
    use crate::testdata::corpus_rpm;
    use crate::{FileKind, Package};
    use std::io::Read;

    /// Every payload compressor of the corpus (gzip libc6, xz libssl3, zstd bash) streams to
    /// the end with contents matching the header's sizes and sha256 digests.
    #[test]
    fn payload_contents_match_header_digests_for_each_compressor() {
        use sha2_check::sha256_hex;
        for prefix in ["libc6-", "libssl3-", "bash-", "perl-base-"] {
            let pkg = Package::open(&corpus_rpm(prefix)).unwrap();
            let files = pkg.files().unwrap();
            let mut payload = pkg.payload().unwrap();
            let mut seen = 0;
            while let Some((i, entry)) = payload.next_file().unwrap() {
                let f = &files[i as usize];
                let mut data = Vec::new();
                payload.content().read_to_end(&mut data).unwrap();
                assert_eq!(data.len() as u64, entry.size);
                if f.kind == FileKind::Regular && entry.size > 0 {
                    assert_eq!(data.len() as u64, f.size, "{}", f.path);
                    assert_eq!(sha256_hex(&data), f.digest, "{}", f.path);
                }
                seen += 1;
            }
            let expected = files.iter().filter(|f| !f.flags.is_ghost()).count();
            assert_eq!(seen, expected, "{prefix}");
        }
    }

    /// A file whose content does not hash to the header's digest fails the read that ends
    /// it, and the mismatch names the file and both digests; the other files still pass.
    #[test]
    fn content_differing_from_its_header_digest_is_refused() {
        let pkg = Package::open(&corpus_rpm("bash-")).unwrap();
        let files = pkg.files().unwrap();
        let victim = files.iter().position(|f| f.path == "/bin/bash").unwrap();
        let mut payload = pkg.payload().unwrap();
        // Another test of this process may have checked (and sealed) the same file.
        payload.seal.force_checking();
        let real = payload.digests[victim].clone();
        payload.digests[victim] = "0".repeat(64);
        let mut failed = None;
        while let Some((i, _)) = payload.next_file().unwrap() {
            let r = std::io::copy(&mut payload.content(), &mut std::io::sink());
            if i as usize == victim {
                failed = Some(r.unwrap_err());
            } else {
                r.unwrap();
            }
        }
        let err = failed.expect("/bin/bash is in the payload");
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
        let m = payload.digest_mismatch().unwrap();
        assert_eq!((m.path.as_str(), m.expected.as_str(), m.actual.as_str()), ("/bin/bash", "0".repeat(64).as_str(), real.as_str()));
        assert!(err.to_string().contains("/bin/bash") && err.to_string().contains(&real), "{err}");
    }

    /// Every package of the corpus streams to its end within the payload bound, with every
    /// entry's size as the header says: the bounds refuse nothing real.
    #[test]
    fn every_corpus_payload_fits_its_bound() {
        let base = crate::testdata::corpus_rpm("bash-");
        let mut n = 0;
        for dir in [base.parent().unwrap().to_path_buf(), base.parent().unwrap().join("../../updates/Packages")] {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                let pkg = Package::open(&path).unwrap();
                let mut payload = pkg.payload().unwrap();
                while payload.next_file().unwrap_or_else(|e| panic!("{e}")).is_some() {
                    std::io::copy(&mut payload.content(), &mut std::io::sink()).unwrap();
                }
                n += 1;
            }
        }
        assert!(n > 150, "{n} packages");
    }

    mod sha2_check {
        pub fn sha256_hex(data: &[u8]) -> String {
            use sha2::Digest;
            hex::encode(sha2::Sha256::digest(data))
        }
    }
}
