//! Per-file digests: `FILEDIGESTS`, in the algorithm `FILEDIGESTALGO` names, checked as each
//! regular file's content streams out of the payload, as rpm does (`rpmfiArchiveReadToFile`).
//! A package whose content differs from its own header is refused, whatever checksum the
//! repository published for the whole file. A payload read whole with every file matching
//! is remembered for the rest of the process (by its file's inode, size and times), so the
//! same package installed into another image is not hashed again.

use std::collections::HashSet;
use std::fmt;
use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// `FILEDIGESTALGO`'s values (rpm's `pgpHashAlgo`); md5 when the tag is absent (old rpms).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DigestAlgo {
    Md5,
    Sha1,
    Sha224,
    Sha256,
    Sha384,
    Sha512,
}

impl DigestAlgo {
    pub fn from_tag(value: u32) -> Option<DigestAlgo> {
        Some(match value {
            1 => DigestAlgo::Md5,
            2 => DigestAlgo::Sha1,
            8 => DigestAlgo::Sha256,
            9 => DigestAlgo::Sha384,
            10 => DigestAlgo::Sha512,
            11 => DigestAlgo::Sha224,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            DigestAlgo::Md5 => "md5",
            DigestAlgo::Sha1 => "sha1",
            DigestAlgo::Sha224 => "sha224",
            DigestAlgo::Sha256 => "sha256",
            DigestAlgo::Sha384 => "sha384",
            DigestAlgo::Sha512 => "sha512",
        }
    }

    pub(crate) fn hasher(self) -> Hasher {
        Hasher(match self {
            DigestAlgo::Md5 => Box::new(md5::Md5::default()),
            DigestAlgo::Sha1 => Box::new(sha1::Sha1::default()),
            DigestAlgo::Sha224 => Box::new(sha2::Sha224::default()),
            DigestAlgo::Sha256 => Box::new(sha2::Sha256::default()),
            DigestAlgo::Sha384 => Box::new(sha2::Sha384::default()),
            DigestAlgo::Sha512 => Box::new(sha2::Sha512::default()),
        })
    }
}

/// A hasher of the algorithm the header names (sha2's `DynDigest`, no enum of our own).
pub(crate) struct Hasher(Box<dyn sha2::digest::DynDigest + Send>);

impl Hasher {
    pub(crate) fn update(&mut self, data: &[u8]) {
        self.0.update(data);
    }

    pub(crate) fn finish_hex(self) -> String {
        hex::encode(self.0.finalize())
    }
}

/// A file whose payload content does not match the header's digest for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DigestMismatch {
    /// Index in the header's file list.
    pub file: u32,
    /// Absolute path, as the header names it.
    pub path: String,
    pub algo: DigestAlgo,
    /// What the header says (lower-case hex; empty when the header has none for the file).
    pub expected: String,
    /// What the payload's content hashes to.
    pub actual: String,
}

impl fmt::Display for DigestMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let expected = if self.expected.is_empty() { "no digest" } else { self.expected.as_str() };
        write!(f, "{}: payload content has {} digest {}, but the package header says {expected}", self.path, self.algo.name(), self.actual)
    }
}

impl std::error::Error for DigestMismatch {}

/// The check of the entry being read: started when its header is read, settled when its
/// content has been read to the end (content skipped unread is not checked, as it is not
/// used either).
pub(crate) struct Pending {
    pub file: u32,
    pub hasher: Hasher,
    pub size: u64,
}

/// What identifies a file's version cheaply: any write or replacement changes one of these.
type Stamp = (u64, u64, u64, i64, i64, i64, i64);

/// Payloads this process read to the end with every regular file checked, by the stamp
/// their `.rpm` had: the same package installed into a second image is not hashed again
/// (the corpus fleet installs each package into two images on average; hashing is most of
/// what checking costs).
fn sealed() -> &'static Mutex<HashSet<Stamp>> {
    static SEALED: OnceLock<Mutex<HashSet<Stamp>>> = OnceLock::new();
    SEALED.get_or_init(Default::default)
}

/// Whether one payload read needs checking, and whether it checked everything.
pub(crate) struct Seal {
    /// `None` when the file changed too shortly before it was opened to be remembered (file
    /// times tick coarsely, so a later write could leave the same stamp).
    stamp: Option<Stamp>,
    checking: bool,
    complete: bool,
}

