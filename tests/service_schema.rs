//! The build service's whole OpenAPI document checked against the running server by
//! Schemathesis (from PyPI, in the venv scripts/install-deps.sh makes at /opt/strata-tools;
//! `STRATA_TOOLS_VENV` names another): `strata serve --no-worker` on SQLite in a temporary
//! data dir, and again on a private PostgreSQL (which refuses what SQLite stores, such as
//! NUL characters in text), seeded with builds in every state (built with a result and
//! packages, failed with a log, canceled, queued) and tokens of each role. Then every
//! operation, the state-changing ones (submit, cancel, token create and revoke, lease,
//! heartbeat, log, complete, fail, refresh, promote, policy reload) included, is called as
//! the admin with generated valid and invalid inputs, alone and in sequences that follow
//! the document's links. Every check runs: no 5xx; every status code, content type, header
//! and body as documented; invalid input refused and valid input accepted; auth not
//! ignored. A bounded run (100 examples per operation, a fixed seed, one worker, at most
//! 4 minutes; about 20 s against a conforming server); any failure fails the test with Schemathesis' report, whose JSON and NDJSON
//! copies stay in `target/tmp/service_schema/{sqlite,postgres}/`.

mod common;
mod service;

#[path = "../crates/strata-service/tests/pg.rs"]
mod pg;

use common::*;
use service::*;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use strata_client::{BuildResult, Client, Complete, Fail, ImageOutput, LeaseRequest};

const ADMIN: &str = "schema-admin-token-0123456789";
/// Test cases per operation and phase, and the seed: fixed, so CI runs the same cases each
/// time (well under a minute); `STRATA_SCHEMA_EXAMPLES` and `STRATA_SCHEMA_SEED` override
/// them to search further by hand.
const MAX_EXAMPLES: &str = "100";
const SEED: &str = "20241206";
/// The whole run is killed (and the test fails) after this long, per 100 examples.
const RUN_LIMIT: Duration = Duration::from_secs(240);
/// Queued builds besides the seeded ones in other states.
const QUEUED: usize = 60;

fn schemathesis() -> PathBuf {
    let venv = std::env::var_os("STRATA_TOOLS_VENV").filter(|v| !v.is_empty()).map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/opt/strata-tools"));
    let bin = venv.join("bin/schemathesis");
    assert!(bin.is_file(), "{} is missing: run scripts/install-deps.sh (it installs Schemathesis from PyPI into a venv)", bin.display());
    bin
}

fn setting(var: &str, default: &str) -> String {
    std::env::var(var).ok().filter(|v| !v.is_empty()).unwrap_or_else(|| default.to_string())
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// The raw answer to `GET path`, or None when nothing listens.
fn http_get(port: u16, path: &str) -> Option<String> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(out)
}

/// A git repository whose `main` holds a Dockerfile.
fn dockerfile_repo(dir: &Path) -> String {
    std::fs::create_dir_all(dir).unwrap();
    git(dir, &["init", "-q", "-b", "main"]);
    std::fs::write(dir.join("Dockerfile"), "FROM registry.example/base/bb:1\nRUN echo hi > /hi\n").unwrap();
    git(dir, &["add", "-A"]);
    git(dir, &["commit", "-q", "-m", "first"]);
    format!("file://{}", dir.display())
}

