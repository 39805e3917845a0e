//! `strata serve --mirror DIR` (issue 15, mirror tree): builds the service completes appear
//! in the mirror. The corpus spec's web and busybox are built through the service with a
//! file already standing where busybox's mirror folder goes, then a Dockerfile FROM the
//! service's web: web and the site are published (archives, CHECKSUM, RPMs in the
//! repository, index.json with the pushed digests; the site's RPM requires web's image id,
//! its base pulled back by digest), while busybox's publish fails as a build event naming
//! the file in the way — its build stays built.

mod common;
mod service;

#[path = "../crates/strata-registry/tests/common/mod.rs"]
#[allow(unused_imports)]
mod registry;

use common::*;
use service::*;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const ADMIN: &str = "mirror-admin-token-0123456789";

/// Polls until `ready` accepts the build's record (its events come after it is built).
fn await_events(c: &Cli, id: &str, ready: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let info = c.json(&["build-info", id, "--json"]);
        if ready(&info) {
            return info;
        }
        assert!(Instant::now() < deadline, "build {id}: no mirror event within 10 minutes: {info:#}");
        std::thread::sleep(Duration::from_millis(500));
    }
}

fn mirror_events(info: &serde_json::Value) -> Vec<(String, String)> {
    info["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["event"].as_str().unwrap_or("").starts_with("mirror"))
        .map(|e| (e["event"].as_str().unwrap().to_string(), e["detail"].as_str().unwrap_or("").to_string()))
        .collect()
}

#[test]
fn builds_the_service_completes_appear_in_the_mirror() {
    if !rustix::process::geteuid().is_root() {
        panic!("composing needs root");
    }
    let reg = registry::Registry::start(registry::Auth::None);
    let host = reg.host();
    let work = tempfile::tempdir().unwrap();
    let a = corpus_spec_repo(&work.path().join("a"));
    let b = work.path().join("b");
    std::fs::create_dir_all(&b).unwrap();
    std::fs::write(b.join("Dockerfile"), format!("FROM {host}/web:latest\nCOPY index.html /var/www/html/index.html\n")).unwrap();
    std::fs::write(b.join("index.html"), "<html><body>site</body></html>\n").unwrap();
    git(&b, &["init", "-q", "-b", "main"]);
    git(&b, &["add", "-A"]);
    git(&b, &["commit", "-q", "-m", "site"]);

    let mirror = work.path().join("mirror");
    std::fs::create_dir_all(&mirror).unwrap();
    std::fs::write(mirror.join("busybox"), "not a folder\n").unwrap();
    let port = registry::free_port();
    let log = work.path().join("serve.log");
    let _serve = Proc(
        Command::new(env!("CARGO_BIN_EXE_strata"))
            .args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--registry", &host, "--insecure-registry", &host, "--admin-token", ADMIN])
            .arg("--data-dir")
            .arg(work.path().join("data"))
            .arg("--mirror")
            .arg(&mirror)
            .stderr(Stdio::from(std::fs::File::create(&log).unwrap()))
            .spawn()
            .unwrap(),
    );
    let _log = LogOnPanic(log.clone());
    let c = Cli { server: format!("http://127.0.0.1:{port}"), token: ADMIN.into(), home: work.path().join("home") };
    c.wait_up();

    let out = c.run(&["submit", &format!("file://{}", a.display()), "--image", "web", "--image", "busybox"]);
    assert_ok("submit the spec", &out);
    let spec_id = stdout(&out).trim().to_string();
    c.await_build(&spec_id, "built", Duration::from_secs(1800), |i| i["state"] == "built");
    // The site's FROM needs web in the registry, which the spec build pushed.
    let out = c.run(&["submit", &format!("file://{}", b.display()), "--image", "site"]);
    assert_ok("submit the site", &out);
    let site_id = stdout(&out).trim().to_string();
    let site_info = c.await_build(&site_id, "built", Duration::from_secs(1800), |i| i["state"] == "built");

    let spec_info = await_events(&c, &spec_id, |i| mirror_events(i).len() == 2);
    let site_info2 = await_events(&c, &site_id, |i| !mirror_events(i).is_empty());
    assert_eq!(spec_info["state"], "built", "a failed publish never fails the build");
    let events = mirror_events(&spec_info);
    let web_event = events.iter().find(|(_, d)| d.starts_with("web:latest")).unwrap_or_else(|| panic!("{events:?}"));
    assert_eq!(web_event.0, "mirror published", "{events:?}");
    let bb_event = events.iter().find(|(_, d)| d.contains("busybox")).unwrap_or_else(|| panic!("{events:?}"));
    assert_eq!(bb_event.0, "mirror failed", "{events:?}");
    assert!(bb_event.1.contains("busybox is a regular file, where the mirror needs a folder"), "{events:?}");
    assert!(std::fs::read_to_string(&log).unwrap().contains("publishing to the mirror failed"), "the server's log says so too");
    assert_eq!(mirror_events(&site_info2)[0].0, "mirror published", "{:?}", mirror_events(&site_info2));

    // The mirror lists what was pushed, with its digests; the site's RPM requires web's id.
    let index = read_json(&mirror.join("index.json"));
    let pushed = |info: &serde_json::Value, name: &str| info["result"]["images"].as_array().unwrap().iter().find(|i| i["name"] == name).unwrap().clone();
    let (web, site) = (pushed(&spec_info, "web"), pushed(&site_info, "site"));
    for (name, img) in [("web", &web), ("site", &site)] {
        let entry = &index["images"][name]["versions"]["0"]["x86_64"];
        assert_eq!(entry["manifest"], img["manifest_digest"], "{name}: {index:#}");
        assert_eq!(entry["image_id"], img["config_digest"], "{name}");
        assert!(mirror.join(entry["archive"]["path"].as_str().unwrap()).is_file());
        assert!(mirror.join(format!("{name}/0/CHECKSUM")).is_file());
    }
    assert!(index["images"].get("busybox").is_none(), "{index:#}");
    let site_rpm = &index["images"]["site"]["versions"]["0"]["x86_64"]["rpm"];
    assert_eq!(site_rpm["requires"], serde_json::json!([format!("container-image-id({})", web["config_digest"].as_str().unwrap())]));
    let mut packages: Vec<String> = index["repository"]["packages"].as_array().unwrap().iter().map(|p| p.as_str().unwrap().to_string()).collect();
    packages.sort();
    assert_eq!(packages.len(), 2, "{packages:?}");
    assert!(packages[0].starts_with("docker-image-site-0-") && packages[1].starts_with("docker-image-web-0-"), "{packages:?}");
    assert!(mirror.join("rpms/repodata/repomd.xml").is_file());
    assert_eq!(std::fs::read_to_string(mirror.join("busybox")).unwrap(), "not a folder\n", "the file in the way is untouched");
}
