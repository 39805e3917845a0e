//! Mounting and unmounting the stage's overlay.
//!
//! The new mount API is tried first: each lower layer is its own `fsconfig(lowerdir+)` call
//! (Linux ≥ 6.8), so the count is not bounded by the one page `mount(2)` copies its options
//! into, and the kernel's own error text can be read back from the filesystem context. A
//! `fsconfig` string is limited to 256 bytes, so longer paths are passed as `/proc/self/fd/N`
//! of an `O_PATH` handle, which the kernel resolves to the directory itself.
//!
//! Older kernels get `mount(2)` with the classic `lowerdir=a:b:c` string; when the plain paths
//! do not fit in the page, the same `/proc/self/fd/N` names (16 bytes each) are used, which
//! leaves room for 200+ layers without changing the working directory of a multithreaded
//! process (docker's short-link `chdir` trick needs a helper process for that).
//!
//! Options: `redirect_dir=off`, `metacopy=off` and `index=off` keep the upper directory a
//! plain tree that can be read as a diff (see `diff::upper`); `volatile` skips syncing it.

use crate::error::{Error, Result};
use rustix::fs::{self as rfs, Mode, OFlags};
use rustix::io::Errno;
use rustix::mount::{self as rmount, FsMountFlags, FsOpenFlags, MountAttrFlags, MountFlags, MoveMountFlags, UnmountFlags};
use std::ffi::CString;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// overlayfs' own limit on lower layers (OVL_MAX_STACK).
pub const MAX_LOWERS: usize = 500;

const OPTIONS: [(&str, &str); 3] = [("redirect_dir", "off"), ("metacopy", "off"), ("index", "off")];
/// No syncs of the upper directory: a stage never outlives a crash, and without this an
/// unmount flushes every dirty page of the upper filesystem (seconds on a busy disk).
const FLAGS: [&str; 1] = ["volatile"];
/// `mount(2)` copies one page of options.
const PAGE: usize = 4096;
const FSCONFIG_MAX: usize = 255;

/// Which kernel interface mounts the overlay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MountApi {
    /// `fsopen`/`fsconfig(lowerdir+)`/`fsmount`, falling back to `mount(2)` when the kernel
    /// does not know `lowerdir+`.
    Auto,
    /// `mount(2)` only (what kernels before 6.8 support).
    Classic,
}

pub(crate) struct Layout<'a> {
    /// Uppermost first.
    pub lowers: &'a [PathBuf],
    pub upper: &'a Path,
    pub work: &'a Path,
    pub target: &'a Path,
}

fn fail(target: &Path, reason: impl Into<String>) -> Error {
    Error::Mount { target: target.to_path_buf(), reason: reason.into() }
}

/// Characters overlayfs' option parser treats specially in a path.
fn plain_path(p: &Path) -> bool {
    !p.as_os_str().as_bytes().iter().any(|b| matches!(b, b':' | b',' | b'\\' | b'\n'))
}

