//! What to run in the sandbox and what came out of it.

use crate::Error;
use std::ffi::{OsStr, OsString};
use std::fmt;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::time::Duration;

/// Where [`Command::file`] files appear inside the sandbox (under its own `/dev`).
pub const FILES_DIR: &str = "/dev/.strata";

/// The `PATH` a [`Command`] starts with: the one rpm gives scriptlets. The environment is
/// otherwise empty; nothing is inherited from the host.
pub const DEFAULT_PATH: &str = "/sbin:/bin:/usr/sbin:/usr/bin";

/// How long a [`Command`] may run unless [`Command::timeout`] says otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(3600);

/// The resource limits every run starts with, as podman and docker are told to give build
/// steps on these machines (`--ulimit nofile=1024:1024 --ulimit nproc=4096:4096`), so that
/// a RUN behaves the same here as under them. [`Command::rlimit`] changes one.
pub const DEFAULT_RLIMITS: [(Rlimit, u64, u64); 2] =
    [(Rlimit::Nofile, 1024, 1024), (Rlimit::Nproc, 4096, 4096)];

/// How many processes (threads included) a run may have at once unless [`Limits::pids`]
/// says otherwise: podman's default `--pids-limit`. A fork bomb stops there, and the run
/// is ended with [`Error::Limit`]; real builds stay far below it.
pub const DEFAULT_PIDS_LIMIT: u64 = 2048;

/// What a run may use, enforced by a cgroup of its own (the kernel counts every process
/// and byte of the run, whatever user it runs as, which `RLIMIT_NPROC` does not for root).
/// A run that reaches a limit (a fork refused, a process killed for memory) is ended and
/// fails with [`Error::Limit`], whatever the program made of it; time is
/// [`Command::timeout`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Processes and threads at once.
    pub pids: u64,
    /// Bytes of memory (page cache included, as the kernel counts it); `None`: half of the
    /// machine's memory, so that a runaway is stopped while the host stays responsive.
    pub memory: Option<u64>,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            pids: DEFAULT_PIDS_LIMIT,
            memory: None,
        }
    }
}

/// The longest hostname the kernel accepts (`HOST_NAME_MAX`).
const HOSTNAME_MAX: usize = 64;

/// Which network the program sees.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Network {
    /// Its own network namespace with only the loopback, up (127.0.0.1 and ::1 work,
    /// nothing else is reachable). `/etc/resolv.conf` names no server.
    #[default]
    None,
    /// The host's network namespace (`--network host`), and the host's `/etc/resolv.conf`.
    Host,
}

/// Which capabilities a root program keeps (a program of another user has none once it
/// execs, whatever is chosen here; both only bound what setuid files can regain). Either
/// way the program can use only the standard devices, cannot mount, and runs under
/// docker's default seccomp profile: the sandbox is a boundary, not a convention.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Capabilities {
    /// What an RPM scriptlet gets: docker's default set less `CAP_NET_RAW` (chown,
    /// dac_override, fowner, fsetid, kill, setgid, setuid, setpcap, net_bind_service,
    /// sys_chroot, mknod, audit_write, setfcap). Enough to add users, change owners and
    /// modes, set file capabilities and make device nodes in the root it builds (they
    /// cannot be opened there); a scriptlet has no use for raw sockets.
    #[default]
    Scriptlet,
    /// Docker's default set for containers and `RUN` (the above plus net_raw), so that a
    /// Dockerfile that works under docker works here and one that fails there fails here.
    DockerDefault,
}

/// A resource limit [`Command::rlimit`] can set.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Rlimit {
    Core,
    Cpu,
    Data,
    Fsize,
    Memlock,
    Nofile,
    Nproc,
    Stack,
}

/// What [`Command::mount`] puts at a destination inside the root.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MountSource {
    /// A host file or directory bound at the destination. Programs in it stay executable.
    Bind { path: PathBuf, readonly: bool },
    /// A fresh tmpfs (size limit in bytes if given), mode 1777 like BuildKit's tmpfs mounts.
    Tmpfs { size: Option<u64> },
}

/// Where the sandbox mounts its own filesystems: nothing of the caller's goes there.
pub(crate) const SANDBOX_MOUNTS: [&str; 3] = ["/proc", "/dev", "/sys"];

