//! Lua scriptlets (`-p <lua>`), run confined in the image root like shell scriptlets.
//!
//! rpm runs Lua embedded in its own process, which is why `filesystem`'s Lua `%pretrans`
//! works in a still-empty root: nothing has to be exec'd there. strata cannot interpret
//! Lua in its own process (it is multi-threaded and must stay outside the root), so each
//! Lua scriptlet goes to a fresh helper process of strata's own binary,
//! `strata __lua-scriptlet` ([`helper_main`]): single-threaded, its code and libraries
//! already loaded, it confines itself with `strata_sandbox::run_in_process` — the same
//! namespaces, pivot into the root, rlimits, capabilities, seccomp filter and cgroup
//! limits as a shell scriptlet's sandbox — and interprets the script there with
//! `strata-lua`. `posix.fork`/`posix.exec`/`rpm.execute` then run the image's programs in
//! that same confinement.
//!
//! The helper is found at `$STRATA_LUA_HELPER`, else `std::env::current_exe()` (the
//! `strata` binary that is composing); see docs/decisions.md. Request and answer travel
//! as JSON over the helper's stdin and stdout.

use crate::sandbox::scriptlet_command;
use serde::{Deserialize, Serialize};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use strata_install::{ScriptInvocation, ScriptOutcome};
use strata_sandbox::ExitStatus;

/// The hidden subcommand the helper is started with.
pub const HELPER_SUBCOMMAND: &str = "__lua-scriptlet";

#[derive(Serialize, Deserialize)]
struct Request {
    root: PathBuf,
    scriptlet: strata_lua::Scriptlet,
    /// Macros over rpm's standard ones (the image's), for `rpm.expand`.
    macros: Vec<(String, String)>,
}

#[derive(Serialize, Deserialize, Default)]
struct Answer {
    code: Option<i32>,
    signal: Option<i32>,
    stdout: String,
    stderr: String,
    /// The sandbox failed (setup, limit, timeout): not the script.
    error: Option<String>,
}

/// The helper binary: `$STRATA_LUA_HELPER`, else the running executable.
fn helper_path() -> Result<PathBuf, String> {
    match std::env::var_os("STRATA_LUA_HELPER") {
        Some(p) if !p.is_empty() => Ok(PathBuf::from(p)),
        _ => std::env::current_exe().map_err(|e| format!("cannot find strata's own executable to run a Lua scriptlet ({e}); set STRATA_LUA_HELPER to the strata binary")),
    }
}

/// Runs one Lua scriptlet through the helper. `Err` when the helper or its sandbox failed.
pub(crate) fn run(root: &Path, inv: &ScriptInvocation<'_>, macros: &[(String, String)], cancel: Option<&Arc<AtomicBool>>) -> Result<ScriptOutcome, String> {
    let files = (!inv.stdin.is_empty()).then(|| String::from_utf8_lossy(&inv.stdin).lines().map(str::to_string).collect());
    let request = Request {
        root: root.to_path_buf(),
        scriptlet: strata_lua::Scriptlet { name: format!("{}({})", inv.what, inv.package), body: inv.body.to_string(), args: inv.args.clone(), files },
        macros: macros.to_vec(),
    };
    let helper = helper_path()?;
    let mut child = std::process::Command::new(&helper)
        .arg(HELPER_SUBCOMMAND)
        // Nothing of strata's environment reaches the script: the helper sets the sandbox's.
        .env_clear()
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start the Lua helper {} {HELPER_SUBCOMMAND}: {e}", helper.display()))?;
    let body = serde_json::to_vec(&request).map_err(|e| e.to_string())?;
    let mut stdin = child.stdin.take().expect("piped");
    let writer = std::thread::spawn(move || stdin.write_all(&body));
    let mut stdout = child.stdout.take().expect("piped");
    let mut stderr = child.stderr.take().expect("piped");
    let reader = std::thread::spawn(move || {
        let mut b = Vec::new();
        let _ = stderr.read_to_end(&mut b);
        b
    });
    let canceled = Arc::new(AtomicBool::new(false));
    // A canceled compose kills the helper: its sandbox dies with it (parent-death signals).
    let watcher = cancel.map(|flag| {
        let (flag, canceled, pid) = (flag.clone(), canceled.clone(), child.id());
        let done = Arc::new(AtomicBool::new(false));
        let d = done.clone();
        let t = std::thread::spawn(move || {
            while !d.load(Ordering::Relaxed) {
                if flag.load(Ordering::Relaxed) {
                    canceled.store(true, Ordering::Relaxed);
                    // The helper is our child and not yet reaped (done is unset).
                    if let Some(pid) = rustix::process::Pid::from_raw(pid as i32) {
                        let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
                    }
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        });
        (done, t)
    });
    let mut out = Vec::new();
    let read = stdout.read_to_end(&mut out);
    let status = child.wait();
    if let Some((done, t)) = watcher {
        done.store(true, Ordering::Relaxed);
        let _ = t.join();
    }
    let _ = writer.join();
    let err_text = String::from_utf8_lossy(&reader.join().unwrap_or_default()).into_owned();
    if canceled.load(Ordering::Relaxed) {
        return Err("canceled".into());
    }
    read.map_err(|e| format!("reading the Lua helper's answer: {e}"))?;
    let status = status.map_err(|e| format!("waiting for the Lua helper: {e}"))?;
    let answer: Answer = serde_json::from_slice(&out).map_err(|_| format!("the Lua helper ended ({status}) without an answer: {}", err_text.trim()))?;
    if let Some(e) = answer.error {
        return Err(e);
    }
    let st = ExitStatus { code: answer.code, signal: answer.signal };
    let mut output = answer.stdout;
    output.push_str(&answer.stderr);
    Ok(ScriptOutcome { success: st.success(), status: st.to_string(), output })
}

/// `strata __lua-scriptlet`: reads a [`Request`] on stdin, runs it confined, writes the
/// [`Answer`] on stdout. Must be called before the process starts any thread.
pub fn helper_main() -> ExitCode {
    let mut input = Vec::new();
    let answer = match std::io::stdin().read_to_end(&mut input).map_err(|e| e.to_string()).and_then(|_| serde_json::from_slice::<Request>(&input).map_err(|e| format!("bad request: {e}"))) {
        Err(e) => Answer { error: Some(format!("Lua helper: {e}")), ..Answer::default() },
        Ok(req) => {
            // Never exec'd (the closure runs instead); the sandbox wants an absolute path.
            let cmd = scriptlet_command("/.strata-lua-scriptlet");
            let Request { root, scriptlet, macros } = req;
            let confined = strata_sandbox::run_in_process(&root, &cmd, move || match strata_lua::run(&scriptlet, strata_lua::Macros::standard(macros.clone())) {
                Ok(()) => 0,
                Err(e) => {
                    // rpm's words for a failed Lua scriptlet.
                    eprintln!("error: lua script failed: {e}");
                    1
                }
            });
            match confined {
                Ok(out) => Answer {
                    code: out.status.code,
                    signal: out.status.signal,
                    stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
                    stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
                    error: None,
                },
                Err(e) => Answer { error: Some(e.to_string()), ..Answer::default() },
            }
        }
    };
    let text = serde_json::to_vec(&answer).expect("plain data");
    match std::io::stdout().write_all(&text) {
        Ok(()) => ExitCode::SUCCESS,
        Err(_) => ExitCode::FAILURE,
    }
}
