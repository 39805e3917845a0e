//! Status, pipes, environment, handed-over files and the errors of a command.

use super::{host_processes, sh, stdout, test_root};
use crate::{run, Command, Error, ExitStatus};
use std::time::{Duration, Instant};

#[test]
fn exit_codes_propagate() {
    let Some(r) = test_root() else { return };
    for (script, code) in [("true", 0), ("exit 3", 3), ("exit 137", 137)] {
        let o = sh(r.path(), script);
        assert_eq!(
            o.status,
            ExitStatus {
                code: Some(code),
                signal: None
            },
            "{script}"
        );
    }
    assert!(sh(r.path(), "true").status.success());
    assert_eq!(sh(r.path(), "exit 3").status.to_string(), "exit code 3");
}

#[test]
fn death_by_signal_propagates() {
    let Some(r) = test_root() else { return };
    // Pid 1 of a namespace ignores signals from inside it, so the signal comes from the
    // host: the only sender that can kill it, as a timeout or an operator would.
    let marker = "strata-signal-test-marker";
    let script = "while :; do sleep 1; done";
    let args = ["/bin/sh", "-c", script, marker];
    let root = r.path().to_path_buf();
    let runner = std::thread::spawn(move || {
        run(&root, &Command::new("/bin/sh").args(["-c", script, marker]))
    });
    let start = Instant::now();
    // The shell's forks share its command line until they exec: pick pid 1 by its NSpid.
    let is_init = |pid: &u32| {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        status
            .lines()
            .any(|l| l.starts_with("NSpid:") && l.ends_with("\t1"))
    };
    let pid = loop {
        if let Some(pid) = host_processes(&args).into_iter().find(is_init) {
            break pid;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the sandboxed shell never appeared on the host"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(pid as i32).unwrap(),
        rustix::process::Signal::KILL,
    )
    .unwrap();
    let o = runner.join().unwrap().unwrap();
    assert_eq!(
        o.status,
        ExitStatus {
            code: None,
            signal: Some(9)
        }
    );
    assert_eq!(o.status.to_string(), "killed by signal 9");
}

#[test]
fn stdout_stderr_and_stdin() {
    let Some(r) = test_root() else { return };
    let o = sh(r.path(), "echo out; echo err >&2; echo more");
    assert_eq!(
        (stdout(&o).as_str(), o.stderr.as_slice()),
        ("out\nmore\n", &b"err\n"[..])
    );
    // More than a pipe holds, both ways at once: nothing may deadlock.
    let big: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    let cmd = Command::new("/bin/sh")
        .args(["-c", "cat; cat /bin/busybox >&2"])
        .stdin_bytes(big.clone());
    let o = run(r.path(), &cmd).unwrap();
    assert!(
        o.stdout == big,
        "stdin comes back whole ({} of {} bytes)",
        o.stdout.len(),
        big.len()
    );
    assert_eq!(
        o.stderr,
        std::fs::read(r.path().join("bin/busybox")).unwrap()
    );
    // Without stdin bytes the program reads end of file at once.
    let o = run(r.path(), &Command::new("/bin/cat")).unwrap();
    assert!(o.status.success() && o.stdout.is_empty());
    // A program that never reads a large stdin still finishes.
    let o = run(r.path(), &Command::new("/bin/true").stdin_bytes(big)).unwrap();
    assert!(o.status.success());
}

#[test]
fn environment_is_clean() {
    let Some(r) = test_root() else { return };
    // The test process has HOME, PATH, CARGO_* and more: none of it may come through.
    let o = run(r.path(), &Command::new("/bin/env")).unwrap();
    assert_eq!(stdout(&o), "PATH=/sbin:/bin:/usr/sbin:/usr/bin\n");
    let cmd = Command::new("/bin/env")
        .env("LANG", "C")
        .env("PATH", "/bin")
        .env("RPM_INSTALL_PREFIX", "/usr");
    let o = run(r.path(), &cmd).unwrap();
    // std passes the variables sorted by name.
    assert_eq!(stdout(&o), "LANG=C\nPATH=/bin\nRPM_INSTALL_PREFIX=/usr\n");
    let o = run(r.path(), &Command::new("/bin/env").env_clear()).unwrap();
    assert_eq!(stdout(&o), "");
}

#[test]
fn files_land_in_dev_strata_only() {
    let Some(r) = test_root() else { return };
    let script =
        "stat -c '%n %a' /dev/.strata/*; cat /dev/.strata/data; ls -a /dev/.strata | wc -l";
    let cmd = Command::new("/bin/sh")
        .arg("/dev/.strata/script")
        .file("script", script.as_bytes().to_vec(), 0o755)
        .file("data", b"payload\n".to_vec(), 0o600);
    let o = run(r.path(), &cmd).unwrap();
    assert_eq!(
        stdout(&o),
        "/dev/.strata/data 600\n/dev/.strata/script 755\npayload\n4\n",
        "{o:?}"
    );
    assert!(
        !r.path().join("dev").exists(),
        "the files never touched the root"
    );
    // A handed-over file can be the program itself.
    let cmd = Command::new("/dev/.strata/run").arg("x").file(
        "run",
        b"#!/bin/sh\necho ran $1\n".to_vec(),
        0o755,
    );
    assert_eq!(stdout(&run(r.path(), &cmd).unwrap()), "ran x\n");
}

#[test]
fn missing_programs_are_named() {
    let Some(r) = test_root() else { return };
    let root = r.path();
    let err = run(root, &Command::new("/usr/bin/python3")).unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }));
    assert_eq!(
        err.to_string(),
        format!(
            "/usr/bin/python3: not found in image root {}",
            root.canonicalize().unwrap().display()
        )
    );
    // An absolute link resolves inside the root: the host's /usr/bin/env is not found.
    assert!(std::path::Path::new("/usr/bin/env").exists());
    std::os::unix::fs::symlink("/usr/bin/env", root.join("bin/hostenv")).unwrap();
    std::os::unix::fs::symlink("../../../../../usr/bin/env", root.join("bin/dotdot")).unwrap();
    for program in ["/bin/hostenv", "/bin/dotdot", "/bin", "/bin/busybox/x"] {
        let err = run(root, &Command::new(program)).unwrap_err();
        assert!(matches!(err, Error::NotFound { .. }), "{program}: {err}");
    }
    // Found, but what it needs to start is not there.
    std::fs::write(root.join("bin/perlish"), "#!/usr/bin/perl\n").unwrap();
    std::fs::set_permissions(
        root.join("bin/perlish"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let err = run(root, &Command::new("/bin/perlish")).unwrap_err();
    assert!(matches!(err, Error::Exec { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("interpreter or ELF loader is missing"),
        "{err}"
    );
    assert!(
        !root.join("proc").exists() && !root.join("dev").exists(),
        "mountpoints removed after a failure"
    );
}

#[test]
fn malformed_commands_are_refused() {
    let Some(r) = test_root() else { return };
    let bad = [
        Command::new("sh"),
        Command::new("/bin/sh").file("a/b", vec![], 0o644),
        Command::new("/bin/sh").file("..", vec![], 0o644),
        Command::new("/bin/sh")
            .file("x", vec![], 0o644)
            .file("x", vec![], 0o644),
        Command::new("/bin/sh").hostname(""),
        Command::new("/bin/sh").hostname("h".repeat(65)),
        Command::new("/bin/sh").env("A=B", "c"),
    ];
    for cmd in bad {
        let err = run(r.path(), &cmd).unwrap_err();
        assert!(matches!(err, Error::InvalidCommand(_)), "{cmd:?}: {err}");
    }
    let err = run(&r.path().join("nonexistent"), &Command::new("/bin/sh")).unwrap_err();
    assert!(matches!(err, Error::BadRoot { .. }), "{err}");
    std::os::unix::fs::symlink("/proc", r.path().join("proc")).unwrap();
    let err = run(r.path(), &Command::new("/bin/sh")).unwrap_err();
    assert!(err.to_string().contains("/proc is a"), "{err}");
}

#[test]
fn setup_failures_name_the_step() {
    let Some(r) = test_root() else { return };
    // Fails inside the sandbox, after the namespaces and mounts: the report names the file.
    let long = "n".repeat(300);
    let cmd = Command::new("/bin/sh")
        .file("ok", vec![], 0o644)
        .file(long.clone(), vec![], 0o644);
    let err = run(r.path(), &cmd).unwrap_err();
    assert!(
        matches!(&err, Error::Setup { source, .. } if source.raw_os_error() == Some(libc::ENAMETOOLONG)),
        "{err}"
    );
    assert!(
        err.to_string()
            .starts_with(&format!("write /dev/.strata/{long}: File name too long")),
        "{err}"
    );
    assert!(!r.path().join("proc").exists() && !r.path().join("dev").exists());
    // Files far larger than a scriptlet still fit the sandbox's /dev.
    let big = vec![b'x'; 5 << 20];
    let cmd = Command::new("/bin/sh")
        .args(["-c", "wc -c < /dev/.strata/big"])
        .file("big", big, 0o644);
    assert_eq!(
        stdout(&run(r.path(), &cmd).unwrap()),
        format!("{}\n", 5 << 20)
    );
}