/// A program to run in an image root: its arguments, a clean environment, bytes for its
/// stdin, files to hand over in [`FILES_DIR`], and the identity, directory, network,
/// capabilities and limits it runs with.
#[derive(Clone, Debug)]
pub struct Command {
    /// `argv[0]` is the program: an absolute path inside the root.
    pub(crate) argv: Vec<OsString>,
    pub(crate) env: Vec<(OsString, OsString)>,
    pub(crate) stdin: Vec<u8>,
    pub(crate) files: Vec<(String, Vec<u8>, u32)>,
    pub(crate) timeout: Duration,
    pub(crate) hostname: String,
    pub(crate) cwd: OsString,
    /// `None`: uid 0, gid 0, no supplementary groups, without reading the root's files.
    pub(crate) user: Option<String>,
    pub(crate) network: Network,
    pub(crate) capabilities: Capabilities,
    pub(crate) rlimits: Vec<(Rlimit, u64, u64)>,
    pub(crate) limits: Limits,
    /// Set by someone else to stop the run (see [`Command::cancel_on`]).
    pub(crate) cancel: Option<std::sync::Arc<std::sync::atomic::AtomicBool>>,
    /// (destination as given, source), in the order given.
    pub(crate) mounts: Vec<(String, MountSource)>,
}

impl Command {
    /// Runs `program`, an absolute path inside the root (symlinks resolve inside the root),
    /// as root in `/`, with `PATH=`[`DEFAULT_PATH`] as its only environment variable (and
    /// `HOME`, see [`Command::env`]), empty stdin, [`DEFAULT_TIMEOUT`], hostname
    /// `localhost`, no network, [`Capabilities::Scriptlet`], [`DEFAULT_RLIMITS`] and
    /// [`Limits::default`].
    pub fn new(program: impl Into<OsString>) -> Command {
        Command {
            argv: vec![program.into()],
            env: vec![("PATH".into(), DEFAULT_PATH.into())],
            stdin: Vec::new(),
            files: Vec::new(),
            timeout: DEFAULT_TIMEOUT,
            hostname: "localhost".into(),
            cwd: "/".into(),
            user: None,
            network: Network::None,
            capabilities: Capabilities::Scriptlet,
            rlimits: DEFAULT_RLIMITS.to_vec(),
            limits: Limits::default(),
            cancel: None,
            mounts: Vec::new(),
        }
    }

    pub fn arg(mut self, arg: impl Into<OsString>) -> Command {
        self.argv.push(arg.into());
        self
    }

    pub fn args<I, S>(mut self, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        self.argv.extend(args.into_iter().map(Into::into));
        self
    }

    /// Sets a variable, replacing an earlier value of the same name. The program gets
    /// exactly these, sorted by name, plus `HOME` when they have none (or an empty one):
    /// the user's home from the root's `/etc/passwd`, else `/`, as runc and docker do.
    pub fn env(mut self, key: impl Into<OsString>, value: impl Into<OsString>) -> Command {
        let key = key.into();
        self.env.retain(|(k, _)| *k != key);
        self.env.push((key, value.into()));
        self
    }

    /// Removes every variable, [`DEFAULT_PATH`] included.
    pub fn env_clear(mut self) -> Command {
        self.env.clear();
        self
    }

    /// What the program reads on stdin; after it, end of file.
    pub fn stdin_bytes(mut self, bytes: Vec<u8>) -> Command {
        self.stdin = bytes;
        self
    }

    /// Places `bytes` at `/dev/.strata/NAME` (see [`FILES_DIR`]) with permission bits
    /// `mode`, inside the sandbox only: how a scriptlet body reaches its interpreter without
    /// touching the root. `name` is a plain file name.
    pub fn file(mut self, name: impl Into<String>, bytes: Vec<u8>, mode: u32) -> Command {
        self.files.push((name.into(), bytes, mode));
        self
    }

    /// After this long the program and every process it started are killed, and the run
    /// fails with [`Error::Timeout`].
    pub fn timeout(mut self, timeout: Duration) -> Command {
        self.timeout = timeout;
        self
    }

    /// The hostname the program sees (its own UTS namespace, `/etc/hostname` and the
    /// 127.0.0.1 line of `/etc/hosts`); `localhost` by default.
    pub fn hostname(mut self, name: impl Into<String>) -> Command {
        self.hostname = name.into();
        self
    }

    /// The working directory, an absolute path inside the root that must exist there
    /// (a Dockerfile's `WORKDIR` creates it before). It is entered as the program's user.
    pub fn cwd(mut self, dir: impl Into<OsString>) -> Command {
        self.cwd = dir.into();
        self
    }

    /// Runs the program as a Dockerfile's `USER` says: `name`, `uid`, `name:group`,
    /// `uid:gid` (or mixed), looked up in the root's own `/etc/passwd` and `/etc/group`.
    /// A named user also gets the groups that list it, unless a group is given; ids that
    /// are in no file are allowed, names that are not there are an error. `""` is docker's
    /// default: uid 0 with the groups `/etc/group` gives root. See [`crate::resolve_user`].
    pub fn user(mut self, spec: impl Into<String>) -> Command {
        self.user = Some(spec.into());
        self
    }

