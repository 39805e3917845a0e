//! A run's own cgroup: where its process and memory limits are enforced, and where the
//! kernel counts whether they were hit.
//!
//! `RLIMIT_NPROC` does not hold for root (the kernel exempts uid 0 and `CAP_SYS_RESOURCE`),
//! and it counts a user's processes host-wide; only a cgroup bounds exactly the processes
//! of one run. The namespace executor makes the cgroup itself, under strata's own cgroup
//! (so any limit strata runs under still applies), and the run's first process joins it
//! before it forks anything; an OCI runtime makes its own from `linux.resources`, named
//! after the container id under the runtime's (= strata's) cgroup, where this module
//! finds it to read the counters.
//!
//! Both cgroup versions: v1 (`/sys/fs/cgroup/pids`, `/sys/fs/cgroup/memory`, as on hybrid
//! hosts) and v2 (`/sys/fs/cgroup` unified with the controllers enabled). A controller that
//! is missing or not writable leaves that limit unenforced; [`RunCgroup::unenforced`] says
//! which and why, and the caller reports it.

use crate::{Error, Limits};
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const ROOT: &str = "/sys/fs/cgroup";

/// Which limit a run reached.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LimitKind {
    /// It tried to have more processes than [`Limits::pids`].
    Processes,
    /// The kernel killed one of its processes for memory ([`Limits::memory`]).
    Memory,
}

impl std::fmt::Display for LimitKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            LimitKind::Processes => "process",
            LimitKind::Memory => "memory",
        })
    }
}

/// The directories of one run's cgroup, per controller.
#[derive(Debug, Default)]
pub(crate) struct RunCgroup {
    pids: Option<PathBuf>,
    memory: Option<PathBuf>,
    v2: bool,
    /// Made here, so removed here (a runtime removes its own).
    created: Vec<PathBuf>,
    /// Limits that could not be set, with the reason.
    unenforced: Vec<String>,
}

/// The memory limit when none is given: half of the machine's memory.
pub(crate) fn default_memory() -> u64 {
    let total_kib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .unwrap_or(8 << 20);
    total_kib * 1024 / 2
}

/// strata's own cgroup in the hierarchy holding `controller` (v1), or in the unified one.
fn own(controller: &str) -> Option<(PathBuf, bool)> {
    let text = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let unified = Path::new(ROOT).join("cgroup.controllers");
    for line in text.lines() {
        let mut parts = line.splitn(3, ':');
        let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
        let rel = path.trim_start_matches('/');
        if controllers.split(',').any(|c| c == controller) {
            let dir = Path::new(ROOT).join(controller).join(rel);
            if dir.join("cgroup.procs").is_file() {
                return Some((dir, false));
            }
        }
        if controllers.is_empty() && unified.is_file() {
            let enabled = std::fs::read_to_string(&unified).unwrap_or_default();
            if enabled.split_whitespace().any(|c| c == controller) {
                return Some((Path::new(ROOT).join(rel), true));
            }
        }
    }
    None
}

impl RunCgroup {
    /// Makes cgroup `name` for a run under strata's own and writes the limits into it.
    pub(crate) fn create(name: &str, limits: &Limits) -> RunCgroup {
        let mut cg = RunCgroup::default();
        let memory = limits.memory.unwrap_or_else(default_memory);
        for controller in ["pids", "memory"] {
            let Some((parent, v2)) = own(controller) else {
                cg.unenforced
                    .push(format!("no writable {controller} cgroup controller"));
                continue;
            };
            let dir = parent.join(name);
            let made = if cg.created.contains(&dir) {
                Ok(())
            } else {
                std::fs::create_dir(&dir).map(|()| cg.created.push(dir.clone()))
            };
            if v2 {
                // The parent passes the controller down (harmless if it already does).
                let _ = std::fs::write(
                    parent.join("cgroup.subtree_control"),
                    format!("+{controller}"),
                );
            }
            let written = made.and_then(|()| match (controller, v2) {
                ("pids", _) => std::fs::write(dir.join("pids.max"), limits.pids.to_string()),
                (_, false) => {
                    std::fs::write(dir.join("memory.limit_in_bytes"), memory.to_string())?;
                    // Swap counts too where the kernel accounts it, so a limit means RAM
                    // plus swap rather than paging the host to death.
                    let memsw = dir.join("memory.memsw.limit_in_bytes");
                    if memsw.exists() {
                        std::fs::write(memsw, memory.to_string())?;
                    }
                    Ok(())
                }
                (_, true) => {
                    std::fs::write(dir.join("memory.max"), memory.to_string())?;
                    let _ = std::fs::write(dir.join("memory.swap.max"), "0");
                    Ok(())
                }
            });
            match written {
                Ok(()) => {
                    cg.v2 |= v2;
                    match controller {
                        "pids" => cg.pids = Some(dir),
                        _ => cg.memory = Some(dir),
                    }
                }
                Err(e) => cg
                    .unenforced
                    .push(format!("{controller} cgroup {}: {e}", dir.display())),
            }
        }
        cg
    }

