//! `strata compose` on the corpus, checked with the real tools: umoci unpacks the stored
//! image, rpm queries and verifies it, getcap reads capabilities, skopeo reads archives.

mod common;

use common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

struct Env {
    dir: tempfile::TempDir,
}

impl Env {
    fn new() -> Env {
        Env { dir: tempfile::tempdir().unwrap() }
    }
    fn path(&self) -> &Path {
        self.dir.path()
    }
    fn cache(&self) -> PathBuf {
        self.path().join("cache")
    }
    /// strata with this test's own cache and staging dir (never the machine's /dev/shm).
    fn strata(&self) -> Command {
        let mut c = strata(&self.cache());
        c.env("STRATA_STAGING_DIR", self.path().join("staging"));
        c
    }
    fn compose(&self, spec: &Path, store: &Path, args: &[&str]) -> std::process::Output {
        run(self.strata().arg("compose").arg(spec).arg("--store").arg(store).args(args))
    }
    #[track_caller]
    fn compose_json(&self, spec: &Path, store: &Path, args: &[&str]) -> Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let out = self.compose(spec, store, &all);
        assert_ok("strata compose", &out);
        serde_json::from_slice(&out.stdout).unwrap()
    }
}

/// The corpus spec plus an image with the packages that exercise scriptlets, triggers,
/// capabilities, setuid files and users added by `%pre`.
fn checks_spec(dir: &Path) -> PathBuf {
    let spec = copy_corpus_spec("images.json", dir);
    let mut v = read_json(&spec);
    v["images"]["checks"] = serde_json::json!({"packages": ["ca-certificates", "redis-server", "iputils-ping", "util-linux", "bash"]});
    write_json(&spec, &v)
}

fn unpack(store: &Path, reference: &str, into: &Path) -> PathBuf {
    umoci_unpack(store, reference, into)
}

fn rpm_in(root: &Path, home: &Path, args: &[&str]) -> std::process::Output {
    require_tool("rpm");
    run(Command::new("rpm").env("HOME", home).arg("--root").arg(root).args(["--dbpath", "/var/lib/rpm"]).args(args))
}

#[test]
fn composed_image_is_installed_as_rpm_would() {
    let env = Env::new();
    let spec = checks_spec(env.path());
    let store = env.path().join("store");
    let out = env.compose_json(&spec, &store, &["--image", "checks"]);
    assert_eq!(out["images"]["checks"]["reused"], false);
    let root = unpack(&store, "checks:latest", &env.path().join("bundle"));
    let home = rpm_home(env.path());

    // rpm -qa lists exactly the lock.
    let lock = read_json(&spec.with_extension("lock"));
    let mut want: Vec<String> = image_packages(&lock, "checks").iter().map(|p| p.nevra()).collect();
    want.sort();
    assert_eq!(rpm_qa(&root, &home), want);

    // rpm -Va: only what scriptlets changed on purpose (redis-server's %pre appends the
    // redis user and group to base-passwd's %config files).
    let va = rpm_in(&root, &home, &["-Va"]);
    let mut changed: Vec<String> = stdout(&va).lines().map(|l| l.rsplit(' ').next().unwrap().to_string()).collect();
    changed.sort();
    assert_eq!(changed, ["/etc/group", "/etc/passwd"], "rpm -Va:\n{}", stdout(&va));

    let bundle = std::fs::read_to_string(root.join("etc/ssl/certs/ca-certificates.crt")).expect("ca-certificates %post made the bundle");
    assert!(bundle.matches("BEGIN CERTIFICATE").count() > 100);
    assert!(root.join("etc/ld.so.cache").is_file(), "libc-bin's ldconfig file trigger ran");
    assert!(!root.join("var/cache/ldconfig/aux-cache").exists(), "volatile ldconfig cache removed");
    let passwd = std::fs::read_to_string(root.join("etc/passwd")).unwrap();
    assert!(passwd.contains("redis:x:999:999:"), "redis-server %pre added its user");
    require_tool("getcap");
    let caps = run(Command::new("getcap").arg(root.join("bin/ping")));
    assert!(stdout(&caps).contains("cap_net_raw=p"), "getcap: {}", stdout(&caps));
    use std::os::unix::fs::MetadataExt;
    assert_eq!(std::fs::metadata(root.join("bin/su")).unwrap().mode() & 0o7777, 0o4755);
    assert!(std::fs::read_to_string(root.join("etc/os-release")).unwrap().contains("Debian"));

    // The programs run in the root.
    let ping = run(Command::new("chroot").arg(&root).args(["/bin/bash", "-c", "openssl version; getent passwd redis"]));
    assert_ok("chroot openssl", &ping);
    assert!(stdout(&ping).contains("OpenSSL 3.0") && stdout(&ping).contains("redis:x:999"));

    // The build log names each scriptlet run.
    let log = std::fs::read_to_string(env.cache().join("logs/checks.log")).unwrap();
    for what in ["ca-certificates", "%post: exit code 0", "redis-server", "%pre: exit code 0", "libc-bin", "%transfiletriggerin: exit code 0"] {
        assert!(log.contains(what), "log lacks {what}:\n{log}");
    }

    // inspect: config and the package list read from the image's own rpmdb.
    let insp = run(strata(&env.cache()).args(["inspect", "checks", "--store"]).arg(&store));
    assert_ok("strata inspect", &insp);
    let insp: Value = serde_json::from_slice(&insp.stdout).unwrap();
    assert_eq!(insp["packages"].as_array().unwrap().len(), want.len());
    assert!(insp["config"]["config"]["Env"][0].as_str().unwrap().starts_with("PATH="));
    assert!(insp["config"]["config"]["Labels"]["dev.strata.lock.digest"].as_str().unwrap().starts_with("sha256:"));
}

