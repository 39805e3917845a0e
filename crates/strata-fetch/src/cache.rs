//! The content-addressed RPM cache and the parallel fetch into it.

use crate::digest::{hash_reader, Hasher, Sum};
use crate::error::{FetchError, PackageError};
use crate::gpg::{self, Keyring, SigError};
use crate::temp::{self, TempFile};
use crate::{FetchJob, FetchOptions, GpgKey, Progress};
use std::collections::{BTreeSet, HashMap};
use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use strata_lock::Checksum;
use strata_repo::{Fetcher, RepoError};

/// `DIR/<checksum type>/<hex>`: one verified `.rpm` per file, plus `DIR/tmp/` for downloads
/// in progress. Safe to share between threads and processes: entries only ever appear by an
/// atomic rename of a verified, fsynced file.
pub struct RpmCache {
    root: PathBuf,
    fetcher: Fetcher,
}

/// What [`RpmCache::recheck`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recheck {
    /// The cached file matches the lock's checksum: whatever is wrong is in the package
    /// itself, and fetching it again would bring the same bytes.
    Intact,
    /// The cached file did not match; it was evicted and a verified copy fetched.
    Refetched,
}

/// A job checked and resolved to its cache path, before any I/O on the package.
struct Prepared<'a> {
    job: &'a FetchJob,
    sum: Sum,
    dest: PathBuf,
    /// `Some` for gpgcheck; a key that cannot be loaded fails the job without a download.
    keys: Option<Arc<Result<Keyring, String>>>,
}

impl RpmCache {
    /// Opens (creating it if need be) the cache at `dir`; the caller picks the place, e.g.
    /// `$STRATA_CACHE_DIR/rpms`.
    pub fn open(dir: impl Into<PathBuf>) -> Result<RpmCache, FetchError> {
        let root = dir.into();
        std::fs::create_dir_all(root.join("tmp")).map_err(|source| FetchError::Cache {
            path: root.clone(),
            source,
        })?;
        Ok(RpmCache {
            root,
            fetcher: Fetcher::new(),
        })
    }

    /// Uses `fetcher` (its retry schedule) instead of a default one.
    pub fn with_fetcher(mut self, fetcher: Fetcher) -> RpmCache {
        self.fetcher = fetcher;
        self
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where the package with `checksum` is or would be cached; `None` for a checksum type the
    /// cache does not accept or a malformed value.
    pub fn path_of(&self, checksum: &Checksum) -> Option<PathBuf> {
        let sum = Sum::parse(&checksum.kind, &checksum.value).ok()?;
        Some(self.entry(&sum))
    }

    fn entry(&self, sum: &Sum) -> PathBuf {
        self.root.join(sum.kind).join(&sum.hex)
    }

    /// Makes every job's package present and verified in the cache, `opts.jobs` at a time,
    /// and returns their paths in job order. All jobs run even when some fail; the error then
    /// lists every failed package, and the cache holds only the ones that passed.
    pub fn fetch_all(
        &self,
        jobs: &[FetchJob],
        opts: &FetchOptions,
        progress: &dyn Progress,
    ) -> Result<Vec<PathBuf>, FetchError> {
        let tmp = self.root.join("tmp");
        std::fs::create_dir_all(&tmp).map_err(|source| FetchError::Cache {
            path: tmp.clone(),
            source,
        })?;
        temp::clean_stale(&tmp);

        let mut keyrings: HashMap<&[GpgKey], Arc<Result<Keyring, String>>> = HashMap::new();
        let prepared: Vec<Result<Prepared, PackageError>> = jobs
            .iter()
            .map(|job| self.prepare(job, &mut keyrings))
            .collect();

        let missing_bytes = prepared
            .iter()
            .flatten()
            .filter(|p| !size_matches(&p.dest, p.job.size))
            .map(|p| p.job.size)
            .sum();
        progress.start(jobs.len(), missing_bytes);

        // Largest first, so a big package does not start last and leave one worker running.
        let mut order: Vec<usize> = (0..jobs.len()).filter(|&i| prepared[i].is_ok()).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(jobs[i].size));
        let outcomes: Vec<Mutex<Option<Result<bool, PackageError>>>> =
            jobs.iter().map(|_| Mutex::new(None)).collect();
        let next = AtomicUsize::new(0);
        let workers = opts.jobs.max(1).min(order.len());
        std::thread::scope(|s| {
            for _ in 0..workers {
                s.spawn(|| {
                    while let Some(&i) = order.get(next.fetch_add(1, Ordering::Relaxed)) {
                        let Ok(p) = &prepared[i] else { continue };
                        let outcome = self.fetch_one(p, opts, progress);
                        if let Ok(cached) = outcome {
                            progress.done_one(&p.job.name, cached);
                        }
                        *outcomes[i].lock().unwrap() = Some(outcome);
                    }
                });
            }
        });

        let mut paths = Vec::with_capacity(jobs.len());
        let mut failed = Vec::new();
        let mut new_in = BTreeSet::new();
        for (p, outcome) in prepared.into_iter().zip(outcomes) {
            let result = p.and_then(|p| {
                outcome
                    .into_inner()
                    .unwrap()
                    .expect("every job ran")
                    .map(|cached| (p, cached))
            });
            match result {
                Ok((p, cached)) => {
                    if !cached {
                        new_in.insert(p.dest.parent().unwrap().to_path_buf());
                    }
                    paths.push(p.dest);
                }
                Err(e) => failed.push(e),
            }
        }
        // The files were fsynced before their renames; this makes the renames durable too.
        for dir in new_in {
            if let Err(e) = File::open(&dir).and_then(|d| d.sync_all()) {
                tracing::debug!("fsync {}: {e}", dir.display());
            }
        }
        progress.finish();
        if failed.is_empty() {
            Ok(paths)
        } else {
            Err(FetchError::Packages {
                failed,
                total: jobs.len(),
            })
        }
    }

