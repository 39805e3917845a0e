//! Issue 14's acceptance 3: the web UI in headless Chromium (Debian's `chromium`). A real
//! `strata serve` (SQLite, in-process worker, `--anonymous-read` so the browser needs no
//! cookie, `--repo-interval 0`) with a loopback registry composes `baseimage` (bash and
//! coreutils from the corpus) with an `updates` repository first published empty; then
//! the corpus updates are published and a refresh rebuilds it — a security rebuild whose
//! package diff the image page must show. A Dockerfile build FROM it with a slow RUN is the
//! running build whose page's log must grow. Each page is loaded in Chromium, its rendered
//! DOM asserted on, and a screenshot saved (in the test's temp dir and in
//! `target/web-screenshots/`).
//!
//! The sign-in flow (anonymous read off: `/` still 200, pages redirect to the login, the
//! form sets the cookie, the cookie reads) is checked over plain HTTP against a second
//! server.

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
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const ADMIN: &str = "web-admin-token-0123456789";
/// The slow build's RUN steps, each printing `lineN`.
const LINES: u32 = 10;

/// Headless Chromium with a private profile.
struct Browser {
    profile: PathBuf,
    shots: PathBuf,
    keep: PathBuf,
}

impl Browser {
    fn new(dir: &Path) -> Browser {
        let profile = dir.join("chromium");
        let shots = dir.join("screenshots");
        std::fs::create_dir_all(&profile).unwrap();
        std::fs::create_dir_all(&shots).unwrap();
        let target = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| project_root().join("target"));
        let keep = target.join("web-screenshots");
        std::fs::create_dir_all(&keep).unwrap();
        Browser { profile, shots, keep }
    }

    /// Runs Chromium on `url` with `args`; its stdout. Killed after 3 minutes.
    fn run(&self, url: &str, args: &[String]) -> String {
        let out = self.profile.join("out");
        let mut child = Proc(
            Command::new("chromium")
                .args(["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--no-default-browser-check", "--disable-extensions", "--hide-scrollbars"])
                .arg(format!("--user-data-dir={}", self.profile.join("data").display()))
                .args(args)
                .arg(url)
                .env("HOME", &self.profile)
                .stdin(Stdio::null())
                .stdout(std::fs::File::create(out.with_extension("stdout")).unwrap())
                .stderr(std::fs::File::create(out.with_extension("stderr")).unwrap())
                .spawn()
                .expect("chromium (Debian package chromium; scripts/install-deps.sh installs it)"),
        );
        let deadline = Instant::now() + Duration::from_secs(180);
        loop {
            if let Some(status) = child.0.try_wait().unwrap() {
                let stdout = std::fs::read_to_string(out.with_extension("stdout")).unwrap_or_default();
                assert!(status.success(), "chromium {args:?} {url}: {status}\n{}", std::fs::read_to_string(out.with_extension("stderr")).unwrap_or_default());
                return stdout;
            }
            assert!(Instant::now() < deadline, "chromium {args:?} {url} did not finish");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The DOM once the page has loaded and its requests have settled: a running build's
    /// page follows the build to its end first.
    fn dom(&self, url: &str) -> String {
        let dom = self.run(url, &["--dump-dom".to_string()]);
        assert!(dom.contains("</html>"), "no DOM from {url}: {dom}");
        dom
    }

    /// The DOM after the page's scripts ran for `ms` milliseconds of virtual time, which
    /// stands still while a request is waiting for its answer.
    fn dom_after(&self, url: &str, ms: u64) -> String {
        let dom = self.run(url, &["--dump-dom".to_string(), format!("--virtual-time-budget={ms}")]);
        assert!(dom.contains("</html>"), "no DOM from {url}: {dom}");
        dom
    }

    /// The DOM `ms` milliseconds after the page started loading, whatever its scripts are
    /// still waiting for.
    fn dom_at(&self, url: &str, ms: u64) -> String {
        let dom = self.run(url, &["--dump-dom".to_string(), format!("--timeout={ms}")]);
        assert!(dom.contains("</html>"), "no DOM from {url}: {dom}");
        dom
    }

    /// A screenshot `NAME.png` of the page (1280 wide, `height` tall), kept in both places.
    fn screenshot(&self, url: &str, name: &str, height: u32) -> PathBuf {
        self.screenshot_with(url, name, height, &[])
    }

    fn screenshot_with(&self, url: &str, name: &str, height: u32, extra: &[&str]) -> PathBuf {
        let file = self.shots.join(format!("{name}.png"));
        let mut args = vec![format!("--screenshot={}", file.display()), format!("--window-size=1280,{height}")];
        args.extend(extra.iter().map(|a| a.to_string()));
        self.run(url, &args);
        let png = std::fs::read(&file).unwrap_or_else(|e| panic!("screenshot {}: {e}", file.display()));
        assert!(png.starts_with(b"\x89PNG") && png.len() > 10_000, "{name}.png is a real picture ({} bytes)", png.len());
        std::fs::copy(&file, self.keep.join(format!("{name}.png"))).unwrap();
        file
    }
}

/// The inner HTML of the element with `id` (up to its matching close tag, same tag name,
/// nesting counted).
fn by_id<'a>(html: &'a str, id: &str) -> &'a str {
    let at = html.find(&format!("id=\"{id}\"")).unwrap_or_else(|| panic!("no element #{id} in the DOM:\n{html}"));
    let open = html[..at].rfind('<').unwrap();
    let tag: String = html[open + 1..].chars().take_while(|c| c.is_ascii_alphanumeric()).collect();
    let start = open + html[open..].find('>').unwrap() + 1;
    let (mut depth, mut i) = (1, start);
    while depth > 0 {
        let next_open = html[i..].find(&format!("<{tag}")).map(|p| p + i);
        let next_close = html[i..].find(&format!("</{tag}>")).map(|p| p + i).unwrap_or_else(|| panic!("#{id} not closed"));
        match next_open {
            Some(o) if o < next_close => {
                depth += 1;
                i = o + 1;
            }
            _ => {
                depth -= 1;
                i = next_close + 1;
            }
        }
    }
    &html[start..i - 1]
}

