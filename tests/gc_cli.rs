//! Garbage collection from the command line: `strata gc` run by hand on a build service
//! worker's store waits for the worker's builds (they hold the store's gate shared while
//! their blobs are untagged) instead of taking their blobs; the worker's gc options are
//! refused where no worker runs.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn gc_by_hand_waits_for_a_workers_build_then_collects() {
    let dir = tempfile::tempdir().unwrap();
    let store_dir = dir.path().join("store");
    let store = strata_oci::store::Store::open_or_create(&store_dir).unwrap();
    // An unreferenced blob, as a build running now would have written (old enough that
    // no grace spares it).
    let (blob, _) = store.put_blob(&b"a layer of a build in progress"[..], None).unwrap();
    let build = strata_pipeline::Gate::new(&store_dir).build().unwrap();
    let mut gc = Command::new(env!("CARGO_BIN_EXE_strata"))
        .args(["gc", "--grace", "0s", "--json", "--store"])
        .arg(&store_dir)
        .arg("--cache-dir")
        .arg(dir.path().join("cache"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    assert!(gc.try_wait().unwrap().is_none(), "strata gc ran while a build held the store");
    assert!(store.has_blob(&blob), "the build's blob went while it held the store");
    drop(build);
    let started = Instant::now();
    let status = loop {
        if let Some(s) = gc.try_wait().unwrap() {
            break s;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "strata gc did not run once the build let go");
        std::thread::sleep(Duration::from_millis(50));
    };
    let (mut out, mut err) = (String::new(), String::new());
    gc.stdout.take().unwrap().read_to_string(&mut out).unwrap();
    gc.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    assert!(status.success(), "{err}");
    assert!(err.contains("waiting for the builds of a strata worker"), "{err}");
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["blobs_removed"], 1, "{out}");
    assert!(!store.has_blob(&blob));
}

#[test]
fn serve_without_a_worker_refuses_the_workers_gc_options() {
    let dir = tempfile::tempdir().unwrap();
    for flag in ["--gc-interval", "--gc-grace"] {
        let out = Command::new(env!("CARGO_BIN_EXE_strata"))
            .args(["serve", "--no-worker", "--listen", "127.0.0.1:0", flag, "5m", "--data-dir"])
            .arg(dir.path().join("data"))
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(err.contains("--no-worker runs none here") && err.contains("hint: give them to `strata worker`"), "{err}");
        assert!(!dir.path().join("data").exists(), "refused before anything was created");
    }
}
