//! What to run in the sandbox and what came out of it.

use crate::Error;
use std::ffi::{OsStr, OsString};
use std::fmt;
use std::os::unix::ffi::OsStrExt;
use std::time::Duration;

/// Where [`Command::file`] files appear inside the sandbox (in its `/dev` tmpfs).
pub const FILES_DIR: &str = "/dev/.strata";

/// The `PATH` a [`Command`] starts with: the one rpm gives scriptlets. The environment is
/// otherwise empty; nothing is inherited from the host.
pub const DEFAULT_PATH: &str = "/sbin:/bin:/usr/sbin:/usr/bin";

/// How long a [`Command`] may run unless [`Command::timeout`] says otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(3600);

/// The longest hostname the kernel accepts (`HOST_NAME_MAX`).
const HOSTNAME_MAX: usize = 64;

/// A program to run in an image root, with its arguments, a clean environment, bytes for
/// its stdin and files to hand over in [`FILES_DIR`].
#[derive(Clone, Debug)]
pub struct Command {
    /// `argv[0]` is the program: an absolute path inside the root.
    pub(crate) argv: Vec<OsString>,
    pub(crate) env: Vec<(OsString, OsString)>,
    pub(crate) stdin: Vec<u8>,
    pub(crate) files: Vec<(String, Vec<u8>, u32)>,
    pub(crate) timeout: Duration,
    pub(crate) hostname: String,
}

impl Command {
    /// Runs `program`, an absolute path inside the root (symlinks resolve inside the root),
    /// with `PATH=`[`DEFAULT_PATH`] as its only environment variable, empty stdin,
    /// [`DEFAULT_TIMEOUT`] and hostname `localhost`.
    pub fn new(program: impl Into<OsString>) -> Command {
        Command {
            argv: vec![program.into()],
            env: vec![("PATH".into(), DEFAULT_PATH.into())],
            stdin: Vec::new(),
            files: Vec::new(),
            timeout: DEFAULT_TIMEOUT,
            hostname: "localhost".into(),
        }
    }

    pub fn arg(mut self, arg: impl Into<OsString>) -> Command {
        self.argv.push(arg.into());
        self
    }

    pub fn args<I, S>(mut self, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        self.argv.extend(args.into_iter().map(Into::into));
        self
    }

    /// Sets a variable, replacing an earlier value of the same name.
    pub fn env(mut self, key: impl Into<OsString>, value: impl Into<OsString>) -> Command {
        let key = key.into();
        self.env.retain(|(k, _)| *k != key);
        self.env.push((key, value.into()));
        self
    }

    /// Removes every variable, [`DEFAULT_PATH`] included.
    pub fn env_clear(mut self) -> Command {
        self.env.clear();
        self
    }

    /// What the program reads on stdin; after it, end of file.
    pub fn stdin_bytes(mut self, bytes: Vec<u8>) -> Command {
        self.stdin = bytes;
        self
    }

    /// Places `bytes` at `/dev/.strata/NAME` (see [`FILES_DIR`]) with permission bits
    /// `mode`, inside the sandbox only: how a scriptlet body reaches its interpreter without
    /// touching the root. `name` is a plain file name.
    pub fn file(mut self, name: impl Into<String>, bytes: Vec<u8>, mode: u32) -> Command {
        self.files.push((name.into(), bytes, mode));
        self
    }

    /// After this long the program and every process it started are killed, and
    /// [`crate::run`] fails with [`Error::Timeout`].
    pub fn timeout(mut self, timeout: Duration) -> Command {
        self.timeout = timeout;
        self
    }

    /// The hostname the program sees (its own UTS namespace); `localhost` by default.
    pub fn hostname(mut self, name: impl Into<String>) -> Command {
        self.hostname = name.into();
        self
    }

    /// The program, as given to [`Command::new`].
    pub fn program(&self) -> &OsStr {
        &self.argv[0]
    }

    pub(crate) fn program_lossy(&self) -> String {
        self.program().to_string_lossy().into_owned()
    }

    /// Whether the program is one of the [`Command::file`]s, e.g. `/dev/.strata/script`.
    pub(crate) fn runs_own_file(&self) -> bool {
        let program = self.program().as_bytes();
        program
            .strip_prefix(FILES_DIR.as_bytes())
            .and_then(|rest| rest.strip_prefix(b"/"))
            .is_some_and(|name| self.files.iter().any(|(n, _, _)| n.as_bytes() == name))
    }

    /// Rejects what could only fail later, less clearly, in the child.
    pub(crate) fn validate(&self) -> Result<(), Error> {
        let bad = |why: String| Err(Error::InvalidCommand(why));
        let program = self.program().as_bytes();
        if !program.starts_with(b"/") {
            return bad(format!(
                "{}: the program must be an absolute path inside the root",
                self.program_lossy()
            ));
        }
        if let Some(a) = self.argv.iter().find(|a| a.as_bytes().contains(&0)) {
            return bad(format!("argument {a:?} contains a NUL byte"));
        }
        for (k, v) in &self.env {
            let k = k.as_bytes();
            if k.is_empty() || k.contains(&b'=') || k.contains(&0) || v.as_bytes().contains(&0) {
                return bad(format!(
                    "environment variable {:?}={v:?} is malformed",
                    OsStr::from_bytes(k)
                ));
            }
        }
        for (i, (name, _, mode)) in self.files.iter().enumerate() {
            if name.is_empty() || name == "." || name == ".." || name.contains(['/', '\0']) {
                return bad(format!("{name:?} is not a plain file name for {FILES_DIR}"));
            }
            if self.files[..i].iter().any(|(n, _, _)| n == name) {
                return bad(format!("file {name:?} is given twice"));
            }
            if mode & !0o7777 != 0 {
                return bad(format!(
                    "file {name:?}: mode {mode:o} has bits beyond 07777"
                ));
            }
        }
        let h = &self.hostname;
        if h.is_empty() || h.len() > HOSTNAME_MAX || h.contains('\0') {
            return bad(format!(
                "hostname {h:?} must be 1 to {HOSTNAME_MAX} bytes without NUL"
            ));
        }
        Ok(())
    }
}

/// How the program ended: an exit code, or the signal that killed it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExitStatus {
    pub code: Option<i32>,
    pub signal: Option<i32>,
}

impl ExitStatus {
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }
}

impl fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.code, self.signal) {
            (Some(c), _) => write!(f, "exit code {c}"),
            (None, Some(s)) => write!(f, "killed by signal {s}"),
            (None, None) => f.write_str("unknown status"),
        }
    }
}

/// What a finished program left: its status and everything it wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Output {
    pub status: ExitStatus,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}
