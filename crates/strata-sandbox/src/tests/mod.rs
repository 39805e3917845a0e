//! Real sandbox runs in tiny roots made of a statically linked busybox, through both
//! executors: strata's own namespace code and runc.
//!
//! They need root and a static busybox (`apt-get install busybox-static`). Without them a
//! test prints a note and passes, except in CI (`CI` set), where it fails saying why.
//! Without runc (`apt-get install runc`) every test that runs programs fails.

mod basics;
mod config;
mod etc_files;
mod filesystems;
mod hostile;
mod identity;
mod isolation;
mod mounts;
mod runtimes;
mod traces;

use crate::{Backend, Command, Error, Output, Sandbox};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{OnceLock, RwLock, RwLockReadGuard, RwLockWriteGuard};

/// Applets linked in every test root; `sh` is an absolute link, the way the chroot sees it.
const APPLETS: &[&str] = &[
    "cat", "chown", "echo", "env", "grep", "head", "hostname", "id", "ip", "kill", "ln", "ls",
    "mkdir", "mount", "nc", "ps", "pwd", "readlink", "rm", "sleep", "stat", "touch", "true",
    "umount", "wc",
];

/// The host's static busybox, or why the sandbox tests cannot run here.
fn prerequisites() -> &'static Result<PathBuf, String> {
    static CHECK: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    CHECK.get_or_init(|| {
        if rustix::process::geteuid().as_raw() != 0 {
            return Err("sandbox tests need root (CAP_SYS_ADMIN for namespaces and mounts)".into());
        }
        let found = ["/bin/busybox", "/usr/bin/busybox"]
            .iter()
            .map(PathBuf::from)
            .find(|p| p.is_file());
        match found {
            Some(p) if is_static_elf(&p) => Ok(p),
            _ => Err(
                "sandbox tests need a statically linked busybox (apt-get install busybox-static)"
                    .into(),
            ),
        }
    })
}

/// Whether an ELF executable has no program interpreter (PT_INTERP), i.e. runs in a root
/// without a libc.
fn is_static_elf(path: &Path) -> bool {
    let Ok(b) = std::fs::read(path) else {
        return false;
    };
    let u16_at = |o: usize| {
        b.get(o..o + 2)
            .map(|s| u16::from_le_bytes([s[0], s[1]]) as usize)
    };
    let u64_at = |o: usize| {
        b.get(o..o + 8)
            .map(|s| u64::from_le_bytes(s.try_into().unwrap()) as usize)
    };
    // 64-bit little-endian ELF only: what busybox-static is on the machines strata targets.
    if b.get(..6) != Some(b"\x7fELF\x02\x01") {
        return false;
    }
    let (Some(phoff), Some(phentsize), Some(phnum)) = (u64_at(0x20), u16_at(0x36), u16_at(0x38))
    else {
        return false;
    };
    const PT_INTERP: u32 = 3;
    (0..phnum).all(|i| {
        let o = phoff + i * phentsize;
        b.get(o..o + 4)
            .is_some_and(|t| u32::from_le_bytes(t.try_into().unwrap()) != PT_INTERP)
    })
}

/// A fresh test root: `/bin/busybox`, its applets, `/etc`, `/tmp`, no `/proc` or `/dev`.
/// `None` (after a note) where the tests cannot run, outside CI.
pub(crate) fn test_root() -> Option<tempfile::TempDir> {
    let busybox = match prerequisites() {
        Ok(p) => p,
        Err(why) if std::env::var_os("CI").is_some() => panic!("{why}"),
        Err(why) => {
            eprintln!("note: {why}; sandbox test skipped");
            return None;
        }
    };
    let dir = tempfile::Builder::new()
        .prefix("strata-sandbox-test-")
        .tempdir()
        .unwrap();
    let root = dir.path();
    for d in ["bin", "etc", "tmp"] {
        std::fs::create_dir(root.join(d)).unwrap();
    }
    std::fs::set_permissions(root.join("tmp"), std::fs::Permissions::from_mode(0o1777)).unwrap();
    std::fs::copy(busybox, root.join("bin/busybox")).unwrap();
    std::os::unix::fs::symlink("/bin/busybox", root.join("bin/sh")).unwrap();
    for applet in APPLETS {
        std::os::unix::fs::symlink("busybox", root.join("bin").join(applet)).unwrap();
    }
    Some(dir)
}

/// Tests that look at machine-wide state (cgroups, every run directory) hold this for
/// writing; every other run holds it for reading, through [`backends`].
static MACHINE: RwLock<()> = RwLock::new(());

pub(crate) fn exclusive() -> RwLockWriteGuard<'static, ()> {
    MACHINE.write().unwrap_or_else(|e| e.into_inner())
}