    pub fn network(mut self, network: Network) -> Command {
        self.network = network;
        self
    }

    pub fn capabilities(mut self, capabilities: Capabilities) -> Command {
        self.capabilities = capabilities;
        self
    }

    /// Sets one resource limit (soft, hard), replacing the default or an earlier value.
    pub fn rlimit(mut self, which: Rlimit, soft: u64, hard: u64) -> Command {
        self.rlimits.retain(|(r, _, _)| *r != which);
        self.rlimits.push((which, soft, hard));
        self
    }

    /// The run's process and memory limits (see [`Limits`]).
    pub fn limits(mut self, limits: Limits) -> Command {
        self.limits = limits;
        self
    }

    /// Stops the run when `flag` becomes true (a service's cancel): the program and every
    /// process it started are killed within a quarter of a second of it, and the run fails
    /// with [`Error::Canceled`].
    pub fn cancel_on(mut self, flag: std::sync::Arc<std::sync::atomic::AtomicBool>) -> Command {
        self.cancel = Some(flag);
        self
    }

    /// Mounts `source` at `dest` (absolute path inside the root; symlinks on the way resolve
    /// inside the root, as for /etc/resolv.conf). Mounts are made in the order given, after
    /// the sandbox's own (/proc, /dev, /sys, /etc/hosts, ...).
    ///
    /// A missing mountpoint is created for the run and removed afterwards, like the
    /// sandbox's own, so the root shows no trace of it. `dest` may not be `/`, lie under
    /// `/proc`, `/dev` or `/sys`, or be inside another of these mounts; binds are `nosuid`
    /// and `nodev`. A tmpfs on a directory the root already has gets that directory's mode,
    /// as under runc and BuildKit.
    pub fn mount(mut self, dest: impl Into<String>, source: MountSource) -> Command {
        self.mounts.push((dest.into(), source));
        self
    }

    /// The program, as given to [`Command::new`].
    pub fn program(&self) -> &OsStr {
        &self.argv[0]
    }

    pub(crate) fn program_lossy(&self) -> String {
        self.program().to_string_lossy().into_owned()
    }

    /// Whether the program is one of the [`Command::file`]s, e.g. `/dev/.strata/script`.
    pub(crate) fn runs_own_file(&self) -> bool {
        let program = self.program().as_bytes();
        program
            .strip_prefix(FILES_DIR.as_bytes())
            .and_then(|rest| rest.strip_prefix(b"/"))
            .is_some_and(|name| self.files.iter().any(|(n, _, _)| n.as_bytes() == name))
    }

    /// Rejects what could only fail later, less clearly, in the sandbox.
    pub(crate) fn validate(&self) -> Result<(), Error> {
        let bad = |why: String| Err(Error::InvalidCommand(why));
        if self.limits.pids < 2 {
            return bad(format!(
                "a process limit of {} leaves no room for the program to start anything",
                self.limits.pids
            ));
        }
        if self.limits.memory.is_some_and(|m| m < 4 << 20) {
            return bad(format!(
                "a memory limit of {} bytes is too small to start a program (at least 4 MiB)",
                self.limits.memory.unwrap_or(0)
            ));
        }
        let program = self.program().as_bytes();
        if !program.starts_with(b"/") {
            return bad(format!(
                "{}: the program must be an absolute path inside the root",
                self.program_lossy()
            ));
        }
        if let Some(a) = self.argv.iter().find(|a| a.as_bytes().contains(&0)) {
            return bad(format!("argument {a:?} contains a NUL byte"));
        }
        for (k, v) in &self.env {
            let k = k.as_bytes();
            if k.is_empty() || k.contains(&b'=') || k.contains(&0) || v.as_bytes().contains(&0) {
                return bad(format!(
                    "environment variable {:?}={v:?} is malformed",
                    OsStr::from_bytes(k)
                ));
            }
            // The OCI config carries the environment as JSON strings.
            if std::str::from_utf8(k).is_err() || v.to_str().is_none() {
                return bad(format!(
                    "environment variable {:?}={v:?} is not UTF-8",
                    OsStr::from_bytes(k)
                ));
            }
        }
        if let Some(a) = self.argv.iter().find(|a| a.to_str().is_none()) {
            return bad(format!("argument {a:?} is not UTF-8"));
        }
        for (i, (name, _, mode)) in self.files.iter().enumerate() {
            if name.is_empty() || name == "." || name == ".." || name.contains(['/', '\0']) {
                return bad(format!("{name:?} is not a plain file name for {FILES_DIR}"));
            }
            if self.files[..i].iter().any(|(n, _, _)| n == name) {
                return bad(format!("file {name:?} is given twice"));
            }
            if mode & !0o7777 != 0 {
                return bad(format!(
                    "file {name:?}: mode {mode:o} has bits beyond 07777"
                ));
            }
        }
        let h = &self.hostname;
        // Also what /etc/hosts and /etc/hostname can carry on one line.
        if h.is_empty() || h.len() > HOSTNAME_MAX || h.contains(['\0', '\n', ' ', '\t']) {
            return bad(format!(
                "hostname {h:?} must be 1 to {HOSTNAME_MAX} bytes without NUL or white space"
            ));
        }
        let cwd = self.cwd.as_bytes();
        if !cwd.starts_with(b"/") || cwd.contains(&0) || self.cwd.to_str().is_none() {
            return bad(format!(
                "working directory {:?} must be an absolute UTF-8 path inside the root",
                self.cwd
            ));
        }
        if let Some(u) = &self.user {
            if u.contains('\0') || u.matches(':').count() > 1 {
                return bad(format!(
                    "user {u:?} is not USER's form (name, uid, name:group or uid:gid)"
                ));
            }
        }
        if let Some((r, soft, hard)) = self.rlimits.iter().find(|(_, s, h)| s > h) {
            return bad(format!(
                "rlimit {r:?}: soft limit {soft} is above the hard limit {hard}"
            ));
        }
        self.validate_mounts()
    }

