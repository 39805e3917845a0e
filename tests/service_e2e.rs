//! The build service end to end through the real `strata` binary: `strata serve` on
//! SQLite with its in-process worker, a loopback `docker-registry`, and git repositories
//! on disk (file://). A Dockerfile FROM a base in that registry is submitted with
//! `--wait`, pushed, read back with skopeo and recorded; bad sources are refused with the
//! reason and queue nothing; a running build is canceled within 5 seconds with its
//! processes gone.

mod common;
mod service;

#[path = "../crates/strata-registry/tests/common/mod.rs"]
#[allow(unused_imports)]
mod registry;

use common::*;
use service::*;
use serde_json::Value;
use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const ADMIN: &str = "test-admin-token-0123456789";

/// A `strata serve` child process, killed by its PID and reaped on drop.
struct Service {
    _child: Proc,
    url: String,
    home: tempfile::TempDir,
    _data: tempfile::TempDir,
}

impl Service {
    fn start(registry: &str, insecure: &str) -> Service {
        let data = tempfile::tempdir().unwrap();
        let home = tempfile::tempdir().unwrap();
        let port = registry::free_port();
        let child = Command::new(env!("CARGO_BIN_EXE_strata"))
            .args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--registry", registry, "--insecure-registry", insecure, "--admin-token", ADMIN, "--heartbeat", "1"])
            .arg("--data-dir")
            .arg(data.path())
            .env("HOME", home.path())
            .env_remove("STRATA_LOG")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(home.path().join("serve.log")).unwrap())
            .spawn()
            .unwrap();
        let s = Service { _child: Proc(child), url: format!("http://127.0.0.1:{port}"), home, _data: data };
        let deadline = Instant::now() + Duration::from_secs(30);
        while http_get(port, "/").is_none() {
            assert!(Instant::now() < deadline, "strata serve did not answer: {}", s.log());
            std::thread::sleep(Duration::from_millis(100));
        }
        assert!(http_get(port, "/").unwrap().starts_with("HTTP/1.1 200"), "GET / answers");
        s
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.home.path().join("serve.log")).unwrap_or_default()
    }

    /// `strata ARGS...` against this service with the admin token (from the environment,
    /// as a user would set it).
    fn cli(&self, args: &[&str]) -> std::process::Output {
        run(Command::new(env!("CARGO_BIN_EXE_strata")).args(args).env("STRATA_SERVER", &self.url).env("STRATA_TOKEN", ADMIN).env("HOME", self.home.path()))
    }

    fn json(&self, args: &[&str]) -> Value {
        let out = self.cli(args);
        assert_ok(&format!("strata {args:?}"), &out);
        serde_json::from_slice(&out.stdout).unwrap()
    }
}

/// The raw answer to `GET path`, or None when nothing listens.
fn http_get(port: u16, path: &str) -> Option<String> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(out)
}

/// A git repository with `main` holding `files`, committed.
fn repo(dir: &Path, files: &[(&str, &str)]) {
    std::fs::create_dir_all(dir).unwrap();
    git(dir, &["init", "-q", "-b", "main"]);
    commit(dir, files, "first");
}

fn commit(dir: &Path, files: &[(&str, &str)], msg: &str) -> String {
    for (p, c) in files {
        std::fs::write(dir.join(p), c).unwrap();
    }
    git(dir, &["add", "-A"]);
    git(dir, &["commit", "-q", "-m", msg]);
    git(dir, &["rev-parse", "HEAD"])
}

/// Processes whose command line is exactly `argv`.
fn processes(argv: &[&str]) -> Vec<u32> {
    let want = argv.join("\0") + "\0";
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| c == want.as_bytes()))
        .collect()
}

