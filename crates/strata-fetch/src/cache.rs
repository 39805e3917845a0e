//! The content-addressed RPM cache and the parallel fetch into it.

use crate::digest::{hash_reader, Hasher, Sum};
use crate::error::{FetchError, PackageError};
use crate::gpg::{self, Keyring, SigError};
use crate::temp::{self, TempFile};
use crate::{FetchJob, FetchOptions, GpgKey, Progress};
use std::collections::{BTreeSet, HashMap};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use strata_lock::Checksum;
use strata_repo::{Fetcher, RepoError};

/// `DIR/<checksum type>/<hex>`: one verified `.rpm` per file, plus `DIR/tmp/` for downloads
/// in progress. Safe to share between threads and processes: entries only ever appear by an
/// atomic rename of a verified, fsynced file.
pub struct RpmCache {
    root: PathBuf,
    fetcher: Fetcher,
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
            .map(|job| {
                let sum =
                    Sum::parse(&job.checksum.kind, &job.checksum.value).map_err(|detail| {
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
            })
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
        if size_matches(&p.dest, p.job.size) {
            let intact = !opts.verify_cached
                || File::open(&p.dest)
                    .and_then(|f| hash_reader(p.sum.kind, f))
                    .is_ok_and(|h| h == p.sum.hex);
            if intact {
                check_signature(p, keys, &p.dest)?;
                return Ok(true);
            }
            // Replaced by rename below rather than removed now, so a concurrent reader never
            // finds the entry missing.
            tracing::warn!(
                "cached {} does not match its checksum; fetching it again",
                p.dest.display()
            );
        }
        self.download(p, keys, opts, progress)?;
        Ok(false)
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
/// it is that package unless the disk damaged it (which `verify_cached` catches).
fn size_matches(path: &Path, size: u64) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.len() == size)
}

fn is_local(url: &str) -> bool {
    url.starts_with('/')
        || url
            .get(..5)
            .is_some_and(|s| s.eq_ignore_ascii_case("file:"))
}
