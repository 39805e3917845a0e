//! `strata build --build-context NAME=docker-image://REF` (buildx's flag) against a real
//! registry on loopback: a FROM naming NAME builds on REF — here a digest the FROM's tag does
//! not point at — recorded under the FROM as written with the digest built on; the step
//! cache keys on that digest; `COPY --from` and `RUN --mount=from=` follow the same names,
//! and `NAME=DIR` gives them a local directory. Bad flags are refused naming the flag.

mod common;

#[path = "../crates/strata-registry/tests/common/mod.rs"]
#[allow(unused_imports)]
mod registry;

use common::build::Builds;
use common::*;

fn record(b: &Builds, manifest: &serde_json::Value) -> serde_json::Value {
    let text = std::fs::read_to_string(b.store().join("strata/builds").join(manifest.as_str().unwrap().trim_start_matches("sha256:"))).unwrap();
    serde_json::from_str(&text).unwrap()
}

#[test]
fn build_context_puts_a_pushed_digest_in_place_of_the_from() {
    let reg = registry::Registry::start(registry::Auth::None);
    let host = reg.host();
    let insecure = ["--insecure-registry", host.as_str()];
    let latest = format!("{host}/team/base:latest");
    let a = Builds::new();
    a.busybox_base();
    let push = |name: &str, remote: &str| {
        let out = run(a.strata().args(["push", name, remote]).args(insecure).arg("--store").arg(a.store()));
        assert_ok("strata push", &out);
    };
    let one = a.build_json(&a.context("one", &[("Dockerfile", "FROM bb\nRUN echo 1 > /v && echo one > /one\n")]), &["-t", "one"]);
    push("one", &latest);
    let two = a.build_json(&a.context("two", &[("Dockerfile", "FROM bb\nRUN echo 2 > /v && echo two > /two\n")]), &["-t", "two"]);
    push("two", &format!("{host}/team/base:rebuilt"));
    assert_ne!(one["manifest"], two["manifest"]);
    assert_eq!(registry::skopeo_digest(&latest), one["manifest"].as_str().unwrap(), "the tag stays on image one");
    let by_digest = format!("{host}/team/base@{}", two["manifest"].as_str().unwrap());
    let flag = format!("{latest}=docker-image://{by_digest}");

    let b = Builds::new();
    let ctx = b.context("child", &[("Dockerfile", &format!("FROM {latest}\nRUN cat /v > /seen\n"))]);
    // --pull as the build service passes it: the digest is pulled (the store has nothing).
    let built = b.build_json(&ctx, &["-t", "child", "--pull", "--build-context", &flag, insecure[0], insecure[1]]);
    assert_eq!(built["base"]["digest"], two["manifest"], "built on the digest the context names");
    assert_eq!(built["base"]["name"], latest.as_str(), "recorded under the FROM as written");
    assert_eq!(built["base"]["build_context"], by_digest.as_str());
    assert!(built["warnings"].as_array().unwrap().is_empty(), "{built}");
    let (_keep, root) = b.unpack("child");
    assert_eq!(std::fs::read_to_string(root.join("two")).unwrap(), "two\n", "image two's file is in the root");
    assert!(!root.join("one").exists());
    assert_eq!(std::fs::read_to_string(root.join("seen")).unwrap(), "2\n");
    let img = b.inspect("child");
    assert_eq!(img["annotations"]["org.opencontainers.image.base.name"], latest.as_str());
    assert_eq!(img["annotations"]["org.opencontainers.image.base.digest"], two["manifest"]);
    let rec = record(&b, &built["manifest"]);
    assert_eq!(rec["base"]["digest"], two["manifest"]);
    assert_eq!(rec["base"]["name"], latest.as_str());
    assert_eq!(rec["base"]["build_context"], by_digest.as_str());
    assert_eq!(rec["build_contexts"][&latest], format!("docker-image://{by_digest}").as_str());
    assert_eq!(rec["from"], latest.as_str());

    // The step cache keys on the digest built on: the same build again is all cached; the
    // FROM without the context is image one, and its RUN runs again.
    // In another second (no SOURCE_DATE_EPOCH): the same content is the same image, its
    // `created` the first build's time, so the manifest digest is the same.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let again = b.build_json(&ctx, &["-t", "child", "--pull", "--build-context", &flag, insecure[0], insecure[1]]);
    assert_eq!(again["manifest"], built["manifest"], "a rebuild that changes nothing is the same image");
    assert_eq!(again["layers"], built["layers"]);
    assert_eq!(again["base"], built["base"]);
    assert!(again["steps"].as_array().unwrap().iter().all(|s| s["cached"] == true), "{again}");
    let plain = b.build_json(&ctx, &["-t", "plain", "--pull", insecure[0], insecure[1]]);
    assert_eq!(plain["base"]["digest"], one["manifest"]);
    assert!(plain["base"].get("build_context").is_none(), "{plain}");
    assert_eq!(plain["steps"][0]["cached"], false, "a step over image one is not the cached step over image two");
    let (_keep, root) = b.unpack("plain");
    assert_eq!(std::fs::read_to_string(root.join("seen")).unwrap(), "1\n");

    // Without --pull: a digest the store has is taken from it (no registry flag needed);
    // the name matches as buildx matches it (`:latest` implied), here by a FROM without tag.
    let untagged = b.context("untagged", &[("Dockerfile", &format!("FROM {host}/team/base\nRUN cat /v > /seen\n"))]);
    let offline = b.build_json(&untagged, &["-t", "offline", "--build-context", &flag]);
    assert_eq!(offline["base"]["digest"], two["manifest"]);
    assert_eq!(offline["base"]["name"], format!("{host}/team/base").as_str());

    // COPY --from and RUN --mount=from= follow the names too; NAME=DIR is a local directory.
    let dir = b.context("extra", &[("f", "from the directory\n"), ("secret.txt", "ignored\n"), (".dockerignore", "secret.txt\n")]);
    let df = format!(
        "FROM bb\nCOPY --from={latest} /v /copied-v\nCOPY --from=extra f /f\nCOPY --from=extra * /all/\nRUN --mount=from=extra,target=/m cat /m/f > /mounted\nRUN --mount=from={latest},target=/b cat /b/v > /mounted-v\n"
    );
    let copier = b.context("copier", &[("Dockerfile", &df)]);
    b.busybox_base();
    let extra = format!("extra={}", dir.display());
    let copied = b.build_json(&copier, &["-t", "copier", "--build-context", &flag, "--build-context", &extra]);
    assert_eq!(copied["base"]["name"], "bb");
    let (_keep, root) = b.unpack("copier");
    assert_eq!(std::fs::read_to_string(root.join("copied-v")).unwrap(), "2\n");
    assert_eq!(std::fs::read_to_string(root.join("mounted-v")).unwrap(), "2\n");
    assert_eq!(std::fs::read_to_string(root.join("f")).unwrap(), "from the directory\n");
    assert_eq!(std::fs::read_to_string(root.join("mounted")).unwrap(), "from the directory\n");
    assert!(root.join("all/f").exists() && !root.join("all/secret.txt").exists(), "the directory's .dockerignore holds");
    // A change in the directory is a change of the COPY's key.
    std::fs::write(dir.join("f"), "changed\n").unwrap();
    let changed = b.build_json(&copier, &["-t", "copier", "--build-context", &flag, "--build-context", &extra]);
    let (_keep, root) = b.unpack("copier");
    assert_eq!(std::fs::read_to_string(root.join("f")).unwrap(), "changed\n");
    assert_eq!(std::fs::read_to_string(root.join("mounted")).unwrap(), "changed\n");
    assert_ne!(changed["manifest"], copied["manifest"]);

    // A digest the registry does not have: the error names the flag and the reference.
    let missing = format!("{latest}=docker-image://{host}/team/base@sha256:{}", "0".repeat(64));
    let err = assert_fails("a context digest nobody has", &b.build(&ctx, &["--pull", "--build-context", &missing, insecure[0], insecure[1]]));
    assert!(err.contains("--build-context") && err.contains(&"0".repeat(64)), "{err}");
    // A context no FROM or --from names is warned about.
    let unused = b.build_json(&ctx, &["-t", "child", "--pull", "--build-context", &flag, "--build-context", "nothing=docker-image://bb", insecure[0], insecure[1]]);
    let warnings = unused["warnings"].to_string();
    assert!(warnings.contains("--build-context nothing: no FROM"), "{warnings}");
}