/// Text without tags, entities decoded, whitespace collapsed.
fn text(html: &str) -> String {
    let mut out = String::new();
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => {
                in_tag = false;
                out.push(' ');
            }
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    let out = out.replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", "\"").replace("&nbsp;", " ").replace("&amp;", "&");
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The rows of a table (inside `html`), each the text of its cells.
fn rows(html: &str) -> Vec<Vec<String>> {
    let body = html.split("<tbody>").nth(1).unwrap_or(html);
    body.split("<tr").skip(1).map(|r| r.split("<td").skip(1).map(|c| text(&format!("<td{c}"))).collect()).collect()
}

/// The highest N of the log's lines that are `lineN` alone (a RUN step's output; its
/// STEP line, which names it too, does not count).
fn last_line(log: &str) -> u32 {
    log.lines().filter_map(|l| l.trim().strip_prefix("line")?.parse().ok()).max().unwrap_or(0)
}

fn packages(info: &Value) -> BTreeMap<String, String> {
    info["result"]["images"][0]["packages"].as_array().unwrap().iter().map(|p| split_nevra(p.as_str().unwrap())).collect()
}

fn serve(args: &[&str], data: &Path, log: &Path) -> (Proc, String) {
    let port = registry::free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_strata"))
        .args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--admin-token", ADMIN, "--heartbeat", "1"])
        .args(args)
        .arg("--data-dir")
        .arg(data)
        .env_remove("STRATA_LOG")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap();
    (Proc(child), format!("http://127.0.0.1:{port}"))
}

/// A git repository at `dir` holding `files`, committed on `main`.
fn repo(dir: &Path, files: &[(&str, &str)]) -> String {
    std::fs::create_dir_all(dir).unwrap();
    for (p, c) in files {
        std::fs::write(dir.join(p), c).unwrap();
    }
    git(dir, &["init", "-q", "-b", "main"]);
    git(dir, &["add", "-A"]);
    git(dir, &["commit", "-q", "-m", "first"]);
    format!("file://{}", dir.display())
}

