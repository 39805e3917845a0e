//! Fork, namespaces, mounts, chroot, exec.
//!
//! `std::process::Command` does the fork/exec and the pipes; its `pre_exec` hook, running
//! in the child, unshares the namespaces and forks once more, because only the *children*
//! of a process that unshared its pid namespace live in the new one. The middle process
//! just waits and exits with the grandchild's status; the grandchild (pid 1 of the new
//! namespace) mounts `/proc` and `/dev`, chroots and returns, and std execs the program.
//! Between fork and exec only raw syscalls run: every path and buffer is prepared before.

use crate::{exists_in_root, Command, Error, Output, FILES_DIR};
use std::ffi::CString;
use std::io::{Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Stdio;
use std::time::Instant;

/// Device nodes of the sandbox `/dev` (name, major, minor), as runc and docker provide.
const DEVICES: [(&str, u32, u32); 6] = [("null", 1, 3), ("zero", 1, 5), ("full", 1, 7), ("random", 1, 8), ("urandom", 1, 9), ("tty", 5, 0)];
const DEV_LINKS: [(&str, &str); 4] = [("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"), ("stdout", "/proc/self/fd/1"), ("stderr", "/proc/self/fd/2")];

fn cpath(p: &Path) -> std::io::Result<CString> {
    CString::new(p.as_os_str().as_bytes()).map_err(|_| std::io::Error::other("path contains NUL"))
}

/// Everything the child needs, allocated before fork.
struct Prepared {
    root: CString,
    proc_dir: CString,
    dev_dir: CString,
    files_dir: CString,
    devices: Vec<(CString, libc::dev_t)>,
    links: Vec<(CString, CString)>,
    files: Vec<(CString, Vec<u8>)>,
    hostname: Vec<u8>,
}

impl Prepared {
    fn new(root: &Path, cmd: &Command) -> std::io::Result<Prepared> {
        let dev = root.join("dev");
        let files_dir = root.join(FILES_DIR.trim_start_matches('/'));
        Ok(Prepared {
            root: cpath(root)?,
            proc_dir: cpath(&root.join("proc"))?,
            dev_dir: cpath(&dev)?,
            files_dir: cpath(&files_dir)?,
            devices: DEVICES.iter().map(|(n, ma, mi)| Ok((cpath(&dev.join(n))?, libc::makedev(*ma, *mi)))).collect::<std::io::Result<_>>()?,
            links: DEV_LINKS.iter().map(|(n, t)| Ok((cpath(&dev.join(n))?, CString::new(*t).expect("static")))).collect::<std::io::Result<_>>()?,
            files: cmd.files.iter().map(|(n, b)| Ok((cpath(&files_dir.join(n))?, b.clone()))).collect::<std::io::Result<_>>()?,
            hostname: cmd.hostname.as_bytes().to_vec(),
        })
    }

    /// Runs in the forked child. Returns the failing step on error.
    unsafe fn enter(&self) -> Result<(), (&'static str, std::io::Error)> {
        let last = std::io::Error::last_os_error;
        let check = |r: libc::c_int, step: &'static str| if r == 0 { Ok(()) } else { Err((step, last())) };
        check(libc::unshare(libc::CLONE_NEWNS | libc::CLONE_NEWPID | libc::CLONE_NEWIPC | libc::CLONE_NEWUTS | libc::CLONE_NEWNET), "unshare")?;
        let pid = libc::fork();
        if pid < 0 {
            return Err(("fork", last()));
        }
        if pid > 0 {
            // Drop every inherited descriptor: std's spawn waits for the exec-error
            // channel to close, which must happen when the grandchild execs, not when
            // this waiting middle process finally exits.
            libc::syscall(libc::SYS_close_range, 0u32, u32::MAX, 0u32);
            let mut status = 0;
            loop {
                let r = libc::waitpid(pid, &mut status, 0);
                if r == pid {
                    break;
                }
                if r < 0 && *libc::__errno_location() != libc::EINTR {
                    libc::_exit(127);
                }
            }
            if libc::WIFEXITED(status) {
                libc::_exit(libc::WEXITSTATUS(status));
            }
            // Re-raise the signal so the parent sees "killed by signal N".
            let sig = libc::WTERMSIG(status);
            libc::signal(sig, libc::SIG_DFL);
            libc::kill(libc::getpid(), sig);
            libc::_exit(128 + sig);
        }
        check(libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong, 0, 0, 0), "prctl")?;
        let none = std::ptr::null::<libc::c_char>();
        check(libc::mount(none, c"/".as_ptr(), none, libc::MS_REC | libc::MS_PRIVATE, std::ptr::null()), "make / private")?;
        check(libc::mount(c"proc".as_ptr(), self.proc_dir.as_ptr(), c"proc".as_ptr(), libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC, std::ptr::null()), "mount /proc")?;
        check(
            libc::mount(c"tmpfs".as_ptr(), self.dev_dir.as_ptr(), c"tmpfs".as_ptr(), libc::MS_NOSUID | libc::MS_NOEXEC, c"mode=755,size=65536k".as_ptr().cast()),
            "mount /dev",
        )?;
        for (path, dev) in &self.devices {
            check(libc::mknod(path.as_ptr(), libc::S_IFCHR | 0o666, *dev), "mknod")?;
            check(libc::chmod(path.as_ptr(), 0o666), "chmod device")?;
        }
        for (path, target) in &self.links {
            check(libc::symlink(target.as_ptr(), path.as_ptr()), "symlink in /dev")?;
        }
        check(libc::mkdir(self.files_dir.as_ptr(), 0o700), "mkdir /dev/.strata")?;
        for (path, bytes) in &self.files {
            let fd = libc::open(path.as_ptr(), libc::O_CREAT | libc::O_WRONLY | libc::O_CLOEXEC, 0o700);
            if fd < 0 {
                return Err(("write sandbox file", last()));
            }
            let mut off = 0;
            while off < bytes.len() {
                let n = libc::write(fd, bytes[off..].as_ptr().cast(), bytes.len() - off);
                if n <= 0 {
                    return Err(("write sandbox file", last()));
                }
                off += n as usize;
            }
            libc::close(fd);
        }
        check(libc::sethostname(self.hostname.as_ptr().cast(), self.hostname.len()), "sethostname")?;
        check(libc::chroot(self.root.as_ptr()), "chroot")?;
        check(libc::chdir(c"/".as_ptr()), "chdir")?;
        // rpm runs scriptlets with umask 022; files they create get predictable modes.
        libc::umask(0o022);
        Ok(())
    }
}

