//! The pages over real HTTP on loopback (no browser: tests/service_web.rs drives Chromium):
//! access without a cookie, the login and logout, headers, escaping, errors.

use std::time::Duration;

const ADMIN: &str = "web-test-admin-token-0123";

struct Running {
    url: String,
    reader: String,
    _dir: tempfile::TempDir,
}

/// A server with one hostile build queued through the API: its source URL and its
/// submitter's name hold markup.
fn start(anonymous_read: bool) -> Running {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("x\"><script>alert(1)");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("Dockerfile"), "FROM scratch\n").unwrap();
    for args in [&["init", "-q", "-b", "main"][..], &["add", "Dockerfile"], &["-c", "user.name=t", "-c", "user.email=t@example.org", "commit", "-q", "-m", "app"]] {
        let out = std::process::Command::new("git").arg("-C").arg(&src).args(args).output().expect("git");
        assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
    let mut config = crate::Config::new(dir.path().join("data"));
    config.listen = "127.0.0.1:0".into();
    config.anonymous_read = anonymous_read;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async move {
            let server = crate::Server::bind(config).await.unwrap();
            server.seed_token(ADMIN, "admin", "<i>mallory</i>").await.unwrap();
            let reader = server.new_token("reader", "reader <b>").await.unwrap();
            tx.send((server.addr, reader)).unwrap();
            server.run(std::future::pending()).await.unwrap();
        });
    });
    let (addr, reader) = rx.recv_timeout(Duration::from_secs(30)).unwrap();
    let body = serde_json::json!({ "source": { "url": format!("file://{}", src.display()) }, "images": ["app"] }).to_string();
    let resp = agent().post(format!("http://{addr}/api/builds")).header("Authorization", format!("Bearer {ADMIN}")).header("Content-Type", "application/json").send(body).unwrap();
    let a = answer(resp);
    assert_eq!(a.status, 201, "submit: {}", a.body);
    Running { url: format!("http://{addr}"), reader, _dir: dir }
}

struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder().http_status_as_error(false).max_redirects(0).max_redirects_will_error(false).build().into()
}

fn answer(mut resp: ureq::http::Response<ureq::Body>) -> Answer {
    let headers = resp.headers().iter().map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string())).collect();
    Answer { status: resp.status().as_u16(), headers, body: resp.body_mut().read_to_string().unwrap_or_default() }
}

fn get(url: &str, cookie: Option<&str>) -> Answer {
    let mut r = agent().get(url);
    if let Some(c) = cookie {
        r = r.header("Cookie", c);
    }
    answer(r.call().unwrap())
}

fn post(url: &str, body: &str, origin: Option<&str>) -> Answer {
    let mut r = agent().post(url).header("Content-Type", "application/x-www-form-urlencoded");
    if let Some(o) = origin {
        r = r.header("Origin", o);
    }
    answer(r.send(body).unwrap())
}

/// `name=value` of a Set-Cookie header.
fn cookie_of(a: &Answer) -> String {
    a.header("set-cookie").unwrap_or_else(|| panic!("no Set-Cookie: {:?}", a.headers)).split(';').next().unwrap().to_string()
}

#[test]
fn without_a_cookie_root_says_up_and_pages_ask_to_sign_in() {
    let s = start(false);
    let root = get(&format!("{}/", s.url), None);
    assert_eq!(root.status, 200, "probes read / without a token");
    assert!(root.body.contains("It is up") && root.body.contains("href=\"/login"), "{}", root.body);
    assert!(!root.body.contains("mallory"), "no build is shown without a token");
    let csp = root.header("content-security-policy").unwrap();
    assert!(csp.contains("default-src 'none'") && csp.contains("script-src 'self'") && !csp.contains("unsafe"), "{csp}");
    assert_eq!(root.header("x-content-type-options"), Some("nosniff"));
    for path in ["/builds/1", "/images/app", "/search?rpm=bash", "/events", "/builds/1/log.txt"] {
        let a = get(&format!("{}{path}", s.url), None);
        assert_eq!(a.status, 303, "{path}: {}", a.body);
        let location = a.header("location").unwrap();
        assert_eq!(super::decode(location.strip_prefix("/login?next=").unwrap()).as_deref(), Some(path), "{path} → {location}");
    }
    // The script's log reads say so in JSON instead.
    let a = get(&format!("{}/builds/1/log?offset=0", s.url), None);
    assert_eq!(a.status, 401, "{}", a.body);
    // A token that is not one is no cookie at all.
    let a = get(&format!("{}/builds/1", s.url), Some("strata_token=strata_nope"));
    assert_eq!(a.status, 303);
}

