//! Garbage collection between builds. Every build re-tags its images, so the previous
//! build's blobs lose their last reference; without a gc a worker fills its disk. The
//! worker runs `strata_pipeline::gc` (what `strata gc` runs) every `--gc-interval`.
//!
//! Safety: the slots of a worker (and other workers on the same host) share one store, and
//! a build's blobs are unreferenced until its very last step tags them — a gc in between
//! would take them. The grace period alone does not close that race: a build may run
//! longer than any grace worth having (a six-hour compose), and a blob it reuses is
//! checked, then touched, with a gc possibly deciding in between. So builds and gc
//! exclude each other through a lock file in the store: each build holds it shared for
//! its whole run (build, push, record), a gc takes it exclusively, and only when it is
//! free — a gc never waits for a build, it tries again a second later. Being a file lock
//! (flock), it also covers other `strata worker` processes on the same `--store`. The
//! grace period (`--gc-grace`, as `strata gc --grace`) still protects what writes the
//! store without the lock: a person's `strata build --store` on the worker's store.
//!
//! A worker whose slots are never all idle at once would never get its gc, so a gc that is
//! overdue by a whole interval makes the slots take no new build until it has run.

use crate::WorkerConfig;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// When and how the worker collects garbage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GcSchedule {
    /// Time between collections; zero: never.
    pub interval: Duration,
    /// Unreferenced blobs (and unpacked layers, upload records) younger than this stay.
    pub grace: Duration,
}

impl Default for GcSchedule {
    fn default() -> Self {
        GcSchedule { interval: Duration::from_secs(3600), grace: Duration::from_secs(3600) }
    }
}

/// How long a due gc waits before trying again while a build holds the store.
const RETRY: Duration = Duration::from_secs(1);

pub use strata_pipeline::{Gate, Held};

/// Why [`collect`] did not collect.
#[derive(Debug)]
pub enum Skipped {
    /// A build holds the store.
    Busy,
    /// There is no store yet (no build ever ran).
    NoStore,
}

/// One gc of `store` and the caches under `cache_dir`, unless a build holds the store.
pub fn collect(store: &Path, cache_dir: &Path, grace: Duration) -> Result<Result<strata_pipeline::GcReport, Skipped>, String> {
    let gate = Gate::new(store);
    if !store.join("oci-layout").is_file() {
        return Ok(Err(Skipped::NoStore));
    }
    let Some(_held) = gate.try_gc().map_err(|e| format!("locking {}: {e}", gate.path().display()))? else {
        return Ok(Err(Skipped::Busy));
    };
    let opened = strata_oci::store::Store::open(store).map_err(|e| format!("opening the store {}: {}", store.display(), strata_pipeline::chain_text(&e)))?;
    strata_pipeline::gc(&opened, cache_dir, grace).map(Ok).map_err(|e| strata_pipeline::chain_text(&e))
}

