//! Upload records: what lets a push pick up a big blob where a killed (or failed) push left
//! it. A registry keeps an upload session after its client is gone; a chunked upload writes
//! `STORE/strata/uploads/<key>.json` — registry, repository, digest, size, the session's
//! upload URL and how many bytes the registry acknowledged — after the session opens and
//! after every chunk, and removes it once the blob is in. The next push of that blob to
//! that repository asks the registry how far the session got (`GET` on the URL, `Range`)
//! and goes on from there; a session the registry no longer knows starts afresh.
//!
//! A record is untrusted input: read within a size limit, parsed strictly (unknown keys,
//! another version, another registry, repository, digest or size, an offset past the blob,
//! a URL off the registry's own origin are all refused, the file removed, a warning logged).
//! Nothing in it is believed about the blob's content: the closing `PUT ?digest=` makes the
//! registry verify the whole blob, so a wrong offset costs a failed upload, never a wrong
//! blob.
//!
//! Records are written by rename (a killed push leaves the old or the new one, never a torn
//! one) but not fsynced: they only have to survive the process, and one lost to a power cut
//! means the blob starts again. An `flock` on `<key>.lock` makes one push at a time the
//! owner of a record; a concurrent push of the same blob to the same repository uploads
//! without one.

use crate::client::Repo;
use serde::{Deserialize, Serialize};
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use strata_oci::oci_spec::image::Digest;
use strata_oci::store::Store;
use url::Url;

/// The folder under the store's `strata/` (beside the OCI layout, which tools ignore).
const NAMESPACE: &str = "uploads";
const VERSION: u32 = 1;
/// A record is a few hundred bytes; anything much bigger is not one.
const MAX_RECORD_BYTES: u64 = 16 * 1024;

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Record {
    version: u32,
    registry: String,
    repository: String,
    digest: String,
    size: u64,
    location: String,
    offset: u64,
}

/// A session an earlier push left: the upload URL and the bytes it had acknowledged.
pub(crate) struct Saved {
    pub location: Url,
    pub offset: u64,
}

/// The record of one blob's upload to one repository, owned (flocked) by this push until
/// [`Claim::done`] or drop.
pub(crate) struct Claim {
    dir: PathBuf,
    key: String,
    registry: String,
    repository: String,
    digest: String,
    size: u64,
    /// Held for the flock; the file stays empty.
    _lock: File,
}

fn dir_of(store: &Store) -> PathBuf {
    store.root().join("strata").join(NAMESPACE)
}

/// One file name per (registry, repository, digest), whatever characters they contain.
fn key_of(repo: &Repo<'_>, digest: &Digest) -> String {
    let id = format!("{}\n{}\n{digest}", repo.registry, repo.repository);
    let d = strata_oci::sha256_hex_of(id.as_bytes());
    d.digest().to_string()
}

impl Claim {
    /// Whether an earlier push left a record for this blob in this repository (a cheap
    /// check before [`Claim::take`]).
    pub fn exists(store: &Store, repo: &Repo<'_>, digest: &Digest) -> bool {
        dir_of(store).join(format!("{}.json", key_of(repo, digest))).exists()
    }

