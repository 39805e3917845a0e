//! Hostile tarballs: each is either refused or neutralised, and a sentinel directory
//! outside the target is never touched.

use super::*;
use crate::{extract, DeviceNodes, Error, ExtractOptions, Whiteouts};
use std::path::PathBuf;

struct Arena {
    _t: tempfile::TempDir,
    target: PathBuf,
    outside: PathBuf,
}

impl Arena {
    fn new() -> Arena {
        let t = tempfile::tempdir().unwrap();
        let target = t.path().join("target");
        let outside = t.path().join("outside");
        fs::create_dir(&target).unwrap();
        fs::create_dir(&outside).unwrap();
        fs::write(outside.join("sentinel"), "untouched").unwrap();
        Arena { _t: t, target, outside }
    }

    fn outside_abs(&self) -> Vec<u8> {
        self.outside.as_os_str().as_encoded_bytes().to_vec()
    }

    fn run(&self, tar: &RawTar, opts: &ExtractOptions) -> crate::Result<crate::Extracted> {
        let r = extract(&tar.finish()[..], &self.target, opts);
        self.assert_outside_untouched();
        r
    }

    fn assert_outside_untouched(&self) {
        let names: Vec<_> = fs::read_dir(&self.outside).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, ["sentinel"], "something was written outside the target");
        assert_eq!(fs::read_to_string(self.outside.join("sentinel")).unwrap(), "untouched");
        assert_eq!(fs::metadata(self.outside.join("sentinel")).unwrap().nlink(), 1, "no hardlink to the sentinel");
    }
}

fn both_modes() -> [ExtractOptions; 2] {
    [ExtractOptions::default(), ExtractOptions { whiteouts: Whiteouts::OverlayMarkers, ..ExtractOptions::default() }]
}

fn hostile(r: crate::Result<crate::Extracted>) {
    assert!(matches!(r, Err(Error::Hostile { .. })), "expected a refusal, got {r:?}");
}

#[test]
fn dot_dot_names_are_refused() {
    if !have_root() {
        return;
    }
    for opts in both_modes() {
        for name in [&b"../outside/evil"[..], b"a/../../outside/evil", b"./../../../../../../tmp/evil", b"a/.."] {
            let a = Arena::new();
            let mut t = RawTar::default();
            t.add(E::file(name, b"evil"));
            hostile(a.run(&t, &opts));
        }
    }
}

#[test]
fn absolute_names_land_inside() {
    if !have_root() {
        return;
    }
    let a = Arena::new();
    let name = [a.outside_abs(), b"/evil".to_vec()].concat();
    let mut t = RawTar::default();
    t.add(E::file(&name, b"inside after all"));
    a.run(&t, &ExtractOptions::default()).unwrap();
    let inside = a.target.join(a.outside.strip_prefix("/").unwrap()).join("evil");
    assert_eq!(fs::read(inside).unwrap(), b"inside after all");
}

#[test]
fn writes_through_planted_symlinks_stay_inside() {
    if !have_root() {
        return;
    }
    for opts in both_modes() {
        // An absolute link to the outside: its target does not exist inside, so the write is
        // refused rather than followed to the host.
        let a = Arena::new();
        let abs = a.outside_abs();
        let mut t = RawTar::default();
        t.add(E::symlink(b"link", &abs)).add(E::file(b"link/evil", b"evil"));
        assert!(a.run(&t, &opts).is_err());

        // A relative link climbing out is clamped at the target's root.
        let a = Arena::new();
        let mut t = RawTar::default();
        t.add(E::symlink(b"up", b"../../../../../../../..")).add(E::file(b"up/outside/evil", b"clamped"));
        a.run(&t, &opts).unwrap();
        assert_eq!(fs::read(a.target.join("outside/evil")).unwrap(), b"clamped");

        // A final component that is a symlink is replaced, never written through.
        let a = Arena::new();
        std::os::unix::fs::symlink(a.outside.join("sentinel"), a.target.join("victim")).unwrap();
        let mut t = RawTar::default();
        t.add(E::file(b"victim", b"replaces the link"));
        a.run(&t, &opts).unwrap();
        assert_eq!(fs::read(a.target.join("victim")).unwrap(), b"replaces the link");

        // A directory entry over a symlink to the outside replaces the link too.
        let a = Arena::new();
        std::os::unix::fs::symlink(&a.outside, a.target.join("dirlink")).unwrap();
        let mut t = RawTar::default();
        t.add(E::dir(b"dirlink/").mode(0o700)).add(E::file(b"dirlink/x", b"x"));
        a.run(&t, &opts).unwrap();
        assert!(a.target.join("dirlink").symlink_metadata().unwrap().is_dir());
    }
}

