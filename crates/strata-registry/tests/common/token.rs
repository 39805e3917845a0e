//! A docker token server for distribution's `auth: token:` mode: checks Basic credentials,
//! grants the requested repository actions a user may have, and signs an RS256 JWT with a
//! throwaway key whose self-signed certificate travels in the `x5c` header (distribution
//! verifies it against `rootcertbundle`). Signing is done by the `openssl` tool.

use super::stub::{Stub, StubRequest, StubResponse};
use super::{require, TOKEN_ISSUER, TOKEN_SERVICE};
use base64::Engine as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// What a user may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grant {
    /// Every action asked for.
    All,
    /// `pull` only.
    PullOnly,
}

/// One user; `access_token` answers in the OAuth2 field instead of `token`.
#[derive(Debug, Clone)]
pub struct User {
    pub name: String,
    pub password: String,
    pub grant: Grant,
    pub access_token: bool,
}

pub struct TokenServer {
    pub stub: Stub,
    pub cert: PathBuf,
    _dir: tempfile::TempDir,
}

impl TokenServer {
    pub fn start(users: Vec<User>) -> TokenServer {
        require("openssl", "openssl");
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("key.pem");
        let cert = dir.path().join("cert.pem");
        let der = dir.path().join("cert.der");
        run(Command::new("openssl")
            .args([
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "2",
                "-subj",
                "/CN=strata-test-token",
                "-keyout",
            ])
            .arg(&key)
            .arg("-out")
            .arg(&cert));
        run(Command::new("openssl")
            .args(["x509", "-outform", "DER", "-in"])
            .arg(&cert)
            .arg("-out")
            .arg(&der));
        let x5c = base64::engine::general_purpose::STANDARD.encode(std::fs::read(&der).unwrap());
        let work = dir.path().to_path_buf();
        let counter = AtomicU64::new(0);
        let stub = Stub::start(move |req| answer(req, &users, &key, &x5c, &work, &counter));
        TokenServer {
            stub,
            cert,
            _dir: dir,
        }
    }

    pub fn realm(&self) -> String {
        format!("http://127.0.0.1:{}/token", self.stub.port)
    }

    /// The scopes of every token request so far, in order.
    pub fn scopes_requested(&self) -> Vec<Vec<String>> {
        self.stub
            .requests_to("/token")
            .iter()
            .map(|r| {
                query(r)
                    .into_iter()
                    .filter(|(k, _)| k == "scope")
                    .map(|(_, v)| v)
                    .collect()
            })
            .collect()
    }
}

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn query(r: &StubRequest) -> Vec<(String, String)> {
    let q = r.target.split_once('?').map_or("", |(_, q)| q);
    url::form_urlencoded::parse(q.as_bytes())
        .into_owned()
        .collect()
}

fn b64url(data: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(data)
}

fn answer(
    req: &StubRequest,
    users: &[User],
    key: &Path,
    x5c: &str,
    work: &Path,
    counter: &AtomicU64,
) -> StubResponse {
    let refuse = |why: &str| {
        StubResponse::new(
            401,
            format!(r#"{{"errors":[{{"code":"UNAUTHORIZED","message":"{why}"}}]}}"#),
        )
        .header("content-type", "application/json")
    };
    let Some(auth) = req
        .header("authorization")
        .and_then(|a| a.strip_prefix("Basic "))
    else {
        return refuse("anonymous access is not allowed");
    };
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(auth)
        .unwrap_or_default();
    let decoded = String::from_utf8(decoded).unwrap_or_default();
    let Some((name, password)) = decoded.split_once(':') else {
        return refuse("malformed credentials");
    };
    let Some(user) = users
        .iter()
        .find(|u| u.name == name && u.password == password)
    else {
        return refuse("wrong user name or password");
    };
    let q = query(req);
    if !q.iter().any(|(k, v)| k == "service" && v == TOKEN_SERVICE) {
        return StubResponse::new(400, "wrong service");
    }
    let mut access = Vec::new();
    for (_, scope) in q.iter().filter(|(k, _)| k == "scope") {
        let mut parts = scope.splitn(3, ':');
        let (Some(kind), Some(name), Some(actions)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        let actions: Vec<&str> = actions
            .split(',')
            .filter(|a| user.grant == Grant::All || *a == "pull")
            .collect();
        access.push(serde_json::json!({"type": kind, "name": name, "actions": actions}));
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let n = counter.fetch_add(1, Ordering::SeqCst);
    let header = serde_json::json!({"alg": "RS256", "typ": "JWT", "x5c": [x5c]});
    let claims = serde_json::json!({
        "iss": TOKEN_ISSUER, "sub": user.name, "aud": TOKEN_SERVICE,
        "exp": now + 300, "nbf": now - 10, "iat": now, "jti": format!("{now}-{n}"),
        "access": access,
    });
    let signing_input = format!(
        "{}.{}",
        b64url(header.to_string().as_bytes()),
        b64url(claims.to_string().as_bytes())
    );
    let input = work.join(format!("input-{n}"));
    std::fs::write(&input, &signing_input).unwrap();
    let out = Command::new("openssl")
        .args(["dgst", "-sha256", "-binary", "-sign"])
        .arg(key)
        .arg(&input)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "openssl dgst: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let jwt = format!("{signing_input}.{}", b64url(&out.stdout));
    let field = if user.access_token {
        "access_token"
    } else {
        "token"
    };
    StubResponse::new(
        200,
        serde_json::json!({ field: jwt, "expires_in": 300 }).to_string(),
    )
    .header("content-type", "application/json")
}
