//! The scriptlet runner: each scriptlet in its own namespaces, chrooted into the image root
//! (`strata-sandbox`), started the way rpm starts it.

use std::path::Path;
use strata_install::{ScriptInvocation, ScriptOutcome, ScriptRunner};
use strata_sandbox::{Command, FILES_DIR};

pub struct SandboxRunner;

impl SandboxRunner {
    /// Fails, saying why, when this machine cannot make the namespaces.
    pub fn new() -> anyhow::Result<SandboxRunner> {
        strata_sandbox::check_available()?;
        Ok(SandboxRunner)
    }
}

impl ScriptRunner for SandboxRunner {
    fn run(&self, root: &Path, inv: &ScriptInvocation<'_>) -> Result<ScriptOutcome, String> {
        let (program, rest) = inv.program.split_first().ok_or("scriptlet without a program")?;
        let mut cmd = Command::new(program).args(rest);
        // rpm: interpreter [its args] script-file arg1 [arg2]; `-p` programs get no file.
        if !inv.body.is_empty() {
            cmd = cmd.file("scriptlet", inv.body.as_bytes().to_vec(), 0o700).arg(format!("{FILES_DIR}/scriptlet"));
        }
        let cmd = cmd.args(&inv.args).stdin_bytes(inv.stdin.clone()).env("HOME", "/root").env("LC_ALL", "C");
        let out = strata_sandbox::run(root, &cmd).map_err(|e| e.to_string())?;
        let mut output = String::from_utf8_lossy(&out.stdout).into_owned();
        output.push_str(&String::from_utf8_lossy(&out.stderr));
        Ok(ScriptOutcome { success: out.status.success(), status: out.status.to_string(), output })
    }
}