    /// Where an OCI runtime puts container `id`'s cgroups when `config.json` names none:
    /// under its own cgroup, which is strata's, in each hierarchy (seen with runc 1.1).
    pub(crate) fn of_runtime(id: &str) -> RunCgroup {
        let mut cg = RunCgroup::default();
        if let Some((parent, v2)) = own("pids") {
            cg.pids = Some(parent.join(id));
            cg.v2 |= v2;
        }
        if let Some((parent, v2)) = own("memory") {
            cg.memory = Some(parent.join(id));
            cg.v2 |= v2;
        }
        cg
    }

    /// The `cgroup.procs` files the run's first process writes `0` to, joining the cgroup
    /// before it starts anything.
    pub(crate) fn procs_files(&self) -> Vec<CString> {
        let mut files: Vec<CString> = Vec::new();
        for dir in [&self.pids, &self.memory].into_iter().flatten() {
            let f = CString::new(dir.join("cgroup.procs").as_os_str().as_bytes())
                .expect("no NUL in cgroup paths");
            if !files.contains(&f) {
                files.push(f);
            }
        }
        files
    }


    /// The kernel's counters so far: forks refused at the process limit, processes killed
    /// for memory.
    pub(crate) fn counters(&self) -> Counters {
        let counter = |dir: &Option<PathBuf>, file: &str, key: &str| {
            let text = std::fs::read_to_string(dir.as_ref()?.join(file)).ok()?;
            text.lines()
                .find_map(|l| l.strip_prefix(key))
                .and_then(|v| v.trim().parse::<u64>().ok())
        };
        let memory_file = if self.v2 {
            "memory.events"
        } else {
            "memory.oom_control"
        };
        Counters {
            refused_forks: counter(&self.pids, "pids.events", "max ").unwrap_or(0),
            oom_kills: counter(&self.memory, memory_file, "oom_kill ").unwrap_or(0),
        }
    }
}

/// See [`RunCgroup::counters`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Counters {
    pub(crate) refused_forks: u64,
    pub(crate) oom_kills: u64,
}

impl Counters {
    /// The limit a run that failed had reached, if any.
    pub(crate) fn reached(&self) -> Option<LimitKind> {
        if self.refused_forks > 0 {
            Some(LimitKind::Processes)
        } else if self.oom_kills > 0 {
            Some(LimitKind::Memory)
        } else {
            None
        }
    }
}

impl Drop for RunCgroup {
    /// Removes the cgroups made here. The run's processes are gone by now (its pid 1 has
    /// died, which kills the namespace), but the kernel may still be tearing them down:
    /// `EBUSY` is waited out briefly.
    fn drop(&mut self) {
        for dir in self.created.iter().rev() {
            let start = Instant::now();
            while let Err(e) = std::fs::remove_dir(dir) {
                if e.raw_os_error() != Some(libc::EBUSY) || start.elapsed() > Duration::from_secs(5)
                {
                    break;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }
}

/// Limits runs here would go without, and why: made once per process with a scratch
/// cgroup.
pub(crate) fn unenforced_here() -> Vec<String> {
    static ONCE: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    ONCE.get_or_init(|| {
        let name = format!("strata-probe-{}", std::process::id());
        let cg = RunCgroup::create(&name, &Limits::default());
        cg.unenforced
            .iter()
            .map(|why| format!("limits not enforced: {why}"))
            .collect()
    })
    .clone()
}

/// Removes the cgroups of runs whose strata process is gone (killed before it could).
pub(crate) fn sweep(is_gone: impl Fn(&str) -> bool) {
    for controller in ["pids", "memory"] {
        let Some((parent, _)) = own(controller) else {
            continue;
        };
        let Ok(entries) = std::fs::read_dir(&parent) else {
            continue;
        };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if is_gone(&name) {
                let _ = std::fs::remove_dir(e.path());
            }
        }
    }
}

/// Describes the limit reached, for [`Error::Limit`].
pub(crate) fn limit_error(program: String, kind: LimitKind, limits: &Limits) -> Error {
    let limit = match kind {
        LimitKind::Processes => format!("{} processes", limits.pids),
        LimitKind::Memory => {
            let bytes = limits.memory.unwrap_or_else(default_memory);
            format!("{} MiB of memory", bytes >> 20)
        }
    };
    Error::Limit {
        program,
        kind,
        limit,
    }
}
