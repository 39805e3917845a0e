//! End-to-end tests of `strata resolve`'s failures: each must exit non-zero with a message
//! on stderr that names what is wrong (package, dependency chain, repo and URL, file, key).

mod common;

use common::*;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

/// A spec on the corpus base repo (by absolute path) with one image `img`.
fn base_spec(dir: &Path, packages: &[&str]) -> PathBuf {
    let base = corpus_repo("base");
    simple_spec(dir, "base", base.to_str().unwrap(), &[("img", packages)])
}

#[test]
fn unknown_package_is_named_with_near_names() {
    let tmp = tempfile::tempdir().unwrap();
    let spec = base_spec(tmp.path(), &["bash", "nginx-lite"]);
    let out = resolve(&spec, &tmp.path().join("cache"), &[]);
    let err = assert_fails("resolving nginx-lite", &out);
    assert!(err.contains("nginx-lite"), "the error must name the package:\n{err}");
    assert!(err.contains("nginx-light"), "the error must suggest nginx-light:\n{err}");
    assert!(!spec.with_extension("lock").exists(), "a failed resolve wrote a lock");
}

#[test]
fn version_nobody_has_is_unsatisfiable() {
    let tmp = tempfile::tempdir().unwrap();
    let spec = base_spec(tmp.path(), &["bash >= 99"]);
    let out = resolve(&spec, &tmp.path().join("cache"), &[]);
    let err = assert_fails("resolving bash >= 99", &out);
    assert!(err.contains("bash >= 99"), "the error must quote the request:\n{err}");
    // Saying which bash exists is what makes the message useful.
    let bash = &corpus_manifest().get("base", "bash").version;
    assert!(err.contains(bash.as_str()), "the error should name the available bash {bash}:\n{err}");
}

#[test]
fn missing_dependency_is_explained_as_a_chain() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = build_fixture_repo(
        tmp.path(),
        &[
            pkg("frobnicator", "1.0", &["Requires: libwidget >= 2"]),
            pkg("libwidget", "2.1", &["Requires: widget-fonts"]),
            // widget-fonts does not exist: the chain is frobnicator -> libwidget -> widget-fonts.
            pkg("unrelated", "1.0", &[]),
        ],
    );
    let spec = simple_spec(tmp.path(), "fixture", repo.to_str().unwrap(), &[("img", &["frobnicator"])]);
    let out = resolve(&spec, &tmp.path().join("cache"), &[]);
    let err = assert_fails("resolving frobnicator with a missing dependency", &out);
    for link in ["frobnicator", "libwidget", "widget-fonts"] {
        assert!(err.contains(link), "the chain must mention {link}:\n{err}");
    }
    assert!(err.contains("img"), "the error must name the image:\n{err}");
}

#[test]
fn conflicting_requests_name_both_packages() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = build_fixture_repo(
        tmp.path(),
        &[
            pkg("mta-a", "1.0", &["Conflicts: mta-b"]),
            pkg("mta-b", "1.0", &[]),
        ],
    );
    let spec = simple_spec(
        tmp.path(),
        "fixture",
        repo.to_str().unwrap(),
        &[("ok-a", &["mta-a"]), ("both", &["mta-a", "mta-b"])],
    );
    let out = resolve(&spec, &tmp.path().join("cache"), &[]);
    let err = assert_fails("resolving two conflicting packages", &out);
    assert!(err.contains("mta-a") && err.contains("mta-b"), "name both sides:\n{err}");
    assert!(err.contains("both"), "the error must name the image:\n{err}");
    // Control: each alone is fine.
    let out = resolve(&spec, &tmp.path().join("cache"), &["--image", "ok-a"]);
    assert_ok("resolving mta-a alone", &out);
}

#[test]
fn missing_local_repo_names_repo_and_path() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("no-such-repo");
    let spec = simple_spec(tmp.path(), "ghost", missing.to_str().unwrap(), &[("img", &["bash"])]);
    let out = resolve(&spec, &tmp.path().join("cache"), &[]);
    let err = assert_fails("resolving from a missing folder", &out);
    assert!(err.contains("ghost"), "the error must name the repo id:\n{err}");
    assert!(err.contains(missing.to_str().unwrap()), "the error must name the path:\n{err}");
}

#[test]
fn unreachable_http_repo_names_repo_and_url() {
    // Bind then drop a listener: the port is now (almost certainly) closed.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = format!("http://127.0.0.1:{port}/repo");
    let tmp = tempfile::tempdir().unwrap();
    let spec = simple_spec(tmp.path(), "offline", &url, &[("img", &["bash"])]);
    let started = std::time::Instant::now();
    let out = resolve(&spec, &tmp.path().join("cache"), &[]);
    let err = assert_fails("resolving from a closed port", &out);
    assert!(err.contains("offline"), "the error must name the repo id:\n{err}");
    assert!(err.contains(&url), "the error must name the URL:\n{err}");
    // Retrying is fine; hanging is not.
    assert!(started.elapsed().as_secs() < 60, "gave up only after {:?}", started.elapsed());
}

#[test]
fn corrupt_primary_is_named_and_not_cached() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("base");
    copy_repodata(&corpus_repo("base"), &repo);
    let primary = repodata_file(&repo, "primary");
    let good = std::fs::read(&primary).unwrap();
    let mut bad = good.clone();
    let mid = bad.len() / 2;
    bad[mid] ^= 0x55;
    std::fs::write(&primary, &bad).unwrap();

    let spec = simple_spec(tmp.path(), "base", "base", &[("img", &["bash"])]);
    let cache = tmp.path().join("cache");
    let out = resolve(&spec, &cache, &[]);
    let err = assert_fails("resolving with a corrupt primary.xml.gz", &out);
    let file_name = primary.file_name().unwrap().to_str().unwrap();
    assert!(
        err.contains(file_name) || err.contains("primary.xml"),
        "the error must name the corrupt file ({file_name}):\n{err}"
    );

    // Repaired file, same cache: nothing bad was kept.
    std::fs::write(&primary, &good).unwrap();
    let lock = resolve_json(&spec, &cache, &[]);
    assert!(image_packages(&lock, "img").iter().any(|p| p.name == "bash"));
}

#[test]
fn unknown_spec_keys_are_named() {
    let tmp = tempfile::tempdir().unwrap();
    let base = corpus_repo("base");
    let cases: [(&str, Value); 3] = [
        ("pakages", json!({"repos": [{"id": "base", "baseurl": base}],
                          "images": {"img": {"pakages": ["bash"]}}})),
        ("base_url", json!({"repos": [{"id": "base", "base_url": base}],
                           "images": {"img": {"packages": ["bash"]}}})),
        ("imagez", json!({"repos": [{"id": "base", "baseurl": base}],
                         "imagez": {"img": {"packages": ["bash"]}}})),
    ];
    for (key, spec) in cases {
        let path = write_json(&tmp.path().join(format!("{key}.json")), &spec);
        let out = resolve(&path, &tmp.path().join("cache"), &[]);
        let err = assert_fails(&format!("a spec with the unknown key {key}"), &out);
        assert!(err.contains(key), "the error must name the key {key}:\n{err}");
    }
}
