//! The container format of every index file: a checksummed header followed by 8-byte
//! aligned sections of plain little-endian arrays, readable in place from an mmap.
//!
//! Why not a serialisation crate: the warm path must *not* deserialise anything; it maps the
//! file and slices typed arrays out of it (`bytemuck` checks size and alignment, so a damaged
//! file is an error, never undefined behaviour). The whole payload is covered by an xxh3
//! digest checked on open, so a truncated or bit-flipped cache file is rebuilt, not trusted.

use bytemuck::{Pod, Zeroable};
use std::io::{Seek, Write};
use std::path::Path;

const MAGIC: [u8; 8] = *b"STRATIDX";
const HEADER_LEN: usize = 64;
const MAX_SECTIONS: usize = 24;

/// Bytes that are either a read-only mapping of a file or an owned, 8-byte aligned buffer.
pub(crate) enum Backing {
    Mapped(memmap2::Mmap),
    Owned(Vec<u64>, usize),
}

impl Backing {
    pub(crate) fn bytes(&self) -> &[u8] {
        match self {
            Backing::Mapped(m) => m,
            Backing::Owned(words, len) => &bytemuck::cast_slice(words)[..*len],
        }
    }

    fn from_vec(bytes: Vec<u8>) -> Backing {
        let len = bytes.len();
        let mut words = vec![0u64; len.div_ceil(8)];
        bytemuck::cast_slice_mut::<u64, u8>(&mut words)[..len].copy_from_slice(&bytes);
        Backing::Owned(words, len)
    }
}

/// A validated blob: header checked, sections located.
pub(crate) struct Blob {
    backing: Backing,
    sections: Vec<(usize, usize)>,
}

#[derive(Debug)]
pub(crate) struct BlobError(pub String);

impl std::fmt::Display for BlobError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl Blob {
    /// Maps `path` and validates it as a blob of `kind` with format `version`.
    pub(crate) fn open(path: &Path, kind: u32, version: u32) -> Result<Blob, BlobError> {
        let file = std::fs::File::open(path).map_err(|e| BlobError(e.to_string()))?;
        // SAFETY: cache files are written once to a temporary name and renamed into place,
        // never modified afterwards, so the mapping does not change under us.
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| BlobError(e.to_string()))?;
        // Lookups jump around the file; without this the kernel maps large runs around each
        // touched page, and a solve that reads a few hundred KB would keep tens of MB resident.
        let _ = map.advise(memmap2::Advice::Random);
        Blob::validate(Backing::Mapped(map), kind, version)
    }

    pub(crate) fn from_bytes(bytes: Vec<u8>, kind: u32, version: u32) -> Result<Blob, BlobError> {
        Blob::validate(Backing::from_vec(bytes), kind, version)
    }

    fn validate(backing: Backing, kind: u32, version: u32) -> Result<Blob, BlobError> {
        let bytes = backing.bytes();
        let bad = |m: &str| BlobError(m.to_string());
        if bytes.len() < HEADER_LEN || bytes[..8] != MAGIC {
            return Err(bad("not a strata index file"));
        }
        let word = |i: usize| u32::from_le_bytes(bytes[i..i + 4].try_into().unwrap());
        let dword = |i: usize| u64::from_le_bytes(bytes[i..i + 8].try_into().unwrap());
        if word(8) != kind || word(12) != version {
            return Err(bad("index of another kind or format version"));
        }
        if dword(16) != bytes.len() as u64 {
            return Err(bad("index file is truncated"));
        }
        let count = word(32) as usize;
        if count > MAX_SECTIONS {
            return Err(bad("index file has too many sections"));
        }
        let table_start = HEADER_LEN;
        let table_end = table_start + count * 16;
        if bytes.len() < table_end {
            return Err(bad("index section table is truncated"));
        }
        let mut sections = Vec::with_capacity(count);
        for i in 0..count {
            let off = dword(table_start + i * 16) as usize;
            let len = dword(table_start + i * 16 + 8) as usize;
            if !off.is_multiple_of(8) || off.checked_add(len).is_none_or(|end| end > bytes.len()) {
                return Err(bad("index section out of bounds"));
            }
            sections.push((off, len));
        }
        Ok(Blob { backing, sections })
    }

    /// Checks the content digest. Not done on open: hashing means reading (and keeping
    /// resident) every page of a 40 MB index, while a warm solve touches a few hundred
    /// kilobytes. Files are only ever created by an atomic rename, and every accessor is
    /// bounds-checked, so a damaged file gives an error or wrong answers, never UB.
    pub(crate) fn verify(&self) -> Result<(), BlobError> {
        let bytes = self.backing.bytes();
        let stored = u64::from_le_bytes(bytes[24..32].try_into().unwrap());
        let count = u32::from_le_bytes(bytes[32..36].try_into().unwrap()) as usize;
        let data_start = (HEADER_LEN + count * 16).next_multiple_of(8);
        if stored != xxhash_rust::xxh3::xxh3_64(&bytes[data_start..]) {
            return Err(BlobError("index file checksum mismatch".into()));
        }
        Ok(())
    }

    /// The whole blob, header included (what is written to disk).
    pub(crate) fn whole(&self) -> &[u8] {
        self.backing.bytes()
    }

    pub(crate) fn bytes(&self, section: usize) -> &[u8] {
        let (off, len) = self.sections.get(section).copied().unwrap_or((0, 0));
        &self.backing.bytes()[off..off + len]
    }

    /// A section as a typed array; a size or alignment mismatch is reported, not UB.
    pub(crate) fn array<T: Pod>(&self, section: usize) -> Result<&[T], BlobError> {
        bytemuck::try_cast_slice(self.bytes(section))
            .map_err(|e| BlobError(format!("index section {section}: {e:?}")))
    }
}

