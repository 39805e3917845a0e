//! The OCI executor: the prepared run as a bundle (`config.json` in the run directory,
//! `root.path` the image root itself), run by `runc` or `crun` with a state directory of
//! strata's own, so nothing collides with docker's or podman's containers.

mod middle;
pub(crate) mod probe;

use crate::cgroup::{limit_error, RunCgroup};
use crate::collect::{collect, wait_timeout};
use crate::report::{self, Tag};
use crate::rundir::{owner_is_gone, private_dir_all};
use crate::spec::Prepared;
use crate::{oci, Command, Error, ExitStatus, Output};
use middle::Supervisor;
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::Duration;

/// Where a runtime named without a path is looked for, after `PATH`: runc lives in
/// `/usr/sbin`, which a non-login root shell's `PATH` may lack.
const SEARCH: [&str; 6] = [
    "/usr/local/sbin",
    "/usr/local/bin",
    "/usr/sbin",
    "/usr/bin",
    "/sbin",
    "/bin",
];

/// How long a killed program's namespace may take to end before its supervisor is killed.
const GRACE: Duration = Duration::from_secs(10);

#[derive(Clone, Debug)]
pub(crate) struct Runtime {
    /// Absolute.
    pub(crate) path: PathBuf,
    /// Its file name: names its state directory and its messages.
    pub(crate) name: String,
}

impl Runtime {
    /// `program` is a path, or a name looked for in `PATH` and [`SEARCH`].
    pub(crate) fn locate(program: &Path) -> Result<Runtime, Error> {
        let by_path = program.as_os_str().as_bytes().contains(&b'/');
        let missing = || Error::RuntimeNotFound {
            runtime: program.to_path_buf(),
            source: std::io::Error::new(
                std::io::ErrorKind::NotFound,
                if by_path {
                    "no such file".to_string()
                } else {
                    format!("not found in PATH or {}", SEARCH.join(":"))
                },
            ),
        };
        let found = if by_path {
            program.is_file().then(|| program.to_path_buf())
        } else {
            let path = std::env::var_os("PATH").unwrap_or_default();
            std::env::split_paths(&path)
                .chain(SEARCH.iter().map(PathBuf::from))
                .map(|d| d.join(program))
                .find(|p| p.is_file())
        };
        let path = found.ok_or_else(missing)?;
        let path = std::fs::canonicalize(&path).map_err(|source| Error::RuntimeNotFound {
            runtime: path.clone(),
            source,
        })?;
        let name = program
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .ok_or_else(missing)?;
        Ok(Runtime { path, name })
    }

    /// The runtime's `--root`: its container state, strata's alone.
    fn state_root(&self, state: &Path) -> PathBuf {
        state.join("runtimes").join(&self.name)
    }

    fn command(&self, state: &Path) -> std::process::Command {
        let mut c = std::process::Command::new(&self.path);
        c.arg("--root")
            .arg(self.state_root(state))
            .env_clear()
            .env("PATH", SEARCH.join(":"));
        c
    }

    pub(crate) fn run(&self, root: &Path, cmd: &Command, state: &Path) -> Result<Output, Error> {
        let prepared = Prepared::new(root, cmd, state, false)?;
        self.run_prepared(&prepared, state)
    }

