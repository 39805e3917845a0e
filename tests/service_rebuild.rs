//! Issue 13's acceptance: automatic rebuilds. `strata serve` (SQLite, in-process worker,
//! `--repo-interval 0`: repositories are checked on refresh only) and a loopback registry;
//! git repository A holds the corpus spec (the corpus's images.json) with its repos
//! served over loopback HTTP as `base` (the corpus repo) and `updates` (a repo this test
//! publishes, first empty); repository B the seeds' web-site Dockerfile FROM the service's
//! `web`, built as `site`. Then `updates` gains:
//! 1. the nginx packages only: exactly `web`, then `site` on web's rebuilt digest, are
//!    rebuilt and pushed to `testing` (latest unchanged), each record naming its changes;
//! 2. every update: exactly the images whose lock changes (computed here with
//!    `strata resolve` before and after) are rebuilt, children after parents, each
//!    record's RPMs the new lock's; A's branch moved meanwhile, so its images are built
//!    from the new commit (the plan says moved from the old one);
//! 3. nothing: a refresh plans nothing and starts no build;
//! 4. `query --rpm 'libssl3 < NEW'` (NEW the update's version) lists the holders before 2 and no `testing`
//!    build after it;
//! 5. a newer nginx-light whose RPM is missing from the served repo: web's rebuild fails,
//!    and `site` is failed naming web's build without ever starting;
//! 6. new metadata with the same packages as 2 (no lock changes): no event, no build.
//!
//! Then `strata promote web` moves web:latest to its testing build.
//!
//! Each time, `rebuild-plan --json` taken before the refresh equals (images, order, package
//! changes, input hashes) the plan the server then executed.
//!
//! A second test: an image first built after the service acted on a repository change
//! holds the repository's current packages, or the next refresh plans it.

mod common;
mod service;

#[path = "../crates/strata-registry/tests/common/mod.rs"]
#[allow(unused_imports)]
mod registry;

#[path = "../crates/strata-repo/tests/common/mod.rs"]
#[allow(unused_imports)]
mod repo_http;

use common::*;
use serde_json::Value;
use service::*;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

const ADMIN: &str = "rebuild-admin-token-0123456789";
const COMPOSED: [&str; 5] = ["baseimage", "busybox", "django", "nodejs", "web"];
/// The nginx packages the corpus's updates repo holds updates of.
const NGINX: [&str; 3] = ["nginx", "nginx-common", "nginx-light"];

/// The served tree: `base` a symlink to the corpus repo, `updates` a symlink to the
/// current version of the updates repo, replaced atomically (rename of a new symlink).
struct Served {
    root: PathBuf,
    versions: PathBuf,
    published: usize,
}

impl Served {
    fn new(dir: &Path) -> Served {
        let root = dir.join("srv");
        std::fs::create_dir_all(&root).unwrap();
        std::os::unix::fs::symlink(corpus_repo("base"), root.join("base")).unwrap();
        let versions = dir.join("updates-versions");
        std::fs::create_dir_all(&versions).unwrap();
        Served { root, versions, published: 0 }
    }

    /// Publishes a new `updates` holding `rpms` (createrepo_c in a fresh folder), then
    /// deletes the files named in `missing` from it (their metadata stays), then swaps it in.
    /// Returns the folder now served.
    fn publish(&mut self, rpms: &[PathBuf], missing: &[&str]) -> PathBuf {
        self.published += 1;
        let dir = self.versions.join(format!("updates-{}", self.published));
        std::fs::create_dir_all(dir.join("Packages")).unwrap();
        for rpm in rpms {
            let to = dir.join("Packages").join(rpm.file_name().unwrap());
            if std::fs::hard_link(rpm, &to).is_err() {
                std::fs::copy(rpm, &to).unwrap();
            }
        }
        assert_ok("createrepo_c", &run(Command::new("createrepo_c").args(["--quiet", "--no-database"]).arg(&dir)));
        for name in missing {
            std::fs::remove_file(dir.join("Packages").join(name)).unwrap();
        }
        let tmp = self.root.join("updates.new");
        std::os::unix::fs::symlink(&dir, &tmp).unwrap();
        std::fs::rename(&tmp, self.root.join("updates")).unwrap();
        dir
    }

