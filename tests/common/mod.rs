//! Helpers shared by the end-to-end tests: running the real `strata` binary, copying the
//! corpus specs, building tiny fixture repositories with rpmbuild, and checking a lock with
//! the real `rpm` and `dnf`.
//!
//! The peers (rpm, rpmbuild, createrepo_c, dnf) are required: when one is missing the test
//! fails with a message saying what to install. A silent skip would let CI pass without
//! checking anything.

#![allow(dead_code)] // each test binary uses a different subset

pub mod build;
pub mod gpg;
pub mod runtime;
pub mod tree;

use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The project root (the `strata` package).
pub fn project_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The RPM corpus the end-to-end tests run on: `$STRATA_CORPUS_DIR`, else
/// `../shared/corpus`, else the one corpus/build.py built (the rule is strata-corpus's).
pub fn corpus_dir() -> PathBuf {
    strata_corpus::dir()
}

pub fn corpus_repo(name: &str) -> PathBuf {
    strata_corpus::repo(name)
}

/// The corpus's manifest: the versions, file names and counts a test expects come from
/// here, never from literals (corpora built on other days hold other versions).
pub fn corpus_manifest() -> &'static strata_corpus::Manifest {
    strata_corpus::manifest()
}

/// Fails the test unless `tool` is on PATH, naming the Debian package that has it.
pub fn require_tool(tool: &str) {
    let package = match tool {
        "rpm" | "rpmbuild" => "rpm",
        "createrepo_c" => "createrepo-c",
        "dnf" => "dnf",
        "dockerd" => "docker.io",
        "getcap" => "libcap2-bin",
        other => other,
    };
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
        .unwrap_or(false);
    assert!(
        found,
        "`{tool}` is required by this test but is not installed \
         (Debian: apt-get install -y {package}; .ci/run installs it)"
    );
}

/// A private HOME whose .rpmmacros points rpm's database at the standard path: Debian's rpm
/// defaults to ~/.rpmdb, and the user's own macros must not leak into fixture builds.
pub fn rpm_home(dir: &Path) -> PathBuf {
    let home = dir.join("home");
    std::fs::create_dir_all(&home).unwrap();
    std::fs::write(home.join(".rpmmacros"), "%_dbpath /var/lib/rpm\n").unwrap();
    home
}

/// Runs a command, returning its output; panics if it cannot be started at all.
pub fn run(cmd: &mut Command) -> Output {
    cmd.output().unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Panics with the command's output unless it exited 0.
#[track_caller]
pub fn assert_ok(what: &str, o: &Output) {
    assert!(
        o.status.success(),
        "{what} failed ({}):\n--- stdout\n{}\n--- stderr\n{}",
        o.status,
        stdout(o),
        stderr(o)
    );
}

/// Panics unless the command failed; returns its stderr.
#[track_caller]
pub fn assert_fails(what: &str, o: &Output) -> String {
    assert!(
        !o.status.success(),
        "{what} should have failed but exited 0:\n--- stdout\n{}\n--- stderr\n{}",
        stdout(o),
        stderr(o)
    );
    let err = stderr(o);
    assert!(!err.trim().is_empty(), "{what} failed without a message on stderr");
    err
}

/// The `strata` binary under test, with a private metadata cache (tests must never touch
/// the user's cache) and no inherited log settings.
pub fn strata(cache: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_strata"));
    cmd.env("STRATA_CACHE_DIR", cache).env_remove("STRATA_LOG").env_remove("RUST_LOG");
    cmd
}

/// `strata resolve SPEC --cache-dir CACHE ARGS...`
pub fn resolve(spec: &Path, cache: &Path, args: &[&str]) -> Output {
    run(strata(cache).arg("resolve").arg(spec).arg("--cache-dir").arg(cache).args(args))
}

/// Resolves with `--json`, asserts success and returns the parsed lock.
#[track_caller]
pub fn resolve_json(spec: &Path, cache: &Path, args: &[&str]) -> Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let out = resolve(spec, cache, &all);
    assert_ok(&format!("strata resolve {}", spec.display()), &out);
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("--json output is not JSON ({e}):\n{}", stdout(&out)))
}

/// Copies a corpus spec (`images.json`, `images-updates.json`) into `dir`, rewriting its
/// relative baseurls (relative to the corpus folder) to absolute paths. Returns the new
/// spec's path.
pub fn copy_corpus_spec(name: &str, dir: &Path) -> PathBuf {
    let corpus = corpus_dir();
    let text = std::fs::read_to_string(corpus.join(name)).unwrap();
    let mut spec: Value = serde_json::from_str(&text).unwrap();
    for repo in spec["repos"].as_array_mut().expect("spec has a repos list") {
        if let Some(url) = repo["baseurl"].as_str() {
            if !url.contains("://") && !url.starts_with('/') {
                repo["baseurl"] = Value::from(corpus.join(url).to_string_lossy().into_owned());
            }
        }
    }
    write_json(&dir.join(name), &spec)
}

