//! The namespace executor's code between fork and exec.
//!
//! `std::process::Command` forks, sets up the pipes and, after [`Plan::enter`], execs the
//! program. `enter` runs in that forked child (the *middle* process): it unshares the
//! namespaces and forks again, because only the children of a process that unshared its pid
//! namespace are in the new one. The middle process then only waits and passes on the
//! grandchild's status; the grandchild, pid 1 of the new namespace, works through the
//! plan's operations (mounts, pivot_root, identity) and returns, and std execs the program.
//!
//! The process that forked had other threads, so only async-signal-safe work may happen
//! here: raw syscalls on memory prepared before the fork, no allocation, no locks. Every
//! path is a `&CStr` (rustix passes those straight to the kernel).

use crate::forked::{default_signal_handling, die_like, errno, set_signal_mask};
use crate::report::{Report, Tag};
use rustix::fs::{FileType, Mode, CWD};
use rustix::io::Errno;
use rustix::mount::{MountFlags, MountPropagationFlags};
use rustix::process::{Gid, Pid, Resource, Rlimit, Signal, Uid, WaitOptions};
use rustix::thread::UnshareFlags;
use std::ffi::{CStr, CString};
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};

/// Steps of the middle process, which has no plan of its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub(crate) enum MiddleStep {
    ParentDeath,
    JoinCgroup,
    UnshareMount,
    UnsharePid,
    UnshareIpc,
    UnshareUts,
    UnshareNet,
    Fork,
}

impl MiddleStep {
    const ALL: [MiddleStep; 8] = [
        MiddleStep::ParentDeath,
        MiddleStep::JoinCgroup,
        MiddleStep::UnshareMount,
        MiddleStep::UnsharePid,
        MiddleStep::UnshareIpc,
        MiddleStep::UnshareUts,
        MiddleStep::UnshareNet,
        MiddleStep::Fork,
    ];

    pub(crate) fn describe(index: u32) -> String {
        match Self::ALL.get(index as usize) {
            Some(MiddleStep::ParentDeath) => "prctl(PR_SET_PDEATHSIG)",
            Some(MiddleStep::JoinCgroup) => "join the run's cgroup",
            Some(MiddleStep::UnshareMount) => "unshare(CLONE_NEWNS)",
            Some(MiddleStep::UnsharePid) => "unshare(CLONE_NEWPID)",
            Some(MiddleStep::UnshareIpc) => "unshare(CLONE_NEWIPC)",
            Some(MiddleStep::UnshareUts) => "unshare(CLONE_NEWUTS)",
            Some(MiddleStep::UnshareNet) => "unshare(CLONE_NEWNET)",
            Some(MiddleStep::Fork) => "fork into the new pid namespace",
            None => "an unknown step",
        }
        .into()
    }
}

/// One thing pid 1 does to build the sandbox around itself, in order.
pub(crate) enum Op {
    /// Before any mount, so that none of them propagates back to the host.
    MakePrivate,
    /// The image root bound onto itself, so that it is a mount of its own to pivot to.
    BindRoot(CString),
    /// `pivot_root` into the current directory and detach the host's root, so that no
    /// path leads back to it; `chroot` where the kernel refuses (a root on the initramfs).
    PivotRoot,
    Chdir(CString),
    /// The working directory, entered before the ids change, as runc does: a user can
    /// start in a directory only root may enter. A refusal is left to [`Op::UserCwd`].
    RootCwd(CString),
    /// The working directory again as the user, if root could not enter it.
    UserCwd(CString),
    Umask(u32),
    Mount {
        source: CString,
        target: CString,
        fstype: CString,
        flags: MountFlags,
        data: Option<CString>,
    },
    Bind {
        source: CString,
        target: CString,
        /// With the mounts under `source` (`MS_REC`).
        recursive: bool,
    },
    /// `MS_BIND | MS_REMOUNT` with exactly these flags.
    Remount {
        target: CString,
        flags: MountFlags,
    },
    /// An empty file (a mountpoint for a bound device).
    Touch {
        path: CString,
    },
    Symlink {
        target: CString,
        link: CString,
    },
    Mkdir {
        path: CString,
        mode: u32,
    },
    /// A directory under a read-only tmpfs, a file under `/dev/null`; absent: nothing.
    Mask(CString),
    /// Bound onto itself read-only; absent: nothing.
    ReadOnly(CString),
    Hostname(Vec<u8>),
    Rlimit(Resource, u64, u64),
    LoopbackUp,
    /// Drops from the bounding set every capability up to `last` not in `keep`.
    DropBounding {
        keep: Vec<u32>,
        last: u32,
    },
    /// Gives stdin, stdout and stderr, where they are pipes, to the user, as runc does: a
    /// program of another user can then open `/dev/stdout` (a `/proc/self/fd` link, which
    /// checks the pipe's owner).
    StdioTo(Uid, Gid),
    Groups(Vec<Gid>),
    SetGid(Gid),
    SetUid(Uid),
    /// Every descriptor but stdin, stdout and stderr closes at exec.
    CloseFds,
    /// Installs these filters in order (see [`crate::seccomp`]).
    Seccomp(Vec<seccompiler::BpfProgram>),
}