    /// `strata resolve` of the spec's images against what is served now (local paths, a
    /// fresh metadata cache): image → package name → `[EPOCH:]VERSION-RELEASE.ARCH`.
    fn resolve(&self, spec: &Value, tmp: &Path) -> BTreeMap<String, BTreeMap<String, String>> {
        let dir = tempfile::tempdir_in(tmp).unwrap();
        let mut spec = spec.clone();
        for repo in spec["repos"].as_array_mut().unwrap() {
            let id = repo["id"].as_str().unwrap().to_string();
            repo["baseurl"] = Value::from(self.root.join(id).canonicalize().unwrap().display().to_string());
        }
        let path = write_json(&dir.path().join("spec.json"), &spec);
        let lock = resolve_json(&path, &dir.path().join("cache"), &[]);
        COMPOSED
            .iter()
            .map(|image| {
                let pkgs = image_packages(&lock, image)
                    .into_iter()
                    .map(|p| {
                        let epoch = if p.epoch == 0 { String::new() } else { format!("{}:", p.epoch) };
                        (p.name, format!("{epoch}{}-{}.{}", p.version, p.release, p.arch))
                    })
                    .collect();
                (image.to_string(), pkgs)
            })
            .collect()
    }
}

/// A package version change as the plan and the records write it.
type Change = (String, Option<String>, Option<String>);

fn changes_of(v: &Value) -> Vec<Change> {
    v.as_array()
        .unwrap_or_else(|| panic!("changes is not an array: {v}"))
        .iter()
        .map(|c| (c["name"].as_str().unwrap().to_string(), c["old"].as_str().map(str::to_string), c["new"].as_str().map(str::to_string)))
        .collect()
}

fn diff(old: &BTreeMap<String, String>, new: &BTreeMap<String, String>) -> Vec<Change> {
    old.keys()
        .chain(new.keys())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .filter(|n| old.get(*n) != new.get(*n))
        .map(|n| (n.clone(), old.get(n).cloned(), new.get(n).cloned()))
        .collect()
}

/// One planned rebuild as compared: image, kind, depth, parent, changes (sorted).
type Planned = (String, String, u64, Option<String>, Vec<Change>);

fn planned(plan: &Value) -> Vec<Planned> {
    plan["rebuilds"]
        .as_array()
        .unwrap_or_else(|| panic!("plan without rebuilds: {plan:#}"))
        .iter()
        .map(|r| {
            let mut changes = changes_of(&r["changes"]);
            changes.sort();
            (r["image"].as_str().unwrap().into(), r["kind"].as_str().unwrap().into(), r["depth"].as_u64().unwrap(), r["parent"].as_str().map(str::to_string), changes)
        })
        .collect()
}

/// What the plan must be: every composed image whose lock changes between `before` and
/// `after` (depth 0), then `site` on `web` (depth 1) when web is rebuilt.
fn expected_plan(before: &BTreeMap<String, BTreeMap<String, String>>, after: &BTreeMap<String, BTreeMap<String, String>>) -> Vec<Planned> {
    let mut plan: Vec<Planned> = COMPOSED
        .iter()
        .map(|i| (i.to_string(), diff(&before[*i], &after[*i])))
        .filter(|(_, c)| !c.is_empty())
        .map(|(i, c)| (i, "spec".to_string(), 0, None, c))
        .collect();
    if let Some(web) = plan.iter().find(|p| p.0 == "web") {
        plan.push(("site".into(), "dockerfile".into(), 1, Some("web".into()), web.4.clone()));
    }
    plan
}

fn packages(image: &Value) -> BTreeMap<String, String> {
    image["packages"].as_array().unwrap_or_else(|| panic!("no packages: {image}")).iter().map(|p| split_nevra(p.as_str().unwrap())).collect()
}

fn time(v: &Value) -> SystemTime {
    humantime::parse_rfc3339(v.as_str().unwrap_or_else(|| panic!("not a time: {v}"))).unwrap_or_else(|e| panic!("{v}: {e}"))
}

/// Whether `text` holds `n` as a number of its own (not part of a longer one).
fn names_number(text: &str, n: i64) -> bool {
    text.split(|c: char| !c.is_ascii_digit()).any(|w| w == n.to_string())
}

struct Fixture<'a> {
    c: &'a Cli,
    host: String,
    /// The served `updates` repo's URL.
    updates: String,
    /// The latest digest of each image, as first built.
    latest: BTreeMap<String, String>,
}

