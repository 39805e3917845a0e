//! `strata login` / `strata logout` against a real registry (distribution on loopback with
//! htpasswd auth), and the registry flags of push/pull/build as podman and skopeo spell them:
//! `--tls-verify=false`, `--creds`, `--authfile`.

mod common;

#[path = "../crates/strata-registry/tests/common/mod.rs"]
#[allow(unused_imports)]
mod registry;

use base64::Engine as _;
use common::build::Builds;
use common::*;
use serde_json::Value;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const USER: &str = "alice";
const PASS: &str = "s3cret:with colon";

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

/// The binary with a private HOME and no auth-file variables inherited from the caller;
/// `auth` becomes `$REGISTRY_AUTH_FILE` (the default file of login, logout and push).
fn strata(b: &Builds, auth: Option<&Path>) -> Command {
    let mut cmd = b.strata();
    cmd.env("HOME", b.path().join("home"))
        .env_remove("XDG_RUNTIME_DIR")
        .env_remove("XDG_CONFIG_HOME")
        .env_remove("DOCKER_CONFIG")
        .env_remove("REGISTRY_AUTH_FILE")
        .env_remove("STRATA_INSECURE_REGISTRIES")
        .stdin(Stdio::null());
    if let Some(a) = auth {
        cmd.env("REGISTRY_AUTH_FILE", a);
    }
    cmd
}

