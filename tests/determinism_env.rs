//! Issue 19: the same inputs give the same bytes in any environment. The corpus images are
//! composed, a Dockerfile is built FROM one of them (with `SOURCE_DATE_EPOCH`, as "same
//! inputs" means), an image RPM is written (`strata rpm`), an archive saved (`strata save`)
//! and a mirror published (`strata publish`, its xz archive, RPM, CHECKSUM, repodata and
//! folder modes) — once in a baseline environment (umask 022, no TZ, C locale), then once in
//! each variation, each in a fresh store and cache: umask 077, umask 002,
//! `TZ=Pacific/Kiritimati`, `LC_ALL=tr_TR.UTF-8`, another hostname (a UTS namespace), one
//! CPU (`taskset -c 0`), other cache/store/staging paths (with spaces, staging on disk
//! instead of tmpfs, RPMs fetched afresh), and a store on a tmpfs. Every manifest digest,
//! RPM and archive must be byte-identical to the baseline's; a difference names the layer
//! entries that differ.
//!
//! The whole fleet is composed where modes and paths can leak (baseline, both umasks, the
//! other paths); the other variations compose baseimage, busybox and web (web's nginx
//! scriptlets add users and folders), which keeps the test near two minutes. Each
//! variation's wrapper is probed first, so a variation that silently did not apply fails.
//!
//! Then acceptance 2 on what umask 077 composed: every image's rpmdb is read by the host's
//! rpm as uid 65534 (the corpus images are Debian-converted and hold no rpm binary), and in a
//! private dockerd `docker run --user 65534 baseimage` reads the database and its side files.
//!
//! Runs as root (the build's RUN steps, the tmpfs mount, the UTS namespace).

mod common;

use common::*;
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

/// The images composed in every variation (the rest only where the whole fleet is).
const SUBSET: [&str; 3] = ["baseimage", "busybox", "web"];
const BUILD_EPOCH: &str = "1700000000";

const DOCKERFILE: &str = "FROM baseimage
COPY private.txt /opt/site/deep/new/parent/private.txt
ADD tree /opt/site/tree/
RUN mkdir -p /var/site/made && echo made > /var/site/made/file && umask > /var/site/umask
USER 65534
RUN ls / > /tmp/root-listing && cat /etc/os-release > /dev/null && umask > /tmp/nobody-umask
WORKDIR /srv/work/dir
USER root
";

/// One environment: a wrapper argv before the strata binary, variables, and where its
/// cache, store and staging root are.
struct Variation {
    name: &'static str,
    wrap: Vec<String>,
    env: Vec<(String, String)>,
    fleet: bool,
    cache: PathBuf,
    store: PathBuf,
    staging: Option<PathBuf>,
    /// A probe run through the same wrapper and variables, and what its output must contain.
    probe: (String, String),
}

/// What one environment produced.
#[derive(Debug)]
struct Produced {
    manifests: BTreeMap<String, String>,
    built: String,
    rpm: (String, Vec<u8>),
    archive: Vec<u8>,
    /// Mirror-relative path → (mode, bytes) for the files whose bytes are the content
    /// (index.json/html carry the publish time, the lock and the RPM stat cache are local).
    mirror: BTreeMap<String, (u32, Vec<u8>)>,
}

fn sh_wrap(script: &str) -> Vec<String> {
    vec!["sh".into(), "-c".into(), format!("{script}; exec \"$0\" \"$@\"")]
}

impl Variation {
    fn command(&self, program: &str) -> Command {
        let mut c = match self.wrap.split_first() {
            Some((first, rest)) => {
                let mut c = Command::new(first);
                c.args(rest).arg(program);
                c
            }
            None => Command::new(program),
        };
        c.env_remove("STRATA_LOG").env_remove("RUST_LOG").env_remove("SOURCE_DATE_EPOCH");
        for v in ["TZ", "LC_ALL", "LANG", "LANGUAGE", "LOCPATH"] {
            c.env_remove(v);
        }
        c.env("STRATA_CACHE_DIR", &self.cache);
        match &self.staging {
            Some(s) => c.env("STRATA_STAGING_DIR", s),
            None => c.env_remove("STRATA_STAGING_DIR"),
        };
        for (k, v) in &self.env {
            c.env(k, v);
        }
        c
    }

