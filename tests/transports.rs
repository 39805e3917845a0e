//! Transports as skopeo and podman name them (issue 15, acceptance 1): the corpus `web`
//! image pushed to `docker://` (a loopback distribution), `oci:`, `oci-archive:`,
//! `docker-archive:` and `docker-daemon:` (a private dockerd), then pulled back from each
//! into a fresh store, keeps its manifest digest (docker-daemon: its image id, the config
//! digest, since docker keeps no manifest); `skopeo inspect` of each agrees on digest, config
//! and layers. And `containers-storage:` of a private podman, compared by image id.

mod common;

#[path = "../crates/strata-registry/tests/common/mod.rs"]
#[allow(unused_imports)]
mod registry;

use common::runtime::{require_engines, Dockerd, Podman};
use common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use strata_oci::store::Store;

fn strata_in(dir: &Path) -> Command {
    let mut c = strata(&dir.join("cache"));
    c.env("STRATA_STAGING_DIR", dir.join("staging"));
    c
}

/// The corpus `web` image composed into `dir/store`: (store, manifest digest, config digest,
/// layer digests, diff_ids).
struct Web {
    store: PathBuf,
    digest: String,
    image_id: String,
    layers: Vec<String>,
    diff_ids: Vec<String>,
}

fn compose_web(dir: &Path) -> Web {
    let spec = copy_corpus_spec("images.json", dir);
    let store = dir.join("store");
    assert_ok("strata compose web", &run(strata_in(dir).arg("compose").arg(&spec).args(["--image", "web", "--store"]).arg(&store)));
    let img = Store::open(&store).unwrap().resolve("web:latest").unwrap();
    Web {
        digest: img.manifest_descriptor.digest().to_string(),
        image_id: img.manifest.config().digest().to_string(),
        layers: img.manifest.layers().iter().map(|l| l.digest().to_string()).collect(),
        diff_ids: img.config.rootfs().diff_ids().clone(),
        store,
    }
}

fn json(out: &std::process::Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", stdout(out)))
}

/// `skopeo inspect` of `image`: (Digest, Layers, sha256 of the raw config).
fn skopeo_view(image: &str, extra: &[&str]) -> (String, Vec<String>, String) {
    let mut args = vec!["inspect"];
    args.extend_from_slice(extra);
    args.push(image);
    let v = registry::skopeo_json(&args);
    let layers = v["Layers"].as_array().unwrap().iter().map(|l| l.as_str().unwrap().to_string()).collect();
    let mut config_args = vec!["inspect", "--config", "--raw"];
    config_args.extend_from_slice(extra);
    config_args.push(image);
    let config = registry::skopeo(&config_args);
    (v["Digest"].as_str().unwrap_or_default().to_string(), layers, strata_oci::sha256_hex_of(&config).to_string())
}

