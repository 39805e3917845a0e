//! `strata-fetch` gets every RPM a lock names onto local disk, verified: a content-addressed
//! cache (`DIR/<checksum type>/<hex>`) shared by all builds, parallel downloads, each file
//! checked against the lock's size and checksum before it enters the cache (temp file,
//! fsync, rename), retries for corrupt or cut-off downloads, then a refusal naming the URL.
//! A file in the cache is therefore always complete and correct.

use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use strata_lock::{Checksum, Lockfile};
use strata_repo::{join_url, Fetcher};

/// One RPM to fetch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FetchJob {
    /// NEVRA, for messages.
    pub name: String,
    pub repo: String,
    pub url: String,
    pub checksum: Checksum,
    pub size: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("{}", .0.join("\n"))]
    Failed(Vec<String>),
    #[error("RPM cache {path}: {source}")]
    Cache { path: PathBuf, source: std::io::Error },
}

/// Progress of a fetch; the CLI draws a bar, tests and `--json` pass [`NoProgress`].
pub trait Progress: Sync {
    fn start(&self, _jobs: usize, _bytes: u64) {}
    /// One package is available; `downloaded` is false for a cache hit.
    fn done(&self, _name: &str, _bytes: u64, _downloaded: bool) {}
    fn finish(&self) {}
}

pub struct NoProgress;
impl Progress for NoProgress {}

/// Attempts per package before a corrupt or cut-off download is refused (the HTTP layer
/// also retries transient network errors within each attempt).
const ATTEMPTS: usize = 3;

/// The jobs for `images` of a lock, one per distinct checksum, in a stable order.
pub fn jobs_for(lock: &Lockfile, images: &[String]) -> Vec<FetchJob> {
    let mut jobs: BTreeMap<(String, String), FetchJob> = BTreeMap::new();
    for name in images {
        let Some(image) = lock.images.get(name) else { continue };
        for p in &image.packages {
            let base = lock.repos.get(&p.repo).map(|r| r.baseurl.as_str()).unwrap_or("");
            jobs.entry((p.checksum.kind.clone(), p.checksum.value.clone())).or_insert_with(|| FetchJob {
                name: p.nevra(),
                repo: p.repo.clone(),
                url: join_url(base, &p.location),
                checksum: p.checksum.clone(),
                size: p.size,
            });
        }
    }
    jobs.into_values().collect()
}

pub struct RpmCache {
    root: PathBuf,
    fetcher: Fetcher,
}

impl RpmCache {
    pub fn open(root: impl Into<PathBuf>) -> RpmCache {
        RpmCache { root: root.into(), fetcher: Fetcher::new() }
    }

    /// Where the file with `checksum` lives (present or not).
    pub fn path_of(&self, checksum: &Checksum) -> PathBuf {
        self.root.join(&checksum.kind).join(&checksum.value)
    }

    /// Makes every job's file present and verified; returns checksum value → path. All
    /// jobs are attempted; the error lists every package that failed.
    pub fn fetch_all(&self, jobs: &[FetchJob], workers: usize, progress: &dyn Progress) -> Result<HashMap<String, PathBuf>, FetchError> {
        progress.start(jobs.len(), jobs.iter().map(|j| j.size).sum());
        let next = AtomicUsize::new(0);
        let results = Mutex::new(HashMap::new());
        let errors = Mutex::new(Vec::new());
        std::thread::scope(|s| {
            for _ in 0..workers.clamp(1, 16).min(jobs.len().max(1)) {
                s.spawn(|| loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(job) = jobs.get(i) else { break };
                    match self.fetch_one(job) {
                        Ok((path, downloaded)) => {
                            progress.done(&job.name, job.size, downloaded);
                            results.lock().expect("results").insert(job.checksum.value.clone(), path);
                        }
                        Err(e) => errors.lock().expect("errors").push(e),
                    }
                });
            }
        });
        progress.finish();
        let mut errors = errors.into_inner().expect("errors");
        if !errors.is_empty() {
            errors.sort();
            return Err(FetchError::Failed(errors));
        }
        Ok(results.into_inner().expect("results"))
    }

    fn fetch_one(&self, job: &FetchJob) -> Result<(PathBuf, bool), String> {
        let dest = self.path_of(&job.checksum);
        if std::fs::metadata(&dest).is_ok_and(|m| m.is_file() && m.len() == job.size) {
            return Ok((dest, false));
        }
        if !matches!(job.checksum.kind.as_str(), "sha256" | "sha512" | "sha1" | "sha") {
            return Err(format!("{}: checksum type {} is not supported", job.name, job.checksum.kind));
        }
        let dir = dest.parent().expect("cache path has a parent");
        std::fs::create_dir_all(dir).map_err(|e| format!("RPM cache {}: {e}", dir.display()))?;
        let mut last = String::new();
        for _ in 0..ATTEMPTS {
            // In the cache dir, so the final rename is atomic; removed on every failure path.
            let tmp = tempfile::Builder::new().prefix(".part-").tempfile_in(dir).map_err(|e| format!("RPM cache {}: {e}", dir.display()))?;
            if let Err(e) = self.fetcher.get_to_file(&job.repo, &job.url, tmp.path()) {
                last = format!("{}: {e}", job.name);
                continue;
            }
            match verify(tmp.path(), job) {
                Ok(()) => {
                    tmp.as_file().sync_all().map_err(|e| format!("RPM cache: {e}"))?;
                    tmp.persist(&dest).map_err(|e| format!("RPM cache {}: {}", dest.display(), e.error))?;
                    return Ok((dest, true));
                }
                Err(why) => last = format!("{} from {}: {why}; refused, nothing cached", job.name, job.url),
            }
        }
        Err(last)
    }
}

/// Size first (cheap, catches truncation), then the checksum.
fn verify(path: &Path, job: &FetchJob) -> Result<(), String> {
    let mut f = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let size = f.metadata().map_err(|e| e.to_string())?.len();
    if size != job.size {
        return Err(format!("{size} bytes, the lock says {} (truncated or wrong file)", job.size));
    }
    let got = hash(&mut f, &job.checksum.kind).map_err(|e| e.to_string())?;
    if got != job.checksum.value {
        return Err(format!("{} checksum mismatch: expected {}, got {got}", job.checksum.kind, job.checksum.value));
    }
    Ok(())
}

fn hash(r: &mut dyn Read, kind: &str) -> std::io::Result<String> {
    fn run<D: sha2::Digest>(r: &mut dyn Read) -> std::io::Result<String> {
        let mut d = D::new();
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            let n = r.read(&mut buf)?;
            if n == 0 {
                return Ok(hex::encode(d.finalize()));
            }
            d.update(&buf[..n]);
        }
    }
    match kind {
        "sha512" => run::<sha2::Sha512>(r),
        "sha1" | "sha" => run::<sha1::Sha1>(r),
        _ => run::<sha2::Sha256>(r),
    }
}

#[cfg(test)]
mod tests;
