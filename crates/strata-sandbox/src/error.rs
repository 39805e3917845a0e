use std::io;
use std::path::PathBuf;
use std::time::Duration;

/// Why a program could not be run (its own failure is an [`crate::Output`], not an error).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The program does not exist in the root (resolved the way the chroot will see it).
    #[error("{program}: not found in image root {}", root.display())]
    NotFound { program: String, root: PathBuf },

    /// The command itself is malformed (relative program, bad file name, ...).
    #[error("invalid sandbox command: {0}")]
    InvalidCommand(String),

    /// The root cannot host a sandbox (missing, or `/proc` or `/dev` is not a directory).
    #[error("image root {}: {problem}", root.display())]
    BadRoot { root: PathBuf, problem: String },

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

    /// The program ran out of time; it and everything it started were killed.
    #[error(
        "{program} did not finish within {timeout:?}; it was killed with every process it started"
    )]
    Timeout { program: String, timeout: Duration },

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
