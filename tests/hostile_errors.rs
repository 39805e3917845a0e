//! Hostile or unusual input through the real binary: each refusal names its cause (which
//! path, which link, what removed a blob), each cause is said once, and Docker's behaviour
//! where strata used to differ (COPY/WORKDIR through an in-image symlink, ADD of device
//! nodes). Plus cases that already held, so they stay held: `..` in an ADD archive, context
//! symlinks pointing outside.

mod common;

use common::build::Builds;
use common::*;
use std::os::unix::fs::{symlink, FileTypeExt};
use std::path::{Path, PathBuf};
use std::process::Command;

/// `strata compose SPEC` with a private store and cache.
fn compose(spec: &Path, dir: &Path) -> std::process::Output {
    let cache = dir.join("cache");
    run(strata(&cache).arg("compose").arg(spec).arg("--store").arg(dir.join("store")).arg("--cache-dir").arg(&cache))
}

/// A spec over `repo` with these images (no scriptlets: the fixtures have none).
fn spec_with(dir: &Path, repo: &Path, images: &[(&str, &[&str])]) -> PathBuf {
    let mut imgs = serde_json::Map::new();
    for (name, pkgs) in images {
        imgs.insert(name.to_string(), serde_json::json!({"packages": pkgs, "scriptlets": "skip"}));
    }
    write_json(&dir.join("spec.json"), &serde_json::json!({"repos": [{"id": "fixture", "baseurl": repo}], "images": imgs}))
}

/// Builds `linker`, a package whose only file is the symlink `/usr/share/b -> /nowhere`, into
/// `dir/repo/Packages` (build_fixture_repo then publishes it with the others).
fn build_linker(dir: &Path) {
    require_tool("rpmbuild");
    let spec = dir.join("linker.spec");
    std::fs::write(
        &spec,
        "Name: linker\nVersion: 1\nRelease: 1\nSummary: a dangling link\nLicense: MIT\nBuildArch: noarch\n\
         %description\nTest fixture.\n%install\nmkdir -p %{buildroot}/usr/share\nln -s /nowhere %{buildroot}/usr/share/b\n\
         %files\n/usr/share/b\n",
    )
    .unwrap();
    std::fs::create_dir_all(dir.join("repo/Packages")).unwrap();
    let out = run(Command::new("rpmbuild")
        .env("HOME", rpm_home(dir))
        .args(["-bb", "--quiet"])
        .arg("--define")
        .arg(format!("_topdir {}", dir.join("rpmbuild-linker").display()))
        .arg("--define")
        .arg(format!("_rpmdir {}", dir.join("repo/Packages").display()))
        .args(["--define", "_build_name_fmt %%{NAME}-%%{VERSION}-%%{RELEASE}.%%{ARCH}.rpm"])
        .args(["--define", "__os_install_post %{nil}"])
        .arg(&spec));
    assert_ok("rpmbuild of linker", &out);
}

#[test]
fn a_package_through_a_dangling_symlink_names_the_link_and_why() {
    let dir = tempfile::tempdir().unwrap();
    build_linker(dir.path());
    // b owns /usr/share/b/1 and needs linker first: its file would go through the link.
    let repo = build_fixture_repo(dir.path(), &[pkg("b", "1", &["Requires: linker"])]);
    let spec = spec_with(dir.path(), &repo, &[("web", &["b"])]);
    let err = assert_fails("composing through a dangling symlink", &compose(&spec, dir.path()));
    for says in ["/usr/share/b", "symlink to /nowhere", "does not exist", "dangling"] {
        assert!(err.contains(says), "{says:?} not in {err}");
    }
    assert!(!err.contains("File exists (os error 17)"), "{err}");
}

/// A base image from scratch whose root holds `links` (name → target), copied in as symlinks.
fn base_with_links(b: &Builds, links: &[(&str, &str)]) {
    let ctx = b.context("linkbase", &[("Dockerfile", "FROM scratch\nCOPY root/ /\n"), ("root/etc/os-release", "ID=test\n")]);
    for (name, target) in links {
        symlink(target, ctx.join("root").join(name)).unwrap();
    }
    assert_ok("building the base with links", &b.build(&ctx, &["-t", "linkbase"]));
}

/// A tar with one entry per `(name, type, content)`; names are written raw (even `..`).
fn raw_tar(entries: &[(&str, tar::EntryType, &str)]) -> Vec<u8> {
    let mut out = tar::Builder::new(Vec::new());
    for (name, kind, content) in entries {
        let mut h = tar::Header::new_gnu();
        h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        h.set_entry_type(*kind);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h.set_size(content.len() as u64);
        if matches!(kind, tar::EntryType::Char) {
            h.set_device_major(10).unwrap();
            h.set_device_minor(200).unwrap();
        }
        h.set_cksum();
        out.append(&h, content.as_bytes()).unwrap();
    }
    out.into_inner().unwrap()
}

