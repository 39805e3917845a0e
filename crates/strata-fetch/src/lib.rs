//! Getting every RPM a lock names onto local disk, verified.
//!
//! This crate owns the RPM cache: a content-addressed directory (`DIR/sha256/<hex>`, one file
//! per package, named by the checksum the lock recorded), filled by parallel downloads from
//! http(s), `file://` or plain paths. A file enters the cache only after its size and checksum
//! match the lock (and, for repos with `gpgcheck`, its header signature verifies), through a
//! temporary file that is fsynced and renamed, so neither a corrupt download nor a killed run
//! ever leaves a file a later run would trust. A cached file is hashed again before a process
//! first uses it ([`FetchOptions::verify_cached`]), and [`RpmCache::recheck`] lets a user of
//! the file that found it damaged (a per-file digest mismatch) evict and fetch it again.

mod cache;
mod digest;
mod error;
mod gpg;
mod prune;
mod temp;

pub use cache::{Recheck, RpmCache};
pub use error::{FetchError, PackageError};
pub use prune::{prune, Pruned, PARTIAL_MAX_AGE};

use std::collections::HashSet;
use std::path::PathBuf;
use std::time::Duration;
use strata_lock::{Checksum, Lockfile};

/// One RPM to get into the cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchJob {
    /// What messages call the package: its NEVRA.
    pub name: String,
    /// The repo id, for messages and the gpgcheck error.
    pub repo: String,
    /// `http(s)://...`, `file:///...` or an absolute path.
    pub url: String,
    /// From the lock; names the cache file, so the type must be one repodata uses
    /// (`sha256`, `sha512`, `sha384`, `sha224`, `sha1` or its old name `sha`).
    pub checksum: Checksum,
    /// Size of the `.rpm` in bytes, from the lock.
    pub size: u64,
    /// The repo's keys when it has `gpgcheck=1`; `None` skips signature checks.
    pub gpg_keys: Option<Vec<GpgKey>>,
}

/// A repo's `gpgkey`: a file, or the key itself (ASCII-armored or binary, one or more keys).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum GpgKey {
    File(PathBuf),
    Data(Vec<u8>),
}

#[derive(Debug, Clone)]
pub struct FetchOptions {
    /// Downloads at once.
    pub jobs: usize,
    /// Re-hash a cached file against the lock's checksum before it is used, once per process
    /// (a file verified earlier in this process and unchanged since — same inode, size,
    /// mtime and ctime — is not read again). A file that fails is fetched again. Off, a
    /// cached file is trusted by name and size: it was verified when it was written, but
    /// damage on disk or a hand-edited cache would then go unnoticed.
    pub verify_cached: bool,
    /// Pauses before retrying a download that arrived with the wrong size or checksum; its
    /// length is the number of retries. Transport failures (5xx, dropped connections) are
    /// retried by the [`strata_repo::Fetcher`] with its own schedule.
    pub backoff: Vec<Duration>,
}

impl Default for FetchOptions {
    fn default() -> Self {
        FetchOptions {
            jobs: 4,
            // Cheap: ~0.5 ms per MB with SHA-NI, on files the page cache usually holds.
            verify_cached: true,
            backoff: vec![Duration::from_millis(200), Duration::from_millis(800)],
        }
    }
}

/// Told what [`RpmCache::fetch_all`] is doing; called from worker threads.
pub trait Progress: Sync {
    /// Once, first: the number of jobs and the bytes that are not in the cache yet.
    fn start(&self, total_jobs: usize, total_bytes: u64);
    /// New bytes of `name` arrived (a retry that starts over reports nothing until it has
    /// passed what earlier attempts got).
    fn advance(&self, name: &str, bytes: u64);
    /// `name` is in the cache and verified; `cached` when no download was needed. Not called
    /// for a job that failed.
    fn done_one(&self, name: &str, cached: bool);
    /// Once, last, also when jobs failed.
    fn finish(&self);
}

/// A [`Progress`] that shows nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn start(&self, _: usize, _: u64) {}
    fn advance(&self, _: &str, _: u64) {}
    fn done_one(&self, _: &str, _: bool) {}
    fn finish(&self) {}
}