#[test]
fn pages_in_chromium_builds_build_log_image_diff_search_events() {
    if !rustix::process::geteuid().is_root() {
        panic!("composing and building need root");
    }
    for tool in ["chromium", "createrepo_c", "git"] {
        require_tool(tool);
    }
    let started = Instant::now();
    let reg = registry::Registry::start(registry::Auth::None);
    let host = reg.host();
    let tmp = tempfile::tempdir().unwrap();
    let work = tmp.path().to_path_buf();
    let browser = Browser::new(&work);

    // The served repositories: the corpus base, and updates published empty.
    let srv = work.join("srv");
    std::fs::create_dir_all(&srv).unwrap();
    std::os::unix::fs::symlink(corpus_repo("base"), srv.join("base")).unwrap();
    let updates = srv.join("updates");
    std::fs::create_dir_all(updates.join("Packages")).unwrap();
    assert_ok("createrepo_c", &run(Command::new("createrepo_c").args(["--quiet", "--no-database"]).arg(&updates)));
    let files = repo_http::FileServer::start(&srv);

    let spec = serde_json::json!({
        "repos": [
            { "id": "base", "baseurl": format!("{}/base", files.url) },
            { "id": "updates", "baseurl": format!("{}/updates", files.url) },
        ],
        "images": { "baseimage": { "packages": ["bash", "coreutils"], "cmd": ["/bin/bash"] } },
    });
    let a = repo(&work.join("a"), &[("strata.json", &serde_json::to_string_pretty(&spec).unwrap())]);

    let serve_log = work.join("serve.log");
    let (_serve, url) = serve(&["--registry", &host, "--insecure-registry", &host, "--repo-interval", "0", "--anonymous-read"], &work.join("data"), &serve_log);
    let _log = LogOnPanic(serve_log);
    let c = Cli { server: url.clone(), token: ADMIN.into(), home: work.join("home") };
    c.wait_up();

    // Build 1: baseimage as the base repository has it.
    assert_ok("submit a --wait", &c.run(&["submit", &a, "--wait"]));
    let first = c.json(&["build-info", "1", "--json"]);
    assert_eq!(first["state"], "built", "{first:#}");

    // The security updates arrive; a refresh rebuilds baseimage (build 2, event 1).
    let corpus_updates = corpus_repo("updates").join("Packages");
    for e in std::fs::read_dir(&corpus_updates).unwrap() {
        let p = e.unwrap().path();
        std::os::unix::fs::symlink(&p, updates.join("Packages").join(p.file_name().unwrap())).unwrap();
    }
    assert_ok("createrepo_c", &run(Command::new("createrepo_c").args(["--quiet", "--no-database"]).arg(&updates)));
    let refreshed = c.json(&["repos", "refresh", "--json"]);
    assert_eq!(refreshed["event"]["builds"], serde_json::json!([2]), "{refreshed:#}");
    let second = c.await_build("2", "built", Duration::from_secs(600), |b| b["state"] == "built");
    assert_eq!(second["trigger"], "rebuild");
    let (old, new) = (packages(&first), packages(&second));
    let changed: Vec<(&String, &String, &String)> = old.iter().filter_map(|(n, o)| new.get(n).filter(|v| *v != o).map(|v| (n, o, v))).collect();
    assert!(changed.iter().any(|(n, _, _)| n.as_str() == "bash"), "the updates change bash: {changed:?}");
    eprintln!("fixture ready after {:?}", started.elapsed());

    // Build 3: a Dockerfile FROM baseimage with slow RUN steps, followed while it runs. (A
    // step's output reaches the log when the step ends — strata-sandbox returns a RUN's
    // output whole — so the log grows step by step.)
    let mut dockerfile = format!("FROM {host}/baseimage:latest\n");
    for i in 1..=LINES {
        dockerfile.push_str(&format!("RUN [\"/bin/bash\", \"-c\", \"echo line{i}; sleep 1\"]\n"));
    }
    let b = repo(
        &work.join("b"),
        &[("Dockerfile", &dockerfile)],
    );
    let out = c.run(&["submit", &b, "--image", "slow"]);
    assert_ok("submit b", &out);
    c.await_build("3", "printing its lines", Duration::from_secs(300), |_| last_line(&c.log("3")) >= 2);
    let page = format!("{url}/builds/3");
    // Without JavaScript (as the server renders it) the page shows the log so far.
    let html = http(url.trim_start_matches("http://"), "GET /builds/3 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    assert!(last_line(by_id(&html, "log")) >= 2, "the log so far, server-rendered:\n{html}");
    // In the browser, the running build's page shows more of the log each time it is looked
    // at: two pages loaded 3 seconds apart, each dumped 2 seconds after it started loading.
    let first_dom = browser.dom_at(&page, 2000);
    let n1 = last_line(by_id(&first_dom, "log"));
    assert_eq!(text(by_id(&first_dom, "state")), "running", "{first_dom}");
    assert!(n1 >= 2, "the page shows the log so far (line{n1})");
    std::thread::sleep(Duration::from_secs(3));
    let second_dom = browser.dom_at(&page, 2000);
    let n2 = last_line(by_id(&second_dom, "log"));
    assert!(n2 > n1, "the log grew while the build ran: line{n1} then line{n2}");
    assert_eq!(text(by_id(&second_dom, "state")), "running");
    browser.screenshot_with(&page, "build-running", 1400, &["--timeout=1500"]);
    // With JavaScript, the page loaded while the build runs follows it to its end: the
    // whole log, then the finished build (the page reloads itself once the log is
    // complete).
    let at_load = last_line(&c.log("3"));
    assert!(at_load < LINES, "the build is still running (line{at_load})");
    let followed = browser.dom_after(&page, 30_000);
    let n3 = last_line(by_id(&followed, "log"));
    eprintln!("log lines: line{n1}, then line{n2}; followed from line{at_load} to line{n3}");
    assert_eq!(n3, LINES, "the script followed the log to its end:\n{followed}");
    assert_eq!(text(by_id(&followed, "state")), "built", "{}", by_id(&followed, "summary"));
    let third = c.json(&["build-info", "3", "--json"]);
    assert_eq!(third["state"], "built", "{third:#}");

    // The builds list: newest first, each with its images, state, trigger and source.
    let dom = browser.dom(&format!("{url}/"));
    let list = rows(by_id(&dom, "builds"));
    let ids: Vec<&str> = list.iter().map(|r| r[0].as_str()).collect();
    assert_eq!(ids, ["#3", "#2", "#1"], "{list:?}");
    assert_eq!(list[0][1..4], ["slow", "built", "manual"], "{list:?}");
    assert_eq!(list[1][1..4], ["baseimage", "built", "rebuild"], "{list:?}");
    assert_eq!(list[2][1..4], ["baseimage", "built", "manual"], "{list:?}");
    assert!(list[2][5].contains(a.trim_start_matches("file://")) && list[2][5].contains(&first["source"]["commit"].as_str().unwrap()[..12]), "{list:?}");
    let filtered = rows(by_id(&browser.dom(&format!("{url}/?image=baseimage&state=built")), "builds"));
    assert_eq!(filtered.iter().map(|r| r[0].as_str()).collect::<Vec<_>>(), ["#2", "#1"]);
    browser.screenshot(&format!("{url}/"), "builds", 1024);

    // The rebuild's page: source, inputs, outputs, RPMs, rebuild info, attempts, log.
    let page = format!("{url}/builds/2");
    let dom = browser.dom(&page);
    let source = text(by_id(&dom, "source"));
    assert!(source.contains(second["source"]["commit"].as_str().unwrap()), "{source}");
    let inputs = text(by_id(&dom, "inputs"));
    assert!(inputs.contains(second["result"]["input_digest"].as_str().unwrap()) && inputs.contains(second["result"]["lock_digest"].as_str().unwrap()), "{inputs}");
    let outputs = text(by_id(&dom, "outputs"));
    let image = &second["result"]["images"][0];
    for k in ["reference", "manifest_digest", "config_digest"] {
        assert!(outputs.contains(image[k].as_str().unwrap()), "{k} in {outputs}");
    }
    let rpms = text(by_id(&dom, "rpms-baseimage"));
    for p in image["packages"].as_array().unwrap() {
        assert!(rpms.contains(p.as_str().unwrap()), "{p} in {rpms}");
    }
    let rebuild = by_id(&dom, "rebuild");
    assert!(rebuild.contains("href=\"/events#event-1\""), "{rebuild}");
    let bash = rows(rebuild).into_iter().find(|r| r[0] == "bash").unwrap_or_else(|| panic!("bash in {rebuild}"));
    assert_eq!(bash[1..], [old["bash"].clone(), "→".into(), new["bash"].clone()]);
    assert!(text(by_id(&dom, "attempts")).contains("built"));
    assert!(text(by_id(&dom, "timings")).contains("Queued"));
    assert!(by_id(&dom, "log").contains("baseimage"), "the log is shown");
    browser.screenshot(&page, "build", 2400);

    // The image: its builds, floating tags, and the diff between the build and its
    // security rebuild (by default the two newest built).
    let page = format!("{url}/images/baseimage");
    let dom = browser.dom(&page);
    let summary = text(by_id(&dom, "diff-summary"));
    assert!(summary.starts_with("From #1 to #2"), "{summary}");
    let diff_rows = rows(by_id(&dom, "diff-changed"));
    let shown: Vec<(String, String, String)> = diff_rows.iter().map(|r| (r[0].clone(), r[1].clone(), r[3].clone())).collect();
    let expected: Vec<(String, String, String)> = changed.iter().map(|(n, o, v)| (n.to_string(), o.to_string(), v.to_string())).collect();
    assert_eq!(shown, expected, "changed old → new, by name");
    assert!(summary.contains(&format!("{} changed, {} unchanged", changed.len(), old.len() - changed.len())), "{summary}");
    let tags = rows(by_id(&dom, "tags"));
    assert!(tags.contains(&vec!["latest".to_string(), "#1".to_string(), first["result"]["images"][0]["manifest_digest"].as_str().unwrap().to_string()]), "{tags:?}");
    assert!(tags.iter().any(|t| t[0] == "testing" && t[1] == "#2"), "{tags:?}");
    let history: Vec<String> = rows(by_id(&dom, "history")).into_iter().map(|r| r[0].clone()).collect();
    assert_eq!(history, ["#2", "#1"]);
    browser.screenshot(&page, "image-diff", 1600);
    // The other direction, chosen in the form.
    let back = browser.dom(&format!("{page}?from=2&to=1"));
    let bash = rows(by_id(&back, "diff-changed")).into_iter().find(|r| r[0] == "bash").unwrap();
    assert_eq!((bash[1].as_str(), bash[3].as_str()), (new["bash"].as_str(), old["bash"].as_str()));

    // The package search: the images that still ship the old bash.
    let bash_evr = new["bash"].rsplit_once('.').unwrap().0;
    let page = format!("{url}/search?rpm={}", "bash+%3C+".to_string() + &bash_evr.replace('+', "%2B"));
    let dom = browser.dom(&page);
    let hits = rows(by_id(&dom, "hits"));
    // latest still points at build 1 (the rebuild went to testing), and slow was built FROM
    // that latest.
    let found: Vec<(&str, &str)> = hits.iter().map(|h| (h[0].as_str(), h[1].as_str())).collect();
    assert_eq!(found, [("slow", "#3"), ("baseimage", "#1")], "{hits:?}");
    for h in &hits {
        assert!(h[2].contains(&format!("bash-{}", old["bash"])) && h[3].contains("latest"), "{hits:?}");
    }
    browser.screenshot(&page, "search", 900);
    let none = browser.dom(&format!("{url}/search?rpm=bash+%3C+1"));
    assert!(text(by_id(&none, "no-hits")).contains("bash < 1"));

    // The rebuild events: the plan, its package changes and its build.
    let page = format!("{url}/events");
    let dom = browser.dom(&page);
    let event = by_id(&dom, "event-1");
    let t = text(event);
    assert!(t.contains("Event 1 done") && t.contains("refresh by") && t.contains("baseimage") && t.contains("→ build #2"), "{t}");
    assert!(event.contains("href=\"/builds/2\""));
    assert!(rows(event).iter().any(|r| r[0] == "bash" && r[1] == old["bash"] && r[3] == new["bash"]), "{event}");
    browser.screenshot(&page, "events", 1200);

    // Unknown pages: a 404 page.
    let dom = browser.dom(&format!("{url}/builds/99"));
    assert_eq!(text(by_id(&dom, "message")), "There is no build 99.");
    eprintln!("done after {:?}; screenshots in {}", started.elapsed(), browser.keep.display());
}

/// The raw answer to an HTTP/1.1 request.
fn http(port: &str, request: &str) -> String {
    let mut s = std::net::TcpStream::connect(port).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

fn header<'a>(resp: &'a str, name: &str) -> Option<&'a str> {
    let head = resp.split("\r\n\r\n").next().unwrap();
    head.lines().skip(1).find_map(|l| l.split_once(':').filter(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.trim()))
}