impl Fixture<'_> {
    fn json(&self, args: &[&str]) -> Value {
        self.c.json(args)
    }

    fn builds(&self) -> Vec<Value> {
        self.json(&["builds", "--json", "--limit", "1000"]).as_array().unwrap().clone()
    }

    fn events(&self) -> Vec<Value> {
        self.json(&["events", "--json"]).as_array().unwrap().clone()
    }

    /// Polls `events --json` until event `id` is no longer running; returns it.
    fn await_event(&self, id: i64, timeout: Duration) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let events = self.events();
            let event = events.iter().find(|e| e["id"] == id).unwrap_or_else(|| panic!("no event {id} in {events:#?}"));
            if event["state"] != "running" {
                return event.clone();
            }
            assert!(Instant::now() < deadline, "event {id} still running after {timeout:?}: {event:#}\nbuilds: {:#?}", self.builds());
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// `rebuild-plan --json`, checked against the expected plan; then `repos refresh
    /// --json`, whose event must execute that same plan. Returns (plan, event).
    fn plan_and_refresh(&self, expected: &[Planned]) -> (Value, Value) {
        let plan = self.json(&["rebuild-plan", "--json"]);
        let got = planned(&plan);
        eprintln!("plan: {:?}", got.iter().map(|p| format!("{}@{} ({} changes)", p.0, p.2, p.4.len())).collect::<Vec<_>>());
        assert_eq!(got, expected, "rebuild-plan --json (image, kind, depth, parent, changes), in execution order:\n{plan:#}");
        let mut unchanged: Vec<&str> = plan["unchanged"].as_array().unwrap_or_else(|| panic!("{plan:#}")).iter().map(|u| u.as_str().unwrap()).collect();
        unchanged.sort();
        let rest: Vec<&str> = COMPOSED.iter().copied().filter(|i| !expected.iter().any(|p| p.0 == *i)).collect();
        assert_eq!(unchanged, rest, "unchanged: the images the changed repo feeds that are not rebuilt: {plan:#}");
        let changed: Vec<&str> = plan["repos"].as_array().unwrap().iter().map(|r| r["url"].as_str().unwrap().trim_end_matches('/')).collect();
        assert_eq!(changed, [self.updates.as_str()], "the changed repo: {plan:#}");
        let refreshed = self.json(&["repos", "refresh", "--json"]);
        assert_eq!(refreshed["checked"], 2, "both repos checked: {refreshed:#}");
        let event = refreshed["event"].clone();
        assert!(event.is_object(), "a refresh after a change starts an event: {refreshed:#}");
        assert_eq!(event["state"], "running", "{event:#}");
        assert!(matches!(event["trigger"].as_str(), Some("refresh" | "webhook")), "{event:#}");
        for executed in [&refreshed["plan"], &event["plan"]] {
            assert_eq!(planned(executed), got, "the executed plan is the dry run's:\n{executed:#}\nvs\n{plan:#}");
            let hashes = |p: &Value| p["rebuilds"].as_array().unwrap().iter().map(|r| r["input_hash"].clone()).collect::<Vec<_>>();
            assert_eq!(hashes(executed), hashes(&plan), "input hashes");
            assert_eq!(executed["unchanged"], plan["unchanged"]);
        }
        assert_eq!(event["builds"].as_array().unwrap().len(), got.len(), "one build per planned rebuild: {event:#}");
        (plan, event)
    }

    /// Waits for `event`, which must end `done`, and checks what it built against its plan
    /// and `after` (the locks now): exactly one new build per planned image, no other build,
    /// each a `rebuild` of that event with the plan's changes and input hash, built after its
    /// parent on its parent's digest, pushed as build-ID and testing (latest unchanged), its
    /// RPMs exactly the new lock's. Returns image → its build record.
    fn check_done(&self, event: &Value, builds_before: usize, after: &BTreeMap<String, BTreeMap<String, String>>) -> BTreeMap<String, Value> {
        let id = event["id"].as_i64().unwrap();
        let ended = self.await_event(id, Duration::from_secs(1800));
        eprintln!("event {id}: {} in {} s, builds {}", ended["state"], ended["latency_seconds"], ended["builds"]);
        assert_eq!(ended["state"], "done", "event {id}: {ended:#}\nbuilds: {:#?}", self.builds());
        assert!(ended["finished"].is_string() && ended["latency_seconds"].as_f64().is_some_and(|s| s >= 0.0), "{ended:#}");
        assert_eq!(ended["plan"], event["plan"]);
        let ids: Vec<i64> = ended["builds"].as_array().unwrap().iter().map(|b| b.as_i64().unwrap()).collect();
        assert_eq!(ended["builds"], event["builds"]);
        let all = self.builds();
        let new: BTreeSet<i64> = all.iter().map(|b| b["id"].as_i64().unwrap()).filter(|i| !(1..=builds_before as i64).contains(i)).collect();
        assert_eq!(all.len(), builds_before + ids.len(), "only the plan's builds were added: {all:#?}");
        assert_eq!(new, ids.iter().copied().collect(), "the new builds are the event's");
        let mut by_image = BTreeMap::new();
        for (r, bid) in ended["plan"]["rebuilds"].as_array().unwrap().iter().zip(&ids) {
            let image = r["image"].as_str().unwrap();
            let info = self.json(&["build-info", &bid.to_string(), "--json"]);
            assert_eq!(info["state"], "built", "{info:#}");
            assert_eq!(info["trigger"], "rebuild", "{info:#}");
            assert_eq!(info["images"], serde_json::json!([image]), "{info:#}");
            let order = &info["rebuild"];
            assert_eq!(order["event"], id, "{info:#}");
            assert_eq!(order["changes"], r["changes"], "the record's changes are the plan's: {info:#}");
            assert_eq!(order["push_tag"], "testing", "{info:#}");
            assert_eq!(order["input_hash"], r["input_hash"], "{info:#}");
            let out = &info["result"]["images"][0];
            assert_eq!(out["name"], image, "{info:#}");
            let digest = out["manifest_digest"].as_str().unwrap();
            assert_eq!(registry::skopeo_digest(&format!("{}/{image}:build-{bid}", self.host)), digest, "{image}:build-{bid}");
            assert_eq!(registry::skopeo_digest(&format!("{}/{image}:testing", self.host)), digest, "{image}:testing");
            assert_eq!(registry::skopeo_digest(&format!("{}/{image}:latest", self.host)), self.latest[image], "{image}:latest moved");
            let pkgs = packages(out);
            for (name, _, new) in changes_of(&r["changes"]) {
                assert_eq!(pkgs.get(&name), new.as_ref(), "{image} holds {name} at the new version: {info:#}");
            }
            if let Some(parent) = r["parent"].as_str() {
                let p: &Value = by_image.get(parent).unwrap_or_else(|| panic!("{image}'s parent {parent} is not rebuilt before it"));
                assert_eq!(order["parent_build"], p["id"], "{image}'s parent build");
                assert!(time(&info["started"]) >= time(&p["finished"]), "{image} started before its parent {parent} ended:\n{info:#}\n{p:#}");
                assert_eq!(out["base"]["digest"], p["result"]["images"][0]["manifest_digest"], "{image} is built on its parent's rebuild");
                assert_eq!(pkgs, packages(&p["result"]["images"][0]), "{image} holds its rebuilt parent's RPMs");
            } else {
                assert_eq!(pkgs, after[image], "{image}'s RPMs are the new lock's");
                assert!(order["parent_build"].is_null(), "{info:#}");
            }
            by_image.insert(image.to_string(), info);
        }
        by_image
    }

    /// `query --rpm Q --json`: (image, build, tags) of each hit.
    fn query(&self, q: &str) -> Vec<(String, i64, Vec<String>)> {
        self.json(&["query", "--rpm", q, "--json"])
            .as_array()
            .unwrap()
            .iter()
            .map(|h| {
                let tags = h["tags"].as_array().unwrap_or_else(|| panic!("query hit without tags: {h}")).iter().map(|t| t.as_str().unwrap().to_string()).collect();
                (h["image"].as_str().unwrap().to_string(), h["build_id"].as_i64().unwrap(), tags)
            })
            .collect()
    }
}

