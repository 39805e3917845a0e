//! `oci-archive:FILE` and `docker-archive:FILE` without a reference mean the archive's only
//! image, as skopeo reads them: on an archive of two images the real `strata` binary refuses
//! (non-zero exit, the images listed, a hint naming `oci-archive:FILE:REF` or
//! `docker-archive:FILE:NAME:TAG` / `:@N`) and tags nothing, where it used to load the first
//! image without a word. skopeo on this machine refuses the same archives. An archive of one
//! image still loads without a reference, and a reference still chooses from two. With a
//! private dockerd: `docker save` of two images is refused the same way, and
//! `docker-daemon:` (docker saves just the image asked for) still loads.

mod common;

use common::runtime::{require_engines, Dockerd};
use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use strata_oci::store::Store;

fn strata_in(dir: &Path) -> Command {
    let mut c = strata(&dir.join("cache"));
    c.env("STRATA_STAGING_DIR", dir.join("staging"));
    c
}

/// Two one-layer images, `a:1` and `b:1`, built FROM scratch into `dir/store` (a layer
/// each, so they differ): the store.
fn two_images(dir: &Path) -> PathBuf {
    let store = dir.join("store");
    for name in ["a", "b"] {
        let ctx = dir.join(format!("ctx-{name}"));
        std::fs::create_dir_all(&ctx).unwrap();
        std::fs::write(ctx.join("file"), format!("image {name}\n")).unwrap();
        std::fs::write(ctx.join("Dockerfile"), "FROM scratch\nCOPY file /file\n").unwrap();
        let out = run(strata_in(dir).arg("build").arg(&ctx).args(["-t", &format!("{name}:1"), "--store"]).arg(&store));
        assert_ok(&format!("strata build {name}:1"), &out);
    }
    store
}

/// The manifest digest of `name` in `store`.
fn digest(store: &Path, name: &str) -> String {
    Store::open(store).unwrap().resolve(name).unwrap().manifest_descriptor.digest().to_string()
}

/// The names a store lists; none when no store was created.
fn listed(store: &Path) -> Vec<String> {
    match Store::open(store) {
        Ok(s) => s.list().unwrap().iter().map(|e| e.reference.to_string()).collect(),
        Err(_) => Vec::new(),
    }
}

/// An oci-archive of both images, each under its ref name. `strata save` writes one image
/// per oci-archive (as skopeo does), so a layout of two is written and tarred, as buildah
/// or a hand-made archive would hold it.
fn oci_archive_of_two(dir: &Path, store: &Path) -> PathBuf {
    let layout = dir.join("layout");
    for name in ["a:1", "b:1"] {
        assert_ok("strata save --format oci", &run(strata_in(dir).args(["save", name, "--format", "oci", "-o"]).arg(&layout).arg("--store").arg(store)));
    }
    let tar = dir.join("two-oci.tar");
    assert_ok("tar of the layout", &run(Command::new("tar").arg("-C").arg(&layout).arg("-cf").arg(&tar).arg(".")));
    tar
}

/// A path under `dir` no other call has used.
fn unique(dir: &Path, what: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    dir.join(format!("{what}-{}", N.fetch_add(1, Ordering::Relaxed)))
}

fn skopeo_copy(source: &str, dir: &Path) -> std::process::Output {
    let dest = unique(dir, "skopeo");
    run(Command::new("skopeo").arg("copy").arg(source).arg(format!("dir:{}", dest.display())))
}

/// `strata pull SOURCE [ARGS]` into a fresh store, which must refuse with each of `want`
/// in its message and leave nothing tagged.
fn assert_refused(dir: &Path, source: &str, args: &[&str], want: &[&str]) {
    let fresh = unique(dir, "refused");
    let out = run(strata_in(dir).arg("pull").arg(source).args(args).arg("--store").arg(&fresh));
    let err = assert_fails(&format!("strata pull {source} {args:?}"), &out);
    for w in want {
        assert!(err.contains(w), "strata pull {source} {args:?}: {w:?} not in\n{err}");
    }
    assert!(stdout(&out).is_empty(), "{source}: reported a pulled image: {}", stdout(&out));
    assert_eq!(listed(&fresh), Vec::<String>::new(), "{source}: something was tagged");
}

/// `strata pull SOURCE [ARGS]` into a fresh store (`$DOCKER_HOST` as given): the store and
/// the names it lists afterwards.
fn pulled(dir: &Path, source: &str, args: &[&str], docker_host: &str) -> (PathBuf, Vec<String>) {
    let fresh = unique(dir, "pulled");
    let out = run(strata_in(dir).arg("pull").arg(source).args(args).arg("--store").arg(&fresh).env("DOCKER_HOST", docker_host));
    assert_ok(&format!("strata pull {source} {args:?}"), &out);
    let names = listed(&fresh);
    (fresh, names)
}

