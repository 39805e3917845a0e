//! The root and the machine afterwards: the program's changes, and nothing of the
//! sandbox's (mountpoints, mounts, run directories, runtime state, cgroups).

use super::{
    backends, exclusive, host_mounts_under, leftovers, listing, sandbox, sh, stdout, test_root,
    BACKENDS,
};
use crate::{check_available, Command, Error};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::Duration;

/// Touches everything the sandbox provides without changing the root itself.
const BUSY_BUT_HARMLESS: &str = "cat /dev/.strata/script > /dev/null; echo x > /dev/shm/x; \
    echo y > /dev/.strata/extra; ls /proc /sys > /dev/null; head -c 9 /dev/urandom > /dev/null; \
    cat /etc/hosts /etc/resolv.conf > /dev/null; echo z >> /etc/hosts; ls -la / /dev /tmp /etc";

fn busy_run(sb: &crate::Sandbox, root: &Path) -> crate::Output {
    let cmd = Command::new("/bin/sh").arg("/dev/.strata/script").file(
        "script",
        BUSY_BUT_HARMLESS.into(),
        0o700,
    );
    let o = sb.run(root, &cmd).unwrap();
    assert!(o.status.success(), "{o:?}");
    o
}

#[test]
fn no_trace_when_the_root_has_no_mountpoints() {
    let Some(r) = test_root() else { return };
    for (name, sb) in backends().iter() {
        // Let the clock move on, so that a changed mtime could not hide in the same tick.
        std::thread::sleep(Duration::from_millis(20));
        let before = listing(r.path());
        let o = busy_run(sb, r.path());
        assert!(stdout(&o).contains(".strata"), "{name}: {o:?}");
        assert_eq!(listing(r.path()), before, "{name}");
    }
}

#[test]
fn no_trace_when_the_root_has_them() {
    let Some(r) = test_root() else { return };
    for d in ["proc", "dev", "sys"] {
        std::fs::create_dir(r.path().join(d)).unwrap();
    }
    std::fs::write(r.path().join("dev/console-placeholder"), "from a package").unwrap();
    std::fs::write(r.path().join("etc/hosts"), "127.0.0.1 image\n").unwrap();
    for (name, sb) in backends().iter() {
        let before = listing(r.path());
        let o = busy_run(sb, r.path());
        assert!(
            !stdout(&o).contains("console-placeholder"),
            "{name}: the sandbox /dev hides the root's: {o:?}"
        );
        assert_eq!(listing(r.path()), before, "{name}");
    }
    // Only some of them present.
    std::fs::remove_dir_all(r.path().join("dev")).unwrap();
    for (name, sb) in backends().iter() {
        std::thread::sleep(Duration::from_millis(20));
        let before = listing(r.path());
        busy_run(sb, r.path());
        assert_eq!(listing(r.path()), before, "{name}");
    }
}

#[test]
fn program_changes_land_in_the_root() {
    for (name, sb) in backends().iter() {
        let Some(r) = test_root() else { return };
        let root = r.path();
        let script = "echo 'redis:x:999:' >> /etc/group && chown 999:999 /etc/group && mkdir -p /var/lib/redis \
                      && ln -s /var/lib/redis /srv && rm /bin/wc && touch /tmp/left-by-program && mkdir /proc/../newdir";
        let o = sh(sb, root, script);
        assert!(o.status.success(), "{name}: {o:?}");
        assert_eq!(
            std::fs::read_to_string(root.join("etc/group")).unwrap(),
            "redis:x:999:\n"
        );
        let m = root.join("etc/group").metadata().unwrap();
        assert_eq!(
            (m.uid(), m.gid()),
            (999, 999),
            "{name}: no user namespace: ids are the root's own"
        );
        assert!(root.join("var/lib/redis").is_dir());
        assert_eq!(
            std::fs::read_link(root.join("srv")).unwrap(),
            Path::new("/var/lib/redis")
        );
        assert!(
            !root.join("bin/wc").exists()
                && root.join("tmp/left-by-program").exists()
                && root.join("newdir").is_dir(),
            "{name}"
        );
        assert!(!root.join("proc").exists() && !root.join("dev").exists());
        // The root's mtime is the program's (it created entries in /), not reset.
        let program_mtime = root.join("newdir").metadata().unwrap().mtime();
        assert!(root.metadata().unwrap().mtime() >= program_mtime, "{name}");
    }
}

