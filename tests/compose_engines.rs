//! Acceptance: the corpus images, composed (layered) and saved by strata, load into docker
//! and podman and pass every check of ../shared/corpus/checks.json, before and after the
//! security updates; the web image serves a page on a published loopback port.

mod common;

use common::runtime::{require_engines, Dockerd, Engine, Podman};
use common::*;
use std::time::Duration;

#[test]
fn corpus_images_run_under_docker_and_podman_before_and_after_the_update() {
    if !require_engines() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let store = dir.path().join("store");
    let docker = Dockerd::start().unwrap_or_else(|e| panic!("{e}"));
    let podman = Podman::new().unwrap_or_else(|e| panic!("{e}"));
    let checks = read_json(&corpus_dir().join("checks.json"));
    // The release, then the security updates composed into the same store: the second
    // build reuses the unchanged layers, and the engines load it over the first.
    for (round, spec_name) in ["images.json", "images-updates.json"].iter().enumerate() {
        let sub = dir.path().join(format!("round{round}"));
        std::fs::create_dir_all(&sub).unwrap();
        let spec = copy_corpus_spec(spec_name, &sub);
        let out = run(strata(&cache).env("STRATA_STAGING_DIR", dir.path().join("staging")).arg("compose").arg(&spec).arg("--store").arg(&store).arg("--json"));
        assert_ok(&format!("strata compose {spec_name}"), &out);
        let composed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        for (name, image) in composed["images"].as_object().unwrap() {
            assert!(image["layers"].as_array().unwrap().len() > 10, "{spec_name} {name}: layered, not one blob: {image}");
        }
        run_checks(&checks, &store, &cache, &sub, &[&docker as &dyn Engine, &podman], spec_name);
    }
}

fn run_checks(checks: &serde_json::Value, store: &std::path::Path, cache: &std::path::Path, dir: &std::path::Path, engines: &[&dyn Engine], round: &str) {
    let names: Vec<String> = checks.as_object().unwrap().keys().cloned().collect();
    let archive = dir.join("images.tar");
    let out = run(strata(cache).arg("save").args(&names).arg("-o").arg(&archive).arg("--store").arg(store));
    assert_ok("strata save", &out);
    let stored = run(strata(cache).args(["images", "--json", "--store"]).arg(store));
    let stored: serde_json::Value = serde_json::from_slice(&stored.stdout).unwrap();
    for engine in engines {
        let e = format!("{} ({round})", engine.name());
        engine.load(&archive).unwrap_or_else(|err| panic!("{e} load: {err}"));
        for (name, check) in checks.as_object().unwrap() {
            let image = format!("{name}:latest");
            let argv: Vec<&str> = check["run"].as_array().unwrap().iter().map(|a| a.as_str().unwrap()).collect();
            // Checks may print to stderr (`nginx -t`): both streams count. The instances'
            // own defaults give containers runc, the ulimits and no registry access.
            let mut args = vec!["run", "--rm", "--network", "none", "--entrypoint", argv[0], &image];
            args.extend(&argv[1..]);
            let out = engine.cli(&args);
            assert_ok(&format!("{e} run {image} {argv:?}"), &out);
            let output = format!("{}{}", stdout(&out), String::from_utf8_lossy(&out.stderr));
            let expect = check["expect"].as_str().unwrap();
            assert!(output.contains(expect), "{e} {name}: {argv:?} printed {output:?}, expected {expect:?}");
            if let Some(serves) = check.get("serves") {
                let port = serves["port"].as_u64().unwrap() as u16;
                let served = engine.serve(&image, port).unwrap_or_else(|err| panic!("{e} serve {image}: {err}"));
                let (status, body) = served.get(serves["path"].as_str().unwrap(), Duration::from_secs(30)).unwrap_or_else(|err| panic!("{e} GET: {err}"));
                assert_eq!(status, 200, "{e} {name}: GET returned {status}");
                assert!(body.contains("Welcome to nginx"), "{e} {name}: body {body:?}");
            }
            // The loaded image is exactly the stored one: same image id (config digest).
            let id = engine.cli(&["image", "inspect", "--format", "{{.Id}}", &image]);
            let want = stored.as_array().unwrap().iter().find(|i| i["reference"] == image.as_str()).unwrap()["image_id"].as_str().unwrap().trim_start_matches("sha256:").to_string();
            assert_eq!(stdout(&id).trim().trim_start_matches("sha256:"), want, "{e} {image}: image id");
        }
    }
}
