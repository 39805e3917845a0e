//! Stage lifecycle, empty diffs, mount-point exclusion and the automatic fallback.

use super::roundtrip::{base_layers, Fixture, CLAMP};
use super::*;
use crate::{Backend, ChangeKind, DiffOptions, Stage, StageOptions};
use std::os::unix::fs::PermissionsExt;

fn with_mounts() -> DiffOptions {
    DiffOptions {
        clamp_mtime: Some(CLAMP),
        ephemeral: ["/etc/hosts", "/etc/resolv.conf", "/etc/hostname", "/run/secrets"].map(String::from).to_vec(),
    }
}

fn changes(d: &crate::Diff) -> Vec<(String, ChangeKind)> {
    d.changes().iter().map(|c| (c.path.clone(), c.kind)).collect()
}

#[test]
fn steps_that_change_nothing_give_an_empty_diff() {
    if !have_root() {
        return;
    }
    let fx = Fixture::new(base_layers());
    for backend in [Backend::Overlay, Backend::Plain] {
        let stage = fx.stage(backend);
        assert!(stage.diff(&with_mounts()).unwrap().is_empty(), "{backend:?}: untouched");
        let root = stage.root();
        // Temporary files, no-op metadata changes and the runtime's mount points.
        fs::write(root.join("tmp/scratch"), "gone soon").unwrap();
        fs::remove_file(root.join("tmp/scratch")).unwrap();
        fs::set_permissions(root.join("etc/passwd"), fs::Permissions::from_mode(0o644)).unwrap();
        drop(fs::File::options().append(true).open(root.join("usr/bin/tool")).unwrap());
        fs::write(root.join("etc/hosts"), "").unwrap();
        fs::create_dir_all(root.join("run/secrets")).unwrap();
        let d = stage.diff(&with_mounts()).unwrap();
        assert!(d.is_empty(), "{backend:?}: {:?}", changes(&d));
        let (blob, _) = finish(stage.diff(&with_mounts()).unwrap().into_layer());
        assert!(tar_names(&blob).is_empty(), "an empty diff is an empty layer");

        // Without the exclusions the mount points are ordinary new entries.
        let d = stage.diff(&DiffOptions::default()).unwrap();
        let names: Vec<_> = changes(&d).into_iter().map(|(p, _)| p).collect();
        assert_eq!(names, ["etc/hosts", "run", "run/secrets"], "{backend:?}");
    }
}

fn tar_names(blob: &[u8]) -> Vec<String> {
    super::roundtrip::tar_entries(blob).into_iter().map(|(p, _)| p).collect()
}

#[test]
fn mount_points_are_kept_when_the_step_really_made_them() {
    if !have_root() {
        return;
    }
    let fx = Fixture::new(base_layers());
    for backend in [Backend::Overlay, Backend::Plain] {
        let stage = fx.stage(backend);
        let root = stage.root();
        fs::write(root.join("etc/resolv.conf"), "nameserver 198.51.100.1\n").unwrap();
        fs::write(root.join("etc/hostname"), "built\n").unwrap();
        fs::create_dir_all(root.join("run/secrets")).unwrap();
        fs::write(root.join("run/pid"), "1").unwrap();
        let got = changes(&stage.diff(&with_mounts()).unwrap());
        assert_eq!(
            got,
            [
                ("etc/hostname".to_string(), ChangeKind::Added),
                ("etc/resolv.conf".to_string(), ChangeKind::Modified),
                ("run".to_string(), ChangeKind::Added),
                ("run/pid".to_string(), ChangeKind::Added),
            ],
            "{backend:?}: a listed path below, or with content, is diffed; an empty one the step did not need is not"
        );
    }
}