#[test]
fn same_lock_gives_same_digests_and_nothing_is_rebuilt() {
    let env = Env::new();
    let spec = checks_spec(env.path());
    let first = env.compose_json(&spec, &env.path().join("s1"), &[]);
    let second = env.compose_json(&spec, &env.path().join("s2"), &["--locked"]);
    for (name, img) in first["images"].as_object().unwrap() {
        assert_eq!(img["manifest"], second["images"][name]["manifest"], "{name}: manifest digest differs between fresh stores");
        assert_eq!(second["images"][name]["reused"], false);
    }
    // Unchanged inputs: nothing rebuilt; --force rebuilds to the same digest.
    let again = env.compose_json(&spec, &env.path().join("s1"), &["--locked", "--image", "web"]);
    assert_eq!(again["images"]["web"]["reused"], true);
    let forced = env.compose_json(&spec, &env.path().join("s1"), &["--locked", "--image", "web", "--force"]);
    assert_eq!((forced["images"]["web"]["reused"].clone(), forced["images"]["web"]["manifest"].clone()), (Value::from(false), first["images"]["web"]["manifest"].clone()));
    // The store lists every image by NAME:TAG for skopeo.
    require_tool("skopeo");
    let s = run(Command::new("skopeo").arg("inspect").arg(format!("oci:{}:web:latest", env.path().join("s1").display())));
    assert_ok("skopeo inspect oci:STORE:web:latest", &s);
}

#[test]
fn archives_are_readable_by_skopeo() {
    let env = Env::new();
    let spec = checks_spec(env.path());
    let store = env.path().join("store");
    env.compose_json(&spec, &store, &["--image", "busybox"]);
    require_tool("skopeo");
    for (format, transport) in [("docker-archive", "docker-archive"), ("oci-archive", "oci-archive")] {
        let file = env.path().join(format!("busybox.{format}.tar"));
        let out = run(strata(&env.cache()).args(["save", "busybox", "--format", format, "-o"]).arg(&file).arg("--store").arg(&store));
        assert_ok("strata save", &out);
        let s = run(Command::new("skopeo").arg("inspect").arg(format!("{transport}:{}", file.display())));
        assert_ok(&format!("skopeo inspect {transport}"), &s);
        let v: Value = serde_json::from_slice(&s.stdout).unwrap();
        assert_eq!(v["Architecture"], "amd64");
    }
    // An OCI layout directory; saving again into it adds, and the digest is the store's.
    let layout = env.path().join("layout");
    for _ in 0..2 {
        assert_ok("strata save --format oci", &run(strata(&env.cache()).args(["save", "busybox", "--format", "oci", "-o"]).arg(&layout).arg("--store").arg(&store)));
    }
    let s = run(Command::new("skopeo").args(["inspect", "--raw"]).arg(format!("oci:{}:busybox:latest", layout.display())));
    assert_ok("skopeo inspect oci:LAYOUT", &s);
    let stored = run(Command::new("skopeo").args(["inspect", "--raw"]).arg(format!("oci:{}:busybox:latest", store.display())));
    assert_eq!(s.stdout, stored.stdout, "the layout holds the store's manifest, byte for byte");
    let images = run(strata(&env.cache()).args(["images", "--json", "--store"]).arg(&store));
    assert_ok("strata images", &images);
    let v: Value = serde_json::from_slice(&images.stdout).unwrap();
    assert_eq!(v[0]["reference"], "busybox:latest");
}

