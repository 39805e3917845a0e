//! The unpacked-layer cache: verified, atomic, idempotent, and never trusting a half
//! extraction.

use super::*;
use crate::{Error, LayerCache};
use std::io::{self, Read};
use strata_oci::layer::Meta;

fn layer() -> (Vec<u8>, LayerInfo) {
    let mut l = LayerBuilder::new();
    l.add_dir("etc", &Meta::new(0o755).mtime(10)).unwrap();
    l.add_file("etc/os-release", &Meta::new(0o644).mtime(10), 3, &b"id\n"[..]).unwrap();
    let big = vec![7u8; 3 << 20];
    l.add_file("big", &Meta::new(0o644), big.len() as u64, &big[..]).unwrap();
    l.add_whiteout("gone").unwrap();
    l.add_dir("opaque", &Meta::new(0o755)).unwrap();
    l.add_opaque("opaque").unwrap();
    finish(l)
}

fn leftovers(cache: &LayerCache) -> Vec<String> {
    fs::read_dir(cache.dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".tmp-"))
        .collect()
}

#[test]
fn unpacks_once_with_overlay_markers() {
    if !have_root() {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let cache = LayerCache::open(t.path()).unwrap();
    let (blob, info) = layer();
    assert_eq!(cache.get(&info.diff_id).unwrap(), None);
    let dir = cache.unpack(&info.diff_id, &blob[..]).unwrap();
    assert_eq!(dir, t.path().join("layers").join(info.diff_id.digest()));
    assert_eq!(fs::read(dir.join("etc/os-release")).unwrap(), b"id\n");
    let gone = fs::symlink_metadata(dir.join("gone")).unwrap();
    assert!(crate::fsx::is_whiteout(&gone));
    assert!(crate::fsx::is_opaque(&dir.join("opaque")).unwrap());
    // A second unpack does not read the blob at all.
    let again = cache.unpack(&info.diff_id, FailingReader { left: 0 }).unwrap();
    assert_eq!(again, dir);
    assert!(leftovers(&cache).is_empty());
}

#[test]
fn diff_id_mismatch_is_refused_and_nothing_kept() {
    if !have_root() {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let cache = LayerCache::open(t.path()).unwrap();
    let (blob, info) = layer();
    let claimed = diff_id_of(b"another layer");
    let r = cache.unpack(&claimed, &blob[..]);
    assert!(matches!(r, Err(Error::DiffIdMismatch { .. })), "{r:?}");
    assert_eq!(cache.get(&claimed).unwrap(), None);
    assert_eq!(cache.get(&info.diff_id).unwrap(), None);
    assert!(leftovers(&cache).is_empty());
    let bad = strata_oci::oci_spec::image::Digest::try_from(format!("sha512:{}", "a".repeat(128))).unwrap();
    assert!(cache.path(&bad).is_err(), "only sha256 names a directory");
}

/// Yields `left` zero bytes, then fails: a download or a disk dying mid-layer.
struct FailingReader {
    left: usize,
}

impl Read for FailingReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 {
            return Err(io::Error::other("connection reset"));
        }
        let n = buf.len().min(self.left);
        self.left -= n;
        buf[..n].fill(0);
        Ok(n)
    }
}

struct Prefix<'a> {
    data: &'a [u8],
    fail_at: usize,
    pos: usize,
}

impl Read for Prefix<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.pos >= self.fail_at {
            return Err(io::Error::other("killed"));
        }
        let n = buf.len().min(self.fail_at - self.pos).min(self.data.len() - self.pos);
        buf[..n].copy_from_slice(&self.data[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

#[test]
fn interrupted_extraction_leaves_nothing_trusted() {
    if !have_root() {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let cache = LayerCache::open(t.path()).unwrap();
    let (blob, info) = layer();
    let r = cache.unpack(&info.diff_id, Prefix { data: &blob, fail_at: blob.len() / 2, pos: 0 });
    assert!(r.is_err());
    assert_eq!(cache.get(&info.diff_id).unwrap(), None);
    assert!(leftovers(&cache).is_empty(), "a failed extraction cleans up after itself");

    // A process killed mid-extraction leaves its temporary directory and an unlocked lock
    // file; a live one holds its lock. Only the dead one's is removed.
    let hex = info.diff_id.digest();
    let dead = cache.dir().join(format!(".tmp-{hex}-999999-0-0"));
    fs::create_dir_all(dead.join("etc")).unwrap();
    fs::write(dead.join("etc/os-release"), "half").unwrap();
    fs::write(dead.with_extension("lock"), "").unwrap();
    let live = cache.dir().join(format!(".tmp-{hex}-1-0-0"));
    fs::create_dir_all(&live).unwrap();
    let held = fs::File::create(live.with_extension("lock")).unwrap();
    rustix::fs::flock(&held, rustix::fs::FlockOperation::LockExclusive).unwrap();
    assert_eq!(cache.get(&info.diff_id).unwrap(), None, "a temporary directory is never a cached layer");

    let reopened = LayerCache::open(t.path()).unwrap();
    assert!(!dead.exists());
    assert!(live.exists(), "a running extraction is left alone");
    drop(held);
    assert_eq!(reopened.remove_partial().unwrap(), 1);
    assert!(leftovers(&reopened).is_empty());
    reopened.unpack(&info.diff_id, &blob[..]).unwrap();
    assert!(reopened.remove(&info.diff_id).unwrap());
    assert_eq!(reopened.get(&info.diff_id).unwrap(), None);
}

#[test]
fn concurrent_unpacks_of_one_layer_agree() {
    if !have_root() {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let cache = LayerCache::open(t.path()).unwrap();
    let (blob, info) = layer();
    let paths: Vec<_> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..4).map(|_| s.spawn(|| cache.unpack(&info.diff_id, &blob[..]).unwrap())).collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(paths.iter().all(|p| *p == paths[0]));
    assert_eq!(fs::metadata(paths[0].join("big")).unwrap().len(), 3 << 20);
    assert!(leftovers(&cache).is_empty());
}

#[test]
fn unpacks_from_the_store() {
    if !have_root() {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let store = strata_oci::store::Store::open_or_create(t.path().join("store")).unwrap();
    let mut l = store.new_layer();
    l.add_file("hello", &Meta::new(0o644), 2, &b"hi"[..]).unwrap();
    let info = store.put_layer(l, WriteOptions { compression: Compression::zstd(), threads: 1 }).unwrap();
    let cache = LayerCache::open(&t.path().join("cache")).unwrap();
    let dir = cache.unpack_from_store(&store, &info.digest, &info.diff_id).unwrap();
    assert_eq!(fs::read(dir.join("hello")).unwrap(), b"hi");
}
