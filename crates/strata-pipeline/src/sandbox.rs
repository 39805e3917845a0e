//! The scriptlet runner: each scriptlet through `strata-sandbox` — the same description and
//! executors `strata build` uses for `RUN` — started the way rpm starts it.
//!
//! Scriptlets default to the sandbox's own namespace executor: a compose runs hundreds of
//! them and it costs ~5 ms each against runc's ~50 ms (docs/decisions.md).
//! `STRATA_SCRIPTLET_SANDBOX=runc|crun|auto|builtin` (or a runtime's path) chooses another.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use strata_install::{ScriptInvocation, ScriptOutcome, ScriptRunner};
use strata_sandbox::{Backend, Capabilities, Command, Sandbox, FILES_DIR};

/// Runs each scriptlet in the image root through `strata-sandbox`.
pub struct SandboxRunner {
    sandbox: Sandbox,
    /// A scriptlet running when this is set is killed (every process of it) at once.
    cancel: Option<Arc<AtomicBool>>,
}

/// Said with a failed scriptlet whose output shows the sandbox refused something.
const REFUSED_HINT: &str = "; the sandbox refused an operation: scriptlets run with docker's default \
capabilities less CAP_NET_RAW, under docker's seccomp profile, with no mount and no host device \
(see \"Trust model\" in the README)";

/// Whether a program's output reads like a refusal by the sandbox (EPERM, EACCES, EROFS).
fn refused(output: &str) -> bool {
    ["Operation not permitted", "Permission denied", "Read-only file system"].iter().any(|m| output.contains(m))
}

/// A sandbox backend named on the command line or in the environment.
pub fn backend_named(name: &str) -> Backend {
    match name {
        "" | "builtin" => Backend::Builtin,
        "auto" => Backend::Auto,
        other => Backend::Runtime(PathBuf::from(other)),
    }
}

impl SandboxRunner {
    /// The executor `$STRATA_SCRIPTLET_SANDBOX` names (default: the builtin one). Fails,
    /// saying why, when this machine cannot run it.
    pub fn new() -> Result<SandboxRunner, strata_sandbox::Error> {
        let backend = backend_named(&std::env::var("STRATA_SCRIPTLET_SANDBOX").unwrap_or_default());
        Ok(SandboxRunner { sandbox: Sandbox::new(backend)?, cancel: None })
    }

    /// Scriptlets still running when `cancel` is tripped are killed within a quarter of a
    /// second (their image then fails), rather than left to finish.
    pub fn cancel_on(mut self, cancel: &crate::Cancel) -> SandboxRunner {
        self.cancel = Some(cancel.flag());
        self
    }
}

/// What every scriptlet runs as, shell or Lua: rpm's environment, the scriptlet
/// capability set, the default limits.
pub(crate) fn scriptlet_command(program: &str) -> Command {
    Command::new(program).env("HOME", "/root").env("LC_ALL", "C").capabilities(Capabilities::Scriptlet)
}

impl ScriptRunner for SandboxRunner {
    fn run(&self, root: &Path, inv: &ScriptInvocation<'_>) -> Result<ScriptOutcome, String> {
        let (program, rest) = inv.program.split_first().ok_or("scriptlet without a program")?;
        if program == "<lua>" {
            // Interpreted by strata's own confined helper, whatever executor runs the rest;
            // `rpm.expand` sees the image's macros over rpm's standard path macros.
            return crate::lua::run(root, inv, &inv.macros, self.cancel.as_ref());
        }
        let mut cmd = scriptlet_command(program).args(rest);
        // rpm: interpreter [its args] script-file arg1 [arg2]; `-p` programs get no file.
        if !inv.body.is_empty() {
            cmd = cmd.file("scriptlet", inv.body.as_bytes().to_vec(), 0o700).arg(format!("{FILES_DIR}/scriptlet"));
        }
        let cmd = cmd
            .args(&inv.args)
            .stdin_bytes(inv.stdin.clone());
        let cmd = match &self.cancel {
            Some(flag) => cmd.cancel_on(flag.clone()),
            None => cmd,
        };
        let out = self.sandbox.run(root, &cmd).map_err(|e| e.to_string())?;
        let mut output = String::from_utf8_lossy(&out.stdout).into_owned();
        output.push_str(&String::from_utf8_lossy(&out.stderr));
        let mut status = out.status.to_string();
        if !out.status.success() && refused(&output) {
            status.push_str(REFUSED_HINT);
        }
        Ok(ScriptOutcome { success: out.status.success(), status, output })
    }
}
