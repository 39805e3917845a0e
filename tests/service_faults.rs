//! Faults around a running build, with `strata serve --no-worker` on SQLite and a separate
//! `strata worker`: the server killed (SIGKILL) and restarted during a build loses nothing
//! and the build completes under its first lease; the registry gone while a build runs
//! ends the build `failed`, naming the registry, never `built`.

mod common;
mod service;

#[path = "../crates/strata-registry/tests/common/mod.rs"]
#[allow(unused_imports)]
mod registry;

use common::*;
use service::*;
use serde_json::Value;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const ADMIN: &str = "faults-admin-token-0123456789";

struct Env {
    home: tempfile::TempDir,
    port: u16,
    host: String,
}

impl Env {
    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
    fn serve(&self) -> Proc {
        let p = Proc(
            Command::new(env!("CARGO_BIN_EXE_strata"))
                .args(["serve", "--no-worker", "--listen", &format!("127.0.0.1:{}", self.port), "--registry", &self.host, "--insecure-registry", &self.host])
                .args(["--admin-token", ADMIN])
                .arg("--data-dir")
                .arg(self.home.path().join("data"))
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        );
        self.wait(|| self.cli(&["builds"]).status.success(), "the server to answer", 30);
        p
    }
    fn cli(&self, args: &[&str]) -> std::process::Output {
        run(Command::new(env!("CARGO_BIN_EXE_strata")).args(args).env("STRATA_SERVER", self.url()).env("STRATA_TOKEN", ADMIN).env("HOME", self.home.path()))
    }
    fn info(&self, id: &str) -> Value {
        let out = self.cli(&["build-info", id, "--json"]);
        assert_ok("build-info", &out);
        serde_json::from_slice(&out.stdout).unwrap()
    }
    fn wait(&self, mut f: impl FnMut() -> bool, what: &str, secs: u64) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        while !f() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(150));
        }
    }
}

#[test]
fn a_server_restart_loses_nothing_and_a_vanished_registry_fails_the_build() {
    if !rustix::process::geteuid().is_root() {
        panic!("the service tests build with RUN steps and need root");
    }
    let reg = registry::Registry::start(registry::Auth::None);
    let host = reg.host();
    let (_builds, base) = base_in_registry(&host);
    let app = tempfile::tempdir().unwrap();
    git(app.path(), &["init", "-q", "-b", "main"]);
    std::fs::write(app.path().join("Dockerfile"), format!("FROM {base}\nRUN sleep 4 && echo restarted > /r\n")).unwrap();
    git(app.path(), &["add", "-A"]);
    git(app.path(), &["commit", "-q", "-m", "x"]);
    let url = format!("file://{}", app.path().display());

    let env = Env { home: tempfile::tempdir().unwrap(), port: registry::free_port(), host: host.clone() };
    let mut serve = env.serve();
    let out = env.cli(&["token", "create", "--role", "worker"]);
    assert_ok("token create", &out);
    let token = stdout(&out).trim().to_string();
    let _worker = Proc(
        Command::new(env!("CARGO_BIN_EXE_strata"))
            .args(["worker", "--server", &env.url(), "--token", &token, "--name", "w", "--insecure-registry", &host])
            .arg("--store")
            .arg(env.home.path().join("w/store"))
            .arg("--work-dir")
            .arg(env.home.path().join("w/work"))
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );

    // The server dies while the build runs and comes back on the same data dir.
    let out = env.cli(&["submit", &url, "--image", "app"]);
    assert_ok("submit", &out);
    env.wait(|| env.info("1")["state"] == "running", "the build to start", 60);
    serve.0.kill().unwrap();
    serve.0.wait().unwrap();
    std::thread::sleep(Duration::from_secs(1));
    let _serve = env.serve();
    env.wait(|| env.info("1")["state"] != "running", "the build to end", 120);
    let info = env.info("1");
    assert_eq!(info["state"], "built", "{info}");
    assert_eq!(info["attempts"], 1, "the lease outlived the restart: {info}");
    let manifest = info["result"]["images"][0]["manifest_digest"].as_str().unwrap().to_string();
    assert_eq!(registry::skopeo_digest(&format!("{host}/app:build-1")), manifest);
    let log = stdout(&env.cli(&["logs", "1"]));
    assert!(log.contains("STEP 2/2") && log.contains("pushed"), "the log of both server lives: {log}");

    // The registry goes away during the RUN: the push fails after its retries, naming it.
    git(app.path(), &["checkout", "-q", "-b", "b2"]);
    std::fs::write(app.path().join("Dockerfile"), format!("FROM {base}\nRUN sleep 4 && echo second > /s\n")).unwrap();
    git(app.path(), &["commit", "-q", "-am", "second"]);
    let out = env.cli(&["submit", &url, "--ref", "b2", "--image", "app2"]);
    assert_ok("submit", &out);
    env.wait(|| env.info("2")["state"] == "running", "the second build to start", 60);
    std::thread::sleep(Duration::from_secs(1));
    drop(reg);
    env.wait(|| env.info("2")["state"] != "running", "the second build to end", 180);
    let info = env.info("2");
    assert_eq!(info["state"], "failed", "{info}");
    assert!(info["reason"].as_str().unwrap().contains(&format!("pushing {host}/app2:build-2")), "{info}");
    assert!(info["result"].is_null());
}
