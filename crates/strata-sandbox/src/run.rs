//! Spawning the sandbox, feeding and draining its pipes, waiting with a timeout.

use crate::child::{decode_report, Plan, Step};
use crate::root::{find_program, Mountpoints};
use crate::{Command, Error, ExitStatus, Output};
use rustix::event::{PollFd, PollFlags, Timespec};
use rustix::pipe::PipeFlags;
use rustix::process::{Pid, PidfdFlags};
use std::ffi::CString;
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Runs `cmd` in `root` (see the crate docs) and returns once the program and every
/// process it started are gone. A program that fails is an `Ok` [`Output`] with its status;
/// an `Err` means it could not run to completion.
pub fn run(root: &Path, cmd: &Command) -> Result<Output, Error> {
    cmd.validate()?;
    let root = canonical_root(root)?;
    // A file handed over in FILES_DIR exists only inside the sandbox: exec will tell.
    if !cmd.runs_own_file() {
        find_program(&root, cmd.program())?;
    }
    let _mountpoints = Mountpoints::prepare(&root)?;
    let mut pause = Duration::from_millis(1);
    loop {
        let spawned = spawn(&root, cmd)?;
        // ETXTBSY: some process forked (in this or another thread) while the program's
        // file was open for writing, and holds that descriptor until it execs. Such a
        // process is a moment from exec, so the same spawn soon succeeds.
        if let Spawned::ExecFailed(e) = &spawned {
            if e.raw_os_error() == Some(libc::ETXTBSY) && pause < Duration::from_secs(1) {
                std::thread::sleep(pause);
                pause *= 2;
                continue;
            }
        }
        return finish(spawned, &root, cmd);
    }
}

fn finish(spawned: Spawned, root: &Path, cmd: &Command) -> Result<Output, Error> {
    match spawned {
        Spawned::Started(child) => collect(child, cmd),
        Spawned::SetupFailed(step, index, source) => Err(Error::Setup {
            step: step.describe(index, &root.display().to_string(), cmd),
            source,
        }),
        Spawned::ExecFailed(source) => Err(Error::Exec {
            program: cmd.program_lossy(),
            root: root.to_path_buf(),
            source,
        }),
    }
}

