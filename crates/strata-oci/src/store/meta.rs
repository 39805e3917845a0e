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
    }
}
