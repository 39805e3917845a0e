//! A caller's own mounts (`RUN --mount`): binds and tmpfs, through both executors, and the
//! root without a trace of their mountpoints afterwards.

use super::{backends, listing, stdout, test_root};
use crate::{Command, Error, MountSource, Output, Sandbox};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::time::Duration;

/// Printed between what a script says and the mount table it appends.
const TABLE: &str = "--- mountinfo ---\n";

/// Runs `script` with `cmd`'s mounts and returns its status, what it said before the mount
/// table, and the table.
fn run(sb: &Sandbox, root: &Path, cmd: Command, script: &str) -> (Output, String, String) {
    let script = format!(
        "{script}\necho '{}'; cat /proc/self/mountinfo",
        TABLE.trim_end()
    );
    let cmd = cmd.args(["-c", &script]);
    let o = sb
        .run(root, &cmd)
        .unwrap_or_else(|e| panic!("{script}: {e}"));
    let out = stdout(&o);
    let (said, table) = out.split_once(TABLE).unwrap_or((&out, ""));
    let (said, table) = (said.to_string(), table.to_string());
    (o, said, table)
}

/// The filesystem type and the flags that matter (ro/rw, nosuid, nodev, noexec, sorted) of
/// the topmost mount on `point`, e.g. `tmpfs nodev,nosuid,rw`.
fn mounted(table: &str, point: &str) -> String {
    let line = table
        .lines()
        .rfind(|l| l.split(' ').nth(4) == Some(point))
        .unwrap_or_else(|| panic!("nothing mounted on {point}:\n{table}"));
    let opts = line.split(' ').nth(5).unwrap();
    let fs = line.split(" - ").nth(1).unwrap().split(' ').next().unwrap();
    let mut keep: Vec<&str> = opts
        .split(',')
        .filter(|o| ["ro", "rw", "nosuid", "nodev", "noexec"].contains(o))
        .collect();
    keep.sort();
    format!("{fs} {}", keep.join(","))
}

fn host_dir() -> tempfile::TempDir {
    let d = tempfile::Builder::new()
        .prefix("strata-sandbox-mount-")
        .tempdir()
        .unwrap();
    std::fs::write(d.path().join("in"), "from the host\n").unwrap();
    let run = d.path().join("run.sh");
    std::fs::write(&run, "#!/bin/sh\necho ran from the bind\n").unwrap();
    std::fs::set_permissions(&run, std::fs::Permissions::from_mode(0o755)).unwrap();
    d
}

fn bind(path: &Path, readonly: bool) -> MountSource {
    MountSource::Bind {
        path: path.to_path_buf(),
        readonly,
    }
}

#[test]
fn a_writable_bind_writes_through_to_the_host() {
    let Some(r) = test_root() else { return };
    for (name, sb) in backends().iter() {
        let host = host_dir();
        let cmd = Command::new("/bin/sh").mount("/src", bind(host.path(), false));
        let (o, said, table) = run(
            sb,
            r.path(),
            cmd,
            "cat /src/in && echo out > /src/out && /src/run.sh",
        );
        assert!(o.status.success(), "{name}: {o:?}");
        assert_eq!(said, "from the host\nran from the bind\n", "{name}");
        assert!(
            mounted(&table, "/src").ends_with(" nodev,nosuid,rw"),
            "{name}: {table}"
        );
        assert_eq!(
            std::fs::read_to_string(host.path().join("out")).unwrap(),
            "out\n"
        );
        assert!(
            !r.path().join("src").exists(),
            "{name}: the mountpoint is gone"
        );
    }
}

#[test]
fn a_readonly_bind_can_be_read_not_written() {
    let Some(r) = test_root() else { return };
    for (name, sb) in backends().iter() {
        let host = host_dir();
        let before = listing(host.path());
        let cmd = Command::new("/bin/sh").mount("/ro", bind(host.path(), true));
        let (o, said, table) = run(
            sb,
            r.path(),
            cmd,
            "cat /ro/in; /ro/run.sh; if echo x > /ro/in || touch /ro/new; then echo WROTE; fi",
        );
        assert!(o.status.success(), "{name}: {o:?}");
        assert_eq!(said, "from the host\nran from the bind\n", "{name}: {o:?}");
        assert!(
            String::from_utf8_lossy(&o.stderr).contains("Read-only file system"),
            "{name}: {o:?}"
        );
        assert!(
            mounted(&table, "/ro").ends_with(" nodev,nosuid,ro"),
            "{name}: {table}"
        );
        assert_eq!(listing(host.path()), before, "{name}");
    }
}