    fn prepare<'a>(
        &self,
        job: &'a FetchJob,
        keyrings: &mut HashMap<&'a [GpgKey], Arc<Result<Keyring, String>>>,
    ) -> Result<Prepared<'a>, PackageError> {
        let sum = Sum::parse(&job.checksum.kind, &job.checksum.value).map_err(|detail| {
            PackageError::BadChecksum {
                name: job.name.clone(),
                detail,
            }
        })?;
        let keys = job.gpg_keys.as_deref().map(|k| {
            keyrings
                .entry(k)
                .or_insert_with(|| Arc::new(Keyring::load(k)))
                .clone()
        });
        Ok(Prepared {
            job,
            dest: self.entry(&sum),
            sum,
            keys,
        })
    }

    /// For a user of a cached file that found it damaged (e.g. a file in its payload does
    /// not match its header digest): hashes the entry again, whatever this process verified
    /// before, and when it no longer matches the lock's checksum evicts it and fetches the
    /// package again (verified as any download). The entry is removed at once, so nothing
    /// else reads it meanwhile, and stays removed if the new download fails.
    pub fn recheck(&self, job: &FetchJob, opts: &FetchOptions) -> Result<Recheck, PackageError> {
        let mut keyrings = HashMap::new();
        let p = self.prepare(job, &mut keyrings)?;
        forget(&p.dest);
        if size_matches(&p.dest, job.size) && hash_matches(&p.dest, &p.sum) {
            return Ok(Recheck::Intact);
        }
        tracing::warn!(
            "{}: cached {} does not match the lock's {} checksum; evicting it and fetching it again",
            job.name,
            p.dest.display(),
            p.sum.kind
        );
        evict(&p.dest);
        let opts = FetchOptions {
            verify_cached: true,
            ..opts.clone()
        };
        self.fetch_one(&p, &opts, &crate::NoProgress)?;
        Ok(Recheck::Refetched)
    }

    /// One package into the cache; `Ok(true)` when it was there already.
    fn fetch_one(
        &self,
        p: &Prepared,
        opts: &FetchOptions,
        progress: &dyn Progress,
    ) -> Result<bool, PackageError> {
        let keys = match p.keys.as_deref() {
            None => None,
            Some(Ok(keys)) => Some(keys),
            Some(Err(detail)) => {
                return Err(PackageError::Keys {
                    name: p.job.name.clone(),
                    repo: p.job.repo.clone(),
                    detail: detail.clone(),
                })
            }
        };
        let mut damaged = false;
        if size_matches(&p.dest, p.job.size) {
            // A hit: its mtime becomes "last used", what `strata gc --rpm-max-age` ages by
            // (prune.rs). Before the hash, so a prune running now finds it young.
            crate::prune::mark_used(&p.dest);
            let intact = !opts.verify_cached || verified(&p.dest, &p.sum);
            if intact {
                check_signature(p, keys, &p.dest)?;
                return Ok(true);
            }
            // Replaced by rename below rather than removed now, so a concurrent reader never
            // finds the entry missing.
            tracing::warn!(
                "{}: cached {} does not match the lock's {} checksum; fetching it again",
                p.job.name,
                p.dest.display(),
                p.sum.kind
            );
            damaged = true;
        }
        let result = self.download(p, keys, opts, progress);
        if result.is_err() && damaged {
            evict(&p.dest);
        }
        result.map(|()| false)
    }

    fn download(
        &self,
        p: &Prepared,
        keys: Option<&Keyring>,
        opts: &FetchOptions,
        progress: &dyn Progress,
    ) -> Result<(), PackageError> {
        let job = p.job;
        let tmp_dir = self.root.join("tmp");
        let cache_err = |path: &Path, e: std::io::Error| PackageError::Cache {
            name: job.name.clone(),
            path: path.into(),
            detail: e.to_string(),
        };
        // A local file reads the same every time; only a network transfer can differ.
        let attempts = if is_local(&job.url) {
            1
        } else {
            opts.backoff.len() + 1
        };
        // Bytes reported to `progress` over all attempts, so a retry does not count twice.
        let mut reported = 0u64;
        let mut last_err = None;
        for attempt in 1..=attempts {
            if attempt > 1 {
                let pause = opts.backoff[attempt - 2];
                tracing::warn!(
                    "{}; retrying in {pause:?}",
                    last_err.as_ref().expect("a failed attempt")
                );
                std::thread::sleep(pause);
            }
            let tmp =
                TempFile::create(&tmp_dir, &p.sum.hex[..16]).map_err(|e| cache_err(&tmp_dir, e))?;
            let mut hasher = Hasher::new(p.sum.kind);
            let (mut got, mut too_big) = (0u64, false);
            let result =
                self.fetcher
                    .download(&job.repo, &job.url, tmp.path(), &mut |offset, chunk| {
                        if offset == 0 {
                            hasher = Hasher::new(p.sum.kind);
                        }
                        let end = offset + chunk.len() as u64;
                        // Stop a body that runs past the lock's size instead of filling the disk.
                        if end > job.size {
                            too_big = true;
                            return Err(std::io::Error::other("more data than the lock's size"));
                        }
                        hasher.update(chunk);
                        got = end;
                        if end > reported {
                            progress.advance(&job.name, end - reported);
                            reported = end;
                        }
                        Ok(())
                    });
            let size_err = |actual| PackageError::Size {
                name: job.name.clone(),
                url: job.url.clone(),
                expected: job.size,
                actual,
                attempts: attempt,
            };
            match result {
                Ok(_) if got != job.size => last_err = Some(size_err(Some(got))),
                Err(_) if too_big => last_err = Some(size_err(None)),
                Err(RepoError::Cache { path, detail }) => {
                    return Err(PackageError::Cache {
                        name: job.name.clone(),
                        path,
                        detail,
                    })
                }
                Err(e) => {
                    return Err(PackageError::Unreachable {
                        name: job.name.clone(),
                        source: Box::new(e),
                    })
                }
                Ok(_) => {
                    let actual = hasher.finish_hex();
                    if actual != p.sum.hex {
                        last_err = Some(PackageError::Checksum {
                            name: job.name.clone(),
                            url: job.url.clone(),
                            kind: p.sum.kind,
                            expected: p.sum.hex.clone(),
                            actual,
                            attempts: attempt,
                        });
                        continue;
                    }
                    // The bytes are the ones the lock names: from here on, failures are final.
                    if let Some(detail) = gpg::payload_mismatch(tmp.path()) {
                        return Err(PackageError::Corrupt {
                            name: job.name.clone(),
                            url: job.url.clone(),
                            detail,
                        });
                    }
                    check_signature(p, keys, tmp.path())?;
                    let dir = p.dest.parent().expect("entries are in a type directory");
                    std::fs::create_dir_all(dir).map_err(|e| cache_err(dir, e))?;
                    return tmp.persist(&p.dest).map_err(|e| cache_err(&p.dest, e));
                }
            }
        }
        Err(last_err.expect("at least one attempt"))
    }
}

