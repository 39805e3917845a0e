//! The scriptlet runner: each scriptlet in its own namespaces, chrooted into the image root.

use std::path::Path;
use strata_install::{ScriptInvocation, ScriptOutcome, ScriptRunner};

pub struct SandboxRunner;

impl SandboxRunner {
    pub fn new() -> anyhow::Result<SandboxRunner> {
        anyhow::bail!("scriptlet sandbox not wired yet")
    }
}

impl ScriptRunner for SandboxRunner {
    fn run(&self, _root: &Path, _inv: &ScriptInvocation<'_>) -> Result<ScriptOutcome, String> {
        Err("not wired".into())
    }
}
