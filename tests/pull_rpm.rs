//! Images back out of RPM repositories (issue 15, acceptance 5): `strata pull
//! 'rpm:CAPABILITY' --repo URL` resolves the capability against a yum repository of image
//! RPMs (`strata rpm`, indexed by createrepo_c), fetches and verifies the RPM and loads the
//! image it carries into a fresh store — the same image id and manifest digest as the
//! original — and an unmodified `FROM web` builds on it. The choice is dnf's: the highest
//! version among providers, `= V-R` an exact one, the seed's `docker-image-id = 0:sha256:ID`
//! as well as strata's `container-image(NAME)`; a `strata publish` mirror's rpms/ serves the
//! same way. A package that carries another image than it claims is refused and nothing is
//! tagged, and a signed repository's key is checked.

mod common;

use common::build::Builds;
use common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

struct Env {
    dir: tempfile::TempDir,
}

impl Env {
    fn path(&self) -> &Path {
        self.dir.path()
    }
    fn store(&self, name: &str) -> PathBuf {
        self.path().join(name)
    }
    fn strata(&self) -> Command {
        let mut c = strata(&self.path().join("cache"));
        c.env("STRATA_STAGING_DIR", self.path().join("staging")).env("STRATA_STORE", self.store("store"));
        c
    }
    /// `strata pull 'rpm:CAPABILITY' --repo REPO --store STORE ARGS... --json`
    fn pull(&self, capability: &str, repo: &Path, store: &str, args: &[&str]) -> Output {
        let source = format!("rpm:{capability}");
        run(self.strata().args(["pull", &source, "--repo"]).arg(format!("file://{}", repo.display())).arg("--store").arg(self.store(store)).args(args).arg("--json"))
    }
    #[track_caller]
    fn pull_ok(&self, capability: &str, repo: &Path, store: &str, args: &[&str]) -> Value {
        let o = self.pull(capability, repo, store, args);
        assert_ok(&format!("strata pull rpm:{capability}"), &o);
        serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("--json output is not JSON ({e}):\n{}", stdout(&o)))
    }
    #[track_caller]
    fn inspect(&self, image: &str, store: &str) -> Value {
        let o = run(self.strata().args(["inspect", image, "--store"]).arg(self.store(store)));
        assert_ok(&format!("strata inspect {image}"), &o);
        serde_json::from_slice(&o.stdout).unwrap()
    }
    #[track_caller]
    fn wrap(&self, images: &[&str], out: &Path) -> Value {
        let o = run(self.strata().arg("rpm").args(images).args(["--name-style", "docker-image", "--json", "-o"]).arg(out));
        assert_ok("strata rpm", &o);
        serde_json::from_slice(&o.stdout).unwrap()
    }
    /// The tags a store lists (`strata images --json`).
    fn tags(&self, store: &str) -> Vec<String> {
        let o = run(self.strata().args(["images", "--json", "--store"]).arg(self.store(store)));
        assert_ok("strata images", &o);
        let v: Value = serde_json::from_slice(&o.stdout).unwrap();
        v.as_array().unwrap().iter().map(|r| r["reference"].as_str().unwrap().to_string()).collect()
    }
}

fn createrepo(dir: &Path) {
    assert_ok("createrepo_c", &run(Command::new("createrepo_c").args(["-q", "--update"]).arg(dir)));
}

/// The manifest digest skopeo reads from an OCI layout store.
fn skopeo_digest(store: &Path, reference: &str) -> String {
    let o = run(Command::new("skopeo").args(["inspect", "--format", "{{.Digest}}"]).arg(format!("oci:{}:{reference}", store.display())));
    assert_ok("skopeo inspect", &o);
    stdout(&o).trim().to_string()
}

