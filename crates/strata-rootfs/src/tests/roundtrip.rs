//! Layers → stage → a step's changes → diff layer → all layers applied onto a plain
//! directory equals what the step saw; and the overlay and walking diffs give the same bytes.

use super::*;
use crate::{extract, Backend, ChangeKind, DiffOptions, ExtractOptions, LayerCache, Stage, StageOptions};
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use strata_oci::layer::Meta;
use strata_oci::oci_spec::image::Digest;

pub(crate) const T0: u64 = 1_000_000;
/// SOURCE_DATE_EPOCH for these tests: after every lower entry, before any change made now.
pub(crate) const CLAMP: u64 = 1_500_000_000;

fn m(mode: u32) -> Meta {
    Meta::new(mode).mtime(T0)
}

fn file(l: &mut LayerBuilder, path: &str, meta: &Meta, data: &[u8]) {
    l.add_file(path, meta, data.len() as u64, data).unwrap();
}

pub(crate) fn base_layers() -> Vec<(Vec<u8>, LayerInfo)> {
    let mut l1 = LayerBuilder::new();
    l1.set_default_mtime(T0);
    for d in ["etc", "usr", "usr/bin", "usr/lib", "var", "var/lib", "var/lib/d", "var/lib/d/deeper", "data", "data/sub", "replace_me", "opq", "srv"] {
        l1.add_dir(d, &m(0o755)).unwrap();
    }
    l1.add_dir("tmp", &m(0o1777)).unwrap();
    file(&mut l1, "etc/passwd", &m(0o644), b"root:x:0:0:L1\n");
    file(&mut l1, "etc/os-release", &m(0o644), b"ID=test\n");
    file(&mut l1, "etc/resolv.conf", &m(0o644), b"nameserver 192.0.2.1\n");
    file(&mut l1, "usr/bin/tool", &m(0o755), b"#!/bin/sh\necho tool\n");
    file(&mut l1, "usr/bin/su", &m(0o4755), b"setuid");
    file(&mut l1, "usr/bin/h1", &m(0o755), b"linked");
    l1.add_hardlink("usr/bin/h2", "usr/bin/h1").unwrap();
    file(&mut l1, "usr/bin/ping", &m(0o755).xattr("security.capability", CAP_NET_RAW.to_vec()), b"ping");
    file(&mut l1, "usr/lib/libc.so", &m(0o755), b"\x7fELF");
    l1.add_symlink("lib", &m(0o777), "usr/lib").unwrap();
    file(&mut l1, "var/lib/d/x", &m(0o644), b"x");
    file(&mut l1, "var/lib/d/deeper/y", &m(0o644), b"y");
    file(&mut l1, "data/a", &m(0o644), b"a");
    file(&mut l1, "data/b", &m(0o644), b"b");
    file(&mut l1, "data/sub/c", &m(0o644), b"content-1");
    file(&mut l1, "replace_me/x", &m(0o644), b"x");
    file(&mut l1, "will_be_dir", &m(0o644), b"file");
    file(&mut l1, "opq/old1", &m(0o644), b"1");
    file(&mut l1, "opq/old2", &m(0o644), b"2");

    let mut l2 = LayerBuilder::new();
    l2.set_default_mtime(T0);
    l2.add_dir("etc", &m(0o755)).unwrap();
    file(&mut l2, "etc/passwd", &m(0o644), b"root:x:0:0:L2\n");
    l2.add_dir("data", &m(0o755)).unwrap();
    l2.add_whiteout("data/b").unwrap();
    l2.add_dir("opq", &m(0o755)).unwrap();
    l2.add_opaque("opq").unwrap();
    file(&mut l2, "opq/new", &m(0o644), b"new");
    l2.add_dir("srv", &m(0o755)).unwrap();
    file(&mut l2, "srv/f", &m(0o640).owner(1000, 1000), b"srv");
    vec![finish(l1), finish(l2)]
}

pub(crate) struct Fixture {
    pub t: tempfile::TempDir,
    pub cache: LayerCache,
    pub layers: Vec<(Vec<u8>, LayerInfo)>,
}

impl Fixture {
    pub fn new(layers: Vec<(Vec<u8>, LayerInfo)>) -> Fixture {
        let t = tempfile::tempdir().unwrap();
        let cache = LayerCache::open(&t.path().join("cache")).unwrap();
        for (blob, info) in &layers {
            cache.unpack(&info.diff_id, &blob[..]).unwrap();
        }
        Fixture { t, cache, layers }
    }

