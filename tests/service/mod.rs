//! Helpers the build service tests share: child processes stopped by their PID, git, and the
//! `strata` client against one server (run, spawned, polled).
// Not every test uses every helper.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command};

/// The seeds' web-site Dockerfile (tests/build_engines.rs's SITE) after its `FROM web`
/// line, for a Dockerfile built FROM the service's `web` (tests/service_corpus.rs still has
/// its own copy).
pub const SITE_AFTER_FROM: &str = r#"MAINTAINER Release Engineering <releng@example.com>
ADD ./mysite.tar /tmp/
RUN mv /tmp/mysite/* /var/www/html/ && rm /var/www/html/index.nginx-debian.html
EXPOSE 80
ENTRYPOINT ["/usr/sbin/nginx", "-g", "daemon off;"]
"#;

/// A git repository at `dir` (created) whose one commit holds the corpus spec
/// (images.json) as strata.json: what `strata submit file://DIR` builds.
pub fn corpus_spec_repo(dir: &Path) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let spec = crate::common::copy_corpus_spec("images.json", dir);
    std::fs::rename(&spec, dir.join("strata.json")).unwrap();
    git(dir, &["init", "-q", "-b", "main"]);
    git(dir, &["add", "-A"]);
    git(dir, &["commit", "-q", "-m", "corpus"]);
    dir.to_path_buf()
}

/// A child process killed by its PID and reaped on drop.
pub struct Proc(pub Child);

impl Proc {
    /// Waits (at most `timeout`, then panics) for the process to exit; its status with the
    /// stdout and stderr that `Cli::spawn` wrote to `OUT.stdout` and `OUT.stderr`.
    #[track_caller]
    pub fn finish(mut self, out: &Path, timeout: std::time::Duration) -> std::process::Output {
        let deadline = std::time::Instant::now() + timeout;
        let status = loop {
            if let Some(status) = self.0.try_wait().unwrap() {
                break status;
            }
            assert!(std::time::Instant::now() < deadline, "{} did not exit within {timeout:?}", out.display());
            std::thread::sleep(std::time::Duration::from_millis(100));
        };
        let read = |ext: &str| std::fs::read(out.with_extension(ext)).unwrap_or_default();
        std::process::Output { status, stdout: read("stdout"), stderr: read("stderr") }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The busybox base `bb`, built into a fresh store and pushed to `HOST/base/bb:1`, so a
/// service worker with an empty store must pull it: the builds and the reference.
pub fn base_in_registry(host: &str) -> (crate::common::build::Builds, String) {
    let b = crate::common::build::Builds::new();
    b.busybox_base();
    let base = format!("{host}/base/bb:1");
    let push = crate::common::run(b.strata().args(["push", "bb", &base, "--insecure-registry", host]).arg("--store").arg(b.store()));
    crate::common::assert_ok("strata push", &push);
    (b, base)
}

/// `git -C DIR ARGS...` with a fixed identity; its stdout, trimmed.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = crate::common::run(Command::new("git").arg("-C").arg(dir).args(["-c", "user.name=t", "-c", "user.email=t@example.org"]).args(args));
    crate::common::assert_ok(&format!("git {args:?}"), &out);
    crate::common::stdout(&out).trim().to_string()
}

/// The `strata` client commands against one server, with one token, from a private HOME.
pub struct Cli {
    pub server: String,
    pub token: String,
    pub home: std::path::PathBuf,
}

impl Cli {
    pub fn run(&self, args: &[&str]) -> std::process::Output {
        crate::common::run(Command::new(env!("CARGO_BIN_EXE_strata")).args(args).env("STRATA_SERVER", &self.server).env("STRATA_TOKEN", &self.token).env("HOME", &self.home))
    }

    #[track_caller]
    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        let out = self.run(args);
        crate::common::assert_ok(&format!("strata {args:?}"), &out);
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// Starts `strata ARGS...` in the background, its stdout and stderr going to `OUT.stdout`
    /// and `OUT.stderr` (files, so a long log never fills a pipe); killed if dropped unwaited.
    pub fn spawn(&self, args: &[&str], out: &Path) -> Proc {
        let file = |ext: &str| std::fs::File::create(out.with_extension(ext)).unwrap();
        Proc(
            Command::new(env!("CARGO_BIN_EXE_strata"))
                .args(args)
                .env("STRATA_SERVER", &self.server)
                .env("STRATA_TOKEN", &self.token)
                .env("HOME", &self.home)
                .stdin(std::process::Stdio::null())
                .stdout(file("stdout"))
                .stderr(file("stderr"))
                .spawn()
                .unwrap(),
        )
    }

    /// Polls `build-info ID --json` until `done` accepts the record, which it returns; panics
    /// (naming `what`) after `timeout`, or as soon as the build ended (built, failed,
    /// canceled) in a state `done` does not accept.
    #[track_caller]
    pub fn await_build(&self, id: &str, what: &str, timeout: std::time::Duration, mut done: impl FnMut(&serde_json::Value) -> bool) -> serde_json::Value {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let info = self.json(&["build-info", id, "--json"]);
            if done(&info) {
                return info;
            }
            let state = info["state"].as_str().unwrap_or("");
            assert!(!matches!(state, "built" | "failed" | "canceled"), "build {id} ended {state} before {what}: {info}\nlog:\n{}", self.log(id));
            assert!(std::time::Instant::now() < deadline, "build {id}: not {what} within {timeout:?}: {info}");
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
    }

    /// `strata logs ID`: the build's log so far.
    #[track_caller]
    pub fn log(&self, id: &str) -> String {
        let out = self.run(&["logs", id]);
        crate::common::assert_ok(&format!("strata logs {id}"), &out);
        crate::common::stdout(&out)
    }

    /// Waits until the server answers an authenticated call.
    pub fn wait_up(&self) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while !self.run(&["builds"]).status.success() {
            assert!(std::time::Instant::now() < deadline, "strata serve at {} did not come up", self.server);
            std::thread::sleep(std::time::Duration::from_millis(150));
        }
    }
}

/// `name-[EPOCH:]VERSION-RELEASE.ARCH` split into the name and the rest (version and
/// release hold no `-`).
pub fn split_nevra(p: &str) -> (String, String) {
    let mut it = p.rsplitn(3, '-');
    let (rel, ver, name) = (it.next().unwrap(), it.next().unwrap(), it.next().unwrap_or_else(|| panic!("not a NEVRA: {p}")));
    (name.to_string(), format!("{ver}-{rel}"))
}

/// Prints the tail of the server's log when the test fails.
pub struct LogOnPanic(pub std::path::PathBuf);

impl Drop for LogOnPanic {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let log = std::fs::read_to_string(&self.0).unwrap_or_default();
            let lines: Vec<&str> = log.lines().collect();
            eprintln!("--- strata serve log (last 150 lines)\n{}", lines[lines.len().saturating_sub(150)..].join("\n"));
        }
    }
}