#[test]
fn an_add_archive_through_a_dangling_symlink_names_the_link_and_why() {
    let b = Builds::new();
    base_with_links(&b, &[("link", "/nowhere")]);
    let ctx = b.context("addlink", &[("Dockerfile", "FROM linkbase\nADD t.tar /\n")]);
    std::fs::write(ctx.join("t.tar"), raw_tar(&[("link/file", tar::EntryType::Regular, "x")])).unwrap();
    let err = assert_fails("ADD through a dangling symlink", &b.build(&ctx, &["-t", "x"]));
    for says in ["t.tar", "/link", "symlink to /nowhere", "does not exist", "dangling"] {
        assert!(err.contains(says), "{says:?} not in {err}");
    }
    assert!(!err.contains("os error 17"), "{err}");
}

#[test]
fn image_names_with_a_slash_compose_tag_save_and_log() {
    let dir = tempfile::tempdir().unwrap();
    let repo = build_fixture_repo(dir.path(), &[pkg("a", "1", &[])]);
    let spec = spec_with(dir.path(), &repo, &[("apps/web", &["a"])]);
    assert_ok("composing apps/web", &compose(&spec, dir.path()));
    let store = dir.path().join("store");
    let cache = dir.path().join("cache");
    let images = run(strata(&cache).args(["images", "--json", "--store"]).arg(&store));
    assert!(stdout(&images).contains("apps/web:latest"), "{}", stdout(&images));
    assert!(cache.join("logs/apps/web.log").is_file(), "the log of apps/web is logs/apps/web.log");
    let out = run(strata(&cache).args(["save", "apps/web", "-o", "-", "--store"]).arg(&store));
    assert_ok("save apps/web", &out);
    assert!(String::from_utf8_lossy(&out.stdout).contains("apps/web:latest"), "RepoTags name apps/web");
    // A name no store can hold is refused when the spec is read, before any work.
    let bad = spec_with(dir.path(), &repo, &[("Apps/Web", &["a"])]);
    let err = assert_fails("an upper-case image name", &compose(&bad, dir.path()));
    assert!(err.contains("Apps/Web") && err.contains("hint:") && !err.contains("staging"), "{err}");
}

#[test]
fn causes_are_printed_once() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let missing = dir.path().join("missing");
    let cases: Vec<Vec<std::ffi::OsString>> = vec![
        vec!["resolve".into(), missing.join("spec.json").into()],
        vec!["images".into(), "--store".into(), missing.clone().into()],
        vec!["inspect".into(), "x".into(), "--store".into(), missing.clone().into()],
        vec!["gc".into(), "--store".into(), missing.clone().into()],
    ];
    for args in cases {
        let err = assert_fails(&format!("{args:?}"), &run(strata(&cache).args(&args)));
        assert_eq!(err.matches("(os error").count(), 1, "{args:?}: {err}");
        assert!(err.contains("missing"), "{args:?} names the path: {err}");
    }
}

