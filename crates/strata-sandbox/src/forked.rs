//! Helpers for code that runs in a forked child of a multithreaded process, before exec:
//! async-signal-safe only.

use rustix::process::Resource;
use std::io;

/// Dies of `sig` so the caller sees it, without a core dump of this process.
pub(crate) unsafe fn die_like(sig: i32) -> ! {
    let mut no_core = rustix::process::getrlimit(Resource::Core);
    no_core.current = Some(0);
    let _ = rustix::process::setrlimit(Resource::Core, no_core);
    libc::kill(libc::getpid(), sig);
    libc::_exit(128 + sig)
}

/// Every catchable signal back to its default action.
pub(crate) unsafe fn default_signal_handling() {
    for sig in 1..=64 {
        if sig != libc::SIGKILL && sig != libc::SIGSTOP {
            libc::signal(sig, libc::SIG_DFL);
        }
    }
}

/// Blocks everything (`sigfillset`) or nothing (`sigemptyset`).
pub(crate) unsafe fn set_signal_mask(
    fill: unsafe extern "C" fn(*mut libc::sigset_t) -> libc::c_int,
) {
    let mut set: libc::sigset_t = std::mem::zeroed();
    fill(&mut set);
    libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
}

pub(crate) fn errno() -> i32 {
    io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EIO)
}
