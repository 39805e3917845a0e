//! Sources at submit time: the URL, ref and path checked, and the ref resolved to the
//! commit that will be built (`git ls-remote`; a commit id is fetched to prove it exists).
//! A source that cannot be read is refused with git's own reason and nothing is queued.

use std::path::Path;
use std::time::Duration;
use tokio::process::Command;

/// How long git may take to answer at submit time.
const GIT_TIMEOUT: Duration = Duration::from_secs(60);

pub fn check_url(url: &str) -> Result<(), String> {
    if url.is_empty() || url.chars().count() > 2048 {
        return Err("source url: 1 to 2048 characters".into());
    }
    // A leading '-' would be read as an option; control characters have no place in a URL.
    if url.starts_with('-') || url.chars().any(|c| c.is_control() || c == ' ') {
        return Err(format!("source url {url:?}: not a URL git can clone"));
    }
    // git's remote helpers that run programs (ext::) are never allowed.
    if url.starts_with("ext::") || url.starts_with("fd::") {
        return Err(format!("source url {url:?}: the {} transport is not allowed", &url[..url.find("::").unwrap_or(0)]));
    }
    Ok(())
}

pub fn check_ref(r: &str) -> Result<(), String> {
    let ok = !r.is_empty()
        && r.len() <= 255
        && !r.starts_with('-')
        && !r.contains("..")
        && r.bytes().all(|b| b.is_ascii_alphanumeric() || b"/._-+".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(format!("ref {r:?}: a branch, tag or commit (letters, digits, /._-+)"))
    }
}

pub fn check_path(p: &str) -> Result<(), String> {
    let ok = !p.is_empty() && p.chars().count() <= 1024 && !p.starts_with('/') && p.split('/').all(|c| !c.is_empty() && c != ".." && c != ".") && !p.chars().any(char::is_control);
    if ok {
        Ok(())
    } else {
        Err(format!("path {p:?}: a relative folder inside the repository, without . or .. parts"))
    }
}

fn git() -> Command {
    let mut c = Command::new("git");
    c.env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_SSH_COMMAND", "ssh -o BatchMode=yes")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .args(["-c", "protocol.ext.allow=never", "-c", "protocol.fd.allow=never"])
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    c
}

async fn run(mut cmd: Command, what: &str) -> Result<String, String> {
    let out = match tokio::time::timeout(GIT_TIMEOUT, cmd.output()).await {
        Err(_) => return Err(format!("{what}: git did not answer within {} s", GIT_TIMEOUT.as_secs())),
        Ok(Err(e)) => return Err(format!("{what}: running git: {e}")),
        Ok(Ok(out)) => out,
    };
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
        return Err(format!("{what}: {}", lines[lines.len().saturating_sub(5)..].join("; ")));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn is_commit_id(r: &str) -> bool {
    (r.len() == 40 || r.len() == 64) && r.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The commit `r` (default: the remote HEAD) names in the repository at `url`.
pub async fn resolve(url: &str, r: Option<&str>, cache: &Path) -> Result<String, String> {
    let want = r.unwrap_or("HEAD");
    let mut cmd = git();
    cmd.args(["ls-remote", "--", url]);
    let listing = run(cmd, &format!("cannot read git repository {url}")).await?;
    let refs: Vec<(&str, &str)> = listing.lines().filter_map(|l| l.split_once('\t')).collect();
    // An annotated tag's commit is the peeled entry (`^{}`); try exact names first, then
    // the places a short name can mean, as git rev-parse does.
    for name in [want.to_string(), format!("refs/tags/{want}"), format!("refs/heads/{want}")] {
        if let Some((sha, _)) = refs.iter().find(|(_, n)| *n == format!("{name}^{{}}")).or_else(|| refs.iter().find(|(_, n)| *n == name)) {
            return Ok(sha.to_string());
        }
    }
    if is_commit_id(want) {
        let want = want.to_ascii_lowercase();
        if refs.iter().any(|(sha, _)| *sha == want) {
            return Ok(want);
        }
        // Not a ref's tip: fetch it into a scratch repository to prove it exists.
        std::fs::create_dir_all(cache).map_err(|e| format!("{}: {e}", cache.display()))?;
        let scratch = tempfile::Builder::new().prefix("probe-").tempdir_in(cache).map_err(|e| format!("{}: {e}", cache.display()))?;
        let mut init = git();
        init.args(["init", "-q", "--bare"]).arg(scratch.path());
        run(init, "git init").await?;
        let mut fetch = git();
        fetch.arg("--git-dir").arg(scratch.path()).args(["fetch", "-q", "--depth=1", "--", url, &want]);
        run(fetch, &format!("commit {want} not found in {url}")).await?;
        return Ok(want);
    }
    Err(format!("ref {want} not found in {url} (it has {} refs)", refs.len()))
}

/// The tree of `commit` (only `path` inside it, when given) unpacked into `dest`, through
/// a bare copy of the repository cached under `cache` (fetched again only when it lacks
/// the commit).
pub async fn export(url: &str, commit: &str, path: Option<&str>, cache: &Path, dest: &Path) -> Result<(), String> {
    use sha2::Digest;
    let repo = cache.join(format!("{}.git", &hex::encode(sha2::Sha256::digest(url.as_bytes()))[..16]));
    if !repo.join("HEAD").exists() {
        std::fs::create_dir_all(&repo).map_err(|e| format!("{}: {e}", repo.display()))?;
        let mut init = git();
        init.args(["init", "-q", "--bare"]).arg(&repo);
        run(init, "git init").await?;
    }
    let mut has = git();
    has.arg("--git-dir").arg(&repo).args(["cat-file", "-e", &format!("{commit}^{{commit}}")]);
    if run(has, "git cat-file").await.is_err() {
        let mut fetch = git();
        fetch.arg("--git-dir").arg(&repo).args(["fetch", "-q", "--force", "--", url, "+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*"]);
        run(fetch, &format!("fetching {url}")).await?;
        let mut has = git();
        has.arg("--git-dir").arg(&repo).args(["cat-file", "-e", &format!("{commit}^{{commit}}")]);
        if run(has, "git cat-file").await.is_err() {
            let mut fetch = git();
            fetch.arg("--git-dir").arg(&repo).args(["fetch", "-q", "--", url, commit]);
            run(fetch, &format!("fetching {commit} from {url}")).await?;
        }
    }
    std::fs::create_dir_all(dest).map_err(|e| format!("{}: {e}", dest.display()))?;
    let archive = dest.join(".source.tar");
    let mut arch = git();
    arch.arg("--git-dir").arg(&repo).args(["archive", "--format=tar", "-o"]).arg(&archive).arg(commit);
    if let Some(p) = path {
        arch.arg("--").arg(p);
    }
    run(arch, "git archive").await?;
    let mut tar = Command::new("tar");
    tar.arg("-xf").arg(&archive).arg("-C").arg(dest).arg("--no-same-owner").kill_on_drop(true);
    let r = run(tar, "unpacking the source").await;
    let _ = std::fs::remove_file(&archive);
    r.map(drop)
}
