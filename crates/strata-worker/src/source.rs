//! Checking out a build's source at its recorded commit: one bare clone per repository
//! (cached under the work dir, fetched again for each build), then `git archive` of the
//! commit into a fresh folder — no working tree is shared between builds.

use crate::job::{Job, JobEnd};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};

/// One lock per cached repository: two slots fetching into one bare repository at once
/// would race on its refs.
fn repo_lock(path: &Path) -> Arc<Mutex<()>> {
    static LOCKS: OnceLock<Mutex<HashMap<PathBuf, Arc<Mutex<()>>>>> = OnceLock::new();
    let mut map = LOCKS.get_or_init(Default::default).lock().unwrap_or_else(|e| e.into_inner());
    map.entry(path.to_path_buf()).or_default().clone()
}

pub fn git() -> Command {
    let mut c = Command::new("git");
    c.env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_SSH_COMMAND", "ssh -o BatchMode=yes")
        .args(["-c", "protocol.ext.allow=never", "-c", "protocol.fd.allow=never"])
        .stdin(Stdio::null());
    c
}

/// The source tree of the build at `dest` (the repository's root; the build's path is
/// inside it).
pub fn checkout(job: &Job, url: &str, commit: &str, dest: &Path) -> Result<(), JobEnd> {
    let key = hex_sha256(url.as_bytes());
    let cache = job.config.work_dir.join("git").join(format!("{}.git", &key[..16]));
    let lock = repo_lock(&cache);
    let _held = lock.lock().unwrap_or_else(|e| e.into_inner());
    if !cache.join("HEAD").exists() {
        std::fs::create_dir_all(&cache).map_err(|e| JobEnd::Failed(format!("{}: {e}", cache.display())))?;
        job.run_logged(git().args(["init", "-q", "--bare"]).arg(&cache), "git init")?;
    }
    let has_commit = || {
        git().arg("--git-dir").arg(&cache).args(["cat-file", "-e", &format!("{commit}^{{commit}}")]).stderr(Stdio::null()).status().is_ok_and(|s| s.success())
    };
    if !has_commit() {
        job.log(&format!("fetching {url}\n"));
        job.run_logged(
            git().arg("--git-dir").arg(&cache).args(["fetch", "-q", "--force", "--", url, "+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*"]),
            "git fetch",
        )?;
        if !has_commit() {
            // A commit no branch or tag reaches (any more): ask for it by id.
            job.run_logged(git().arg("--git-dir").arg(&cache).args(["fetch", "-q", "--", url, commit]), &format!("git fetch {commit}"))?;
        }
    }
    std::fs::create_dir_all(dest).map_err(|e| JobEnd::Failed(format!("{}: {e}", dest.display())))?;
    let archive = dest.with_extension("tar");
    job.run_logged(git().arg("--git-dir").arg(&cache).args(["archive", "--format=tar", "-o"]).arg(&archive).arg(commit), "git archive")?;
    let result = job.run_logged(Command::new("tar").arg("-xf").arg(&archive).arg("-C").arg(dest).arg("--no-same-owner"), "unpacking the source");
    let _ = std::fs::remove_file(&archive);
    result.map(|_| job.log(&format!("source: {url} at {commit}\n")))
}

pub fn hex_sha256(data: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(data))
}