/// The service under test: a loopback registry, the served repos (`updates` published
/// empty), `strata serve` on them, and the corpus spec with both repos over HTTP.
struct Setup {
    // Dropped in this order: the log printed (on a failure) while the server still runs.
    _log: LogOnPanic,
    _serve: Proc,
    c: Cli,
    http: repo_http::FileServer,
    served: Served,
    spec: Value,
    host: String,
    _reg: registry::Registry,
}

impl Setup {
    fn start(work: &Path) -> Setup {
        if !rustix::process::geteuid().is_root() {
            panic!("composing needs root");
        }
        require_tool("createrepo_c");
        let reg = registry::Registry::start(registry::Auth::None);
        let host = reg.host();
        let mut served = Served::new(work);
        served.publish(&[], &[]);
        let http = repo_http::FileServer::start(&served.root);
        let mut spec: Value = serde_json::from_str(&std::fs::read_to_string(corpus_dir().join("images.json")).unwrap()).unwrap();
        spec["repos"] = serde_json::json!([
            { "id": "base", "baseurl": format!("{}/base", http.url) },
            { "id": "updates", "baseurl": format!("{}/updates", http.url) },
        ]);
        let names: Vec<&str> = spec["images"].as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(names, COMPOSED);
        let port = registry::free_port();
        let serve_log = work.join("serve.log");
        let serve = Proc(
            Command::new(env!("CARGO_BIN_EXE_strata"))
                .args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--registry", &host, "--insecure-registry", &host, "--admin-token", ADMIN, "--repo-interval", "0"])
                .arg("--data-dir")
                .arg(work.join("data"))
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(&serve_log).unwrap())
                .spawn()
                .unwrap(),
        );
        let c = Cli { server: format!("http://127.0.0.1:{port}"), token: ADMIN.into(), home: work.join("home") };
        let setup = Setup { _log: LogOnPanic(serve_log), _serve: serve, c, http, served, spec, host, _reg: reg };
        setup.c.wait_up();
        setup
    }
}

/// A git repository at `dir` holding `spec` as strata.json, committed.
fn spec_repo(dir: &Path, spec: &Value) {
    std::fs::create_dir_all(dir).unwrap();
    write_json(&dir.join("strata.json"), spec);
    git(dir, &["init", "-q", "-b", "main"]);
    git(dir, &["add", "-A"]);
    git(dir, &["commit", "-q", "-m", "spec"]);
}

