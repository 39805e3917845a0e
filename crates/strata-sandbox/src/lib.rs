//! `strata-sandbox` owns running a program inside an assembled image root, isolated the way
//! an RPM scriptlet or a build step must be: new mount, pid, ipc, uts and net namespaces,
//! chrooted into the root, with a fresh minimal `/proc`, a small tmpfs `/dev` (null, zero,
//! full, random, urandom, tty and the usual `/proc/self/fd` links) and no network (the new
//! network namespace has only its loopback, left down).
//!
//! The program is pid 1 of its pid namespace, so every process it leaves behind dies when it
//! exits, and a timeout kills them all. Small files (a scriptlet's body) are handed over in
//! the sandbox's own `/dev` tmpfs at [`FILES_DIR`], never on the root's filesystem.
//!
//! The root is left exactly as the program left it, because the caller diffs it afterwards:
//! the sandbox's mounts vanish with its mount namespace (after `/` was made recursively
//! private, so nothing propagates to the host), and a `/proc` or `/dev` directory it had to
//! create as a mountpoint is removed again, with the root directory's times restored.
//!
//! It needs root (CAP_SYS_ADMIN; no user namespace is used). [`check_available`] proves the
//! machine allows it and otherwise names the step that failed.
//!
//! ```no_run
//! use strata_sandbox::{run, Command};
//! let cmd = Command::new("/bin/sh")
//!     .arg("/dev/.strata/script")
//!     .file("script", b"echo installed > /etc/motd\n".to_vec(), 0o755);
//! let out = run(std::path::Path::new("/var/tmp/image-root"), &cmd)?;
//! assert!(out.status.success());
//! # Ok::<(), strata_sandbox::Error>(())
//! ```
//!
//! Concurrency: runs in different roots may proceed at once from different threads. Two runs
//! in the same root at the same time are not supported (they would share the mountpoints the
//! sandbox creates and removes).

mod child;
mod command;
mod error;
mod root;
mod run;

pub use command::{Command, ExitStatus, Output, DEFAULT_PATH, DEFAULT_TIMEOUT, FILES_DIR};
pub use error::Error;
pub use run::{check_available, run};

#[cfg(test)]
mod tests;