#[test]
fn skipped_scriptlets_and_docs_leave_their_files_out() {
    let env = Env::new();
    let spec = checks_spec(env.path());
    let mut v = read_json(&spec);
    v["images"]["checks"]["scriptlets"] = Value::from("skip");
    v["images"]["checks"]["docs"] = Value::from(false);
    write_json(&spec, &v);
    let store = env.path().join("store");
    env.compose_json(&spec, &store, &["--image", "checks"]);
    let root = unpack(&store, "checks:latest", &env.path().join("bundle"));
    assert!(!root.join("etc/ssl/certs/ca-certificates.crt").exists());
    assert!(!std::fs::read_to_string(root.join("etc/passwd")).unwrap().contains("redis"));
    // %doc files are gone, %license files stay, and rpm knows they were left out.
    assert!(!root.join("usr/share/man/man1/bash.1.gz").exists());
    assert!(root.join("usr/share/doc/bash/copyright").exists());
    let home = rpm_home(env.path());
    let va = rpm_in(&root, &home, &["-Va"]);
    assert!(stdout(&va).trim().is_empty(), "rpm -Va after docs: false:\n{}", stdout(&va));
}

#[test]
fn killed_compose_resumes_and_never_lists_a_partial_image() {
    let env = Env::new();
    let spec = checks_spec(env.path());
    let store = env.path().join("store");
    // Resolve first so the kill lands in the compose work itself.
    assert_ok("resolve", &resolve(&spec, &env.cache(), &[]));
    for delay_ms in [300u64, 1200] {
        let mut child = env.strata().arg("compose").arg(&spec).arg("--store").arg(&store).args(["--locked", "--image", "nodejs"]).spawn().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        let _ = child.kill();
        let _ = child.wait();
        if store.join("index.json").exists() {
            let idx = read_json(&store.join("index.json"));
            for m in idx["manifests"].as_array().unwrap() {
                // Anything listed must be complete: every blob present with its size.
                let digest = m["digest"].as_str().unwrap().trim_start_matches("sha256:");
                let manifest = read_json(&store.join("blobs/sha256").join(digest));
                for l in manifest["layers"].as_array().unwrap() {
                    let blob = store.join("blobs/sha256").join(l["digest"].as_str().unwrap().trim_start_matches("sha256:"));
                    assert_eq!(std::fs::metadata(&blob).unwrap().len(), l["size"].as_u64().unwrap());
                }
            }
        }
    }
    let out = env.compose_json(&spec, &store, &["--locked", "--image", "nodejs"]);
    assert_eq!(out["images"]["nodejs"]["packages"], 43);
    let staging = env.path().join("staging");
    let left: Vec<_> = std::fs::read_dir(&staging).unwrap().flatten().map(|e| e.file_name()).collect();
    assert!(left.is_empty(), "staging roots of killed builds are cleaned: {left:?}");
}

#[test]
fn file_conflicts_are_refused_naming_both_packages() {
    let env = Env::new();
    let conflict_dir = env.path().join("conflict");
    std::fs::create_dir_all(&conflict_dir).unwrap();
    let repo = build_conflict_repo(&conflict_dir);
    let spec = simple_spec(env.path(), "fx", repo.to_str().unwrap(), &[("both", &["one", "two"])]);
    let mut v = read_json(&spec);
    v["images"]["both"]["scriptlets"] = Value::from("skip");
    write_json(&spec, &v);
    let out = env.compose(&spec, &env.path().join("store"), &[]);
    let err = assert_fails("compose of conflicting packages", &out);
    assert!(err.contains("file /etc/shared.conf from") && err.contains("one-1") && err.contains("two-1"), "{err}");
    assert!(!env.path().join("store/index.json").exists() || !std::fs::read_to_string(env.path().join("store/index.json")).unwrap().contains("both"));
}

/// Two packages that install different content at /etc/shared.conf.
fn build_conflict_repo(dir: &Path) -> PathBuf {
    require_tool("rpmbuild");
    require_tool("createrepo_c");
    let repo = dir.join("repo");
    std::fs::create_dir_all(repo.join("Packages")).unwrap();
    for name in ["one", "two"] {
        let spec = dir.join(format!("{name}.spec"));
        std::fs::write(
            &spec,
            format!(
                "Name: {name}\nVersion: 1\nRelease: 1\nSummary: s\nLicense: MIT\nBuildArch: noarch\n%description\nd\n%install\nmkdir -p %{{buildroot}}/etc\necho {name} > %{{buildroot}}/etc/shared.conf\n%files\n/etc/shared.conf\n"
            ),
        )
        .unwrap();
        let out = run(Command::new("rpmbuild")
            .env("HOME", dir)
            .arg("--define")
            .arg(format!("_topdir {}", dir.join("build").display()))
            .arg("--define")
            .arg(format!("_rpmdir {}", repo.join("Packages").display()))
            .arg("--define")
            .arg("_build_name_fmt %%{NAME}-%%{VERSION}-%%{RELEASE}.%%{ARCH}.rpm")
            .args(["-bb", "--quiet"])
            .arg(&spec));
        assert_ok("rpmbuild", &out);
    }
    assert_ok("createrepo_c", &run(Command::new("createrepo_c").arg("--quiet").arg(&repo)));
    repo
}