#[test]
fn a_build_racing_gc_says_gc_removed_the_blob() {
    let b = Builds::new();
    let store = b.store();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    // Any gc with --grace 0s races every build that has written blobs it has not tagged yet.
    let gc = {
        let (stop, store, cache) = (stop.clone(), store.clone(), b.path().join("cache"));
        std::thread::spawn(move || {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let _ = run(strata(&cache).args(["gc", "--grace", "0s", "--store"]).arg(&store));
            }
        })
    };
    let mut raced = 0;
    for i in 0..80 {
        let ctx = b.context(&format!("race{i}"), &[("Dockerfile", "FROM scratch\nCOPY f /f\n"), ("f", &format!("content {i}\n"))]);
        let out = b.build(&ctx, &["-t", "race", "--no-cache"]);
        if !out.status.success() {
            let err = stderr(&out);
            assert!(err.contains("strata gc") && err.contains("re-run"), "a build losing a blob to gc says so: {err}");
            raced += 1;
            if raced == 3 {
                break;
            }
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    gc.join().unwrap();
    assert!(raced > 0, "no build out of 80 lost a blob to the concurrent gc: the race was never exercised");
    // Re-running, as the message says, works.
    let ctx = b.context("after", &[("Dockerfile", "FROM scratch\nCOPY f /f\n"), ("f", "after\n")]);
    assert_ok("the build after gc stopped", &b.build(&ctx, &["-t", "race"]));
}

#[test]
fn copy_and_workdir_follow_an_in_image_symlink_to_a_missing_target() {
    let b = Builds::new();
    base_with_links(&b, &[("wlink", "/data/work"), ("clink", "srv/missing")]);
    let ctx = b.context("follow", &[("Dockerfile", "FROM linkbase\nWORKDIR /wlink\nCOPY hello /clink/\nCOPY hello rel.txt\n"), ("hello", "hello\n")]);
    assert_ok("build through dangling links", &b.build(&ctx, &["-t", "follow"]));
    let (_keep, root) = b.unpack("follow");
    for (link, target) in [("wlink", "/data/work"), ("clink", "srv/missing")] {
        assert_eq!(std::fs::read_link(root.join(link)).unwrap(), Path::new(target), "{link} is still the link it was");
    }
    assert!(root.join("data/work").is_dir(), "WORKDIR made the link's target");
    assert_eq!(std::fs::read_to_string(root.join("srv/missing/hello")).unwrap(), "hello\n", "COPY into the link's target");
    assert_eq!(std::fs::read_to_string(root.join("data/work/rel.txt")).unwrap(), "hello\n", "relative to the WORKDIR, through the link");
    assert_eq!(b.inspect("follow")["config"]["config"]["WorkingDir"], "/wlink", "the config keeps the path as written");
}

#[test]
fn add_creates_device_nodes_and_the_layer_carries_them() {
    let b = Builds::new();
    let ctx = b.context("nodes", &[("Dockerfile", "FROM scratch\nADD nodes.tar /\n")]);
    std::fs::write(ctx.join("nodes.tar"), raw_tar(&[("dev/", tar::EntryType::Directory, ""), ("dev/tun0", tar::EntryType::Char, ""), ("run/fifo", tar::EntryType::Fifo, "")])).unwrap();
    assert_ok("ADD of device nodes", &b.build(&ctx, &["-t", "nodes"]));
    // The layer as stored: GNU tar lists it.
    let layer = b.inspect("nodes")["layers"][0]["digest"].as_str().unwrap().strip_prefix("sha256:").unwrap().to_string();
    let out = run(Command::new("tar").arg("-tvzf").arg(b.store().join("blobs/sha256").join(layer)));
    assert_ok("tar -tv of the layer", &out);
    let listing = stdout(&out);
    let line = |name: &str| listing.lines().find(|l| l.ends_with(name)).unwrap_or_else(|| panic!("{name} not in the layer:\n{listing}")).to_string();
    assert!(line("dev/tun0").starts_with('c') && line("dev/tun0").contains("10,200"), "{listing}");
    assert!(line("run/fifo").starts_with('p'), "{listing}");
    // And unpacked (as root) they are nodes again.
    let (_keep, root) = b.unpack("nodes");
    assert!(std::fs::symlink_metadata(root.join("dev/tun0")).unwrap().file_type().is_char_device());
}

#[test]
fn add_refuses_dotdot_entries_and_writes_nothing_outside() {
    let b = Builds::new();
    let ctx = b.context("dotdot", &[("Dockerfile", "FROM scratch\nADD evil.tar /srv/\n")]);
    let name = format!("../../../../../../..{}/escaped-by-add", b.path().display());
    std::fs::write(ctx.join("evil.tar"), raw_tar(&[(&name, tar::EntryType::Regular, "pwned")])).unwrap();
    let err = assert_fails("ADD of a `..` entry", &b.build(&ctx, &["-t", "evil"]));
    assert!(err.contains("escaped-by-add") && err.contains("refusing"), "{err}");
    assert!(!b.path().join("escaped-by-add").exists(), "nothing written outside the image");
}

#[test]
fn context_symlinks_pointing_outside_never_read_the_host() {
    let b = Builds::new();
    let ctx = b.context("ctxlinks", &[("Dockerfile", "FROM scratch\nCOPY . /ctx/\n"), ("plain", "p\n")]);
    symlink("/etc/passwd", ctx.join("pw")).unwrap();
    symlink("../../../../../../..", ctx.join("up")).unwrap();
    // Each link is copied as the link it is, never as the host file it names on the host.
    assert_ok("COPY . with outside links", &b.build(&ctx, &["-t", "ctxlinks"]));
    let (_keep, root) = b.unpack("ctxlinks");
    assert_eq!(std::fs::read_link(root.join("ctx/pw")).unwrap(), Path::new("/etc/passwd"));
    assert!(std::fs::symlink_metadata(root.join("ctx/pw")).unwrap().file_type().is_symlink());
    // Named as sources, they resolve inside the context, where nothing is.
    for (df, what) in [("FROM scratch\nCOPY pw /pw\n", "pw"), ("FROM scratch\nCOPY up/etc/passwd /pw\n", "up/etc/passwd")] {
        std::fs::write(ctx.join("Dockerfile"), df).unwrap();
        let err = assert_fails(&format!("COPY {what}"), &b.build(&ctx, &["-t", "leak"]));
        assert!(err.contains(what) && err.contains("not found"), "{err}");
    }
}
