//! The policy against a real server: image globs, git sources, refs, registries and the
//! host network each refuse a submission naming the rule; a policy file with an error is
//! refused at reload and the old policy stays in force; and the audit log holds exactly
//! one entry per state-changing call made, with its actor and outcome.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

const ADMIN: &str = "policy-test-admin-token-0123";

fn git(dir: &Path, args: &[&str]) {
    let out = Command::new("git").arg("-C").arg(dir).args(["-c", "user.name=t", "-c", "user.email=t@example.org"]).args(args).output().unwrap();
    assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

fn repo(dir: &Path, files: &[(&str, &str)]) -> String {
    std::fs::create_dir_all(dir).unwrap();
    git(dir, &["init", "-q", "-b", "main"]);
    for (name, text) in files {
        std::fs::write(dir.join(name), text).unwrap();
    }
    git(dir, &["add", "-A"]);
    git(dir, &["commit", "-q", "-m", "c"]);
    git(dir, &["branch", "feature"]);
    format!("file://{}", dir.display())
}

struct Server {
    url: String,
    tokens: std::collections::BTreeMap<&'static str, String>,
}

fn start(dir: &Path, policy: &Path) -> Server {
    let mut config = strata_service::Config::new(dir.join("data"));
    config.listen = "127.0.0.1:0".into();
    config.registry = Some("reg.example:5000/team".into());
    config.policy_file = Some(policy.to_path_buf());
    config.repo_interval_s = 0;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async move {
            let server = strata_service::Server::bind(config).await.unwrap();
            server.seed_token(ADMIN, "admin", "root").await.unwrap();
            let mut tokens = std::collections::BTreeMap::new();
            tokens.insert("alice", server.new_token("submitter", "alice").await.unwrap());
            tokens.insert("ci", server.new_token("submitter", "ci").await.unwrap());
            tokens.insert("root", ADMIN.to_string());
            tx.send((server.addr, tokens)).unwrap();
            server.run(std::future::pending()).await.unwrap();
        });
    });
    let (addr, tokens) = rx.recv_timeout(Duration::from_secs(30)).unwrap();
    Server { url: format!("http://{addr}"), tokens }
}

impl Server {
    fn post(&self, who: &str, path: &str, body: serde_json::Value) -> (u16, serde_json::Value) {
        let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
        let mut r = agent
            .post(&format!("{}{path}", self.url))
            .header("Authorization", &format!("Bearer {}", self.tokens[who]))
            .header("Content-Type", "application/json")
            .send(body.to_string().as_bytes())
            .unwrap();
        let status = r.status().as_u16();
        (status, serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap_or_default())
    }

    fn submit(&self, who: &str, url: &str, image: &str, extra: serde_json::Value) -> (u16, String) {
        let mut body = serde_json::json!({"source": {"url": url}, "images": [image]});
        for (k, v) in extra.as_object().unwrap() {
            if k == "ref" {
                body["source"]["ref"] = v.clone();
            } else {
                body[k] = v.clone();
            }
        }
        let (status, answer) = self.post(who, "/api/builds", body);
        (status, answer["error"].as_str().map_or_else(|| answer.to_string(), str::to_string))
    }
}

