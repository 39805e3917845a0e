//! End-to-end tests of `strata resolve` on the RPM corpus (tests/common::corpus_dir) and on the
//! example shipped in examples/, checked against rpm and dnf rather than against strata's
//! own idea of what is right.

mod common;

use common::*;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

const BASE: &str = "images.json";
const UPDATES: &str = "images-updates.json";

/// (name, epoch, version, release) of every RPM in a corpus repo, from manifest.json:
/// the corpus's own record, independent of repodata and of strata.
fn manifest(repo: &str) -> BTreeMap<String, Value> {
    let m = read_json(&corpus_dir().join("out/manifest.json"));
    m.as_array()
        .unwrap()
        .iter()
        .filter(|e| e["repo"] == repo)
        .map(|e| (e["name"].as_str().unwrap().to_string(), e.clone()))
        .collect()
}

// --- (a) every image resolves ------------------------------------------------------------

fn all_images_resolve(spec_name: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let spec = copy_corpus_spec(spec_name, tmp.path());
    let out = resolve(&spec, &tmp.path().join("cache"), &[]);
    assert_ok(&format!("strata resolve {spec_name}"), &out);
    let lock = read_json(&spec.with_extension("lock"));
    for image in image_names(&spec) {
        let pkgs = image_packages(&lock, &image);
        assert!(!pkgs.is_empty(), "image {image} of {spec_name} locked no packages");
    }
}

#[test]
fn every_image_of_images_json_resolves() {
    all_images_resolve(BASE);
}

#[test]
fn every_image_of_images_updates_json_resolves() {
    all_images_resolve(UPDATES);
}

// --- (b) rpm accepts each locked set; (c) dnf installs exactly it -----------------------

/// Resolves `spec_name` and checks `image`'s lock with the real tools:
/// - each name appears once;
/// - `rpm -i --test` in an empty root accepts all the locked files as one transaction
///   (every Requires, Conflicts and file conflict checked by rpm itself);
/// - dnf, asked for exactly the locked NEVRAs, installs them and nothing else.
fn check_image_with_rpm_and_dnf(spec_name: &str, image: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let spec = copy_corpus_spec(spec_name, tmp.path());
    let lock = resolve_json(&spec, &tmp.path().join("cache"), &[]);
    let pkgs = image_packages(&lock, image);
    assert!(!pkgs.is_empty(), "{image}: empty lock");

    let mut seen = BTreeSet::new();
    for p in &pkgs {
        assert!(seen.insert(&p.name), "{image}: {} is locked more than once", p.name);
    }

    let repos = spec_repo_dirs(&spec);
    rpm_test_install(&locked_files(&pkgs, &repos), tmp.path());

    let mut want: Vec<String> = pkgs.iter().map(Locked::nevra).collect();
    want.sort();
    let got = dnf_install_exact(&want, &repos, tmp.path());
    if got != want {
        let want_set: BTreeSet<_> = want.iter().collect();
        let got_set: BTreeSet<_> = got.iter().collect();
        panic!(
            "{image}: dnf installed a different set than the lock\n  dnf added: {:?}\n  \
             dnf left out: {:?}",
            got_set.difference(&want_set).collect::<Vec<_>>(),
            want_set.difference(&got_set).collect::<Vec<_>>()
        );
    }
}

/// One test per (spec, image), so a failure names the image and they run in parallel.
macro_rules! peer_checks {
    ($($test:ident: $spec:expr, $image:expr;)*) => {
        $(
            #[test]
            fn $test() {
                check_image_with_rpm_and_dnf($spec, $image);
            }
        )*
    };
}

peer_checks! {
    rpm_and_dnf_agree_base_baseimage: BASE, "baseimage";
    rpm_and_dnf_agree_base_nodejs: BASE, "nodejs";
    rpm_and_dnf_agree_base_django: BASE, "django";
    rpm_and_dnf_agree_base_web: BASE, "web";
    rpm_and_dnf_agree_base_busybox: BASE, "busybox";
    rpm_and_dnf_agree_updates_baseimage: UPDATES, "baseimage";
    rpm_and_dnf_agree_updates_nodejs: UPDATES, "nodejs";
    rpm_and_dnf_agree_updates_django: UPDATES, "django";
    rpm_and_dnf_agree_updates_web: UPDATES, "web";
    rpm_and_dnf_agree_updates_busybox: UPDATES, "busybox";
}

