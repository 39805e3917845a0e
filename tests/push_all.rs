//! `strata push --all SPEC PREFIX`: the composed images of a spec pushed to a real registry
//! (distribution, on loopback) with the store's digests, shared layers sent once, a repeat
//! push sending nothing, and an image the store lacks refused before anything is sent.

mod common;

#[path = "../crates/strata-registry/tests/common/mod.rs"]
#[allow(unused_imports)]
mod registry;

use common::*;
use serde_json::Value;
use std::path::Path;
use std::process::Command;

fn strata_in(dir: &Path) -> Command {
    let mut c = strata(&dir.join("cache"));
    c.env("STRATA_STAGING_DIR", dir.join("staging"));
    c
}

#[test]
fn push_all_sends_shared_layers_once_and_a_repeat_sends_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let spec = copy_corpus_spec("images.json", dir.path());
    let store = dir.path().join("store");
    let out = run(strata_in(dir.path()).arg("compose").arg(&spec).arg("--store").arg(&store).args(["--json", "--image", "busybox", "--image", "baseimage"]));
    assert_ok("strata compose", &out);
    let composed: Value = serde_json::from_slice(&out.stdout).unwrap();

    let reg = registry::Registry::start(registry::Auth::None);
    let host = reg.host();
    let prefix = format!("{host}/corpus");
    let push = |extra: &[&str]| {
        run(strata_in(dir.path())
            .args(["push", "--all", "--json", "--max-parallel", "4", "--insecure-registry", &host])
            .arg(&spec)
            .arg(&prefix)
            .arg("--store")
            .arg(&store)
            .args(extra))
    };

    // An image of the spec the store lacks: refused, naming it, and nothing sent.
    let err = assert_fails("push --all with web not composed", &push(&["--image", "busybox", "--image", "web"]));
    assert!(err.contains("web:latest"), "{err}");
    assert!(!reg.log().contains("PUT /v2/") && !reg.log().contains("POST /v2/"), "nothing may be sent before the check:\n{}", reg.log());
    let err = assert_fails("push --all of an image the spec lacks", &push(&["--image", "nosuch"]));
    assert!(err.contains("nosuch"), "{err}");

    let out = push(&["--image", "busybox", "--image", "baseimage"]);
    assert_ok("strata push --all", &out);
    let first: Value = serde_json::from_slice(&out.stdout).unwrap();
    let images = first["images"].as_array().unwrap();
    assert_eq!(images.len(), 2);
    let mut distinct = std::collections::BTreeSet::new();
    let mut per_image = 0;
    for img in images {
        let name = img["image"].as_str().unwrap();
        let reference = format!("{prefix}/{name}:latest");
        assert_eq!(img["digest"], composed["images"][name]["manifest"], "{name}: the remote digest is the store's");
        assert_eq!(registry::skopeo_digest(&reference), composed["images"][name]["manifest"].as_str().unwrap(), "{name}");
        assert_eq!(img["reference"].as_str().unwrap(), format!("{prefix}/{name}:latest@{}", img["digest"].as_str().unwrap()));
        for b in img["blobs"].as_array().unwrap() {
            distinct.insert(b["digest"].as_str().unwrap().to_string());
            per_image += 1;
        }
    }
    assert!(distinct.len() < per_image, "busybox and baseimage share layers");
    // Every distinct blob uploaded exactly once; the shared ones mounted into the other
    // repository.
    assert_eq!(first["uploaded"].as_u64().unwrap() as usize, distinct.len(), "{first:#}");
    assert_eq!(first["mounted"].as_u64().unwrap() as usize, per_image - distinct.len(), "{first:#}");
    assert_eq!(first["present"], 0);
    let log = reg.log();
    let puts = log.lines().filter(|l| l.contains("\"PUT /v2/corpus/") && l.contains("/blobs/uploads/")).count();
    assert_eq!(puts, distinct.len(), "one blob upload PUT per distinct blob in the registry log");

    // Again: everything is there; nothing uploaded or mounted, the same digests.
    let out = push(&["--image", "busybox", "--image", "baseimage"]);
    assert_ok("second strata push --all", &out);
    let again: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(again["uploaded"], 0, "{again:#}");
    assert_eq!(again["mounted"], 0, "{again:#}");
    assert_eq!(again["present"].as_u64().unwrap() as usize, per_image);
    for (a, b) in again["images"].as_array().unwrap().iter().zip(images) {
        assert_eq!(a["digest"], b["digest"]);
    }
    let puts_after = reg.log().lines().filter(|l| l.contains("\"PUT /v2/corpus/") && l.contains("/blobs/uploads/")).count();
    assert_eq!(puts_after, puts, "the repeat uploaded nothing");

    // The plain output: one REFERENCE@DIGEST  DIGEST  IMAGE-ID line per image.
    let out = run(strata_in(dir.path())
        .args(["push", "--all", "--image", "busybox", "--insecure-registry", &host])
        .arg(&spec)
        .arg(&prefix)
        .arg("--store")
        .arg(&store));
    assert_ok("strata push --all (text)", &out);
    let busybox = composed["images"]["busybox"]["manifest"].as_str().unwrap();
    let id = composed["images"]["busybox"]["image_id"].as_str().unwrap();
    assert_eq!(stdout(&out).trim(), format!("{prefix}/busybox:latest@{busybox}  {busybox}  {id}"));
}
