//! A `strata push` killed with SIGKILL at random points (issue 15, acceptance 3): five runs,
//! each into a fresh repository of a real registry (distribution, on loopback). After each
//! kill the registry is looked at from outside: if the tag resolves, every blob its manifest
//! names must be there. Then a second push must finish with the store's digest, report the
//! blobs the registry already had as present (and upload nothing of them), and continue a
//! big blob the killed push had half sent from where the registry has it.
//!
//! The registry sits behind the test's TCP proxy (crates/strata-registry/tests/common/
//! proxy.rs) forwarding whole requests, as nginx does in front of distribution, at a link's
//! pace (8 MiB/s per connection): a kill then lands mid-chunk and the killed chunk never
//! reaches the registry. Straight to distribution 2.8 a killed chunk arrives in part, and
//! distribution refuses that session for good (its upload URL signs the offset); the
//! re-push then sends such a blob afresh, which the library tests cover. The seed of the
//! kill times is printed; STRATA_KILL_SEED=N replays it.

mod common;

#[path = "../crates/strata-registry/tests/common/mod.rs"]
#[allow(unused_imports)]
mod registry;

use common::*;
use registry::proxy::{Forward, Proxy};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;
use std::time::Instant;

const CHUNK: u64 = 256 * 1024;
/// Per connection; a push sends up to three blobs at once.
const LINK_BYTES_PER_SEC: u64 = 8 << 20;
const RUNS: usize = 5;

fn strata_in(dir: &Path) -> Command {
    let mut c = strata(&dir.join("cache"));
    c.env("STRATA_STAGING_DIR", dir.join("staging"));
    c
}

/// xorshift64*: enough to spread kill times, and replayable from the printed seed.
struct Rng(u64);

impl Rng {
    fn next_f64(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }
}

const ACCEPT: &str = "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json";

/// The blobs (digest → size) a manifest names: config and layers.
fn blobs_of(manifest: &Value) -> BTreeMap<String, u64> {
    std::iter::once(&manifest["config"])
        .chain(manifest["layers"].as_array().unwrap())
        .map(|d| (d["digest"].as_str().unwrap().to_string(), d["size"].as_u64().unwrap()))
        .collect()
}

fn head_blob(host: &str, repo: &str, digest: &str) -> u16 {
    registry::http(host, "HEAD", &format!("/v2/{repo}/blobs/{digest}"), &[]).0
}

/// Offsets the store's upload records hold, by digest, for `repo`.
fn recorded_offsets(store: &Path, repo: &str) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for e in std::fs::read_dir(store.join("strata/uploads")).into_iter().flatten().flatten() {
        if e.path().extension().is_some_and(|x| x == "json") {
            let v: Value = serde_json::from_slice(&std::fs::read(e.path()).unwrap()).unwrap();
            if v["repository"] == repo {
                out.insert(v["digest"].as_str().unwrap().to_string(), v["offset"].as_u64().unwrap());
            }
        }
    }
    out
}