/// Reads just the header and section table of a blob file (for files read with `pread`
/// rather than mapped), with the same checks as [`Blob::open`] minus the content.
pub(crate) fn read_table(file: &std::fs::File, kind: u32, version: u32) -> Result<Vec<(u64, u64)>, BlobError> {
    use std::os::unix::fs::FileExt;
    let bad = |m: &str| BlobError(m.to_string());
    let len = file.metadata().map_err(|e| BlobError(e.to_string()))?.len();
    let mut head = [0u8; HEADER_LEN];
    file.read_exact_at(&mut head, 0).map_err(|_| bad("not a strata index file"))?;
    let word = |i: usize| u32::from_le_bytes(head[i..i + 4].try_into().unwrap());
    let dword = |i: usize| u64::from_le_bytes(head[i..i + 8].try_into().unwrap());
    if head[..8] != MAGIC {
        return Err(bad("not a strata index file"));
    }
    if word(8) != kind || word(12) != version {
        return Err(bad("index of another kind or format version"));
    }
    if dword(16) != len {
        return Err(bad("index file is truncated"));
    }
    let count = word(32) as usize;
    if count > MAX_SECTIONS {
        return Err(bad("index file has too many sections"));
    }
    let mut table = vec![0u8; count * 16];
    file.read_exact_at(&mut table, HEADER_LEN as u64).map_err(|_| bad("index section table is truncated"))?;
    (0..count)
        .map(|i| {
            let off = u64::from_le_bytes(table[i * 16..i * 16 + 8].try_into().unwrap());
            let n = u64::from_le_bytes(table[i * 16 + 8..i * 16 + 16].try_into().unwrap());
            if off.checked_add(n).is_none_or(|end| end > len) {
                return Err(bad("index section out of bounds"));
            }
            Ok((off, n))
        })
        .collect()
}

/// Writes a blob section by section straight to its destination, so building an index
/// never holds a second copy of it in memory. The section table and header are filled in
/// last (the writer seeks back).
pub(crate) struct BlobWriter<W: Write + Seek> {
    out: W,
    table: Vec<(u64, u64)>,
    capacity: usize,
    pos: u64,
    hasher: xxhash_rust::xxh3::Xxh3,
}

impl<W: Write + Seek> BlobWriter<W> {
    /// Starts a blob that will hold at most `sections` sections.
    pub(crate) fn new(mut out: W, sections: usize) -> std::io::Result<BlobWriter<W>> {
        assert!(sections <= MAX_SECTIONS, "too many index sections");
        let data_start = (HEADER_LEN + sections * 16).next_multiple_of(8);
        out.write_all(&vec![0u8; data_start])?;
        Ok(BlobWriter {
            out,
            table: Vec::with_capacity(sections),
            capacity: sections,
            pos: data_start as u64,
            hasher: xxhash_rust::xxh3::Xxh3::new(),
        })
    }

    pub(crate) fn push_bytes(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        assert!(self.table.len() < self.capacity, "more sections than announced");
        let pad = (self.pos.next_multiple_of(8) - self.pos) as usize;
        self.write(&[0u8; 8][..pad])?;
        self.table.push((self.pos, bytes.len() as u64));
        self.write(bytes)
    }

    pub(crate) fn push<T: Pod>(&mut self, items: &[T]) -> std::io::Result<()> {
        self.push_bytes(bytemuck::cast_slice(items))
    }

