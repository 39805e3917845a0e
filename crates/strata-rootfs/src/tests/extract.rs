//! Extraction of well-formed layers: every entry type and attribute, the codecs, whiteouts
//! applied and kept as markers.

use super::*;
use crate::{extract, DeviceNodes, Error, ExtractOptions, Whiteouts};

fn apply(tar: &[u8], target: &Path) -> crate::Result<crate::Extracted> {
    extract(tar, target, &ExtractOptions::default())
}

fn everything() -> Vec<u8> {
    let long = [&b"deep/"[..], &b"x".repeat(120), b"/file"].concat();
    let mut t = RawTar::default();
    t.add(E::dir(b"./").mode(0o755).mtime(100))
        .add(E::dir(b"bin/").mtime(200))
        .add(E::file(b"bin/su", b"setuid root").mode(0o4755))
        .add(E::file(b"bin/ping", b"needs raw sockets").mode(0o755).owner(1000, 1001).pax("SCHILY.xattr.security.capability", &CAP_NET_RAW))
        .add(E::symlink(b"bin/sh", b"/bin/busybox"))
        .add(E::hardlink(b"bin/su2", b"bin/su"))
        .add(E::dir(b"tmp/").mode(0o1777))
        .add(E::dir(b"dev/"))
        .add(E { dev: (1, 3), ..E::new(b"dev/null", b'3').mode(0o666) })
        .add(E { dev: (8, 0), ..E::new(b"dev/sda", b'4').mode(0o660).owner(0, 6) })
        .add(E::new(b"dev/fifo", b'6').mode(0o600))
        .add(E::dir(b"deep/").pax("SCHILY.xattr.user.note", b"kept"))
        .add(E::dir(&long[..long.len() - 5]))
        .add(E::file(&long, b"long name").pax("mtime", b"1234567.25").pax("uid", b"70000"))
        .add(E::file(b"/abs/name", b"absolute names land inside"));
    t.finish()
}

#[test]
fn every_entry_type_and_attribute_through_every_codec() {
    if !have_root() {
        return;
    }
    let tar = everything();
    for c in [Compression::None, Compression::Gzip { level: 6 }, Compression::zstd()] {
        let dir = tempfile::tempdir().unwrap();
        let blob = compress(&tar, c);
        let got = apply(&blob, dir.path()).unwrap();
        assert_eq!(got.diff_id, diff_id_of(&tar), "{c:?}");
        assert_eq!(got.tar_size, tar.len() as u64);
        let t = scan(dir.path());
        let root = fs::metadata(dir.path()).unwrap();
        assert_eq!((root.mode() & 0o7777, root.mtime()), (0o755, 100), "the `./` entry sets the root");
        assert_eq!(t["bin"].mtime, 200, "directory times survive their children");
        assert_eq!((t["bin/su"].mode, t["bin/su"].nlink), (0o4755, 2));
        assert_eq!(t["bin/su2"].data.as_deref(), Some(&b"setuid root"[..]));
        let ping = &t["bin/ping"];
        assert_eq!((ping.uid, ping.gid, ping.mode), (1000, 1001, 0o755));
        assert_eq!(ping.xattrs.get("security.capability").map(|v| v.as_slice()), Some(&CAP_NET_RAW[..]));
        assert_eq!(t["bin/sh"].link.as_deref(), Some("/bin/busybox"), "targets are stored verbatim");
        assert_eq!(t["tmp"].mode, 0o1777);
        assert_eq!((t["dev/null"].ty, t["dev/null"].rdev, t["dev/null"].mode), ('c', rustix::fs::makedev(1, 3), 0o666));
        assert_eq!((t["dev/sda"].ty, t["dev/sda"].gid), ('b', 6));
        assert_eq!(t["dev/fifo"].ty, 'p');
        assert_eq!(t["deep"].xattrs.get("user.note").map(|v| v.as_slice()), Some(&b"kept"[..]));
        let long = t.keys().find(|k| k.ends_with("/file")).unwrap();
        assert!(long.len() > 120);
        let lmd = fs::metadata(dir.path().join(long)).unwrap();
        assert_eq!((lmd.mtime(), lmd.mtime_nsec(), lmd.uid()), (1234567, 250_000_000, 70000), "PAX mtime fraction and uid");
        assert_eq!(t["abs/name"].data.as_deref(), Some(&b"absolute names land inside"[..]));
    }
}

#[test]
fn devices_follow_the_policy() {
    if !have_root() {
        return;
    }
    let mut t = RawTar::default();
    t.add(E { dev: (1, 3), ..E::new(b"null", b'3') });
    let tar = t.finish();
    let dir = tempfile::tempdir().unwrap();
    let skip = ExtractOptions { devices: DeviceNodes::Skip, ..ExtractOptions::default() };
    extract(&tar[..], dir.path(), &skip).unwrap();
    assert!(!dir.path().join("null").exists());
    let refuse = ExtractOptions { devices: DeviceNodes::Refuse, ..ExtractOptions::default() };
    assert!(matches!(extract(&tar[..], dir.path(), &refuse), Err(Error::Unsupported { .. })));
    assert!(!dir.path().join("null").exists());
}

