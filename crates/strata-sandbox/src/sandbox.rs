//! Choosing an executor, once, and running commands with it.

use crate::rundir::{sweep_runs, DEFAULT_STATE_DIR};
use crate::runtime::{probe::probe, Runtime};
use crate::{builtin, Command, Error, Output};
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The runtimes [`Backend::Auto`] tries, in order.
pub const AUTO_RUNTIMES: [&str; 2] = ["crun", "runc"];

/// How a [`Sandbox`] runs programs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Backend {
    /// The first of [`AUTO_RUNTIMES`] that a probe run proves working here, else
    /// [`Backend::Builtin`].
    Auto,
    /// This OCI runtime (a path, or a name looked for in `PATH`, `/usr/sbin`, ...), which
    /// must pass the probe.
    Runtime(PathBuf),
    /// Strata's own namespace code: no other program involved.
    Builtin,
}

/// What a [`Sandbox`] ended up with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Executor {
    /// The OCI runtime at this (canonical) path.
    Runtime(PathBuf),
    Builtin,
}

#[derive(Debug)]
enum Inner {
    Runtime(Runtime),
    Builtin,
}

/// Runs [`Command`]s in image roots with one executor. Both executors realize the same
/// description (see [`Command`]); they differ in cost and in who does the work.
#[derive(Debug)]
pub struct Sandbox {
    inner: Inner,
    state: PathBuf,
    notes: Vec<String>,
}

impl Sandbox {
    /// With the run state in [`DEFAULT_STATE_DIR`].
    pub fn new(backend: Backend) -> Result<Sandbox, Error> {
        Sandbox::with_state_dir(backend, DEFAULT_STATE_DIR)
    }

    /// Keeps every run's private directory and the runtime's container state under
    /// `state` (created mode 0700). Leftovers there of strata processes that were killed
    /// are removed, once per process. A runtime's probe result is kept for the process.
    pub fn with_state_dir(backend: Backend, state: impl Into<PathBuf>) -> Result<Sandbox, Error> {
        let state = state.into();
        let mut notes = Vec::new();
        let inner = match backend {
            Backend::Builtin => {
                builtin::check(&state)?;
                Inner::Builtin
            }
            Backend::Runtime(program) => {
                let runtime = Runtime::locate(&program)?;
                sweep_once(&state, Some(&runtime));
                probed(&runtime, &state).map_err(|reason| Error::RuntimeUnusable {
                    runtime: runtime.path.clone(),
                    reason,
                })?;
                Inner::Runtime(runtime)
            }
            Backend::Auto => {
                let mut chosen = None;
                for name in AUTO_RUNTIMES {
                    let runtime = match Runtime::locate(Path::new(name)) {
                        Ok(r) => r,
                        Err(_) => {
                            notes.push(format!("{name}: not installed"));
                            continue;
                        }
                    };
                    sweep_once(&state, Some(&runtime));
                    match probed(&runtime, &state) {
                        Ok(()) => {
                            chosen = Some(runtime);
                            break;
                        }
                        Err(why) => notes.push(format!("{}: {why}", runtime.path.display())),
                    }
                }
                match chosen {
                    Some(runtime) => Inner::Runtime(runtime),
                    None => {
                        builtin::check(&state)?;
                        Inner::Builtin
                    }
                }
            }
        };
        sweep_once(&state, None);
        notes.extend(crate::cgroup::unenforced_here());
        Ok(Sandbox {
            inner,
            state,
            notes,
        })
    }

    /// Runs `cmd` in `root` and returns once the program and every process it started are
    /// gone. A program that fails is an `Ok` [`Output`] with its status; an `Err` means it
    /// could not run to completion.
    pub fn run(&self, root: &Path, cmd: &Command) -> Result<Output, Error> {
        match &self.inner {
            Inner::Runtime(r) => r.run(root, cmd, &self.state),
            Inner::Builtin => builtin::run(root, cmd, &self.state),
        }
    }

    pub fn executor(&self) -> Executor {
        match &self.inner {
            Inner::Runtime(r) => Executor::Runtime(r.path.clone()),
            Inner::Builtin => Executor::Builtin,
        }
    }

    /// Why [`Backend::Auto`] passed over runtimes (`crun: ... cgroups in hybrid mode not
    /// supported`), and limits this machine cannot enforce (no writable cgroup controller),
    /// for a log line.
    pub fn notes(&self) -> &[String] {
        &self.notes
    }
}

/// The probe's verdict for `runtime`, run once per process.
fn probed(runtime: &Runtime, state: &Path) -> Result<(), String> {
    static VERDICTS: Mutex<Vec<(PathBuf, Result<(), String>)>> = Mutex::new(Vec::new());
    let mut verdicts = VERDICTS.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, v)) = verdicts.iter().find(|(p, _)| *p == runtime.path) {
        return v.clone();
    }
    let verdict = probe(runtime, state);
    verdicts.push((runtime.path.clone(), verdict.clone()));
    verdict
}

/// Removes what killed strata processes left under `state`: a runtime's containers, and
/// then the run directories.
fn sweep_once(state: &Path, runtime: Option<&Runtime>) {
    static SWEPT: Mutex<Option<HashMap<PathBuf, HashSet<String>>>> = Mutex::new(None);
    let mut swept = SWEPT.lock().unwrap_or_else(|e| e.into_inner());
    let seen = swept
        .get_or_insert_with(HashMap::new)
        .entry(state.to_path_buf())
        .or_default();
    let key = runtime.map_or_else(String::new, |r| r.path.display().to_string());
    if !seen.insert(key) {
        return;
    }
    match runtime {
        Some(r) => r.sweep(state),
        None => {
            sweep_runs(state);
            crate::cgroup::sweep(crate::rundir::owner_is_gone);
        }
    }
}

/// Runs `cmd` in `root` with strata's own namespace code (see [`Backend::Builtin`]),
/// keeping its state in [`DEFAULT_STATE_DIR`].
pub fn run(root: &Path, cmd: &Command) -> Result<Output, Error> {
    builtin::run(root, cmd, Path::new(DEFAULT_STATE_DIR))
}

/// Proves that this machine lets strata run sandboxes of its own: enters every namespace,
/// mounts, chroots into an empty scratch root and gets as far as exec. The error names the
/// step that failed, e.g. `unshare(CLONE_NEWNS): Operation not permitted` when not root.
pub fn check_available() -> Result<(), Error> {
    builtin::check(Path::new(DEFAULT_STATE_DIR))
}
