//! Fetching real corpus RPMs over loopback HTTP and from local paths, with a server that
//! misbehaves on purpose.

mod common;

use common::*;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering::SeqCst;
use std::time::Duration;
use strata_fetch::{
    jobs_for, FetchError, FetchJob, FetchOptions, NoProgress, PackageError, RpmCache,
};
use strata_lock::{Checksum, LockedImage, LockedPackage, LockedRepo, Lockfile};
use strata_repo::Fetcher;

/// Production retry counts, millisecond pauses.
fn opts() -> FetchOptions {
    FetchOptions {
        backoff: vec![Duration::from_millis(1); 2],
        ..FetchOptions::default()
    }
}

fn open(dir: &Path) -> RpmCache {
    RpmCache::open(dir)
        .unwrap()
        .with_fetcher(Fetcher::with_backoff(vec![Duration::from_millis(1); 2]))
}

fn failures(e: FetchError) -> Vec<PackageError> {
    match e {
        FetchError::Packages { failed, .. } => failed,
        other => panic!("{other}"),
    }
}

fn assert_cached(cache: &RpmCache, job: &FetchJob, original: &Path) {
    let path = cache.path_of(&job.checksum).unwrap();
    assert_eq!(
        std::fs::read(&path).unwrap(),
        std::fs::read(original).unwrap(),
        "{}",
        path.display()
    );
}

#[test]
fn whole_corpus_in_parallel_then_all_from_cache() {
    let server = Server::corpus();
    let files = corpus_rpms();
    assert!(files.len() > 100);
    let jobs = http_jobs(&server, &files);
    let tmp = tempfile::tempdir().unwrap();
    let cache = open(tmp.path());
    let rec = Recorder::default();
    let paths = cache.fetch_all(&jobs, &opts(), &rec).unwrap();

    let total: u64 = jobs.iter().map(|j| j.size).sum();
    assert_eq!(*rec.started.lock().unwrap(), Some((jobs.len(), total)));
    assert_eq!(rec.bytes.load(SeqCst) as u64, total);
    assert_eq!((rec.done_count(), rec.cached_count()), (jobs.len(), 0));
    assert_eq!(rec.finished.load(SeqCst), 1);
    assert_eq!(server.total_hits(), jobs.len());
    for ((job, file), path) in jobs.iter().zip(&files).zip(&paths) {
        assert_eq!(*path, tmp.path().join("sha256").join(&job.checksum.value));
        assert_cached(&cache, job, file);
    }
    assert!(temp_files(tmp.path()).is_empty());

    // Warm: no request at all, every job reported as cached, nothing to download.
    let rec = Recorder::default();
    assert_eq!(cache.fetch_all(&jobs, &opts(), &rec).unwrap(), paths);
    assert_eq!(server.total_hits(), jobs.len());
    assert_eq!(*rec.started.lock().unwrap(), Some((jobs.len(), 0)));
    assert_eq!(rec.cached_count(), jobs.len());

    // Re-hashing everything still needs no request.
    let verify = FetchOptions {
        verify_cached: true,
        ..opts()
    };
    cache.fetch_all(&jobs, &verify, &NoProgress).unwrap();
    assert_eq!(server.total_hits(), jobs.len());
}

