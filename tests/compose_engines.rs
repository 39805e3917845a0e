//! Acceptance: the corpus images, composed and saved by strata, load into docker and podman
//! and pass every check of ../shared/corpus/checks.json; the web image serves a page.

mod common;

use common::engines::{load, run_in, serve_and_get, Dockerd, Engine, Podman};
use common::*;

#[test]
fn corpus_images_run_under_docker_and_podman() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let spec = copy_corpus_spec("images.json", dir.path());
    let store = dir.path().join("store");
    let out = run(strata(&cache).arg("compose").arg(&spec).arg("--store").arg(&store));
    assert_ok("strata compose images.json", &out);

    let checks = read_json(&corpus_dir().join("checks.json"));
    let names: Vec<String> = checks.as_object().unwrap().keys().cloned().collect();
    let archive = dir.path().join("images.tar");
    let out = run(strata(&cache).arg("save").args(&names).arg("-o").arg(&archive).arg("--store").arg(&store));
    assert_ok("strata save", &out);

    let docker = Dockerd::start();
    let podman = Podman::new();
    for engine in [&docker as &dyn Engine, &podman] {
        load(engine, &archive);
        for (name, check) in checks.as_object().unwrap() {
            let argv: Vec<String> = check["run"].as_array().unwrap().iter().map(|a| a.as_str().unwrap().to_string()).collect();
            let output = run_in(engine, &format!("{name}:latest"), &argv);
            let expect = check["expect"].as_str().unwrap();
            assert!(output.contains(expect), "{} {name}: {argv:?} printed {output:?}, expected {expect:?}", engine.name());
            if let Some(serves) = check.get("serves") {
                let port = serves["port"].as_u64().unwrap() as u16;
                let (status, body) = serve_and_get(engine, &format!("{name}:latest"), port, serves["path"].as_str().unwrap());
                assert_eq!(status, 200, "{} {name}: GET returned {status}", engine.name());
                assert!(body.contains("Welcome to nginx"), "{} {name}: body {body:?}", engine.name());
            }
        }
        // The loaded image is exactly the stored one: same image id.
        let id = engine.exec(&["image", "inspect", "--format", "{{.Id}}", "web:latest"]);
        let stored = run(strata(&cache).args(["images", "--json", "--store"]).arg(&store));
        let stored: serde_json::Value = serde_json::from_slice(&stored.stdout).unwrap();
        let web = stored.as_array().unwrap().iter().find(|i| i["reference"] == "web:latest").unwrap();
        assert_eq!(stdout(&id).trim().trim_start_matches("sha256:"), web["image_id"].as_str().unwrap().trim_start_matches("sha256:"));
    }
    drop(docker);
    drop(podman);
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mounts.contains("strata-dockerd-") && !mounts.contains("strata-podman-"), "engines left mounts behind");
}
