//! What one run costs with each executor: N runs of busybox's `true`, and N of a
//! scriptlet-shaped run (`sh` with a handed-over body), one after the other, in a root laid
//! out as a composed image is (`/proc`, `/dev`, `/sys`, `/etc/hosts` there) and in a bare
//! one (where the sandbox creates and removes those mountpoints around every run).
//!
//! ```sh
//! sudo cargo run --release -p strata-sandbox --example overhead -- 100
//! ```
//!
//! Needs root and `/bin/busybox` (busybox-static); runtimes that do not work here are
//! reported and skipped.

use std::time::{Duration, Instant};
use strata_sandbox::{Backend, Command, Sandbox};

fn main() {
    let n: u32 = std::env::args()
        .nth(1)
        .map(|a| a.parse().expect("a number of runs"))
        .unwrap_or(100);
    let bare = tempfile::tempdir().expect("a scratch root");
    let bin = bare.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    std::fs::copy("/bin/busybox", bin.join("busybox")).expect("/bin/busybox (busybox-static)");
    for applet in ["sh", "true"] {
        std::os::unix::fs::symlink("busybox", bin.join(applet)).unwrap();
    }
    let image = tempfile::tempdir().expect("a scratch root");
    std::fs::create_dir(image.path().join("bin")).unwrap();
    std::fs::copy(bin.join("busybox"), image.path().join("bin/busybox")).unwrap();
    for applet in ["sh", "true"] {
        std::os::unix::fs::symlink("busybox", image.path().join("bin").join(applet)).unwrap();
    }
    for dir in ["proc", "dev", "sys", "etc", "tmp"] {
        std::fs::create_dir(image.path().join(dir)).unwrap();
    }
    std::fs::write(image.path().join("etc/hosts"), "127.0.0.1 localhost\n").unwrap();
    std::fs::write(
        image.path().join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\n",
    )
    .unwrap();
    let runs = [
        ("/bin/true", Command::new("/bin/true")),
        (
            "sh scriptlet",
            Command::new("/bin/sh")
                .arg("/dev/.strata/scriptlet")
                .arg("1")
                .file(
                    "scriptlet",
                    b"echo configured > /dev/null\n".to_vec(),
                    0o700,
                )
                .env("HOME", "/root"),
        ),
    ];
    for backend in [
        Backend::Builtin,
        Backend::Runtime("runc".into()),
        Backend::Runtime("crun".into()),
    ] {
        let start = Instant::now();
        let sandbox = match Sandbox::new(backend.clone()) {
            Ok(s) => s,
            Err(e) => {
                println!("{backend:?}: skipped: {e}");
                continue;
            }
        };
        println!(
            "{backend:?}: ready in {:.1} ms (probe included)",
            ms(start.elapsed())
        );
        for (root, kind) in [(image.path(), "image root"), (bare.path(), "bare root")] {
            for (what, cmd) in &runs {
                let out = sandbox.run(root, cmd).expect("a warm-up run");
                assert!(out.status.success(), "{out:?}");
                let cpu = cpu_time();
                let start = Instant::now();
                for _ in 0..n {
                    let out = sandbox.run(root, cmd).expect("a run");
                    assert!(out.status.success(), "{out:?}");
                }
                let each = start.elapsed() / n;
                let cpu_each = (cpu_time() - cpu) / n;
                println!(
                    "  {kind}, {what:<12} {n} runs: {:6.2} ms per run ({:4.0} runs/s), {:5.2} ms of CPU per run",
                    ms(each),
                    1.0 / each.as_secs_f64(),
                    ms(cpu_each)
                );
            }
        }
    }
    assert!(!bare.path().join("proc").exists() && !bare.path().join("etc").exists());
}

/// User and system time of this process and of every child it has reaped (the runtime,
/// and through the supervisor the program): what a run costs whatever else the machine
/// is doing, unlike wall time.
fn cpu_time() -> Duration {
    let used = |who| {
        // SAFETY: getrusage only writes the struct it is given.
        let mut u: libc::rusage = unsafe { std::mem::zeroed() };
        unsafe { libc::getrusage(who, &mut u) };
        let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
        tv(u.ru_utime) + tv(u.ru_stime)
    };
    used(libc::RUSAGE_SELF) + used(libc::RUSAGE_CHILDREN)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