#[test]
fn truncated_body_is_retried_then_refused_and_never_cached() {
    let server = Server::corpus();
    let files = small_rpms(3);
    let jobs = http_jobs(&server, &files);
    let bad = &jobs[1];
    server.fault(&bad.url, Fault::Truncate { honest: true }, 10);
    let tmp = tempfile::tempdir().unwrap();
    let cache = open(tmp.path());
    let rec = Recorder::default();
    let e = cache.fetch_all(&jobs, &opts(), &rec).unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.starts_with("1 of 3 packages could not be fetched:"),
        "{msg}"
    );
    let got = bad.size / 2;
    assert!(
        msg.contains(&bad.name)
            && msg.contains(&bad.url)
            && msg.contains(&format!("is {got} bytes, but the lock says {}", bad.size))
            && msg.contains("(after 3 attempts)"),
        "{msg}"
    );
    assert_eq!(server.hits(&bad.url), 3);
    assert!(!cache.path_of(&bad.checksum).unwrap().exists());
    assert!(temp_files(tmp.path()).is_empty());
    // The others completed and were reported.
    assert_cached(&cache, &jobs[0], &files[0]);
    assert_cached(&cache, &jobs[2], &files[2]);
    assert_eq!(rec.done_count(), 2);

    // A body cut short of its Content-Length is retried by the transport, and a retry that
    // starts over is not counted twice by the progress.
    let tmp = tempfile::tempdir().unwrap();
    server.fault(&jobs[0].url, Fault::Truncate { honest: false }, 1);
    let before = server.hits(&jobs[0].url);
    let rec = Recorder::default();
    open(tmp.path())
        .fetch_all(&jobs[..1], &opts(), &rec)
        .unwrap();
    assert_eq!(server.hits(&jobs[0].url), before + 2);
    assert_eq!(rec.bytes.load(SeqCst) as u64, jobs[0].size);
}

#[test]
fn checksum_mismatch_is_refused_and_a_transient_one_retried() {
    let server = Server::corpus();
    let files = small_rpms(2);
    let jobs = http_jobs(&server, &files);
    server.fault(&jobs[0].url, Fault::FlipByte, 10);
    server.fault(&jobs[1].url, Fault::FlipByte, 1);
    let tmp = tempfile::tempdir().unwrap();
    let cache = open(tmp.path());
    let failed = failures(cache.fetch_all(&jobs, &opts(), &NoProgress).unwrap_err());
    assert_eq!(failed.len(), 1);
    let PackageError::Checksum {
        name,
        expected,
        actual,
        attempts,
        ..
    } = &failed[0]
    else {
        panic!("{:?}", failed[0])
    };
    assert_eq!(
        (name, expected, *attempts),
        (&jobs[0].name, &jobs[0].checksum.value, 3)
    );
    assert_ne!(actual, expected);
    let msg = failed[0].to_string();
    assert!(
        msg.contains(&format!(
            "has sha256 checksum {actual}, but the lock says {expected}"
        )),
        "{msg}"
    );
    assert_eq!(server.hits(&jobs[0].url), 3);
    assert!(!cache.path_of(&jobs[0].checksum).unwrap().exists());
    assert_eq!(server.hits(&jobs[1].url), 2);
    assert_cached(&cache, &jobs[1], &files[1]);
    assert!(temp_files(tmp.path()).is_empty());
}

#[test]
fn server_error_then_success_is_retried_and_404_is_not() {
    let server = Server::corpus();
    let files = small_rpms(2);
    let mut jobs = http_jobs(&server, &files);
    server.fault(&jobs[0].url, Fault::Status(500), 1);
    jobs[1].url = format!("{}/base/Packages/missing-1-1.noarch.rpm", server.url);
    let tmp = tempfile::tempdir().unwrap();
    let cache = open(tmp.path());
    let failed = failures(cache.fetch_all(&jobs, &opts(), &NoProgress).unwrap_err());
    assert_eq!(server.hits(&jobs[0].url), 2);
    assert_cached(&cache, &jobs[0], &files[0]);
    assert_eq!(failed.len(), 1);
    let msg = failed[0].to_string();
    assert!(
        msg.contains(&jobs[1].name)
            && msg.contains(&jobs[1].url)
            && msg.contains("HTTP 404 Not Found"),
        "{msg}"
    );
    assert_eq!(server.hits(&jobs[1].url), 1);
    assert!(!cache.path_of(&jobs[1].checksum).unwrap().exists());
    assert!(temp_files(tmp.path()).is_empty());
}