fn with_stdin(mut cmd: Command, input: &str) -> Output {
    let mut child = cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

fn login(b: &Builds, auth: &Path, host: &str, password: &str) -> Output {
    let mut cmd = strata(b, Some(auth));
    cmd.args(["login", host, "-u", USER, "--password-stdin", "--tls-verify=false"]);
    with_stdin(cmd, &format!("{password}\n"))
}

fn push(b: &Builds, auth: Option<&Path>, dest: &str, extra: &[&str]) -> Output {
    run(strata(b, auth).args(["push", "app", dest]).args(extra).arg("--store").arg(b.store()))
}

fn read(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

#[test]
fn login_push_logout_and_the_registry_flags() {
    let reg = registry::Registry::start(registry::Auth::Htpasswd(vec![(USER.into(), PASS.into())]));
    let host = reg.host();
    let a = Builds::new();
    a.busybox_base();
    a.build_json(&a.context("app", &[("Dockerfile", "FROM bb\nRUN echo app > /app\n")]), &["-t", "app"]);
    let dest = format!("{host}/team/app:1");
    let auth: PathBuf = a.path().join("run/containers/auth.json");

    // A wrong password is refused, naming the registry, and nothing is written.
    let out = login(&a, &auth, &host, "wrong");
    let err = assert_fails("login with a wrong password", &out);
    assert!(err.contains(&host) && err.contains("refused"), "{err}");
    assert!(!auth.exists(), "a refused login wrote {}", auth.display());

    // The file podman already wrote keeps its other entries and keys.
    std::fs::create_dir_all(auth.parent().unwrap()).unwrap();
    let before = format!(
        "{{\n\t\"auths\": {{\n\t\t\"quay.io\": {{\n\t\t\t\"auth\": \"{}\"\n\t\t}}\n\t}},\n\t\"credHelpers\": {{\"gcr.io\": \"gcloud\"}}\n}}",
        b64("q:qq")
    );
    std::fs::write(&auth, &before).unwrap();
    std::fs::set_permissions(&auth, std::fs::Permissions::from_mode(0o644)).unwrap();
    assert_fails("login with a wrong password", &login(&a, &auth, &host, "wrong"));
    assert_eq!(std::fs::read_to_string(&auth).unwrap(), before, "a refused login changed the file");

    // Without credentials the push is refused, naming the registry.
    let err = assert_fails("push without credentials", &push(&a, Some(&auth), &dest, &["--tls-verify=false"]));
    assert!(err.contains(&host) && err.contains("unauthorized"), "{err}");

    let out = login(&a, &auth, &host, PASS);
    assert_ok("strata login", &out);
    assert!(stdout(&out).contains("Login Succeeded"), "{}", stdout(&out));
    let v = read(&auth);
    assert_eq!(v["auths"][host.as_str()]["auth"], b64(&format!("{USER}:{PASS}")).as_str());
    assert_eq!(v["auths"]["quay.io"]["auth"], b64("q:qq").as_str());
    assert_eq!(v["credHelpers"]["gcr.io"], "gcloud");
    assert_eq!(std::fs::metadata(&auth).unwrap().permissions().mode() & 0o777, 0o600);

    // The login's credentials push; --insecure-registry HOST still works beside --tls-verify.
    assert_ok("push after login", &push(&a, Some(&auth), &dest, &["--tls-verify=false"]));
    assert_ok("push after login", &push(&a, Some(&auth), &dest, &["--insecure-registry", &host]));
    // Without either, the plain-HTTP registry is not reached.
    let err = assert_fails("push to plain HTTP with TLS verified", &push(&a, Some(&auth), &dest, &["--tls-verify=true"]));
    assert!(err.contains(&host), "{err}");

    let out = run(strata(&a, Some(&auth)).args(["logout", &host]));
    assert_ok("strata logout", &out);
    let v = read(&auth);
    assert!(v["auths"].get(host.as_str()).is_none(), "{v}");
    assert_eq!(v["auths"]["quay.io"]["auth"], b64("q:qq").as_str());
    assert_eq!(std::fs::metadata(&auth).unwrap().permissions().mode() & 0o777, 0o600);
    let err = assert_fails("push after logout", &push(&a, Some(&auth), &dest, &["--tls-verify=false"]));
    assert!(err.contains(&host) && err.contains("unauthorized"), "{err}");
    let err = assert_fails("logout twice", &run(strata(&a, Some(&auth)).args(["logout", &host])));
    assert!(err.contains("not logged into") && err.contains(&host), "{err}");

    // An auth.json as podman writes it, given with --authfile (the default file has nothing).
    let podman = a.path().join("podman-auth.json");
    std::fs::write(
        &podman,
        format!("{{\n\t\"auths\": {{\n\t\t\"{host}\": {{\n\t\t\t\"auth\": \"{}\"\n\t\t}}\n\t}}\n}}", b64(&format!("{USER}:{PASS}"))),
    )
    .unwrap();
    assert_ok("push with --authfile", &push(&a, Some(&auth), &dest, &["--tls-verify=false", "--authfile", podman.to_str().unwrap()]));
    let err = assert_fails(
        "push with a missing --authfile",
        &push(&a, None, &dest, &["--tls-verify=false", "--authfile", a.path().join("nope.json").to_str().unwrap()]),
    );
    assert!(err.contains("nope.json"), "{err}");

    // --creds without any auth file: push, pull, and build FROM the registry.
    let creds = format!("{USER}:{PASS}");
    assert_ok("push with --creds", &push(&a, None, &dest, &["--tls-verify=false", "--creds", &creds]));
    let err = assert_fails("push with wrong --creds", &push(&a, None, &dest, &["--tls-verify=false", "--creds", "alice:nope"]));
    assert!(err.contains(&host) && err.contains("unauthorized"), "{err}");
    let err = assert_fails("--creds USER without a terminal", &push(&a, None, &dest, &["--tls-verify=false", "--creds", USER]));
    assert!(err.contains("terminal"), "{err}");
    let b = Builds::new();
    let out = run(strata(&b, None).args(["pull", &dest, "--tls-verify=false", "--creds", &creds, "--store"]).arg(b.store()));
    assert_ok("pull with --creds", &out);
    let ctx = b.context("child", &[("Dockerfile", &format!("FROM {dest}\nRUN cat /app > /seen\n"))]);
    let c = Builds::new();
    let out = run(strata(&c, None).args(["build", "--json", "-t", "child", "--tls-verify=false", "--creds", &creds, "--store"]).arg(c.store()).arg(&ctx));
    assert_ok("build FROM the registry with --creds", &out);
    let (_keep, root) = c.unpack("child");
    assert_eq!(std::fs::read_to_string(root.join("seen")).unwrap(), "app\n");

    // logout --all empties auths and keeps the rest.
    assert_ok("login again", &login(&a, &auth, &host, PASS));
    assert_ok("logout --all", &run(strata(&a, Some(&auth)).args(["logout", "--all"])));
    let v = read(&auth);
    assert_eq!(v["auths"], serde_json::json!({}));
    assert_eq!(v["credHelpers"]["gcr.io"], "gcloud");
}

/// A registry with docker token auth: login asks the token server with the credentials
/// (no repository scope, as `docker login` does) and refuses what it refuses.
#[test]
fn login_through_a_token_server() {
    use registry::token::{Grant, TokenServer, User};
    let tokens = TokenServer::start(vec![User { name: USER.into(), password: PASS.into(), grant: Grant::All, access_token: false }]);
    let reg = registry::Registry::start(registry::Auth::Token { realm: tokens.realm(), cert: tokens.cert.clone() });
    let host = reg.host();
    let a = Builds::new();
    let auth = a.path().join("auth.json");
    let err = assert_fails("token login with a wrong password", &login(&a, &auth, &host, "wrong"));
    assert!(err.contains(&host) && err.contains("refused"), "{err}");
    assert!(!auth.exists());
    assert_ok("token login", &login(&a, &auth, &host, PASS));
    assert_eq!(read(&auth)["auths"][host.as_str()]["auth"], b64(&format!("{USER}:{PASS}")).as_str());
}