#[test]
fn an_image_rpm_from_a_yum_repo_loads_the_same_image_and_a_from_builds_on_it() {
    require_tool("createrepo_c");
    require_tool("skopeo");
    let env = Env { dir: tempfile::tempdir().unwrap() };
    let spec = copy_corpus_spec("images.json", env.path());
    assert_ok("strata compose web", &run(env.strata().arg("compose").arg(&spec).args(["--image", "web"])));
    let web = env.inspect("web", "store");
    let (web_id, web_manifest) = (web["image_id"].as_str().unwrap().to_string(), web["manifest"].as_str().unwrap().to_string());

    let repo = env.path().join("image-repo");
    let wrapped = env.wrap(&["web"], &repo);
    let release = wrapped[0]["release"].as_str().unwrap().to_string();
    assert_eq!(wrapped[0]["name"], "docker-image-web");
    createrepo(&repo);

    // Acceptance 5: into a fresh store, the same image id and manifest digest.
    let pulled = env.pull_ok("container-image(web)", &repo, "a", &[]);
    assert_eq!(pulled["image_id"], web_id.as_str(), "{pulled}");
    assert_eq!(pulled["manifest"], web_manifest.as_str(), "{pulled}");
    assert_eq!(pulled["image"], "web:latest");
    assert_eq!(pulled["package"], format!("docker-image-web-0-{release}.x86_64"));
    assert_eq!(pulled["repo"], "image-repo");
    assert!(pulled["bases"].as_array().unwrap().is_empty());
    let got = env.inspect("web", "a");
    assert_eq!((got["image_id"].as_str().unwrap(), got["manifest"].as_str().unwrap()), (web_id.as_str(), web_manifest.as_str()));
    assert_eq!(skopeo_digest(&env.store("a"), "web:latest"), web_manifest, "skopeo reads the pulled image from the store");
    // The RPM came through the verified cache, not from the repo folder.
    assert!(Path::new(pulled["rpm"].as_str().unwrap()).starts_with(env.path().join("cache/rpms")), "{pulled}");

    // The seed's id Provides (epoch written out, and left out as dnf allows), -t renames.
    let by_id = env.pull_ok(&format!("docker-image-id = 0:{web_id}"), &repo, "b", &["-t", "pinned/web:base"]);
    assert_eq!((by_id["image_id"].as_str().unwrap(), by_id["image"].as_str().unwrap()), (web_id.as_str(), "pinned/web:base"));
    assert_eq!(env.tags("b"), ["pinned/web:base"]);
    let by_id = env.pull_ok(&format!("docker-image-id = {web_id}"), &repo, "b", &[]);
    assert_eq!(by_id["image_id"], web_id.as_str());
    let by_id = env.pull_ok(&format!("container-image-id({web_id})"), &repo, "b", &[]);
    assert_eq!(by_id["manifest"], web_manifest.as_str());

    // What nothing satisfies fails naming the capability and what the repo has instead.
    let err = assert_fails("a version nothing has", &env.pull("container-image(web) >= 99", &repo, "none", &[]));
    assert!(err.contains("`container-image(web) >= 99`") && err.contains(&format!("container-image(web) = 0-{release}")), "{err}");
    let err = assert_fails("an image the repo lacks", &env.pull("container-image(wbe)", &repo, "none", &[]));
    assert!(err.contains("`container-image(wbe)`") && err.contains("container-image(web) = 0-") && err.contains("hint:"), "{err}");
    let err = assert_fails("a malformed capability", &env.pull("container-image(web) >> 1", &repo, "none", &[]));
    assert!(err.contains("container-image(web) >> 1") && err.contains("hint:"), "{err}");
    assert!(env.tags("none").is_empty(), "a failed pull tagged something");

    // An unmodified `FROM web` builds on the pulled image, and the build records it.
    let ctx = env.path().join("site");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(ctx.join("Dockerfile"), "FROM web\nCOPY index.html /var/www/html/index.html\n").unwrap();
    std::fs::write(ctx.join("index.html"), "<p>hello</p>\n").unwrap();
    let o = run(env.strata().args(["build", "--json", "-t", "site", "--store"]).arg(env.store("a")).arg(&ctx));
    assert_ok("strata build FROM web", &o);
    let built: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(built["base"]["name"], "web");
    assert_eq!(built["base"]["digest"], web_manifest.as_str(), "{built}");
    let site = env.inspect("site", "a");
    assert_eq!(site["annotations"]["org.opencontainers.image.base.digest"], web_manifest.as_str());

    // A second version: web:2 (FROM web, a version label), its RPM beside the first.
    let ctx2 = env.path().join("web2");
    std::fs::create_dir_all(&ctx2).unwrap();
    std::fs::write(ctx2.join("Dockerfile"), "FROM web\nLABEL org.opencontainers.image.version=2\n").unwrap();
    assert_ok("strata build web:2", &run(env.strata().args(["build", "-t", "web:2"]).arg(&ctx2)));
    let web2_id = env.inspect("web:2", "store")["image_id"].as_str().unwrap().to_string();
    assert_ne!(web2_id, web_id);
    let wrapped2 = env.wrap(&["web:2"], &repo);
    assert_eq!(wrapped2[0]["version"], "2");
    assert_eq!(wrapped2[0]["requires"], serde_json::json!([format!("container-image-id({web_id})")]));
    createrepo(&repo);

    // The highest version is chosen; `= V-R` picks the exact one; only the image RPM is
    // loaded unless --with-base.
    let newest = env.pull_ok("container-image(web)", &repo, "c", &[]);
    assert_eq!((newest["image_id"].as_str().unwrap(), newest["image"].as_str().unwrap()), (web2_id.as_str(), "web:2"), "{newest}");
    assert_eq!(env.tags("c"), ["web:2"]);
    let exact = env.pull_ok(&format!("container-image(web) = 0-{release}"), &repo, "d", &[]);
    assert_eq!(exact["image_id"], web_id.as_str());
    let with_base = env.pull_ok("container-image(web) >= 2", &repo, "e", &["--with-base"]);
    assert_eq!(with_base["image_id"], web2_id.as_str());
    let bases = with_base["bases"].as_array().unwrap();
    assert_eq!(bases.len(), 1, "{with_base}");
    assert_eq!((bases[0]["image_id"].as_str().unwrap(), bases[0]["image"].as_str().unwrap()), (web_id.as_str(), "web:latest"));
    let mut tags = env.tags("e");
    tags.sort();
    assert_eq!(tags, ["web:2", "web:latest"]);

    // The spec's repositories instead of --repo: a spec naming the image repo by path.
    let pull_spec = write_json(&env.path().join("pull.json"), &serde_json::json!({"repos": [{"id": "images", "baseurl": repo.to_str().unwrap()}], "images": {"x": {"packages": ["x"]}}}));
    let o = run(env.strata().args(["pull", "rpm:container-image(web) < 1", "--json", "--spec"]).arg(&pull_spec).arg("--store").arg(env.store("f")));
    assert_ok("strata pull --spec", &o);
    let from_spec: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!((from_spec["image_id"].as_str().unwrap(), from_spec["repo"].as_str().unwrap()), (web_id.as_str(), "images"));

    // The rpms/ repository of a `strata publish` mirror (its own metadata, no createrepo_c):
    // the site built on the pulled web comes back with its base.
    let mirror = env.path().join("mirror");
    let o = run(env.strata().args(["publish", "web", "site", "--xz-level", "1", "--mirror"]).arg(&mirror).arg("--store").arg(env.store("a")));
    assert_ok("strata publish web site", &o);
    let site_id = site["image_id"].as_str().unwrap();
    let published = env.pull_ok("container-image(site)", &mirror.join("rpms"), "g", &["--with-base"]);
    assert_eq!((published["image_id"].as_str().unwrap(), published["manifest"].as_str().unwrap()), (site_id, site["manifest"].as_str().unwrap()), "{published}");
    assert_eq!(published["repo"], "rpms");
    let bases = published["bases"].as_array().unwrap();
    assert_eq!((bases.len(), bases[0]["image_id"].as_str().unwrap(), bases[0]["manifest"].as_str().unwrap()), (1, web_id.as_str(), web_manifest.as_str()), "{published}");
    let mut tags = env.tags("g");
    tags.sort();
    assert_eq!(tags, ["site:latest", "web:latest"]);
}

