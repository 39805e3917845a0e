//! Helpers the build service tests share: child processes stopped by their PID, and git.
// Not every test uses every helper.
#![allow(dead_code)]

use std::path::Path;
use std::process::{Child, Command};

/// A child process killed by its PID and reaped on drop.
pub struct Proc(pub Child);

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

    /// Waits until the server answers an authenticated call.
    pub fn wait_up(&self) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while !self.run(&["builds"]).status.success() {
            assert!(std::time::Instant::now() < deadline, "strata serve at {} did not come up", self.server);
            std::thread::sleep(std::time::Duration::from_millis(150));
        }
    }
}
