//! Confined code of strata's own: a closure run as the sandbox's pid 1 instead of an
//! exec'd program — for what must run inside an image root that holds nothing to exec yet
//! (an RPM's Lua `%pretrans` in an empty root, as rpm runs it embedded in its own process).
//!
//! The closure runs in exactly the confinement a program of the same [`Command`] gets
//! from the namespace executor: new mount, pid, ipc, uts (and network) namespaces,
//! pivoted into the root with the standard `/proc`, `/dev` and `/sys`, the command's
//! rlimits, capabilities dropped to its set, the seccomp filter, the run's cgroup with its
//! process and memory limits, timeout and cancel; its stdout and stderr are captured into
//! the [`Output`] like a program's, and its return value is the exit status. Processes it
//! starts (`fork`/`exec` of the image's programs) inherit all of it.
//!
//! The process that calls [`run_in_process`] must have one thread: the closure runs in a
//! forked child, where only a single-threaded parent guarantees that no lock (malloc's,
//! stdio's, Rust's) was held at the fork. strata calls it from a fresh helper process
//! (`strata __lua-scriptlet`), and this function refuses to run anywhere else.

use crate::{Command, Error, Output, DEFAULT_STATE_DIR};
use std::path::Path;
use std::sync::Arc;

/// Runs `body` confined in `root` as `cmd` describes (its program and arguments are not
/// used). Fails with [`Error::Setup`] when the calling process has more than one thread.
pub fn run_in_process(root: &Path, cmd: &Command, body: impl Fn() -> i32 + Send + Sync + 'static) -> Result<Output, Error> {
    let threads = std::fs::read_dir("/proc/self/task").map(|d| d.count()).unwrap_or(0);
    if threads != 1 {
        return Err(Error::Setup {
            step: format!("run confined code in-process (this process has {threads} threads; it needs exactly one, so that the forked sandbox inherits no held lock)"),
            source: std::io::Error::from_raw_os_error(libc::EDEADLK),
        });
    }
    // The closure sees the process's environment: make it the command's, as a program's
    // would be (nothing of the caller's leaks in). Safe to change with one thread.
    for (k, _) in std::env::vars_os() {
        std::env::remove_var(k);
    }
    for (k, v) in &cmd.env {
        std::env::set_var(k, v);
    }
    crate::builtin::run_with(root, cmd, Path::new(DEFAULT_STATE_DIR), Some(Arc::new(body)))
}