    fn strata(&self) -> Command {
        self.command(env!("CARGO_BIN_EXE_strata"))
    }

    fn check_probe(&self) {
        let out = run(self.command("sh").args(["-c", &self.probe.0]));
        assert_ok(&format!("{}: probe", self.name), &out);
        let text = stdout(&out);
        assert!(text.contains(&self.probe.1), "{}: the variation did not apply: probe {:?} printed {text:?}, expected {:?}", self.name, self.probe.0, self.probe.1);
    }

    fn produce(&self, spec: &Path, context: &Path, out_dir: &Path) -> Produced {
        let t = Instant::now();
        self.check_probe();
        std::fs::create_dir_all(out_dir).unwrap();
        let store = &self.store;
        let mut compose = self.strata();
        compose.arg("compose").arg(spec).arg("--locked").arg("--store").arg(store).arg("--json");
        if !self.fleet {
            for i in SUBSET {
                compose.args(["--image", i]);
            }
        }
        let out = run(&mut compose);
        assert_ok(&format!("{}: strata compose", self.name), &out);
        let composed: Value = serde_json::from_slice(&out.stdout).unwrap();
        let manifests = composed["images"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v["manifest"].as_str().unwrap().to_string()))
            .collect();

        let out = run(self.strata().env("SOURCE_DATE_EPOCH", BUILD_EPOCH).arg("build").arg(context).args(["-t", "site", "--json", "--store"]).arg(store));
        assert_ok(&format!("{}: strata build", self.name), &out);
        let built: Value = serde_json::from_slice(&out.stdout).unwrap();

        let rpms = out_dir.join("rpms");
        let out = run(self.strata().args(["rpm", "baseimage", "--store"]).arg(store).arg("-o").arg(&rpms));
        assert_ok(&format!("{}: strata rpm", self.name), &out);
        let rpm_files: Vec<PathBuf> = std::fs::read_dir(&rpms).unwrap().map(|e| e.unwrap().path()).collect();
        assert_eq!(rpm_files.len(), 1, "{}: {rpm_files:?}", self.name);
        let rpm = (rpm_files[0].file_name().unwrap().to_string_lossy().into_owned(), std::fs::read(&rpm_files[0]).unwrap());

        let archive = out_dir.join("site.tar");
        let out = run(self.strata().args(["save", "site", "--store"]).arg(store).arg("-o").arg(&archive));
        assert_ok(&format!("{}: strata save", self.name), &out);

        let mirror = out_dir.join("mirror");
        let out = run(self.strata().args(["publish", "busybox", "--xz-level", "0", "--store"]).arg(store).arg("--mirror").arg(&mirror));
        assert_ok(&format!("{}: strata publish", self.name), &out);

        eprintln!("{}: composed {} images, built, wrapped, saved and published in {:.1} s", self.name, composed["images"].as_object().unwrap().len(), t.elapsed().as_secs_f64());
        Produced {
            manifests,
            built: built["manifest"].as_str().unwrap().to_string(),
            rpm,
            archive: std::fs::read(&archive).unwrap(),
            mirror: mirror_contents(&mirror),
        }
    }
}

fn mirror_contents(root: &Path) -> BTreeMap<String, (u32, Vec<u8>)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
            let md = std::fs::symlink_metadata(&p).unwrap();
            let mode = md.permissions().mode() & 0o7777;
            if md.is_dir() {
                out.insert(format!("{rel}/"), (mode, Vec::new()));
                stack.push(p);
            } else if ![".strata-mirror.lock", "index.json", "index.html", "rpms/.strata-mirror-rpms.json"].contains(&rel.as_str()) {
                out.insert(rel, (mode, std::fs::read(&p).unwrap()));
            }
        }
    }
    out
}