/// The macro above must cover every image of both specs; a new image in the corpus
/// specs would otherwise go unchecked.
#[test]
fn peer_checks_cover_every_corpus_image() {
    let tmp = tempfile::tempdir().unwrap();
    for spec_name in [BASE, UPDATES] {
        let names: BTreeSet<String> =
            image_names(&copy_corpus_spec(spec_name, tmp.path())).into_iter().collect();
        let covered: BTreeSet<String> = ["baseimage", "nodejs", "django", "web", "busybox"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(names, covered, "{spec_name}: update the peer_checks! list");
    }
}

// --- (d) newest wins across repos --------------------------------------------------------

/// Checks each locked package against the corpus manifest: `expected(name)` gives the
/// repo it must come from; EVR, size and checksum must be that RPM's.
fn assert_matches_manifest(lock: &Value, image: &str, expected_repo: impl Fn(&str) -> String) {
    let repos: BTreeMap<String, BTreeMap<String, Value>> =
        ["base", "updates"].iter().map(|r| (r.to_string(), manifest(r))).collect();
    for p in image_packages(lock, image) {
        let repo = expected_repo(&p.name);
        assert_eq!(p.repo, repo, "{image}: {} should come from {repo}", p.name);
        let m = &repos[&repo][&p.name];
        let epoch = m["epoch"].as_u64().unwrap_or(0);
        assert_eq!(
            (p.epoch, p.version.as_str(), p.release.as_str(), p.arch.as_str()),
            (
                epoch,
                m["version"].as_str().unwrap(),
                m["release"].as_str().unwrap(),
                m["arch"].as_str().unwrap()
            ),
            "{image}: wrong EVR for {}",
            p.name
        );
        let entry = lock["images"][image]["packages"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["name"] == p.name.as_str())
            .unwrap();
        assert_eq!(entry["checksum"]["type"], "sha256", "{image}: {}", p.name);
        assert_eq!(entry["checksum"]["value"], m["rpm_sha256"], "{image}: {} checksum", p.name);
        assert_eq!(entry["size"], m["rpm_bytes"], "{image}: {} size", p.name);
        assert_eq!(entry["sourcerpm"], m["sourcerpm"], "{image}: {} sourcerpm", p.name);
    }
}

#[test]
fn images_updates_json_takes_the_newer_versions_from_updates() {
    let tmp = tempfile::tempdir().unwrap();
    let spec = copy_corpus_spec(UPDATES, tmp.path());
    let lock = resolve_json(&spec, &tmp.path().join("cache"), &[]);

    // The two headline cases, spelled out.
    let find = |image: &str, name: &str| {
        image_packages(&lock, image)
            .into_iter()
            .find(|p| p.name == name)
            .unwrap_or_else(|| panic!("{image} does not lock {name}"))
    };
    let (libssl, want) = (find("web", "libssl3"), corpus_manifest().updated_build("libssl3"));
    assert_eq!(
        (libssl.version.as_str(), libssl.release.as_str(), libssl.repo.as_str()),
        (want.version.as_str(), want.release.as_str(), "updates")
    );
    let (bash, want) = (find("baseimage", "bash"), corpus_manifest().get("updates", "bash"));
    assert_eq!(want.variant, "synthetic-update");
    assert_eq!(
        (bash.version.as_str(), bash.release.as_str(), bash.repo.as_str()),
        (want.version.as_str(), want.release.as_str(), "updates")
    );

    // Every package: from updates when updates has it (each update is newer), else base.
    let updates = manifest("updates");
    for image in image_names(&spec) {
        assert_matches_manifest(&lock, &image, |name| {
            if updates.contains_key(name) { "updates" } else { "base" }.to_string()
        });
    }
}

#[test]
fn images_json_takes_everything_from_base() {
    let tmp = tempfile::tempdir().unwrap();
    let spec = copy_corpus_spec(BASE, tmp.path());
    let lock = resolve_json(&spec, &tmp.path().join("cache"), &[]);
    let libssl = image_packages(&lock, "web").into_iter().find(|p| p.name == "libssl3").unwrap();
    let want = corpus_manifest().get("base", "libssl3");
    assert_eq!((libssl.version.as_str(), libssl.release.as_str()), (want.version.as_str(), want.release.as_str()));
    for image in image_names(&spec) {
        assert_matches_manifest(&lock, &image, |_| "base".to_string());
    }
}

// --- (e) output shape, determinism, --locked, --image -----------------------------------

fn sha256_hex(path: &Path) -> String {
    let out = run(Command::new("sha256sum").arg(path));
    assert_ok("sha256sum", &out);
    stdout(&out).split_whitespace().next().unwrap().to_string()
}

#[test]
fn json_output_has_the_documented_shape() {
    let tmp = tempfile::tempdir().unwrap();
    let spec = copy_corpus_spec(UPDATES, tmp.path());
    let lock = resolve_json(&spec, &tmp.path().join("cache"), &[]);

    let images = lock["images"].as_object().expect("images is an object");
    let names: BTreeSet<&str> = images.keys().map(String::as_str).collect();
    assert_eq!(names, BTreeSet::from(["baseimage", "busybox", "django", "nodejs", "web"]));

    let fields: BTreeSet<&str> = [
        "name",
        "epoch",
        "version",
        "release",
        "arch",
        "repo",
        "location",
        "checksum",
        "size",
        "installed_size",
        "sourcerpm",
        "buildtime",
    ]
    .into();
    let mut saw_epoch = false;
    for (image, body) in images {
        let pkgs = body["packages"].as_array().unwrap_or_else(|| panic!("{image}: packages"));
        let order: Vec<&str> = pkgs.iter().map(|p| p["name"].as_str().unwrap()).collect();
        let mut sorted = order.clone();
        sorted.sort();
        assert_eq!(order, sorted, "{image}: packages are not sorted by name");
        for p in pkgs {
            let keys: BTreeSet<&str> = p.as_object().unwrap().keys().map(String::as_str).collect();
            assert_eq!(keys, fields, "{image}: package fields of {p}");
            for k in ["name", "version", "release", "arch", "repo", "location", "sourcerpm"] {
                assert!(p[k].as_str().is_some_and(|s| !s.is_empty()), "{image}: {k} in {p}");
            }
            assert!(p["epoch"].is_u64(), "{image}: epoch must be a number: {p}");
            saw_epoch |= p["epoch"].as_u64() != Some(0);
            assert!(p["size"].as_u64().is_some_and(|n| n > 0), "{image}: size in {p}");
            assert!(p["installed_size"].is_u64(), "{image}: installed_size in {p}");
            assert!(p["buildtime"].as_u64().is_some_and(|t| t > 1_000_000_000), "{image}: buildtime from the repository in {p}");
            let ck = p["checksum"].as_object().unwrap();
            assert_eq!(ck.len(), 2, "{image}: checksum has type and value only: {p}");
            assert_eq!(ck["type"], "sha256");
            assert!(ck["value"].as_str().is_some_and(|v| v.len() == 64), "{image}: {p}");
        }
    }
    // The corpus has epochs (e.g. zlib1g 1:...); 0 must not be the only value seen.
    assert!(saw_epoch, "no package has a non-zero epoch; epochs are being dropped");

    let repos = lock["repos"].as_object().expect("repos is an object");
    assert_eq!(repos.keys().collect::<Vec<_>>(), ["base", "updates"]);
    for (id, r) in repos {
        let got = r["repomd_checksum"].as_str().unwrap_or_else(|| panic!("{id}: {r}"));
        let want = sha256_hex(&corpus_repo(id).join("repodata/repomd.xml"));
        assert!(
            got == want || got == format!("sha256:{want}"),
            "{id}: repomd_checksum {got} is not the sha256 of repomd.xml ({want})"
        );
    }
}

#[test]
fn lock_is_written_beside_the_spec_and_is_deterministic() {
    let tmp = tempfile::tempdir().unwrap();
    let spec = copy_corpus_spec(UPDATES, tmp.path());
    let lock_path = spec.with_extension("lock");

    // First run cold, second run from the cache: both must give the same bytes.
    let first = resolve(&spec, &tmp.path().join("cache"), &["--json"]);
    assert_ok("first resolve", &first);
    let first_lock = std::fs::read(&lock_path).expect("images-updates.lock beside the spec");
    let second = resolve(&spec, &tmp.path().join("cache"), &["--json"]);
    assert_ok("second resolve", &second);
    assert_eq!(first.stdout, second.stdout, "--json output differs between runs");
    assert_eq!(first_lock, std::fs::read(&lock_path).unwrap(), "the lock differs");

    // A different cache folder (cold again) must not change anything either.
    let third = resolve(&spec, &tmp.path().join("cache2"), &["--json"]);
    assert_ok("third resolve", &third);
    assert_eq!(first.stdout, third.stdout, "--json output depends on the cache state");

    // --lock FILE writes there, with the same content.
    let elsewhere = tmp.path().join("sub/other.lock");
    std::fs::create_dir_all(elsewhere.parent().unwrap()).unwrap();
    let out = resolve(&spec, &tmp.path().join("cache"), &["--lock", elsewhere.to_str().unwrap()]);
    assert_ok("resolve --lock", &out);
    assert_eq!(first_lock, std::fs::read(&elsewhere).unwrap(), "--lock FILE content differs");

    // The lock on disk holds the same images and packages as --json printed.
    let printed: Value = serde_json::from_slice(&first.stdout).unwrap();
    let on_disk = read_json(&lock_path);
    for image in image_names(&spec) {
        assert_eq!(image_packages(&printed, &image), image_packages(&on_disk, &image), "{image}");
    }
}

#[test]
fn locked_passes_when_unchanged_and_names_the_difference_otherwise() {
    let tmp = tempfile::tempdir().unwrap();
    let spec = copy_corpus_spec(UPDATES, tmp.path());
    let cache = tmp.path().join("cache");
    let lock_path = spec.with_extension("lock");

    // --locked without a lock is an error, not a silent success.
    let out = resolve(&spec, &cache, &["--locked"]);
    assert_fails("--locked without a lock", &out);

    assert_ok("resolve", &resolve(&spec, &cache, &[]));
    let before = std::fs::read(&lock_path).unwrap();
    assert_ok("resolve --locked on an unchanged spec", &resolve(&spec, &cache, &["--locked"]));
    assert_eq!(before, std::fs::read(&lock_path).unwrap(), "--locked rewrote the lock");

    // Ask for one more package in one image.
    let mut v = read_json(&spec);
    v["images"]["baseimage"]["packages"].as_array_mut().unwrap().push(Value::from("curl"));
    write_json(&spec, &v);
    let out = resolve(&spec, &cache, &["--locked"]);
    let err = assert_fails("resolve --locked after adding curl", &out);
    assert!(err.contains("baseimage"), "--locked must name the image:\n{err}");
    assert!(err.contains("curl"), "--locked must name the package:\n{err}");
    assert_eq!(before, std::fs::read(&lock_path).unwrap(), "a failed --locked changed the lock");
}

#[test]
fn image_option_restricts_the_resolution() {
    let tmp = tempfile::tempdir().unwrap();
    let spec = copy_corpus_spec(UPDATES, tmp.path());
    let cache = tmp.path().join("cache");
    let one = resolve_json(&spec, &cache, &["--image", "web"]);
    let names: Vec<&String> = one["images"].as_object().unwrap().keys().collect();
    assert_eq!(names, ["web"]);
    let two = resolve_json(&spec, &cache, &["--image", "web", "--image", "busybox"]);
    let names: Vec<&String> = two["images"].as_object().unwrap().keys().collect();
    assert_eq!(names, ["busybox", "web"]);
    // Restricting must not change what an image resolves to.
    let all = resolve_json(&spec, &cache, &[]);
    assert_eq!(image_packages(&one, "web"), image_packages(&all, "web"));

    let out = resolve(&spec, &cache, &["--image", "no-such-image"]);
    let err = assert_fails("--image with an unknown name", &out);
    assert!(err.contains("no-such-image"), "the error must name the image:\n{err}");
}

// --- (g) the metadata cache ---------------------------------------------------------------

#[test]
fn warm_run_is_served_from_the_cache_without_primary() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("base");
    copy_repodata(&corpus_repo("base"), &repo);
    let spec = simple_spec(tmp.path(), "base", "base", &[("img", &["bash", "coreutils"])]);
    let cache = tmp.path().join("cache");
    let cold = resolve_json(&spec, &cache, &[]);

    // repomd.xml is unchanged, so its checksum still matches the cached index.
    std::fs::remove_file(repodata_file(&repo, "primary")).unwrap();
    let warm = resolve_json(&spec, &cache, &[]);
    assert_eq!(image_packages(&cold, "img"), image_packages(&warm, "img"));

    // Control: without the cache the missing primary is fatal, so the warm run above
    // really was served from the cache.
    let out = resolve(&spec, &tmp.path().join("empty-cache"), &[]);
    let err = assert_fails("cold resolve without primary.xml", &out);
    assert!(err.contains("primary"), "the error should name the missing file:\n{err}");
}