#[test]
fn hardlinks_never_reach_outside() {
    if !have_root() {
        return;
    }
    let host_passwd = fs::metadata("/etc/passwd").map(|m| m.nlink()).ok();
    for opts in both_modes() {
        for target in [&b"/etc/passwd"[..], b"etc/passwd"] {
            let a = Arena::new();
            let mut t = RawTar::default();
            t.add(E::hardlink(b"pw", target));
            hostile(a.run(&t, &opts));
        }
        let a = Arena::new();
        let sentinel = [a.outside_abs(), b"/sentinel".to_vec()].concat();
        for target in [&b"../outside/sentinel"[..], &sentinel] {
            let mut t = RawTar::default();
            t.add(E::hardlink(b"s", target));
            hostile(a.run(&t, &opts));
        }
        // Through a symlink planted in the same layer.
        let a = Arena::new();
        let abs = a.outside_abs();
        let mut t = RawTar::default();
        t.add(E::symlink(b"l", &abs)).add(E::hardlink(b"s", b"l/sentinel"));
        hostile(a.run(&t, &opts));
        // The image's own /etc/passwd is fine.
        let a = Arena::new();
        let mut t = RawTar::default();
        t.add(E::dir(b"etc/")).add(E::file(b"etc/passwd", b"root:x:0:0::/root:/bin/sh\n")).add(E::hardlink(b"pw", b"/etc/passwd"));
        a.run(&t, &opts).unwrap();
        assert_eq!(fs::metadata(a.target.join("etc/passwd")).unwrap().nlink(), 2);
    }
    assert_eq!(fs::metadata("/etc/passwd").map(|m| m.nlink()).ok(), host_passwd);
}

#[test]
fn whiteouts_cannot_delete_outside_or_name_dot_dot() {
    if !have_root() {
        return;
    }
    for name in [&b".wh.."[..], b"d/.wh...", b".wh."] {
        let a = Arena::new();
        let mut t = RawTar::default();
        t.add(E::file(name, b""));
        hostile(a.run(&t, &ExtractOptions::default()));
    }
    for opts in both_modes() {
        let a = Arena::new();
        let abs = a.outside_abs();
        let mut t = RawTar::default();
        t.add(E::symlink(b"link", &abs))
            .add(E::file(b"link/.wh.sentinel", b""))
            .add(E::file(b"link/.wh..wh..opq", b""))
            .add(E::symlink(b"up", b"../../../.."))
            .add(E::file(b"up/outside/.wh.sentinel", b""));
        let _ = a.run(&t, &opts);
    }
}

#[test]
fn names_too_long_fail_cleanly_and_long_names_work() {
    if !have_root() {
        return;
    }
    let a = Arena::new();
    let component = vec![b'c'; 300];
    let mut t = RawTar::default();
    t.add(E::file(&component, b"x"));
    assert!(matches!(a.run(&t, &ExtractOptions::default()), Err(Error::Io { .. })));
    let long: Vec<u8> = (0..40).flat_map(|i| format!("dir{i:03}/").into_bytes()).chain(*b"leaf").collect();
    let mut t = RawTar::default();
    t.add(E::file(&long, b"deep"));
    a.run(&t, &ExtractOptions::default()).unwrap();
    assert_eq!(fs::read(a.target.join(String::from_utf8(long).unwrap())).unwrap(), b"deep");
}

#[test]
fn overlay_markers_and_devices_cannot_be_smuggled_in() {
    if !have_root() {
        return;
    }
    let a = Arena::new();
    let mut t = RawTar::default();
    t.add(E::new(b"fake-whiteout", b'3'));
    hostile(a.run(&t, &ExtractOptions::default()));

    let mut t = RawTar::default();
    t.add(E::dir(b"d/").pax("SCHILY.xattr.trusted.overlay.opaque", b"y").pax("SCHILY.xattr.trusted.overlay.redirect", b"/etc"))
        .add(E::file(b"f", b"x").pax("SCHILY.xattr.security.selinux", b"system_u:object_r:shadow_t:s0"));
    a.run(&t, &ExtractOptions::default()).unwrap();
    assert!(crate::fsx::xattrs(&a.target.join("d")).unwrap().keys().all(|k| !k.starts_with("trusted.")));
    assert!(crate::fsx::xattr(&a.target.join("f"), "security.selinux").unwrap().is_none());

    let mut t = RawTar::default();
    t.add(E { dev: (8, 0), ..E::new(b"disk", b'4') });
    let refuse = ExtractOptions { devices: DeviceNodes::Refuse, ..ExtractOptions::default() };
    assert!(a.run(&t, &refuse).is_err());
    assert!(!a.target.join("disk").exists());
}