    pub(crate) fn run_prepared(&self, p: &Prepared, state: &Path) -> Result<Output, Error> {
        let dir = p.run_dir.path();
        let id = p.run_dir.id();
        let config = dir.join("config.json");
        oci::config(p)?.save(&config).map_err(|e| {
            Error::io(format!("write {}", config.display()))(std::io::Error::other(e))
        })?;
        private_dir_all(&self.state_root(state))?;
        let (report, report_w) = report::pipe()?;
        let pid_file = dir.join("pid");
        let supervisor = Supervisor {
            parent: rustix::process::getpid(),
            report: report_w,
            pid_file: CString::new(pid_file.as_os_str().as_bytes()).expect("no NUL in our paths"),
        };
        let mut command = self.command(state);
        command
            .arg("--log")
            .arg(dir.join("runtime.log"))
            .args(["--log-format", "json", "run", "--detach", "--bundle"])
            .arg(dir)
            .arg("--pid-file")
            .arg(&pid_file)
            .arg(id)
            .stdin(if p.cmd.stdin.is_empty() {
                Stdio::null()
            } else {
                Stdio::piped()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        // SAFETY: `enter` makes only raw syscalls on memory prepared before the fork.
        unsafe {
            command.pre_exec(move || supervisor.enter());
        }
        let spawned = command.spawn();
        drop(command);
        let child = match spawned {
            Ok(child) => child,
            Err(e) => return Err(self.spawn_error(e, report.read())),
        };
        let mut deleted = Ok(());
        let cgroup = RunCgroup::of_runtime(id);
        let collected = collect(
            child,
            &p.cmd.stdin,
            p.cmd.timeout,
            p.cmd.cancel.as_deref(),
            &cgroup,
            &mut |c: &mut Child| self.stop(state, id, c),
            // Whatever happened, the container's state and cgroups go now (and with them
            // anything of it that could still hold the pipes); the bundle goes with the
            // run directory.
            &mut || deleted = self.delete(state, id),
        );
        let c = collected.map_err(Error::io(format!("run {}", p.cmd.program_lossy())))?;
        deleted?;
        if c.canceled {
            return Err(Error::Canceled {
                program: p.cmd.program_lossy(),
            });
        }
        if let Some(kind) = c.limit {
            return Err(limit_error(p.cmd.program_lossy(), kind, &p.cmd.limits));
        }
        if c.status.is_none() {
            return Err(Error::Timeout {
                program: p.cmd.program_lossy(),
                timeout: p.cmd.timeout,
            });
        }
        match report.read() {
            Some((Tag::Exited, _, raw)) => {
                let status = ExitStatus::from_wait_status(raw);
                if let Some(kind) = c.counters.reached() {
                    return Err(limit_error(p.cmd.program_lossy(), kind, &p.cmd.limits));
                }
                Ok(Output {
                    status,
                    stdout: c.stdout,
                    stderr: c.stderr,
                })
            }
            Some((Tag::RuntimeFailed, why, value)) => Err(Error::Runtime {
                runtime: self.name.clone(),
                status: match why {
                    middle::EXITED => ExitStatus::from_wait_status(value),
                    _ => ExitStatus {
                        code: None,
                        signal: None,
                    },
                },
                message: failure_message(why, value, dir, &c.stdout, &c.stderr),
            }),
            _ => Err(Error::Runtime {
                runtime: self.name.clone(),
                status: ExitStatus {
                    code: None,
                    signal: None,
                },
                message: "its supervisor ended without a report".into(),
            }),
        }
    }

    fn spawn_error(&self, e: std::io::Error, report: Option<(Tag, u32, i32)>) -> Error {
        match report {
            Some((Tag::RuntimeFailed, middle::SETUP, errno)) => Error::Setup {
                step: format!("start a supervisor for {}", self.name),
                source: std::io::Error::from_raw_os_error(errno),
            },
            _ if e.kind() == std::io::ErrorKind::NotFound => Error::RuntimeNotFound {
                runtime: self.path.clone(),
                source: e,
            },
            _ => Error::io(format!("spawn {}", self.path.display()))(e),
        }
    }

    /// Kills the program's pid 1, whose death ends its namespace; the supervisor then
    /// reaps it and exits. Until the runtime has made the container, `kill` finds
    /// nothing: it is tried again until the grace period is over, and then the
    /// supervisor (and with it the runtime) is killed, leaving the rest to `delete`.
    fn stop(&self, state: &Path, id: &str, supervisor: &mut Child) {
        let start = std::time::Instant::now();
        while start.elapsed() < GRACE {
            let _ = self
                .command(state)
                .args(["kill", id, "KILL"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
            if matches!(
                wait_timeout(supervisor, Duration::from_millis(200)),
                Ok(Some(_))
            ) {
                return;
            }
        }
        let _ = supervisor.kill();
    }

    /// `delete --force`, which also kills what is left; fine when there is nothing.
    fn delete(&self, state: &Path, id: &str) -> Result<(), Error> {
        let out = self
            .command(state)
            .args(["delete", "--force", id])
            .stdin(Stdio::null())
            .output()
            .map_err(Error::io(format!("run {} delete", self.path.display())))?;
        if self.state_root(state).join(id).exists() {
            return Err(Error::Runtime {
                runtime: self.name.clone(),
                status: ExitStatus::from_wait_status(0),
                message: format!(
                    "delete --force {id} left its state: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                ),
            });
        }
        Ok(())
    }

    /// Deletes the containers of strata processes that died without cleaning up.
    pub(crate) fn sweep(&self, state: &Path) {
        let Ok(entries) = std::fs::read_dir(self.state_root(state)) else {
            return;
        };
        for e in entries.flatten() {
            let id = e.file_name().to_string_lossy().into_owned();
            if owner_is_gone(&id) {
                let _ = self.delete(state, &id);
            }
        }
    }
}

/// What the runtime said: its stderr (where runc and crun print the error that stopped
/// them), else the errors of its JSON log.
fn failure_message(why: u32, value: i32, dir: &Path, stdout: &[u8], stderr: &[u8]) -> String {
    let said = String::from_utf8_lossy(stderr).trim().to_string();
    let said = if said.is_empty() {
        let log = std::fs::read_to_string(dir.join("runtime.log")).unwrap_or_default();
        log.lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|v| v["level"] == "error")
            .filter_map(|v| v["msg"].as_str().map(str::to_string))
            .collect::<Vec<_>>()
            .join("; ")
    } else {
        said
    };
    let out = String::from_utf8_lossy(stdout).trim().to_string();
    let said = [said, out]
        .into_iter()
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join("; ");
    let what = match why {
        middle::EXITED => String::new(),
        middle::NO_PID_FILE => "it wrote no pid file; ".into(),
        _ => format!("its supervisor lost track of it (errno {value}); "),
    };
    if said.is_empty() {
        format!("{what}it said nothing")
    } else {
        format!("{what}{said}")
    }
}
