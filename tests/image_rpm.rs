//! Images wrapped as RPMs (`strata rpm`), checked with the real tools: rpm reads the package
//! and its Provides, createrepo_c indexes it, dnf finds it by image name, id and bundled
//! package, installs it and later upgrades it to the rebuilt image after a security update,
//! and the archive the RPM installed loads into docker and runs. Image RPMs also speak the
//! seed's vocabulary (`docker-image-NAME`, `docker-image-id`), and the RPM of an image built
//! FROM another requires its base's RPM, which dnf then installs with it.

mod common;

use common::build::Builds;
use common::runtime::{require_engines, Dockerd};
use common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

struct Env {
    dir: tempfile::TempDir,
}

impl Env {
    fn path(&self) -> &Path {
        self.dir.path()
    }
    fn strata(&self) -> Command {
        let mut c = strata(&self.path().join("cache"));
        c.env("STRATA_STAGING_DIR", self.path().join("staging")).env("STRATA_STORE", self.path().join("store"));
        c
    }
    #[track_caller]
    fn compose(&self, corpus_spec: &str) {
        let spec = copy_corpus_spec(corpus_spec, self.path());
        assert_ok("strata compose", &run(self.strata().arg("compose").arg(spec).args(["--image", "baseimage"])));
    }
    #[track_caller]
    fn wrap(&self, out: &Path) -> Value {
        let o = run(self.strata().args(["rpm", "baseimage", "--json", "-o"]).arg(out));
        assert_ok("strata rpm", &o);
        let v: Value = serde_json::from_slice(&o.stdout).unwrap();
        v[0].clone()
    }
    fn inspect(&self) -> Value {
        let o = run(self.strata().args(["inspect", "baseimage"]));
        assert_ok("strata inspect", &o);
        serde_json::from_slice(&o.stdout).unwrap()
    }
}

fn rpm_q(args: &[&str], file: &Path, home: &Path) -> String {
    let o = run(Command::new("rpm").env("HOME", home).args(args).arg(file));
    assert_ok(&format!("rpm {args:?}"), &o);
    stdout(&o)
}

fn dnf(root: &Path, repo: &Path, home: &Path, args: &[&str]) -> std::process::Output {
    dnf_one_repo(root, repo, "images", home, args)
}

fn createrepo(dir: &Path) {
    assert_ok("createrepo_c", &run(Command::new("createrepo_c").args(["-q", "--update"]).arg(dir)));
}

