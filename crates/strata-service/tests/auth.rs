//! Tokens against a real server on loopback, table-driven over the server's own OpenAPI
//! document: every operation refuses a request without a valid token (401), and every
//! state-changing one refuses a reader (403) — before reading the body, so no operation
//! can be probed unauthenticated.

use std::time::Duration;

const ADMIN: &str = "auth-test-admin-token-0123";

struct Running {
    url: String,
    reader: String,
    worker: String,
    _dir: tempfile::TempDir,
}

fn start() -> Running {
    let dir = tempfile::tempdir().unwrap();
    let mut config = strata_service::Config::new(dir.path().to_path_buf());
    config.listen = "127.0.0.1:0".into();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async move {
            let server = strata_service::Server::bind(config).await.unwrap();
            server.seed_token(ADMIN, "admin", "admin").await.unwrap();
            let reader = server.new_token("reader", "reader").await.unwrap();
            let worker = server.new_token("worker", "worker").await.unwrap();
            tx.send((server.addr, reader, worker)).unwrap();
            server.run(std::future::pending()).await.unwrap();
        });
    });
    let (addr, reader, worker) = rx.recv_timeout(Duration::from_secs(30)).unwrap();
    Running { url: format!("http://{addr}"), reader, worker, _dir: dir }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder().http_status_as_error(false).build().into()
}

fn call(url: &str, method: &str, token: Option<&str>) -> (u16, String) {
    let a = agent();
    let auth = token.map(|t| format!("Bearer {t}"));
    let mut resp = if method == "get" {
        let mut r = a.get(url);
        if let Some(h) = &auth {
            r = r.header("Authorization", h);
        }
        r.call().unwrap()
    } else {
        let mut r = a.post(url).header("Content-Type", "application/json");
        if let Some(h) = &auth {
            r = r.header("Authorization", h);
        }
        r.send("{}").unwrap()
    };
    (resp.status().as_u16(), resp.body_mut().read_to_string().unwrap_or_default())
}

#[test]
fn every_operation_needs_a_token_and_readers_change_nothing() {
    let s = start();
    let (status, doc) = call(&format!("{}/api/openapi.json", s.url), "get", None);
    assert_eq!(status, 200, "the OpenAPI document is public");
    let doc: serde_json::Value = serde_json::from_str(&doc).unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let mut operations = 0;
    let mut changing = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            operations += 1;
            assert_eq!(op["security"], serde_json::json!([{"bearer": []}]), "{method} {path} documents its token");
            let url = format!("{}{}", s.url, path.replace("{id}", "1").replace("{name}", "web"));
            let what = format!("{} {path}", method.to_uppercase());
            let (status, body) = call(&url, method, None);
            assert_eq!(status, 401, "{what} without a token: {body}");
            assert!(body.contains("\"error\""), "{what}: the reason as JSON: {body}");
            let (status, _) = call(&url, method, Some("strata_not-a-token"));
            assert_eq!(status, 401, "{what} with an unknown token");
            let (status, body) = call(&url, method, Some(&s.reader));
            if method == "get" {
                // Allowed: answered (or 404 for a build that does not exist, 400 for a
                // missing parameter), never 401/403.
                assert!([200, 400, 404].contains(&status), "{what} as reader: {status} {body}");
            } else {
                changing += 1;
                assert_eq!(status, 403, "{what} as reader: {body}");
                assert!(body.contains("is reader"), "{what}: says why: {body}");
            }
        }
    }
    assert!(operations >= 18 && changing >= 10, "{operations} operations, {changing} state-changing");

    // Roles do not overlap: a worker does not submit, a submitter does not lease.
    let (status, _) = call(&format!("{}/api/builds", s.url), "post", Some(&s.worker));
    assert_eq!(status, 403);
    let (status, body) = call(&format!("{}/api/tokens", s.url), "post", Some(&s.worker));
    assert_eq!(status, 403, "{body}");
    // The admin creates a submitter token, which then cannot lease but can list.
    let a = agent();
    let mut r = a
        .post(&format!("{}/api/tokens", s.url))
        .header("Authorization", &format!("Bearer {ADMIN}"))
        .header("Content-Type", "application/json")
        .send(r#"{"role": "submitter", "name": "ci"}"#)
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);
    let created: serde_json::Value = serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap();
    let submitter = created["token"].as_str().unwrap();
    assert_eq!(call(&format!("{}/api/worker/lease", s.url), "post", Some(submitter)).0, 403);
    assert_eq!(call(&format!("{}/api/builds", s.url), "get", Some(submitter)).0, 200);
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