// --- the example shipped in examples/ ---------------------------------------------------

#[test]
fn shipped_example_builds_and_resolves() {
    require_tool("rpmbuild");
    require_tool("createrepo_c");
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("repo");
    let out = run(Command::new(project_root().join("examples/build-repo.sh")).arg(&repo));
    assert_ok("examples/build-repo.sh", &out);

    // The shipped spec, pointed at the repo just built.
    let mut v = read_json(&project_root().join("examples/spec.json"));
    v["repos"][0]["baseurl"] = Value::from(repo.to_str().unwrap());
    let spec = write_json(&tmp.path().join("spec.json"), &v);
    let lock = resolve_json(&spec, &tmp.path().join("cache"), &[]);

    let evrs = |image: &str| -> BTreeMap<String, String> {
        image_packages(&lock, image)
            .into_iter()
            .map(|p| (p.name.clone(), format!("{}:{}-{}", p.epoch, p.version, p.release)))
            .collect()
    };
    let expect = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
        pairs.iter().map(|(n, e)| (n.to_string(), e.to_string())).collect()
    };
    // Newest greeting-data wins; /bin/sh comes from example-sh; weak deps stay out.
    assert_eq!(
        evrs("hello"),
        expect(&[("example-sh", "0:1.0-2"), ("greeting-data", "0:1.1-1"), ("hello", "0:2.0-1")])
    );
    // Weak deps on: hello-docs; the rich dep picks banner-font-small (epoch 1);
    // "nc >= 2" only matches nc-modern, and its conflict keeps nc-classic out.
    assert_eq!(
        evrs("hello-full"),
        expect(&[
            ("banner", "0:0.3-2"),
            ("banner-font-small", "1:1.2-1"),
            ("example-sh", "0:1.0-2"),
            ("greeting-data", "0:1.1-1"),
            ("hello", "0:2.0-1"),
            ("hello-docs", "0:2.0-1"),
            ("motd", "0:1.0-1"),
            ("nc-modern", "0:2.1-1"),
        ])
    );
    // An explicit version pins the older greeting-data.
    assert_eq!(evrs("hello-old-greeting")["greeting-data"], "0:1.0-1");

    let repos = spec_repo_dirs(&spec);
    for image in image_names(&spec) {
        let dir = tmp.path().join(format!("rpm-{image}"));
        std::fs::create_dir_all(&dir).unwrap();
        rpm_test_install(&locked_files(&image_packages(&lock, &image), &repos), &dir);
    }
}

