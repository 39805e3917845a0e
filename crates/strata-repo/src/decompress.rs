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

/// Decompresses `input` on a second thread and hands the bytes over in large chunks, so
/// decompression and XML parsing run on both cores. The consumer gets a plain `BufRead`.
pub(crate) fn on_thread<R, T>(
    compression: Compression,
    input: R,
    consume: impl FnOnce(&mut dyn BufRead) -> T,
) -> Result<T, String>
where
    R: Read + Send,
{
    const CHUNK: usize = 1 << 20;
    let (tx, rx) = std::sync::mpsc::sync_channel::<std::io::Result<Vec<u8>>>(4);
    std::thread::scope(|scope| {
        let producer = scope.spawn(move || -> Result<(), String> {
            let mut reader = compression.reader(input)?;
            loop {
                let mut chunk = vec![0u8; CHUNK];
                let mut filled = 0;
                while filled < CHUNK {
                    match reader.read(&mut chunk[filled..]) {
                        Ok(0) => break,
                        Ok(n) => filled += n,
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                        Err(e) => {
                            let _ = tx.send(Err(e));
                            return Ok(());
                        }
                    }
                }
                chunk.truncate(filled);
                let done = filled < CHUNK;
                if tx.send(Ok(chunk)).is_err() || done {
                    return Ok(());
                }
            }
        });
        let mut pipe = ChannelReader { rx, current: Vec::new(), pos: 0 };
        let result = consume(&mut pipe);
        // Unblock the producer if the consumer stopped early (parse error).
        drop(pipe);
        producer.join().map_err(|_| "decompression thread panicked".to_string())??;
        Ok(result)
    })
}

struct ChannelReader {
    rx: std::sync::mpsc::Receiver<std::io::Result<Vec<u8>>>,
    current: Vec<u8>,
    pos: usize,
}

impl Read for ChannelReader {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        let available = self.fill_buf()?;
        let n = available.len().min(out.len());
        out[..n].copy_from_slice(&available[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl BufRead for ChannelReader {
    fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
        while self.pos >= self.current.len() {
            match self.rx.recv() {
                Ok(Ok(chunk)) if chunk.is_empty() => return Ok(&[]),
                Ok(Ok(chunk)) => {
                    self.current = chunk;
                    self.pos = 0;
                }
                Ok(Err(e)) => return Err(e),
                Err(_) => return Ok(&[]),
            }
        }
        Ok(&self.current[self.pos..])
    }

    fn consume(&mut self, n: usize) {
        self.pos += n;
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

    #[test]
    fn threaded_decompression_streams_everything() {
        let data: Vec<u8> = (0..3_000_000u32).flat_map(|i| i.to_le_bytes()).collect();
        let packed = zstd::encode_all(&data[..], 1).unwrap();
        let out = on_thread(Compression::Zstd, &packed[..], |r| {
            let mut v = Vec::new();
            r.read_to_end(&mut v).map(|_| v)
        })
        .unwrap()
        .unwrap();
        assert_eq!(out, data);
        // Corrupt input surfaces as a read error, not a hang or a short read taken as whole.
        let mut bad = packed.clone();
        bad.truncate(packed.len() / 2);
        let r = on_thread(Compression::Zstd, &bad[..], |r| r.read_to_end(&mut Vec::new())).unwrap();
        assert!(r.is_err());
    }
}
