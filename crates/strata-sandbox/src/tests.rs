//! Real sandbox runs in a small root made of the corpus's busybox and libc6 RPMs.

use crate::{check_available, run, Command, Error};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

fn corpus() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus/out/repos/base/Packages")
}

/// `None` (test skipped) when not root, outside CI; in CI a missing prerequisite fails.
fn template() -> Option<&'static Path> {
    static ROOT: OnceLock<Option<PathBuf>> = OnceLock::new();
    ROOT.get_or_init(|| {
        if unsafe { libc::geteuid() } != 0 {
            assert!(std::env::var_os("CI").is_none(), "sandbox tests need root in CI");
            eprintln!("not root: sandbox tests skipped");
            return None;
        }
        let dir = std::env::temp_dir().join(format!("strata-sandbox-template-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let pkgs: Vec<strata_package::Package> = ["busybox-", "libc6-"]
            .iter()
            .map(|prefix| {
                let rpm = std::fs::read_dir(corpus())
                    .expect("corpus")
                    .map(|e| e.unwrap().path())
                    .find(|p| p.file_name().unwrap().to_string_lossy().starts_with(prefix))
                    .unwrap();
                strata_package::Package::open(&rpm).unwrap()
            })
            .collect();
        strata_install::install(&dir, &pkgs, &Default::default(), None).unwrap();
        for applet in ["sh", "cat", "sleep", "ls", "grep", "hostname", "cut", "tail", "wget", "mkdir"] {
            std::os::unix::fs::symlink("busybox", dir.join("bin").join(applet)).unwrap();
        }
        Some(dir)
    })
    .as_deref()
}

/// A fresh copy of the template root.
fn root() -> Option<tempfile::TempDir> {
    let t = template()?;
    let d = tempfile::tempdir().unwrap();
    assert!(std::process::Command::new("cp").arg("-a").arg(format!("{}/.", t.display())).arg(d.path()).status().unwrap().success());
    Some(d)
}

fn sh(root: &Path, script: &str) -> crate::Output {
    run(root, &Command::new("/bin/sh").args(["-c", script])).unwrap()
}

fn listing(root: &Path) -> String {
    let out = std::process::Command::new("sh").arg("-c").arg("(find . -type d -printf '%p %m %u %g\\n'; find . ! -type d -printf '%p %m %u %g %s %T@ %l\\n') | sort").current_dir(root).output().unwrap();
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn status_output_and_stdin() {
    let Some(r) = root() else { return };
    let o = sh(r.path(), "echo out; echo err >&2; exit 3");
    assert_eq!((o.code, o.stdout.as_slice(), o.stderr.as_slice()), (Some(3), &b"out\n"[..], &b"err\n"[..]));
    let o = run(r.path(), &Command::new("/bin/sh").args(["-c", "cat"]).stdin_bytes(b"piped".to_vec())).unwrap();
    assert_eq!(o.stdout, b"piped");
    // pid 1 ignores signals it has no handler for, so a child's death is the test.
    let o = sh(r.path(), "sh -c 'kill -9 $$'; echo $?");
    assert_eq!(o.stdout, b"137\n");
    assert_eq!(o.status(), "exit 0");
}

#[test]
fn isolated_pid_host_and_network() {
    let Some(r) = root() else { return };
    let o = sh(r.path(), "echo $$; ls /proc | grep -c '^[0-9]'; hostname; cat /proc/net/dev | tail -n +3 | cut -d: -f1");
    let text = String::from_utf8(o.stdout).unwrap();
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    assert_eq!(lines[0], "1", "pid 1 in its own namespace");
    assert!(lines[1].parse::<u32>().unwrap() <= 3, "only its own processes: {text}");
    assert_eq!(lines[2], "localhost");
    assert_eq!(&lines[3..], ["lo"], "no interface but loopback");
    let o = sh(r.path(), "wget -q -T 2 -O- http://127.0.0.1:9/ 2>&1; echo rc=$?");
    assert!(!String::from_utf8_lossy(&o.stdout).contains("rc=0"));
}

#[test]
fn root_keeps_program_changes_and_no_sandbox_trace() {
    let Some(r) = root() else { return };
    // One run with the mountpoints present, one without.
    std::fs::create_dir_all(r.path().join("proc")).unwrap();
    let before = listing(r.path());
    let o = run(r.path(), &Command::new("/bin/sh").arg("/dev/.strata/script").file("script", b"echo x > /dev/null; ls /dev/.strata".to_vec())).unwrap();
    assert_eq!(o.stdout, b"script\n");
    assert_eq!(listing(r.path()), before, "nothing left behind");
    std::fs::remove_dir(r.path().join("proc")).unwrap();
    let before = listing(r.path());
    let o = sh(r.path(), "mkdir -p /etc && echo 'redis:x:999:' >> /etc/group");
    assert!(o.success());
    assert_eq!(std::fs::read_to_string(r.path().join("etc/group")).unwrap(), "redis:x:999:\n");
    let after = listing(r.path());
    assert!(!after.contains("./proc ") && !after.contains("./dev "), "mountpoints it made are gone");
    assert_eq!(after.lines().count(), before.lines().count() + 1, "only etc/group is new");
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mounts.contains(r.path().to_str().unwrap()), "nothing stays mounted on the host");
}

#[test]
fn leftover_processes_die_and_timeouts_kill() {
    let Some(r) = root() else { return };
    let t = std::time::Instant::now();
    let o = sh(r.path(), "sleep 1000 & echo started");
    assert!(o.success());
    assert!(t.elapsed().as_secs() < 5);
    let ps = std::process::Command::new("sh").arg("-c").arg("ps -eo args | grep -c '^sleep 1000'").output().unwrap();
    assert_eq!(String::from_utf8_lossy(&ps.stdout).trim(), "0", "background sleep was killed with the namespace");
    let err = run(r.path(), &Command::new("/bin/sh").args(["-c", "sleep 1000"]).timeout(std::time::Duration::from_millis(300))).unwrap_err();
    assert!(matches!(err, Error::Timeout { .. }), "{err}");
}

#[test]
fn missing_program_and_parallel_runs() {
    let Some(r) = root() else { return };
    let err = run(r.path(), &Command::new("/usr/bin/python3")).unwrap_err();
    assert!(err.to_string().contains("/usr/bin/python3: not found in image root"), "{err}");
    let roots: Vec<_> = (0..4).map(|_| root().unwrap()).collect();
    std::thread::scope(|s| {
        for (i, r) in roots.iter().enumerate() {
            s.spawn(move || {
                let o = sh(r.path(), &format!("echo {i} > /n; cat /n"));
                assert_eq!(String::from_utf8(o.stdout).unwrap().trim(), i.to_string());
            });
        }
    });
    check_available().unwrap();
}