/// The jobs that fetch every package of `images` (all images when empty), each checksum once
/// (the first image and repo naming it win). `gpg_keys` is left `None`: the lock does not
/// record repo options, so the caller sets it from the spec's repos.
pub fn jobs_for(lock: &Lockfile, images: &[impl AsRef<str>]) -> Result<Vec<FetchJob>, FetchError> {
    let names: Vec<&str> = if images.is_empty() {
        lock.images.keys().map(String::as_str).collect()
    } else {
        images.iter().map(AsRef::as_ref).collect()
    };
    let mut seen = HashSet::new();
    let mut jobs = Vec::new();
    for image in names {
        let locked = lock
            .images
            .get(image)
            .ok_or_else(|| FetchError::UnknownImage {
                image: image.to_string(),
                known: lock.images.keys().cloned().collect(),
            })?;
        for p in &locked.packages {
            let key = (
                digest::canonical_kind(&p.checksum.kind),
                p.checksum.value.to_ascii_lowercase(),
            );
            if !seen.insert(key) {
                continue;
            }
            let repo = lock
                .repos
                .get(&p.repo)
                .ok_or_else(|| FetchError::UnknownRepo {
                    package: p.nevra(),
                    repo: p.repo.clone(),
                })?;
            jobs.push(FetchJob {
                name: p.nevra(),
                repo: p.repo.clone(),
                url: strata_repo::join_url(&repo.baseurl, &p.location),
                checksum: p.checksum.clone(),
                size: p.size,
                gpg_keys: None,
            });
        }
    }
    Ok(jobs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use strata_lock::{LockedImage, LockedPackage, LockedRepo};

    fn pkg(name: &str, repo: &str, sum: &str) -> LockedPackage {
        LockedPackage {
            name: name.into(),
            epoch: 0,
            version: "1".into(),
            release: "1".into(),
            arch: "x86_64".into(),
            repo: repo.into(),
            location: format!("Packages/{name}-1-1.x86_64.rpm"),
            checksum: Checksum {
                kind: "sha256".into(),
                value: sum.repeat(64),
            },
            size: 10,
            installed_size: 20,
            sourcerpm: String::new(),
            buildtime: 0,
        }
    }

    fn lock() -> Lockfile {
        let mut l = Lockfile::new();
        let image = |pkgs| LockedImage {
            inputs: String::new(),
            arch: "x86_64".into(),
            packages: pkgs,
        };
        l.images.insert(
            "a".into(),
            image(vec![pkg("bash", "base", "a"), pkg("zlib", "base", "b")]),
        );
        l.images.insert(
            "b".into(),
            image(vec![pkg("zlib", "mirror", "B"), pkg("curl", "http", "c")]),
        );
        l.repos.insert(
            "base".into(),
            LockedRepo {
                repomd_checksum: String::new(),
                baseurl: "/srv/base/".into(),
            },
        );
        l.repos.insert(
            "mirror".into(),
            LockedRepo {
                repomd_checksum: String::new(),
                baseurl: "/srv/mirror".into(),
            },
        );
        l.repos.insert(
            "http".into(),
            LockedRepo {
                repomd_checksum: String::new(),
                baseurl: "http://h/r?t=1".into(),
            },
        );
        l
    }

    #[test]
    fn jobs_are_deduplicated_by_checksum() {
        let jobs = jobs_for(&lock(), &["a", "b"]).unwrap();
        let names: Vec<_> = jobs.iter().map(|j| j.name.as_str()).collect();
        // zlib is in both images under the same checksum (in other case): fetched once.
        assert_eq!(
            names,
            ["bash-1-1.x86_64", "zlib-1-1.x86_64", "curl-1-1.x86_64"]
        );
        assert_eq!(jobs[0].url, "/srv/base/Packages/bash-1-1.x86_64.rpm");
        assert_eq!(jobs[1].repo, "base");
        assert_eq!(jobs[2].url, "http://h/r/Packages/curl-1-1.x86_64.rpm?t=1");
        assert_eq!(jobs_for(&lock(), &[] as &[&str]).unwrap(), jobs);
        let only_b = jobs_for(&lock(), &[String::from("b")]).unwrap();
        assert_eq!(only_b[0].url, "/srv/mirror/Packages/zlib-1-1.x86_64.rpm");
    }

    #[test]
    fn unknown_names_are_errors() {
        let e = jobs_for(&lock(), &["web"]).unwrap_err().to_string();
        assert!(e.contains("`web`") && e.contains("a, b"), "{e}");
        let mut l = lock();
        l.repos.remove("http");
        let e = jobs_for(&l, &["b"]).unwrap_err().to_string();
        assert!(e.contains("curl-1-1.x86_64") && e.contains("`http`"), "{e}");
    }
}
