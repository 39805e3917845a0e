//! The namespace executor: strata's own fork/exec code realizes the prepared run with
//! unshare, mounts and chroot, without any other program.

mod child;

use crate::cgroup::{limit_error, RunCgroup};
use crate::collect::collect;
use crate::report::{self, Tag};
use crate::rundir::RunDir;
use crate::spec::{MountKind, Prepared, DEVICES, MASKED_PATHS, READONLY_PATHS};
use crate::{Command, Error, Network, Output};
use child::{MiddleStep, Op, Plan};
use rustix::mount::MountFlags;
use rustix::process::{Gid, Uid};
use rustix::thread::UnshareFlags;
use std::ffi::CString;
use std::io;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::atomic::AtomicBool;
use std::time::Duration;

/// (link, target) in the sandbox's `/dev`, as runc makes them.
const LINKS: [(&str, &str); 5] = [
    ("/dev/fd", "/proc/self/fd"),
    ("/dev/stdin", "/proc/self/fd/0"),
    ("/dev/stdout", "/proc/self/fd/1"),
    ("/dev/stderr", "/proc/self/fd/2"),
    ("/dev/ptmx", "pts/ptmx"),
];

pub(crate) fn run(root: &Path, cmd: &Command, state: &Path) -> Result<Output, Error> {
    run_with(root, cmd, state, None)
}

/// Code that runs in the confined pid 1 instead of exec'ing the program; its return value
/// is the exit code. See [`crate::run_in_process`].
pub(crate) type Body = std::sync::Arc<dyn Fn() -> i32 + Send + Sync>;

pub(crate) fn run_with(root: &Path, cmd: &Command, state: &Path, body: Option<Body>) -> Result<Output, Error> {
    // Confined code of strata's own has no program to look for in the root.
    let prepared = Prepared::new(root, cmd, state, body.is_some())?;
    let cgroup = RunCgroup::create(prepared.run_dir.id(), &cmd.limits);
    let mut pause = Duration::from_millis(1);
    loop {
        let spawned = spawn(&prepared, &cgroup, body.clone())?;
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
        return finish(spawned, &prepared, &cgroup);
    }
}

fn finish(spawned: Spawned, p: &Prepared, cgroup: &RunCgroup) -> Result<Output, Error> {
    let cmd = p.cmd;
    match spawned {
        Spawned::Started(child) => {
            let c = collect(
                child,
                &cmd.stdin,
                cmd.timeout,
                cmd.cancel.as_deref(),
                cgroup,
                &mut |c: &mut Child| {
                    // The middle process's death kills pid 1, and pid 1's the whole namespace.
                    let _ = c.kill();
                },
                &mut || {},
            )
            .map_err(Error::io(format!("run {}", cmd.program_lossy())))?;
            if c.canceled {
                return Err(Error::Canceled {
                    program: cmd.program_lossy(),
                });
            }
            if let Some(kind) = c.limit {
                return Err(limit_error(cmd.program_lossy(), kind, &cmd.limits));
            }
            let Some(status) = c.status else {
                return Err(Error::Timeout {
                    program: cmd.program_lossy(),
                    timeout: cmd.timeout,
                });
            };
            if let Some(kind) = c.counters.reached() {
                return Err(limit_error(cmd.program_lossy(), kind, &cmd.limits));
            }
            Ok(Output {
                status: crate::ExitStatus {
                    code: status.code(),
                    signal: status.signal(),
                },
                stdout: c.stdout,
                stderr: c.stderr,
            })
        }
        Spawned::SetupFailed(step, source) => Err(Error::Setup { step, source }),
        Spawned::ExecFailed(source) => Err(Error::Exec {
            program: cmd.program_lossy(),
            root: p.root.clone(),
            source,
        }),
    }
}