/// rpmbuild's package of `archive` under strata's path for NAME:latest, with Provides that
/// claim image `claimed_id`.
fn hostile_rpm(dir: &Path, home: &Path, name: &str, archive: &Path, claimed_id: &str) -> PathBuf {
    let top = dir.join(format!("rpmbuild-{name}"));
    let spec = top.join(format!("{name}.spec"));
    std::fs::create_dir_all(&top).unwrap();
    std::fs::write(
        &spec,
        format!(
            "Name: docker-image-{name}\nVersion: 1\nRelease: 1\nSummary: an image RPM that lies\nLicense: MIT\nAutoReqProv: no\n\
             Provides: container-image({name}) = 1-1\nProvides: container-image({name}:latest)\nProvides: container-image-id({claimed_id})\n\
             %description\nCarries another image than it provides.\n\
             %install\nmkdir -p %{{buildroot}}/usr/share/strata/images/{name}\ncp {} %{{buildroot}}/usr/share/strata/images/{name}/latest.tar\n\
             %files\n/usr/share/strata/images/{name}/latest.tar\n",
            archive.display()
        ),
    )
    .unwrap();
    let o = run(Command::new("rpmbuild")
        .env("HOME", home)
        .arg("--define")
        .arg(format!("_topdir {}", top.display()))
        .args(["--define", "_binary_payload w1.zstdio", "--define", "__os_install_post %{nil}", "--define", "_build_id_links none", "--target", "x86_64", "-bb"])
        .arg(&spec));
    assert_ok("rpmbuild", &o);
    top.join(format!("RPMS/x86_64/docker-image-{name}-1-1.x86_64.rpm"))
}

