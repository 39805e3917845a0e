//! Strings a solve never reads (summaries, locations, checksums, source RPMs), kept in a
//! sidecar file next to the index and read with `pread` only for the packages asked about.
//!
//! Why not in the mapped index: on kernels that cache files in large folios, touching one
//! byte of a mapping maps a whole (up to 2 MB) folio. Writing a lock reads these fields for a
//! few dozen packages scattered over 11 MB of strings, which would map all of it; reading
//! them with `pread` keeps a warm resolve's resident set to the index part the solver uses.

use crate::blob::{Blob, BlobError};
use crate::strings::StringTable;
use std::os::unix::fs::FileExt;
use std::path::Path;

pub(crate) const KIND: u32 = 3;

pub(crate) enum ColdStore {
    /// Built in this process: the whole blob is in memory anyway.
    Memory(Blob),
    /// A cache file, read on demand; fetched strings are kept for the index's lifetime so
    /// accessors can hand out `&str`.
    File {
        file: std::fs::File,
        bytes_at: u64,
        bytes_len: u64,
        offsets_at: u64,
        count: u32,
        cache: elsa::sync::FrozenMap<u32, Box<str>>,
    },
}

impl ColdStore {
    pub(crate) fn memory(blob: Blob) -> Result<ColdStore, BlobError> {
        StringTable::read(&blob, 0)?;
        Ok(ColdStore::Memory(blob))
    }

    pub(crate) fn open(path: &Path, version: u32) -> Result<ColdStore, BlobError> {
        let file = std::fs::File::open(path).map_err(|e| BlobError(format!("{}: {e}", path.display())))?;
        let sections = crate::blob::read_table(&file, KIND, version)?;
        let [(bytes_at, bytes_len), (offsets_at, offsets_len), ..] = sections[..] else {
            return Err(BlobError("cold string file has too few sections".into()));
        };
        if offsets_len < 4 || offsets_len % 4 != 0 {
            return Err(BlobError("cold string offsets are malformed".into()));
        }
        let count = (offsets_len / 4 - 1) as u32;
        Ok(ColdStore::File { file, bytes_at, bytes_len, offsets_at, count, cache: elsa::sync::FrozenMap::new() })
    }

    /// The string `id`; empty when the id or the file is damaged (accessors never panic).
    pub(crate) fn get(&self, id: u32) -> &str {
        match self {
            ColdStore::Memory(blob) => StringTable::read(blob, 0).map(|t| t.get(id)).unwrap_or(""),
            ColdStore::File { file, bytes_at, bytes_len, offsets_at, count, cache } => {
                if id >= *count {
                    return "";
                }
                if let Some(s) = cache.get(&id) {
                    return s;
                }
                let read = || -> Option<Box<str>> {
                    let mut pair = [0u8; 8];
                    file.read_exact_at(&mut pair, offsets_at + id as u64 * 4).ok()?;
                    let start = u32::from_le_bytes(pair[..4].try_into().ok()?) as u64;
                    let end = u32::from_le_bytes(pair[4..].try_into().ok()?) as u64;
                    if start > end || end > *bytes_len {
                        return None;
                    }
                    let mut buf = vec![0u8; (end - start) as usize];
                    file.read_exact_at(&mut buf, bytes_at + start).ok()?;
                    String::from_utf8(buf).ok().map(String::into_boxed_str)
                };
                cache.insert_with(id, || read().unwrap_or_default())
            }
        }
    }

    /// The whole file's bytes (for copying an index elsewhere).
    pub(crate) fn bytes(&self) -> std::io::Result<Vec<u8>> {
        match self {
            ColdStore::Memory(blob) => Ok(blob.whole().to_vec()),
            ColdStore::File { file, .. } => {
                let len = file.metadata()?.len();
                let mut buf = vec![0u8; len as usize];
                file.read_exact_at(&mut buf, 0)?;
                Ok(buf)
            }
        }
    }
}
