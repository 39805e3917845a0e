//! The same Dockerfile, on the same base, built by `strata build` and by `buildah bud`
//! gives the same file tree (types, modes, owners, contents, link targets, capabilities;
//! times aside), compared entry by entry after both are unpacked by umoci.

mod common;

use common::build::Builds;
use common::*;
use std::collections::BTreeMap;
use std::process::Command;

/// buildah 1.28 (Debian 12) knows no heredocs; everything else here it builds.
const DOCKERFILE: &str = r#"ARG VERSION=1
FROM bb AS builder
ARG VERSION
ENV GREETING="hi $VERSION"
RUN mkdir /out && echo "$GREETING ${MISSING:-dflt} ${VERSION:+set}" > /out/args.txt && ln -s args.txt /out/link && chmod 4755 /out/args.txt
RUN echo builder-only > /builder-only

FROM bb
COPY --from=builder /out/ /from-builder/
COPY . /ctx/
ADD site.tgz /srv/
COPY --chown=app:app data.txt /home/app/data.txt
RUN rm /etc/motd && mkdir -p /var/empty && touch /var/empty/.keep && rm -rf /tmp
USER app
WORKDIR /home/app/work
RUN id -u > uid.txt && pwd > pwd.txt
"#;

/// What buildah leaves behind that is not the Dockerfile's doing: the mount points it
/// gives every RUN (empty files and directories).
const BUILDAH_MOUNTPOINTS: [&str; 7] = ["dev", "proc", "sys", "run", "etc/hostname", "etc/hosts", "etc/resolv.conf"];

fn timeless(t: BTreeMap<String, String>) -> BTreeMap<String, String> {
    t.into_iter().map(|(k, v)| (k, v.split(' ').filter(|f| !f.starts_with("t=")).collect::<Vec<_>>().join(" "))).collect()
}

#[test]
fn strata_and_buildah_build_the_same_tree() {
    require_tool("buildah");
    require_tool("skopeo");
    let b = Builds::new();
    b.busybox_base();
    let ctx = b.context("cmp", &[("Dockerfile", DOCKERFILE), ("data.txt", "data\n"), ("secret.txt", "s\n"), (".dockerignore", "secret.txt\n"), ("site/index.html", "<p>hi</p>\n")]);
    assert_ok("tar czf", &run(Command::new("tar").arg("-C").arg(&ctx).arg("-czf").arg(ctx.join("site.tgz")).arg("site")));
    std::fs::remove_dir_all(ctx.join("site")).unwrap();
    b.build_json(&ctx, &["-t", "cmp", "--build-arg", "VERSION=2"]);
    let (_k1, ours) = b.unpack("cmp");

    // buildah: private vfs storage, the same base copied in, chroot isolation.
    let storage = b.path().join("buildah");
    let (root, runroot) = (storage.join("root"), storage.join("run"));
    let store_spec = format!("containers-storage:[vfs@{}+{}]localhost/bb:latest", root.display(), runroot.display());
    assert_ok("skopeo copy the base into buildah's storage", &run(Command::new("skopeo").arg("copy").arg(format!("oci:{}:bb:latest", b.store().display())).arg(&store_spec)));
    let buildah = || {
        let mut c = Command::new("buildah");
        c.arg("--root").arg(&root).arg("--runroot").arg(&runroot).args(["--storage-driver", "vfs"]);
        c
    };
    assert_ok("buildah bud", &run(buildah().args(["bud", "--isolation", "chroot", "--pull=false", "--build-arg", "VERSION=2", "-t", "cmpb"]).arg(&ctx)));
    let layout = b.path().join("buildah-out");
    assert_ok("buildah push", &run(buildah().arg("push").arg("cmpb").arg(format!("oci:{}:cmpb", layout.display()))));
    let scratch = tempfile::tempdir_in(if std::path::Path::new("/dev/shm").is_dir() { "/dev/shm" } else { "/tmp" }).unwrap();
    let theirs = umoci_unpack(&layout, "cmpb", &scratch.path().join("u"));

    let mut theirs_tree = timeless(tree(&theirs));
    for m in BUILDAH_MOUNTPOINTS {
        if let Some(v) = theirs_tree.get(m) {
            assert!(v.contains(" s=0 "), "buildah's {m} is an empty mount point: {v}");
            theirs_tree.remove(m);
        }
    }
    let ours_tree = timeless(tree(&ours));
    assert!(ours_tree.len() > 40, "{} entries", ours_tree.len());
    assert_same_tree("strata vs buildah", &ours_tree, &theirs_tree);
}