/// Every RPM of the corpus's updates repo.
fn all_updates() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(corpus_repo("updates").join("Packages")).unwrap().map(|e| e.unwrap().path()).filter(|p| p.extension().is_some_and(|e| e == "rpm")).collect();
    v.sort();
    v
}

#[test]
fn images_follow_their_rpms_parents_before_children() {
    let tmp = tempfile::tempdir().unwrap();
    let work = tmp.path().to_path_buf();
    let mut setup = Setup::start(&work);
    let (c, http, spec, host, served) = (&setup.c, &setup.http, &setup.spec, setup.host.clone(), &mut setup.served);
    let all_updates = all_updates();
    let nginx: Vec<PathBuf> = NGINX.iter().map(|n| corpus_manifest().updated_build(n).path()).collect();
    assert!(nginx.iter().all(|p| p.is_file()), "the corpus updates hold {nginx:?}");

    // A: the corpus spec with both repos over HTTP.
    let a = work.join("a");
    spec_repo(&a, spec);
    // B: the web site on the service's web.
    let b = work.join("b");
    std::fs::create_dir_all(b.join("mysite")).unwrap();
    std::fs::write(b.join("Dockerfile"), format!("FROM {host}/web:latest\n{SITE_AFTER_FROM}")).unwrap();
    std::fs::write(b.join("mysite/index.html"), "<html><body>Hello from mysite</body></html>\n").unwrap();
    assert_ok("tar cf mysite.tar", &run(Command::new("tar").arg("-C").arg(&b).arg("-cf").arg(b.join("mysite.tar")).arg("mysite")));
    std::fs::remove_dir_all(b.join("mysite")).unwrap();
    git(&b, &["init", "-q", "-b", "main"]);
    git(&b, &["add", "-A"]);
    git(&b, &["commit", "-q", "-m", "site"]);

    let out = c.run(&["submit", &format!("file://{}", a.display()), "--wait"]);
    assert_ok("submit A --wait", &out);
    let out = c.run(&["submit", &format!("file://{}", b.display()), "--image", "site", "--wait"]);
    assert_ok("submit B --wait", &out);
    let first = c.json(&["build-info", "1", "--json"]);
    let site0 = c.json(&["build-info", "2", "--json"]);
    assert_eq!((first["state"].as_str(), site0["state"].as_str()), (Some("built"), Some("built")));
    let mut latest: BTreeMap<String, String> = first["result"]["images"].as_array().unwrap().iter().map(|i| (i["name"].as_str().unwrap().to_string(), i["manifest_digest"].as_str().unwrap().to_string())).collect();
    latest.insert("site".into(), site0["result"]["images"][0]["manifest_digest"].as_str().unwrap().to_string());
    assert_eq!(site0["result"]["images"][0]["base"]["digest"].as_str(), Some(latest["web"].as_str()));
    let f = Fixture { c, host: host.clone(), updates: format!("{}/updates", http.url), latest };

    // Registered: the five composed images from A, site from B built FROM web; both repos
    // are watched, each feeding the five.
    let tracked = f.json(&["tracked", "--json"]);
    let mut reg_names: Vec<(String, String, Option<String>)> = tracked
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["name"].as_str().unwrap().into(), t["kind"].as_str().unwrap().into(), t["parent"].as_str().map(str::to_string)))
        .collect();
    reg_names.sort();
    let mut expected_reg: Vec<(String, String, Option<String>)> = COMPOSED.iter().map(|n| (n.to_string(), "spec".to_string(), None)).collect();
    expected_reg.push(("site".into(), "dockerfile".into(), Some("web".into())));
    expected_reg.sort();
    assert_eq!(reg_names, expected_reg, "tracked --json:\n{tracked:#}");
    let repos = f.json(&["repos", "list", "--json"]);
    let mut watched: Vec<(String, Vec<String>)> = repos
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let mut images: Vec<String> = r["images"].as_array().unwrap().iter().map(|i| i.as_str().unwrap().to_string()).collect();
            images.sort();
            (r["url"].as_str().unwrap().trim_end_matches('/').to_string(), images)
        })
        .collect();
    watched.sort();
    let five: Vec<String> = COMPOSED.iter().map(|s| s.to_string()).collect();
    assert_eq!(watched, vec![(format!("{}/base", http.url), five.clone()), (format!("{}/updates", http.url), five)], "repos list --json:\n{repos:#}");

    // Nothing changed since the builds: nothing planned.
    let plan = f.json(&["rebuild-plan", "--json"]);
    assert_eq!(plan["rebuilds"], serde_json::json!([]), "{plan:#}");

    let locks0 = served.resolve(spec, &work);
    for image in COMPOSED {
        let out = first["result"]["images"].as_array().unwrap().iter().find(|i| i["name"] == image).unwrap();
        assert_eq!(packages(out), locks0[image], "{image}: the first build's RPMs are the lock's");
    }

    // 1. updates gains the nginx packages: web, then site on it.
    served.publish(&nginx, &[]);
    let locks1 = served.resolve(spec, &work);
    let expected1 = expected_plan(&locks0, &locks1);
    assert_eq!(expected1.iter().map(|p| p.0.as_str()).collect::<Vec<_>>(), ["web", "site"], "the nginx update changes web's lock only: {expected1:?}");
    assert!(expected1[0].4.iter().any(|c| c.0 == "nginx-light"), "{expected1:?}");
    let builds_before = f.builds().len();
    let (_, event1) = f.plan_and_refresh(&expected1);
    let rebuilt1 = f.check_done(&event1, builds_before, &locks1);
    assert_eq!(rebuilt1.keys().collect::<Vec<_>>(), ["site", "web"]);
    // tracked: web's and site's testing point at their rebuilds, latest at the first builds.
    let tracked = f.json(&["tracked", "--json"]);
    for (image, first_id) in [("web", 1), ("site", 2)] {
        let t = tracked.as_array().unwrap().iter().find(|t| t["name"] == image).unwrap();
        let tag = |name: &str| t["tags"].as_array().unwrap().iter().find(|p| p["tag"] == name).cloned().unwrap_or_else(|| panic!("{image} has no {name} tag: {t:#}"));
        assert_eq!(tag("latest")["build_id"], first_id, "{t:#}");
        assert_eq!(tag("latest")["digest"].as_str(), Some(f.latest[image].as_str()), "{t:#}");
        assert_eq!(tag("testing")["build_id"], rebuilt1[image]["id"], "{t:#}");
        assert_eq!(tag("testing")["digest"], rebuilt1[image]["result"]["images"][0]["manifest_digest"], "{t:#}");
    }

    // 4, before: the reverse query lists every libssl3 holder.
    let (old_ssl, new_ssl) = (corpus_manifest().get("base", "libssl3"), corpus_manifest().updated_build("libssl3"));
    let ssl_holders: BTreeSet<String> = COMPOSED.iter().filter(|i| locks1[**i].get("libssl3").is_some_and(|v| v.starts_with(&format!("{}.", old_ssl.evr())))).map(|i| i.to_string()).collect();
    assert!(ssl_holders.contains("web") && ssl_holders.len() >= 2, "{ssl_holders:?}");
    let older_ssl = format!("libssl3 < {}", new_ssl.vr());
    let hits = f.query(&older_ssl);
    let hit_images: BTreeSet<String> = hits.iter().map(|h| h.0.clone()).collect();
    let mut expected_hits = ssl_holders.clone();
    expected_hits.insert("site".into());
    assert_eq!(hit_images, expected_hits, "query before the update: {hits:?}");

    // 2. updates gains every update: exactly the images whose lock changes. A's branch
    // moved meanwhile (a README), so its images are built from the new commit, recorded as
    // moved from the old one; B's did not.
    let a_old = first["source"]["commit"].as_str().unwrap().to_string();
    std::fs::write(a.join("README"), "corpus images\n").unwrap();
    git(&a, &["add", "README"]);
    git(&a, &["commit", "-q", "-m", "readme"]);
    let a_new = git(&a, &["rev-parse", "HEAD"]);
    served.publish(&all_updates, &[]);
    let locks2 = served.resolve(spec, &work);
    let expected2 = expected_plan(&locks1, &locks2);
    let updated: BTreeSet<String> = all_updates
        .iter()
        .map(|p| {
            let file = p.file_name().unwrap().to_str().unwrap().trim_end_matches(".rpm");
            let (name_ver, _) = file.rsplit_once('-').unwrap();
            name_ver.rsplit_once('-').unwrap().0.to_string()
        })
        .collect();
    for image in COMPOSED {
        let holds_update = locks1[image].iter().any(|(n, v)| updated.contains(n) && locks2[image].get(n) != Some(v));
        assert_eq!(holds_update, expected2.iter().any(|p| p.0 == image), "{image}: rebuilt iff it holds an updated package");
    }
    for name in ["libssl3", "bash"] {
        for image in COMPOSED.iter().filter(|i| locks1[**i].contains_key(name)) {
            assert!(expected2.iter().any(|p| p.0 == *image), "{image} holds {name}: {expected2:?}");
        }
    }
    let builds_before = f.builds().len();
    let (_, event2) = f.plan_and_refresh(&expected2);
    for r in event2["plan"]["rebuilds"].as_array().unwrap() {
        let (commit, moved_from) = if r["kind"] == "spec" { (a_new.as_str(), Some(a_old.as_str())) } else { (site0["source"]["commit"].as_str().unwrap(), None) };
        assert_eq!((r["source"]["commit"].as_str(), r["moved_from"].as_str()), (Some(commit), moved_from), "{r:#}");
    }
    let rebuilt2 = f.check_done(&event2, builds_before, &locks2);
    for (image, info) in &rebuilt2 {
        let planned = event2["plan"]["rebuilds"].as_array().unwrap().iter().find(|r| r["image"] == image.as_str()).unwrap();
        assert_eq!(info["source"]["commit"], planned["source"]["commit"], "{image} is built from the planned commit");
    }
    let expected_images: BTreeSet<&str> = expected2.iter().map(|p| p.0.as_str()).collect();
    assert_eq!(rebuilt2.keys().map(String::as_str).collect::<BTreeSet<_>>(), expected_images);

    // 4, after: no testing build holds the old libssl3.
    let hits = f.query(&older_ssl);
    assert!(hits.iter().all(|h| !h.2.iter().any(|t| t == "testing")), "a testing build still holds the old libssl3: {hits:?}");
    let rebuilt_ids: BTreeSet<i64> = rebuilt2.values().map(|i| i["id"].as_i64().unwrap()).collect();
    assert!(hits.iter().all(|h| !rebuilt_ids.contains(&h.1)), "{hits:?}");

    // 3. Nothing changed: nothing planned, no event, no build.
    let builds_before = f.builds().len();
    let events_before = f.events().len();
    let plan = f.json(&["rebuild-plan", "--json"]);
    assert_eq!((&plan["rebuilds"], &plan["repos"]), (&serde_json::json!([]), &serde_json::json!([])), "{plan:#}");
    let started = Instant::now();
    let refreshed = f.json(&["repos", "refresh", "--json"]);
    let took = started.elapsed();
    assert!(refreshed["event"].is_null(), "{refreshed:#}");
    assert_eq!(refreshed["plan"]["rebuilds"], serde_json::json!([]), "{refreshed:#}");
    assert_eq!(f.builds().len(), builds_before, "a refresh with nothing changed started a build");
    assert_eq!(f.events().len(), events_before, "a refresh with nothing changed made an event");
    eprintln!("refresh with nothing changed: {took:?}");

    // 5. A newer nginx-light whose RPM is not there: web's rebuild fails, site is failed
    // with web's id and never started.
    let fake = build_fixture_repo(&work.join("fake"), &[pkg("nginx-light", "1.22.2", &["Requires: nginx", "Requires: libnginx-mod-http-echo"])]).join("Packages/nginx-light-1.22.2-1.noarch.rpm");
    let mut with_fake = all_updates.clone();
    with_fake.push(fake);
    served.publish(&with_fake, &["nginx-light-1.22.2-1.noarch.rpm"]);
    let locks3 = served.resolve(spec, &work);
    let expected3 = expected_plan(&locks2, &locks3);
    let light = (String::from("nginx-light"), locks2["web"].get("nginx-light").cloned(), Some(String::from("1.22.2-1.noarch")));
    assert_eq!(expected3.iter().map(|p| (p.0.as_str(), p.4.clone())).collect::<Vec<_>>(), [("web", vec![light.clone()]), ("site", vec![light])], "{expected3:?}");
    let builds_before = f.builds().len();
    let (_, event3) = f.plan_and_refresh(&expected3);
    let ended = f.await_event(event3["id"].as_i64().unwrap(), Duration::from_secs(900));
    assert_eq!(ended["state"], "failed", "{ended:#}");
    let ids: Vec<i64> = ended["builds"].as_array().unwrap().iter().map(|b| b.as_i64().unwrap()).collect();
    assert_eq!(f.builds().len(), builds_before + 2);
    let web = f.json(&["build-info", &ids[0].to_string(), "--json"]);
    let site = f.json(&["build-info", &ids[1].to_string(), "--json"]);
    assert_eq!((web["images"].clone(), site["images"].clone()), (serde_json::json!(["web"]), serde_json::json!(["site"])));
    assert_eq!(web["state"], "failed", "{web:#}");
    let web_log = f.c.log(&ids[0].to_string());
    assert!(web_log.contains("nginx-light-1.22.2-1.noarch.rpm"), "web's rebuild failed on the missing RPM:\n{web_log}");
    assert_eq!(site["state"], "failed", "{site:#}");
    assert_eq!(site["rebuild"]["parent_build"], ids[0], "{site:#}");
    let reason = site["reason"].as_str().unwrap_or_else(|| panic!("site failed without a reason: {site:#}"));
    eprintln!("web's rebuild {} failed: {}; site's: {reason}", ids[0], web["reason"]);
    assert!(names_number(reason, ids[0]), "site's reason names web's build {}: {reason}", ids[0]);
    assert!(site["started"].is_null() && site["attempts"] == 0 && site["result"].is_null(), "site was never started: {site:#}");
    assert!(site["attempt_log"].as_array().is_none_or(|a| a.is_empty()), "{site:#}");
    for (image, info) in &rebuilt2 {
        if image == "web" || image == "site" {
            let digest = info["result"]["images"][0]["manifest_digest"].as_str().unwrap();
            assert_eq!(registry::skopeo_digest(&format!("{host}/{image}:testing")), digest, "{image}:testing moved by a failed rebuild");
        }
    }

    // 6. The repo changes again (new metadata) back to every update: the locks are the
    // built ones (step 5's failed), so nothing is rebuilt and no event starts.
    served.publish(&all_updates, &[]);
    assert_eq!(served.resolve(spec, &work), locks2);
    let builds_before = f.builds().len();
    let events_before = f.events().len();
    let plan = f.json(&["rebuild-plan", "--json"]);
    assert_eq!(plan["rebuilds"], serde_json::json!([]), "{plan:#}");
    assert_eq!(plan["repos"].as_array().map(Vec::len), Some(1), "the updates repo changed: {plan:#}");
    let refreshed = f.json(&["repos", "refresh", "--json"]);
    assert!(refreshed["event"].is_null(), "{refreshed:#}");
    assert_eq!((f.builds().len(), f.events().len()), (builds_before, events_before), "a change that changes no lock started something");

    // The tables for people print.
    for args in [&["rebuild-plan"][..], &["repos", "list"], &["events"], &["tracked"], &["build-info", &rebuilt2["site"]["id"].to_string()]] {
        let out = f.c.run(args);
        assert_ok(&format!("strata {args:?}"), &out);
        assert!(!stdout(&out).trim().is_empty(), "strata {args:?} printed nothing");
    }

    // promote moves latest to what testing holds.
    let promoted = f.json(&["promote", "web", "--json"]);
    let web_testing = rebuilt2["web"]["result"]["images"][0]["manifest_digest"].as_str().unwrap();
    assert_eq!(promoted["build_id"], rebuilt2["web"]["id"], "{promoted:#}");
    assert_eq!(registry::skopeo_digest(&format!("{host}/web:latest")), web_testing);
}