/// Everything the child needs, prepared before the fork.
pub(crate) struct Plan {
    /// `cgroup.procs` files the middle process joins before anything else forks.
    pub(crate) cgroup_procs: Vec<CString>,
    pub(crate) unshare: Vec<(UnshareFlags, MiddleStep)>,
    pub(crate) ops: Vec<Op>,
    /// The process that spawns, to notice if it died before the death signal was armed.
    pub(crate) parent: Pid,
    pub(crate) report: Report,
    /// Whether [`Op::RootCwd`] entered the working directory.
    pub(crate) in_cwd: AtomicBool,
}

type Failure = (Tag, u32, Errno);

impl Plan {
    /// Runs in the child std forked; see the module docs. Returning `Ok` lets std exec.
    ///
    /// # Safety
    /// Only in a freshly forked child, between fork and exec.
    pub(crate) unsafe fn enter(&self) -> io::Result<()> {
        self.middle().map_err(|(tag, index, errno)| {
            self.report.write(tag, index, errno.raw_os_error());
            io::Error::from_raw_os_error(errno.raw_os_error())
        })
    }

    unsafe fn middle(&self) -> Result<(), Failure> {
        let step = |s: MiddleStep| move |e| (Tag::Middle, s as u32, e);
        // If strata dies, the middle process dies, and with it (below) the sandbox.
        rustix::process::set_parent_process_death_signal(Some(Signal::KILL))
            .map_err(step(MiddleStep::ParentDeath))?;
        if rustix::process::getppid() != Some(self.parent) {
            return Err((Tag::Middle, MiddleStep::ParentDeath as u32, Errno::SRCH));
        }
        // Every process of the run is counted from the first.
        for file in &self.cgroup_procs {
            join_cgroup(file).map_err(step(MiddleStep::JoinCgroup))?;
        }
        for (flag, s) in &self.unshare {
            rustix::thread::unshare_unsafe(*flag).map_err(step(*s))?;
        }
        // Strata's signal handlers mean nothing in a process that never execs: with default
        // handling (SIGCHLD included, which waitpid needs) a Ctrl-C or SIGTERM ends this
        // process, and with it the sandbox. Everything stays blocked across the fork until
        // the grandchild has armed its own death signal.
        default_signal_handling();
        set_signal_mask(libc::sigfillset);
        match libc::fork() {
            -1 => Err((
                Tag::Middle,
                MiddleStep::Fork as u32,
                Errno::from_raw_os_error(errno()),
            )),
            0 => self.grandchild(),
            pid => {
                set_signal_mask(libc::sigemptyset);
                wait_and_pass_on(pid)
            }
        }
    }

    /// Pid 1 of the new namespaces: builds the sandbox around itself, then std execs.
    unsafe fn grandchild(&self) -> Result<(), Failure> {
        // The middle process is strata's only link to this one: if it is killed (timeout),
        // this dies, and with pid 1 the whole namespace. It cannot already be gone: std's
        // spawn returns only once this process has exec'd, and only then can it time out.
        rustix::process::set_parent_process_death_signal(Some(Signal::KILL))
            .map_err(|e| (Tag::Middle, MiddleStep::ParentDeath as u32, e))?;
        for (i, op) in self.ops.iter().enumerate() {
            apply(op, &self.in_cwd).map_err(|e| (Tag::Op, i as u32, e))?;
        }
        // Programs start as rpm starts scriptlets: default signal handling, nothing blocked.
        default_signal_handling();
        set_signal_mask(libc::sigemptyset);
        Ok(())
    }
}

