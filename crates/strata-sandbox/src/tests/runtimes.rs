//! Choosing an executor: the probe, `Auto`, missing and broken runtimes, and the cleanup
//! after strata processes that were killed.

use super::{exclusive, leftovers, sandbox, test_root};
use crate::runtime::probe::exit_program;
use crate::runtime::Runtime;
use crate::{Backend, Command, Error, Executor, Sandbox, AUTO_RUNTIMES};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

#[test]
fn the_probe_program_runs_in_both_executors() {
    let Some(r) = test_root() else { return };
    let program = exit_program(42).expect("x86_64 or aarch64");
    std::fs::write(r.path().join("probe"), program).unwrap();
    std::fs::set_permissions(r.path().join("probe"), PermissionsExt::from_mode(0o755)).unwrap();
    for (name, sb) in super::backends().iter() {
        let o = sb.run(r.path(), &Command::new("/probe")).unwrap();
        assert_eq!(o.status.code, Some(42), "{name}: {o:?}");
    }
}

#[test]
fn auto_takes_the_first_runtime_that_works() {
    let Some(r) = test_root() else { return };
    let _runs = super::shared();
    let sb = Sandbox::new(Backend::Auto).unwrap();
    let Executor::Runtime(path) = sb.executor() else {
        panic!(
            "runc works here, so Auto must pick a runtime: {:?}",
            sb.notes()
        )
    };
    let chosen = AUTO_RUNTIMES
        .iter()
        .position(|n| path.file_name().unwrap() == *n)
        .unwrap();
    // Every runtime before it was tried and passed over, saying why.
    assert_eq!(sb.notes().len(), chosen, "{:?}", sb.notes());
    for (note, name) in sb.notes().iter().zip(AUTO_RUNTIMES) {
        assert!(note.contains(name), "{note}");
    }
    if chosen > 0 && Runtime::locate(Path::new("crun")).is_ok() {
        // On hybrid cgroups crun installs fine and fails at its first run.
        assert!(!sb.notes()[0].contains("not installed"), "{:?}", sb.notes());
    }
    let o = sb
        .run(r.path(), &Command::new("/bin/sh").args(["-c", "echo auto"]))
        .unwrap();
    assert_eq!(o.stdout, b"auto\n");
}

#[test]
fn a_missing_runtime_is_named() {
    let Some(_) = test_root() else { return };
    for program in ["strata-no-such-runtime", "/nonexistent/runc"] {
        let Err(err) = Sandbox::new(Backend::Runtime(program.into())) else {
            panic!("{program} does not exist")
        };
        assert!(matches!(err, Error::RuntimeNotFound { .. }), "{err}");
        assert!(err.to_string().contains(program), "{err}");
        assert!(err.to_string().contains("apt-get install runc"), "{err}");
    }
}

/// A runtime that fails as runc does when it cannot start a container: a message on
/// stderr, exit code 1.
fn broken_runtime(dir: &Path) -> PathBuf {
    let path = dir.join("broken-runtime");
    std::fs::write(
        &path,
        "#!/bin/sh\necho \"broken-runtime: cannot start container: no cgroup for you\" >&2\nexit 1\n",
    )
    .unwrap();
    std::fs::set_permissions(&path, PermissionsExt::from_mode(0o755)).unwrap();
    path
}

#[test]
fn a_runtime_that_fails_before_the_program_says_why() {
    let Some(r) = test_root() else { return };
    let dir = tempfile::tempdir().unwrap();
    let broken = broken_runtime(dir.path());
    let err = match Sandbox::with_state_dir(Backend::Runtime(broken.clone()), dir.path()) {
        Err(e) => e,
        Ok(_) => panic!("the probe must fail"),
    };
    assert!(matches!(err, Error::RuntimeUnusable { .. }), "{err}");
    assert!(err.to_string().contains("no cgroup for you"), "{err}");
    // A run with it: the runtime's words, its status, and nothing left behind.
    let _alone = exclusive();
    let state = tempfile::tempdir().unwrap();
    let runtime = Runtime::locate(&broken).unwrap();
    let before = super::listing(r.path());
    let err = runtime
        .run(r.path(), &Command::new("/bin/true"), state.path())
        .unwrap_err();
    match &err {
        Error::Runtime {
            runtime,
            status,
            message,
        } => {
            assert_eq!(runtime, "broken-runtime");
            assert_eq!(status.code, Some(1));
            assert_eq!(
                message,
                "broken-runtime: cannot start container: no cgroup for you"
            );
        }
        other => panic!("{other}"),
    }
    assert!(
        err.to_string()
            .starts_with("broken-runtime could not start the program (exit code 1): "),
        "{err}"
    );
    assert_eq!(super::listing(r.path()), before);
    assert_eq!(leftovers(state.path()), Vec::<String>::new());
}

#[test]
fn leftovers_of_killed_strata_processes_are_removed() {
    let Some(r) = test_root() else { return };
    let _alone = exclusive();
    let state = tempfile::tempdir().unwrap();
    let program = exit_program(0).expect("x86_64 or aarch64");
    std::fs::write(r.path().join("probe"), program).unwrap();
    std::fs::set_permissions(r.path().join("probe"), PermissionsExt::from_mode(0o755)).unwrap();
    // A process that is gone: this pid with another start time. Its run directory and a
    // stopped container of its, as `runc run --detach` leaves one until `delete`.
    let dead = format!("strata-{}-1-0", std::process::id());
    let bundle = state.path().join("runs").join(&dead);
    std::fs::create_dir_all(&bundle).unwrap();
    let spec = serde_json::json!({
        "ociVersion": "1.0.2",
        "root": {"path": r.path().canonicalize().unwrap(), "readonly": false},
        "process": {"args": ["/probe"], "cwd": "/", "user": {"uid": 0, "gid": 0}},
        "mounts": [{"destination": "/proc", "type": "proc", "source": "proc"}],
        "linux": {"namespaces": [{"type": "pid"}, {"type": "mount"}]}
    });
    std::fs::write(bundle.join("config.json"), spec.to_string()).unwrap();
    std::fs::create_dir(r.path().join("proc")).unwrap();
    let runc = Runtime::locate(Path::new("runc")).expect("apt-get install runc");
    let runc_root = state.path().join("runtimes/runc");
    let status = std::process::Command::new(&runc.path)
        .arg("--root")
        .arg(&runc_root)
        .args(["run", "--detach", "--bundle"])
        .arg(&bundle)
        .arg(&dead)
        .status()
        .unwrap();
    assert!(status.success());
    assert!(runc_root.join(&dead).exists());
    // Not strata's, or a live strata process's: kept.
    let foreign = state.path().join("runs/someone-else");
    std::fs::create_dir(&foreign).unwrap();
    let live = crate::rundir::RunDir::new(state.path()).unwrap();
    let _sb = sandbox("runc", state.path());
    assert!(
        !runc_root.join(&dead).exists(),
        "the dead process's container is deleted"
    );
    assert!(!bundle.exists(), "and its run directory removed");
    assert!(foreign.exists() && live.path().exists());
    drop(live);
    std::fs::remove_dir(&foreign).unwrap();
    assert_eq!(leftovers(state.path()), Vec::<String>::new());
}