fn handle(p: &Path, target: &Path) -> Result<OwnedFd> {
    rfs::open(p, OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
        .map_err(|e| fail(target, format!("opening {}: {e}", p.display())))
}

fn fd_path(fd: &OwnedFd) -> String {
    use std::os::fd::AsRawFd;
    format!("/proc/self/fd/{}", fd.as_raw_fd())
}

pub(crate) fn mount(l: &Layout<'_>, api: MountApi) -> Result<()> {
    if l.lowers.is_empty() || l.lowers.len() > MAX_LOWERS {
        return Err(fail(l.target, format!("{} lower layers (overlayfs takes 1 to {MAX_LOWERS})", l.lowers.len())));
    }
    if api == MountApi::Auto {
        match mount_new_api(l) {
            Ok(()) => return Ok(()),
            // ENOSYS: no new mount API; EINVAL on `lowerdir+`: a kernel before 6.8.
            Err(NewApiError::Unsupported) => {}
            Err(NewApiError::Failed(e)) => return Err(e),
        }
    }
    mount_classic(l)
}

enum NewApiError {
    Unsupported,
    Failed(Error),
}

/// The kernel's messages for a failed `fsconfig`/`fsmount` ("e overlayfs: ..." lines).
fn fs_log(fs: &OwnedFd) -> String {
    let mut lines = Vec::new();
    let mut buf = [0u8; 1024];
    while let Ok(n) = rustix::io::read(fs, &mut buf) {
        if n == 0 {
            break;
        }
        lines.push(String::from_utf8_lossy(&buf[..n]).trim().to_string());
    }
    lines.join("; ")
}

fn mount_new_api(l: &Layout<'_>) -> std::result::Result<(), NewApiError> {
    let failed = |what: &str, e: Errno, fs: Option<&OwnedFd>| {
        let log = fs.map(fs_log).filter(|s| !s.is_empty()).map(|s| format!(" ({s})")).unwrap_or_default();
        NewApiError::Failed(fail(l.target, format!("{what}: {e}{log}")))
    };
    let fs = match rmount::fsopen("overlay", FsOpenFlags::FSOPEN_CLOEXEC) {
        Ok(fd) => fd,
        Err(Errno::NOSYS) => return Err(NewApiError::Unsupported),
        Err(e) => return Err(failed("fsopen overlay", e, None)),
    };
    // Held until fsconfig has resolved the `/proc/self/fd/N` names.
    let mut handles = Vec::new();
    let mut name = |p: &Path| -> std::result::Result<String, NewApiError> {
        let s = p.to_string_lossy();
        if s.len() <= FSCONFIG_MAX && p.as_os_str().to_str().is_some() {
            return Ok(s.into_owned());
        }
        let fd = handle(p, l.target).map_err(NewApiError::Failed)?;
        let n = fd_path(&fd);
        handles.push(fd);
        Ok(n)
    };
    for (i, lower) in l.lowers.iter().enumerate() {
        let n = name(lower)?;
        if let Err(e) = rmount::fsconfig_set_string(&fs, "lowerdir+", n.as_str()) {
            if i == 0 && e == Errno::INVAL && fs_log(&fs).contains("lowerdir+") {
                return Err(NewApiError::Unsupported);
            }
            return Err(failed(&format!("lower layer {}", lower.display()), e, Some(&fs)));
        }
    }
    let upper = name(l.upper)?;
    let work = name(l.work)?;
    for (key, value) in [("upperdir", upper.as_str()), ("workdir", work.as_str())].into_iter().chain(OPTIONS) {
        rmount::fsconfig_set_string(&fs, key, value).map_err(|e| failed(&format!("{key}={value}"), e, Some(&fs)))?;
    }
    for flag in FLAGS {
        rmount::fsconfig_set_flag(&fs, flag).map_err(|e| failed(flag, e, Some(&fs)))?;
    }
    rmount::fsconfig_create(&fs).map_err(|e| failed("creating the overlay", e, Some(&fs)))?;
    let mnt = rmount::fsmount(&fs, FsMountFlags::FSMOUNT_CLOEXEC, MountAttrFlags::empty())
        .map_err(|e| failed("fsmount", e, Some(&fs)))?;
    drop(handles);
    rmount::move_mount(mnt.as_fd(), "", rfs::CWD, l.target, MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH)
        .map_err(|e| failed("attaching the overlay", e, None))
}

fn mount_classic(l: &Layout<'_>) -> Result<()> {
    let all_plain = l.lowers.iter().map(|p| p.as_path()).chain([l.upper, l.work]).all(plain_path);
    let opts = |lowers: &[String], upper: &str, work: &str| {
        let extra: Vec<String> = OPTIONS.iter().map(|(k, v)| format!("{k}={v}")).chain(FLAGS.map(String::from)).collect();
        format!("lowerdir={},upperdir={upper},workdir={work},{}", lowers.join(":"), extra.join(","))
    };
    let direct: Vec<String> = l.lowers.iter().map(|p| p.to_string_lossy().into_owned()).collect();
    let data = opts(&direct, &l.upper.to_string_lossy(), &l.work.to_string_lossy());
    let mut handles = Vec::new();
    let data = if all_plain && data.len() < PAGE && l.lowers.iter().all(|p| p.to_str().is_some()) {
        data
    } else {
        let mut short = |p: &Path| -> Result<String> {
            let fd = handle(p, l.target)?;
            let n = fd_path(&fd);
            handles.push(fd);
            Ok(n)
        };
        let lowers = l.lowers.iter().map(|p| short(p)).collect::<Result<Vec<_>>>()?;
        let (upper, work) = (short(l.upper)?, short(l.work)?);
        let data = opts(&lowers, &upper, &work);
        if data.len() >= PAGE {
            return Err(fail(l.target, format!("{} lower layers do not fit in mount(2)'s options page", l.lowers.len())));
        }
        data
    };
    let data = CString::new(data).map_err(|_| fail(l.target, "NUL in a layer path"))?;
    rmount::mount("overlay", l.target, "overlay", MountFlags::empty(), data.as_c_str())
        .map_err(|e| fail(l.target, format!("mount(2): {e}")))
}

/// Unmounts `target`; `Ok(false)` when nothing was mounted there. A busy mount is retried
/// briefly, then detached (it goes away once its last user does).
pub(crate) fn unmount(target: &Path) -> Result<bool> {
    for attempt in 0..5 {
        match rmount::unmount(target, UnmountFlags::NOFOLLOW) {
            Ok(()) => return Ok(true),
            Err(Errno::INVAL) | Err(Errno::NOENT) => return Ok(false),
            Err(Errno::BUSY) if attempt < 4 => std::thread::sleep(std::time::Duration::from_millis(20 << attempt)),
            Err(Errno::BUSY) => break,
            Err(e) => return Err(fail(target, format!("unmount: {e}"))),
        }
    }
    rmount::unmount(target, UnmountFlags::NOFOLLOW | UnmountFlags::DETACH)
        .map(|()| true)
        .map_err(|e| fail(target, format!("detaching: {e}")))
}

/// Whether `path` is the root of a mount (its device differs from its parent's, or the
/// kernel says so through `statx`).
pub(crate) fn is_mount_point(path: &Path) -> bool {
    match rfs::statx(rfs::CWD, path, rfs::AtFlags::SYMLINK_NOFOLLOW, rfs::StatxFlags::BASIC_STATS) {
        Ok(st) if st.stx_attributes_mask.contains(rfs::StatxAttributes::MOUNT_ROOT) => {
            st.stx_attributes.contains(rfs::StatxAttributes::MOUNT_ROOT)
        }
        _ => {
            use std::os::unix::fs::MetadataExt;
            let (Ok(a), Some(Ok(b))) = (std::fs::symlink_metadata(path), path.parent().map(std::fs::symlink_metadata)) else {
                return false;
            };
            a.dev() != b.dev()
        }
    }
}