fn lower() -> Vec<u8> {
    let mut t = RawTar::default();
    t.add(E::dir(b"d/").mtime(500))
        .add(E::file(b"d/a", b"a"))
        .add(E::file(b"d/b", b"b"))
        .add(E::dir(b"d/sub/"))
        .add(E::file(b"d/sub/x", b"x"))
        .add(E::file(b"f", b"file to become a dir"))
        .add(E::dir(b"e/"))
        .add(E::file(b"e/x", b"hidden by opaque"))
        .add(E::dir(b"e/deeper/"))
        .add(E::file(b"e/deeper/y", b"hidden too"))
        .add(E::dir(b"m/").mode(0o755))
        .add(E::file(b"m/kept", b"children stay"))
        .add(E::dir(b"p/").mtime(1000))
        .add(E::file(b"p/old", b"old"));
    t.finish()
}

fn upper() -> Vec<u8> {
    let mut t = RawTar::default();
    t.add(E::dir(b"d/").mtime(600))
        .add(E::file(b"d/.wh.a", b""))
        .add(E::file(b"d/sub", b"file replaces dir"))
        .add(E::dir(b"e/"))
        .add(E::file(b"e/.a", b"same layer, before the marker"))
        .add(E::file(b"e/.wh..wh..opq", b""))
        .add(E::dir(b"e/deeper/"))
        .add(E::file(b"e/z", b"after the marker"))
        .add(E::dir(b"f/"))
        .add(E::file(b"f/g", b"dir replaces file"))
        .add(E::dir(b"m/").mode(0o700).owner(5, 6))
        .add(E::file(b"n", b"same-layer whiteouts do not hide me"))
        .add(E::file(b".wh.n", b""))
        .add(E::file(b".wh..wh.plnk", b"aufs bookkeeping is ignored"))
        .add(E::file(b"p/new", b"written into a lower dir"))
        .add(E::file(b"q/r/s", b"implicit parents"));
    t.finish()
}

#[test]
fn whiteouts_opaque_dirs_and_replacements_apply_onto_lower_layers() {
    if !have_root() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    apply(&lower(), dir.path()).unwrap();
    apply(&upper(), dir.path()).unwrap();
    let t = scan(dir.path());
    let names: Vec<&str> = t.keys().map(|s| s.as_str()).collect();
    assert_eq!(
        names,
        ["d", "d/b", "d/sub", "e", "e/.a", "e/deeper", "e/z", "f", "f/g", "m", "m/kept", "n", "p", "p/new", "p/old", "q", "q/r", "q/r/s"]
    );
    assert_eq!(t["d"].mtime, 600);
    assert_eq!(t["d/sub"].ty, 'f');
    assert_eq!(t["f"].ty, 'd');
    assert_eq!((t["m"].mode, t["m"].uid, t["m"].gid), (0o700, 5, 6), "a dir entry updates an existing dir");
    assert_eq!(t["p"].mtime, 1000, "a lower dir written into keeps its time");
    assert_eq!((t["q"].mtime, t["q/r"].mtime), (0, 0), "implicit parents get time 0");
}

#[test]
fn whiteouts_kept_as_overlay_markers() {
    if !have_root() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let opts = ExtractOptions { whiteouts: Whiteouts::OverlayMarkers, ..ExtractOptions::default() };
    extract(&upper()[..], dir.path(), &opts).unwrap();
    let t = scan(dir.path());
    assert_eq!((t["d/a"].ty, t["d/a"].rdev), ('c', 0), "whiteout as char 0:0");
    assert_eq!(crate::fsx::xattr(&dir.path().join("e"), crate::fsx::OPAQUE_XATTR).unwrap().as_deref(), Some(&b"y"[..]));
    assert!(t.contains_key("e/.a") && t.contains_key("e/z"));
    assert_eq!(t["n"].ty, 'f', "same-layer file beats same-layer whiteout");
    assert!(!t.contains_key(".wh..wh.plnk"));
}

#[test]
fn hardlinks_reach_lower_layers_and_diff_id_is_checked() {
    if !have_root() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    apply(&lower(), dir.path()).unwrap();
    let mut t = RawTar::default();
    t.add(E::hardlink(b"d/b-link", b"d/b"));
    let tar = t.finish();
    let wrong = diff_id_of(b"something else");
    let opts = ExtractOptions { expected_diff_id: Some(wrong), ..ExtractOptions::default() };
    assert!(matches!(extract(&tar[..], dir.path(), &opts), Err(Error::DiffIdMismatch { .. })));
    let opts = ExtractOptions { expected_diff_id: Some(diff_id_of(&tar)), ..ExtractOptions::default() };
    extract(&tar[..], dir.path(), &opts).unwrap();
    assert_eq!(fs::metadata(dir.path().join("d/b")).unwrap().nlink(), 2);
}