#[test]
fn every_failure_is_listed() {
    let server = Server::corpus();
    let files = small_rpms(5);
    let mut jobs = http_jobs(&server, &files);
    jobs[1].url.push_str(".gone");
    server.fault(&jobs[3].url, Fault::FlipByte, 3);
    jobs[4].size -= 100;
    jobs[2].checksum = Checksum {
        kind: "md5".into(),
        value: "0".repeat(32),
    };
    let tmp = tempfile::tempdir().unwrap();
    let e = open(tmp.path())
        .fetch_all(&jobs, &opts(), &NoProgress)
        .unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.starts_with("4 of 5 packages could not be fetched:"),
        "{msg}"
    );
    for j in &jobs[1..] {
        assert!(
            msg.contains(&format!("\n  {}: ", j.name)),
            "{} missing in {msg}",
            j.name
        );
    }
    assert!(msg.contains("unsupported checksum type `md5`"), "{msg}");
    // A body longer than the lock's size is cut off, not written to the end.
    assert!(
        msg.contains(&format!(
            "is larger than the {} bytes the lock says (after 3 attempts)",
            jobs[4].size
        )),
        "{msg}"
    );
    assert_eq!(
        server.hits(&jobs[2].url),
        0,
        "an unusable checksum costs no download"
    );
    assert_eq!(
        failures(e)
            .iter()
            .map(|f| f.package().to_string())
            .collect::<Vec<_>>(),
        jobs[1..].iter().map(|j| j.name.clone()).collect::<Vec<_>>()
    );
}

#[test]
fn local_paths_and_file_urls_are_copied_and_verified() {
    let files = small_rpms(3);
    let tmp = tempfile::tempdir().unwrap();
    let mut jobs = vec![
        job_for(&files[0], files[0].display().to_string()),
        job_for(
            &files[1],
            format!("file://{}", files[1].display()).replace('+', "%2B"),
        ),
    ];
    // A repo file that is not what the lock says is refused, at once (a local file reads the
    // same every time).
    let corrupt = tmp.path().join("repo.rpm");
    let mut bytes = std::fs::read(&files[2]).unwrap();
    *bytes.last_mut().unwrap() ^= 1;
    std::fs::write(&corrupt, bytes).unwrap();
    let mut bad = job_for(&files[2], corrupt.display().to_string());
    bad.name = "corrupt-1-1.x86_64".into();
    jobs.push(bad);
    let mut missing = job_for(&files[2], "/nonexistent/strata/x.rpm".into());
    missing.checksum.value = "1".repeat(64);
    jobs.push(missing);

    let cache = open(&tmp.path().join("cache"));
    let failed = failures(cache.fetch_all(&jobs, &opts(), &NoProgress).unwrap_err());
    assert_cached(&cache, &jobs[0], &files[0]);
    assert_cached(&cache, &jobs[1], &files[1]);
    assert_eq!(failed.len(), 2);
    let msg = failed[0].to_string();
    assert!(
        matches!(failed[0], PackageError::Checksum { attempts: 1, .. }),
        "{msg}"
    );
    assert!(
        msg.starts_with("corrupt-1-1.x86_64: ")
            && msg.contains(&corrupt.display().to_string())
            && !msg.contains("attempts"),
        "{msg}"
    );
    assert!(!cache.path_of(&jobs[2].checksum).unwrap().exists());
    let msg = failed[1].to_string();
    assert!(
        msg.contains("/nonexistent/strata/x.rpm") && msg.contains("no such file"),
        "{msg}"
    );
    // The cache holds a copy, not a link: changing the repo file later changes nothing.
    let cached = cache.path_of(&jobs[0].checksum).unwrap();
    assert_eq!(std::fs::metadata(&cached).unwrap().nlink(), 1);
}

#[test]
fn stale_temp_files_of_a_killed_run_are_removed_and_live_ones_kept() {
    let server = Server::corpus();
    let files = small_rpms(2);
    let jobs = http_jobs(&server, &files);
    let tmp = tempfile::tempdir().unwrap();
    let cache = open(tmp.path());
    // What a run killed mid-download leaves: a partial temp file nobody holds.
    let stale = tmp
        .path()
        .join("tmp")
        .join(format!("{}.99999.0.part", &jobs[0].checksum.value[..16]));
    std::fs::write(&stale, &std::fs::read(&files[0]).unwrap()[..100]).unwrap();
    // A download in progress in another process: locked.
    let live = tmp.path().join("tmp").join("0123456789abcdef.1.0.part");
    let held = std::fs::File::create(&live).unwrap();
    rustix::fs::flock(&held, rustix::fs::FlockOperation::LockExclusive).unwrap();

    cache.fetch_all(&jobs, &opts(), &NoProgress).unwrap();
    assert_cached(&cache, &jobs[0], &files[0]);
    assert!(!stale.exists());
    assert!(
        live.exists(),
        "a locked temp file belongs to a live download"
    );
    drop(held);
    cache.fetch_all(&jobs, &opts(), &NoProgress).unwrap();
    assert!(temp_files(tmp.path()).is_empty());
}