#[test]
fn shipped_example_composes_and_its_image_runs() {
    let env = Env::new();
    let repo = env.path().join("repo");
    assert_ok("examples/build-repo.sh", &run(Command::new(project_root().join("examples/build-repo.sh")).arg(&repo)));
    let mut v = read_json(&project_root().join("examples/spec.json"));
    v["repos"][0]["baseurl"] = Value::from(repo.to_str().unwrap());
    let spec = write_json(&env.path().join("spec.json"), &v);
    let store = env.path().join("store");
    env.compose_json(&spec, &store, &[]);
    let root = unpack(&store, "hello-full:latest", &env.path().join("bundle"));
    let out = run(Command::new("chroot").arg(&root).arg("/usr/bin/hello"));
    assert_ok("hello in the composed image", &out);
    assert!(!stdout(&out).trim().is_empty());
    // motd's %post ran with the image's own (busybox) shell.
    assert_eq!(std::fs::read_to_string(root.join("etc/motd")).unwrap(), "Built by strata.\n");
}

/// A repo with the example's static shell and packages whose scriptlets fail.
fn scriptlet_repo(dir: &Path) -> PathBuf {
    let repo = dir.join("repo");
    assert_ok("examples/build-repo.sh", &run(Command::new(project_root().join("examples/build-repo.sh")).arg(&repo)));
    for (name, scriptlet) in [("badpre", "%pre"), ("badpost", "%post")] {
        let spec = dir.join(format!("{name}.spec"));
        std::fs::write(
            &spec,
            format!(
                "Name: {name}\nVersion: 1\nRelease: 1\nSummary: s\nLicense: MIT\nBuildArch: noarch\nRequires: /bin/sh\n%description\nd\n%install\nmkdir -p %{{buildroot}}/etc\necho {name} > %{{buildroot}}/etc/{name}.conf\n{scriptlet}\necho {name} says no >&2\nexit 3\n%files\n/etc/{name}.conf\n"
            ),
        )
        .unwrap();
        let out = run(Command::new("rpmbuild")
            .env("HOME", dir)
            .arg("--define")
            .arg(format!("_topdir {}", dir.join("build").display()))
            .arg("--define")
            .arg(format!("_rpmdir {}", repo.join("Packages").display()))
            .arg("--define")
            .arg("_build_name_fmt %%{NAME}-%%{VERSION}-%%{RELEASE}.%%{ARCH}.rpm")
            .args(["-bb", "--quiet"])
            .arg(&spec));
        assert_ok("rpmbuild", &out);
    }
    assert_ok("createrepo_c", &run(Command::new("createrepo_c").args(["--quiet", "--no-database"]).arg(&repo)));
    repo
}

#[test]
fn failing_pre_fails_the_image_failing_post_warns() {
    let env = Env::new();
    let repo = scriptlet_repo(env.path());
    let spec = simple_spec(env.path(), "fx", repo.to_str().unwrap(), &[("pre", &["badpre"]), ("post", &["badpost"])]);
    let store = env.path().join("store");
    // %post failing: a warning, the image is built, the file is there, the log has the output.
    let out = env.compose(&spec, &store, &["--image", "post"]);
    assert_ok("compose with a failing %post", &out);
    assert!(stderr(&out).contains("badpost-1-1.noarch: %post failed"), "{}", stderr(&out));
    let log = std::fs::read_to_string(env.cache().join("logs/post.log")).unwrap();
    assert!(log.contains("badpost says no") && log.contains("exit code 3"), "{log}");
    // %pre failing: rpm does not install the package, so the image is not built.
    let out = env.compose(&spec, &store, &["--image", "pre"]);
    let err = assert_fails("compose with a failing %pre", &out);
    assert!(err.contains("badpre-1-1.noarch") && err.contains("%pre") && err.contains("badpre says no"), "{err}");
    let index = std::fs::read_to_string(store.join("index.json")).unwrap();
    assert!(index.contains("post:latest") && !index.contains("pre:latest"), "{index}");
}

#[test]
fn compose_without_root_says_so() {
    let env = Env::new();
    let spec = checks_spec(env.path());
    require_tool("setpriv");
    // A copy nobody can execute wherever the checkout lives (it may be under /root).
    let bin_dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(bin_dir.path(), std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let bin = bin_dir.path().join("strata");
    std::fs::copy(env!("CARGO_BIN_EXE_strata"), &bin).unwrap();
    let out = run(Command::new("setpriv")
        .args(["--reuid", "65534", "--regid", "65534", "--clear-groups"])
        .arg(&bin)
        .arg("compose")
        .arg(&spec)
        .arg("--store")
        .arg(env.path().join("store")));
    let err = assert_fails("compose as nobody", &out);
    assert!(err.contains("needs root"), "{err}");
}