#[test]
fn rules_refuse_naming_themselves_a_broken_policy_keeps_the_old_one_and_every_call_is_audited() {
    let tmp = tempfile::tempdir().unwrap();
    let trusted = tmp.path().join("trusted");
    let app = repo(&trusted.join("app"), &[("Dockerfile", "FROM scratch\nCOPY Dockerfile /\n")]);
    let elsewhere = repo(&tmp.path().join("elsewhere"), &[("Dockerfile", "FROM scratch\n")]);
    let policy = tmp.path().join("policy.toml");
    let text = format!(
        "[default]\nsources = [\"file://{}/**\"]\nrefs = [\"HEAD\", \"main\"]\n\n[[image]]\nmatch = \"apps/*\"\nsubmit = [\"ci\"]\n\n[[image]]\nmatch = \"ext/*\"\nregistries = [\"other.example/mirror\"]\n",
        trusted.display()
    );
    std::fs::write(&policy, &text).unwrap();
    let s = start(tmp.path(), &policy);
    let none = serde_json::json!({});
    let mut calls = 0; // state-changing calls made, each must be in the audit log

    let (status, body) = s.submit("alice", &app, "web", none.clone());
    calls += 1;
    assert_eq!(status, 201, "{body}");
    let cases: [(&str, &str, &str, serde_json::Value, &str); 5] = [
        ("alice", &elsewhere, "web", none.clone(), "refused by policy rule [default]: source file://"),
        ("alice", &app, "web", serde_json::json!({"ref": "feature"}), "refused by policy rule [default]: ref feature is not one of HEAD, main"),
        ("alice", &app, "apps/site", none.clone(), "refused by policy rule [[image]] match = \"apps/*\" (line 5): alice (submitter) may not submit apps/site"),
        ("ci", &app, "ext/tool", none.clone(), "refused by policy rule [[image]] match = \"ext/*\" (line 9): pushing to reg.example:5000/team/ext/tool is not under other.example/mirror"),
        ("alice", &app, "web", serde_json::json!({"network": "host"}), "refused by policy rule [default]: web may not build with the host's network"),
    ];
    for (who, url, image, extra, want) in &cases {
        let (status, body) = s.submit(who, url, image, extra.clone());
        calls += 1;
        assert_eq!(status, 403, "{who} {image}: {body}");
        assert!(body.starts_with(want), "{who} {image}: {body}\nwanted: {want}");
    }
    let (status, body) = s.submit("ci", &app, "apps/site", none.clone());
    calls += 1;
    assert_eq!(status, 201, "ci may submit apps/*: {body}");

    // A broken policy is refused, naming line and key; the old one stays in force.
    std::fs::write(&policy, format!("{text}\n[[image]]\nmatch = \"x/*\"\nsubmit = [\"role:owner\"]\n")).unwrap();
    let (status, answer) = s.post("root", "/api/policy/reload", none.clone());
    calls += 1;
    assert_eq!(status, 400);
    let e = answer["error"].as_str().unwrap();
    assert!(e.contains("line 15: image[2].submit: role \"owner\" is not one of") && e.ends_with("the old policy stays in force"), "{e}");
    let (status, body) = s.submit("alice", &app, "apps/site", none.clone());
    calls += 1;
    assert_eq!(status, 403, "still the old policy: {body}");
    let (status, _) = s.post("alice", "/api/policy/reload", none.clone());
    calls += 1;
    assert_eq!(status, 403, "only admins reload");
    // A good one takes effect at once.
    std::fs::write(&policy, text.replace("submit = [\"ci\"]", "submit = [\"ci\", \"alice\"]")).unwrap();
    let (status, answer) = s.post("root", "/api/policy/reload", none.clone());
    calls += 1;
    assert_eq!((status, answer["image_rules"].as_u64()), (200, Some(2)), "{answer}");
    let (status, body) = s.submit("alice", &app, "apps/site", none.clone());
    calls += 1;
    assert_eq!(status, 201, "{body}");
    let (status, _) = s.post("root", "/api/tokens", serde_json::json!({"role": "reader", "name": "auditor"}));
    calls += 1;
    assert_eq!(status, 201);
    let (status, _) = s.post("alice", "/api/builds/1/cancel", none.clone());
    calls += 1;
    assert_eq!(status, 200);

    // The audit log: one entry per call, in order, with actor and outcome.
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
    let mut r = agent.get(&format!("{}/api/audit", s.url)).header("Authorization", &format!("Bearer {ADMIN}")).call().unwrap();
    let log: Vec<serde_json::Value> = serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap();
    let summary: Vec<(String, String, String)> = log.iter().map(|e| (e["actor"].as_str().unwrap().into(), e["action"].as_str().unwrap().into(), e["outcome"].as_str().unwrap().into())).collect();
    assert_eq!(log.len(), calls, "{summary:#?}");
    let expect = [
        ("alice", "submit", "ok"),
        ("alice", "submit", "refused"),
        ("alice", "submit", "refused"),
        ("alice", "submit", "refused"),
        ("ci", "submit", "refused"),
        ("alice", "submit", "refused"),
        ("ci", "submit", "ok"),
        ("root", "policy reload", "rejected"),
        ("alice", "submit", "refused"),
        ("alice", "policy reload", "refused"),
        ("root", "policy reload", "ok"),
        ("alice", "submit", "ok"),
        ("root", "token create", "ok"),
        ("alice", "cancel", "ok"),
    ];
    let got: Vec<(&str, &str, &str)> = summary.iter().map(|(a, b, c)| (a.as_str(), b.as_str(), c.as_str())).collect();
    assert_eq!(got, expect);
    assert_eq!(log[0]["target"], "build 1");
    assert!(log[0]["detail"].as_str().unwrap().contains("Dockerfile images web"), "{}", log[0]);
    assert!(log[2]["detail"].as_str().unwrap().contains("ref feature"), "a refusal records its reason: {}", log[2]);
    assert_eq!(log[0]["address"], "127.0.0.1");
    assert_eq!(log[7]["status"], 400);
}