#[test]
fn login_sets_a_strict_http_only_cookie_that_reads_and_logout_clears_it() {
    let s = start(false);
    let bad = post(&format!("{}/login", s.url), "token=strata_wrong&next=%2Fbuilds%2F1", None);
    assert_eq!(bad.status, 401);
    assert!(bad.body.contains("That token is not valid.") && bad.header("set-cookie").is_none(), "{}", bad.body);
    assert!(bad.body.contains("value=\"/builds/1\""), "the form keeps where to go: {}", bad.body);

    let ok = post(&format!("{}/login", s.url), &format!("token={}&next=%2Fbuilds%2F1", s.reader), None);
    assert_eq!(ok.status, 303, "{}", ok.body);
    assert_eq!(ok.header("location"), Some("/builds/1"));
    let set = ok.header("set-cookie").unwrap();
    for attr in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(set.contains(attr), "{set}");
    }
    assert!(!set.contains("Secure"), "plain http: {set}");
    let cookie = cookie_of(&ok);

    let list = get(&format!("{}/", s.url), Some(&cookie));
    assert_eq!(list.status, 200);
    assert!(list.body.contains("id=\"builds\"") && list.body.contains("href=\"/builds/1\""), "{}", list.body);
    assert!(list.body.contains("signed in as <b>reader &#60;b&#62;</b>"), "the token's name, escaped: {}", list.body);
    let page = get(&format!("{}/builds/1", s.url), Some(&format!("other=1; {cookie}")));
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("Build #1"));

    // Behind a TLS proxy the cookie is Secure.
    let a = answer(
        agent()
            .post(format!("{}/login", s.url))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .header("X-Forwarded-Proto", "https")
            .send(format!("token={ADMIN}"))
            .unwrap(),
    );
    assert!(a.header("set-cookie").unwrap().contains("; Secure"), "{:?}", a.headers);
    assert_eq!(a.header("location"), Some("/"), "no next: the builds");

    // Only paths of this server are followed after signing in.
    for next in ["%2F%2Fevil.example%2F", "https%3A%2F%2Fevil.example%2F", "%2F%5Cevil.example", "%2Fcaf%C3%A9"] {
        let a = post(&format!("{}/login", s.url), &format!("token={ADMIN}&next={next}"), None);
        assert_eq!((a.status, a.header("location")), (303, Some("/")), "next={next}");
    }
    // A form posted from another site is refused; one from this server is not.
    let host = s.url.trim_start_matches("http://");
    let a = post(&format!("{}/login", s.url), &format!("token={ADMIN}"), Some("https://evil.example"));
    assert_eq!(a.status, 403, "{}", a.body);
    assert!(a.header("set-cookie").is_none());
    let a = post(&format!("{}/login", s.url), &format!("token={ADMIN}"), Some(&format!("http://{host}")));
    assert_eq!(a.status, 303);
    assert_eq!(post(&format!("{}/login", s.url), "", None).status, 400, "no token field");

    let out = post(&format!("{}/logout", s.url), "", None);
    assert_eq!((out.status, out.header("location")), (303, Some("/login")));
    let cleared = out.header("set-cookie").unwrap();
    assert!(cleared.starts_with("strata_token=;") && cleared.contains("Max-Age=0"), "{cleared}");
    assert_eq!(get(&format!("{}/logout", s.url), Some(&cookie)).status, 200, "a page with the sign-out button");
}

#[test]
fn pages_escape_what_builds_hold_and_errors_are_pages() {
    let s = start(true);
    // Anonymous read: the pages answer without a cookie.
    let list = get(&format!("{}/", s.url), None);
    assert_eq!(list.status, 200);
    assert!(list.body.contains("anonymous read"), "{}", list.body);
    let page = get(&format!("{}/builds/1", s.url), None);
    assert_eq!(page.status, 200, "{}", page.body);
    for body in [&list.body, &page.body] {
        assert!(!body.contains("<script>alert") && !body.contains("<i>mallory"), "markup from a build is escaped:\n{body}");
        assert!(body.contains("x&#34;&#62;&#60;script&#62;alert(1)"), "{body}");
    }
    assert!(page.body.contains("<h2>Source</h2>") && page.body.contains("Commit</dt><dd><code>"), "the commit");
    assert!(page.body.contains("data-live=\"1\""), "a queued build's page follows it");

    let log = get(&format!("{}/builds/1/log?offset=0", s.url), None);
    assert_eq!(log.status, 200, "{}", log.body);
    let chunk: serde_json::Value = serde_json::from_str(&log.body).unwrap();
    assert_eq!((chunk["state"].as_str(), chunk["complete"].as_bool(), chunk["next"].as_u64()), (Some("queued"), Some(false), Some(0)), "{chunk}");

    // Errors: the message in a page, with the status.
    for (path, status, says) in [
        ("/builds/999", 404, "There is no build 999."),
        ("/builds/abc", 404, "There is no build &#34;abc&#34;"),
        ("/images/nothing-here", 404, "No build of an image nothing-here is recorded."),
        ("/images/Not%20A%20Name", 404, "is not an image name."),
        ("/images/app?from=1&to=1", 404, "Build 1 has no built image app to compare."),
        ("/?state=bogus", 400, "state &#34;bogus&#34;: one of queued, running, built, failed, canceled"),
        ("/search?rpm=openssl+%3C", 400, "openssl &#60;"),
        ("/no/such/page", 404, "There is no page at /no/such/page."),
    ] {
        let a = get(&format!("{}{path}", s.url), None);
        assert_eq!(a.status, status, "{path}: {}", a.body);
        assert!(a.body.contains(says), "{path} says {says:?}:\n{}", a.body);
        assert!(a.body.starts_with("<!doctype html>"), "{path}: a page");
        assert!(a.header("content-security-policy").is_some(), "{path}: {:?}", a.headers);
    }
    let api = get(&format!("{}/api/no-such-thing", s.url), None);
    assert_eq!(api.status, 404);
    assert!(api.body.contains("\"error\""), "the API's JSON: {}", api.body);

    let search = get(&format!("{}/search?rpm=bash", s.url), None);
    assert_eq!(search.status, 200);
    assert!(search.body.contains("id=\"no-hits\""), "{}", search.body);
    let events = get(&format!("{}/events", s.url), None);
    assert!(events.status == 200 && events.body.contains("No repository change"), "{}", events.body);
    let js = get(&format!("{}/static/strata.js", s.url), None);
    assert_eq!((js.status, js.header("content-type")), (200, Some("text/javascript; charset=utf-8")));
}