pub fn write_json(path: &Path, v: &Value) -> PathBuf {
    std::fs::write(path, serde_json::to_string_pretty(v).unwrap()).unwrap();
    path.to_path_buf()
}

pub fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

/// A spec's repo ids mapped to their local folders (baseurl as given in the spec, resolved
/// against the spec's folder).
pub fn spec_repo_dirs(spec: &Path) -> BTreeMap<String, PathBuf> {
    let v = read_json(spec);
    let base = spec.parent().unwrap();
    v["repos"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let url = r["baseurl"].as_str().expect("local baseurl");
            let url = url.strip_prefix("file://").unwrap_or(url);
            (r["id"].as_str().unwrap().to_string(), base.join(url))
        })
        .collect()
}

/// One package of a lock, as the `--json` contract names its fields.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Locked {
    pub name: String,
    pub epoch: u64,
    pub version: String,
    pub release: String,
    pub arch: String,
    pub repo: String,
    pub location: String,
}

impl Locked {
    /// `name-epoch:version-release.arch`, the form rpm's `%{EPOCHNUM}` query prints and dnf
    /// accepts as an exact package.
    pub fn nevra(&self) -> String {
        format!("{}-{}:{}-{}.{}", self.name, self.epoch, self.version, self.release, self.arch)
    }
}

/// The packages of one image in a parsed lock, in lock order.
#[track_caller]
pub fn image_packages(lock: &Value, image: &str) -> Vec<Locked> {
    let pkgs = lock["images"][image]["packages"]
        .as_array()
        .unwrap_or_else(|| panic!("lock has no packages for image {image}: {lock:#}"));
    pkgs.iter()
        .map(|p| Locked {
            name: p["name"].as_str().unwrap().into(),
            epoch: p["epoch"].as_u64().unwrap_or_else(|| panic!("epoch is not a number: {p}")),
            version: p["version"].as_str().unwrap().into(),
            release: p["release"].as_str().unwrap().into(),
            arch: p["arch"].as_str().unwrap().into(),
            repo: p["repo"].as_str().unwrap().into(),
            location: p["location"].as_str().unwrap().into(),
        })
        .collect()
}

pub fn image_names(spec: &Path) -> Vec<String> {
    read_json(spec)["images"].as_object().unwrap().keys().cloned().collect()
}

/// The RPM files a lock names, found under the spec's repo folders.
pub fn locked_files(pkgs: &[Locked], repos: &BTreeMap<String, PathBuf>) -> Vec<PathBuf> {
    pkgs.iter()
        .map(|p| {
            let dir = repos
                .get(&p.repo)
                .unwrap_or_else(|| panic!("{} is locked from unknown repo {}", p.name, p.repo));
            let file = dir.join(&p.location);
            assert!(file.is_file(), "{} locks {} which does not exist", p.name, file.display());
            file
        })
        .collect()
}

/// The independent check: rpm itself, in an empty root, accepts exactly these files as
/// one transaction (`--test` checks every Requires, Conflicts and file conflict without
/// installing anything).
#[track_caller]
pub fn rpm_test_install(files: &[PathBuf], tmp: &Path) {
    require_tool("rpm");
    let root = tmp.join("rpmroot");
    std::fs::create_dir_all(&root).unwrap();
    let home = rpm_home(tmp);
    let initdb = run(Command::new("rpm")
        .env("HOME", &home)
        .args(["--initdb", "--root"])
        .arg(&root)
        .args(["--dbpath", "/var/lib/rpm"]));
    assert_ok("rpm --initdb", &initdb);
    let test = run(Command::new("rpm")
        .env("HOME", &home)
        .args(["-i", "--test", "--nosignature", "--root"])
        .arg(&root)
        .args(["--dbpath", "/var/lib/rpm"])
        .args(files));
    assert_ok("rpm -i --test (the locked set is not installable as one transaction)", &test);
}

/// dnf in the install root `root` with the local repository `repo` (as `id`) as its only
/// one, quiet and assuming yes; `home` keeps the host's rpm macros out.
pub fn dnf_one_repo(root: &Path, repo: &Path, id: &str, home: &Path, args: &[&str]) -> Output {
    run(Command::new("dnf")
        .env("HOME", home)
        .arg("--installroot")
        .arg(root)
        .arg(format!("--setopt=cachedir={}", root.with_extension("dnfcache").display()))
        .args(["--releasever", "12", "--setopt=reposdir=/nonexistent", "--nogpgcheck", "--disablerepo=*", "--refresh", "-y", "-q"])
        .arg("--repofrompath")
        .arg(format!("{id},file://{}", repo.display()))
        .arg(format!("--enablerepo={id}"))
        .args(args))
}