pub(crate) fn shared() -> RwLockReadGuard<'static, ()> {
    MACHINE.read().unwrap_or_else(|e| e.into_inner())
}

/// A sandbox with `backend` and its state in `state`; fails the test, naming the package
/// to install, when runc is not there.
pub(crate) fn sandbox(name: &str, state: &Path) -> Sandbox {
    let backend = match name {
        "builtin" => Backend::Builtin,
        "runc" => Backend::Runtime("runc".into()),
        other => panic!("no backend {other}"),
    };
    match Sandbox::with_state_dir(backend, state) {
        Ok(s) => s,
        Err(e @ Error::RuntimeNotFound { .. }) => {
            panic!("the sandbox tests run every program through runc too: {e}")
        }
        Err(e) => panic!("{name} cannot run sandboxes here: {e}"),
    }
}

pub(crate) const BACKENDS: [&str; 2] = ["builtin", "runc"];

/// Both executors with the default state directory, made once; runs through them hold
/// [`MACHINE`] for reading as long as this lives (a `for` loop over it: the loop).
pub(crate) struct Backends {
    _guard: RwLockReadGuard<'static, ()>,
    all: &'static [(&'static str, Sandbox)],
}

impl Backends {
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&'static str, &'static Sandbox)> {
        self.all.iter().map(|(n, s)| (*n, s))
    }
}

pub(crate) fn backends() -> Backends {
    static ALL: OnceLock<Vec<(&'static str, Sandbox)>> = OnceLock::new();
    let all = ALL.get_or_init(|| {
        let state = Path::new(crate::DEFAULT_STATE_DIR);
        BACKENDS.iter().map(|b| (*b, sandbox(b, state))).collect()
    });
    Backends {
        _guard: shared(),
        all,
    }
}

/// `sh -c SCRIPT` in `root`; panics if it cannot run.
pub(crate) fn sh(sb: &Sandbox, root: &Path, script: &str) -> Output {
    sb.run(root, &Command::new("/bin/sh").args(["-c", script]))
        .unwrap_or_else(|e| panic!("{script}: {e}"))
}

pub(crate) fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Every entry under `root` (itself included) with the metadata a filesystem diff would
/// compare: type and mode, owner, size, mtime to the nanosecond, device, link target and
/// a hash of the content.
pub(crate) fn listing(root: &Path) -> Vec<String> {
    use std::hash::{DefaultHasher, Hash, Hasher};
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(path) = stack.pop() {
        let m = path.symlink_metadata().unwrap();
        let rel = path.strip_prefix(root).unwrap().display().to_string();
        let link = if m.file_type().is_symlink() {
            std::fs::read_link(&path).unwrap().display().to_string()
        } else {
            String::new()
        };
        let mut h = DefaultHasher::new();
        if m.is_file() {
            std::fs::read(&path).unwrap().hash(&mut h);
        }
        out.push(format!(
            "/{rel} mode={:o} owner={}:{} size={} mtime={}.{:09} rdev={} link={link} hash={:x}",
            m.mode(),
            m.uid(),
            m.gid(),
            m.size(),
            m.mtime(),
            m.mtime_nsec(),
            m.rdev(),
            h.finish()
        ));
        if m.is_dir() {
            stack.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
        }
    }
    out.sort();
    out
}

/// Host pids whose command line is exactly `args`.
pub(crate) fn host_processes(args: &[&str]) -> Vec<u32> {
    let want: Vec<u8> = args.iter().flat_map(|a| a.bytes().chain([0])).collect();
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| c == want))
        .collect()
}

/// Lines of the host's mount table that mention `path`.
pub(crate) fn host_mounts_under(path: &Path) -> Vec<String> {
    let needle = path.to_str().unwrap();
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter(|l| l.contains(needle))
        .map(str::to_owned)
        .collect()
}

/// What runs of this process left in `state` and in the cgroup hierarchies: run
/// directories, runtime container state, cgroups named after its containers.
pub(crate) fn leftovers(state: &Path) -> Vec<String> {
    let entries = |dir: PathBuf| -> Vec<String> {
        std::fs::read_dir(&dir)
            .map(|d| d.map(|e| e.unwrap().path().display().to_string()).collect())
            .unwrap_or_default()
    };
    let mut left = entries(state.join("runs"));
    left.extend(entries(state.join("runtimes/runc")));
    let ours = format!("strata-{}-", std::process::id());
    let mut stack = vec![PathBuf::from("/sys/fs/cgroup")];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with(&ours) {
                left.push(e.path().display().to_string());
            } else if e.file_type().is_ok_and(|t| t.is_dir()) && dir.components().count() < 8 {
                stack.push(e.path());
            }
        }
    }
    left
}
