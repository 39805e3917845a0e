//! A hostile program's attempts on the host, a fork bomb and a memory runaway, through both
//! executors, and a killed strata taking its sandbox with it: the sandbox as a boundary.

use super::{backends, host_processes, stdout, test_root};
use crate::{Capabilities, Command, Error, LimitKind, Limits};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// `data/escape.c`, built statically once (gcc and the static glibc are on every machine
/// that builds strata: `cc` links its build scripts).
fn escape_program() -> PathBuf {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| {
            let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/tests/data/escape.c");
            let out = std::env::temp_dir().join(format!("strata-escape-{}", std::process::id()));
            let status = std::process::Command::new("gcc")
                .args(["-static", "-O1", "-o"])
                .arg(&out)
                .arg(&src)
                .status()
                .expect("gcc is needed to build the escape test program (apt-get install gcc libc6-dev)");
            assert!(status.success(), "gcc -static {}", src.display());
            out
        })
        .clone()
}

/// Every line of the program's report must say the attempt was refused.
fn assert_all_refused(name: &str, report: &str, expected: &[&str]) {
    for attempt in expected {
        let line = report
            .lines()
            .find(|l| l.split_whitespace().next() == Some(attempt))
            .unwrap_or_else(|| panic!("{name}: no line for {attempt} in:\n{report}"));
        assert!(line.contains(" refused "), "{name}: {line}\n{report}");
    }
    assert!(!report.contains("ALLOWED"), "{name}:\n{report}");
}

const ATTEMPTS: &[&str] = &[
    "mknod-block-disk",
    "mknod-block-in-dev",
    "mknod-char-mem",
    "mknod-char-kmsg",
    "mount-tmpfs",
    "mount-proc",
    "remount-proc-sys-rw",
    "umount-proc-sys",
    "write-core-pattern",
    "write-proc-sys-vm",
    "write-sysrq-trigger",
    "write-sys-uevent-helper",
    "write-sys-kernel-profiling",
    "ptrace-host-process",
    "kill-host-process",
    "socket-raw-inet",
    "socket-packet",
    "finit-module",
    "init-module",
    "delete-module",
    "unshare-user",
    "unshare-mount",
    "setns",
    "keyctl",
    "open-by-handle-at",
    "reboot",
    "sethostname",
    "io-uring-setup",
    "bpf",
    "perf-event-open",
    "chroot-breakout-sees-host-marker",
];

#[test]
fn a_hostile_program_cannot_reach_the_host() {
    let Some(r) = test_root() else { return };
    let program = escape_program();
    std::fs::create_dir_all(r.path().join("usr/bin")).unwrap();
    std::fs::copy(&program, r.path().join("usr/bin/escape")).unwrap();
    // A host process to attack, a host file to find, the host's disk to open.
    let mut victim = std::process::Command::new("sleep").arg("300").spawn().unwrap();
    let marker = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(marker.path(), "host").unwrap();
    let disk = std::fs::metadata("/").unwrap().dev();
    let (major, minor) = (rustix::fs::major(disk), rustix::fs::minor(disk));
    let core_pattern = std::fs::read("/proc/sys/kernel/core_pattern").unwrap();
    let hostname = rustix::system::uname().nodename().to_owned();
    let mounts_before = std::fs::read_to_string("/proc/self/mountinfo").unwrap().lines().count();
    for (name, sb) in backends().iter() {
        let cmd = Command::new("/usr/bin/escape")
            .arg(victim.id().to_string())
            .arg(major.to_string())
            .arg(minor.to_string())
            .arg(marker.path())
            .capabilities(Capabilities::Scriptlet);
        let out = sb.run(r.path(), &cmd).unwrap();
        let report = stdout(&out);
        assert!(out.status.success(), "{name}: {report}{}", String::from_utf8_lossy(&out.stderr));
        assert_all_refused(name, &report, ATTEMPTS);
        // RUN keeps docker's set, raw sockets included (as under docker), and nothing more.
        let out = sb.run(r.path(), &cmd.clone().capabilities(Capabilities::DockerDefault)).unwrap();
        let report = stdout(&out);
        let without_raw: Vec<&str> =
            ATTEMPTS.iter().copied().filter(|a| *a != "socket-raw-inet" && *a != "socket-packet").collect();
        for attempt in &without_raw {
            let line = report.lines().find(|l| l.starts_with(&format!("{attempt} "))).unwrap();
            assert!(line.contains(" refused "), "{name} (docker's set): {line}");
        }
    }
    // The host as it was.
    assert_eq!(std::fs::read("/proc/sys/kernel/core_pattern").unwrap(), core_pattern);
    assert_eq!(rustix::system::uname().nodename(), hostname.as_c_str());
    assert_eq!(std::fs::read_to_string(marker.path()).unwrap(), "host");
    let status = std::fs::read_to_string(format!("/proc/{}/status", victim.id())).unwrap();
    assert!(status.lines().any(|l| l == "TracerPid:\t0"), "{status}");
    assert!(victim.try_wait().unwrap().is_none(), "the host process is alive");
    let _ = victim.kill();
    let _ = victim.wait();
    let mounts_after = std::fs::read_to_string("/proc/self/mountinfo").unwrap().lines().count();
    assert_eq!(mounts_before, mounts_after, "no mount leaked to the host");
    // Nodes the program made in the root stay entries of the root (removed by it here).
    assert!(!r.path().join("tmp/disk").exists());
}

/// Runs `script` under `limits` and returns the error and how long it took.
fn limited(script: &str, limits: Limits) -> Vec<(&'static str, Result<crate::Output, Error>, Duration)> {
    let Some(r) = test_root() else { return Vec::new() };
    let mut results = Vec::new();
    for (name, sb) in backends().iter() {
        let cmd = Command::new("/bin/sh").args(["-c", script]).limits(limits);
        let start = Instant::now();
        let result = sb.run(r.path(), &cmd);
        results.push((name, result, start.elapsed()));
    }
    results
}

