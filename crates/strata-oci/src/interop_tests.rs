//! Checks against the real peers: umoci unpacks a layout written by the store (every entry
//! kind of the layer writer) and skopeo reads both archive formats. Both tools come from
//! Debian (`apt-get install umoci skopeo`); the tests fail, never skip, without them.

use crate::archive::{save_docker_archive, save_oci_archive, LayerForm};
use crate::layer::{tests::sample, WriteOptions, CAPABILITY_XATTR};
use crate::reference::ImageRef;
use crate::store::{tests::new_image, Store};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::{Command, Output};

fn run(tool: &str, args: &[&str], cwd: &Path) -> Output {
    let out = Command::new(tool)
        .args(args)
        .current_dir(cwd)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run `{tool}` ({e}): this test needs the Debian package `{tool}`; \
             add it to the apt-get install line of the CI setup (scripts/test.sh)"
            )
        });
    assert!(
        out.status.success(),
        "{tool} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A store with `app:1` (one file) and `full:1` (that plus every entry kind).
fn store(dir: &Path) -> Store {
    let store = Store::open_or_create(dir.join("store")).unwrap();
    let base = new_image(&store, "hello");
    store
        .put_image(&base, &[ImageRef::parse("app:1").unwrap()])
        .unwrap();
    let layer = store
        .put_layer(
            sample(&(0..10).collect::<Vec<_>>()),
            WriteOptions::default(),
        )
        .unwrap();
    let mut full = base.clone();
    full.layers.push(layer.descriptor());
    let mut diff_ids = full.config.rootfs().diff_ids().clone();
    diff_ids.push(layer.diff_id.to_string());
    full.config.rootfs_mut().set_diff_ids(diff_ids);
    full.config.set_history(None);
    store
        .put_image(&full, &[ImageRef::parse("full:1").unwrap()])
        .unwrap();
    store
}

#[test]
fn umoci_unpacks_every_entry_kind() {
    let dir = tempfile::tempdir().unwrap();
    store(dir.path());
    // /proc/self belongs to the effective uid; avoids a libc/rustix feature for one call.
    let root = std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0);
    let mut args = vec!["unpack", "--image", "store:full:1", "bundle"];
    if !root {
        args.insert(1, "--rootless");
    }
    run("umoci", &args, dir.path());
    let rootfs = dir.path().join("bundle/rootfs");
    let md = |p: &str| std::fs::symlink_metadata(rootfs.join(p)).unwrap();
    assert_eq!(std::fs::read(rootfs.join("etc/content")).unwrap(), b"hello");
    assert_eq!(md("usr/bin/a-link").permissions().mode() & 0o7777, 0o4755);
    assert_eq!(md("usr/bin/write").permissions().mode() & 0o7777, 0o2711);
    assert_eq!(md("tmp").permissions().mode() & 0o7777, 0o1777);
    assert_eq!(
        md("usr/bin/ping").ino(),
        md("usr/bin/a-link").ino(),
        "hardlink lost"
    );
    assert_eq!(
        std::fs::read_link(rootfs.join("usr/bin/sh")).unwrap(),
        Path::new("bash")
    );
    if root {
        assert_eq!(md("usr/bin/write").gid(), 5);
        let mut buf = [0u8; 64];
        let n = rustix::fs::getxattr(rootfs.join("usr/bin/ping"), CAPABILITY_XATTR, &mut buf[..])
            .expect("file capability not applied");
        assert!(n >= 20);
    }
}

#[test]
fn skopeo_reads_the_store_and_both_archives() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(dir.path());
    let save = |name: &str, f: &dyn Fn(std::fs::File)| {
        f(std::fs::File::create(dir.path().join(name)).unwrap())
    };
    save("docker.tar", &|f| {
        save_docker_archive(&store, &["full:1"], LayerForm::Uncompressed, f).unwrap();
    });
    save("docker-gz.tar", &|f| {
        save_docker_archive(&store, &["full:1"], LayerForm::AsStored, f).unwrap();
    });
    save("oci.tar", &|f| {
        save_oci_archive(&store, &["full:1"], f).unwrap();
    });
    let expected = store
        .resolve("full:1")
        .unwrap()
        .config
        .rootfs()
        .diff_ids()
        .clone();
    for (i, src) in [
        "oci:store:full:1",
        "docker-archive:docker.tar",
        "docker-archive:docker-gz.tar",
        "oci-archive:oci.tar",
    ]
    .iter()
    .enumerate()
    {
        let out = run(
            "skopeo",
            &["--insecure-policy", "inspect", "--config", src],
            dir.path(),
        );
        let config: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(
            config["rootfs"]["diff_ids"],
            serde_json::json!(expected),
            "{src}"
        );
        // A full copy decompresses and verifies every layer against its digest.
        let dest = format!("dir:copy{i}");
        run(
            "skopeo",
            &["--insecure-policy", "copy", "-q", src, &dest],
            dir.path(),
        );
    }
}