#[test]
fn image_rpms_are_found_installed_upgraded_and_loaded() {
    require_tool("rpm");
    require_tool("createrepo_c");
    require_tool("dnf");
    let env = Env { dir: tempfile::tempdir().unwrap() };
    let home = rpm_home(env.path());
    let repo = env.path().join("image-repo");

    env.compose("images.json");
    let first = env.wrap(&repo);
    let img = env.inspect();
    let rpm1 = PathBuf::from(first["path"].as_str().unwrap());
    assert_eq!(first["image_id"], img["image_id"]);

    // rpm itself reads the package: digests, identity, files, Provides.
    let checked = rpm_q(&["-K", "--nosignature"], &rpm1, &home);
    assert!(checked.contains("digests OK"), "{checked}");
    let nevra = rpm_q(&["-qp", "--qf", "%{NAME} %{VERSION} %{RELEASE} %{ARCH}"], &rpm1, &home);
    let release = first["release"].as_str().unwrap();
    assert_eq!(nevra, format!("container-image-baseimage 0 {release} x86_64"));
    let files = rpm_q(&["-qpl"], &rpm1, &home);
    assert!(files.lines().any(|l| l == "/usr/share/strata/images/baseimage/latest.tar"), "{files}");
    let provides = rpm_q(&["-qp", "--provides"], &rpm1, &home);
    let id = img["image_id"].as_str().unwrap();
    for want in [
        format!("container-image(baseimage) = 0-{release}"),
        "container-image(baseimage:latest)".to_string(),
        format!("container-image-id({id})"),
        format!("container-image-manifest({})", img["manifest"].as_str().unwrap()),
    ] {
        assert!(provides.lines().any(|l| l == want), "missing Provides {want}:\n{provides}");
    }
    let packages: Vec<&str> = img["packages"].as_array().unwrap().iter().map(|p| p.as_str().unwrap()).collect();
    let bash = packages.iter().find(|p| p.starts_with("bash-")).expect("bash in the image");
    let bash_evr = bash.strip_prefix("bash-").unwrap().rsplit_once('.').unwrap().0;
    assert!(provides.lines().any(|l| l == format!("bundled(rpm(bash)) = {bash_evr}")), "{provides}");
    assert_eq!(provides.lines().filter(|l| l.starts_with("bundled(rpm(")).count(), packages.len());

    // Deterministic: the same image gives the same bytes.
    let again = env.wrap(&env.path().join("again"));
    assert_eq!(std::fs::read(&rpm1).unwrap(), std::fs::read(again["path"].as_str().unwrap()).unwrap(), "a second wrap differs");

    // Bad requests say what is wrong and write nothing.
    let bad = env.path().join("bad");
    let err = assert_fails("strata rpm --version 1-2", &run(env.strata().args(["rpm", "baseimage", "--version", "1-2", "-o"]).arg(&bad)));
    assert!(err.contains("version \"1-2\""), "{err}");
    let digest = img["manifest"].as_str().unwrap();
    let err = assert_fails("strata rpm by digest", &run(env.strata().args(["rpm", digest, "-o"]).arg(&bad)));
    assert!(err.contains("NAME[:TAG]"), "{err}");
    assert!(!bad.exists() || std::fs::read_dir(&bad).unwrap().next().is_none(), "a refused wrap left files behind");

    // dnf finds it by image id and by bundled package, and installs it by image name.
    createrepo(&repo);
    let root = env.path().join("root");
    let found = dnf(&root, &repo, &home, &["repoquery", "--qf", "%{name}-%{version}-%{release}", "--whatprovides", &format!("container-image-id({id})")]);
    assert_ok("dnf repoquery container-image-id", &found);
    assert_eq!(stdout(&found).trim(), format!("container-image-baseimage-0-{release}"));
    let found = dnf(&root, &repo, &home, &["repoquery", "--qf", "%{name}", "--whatprovides", "bundled(rpm(bash))"]);
    assert_eq!(stdout(&found).trim(), "container-image-baseimage", "{}", stderr(&found));
    assert_ok("dnf install container-image(baseimage)", &dnf(&root, &repo, &home, &["install", "container-image(baseimage)"]));
    let verify = run(Command::new("rpm").env("HOME", &home).arg("--root").arg(&root).args(["--dbpath", "/var/lib/rpm", "-V", "container-image-baseimage"]));
    assert_ok("rpm -V of the installed image RPM", &verify);

    // The security update rebuilds the image; its RPM is newer and dnf upgrades to it.
    env.compose("images-updates.json");
    let second = env.wrap(&repo);
    assert_ne!(second["image_id"], first["image_id"], "the update changed the image");
    createrepo(&repo);
    assert_ok("dnf upgrade", &dnf(&root, &repo, &home, &["upgrade"]));
    let installed = run(Command::new("rpm").env("HOME", &home).arg("--root").arg(&root).args(["--dbpath", "/var/lib/rpm", "-q", "--provides", "container-image-baseimage"]));
    assert_ok("rpm -q --provides", &installed);
    let new_id = second["image_id"].as_str().unwrap();
    assert!(stdout(&installed).lines().any(|l| l == format!("container-image-id({new_id})")), "{}", stdout(&installed));
    let record = read_json(&root.join("usr/share/strata/images/baseimage/latest.json"));
    assert_eq!(record["image_id"], new_id);
    let (ssl, bash) = (corpus_manifest().updated_build("libssl3"), corpus_manifest().get("updates", "bash"));
    let updated = [format!("libssl3-{}", ssl.vr()), format!("bash-{}", bash.vr())];
    assert!(record["packages"].as_array().unwrap().iter().any(|p| updated.iter().any(|u| p.as_str().unwrap().starts_with(u.as_str()))), "{record}");

    // What the RPM installed is the image: docker loads it, gets the same id, and runs it.
    if !require_engines() {
        return;
    }
    let docker = Dockerd::start().unwrap_or_else(|e| panic!("{e}"));
    docker.load(&root.join("usr/share/strata/images/baseimage/latest.tar")).unwrap_or_else(|e| panic!("docker load: {e}"));
    let listed = docker.docker(&["image", "inspect", "--format", "{{.Id}}", "baseimage:latest"]);
    assert_ok("docker image inspect", &listed);
    assert_eq!(stdout(&listed).trim(), new_id);
    let out = docker.run("baseimage:latest", &["bash", "-c", "echo $BASH_VERSION"]).unwrap_or_else(|e| panic!("docker run: {e}"));
    assert!(out.starts_with(&corpus_manifest().get("updates", "bash").version), "{out}");
}

