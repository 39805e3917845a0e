//! Opening compressed metadata by file name, falling back to magic bytes.

use std::io::{BufRead, BufReader, Read};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Compression {
    None,
    Gzip,
    Xz,
    Zstd,
    Bzip2,
}

impl Compression {
    /// By extension first (createrepo names files `...-primary.xml.gz`), then by magic.
    pub(crate) fn detect(name: &str, head: &[u8]) -> Result<Compression, String> {
        let by_name = match name.rsplit('.').next().unwrap_or("") {
            "gz" => Some(Compression::Gzip),
            "xz" => Some(Compression::Xz),
            "zst" | "zstd" => Some(Compression::Zstd),
            "bz2" => Some(Compression::Bzip2),
            "xml" => Some(Compression::None),
            "zck" => return Err("zchunk metadata is not supported; ask the repo for gz/xz/zst".into()),
            _ => None,
        };
        Ok(by_name.unwrap_or(match head {
            [0x1f, 0x8b, ..] => Compression::Gzip,
            [0xfd, b'7', b'z', b'X', b'Z', 0, ..] => Compression::Xz,
            [0x28, 0xb5, 0x2f, 0xfd, ..] => Compression::Zstd,
            [b'B', b'Z', b'h', ..] => Compression::Bzip2,
            _ => Compression::None,
        }))
    }

    /// A buffered reader of the decompressed bytes.
    pub(crate) fn reader<'a, R: Read + 'a>(self, input: R) -> Result<Box<dyn BufRead + 'a>, String> {
        const BUF: usize = 256 * 1024;
        Ok(match self {
            Compression::None => Box::new(BufReader::with_capacity(BUF, input)),
            // MultiGzDecoder: some tools write concatenated gzip members.
            Compression::Gzip => Box::new(BufReader::with_capacity(BUF, flate2::read::MultiGzDecoder::new(input))),
            Compression::Xz => Box::new(BufReader::with_capacity(BUF, liblzma::read::XzDecoder::new_multi_decoder(input))),
            Compression::Zstd => Box::new(BufReader::with_capacity(
                BUF,
                zstd::stream::read::Decoder::new(input).map_err(|e| format!("zstd: {e}"))?,
            )),
            Compression::Bzip2 => Box::new(BufReader::with_capacity(BUF, bzip2::read::MultiBzDecoder::new(input))),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn roundtrip(c: Compression, packed: Vec<u8>) {
        let mut out = String::new();
        c.reader(&packed[..]).unwrap().read_to_string(&mut out).unwrap();
        assert_eq!(out, "<metadata/>");
        assert_eq!(Compression::detect("x.bin", &packed).unwrap(), c);
    }

    #[test]
    fn every_format() {
        let data = b"<metadata/>";
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(data).unwrap();
        roundtrip(Compression::Gzip, gz.finish().unwrap());
        let mut xz = liblzma::write::XzEncoder::new(Vec::new(), 6);
        xz.write_all(data).unwrap();
        roundtrip(Compression::Xz, xz.finish().unwrap());
        roundtrip(Compression::Zstd, zstd::encode_all(&data[..], 3).unwrap());
        let mut bz = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::default());
        bz.write_all(data).unwrap();
        roundtrip(Compression::Bzip2, bz.finish().unwrap());
        roundtrip(Compression::None, data.to_vec());
        assert_eq!(Compression::detect("a-primary.xml.zst", b"").unwrap(), Compression::Zstd);
        assert!(Compression::detect("a-primary.xml.zck", b"").is_err());
    }
}
