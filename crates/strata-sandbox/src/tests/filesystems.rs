//! The filesystems the callers put under the sandbox: an overlayfs stage root (Dockerfile
//! RUN), and a state directory on a noexec `/run` (Debian mounts it so).

use super::{listing, sandbox, stdout, test_root, BACKENDS};
use crate::Command;
use rustix::mount::{MountFlags, UnmountFlags};
use std::path::{Path, PathBuf};

/// A filesystem mounted on the host for one test, unmounted on drop.
struct Mounted(PathBuf);

impl Mounted {
    fn new(fstype: &str, target: &Path, flags: MountFlags, data: &str) -> Mounted {
        let data = std::ffi::CString::new(data).unwrap();
        rustix::mount::mount(fstype, target, fstype, flags, Some(data.as_c_str()))
            .unwrap_or_else(|e| panic!("mount {fstype} on {}: {e}", target.display()));
        Mounted(target.to_path_buf())
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = rustix::mount::unmount(&self.0, UnmountFlags::DETACH);
    }
}

/// What the overlay's upper directory holds: the changes a build step would commit.
fn upper_entries(upper: &Path) -> Vec<String> {
    let mut v: Vec<String> = listing(upper)
        .into_iter()
        .filter(|l| !l.starts_with("/ "))
        .map(|l| l.split(' ').next().unwrap().to_string())
        .collect();
    v.sort();
    v
}

#[test]
fn an_overlay_root_gets_only_the_programs_changes() {
    let Some(lower) = test_root() else { return };
    for name in BACKENDS {
        let _runs = super::shared();
        let sb = sandbox(name, Path::new(crate::DEFAULT_STATE_DIR));
        for complete in [true, false] {
            let dir = tempfile::tempdir().unwrap();
            let (upper, work, merged) = (
                dir.path().join("upper"),
                dir.path().join("work"),
                dir.path().join("merged"),
            );
            for d in [&upper, &work, &merged] {
                std::fs::create_dir(d).unwrap();
            }
            if complete {
                // As a composed image has them (filesystem and setup packages).
                for d in ["proc", "dev", "sys"] {
                    let _ = std::fs::create_dir(lower.path().join(d));
                }
                for f in ["hosts", "resolv.conf", "hostname"] {
                    std::fs::write(lower.path().join("etc").join(f), "from the image\n").unwrap();
                }
            } else {
                for d in ["proc", "dev", "sys"] {
                    let _ = std::fs::remove_dir(lower.path().join(d));
                }
                for f in ["hosts", "resolv.conf", "hostname"] {
                    let _ = std::fs::remove_file(lower.path().join("etc").join(f));
                }
            }
            let data = format!(
                "lowerdir={},upperdir={},workdir={}",
                lower.path().display(),
                upper.display(),
                work.display()
            );
            let _overlay = Mounted::new("overlay", &merged, MountFlags::empty(), &data);
            let cmd = Command::new("/bin/sh").args(["-c", "head -1 /etc/hosts; echo hi > /out"]);
            let o = sb.run(&merged, &cmd).unwrap();
            assert_eq!(stdout(&o), "127.0.0.1\tlocalhost\n", "{name}: {o:?}");
            if complete {
                assert_eq!(upper_entries(&upper), ["/out"], "{name}");
            } else {
                // /etc had to get the mountpoints, so overlayfs copied it up; they are gone
                // again and the copy has the lower's metadata: a diff against the lower
                // layer sees no change there.
                assert_eq!(upper_entries(&upper), ["/etc", "/out"], "{name}");
                let meta = |p: &Path| {
                    let l = listing(p);
                    l.into_iter().find(|e| e.starts_with("/ ")).unwrap()
                };
                assert_eq!(
                    meta(&upper.join("etc")),
                    meta(&lower.path().join("etc")),
                    "{name}"
                );
            }
        }
    }
}

#[test]
fn handed_over_programs_run_from_a_noexec_state_directory() {
    let Some(r) = test_root() else { return };
    let state = tempfile::tempdir().unwrap();
    let flags = MountFlags::NOEXEC | MountFlags::NOSUID | MountFlags::NODEV;
    let _tmpfs = Mounted::new("tmpfs", state.path(), flags, "mode=700");
    let _runs = super::shared();
    for name in BACKENDS {
        let sb = sandbox(name, state.path());
        let cmd = Command::new("/dev/.strata/run").arg("x").file(
            "run",
            b"#!/bin/sh\necho ran $1\n".to_vec(),
            0o755,
        );
        let o = sb.run(r.path(), &cmd).unwrap();
        assert_eq!(stdout(&o), "ran x\n", "{name}: {o:?}");
    }
}
