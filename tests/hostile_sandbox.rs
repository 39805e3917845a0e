//! Hostile scriptlets and RUN steps through the real `strata` binary: what a package's
//! `%post` or a Dockerfile's `RUN` tries against the host is refused, and a fork bomb ends
//! with a clear error in seconds. (The sandbox's own tests try every attempt in both
//! executors; these prove compose and build use that sandbox.)

mod common;

use common::build::Builds;
use common::*;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::{Duration, Instant};

/// A spec with the corpus's base repo (bash, coreutils) and a fixture repo of `pkgs`.
fn spec_with(dir: &Path, pkgs: &[FixturePkg], images: serde_json::Value) -> std::path::PathBuf {
    let repo = build_fixture_repo(dir, pkgs);
    let spec = serde_json::json!({
        "repos": [
            {"id": "base", "baseurl": corpus_repo("base")},
            {"id": "fixture", "baseurl": repo},
        ],
        "images": images,
    });
    write_json(&dir.join("spec.json"), &spec)
}

fn compose(dir: &Path, spec: &Path, image: &str) -> std::process::Output {
    run(strata(&dir.join("cache"))
        .env("STRATA_STAGING_DIR", dir.join("staging"))
        .arg("compose")
        .arg(spec)
        .arg("--store")
        .arg(dir.join("store"))
        .args(["--image", image]))
}

#[test]
fn a_scriptlet_cannot_reach_the_host() {
    let dir = tempfile::tempdir().unwrap();
    let mut victim = std::process::Command::new("sleep").arg("300").spawn().unwrap();
    let marker = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(marker.path(), "host").unwrap();
    let disk = std::fs::metadata("/").unwrap().dev();
    let (major, minor) = (rustix::fs::major(disk), rustix::fs::minor(disk));
    let core_pattern = std::fs::read("/proc/sys/kernel/core_pattern").unwrap();
    // Each attempt's verdict lands in the image, where the test reads it.
    let attempts = [
        // No single quote in any of these: each is passed in single quotes below.
        ("core_pattern", "echo \"|/tmp/pwn\" > /proc/sys/kernel/core_pattern".to_string()),
        ("sys", "echo 1 > /sys/kernel/profiling".to_string()),
        ("disk", format!("mknod /tmp/disk b {major} {minor} && head -c 512 /tmp/disk > /dev/null; rc=$?; rm -f /tmp/disk; exit $rc")),
        ("mem", "mknod /dev/mem2 c 1 1 && head -c 1 /dev/mem2 > /dev/null".to_string()),
        ("kill", format!("kill -0 {}", victim.id())),
        ("marker", format!("test -e {}", marker.path().display())),
    ];
    let mut post = String::from(
        "%post -p /bin/bash\nr=/var/lib/probe-results\n: > $r\n\
         try() { if bash -c \"$2\" 2>/dev/null; then echo \"ALLOWED $1\" >> $r; else echo \"refused $1\" >> $r; fi; }\n",
    );
    for (name, script) in &attempts {
        assert!(!script.contains('\''), "{name}: a quote would end the argument early");
        post.push_str(&format!("try {name} '{script}'\n"));
    }
    // A control: the harness does tell what succeeds (writing inside the image root).
    post.push_str("try control 'echo image > /var/lib/probe-control'\n");
    post.push_str("exit 0\n");
    let probe = pkg("probe", "1", &["Requires: bash", "Requires: coreutils", &post]);
    let spec = spec_with(dir.path(), &[probe], serde_json::json!({"probe": {"packages": ["probe"]}}));
    let out = compose(dir.path(), &spec, "probe");
    assert_ok("strata compose of the probing package", &out);
    let root = umoci_unpack(&dir.path().join("store"), "probe:latest", &dir.path().join("bundle"));
    let results = std::fs::read_to_string(root.join("var/lib/probe-results")).unwrap();
    for (name, _) in &attempts {
        assert!(results.lines().any(|l| l == format!("refused {name}")), "{name}:\n{results}");
    }
    assert_eq!(results.lines().filter(|l| l.starts_with("ALLOWED")).collect::<Vec<_>>(), ["ALLOWED control"], "{results}");
    assert_eq!(results.lines().count(), attempts.len() + 1, "{results}");
    assert_eq!(std::fs::read("/proc/sys/kernel/core_pattern").unwrap(), core_pattern);
    assert_eq!(std::fs::read_to_string(marker.path()).unwrap(), "host");
    assert!(victim.try_wait().unwrap().is_none(), "the host process is alive");
    let _ = victim.kill();
    let _ = victim.wait();
}

#[test]
fn a_fork_bomb_in_a_scriptlet_ends_the_compose_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let bomb = pkg("bomb", "1", &["Requires: bash", "Requires: coreutils", "%post -p /bin/bash\nf() { f | f & }; f; sleep 120\n"]);
    let spec = spec_with(dir.path(), &[bomb], serde_json::json!({"bomb": {"packages": ["bomb"]}}));
    let start = Instant::now();
    let out = compose(dir.path(), &spec, "bomb");
    let took = start.elapsed();
    let err = assert_fails("strata compose of a fork bomb", &out);
    assert!(err.contains("bomb") && err.contains("%post"), "{err}");
    assert!(err.contains("process limit (2048 processes)") && err.contains("fork bomb"), "{err}");
    assert!(took < Duration::from_secs(60), "took {took:?} (compose included)");
    assert!(!dir.path().join("store/index.json").exists() || {
        let images = run(strata(&dir.path().join("cache")).args(["images", "--store"]).arg(dir.path().join("store")));
        !stdout(&images).contains("bomb")
    }, "no image was stored");
}

#[test]
fn a_fork_bomb_in_run_ends_the_build_with_a_clear_error() {
    let b = Builds::new();
    b.busybox_base();
    let ctx = b.context("bomb", &[("Dockerfile", "FROM bb\nRUN f() { f | f & }; f; sleep 120\n")]);
    let start = Instant::now();
    let out = b.build(&ctx, &["-t", "bomb"]);
    let took = start.elapsed();
    let err = assert_fails("strata build of a fork bomb", &out);
    assert!(err.contains("process limit (2048 processes)") && err.contains("--pids-limit"), "{err}");
    assert!(took < Duration::from_secs(30), "took {took:?}");
    // A lower limit is the user's to set, and a RUN within it is undisturbed.
    let ctx = b.context("few", &[("Dockerfile", "FROM bb\nRUN for i in 1 2 3; do sleep 0.1 & done; wait\n")]);
    assert_ok("a RUN within --pids-limit 16", &b.build(&ctx, &["--pids-limit", "16", "--memory", "256m", "-t", "few"]));
}