#[test]
fn a_single_file_is_bound() {
    let Some(r) = test_root() else { return };
    for (name, sb) in backends().iter() {
        let host = host_dir();
        let secret = host.path().join("in");
        // /run is missing: its directory and the file mountpoint are made, then removed.
        let cmd = Command::new("/bin/sh")
            .mount("/run/secrets/token", bind(&secret, true))
            .mount("/tmp/rw-file", bind(&secret, false));
        let (o, said, table) = run(
            sb,
            r.path(),
            cmd,
            "cat /run/secrets/token; echo more >> /tmp/rw-file; \
             echo x > /run/secrets/token || echo refused; stat -c %F /run/secrets/token",
        );
        assert!(o.status.success(), "{name}: {o:?}");
        assert_eq!(
            said, "from the host\nrefused\nregular file\n",
            "{name}: {o:?}"
        );
        assert!(mounted(&table, "/run/secrets/token").ends_with(" nodev,nosuid,ro"));
        assert!(mounted(&table, "/tmp/rw-file").ends_with(" nodev,nosuid,rw"));
        assert_eq!(
            std::fs::read_to_string(&secret).unwrap(),
            "from the host\nmore\n",
            "{name}"
        );
        assert!(!r.path().join("run").exists() && !r.path().join("tmp/rw-file").exists());
    }
}

#[test]
fn a_tmpfs_is_fresh_writable_and_gone_afterwards() {
    let Some(r) = test_root() else { return };
    for (name, sb) in backends().iter() {
        let script = "ls -A /scratch /tmp/small; stat -f -c %T /scratch; stat -c %a /scratch; \
                      echo x > /scratch/f && echo y > /tmp/small/f && cat /scratch/f";
        for _ in 0..2 {
            let cmd = Command::new("/bin/sh")
                .mount("/scratch", MountSource::Tmpfs { size: None })
                .mount(
                    "/tmp/small",
                    MountSource::Tmpfs {
                        size: Some(1 << 20),
                    },
                )
                .user("1000");
            let (o, said, table) = run(sb, r.path(), cmd, script);
            // Mode 1777: another user writes there; the second run starts empty again.
            assert!(o.status.success(), "{name}: {o:?}");
            assert_eq!(
                said, "/scratch:\n\n/tmp/small:\ntmpfs\n1777\nx\n",
                "{name}: {o:?}"
            );
            assert_eq!(
                mounted(&table, "/scratch"),
                "tmpfs nodev,nosuid,rw",
                "{name}"
            );
            let small = table.lines().find(|l| l.contains(" /tmp/small ")).unwrap();
            assert!(small.contains("size=1024k"), "{name}: {small}");
            assert!(!r.path().join("scratch").exists(), "{name}");
            assert!(!r.path().join("tmp/small").exists(), "{name}");
        }
        // On a directory the root has, its mode (as runc does it, and so BuildKit).
        let existing = r.path().join("cache");
        std::fs::create_dir(&existing).unwrap();
        std::fs::set_permissions(&existing, std::fs::Permissions::from_mode(0o710)).unwrap();
        let cmd = Command::new("/bin/sh").mount("/cache", MountSource::Tmpfs { size: None });
        let (o, said, table) = run(sb, r.path(), cmd, "stat -c %a /cache; stat -f -c %T /cache");
        assert_eq!(said, "710\ntmpfs\n", "{name}: {o:?}");
        assert_eq!(mounted(&table, "/cache"), "tmpfs nodev,nosuid,rw", "{name}");
        std::fs::remove_dir(&existing).unwrap();
    }
}