/// What a submission's source holds is read at submit; a source that builds nothing, or
/// does not say what it builds, is refused with the reason and nothing is queued — a
/// `strata.json` that is a symlink (to a host file) is never read.
#[test]
fn a_source_with_nothing_to_build_is_refused_at_submit() {
    let tmp = tempfile::tempdir().unwrap();
    let policy = tmp.path().join("policy.toml");
    std::fs::write(&policy, "").unwrap();
    let s = start(tmp.path(), &policy);
    let empty = repo(&tmp.path().join("empty"), &[("README", "nothing here\n")]);
    let docker = repo(&tmp.path().join("docker"), &[("Dockerfile", "FROM scratch\n")]);
    let spec = repo(&tmp.path().join("spec"), &[("strata.json", r#"{"images": {"web": {"packages": ["nginx"]}}}"#)]);
    let broken = repo(&tmp.path().join("broken"), &[("strata.json", "{not json")]);
    let link_dir = tmp.path().join("link");
    std::fs::create_dir_all(&link_dir).unwrap();
    std::fs::write(tmp.path().join("secret.json"), r#"{"images": {"web": {}}}"#).unwrap();
    std::os::unix::fs::symlink(tmp.path().join("secret.json"), link_dir.join("strata.json")).unwrap();
    let link = repo(&link_dir, &[]);
    let cases: [(&str, &str, &str); 5] = [
        (&empty, "web", "has neither strata.json nor a Dockerfile"),
        (&docker, "", "holds a Dockerfile: name its image with exactly one --image NAME"),
        (&spec, "db", "image db is not in strata.json"),
        (&broken, "web", "strata.json at"),
        (&link, "web", "has neither strata.json nor a Dockerfile"),
    ];
    for (url, image, want) in cases {
        let mut body = serde_json::json!({"source": {"url": url}});
        if !image.is_empty() {
            body["images"] = serde_json::json!([image]);
        }
        let (status, answer) = s.post("alice", "/api/builds", body);
        let e = answer["error"].as_str().unwrap_or_default();
        assert_eq!(status, 422, "{url}: {answer}");
        assert!(e.contains(want), "{url}: {e}\nwanted: {want}");
    }
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
    let mut r = agent.get(&format!("{}/api/builds", s.url)).header("Authorization", &format!("Bearer {ADMIN}")).call().unwrap();
    assert_eq!(r.body_mut().read_to_string().unwrap(), "[]", "nothing was queued");
}
