//! `strata push` to a real registry (distribution, on loopback) and `strata build` FROM an
//! image only that registry has — by tag and by digest — with the pulled base recorded
//! exactly.

mod common;

#[path = "../crates/strata-registry/tests/common/mod.rs"]
#[allow(unused_imports)]
mod registry;

use common::build::Builds;
use common::*;

#[test]
fn push_then_build_from_the_registry_by_tag_and_by_digest() {
    let reg = registry::Registry::start(registry::Auth::None);
    let host = reg.host();
    let insecure = ["--insecure-registry", host.as_str()];

    let a = Builds::new();
    a.busybox_base();
    let ctx = a.context("app", &[("Dockerfile", "FROM bb\nRUN echo app > /app\nCMD [\"/bin/cat\", \"/app\"]\n")]);
    let app = a.build_json(&ctx, &["-t", "app"]);
    let remote = format!("{host}/team/app:1");
    let out = run(a.strata().arg("push").arg("app").arg(&remote).args(insecure).arg("--store").arg(a.store()));
    assert_ok("strata push", &out);
    assert!(stdout(&out).contains(app["manifest"].as_str().unwrap()), "the remote digest is the stored one: {}", stdout(&out));
    assert_eq!(registry::skopeo_digest(&remote), app["manifest"].as_str().unwrap());

    // Fresh stores: the base comes from the registry.
    for (i, from) in [remote.clone(), format!("{host}/team/app@{}", app["manifest"].as_str().unwrap())].iter().enumerate() {
        let b = Builds::new();
        let ctx = b.context(&format!("child{i}"), &[("Dockerfile", &format!("FROM {from}\nRUN echo child > /child\n"))]);
        let child = b.build_json(&ctx, &["-t", "child", insecure[0], insecure[1]]);
        assert_eq!(child["base"]["digest"], app["manifest"], "FROM {from}");
        assert_eq!(child["base"]["name"], from.as_str());
        let (_keep, root) = b.unpack("child");
        assert_eq!(std::fs::read_to_string(root.join("app")).unwrap(), "app\n");
        assert_eq!(std::fs::read_to_string(root.join("child")).unwrap(), "child\n");
    }
    // Without the insecure mark the plain-HTTP registry is refused, naming it.
    let c = Builds::new();
    let ctx = c.context("strict", &[("Dockerfile", &format!("FROM {remote}\n"))]);
    let err = assert_fails("a plain-HTTP registry not marked insecure", &c.build(&ctx, &[]));
    assert!(err.contains(&host), "{err}");
}

/// A tag that moved after an earlier pull: without `--pull` the store's older copy is
/// the base (docker's default too); with `--pull` the registry's current digest is, and
/// the record names it. The build service's workers always pass `--pull`.
#[test]
fn pull_builds_on_the_digest_a_moved_tag_has_now() {
    let reg = registry::Registry::start(registry::Auth::None);
    let host = reg.host();
    let insecure = ["--insecure-registry", host.as_str()];
    let remote = format!("{host}/team/base:latest");
    let a = Builds::new();
    a.busybox_base();
    let push = |name: &str| {
        let out = run(a.strata().args(["push", name, &remote]).args(insecure).arg("--store").arg(a.store()));
        assert_ok("strata push", &out);
    };
    let one = a.build_json(&a.context("one", &[("Dockerfile", "FROM bb\nRUN echo 1 > /v\n")]), &["-t", "one"]);
    push("one");

    let b = Builds::new();
    let ctx = b.context("child", &[("Dockerfile", &format!("FROM {remote}\nRUN cat /v > /seen\n"))]);
    let first = b.build_json(&ctx, &["-t", "child", insecure[0], insecure[1]]);
    assert_eq!(first["base"]["digest"], one["manifest"]);

    let two = a.build_json(&a.context("two", &[("Dockerfile", "FROM bb\nRUN echo 2 > /v\n")]), &["-t", "two"]);
    push("two");
    let stale = b.build_json(&ctx, &["-t", "child", insecure[0], insecure[1]]);
    assert_eq!(stale["base"]["digest"], one["manifest"], "without --pull the store's pull of the tag serves");
    let fresh = b.build_json(&ctx, &["-t", "child", "--pull", insecure[0], insecure[1]]);
    assert_eq!(fresh["base"]["digest"], two["manifest"], "--pull resolves the tag at the registry");
    assert_eq!(fresh["base"]["name"], remote.as_str());
    let (_keep, root) = b.unpack("child");
    assert_eq!(std::fs::read_to_string(root.join("seen")).unwrap(), "2\n", "built on the new base, not a cached step of the old");
}
