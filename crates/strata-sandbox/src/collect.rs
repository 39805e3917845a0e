//! Feeding stdin, draining stdout and stderr, and waiting with a deadline: the same for
//! both executors, whose spawned child is a helper that lives as long as the program.

use crate::cgroup::{Counters, LimitKind, RunCgroup};


/// Where a run's limit counters are read.
pub(crate) trait Watch {
    fn counters(&self) -> Counters;
}

impl Watch for RunCgroup {
    fn counters(&self) -> Counters {
        RunCgroup::counters(self)
    }
}
use rustix::event::{PollFd, PollFlags, Timespec};
use rustix::process::{Pid, PidfdFlags};
use std::io::{self, Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::process::Child;
use std::time::{Duration, Instant};

pub(crate) struct Collected {
    /// `None`: the deadline passed or a limit was reached, and `on_timeout` ended the
    /// helper.
    pub(crate) status: Option<std::process::ExitStatus>,
    /// Whether the run was ended because its cancel flag was set (`status` is then `None`).
    pub(crate) canceled: bool,
    /// The limit the run was ended for (`status` is then `None`).
    pub(crate) limit: Option<LimitKind>,
    /// The cgroup's counters once the helper ended: a run that reached a limit fails,
    /// whatever its status (a process of it was refused or killed).
    pub(crate) counters: Counters,
    pub(crate) stdout: Vec<u8>,
    pub(crate) stderr: Vec<u8>,
}

/// Feeds stdin and drains stdout and stderr in threads, so that no pipe can fill up and
/// stall the program, while this thread waits for the helper with the timeout. Once it is
/// past, `on_timeout` must make the helper and the program end; this then reaps the
/// helper. `after_exit` runs once the helper is reaped, whatever happened, before the
/// pipes are drained to their end: what it ends can then no longer hold them open.
/// Returns when the pipes are closed, i.e. when no process of the run holds them.
///
/// While it waits it watches `cancel` and the run's cgroup: a run that keeps hitting its process limit
/// (forks refused again and again, as in a fork bomb) is ended like a timeout.
pub(crate) fn collect(
    mut child: Child,
    stdin: &[u8],
    timeout: Duration,
    cancel: Option<&AtomicBool>,
    cgroup: &dyn Watch,
    on_timeout: &mut dyn FnMut(&mut Child),
    after_exit: &mut dyn FnMut(),
) -> io::Result<Collected> {
    let pipe_in = child.stdin.take();
    let mut stdout = child.stdout.take().expect("piped");
    let mut stderr = child.stderr.take().expect("piped");
    std::thread::scope(|s| {
        let writer = pipe_in.map(|mut pipe| {
            s.spawn(move || {
                // A program that stops reading closes the pipe: not an error.
                let _ = pipe.write_all(stdin);
            })
        });
        let out = s.spawn(move || drain(&mut stdout));
        let err = s.spawn(move || drain(&mut stderr));
        let mut limit = None;
        let mut canceled = false;
        let status = match wait_watching(&mut child, timeout, cancel, cgroup) {
            Ok(Waited::Exited(status)) => Ok(Some(status)),
            Ok(Waited::Deadline) => {
                on_timeout(&mut child);
                child.wait().map(|_| None)
            }
            Ok(Waited::Canceled) => {
                canceled = true;
                on_timeout(&mut child);
                child.wait().map(|_| None)
            }
            Ok(Waited::Limit(kind)) => {
                limit = Some(kind);
                on_timeout(&mut child);
                child.wait().map(|_| None)
            }
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                Err(e)
            }
        };
        // Read before `after_exit`, which may remove the cgroup (a runtime's delete).
        let counters = cgroup.counters();
        after_exit();
        if let Some(w) = writer {
            let _ = w.join();
        }
        let stdout = out.join().expect("stdout reader");
        let stderr = err.join().expect("stderr reader");
        Ok(Collected {
            status: status?,
            canceled,
            limit,
            counters,
            stdout: stdout?,
            stderr: stderr?,
        })
    })
}

fn drain(pipe: &mut impl Read) -> io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    pipe.read_to_end(&mut bytes)?;
    Ok(bytes)
}

enum Waited {
    Exited(std::process::ExitStatus),
    Deadline,
    Canceled,
    Limit(LimitKind),
}

/// How often the cgroup's counters are read while a run goes on.
const WATCH: Duration = Duration::from_millis(250);

/// Waits for the child until `timeout`, reading the cgroup's counters every [`WATCH`]: a
/// fork refused at the process limit ends the run (a program that reaches it is a fork
/// bomb or will fail in ways harder to read; the limit is there to be raised).
fn wait_watching(
    child: &mut Child,
    timeout: Duration,
    cancel: Option<&AtomicBool>,
    cgroup: &dyn Watch,
) -> io::Result<Waited> {
    let deadline = Instant::now().checked_add(timeout);
    loop {
        let left = deadline.map_or(Duration::MAX, |d| d.saturating_duration_since(Instant::now()));
        if left.is_zero() {
            return Ok(Waited::Deadline);
        }
        if let Some(status) = wait_timeout(child, left.min(WATCH))? {
            return Ok(Waited::Exited(status));
        }
        if cancel.is_some_and(|c| c.load(Ordering::SeqCst)) {
            return Ok(Waited::Canceled);
        }
        if cgroup.counters().refused_forks > 0 {
            return Ok(Waited::Limit(LimitKind::Processes));
        }
    }
}

/// `None` once `timeout` has passed without the child ending.
pub(crate) fn wait_timeout(
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