    pub fn diff_ids(&self) -> Vec<Digest> {
        self.layers.iter().map(|(_, i)| i.diff_id.clone()).collect()
    }

    pub fn stages(&self) -> PathBuf {
        self.t.path().join("stages")
    }

    pub fn stage(&self, backend: Backend) -> Stage {
        let opts = StageOptions { backend: Some(backend), ..StageOptions::default() };
        let s = Stage::from_cache(&self.stages(), &self.cache, &self.diff_ids(), &opts).unwrap();
        assert_eq!(s.backend(), backend);
        s
    }

    /// The base layers plus `extra`, applied onto a fresh plain directory.
    pub fn apply_all(&self, extra: &[u8]) -> tempfile::TempDir {
        let out = tempfile::tempdir().unwrap();
        for blob in self.layers.iter().map(|(b, _)| b.as_slice()).chain([extra]) {
            extract(blob, out.path(), &ExtractOptions::default()).unwrap();
        }
        out
    }
}

fn chown(p: &Path, uid: u32, gid: u32) {
    std::os::unix::fs::lchown(p, Some(uid), Some(gid)).unwrap();
}

fn chmod(p: &Path, mode: u32) {
    fs::set_permissions(p, fs::Permissions::from_mode(mode)).unwrap();
}

/// The step: every kind of change, plus changes that are none (copy-ups) and mount points.
fn step(root: &Path) {
    let r = |p: &str| root.join(p);
    fs::create_dir_all(r("new/dir")).unwrap();
    fs::write(r("new/dir/file"), "new").unwrap();
    chmod(&r("new/dir/file"), 0o640);
    chown(&r("new/dir/file"), 1234, 5678);
    fs::hard_link(r("new/dir/file"), r("new/dir/file2")).unwrap();
    fs::write(r("etc/passwd"), "root:x:0:0:changed\n").unwrap();
    fs::hard_link(r("etc/passwd"), r("etc/passwd.link")).unwrap();
    fs::remove_file(r("data/a")).unwrap();
    fs::remove_dir_all(r("var/lib/d")).unwrap();
    fs::remove_dir_all(r("replace_me")).unwrap();
    fs::write(r("replace_me"), "now a file").unwrap();
    fs::remove_file(r("will_be_dir")).unwrap();
    fs::create_dir(r("will_be_dir")).unwrap();
    fs::write(r("will_be_dir/inner"), "inner").unwrap();
    chmod(&r("usr/bin/tool"), 0o700);
    rustix::fs::lsetxattr(r("usr/bin/tool"), "security.capability", &CAP_NET_RAW, rustix::fs::XattrFlags::empty()).unwrap();
    chown(&r("srv/f"), 0, 0);
    fs::remove_dir_all(r("opq")).unwrap();
    fs::create_dir(r("opq")).unwrap();
    fs::write(r("opq/again"), "again").unwrap();
    std::os::unix::fs::symlink("/bin/busybox", r("usr/bin/sh")).unwrap();
    fs::write(r("usr/bin/sgid"), "sgid").unwrap();
    chmod(&r("usr/bin/sgid"), 0o2755);
    // Same size, same mtime, other bytes: only a content comparison sees it.
    let c = r("data/sub/c");
    let mtime = fs::metadata(&c).unwrap().modified().unwrap();
    fs::write(&c, "content-2").unwrap();
    fs::File::options().write(true).open(&c).unwrap().set_modified(mtime).unwrap();
    // No changes, though overlayfs copies them up.
    chmod(&r("etc/os-release"), 0o644);
    drop(fs::File::options().write(true).open(r("usr/bin/ping")).unwrap());
    // What a runtime leaves for its bind mounts.
    fs::write(r("etc/hosts"), "").unwrap();
    fs::create_dir_all(r("run/secrets")).unwrap();
}

fn opts() -> DiffOptions {
    DiffOptions { clamp_mtime: Some(CLAMP), ephemeral: vec!["/etc/hosts".into(), "/run/secrets".into()] }
}

/// What the layers must reproduce: the step's view with times clamped, minus the mount
/// points, and without link counts (the plain fallback and overlayfs' copy-up both break
/// links between lower files, which the layer rightly does not record).
fn expected(root: &Path) -> BTreeMap<String, Info> {
    let mut t = scan(root);
    t.retain(|p, _| p != "etc/hosts" && p != "run" && !p.starts_with("run/"));
    for i in t.values_mut() {
        i.mtime = i.mtime.min(CLAMP as i64);
        i.nlink = 0;
    }
    t
}