fn check_signature(p: &Prepared, keys: Option<&Keyring>, path: &Path) -> Result<(), PackageError> {
    let Some(keys) = keys else { return Ok(()) };
    let (name, repo) = (p.job.name.clone(), p.job.repo.clone());
    gpg::verify_rpm(path, keys).map_err(|e| match e {
        SigError::Unsigned => PackageError::Unsigned { name, repo },
        SigError::UnknownKey(key_id) => PackageError::UnknownKey { name, repo, key_id },
        SigError::Bad(detail) => PackageError::BadSignature { name, repo, detail },
    })
}

/// The cache's quick validity test: an entry only appears verified, so the right size means
/// it is that package unless it was damaged since (which `verify_cached` catches).
fn size_matches(path: &Path, size: u64) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.len() == size)
}

/// What identifies a file's version cheaply: any write or replacement changes one of these
/// (ctime cannot be set back by a writer).
type Stamp = (u64, u64, u64, i64, i64, i64, i64);

fn stamp(path: &Path) -> Option<Stamp> {
    let m = std::fs::metadata(path).ok()?;
    Some((
        m.dev(),
        m.ino(),
        m.len(),
        m.mtime(),
        m.mtime_nsec(),
        m.ctime(),
        m.ctime_nsec(),
    ))
}