    /// The record of `digest`'s upload to `repo`, or `None` when another push holds it or
    /// the folder cannot be made: resuming is an optimisation, the upload goes on without.
    pub fn take(store: &Store, repo: &Repo<'_>, digest: &Digest, size: u64) -> Option<Claim> {
        let dir = dir_of(store);
        let key = key_of(repo, digest);
        let lock_path = dir.join(format!("{key}.lock"));
        let opened = fs::create_dir_all(&dir).and_then(|()| OpenOptions::new().create(true).truncate(false).write(true).open(&lock_path));
        let lock = match opened {
            Ok(f) => f,
            Err(e) => {
                tracing::debug!("{}: {e}; uploading {digest} without a record", lock_path.display());
                return None;
            }
        };
        match rustix::fs::flock(&lock, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => {}
            Err(rustix::io::Errno::WOULDBLOCK) => {
                tracing::debug!("another push is uploading {digest} to {}/{}; uploading without a record", repo.registry, repo.repository);
                return None;
            }
            Err(e) => {
                tracing::debug!("locking {}: {e}; uploading {digest} without a record", lock_path.display());
                return None;
            }
        }
        // A push that finished between our open and our lock unlinked the file we hold; a
        // third one may already own a new file under the name.
        let same = match (fs::metadata(&lock_path), lock.metadata()) {
            (Ok(a), Ok(b)) => a.ino() == b.ino() && a.dev() == b.dev(),
            _ => false,
        };
        if !same {
            return None;
        }
        Some(Claim {
            dir,
            key,
            registry: repo.registry.clone(),
            repository: repo.repository.clone(),
            digest: digest.to_string(),
            size,
            _lock: lock,
        })
    }

    fn path(&self) -> PathBuf {
        self.dir.join(format!("{}.json", self.key))
    }

    /// The session an earlier push recorded, if there is a valid record. An invalid one is
    /// removed and named in a warning.
    pub fn load(&self, repo: &Repo<'_>) -> Option<Saved> {
        let path = self.path();
        let bytes = match read_bounded(&path) {
            Ok(Some(b)) => b,
            Ok(None) => return None,
            Err(why) => {
                self.refuse(&why);
                return None;
            }
        };
        match self.check(repo, &bytes) {
            Ok(saved) => Some(saved),
            Err(why) => {
                self.refuse(&why);
                None
            }
        }
    }

    fn check(&self, repo: &Repo<'_>, bytes: &[u8]) -> Result<Saved, String> {
        let r: Record = serde_json::from_slice(bytes).map_err(|e| format!("not an upload record: {e}"))?;
        if r.version != VERSION {
            return Err(format!("record version {} (this strata writes {VERSION})", r.version));
        }
        let mine = (&self.registry, &self.repository, &self.digest, self.size);
        if (&r.registry, &r.repository, &r.digest, r.size) != mine {
            return Err(format!(
                "it is about {}/{} {} ({} bytes), not {}/{} {} ({} bytes)",
                r.registry, r.repository, r.digest, r.size, self.registry, self.repository, self.digest, self.size
            ));
        }
        if r.offset > r.size {
            return Err(format!("offset {} is past the blob's {} bytes", r.offset, r.size));
        }
        let location = Url::parse(&r.location).map_err(|e| format!("upload URL {:?}: {e}", r.location))?;
        // The blob's bytes go wherever the URL points: only ever to the registry itself.
        if !location.username().is_empty() || location.password().is_some() || !repo.is_on_registry(&location) {
            let mut shown = location.clone();
            shown.set_query(None);
            return Err(format!("upload URL {shown} is not on the registry {}", self.registry));
        }
        Ok(Saved { location, offset: r.offset })
    }

    fn refuse(&self, why: &str) {
        tracing::warn!("ignoring the upload record {}: {why}; the blob is uploaded afresh", self.path().display());
        let _ = fs::remove_file(self.path());
    }

    /// Records that the registry has acknowledged `offset` bytes of the session at
    /// `location`. A record that cannot be written is logged and skipped (it only saves
    /// bytes on a later push).
    pub fn save(&self, location: &Url, offset: u64) {
        let record = Record {
            version: VERSION,
            registry: self.registry.clone(),
            repository: self.repository.clone(),
            digest: self.digest.clone(),
            size: self.size,
            location: location.to_string(),
            offset,
        };
        let bytes = serde_json::to_vec(&record).expect("a record serialises");
        if let Err(e) = write_renamed(&self.dir, &self.path(), &bytes) {
            tracing::debug!("writing the upload record {}: {e}", self.path().display());
        }
    }

