//! A build worker keeps its disk in check: `strata serve --no-worker` on SQLite, a separate
//! `strata worker --gc-interval 1s` with its own store, a loopback `docker-registry` and
//! git repositories on disk. A second build of an image leaves the first build's blobs
//! unreferenced and the worker's gc removes them — the tagged image and anything younger
//! than the grace stay; a gc due while a build runs waits for it, even with no grace at
//! all, so the build's fresh blobs survive.

mod common;
mod service;

#[path = "../crates/strata-registry/tests/common/mod.rs"]
#[allow(unused_imports)]
mod registry;

use common::*;
use serde_json::Value;
use service::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::str::FromStr;
use std::time::{Duration, Instant, SystemTime};
use strata_oci::oci_spec::image::Digest;
use strata_oci::store::Store;

const ADMIN: &str = "worker-gc-admin-token-0123456789";

/// A server, and a worker whose gc runs every second with the given grace; the worker's
/// log (its `info` lines: the gc reports) goes to `worker.log`.
struct Env {
    dir: tempfile::TempDir,
    port: u16,
    _serve: Proc,
    _worker: Proc,
}

impl Env {
    fn start(host: &str, grace: &str) -> Env {
        let dir = tempfile::tempdir().unwrap();
        let port = registry::free_port();
        let serve = Proc(
            Command::new(env!("CARGO_BIN_EXE_strata"))
                .args(["serve", "--no-worker", "--listen", &format!("127.0.0.1:{port}"), "--registry", host, "--insecure-registry", host, "--admin-token", ADMIN])
                .arg("--data-dir")
                .arg(dir.path().join("data"))
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        );
        let cli = |args: &[&str]| run(Command::new(env!("CARGO_BIN_EXE_strata")).args(args).env("STRATA_SERVER", format!("http://127.0.0.1:{port}")).env("STRATA_TOKEN", ADMIN).env("HOME", dir.path()));
        wait("the server to answer", 30, || cli(&["builds"]).status.success());
        let out = cli(&["token", "create", "--role", "worker"]);
        assert_ok("token create", &out);
        let worker = Proc(
            Command::new(env!("CARGO_BIN_EXE_strata"))
                .args(["worker", "--server", &format!("http://127.0.0.1:{port}"), "--token", stdout(&out).trim(), "--name", "w", "--insecure-registry", host])
                .args(["--gc-interval", "1s", "--gc-grace", grace])
                .arg("--store")
                .arg(dir.path().join("store"))
                .arg("--work-dir")
                .arg(dir.path().join("work"))
                .env("STRATA_LOG", "warn,strata_worker=info")
                .env("HOME", dir.path())
                .stderr(std::fs::File::create(dir.path().join("worker.log")).unwrap())
                .spawn()
                .unwrap(),
        );
        Env { dir, port, _serve: serve, _worker: worker }
    }

    fn cli(&self) -> Cli {
        Cli { server: format!("http://127.0.0.1:{}", self.port), token: ADMIN.into(), home: self.dir.path().to_path_buf() }
    }

    fn store_path(&self) -> PathBuf {
        self.dir.path().join("store")
    }

    fn store(&self) -> Store {
        Store::open(self.store_path()).unwrap()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("worker.log")).unwrap_or_default()
    }

    /// The worker's gc reports so far.
    fn reports(&self) -> Vec<String> {
        self.log().lines().filter(|l| l.contains("garbage collection of")).map(str::to_string).collect()
    }

    /// Waits until a gc that started after this call has reported; returns its report.
    fn next_report(&self) -> String {
        let seen = self.reports().len();
        // The report being written now may have started before this call: wait for two.
        wait("two more gc reports", 20, || self.reports().len() >= seen + 2);
        self.reports()[seen + 1].clone()
    }

    /// Submits a build of `url` (image `app`) and waits for it to be built; its record.
    fn build(&self, url: &str, reference: &str) -> Value {
        let cli = self.cli();
        let out = cli.run(&["submit", url, "--ref", reference, "--image", "app"]);
        assert_ok("submit", &out);
        let id = stdout(&out).trim().to_string();
        cli.await_build(&id, "built", Duration::from_secs(90), |i| i["state"] == "built")
    }
}

