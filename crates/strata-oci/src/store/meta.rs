//! strata's own bookkeeping kept beside the layout: `STORE/strata/<namespace>/<key>` (the
//! layer cache, build records). OCI tools ignore the folder; every file is written
//! atomically, so a reader sees an old or a new version, never a torn one.

use super::blob::{sync_dir, write_atomic};
use super::Store;
use crate::error::IoContext;
use crate::{Error, Result};
use oci_spec::image::Digest;
use std::fs;
use std::io;
use std::path::PathBuf;

impl Store {
    fn meta_path(&self, namespace: &str, key: &str) -> Result<PathBuf> {
        let ok = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b)) && !s.starts_with('.');
        if !ok(namespace) || !ok(key) {
            return Err(Error::InvalidImage(format!("invalid store metadata name {namespace}/{key}")));
        }
        Ok(self.root.join("strata").join(namespace).join(key))
    }

    /// The keys stored under `namespace`, sorted (temporary files left out).
    pub fn meta_keys(&self, namespace: &str) -> Result<Vec<String>> {
        let dir = self.meta_path(namespace, "x")?.with_file_name("");
        let mut keys = Vec::new();
        match fs::read_dir(&dir) {
            Ok(rd) => {
                for entry in rd {
                    let entry = entry.ctx(|| format!("listing {}", dir.display()))?;
                    if let Some(name) = entry.file_name().to_str().filter(|n| !n.starts_with('.')) {
                        keys.push(name.to_string());
                    }
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io(format!("listing {}", dir.display()), e)),
        }
        keys.sort();
        Ok(keys)
    }

    /// Removes `namespace/key`; says whether it was there.
    pub fn remove_meta(&self, namespace: &str, key: &str) -> Result<bool> {
        let path = self.meta_path(namespace, key)?;
        match fs::remove_file(&path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(Error::io(format!("removing {}", path.display()), e)),
        }
    }

    /// Removes the entries of `namespace` that name a blob the store no longer has (after a
    /// [`Store::gc`]): `blobs` says which blobs an entry needs; an unreadable entry goes too.
    /// Returns how many were removed.
    pub fn prune_meta(&self, namespace: &str, blobs: impl Fn(&str, &[u8]) -> Option<Vec<Digest>>) -> Result<usize> {
        let mut removed = 0;
        for key in self.meta_keys(namespace)? {
            let Some(bytes) = self.read_meta(namespace, &key)? else { continue };
            let keep = blobs(&key, &bytes).is_some_and(|needed| needed.iter().all(|d| self.has_blob(d)));
            if !keep && self.remove_meta(namespace, &key)? {
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// The bytes stored under `namespace/key`, if any.
    pub fn read_meta(&self, namespace: &str, key: &str) -> Result<Option<Vec<u8>>> {
        let path = self.meta_path(namespace, key)?;
        match fs::read(&path) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io(format!("reading {}", path.display()), e)),
        }
    }

    /// Stores `bytes` under `namespace/key`, replacing what was there.
    pub fn write_meta(&self, namespace: &str, key: &str, bytes: &[u8]) -> Result<()> {
        let path = self.meta_path(namespace, key)?;
        let dir = path.parent().expect("meta paths have a parent");
        if !dir.is_dir() {
            fs::create_dir_all(dir).ctx(|| format!("creating {}", dir.display()))?;
            sync_dir(dir.parent().expect("namespace dir has a parent"))?;
        }
        write_atomic(&path, bytes)
    }

    /// Whether the blob is present with `size` bytes; if so its mtime is renewed, so that a
    /// concurrent gc's grace period counts from this reuse.
    pub fn reuse_blob(&self, digest: &Digest, size: u64) -> Result<bool> {
        let path = self.blob_path(digest)?;
        match fs::metadata(&path) {
            Ok(md) if md.is_file() && md.len() == size => {
                super::touch(&path)?;
                Ok(true)
            }
            Ok(_) => Ok(false),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(Error::io(format!("inspecting {}", path.display()), e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::store::Store;

    #[test]
    fn meta_round_trips_and_refuses_odd_names() {
        let d = tempfile::tempdir().unwrap();
        let s = Store::open_or_create(d.path()).unwrap();
        assert_eq!(s.read_meta("layers", "abc").unwrap(), None);
        s.write_meta("layers", "abc", b"one").unwrap();
        s.write_meta("layers", "abc", b"two").unwrap();
        assert_eq!(s.read_meta("layers", "abc").unwrap().as_deref(), Some(&b"two"[..]));
        for bad in ["../x", "", ".hidden", "a/b"] {
            assert!(s.write_meta("layers", bad, b"x").is_err(), "{bad}");
        }
        let digest = s.put_bytes(b"blob").unwrap();
        assert!(s.reuse_blob(&digest, 4).unwrap());
        assert!(!s.reuse_blob(&digest, 5).unwrap());
        // Only the metadata file: no temporary files left behind.
        assert_eq!(std::fs::read_dir(d.path().join("strata/layers")).unwrap().count(), 1);
        s.write_meta("layers", "abd", b"three").unwrap();
        assert_eq!(s.meta_keys("layers").unwrap(), ["abc", "abd"]);
        assert_eq!(s.meta_keys("nothing-yet").unwrap(), Vec::<String>::new());
        assert!(s.remove_meta("layers", "abc").unwrap());
        assert!(!s.remove_meta("layers", "abc").unwrap());
        assert_eq!(s.meta_keys("layers").unwrap(), ["abd"]);
        // Entries naming a missing blob (or unreadable ones) are pruned, the others kept.
        let gone = crate::sha256_hex_of(b"never stored");
        s.write_meta("refs", "present", digest.to_string().as_bytes()).unwrap();
        s.write_meta("refs", "missing", gone.to_string().as_bytes()).unwrap();
        s.write_meta("refs", "garbage", b"not a digest").unwrap();
        let parse = |_: &str, b: &[u8]| std::str::from_utf8(b).ok().and_then(|t| t.parse().ok()).map(|d| vec![d]);
        assert_eq!(s.prune_meta("refs", parse).unwrap(), 2);
        assert_eq!(s.meta_keys("refs").unwrap(), ["present"]);
    }
}
