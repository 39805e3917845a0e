//! Issue 12's first acceptance run, embedded: `strata serve` on SQLite with its in-process
//! worker and a loopback registry; git repository A holds the corpus spec
//! (../shared/corpus/images.json, all five images), repository B the seeds' web-site
//! Dockerfile (tests/build_engines.rs) FROM the service's `web`, with its mysite.tar. A's log
//! is readable while A runs and after; every image is pushed; each record's RPM list equals
//! `rpm -qa` of the image pulled back from the registry; B's record names its commit and a
//! base digest equal to the pushed `web`; B's image, pulled from the registry into docker,
//! serves its page; `strata query --rpm` answers from the records with rpm's rules.

mod common;
mod service;

#[path = "../crates/strata-registry/tests/common/mod.rs"]
#[allow(unused_imports)]
mod registry;

use common::runtime::{require_engines, Dockerd};
use common::*;
use service::*;
use std::process::{Command, Stdio};
use std::time::Duration;

const ADMIN: &str = "corpus-admin-token-0123456789";

const PAGE: &str = "<html><body>Hello from mysite</body></html>\n";

#[test]
fn the_corpus_and_a_dockerfile_on_top_through_the_service() {
    if !rustix::process::geteuid().is_root() {
        panic!("composing needs root");
    }
    let reg = registry::Registry::start(registry::Auth::None);
    let host = reg.host();
    let work = tempfile::tempdir().unwrap();
    let a = corpus_spec_repo(&work.path().join("a"));
    let b = work.path().join("b");
    std::fs::create_dir_all(&b).unwrap();
    std::fs::write(b.join("Dockerfile"), format!("FROM {host}/web:latest\n{SITE_AFTER_FROM}")).unwrap();
    std::fs::create_dir_all(b.join("mysite")).unwrap();
    std::fs::write(b.join("mysite/index.html"), PAGE).unwrap();
    std::fs::write(b.join("mysite/about.html"), "about\n").unwrap();
    assert_ok("tar cf mysite.tar", &run(Command::new("tar").arg("-C").arg(&b).arg("-cf").arg(b.join("mysite.tar")).arg("mysite")));
    std::fs::remove_dir_all(b.join("mysite")).unwrap();
    git(&b, &["init", "-q", "-b", "main"]);
    git(&b, &["add", "-A"]);
    git(&b, &["commit", "-q", "-m", "site"]);
    let b_commit = git(&b, &["rev-parse", "HEAD"]);

    let home = work.path().join("home");
    let port = registry::free_port();
    let _serve = Proc(
        Command::new(env!("CARGO_BIN_EXE_strata"))
            .args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--registry", &host, "--insecure-registry", &host, "--admin-token", ADMIN])
            .arg("--data-dir")
            .arg(work.path().join("data"))
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let c = Cli { server: format!("http://127.0.0.1:{port}"), token: ADMIN.into(), home };
    c.wait_up();
    let cli = |args: &[&str]| c.run(args);
    let json = |args: &[&str]| c.json(args);

    // A's log is readable while A runs (a nonempty log read between two reads of the record
    // that both say running, and `logs --follow` from the start) and after it ended.
    let out = cli(&["submit", &format!("file://{}", a.display())]);
    assert_ok("submit A", &out);
    let id = stdout(&out).trim().to_string();
    assert_eq!(id, "1");
    let follow_out = work.path().join("follow-a");
    let follow = c.spawn(&["logs", &id, "--follow"], &follow_out);
    let mut live_log = String::new();
    c.await_build(&id, "running with a readable log", Duration::from_secs(600), |info| {
        if info["state"] != "running" {
            return false;
        }
        live_log = c.log(&id);
        !live_log.is_empty() && json(&["build-info", &id, "--json"])["state"] == "running"
    });
    c.await_build(&id, "built", Duration::from_secs(3600), |info| info["state"] == "built");
    let log = c.log(&id);
    assert!(log.starts_with(&live_log), "the log read during the build is the start of the final log:\n{live_log}\n---\n{log}");
    let followed = follow.finish(&follow_out, Duration::from_secs(30));
    assert_ok("strata logs 1 --follow", &followed);
    assert!(stdout(&followed) == log, "logs --follow printed the whole log:\n{}\n---\n{log}", stdout(&followed));
    let info = json(&["build-info", "1", "--json"]);
    let images = info["result"]["images"].as_array().unwrap().clone();
    let mut names: Vec<&str> = images.iter().map(|i| i["name"].as_str().unwrap()).collect();
    names.sort();
    assert_eq!(names, ["baseimage", "busybox", "django", "nodejs", "web"]);
    let pulled = work.path().join("pulled");
    std::fs::create_dir_all(&pulled).unwrap();
    for img in &images {
        let name = img["name"].as_str().unwrap();
        let manifest = img["manifest_digest"].as_str().unwrap();
        assert_eq!(registry::skopeo_digest(&format!("{host}/{name}:build-1")), manifest, "{name}");
        assert_eq!(registry::skopeo_digest(&format!("{host}/{name}:latest")), manifest, "{name}");
        let layout = pulled.join("layout");
        registry::skopeo(&["copy", "--src-tls-verify=false", &format!("docker://{host}/{name}:build-1"), &format!("oci:{}:{name}", layout.display())]);
        let root = umoci_unpack(&layout, name, &pulled.join(name));
        let qf = "%{NAME}-%|EPOCH?{%{EPOCH}:}:{}|%{VERSION}-%{RELEASE}%|ARCH?{.%{ARCH}}:{}|\\n";
        let out = run(Command::new("rpm").env("HOME", &pulled).arg("--root").arg(&root).args(["--dbpath", "/var/lib/rpm", "-qa", "--qf", qf]));
        assert_ok("rpm -qa", &out);
        let mut qa: Vec<String> = stdout(&out).lines().map(str::to_string).collect();
        qa.sort();
        let mut recorded: Vec<String> = img["packages"].as_array().unwrap().iter().map(|p| p.as_str().unwrap().to_string()).collect();
        recorded.sort();
        assert!(!qa.is_empty(), "{name}");
        assert_eq!(recorded, qa, "{name}: the record's RPM list is rpm -qa of the pushed image");
        assert!(log.contains(&format!("pushed {host}/{name}:build-1 {manifest}")), "{name} not in the log:\n{log}");
    }

    let out = cli(&["submit", &format!("file://{}", b.display()), "--image", "site", "--wait"]);
    assert_ok("submit B --wait", &out);
    let site = json(&["build-info", "2", "--json"]);
    assert_eq!(site["source"]["commit"], b_commit.as_str());
    let web = images.iter().find(|i| i["name"] == "web").unwrap();
    assert_eq!(site["result"]["images"][0]["base"]["digest"], web["manifest_digest"], "B's base is the pushed web");
    assert_eq!(site["result"]["images"][0]["packages"], web["packages"], "the site image holds web's packages");
    let site_ref = format!("{host}/site:build-2");
    assert_eq!(registry::skopeo_digest(&site_ref), site["result"]["images"][0]["manifest_digest"].as_str().unwrap());

    // B's image, pulled from the service's registry into docker, serves the site's page.
    if require_engines() {
        let docker = Dockerd::start().unwrap_or_else(|e| panic!("{e}"));
        let pull = docker.docker(&["pull", &site_ref]);
        assert_ok(&format!("docker pull {site_ref}"), &pull);
        let served = docker.serve(&site_ref, 80).unwrap_or_else(|e| panic!("docker serve: {e}"));
        let (status, body) = served.get("/", Duration::from_secs(30)).unwrap_or_else(|e| panic!("GET /: {e}"));
        assert_eq!(status, 200, "{body}");
        assert_eq!(body, PAGE);
        let (status, body) = served.get("/about.html", Duration::from_secs(30)).unwrap_or_else(|e| panic!("GET /about.html: {e}"));
        assert_eq!((status, body.as_str()), (200, "about\n"));
    }

    // The reverse query answers what the records say, with rpm's comparison.
    let holding = |pred: &dyn Fn(&str) -> bool| -> Vec<String> {
        let mut v: Vec<String> = images
            .iter()
            .filter(|i| i["packages"].as_array().unwrap().iter().any(|p| pred(p.as_str().unwrap())))
            .map(|i| i["name"].as_str().unwrap().to_string())
            .collect();
        v.sort();
        v
    };
    let answered = |rpm: &str| -> Vec<String> {
        let mut v: Vec<String> = json(&["query", "--rpm", rpm, "--json"]).as_array().unwrap().iter().map(|h| h["image"].as_str().unwrap().to_string()).collect();
        v.sort();
        v.dedup();
        v
    };
    let with_bash = holding(&|p| p.starts_with("bash-") && p["bash-".len()..].starts_with(|c: char| c.is_ascii_digit()));
    let mut expected_bash = with_bash.clone();
    if with_bash.contains(&"web".to_string()) {
        expected_bash.push("site".into());
        expected_bash.sort();
    }
    assert!(!with_bash.is_empty());
    assert_eq!(answered("bash"), expected_bash);
    let (old, new) = (corpus_manifest().get("base", "libssl3"), corpus_manifest().updated_build("libssl3"));
    let old_ssl = holding(&|p| p.starts_with(&format!("libssl3-{}.", old.vr())));
    let answer = answered(&format!("libssl3 < {}", new.vr()));
    assert!(old_ssl.iter().all(|i| answer.contains(i)), "{answer:?} ⊇ {old_ssl:?}");
    assert!(answer.iter().all(|i| old_ssl.contains(i) || (i == "site" && old_ssl.contains(&"web".to_string()))), "{answer:?} vs {old_ssl:?}");
}
