//! Opening a package's payload: decompression by `PAYLOADCOMPRESSOR`, then cpio entries
//! matched to the header's file list.

use crate::cpio::{Content, CpioEntry, CpioReader};
use crate::{tags, Error, Package};
use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom};

type Stream = Box<dyn Read + Send>;

/// Streams a package's payload entry by entry.
pub struct PayloadReader {
    cpio: CpioReader<Stream>,
    /// Path (without leading `/`) → index in [`Package::files`] order.
    by_path: HashMap<Vec<u8>, u32>,
    sizes: Vec<u64>,
    package: std::path::PathBuf,
}

impl PayloadReader {
    pub(crate) fn open(pkg: &Package) -> Result<PayloadReader, Error> {
        let io_err = |source| Error::Io { path: pkg.path().to_path_buf(), source };
        let mut file = File::open(pkg.path()).map_err(io_err)?;
        file.seek(SeekFrom::Start(pkg.payload_offset)).map_err(io_err)?;
        let input = BufReader::with_capacity(256 * 1024, file);
        let compressor = pkg.header().string(tags::PAYLOADCOMPRESSOR).unwrap_or_else(|| "gzip".into());
        let stream: Stream = match compressor.as_str() {
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
        })
    }

    /// The next payload entry and the index of the header file it carries. Entries the
    /// header does not list are an error: rpm would refuse such a package too.
    pub fn next_file(&mut self) -> Result<Option<(u32, CpioEntry)>, Error> {
        let entry = self.cpio.next_entry().map_err(|e| self.io(e))?;
        let Some(entry) = entry else { return Ok(None) };
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
        Ok(Some((index, entry)))
    }

    /// Content of the entry last returned by [`PayloadReader::next_file`].
    pub fn content(&mut self) -> Content<'_, Stream> {
        self.cpio.content()
    }

    fn io(&self, source: io::Error) -> Error {
        Error::Io { path: self.package.clone(), source }
    }

    fn bad(&self, message: String) -> Error {
        Error::Malformed { path: self.package.clone(), message }
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

    mod sha2_check {
        pub fn sha256_hex(data: &[u8]) -> String {
            use sha2::Digest;
            hex::encode(sha2::Sha256::digest(data))
        }
    }
}