/// Installs exactly `nevras` with dnf into a fresh root (scriptlets off, weak deps off,
/// only `repos` enabled) and returns what rpm then reports as installed, as
/// `name-epoch:version-release.arch` lines, sorted.
pub fn dnf_install_exact(
    nevras: &[String],
    repos: &BTreeMap<String, PathBuf>,
    tmp: &Path,
) -> Vec<String> {
    require_tool("dnf");
    require_tool("rpm");
    let root = tmp.join("dnfroot");
    let home = rpm_home(tmp);
    let mut cmd = Command::new("dnf");
    cmd.env("HOME", &home)
        .arg("--installroot")
        .arg(&root)
        .arg(format!("--setopt=cachedir={}", tmp.join("dnfcache").display()))
        .args([
            "--releasever",
            "12",
            "--setopt=reposdir=/nonexistent",
            "--setopt=install_weak_deps=False",
            "--setopt=tsflags=noscripts",
            "--nogpgcheck",
            "--disablerepo=*",
            "-y",
        ]);
    for (id, dir) in repos {
        cmd.arg("--repofrompath").arg(format!("{id},file://{}", dir.display()));
        cmd.arg(format!("--enablerepo={id}"));
    }
    cmd.arg("install").args(nevras);
    let out = run(&mut cmd);
    assert_ok("dnf install of the locked NEVRAs", &out);
    rpm_qa(&root, &home)
}

pub fn rpm_qa(root: &Path, home: &Path) -> Vec<String> {
    let out = run(Command::new("rpm")
        .env("HOME", home)
        .arg("--root")
        .arg(root)
        .args(["--dbpath", "/var/lib/rpm", "-qa", "--qf"])
        .arg("%{NAME}-%{EPOCHNUM}:%{VERSION}-%{RELEASE}.%{ARCH}\\n"));
    assert_ok("rpm -qa", &out);
    let mut lines: Vec<String> = stdout(&out).lines().map(str::to_string).collect();
    lines.sort();
    lines
}

/// A tiny RPM for a fixture repository: a name, a version and any extra spec preamble
/// lines (`Requires: ...`, `Provides: ...`). It owns one file, `/usr/share/NAME/VERSION`.
pub struct FixturePkg {
    pub name: String,
    pub version: String,
    pub preamble: Vec<String>,
}

pub fn pkg(name: &str, version: &str, preamble: &[&str]) -> FixturePkg {
    FixturePkg {
        name: name.into(),
        version: version.into(),
        preamble: preamble.iter().map(|s| s.to_string()).collect(),
    }
}

/// Builds `pkgs` with one rpmbuild call and publishes them with createrepo_c into
/// `dir/repo` (returned). A second rpmbuild per spec would cost ~100 ms each; one call
/// builds a handful in well under a second.
pub fn build_fixture_repo(dir: &Path, pkgs: &[FixturePkg]) -> PathBuf {
    let specs = dir.join("specs");
    std::fs::create_dir_all(&specs).unwrap();
    let mut spec_files = Vec::new();
    for p in pkgs {
        let text = format!(
            "Name: {name}\nVersion: {version}\nRelease: 1\nSummary: fixture {name}\n\
             License: MIT\nBuildArch: noarch\n{pre}\n%description\nTest fixture.\n\
             %install\nmkdir -p %{{buildroot}}/usr/share/{name}\n\
             echo {name} > %{{buildroot}}/usr/share/{name}/{version}\n\
             %files\n/usr/share/{name}/{version}\n",
            name = p.name,
            version = p.version,
            pre = p.preamble.join("\n"),
        );
        let f = specs.join(format!("{}-{}.spec", p.name, p.version));
        std::fs::write(&f, text).unwrap();
        spec_files.push(f);
    }
    build_spec_files(dir, &spec_files)
}

/// Builds the spec files `specs` with one rpmbuild call (reproducible: fixed build time
/// and host) into `dir/repo/Packages` and publishes them with createrepo_c; returns
/// `dir/repo`. For fixtures that need more than [`pkg`] offers (scriptlets, triggers,
/// several files).
pub fn build_spec_files(dir: &Path, specs: &[PathBuf]) -> PathBuf {
    require_tool("rpmbuild");
    require_tool("createrepo_c");
    let repo = dir.join("repo");
    std::fs::create_dir_all(repo.join("Packages")).unwrap();
    let home = rpm_home(dir);
    let out = run(Command::new("rpmbuild")
        .env("HOME", &home)
        .env("SOURCE_DATE_EPOCH", "1704067200")
        .args(["-bb", "--quiet"])
        .arg("--define")
        .arg(format!("_topdir {}", dir.join("rpmbuild").display()))
        .arg("--define")
        .arg(format!("_rpmdir {}", repo.join("Packages").display()))
        .args(["--define", "_build_name_fmt %%{NAME}-%%{VERSION}-%%{RELEASE}.%%{ARCH}.rpm"])
        .args(["--define", "use_source_date_epoch_as_buildtime 1"])
        // Files no newer than the build, as in real packages (strata's layers clamp
        // mtimes to the image's creation time, the newest build time).
        .args(["--define", "clamp_mtime_to_source_date_epoch 1"])
        .args(["--define", "_buildhost fixture.invalid"])
        .args(["--define", "__os_install_post %{nil}"])
        .args(specs));
    assert_ok("rpmbuild of the fixture specs", &out);
    let out = run(Command::new("createrepo_c").args(["--quiet", "--no-database"]).arg(&repo));
    assert_ok("createrepo_c of the fixture repo", &out);
    repo
}