/// Collects garbage every `config.gc.interval` (the first at once: a worker restarted more
/// often than that still collects) until `stop`. Sets `hold_leases` while a gc is overdue
/// by a whole interval, so the slots drain. Errors are logged, never a build's concern.
pub(crate) fn run(config: &WorkerConfig, stop: &AtomicBool, hold_leases: &AtomicBool) {
    let GcSchedule { interval, grace } = config.gc;
    let cache = config.work_dir.join("cache");
    let mut due = Instant::now();
    let mut waiting = false;
    while !stop.load(Ordering::Relaxed) {
        let now = Instant::now();
        if now >= due {
            match collect(&config.store, &cache, grace) {
                Ok(Err(Skipped::Busy)) => {
                    if !waiting {
                        tracing::info!("worker {}: garbage collection due; waiting for the running builds to end", config.name);
                        waiting = true;
                    }
                    if now >= due + interval && !hold_leases.swap(true, Ordering::Relaxed) {
                        tracing::info!("worker {}: garbage collection overdue by {}: taking no new build until it has run", config.name, humantime::format_duration(interval));
                    }
                    crate::job::sleep_unless(stop, RETRY);
                    continue;
                }
                Ok(Err(Skipped::NoStore)) => {}
                Ok(Ok(r)) => tracing::info!(
                    "worker {}: garbage collection of {}: removed {} blobs ({} bytes), {} cache entries, {} unpacked layers, {} upload records; kept {} unreferenced blobs younger than {}",
                    config.name,
                    config.store.display(),
                    r.blobs_removed,
                    r.bytes_freed,
                    r.cache_entries_removed,
                    r.unpacked_layers_removed,
                    r.upload_records_removed,
                    r.blobs_kept_young,
                    humantime::format_duration(grace)
                ),
                Err(e) => tracing::warn!("worker {}: garbage collection of {}: {e}", config.name, config.store.display()),
            }
            waiting = false;
            hold_leases.store(false, Ordering::Relaxed);
            due = Instant::now() + interval;
        }
        crate::job::sleep_unless(stop, RETRY.min(due.saturating_duration_since(Instant::now())));
    }
    hold_leases.store(false, Ordering::Relaxed);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_share_the_gate_and_a_gc_gets_it_only_when_no_build_holds_it() {
        let d = tempfile::tempdir().unwrap();
        let gate = Gate::new(d.path());
        let one = gate.build().unwrap();
        let two = gate.try_build().unwrap().expect("builds share the store");
        assert!(gate.try_gc().unwrap().is_none(), "a gc while two builds run");
        drop(one);
        assert!(gate.try_gc().unwrap().is_none(), "a gc while one build runs");
        drop(two);
        let gc = gate.try_gc().unwrap().expect("no build: the gc runs");
        assert!(gate.try_build().unwrap().is_none(), "a build waits for the running gc");
        assert!(gate.try_gc().unwrap().is_none(), "one gc at a time");
        // A build asking meanwhile starts as soon as the gc is done.
        let waiter = {
            let gate = gate.clone();
            std::thread::spawn(move || gate.build().unwrap())
        };
        std::thread::sleep(Duration::from_millis(200));
        assert!(!waiter.is_finished(), "the build waited");
        drop(gc);
        let _held = waiter.join().unwrap();
    }

    #[test]
    fn a_gc_overdue_while_builds_run_holds_new_leases_until_it_has_run() {
        let d = tempfile::tempdir().unwrap();
        let store = d.path().join("store");
        strata_oci::store::Store::open_or_create(&store).unwrap();
        let config = WorkerConfig {
            client: strata_client::Client::new("http://127.0.0.1:9", None),
            name: "t".into(),
            slots: 1,
            store: store.clone(),
            work_dir: d.path().join("work"),
            strata_exe: "strata".into(),
            insecure_registries: Vec::new(),
            poll: Duration::from_millis(50),
            gc: GcSchedule { interval: Duration::from_millis(300), grace: Duration::ZERO },
        };
        let build = Gate::new(&store).build().unwrap();
        let (stop, hold) = (std::sync::Arc::new(AtomicBool::new(false)), std::sync::Arc::new(AtomicBool::new(false)));
        let gc = {
            let (stop, hold) = (stop.clone(), hold.clone());
            std::thread::spawn(move || run(&config, &stop, &hold))
        };
        let started = Instant::now();
        while !hold.load(Ordering::Relaxed) {
            assert!(started.elapsed() < Duration::from_secs(10), "the overdue gc never held the leases");
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(started.elapsed() >= Duration::from_millis(300), "held only once overdue by an interval: {:?}", started.elapsed());
        drop(build);
        while hold.load(Ordering::Relaxed) {
            assert!(started.elapsed() < Duration::from_secs(10), "the gc never ran once the build was done");
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(Gate::new(&store).try_build().unwrap().is_some(), "the gc let go of the store");
        stop.store(true, Ordering::Relaxed);
        gc.join().unwrap();
    }

    #[test]
    fn no_store_yet_is_no_error() {
        let d = tempfile::tempdir().unwrap();
        assert!(matches!(collect(&d.path().join("store"), &d.path().join("cache"), Duration::ZERO), Ok(Err(Skipped::NoStore))));
    }
}
