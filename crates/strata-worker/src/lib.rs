//! The build service's worker: leases builds from the service over its HTTP API (never
//! the database), checks the source out at the recorded commit, builds it, pushes the
//! images, reads each pushed manifest digest back, and reports the record — streaming the
//! log and heartbeating while it runs, and stopping the build's processes when the
//! heartbeat says stop (cancel or timeout).
//!
//! `strata worker` and the in-process worker of `strata serve` are this one crate. The
//! compose or Dockerfile build runs as a `strata compose` / `strata build` child process
//! in its own process group: killing the group is a cancel that always works (the sandbox
//! takes the runtime's processes down with strata), and a crashing build cannot take the
//! worker with it.
//!
//! Between builds the worker collects the garbage its builds leave in the store and the
//! caches (`gc.rs`: every `--gc-interval`, only while no build holds the store).

pub mod gc;
mod job;
mod source;
mod spec;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use strata_client::{Client, LeaseRequest};

pub use gc::GcSchedule;

#[derive(Clone)]
pub struct WorkerConfig {
    pub client: Client,
    /// Recorded with every attempt (host name by default).
    pub name: String,
    /// Builds run at once.
    pub slots: usize,
    /// The image store builds write into.
    pub store: PathBuf,
    /// Git caches, checkouts, and the RPM/metadata/build caches.
    pub work_dir: PathBuf,
    /// The `strata` program that runs `compose` and `build`.
    pub strata_exe: PathBuf,
    /// Registries reached over plain HTTP besides the one the server names insecure.
    pub insecure_registries: Vec<String>,
    /// How long to wait before asking again when the queue is empty.
    pub poll: Duration,
    /// Garbage collection of the store and caches between builds.
    pub gc: GcSchedule,
}

/// How long a lease request waits at the server for a build to be queued.
const LEASE_WAIT_S: u64 = 20;

/// Runs `slots` builds at a time until `stop` is set (finishing the builds it holds),
/// collecting garbage between builds.
pub fn run(config: WorkerConfig, stop: Arc<AtomicBool>) {
    let config = Arc::new(config);
    // Set by an overdue gc: the slots take no new build until it has run.
    let hold_leases = Arc::new(AtomicBool::new(false));
    let mut threads: Vec<_> = (0..config.slots.max(1))
        .map(|slot| {
            let (config, stop, hold) = (config.clone(), stop.clone(), hold_leases.clone());
            std::thread::Builder::new()
                .name(format!("worker-slot-{slot}"))
                .spawn(move || slot_loop(&config, slot, &stop, &hold))
                .expect("starting a worker thread")
        })
        .collect();
    if !config.gc.interval.is_zero() {
        let (config, stop, hold) = (config.clone(), stop.clone(), hold_leases.clone());
        threads.push(std::thread::Builder::new().name("worker-gc".into()).spawn(move || gc::run(&config, &stop, &hold)).expect("starting a worker thread"));
    }
    for t in threads {
        let _ = t.join();
    }
}

fn slot_loop(config: &WorkerConfig, slot: usize, stop: &AtomicBool, hold_leases: &AtomicBool) {
    let name = if config.slots > 1 { format!("{}/{slot}", config.name) } else { config.name.clone() };
    let mut quiet_errors = 0u32;
    while !stop.load(Ordering::Relaxed) {
        if hold_leases.load(Ordering::Relaxed) {
            std::thread::sleep(config.poll);
            continue;
        }
        match config.client.lease(&LeaseRequest { worker: name.clone(), wait_seconds: LEASE_WAIT_S }) {
            Ok(Some(lease)) => {
                quiet_errors = 0;
                job::run(config, &lease);
            }
            Ok(None) => std::thread::sleep(config.poll),
            Err(e) => {
                // The server restarting is normal; say so once, then keep trying.
                if quiet_errors == 0 {
                    tracing::warn!("worker {name}: asking for a build: {e}");
                }
                quiet_errors += 1;
                std::thread::sleep(config.poll.max(Duration::from_secs(1)));
            }
        }
    }
}

/// This host's name, for workers that are not named.
pub fn host_name() -> String {
    rustix::system::uname().nodename().to_string_lossy().into_owned()
}