#[test]
fn cache_dir_comes_from_strata_cache_dir_and_never_home() {
    let tmp = tempfile::tempdir().unwrap();
    let spec = copy_corpus_spec(BASE, tmp.path());
    let cache = tmp.path().join("env-cache");
    let home = tmp.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    // No --cache-dir: the environment variable alone must place the cache.
    let out = run(strata(&cache)
        .env("HOME", &home)
        .env_remove("XDG_CACHE_HOME")
        .arg("resolve")
        .arg(&spec)
        .args(["--image", "busybox"]));
    assert_ok("resolve with STRATA_CACHE_DIR", &out);
    assert!(
        std::fs::read_dir(&cache).map(|mut d| d.next().is_some()).unwrap_or(false),
        "nothing was cached in STRATA_CACHE_DIR ({})",
        cache.display()
    );
    assert!(!home.join(".cache").exists(), "the cache went to $HOME despite STRATA_CACHE_DIR");
}

// --- repo selection: .repo files, --enablerepo / --disablerepo ---------------------------

#[test]
fn disabling_updates_gives_the_base_versions() {
    let tmp = tempfile::tempdir().unwrap();
    let spec = copy_corpus_spec(UPDATES, tmp.path());
    let lock = resolve_json(&spec, &tmp.path().join("cache"), &["--disablerepo", "updates"]);
    for image in image_names(&spec) {
        assert_matches_manifest(&lock, &image, |_| "base".to_string());
    }
    // Disabled by pattern, then one re-enabled: the updates win again.
    let lock = resolve_json(
        &spec,
        &tmp.path().join("cache"),
        &["--disablerepo", "*", "--enablerepo", "base", "--enablerepo", "updates"],
    );
    let bash = image_packages(&lock, "baseimage").into_iter().find(|p| p.name == "bash").unwrap();
    let want = corpus_manifest().get("updates", "bash");
    assert_eq!((bash.release.as_str(), bash.repo.as_str()), (want.release.as_str(), "updates"));
}