/// The uncompressed tar of a stored layer.
fn layer_tar(store: &Path, layer: &Value) -> tar::Archive<Box<dyn Read>> {
    let media_type = strata_oci::oci_spec::image::MediaType::from(layer["mediaType"].as_str().unwrap());
    let codec = strata_oci::compress::codec_of_media_type(&media_type).unwrap();
    let digest = layer["digest"].as_str().unwrap().trim_start_matches("sha256:");
    let file = std::io::BufReader::new(std::fs::File::open(store.join("blobs/sha256").join(digest)).unwrap());
    tar::Archive::new(codec.decoder(file).unwrap())
}

fn manifest_json(store: &Path, manifest: &str) -> Value {
    serde_json::from_slice(&std::fs::read(store.join("blobs/sha256").join(manifest.trim_start_matches("sha256:"))).unwrap()).unwrap()
}

/// Every entry of a stored image's layers, one line each (path, type, mode, owner, size,
/// mtime, a digest of its bytes), by layer: what a differing digest is explained with.
fn layer_entries(store: &Path, manifest: &str) -> Vec<(String, Vec<String>)> {
    let mut out = Vec::new();
    for l in manifest_json(store, manifest)["layers"].as_array().unwrap() {
        let digest = l["digest"].as_str().unwrap();
        let mut tar = layer_tar(store, l);
        let mut lines = Vec::new();
        for e in tar.entries().unwrap() {
            let mut e = e.unwrap();
            let h = e.header().clone();
            let mut bytes = Vec::new();
            e.read_to_end(&mut bytes).unwrap();
            let sum = <sha2::Sha256 as sha2::Digest>::digest(&bytes);
            lines.push(format!(
                "{} {:?} {:o} {}:{} {} {} {}",
                e.path().unwrap().display(),
                h.entry_type(),
                h.mode().unwrap(),
                h.uid().unwrap(),
                h.gid().unwrap(),
                h.size().unwrap(),
                h.mtime().unwrap(),
                &hex::encode(sum)[..12]
            ));
        }
        out.push((digest.to_string(), lines));
    }
    out
}

/// Names what differs between two stored images: the first differing layer's entries.
fn explain(image: &str, a: (&Path, &str), b: (&Path, &str)) -> String {
    let (la, lb) = (layer_entries(a.0, a.1), layer_entries(b.0, b.1));
    for (i, (x, y)) in la.iter().zip(&lb).enumerate() {
        if x.0 != y.0 {
            let only_a: Vec<_> = x.1.iter().filter(|l| !y.1.contains(l)).collect();
            let only_b: Vec<_> = y.1.iter().filter(|l| !x.1.contains(l)).collect();
            return format!("{image}: layer {i} differs ({} vs {})\n  baseline only: {only_a:#?}\n  variation only: {only_b:#?}", x.0, y.0);
        }
    }
    format!("{image}: {} vs {} layers, the layers equal: the config differs", la.len(), lb.len())
}

/// A tmpfs mounted for the test, unmounted when dropped (also when the test fails).
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path) -> Tmpfs {
        std::fs::create_dir_all(dir).unwrap();
        let out = run(Command::new("mount").args(["-t", "tmpfs", "-o", "size=4g,mode=0755", "strata-determinism"]).arg(dir));
        assert_ok("mount -t tmpfs", &out);
        Tmpfs(dir.to_path_buf())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let ok = Command::new("umount").arg(&self.0).status().map(|s| s.success()).unwrap_or(false);
        if !ok {
            let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        }
    }
}

/// `tr_TR.UTF-8` (dotted-i case rules, comma decimals): the installed one, else compiled
/// into `dir` with localedef (a second), else another non-C locale the host has.
fn turkish_locale(dir: &Path) -> (String, Option<PathBuf>) {
    let have = stdout(&run(Command::new("locale").arg("-a")));
    if have.lines().any(|l| l.eq_ignore_ascii_case("tr_TR.utf8") || l == "tr_TR.UTF-8") {
        return ("tr_TR.UTF-8".into(), None);
    }
    // localedef exits 1 on mere warnings: the compiled files are what counts.
    std::fs::create_dir_all(dir).unwrap();
    let _ = Command::new("localedef").args(["-i", "tr_TR", "-f", "UTF-8"]).arg(dir.join("tr_TR.UTF-8")).output();
    if dir.join("tr_TR.UTF-8/LC_CTYPE").exists() {
        return ("tr_TR.UTF-8".into(), Some(dir.to_path_buf()));
    }
    let other = have.lines().find(|l| !["C", "POSIX", "C.utf8", "C.UTF-8"].contains(l)).map(str::to_string);
    let other = other.expect("no tr_TR locale, localedef cannot make one, and no other non-C locale is installed (apt-get install locales)");
    eprintln!("note: tr_TR.UTF-8 unavailable; using {other}");
    (other, None)
}