/// Builds in every state, through the API as the CLI and a worker make them: 1 built
/// (a result with packages, a log), 2 failed (a log, a reason), 3 canceled, 4 and 5 queued.
fn seed(cli: &Cli, url: &str, worker_token: &str) {
    let submit = |image: &str| {
        let out = cli.run(&["submit", url, "--image", image]);
        assert_ok("strata submit", &out);
        stdout(&out).trim().to_string()
    };
    let worker = Client::new(&cli.server, Some(worker_token.to_string()));
    let lease = |want: &str| {
        let l = worker.lease(&LeaseRequest { worker: "seed".into(), wait_seconds: 0 }).unwrap().expect("a queued build to lease");
        assert_eq!(l.build.id.to_string(), want, "the oldest queued build is leased");
        l
    };

    let id = submit("app");
    let l = lease(&id);
    worker.append_log(l.build.id, &l.lease, "STEP 1/2: FROM registry.example/base/bb:1\nSTEP 2/2: RUN echo hi > /hi\n").unwrap();
    assert!(!worker.heartbeat(l.build.id, &l.lease).unwrap().stop);
    let digest = |c: char| format!("sha256:{}", c.to_string().repeat(64));
    let result = BuildResult {
        kind: "dockerfile".into(),
        input_digest: digest('1'),
        lock_digest: None,
        strata_version: env!("CARGO_PKG_VERSION").into(),
        images: vec![ImageOutput {
            name: "app".into(),
            reference: format!("registry.example/app:build-{id}@{}", digest('2')),
            manifest_digest: digest('2'),
            config_digest: digest('3'),
            tags: vec![format!("build-{id}"), "latest".into()],
            base: Some(strata_client::BaseImage { name: "registry.example/base/bb:1".into(), digest: digest('4') }),
            packages: vec!["openssl-libs-1:3.0.7-25.el9.x86_64".into(), "bash-5.1.8-9.el9.x86_64".into()],
            content: None,
            repos: vec![],
        }],
    };
    let built = worker.complete(l.build.id, &Complete { lease: l.lease, result }).unwrap();
    assert_eq!(built.state, "built", "{built:?}");

    let id = submit("app");
    let l = lease(&id);
    worker.append_log(l.build.id, &l.lease, "STEP 1/2: FROM registry.example/base/bb:1\nError: no such host\n").unwrap();
    let failed = worker.fail(l.build.id, &Fail { lease: l.lease, reason: "pulling the base: no such host".into(), canceled: false }).unwrap();
    assert_eq!(failed.state, "failed", "{failed:?}");

    let id = submit("other");
    assert_ok("strata cancel", &cli.run(&["cancel", &id]));
    // Enough queued builds that a lease Schemathesis makes finds one instead of waiting
    // out its long poll (up to 30 s) on an empty queue: a lease it drops expires after
    // three heartbeats (3 s) and, with attempts unlimited, the build is queued again.
    let admin = Client::new(&cli.server, Some(cli.token.clone()));
    for i in 0..QUEUED {
        let req: strata_client::SubmitRequest =
            serde_json::from_value(serde_json::json!({"source": {"url": url, "ref": "main"}, "images": [format!("queued-{i}")], "scratch": i % 2 == 1, "timeout_seconds": 600})).unwrap();
        assert_eq!(admin.submit(&req).unwrap().state, "queued");
    }
}

#[test]
fn schemathesis_finds_no_server_error_and_no_answer_outside_the_openapi_document_on_sqlite() {
    check_service("sqlite", None);
}

#[test]
fn schemathesis_finds_no_server_error_and_no_answer_outside_the_openapi_document_on_postgres() {
    let Some(db) = pg::Postgres::start() else { return };
    check_service("postgres", Some(&db.url));
}

