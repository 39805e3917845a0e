use crate::ExitStatus;
use std::io;
use std::path::PathBuf;
use std::time::Duration;

/// Why a program could not be run (its own failure is an [`crate::Output`], not an error).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The program does not exist in the root (resolved the way the sandbox will see it).
    #[error("{program}: not found in image root {}", root.display())]
    NotFound { program: String, root: PathBuf },

    /// The command itself is malformed (relative program, bad file name, ...).
    #[error("invalid sandbox command: {0}")]
    InvalidCommand(String),

    /// The root cannot host the run (missing, a mountpoint is of the wrong kind, the
    /// working directory is not there, ...).
    #[error("image root {}: {problem}", root.display())]
    BadRoot { root: PathBuf, problem: String },

    /// The `USER` cannot be resolved in the root's `/etc/passwd` and `/etc/group`.
    #[error("user {user:?} in image root {}: {problem}", root.display())]
    User {
        user: String,
        root: PathBuf,
        problem: String,
    },

    /// Entering the sandbox failed at `step` (namespaces, mounts, chroot, ...).
    #[error("{step}: {source}{hint}", hint = needs_root_hint(source))]
    Setup { step: String, source: io::Error },

    /// Everything was set up, but the kernel refused to execute the program.
    #[error("exec {program} in image root {}: {source}{hint}", root.display(), hint = exec_hint(source))]
    Exec {
        program: String,
        root: PathBuf,
        source: io::Error,
    },

    /// The OCI runtime binary is not there.
    #[error("OCI runtime {}: {source} (is it installed? apt-get install runc)", runtime.display())]
    RuntimeNotFound { runtime: PathBuf, source: io::Error },

    /// The OCI runtime is installed but a probe run with it failed on this machine.
    #[error("OCI runtime {} does not work on this machine: {reason}", runtime.display())]
    RuntimeUnusable { runtime: PathBuf, reason: String },

    /// The OCI runtime failed before the program started; `message` is what it said.
    #[error("{runtime} could not start the program ({status}): {message}")]
    Runtime {
        runtime: String,
        status: ExitStatus,
        message: String,
    },

    /// The program ran out of time; it and everything it started were killed.
    #[error(
        "{program} did not finish within {timeout:?}; it was killed with every process it started"
    )]
    Timeout { program: String, timeout: Duration },

    /// The run reached one of its [`crate::Limits`]: it kept trying to start processes
    /// beyond its process limit (a fork bomb), or the kernel killed one of its processes
    /// for memory. Everything it started was killed.
    #[error(
        "{program} reached the sandbox's {kind} limit ({limit}); every process it started was killed{hint}",
        hint = limit_hint(*kind)
    )]
    Limit {
        program: String,
        kind: crate::LimitKind,
        limit: String,
    },

    /// The run was canceled ([`crate::Command::cancel_on`]); it and everything it started
    /// were killed.
    #[error("{program} was canceled; it was killed with every process it started")]
    Canceled { program: String },

    /// A host-side operation around the run failed.
    #[error("{context}: {source}")]
    Io { context: String, source: io::Error },
}

impl Error {
    pub(crate) fn io(context: impl Into<String>) -> impl FnOnce(io::Error) -> Error {
        let context = context.into();
        move |source| Error::Io { context, source }
    }
}

fn limit_hint(kind: crate::LimitKind) -> &'static str {
    match kind {
        crate::LimitKind::Processes => {
            " — a program that forks without end (a fork bomb) ends like this; a build that really needs more processes can raise the limit (strata build --pids-limit N)"
        }
        crate::LimitKind::Memory => {
            " — a build that really needs more memory can raise the limit (strata build --memory SIZE)"
        }
    }
}

fn needs_root_hint(e: &io::Error) -> &'static str {
    if e.raw_os_error() == Some(libc::EPERM) {
        " — strata needs root (or CAP_SYS_ADMIN) to run scriptlets; set \"scriptlets\": \"skip\" in the spec to build without them"
    } else {
        ""
    }
}

fn exec_hint(e: &io::Error) -> &'static str {
    match e.raw_os_error() {
        // The program itself was found before spawning, so ENOENT means what it needs.
        Some(libc::ENOENT) => " (its #! interpreter or ELF loader is missing from the root)",
        Some(libc::ENOEXEC) => " (not an executable format this kernel runs)",
        _ => "",
    }
}