    fn validate_mounts(&self) -> Result<(), Error> {
        let bad = |why: String| Err(Error::InvalidCommand(why));
        let mut seen: Vec<String> = Vec::new();
        for (dest, source) in &self.mounts {
            let norm = normalized_dest(dest).map_err(|why| {
                Error::InvalidCommand(format!("mount destination {dest:?} {why}"))
            })?;
            if seen.contains(&norm) {
                return bad(format!("mount destination {dest:?} is given twice"));
            }
            match source {
                MountSource::Bind { path, .. } => {
                    if path.as_os_str().as_bytes().contains(&0) || path.to_str().is_none() {
                        return bad(format!(
                            "mount source {path:?} for {dest} must be UTF-8 without NUL bytes"
                        ));
                    }
                    if let Err(e) = std::fs::metadata(path) {
                        return bad(format!("mount source {} for {dest}: {e}", path.display()));
                    }
                }
                // Zero is no limit at all to the kernel.
                MountSource::Tmpfs { size: Some(0) } => {
                    return bad(format!("tmpfs for {dest}: a size of 0 bytes"));
                }
                MountSource::Tmpfs { .. } => {}
            }
            seen.push(norm);
        }
        Ok(())
    }
}

/// `dest` without `.`, repeated or trailing slashes; or why it cannot be a mount's
/// destination.
pub(crate) fn normalized_dest(dest: &str) -> Result<String, &'static str> {
    if !dest.starts_with('/') {
        return Err("is not an absolute path inside the root");
    }
    if dest.contains('\0') {
        return Err("contains a NUL byte");
    }
    let parts: Vec<&str> = dest
        .split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect();
    if parts.contains(&"..") {
        return Err("contains ..");
    }
    if parts.is_empty() {
        return Err("is the root itself");
    }
    let norm = format!("/{}", parts.join("/"));
    if SANDBOX_MOUNTS
        .iter()
        .any(|m| std::path::Path::new(&norm).starts_with(m))
    {
        return Err("is inside /proc, /dev or /sys, which the sandbox mounts itself");
    }
    Ok(norm)
}

/// How the program ended: an exit code, or the signal that killed it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExitStatus {
    pub code: Option<i32>,
    pub signal: Option<i32>,
}

impl ExitStatus {
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }

    /// From a raw `waitpid` status.
    pub(crate) fn from_wait_status(raw: i32) -> ExitStatus {
        if libc::WIFEXITED(raw) {
            ExitStatus {
                code: Some(libc::WEXITSTATUS(raw)),
                signal: None,
            }
        } else if libc::WIFSIGNALED(raw) {
            ExitStatus {
                code: None,
                signal: Some(libc::WTERMSIG(raw)),
            }
        } else {
            ExitStatus {
                code: None,
                signal: None,
            }
        }
    }
}

impl fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.code, self.signal) {
            (Some(c), _) => write!(f, "exit code {c}"),
            (None, Some(s)) => write!(f, "killed by signal {s}"),
            (None, None) => f.write_str("unknown status"),
        }
    }
}

/// What a finished program left: its status and everything it wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Output {
    pub status: ExitStatus,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}
