//! The build service on PostgreSQL with separate workers: `strata serve --no-worker` on a
//! private PostgreSQL (initdb + pg_ctl in a temporary folder), two `strata worker`
//! processes with their own stores, ten builds spread over both, all built, none run twice
//! to completion;
//! a worker killed with SIGKILL in the middle of a build loses its lease and the other
//! worker completes the build, the record showing both attempts.

mod common;
mod service;

#[path = "../crates/strata-registry/tests/common/mod.rs"]
#[allow(unused_imports)]
mod registry;

#[path = "../crates/strata-service/tests/pg.rs"]
mod pg;

use common::*;
use service::*;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const ADMIN: &str = "pg-test-admin-token-0123456789";

#[test]
fn two_workers_share_a_postgres_queue_and_a_killed_workers_build_is_retried() {
    if !rustix::process::geteuid().is_root() {
        panic!("the service tests build with RUN steps and need root");
    }
    let Some(db) = pg::Postgres::start() else { return };
    let reg = registry::Registry::start(registry::Auth::None);
    let host = reg.host();
    let (_builds, base) = base_in_registry(&host);

    let src = tempfile::tempdir().unwrap();
    let app = src.path().join("app");
    std::fs::create_dir_all(&app).unwrap();
    git(&app, &["init", "-q", "-b", "main"]);
    std::fs::write(app.join("Dockerfile"), format!("FROM {base}\nRUN sleep 1 && echo built > /built\n")).unwrap();
    git(&app, &["add", "-A"]);
    git(&app, &["commit", "-q", "-m", "fast"]);
    git(&app, &["checkout", "-q", "-b", "slow"]);
    let nonce = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    std::fs::write(app.join("Dockerfile"), format!("FROM {base}\nRUN sleep 6 && echo {nonce} > /slow\n")).unwrap();
    git(&app, &["commit", "-q", "-am", "slow"]);
    // The remote HEAD (what a submission without --ref builds) is main again.
    git(&app, &["checkout", "-q", "main"]);
    let url = format!("file://{}", app.display());

    let home = tempfile::tempdir().unwrap();
    let port = registry::free_port();
    let server_url = format!("http://127.0.0.1:{port}");
    let _serve = Proc(
        Command::new(env!("CARGO_BIN_EXE_strata"))
            .args(["serve", "--no-worker", "--listen", &format!("127.0.0.1:{port}"), "--database", &db.url, "--registry", &host, "--insecure-registry", &host])
            .args(["--admin-token", ADMIN, "--heartbeat", "1"])
            .arg("--data-dir")
            .arg(home.path().join("data"))
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let c = Cli { server: server_url.clone(), token: ADMIN.into(), home: home.path().to_path_buf() };
    c.wait_up();
    let cli = |args: &[&str]| c.run(args);
    let json = |args: &[&str]| c.json(args);
    let out = cli(&["token", "create", "--role", "worker", "--name", "workers"]);
    assert_ok("token create", &out);
    let token = stdout(&out).trim().to_string();
    let worker = |name: &str| {
        let dir = home.path().join(name);
        Proc(
            Command::new(env!("CARGO_BIN_EXE_strata"))
                .args(["worker", "--server", &server_url, "--token", &token, "--name", name, "--insecure-registry", &host])
                .arg("--store")
                .arg(dir.join("store"))
                .arg("--work-dir")
                .arg(dir.join("work"))
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        )
    };
    let mut workers = vec![("w1", worker("w1")), ("w2", worker("w2"))];

    // Issue 12, acceptance 2: ten builds.
    let n = 10;
    for i in 0..n {
        let out = cli(&["submit", &url, "--image", &format!("img{i}")]);
        assert_ok("submit", &out);
        assert_eq!(stdout(&out).trim(), (i + 1).to_string(), "build ids count up from 1");
    }
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let builds = json(&["builds", "--json"]);
        let states: Vec<&str> = builds.as_array().unwrap().iter().map(|b| b["state"].as_str().unwrap()).collect();
        assert_eq!(states.len(), n, "{builds}");
        assert!(!states.iter().any(|s| *s == "failed" || *s == "canceled"), "{builds}");
        if states.iter().all(|s| *s == "built") {
            break;
        }
        assert!(Instant::now() < deadline, "not all built: {states:?}");
        std::thread::sleep(Duration::from_millis(300));
    }
    let mut by_worker = std::collections::BTreeMap::new();
    for id in 1..=n {
        let info = json(&["build-info", &id.to_string(), "--json"]);
        assert_eq!(info["attempts"], 1, "{info}");
        let built = info["events"].as_array().unwrap().iter().filter(|e| e["event"] == "built").count();
        assert_eq!(built, 1, "built once: {info}");
        *by_worker.entry(info["worker"].as_str().unwrap().split(' ').next().unwrap().to_string()).or_insert(0) += 1;
        let img = &info["result"]["images"][0];
        assert_eq!(registry::skopeo_digest(&format!("{host}/img{}:build-{id}", id - 1)), img["manifest_digest"].as_str().unwrap());
    }
    assert_eq!(by_worker.len(), 2, "both workers built: {by_worker:?}");

    // SIGKILL the worker running the slow build; the other one completes it.
    let out = cli(&["submit", &url, "--ref", "slow", "--image", "slow"]);
    assert_ok("submit slow", &out);
    let id = stdout(&out).trim().to_string();
    let info = c.await_build(&id, "running", Duration::from_secs(60), |info| info["state"] == "running");
    let runner = info["worker"].as_str().unwrap().split(' ').next().unwrap().to_string();
    std::thread::sleep(Duration::from_secs(2));
    let victim = workers.iter().position(|(name, _)| *name == runner).unwrap();
    let (_, mut p) = workers.remove(victim);
    p.0.kill().unwrap();
    p.0.wait().unwrap();
    let info = c.await_build(&id, "built by the other worker", Duration::from_secs(120), |info| info["state"] == "built");
    let attempts = info["attempt_log"].as_array().unwrap();
    assert_eq!(attempts.len(), 2, "{info}\nlog: {}", stdout(&cli(&["logs", &id])));
    assert_eq!(attempts[0]["outcome"], "expired");
    assert!(attempts[0]["reason"].as_str().unwrap().contains(&runner), "{info}");
    assert!(attempts[0]["worker"].as_str().unwrap().starts_with(&runner));
    assert!(!attempts[1]["worker"].as_str().unwrap().starts_with(&runner));
    assert_eq!(attempts[1]["outcome"], "built");
    let events: Vec<&str> = info["events"].as_array().unwrap().iter().map(|e| e["event"].as_str().unwrap()).collect();
    assert_eq!(events, ["submitted", "started", "requeued", "started", "built"]);
    // The killed worker's RUN did not outlive it.
    let leftover = std::fs::read_dir("/proc").unwrap().filter_map(|e| e.ok()).any(|e| {
        std::fs::read(e.path().join("cmdline")).is_ok_and(|c| c.starts_with(b"sleep\x006\x00") || c.windows(7).any(|w| w == b"sleep 6"))
    });
    assert!(!leftover, "a sleep of the killed worker's build is still running");
}