#[test]
fn walking_diff_sees_content_behind_unchanged_size_and_mtime() {
    if !have_root() {
        return;
    }
    let fx = Fixture::new(base_layers());
    let stage = fx.stage(Backend::Plain);
    let p = stage.root().join("etc/os-release");
    let mtime = fs::metadata(&p).unwrap().modified().unwrap();
    fs::write(&p, "ID=test\n").unwrap();
    fs::File::options().write(true).open(&p).unwrap().set_modified(mtime).unwrap();
    assert!(stage.diff(&with_mounts()).unwrap().is_empty(), "rewritten with the same bytes");
    fs::write(&p, "ID=tset\n").unwrap();
    fs::File::options().write(true).open(&p).unwrap().set_modified(mtime).unwrap();
    assert_eq!(changes(&stage.diff(&with_mounts()).unwrap()), [("etc/os-release".to_string(), ChangeKind::Modified)]);
}

#[test]
fn from_scratch_and_after_unmount() {
    if !have_root() {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    for backend in [Backend::Overlay, Backend::Plain] {
        let opts = StageOptions { backend: Some(backend), ..StageOptions::default() };
        let mut stage = Stage::create(&t.path().join("stages"), &[], &opts).unwrap();
        assert_eq!(fs::read_dir(stage.root()).unwrap().count(), 0);
        fs::write(stage.root().join("hello"), "hi").unwrap();
        stage.unmount().unwrap();
        let d = stage.diff(&DiffOptions::default()).unwrap();
        assert_eq!(changes(&d), [("hello".to_string(), ChangeKind::Added)], "{backend:?}");
        let (blob, _) = finish(d.into_layer());
        assert_eq!(tar_names(&blob), ["hello"]);
        stage.remove().unwrap();
    }
    assert_eq!(fs::read_dir(t.path().join("stages")).unwrap().count(), 0);
}

#[test]
fn stale_stages_of_dead_processes_are_unmounted_and_removed() {
    if !have_root() {
        return;
    }
    let fx = Fixture::new(base_layers());
    let live = fx.stage(Backend::Overlay);
    // A dead process's stage: mounted, its lock no longer held.
    let dead = fx.stages().join("stage-dead");
    for d in ["upper", "work", "merged"] {
        fs::create_dir_all(dead.join(d)).unwrap();
    }
    fs::write(dead.join("lock"), "").unwrap();
    let lowers: Vec<_> = fx.diff_ids().iter().rev().map(|d| fx.cache.path(d).unwrap()).collect();
    crate::mount::mount(
        &crate::mount::Layout { lowers: &lowers, upper: &dead.join("upper"), work: &dead.join("work"), target: &dead.join("merged") },
        crate::MountApi::Auto,
    )
    .unwrap();
    assert!(crate::mount::is_mount_point(&dead.join("merged")));
    assert_eq!(Stage::remove_stale(&fx.stages()).unwrap(), 1);
    assert!(!dead.exists());
    assert!(live.root().join("etc/passwd").exists(), "a live stage is left alone");
}

#[test]
fn falls_back_to_a_plain_root_where_overlayfs_cannot_mount() {
    if !have_root() {
        return;
    }
    let fx = Fixture::new(base_layers());
    let outer = fx.stage(Backend::Overlay);
    // overlayfs refuses another overlay as its upper filesystem.
    let parent = outer.root().join("nested");
    let stage = Stage::from_cache(&parent, &fx.cache, &fx.diff_ids(), &StageOptions::default()).unwrap();
    assert_eq!(stage.backend(), Backend::Plain);
    assert!(stage.fallback_reason().is_some_and(|r| r.contains("overlay")), "{:?}", stage.fallback_reason());
    assert_eq!(fs::read(stage.root().join("etc/passwd")).unwrap(), b"root:x:0:0:L2\n");
    assert!(!stage.root().join("data/b").exists());
    let forced = StageOptions { backend: Some(Backend::Overlay), ..StageOptions::default() };
    assert!(Stage::from_cache(&parent, &fx.cache, &fx.diff_ids(), &forced).is_err(), "no fallback when overlay is demanded");
}