fn wait_for(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn submit_wait_pushes_verifies_and_records_then_refuses_bad_sources_and_cancels() {
    if !rustix::process::geteuid().is_root() {
        panic!("the service tests build with RUN steps and need root");
    }
    require_tool("git");
    let reg = registry::Registry::start(registry::Auth::None);
    let host = reg.host();

    // The base image lives in the registry; the service's worker has an empty store.
    let (_builds, base_ref) = base_in_registry(&host);
    let base_digest = registry::skopeo_digest(&base_ref);

    let src = tempfile::tempdir().unwrap();
    let app = src.path().join("app");
    repo(&app, &[("Dockerfile", &format!("FROM {base_ref}\nRUN echo hello from the service > /hello\nCMD [\"/bin/cat\", \"/hello\"]\n"))]);
    let head = git(&app, &["rev-parse", "HEAD"]);
    let url = format!("file://{}", app.display());

    let svc = Service::start(&format!("{host}/svc"), &host);

    // submit --wait: the log on stderr, the pushed reference on stdout, status = outcome.
    let out = svc.cli(&["submit", &url, "--image", "app", "--wait"]);
    assert_ok(&format!("strata submit --wait (server log: {})", svc.log()), &out);
    let pushed = format!("{host}/svc/app:build-1@sha256:");
    assert!(stdout(&out).starts_with(&pushed), "{}", stdout(&out));
    assert!(stderr(&out).contains("STEP 2/3"), "the log followed: {}", stderr(&out));

    let info = svc.json(&["build-info", "1", "--json"]);
    assert_eq!(info["state"], "built");
    assert_eq!(info["source"]["commit"], head.as_str());
    assert_eq!(info["trigger"], "manual");
    assert_eq!(info["attempts"], 1);
    let img = &info["result"]["images"][0];
    assert_eq!(img["base"]["digest"], base_digest.as_str(), "the base pulled from the registry is recorded by digest");
    assert!(img["config_digest"].as_str().unwrap().starts_with("sha256:"));
    assert_eq!(info["result"]["input_digest"].as_str().unwrap().len(), 71);
    let manifest = img["manifest_digest"].as_str().unwrap();
    assert_eq!(registry::skopeo_digest(&format!("{host}/svc/app:build-1")), manifest, "the unique tag");
    assert_eq!(registry::skopeo_digest(&format!("{host}/svc/app:latest")), manifest, "latest moved");
    assert_eq!(img["tags"], serde_json::json!(["build-1", "latest"]));

    let log = stdout(&svc.cli(&["logs", "1"]));
    assert!(log.contains("STEP 1/3") && log.contains(&format!("pushed {host}/svc/app:build-1 {manifest}")), "{log}");

    // Refused at submit, with git's reason; nothing queued.
    let err = assert_fails("a URL git cannot read", &svc.cli(&["submit", "file:///nonexistent/repo", "--image", "x"]));
    assert!(err.contains("422") && err.contains("cannot read git repository file:///nonexistent/repo"), "{err}");
    let err = assert_fails("a missing ref", &svc.cli(&["submit", &url, "--ref", "no-such-branch", "--image", "x"]));
    assert!(err.contains("ref no-such-branch not found"), "{err}");
    let err = assert_fails("a bad image name", &svc.cli(&["submit", &url, "--image", "Bad Name"]));
    assert!(err.contains("400"), "{err}");
    let builds = svc.json(&["builds", "--json"]);
    assert_eq!(builds.as_array().unwrap().len(), 1, "nothing queued by refused submissions: {builds}");
    for field in ["id", "image", "state", "trigger", "source", "worker", "created"] {
        assert!(!builds[0][field].is_null(), "builds --json has {field}: {builds}");
    }
    assert_eq!(builds[0]["image"], "app");

    // A scratch build pushes only its scratch tag; latest stays.
    git(&app, &["checkout", "-q", "-b", "v2"]);
    commit(&app, &[("Dockerfile", &format!("FROM {base_ref}\nRUN echo v2 > /hello\n"))], "v2");
    assert_ok("scratch build", &svc.cli(&["submit", &url, "--ref", "v2", "--image", "app", "--scratch", "--wait"]));
    let scratch = svc.json(&["build-info", "2", "--json"]);
    assert_eq!(scratch["result"]["images"][0]["tags"], serde_json::json!(["scratch-2"]));
    assert_ne!(registry::skopeo_digest(&format!("{host}/svc/app:scratch-2")), manifest);
    assert_eq!(registry::skopeo_digest(&format!("{host}/svc/app:latest")), manifest, "a scratch build never moves latest");

    // A failing RUN: failed, with the reason and the last log lines in the record; exit 1.
    git(&app, &["checkout", "-q", "-b", "broken"]);
    commit(&app, &[("Dockerfile", &format!("FROM {base_ref}\nRUN echo about to fail && exit 3\n"))], "broken");
    let out = svc.cli(&["submit", &url, "--ref", "broken", "--image", "broken", "--wait"]);
    let err = assert_fails("a failing build", &out);
    assert!(err.contains("failed: strata build failed"), "{err}");
    let text = stdout(&svc.cli(&["build-info", "3"]));
    assert!(text.contains("build 3: failed") && text.contains("last log lines") && text.contains("about to fail"), "{text}");

    // The timeout counts run time: a RUN longer than --timeout fails, naming the timeout.
    git(&app, &["checkout", "-q", "-b", "forever"]);
    commit(&app, &[("Dockerfile", &format!("FROM {base_ref}\nRUN sleep 211\n"))], "forever");
    let out = svc.cli(&["submit", &url, "--ref", "forever", "--image", "forever", "--timeout", "3s", "--wait"]);
    let err = assert_fails("a build past its timeout", &out);
    assert!(err.contains("timeout: ran longer than 3 s"), "{err}");
    wait_for("the timed-out RUN to go", Duration::from_secs(5), || processes(&["sleep", "211"]).is_empty());

    // Cancel of a running build: canceled within 5 s, its RUN process gone.
    git(&app, &["checkout", "-q", "-b", "slow"]);
    commit(&app, &[("Dockerfile", &format!("FROM {base_ref}\nRUN sleep 317\n"))], "slow");
    let out = svc.cli(&["submit", &url, "--ref", "slow", "--image", "slow"]);
    assert_ok("submit slow", &out);
    let id = stdout(&out).trim().to_string();
    wait_for("the slow RUN to start", Duration::from_secs(120), || !processes(&["sleep", "317"]).is_empty());
    let started = Instant::now();
    assert_ok("strata cancel", &svc.cli(&["cancel", &id]));
    wait_for("the build to be canceled", Duration::from_secs(10), || svc.json(&["build-info", &id, "--json"])["state"] == "canceled");
    assert!(started.elapsed() < Duration::from_secs(5), "canceled after {:?}", started.elapsed());
    wait_for("the RUN process to go", Duration::from_secs(5), || processes(&["sleep", "317"]).is_empty());
    let rec = svc.json(&["build-info", &id, "--json"]);
    let events: Vec<&str> = rec["events"].as_array().unwrap().iter().map(|e| e["event"].as_str().unwrap()).collect();
    assert_eq!(events, ["submitted", "started", "cancel-requested", "canceled"], "{rec}");
    assert_eq!(svc.json(&["builds", "--state", "canceled", "--json"]).as_array().unwrap().len(), 1);
}

#[test]
fn a_spec_in_git_is_composed_pushed_and_its_rpm_list_recorded() {
    if !rustix::process::geteuid().is_root() {
        panic!("composing needs root");
    }
    require_tool("git");
    let reg = registry::Registry::start(registry::Auth::None);
    let host = reg.host();
    let fx = tempfile::tempdir().unwrap();
    let rpms = build_fixture_repo(fx.path(), &[pkg("alpha", "1.0", &["Requires: beta"]), pkg("beta", "2.0", &[]), pkg("gamma", "3.0", &[])]);
    let src = tempfile::tempdir().unwrap();
    let spec_dir = src.path().join("spec");
    std::fs::create_dir_all(spec_dir.join("images")).unwrap();
    let spec = serde_json::json!({"repos": [{"id": "fx", "baseurl": rpms.to_str().unwrap()}],
                                  "images": {"tiny": {"packages": ["alpha"]}, "other": {"packages": ["gamma"]}}});
    // The spec sits in a sub-folder: --path.
    repo(&spec_dir, &[("images/strata.json", &spec.to_string())]);
    let url = format!("file://{}", spec_dir.display());
    let svc = Service::start(&host, &host);

    let out = svc.cli(&["submit", &url, "--path", "images", "--image", "tiny", "--wait"]);
    assert_ok(&format!("submit --wait of a spec (server log: {})", svc.log()), &out);
    assert!(stdout(&out).starts_with(&format!("{host}/tiny:build-1@sha256:")), "{}", stdout(&out));
    let info = svc.json(&["build-info", "1", "--json"]);
    let r = &info["result"];
    assert_eq!(r["kind"], "spec");
    assert!(r["lock_digest"].as_str().unwrap().starts_with("sha256:"), "{r}");
    assert_eq!(r["images"].as_array().unwrap().len(), 1, "--image picks the images: {r}");
    let img = &r["images"][0];
    assert_eq!(img["name"], "tiny");
    let manifest = img["manifest_digest"].as_str().unwrap();
    assert_eq!(registry::skopeo_digest(&format!("{host}/tiny:latest")), manifest);

    // The recorded RPM list is rpm -qa of the pushed image.
    let pulled = tempfile::tempdir().unwrap();
    let layout = pulled.path().join("layout");
    registry::skopeo(&["copy", "--src-tls-verify=false", &format!("docker://{host}/tiny:build-1"), &format!("oci:{}:tiny", layout.display())]);
    let root = umoci_unpack(&layout, "tiny", &pulled.path().join("bundle"));
    let out = run(Command::new("rpm").env("HOME", pulled.path()).arg("--root").arg(&root).args(["--dbpath", "/var/lib/rpm", "-qa", "--qf", "%{NAME}-%{VERSION}-%{RELEASE}.%{ARCH}\\n"]));
    assert_ok("rpm -qa", &out);
    let mut qa: Vec<String> = stdout(&out).lines().map(str::to_string).collect();
    qa.sort();
    let mut recorded: Vec<String> = img["packages"].as_array().unwrap().iter().map(|p| p.as_str().unwrap().to_string()).collect();
    recorded.sort();
    assert_eq!(recorded, qa);
    assert_eq!(qa, ["alpha-1.0-1.noarch", "beta-2.0-1.noarch"]);
    // The reverse query, with rpm's version order.
    let hits = svc.json(&["query", "--rpm", "beta < 2.0.1", "--json"]);
    assert_eq!(hits.as_array().unwrap().len(), 1, "{hits}");
    assert_eq!((hits[0]["image"].as_str(), hits[0]["packages"][0].as_str()), (Some("tiny"), Some("beta-2.0-1.noarch")));
    assert!(svc.json(&["query", "--rpm", "beta < 2.0", "--json"]).as_array().unwrap().is_empty());
    assert!(svc.json(&["query", "--rpm", "gamma", "--json"]).as_array().unwrap().is_empty(), "gamma's image was not built");
    let err = assert_fails("a malformed query", &svc.cli(&["query", "--rpm", "beta << 2"]));
    assert!(err.contains("400") && err.contains("operator"), "{err}");
    // The filter by image finds it.
    assert_eq!(svc.json(&["builds", "--image", "tiny", "--json"]).as_array().unwrap().len(), 1);
    assert!(svc.json(&["builds", "--image", "other", "--json"]).as_array().unwrap().is_empty());
}