fn write_context(dir: &Path) -> PathBuf {
    let ctx = dir.join("context");
    let files: [(&str, &str, u32); 5] = [
        ("Dockerfile", DOCKERFILE, 0o644),
        ("private.txt", "only root reads this\n", 0o600),
        ("tree/run.sh", "#!/bin/sh\necho hi\n", 0o755),
        ("tree/a.txt", "a\n", 0o644),
        ("tree/sub/b.txt", "b\n", 0o640),
    ];
    for (rel, text, mode) in files {
        let p = ctx.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, text).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
    }
    std::fs::set_permissions(ctx.join("tree/sub"), std::fs::Permissions::from_mode(0o750)).unwrap();
    ctx
}

/// A fresh cache holding the baseline's fetched RPMs and repository metadata as hardlinks
/// (the fetch itself is not what varies; the "paths" variation fetches afresh).
fn cache_with_rpms(from: &Path, to: &Path) -> PathBuf {
    std::fs::create_dir_all(to).unwrap();
    for d in ["rpms", "repos"] {
        let out = run(Command::new("cp").arg("-al").arg(from.join(d)).arg(to.join(d)));
        assert_ok("cp -al", &out);
    }
    to.to_path_buf()
}

#[test]
fn same_bytes_under_every_environment() {
    let started = Instant::now();
    require_tool("rpm");
    for t in ["unshare", "taskset", "setpriv", "mount"] {
        require_tool(t);
    }
    assert!(rustix::process::geteuid().is_root(), "this test needs root (RUN steps, a tmpfs mount, a UTS namespace)");
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let spec = copy_corpus_spec("images.json", dir);
    let context = write_context(dir);
    let (locale, locpath) = turkish_locale(&dir.join("locales"));

    let base_cache = dir.join("cache");
    let baseline = Variation {
        name: "baseline",
        wrap: sh_wrap("umask 022"),
        env: vec![],
        fleet: true,
        cache: base_cache.clone(),
        store: dir.join("store"),
        staging: None,
        probe: ("umask".into(), "0022".into()),
    };
    // The lock, once, so that every environment composes the same one.
    let out = run(baseline.strata().arg("resolve").arg(&spec));
    assert_ok("strata resolve", &out);
    let want = baseline.produce(&spec, &context, &dir.join("out/baseline"));
    assert_eq!(want.manifests.len(), image_names(&spec).len());

    let tmpfs = Tmpfs::mount(&dir.join("tmpfs"));
    let elsewhere = dir.join("else where/deeper path");
    let mut locale_env = vec![("LC_ALL".to_string(), locale.clone())];
    if let Some(p) = &locpath {
        locale_env.push(("LOCPATH".into(), p.to_string_lossy().into_owned()));
    }
    let hostname = "strata-elsewhere.example";
    // A variation in its own folder, with a fresh cache holding the baseline's RPMs.
    let variation = |name: &'static str, wrap: Vec<String>, env: Vec<(String, String)>, fleet: bool, probe: (String, String)| {
        let home = dir.join("v").join(name.replace(['/', ' ', '='], "_"));
        Variation { name, wrap, env, fleet, cache: cache_with_rpms(&base_cache, &home.join("cache")), store: home.join("store"), staging: None, probe }
    };
    let prefixed = |prefix: &[&str], script: &str| prefix.iter().map(|s| s.to_string()).chain(sh_wrap(script)).collect::<Vec<_>>();
    let locale_probe = if locale.starts_with("tr_TR") { "Perşembe".into() } else { format!("LC_CTYPE=\"{locale}\"") };
    let variations = vec![
        variation("umask 077", sh_wrap("umask 077"), vec![], true, ("umask".into(), "0077".into())),
        variation("umask 002", sh_wrap("umask 002"), vec![], true, ("umask".into(), "0002".into())),
        Variation {
            name: "other cache, store and staging paths",
            wrap: sh_wrap("umask 022"),
            env: vec![],
            fleet: true,
            cache: elsewhere.join("ca che"),
            store: elsewhere.join("st ore"),
            staging: Some(elsewhere.join("sta ging")),
            probe: ("umask".into(), "0022".into()),
        },
        variation("TZ=Pacific/Kiritimati", sh_wrap("umask 022"), vec![("TZ".into(), "Pacific/Kiritimati".into())], false, ("date +%z".into(), "+1400".into())),
        variation("locale", sh_wrap("umask 022"), locale_env, false, ("locale 2>&1; date -d @0 +%A".into(), locale_probe)),
        variation("hostname", prefixed(&["unshare", "--uts"], &format!("umask 022; hostname {hostname}")), vec![], false, ("hostname".into(), hostname.into())),
        variation("one CPU", prefixed(&["taskset", "-c", "0"], "umask 022"), vec![], false, ("nproc".into(), "1\n".into())),
        Variation { store: tmpfs.0.join("store"), ..variation("store on tmpfs", sh_wrap("umask 022"), vec![], false, (format!("stat -f -c %T '{}'", tmpfs.0.display()), "tmpfs".into())) },
    ];

    let mut failures = Vec::new();
    let mut umask077_store = None;
    for var in &variations {
        let got = var.produce(&spec, &context, &dir.join("out").join(var.name.replace(['/', ' ', '='], "_")));
        for (image, digest) in &got.manifests {
            if want.manifests.get(image) != Some(digest) {
                failures.push(format!("{}: {}", var.name, explain(image, (&baseline.store, &want.manifests[image]), (&var.store, digest))));
            }
        }
        if got.built != want.built {
            failures.push(format!("{}: the Dockerfile build gave {} (baseline {})\n{}", var.name, got.built, want.built, explain("site", (&baseline.store, &want.built), (&var.store, &got.built))));
        }
        if got.rpm.0 != want.rpm.0 || got.rpm.1 != want.rpm.1 {
            failures.push(format!("{}: the image RPM differs ({} vs {})", var.name, got.rpm.0, want.rpm.0));
        }
        if got.archive != want.archive {
            failures.push(format!("{}: the saved archive differs ({} vs {} bytes)", var.name, got.archive.len(), want.archive.len()));
        }
        if got.mirror != want.mirror {
            let mode = |m: &BTreeMap<String, (u32, Vec<u8>)>, k: &str| m.get(k).map_or("absent".to_string(), |x| format!("mode {:o}", x.0));
            let keys: std::collections::BTreeSet<String> = got
                .mirror
                .keys()
                .chain(want.mirror.keys())
                .filter(|k| got.mirror.get(*k) != want.mirror.get(*k))
                .map(|k| format!("{k} ({} here, {} in the baseline)", mode(&got.mirror, k), mode(&want.mirror, k)))
                .collect();
            failures.push(format!("{}: the published mirror differs: {keys:?}", var.name));
        }
        if var.name == "umask 077" {
            umask077_store = Some(var.store.clone());
        }
    }
    assert!(failures.is_empty(), "outputs that depend on the environment:\n{}", failures.join("\n"));

    // Acceptance 2 on the images composed under umask 077.
    let store = umask077_store.unwrap();
    for (image, manifest) in &want.manifests {
        rpmdb_readable_by_nobody(image, &store, manifest, &dir.join("rootfs").join(image));
    }
    docker_reads_rpmdb_as_nobody(&variations[0], &store, &dir.join("out/docker"));
    eprintln!("total {:.1} s", started.elapsed().as_secs_f64());
}