#[test]
fn bad_build_contexts_are_refused_naming_the_flag() {
    let b = Builds::new();
    let ctx = b.context("c", &[("Dockerfile", "FROM bb AS build\nFROM build\n")]);
    let d = format!("sha256:{}", "a".repeat(64));
    let cases: Vec<(String, &str)> = vec![
        (format!("=docker-image://web@{d}"), "the NAME before '=' is empty"),
        ("web".into(), "expected NAME=docker-image://REF"),
        ("web=docker-image://".into(), "no reference after docker-image://"),
        ("web=docker-image://Web:1".into(), "is not an image reference"),
        ("web=docker-image://web@sha256:abc".into(), "bad digest"),
        ("web=oci-layout:///srv/layout".into(), "oci-layout:// contexts are not supported; accepted: NAME=docker-image://REF"),
        ("web=/no/such/dir".into(), "is not a directory"),
        ("build=docker-image://bb".into(), "build is a stage of the Dockerfile"),
    ];
    for (value, says) in &cases {
        let err = assert_fails(value, &b.build(&ctx, &["--build-context", value]));
        assert!(err.contains(&format!("--build-context {value}")) && err.contains(says), "{value}: {err}");
    }
    for (first, second) in [("web=docker-image://a", "web=docker-image://b"), ("web=docker-image://a", "web:latest=docker-image://b")] {
        let err = assert_fails(second, &b.build(&ctx, &["--build-context", first, "--build-context", second]));
        assert!(err.contains(&format!("--build-context {second}")) && err.contains("given already"), "{err}");
    }
    // A directory is no base image.
    let dir = b.context("somedir", &[("f", "x")]);
    let from_dir = b.context("fromdir", &[("Dockerfile", "FROM src\n")]);
    let value = format!("src={}", dir.display());
    let err = assert_fails("FROM a directory context", &b.build(&from_dir, &["--build-context", &value]));
    assert!(err.contains("--build-context src=") && err.contains("not be an image"), "{err}");
}