#[test]
fn web_round_trips_through_every_transport() {
    let dir = tempfile::tempdir().unwrap();
    let web = compose_web(dir.path());
    let reg = registry::Registry::start(registry::Auth::None);
    let files = dir.path().join("out");
    std::fs::create_dir(&files).unwrap();
    let f = |name: &str| files.join(name).display().to_string();
    let engines = require_engines();
    let docker = engines.then(|| Dockerd::start().unwrap_or_else(|e| panic!("{e}")));

    struct Case {
        dest: String,
        /// skopeo's view of it, and whether skopeo's Digest is the store's (a docker-archive
        /// or daemon has no manifest of its own: skopeo makes one up).
        skopeo: String,
        skopeo_args: Vec<String>,
        same_manifest: bool,
        /// Layers as skopeo lists them: the stored (compressed) blobs, or the diff_ids.
        compressed_layers: bool,
    }
    let mut cases = vec![
        Case { dest: format!("docker://{}/corpus/web:1", reg.host()), skopeo: format!("docker://{}/corpus/web:1", reg.host()), skopeo_args: vec!["--tls-verify=false".into()], same_manifest: true, compressed_layers: true },
        Case { dest: format!("oci:{}:web:1", f("layout")), skopeo: format!("oci:{}:web:1", f("layout")), skopeo_args: vec![], same_manifest: true, compressed_layers: true },
        Case { dest: format!("oci-archive:{}:web:1", f("web-oci.tar")), skopeo: format!("oci-archive:{}", f("web-oci.tar")), skopeo_args: vec![], same_manifest: true, compressed_layers: true },
        Case { dest: format!("docker-archive:{}:localhost/web:1", f("web-docker.tar")), skopeo: format!("docker-archive:{}", f("web-docker.tar")), skopeo_args: vec![], same_manifest: false, compressed_layers: false },
    ];
    if let Some(d) = &docker {
        cases.push(Case { dest: "docker-daemon:localhost/web:1".into(), skopeo: "docker-daemon:localhost/web:1".into(), skopeo_args: vec!["--daemon-host".into(), d.host()], same_manifest: false, compressed_layers: false });
    }
    let docker_host = docker.as_ref().map(|d| d.host()).unwrap_or_default();

    for (i, case) in cases.iter().enumerate() {
        // Push (skopeo's spelling of the TLS flag for a registry destination).
        let out = run(strata_in(dir.path()).args(["push", "web", &case.dest, "--json", "--dest-tls-verify=false", "--store"]).arg(&web.store).env("DOCKER_HOST", &docker_host));
        assert_ok(&format!("strata push web {}", case.dest), &out);
        let pushed = json(&out);
        assert_eq!(pushed["digest"], web.digest.as_str(), "{}", case.dest);
        assert_eq!(pushed["image_id"], web.image_id.as_str(), "{}", case.dest);

        // skopeo reads what was written.
        let extra: Vec<&str> = case.skopeo_args.iter().map(String::as_str).collect();
        let (digest, layers, config) = skopeo_view(&case.skopeo, &extra);
        assert_eq!(config, web.image_id, "skopeo's config of {}", case.skopeo);
        if case.same_manifest {
            assert_eq!(digest, web.digest, "skopeo's digest of {}", case.skopeo);
        }
        assert_eq!(&layers, if case.compressed_layers { &web.layers } else { &web.diff_ids }, "skopeo's layers of {}", case.skopeo);

        // Pulled back into a fresh store.
        let fresh = dir.path().join(format!("fresh-{i}"));
        let out = run(strata_in(dir.path()).args(["pull", &case.dest, "--json", "--src-tls-verify=false", "-t", "back:1", "--store"]).arg(&fresh).env("DOCKER_HOST", &docker_host));
        assert_ok(&format!("strata pull {}", case.dest), &out);
        let pulled = json(&out);
        assert_eq!(pulled["image_id"], web.image_id.as_str(), "{}", case.dest);
        let back = Store::open(&fresh).unwrap().resolve("back:1").unwrap();
        assert_eq!(back.manifest.config().digest().to_string(), web.image_id);
        // Layers recompressed to the very blobs compose wrote, even through docker.
        let back_layers: Vec<String> = back.manifest.layers().iter().map(|l| l.digest().to_string()).collect();
        assert_eq!(back_layers, web.layers, "layers back from {}", case.dest);
        if case.dest.starts_with("docker-daemon:") {
            // docker keeps no manifest: the image id is what must survive.
            let id = d_inspect_id(docker.as_ref().unwrap(), "localhost/web:1");
            assert_eq!(id, web.image_id, "docker's image id is the config digest");
            assert_eq!(pushed["engine_id"], id.as_str());
        } else {
            assert_eq!(pulled["digest"], web.digest.as_str(), "manifest digest back from {}", case.dest);
            assert_eq!(back.manifest_descriptor.digest().to_string(), web.digest);
        }
    }

    // Without -t the name comes from the transport's reference or the archive.
    let fresh = dir.path().join("fresh-named");
    assert_ok("pull docker-archive without -t", &run(strata_in(dir.path()).arg("pull").arg(format!("docker-archive:{}", f("web-docker.tar"))).arg("--store").arg(&fresh)));
    assert_eq!(Store::open(&fresh).unwrap().resolve("localhost/web:1").unwrap().manifest_descriptor.digest().to_string(), web.digest);
    assert_ok("pull oci without -t", &run(strata_in(dir.path()).arg("pull").arg(format!("oci:{}:web:1", f("layout"))).arg("--store").arg(&fresh)));
    assert_eq!(Store::open(&fresh).unwrap().resolve("web:1").unwrap().manifest_descriptor.digest().to_string(), web.digest);

    // `strata save IMAGE -o TRANSPORT:...` goes the same way; plain `-o FILE` still works and
    // `docker load` takes strata's docker-archive (with its extra StrataManifest key).
    let out = run(strata_in(dir.path()).args(["save", "web", "-o"]).arg(format!("oci-archive:{}:web:2", f("saved.tar"))).arg("--store").arg(&web.store));
    assert_ok("strata save -o oci-archive:", &out);
    assert!(stdout(&out).contains(&web.digest), "{}", stdout(&out));
    assert_eq!(skopeo_view(&format!("oci-archive:{}", f("saved.tar")), &[]).0, web.digest);
    if let Some(d) = &docker {
        let plain = f("plain.tar");
        assert_ok("strata save -o FILE", &run(strata_in(dir.path()).args(["save", "web", "-o", &plain, "--store"]).arg(&web.store)));
        let load = d.docker(&["load", "-i", &plain]);
        assert!(load.status.success(), "docker load of strata's archive: {}", String::from_utf8_lossy(&load.stderr));
        assert_eq!(d_inspect_id(d, "web:latest"), web.image_id);
    }

    // Mistakes are explained.
    let err = assert_fails("an unknown transport", &run(strata_in(dir.path()).args(["push", "web", "oci-achive:/tmp/x.tar", "--store"]).arg(&web.store)));
    assert!(err.contains("unknown transport") && err.contains("docker-archive:FILE"), "{err}");
    let err = assert_fails("a missing archive", &run(strata_in(dir.path()).args(["pull", "docker-archive:/nonexistent.tar", "--store"]).arg(&fresh)));
    assert!(err.contains("/nonexistent.tar"), "{err}");
}

