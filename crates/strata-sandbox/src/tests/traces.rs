//! The root afterwards: the program's changes, and nothing of the sandbox's.

use super::{host_mounts_under, listing, sh, stdout, test_root};
use crate::{check_available, run, Command};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// Touches everything the sandbox provides without changing the root itself.
const BUSY_BUT_HARMLESS: &str = "cat /dev/.strata/script > /dev/null; echo x > /dev/shm/x; \
    echo y > /dev/.strata/extra; ls /proc > /dev/null; head -c 9 /dev/urandom > /dev/null; ls -la / /dev /tmp";

fn busy_run(root: &std::path::Path) -> crate::Output {
    let cmd = Command::new("/bin/sh").arg("/dev/.strata/script").file(
        "script",
        BUSY_BUT_HARMLESS.into(),
        0o700,
    );
    let o = run(root, &cmd).unwrap();
    assert!(o.status.success(), "{o:?}");
    o
}

#[test]
fn no_trace_when_the_root_has_no_proc_or_dev() {
    let Some(r) = test_root() else { return };
    // Let the clock move on, so that a changed mtime could not hide in the same tick.
    std::thread::sleep(std::time::Duration::from_millis(20));
    let before = listing(r.path());
    let o = busy_run(r.path());
    assert!(stdout(&o).contains(".strata"), "{o:?}");
    assert_eq!(listing(r.path()), before);
}

#[test]
fn no_trace_when_the_root_has_proc_and_dev() {
    let Some(r) = test_root() else { return };
    std::fs::create_dir(r.path().join("proc")).unwrap();
    std::fs::create_dir(r.path().join("dev")).unwrap();
    std::fs::write(r.path().join("dev/console-placeholder"), "from a package").unwrap();
    let before = listing(r.path());
    let o = busy_run(r.path());
    assert!(
        !stdout(&o).contains("console-placeholder"),
        "the sandbox /dev hides the root's: {o:?}"
    );
    assert_eq!(listing(r.path()), before);
    // Only one of them present.
    std::fs::remove_dir_all(r.path().join("dev")).unwrap();
    let before = listing(r.path());
    busy_run(r.path());
    assert_eq!(listing(r.path()), before);
}

#[test]
fn program_changes_land_in_the_root() {
    let Some(r) = test_root() else { return };
    let root = r.path();
    let script = "echo 'redis:x:999:' >> /etc/group && chown 999:999 /etc/group && mkdir -p /var/lib/redis \
                  && ln -s /var/lib/redis /srv && rm /bin/wc && touch /tmp/left-by-program && mkdir /proc/../newdir";
    let o = sh(root, script);
    assert!(o.status.success(), "{o:?}");
    assert_eq!(
        std::fs::read_to_string(root.join("etc/group")).unwrap(),
        "redis:x:999:\n"
    );
    let m = root.join("etc/group").metadata().unwrap();
    assert_eq!(
        (m.uid(), m.gid()),
        (999, 999),
        "no user namespace: ids are the root's own"
    );
    assert!(root.join("var/lib/redis").is_dir());
    assert_eq!(
        std::fs::read_link(root.join("srv")).unwrap(),
        std::path::Path::new("/var/lib/redis")
    );
    assert!(
        !root.join("bin/wc").exists()
            && root.join("tmp/left-by-program").exists()
            && root.join("newdir").is_dir()
    );
    assert!(!root.join("proc").exists() && !root.join("dev").exists());
    // The root's mtime is the program's (it created entries in /), not reset by the sandbox.
    let program_mtime = root.join("newdir").metadata().unwrap().mtime();
    assert!(root.metadata().unwrap().mtime() >= program_mtime);
}

#[test]
fn nothing_stays_mounted_after_many_runs() {
    let Some(r) = test_root() else { return };
    for i in 0..25 {
        let o = sh(
            r.path(),
            &format!("mount | grep -cE ' /(proc|dev) '; echo {i}"),
        );
        assert_eq!(
            stdout(&o),
            format!("2\n{i}\n"),
            "the sandbox sees its own two mounts"
        );
    }
    // Other processes on the machine may mount things meanwhile: look for ours only.
    assert_eq!(host_mounts_under(r.path()), Vec::<String>::new());
    assert_eq!(
        host_mounts_under(Path::new("strata-sandbox-test-")),
        Vec::<String>::new()
    );
}

#[test]
fn parallel_runs_in_threads() {
    let Some(_) = test_root() else { return };
    let roots: Vec<_> = (0..4).map(|_| test_root().unwrap()).collect();
    std::thread::scope(|s| {
        for (i, r) in roots.iter().enumerate() {
            s.spawn(move || {
                for round in 0..3 {
                    let cmd = Command::new("/bin/sh")
                        .args([
                            "-c",
                            "cat /dev/.strata/n > /n; echo $$ $(hostname) $(cat /n); sleep 0.2",
                        ])
                        .file("n", format!("{i}-{round}").into_bytes(), 0o644)
                        .hostname(format!("host{i}"));
                    let o = run(r.path(), &cmd).unwrap();
                    assert_eq!(stdout(&o), format!("1 host{i} {i}-{round}\n"));
                    assert_eq!(
                        std::fs::read_to_string(r.path().join("n")).unwrap(),
                        format!("{i}-{round}")
                    );
                }
            });
        }
    });
    for r in &roots {
        assert!(!r.path().join("proc").exists() && !r.path().join("dev").exists());
        assert_eq!(host_mounts_under(r.path()), Vec::<String>::new());
    }
}

#[test]
fn check_available_passes_here() {
    let Some(_) = test_root() else { return };
    check_available().unwrap();
    // Its scratch root is gone.
    let leftovers = std::fs::read_dir(std::env::temp_dir())
        .unwrap()
        .filter(|e| {
            let name = e.as_ref().unwrap().file_name();
            name.to_string_lossy()
                .starts_with(&format!("strata-sandbox-probe-{}-", std::process::id()))
        })
        .count();
    assert_eq!(leftovers, 0);
}