#[test]
fn repos_named_by_id_are_read_from_reposdir() {
    let tmp = tempfile::tempdir().unwrap();
    let reposdir = tmp.path().join("yum.repos.d");
    std::fs::create_dir_all(&reposdir).unwrap();
    std::fs::write(
        reposdir.join("corpus.repo"),
        format!(
            "[base]\nname=Corpus base\nbaseurl=file://{}\nenabled=1\ngpgcheck=0\n\n\
             [updates]\nname=Corpus updates\nbaseurl=file://{}\nenabled=1\ngpgcheck=0\n",
            corpus_repo("base").display(),
            corpus_repo("updates").display()
        ),
    )
    .unwrap();
    let by_id = write_json(
        &tmp.path().join("by-id.json"),
        &serde_json::json!({
            "repos": [{"id": "base"}, {"id": "updates"}],
            "images": {"web": {"packages": ["nginx-light"]}}
        }),
    );
    let cache = tmp.path().join("cache");
    let lock = resolve_json(&by_id, &cache, &["--reposdir", reposdir.to_str().unwrap()]);

    // Same answer as the spec that spells the baseurls out.
    let spelled = copy_corpus_spec(UPDATES, tmp.path());
    let reference = resolve_json(&spelled, &cache, &["--image", "web"]);
    assert_eq!(image_packages(&lock, "web"), image_packages(&reference, "web"));

    // An id that no .repo file defines is an error naming it.
    let missing = write_json(
        &tmp.path().join("missing.json"),
        &serde_json::json!({"repos": [{"id": "epel"}], "images": {"x": {"packages": ["bash"]}}}),
    );
    let out = resolve(&missing, &cache, &["--reposdir", reposdir.to_str().unwrap()]);
    let err = assert_fails("a repo id no .repo file defines", &out);
    assert!(err.contains("epel"), "the error must name the repo id:\n{err}");
}

