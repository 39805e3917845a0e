//! The code that runs between fork and exec.
//!
//! `std::process::Command` forks, sets up the pipes and, after [`Plan::enter`], execs the
//! program. `enter` runs in that forked child (the *middle* process): it unshares the
//! namespaces and forks again, because only the children of a process that unshared its pid
//! namespace are in the new one. The middle process then only waits and passes on the
//! grandchild's status; the grandchild, pid 1 of the new namespace, mounts `/proc` and
//! `/dev`, chroots into the root and returns, and std execs the program in it.
//!
//! The process that forked had other threads, so only async-signal-safe work may happen
//! here: raw syscalls on memory prepared before the fork, no allocation, no locks. Every
//! path is a `&CStr` (rustix passes those straight to the kernel).

use crate::command::{Command, FILES_DIR};
use rustix::fd::OwnedFd;
use rustix::fs::{FileType, Mode, OFlags, CWD};
use rustix::mount::{MountFlags, MountPropagationFlags};
use rustix::process::{Pid, Signal, WaitOptions};
use rustix::thread::UnshareFlags;
use std::ffi::{CStr, CString};
use std::io;

/// The sandbox's `/dev` nodes (path, major, minor), the set runc and docker provide.
const DEVICES: [(&CStr, u32, u32); 6] = [
    (c"/dev/null", 1, 3),
    (c"/dev/zero", 1, 5),
    (c"/dev/full", 1, 7),
    (c"/dev/random", 1, 8),
    (c"/dev/urandom", 1, 9),
    (c"/dev/tty", 5, 0),
];

/// (link, target) in the sandbox's `/dev`.
const LINKS: [(&CStr, &CStr); 4] = [
    (c"/dev/fd", c"/proc/self/fd"),
    (c"/dev/stdin", c"/proc/self/fd/0"),
    (c"/dev/stdout", c"/proc/self/fd/1"),
    (c"/dev/stderr", c"/proc/self/fd/2"),
];

/// [`FILES_DIR`] for the child, which may not allocate.
const FILES_DIR_C: &CStr = c"/dev/.strata";

/// Namespaces unshared one at a time, so a refusal names the one that failed.
const NAMESPACES: [(UnshareFlags, Step); 5] = [
    (UnshareFlags::NEWNS, Step::UnshareMount),
    (UnshareFlags::NEWPID, Step::UnsharePid),
    (UnshareFlags::NEWIPC, Step::UnshareIpc),
    (UnshareFlags::NEWUTS, Step::UnshareUts),
    (UnshareFlags::NEWNET, Step::UnshareNet),
];

/// A setup step, reported to the parent as one byte (plus an index for per-item steps).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Step {
    ParentDeath,
    UnshareMount,
    UnsharePid,
    UnshareIpc,
    UnshareUts,
    UnshareNet,
    Fork,
    MakePrivate,
    Chroot,
    Chdir,
    MountProc,
    MountDev,
    Mknod,
    Symlink,
    MkdirShm,
    MkdirFiles,
    WriteFile,
    Hostname,
    CloseFds,
}

const STEPS: [Step; 19] = [
    Step::ParentDeath,
    Step::UnshareMount,
    Step::UnsharePid,
    Step::UnshareIpc,
    Step::UnshareUts,
    Step::UnshareNet,
    Step::Fork,
    Step::MakePrivate,
    Step::Chroot,
    Step::Chdir,
    Step::MountProc,
    Step::MountDev,
    Step::Mknod,
    Step::Symlink,
    Step::MkdirShm,
    Step::MkdirFiles,
    Step::WriteFile,
    Step::Hostname,
    Step::CloseFds,
];

impl Step {
    pub(crate) fn from_byte(b: u8) -> Option<Step> {
        STEPS.get(usize::from(b)).copied()
    }