#[test]
fn a_filled_mountpoint_directory_stays() {
    for (name, sb) in backends().iter() {
        let Some(r) = test_root() else { return };
        std::fs::remove_dir(r.path().join("etc")).unwrap();
        // The sandbox had to make /etc for its files; the program put its own there.
        let o = sh(
            sb,
            r.path(),
            "echo 'root:x:0:0::/root:/bin/sh' > /etc/passwd",
        );
        assert!(o.status.success(), "{name}: {o:?}");
        let mut names: Vec<_> = std::fs::read_dir(r.path().join("etc"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        names.sort();
        assert_eq!(names, ["passwd"], "{name}: only the program's file");
    }
}

#[test]
fn nothing_stays_mounted_after_many_runs() {
    let Some(r) = test_root() else { return };
    for (name, sb) in backends().iter() {
        for i in 0..10 {
            let o = sh(
                sb,
                r.path(),
                &format!("grep -cE ' /(proc|dev|sys|etc/hosts) ' /proc/mounts; echo {i}"),
            );
            assert_eq!(
                stdout(&o),
                format!("4\n{i}\n"),
                "{name}: the sandbox sees its own mounts"
            );
        }
        // Other processes on the machine may mount things meanwhile: look for ours only.
        assert_eq!(host_mounts_under(r.path()), Vec::<String>::new(), "{name}");
        assert_eq!(
            host_mounts_under(Path::new("strata-sandbox-test-")),
            Vec::<String>::new(),
            "{name}"
        );
    }
}

#[test]
fn parallel_runs_in_threads() {
    let Some(_) = test_root() else { return };
    let all = backends();
    // Runs in different roots, four per executor, both executors at once.
    let roots: Vec<_> = all
        .iter()
        .flat_map(|b| (0..4).map(move |i| (b, i)))
        .map(|(b, i)| (b, i, test_root().unwrap()))
        .collect();
    std::thread::scope(|s| {
        for ((name, sb), i, r) in &roots {
            s.spawn(move || {
                for round in 0..3 {
                    let cmd = Command::new("/bin/sh")
                        .args([
                            "-c",
                            "cat /dev/.strata/n > /n; echo $$ $(hostname) $(cat /n); sleep 0.2",
                        ])
                        .file("n", format!("{i}-{round}").into_bytes(), 0o644)
                        .hostname(format!("host{i}"));
                    let o = sb.run(r.path(), &cmd).unwrap();
                    assert_eq!(stdout(&o), format!("1 host{i} {i}-{round}\n"), "{name}");
                    assert_eq!(
                        std::fs::read_to_string(r.path().join("n")).unwrap(),
                        format!("{i}-{round}")
                    );
                }
            });
        }
    });
    for (_, _, r) in &roots {
        assert!(!r.path().join("proc").exists() && !r.path().join("etc/hosts").exists());
        assert_eq!(host_mounts_under(r.path()), Vec::<String>::new());
    }
}

#[test]
fn nothing_left_after_success_failure_and_timeout() {
    let Some(r) = test_root() else { return };
    // Alone on the machine: cgroups and run directories are looked at whole.
    let _alone = exclusive();
    let state = tempfile::tempdir().unwrap();
    let nr_open: u64 = std::fs::read_to_string("/proc/sys/fs/nr_open")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    for name in BACKENDS {
        let sb = sandbox(name, state.path());
        std::thread::sleep(Duration::from_millis(20));
        let before = listing(r.path());
        let runs: [(&str, Command); 4] = [
            ("success", Command::new("/bin/sh").args(["-c", "echo ok"])),
            ("failure", Command::new("/bin/sh").args(["-c", "exit 7"])),
            (
                "setup failure",
                Command::new("/bin/true").rlimit(crate::Rlimit::Nofile, nr_open + 1, nr_open + 1),
            ),
            (
                "timeout",
                Command::new("/bin/sh")
                    .args(["-c", "sleep 4747 & sleep 4748"])
                    .timeout(Duration::from_millis(300)),
            ),
        ];
        for (what, cmd) in runs {
            let result = sb.run(r.path(), &cmd);
            match what {
                "success" => assert!(result.unwrap().status.success()),
                "failure" => assert_eq!(result.unwrap().status.code, Some(7)),
                "setup failure" => assert!(result.is_err(), "{name}: {result:?}"),
                _ => assert!(
                    matches!(result, Err(Error::Timeout { .. })),
                    "{name}: {result:?}"
                ),
            }
            assert_eq!(listing(r.path()), before, "{name}: {what}: the root");
            assert_eq!(
                leftovers(state.path()),
                Vec::<String>::new(),
                "{name}: {what}"
            );
            assert_eq!(
                host_mounts_under(r.path()),
                Vec::<String>::new(),
                "{name}: {what}"
            );
            assert_eq!(
                host_mounts_under(state.path()),
                Vec::<String>::new(),
                "{name}: {what}"
            );
        }
    }
}

#[test]
fn check_available_passes_here() {
    let Some(_) = test_root() else { return };
    check_available().unwrap();
    let _alone = exclusive();
    let state = tempfile::tempdir().unwrap();
    crate::builtin::check(state.path()).unwrap();
    assert_eq!(
        leftovers(state.path()),
        Vec::<String>::new(),
        "its scratch root is gone"
    );
}