/// Two specs in one folder (the corpus's images.json and images-updates.json) each keep
/// their own lock, NAME.lock beside NAME.json: resolving one never replaces the other's.
#[test]
fn two_specs_in_one_folder_keep_their_own_locks() {
    let tmp = tempfile::tempdir().unwrap();
    let base = copy_corpus_spec(BASE, tmp.path());
    let updates = copy_corpus_spec(UPDATES, tmp.path());
    let cache = tmp.path().join("cache");
    assert_ok("resolve images.json", &resolve(&base, &cache, &[]));
    let base_lock = std::fs::read(tmp.path().join("images.lock")).expect("images.lock beside images.json");
    assert_ok("resolve images-updates.json", &resolve(&updates, &cache, &[]));
    let updates_lock = std::fs::read(tmp.path().join("images-updates.lock")).expect("images-updates.lock beside images-updates.json");
    assert_ne!(base_lock, updates_lock, "the updates spec resolves to other packages");
    assert_eq!(std::fs::read(tmp.path().join("images.lock")).unwrap(), base_lock, "images.lock untouched by the other spec");
    assert!(!tmp.path().join("strata.lock").exists());
    // Each still passes --locked against its own lock.
    assert_ok("images.json --locked", &resolve(&base, &cache, &["--locked"]));
    assert_ok("images-updates.json --locked", &resolve(&updates, &cache, &["--locked"]));
}
