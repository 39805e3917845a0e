//! Writing blobs: a temporary file in the store that is hashed while written, synced, and
//! renamed to `blobs/sha256/<hex>` only once its digest is known (and matches, if one was
//! announced). A crash leaves at most a stray temporary file, never a wrong blob.

use crate::digest::{sha256_hex, Sha256Writer};
use crate::error::IoContext;
use crate::{Error, Result};
use oci_spec::image::Digest;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use tempfile::NamedTempFile;

/// A blob being written; call [`BlobWriter::commit`] to store it. Dropping it discards it.
pub struct BlobWriter {
    inner: Sha256Writer<BufWriter<NamedTempFile>>,
    blobs_dir: PathBuf,
}

impl BlobWriter {
    pub(crate) fn new(tmp_dir: &Path, blobs_dir: &Path) -> Result<Self> {
        let tmp = tempfile::Builder::new()
            .prefix("blob-")
            .tempfile_in(tmp_dir)
            .ctx(|| format!("creating a temporary blob in {}", tmp_dir.display()))?;
        Ok(BlobWriter {
            inner: Sha256Writer::new(BufWriter::with_capacity(1 << 20, tmp)),
            blobs_dir: blobs_dir.to_path_buf(),
        })
    }

    /// Bytes written so far.
    pub fn size(&self) -> u64 {
        self.inner.count()
    }

    /// Syncs the data, checks it against `expected` (if given) and moves it into place.
    /// Returns the digest and size.
    pub fn commit(self, expected: Option<&Digest>) -> Result<(Digest, u64)> {
        let (buf, digest, size) = self.inner.finish();
        let tmp = buf
            .into_inner()
            .map_err(|e| Error::io("writing blob", e.into_error()))?;
        if let Some(exp) = expected {
            if exp != &digest {
                return Err(Error::DigestMismatch {
                    expected: exp.to_string(),
                    actual: digest.to_string(),
                });
            }
        }
        // tempfile creates 0600; blobs are readable like any file a tool writes (skopeo,
        // umoci or a registry run as another user may read the store).
        set_readable(tmp.as_file())?;
        // Data must be on disk before the name that promises it is.
        tmp.as_file().sync_all().ctx(|| "syncing blob".into())?;
        let dest = self.blobs_dir.join(sha256_hex(&digest)?);
        tmp.persist(&dest).map_err(|e| match e.error.kind() {
            // Our own temporary file vanished while we wrote it: only gc removes those.
            io::ErrorKind::NotFound => Error::BlobCollected {
                digest: digest.to_string(),
                what: "new".into(),
                image: "this build".into(),
            },
            _ => Error::io(format!("storing blob {}", dest.display()), e.error),
        })?;
        Ok((digest, size))
    }
}

impl Write for BlobWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.inner.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Writes `bytes` to `path` atomically: temporary file beside it, sync, rename, sync dir.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::Builder::new()
        .prefix(".tmp-")
        .tempfile_in(dir)
        .ctx(|| format!("creating a temporary file in {}", dir.display()))?;
    tmp.write_all(bytes)
        .ctx(|| format!("writing {}", path.display()))?;
    set_readable(tmp.as_file())?;
    tmp.as_file()
        .sync_all()
        .ctx(|| format!("syncing {}", path.display()))?;
    tmp.persist(path)
        .map_err(|e| Error::io(format!("replacing {}", path.display()), e.error))?;
    sync_dir(dir)
}

/// fsync on a directory makes the renames inside it durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .ctx(|| format!("syncing directory {}", dir.display()))
}

fn set_readable(f: &File) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    f.set_permissions(std::fs::Permissions::from_mode(0o644))
        .ctx(|| "setting blob permissions".into())
}