    /// The step in words; `index` picks the device, link or file of per-item steps.
    pub(crate) fn describe(self, index: usize, root: &str, cmd: &Command) -> String {
        let c = |s: &CStr| s.to_string_lossy().into_owned();
        match self {
            Step::ParentDeath => "prctl(PR_SET_PDEATHSIG)".into(),
            Step::UnshareMount => "unshare(CLONE_NEWNS)".into(),
            Step::UnsharePid => "unshare(CLONE_NEWPID)".into(),
            Step::UnshareIpc => "unshare(CLONE_NEWIPC)".into(),
            Step::UnshareUts => "unshare(CLONE_NEWUTS)".into(),
            Step::UnshareNet => "unshare(CLONE_NEWNET)".into(),
            Step::Fork => "fork into the new pid namespace".into(),
            Step::MakePrivate => "mount --make-rprivate /".into(),
            Step::Chroot => format!("chroot({root})"),
            Step::Chdir => "chdir(/) in the image root".into(),
            Step::MountProc => "mount proc on /proc".into(),
            Step::MountDev => "mount tmpfs on /dev".into(),
            Step::Mknod => format!(
                "mknod {}",
                DEVICES.get(index).map_or_else(String::new, |d| c(d.0))
            ),
            Step::Symlink => format!(
                "symlink {}",
                LINKS.get(index).map_or_else(String::new, |l| c(l.0))
            ),
            Step::MkdirShm => "mkdir /dev/shm".into(),
            Step::MkdirFiles => format!("mkdir {FILES_DIR}"),
            Step::WriteFile => format!(
                "write {FILES_DIR}/{}",
                cmd.files.get(index).map_or("", |f| f.0.as_str())
            ),
            Step::Hostname => format!("sethostname({})", cmd.hostname),
            Step::CloseFds => "close_range(CLOSE_RANGE_CLOEXEC)".into(),
        }
    }
}

/// A failed step: what, which item, and the errno.
type Failure = (Step, u8, rustix::io::Errno);

/// Everything the child needs, prepared before the fork.
pub(crate) struct Plan {
    root: CString,
    /// `mode=755,size=NNNk` for the `/dev` tmpfs, sized to hold the files.
    dev_options: CString,
    files: Vec<(CString, Vec<u8>, u32)>,
    hostname: Vec<u8>,
    /// The process that spawns, to notice if it died before the death signal was armed.
    parent: Pid,
    /// Write end of the report pipe (close-on-exec, non-blocking) that names a failed step.
    report: OwnedFd,
}

impl Plan {
    pub(crate) fn new(root: &CStr, cmd: &Command, report: OwnedFd) -> Plan {
        debug_assert_eq!(FILES_DIR_C.to_bytes(), FILES_DIR.as_bytes());
        let cstring = |b: &[u8]| CString::new(b).expect("validated: no NUL");
        // tmpfs charges whole pages; a megabyte on top holds the nodes and directories.
        let pages: usize = cmd.files.iter().map(|f| f.1.len().div_ceil(4096) + 1).sum();
        let files = cmd.files.iter().map(|(name, bytes, mode)| {
            (
                cstring(format!("{FILES_DIR}/{name}").as_bytes()),
                bytes.clone(),
                *mode,
            )
        });
        Plan {
            root: root.to_owned(),
            dev_options: cstring(format!("mode=755,size={}k", 1024 + pages * 4).as_bytes()),
            files: files.collect(),
            hostname: cmd.hostname.as_bytes().to_vec(),
            parent: rustix::process::getpid(),
            report,
        }
    }

    /// Runs in the child std forked; see the module docs. Returning `Ok` lets std exec.
    ///
    /// # Safety
    /// Only in a freshly forked child, between fork and exec.
    pub(crate) unsafe fn enter(&self) -> io::Result<()> {
        self.middle().map_err(|f| self.fail(f))
    }