/// Mountpoints the sandbox had to create, removed again afterwards.
struct Mountpoints(Vec<std::path::PathBuf>);

impl Mountpoints {
    fn ensure(root: &Path) -> std::io::Result<Mountpoints> {
        let mut made = Vec::new();
        for d in ["proc", "dev"] {
            let p = root.join(d);
            match p.symlink_metadata() {
                Ok(m) if m.is_dir() => {}
                Ok(_) => return Err(std::io::Error::other(format!("{} is not a directory", p.display()))),
                Err(_) => {
                    std::fs::create_dir(&p)?;
                    made.push(p);
                }
            }
        }
        Ok(Mountpoints(made))
    }
}

impl Drop for Mountpoints {
    fn drop(&mut self) {
        for p in &self.0 {
            let _ = std::fs::remove_dir(p);
        }
    }
}

/// Runs `cmd` inside `root`; see the crate docs.
pub fn run(root: &Path, cmd: &Command) -> Result<Output, Error> {
    if !exists_in_root(root, &cmd.program) {
        return Err(Error::NotFound { program: cmd.program.to_string_lossy().into_owned(), root: root.to_path_buf() });
    }
    let _mountpoints = Mountpoints::ensure(root)?;
    let prepared = Prepared::new(root, cmd)?;
    let mut command = std::process::Command::new(&cmd.program);
    command.args(&cmd.args).env_clear().envs(cmd.env.iter().map(|(k, v)| (k, v))).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    // SAFETY: `enter` only makes raw syscalls on memory prepared before the fork.
    unsafe {
        command.pre_exec(move || prepared.enter().map_err(|(step, e)| std::io::Error::new(e.kind(), format!("{step}: {e}"))));
    }
    let mut child = command.spawn().map_err(|source| Error::Setup { step: "spawn".into(), source })?;
    let mut stdin = child.stdin.take().expect("piped");
    let input = cmd.stdin.clone();
    let writer = std::thread::spawn(move || {
        // A program that does not read its stdin closes the pipe: not an error.
        let _ = stdin.write_all(&input);
    });
    let mut out = child.stdout.take().expect("piped");
    let mut err = child.stderr.take().expect("piped");
    let out_reader = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = out.read_to_end(&mut v);
        v
    });
    let err_reader = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = err.read_to_end(&mut v);
        v
    });
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait()? {
            break s;
        }
        if start.elapsed() > cmd.timeout {
            // Killing the middle process kills pid 1 (PDEATHSIG) and so the namespace.
            let _ = child.kill();
            let _ = child.wait();
            let _ = writer.join();
            return Err(Error::Timeout { program: cmd.program.to_string_lossy().into_owned(), secs: cmd.timeout.as_secs() });
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    };
    let _ = writer.join();
    let stdout = out_reader.join().unwrap_or_default();
    let stderr = err_reader.join().unwrap_or_default();
    use std::os::unix::process::ExitStatusExt;
    Ok(Output { code: status.code(), signal: status.signal(), stdout, stderr })
}

/// Enters the namespaces and the root without running anything useful.
pub(crate) fn probe(root: &Path) -> Result<(), Error> {
    // An empty root has no program to exec: pick the failure apart from a setup error.
    std::fs::create_dir_all(root.join("bin"))?;
    let cmd = Command::new("/bin/true");
    let prepared = Prepared::new(root, &cmd)?;
    let _mountpoints = Mountpoints::ensure(root)?;
    let mut command = std::process::Command::new("/bin/true");
    unsafe {
        command.pre_exec(move || prepared.enter().map_err(|(step, e)| std::io::Error::new(e.kind(), format!("{step}: {e}"))));
    }
    match command.status() {
        // ENOENT from exec means every setup step before it worked.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(Error::Setup { step: "namespaces".into(), source }),
        Ok(_) => Ok(()),
    }
}
