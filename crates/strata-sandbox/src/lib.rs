//! `strata-sandbox` runs a program inside an assembled image root, isolated the way a
//! build must be: new mount, pid, ipc, uts and net namespaces, chrooted into the root, a
//! fresh `/proc` and a minimal tmpfs `/dev`, no network (only a downed loopback). The
//! program is pid 1 of its namespace, so anything it leaves running dies with it. The root
//! is left exactly as the program left it: the sandbox's own mounts vanish with the mount
//! namespace, and mountpoints it had to create are removed.
//!
//! It needs root (CAP_SYS_ADMIN); [`check_available`] says clearly when that is missing.

mod spawn;

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use spawn::run;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{program}: not found in image root {root}")]
    NotFound { program: String, root: PathBuf },
    #[error("sandbox setup failed ({step}): {source}. strata needs root (CAP_SYS_ADMIN) to run scriptlets in namespaces; set \"scriptlets\": \"skip\" in the spec to build without them")]
    Setup { step: String, source: std::io::Error },
    #[error("{program} did not finish within {secs} s; killed")]
    Timeout { program: String, secs: u64 },
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// What to run. `program` is a path inside the root.
#[derive(Clone, Debug)]
pub struct Command {
    pub(crate) program: OsString,
    pub(crate) args: Vec<OsString>,
    pub(crate) env: Vec<(OsString, OsString)>,
    pub(crate) stdin: Vec<u8>,
    pub(crate) files: Vec<(String, Vec<u8>)>,
    pub(crate) timeout: Duration,
    pub(crate) hostname: String,
}

impl Command {
    /// Runs `program` with a clean environment (PATH as rpm sets it for scriptlets).
    pub fn new(program: impl Into<OsString>) -> Command {
        Command {
            program: program.into(),
            args: Vec::new(),
            env: vec![("PATH".into(), "/usr/sbin:/usr/bin:/sbin:/bin".into())],
            stdin: Vec::new(),
            files: Vec::new(),
            timeout: Duration::from_secs(600),
            hostname: "localhost".into(),
        }
    }

    pub fn arg(mut self, a: impl Into<OsString>) -> Command {
        self.args.push(a.into());
        self
    }

    pub fn args<I: IntoIterator<Item = S>, S: Into<OsString>>(mut self, a: I) -> Command {
        self.args.extend(a.into_iter().map(Into::into));
        self
    }

    pub fn env(mut self, k: impl Into<OsString>, v: impl Into<OsString>) -> Command {
        let k = k.into();
        self.env.retain(|(key, _)| *key != k);
        self.env.push((k, v.into()));
        self
    }

    pub fn stdin_bytes(mut self, bytes: Vec<u8>) -> Command {
        self.stdin = bytes;
        self
    }

    /// A file placed at `/dev/.strata/NAME` inside the sandbox only (never in the root):
    /// how a scriptlet body reaches its interpreter.
    pub fn file(mut self, name: &str, bytes: Vec<u8>) -> Command {
        self.files.push((name.to_string(), bytes));
        self
    }

    pub fn timeout(mut self, t: Duration) -> Command {
        self.timeout = t;
        self
    }
}

/// Where [`Command::file`] files appear inside the sandbox.
pub const FILES_DIR: &str = "/dev/.strata";

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Output {
    /// Exit code, or `None` when killed by a signal.
    pub code: Option<i32>,
    pub signal: Option<i32>,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

impl Output {
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }

    /// `exit 0`, `exit 1`, `signal 9`.
    pub fn status(&self) -> String {
        match (self.code, self.signal) {
            (Some(c), _) => format!("exit {c}"),
            (None, Some(s)) => format!("signal {s}"),
            _ => "unknown status".into(),
        }
    }
}

/// Proves that namespaces and chroot work here by running nothing in an empty root.
pub fn check_available() -> Result<(), Error> {
    let dir = tempfile_dir()?;
    let r = spawn::probe(&dir);
    let _ = std::fs::remove_dir_all(&dir);
    r
}

fn tempfile_dir() -> Result<PathBuf, Error> {
    let base = std::env::temp_dir().join(format!("strata-sandbox-probe-{}", std::process::id()));
    std::fs::create_dir_all(&base)?;
    Ok(base)
}

/// Resolves `program` inside `root` the chroot way (absolute links stay in the root).
pub(crate) fn exists_in_root(root: &Path, program: &std::ffi::OsStr) -> bool {
    use rustix::fs::{open, openat2, Mode, OFlags, ResolveFlags};
    let Ok(dir) = open(root, OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty()) else {
        return false;
    };
    let rel = Path::new(program).strip_prefix("/").unwrap_or(Path::new(program));
    openat2(&dir, rel, OFlags::PATH | OFlags::CLOEXEC, Mode::empty(), ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS).is_ok()
}

#[cfg(test)]
mod tests;