/// An image first built after the service acted on a repository change (here `shell`,
/// submitted once `updates` gained every update and a refresh rebuilt what was registered)
/// holds that repository's current packages — or, built from older metadata, is what the
/// next refresh plans. Either way no registered image keeps packages its repositories
/// have replaced while refreshes say nothing changed.
#[test]
fn an_image_built_after_a_repo_change_is_current_or_planned() {
    let tmp = tempfile::tempdir().unwrap();
    let work = tmp.path().to_path_buf();
    let mut setup = Setup::start(&work);
    let (c, spec, served) = (&setup.c, &setup.spec, &mut setup.served);
    let f = Fixture { c, host: setup.host.clone(), updates: format!("{}/updates", setup.http.url), latest: BTreeMap::new() };
    let only = |name: &str, image: &str| {
        let mut s = spec.clone();
        s["images"] = serde_json::json!({ name: spec["images"][image].clone() });
        s
    };
    spec_repo(&work.join("x"), &only("baseimage", "baseimage"));
    assert_ok("submit X --wait", &c.run(&["submit", &format!("file://{}", work.join("x").display()), "--wait"]));
    served.publish(&all_updates(), &[]);
    let locks = served.resolve(spec, &work);
    let refreshed = f.json(&["repos", "refresh", "--json"]);
    let event = refreshed["event"]["id"].as_i64().unwrap_or_else(|| panic!("the update started no event: {refreshed:#}"));
    assert_eq!(f.await_event(event, Duration::from_secs(900))["state"], "done");

    spec_repo(&work.join("y"), &only("shell", "baseimage"));
    assert_ok("submit Y --wait", &c.run(&["submit", &format!("file://{}", work.join("y").display()), "--wait"]));
    let builds = f.builds();
    let shell = builds.iter().find(|b| b["images"] == serde_json::json!(["shell"])).unwrap_or_else(|| panic!("{builds:#?}"));
    let info = f.json(&["build-info", &shell["id"].to_string(), "--json"]);
    let out = &info["result"]["images"][0];
    let held = packages(out);
    if held != locks["baseimage"] {
        let plan = f.json(&["rebuild-plan", "--json"]);
        let planned: Vec<&str> = plan["rebuilds"].as_array().unwrap().iter().map(|r| r["image"].as_str().unwrap()).collect();
        assert!(
            planned.contains(&"shell"),
            "shell (build {}) was composed after the service acted on the updates repo, from older metadata: it holds {:?}; its record's repos are {}; and rebuild-plan does not plan it: {plan:#}",
            info["id"],
            diff(&locks["baseimage"], &held).iter().map(|(n, now, held)| format!("{n} {} (the repos now give {})", held.as_deref().unwrap_or("-"), now.as_deref().unwrap_or("-"))).collect::<Vec<_>>(),
            out["repos"],
        );
    }
}
