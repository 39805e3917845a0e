//! The seam between installing and running scriptlets: the installer decides what runs,
//! when, with which arguments and stdin; a [`ScriptRunner`] (the namespace sandbox in
//! production) decides how.

use std::path::Path;

/// One scriptlet run, described the way rpm would start it.
#[derive(Clone, Debug)]
pub struct ScriptInvocation<'a> {
    /// NEVRA of the package whose script runs.
    pub package: &'a str,
    /// `%post`, `%transfiletriggerin`, ...
    pub what: &'a str,
    /// Interpreter and its arguments (`/bin/sh`), or the program of a `-p` scriptlet.
    pub program: &'a [String],
    /// Script text; empty for `-p` programs.
    pub body: &'a str,
    /// rpm's positional arguments (instance counts).
    pub args: Vec<String>,
    /// File triggers get the matching paths on stdin, one per line.
    pub stdin: Vec<u8>,
    /// The image's rpm macros as they stand (name, unexpanded body), for a Lua scriptlet's
    /// `rpm.expand`; empty for other programs, which cannot read them (in rpm neither).
    pub macros: Vec<(String, String)>,
}

#[derive(Clone, Debug)]
pub struct ScriptOutcome {
    pub success: bool,
    /// `exit 1`, `signal 9`, ...
    pub status: String,
    /// stdout and stderr, for the build log.
    pub output: String,
}

pub trait ScriptRunner: Sync {
    /// Runs inside `root`. `Err` means the sandbox itself failed (not the script), which
    /// stops the build: a scriptlet that could not run is never silently skipped.
    fn run(&self, root: &Path, inv: &ScriptInvocation<'_>) -> Result<ScriptOutcome, String>;
}