#[test]
fn a_killed_push_never_tags_an_incomplete_image_and_the_repush_sends_only_what_is_missing() {
    let dir = tempfile::tempdir().unwrap();
    let spec = copy_corpus_spec("images.json", dir.path());
    let store = dir.path().join("store");
    let out = run(strata_in(dir.path()).arg("compose").arg(&spec).arg("--store").arg(&store).args(["--json", "--image", "baseimage"]));
    assert_ok("strata compose", &out);
    let composed: Value = serde_json::from_slice(&out.stdout).unwrap();
    let digest = composed["images"]["baseimage"]["manifest"].as_str().unwrap().to_string();
    let manifest: Value = serde_json::from_slice(&std::fs::read(store.join("blobs/sha256").join(&digest["sha256:".len()..])).unwrap()).unwrap();
    let wanted = blobs_of(&manifest);
    let total: u64 = wanted.values().sum();
    println!("baseimage {digest}: {} blobs, {total} bytes, {} of them chunked at {CHUNK}", wanted.len(), wanted.values().filter(|s| **s > CHUNK).count());

    let reg = registry::Registry::start(registry::Auth::None);
    let proxy = Proxy::start(&reg.host(), Forward::Buffered, Some(LINK_BYTES_PER_SEC));
    let host = proxy.host();
    let push = |repo: &str| {
        let mut c = strata_in(dir.path());
        c.args(["push", "--json", "--insecure-registry", &host, "baseimage:latest"])
            .arg(format!("{host}/{repo}:latest"))
            .arg("--store")
            .arg(&store)
            .env("STRATA_PUSH_CHUNK_SIZE", CHUNK.to_string());
        c
    };

    // How long a whole push takes, to spread the kills over it.
    let t0 = Instant::now();
    assert_ok("a whole push", &run(&mut push("calibrate/baseimage")));
    let whole = t0.elapsed();
    let seed: u64 = std::env::var("STRATA_KILL_SEED")
        .map(|s| s.parse().expect("STRATA_KILL_SEED is a number"))
        .unwrap_or_else(|_| std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64 | 1);
    println!("a whole push takes {whole:?}; kill seed {seed} (STRATA_KILL_SEED={seed} replays it)");
    let mut rng = Rng(seed);

    let mut resumed_runs = 0;
    for run_no in 0..RUNS {
        let repo = format!("killed{run_no}/baseimage");
        let delay = whole.mul_f64(0.05 + 0.9 * rng.next_f64());
        let mut child = push(&repo).stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null()).spawn().unwrap();
        std::thread::sleep(delay);
        let finished_first = child.try_wait().unwrap().is_some();
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();

        // The registry as anyone sees it: a tag, if there is one, names only blobs it has.
        let (status, body) = registry::http(&reg.host(), "GET", &format!("/v2/{repo}/manifests/latest"), &[("Accept", ACCEPT)]);
        let tagged = match status {
            200 => {
                let m: Value = serde_json::from_slice(&body).unwrap();
                for d in blobs_of(&m).keys() {
                    assert_eq!(head_blob(&reg.host(), &repo, d), 200, "run {run_no} (seed {seed}): the tag names {d}, which the registry lacks");
                }
                true
            }
            404 => false,
            other => panic!("run {run_no}: GET the tag: {other}"),
        };
        let present: BTreeSet<String> = wanted.keys().filter(|d| head_blob(&reg.host(), &repo, d) == 200).cloned().collect();
        let records = recorded_offsets(&store, &repo);

        // The push again: it finishes, with the store's digest, sending only what is missing.
        let out = run(&mut push(&repo));
        assert_ok(&format!("re-push {run_no} (seed {seed})"), &out);
        let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
        let image = &doc["images"][0];
        assert_eq!(image["digest"], digest.as_str(), "run {run_no}");
        assert_eq!(registry::skopeo_digest(&format!("{}/{repo}:latest", reg.host())), digest);
        assert_eq!(doc["present"].as_u64().unwrap() as usize, present.len(), "run {run_no}: {doc:#}");
        assert_eq!(doc["uploaded"].as_u64().unwrap() as usize, wanted.len() - present.len(), "run {run_no}: {doc:#}");
        let mut sent = 0;
        let mut resumed = Vec::new();
        for b in image["blobs"].as_array().unwrap() {
            let d = b["digest"].as_str().unwrap();
            let size = b["size"].as_u64().unwrap();
            let bytes = b["sent"].as_u64().unwrap();
            sent += bytes;
            if present.contains(d) {
                assert_eq!((b["outcome"].as_str(), bytes), (Some("present"), 0), "run {run_no}: {d} was there already: {b}");
                continue;
            }
            assert_eq!(b["outcome"], "uploaded", "run {run_no}: {b}");
            match b["resumed_from"].as_u64() {
                Some(from) => {
                    // Continued where the registry had the session: the recorded offset.
                    assert_eq!(records.get(d), Some(&from), "run {run_no}: resumed {d} from {from}, records {records:?}");
                    assert_eq!(bytes, size - from, "run {run_no}: {d} sent only what the registry lacked");
                    if from > 0 {
                        resumed.push((d.to_string(), from, size));
                    }
                }
                None => assert_eq!(bytes, size, "run {run_no}: {b}"),
            }
        }
        println!(
            "run {run_no}: killed after {delay:?}{}; tag {}; {} of {} blobs present, {} records; re-push sent {sent} of {total} bytes, resumed {resumed:?}",
            if finished_first { " (had already finished)" } else { "" },
            if tagged { "complete" } else { "absent" },
            present.len(),
            wanted.len(),
            records.len(),
        );
        assert!(recorded_offsets(&store, &repo).is_empty(), "run {run_no}: the re-push leaves no record");
        if !resumed.is_empty() {
            resumed_runs += 1;
        }
    }
    // The kills land mostly mid-chunk: at least one run must have had a half-sent blob to
    // continue, or this test did not test resuming.
    assert!(resumed_runs >= 1, "no run resumed a half-sent blob (seed {seed})");
    println!("{resumed_runs} of {RUNS} re-pushes continued a half-sent blob");
}