/// A spec with one repo (`id` at `baseurl`) and one image per `(name, packages)`.
pub fn simple_spec(dir: &Path, id: &str, baseurl: &str, images: &[(&str, &[&str])]) -> PathBuf {
    let mut imgs = serde_json::Map::new();
    for (name, pkgs) in images {
        imgs.insert(name.to_string(), serde_json::json!({ "packages": pkgs }));
    }
    let spec = serde_json::json!({
        "repos": [{ "id": id, "baseurl": baseurl }],
        "images": imgs,
    });
    write_json(&dir.join("spec.json"), &spec)
}

/// Copies a directory tree (repos are a few files deep; symlinks are not expected).
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// Copies only a repo's metadata (`repodata/`): enough for resolving, and cheap even for
/// the 90 MB base repo.
pub fn copy_repodata(from: &Path, to: &Path) {
    copy_dir(&from.join("repodata"), &to.join("repodata"));
}

/// The one `*-NAME.xml.gz` (or other compression) file in a repo's repodata.
pub fn repodata_file(repo: &Path, kind: &str) -> PathBuf {
    let mut found: Vec<PathBuf> = std::fs::read_dir(repo.join("repodata"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().contains(&format!("-{kind}.xml")))
        .collect();
    assert_eq!(found.len(), 1, "expected one {kind} file in {}", repo.display());
    found.pop().unwrap()
}

/// Unpacks `reference` from the OCI layout `store` with umoci (layers applied in order,
/// whiteouts honoured); returns the root.
pub fn umoci_unpack(store: &Path, reference: &str, into: &Path) -> PathBuf {
    require_tool("umoci");
    let out = run(Command::new("umoci").arg("unpack").arg("--image").arg(format!("{}:{reference}", store.display())).arg(into));
    assert_ok("umoci unpack", &out);
    into.join("rootfs")
}

/// Every entry below `root`, described by type, mode, owner, mtime, size, content digest
/// or link target, capability xattr and link count: two roots with equal maps are the same
/// file tree for every purpose an image has.
pub fn tree(root: &Path) -> BTreeMap<String, String> {
    use sha2::Digest;
    use std::os::unix::fs::MetadataExt;
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            let md = std::fs::symlink_metadata(&p).unwrap();
            let what = if md.is_dir() {
                stack.push(p.clone());
                String::new()
            } else if md.file_type().is_symlink() {
                std::fs::read_link(&p).unwrap().display().to_string()
            } else if md.is_file() {
                hex::encode(sha2::Sha256::digest(std::fs::read(&p).unwrap()))
            } else {
                format!("rdev {}", md.rdev())
            };
            let mut caps = vec![0u8; 256];
            let caps = match rustix::fs::lgetxattr(&p, "security.capability", &mut caps) {
                Ok(n) => hex::encode(&caps[..n]),
                Err(_) => String::new(),
            };
            let mtime = if md.file_type().is_symlink() { 0 } else { md.mtime() };
            let nlink = if md.is_file() { md.nlink() } else { 0 };
            let rel = p.strip_prefix(root).unwrap().display().to_string();
            out.insert(rel, format!("{:o} {}:{} t={mtime} n={nlink} s={} {what} {caps}", md.mode(), md.uid(), md.gid(), if md.is_file() { md.size() } else { 0 }));
        }
    }
    out
}

/// Panics naming the first differences between two [`tree`]s (or [`tree::entries`]).
#[track_caller]
pub fn assert_same_tree<V: PartialEq + std::fmt::Debug>(what: &str, a: &BTreeMap<String, V>, b: &BTreeMap<String, V>) {
    let diffs: Vec<String> = a
        .keys()
        .chain(b.keys())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .filter(|k| a.get(*k) != b.get(*k))
        .take(10)
        .map(|k| format!("  {k}: {:?} vs {:?}", a.get(k), b.get(k)))
        .collect();
    assert!(diffs.is_empty(), "{what}: the trees differ ({} vs {} entries):\n{}", a.len(), b.len(), diffs.join("\n"));
}