    unsafe fn middle(&self) -> Result<(), Failure> {
        let step = |s| move |e| (s, 0, e);
        // If strata dies, the middle process dies, and with it (below) the sandbox.
        rustix::process::set_parent_process_death_signal(Some(Signal::KILL))
            .map_err(step(Step::ParentDeath))?;
        if rustix::process::getppid() != Some(self.parent) {
            return Err((Step::ParentDeath, 0, rustix::io::Errno::SRCH));
        }
        for (flag, s) in NAMESPACES {
            rustix::thread::unshare_unsafe(flag).map_err(step(s))?;
        }
        // Strata's signal handlers mean nothing in a process that never execs: with default
        // handling (SIGCHLD included, which waitpid needs) a Ctrl-C or SIGTERM ends this
        // process, and with it the sandbox. Everything stays blocked across the fork until
        // the grandchild has armed its own death signal.
        default_signal_handling();
        set_signal_mask(libc::sigfillset);
        match libc::fork() {
            -1 => Err((Step::Fork, 0, rustix::io::Errno::from_raw_os_error(errno()))),
            0 => self.grandchild(),
            pid => {
                set_signal_mask(libc::sigemptyset);
                self.wait_and_pass_on(pid)
            }
        }
    }

    /// The middle process: holds no descriptor (so the pipes and std's exec-status pipe see
    /// only the sandbox), waits for pid 1 and ends the way it ended.
    unsafe fn wait_and_pass_on(&self, pid: libc::pid_t) -> ! {
        libc::syscall(libc::SYS_close_range, 0u32, u32::MAX, 0u32);
        let pid = Pid::from_raw(pid);
        let status = loop {
            match rustix::process::waitpid(pid, WaitOptions::empty()) {
                Ok(Some((_, status))) => break status,
                Err(rustix::io::Errno::INTR) | Ok(None) => continue,
                Err(_) => libc::_exit(127),
            }
        };
        if let Some(code) = status.exit_status() {
            libc::_exit(code);
        }
        let sig = status.terminating_signal().unwrap_or(libc::SIGKILL);
        // Die of the same signal so the caller sees it, without a core dump of this process.
        let mut no_core = rustix::process::getrlimit(rustix::process::Resource::Core);
        no_core.current = Some(0);
        let _ = rustix::process::setrlimit(rustix::process::Resource::Core, no_core);
        libc::kill(libc::getpid(), sig);
        libc::_exit(128 + sig)
    }