#[test]
fn seed_style_rpms_and_a_layered_image_that_requires_its_base() {
    require_tool("rpm");
    require_tool("createrepo_c");
    require_tool("dnf");
    let b = Builds::new();
    let home = rpm_home(b.path());
    b.busybox_base();
    let child = b.context("child", &[("Dockerfile", "FROM bb\nCOPY hello /hello\n"), ("hello", "hi\n")]);
    assert_ok("strata build child", &b.build(&child, &["-t", "child"]));
    let base_id = b.inspect("bb")["image_id"].as_str().unwrap().to_string();
    let child_id = b.inspect("child")["image_id"].as_str().unwrap().to_string();
    assert!(base_id.starts_with("sha256:") && child_id.starts_with("sha256:"), "{base_id} {child_id}");

    let wrap = |args: &[&str], out: &Path| -> std::process::Output { run(b.strata().arg("rpm").args(args).arg("--store").arg(b.store()).arg("-o").arg(out)) };
    let repo = b.path().join("repo");
    let o = wrap(&["bb", "child", "--json"], &repo);
    assert_ok("strata rpm bb child", &o);
    let written: Value = serde_json::from_slice(&o.stdout).unwrap();
    let (base_rpm, child_rpm) = (PathBuf::from(written[0]["path"].as_str().unwrap()), PathBuf::from(written[1]["path"].as_str().unwrap()));
    assert_eq!(written[1]["requires"], serde_json::json!([format!("container-image-id({base_id})")]));

    // The seed's Provides beside strata's own, the arch as rpm's %{_isa} spells it.
    let isa = stdout(&run(Command::new("rpm").env("HOME", &home).args(["--eval", "%{_isa}"]))).trim().to_string();
    assert!(isa.starts_with('(') && isa.ends_with(')'), "{isa}");
    for (rpm, image, id) in [(&base_rpm, "bb", &base_id), (&child_rpm, "child", &child_id)] {
        let provides = rpm_q(&["-qp", "--provides"], rpm, &home);
        let vr = rpm_q(&["-qp", "--qf", "%{VERSION}-%{RELEASE}"], rpm, &home);
        for want in [format!("docker-image-{image} = {vr}"), format!("docker-image-{image}{isa} = {vr}"), format!("docker-image-id = 0:{id}"), format!("container-image-id({id})")] {
            assert!(provides.lines().any(|l| l == want), "{image}: missing Provides {want}:\n{provides}");
        }
    }
    // The layered image requires exactly its base's id; the base (FROM scratch) nothing.
    let requires = |rpm: &Path| -> Vec<String> { rpm_q(&["-qp", "--requires"], rpm, &home).lines().filter(|l| l.starts_with("container-image")).map(String::from).collect() };
    assert_eq!(requires(&child_rpm), [format!("container-image-id({base_id})")]);
    assert!(requires(&base_rpm).is_empty(), "{:?}", requires(&base_rpm));

    // --name-style docker-image: the seed's package name, each Provides once.
    let seed = b.path().join("seed");
    assert_ok("strata rpm --name-style docker-image", &wrap(&["child", "--name-style", "docker-image"], &seed));
    let seed_rpm = std::fs::read_dir(&seed).unwrap().next().unwrap().unwrap().path();
    assert_eq!(rpm_q(&["-qp", "--qf", "%{NAME}"], &seed_rpm, &home), "docker-image-child");
    let provides = rpm_q(&["-qp", "--provides"], &seed_rpm, &home);
    let mut lines: Vec<&str> = provides.lines().collect();
    let n = lines.len();
    lines.sort_unstable();
    lines.dedup();
    assert_eq!(lines.len(), n, "a Provides given twice:\n{provides}");
    assert!(lines.iter().any(|l| l.starts_with("docker-image-child = ")) && lines.iter().any(|l| l.starts_with(&format!("docker-image-child{isa} = "))), "{provides}");
    assert!(lines.iter().any(|l| l.starts_with("container-image(child) = ")), "{provides}");

    // dnf finds the base by the seed's id and, installing the layered image, pulls the base in.
    createrepo(&repo);
    let root = b.path().join("root");
    let found = dnf(&root, &repo, &home, &["repoquery", "--qf", "%{name}", "--whatprovides", &format!("docker-image-id = {base_id}")]);
    assert_ok("dnf repoquery docker-image-id", &found);
    assert_eq!(stdout(&found).trim(), "container-image-bb");
    let found = dnf(&root, &repo, &home, &["repoquery", "--qf", "%{name}", "--whatprovides", &format!("docker-image-id = {child_id}")]);
    assert_eq!(stdout(&found).trim(), "container-image-child", "{}", stderr(&found));
    assert_ok("dnf install docker-image-child", &dnf(&root, &repo, &home, &["install", "docker-image-child"]));
    let installed = run(Command::new("rpm").env("HOME", &home).arg("--root").arg(&root).args(["--dbpath", "/var/lib/rpm", "-qa", "--qf", "%{NAME}\n"]));
    assert_ok("rpm -qa", &installed);
    let mut names: Vec<String> = stdout(&installed).lines().map(String::from).collect();
    names.sort();
    assert_eq!(names, ["container-image-bb", "container-image-child"]);
    assert!(root.join("usr/share/strata/images/bb/latest.tar").is_file());
    let record = read_json(&root.join("usr/share/strata/images/child/latest.json"));
    assert_eq!(record["base_image_id"], base_id.as_str());

    // A base the store no longer holds: refused, saying why and what to do; --no-base-requires
    // writes the RPM without the Requires.
    let base_manifest = b.inspect("bb")["manifest"].as_str().unwrap().to_string();
    std::fs::remove_file(b.store().join("blobs/sha256").join(base_manifest.strip_prefix("sha256:").unwrap())).unwrap();
    let none = b.path().join("none");
    let err = assert_fails("strata rpm child without its base", &wrap(&["child"], &none));
    assert!(err.contains("FROM bb") && err.contains("not in the store") && err.contains("--no-base-requires"), "{err}");
    assert!(!none.exists() || std::fs::read_dir(&none).unwrap().next().is_none(), "a refused wrap left files behind");
    let o = wrap(&["child", "--no-base-requires", "--json"], &none);
    assert_ok("strata rpm --no-base-requires", &o);
    let written: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(requires(Path::new(written[0]["path"].as_str().unwrap())).is_empty());
}