#[test]
fn an_rpm_carrying_another_image_than_it_provides_is_refused_and_nothing_is_tagged() {
    require_tool("createrepo_c");
    require_tool("rpmbuild");
    let b = Builds::new();
    let home = rpm_home(b.path());
    b.busybox_base();
    let child = b.context("child", &[("Dockerfile", "FROM bb\nCOPY hello /hello\n"), ("hello", "hi\n")]);
    assert_ok("strata build child", &b.build(&child, &["-t", "child"]));
    let child_id = b.inspect("child")["image_id"].as_str().unwrap().to_string();
    let archive = b.path().join("bb.tar");
    assert_ok("strata save bb", &run(b.strata().args(["save", "bb", "-o"]).arg(&archive).arg("--store").arg(b.store())));

    let repo = b.path().join("hostile");
    std::fs::create_dir_all(&repo).unwrap();
    // bb's archive, claiming to be the child image.
    let rpm = hostile_rpm(b.path(), &home, "evil", &archive, &child_id);
    std::fs::copy(&rpm, repo.join(rpm.file_name().unwrap())).unwrap();
    createrepo(&repo);
    let fresh = b.path().join("fresh");
    let pull = |capability: &str| run(b.strata().arg("pull").arg(format!("rpm:{capability}")).arg("--repo").arg(&repo).arg("--store").arg(&fresh));
    let err = assert_fails("a lying image RPM", &pull("container-image(evil)"));
    assert!(err.contains("docker-image-evil-1-1.x86_64") && err.contains(&format!("container-image-id({child_id})")) && err.contains("nothing was tagged") && err.contains("hint:"), "{err}");
    let err = assert_fails("the lie, asked for by id", &pull(&format!("container-image-id({child_id})")));
    assert!(err.contains("nothing was tagged"), "{err}");
    let o = run(b.strata().args(["images", "--json", "--store"]).arg(&fresh));
    assert_ok("strata images", &o);
    assert_eq!(serde_json::from_slice::<Value>(&o.stdout).unwrap(), serde_json::json!([]), "the refused image was tagged");

    // The same package honest about what it carries loads; damaged after indexing, it is
    // refused by the checksum the repository's metadata gives.
    let bb_id = b.inspect("bb")["image_id"].as_str().unwrap().to_string();
    let honest = hostile_rpm(b.path(), &home, "honest", &archive, &bb_id);
    let target = repo.join(honest.file_name().unwrap());
    std::fs::copy(&honest, &target).unwrap();
    createrepo(&repo);
    let o = pull("container-image(honest)");
    assert_ok("an honest rpmbuild image RPM", &o);
    assert!(stdout(&o).starts_with(&format!("honest:latest  {bb_id}  ")), "{}", stdout(&o));
    let mut bytes = std::fs::read(&target).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&target, &bytes).unwrap();
    let err = assert_fails("a damaged image RPM", &run(b.strata().args(["pull", "rpm:container-image(honest)", "--repo"]).arg(&repo).arg("--store").arg(b.path().join("fresh2")).env("STRATA_CACHE_DIR", b.path().join("cache2"))));
    assert!(err.contains("docker-image-honest-1-1.x86_64") && err.contains("checksum"), "{err}");
}

#[test]
fn image_rpms_from_a_signed_repo_are_checked_with_its_key() {
    require_tool("createrepo_c");
    let b = Builds::new();
    b.busybox_base();
    let bb_id = b.inspect("bb")["image_id"].as_str().unwrap().to_string();
    let (home, key) = common::gpg::throwaway_key(b.path());
    let repo = |name: &str, signed: bool| -> PathBuf {
        let dir = b.path().join(name);
        let o = run(b.strata().args(["rpm", "bb", "--json", "--store"]).arg(b.store()).arg("-o").arg(&dir));
        assert_ok("strata rpm bb", &o);
        if signed {
            let written: Value = serde_json::from_slice(&o.stdout).unwrap();
            common::gpg::rpmsign(&home, Path::new(written[0]["path"].as_str().unwrap()));
        }
        createrepo(&dir);
        dir
    };
    let (signed, unsigned) = (repo("signed", true), repo("unsigned", false));
    common::gpg::stop_agent(&home);
    let gpgkey = format!("file://{}", key.display());
    let pull = |repo: &Path, store: &str| run(b.strata().args(["pull", "rpm:container-image(bb)", "--gpgkey", &gpgkey, "--repo"]).arg(repo).arg("--store").arg(b.path().join(store)));
    let o = pull(&signed, "a");
    assert_ok("a signed image RPM with --gpgkey", &o);
    assert!(stdout(&o).starts_with(&format!("bb:latest  {bb_id}  ")), "{}", stdout(&o));
    let err = assert_fails("an unsigned image RPM with --gpgkey", &pull(&unsigned, "b"));
    assert!(err.contains("container-image-bb-") && err.contains("not signed"), "{err}");

    // A spec's repository with gpgcheck on is checked the same way, without --gpgkey.
    let spec = write_json(&b.path().join("spec.json"), &serde_json::json!({"repos": [{"id": "images", "baseurl": unsigned.to_str().unwrap(), "gpgcheck": true, "gpgkey": gpgkey}], "images": {"x": {"packages": ["x"]}}}));
    let err = assert_fails("a gpgcheck spec repo", &run(b.strata().args(["pull", "rpm:container-image(bb)", "--spec"]).arg(&spec).arg("--store").arg(b.path().join("c"))));
    assert!(err.contains("not signed"), "{err}");
}
