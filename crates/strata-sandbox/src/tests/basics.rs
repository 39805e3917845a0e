//! Status, pipes, environment, handed-over files and the errors of a command, through
//! both executors.

use super::{backends, host_processes, sh, stdout, test_root};
use crate::{Command, Error, ExitStatus};
use std::time::{Duration, Instant};

#[test]
fn exit_codes_propagate() {
    let Some(r) = test_root() else { return };
    for (name, sb) in backends().iter() {
        // 137 is also what runc itself exits with for a program killed by SIGKILL.
        for (script, code) in [
            ("true", 0),
            ("exit 3", 3),
            ("exit 137", 137),
            ("exit 255", 255),
        ] {
            let o = sh(sb, r.path(), script);
            assert_eq!(
                o.status,
                ExitStatus {
                    code: Some(code),
                    signal: None
                },
                "{name}: {script}"
            );
        }
        assert!(sh(sb, r.path(), "true").status.success(), "{name}");
        assert_eq!(sh(sb, r.path(), "exit 3").status.to_string(), "exit code 3");
    }
}

#[test]
fn death_by_signal_propagates() {
    let Some(r) = test_root() else { return };
    let (crash, crash_signal) = crate::runtime::probe::crash_program().expect("x86_64 or aarch64");
    std::fs::write(r.path().join("bin/crash"), crash).unwrap();
    std::fs::set_permissions(
        r.path().join("bin/crash"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    for (name, sb) in backends().iter() {
        // The kernel's own signal for a fault: pid 1 cannot ignore it.
        let o = sb.run(r.path(), &Command::new("/bin/crash")).unwrap();
        assert_eq!(
            o.status,
            ExitStatus {
                code: None,
                signal: Some(crash_signal)
            },
            "{name}: {o:?}"
        );
        // Pid 1 of a namespace ignores other signals from inside it and from the host
        // unless it handles them; SIGKILL from the host (a timeout, an operator) is the
        // one that always reaches it.
        let marker = format!("strata-signal-test-{name}");
        let script = "while :; do sleep 1; done";
        let args = ["/bin/sh", "-c", script, marker.as_str()];
        let cmd = Command::new("/bin/sh").args(["-c", script, &marker]);
        let o = std::thread::scope(|s| {
            let runner = s.spawn(|| sb.run(r.path(), &cmd));
            let start = Instant::now();
            // The shell's forks share its command line until they exec: pick pid 1 by its
            // NSpid.
            let is_init = |pid: &u32| {
                let status =
                    std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
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
                    "{name}: the sandboxed shell never appeared on the host"
                );
                std::thread::sleep(Duration::from_millis(20));
            };
            rustix::process::kill_process(
                rustix::process::Pid::from_raw(pid as i32).unwrap(),
                rustix::process::Signal::KILL,
            )
            .unwrap();
            runner.join().unwrap().unwrap()
        });
        assert_eq!(
            o.status,
            ExitStatus {
                code: None,
                signal: Some(9)
            },
            "{name}"
        );
        assert_eq!(o.status.to_string(), "killed by signal 9");
    }
}

#[test]
fn stdout_stderr_and_stdin() {
    let Some(r) = test_root() else { return };
    let big: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    for (name, sb) in backends().iter() {
        let o = sh(sb, r.path(), "echo out; echo err >&2; echo more");
        assert_eq!(
            (stdout(&o).as_str(), o.stderr.as_slice()),
            ("out\nmore\n", &b"err\n"[..]),
            "{name}"
        );
        // More than a pipe holds, both ways at once: nothing may deadlock.
        let cmd = Command::new("/bin/sh")
            .args(["-c", "cat; cat /bin/busybox >&2"])
            .stdin_bytes(big.clone());
        let o = sb.run(r.path(), &cmd).unwrap();
        assert!(
            o.stdout == big,
            "{name}: stdin comes back whole ({} of {} bytes)",
            o.stdout.len(),
            big.len()
        );
        assert_eq!(
            o.stderr,
            std::fs::read(r.path().join("bin/busybox")).unwrap(),
            "{name}"
        );
        // Without stdin bytes the program reads end of file at once.
        let o = sb.run(r.path(), &Command::new("/bin/cat")).unwrap();
        assert!(o.status.success() && o.stdout.is_empty(), "{name}: {o:?}");
        // A program that never reads a large stdin still finishes.
        let cmd = Command::new("/bin/true").stdin_bytes(big.clone());
        assert!(sb.run(r.path(), &cmd).unwrap().status.success(), "{name}");
    }
}

#[test]
fn environment_is_exactly_the_commands() {
    let Some(r) = test_root() else { return };
    std::fs::write(
        r.path().join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nalice:x:1000:1000::/home/alice:/bin/sh\n",
    )
    .unwrap();
    for (name, sb) in backends().iter() {
        // The test process has HOME, PATH, CARGO_* and more: none of it may come through.
        // HOME comes from the root's passwd when the command has none, as runc does.
        let o = sb.run(r.path(), &Command::new("/bin/env")).unwrap();
        assert_eq!(
            stdout(&o),
            "HOME=/root\nPATH=/sbin:/bin:/usr/sbin:/usr/bin\n",
            "{name}"
        );
        let cmd = Command::new("/bin/env")
            .env("PATH", "/bin")
            .env("RPM_INSTALL_PREFIX", "/usr")
            .env("LANG", "C")
            .env("EMPTY", "")
            .env("SPACED", "a b  c");
        let o = sb.run(r.path(), &cmd).unwrap();
        // Sorted by name, whatever order they were given in.
        assert_eq!(
            stdout(&o),
            "EMPTY=\nHOME=/root\nLANG=C\nPATH=/bin\nRPM_INSTALL_PREFIX=/usr\nSPACED=a b  c\n",
            "{name}"
        );
        let cmd = Command::new("/bin/env").env_clear().env("HOME", "/srv");
        assert_eq!(
            stdout(&sb.run(r.path(), &cmd).unwrap()),
            "HOME=/srv\n",
            "{name}"
        );
        let cmd = Command::new("/bin/env").env_clear().user("alice");
        assert_eq!(
            stdout(&sb.run(r.path(), &cmd).unwrap()),
            "HOME=/home/alice\n",
            "{name}"
        );
        // An empty HOME is no HOME, for runc.
        let cmd = Command::new("/bin/env").env_clear().env("HOME", "");
        assert_eq!(
            stdout(&sb.run(r.path(), &cmd).unwrap()),
            "HOME=/root\n",
            "{name}"
        );
    }
}

#[test]
fn files_land_in_dev_strata_only() {
    let Some(r) = test_root() else { return };
    let script =
        "stat -c '%n %a' /dev/.strata/*; cat /dev/.strata/data; ls -a /dev/.strata | wc -l; \
                  echo y > /dev/.strata/extra && echo writable";
    for (name, sb) in backends().iter() {
        let cmd = Command::new("/bin/sh")
            .arg("/dev/.strata/script")
            .file("script", script.as_bytes().to_vec(), 0o755)
            .file("data", b"payload\n".to_vec(), 0o600);
        let o = sb.run(r.path(), &cmd).unwrap();
        assert_eq!(
            stdout(&o),
            "/dev/.strata/data 600\n/dev/.strata/script 755\npayload\n4\nwritable\n",
            "{name}: {o:?}"
        );
        assert!(
            !r.path().join("dev").exists(),
            "{name}: the files never touched the root"
        );
        // A handed-over file can be the program itself.
        let cmd = Command::new("/dev/.strata/run").arg("x").file(
            "run",
            b"#!/bin/sh\necho ran $1\n".to_vec(),
            0o755,
        );
        assert_eq!(
            stdout(&sb.run(r.path(), &cmd).unwrap()),
            "ran x\n",
            "{name}"
        );
        // Far larger than a scriptlet.
        let cmd = Command::new("/bin/sh")
            .args(["-c", "wc -c < /dev/.strata/big"])
            .file("big", vec![b'x'; 5 << 20], 0o644);
        assert_eq!(
            stdout(&sb.run(r.path(), &cmd).unwrap()),
            format!("{}\n", 5 << 20),
            "{name}"
        );
    }
}

#[test]
fn missing_programs_are_named() {
    let Some(r) = test_root() else { return };
    let root = r.path();
    // An absolute link resolves inside the root: the host's /usr/bin/env is not found.
    assert!(std::path::Path::new("/usr/bin/env").exists());
    std::os::unix::fs::symlink("/usr/bin/env", root.join("bin/hostenv")).unwrap();
    std::os::unix::fs::symlink("../../../../../usr/bin/env", root.join("bin/dotdot")).unwrap();
    std::fs::write(root.join("bin/perlish"), "#!/usr/bin/perl\n").unwrap();
    std::fs::set_permissions(
        root.join("bin/perlish"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    for (name, sb) in backends().iter() {
        let err = sb.run(root, &Command::new("/usr/bin/python3")).unwrap_err();
        assert!(matches!(err, Error::NotFound { .. }), "{name}: {err}");
        assert_eq!(
            err.to_string(),
            format!(
                "/usr/bin/python3: not found in image root {}",
                root.canonicalize().unwrap().display()
            )
        );
        for program in ["/bin/hostenv", "/bin/dotdot", "/bin", "/bin/busybox/x"] {
            let err = sb.run(root, &Command::new(program)).unwrap_err();
            assert!(
                matches!(err, Error::NotFound { .. }),
                "{name}: {program}: {err}"
            );
        }
        // Found, but what it needs to start is not there: no success either way. The
        // namespace code sees exec fail; a runtime reports it as the program's failure.
        match sb.run(root, &Command::new("/bin/perlish")) {
            Err(err @ Error::Exec { .. }) => assert!(
                err.to_string()
                    .contains("interpreter or ELF loader is missing"),
                "{name}: {err}"
            ),
            Ok(o) => assert!(
                !o.status.success()
                    && String::from_utf8_lossy(&o.stderr).contains("no such file or directory"),
                "{name}: {o:?}"
            ),
            Err(err) => panic!("{name}: {err}"),
        }
        assert!(
            !root.join("proc").exists() && !root.join("dev").exists(),
            "{name}: mountpoints removed after a failure"
        );
    }
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
        Command::new("/bin/sh").file("x", vec![], 0o10644),
        Command::new("/bin/sh").hostname(""),
        Command::new("/bin/sh").hostname("h".repeat(65)),
        Command::new("/bin/sh").hostname("two words"),
        Command::new("/bin/sh").env("A=B", "c"),
        Command::new("/bin/sh").cwd("relative"),
        Command::new("/bin/sh").user("a:b:c"),
        Command::new("/bin/sh").rlimit(crate::Rlimit::Nofile, 10, 5),
        Command::new("/bin/sh")
            .arg(<std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(b"\xff")),
    ];
    for (name, sb) in backends().iter() {
        for cmd in &bad {
            let err = sb.run(r.path(), cmd).unwrap_err();
            assert!(
                matches!(err, Error::InvalidCommand(_)),
                "{name}: {cmd:?}: {err}"
            );
        }
        let err = sb
            .run(&r.path().join("nonexistent"), &Command::new("/bin/sh"))
            .unwrap_err();
        assert!(matches!(err, Error::BadRoot { .. }), "{name}: {err}");
    }
    std::os::unix::fs::symlink("/proc", r.path().join("proc")).unwrap();
    for (name, sb) in backends().iter() {
        let err = sb.run(r.path(), &Command::new("/bin/sh")).unwrap_err();
        assert!(err.to_string().contains("/proc is a"), "{name}: {err}");
    }
}

#[test]
fn setup_failures_name_the_step() {
    let Some(r) = test_root() else { return };
    for (name, sb) in backends().iter() {
        // The file cannot be made: the error names it.
        let long = "n".repeat(300);
        let cmd =
            Command::new("/bin/sh")
                .file("ok", vec![], 0o644)
                .file(long.clone(), vec![], 0o644);
        let err = sb.run(r.path(), &cmd).unwrap_err();
        assert!(
            matches!(&err, Error::Setup { source, .. } if source.raw_os_error() == Some(libc::ENAMETOOLONG)),
            "{name}: {err}"
        );
        assert!(
            err.to_string()
                .starts_with(&format!("write /dev/.strata/{long}: File name too long")),
            "{name}: {err}"
        );
        assert!(!r.path().join("proc").exists() && !r.path().join("dev").exists());
        // A limit above what the kernel allows anyone fails inside the sandbox, before the
        // program: the namespace code names the step, the runtime says what it said.
        let nr_open: u64 = std::fs::read_to_string("/proc/sys/fs/nr_open")
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let cmd = Command::new("/bin/true").rlimit(crate::Rlimit::Nofile, nr_open + 1, nr_open + 1);
        let err = sb.run(r.path(), &cmd).unwrap_err();
        match (&err, name) {
            (Error::Setup { step, source }, "builtin") => {
                assert!(step.starts_with("setrlimit(Nofile"), "{err}");
                assert_eq!(source.raw_os_error(), Some(libc::EPERM), "{err}");
            }
            (
                Error::Runtime {
                    runtime,
                    message,
                    status,
                },
                "runc",
            ) => {
                assert_eq!(runtime, "runc");
                assert!(!status.success());
                assert!(message.contains("rlimit"), "the runtime's own words: {err}");
            }
            _ => panic!("{name}: {err}"),
        }
        assert!(!r.path().join("proc").exists() && !r.path().join("etc/hosts").exists());
    }
}