#[test]
fn a_damaged_entry_is_replaced() {
    let server = Server::corpus();
    let files = small_rpms(1);
    let jobs = http_jobs(&server, &files);
    let tmp = tempfile::tempdir().unwrap();
    let cache = open(tmp.path());
    cache.fetch_all(&jobs, &opts(), &NoProgress).unwrap();
    let entry = cache.path_of(&jobs[0].checksum).unwrap();

    // Wrong size: noticed by the stat alone.
    std::fs::write(&entry, b"short").unwrap();
    cache.fetch_all(&jobs, &opts(), &NoProgress).unwrap();
    assert_cached(&cache, &jobs[0], &files[0]);
    assert_eq!(server.hits(&jobs[0].url), 2);

    // Same size, other bytes: trusted by name and size only with verify_cached off ...
    let mut bytes = std::fs::read(&entry).unwrap();
    bytes[10] ^= 1;
    std::fs::write(&entry, &bytes).unwrap();
    let rec = Recorder::default();
    let trusting = FetchOptions {
        verify_cached: false,
        ..opts()
    };
    cache.fetch_all(&jobs, &trusting, &rec).unwrap();
    assert_eq!((server.hits(&jobs[0].url), rec.cached_count()), (2, 1));
    // ... and by default re-hashed before use, found damaged and fetched again.
    let rec = Recorder::default();
    cache.fetch_all(&jobs, &opts(), &rec).unwrap();
    assert_eq!((server.hits(&jobs[0].url), rec.cached_count()), (3, 0));
    assert_cached(&cache, &jobs[0], &files[0]);
}

fn locked(pkg: &Path, repo: &str) -> LockedPackage {
    let name = pkg.file_stem().unwrap().to_string_lossy().into_owned();
    LockedPackage {
        name,
        epoch: 0,
        version: "1".into(),
        release: "1".into(),
        arch: "x86_64".into(),
        repo: repo.into(),
        location: format!("Packages/{}", pkg.file_name().unwrap().to_string_lossy()),
        checksum: Checksum {
            kind: "sha256".into(),
            value: sha256_file(pkg),
        },
        size: std::fs::metadata(pkg).unwrap().len(),
        installed_size: 0,
        sourcerpm: String::new(),
        buildtime: 0,
    }
}

#[test]
fn a_lock_is_fetched_once_per_checksum() {
    let server = Server::corpus();
    let files = small_rpms(6);
    let mut lock = Lockfile::new();
    let image = |pkgs: &[PathBuf], repo| LockedImage {
        inputs: String::new(),
        arch: "x86_64".into(),
        packages: pkgs.iter().map(|p| locked(p, repo)).collect(),
    };
    lock.images.insert("a".into(), image(&files[..4], "http"));
    lock.images.insert("b".into(), image(&files[2..], "local"));
    lock.repos.insert(
        "http".into(),
        LockedRepo {
            repomd_checksum: String::new(),
            baseurl: format!("{}/base/", server.url),
        },
    );
    lock.repos.insert(
        "local".into(),
        LockedRepo {
            repomd_checksum: String::new(),
            baseurl: corpus().join("base").display().to_string(),
        },
    );
    let jobs = jobs_for(&lock, &["a", "b"]).unwrap();
    assert_eq!(jobs.len(), 6);
    assert!(
        jobs[..4].iter().all(|j| j.url.starts_with("http://"))
            && jobs[4..].iter().all(|j| j.url.starts_with('/'))
    );
    let tmp = tempfile::tempdir().unwrap();
    let cache = open(tmp.path());
    let paths = cache.fetch_all(&jobs, &opts(), &NoProgress).unwrap();
    assert_eq!(server.total_hits(), 4);
    for (p, f) in paths.iter().zip(&files) {
        assert_eq!(std::fs::read(p).unwrap(), std::fs::read(f).unwrap());
    }
    // Duplicates handed straight to fetch_all are harmless too.
    let twice = [jobs[0].clone(), jobs[0].clone()];
    let p = cache.fetch_all(&twice, &opts(), &NoProgress).unwrap();
    assert_eq!(p[0], p[1]);
}

