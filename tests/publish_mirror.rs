//! Acceptance (issue 15, mirror tree): `strata publish` of the composed web image and a site
//! built FROM it writes a mirror that the real tools take as it is — dnf, with the mirror's
//! rpms/ (metadata written by strata, no createrepo_c) as its only repository, lists and
//! installs docker-image-web, and installing the site's RPM pulls in web's by the image id
//! it requires; rpm reads the seed's Provides; gpg verifies the clear-signed CHECKSUM with
//! only the public key; sha256sum checks the archives; docker loads the archives from the
//! mirror and serves the site. A second publish changes no file (inode, mtime and bytes of
//! every one), a new --base-url rewrites only the indexes, and hostile names, a file in the
//! way and a --mirror that is a file are refused with the cause named.

mod common;

use common::build::Builds;
use common::runtime::{require_engines, Dockerd};
use common::*;
use serde_json::Value;
use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

const SITE: &str = "FROM web\nCOPY index.html /var/www/html/index.html\n";

/// Every file under `dir`: (inode, mtime in ns, size, bytes).
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, (u64, i128, u64, Vec<u8>)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let md = e.metadata().unwrap();
            if md.is_dir() {
                stack.push(e.path());
            } else {
                let mtime = md.mtime() as i128 * 1_000_000_000 + md.mtime_nsec() as i128;
                out.insert(e.path().strip_prefix(dir).unwrap().to_path_buf(), (md.ino(), mtime, md.len(), std::fs::read(e.path()).unwrap()));
            }
        }
    }
    out
}

/// What the indexes of a mirror (index.json, repomd.xml) name is there, with the size
/// recorded; a mirror not yet indexed is consistent too.
#[track_caller]
fn assert_consistent(mirror: &Path) {
    if let Ok(bytes) = std::fs::read(mirror.join("index.json")) {
        let index: Value = serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("index.json is half written: {e}"));
        for (name, img) in index["images"].as_object().unwrap() {
            for (version, arches) in img["versions"].as_object().unwrap() {
                for (arch, e) in arches.as_object().unwrap() {
                    for f in [&e["archive"], &e["checksum"], &e["rpm"]] {
                        let path = mirror.join(f["path"].as_str().unwrap());
                        let md = std::fs::metadata(&path).unwrap_or_else(|err| panic!("{name} {version} {arch}: index.json names {}: {err}", path.display()));
                        assert_eq!(md.len(), f["size"].as_u64().unwrap(), "{}", path.display());
                    }
                }
            }
        }
        assert!(mirror.join("index.html").is_file(), "index.json without index.html");
    }
    if let Ok(repomd) = std::fs::read_to_string(mirror.join("rpms/repodata/repomd.xml")) {
        for href in repomd.split("<location href=\"").skip(1).map(|r| r.split('"').next().unwrap()) {
            assert!(mirror.join("rpms").join(href).is_file(), "repomd.xml names {href}, which is not there");
        }
    }
}

fn gpg(home: &Path, args: &[&str]) -> Output {
    run(Command::new("gpg").env("GNUPGHOME", home).args(["--batch", "--no-tty", "--pinentry-mode", "loopback", "--passphrase", ""]).args(args))
}