fn without_nlink(mut t: BTreeMap<String, Info>) -> BTreeMap<String, Info> {
    for i in t.values_mut() {
        i.nlink = 0;
    }
    t
}

#[test]
fn overlay_and_walking_diffs_reproduce_the_step_and_agree_byte_for_byte() {
    if !have_root() {
        return;
    }
    let fx = Fixture::new(base_layers());
    let mut blobs = Vec::new();
    for backend in [Backend::Overlay, Backend::Plain] {
        let stage = fx.stage(backend);
        step(stage.root());
        let want = expected(stage.root());
        let diff = stage.diff(&opts()).unwrap();
        let kinds: BTreeMap<&str, ChangeKind> = diff.changes().iter().map(|c| (c.path.as_str(), c.kind)).collect();
        for (p, k) in [
            ("data/a", ChangeKind::Deleted),
            ("var/lib/d", ChangeKind::Deleted),
            ("opq/new", ChangeKind::Deleted),
            ("opq/again", ChangeKind::Added),
            ("replace_me", ChangeKind::Modified),
            ("will_be_dir", ChangeKind::Modified),
            ("data/sub/c", ChangeKind::Modified),
            ("usr/bin/tool", ChangeKind::Modified),
            ("srv/f", ChangeKind::Modified),
            ("new/dir/file2", ChangeKind::Added),
        ] {
            assert_eq!(kinds.get(p), Some(&k), "{backend:?}: {p} in {kinds:?}");
        }
        for p in ["etc/os-release", "usr/bin/ping", "usr/bin/h1", "var/lib/d/x", "etc/hosts", "run", "run/secrets", "opq/old1"] {
            assert!(!kinds.contains_key(p), "{backend:?}: {p} should not be in the diff");
        }
        let (blob, info) = finish(diff.into_layer());
        let out = fx.apply_all(&blob);
        let got = scan(out.path());
        assert_same_tree(&want, &without_nlink(got.clone()));
        assert_eq!(got["new/dir/file"].nlink, 2, "a link made by the step is kept");
        assert_eq!(got["etc/passwd"].nlink, 2);
        assert_eq!(got["usr/bin/tool"].xattrs.get("security.capability").map(|v| v.as_slice()), Some(&CAP_NET_RAW[..]));
        assert_eq!(got["usr/bin/sgid"].mode, 0o2755);
        for (path, e) in tar_entries(&blob) {
            assert!(e <= CLAMP, "{path} has mtime {e} after the clamp");
        }
        blobs.push((blob, info));
        stage.remove().unwrap();
    }
    assert_eq!(blobs[0].1.diff_id, blobs[1].1.diff_id, "overlay and walking diffs differ");
    assert_eq!(blobs[0].0, blobs[1].0);
}

/// (path, mtime) of every entry of a layer blob.
pub(crate) fn tar_entries(blob: &[u8]) -> Vec<(String, u64)> {
    let mut ar = tar::Archive::new(crate::decompress(blob).unwrap());
    ar.entries()
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (e.path().unwrap().to_string_lossy().into_owned(), e.header().mtime().unwrap())
        })
        .collect()
}

#[test]
fn a_second_step_builds_on_the_first_layer() {
    if !have_root() {
        return;
    }
    let mut fx = Fixture::new(base_layers());
    let stage = fx.stage(Backend::Overlay);
    fs::remove_dir_all(stage.root().join("usr")).unwrap();
    let (blob, info) = finish(stage.diff(&opts()).unwrap().into_layer());
    drop(stage);
    fx.cache.unpack(&info.diff_id, &blob[..]).unwrap();
    fx.layers.push((blob, info));
    for backend in [Backend::Overlay, Backend::Plain] {
        let stage = fx.stage(backend);
        assert!(!stage.root().join("usr").exists());
        assert!(stage.root().join("lib").symlink_metadata().is_ok(), "a dangling link is still a link");
        fs::create_dir(stage.root().join("usr")).unwrap();
        let diff = stage.diff(&opts()).unwrap();
        let changes: Vec<_> = diff.changes().iter().map(|c| (c.path.as_str(), c.kind)).collect();
        assert_eq!(changes, [("usr", ChangeKind::Added)], "{backend:?}");
    }
}