#[test]
fn archive_of_two_needs_a_reference() {
    require_tool("skopeo");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let store = two_images(d);
    let f = |name: &str| d.join(name).display().to_string();
    assert_ok("strata save a b", &run(strata_in(d).args(["save", "a:1", "b:1", "-o", &f("two-docker.tar"), "--store"]).arg(&store)));
    let two_oci = oci_archive_of_two(d, &store).display().to_string();
    assert_ok("strata save a (docker)", &run(strata_in(d).args(["save", "a:1", "-o", &f("one-docker.tar"), "--store"]).arg(&store)));
    assert_ok("strata save a (oci)", &run(strata_in(d).args(["save", "a:1", "--format", "oci-archive", "-o", &f("one-oci.tar"), "--store"]).arg(&store)));

    // skopeo refuses both archives of two without a reference (what strata now matches).
    let skopeo_out = d.join("skopeo");
    std::fs::create_dir(&skopeo_out).unwrap();
    for source in [format!("oci-archive:{two_oci}"), format!("docker-archive:{}", f("two-docker.tar"))] {
        let out = skopeo_copy(&source, &skopeo_out);
        assert!(!out.status.success(), "skopeo copy {source} took an image of two: {}", stderr(&out));
    }

    // strata refuses them too: with the images listed, the way to choose and nothing tagged,
    // with or without -t.
    let oci_src = format!("oci-archive:{two_oci}");
    let docker_src = format!("docker-archive:{}", f("two-docker.tar"));
    for args in [&[][..], &["-t", "x:1"][..]] {
        assert_refused(d, &oci_src, args, &["lists 2 images: a:1, b:1\n", "hint: choose one: oci-archive:FILE:REF"]);
        assert_refused(d, &docker_src, args, &["lists 2 images: a:1, b:1\n", "docker-archive:FILE:NAME:TAG", "docker-archive:FILE:@N (N from 0 to 1)"]);
    }

    // A reference chooses; the image is the one named, not the first.
    let b = digest(&store, "b:1");
    for source in [format!("{oci_src}:b:1"), format!("{docker_src}:b:1"), format!("{docker_src}:@1")] {
        let (fresh, names) = pulled(d, &source, &[], "");
        assert_eq!(names, ["b:1"], "{source}");
        assert_eq!(digest(&fresh, "b:1"), b, "{source}");
    }

    // An archive of one image needs no reference, in skopeo and in strata.
    let a = digest(&store, "a:1");
    for source in [format!("oci-archive:{}", f("one-oci.tar")), format!("docker-archive:{}", f("one-docker.tar"))] {
        let out = skopeo_copy(&source, &skopeo_out);
        assert_ok(&format!("skopeo copy {source}"), &out);
        let (fresh, names) = pulled(d, &source, &[], "");
        assert_eq!(names, ["a:1"], "{source}");
        assert_eq!(digest(&fresh, "a:1"), a, "{source}");
        let (fresh, names) = pulled(d, &source, &["-t", "x:1"], "");
        assert_eq!(names, ["x:1"], "{source} -t x:1");
        assert_eq!(digest(&fresh, "x:1"), a, "{source} -t x:1");
    }
}

/// What docker itself writes: `docker save a:1 b:1` is refused without a reference like
/// strata's own archive; `docker-daemon:NAME` (docker saves one image) still loads.
#[test]
fn docker_saved_archive_of_two_needs_a_reference() {
    if !require_engines() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let store = two_images(d);
    let two = d.join("two.tar");
    assert_ok("strata save a b", &run(strata_in(d).args(["save", "a:1", "b:1", "-o"]).arg(&two).arg("--store").arg(&store)));
    let docker = Dockerd::start().unwrap_or_else(|e| panic!("{e}"));
    let two = two.display().to_string();
    let load = docker.docker(&["load", "-i", &two]);
    assert!(load.status.success(), "docker load: {}", String::from_utf8_lossy(&load.stderr));
    let saved = d.join("docker-saved.tar").display().to_string();
    let save = docker.docker(&["save", "-o", &saved, "a:1", "b:1"]);
    assert!(save.status.success(), "docker save: {}", String::from_utf8_lossy(&save.stderr));

    let source = format!("docker-archive:{saved}");
    assert_refused(d, &source, &[], &["lists 2 images: ", "a:1", "b:1", "docker-archive:FILE:@N (N from 0 to 1)"]);
    let image_id = |s: &Path, name: &str| Store::open(s).unwrap().resolve(name).unwrap().manifest.config().digest().to_string();
    let (fresh, names) = pulled(d, &format!("{source}:b:1"), &[], "");
    assert_eq!(names, ["b:1"]);
    assert_eq!(image_id(&fresh, "b:1"), image_id(&store, "b:1"));

    let (fresh, names) = pulled(d, "docker-daemon:b:1", &[], &docker.host());
    assert_eq!(names, ["b:1"], "docker-daemon:");
    assert_eq!(image_id(&fresh, "b:1"), image_id(&store, "b:1"));
}