    fn write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.out.write_all(bytes)?;
        self.hasher.update(bytes);
        self.pos += bytes.len() as u64;
        Ok(())
    }

    pub(crate) fn finish(mut self, kind: u32, version: u32) -> std::io::Result<W> {
        let pad = (self.pos.next_multiple_of(8) - self.pos) as usize;
        self.write(&[0u8; 8][..pad])?;
        let mut head = Vec::with_capacity(HEADER_LEN + self.table.len() * 16);
        head.extend_from_slice(&MAGIC);
        head.extend_from_slice(&kind.to_le_bytes());
        head.extend_from_slice(&version.to_le_bytes());
        head.extend_from_slice(&self.pos.to_le_bytes());
        head.extend_from_slice(&self.hasher.digest().to_le_bytes());
        head.extend_from_slice(&(self.table.len() as u32).to_le_bytes());
        head.resize(HEADER_LEN, 0);
        for (off, len) in &self.table {
            head.extend_from_slice(&off.to_le_bytes());
            head.extend_from_slice(&len.to_le_bytes());
        }
        self.out.seek(std::io::SeekFrom::Start(0))?;
        self.out.write_all(&head)?;
        self.out.flush()?;
        Ok(self.out)
    }
}

/// Builds a blob into a file at `path` atomically (temporary file, renamed). Not fsynced:
/// a cache file can always be rebuilt, and one torn by a power loss fails the length check
/// on open and is rebuilt; syncing 40 MB costs a tenth of a cold load.
pub(crate) fn write_blob_file(
    path: &Path,
    sections: usize,
    fill: impl FnOnce(&mut BlobWriter<std::io::BufWriter<std::fs::File>>) -> std::io::Result<()>,
    kind: u32,
    version: u32,
) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let tmp = tempfile::NamedTempFile::new_in(dir)?;
    let file = tmp.as_file().try_clone()?;
    let mut w = BlobWriter::new(std::io::BufWriter::with_capacity(1 << 20, file), sections)?;
    fill(&mut w)?;
    let out = w.finish(kind, version)?;
    out.into_inner().map_err(|e| e.into_error())?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// Builds a blob in memory.
pub(crate) fn blob_bytes(
    sections: usize,
    fill: impl FnOnce(&mut BlobWriter<std::io::Cursor<Vec<u8>>>) -> std::io::Result<()>,
    kind: u32,
    version: u32,
) -> Vec<u8> {
    let mut w = BlobWriter::new(std::io::Cursor::new(Vec::new()), sections).expect("writing to memory");
    fill(&mut w).expect("writing to memory");
    w.finish(kind, version).expect("writing to memory").into_inner()
}

/// Writes `bytes` to `path` atomically: a temporary file in the same folder, synced, then
/// renamed, so readers see the old file or the new one and a crash leaves no partial file.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// A `(start, count)` range into another array.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub(crate) struct Span {
    pub start: u32,
    pub count: u32,
}

impl Span {
    pub(crate) fn range(self) -> std::ops::Range<usize> {
        self.start as usize..(self.start + self.count) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fill<W: Write + Seek>(w: &mut BlobWriter<W>) -> std::io::Result<()> {
        w.push::<u32>(&[1, 2, 3])?;
        w.push_bytes(b"hello")?;
        w.push::<u64>(&[7])
    }

    fn sample() -> Vec<u8> {
        blob_bytes(3, fill, 5, 1)
    }

    #[test]
    fn round_trip() {
        let blob = Blob::from_bytes(sample(), 5, 1).unwrap();
        assert_eq!(blob.array::<u32>(0).unwrap(), &[1, 2, 3]);
        assert_eq!(blob.bytes(1), b"hello");
        assert_eq!(blob.array::<u64>(2).unwrap(), &[7]);
    }

    #[test]
    fn damage_is_detected() {
        let good = sample();
        let mut flipped = good.clone();
        *flipped.last_mut().unwrap() ^= 1;
        let blob = Blob::from_bytes(flipped, 5, 1).unwrap();
        assert!(blob.verify().unwrap_err().0.contains("checksum"));
        assert!(Blob::from_bytes(good.clone(), 5, 1).unwrap().verify().is_ok());
        let truncated = good[..good.len() - 3].to_vec();
        assert!(Blob::from_bytes(truncated, 5, 1).err().unwrap().0.contains("truncated"));
        assert!(Blob::from_bytes(good.clone(), 6, 1).is_err());
        assert!(Blob::from_bytes(b"garbage".to_vec(), 5, 1).is_err());
    }

    #[test]
    fn atomic_write_and_map() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.idx");
        write_blob_file(&path, 3, fill, 5, 1).unwrap();
        let blob = Blob::open(&path, 5, 1).unwrap();
        assert_eq!(blob.bytes(1), b"hello");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