/// A signing key made by gpg: (armored secret key file, armored public key file).
fn make_key(dir: &Path) -> (PathBuf, PathBuf) {
    let home = dir.join("gnupg-signer");
    std::fs::create_dir_all(&home).unwrap();
    std::fs::set_permissions(&home, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    assert_ok("gpg --quick-gen-key", &gpg(&home, &["--quick-gen-key", "strata mirror test <mirror@example.invalid>", "ed25519", "sign", "never"]));
    let secret = dir.join("signing-key.asc");
    let o = gpg(&home, &["--armor", "--export-secret-keys", "mirror@example.invalid"]);
    assert_ok("gpg --export-secret-keys", &o);
    std::fs::write(&secret, &o.stdout).unwrap();
    let public = dir.join("signing-key.pub.asc");
    let o = gpg(&home, &["--armor", "--export", "mirror@example.invalid"]);
    assert_ok("gpg --export", &o);
    std::fs::write(&public, &o.stdout).unwrap();
    (secret, public)
}

fn dnf(root: &Path, repo: &Path, home: &Path, args: &[&str]) -> Output {
    dnf_one_repo(root, repo, "mirror", home, args)
}

fn rpm_q(args: &[&str], file: &Path, home: &Path) -> String {
    let o = run(Command::new("rpm").env("HOME", home).args(args).arg(file));
    assert_ok(&format!("rpm {args:?}"), &o);
    stdout(&o)
}

#[test]
fn publish_writes_a_mirror_dnf_rpm_gpg_and_docker_take_and_a_repeat_changes_nothing() {
    for tool in ["rpm", "dnf", "gpg", "sha256sum"] {
        require_tool(tool);
    }
    let b = Builds::new();
    let home = rpm_home(b.path());
    let spec = copy_corpus_spec("images.json", b.path());
    let out = run(b.strata().env("STRATA_STAGING_DIR", b.path().join("staging")).arg("compose").arg(&spec).args(["--image", "web", "--store"]).arg(b.store()));
    assert_ok("strata compose --image web", &out);
    let ctx = b.context("site", &[("Dockerfile", SITE), ("index.html", "<html><body>Hello from the mirror</body></html>\n")]);
    b.build_json(&ctx, &["-t", "site"]);
    let (web, site) = (b.inspect("web"), b.inspect("site"));
    let (secret, public) = make_key(b.path());
    let mirror = b.path().join("mirror");
    let publish = |mirror: &Path, images: &[&str], extra: &[&str]| -> Output {
        // xz -1 keeps the test quick; the preset changes the bytes, not the format.
        run(b.strata().arg("publish").args(images).arg("--mirror").arg(mirror).args(["--xz-level", "1", "--store"]).arg(b.store()).args(extra))
    };

    // Refused before anything is written: hostile names, an image the store lacks, a
    // mirror that is a file, and a file where the mirror needs a folder.
    for (name, why) in [("../web", "`..`"), ("we\u{1b}b", "U+001B"), ("web/../../etc", "`..`"), ("Web", "not a valid name part")] {
        let err = assert_fails(&format!("publish {name:?}"), &publish(&mirror, &[name], &[]));
        assert!(err.contains(why) && err.contains("hint:"), "{name:?}: {err}");
    }
    let err = assert_fails("publish nosuch", &publish(&mirror, &["web", "nosuch"], &[]));
    assert!(err.contains("nosuch"), "{err}");
    assert!(!mirror.exists(), "a refused publish created the mirror");
    let file = b.path().join("a-file");
    std::fs::write(&file, "x").unwrap();
    let err = assert_fails("--mirror FILE", &publish(&file, &["web"], &[]));
    assert!(err.contains("is a regular file, not a folder"), "{err}");
    let blocked = b.path().join("blocked");
    std::fs::create_dir_all(&blocked).unwrap();
    std::fs::write(blocked.join("web"), "mine").unwrap();
    let err = assert_fails("a file where web/ goes", &publish(&blocked, &["web"], &[]));
    assert!(err.contains("web is a regular file, where the mirror needs a folder"), "{err}");
    assert_eq!(std::fs::read_to_string(blocked.join("web")).unwrap(), "mine");

    // kill -9 at any point leaves a tree whose indexes name only files that are there; the
    // next publish completes it. Two publishers at once: one waits for the other.
    let killed = b.path().join("killed");
    for ms in [200, 700, 1500, 3000, 5000, 8000] {
        let mut child = b.strata().arg("publish").arg("web").arg("--mirror").arg(&killed).args(["--xz-level", "1", "--store"]).arg(b.store()).stderr(std::process::Stdio::null()).spawn().unwrap();
        std::thread::sleep(Duration::from_millis(ms));
        let _ = child.kill();
        child.wait().unwrap();
        assert_consistent(&killed);
    }
    // A publisher waits while another holds the mirror's lock, then completes.
    let lock = std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(killed.join(".strata-mirror.lock")).unwrap();
    rustix::fs::flock(&lock, rustix::fs::FlockOperation::LockExclusive).unwrap();
    let mut waiting = b.strata().arg("publish").arg("web").arg("--mirror").arg(&killed).args(["--xz-level", "1", "--store"]).arg(b.store()).stderr(std::process::Stdio::piped()).spawn().unwrap();
    // Its stderr is drained by a thread (a closed pipe would kill it), the first line sent.
    let (tx, rx) = std::sync::mpsc::channel();
    let err = waiting.stderr.take().unwrap();
    let drain = std::thread::spawn(move || {
        for line in std::io::BufRead::lines(std::io::BufReader::new(err)) {
            let _ = tx.send(line.unwrap_or_default());
        }
    });
    let line = rx.recv_timeout(Duration::from_secs(60)).unwrap();
    assert!(line.contains("waiting for another publisher"), "{line}");
    std::thread::sleep(Duration::from_millis(500));
    assert!(waiting.try_wait().unwrap().is_none(), "it waits while the lock is held");
    drop(lock);
    assert!(waiting.wait().unwrap().success(), "the waiting publisher completes");
    drain.join().unwrap();
    assert_consistent(&killed);
    assert_eq!(read_json(&killed.join("index.json"))["images"]["web"]["versions"]["0"]["x86_64"]["manifest"], web["manifest"]);
    let leftovers: Vec<PathBuf> = snapshot(&killed).into_keys().filter(|p| p.to_string_lossy().contains(".strata-tmp-")).collect();
    assert!(leftovers.is_empty(), "temporaries of the killed runs were swept: {leftovers:?}");

    // The mirror.
    let o = publish(&mirror, &["web", "site"], &["--json", "--sign-key", secret.to_str().unwrap()]);
    assert_ok("strata publish web site", &o);
    let report: Value = serde_json::from_slice(&o.stdout).unwrap();
    let images = report["images"].as_array().unwrap();
    assert_eq!(images.len(), 2);
    assert!(images.iter().all(|i| i["status"] == "published"), "{report:#}");
    let written: Vec<&str> = report["written"].as_array().unwrap().iter().map(|w| w.as_str().unwrap()).collect();
    assert_eq!(written[written.len() - 2..], ["index.json", "index.html"], "the indexes last");
    let repomd_at = written.iter().position(|w| *w == "rpms/repodata/repomd.xml").expect("repomd.xml written");
    assert!(written.iter().enumerate().all(|(i, w)| !w.starts_with("rpms/repodata/") || i <= repomd_at), "repomd.xml last of the metadata: {written:?}");
    assert!(written.iter().position(|w| w.ends_with(".rpm")).unwrap() < repomd_at);

    let index = read_json(&mirror.join("index.json"));
    for (name, inspected) in [("web", &web), ("site", &site)] {
        let entry = &index["images"][name]["versions"]["0"]["x86_64"];
        assert_eq!(entry["manifest"], inspected["manifest"], "{name}: {index:#}");
        assert_eq!(entry["image_id"], inspected["image_id"], "{name}");
        let archive = mirror.join(entry["archive"]["path"].as_str().unwrap());
        assert_eq!(archive, mirror.join(format!("{name}/0/{name}-0.x86_64.tar.xz")));
        assert_eq!(std::fs::metadata(&archive).unwrap().len(), entry["archive"]["size"].as_u64().unwrap());
        // CHECKSUM: signed, verified by gpg with the public key alone; sha256sum agrees.
        let checksum = mirror.join(format!("{name}/0/CHECKSUM"));
        let text = std::fs::read_to_string(&checksum).unwrap();
        assert!(text.starts_with("-----BEGIN PGP SIGNED MESSAGE-----"), "{text}");
        assert!(text.contains(&format!("SHA256 ({name}-0.x86_64.tar.xz) = {}", entry["archive"]["sha256"].as_str().unwrap())), "{text}");
        let verifier = b.path().join(format!("gnupg-verifier-{name}"));
        std::fs::create_dir_all(&verifier).unwrap();
        std::fs::set_permissions(&verifier, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
        assert_ok("gpg --import", &gpg(&verifier, &["--import", public.to_str().unwrap()]));
        let v = gpg(&verifier, &["--verify", checksum.to_str().unwrap()]);
        assert_ok("gpg --verify CHECKSUM", &v);
        assert!(stderr(&v).contains("Good signature"), "{}", stderr(&v));
        let sums = run(Command::new("sha256sum").arg("-c").arg("CHECKSUM").current_dir(checksum.parent().unwrap()));
        assert_ok("sha256sum -c CHECKSUM", &sums);
        assert!(stdout(&sums).contains(&format!("{name}-0.x86_64.tar.xz: OK")), "{}", stdout(&sums));
    }
    // Deterministic: the killed-and-completed mirror got the same archive and RPM bytes.
    let killed_index = read_json(&killed.join("index.json"));
    for what in ["archive", "rpm"] {
        let (a, b2) = (&index["images"]["web"]["versions"]["0"]["x86_64"][what], &killed_index["images"]["web"]["versions"]["0"]["x86_64"][what]);
        assert_eq!(a["path"], b2["path"]);
        assert_eq!(std::fs::read(mirror.join(a["path"].as_str().unwrap())).unwrap(), std::fs::read(killed.join(b2["path"].as_str().unwrap())).unwrap(), "web's {what} differs between two publishes");
    }
    let html = std::fs::read_to_string(mirror.join("index.html")).unwrap();
    for want in ["href=\"web/0/web-0.x86_64.tar.xz\"", "href=\"site/0/CHECKSUM\"", web["manifest"].as_str().unwrap(), "href=\"rpms/\""] {
        assert!(html.contains(want), "index.html lacks {want}:\n{html}");
    }

    // rpm reads the seed's Provides; the site's RPM requires web's image id.
    let rpm_of = |name: &str| mirror.join(index["images"][name]["versions"]["0"]["x86_64"]["rpm"]["path"].as_str().unwrap());
    let (web_rpm, site_rpm) = (rpm_of("web"), rpm_of("site"));
    let isa = stdout(&run(Command::new("rpm").env("HOME", &home).args(["--eval", "%{_isa}"]))).trim().to_string();
    let vr = rpm_q(&["-qp", "--qf", "%{VERSION}-%{RELEASE}"], &web_rpm, &home);
    assert_eq!(rpm_q(&["-qp", "--qf", "%{NAME}"], &web_rpm, &home), "docker-image-web");
    let provides = rpm_q(&["-qp", "--provides"], &web_rpm, &home);
    let web_id = web["image_id"].as_str().unwrap();
    for want in [format!("docker-image-web = {vr}"), format!("docker-image-web{isa} = {vr}"), format!("docker-image-id = 0:{web_id}"), format!("container-image(web) = {vr}"), format!("container-image-id({web_id})")] {
        assert!(provides.lines().any(|l| l == want), "missing Provides {want}:\n{provides}");
    }
    let requires = rpm_q(&["-qp", "--requires"], &site_rpm, &home);
    assert!(requires.lines().any(|l| l == format!("container-image-id({web_id})")), "{requires}");

    // dnf, with the mirror's rpms/ as its only repository.
    let repo = mirror.join("rpms");
    let root = b.path().join("root");
    let listed = dnf(&root, &repo, &home, &["repoquery", "--qf", "%{name}-%{version}-%{release}", "docker-image-web"]);
    assert_ok("dnf repoquery docker-image-web", &listed);
    assert_eq!(stdout(&listed).trim(), format!("docker-image-web-{vr}"));
    let found = dnf(&root, &repo, &home, &["repoquery", "--qf", "%{name}", "--whatprovides", &format!("docker-image-id = {web_id}")]);
    assert_eq!(stdout(&found).trim(), "docker-image-web", "{}", stderr(&found));
    assert_ok("dnf install docker-image-site", &dnf(&root, &repo, &home, &["install", "docker-image-site"]));
    let installed = run(Command::new("rpm").env("HOME", &home).arg("--root").arg(&root).args(["--dbpath", "/var/lib/rpm", "-qa", "--qf", "%{NAME}\n"]));
    let mut names: Vec<String> = stdout(&installed).lines().map(String::from).collect();
    names.sort();
    assert_eq!(names, ["docker-image-site", "docker-image-web"], "the site's RPM pulled in its base's");
    let web_root = b.path().join("root-web");
    assert_ok("dnf install docker-image-web", &dnf(&web_root, &repo, &home, &["install", "docker-image-web"]));
    assert!(web_root.join("usr/share/strata/images/web/latest.tar").is_file());

    // Again: every file as it was (inode, mtime, bytes); then a base URL rewrites only the
    // two indexes.
    let before = snapshot(&mirror);
    let o = publish(&mirror, &["web", "site"], &["--json", "--sign-key", secret.to_str().unwrap()]);
    assert_ok("second strata publish", &o);
    let again: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(again["written"], serde_json::json!([]), "{again:#}");
    assert!(again["images"].as_array().unwrap().iter().all(|i| i["status"] == "unchanged"), "{again:#}");
    let after = snapshot(&mirror);
    assert_eq!(before.keys().collect::<Vec<_>>(), after.keys().collect::<Vec<_>>(), "the same files");
    for (path, a) in &before {
        let b2 = &after[path];
        assert!(a.0 == b2.0 && a.1 == b2.1 && a.3 == b2.3, "{} was rewritten", path.display());
    }
    let o = publish(&mirror, &["web"], &["--json", "--base-url", "https://mirror.example.org/images/"]);
    assert_ok("publish --base-url", &o);
    let based: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(based["written"], serde_json::json!(["index.json", "index.html"]), "{based:#}");
    let html = std::fs::read_to_string(mirror.join("index.html")).unwrap();
    assert!(html.contains("href=\"https://mirror.example.org/images/site/0/site-0.x86_64.tar.xz\""), "{html}");

    // docker loads the archives straight from the mirror (xz and all) and serves the site.
    if !require_engines() {
        return;
    }
    let docker = Dockerd::start().unwrap_or_else(|e| panic!("{e}"));
    for name in ["web", "site"] {
        docker.load(&mirror.join(format!("{name}/0/{name}-0.x86_64.tar.xz"))).unwrap_or_else(|e| panic!("docker load {name}: {e}"));
        let id = docker.docker(&["image", "inspect", "--format", "{{.Id}}", &format!("{name}:latest")]);
        assert_ok("docker image inspect", &id);
        assert_eq!(stdout(&id).trim(), index["images"][name]["versions"]["0"]["x86_64"]["image_id"].as_str().unwrap());
    }
    let served = docker.serve("site:latest", 80).unwrap_or_else(|e| panic!("docker serve: {e}"));
    let (status, body) = served.get("/", Duration::from_secs(30)).unwrap_or_else(|e| panic!("GET /: {e}"));
    assert_eq!(status, 200);
    assert!(body.contains("Hello from the mirror"), "{body}");
}