    /// Pid 1 of the new namespaces: builds the sandbox around itself, then std execs.
    unsafe fn grandchild(&self) -> Result<(), Failure> {
        use rustix::fs::{mkdirat, mknodat, symlink};
        use rustix::mount::{mount, mount_change};
        let step = |s| move |e| (s, 0, e);
        let item = |s, i: usize| move |e| (s, i as u8, e);
        // The middle process is strata's only link to this one: if it is killed (timeout),
        // this dies, and with pid 1 the whole namespace. It cannot already be gone: std's
        // spawn returns only once this process has exec'd, and only then can it time out.
        rustix::process::set_parent_process_death_signal(Some(Signal::KILL))
            .map_err(step(Step::ParentDeath))?;
        // Before any mount, so that none of them propagates back to the host.
        mount_change(
            c"/",
            MountPropagationFlags::REC | MountPropagationFlags::PRIVATE,
        )
        .map_err(step(Step::MakePrivate))?;
        // Chroot first: every path below then resolves inside the root, links included.
        rustix::process::chroot(self.root.as_c_str()).map_err(step(Step::Chroot))?;
        rustix::process::chdir(c"/").map_err(step(Step::Chdir))?;
        rustix::process::umask(Mode::empty());
        let proc_flags = MountFlags::NOSUID | MountFlags::NODEV | MountFlags::NOEXEC;
        mount(c"proc", c"/proc", c"proc", proc_flags, None::<&CStr>)
            .map_err(step(Step::MountProc))?;
        mount(
            c"tmpfs",
            c"/dev",
            c"tmpfs",
            MountFlags::NOSUID,
            Some(self.dev_options.as_c_str()),
        )
        .map_err(step(Step::MountDev))?;
        for (i, (path, major, minor)) in DEVICES.iter().enumerate() {
            let dev = rustix::fs::makedev(*major, *minor);
            mknodat(
                CWD,
                *path,
                FileType::CharacterDevice,
                Mode::from_raw_mode(0o666),
                dev,
            )
            .map_err(item(Step::Mknod, i))?;
        }
        for (i, (link, target)) in LINKS.iter().enumerate() {
            symlink(*target, *link).map_err(item(Step::Symlink, i))?;
        }
        mkdirat(CWD, c"/dev/shm", Mode::from_raw_mode(0o1777)).map_err(step(Step::MkdirShm))?;
        if !self.files.is_empty() {
            mkdirat(CWD, FILES_DIR_C, Mode::from_raw_mode(0o755))
                .map_err(step(Step::MkdirFiles))?;
        }
        for (i, (path, bytes, mode)) in self.files.iter().enumerate() {
            write_file(path, bytes, *mode).map_err(item(Step::WriteFile, i))?;
        }
        rustix::system::sethostname(&self.hostname).map_err(step(Step::Hostname))?;
        // Scriptlets start as rpm starts them: default signal handling, nothing blocked,
        // umask 022, and no descriptor of strata's but stdin, stdout and stderr.
        default_signal_handling();
        set_signal_mask(libc::sigemptyset);
        if libc::syscall(
            libc::SYS_close_range,
            3u32,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        ) != 0
        {
            return Err((
                Step::CloseFds,
                0,
                rustix::io::Errno::from_raw_os_error(errno()),
            ));
        }
        rustix::process::umask(Mode::from_raw_mode(0o022));
        Ok(())
    }

    /// Tells the parent which step failed; std passes on only the errno.
    fn fail(&self, (step, index, errno): Failure) -> io::Error {
        let e = errno.raw_os_error().to_ne_bytes();
        let record = [step as u8, index, e[0], e[1], e[2], e[3]];
        let _ = rustix::io::write(&self.report, &record);
        io::Error::from_raw_os_error(errno.raw_os_error())
    }
}

/// Decodes a record written by [`Plan::fail`].
pub(crate) fn decode_report(record: &[u8]) -> Option<(Step, usize, io::Error)> {
    let [step, index, a, b, c, d] = record.try_into().ok()?;
    let errno = i32::from_ne_bytes([a, b, c, d]);
    Some((
        Step::from_byte(step)?,
        usize::from(index),
        io::Error::from_raw_os_error(errno),
    ))
}

fn write_file(path: &CStr, mut bytes: &[u8], mode: u32) -> rustix::io::Result<()> {
    let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::CLOEXEC;
    let fd = rustix::fs::open(path, flags, Mode::from_raw_mode(mode))?;
    while !bytes.is_empty() {
        match rustix::io::write(&fd, bytes) {
            Ok(n) => bytes = &bytes[n..],
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e),
        }
    }
    // Set explicitly: open's mode may not carry setuid/setgid/sticky bits through.
    rustix::fs::fchmod(&fd, Mode::from_raw_mode(mode))
}

/// Every catchable signal back to its default action.
unsafe fn default_signal_handling() {
    for sig in 1..=64 {
        if sig != libc::SIGKILL && sig != libc::SIGSTOP {
            libc::signal(sig, libc::SIG_DFL);
        }
    }
}

/// Blocks everything (`sigfillset`) or nothing (`sigemptyset`).
unsafe fn set_signal_mask(fill: unsafe extern "C" fn(*mut libc::sigset_t) -> libc::c_int) {
    let mut set: libc::sigset_t = std::mem::zeroed();
    fill(&mut set);
    libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
}

fn errno() -> i32 {
    io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EIO)
}