#[test]
fn two_threads_fetching_into_one_cache() {
    let server = Server::corpus();
    let files = small_rpms(40);
    let jobs = http_jobs(&server, &files);
    // Slow enough that both runs are downloading the same packages at the same time.
    for j in &jobs[..8] {
        server.fault(&j.url, Fault::Slow(Duration::from_millis(5)), 2);
    }
    let tmp = tempfile::tempdir().unwrap();
    let results: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..2)
            .map(|_| {
                s.spawn(|| {
                    open(tmp.path()).fetch_all(
                        &jobs,
                        &FetchOptions { jobs: 3, ..opts() },
                        &NoProgress,
                    )
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let a = results[0].as_ref().unwrap();
    assert_eq!(Some(a), results[1].as_ref().ok());
    let cache = open(tmp.path());
    for (j, f) in jobs.iter().zip(&files) {
        assert_cached(&cache, j, f);
    }
    assert!(temp_files(tmp.path()).is_empty());
    assert!(server.total_hits() >= jobs.len() && server.total_hits() <= 2 * jobs.len());
}

#[test]
fn slow_downloads_report_progress_as_they_go() {
    let server = Server::corpus();
    let files = small_rpms(30);
    let file = files.last().unwrap();
    let jobs = http_jobs(&server, std::slice::from_ref(file));
    server.fault(&jobs[0].url, Fault::Slow(Duration::from_millis(2)), 1);
    let tmp = tempfile::tempdir().unwrap();
    let rec = Recorder::default();
    open(tmp.path()).fetch_all(&jobs, &opts(), &rec).unwrap();
    assert!(rec.advances.load(SeqCst) > 1);
    assert_eq!(rec.bytes.load(SeqCst) as u64, jobs[0].size);
}

/// The child process of `killed_mid_download_leaves_nothing_trusted`; a no-op otherwise.
#[test]
fn child_fetching_slowly() {
    let var = |name| std::env::var(name).ok();
    let (Some(url), Some(cache), Some(file)) = (
        var("STRATA_FETCH_CHILD_URL"),
        var("STRATA_FETCH_CHILD_CACHE"),
        var("STRATA_FETCH_CHILD_FILE"),
    ) else {
        return;
    };
    let job = job_for(Path::new(&file), url);
    let _ = open(Path::new(&cache)).fetch_all(&[job], &opts(), &NoProgress);
}

#[test]
fn killed_mid_download_leaves_nothing_trusted() {
    let server = Server::corpus();
    let file = corpus_rpms()
        .into_iter()
        .find(|p| (100_000..400_000).contains(&std::fs::metadata(p).unwrap().len()))
        .unwrap();
    let job = job_for(&file, server.url_of(&file));
    server.fault(&job.url, Fault::Slow(Duration::from_millis(20)), 1);
    let tmp = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child_fetching_slowly", "--quiet"])
        .env("STRATA_FETCH_CHILD_URL", &job.url)
        .env("STRATA_FETCH_CHILD_CACHE", tmp.path())
        .env("STRATA_FETCH_CHILD_FILE", &file)
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !temp_files(tmp.path())
        .iter()
        .any(|p| std::fs::metadata(p).is_ok_and(|m| m.len() > 0))
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the child never started writing"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    // What the kill left: a partial temp file, and no cache entry.
    let left = temp_files(tmp.path());
    assert_eq!(left.len(), 1);
    assert!(std::fs::metadata(&left[0]).unwrap().len() < job.size);
    let cache = open(tmp.path());
    assert!(!cache.path_of(&job.checksum).unwrap().exists());

    cache
        .fetch_all(std::slice::from_ref(&job), &opts(), &NoProgress)
        .unwrap();
    assert_cached(&cache, &job, &file);
    assert!(temp_files(tmp.path()).is_empty());
}