/// The image's `var/lib/rpm` as its layers leave it (later layers win), extracted into
/// `root`; then the host's rpm, as uid/gid 65534, lists the packages, the same as root's
/// rpm does, and the modes are rpm's.
fn rpmdb_readable_by_nobody(image: &str, store: &Path, manifest: &str, root: &Path) {
    std::fs::create_dir_all(root).unwrap();
    for l in manifest_json(store, manifest)["layers"].as_array().unwrap() {
        let mut tar = layer_tar(store, l);
        for e in tar.entries().unwrap() {
            let mut e = e.unwrap();
            let path = e.path().unwrap().into_owned();
            // The folders on the way and the database's own files, with their modes.
            let wanted = path.to_string_lossy().trim_end_matches('/').to_string();
            if !["var", "var/lib", "var/lib/rpm"].contains(&wanted.as_str()) && !wanted.starts_with("var/lib/rpm/") {
                continue;
            }
            e.set_preserve_permissions(true);
            assert!(e.unpack_in(root).unwrap(), "{image}: {wanted} escapes");
        }
    }
    std::fs::set_permissions(root, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut p = root.to_path_buf();
    while let Some(parent) = p.parent() {
        // The temp dir's ancestors must let uid 65534 through (tempdir makes 0700).
        if parent == Path::new("/") || parent == Path::new("/tmp") {
            break;
        }
        let md = std::fs::metadata(parent).unwrap();
        if md.permissions().mode() & 0o001 == 0 {
            std::fs::set_permissions(parent, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        p = parent.to_path_buf();
    }
    let mode = |rel: &str| std::fs::metadata(root.join(rel)).map(|m| m.permissions().mode() & 0o7777).unwrap_or(0);
    for (rel, want) in [("var/lib/rpm", 0o755), ("var/lib/rpm/rpmdb.sqlite", 0o644), ("var/lib/rpm/rpmdb.sqlite-wal", 0o644), ("var/lib/rpm/rpmdb.sqlite-shm", 0o644)] {
        assert_eq!(mode(rel), want, "{image}: {rel} has mode {:o}, rpm's is {want:o}", mode(rel));
    }
    let qa = |as_nobody: bool| {
        let mut c = if as_nobody {
            let mut c = Command::new("setpriv");
            c.args(["--reuid=65534", "--regid=65534", "--clear-groups", "rpm"]);
            c
        } else {
            Command::new("rpm")
        };
        let out = run(c.arg("--root").arg(root).args(["--dbpath", "/var/lib/rpm", "-qa", "--qf", "%{NAME}\n"]));
        assert_ok(&format!("{image}: rpm -qa (as {})", if as_nobody { "uid 65534" } else { "root" }), &out);
        let mut names: Vec<String> = stdout(&out).lines().map(str::to_string).collect();
        names.sort();
        names
    };
    // uid 65534 first: root's rpm may fill the -shm it finds empty.
    let nobody = qa(true);
    assert!(!nobody.is_empty(), "{image}: rpm -qa as uid 65534 listed nothing");
    assert_eq!(nobody, qa(false), "{image}: uid 65534 and root see the same packages");
}

/// `docker run --user 65534` of the umask 077 baseimage reads the rpmdb and sees its side
/// files with rpm's modes (the image has no rpm binary to run).
fn docker_reads_rpmdb_as_nobody(v: &Variation, store: &Path, out_dir: &Path) {
    use common::runtime::{require_engines, Dockerd};
    if !require_engines() {
        return;
    }
    std::fs::create_dir_all(out_dir).unwrap();
    let archive = out_dir.join("baseimage.tar");
    let out = run(v.strata().args(["save", "baseimage", "--store"]).arg(store).arg("-o").arg(&archive));
    assert_ok("strata save baseimage (umask 077)", &out);
    let docker = Dockerd::start().unwrap();
    let image = docker.load(&archive).unwrap();
    let got = docker
        .run_with(&["--user", "65534:65534"], &image, &["/bin/sh", "-c", "id -u; stat -c '%a %n' /var/lib/rpm /var/lib/rpm/*; head -c 15 /var/lib/rpm/rpmdb.sqlite; echo"])
        .unwrap();
    for line in ["65534", "755 /var/lib/rpm", "644 /var/lib/rpm/rpmdb.sqlite", "644 /var/lib/rpm/rpmdb.sqlite-shm", "644 /var/lib/rpm/rpmdb.sqlite-wal", "SQLite format 3"] {
        assert!(got.lines().any(|l| l.trim() == line), "docker run --user 65534: no line {line:?} in\n{got}");
    }
}