/// Proves that this machine lets strata run sandboxes of its own: enters every namespace,
/// mounts, chroots into an empty scratch root and gets as far as exec. The error names the
/// step that failed, e.g. `unshare(CLONE_NEWNS): Operation not permitted` when not root.
pub(crate) fn check(state: &Path) -> Result<(), Error> {
    let scratch = RunDir::new(state)?;
    // Nothing to exec in an empty root: exec's ENOENT comes only after every step worked.
    let cmd = Command::new("/.strata-sandbox-probe");
    let prepared = Prepared::new(scratch.path(), &cmd, state, true)?;
    let cgroup = RunCgroup::create(prepared.run_dir.id(), &cmd.limits);
    match spawn(&prepared, &cgroup, None)? {
        Spawned::Started(mut child) => {
            let _ = child.wait();
            Ok(())
        }
        Spawned::ExecFailed(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(()),
        Spawned::ExecFailed(source) => Err(Error::Setup {
            step: "exec in an empty probe root".into(),
            source,
        }),
        Spawned::SetupFailed(step, source) => Err(Error::Setup { step, source }),
    }
}

enum Spawned {
    Started(Child),
    SetupFailed(String, io::Error),
    ExecFailed(io::Error),
}

fn spawn(p: &Prepared, cgroup: &RunCgroup, body: Option<Body>) -> Result<Spawned, Error> {
    let (report, report_w) = report::pipe()?;
    let (plan, steps) = plan(p, cgroup, report_w)?;
    let cmd = p.cmd;
    let mut command = std::process::Command::new(cmd.program());
    command
        .args(&cmd.argv[1..])
        .env_clear()
        .envs(p.env.iter().map(|(k, v)| (k, v)))
        .stdin(if cmd.stdin.is_empty() {
            Stdio::null()
        } else {
            Stdio::piped()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // SAFETY: `enter` makes only raw syscalls on memory prepared before the fork.
    unsafe {
        command.pre_exec(move || {
            plan.enter()?;
            if let Some(body) = &body {
                // Only pid 1 gets here (the middle process never returns from `enter`).
                // std reads the end of its exec-status pipe as a successful exec.
                let code = body();
                libc::fflush(std::ptr::null_mut());
                libc::_exit(code);
            }
            Ok(())
        });
    }
    let spawned = command.spawn();
    // Drops the plan, and with it this process's write end of the report pipe.
    drop(command);
    match spawned {
        Ok(child) => Ok(Spawned::Started(child)),
        Err(e) => Ok(match report.read() {
            Some((Tag::Middle, i, errno)) => {
                Spawned::SetupFailed(MiddleStep::describe(i), io::Error::from_raw_os_error(errno))
            }
            Some((Tag::Op, i, errno)) => Spawned::SetupFailed(
                steps.get(i as usize).cloned().unwrap_or_default(),
                io::Error::from_raw_os_error(errno),
            ),
            _ if e.raw_os_error().is_some() => Spawned::ExecFailed(e),
            // Not from the child at all (std could not fork, make pipes, ...).
            _ => return Err(Error::io("spawn the sandbox")(e)),
        }),
    }
}

/// The prepared run as the child's operations, each with its description for errors.
///
/// As runc does it: everything is mounted under the root's host path (bound onto itself
/// first), where the host's files are still in reach to be bound, and only then is the
/// root pivoted to. The destinations have no symlinks (resolved inside the root by
/// [`crate::root`]), so these paths stay inside the root.
fn plan(
    p: &Prepared,
    cgroup: &RunCgroup,
    report: report::Report,
) -> Result<(Plan, Vec<String>), Error> {
    let c = |s: &str| CString::new(s).expect("validated: no NUL");
    let root = p.root.to_str().expect("canonical_root: UTF-8");
    let at = |inside: &str| c(&format!("{root}{inside}"));
    let mut ops: Vec<(Op, String)> = vec![
        (Op::MakePrivate, "mount --make-rprivate /".into()),
        (Op::Umask(0), "umask(0)".into()),
        (Op::BindRoot(c(root)), format!("bind {root} on itself")),
        // Device nodes a program makes in the root (it keeps CAP_MKNOD, as under docker)
        // are entries of the image, never openable devices of the host.
        (
            Op::Remount {
                target: c(root),
                flags: bind_flags(&p.root)? | MountFlags::NODEV,
            },
            format!("remount {root} nodev"),
        ),
    ];
    let mount = |source: &str, dest: &str, fstype: &str, flags, data: Option<&str>| {
        (
            Op::Mount {
                source: c(source),
                target: at(dest),
                fstype: c(fstype),
                flags,
                data: data.map(c),
            },
            format!("mount {fstype} on {dest}"),
        )
    };
    let mkdir = |path: &str, mode| {
        (
            Op::Mkdir {
                path: at(path),
                mode,
            },
            format!("mkdir {path}"),
        )
    };
    let hidden = MountFlags::NOSUID | MountFlags::NODEV | MountFlags::NOEXEC;
    for m in &p.mounts {
        let dest = m.dest.as_str();
        match &m.kind {
            MountKind::Proc => ops.push(mount("proc", dest, "proc", hidden, None)),
            MountKind::Dev => {
                // nodev: a node made here cannot be opened. The standard devices are the
                // host's own nodes bound onto empty files (as runc does in a user
                // namespace), which keep the host /dev's mount flags.
                let flags = MountFlags::NOSUID | MountFlags::NODEV | MountFlags::STRICTATIME;
                ops.push(mount(
                    "tmpfs",
                    dest,
                    "tmpfs",
                    flags,
                    Some("mode=755,size=65536k"),
                ));
                for (path, _, _) in DEVICES {
                    ops.push((Op::Touch { path: at(path) }, format!("create {path}")));
                    let op = Op::Bind {
                        source: c(path),
                        target: at(path),
                        recursive: false,
                    };
                    ops.push((op, format!("bind the host's {path}")));
                }
                for (link, target) in LINKS {
                    let op = Op::Symlink {
                        target: c(target),
                        link: at(link),
                    };
                    ops.push((op, format!("symlink {link}")));
                }
            }
            MountKind::Devpts => {
                ops.push(mkdir(dest, 0o755));
                let data = "newinstance,ptmxmode=0666,mode=0620,gid=5";
                let flags = MountFlags::NOSUID | MountFlags::NOEXEC;
                ops.push(mount("devpts", dest, "devpts", flags, Some(data)));
            }
            MountKind::Shm => {
                ops.push(mkdir(dest, 0o1777));
                ops.push(mount(
                    "shm",
                    dest,
                    "tmpfs",
                    hidden,
                    Some("mode=1777,size=65536k"),
                ));
            }
            MountKind::Mqueue => {
                ops.push(mkdir(dest, 0o755));
                ops.push(mount("mqueue", dest, "mqueue", hidden, None));
            }
            MountKind::Sysfs => {
                ops.push(mount(
                    "sysfs",
                    dest,
                    "sysfs",
                    hidden | MountFlags::RDONLY,
                    None,
                ));
            }
            MountKind::Bind {
                source,
                exec,
                readonly,
                recursive,
            } => {
                let source = source
                    .to_str()
                    .expect("run directories are UTF-8 (checked)");
                // Under the sandbox's own /dev, the mountpoint is the sandbox's to make.
                if Path::new(dest).starts_with("/dev") {
                    ops.push(mkdir(dest, 0o755));
                }
                let op = Op::Bind {
                    source: c(source),
                    target: at(dest),
                    recursive: *recursive,
                };
                ops.push((op, format!("bind {source} on {dest}")));
                // A bind keeps the source's flags unless remounted with exactly these. As
                // with runc, the remount is not recursive: mounts under a read-only bind
                // keep their own flags.
                let mut flags = MountFlags::NOSUID | MountFlags::NODEV;
                if !exec {
                    flags |= MountFlags::NOEXEC;
                }
                if *readonly {
                    flags |= MountFlags::RDONLY;
                }
                let op = Op::Remount {
                    target: at(dest),
                    flags,
                };
                ops.push((op, format!("remount {dest}")));
            }
            MountKind::Tmpfs { size, mode } => {
                let mut data = format!("mode={mode:o}");
                if let Some(size) = size {
                    data.push_str(&format!(",size={size}"));
                }
                let flags = MountFlags::NOSUID | MountFlags::NODEV;
                ops.push(mount("tmpfs", dest, "tmpfs", flags, Some(&data)));
            }
        }
    }
    ops.push((Op::Chdir(c(root)), format!("chdir({root})")));
    ops.push((Op::PivotRoot, format!("pivot_root({root})")));
    ops.push((Op::Chdir(c("/")), "chdir(/) in the image root".into()));
    for path in MASKED_PATHS {
        ops.push((Op::Mask(c(path)), format!("mask {path}")));
    }
    for path in READONLY_PATHS {
        ops.push((Op::ReadOnly(c(path)), format!("make {path} read-only")));
    }
    let cmd = p.cmd;
    ops.push((
        Op::Hostname(cmd.hostname.as_bytes().to_vec()),
        format!("sethostname({})", cmd.hostname),
    ));
    for (r, soft, hard) in p.rlimits() {
        ops.push((
            Op::Rlimit(resource(*r), *soft, *hard),
            format!("setrlimit({r:?}, {soft}, {hard})"),
        ));
    }
    if cmd.network == Network::None {
        ops.push((Op::LoopbackUp, "bring the loopback up".into()));
    }
    // Dropping what is already gone is no error: one path for both capability sets.
    let op = Op::DropBounding {
        keep: p.caps.clone(),
        last: p.last_cap,
    };
    ops.push((op, "prctl(PR_CAPBSET_DROP)".into()));
    // While this process still has CAP_SYS_ADMIN (a non-root user loses it at setuid),
    // so no_new_privs is not needed and setuid programs in the image keep working.
    ops.push((
        Op::Seccomp(crate::seccomp::bpf(&p.caps)?),
        "seccomp(SECCOMP_SET_MODE_FILTER)".into(),
    ));
    let u = &p.user;
    ops.push((Op::RootCwd(c(p.cwd())), format!("chdir({})", p.cwd())));
    let (uid, gid) = (Uid::from_raw(u.uid), Gid::from_raw(u.gid));
    ops.push((Op::StdioTo(uid, gid), "chown the stdio pipes".into()));
    let groups = u
        .additional_gids
        .iter()
        .map(|g| Gid::from_raw(*g))
        .collect();
    ops.push((
        Op::Groups(groups),
        format!("setgroups({:?})", u.additional_gids),
    ));
    ops.push((Op::SetGid(gid), format!("setgid({})", u.gid)));
    ops.push((Op::SetUid(uid), format!("setuid({})", u.uid)));
    ops.push((
        Op::UserCwd(c(p.cwd())),
        format!("chdir({}) as uid {}", p.cwd(), u.uid),
    ));
    ops.push((Op::CloseFds, "close_range(CLOSE_RANGE_CLOEXEC)".into()));
    // Scriptlets start as rpm starts them, with umask 022.
    ops.push((Op::Umask(0o022), "umask(022)".into()));
    let mut unshare = vec![
        (UnshareFlags::NEWNS, MiddleStep::UnshareMount),
        (UnshareFlags::NEWPID, MiddleStep::UnsharePid),
        (UnshareFlags::NEWIPC, MiddleStep::UnshareIpc),
        (UnshareFlags::NEWUTS, MiddleStep::UnshareUts),
    ];
    if cmd.network == Network::None {
        unshare.push((UnshareFlags::NEWNET, MiddleStep::UnshareNet));
    }
    let (ops, steps) = ops.into_iter().unzip();
    let plan = Plan {
        cgroup_procs: cgroup.procs_files(),
        unshare,
        ops,
        parent: rustix::process::getpid(),
        report,
        in_cwd: AtomicBool::new(false),
    };
    Ok((plan, steps))
}

/// The mount flags of the filesystem holding `root`, as a bind remount must repeat them
/// (a remount sets exactly the flags it is given).
fn bind_flags(root: &Path) -> Result<MountFlags, Error> {
    use rustix::fs::StatVfsMountFlags as St;
    let st = rustix::fs::statvfs(root)
        .map_err(|e| Error::io(format!("statvfs {}", root.display()))(e.into()))?;
    let f = st.f_flag;
    let mut flags = MountFlags::empty();
    for (st, ms) in [
        (St::RDONLY, MountFlags::RDONLY),
        (St::NOSUID, MountFlags::NOSUID),
        (St::NODEV, MountFlags::NODEV),
        (St::NOEXEC, MountFlags::NOEXEC),
        (St::NOATIME, MountFlags::NOATIME),
        (St::NODIRATIME, MountFlags::NODIRATIME),
        (St::RELATIME, MountFlags::RELATIME),
    ] {
        if f.contains(st) {
            flags |= ms;
        }
    }
    Ok(flags)
}

fn resource(r: crate::Rlimit) -> rustix::process::Resource {
    use crate::Rlimit as R;
    use rustix::process::Resource;
    match r {
        R::Core => Resource::Core,
        R::Cpu => Resource::Cpu,
        R::Data => Resource::Data,
        R::Fsize => Resource::Fsize,
        R::Memlock => Resource::Memlock,
        R::Nofile => Resource::Nofile,
        R::Nproc => Resource::Nproc,
        R::Stack => Resource::Stack,
    }
}