/// Proves that this machine lets strata run sandboxes: enters every namespace, mounts,
/// chroots into an empty scratch root and gets as far as exec. The error names the step
/// that failed, e.g. `unshare(CLONE_NEWNS): Operation not permitted` when not root.
pub fn check_available() -> Result<(), Error> {
    let scratch = Scratch::new()?;
    let _mountpoints = Mountpoints::prepare(&scratch.0)?;
    // Nothing to exec in an empty root: exec's ENOENT comes only after every step worked.
    let cmd = Command::new("/.strata-sandbox-probe");
    match spawn(&scratch.0, &cmd)? {
        Spawned::Started(mut child) => {
            let _ = child.wait();
            Ok(())
        }
        Spawned::ExecFailed(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(()),
        Spawned::ExecFailed(source) => Err(Error::Setup {
            step: "exec in an empty probe root".into(),
            source,
        }),
        Spawned::SetupFailed(step, index, source) => Err(Error::Setup {
            step: step.describe(index, &scratch.0.display().to_string(), &cmd),
            source,
        }),
    }
}

fn canonical_root(root: &Path) -> Result<PathBuf, Error> {
    let bad = |problem: String| Error::BadRoot {
        root: root.to_path_buf(),
        problem,
    };
    let canonical = std::fs::canonicalize(root).map_err(|e| bad(e.to_string()))?;
    if !canonical.is_dir() {
        return Err(bad("not a directory".into()));
    }
    Ok(canonical)
}

enum Spawned {
    Started(Child),
    SetupFailed(Step, usize, io::Error),
    ExecFailed(io::Error),
}

fn spawn(root: &Path, cmd: &Command) -> Result<Spawned, Error> {
    let croot = CString::new(root.as_os_str().as_bytes()).map_err(|_| Error::BadRoot {
        root: root.to_path_buf(),
        problem: "path contains a NUL byte".into(),
    })?;
    // Non-blocking: the record, if any, is written before std's spawn returns.
    let (report, report_w) = rustix::pipe::pipe_with(PipeFlags::CLOEXEC | PipeFlags::NONBLOCK)
        .map_err(|e| Error::io("create the sandbox report pipe")(e.into()))?;
    let plan = Plan::new(&croot, cmd, report_w);
    let mut command = std::process::Command::new(cmd.program());
    command
        .args(&cmd.argv[1..])
        .env_clear()
        .envs(cmd.env.iter().map(|(k, v)| (k, v)))
        .stdin(if cmd.stdin.is_empty() {
            Stdio::null()
        } else {
            Stdio::piped()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // SAFETY: `enter` makes only raw syscalls on memory prepared before the fork.
    unsafe {
        command.pre_exec(move || plan.enter());
    }
    let spawned = command.spawn();
    // Drops the plan, and with it this process's write end of the report pipe.
    drop(command);
    match spawned {
        Ok(child) => Ok(Spawned::Started(child)),
        Err(e) => {
            let mut record = [0u8; 6];
            let got = rustix::io::read(&report, &mut record).unwrap_or(0);
            Ok(match decode_report(&record[..got]) {
                Some((step, index, source)) => Spawned::SetupFailed(step, index, source),
                None if e.raw_os_error().is_some() => Spawned::ExecFailed(e),
                // Not from the child at all (std could not fork, make pipes, ...).
                None => return Err(Error::io("spawn the sandbox")(e)),
            })
        }
    }
}

/// Feeds stdin and drains stdout and stderr in threads, so that no pipe can fill up and
/// stall the program, while this thread waits with the timeout.
fn collect(mut child: Child, cmd: &Command) -> Result<Output, Error> {
    let stdin = child.stdin.take();
    let mut stdout = child.stdout.take().expect("piped");
    let mut stderr = child.stderr.take().expect("piped");
    std::thread::scope(|s| {
        let writer = stdin.map(|mut pipe| {
            s.spawn(move || {
                // A program that stops reading closes the pipe: not an error.
                let _ = pipe.write_all(&cmd.stdin);
            })
        });
        let out = s.spawn(move || drain(&mut stdout));
        let err = s.spawn(move || drain(&mut stderr));
        let waited = wait_timeout(&mut child, cmd.timeout);
        let status = match waited {
            Ok(Some(status)) => Ok(status),
            Ok(None) => Err(Error::Timeout {
                program: cmd.program_lossy(),
                timeout: cmd.timeout,
            }),
            Err(e) => Err(Error::io(format!("wait for {}", cmd.program_lossy()))(e)),
        };
        if status.is_err() {
            // The middle process's death kills pid 1, and pid 1's the whole namespace.
            let _ = child.kill();
            let _ = child.wait();
        }
        // The pipes reach end of file only when every process in the namespace is gone,
        // so after these joins nothing of the run is left.
        if let Some(w) = writer {
            let _ = w.join();
        }
        let stdout = out.join().expect("stdout reader");
        let stderr = err.join().expect("stderr reader");
        let status = status?;
        let status = ExitStatus {
            code: status.code(),
            signal: status.signal(),
        };
        Ok(Output {
            status,
            stdout: stdout.map_err(Error::io("read stdout"))?,
            stderr: stderr.map_err(Error::io("read stderr"))?,
        })
    })
}

fn drain(pipe: &mut impl Read) -> io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    pipe.read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// `None` once `timeout` has passed without the child ending.
fn wait_timeout(
    child: &mut Child,
    timeout: Duration,
) -> io::Result<Option<std::process::ExitStatus>> {
    let deadline = Instant::now().checked_add(timeout);
    // A pidfd becomes readable when the process ends: no need to look every few ms.
    let pidfd = rustix::process::pidfd_open(Pid::from_child(child), PidfdFlags::empty()).ok();
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Some(status));
        }
        let left = deadline.map_or(Duration::MAX, |d| {
            d.saturating_duration_since(Instant::now())
        });
        if left.is_zero() {
            return Ok(None);
        }
        match &pidfd {
            Some(fd) => {
                let slice = left.min(Duration::from_secs(3600));
                let ts = Timespec {
                    tv_sec: slice.as_secs() as _,
                    tv_nsec: slice.subsec_nanos() as _,
                };
                match rustix::event::poll(&mut [PollFd::new(fd, PollFlags::IN)], Some(&ts)) {
                    Ok(_) | Err(rustix::io::Errno::INTR) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            // Kernels before 5.3 have no pidfd.
            None => std::thread::sleep(left.min(Duration::from_millis(20))),
        }
    }
}

/// An empty, private scratch root for [`check_available`], removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Result<Scratch, Error> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let base = std::env::temp_dir();
        loop {
            let n = COUNTER.fetch_add(1, Ordering::Relaxed);
            let dir = base.join(format!("strata-sandbox-probe-{}-{n}", std::process::id()));
            match std::fs::create_dir(&dir) {
                Ok(()) => return Ok(Scratch(dir)),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(Error::io(format!("create {}", dir.display()))(e)),
            }
        }
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
