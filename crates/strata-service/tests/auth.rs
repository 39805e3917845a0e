//! Tokens and roles against a real server on loopback, table-driven over the server's own
//! OpenAPI document: every operation × every role (none, reader, submitter, worker,
//! admin) answers as the role table says — 401 without a valid token, 403 for a role the
//! operation does not allow (checked before the body is read, so no operation can be
//! probed unauthenticated), and anything else for an allowed one. A revoked token is
//! refused; `--anonymous-read` lets a request without a token read, and nothing more.

use std::time::Duration;

const ADMIN: &str = "auth-test-admin-token-0123";

struct Running {
    url: String,
    tokens: Vec<(&'static str, String)>,
    _dir: tempfile::TempDir,
}

fn start(anonymous_read: bool) -> Running {
    let dir = tempfile::tempdir().unwrap();
    let mut config = strata_service::Config::new(dir.path().to_path_buf());
    config.listen = "127.0.0.1:0".into();
    config.anonymous_read = anonymous_read;
    config.repo_interval_s = 0;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async move {
            let server = strata_service::Server::bind(config).await.unwrap();
            server.seed_token(ADMIN, "admin", "admin").await.unwrap();
            let mut tokens = vec![("admin", ADMIN.to_string())];
            for role in ["reader", "submitter", "worker"] {
                tokens.push((role, server.new_token(role, role).await.unwrap()));
            }
            tx.send((server.addr, tokens)).unwrap();
            server.run(std::future::pending()).await.unwrap();
        });
    });
    let (addr, tokens) = rx.recv_timeout(Duration::from_secs(30)).unwrap();
    Running { url: format!("http://{addr}"), tokens, _dir: dir }
}

impl Running {
    fn token(&self, role: &str) -> &str {
        &self.tokens.iter().find(|(r, _)| *r == role).unwrap().1
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder().http_status_as_error(false).build().into()
}

fn call(url: &str, method: &str, token: Option<&str>) -> (u16, String) {
    let a = agent();
    let auth = token.map(|t| format!("Bearer {t}"));
    let mut resp = match method {
        "get" | "delete" => {
            let mut r = if method == "get" { a.get(url) } else { a.delete(url) };
            if let Some(h) = &auth {
                r = r.header("Authorization", h);
            }
            r.call().unwrap()
        }
        _ => {
            let mut r = a.post(url).header("Content-Type", "application/json");
            if let Some(h) = &auth {
                r = r.header("Authorization", h);
            }
            r.send("{}").unwrap()
        }
    };
    (resp.status().as_u16(), resp.body_mut().read_to_string().unwrap_or_default())
}

/// Which roles an operation allows (admin always).
fn allowed(method: &str, path: &str) -> &'static [&'static str] {
    const READ: &[&str] = &["reader", "submitter", "worker", "admin"];
    match (method, path) {
        ("get", "/api/tokens" | "/api/audit") => &["admin"],
        ("get", _) => READ,
        ("post", "/api/builds" | "/api/builds/{id}/cancel" | "/api/repos/refresh" | "/api/images/{name}/promote") => &["submitter", "admin"],
        ("post", "/api/tokens" | "/api/policy/reload") | ("delete", "/api/tokens/{id}") => &["admin"],
        ("post", "/api/worker/lease" | "/api/builds/{id}/heartbeat" | "/api/builds/{id}/log" | "/api/builds/{id}/complete" | "/api/builds/{id}/fail") => &["worker", "admin"],
        _ => panic!("{method} {path}: not in the role table; add it"),
    }
}

#[test]
fn every_operation_times_every_role_answers_as_the_role_table_says() {
    let s = start(false);
    let (status, doc) = call(&format!("{}/api/openapi.json", s.url), "get", None);
    assert_eq!(status, 200, "the OpenAPI document is public");
    let doc: serde_json::Value = serde_json::from_str(&doc).unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let mut checked = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            assert_eq!(op["security"], serde_json::json!([{"bearer": []}]), "{method} {path} documents its token");
            // A build and a token that do not exist: an allowed call answers 404 or 4xx
            // about its body, and changes nothing.
            let url = format!("{}{}", s.url, path.replace("{id}", "999999").replace("{name}", "no-such-image"));
            let what = format!("{} {path}", method.to_uppercase());
            let (status, body) = call(&url, method, None);
            assert_eq!(status, 401, "{what} without a token: {body}");
            assert!(body.contains("\"error\""), "{what}: the reason as JSON: {body}");
            assert_eq!(call(&url, method, Some("strata_not-a-token")).0, 401, "{what} with an unknown token");
            for role in ["reader", "submitter", "worker", "admin"] {
                let (status, body) = call(&url, method, Some(s.token(role)));
                if allowed(method, path).contains(&role) {
                    assert!(![401, 403].contains(&status) && status < 500, "{what} as {role} is allowed: {status} {body}");
                } else {
                    assert_eq!(status, 403, "{what} as {role}: {body}");
                    assert!(body.contains(&format!("is {role}")), "{what}: says why: {body}");
                }
                checked += 1;
            }
        }
    }
    assert!(checked >= 4 * 22, "{checked} operation × role pairs");

    // A revoked token is refused from then on.
    let a = agent();
    let mut r = a
        .post(&format!("{}/api/tokens", s.url))
        .header("Authorization", &format!("Bearer {ADMIN}"))
        .header("Content-Type", "application/json")
        .send(r#"{"role": "submitter", "name": "ci"}"#)
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);
    let created: serde_json::Value = serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap();
    let ci = created["token"].as_str().unwrap();
    assert_eq!(call(&format!("{}/api/builds", s.url), "get", Some(ci)).0, 200);
    let (status, body) = call(&format!("{}/api/tokens/{}", s.url, created["id"]), "delete", Some(ADMIN));
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"revoked\":\"20"), "{body}");
    let (status, body) = call(&format!("{}/api/builds", s.url), "get", Some(ci));
    assert_eq!(status, 401, "a revoked token: {body}");
    let (_, list) = call(&format!("{}/api/tokens", s.url), "get", Some(ADMIN));
    assert!(!list.contains(ci) && list.contains("\"name\":\"ci\""), "listed without its secret: {list}");

    // A bad role is refused, a huge body too.
    let mut r = a
        .post(&format!("{}/api/tokens", s.url))
        .header("Authorization", &format!("Bearer {ADMIN}"))
        .header("Content-Type", "application/json")
        .send(r#"{"role": "root"}"#)
        .unwrap();
    assert_eq!(r.status().as_u16(), 400, "{}", r.body_mut().read_to_string().unwrap());
    let big = format!(r#"{{"role": "reader", "name": "{}"}}"#, "x".repeat(8 << 20));
    let r = a.post(&format!("{}/api/tokens", s.url)).header("Authorization", &format!("Bearer {ADMIN}")).header("Content-Type", "application/json").send(big.as_bytes());
    assert!(r.map_or(true, |r| r.status().as_u16() == 413), "an 8 MiB body is refused");
    // GET / answers for probes.
    assert_eq!(call(&format!("{}/", s.url), "get", None).0, 200);
}

#[test]
fn anonymous_read_reads_and_does_nothing_else() {
    let s = start(true);
    assert_eq!(call(&format!("{}/api/builds", s.url), "get", None).0, 200);
    assert_eq!(call(&format!("{}/api/tokens", s.url), "get", None).0, 401, "admin reads still need a token");
    assert_eq!(call(&format!("{}/api/builds", s.url), "post", None).0, 401);
    assert_eq!(call(&format!("{}/api/builds", s.url), "get", Some("strata_bad")).0, 401, "a bad token is not anonymous");
}