/// `docker image inspect --format {{.Id}}`.
fn d_inspect_id(d: &Dockerd, name: &str) -> String {
    let out = d.docker(&["image", "inspect", "--format", "{{.Id}}", name]);
    assert!(out.status.success(), "docker image inspect {name}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn web_round_trips_through_containers_storage() {
    if !require_engines() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let web = compose_web(dir.path());
    let podman = Podman::new().unwrap_or_else(|e| panic!("{e}"));
    let p = podman.dir();
    let spec = format!(
        "containers-storage:[{}@{}+{}]localhost/web:1",
        podman.storage_driver(),
        p.join("root").display(),
        p.join("runroot").display()
    );
    // The podman strata runs reads the private instance's configuration, as the helper's does.
    let with_conf = |c: &mut Command| {
        c.env("CONTAINERS_CONF", p.join("containers.conf"))
            .env("CONTAINERS_STORAGE_CONF", p.join("storage.conf"))
            .env("CONTAINERS_REGISTRIES_CONF", p.join("registries.conf"))
            .env("TMPDIR", p.join("tmp"));
    };
    let mut push = strata_in(dir.path());
    push.args(["push", "web", &spec, "--json", "--store"]).arg(&web.store);
    with_conf(&mut push);
    let out = run(&mut push);
    assert_ok("strata push to containers-storage", &out);
    let pushed = json(&out);
    assert_eq!(pushed["image_id"], web.image_id.as_str());
    let id = podman.podman(&["image", "inspect", "--format", "{{.Id}}", "localhost/web:1"]);
    assert!(id.status.success(), "{}", String::from_utf8_lossy(&id.stderr));
    assert_eq!(format!("sha256:{}", String::from_utf8_lossy(&id.stdout).trim()), web.image_id, "podman's image id is the config digest");
    assert_eq!(pushed["engine_id"], web.image_id.as_str());

    let fresh = dir.path().join("fresh");
    let mut pull = strata_in(dir.path());
    pull.args(["pull", &spec, "--json", "--store"]).arg(&fresh);
    with_conf(&mut pull);
    let out = run(&mut pull);
    assert_ok("strata pull from containers-storage", &out);
    assert_eq!(json(&out)["image_id"], web.image_id.as_str());
    let back = Store::open(&fresh).unwrap().resolve("localhost/web:1").unwrap();
    assert_eq!(back.manifest.config().digest().to_string(), web.image_id);
    assert_eq!(back.config.rootfs().diff_ids(), &web.diff_ids);

    // skopeo sees the same image there.
    let v = registry::skopeo_json(&["inspect", &spec]);
    assert_eq!(v["Layers"].as_array().unwrap().len(), web.layers.len());
}