unsafe fn apply(op: &Op, in_cwd: &AtomicBool) -> Result<(), Errno> {
    use rustix::mount::{mount, mount_bind, mount_bind_recursive, mount_change, mount_remount};
    match op {
        Op::MakePrivate => mount_change(
            c"/",
            MountPropagationFlags::REC | MountPropagationFlags::PRIVATE,
        ),
        Op::BindRoot(path) => mount_bind_recursive(path.as_c_str(), path.as_c_str()),
        Op::PivotRoot => match rustix::process::pivot_root(c".", c".") {
            // The host's root is now stacked on the image root: detach it.
            Ok(()) => rustix::mount::unmount(c".", rustix::mount::UnmountFlags::DETACH),
            Err(Errno::INVAL) => rustix::process::chroot(c"."),
            Err(e) => Err(e),
        },
        Op::Chdir(path) => rustix::process::chdir(path.as_c_str()),
        Op::RootCwd(path) => match rustix::process::chdir(path.as_c_str()) {
            Ok(()) => {
                in_cwd.store(true, Ordering::Relaxed);
                Ok(())
            }
            Err(Errno::ACCESS | Errno::PERM) => Ok(()),
            Err(e) => Err(e),
        },
        Op::UserCwd(path) if !in_cwd.load(Ordering::Relaxed) => {
            rustix::process::chdir(path.as_c_str())
        }
        Op::UserCwd(_) => Ok(()),
        Op::Umask(mask) => {
            rustix::process::umask(Mode::from_raw_mode(*mask));
            Ok(())
        }
        Op::Mount {
            source,
            target,
            fstype,
            flags,
            data,
        } => mount(
            source.as_c_str(),
            target.as_c_str(),
            fstype.as_c_str(),
            *flags,
            data.as_deref(),
        ),
        Op::Bind {
            source,
            target,
            recursive: false,
        } => mount_bind(source.as_c_str(), target.as_c_str()),
        Op::Bind {
            source,
            target,
            recursive: true,
        } => mount_bind_recursive(source.as_c_str(), target.as_c_str()),
        Op::Remount { target, flags } => {
            mount_remount(target.as_c_str(), MountFlags::BIND | *flags, c"")
        }
        Op::Touch { path } => rustix::fs::mknodat(
            CWD,
            path.as_c_str(),
            FileType::RegularFile,
            Mode::from_raw_mode(0o666),
            0,
        ),
        Op::Symlink { target, link } => rustix::fs::symlink(target.as_c_str(), link.as_c_str()),
        Op::Mkdir { path, mode } => {
            rustix::fs::mkdirat(CWD, path.as_c_str(), Mode::from_raw_mode(*mode))
        }
        Op::Mask(path) => match rustix::fs::stat(path.as_c_str()) {
            Err(Errno::NOENT) => Ok(()),
            Err(e) => Err(e),
            Ok(st) if FileType::from_raw_mode(st.st_mode) == FileType::Directory => mount(
                c"tmpfs",
                path.as_c_str(),
                c"tmpfs",
                MountFlags::RDONLY,
                None::<&CStr>,
            ),
            Ok(_) => mount_bind(c"/dev/null", path.as_c_str()),
        },
        Op::ReadOnly(path) => match mount_bind_recursive(path.as_c_str(), path.as_c_str()) {
            Err(Errno::NOENT) => Ok(()),
            Err(e) => Err(e),
            // Flags replace the bind's: keep what /proc has.
            Ok(()) => mount_remount(
                path.as_c_str(),
                MountFlags::BIND
                    | MountFlags::REC
                    | MountFlags::RDONLY
                    | MountFlags::NOSUID
                    | MountFlags::NODEV
                    | MountFlags::NOEXEC,
                c"",
            ),
        },
        Op::Hostname(name) => rustix::system::sethostname(name),
        Op::Rlimit(resource, soft, hard) => rustix::process::setrlimit(
            *resource,
            Rlimit {
                current: Some(*soft),
                maximum: Some(*hard),
            },
        ),
        Op::LoopbackUp => loopback_up(),
        Op::DropBounding { keep, last } => {
            for cap in 0..=*last {
                if !keep.contains(&cap)
                    && libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0) != 0
                {
                    return Err(Errno::from_raw_os_error(errno()));
                }
            }
            Ok(())
        }
        Op::StdioTo(uid, gid) => {
            for fd in [
                rustix::stdio::stdin(),
                rustix::stdio::stdout(),
                rustix::stdio::stderr(),
            ] {
                let st = rustix::fs::fstat(fd)?;
                if FileType::from_raw_mode(st.st_mode) == FileType::Fifo {
                    rustix::fs::fchown(fd, Some(*uid), Some(*gid))?;
                }
            }
            Ok(())
        }
        Op::Groups(groups) => rustix::thread::set_thread_groups(groups),
        // The raw syscalls act on this thread only; after the fork it is the only one.
        Op::SetGid(gid) => rustix::thread::set_thread_gid(*gid),
        Op::SetUid(uid) => rustix::thread::set_thread_uid(*uid),
        Op::Seccomp(filters) => {
            for f in filters {
                let prog = libc::sock_fprog {
                    len: f.len() as u16,
                    filter: f.as_ptr() as *mut libc::sock_filter,
                };
                // No SECCOMP_FILTER_FLAG_TSYNC: this forked child has one thread.
                if libc::syscall(
                    libc::SYS_seccomp,
                    libc::SECCOMP_SET_MODE_FILTER,
                    0u32,
                    &prog as *const libc::sock_fprog,
                ) != 0
                {
                    return Err(Errno::from_raw_os_error(errno()));
                }
            }
            Ok(())
        }
        Op::CloseFds => {
            let flags = libc::CLOSE_RANGE_CLOEXEC;
            if libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, flags) != 0 {
                return Err(Errno::from_raw_os_error(errno()));
            }
            Ok(())
        }
    }
}