/// Entries this process hashed and found matching, with their stamp at that moment.
fn verified_entries() -> &'static Mutex<HashMap<PathBuf, Stamp>> {
    static VERIFIED: OnceLock<Mutex<HashMap<PathBuf, Stamp>>> = OnceLock::new();
    VERIFIED.get_or_init(Default::default)
}

fn forget(path: &Path) {
    verified_entries().lock().unwrap().remove(path);
}

/// Whether the entry matches `sum`: hashed once per process, and again only if it changed.
fn verified(path: &Path, sum: &Sum) -> bool {
    let started = std::time::SystemTime::now();
    let before = stamp(path);
    if before.is_some() && verified_entries().lock().unwrap().get(path) == before.as_ref() {
        return true;
    }
    let ok = hash_matches(path, sum);
    match before {
        Some(st) if ok && !racy(st, started) => {
            verified_entries()
                .lock()
                .unwrap()
                .insert(path.to_path_buf(), st);
        }
        _ => forget(path),
    }
    ok
}

/// File times tick coarsely (a jiffy), so a write right after the hash could leave the same
/// stamp: as git does for its index, a file changed too shortly before the hash began is not
/// remembered, and is hashed again at its next use.
fn racy(st: Stamp, started: std::time::SystemTime) -> bool {
    let changed = std::time::UNIX_EPOCH
        + std::time::Duration::new(st.5.max(0) as u64, st.6.clamp(0, 999_999_999) as u32);
    changed + std::time::Duration::from_millis(100) > started
}

fn hash_matches(path: &Path, sum: &Sum) -> bool {
    File::open(path)
        .and_then(|f| hash_reader(sum.kind, f))
        .is_ok_and(|h| h == sum.hex)
}

/// Removes a damaged entry (best effort: one that cannot be removed fails its hash again).
fn evict(path: &Path) {
    forget(path);
    match std::fs::remove_file(path) {
        Ok(()) => tracing::info!("evicted {} from the RPM cache", path.display()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => tracing::warn!("cannot evict {}: {e}", path.display()),
    }
}

fn is_local(url: &str) -> bool {
    url.starts_with('/')
        || url
            .get(..5)
            .is_some_and(|s| s.eq_ignore_ascii_case("file:"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::NoProgress;
    use strata_lock::Checksum;

    fn sha256(data: &[u8]) -> String {
        hash_reader("sha256", data).unwrap()
    }

    #[test]
    fn an_entry_is_hashed_once_per_process_until_it_changes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("entry");
        std::fs::write(&path, b"package bytes").unwrap();
        let sum = Sum::parse("sha256", &sha256(b"package bytes")).unwrap();
        let remembered = || verified_entries().lock().unwrap().contains_key(&path);

        // Just written: its stamp could survive a write in the same tick, so not remembered.
        assert!(verified(&path, &sum));
        assert!(!remembered());
        std::thread::sleep(std::time::Duration::from_millis(150));
        assert!(verified(&path, &sum));
        assert!(remembered());

        // Same size, one bit off: the stamp changed, so it is hashed again and fails.
        std::fs::write(&path, b"package bytez").unwrap();
        assert!(!verified(&path, &sum));
        assert!(!remembered());
    }

    #[test]
    fn recheck_evicts_a_damaged_entry_and_fetches_it_again() {
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("p-1-1.noarch.rpm");
        let bytes = b"not really an rpm, but the cache only checks sums".to_vec();
        std::fs::write(&source, &bytes).unwrap();
        let job = FetchJob {
            name: "p-1-1.noarch".into(),
            repo: "local".into(),
            url: source.display().to_string(),
            checksum: Checksum {
                kind: "sha256".into(),
                value: sha256(&bytes),
            },
            size: bytes.len() as u64,
            gpg_keys: None,
        };
        let cache = RpmCache::open(dir.path().join("cache")).unwrap();
        let opts = FetchOptions::default();
        let entry = cache
            .fetch_all(std::slice::from_ref(&job), &opts, &NoProgress)
            .unwrap()
            .remove(0);
        assert_eq!(cache.recheck(&job, &opts).unwrap(), Recheck::Intact);

        let mut flipped = bytes.clone();
        flipped[3] ^= 0x10;
        std::fs::write(&entry, &flipped).unwrap();
        assert_eq!(cache.recheck(&job, &opts).unwrap(), Recheck::Refetched);
        assert_eq!(std::fs::read(&entry).unwrap(), bytes);

        // Damaged, and the source gone: the entry is evicted all the same.
        std::fs::write(&entry, &flipped).unwrap();
        std::fs::remove_file(&source).unwrap();
        let err = cache.recheck(&job, &opts).unwrap_err();
        assert!(err.to_string().contains("p-1-1.noarch"), "{err}");
        assert!(!entry.exists(), "a damaged entry must not stay in the cache");
    }
}