    /// The blob is in: the record goes, and so does the lock file (unlinked while still
    /// held, so no other push can own the old one; see [`Claim::take`]).
    pub fn done(self) {
        for p in [self.path(), self.dir.join(format!("{}.lock", self.key))] {
            if let Err(e) = fs::remove_file(&p) {
                if e.kind() != std::io::ErrorKind::NotFound {
                    tracing::debug!("removing {}: {e}", p.display());
                }
            }
        }
    }
}

/// Removes the upload records (with their lock files and stray temp files) last written
/// before `cutoff`, leaving any a running push holds: `strata gc`'s share of the folder,
/// for killed pushes of blobs that were never pushed again. Returns how many records went.
pub fn prune_upload_records(store: &Store, cutoff: std::time::SystemTime) -> std::io::Result<usize> {
    let dir = dir_of(store);
    let entries = match fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    let mut removed = 0;
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let old = entry.metadata().and_then(|m| m.modified()).is_ok_and(|t| t < cutoff);
        if !old {
            continue;
        }
        if name.starts_with(".tmp-") {
            let _ = fs::remove_file(entry.path());
            continue;
        }
        let Some(key) = name.strip_suffix(".json").or_else(|| name.strip_suffix(".lock")) else { continue };
        let lock_path = dir.join(format!("{key}.lock"));
        let Ok(lock) = OpenOptions::new().create(true).truncate(false).write(true).open(&lock_path) else { continue };
        if rustix::fs::flock(&lock, rustix::fs::FlockOperation::NonBlockingLockExclusive).is_err() {
            continue; // a push is using it
        }
        let record = dir.join(format!("{key}.json"));
        if fs::remove_file(&record).is_ok() {
            removed += 1;
        }
        let _ = fs::remove_file(&lock_path);
    }
    Ok(removed)
}

/// The file's bytes, `None` if it is absent, or why it is not a record.
fn read_bounded(path: &std::path::Path) -> Result<Option<Vec<u8>>, String> {
    let f = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.to_string()),
    };
    let mut bytes = Vec::new();
    f.take(MAX_RECORD_BYTES + 1).read_to_end(&mut bytes).map_err(|e| e.to_string())?;
    if bytes.len() as u64 > MAX_RECORD_BYTES {
        return Err(format!("larger than {MAX_RECORD_BYTES} bytes"));
    }
    Ok(Some(bytes))
}

/// Temp file + rename, without fsync (see the module comment).
fn write_renamed(dir: &std::path::Path, path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut tmp = tempfile::Builder::new().prefix(".tmp-").tempfile_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, SystemTime};

    fn aged(path: &std::path::Path, age: Duration) {
        let f = OpenOptions::new().create(true).truncate(false).write(true).open(path).unwrap();
        f.set_modified(SystemTime::now() - age).unwrap();
    }

    #[test]
    fn gc_prunes_old_records_and_leaves_young_and_held_ones() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open_or_create(tmp.path().join("store")).unwrap();
        let dir = dir_of(&store);
        fs::create_dir_all(&dir).unwrap();
        let hour = Duration::from_secs(3600);
        aged(&dir.join("old.json"), 2 * hour);
        aged(&dir.join("young.json"), Duration::ZERO);
        aged(&dir.join("held.json"), 2 * hour);
        aged(&dir.join(".tmp-abc"), 2 * hour);
        aged(&dir.join("orphan.lock"), 2 * hour);
        // A push holding its record's lock keeps it, however old.
        let held = OpenOptions::new().create(true).truncate(false).write(true).open(dir.join("held.lock")).unwrap();
        rustix::fs::flock(&held, rustix::fs::FlockOperation::NonBlockingLockExclusive).unwrap();

        let removed = prune_upload_records(&store, SystemTime::now() - hour).unwrap();
        assert_eq!(removed, 1);
        let mut left: Vec<String> = fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        left.sort();
        assert_eq!(left, ["held.json", "held.lock", "young.json"]);
        drop(held);
    }
}