fn wait(what: &str, secs: u64, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The number before `word` in a gc report (`removed 4 blobs`, `1 cache entries`).
fn count(report: &str, word: &str) -> u64 {
    let words: Vec<&str> = report.split_whitespace().collect();
    let at = words.iter().position(|w| *w == word).unwrap_or_else(|| panic!("no {word:?} in {report}"));
    words[at - 1].parse().unwrap_or_else(|_| panic!("no count before {word:?} in {report}"))
}

/// A git repository at `dir` whose `main` holds `files`.
fn repo(dir: &Path, files: &[(&str, &str)]) -> String {
    std::fs::create_dir_all(dir).unwrap();
    git(dir, &["init", "-q", "-b", "main"]);
    commit(dir, files);
    format!("file://{}", dir.display())
}

fn commit(dir: &Path, files: &[(&str, &str)]) {
    for (p, c) in files {
        std::fs::write(dir.join(p), c).unwrap();
    }
    git(dir, &["add", "-A"]);
    git(dir, &["commit", "-q", "-m", "change"]);
}

/// The manifest, config and layer digests of the image `manifest` names.
fn blobs_of(store: &Store, manifest: &str) -> Vec<Digest> {
    let img = store.load_manifest(&Digest::from_str(manifest).unwrap()).unwrap();
    let mut all = vec![img.manifest_descriptor.digest().clone(), img.manifest.config().digest().clone()];
    all.extend(img.manifest.layers().iter().map(|l| l.digest().clone()));
    all
}

fn manifest_of(info: &Value) -> String {
    info["result"]["images"][0]["manifest_digest"].as_str().unwrap_or_else(|| panic!("no manifest digest: {info}")).to_string()
}

fn tags(store: &Store) -> Vec<(String, String)> {
    store.list().unwrap().into_iter().map(|e| (e.reference.to_string(), e.manifest.digest().to_string())).collect()
}

fn require_root() {
    if !rustix::process::geteuid().is_root() {
        panic!("the worker tests build as the service does and need root");
    }
}

#[test]
fn a_rebuild_leaves_the_old_blobs_to_the_workers_gc_which_keeps_the_tagged_and_the_young() {
    require_root();
    let reg = registry::Registry::start(registry::Auth::None);
    let host = reg.host();
    let src = tempfile::tempdir().unwrap();
    let url = repo(src.path(), &[("Dockerfile", "FROM scratch\nCOPY f /f\n"), ("f", "first build\n")]);
    let env = Env::start(&host, "10m");

    let first = manifest_of(&env.build(&url, "main"));
    let store = env.store();
    let old = blobs_of(&store, &first);
    assert_eq!(tags(&store), vec![("app:last-build".to_string(), first.clone())], "the unique tag retired, the newest build kept");

    commit(src.path(), &[("f", "second build\n")]);
    let second = manifest_of(&env.build(&url, "main"));
    assert_ne!(first, second);
    assert_eq!(tags(&store), vec![("app:last-build".to_string(), second.clone())], "no tag names the first build any more");

    // The first build's blobs are unreferenced now, but younger than the grace: kept.
    let report = env.next_report();
    assert!(count(&report, "blobs") == 0 && count(&report, "unreferenced") >= old.len() as u64, "{report}");
    assert!(old.iter().all(|d| store.has_blob(d)), "{report}");

    // Ten minutes later (the blobs' times set back), they go; something written just now
    // without a tag (a build by hand on the worker's store) stays.
    let hour_ago = SystemTime::now() - Duration::from_secs(3600);
    for d in &old {
        std::fs::File::options().write(true).open(store.blob_path(d).unwrap()).unwrap().set_modified(hour_ago).unwrap();
    }
    let young = store.put_bytes(b"a blob of a build running by hand\n").unwrap();
    wait("the first build's blobs to be collected", 20, || old.iter().all(|d| !store.has_blob(d)));
    // The report of the gc that removed them may still be on its way: one more gc after it.
    // (A gc may have run while the times were being set: the removals may be two reports.)
    env.next_report();
    let reports = env.reports().join("\n");
    let total = |word: &str| env.reports().iter().map(|r| count(r, word)).sum::<u64>();
    assert_eq!(total("blobs"), old.len() as u64, "the first build's blobs and nothing else:\n{reports}");
    assert!(total("cache") >= 1, "the first build's step cache and build record:\n{reports}");
    assert!(store.has_blob(&young), "younger than the grace: kept\n{reports}");
    let kept = store.resolve("app:last-build").unwrap();
    assert_eq!(kept.manifest_descriptor.digest().to_string(), second);
    assert!(blobs_of(&store, &second).iter().all(|d| store.has_blob(d)), "the tagged image is whole");
    assert_eq!(registry::skopeo_digest(&format!("{host}/app:latest")), second);

    // The next build of the image still builds (and pushes) on what the gc left.
    commit(src.path(), &[("f", "third build\n")]);
    let third = manifest_of(&env.build(&url, "main"));
    assert_eq!(registry::skopeo_digest(&format!("{host}/app:build-3")), third);
}

#[test]
fn a_gc_due_while_a_build_runs_waits_for_it_even_without_a_grace() {
    require_root();
    let reg = registry::Registry::start(registry::Auth::None);
    let host = reg.host();
    let (_builds, base) = base_in_registry(&host);
    let src = tempfile::tempdir().unwrap();
    // The first RUN's layer is stored, untagged, while the second sleeps: a gc with no
    // grace then would take it and the build would fail.
    let url = repo(src.path(), &[("Dockerfile", &format!("FROM {base}\nRUN echo fresh > /fresh\nRUN sleep 4 && echo done > /done\n"))]);
    let env = Env::start(&host, "0s");

    let info = env.build(&url, "main");
    let log = env.log();
    assert!(log.contains("garbage collection due; waiting for the running builds to end"), "no gc was due during the build:\n{log}");
    let manifest = manifest_of(&info);
    assert_eq!(registry::skopeo_digest(&format!("{host}/app:build-1")), manifest);
    // After the build the gc runs again, and what is tagged stays whole.
    let report = env.next_report();
    let store = env.store();
    assert_eq!(store.resolve("app:last-build").unwrap().manifest_descriptor.digest().to_string(), manifest, "{report}");
    assert!(blobs_of(&store, &manifest).iter().all(|d| store.has_blob(d)), "{report}");
    assert!(env.store_path().join("strata/worker-builds.lock").is_file());
}