/// The longest a host `true` took to start and finish while `busy` ran.
fn host_latency_during(busy: impl FnOnce()) -> Duration {
    let stop = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        let probe = s.spawn(|| {
            let mut worst = Duration::ZERO;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let t = Instant::now();
                let _ = std::process::Command::new("true").status();
                worst = worst.max(t.elapsed());
                std::thread::sleep(Duration::from_millis(100));
            }
            worst
        });
        busy();
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        probe.join().unwrap()
    })
}

#[test]
fn a_fork_bomb_ends_with_a_clear_error() {
    // The default limits: what a scriptlet or RUN gets without asking.
    let mut results = Vec::new();
    let worst = host_latency_during(|| {
        results = limited("f() { f | f & }; f; sleep 120", Limits::default());
    });
    for (name, result, took) in results {
        match result {
            Err(e @ Error::Limit { kind: LimitKind::Processes, .. }) => {
                let text = e.to_string();
                assert!(text.contains("process limit (2048 processes)"), "{name}: {text}");
                assert!(text.contains("fork bomb"), "{name}: {text}");
            }
            other => panic!("{name}: {other:?}"),
        }
        assert!(took < Duration::from_secs(30), "{name}: took {took:?}");
    }
    assert!(worst < Duration::from_secs(5), "the host stayed responsive: {worst:?}");
    assert!(host_processes(&["sleep", "120"]).is_empty(), "nothing of it is left");
}

#[test]
fn a_memory_runaway_ends_with_a_clear_error() {
    let limits = Limits {
        memory: Some(64 << 20),
        ..Limits::default()
    };
    for (name, result, took) in limited("x=0123456789; while true; do x=$x$x; done", limits) {
        match result {
            Err(e @ Error::Limit { kind: LimitKind::Memory, .. }) => {
                assert!(e.to_string().contains("memory limit (64 MiB of memory)"), "{name}: {e}");
            }
            other => panic!("{name}: {other:?}"),
        }
        assert!(took < Duration::from_secs(30), "{name}: took {took:?}");
    }
}

#[test]
fn a_program_within_its_limits_is_not_disturbed() {
    let limits = Limits {
        pids: 16,
        memory: Some(64 << 20),
    };
    // Eight processes at once, well under sixteen.
    let script = "for i in 1 2 3 4 5 6 7 8; do sleep 0.2 & done; wait; echo done";
    for (name, result, _) in limited(script, limits) {
        let out = result.unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(stdout(&out), "done\n", "{name}");
    }
}

/// Run by [`a_killed_strata_takes_its_sandbox_with_it`] in a child process: starts a
/// sandboxed `sleep` and waits to be killed.
#[test]
#[ignore = "a helper, run by a_killed_strata_takes_its_sandbox_with_it"]
fn sandbox_victim() {
    let Some(root) = std::env::var_os("STRATA_SANDBOX_VICTIM_ROOT") else { return };
    let backend = std::env::var("STRATA_SANDBOX_VICTIM_BACKEND").unwrap();
    let sb = super::sandbox(&backend, Path::new(crate::DEFAULT_STATE_DIR));
    let marker = std::env::var("STRATA_SANDBOX_VICTIM_MARKER").unwrap();
    let _ = sb.run(Path::new(&root), &Command::new("/bin/sleep").arg(marker));
}

#[test]
fn a_killed_strata_takes_its_sandbox_with_it() {
    let Some(r) = test_root() else { return };
    for backend in super::BACKENDS {
        // A distinct sleep length names this run's process among the host's.
        let marker = format!("{}", 7000 + std::process::id() % 1000);
        let mut child = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "tests::hostile::sandbox_victim", "--ignored", "--nocapture"])
            .env("STRATA_SANDBOX_VICTIM_ROOT", r.path())
            .env("STRATA_SANDBOX_VICTIM_BACKEND", backend)
            .env("STRATA_SANDBOX_VICTIM_MARKER", &marker)
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let started = Instant::now();
        while host_processes(&["/bin/sleep", &marker]).is_empty() {
            assert!(started.elapsed() < Duration::from_secs(30), "{backend}: the sandboxed sleep never started");
            std::thread::sleep(Duration::from_millis(50));
        }
        rustix::process::kill_process(
            rustix::process::Pid::from_raw(child.id() as i32).unwrap(),
            rustix::process::Signal::KILL,
        )
        .unwrap();
        let _ = child.wait();
        let killed = Instant::now();
        while !host_processes(&["/bin/sleep", &marker]).is_empty() {
            assert!(
                killed.elapsed() < Duration::from_secs(10),
                "{backend}: the sandboxed program outlived the strata process that ran it"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

#[test]
fn a_canceled_run_ends_within_a_second() {
    let Some(r) = test_root() else { return };
    for (name, sb) in backends().iter() {
        let flag = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let setter = flag.clone();
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(500));
            setter.store(true, std::sync::atomic::Ordering::SeqCst);
            Instant::now()
        });
        let cmd = Command::new("/bin/sh").args(["-c", "sleep 100 & sleep 100; wait"]).cancel_on(flag);
        let result = sb.run(r.path(), &cmd);
        let ended = Instant::now();
        let set = t.join().unwrap();
        assert!(matches!(result, Err(Error::Canceled { .. })), "{name}: {result:?}");
        assert!(ended - set < Duration::from_secs(1), "{name}: {:?} after the cancel", ended - set);
    }
    assert!(host_processes(&["sleep", "100"]).is_empty(), "nothing of it is left");
}