#[test]
fn sign_in_sets_the_cookie_that_reads_the_pages() {
    let tmp = tempfile::tempdir().unwrap();
    let log = tmp.path().join("serve.log");
    let (_serve, url) = serve(&["--no-worker"], &tmp.path().join("data"), &log);
    let _log = LogOnPanic(log);
    let addr = url.trim_start_matches("http://").to_string();
    let get = |path: &str, cookie: &str| http(&addr, &format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n{cookie}\r\n"));
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(&addr).is_err() {
        assert!(Instant::now() < deadline, "strata serve did not come up");
        std::thread::sleep(Duration::from_millis(100));
    }
    // Without a cookie: / is 200 (probes), saying it is up; a page asks to sign in.
    let root = get("/", "");
    assert!(root.starts_with("HTTP/1.1 200"), "{root}");
    assert!(root.contains("It is up"), "{root}");
    assert!(header(&root, "content-security-policy").is_some_and(|c| c.contains("script-src 'self'")));
    let page = get("/events", "");
    assert!(page.starts_with("HTTP/1.1 303"), "{page}");
    assert_eq!(header(&page, "location"), Some("/login?next=%2Fevents"));
    let form = get("/login?next=%2Fevents", "");
    assert!(form.contains("name=\"token\"") && form.contains("value=\"/events\""), "{form}");

    let post = |body: &str| http(&addr, &format!("POST /login HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}", body.len()));
    let wrong = post("token=not-a-token&next=%2Fevents");
    assert!(wrong.starts_with("HTTP/1.1 401") && wrong.contains("That token is not valid.") && header(&wrong, "set-cookie").is_none(), "{wrong}");
    let ok = post(&format!("token={ADMIN}&next=%2Fevents"));
    assert!(ok.starts_with("HTTP/1.1 303"), "{ok}");
    assert_eq!(header(&ok, "location"), Some("/events"));
    let set = header(&ok, "set-cookie").unwrap();
    assert!(set.contains("HttpOnly") && set.contains("SameSite=Strict"), "{set}");
    let cookie = set.split(';').next().unwrap();
    let events = get("/events", &format!("Cookie: {cookie}\r\n"));
    assert!(events.starts_with("HTTP/1.1 200") && events.contains("Rebuild events") && events.contains("signed in as"), "{events}");
    let list = get("/", &format!("Cookie: {cookie}\r\n"));
    assert!(list.contains("id=\"builds\"") && !list.contains("It is up"), "{list}");
    let missing = get("/builds/5", &format!("Cookie: {cookie}\r\n"));
    assert!(missing.starts_with("HTTP/1.1 404") && missing.contains("There is no build 5."), "{missing}");
}
