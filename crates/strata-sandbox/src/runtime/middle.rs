//! The OCI executor's code between fork and exec: a supervisor for the runtime.
//!
//! `runc run` reports a program killed by signal N as exit code 128+N, which a program
//! can also exit with on its own (`exit 137`). So the runtime is started detached, by a
//! process that made itself a child subreaper: when `runc run --detach` exits, the
//! container's pid 1 becomes this process's child, and its real wait status comes back
//! on the report pipe.
//!
//! As in the namespace executor, std forks the *middle* process and runs [`Supervisor::
//! enter`] in it; the middle forks again and the grandchild returns, so std execs the
//! runtime there, with the pipes as its stdio, which it hands to the program.
//! Only async-signal-safe work here: raw syscalls on memory prepared before the fork.

use crate::forked::{default_signal_handling, errno, set_signal_mask};
use crate::report::{Report, Tag};
use rustix::fs::{Mode, OFlags};
use rustix::io::Errno;
use rustix::process::{Pid, Signal, WaitOptions};
use std::ffi::CString;
use std::io;
use std::sync::atomic::{AtomicI32, Ordering};

/// The runtime's and then the program's pid, for [`on_parent_death`]: statics of the
/// supervisor process (a forked copy of strata's memory, its own).
static RUNTIME: AtomicI32 = AtomicI32::new(0);
static PROGRAM: AtomicI32 = AtomicI32::new(0);

/// The supervisor's parent-death signal. The program is a child of the supervisor (a
/// subreaper), not of the runtime, so no death signal of its own reaches it: the
/// supervisor kills it, and with its pid 1 the whole namespace, before it dies itself.
/// Only `kill` and `_exit`: async-signal-safe.
extern "C" fn on_parent_death(_: libc::c_int) {
    for pid in [PROGRAM.load(Ordering::SeqCst), RUNTIME.load(Ordering::SeqCst)] {
        if pid > 0 {
            // SAFETY: plain syscalls.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }
    // SAFETY: plain syscall.
    unsafe { libc::_exit(1) }
}

/// Why the runtime is not followed by a program (`index` of a `RuntimeFailed` record).
pub(crate) const EXITED: u32 = 0;
pub(crate) const NO_PID_FILE: u32 = 1;
pub(crate) const LOST: u32 = 2;
pub(crate) const SETUP: u32 = 3;

pub(crate) struct Supervisor {
    /// The process that spawns, to notice if it died before the death signal was armed.
    pub(crate) parent: Pid,
    pub(crate) report: Report,
    /// Where `runc run --pid-file` writes the program's pid.
    pub(crate) pid_file: CString,
}

impl Supervisor {
    /// # Safety
    /// Only in a freshly forked child, between fork and exec.
    pub(crate) unsafe fn enter(&self) -> io::Result<()> {
        let fail = |e: Errno| {
            self.report
                .write(Tag::RuntimeFailed, SETUP, e.raw_os_error());
            io::Error::from_raw_os_error(e.raw_os_error())
        };
        // Strata's death ends the supervisor, after it killed the runtime and the program
        // (on_parent_death, armed below once signal handling is reset).
        rustix::process::set_parent_process_death_signal(Some(Signal::TERM)).map_err(fail)?;
        if rustix::process::getppid() != Some(self.parent) {
            return Err(fail(Errno::SRCH));
        }
        if libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1 as libc::c_ulong, 0, 0, 0) != 0 {
            return Err(fail(Errno::from_raw_os_error(errno())));
        }
        default_signal_handling();
        set_signal_mask(libc::sigfillset);
        match libc::fork() {
            -1 => Err(fail(Errno::from_raw_os_error(errno()))),
            0 => {
                // The runtime: if the supervisor is killed (timeout), so is it.
                rustix::process::set_parent_process_death_signal(Some(Signal::KILL))
                    .map_err(fail)?;
                default_signal_handling();
                set_signal_mask(libc::sigemptyset);
                Ok(())
            }
            pid => {
                RUNTIME.store(pid, Ordering::SeqCst);
                let mut act: libc::sigaction = std::mem::zeroed();
                act.sa_sigaction = on_parent_death as *const () as usize;
                libc::sigfillset(&mut act.sa_mask);
                libc::sigaction(libc::SIGTERM, &act, std::ptr::null_mut());
                set_signal_mask(libc::sigemptyset);
                // Strata may have died while everything was blocked.
                if rustix::process::getppid() != Some(self.parent) {
                    on_parent_death(0);
                }
                self.supervise(pid)
            }
        }
    }

    /// Holds no descriptor but the report pipe (so the program's pipes close when it and
    /// its processes are gone), waits for the runtime, then for the program.
    unsafe fn supervise(&self, runtime: libc::pid_t) -> ! {
        let keep = self.report.raw() as u32;
        libc::syscall(libc::SYS_close_range, 0u32, keep - 1, 0u32);
        libc::syscall(libc::SYS_close_range, keep + 1, u32::MAX, 0u32);
        let status = loop {
            match rustix::process::waitpid(Pid::from_raw(runtime), WaitOptions::empty()) {
                Ok(Some((_, status))) => break status,
                Err(Errno::INTR) | Ok(None) => continue,
                Err(e) => self.give_up(LOST, e.raw_os_error()),
            }
        };
        if status.exit_status() != Some(0) {
            self.give_up(EXITED, status.as_raw());
        }
        let Some(program) = self.read_pid() else {
            self.give_up(NO_PID_FILE, 0)
        };
        PROGRAM.store(program, Ordering::SeqCst);
        // Other orphans of the runtime's own helpers may come first: reap and go on.
        loop {
            match rustix::process::wait(WaitOptions::empty()) {
                Ok(Some((pid, status))) if pid.as_raw_nonzero().get() == program => {
                    self.report.write(Tag::Exited, 0, status.as_raw());
                    libc::_exit(0)
                }
                Ok(_) | Err(Errno::INTR) => continue,
                Err(e) => self.give_up(LOST, e.raw_os_error()),
            }
        }
    }

    unsafe fn give_up(&self, why: u32, value: i32) -> ! {
        self.report.write(Tag::RuntimeFailed, why, value);
        libc::_exit(0)
    }

    unsafe fn read_pid(&self) -> Option<i32> {
        let fd = rustix::fs::open(
            self.pid_file.as_c_str(),
            OFlags::RDONLY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .ok()?;
        let mut buf = [0u8; 24];
        let n = rustix::io::read(&fd, &mut buf).ok()?;
        let mut pid: i32 = 0;
        for b in &buf[..n] {
            match b {
                b'0'..=b'9' => pid = pid.checked_mul(10)?.checked_add(i32::from(b - b'0'))?,
                _ => break,
            }
        }
        (pid > 0).then_some(pid)
    }
}
