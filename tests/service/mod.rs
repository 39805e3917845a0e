//! Helpers the build service tests share: child processes stopped by their PID, and git.

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

/// `git -C DIR ARGS...` with a fixed identity; its stdout, trimmed.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = crate::common::run(Command::new("git").arg("-C").arg(dir).args(["-c", "user.name=t", "-c", "user.email=t@example.org"]).args(args));
    crate::common::assert_ok(&format!("git {args:?}"), &out);
    crate::common::stdout(&out).trim().to_string()
}