#[test]
fn mountpoints_leave_no_trace() {
    let Some(r) = test_root() else { return };
    let root = r.path();
    // A link on the way resolves inside the root: the mountpoint is made where it leads.
    std::os::unix::fs::symlink("/tmp", root.join("linked")).unwrap();
    std::fs::create_dir(root.join("existing")).unwrap();
    std::fs::write(root.join("existing-file"), "image\n").unwrap();
    let host = host_dir();
    for (name, sb) in backends().iter() {
        std::thread::sleep(Duration::from_millis(20));
        let before = listing(root);
        let tmp_mtime = root.join("tmp").metadata().unwrap().mtime_nsec();
        let cmd = Command::new("/bin/sh")
            .mount("/var/lib/cache", MountSource::Tmpfs { size: None })
            .mount("/linked/through", bind(host.path(), true))
            .mount("/existing", bind(host.path(), false))
            .mount("/existing-file", bind(&host.path().join("in"), true))
            .mount("/etc/token", bind(&host.path().join("in"), true));
        let (o, said, table) = run(
            sb,
            root,
            cmd,
            "cat /tmp/through/in /existing/in /existing-file /etc/token; echo z > /var/lib/cache/z",
        );
        assert!(o.status.success(), "{name}: {o:?}");
        assert_eq!(said, "from the host\n".repeat(4), "{name}");
        mounted(&table, "/tmp/through");
        assert_eq!(listing(root), before, "{name}");
        assert_eq!(
            root.join("tmp").metadata().unwrap().mtime_nsec(),
            tmp_mtime,
            "{name}: the parent's time is back"
        );
    }
}

#[test]
fn malformed_mounts_are_refused() {
    let Some(r) = test_root() else { return };
    let host = host_dir();
    let tmpfs = || MountSource::Tmpfs { size: None };
    let missing = host.path().join("missing");
    let sh = || Command::new("/bin/sh");
    let invalid = [
        (sh().mount("relative", tmpfs()), "is not an absolute path"),
        (sh().mount("/", tmpfs()), "is the root itself"),
        (sh().mount("//./", tmpfs()), "is the root itself"),
        (sh().mount("/a/../b", tmpfs()), "contains .."),
        (sh().mount("/proc/x", tmpfs()), "inside /proc, /dev or /sys"),
        (sh().mount("/dev", tmpfs()), "inside /proc, /dev or /sys"),
        (
            sh().mount("/sys/fs/x", tmpfs()),
            "inside /proc, /dev or /sys",
        ),
        (
            sh().mount("/a", tmpfs()).mount("/a/", tmpfs()),
            "\"/a/\" is given twice",
        ),
        (
            sh().mount("/a", bind(&missing, false)),
            "No such file or directory",
        ),
        (
            sh().mount("/a", MountSource::Tmpfs { size: Some(0) }),
            "size of 0",
        ),
        (
            sh().mount("/a", tmpfs()).mount("/a/b", tmpfs()),
            "nested mounts are not supported",
        ),
    ];
    std::thread::sleep(Duration::from_millis(20));
    let before = listing(r.path());
    for (name, sb) in backends().iter() {
        for (cmd, why) in &invalid {
            let err = sb.run(r.path(), cmd).unwrap_err();
            assert!(
                matches!(&err, Error::InvalidCommand(m) if m.contains(why)),
                "{name}: {cmd:?}: {err}"
            );
        }
        assert_eq!(listing(r.path()), before, "{name}");
    }
    // What the root has at the destination does not fit, or leads where it may not.
    std::fs::write(r.path().join("tmp/file"), "").unwrap();
    std::os::unix::fs::symlink("/proc/self", r.path().join("to-proc")).unwrap();
    let bad_root = [
        (
            sh().mount("/tmp/file", tmpfs()),
            "/tmp/file is a regular file, not a directory; the sandbox mounts /tmp/file there",
        ),
        (
            sh().mount("/bin/busybox/x", tmpfs()),
            "/bin/busybox is not a directory",
        ),
        (
            sh().mount("/to-proc/x", tmpfs()),
            "/to-proc/x leads to /proc/self/x, inside a sandbox mount",
        ),
    ];
    let before = listing(r.path());
    for (name, sb) in backends().iter() {
        for (cmd, why) in &bad_root {
            let err = sb.run(r.path(), cmd).unwrap_err();
            assert!(
                matches!(&err, Error::BadRoot { problem, .. } if problem.contains(why)),
                "{name}: {cmd:?}: {err}"
            );
        }
        assert_eq!(listing(r.path()), before, "{name}");
    }
}