/// Starts a seeded server on `database` (SQLite in its data dir when None), runs
/// Schemathesis against it and fails with the report unless the run is clean.
fn check_service(label: &str, database: Option<&str>) {
    let st = schemathesis();
    let data = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let port = free_port();
    let serve_log = home.path().join("serve.log");
    let mut serve = Command::new(env!("CARGO_BIN_EXE_strata"));
    serve
        .args(["serve", "--no-worker", "--listen", &format!("127.0.0.1:{port}"), "--admin-token", ADMIN, "--repo-interval", "0", "--heartbeat", "1", "--max-attempts", "1000000"])
        .arg("--data-dir")
        .arg(data.path());
    if let Some(url) = database {
        serve.args(["--database", url]);
    }
    let _serve = Proc(
        serve
            .env("HOME", home.path())
            .env_remove("STRATA_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&serve_log).unwrap())
            .spawn()
            .unwrap(),
    );
    let server_log = || std::fs::read_to_string(&serve_log).unwrap_or_default();
    let deadline = Instant::now() + Duration::from_secs(30);
    while http_get(port, "/").is_none() {
        assert!(Instant::now() < deadline, "strata serve did not answer:\n{}", server_log());
        std::thread::sleep(Duration::from_millis(100));
    }
    let server = format!("http://127.0.0.1:{port}");
    let cli = Cli { server: server.clone(), token: ADMIN.into(), home: home.path().to_path_buf() };
    cli.wait_up();

    // A token of each role besides the admin's (the server has them; Schemathesis calls as
    // the admin, so every operation gets past its role check to the input).
    let mut tokens = Vec::new();
    for role in ["reader", "submitter", "worker"] {
        let out = cli.run(&["token", "create", "--role", role, "--name", &format!("schema {role}")]);
        assert_ok("strata token create", &out);
        tokens.push(stdout(&out).trim().to_string());
    }
    let url = dockerfile_repo(&home.path().join("app"));
    seed(&cli, &url, &tokens[2]);

    let reports = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("service_schema").join(label);
    let _ = std::fs::remove_dir_all(&reports);
    std::fs::create_dir_all(&reports).unwrap();
    // What the schema cannot say: a submission that is well formed but names a repository,
    // ref or folder that does not exist, or a Dockerfile image without its name, is refused
    // with the documented 422; every other schema-valid request must be accepted.
    let config = reports.join("schemathesis.toml");
    std::fs::write(
        &config,
        "[[operations]]\ninclude-path = \"/api/builds\"\ninclude-method = \"POST\"\n\
         checks.positive_data_acceptance.expected-statuses = [\"2xx\", \"3xx\", \"401\", \"403\", \"404\", \"409\", \"422\", \"429\", \"5xx\"]\n",
    )
    .unwrap();
    let header = format!("Authorization: Bearer {ADMIN}");
    #[rustfmt::skip]
    let args: Vec<String> = [
        "--config-file", config.to_str().unwrap(),
        "run", &format!("{server}/api/openapi.json"),
        "--header", &header,
        // Every check; a response may take the lease's long poll (up to 30 s when nothing
        // is queued), so the response-time check allows that instead of its default.
        "--checks", "all",
        "--max-response-time", "35",
        "--request-timeout", "40",
        // Bounded and reproducible: a fixed number of cases per operation and a fixed
        // seed, nothing remembered between runs, one worker (so the stateful sequences
        // meet the server in the same order each time).
        "--max-examples", &setting("STRATA_SCHEMA_EXAMPLES", MAX_EXAMPLES),
        "--seed", &setting("STRATA_SCHEMA_SEED", SEED),
        "--generation-database", "none",
        "--workers", "1",
        "--no-color",
        "--report", "json,ndjson",
        "--report-dir", reports.to_str().unwrap(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    eprintln!("{label}: {} {}", st.display(), args.join(" ").replace(ADMIN, "ADMIN"));
    let out_path = reports.join("schemathesis.txt");
    let out = std::fs::File::create(&out_path).unwrap();
    let examples: u32 = setting("STRATA_SCHEMA_EXAMPLES", MAX_EXAMPLES).parse().expect("STRATA_SCHEMA_EXAMPLES: a number");
    let limit = RUN_LIMIT * examples.div_ceil(100).max(1);
    let started = Instant::now();
    let mut child = Command::new(&st)
        .args(&args)
        .current_dir(home.path())
        .env("HOME", home.path())
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .unwrap();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let report = std::fs::read_to_string(&out_path).unwrap_or_default().replace(ADMIN, "ADMIN");
    eprintln!("{label}: schemathesis ran {:.1} s", started.elapsed().as_secs_f64());
    let Some(status) = status else {
        panic!("{label}: schemathesis did not finish within {limit:?}:\n{report}\n--- server log\n{}", server_log());
    };
    // A run that revoked the token it calls with (DELETE /api/tokens/{id}) would have tested
    // nothing but 401s after that.
    let still = cli.run(&["builds"]);
    assert!(still.status.success(), "{label}: the admin token no longer works after the run (revoked by it?): {}\n{report}", stderr(&still));
    // Warnings (such as "most generated submissions were refused": random sources do not
    // exist) are reported but do not fail the run.
    assert!(
        status.success(),
        "{label}: schemathesis found answers outside the OpenAPI document ({status}; reports in {}):\n{report}\n--- server log\n{}",
        reports.display(),
        server_log()
    );
}
