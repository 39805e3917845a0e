//! Interned strings: each distinct string stored once, addressed by a `u32` id, with an
//! on-disk open-addressing hash table so that a name can be looked up without building
//! anything at load time. Capability names, versions and paths repeat massively in repo
//! metadata; interning is what keeps a 63k-package index small.

use crate::blob::{Blob, BlobError, BlobWriter};
use hashbrown::HashTable;
use xxhash_rust::xxh3::xxh3_64;

/// Id of the empty string in every pool (interned first).
pub(crate) const EMPTY: u32 = 0;

pub(crate) struct StringPool {
    bytes: Vec<u8>,
    /// Start of each string; string `i` ends where `i + 1` starts (or at `bytes.len()`).
    starts: Vec<u32>,
    table: HashTable<u32>,
}

impl StringPool {
    pub(crate) fn new() -> StringPool {
        let mut pool = StringPool { bytes: Vec::new(), starts: Vec::new(), table: HashTable::new() };
        pool.intern("");
        pool
    }

    /// Room for about `strings` strings of `bytes` bytes in all, so the table is not
    /// rehashed (re-hashing every string) while a large repo streams in.
    pub(crate) fn reserve(&mut self, strings: usize, bytes: usize) {
        self.starts.reserve(strings);
        self.bytes.reserve(bytes);
        let StringPool { bytes, starts, table } = self;
        table.reserve(strings, |&other| {
            let start = starts[other as usize] as usize;
            let end = starts.get(other as usize + 1).map_or(bytes.len(), |e| *e as usize);
            xxh3_64(&bytes[start..end])
        });
    }

    fn get(&self, id: u32) -> &[u8] {
        let start = self.starts[id as usize] as usize;
        let end = self.starts.get(id as usize + 1).map_or(self.bytes.len(), |e| *e as usize);
        &self.bytes[start..end]
    }

    pub(crate) fn intern(&mut self, s: &str) -> u32 {
        let hash = xxh3_64(s.as_bytes());
        let StringPool { bytes, starts, table } = self;
        let get = |id: u32| {
            let start = starts[id as usize] as usize;
            let end = starts.get(id as usize + 1).map_or(bytes.len(), |e| *e as usize);
            &bytes[start..end]
        };
        if let Some(id) = table.find(hash, |&id| get(id) == s.as_bytes()) {
            return *id;
        }
        let id = starts.len() as u32;
        starts.push(bytes.len() as u32);
        bytes.extend_from_slice(s.as_bytes());
        let (bytes_ref, starts_ref) = (&*bytes, &*starts);
        table.insert_unique(hash, id, |&other| {
            let start = starts_ref[other as usize] as usize;
            let end = starts_ref.get(other as usize + 1).map_or(bytes_ref.len(), |e| *e as usize);
            xxh3_64(&bytes_ref[start..end])
        });
        id
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.starts.len()
    }

    pub(crate) fn as_str(&self, id: u32) -> &str {
        // Only whole `&str`s are ever appended, so every string slice is valid UTF-8.
        std::str::from_utf8(self.get(id)).unwrap_or("")
    }

    /// Appends three sections: the bytes, the offsets (n + 1 of them) and the hash slots.
    pub(crate) fn write<W: std::io::Write + std::io::Seek>(self, w: &mut BlobWriter<W>) -> std::io::Result<()> {
        let n = self.starts.len();
        let mut offsets = self.starts;
        offsets.push(self.bytes.len() as u32);
        // At most two thirds full: linear probes stay short and always reach an empty slot.
        let slots_len = (n + n / 2 + 1).next_power_of_two().max(2);
        let mask = slots_len - 1;
        let mut slots = vec![0u32; slots_len];
        drop(self.table);
        for id in 0..n {
            let s = &self.bytes[offsets[id] as usize..offsets[id + 1] as usize];
            let mut i = xxh3_64(s) as usize & mask;
            while slots[i] != 0 {
                i = (i + 1) & mask;
            }
            slots[i] = id as u32 + 1;
        }
        w.push_bytes(&self.bytes)?;
        drop(self.bytes);
        w.push(&offsets)?;
        w.push(&slots)
    }
}

/// A string pool read from a blob (three consecutive sections starting at `first`).
pub(crate) struct StringTable<'a> {
    bytes: &'a [u8],
    offsets: &'a [u32],
    slots: &'a [u32],
}

impl<'a> StringTable<'a> {
    /// The string table stored in three sections from `first`. Only O(1) checks: a warm
    /// open must not read the whole table; `get` is bounds-checked instead.
    pub(crate) fn read(blob: &'a Blob, first: usize) -> Result<StringTable<'a>, BlobError> {
        let t = StringTable { bytes: blob.bytes(first), offsets: blob.array(first + 1)?, slots: blob.array(first + 2)? };
        if t.offsets.last().is_none_or(|l| *l as usize != t.bytes.len()) || !t.slots.len().is_power_of_two() {
            return Err(BlobError("string table is inconsistent".into()));
        }
        Ok(t)
    }

    pub(crate) fn get(&self, id: u32) -> &'a str {
        let i = id as usize;
        match (self.offsets.get(i), self.offsets.get(i + 1)) {
            (Some(&s), Some(&e)) => self
                .bytes
                .get(s as usize..e as usize)
                .and_then(|b| std::str::from_utf8(b).ok())
                .unwrap_or(""),
            _ => "",
        }
    }

    pub(crate) fn lookup(&self, s: &str) -> Option<u32> {
        let mask = self.slots.len() - 1;
        let mut i = xxh3_64(s.as_bytes()) as usize & mask;
        // The table is at most two thirds full, so the probe ends at an empty slot.
        for _ in 0..self.slots.len() {
            match self.slots[i] {
                0 => return None,
                v if self.get(v - 1) == s => return Some(v - 1),
                _ => i = (i + 1) & mask,
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intern_and_look_up() {
        let mut pool = StringPool::new();
        let a = pool.intern("libc.so.6()(64bit)");
        let b = pool.intern("bash");
        assert_eq!(pool.intern("bash"), b);
        assert_eq!(pool.intern(""), EMPTY);
        assert_eq!(pool.as_str(a), "libc.so.6()(64bit)");
        let ids: Vec<u32> = (0..1000).map(|i| pool.intern(&format!("cap{i}"))).collect();
        assert_eq!(pool.len(), 1003);
        let bytes = crate::blob::blob_bytes(3, |w| pool.write(w), 1, 1);
        let blob = Blob::from_bytes(bytes, 1, 1).unwrap();
        let t = StringTable::read(&blob, 0).unwrap();
        assert_eq!(t.lookup("bash"), Some(b));
        assert_eq!(t.lookup("libc.so.6()(64bit)"), Some(a));
        assert_eq!(t.lookup("cap500"), Some(ids[500]));
        assert_eq!(t.lookup("nope"), None);
        assert_eq!(t.get(ids[999]), "cap999");
        assert_eq!(t.get(EMPTY), "");
        assert_eq!(t.get(99999), "");
    }
}