impl Seal {
    pub(crate) fn of(file: &File) -> Seal {
        let opened = SystemTime::now();
        let stamp = file.metadata().ok().map(|m| (m.dev(), m.ino(), m.len(), m.mtime(), m.mtime_nsec(), m.ctime(), m.ctime_nsec()));
        let known = stamp.is_some_and(|s| sealed().lock().unwrap().contains(&s));
        let changed = |s: &Stamp| UNIX_EPOCH + Duration::new(s.5.max(0) as u64, s.6.clamp(0, 999_999_999) as u32);
        let stamp = stamp.filter(|s| changed(s) + Duration::from_millis(100) <= opened);
        Seal { stamp, checking: !known, complete: true }
    }

    /// Whether contents are to be hashed: not when this process checked the same file whole.
    pub(crate) fn checking(&self) -> bool {
        self.checking
    }

    /// A file's content was not read to its end, so not checked.
    pub(crate) fn skipped(&mut self) {
        self.complete = false;
    }

    /// The payload's end: remembered if every file was checked and matched.
    pub(crate) fn finished(&mut self, matched: bool) {
        if let (true, true, true, Some(s)) = (self.checking, self.complete, matched, self.stamp) {
            sealed().lock().unwrap().insert(s);
        }
    }

    #[cfg(test)]
    pub(crate) fn force_checking(&mut self) {
        self.checking = true;
    }
}

/// Whether `actual` is what the header's `expected` allows. rpm's one exception: old md5
/// packages carry all zeros (or nothing) for empty files.
pub(crate) fn matches(algo: DigestAlgo, expected: &str, actual: &str, size: u64) -> bool {
    if expected.eq_ignore_ascii_case(actual) {
        return true;
    }
    size == 0 && algo == DigestAlgo::Md5 && expected.bytes().all(|b| b == b'0')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex_of(algo: DigestAlgo, data: &[u8]) -> String {
        let mut h = algo.hasher();
        h.update(data);
        h.finish_hex()
    }

    #[test]
    fn known_digests_for_every_algorithm() {
        let cases = [
            (1, "900150983cd24fb0d6963f7d28e17f72"),
            (2, "a9993e364706816aba3e25717850c26c9cd0d89d"),
            (8, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
            (11, "23097d223405d8228642a477bda255b32aadbce4bda0b3f7e36c9da7"),
        ];
        for (tag, want) in cases {
            assert_eq!(hex_of(DigestAlgo::from_tag(tag).unwrap(), b"abc"), want, "algo {tag}");
        }
        assert!(hex_of(DigestAlgo::Sha384, b"abc").starts_with("cb00753f45a35e8b"));
        assert!(hex_of(DigestAlgo::Sha512, b"abc").starts_with("ddaf35a193617aba"));
        assert_eq!(DigestAlgo::from_tag(7), None);
    }

    #[test]
    fn a_payload_is_sealed_only_when_read_whole_and_matching() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.rpm");
        std::fs::write(&path, b"rpm").unwrap();
        let file = File::open(&path).unwrap();
        let mut racy = Seal::of(&file);
        racy.finished(true);
        assert!(Seal::of(&file).checking(), "a file changed just now is not remembered");
        std::thread::sleep(Duration::from_millis(150));
        let mut partial = Seal::of(&file);
        partial.skipped();
        partial.finished(true);
        assert!(Seal::of(&file).checking(), "a file left unread was not checked");
        Seal::of(&file).finished(false);
        assert!(Seal::of(&file).checking(), "a mismatch seals nothing");
        Seal::of(&file).finished(true);
        assert!(!Seal::of(&file).checking(), "checked whole: not hashed again");
        std::fs::write(&path, b"rpn").unwrap();
        assert!(Seal::of(&File::open(&path).unwrap()).checking(), "changed since: hashed again");
    }

    #[test]
    fn only_old_md5_empty_files_may_carry_zeros() {
        let empty_md5 = hex_of(DigestAlgo::Md5, b"");
        assert!(matches(DigestAlgo::Md5, &"0".repeat(32), &empty_md5, 0));
        assert!(matches(DigestAlgo::Md5, "", &empty_md5, 0));
        assert!(!matches(DigestAlgo::Md5, &"0".repeat(32), &hex_of(DigestAlgo::Md5, b"x"), 1));
        let empty_sha = hex_of(DigestAlgo::Sha256, b"");
        assert!(!matches(DigestAlgo::Sha256, &"0".repeat(64), &empty_sha, 0));
        assert!(!matches(DigestAlgo::Sha256, "", &empty_sha, 0), "a missing digest is a mismatch, as in rpm");
        assert!(matches(DigestAlgo::Sha256, &empty_sha.to_uppercase(), &empty_sha, 0));
    }
}