/// Writes `0` (this process) to a `cgroup.procs` file.
unsafe fn join_cgroup(file: &CStr) -> Result<(), Errno> {
    let fd = rustix::fs::open(file, rustix::fs::OFlags::WRONLY | rustix::fs::OFlags::CLOEXEC, Mode::empty())?;
    rustix::io::write(&fd, b"0")?;
    Ok(())
}

/// `ip link set lo up`, with the ioctl that needs no netlink messages to build. The kernel
/// then gives it 127.0.0.1/8 and ::1 by itself.
unsafe fn loopback_up() -> Result<(), Errno> {
    let fd = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
    if fd < 0 {
        return Err(Errno::from_raw_os_error(errno()));
    }
    let mut req: libc::ifreq = std::mem::zeroed();
    req.ifr_name[0] = b'l' as libc::c_char;
    req.ifr_name[1] = b'o' as libc::c_char;
    let mut result = Ok(());
    if libc::ioctl(fd, libc::SIOCGIFFLAGS as _, &mut req) != 0 {
        result = Err(Errno::from_raw_os_error(errno()));
    } else {
        req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
        if libc::ioctl(fd, libc::SIOCSIFFLAGS as _, &req) != 0 {
            result = Err(Errno::from_raw_os_error(errno()));
        }
    }
    libc::close(fd);
    result
}

/// The middle process: holds no descriptor (so the pipes and std's exec-status pipe see
/// only the sandbox), waits for pid 1 and ends the way it ended.
unsafe fn wait_and_pass_on(pid: libc::pid_t) -> ! {
    libc::syscall(libc::SYS_close_range, 0u32, u32::MAX, 0u32);
    let pid = Pid::from_raw(pid);
    let status = loop {
        match rustix::process::waitpid(pid, WaitOptions::empty()) {
            Ok(Some((_, status))) => break status,
            Err(Errno::INTR) | Ok(None) => continue,
            Err(_) => libc::_exit(127),
        }
    };
    if let Some(code) = status.exit_status() {
        libc::_exit(code);
    }
    die_like(status.terminating_signal().unwrap_or(libc::SIGKILL))
}
