//! Credentials: given by the caller, or read from the auth files docker and podman write.
//!
//! Files are searched in containers-auth.json(5) order: `$REGISTRY_AUTH_FILE` (else
//! `$XDG_RUNTIME_DIR/containers/auth.json`), then `$XDG_CONFIG_HOME/containers/auth.json`
//! (skipped when `$REGISTRY_AUTH_FILE` is set), then `$DOCKER_CONFIG/config.json` (else
//! `~/.docker/config.json`), then the legacy `~/.dockercfg`. In each file a registry's
//! `credHelpers` entry comes first, then the most specific `auths` key (`host/ns/repo`,
//! `host/ns`, `host`; `https://` prefixes and `/v1/` paths as docker writes them are
//! accepted), then the file's `credsStore`. The first file that knows the registry wins.

use crate::reference::normalize_registry;
use crate::{Error, Result};
use base64::Engine as _;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// A secret for one registry. `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub enum Credential {
    /// User name and password (or a personal access token as password).
    Basic { username: String, password: String },
    /// An OAuth2 refresh token (docker's `identitytoken`), exchanged at the token realm.
    IdentityToken(String),
    /// A bearer token sent as it is (docker's `registrytoken`).
    RegistryToken(String),
}

impl Credential {
    pub fn basic(username: impl Into<String>, password: impl Into<String>) -> Credential {
        Credential::Basic {
            username: username.into(),
            password: password.into(),
        }
    }
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credential::Basic { username, .. } => {
                write!(
                    f,
                    "Basic {{ username: {username:?}, password: <redacted> }}"
                )
            }
            Credential::IdentityToken(_) => f.write_str("IdentityToken(<redacted>)"),
            Credential::RegistryToken(_) => f.write_str("RegistryToken(<redacted>)"),
        }
    }
}

/// Where credentials come from, in precedence order; see the module docs.
#[derive(Debug, Clone, Default)]
pub struct Credentials {
    /// Given by the caller; always searched first.
    explicit: Vec<(String, Credential)>,
    files: Vec<AuthFile>,
    /// Where `docker-credential-*` helpers are looked for instead of `$PATH` (tests).
    pub(crate) helper_dir: Option<PathBuf>,
}

#[derive(Debug, Clone)]
struct AuthFile {
    /// Normalised key (`host[/path]`) and credential, in file order. Empty entries (docker's
    /// placeholder when a credential store holds the secret) are left out.
    auths: Vec<(String, Credential)>,
    /// Registry → helper name (`docker-credential-NAME`).
    cred_helpers: BTreeMap<String, String>,
    creds_store: Option<String>,
}

impl Credentials {
    /// No credentials: every registry is contacted anonymously.
    pub fn none() -> Credentials {
        Credentials::default()
    }

    /// The auth files docker and podman write, in their precedence order. Files that do
    /// not exist are skipped; one that exists but cannot be read or parsed is an error,
    /// since silently pulling anonymously would hide a broken login.
    pub fn from_default_files() -> Result<Credentials> {
        let home = std::env::var_os("HOME").map(PathBuf::from);
        let env = |k: &str| {
            std::env::var_os(k)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        let mut c = Credentials::default();
        for (path, legacy) in default_paths(&env, home.as_deref()) {
            if path.exists() {
                c.add_file_as(&path, legacy)?;
            }
        }
        Ok(c)
    }

    /// Adds a credential for `key`: a registry (`registry.example:5000`) or a repository
    /// prefix on it (`registry.example/team`). Caller-given credentials beat every file.
    pub fn insert(&mut self, key: &str, credential: Credential) {
        self.explicit.push((normalize_key(key), credential));
    }

    /// Adds an auth file (docker `config.json` or containers `auth.json` format) after the
    /// ones already added.
    pub fn add_file(&mut self, path: &Path) -> Result<()> {
        self.add_file_as(path, false)
    }

    fn add_file_as(&mut self, path: &Path, legacy: bool) -> Result<()> {
        let bytes = std::fs::read(path).map_err(|e| Error::AuthFile {
            path: path.to_path_buf(),
            detail: e.to_string(),
        })?;
        self.files.push(parse_file(path, &bytes, legacy)?);
        Ok(())
    }

    /// The credential for a repository on a registry, if any source has one.
    pub fn lookup(&self, registry: &str, repository: &str) -> Result<Option<Credential>> {
        let registry = normalize_registry(registry);
        let mut candidates = Vec::new();
        let mut path = format!("{registry}/{repository}");
        loop {
            candidates.push(path.clone());
            match path.rfind('/') {
                Some(i) => path.truncate(i),
                None => break,
            }
        }
        for key in &candidates {
            if let Some((_, c)) = self.explicit.iter().find(|(k, _)| k == key) {
                return Ok(Some(c.clone()));
            }
        }
        for file in &self.files {
            if let Some(helper) = file.cred_helpers.get(&registry) {
                if let Some(c) = self.run_helper(helper, &registry)? {
                    return Ok(Some(c));
                }
            }
            for key in &candidates {
                if let Some((_, c)) = file.auths.iter().find(|(k, _)| k == key) {
                    return Ok(Some(c.clone()));
                }
            }
            if let Some(helper) = &file.creds_store {
                if let Some(c) = self.run_helper(helper, &registry)? {
                    return Ok(Some(c));
                }
            }
        }
        Ok(None)
    }

    /// `docker-credential-NAME get`, server address on stdin, JSON on stdout. A helper that
    /// does not know the registry exits non-zero saying "credentials not found".
    fn run_helper(&self, helper: &str, registry: &str) -> Result<Option<Credential>> {
        let fail = |detail: String| Error::CredentialHelper {
            helper: helper.to_string(),
            registry: registry.to_string(),
            detail,
        };
        let program = format!("docker-credential-{helper}");
        let program = match &self.helper_dir {
            Some(dir) => dir.join(program),
            None => PathBuf::from(program),
        };
        // docker stores Docker Hub under its v1 URL; other registries under their host.
        let server = if registry == crate::reference::DEFAULT_REGISTRY {
            "https://index.docker.io/v1/"
        } else {
            registry
        };
        let mut child = Command::new(&program)
            .arg("get")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| fail(format!("cannot run {}: {e}", program.display())))?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin
                .write_all(server.as_bytes())
                .map_err(|e| fail(format!("writing to it: {e}")))?;
        }
        let out = child
            .wait_with_output()
            .map_err(|e| fail(format!("waiting for it: {e}")))?;
        if !out.status.success() {
            let said = String::from_utf8_lossy(&out.stdout).to_string()
                + &String::from_utf8_lossy(&out.stderr);
            if said.to_ascii_lowercase().contains("credentials not found") {
                return Ok(None);
            }
            return Err(fail(format!("{}: {}", out.status, said.trim())));
        }
        #[derive(Deserialize)]
        struct Answer {
            #[serde(rename = "Username", default)]
            username: String,
            #[serde(rename = "Secret", default)]
            secret: String,
        }
        let a: Answer = serde_json::from_slice(&out.stdout)
            .map_err(|e| fail(format!("unreadable answer: {e}")))?;
        // docker's convention for identity tokens kept by a helper.
        Ok(Some(if a.username == "<token>" {
            Credential::IdentityToken(a.secret)
        } else {
            Credential::Basic {
                username: a.username,
                password: a.secret,
            }
        }))
    }
}

/// The auth files to search and whether each is in the legacy `.dockercfg` format.
fn default_paths(
    env: &dyn Fn(&str) -> Option<PathBuf>,
    home: Option<&Path>,
) -> Vec<(PathBuf, bool)> {
    let mut out = Vec::new();
    let user_file = env("REGISTRY_AUTH_FILE");
    match &user_file {
        Some(p) => out.push((p.clone(), false)),
        None => {
            if let Some(run) = env("XDG_RUNTIME_DIR") {
                out.push((run.join("containers/auth.json"), false));
            }
        }
    }
    if user_file.is_none() {
        let config = env("XDG_CONFIG_HOME").or_else(|| home.map(|h| h.join(".config")));
        if let Some(c) = config {
            out.push((c.join("containers/auth.json"), false));
        }
    }
    match env("DOCKER_CONFIG") {
        Some(d) => out.push((d.join("config.json"), false)),
        None => {
            if let Some(h) = home {
                out.push((h.join(".docker/config.json"), false));
            }
        }
    }
    if let Some(h) = home {
        out.push((h.join(".dockercfg"), true));
    }
    out
}

#[derive(Deserialize, Default)]
struct RawEntry {
    #[serde(default)]
    auth: String,
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    identitytoken: String,
    #[serde(default)]
    registrytoken: String,
}

#[derive(Deserialize, Default)]
struct RawFile {
    #[serde(default)]
    auths: BTreeMap<String, RawEntry>,
    #[serde(rename = "credHelpers", default)]
    cred_helpers: BTreeMap<String, String>,
    #[serde(rename = "credsStore", default)]
    creds_store: String,
}

fn parse_file(path: &Path, bytes: &[u8], legacy: bool) -> Result<AuthFile> {
    let bad = |detail: String| Error::AuthFile {
        path: path.to_path_buf(),
        detail,
    };
    let raw: RawFile = if legacy {
        RawFile {
            auths: serde_json::from_slice(bytes).map_err(|e| bad(e.to_string()))?,
            ..RawFile::default()
        }
    } else {
        serde_json::from_slice(bytes).map_err(|e| bad(e.to_string()))?
    };
    let mut auths = Vec::new();
    for (key, entry) in raw.auths {
        if let Some(c) = entry_credential(&entry).map_err(|d| bad(format!("entry {key:?}: {d}")))? {
            auths.push((normalize_key(&key), c));
        }
    }
    let cred_helpers = raw
        .cred_helpers
        .into_iter()
        .map(|(k, v)| (normalize_key(&k), v))
        .collect();
    Ok(AuthFile {
        auths,
        cred_helpers,
        creds_store: Some(raw.creds_store).filter(|s| !s.is_empty()),
    })
}

fn entry_credential(e: &RawEntry) -> std::result::Result<Option<Credential>, String> {
    if !e.identitytoken.is_empty() {
        return Ok(Some(Credential::IdentityToken(e.identitytoken.clone())));
    }
    if !e.registrytoken.is_empty() {
        return Ok(Some(Credential::RegistryToken(e.registrytoken.clone())));
    }
    let auth = e.auth.trim();
    if !auth.is_empty() {
        // docker writes padded standard base64; accept it unpadded too, as Go tools read it.
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(auth)
            .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(auth))
            .map_err(|e| format!("\"auth\" is not base64: {e}"))?;
        let decoded =
            String::from_utf8(decoded).map_err(|_| "\"auth\" is not UTF-8".to_string())?;
        let (user, pass) = decoded
            .split_once(':')
            .ok_or("\"auth\" is not base64 of USER:PASSWORD")?;
        return Ok(Some(Credential::basic(user, pass)));
    }
    if !e.username.is_empty() {
        return Ok(Some(Credential::basic(&e.username, &e.password)));
    }
    Ok(None)
}

/// `https://index.docker.io/v1/` → `docker.io`, `https://reg.example:5000` →
/// `reg.example:5000`, `reg.example/ns` stays. A URL's path is dropped (docker keys are
/// URLs of the v1 API); a bare key's path is a repository namespace (podman's).
fn normalize_key(key: &str) -> String {
    let key = key.trim_end_matches('/');
    let key = match key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
    {
        Some(rest) => rest.split('/').next().unwrap_or(rest),
        None => key,
    };
    match key.split_once('/') {
        Some((host, path)) => format!("{}/{path}", normalize_registry(host)),
        None => normalize_registry(key),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// An environment of these variables only, for the default-path functions.
    pub(crate) fn env_of(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<PathBuf> {
        let vars: BTreeMap<String, PathBuf> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), PathBuf::from(v)))
            .collect();
        move |k: &str| vars.get(k).cloned()
    }

    fn b64(s: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(s)
    }

    fn file(dir: &Path, name: &str, json: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, json).unwrap();
        p
    }

    #[test]
    fn reads_docker_and_podman_auth_files() {
        let dir = tempfile::tempdir().unwrap();
        let docker = file(
            dir.path(),
            "config.json",
            &format!(
                r#"{{"auths": {{
                  "https://index.docker.io/v1/": {{"auth": "{}"}},
                  "reg.example:5000": {{"auth": "{}"}},
                  "tok.example": {{"identitytoken": "refresh-me"}},
                  "placeholder.example": {{}}
                }}, "HttpHeaders": {{"User-Agent": "x"}}}}"#,
                b64("hub:hubpass"),
                b64("u:p:with:colons")
            ),
        );
        let podman = file(
            dir.path(),
            "auth.json",
            &format!(
                r#"{{"auths": {{"reg.example:5000/team": {{"auth": "{}"}}}}}}"#,
                b64("team:secret")
            ),
        );
        let mut c = Credentials::none();
        c.add_file(&podman).unwrap();
        c.add_file(&docker).unwrap();
        assert_eq!(
            c.lookup("docker.io", "library/busybox").unwrap(),
            Some(Credential::basic("hub", "hubpass"))
        );
        // The namespaced podman entry wins for its namespace only.
        assert_eq!(
            c.lookup("reg.example:5000", "team/app").unwrap(),
            Some(Credential::basic("team", "secret"))
        );
        assert_eq!(
            c.lookup("reg.example:5000", "other/app").unwrap(),
            Some(Credential::basic("u", "p:with:colons"))
        );
        assert_eq!(
            c.lookup("tok.example", "a").unwrap(),
            Some(Credential::IdentityToken("refresh-me".into()))
        );
        assert_eq!(c.lookup("placeholder.example", "a").unwrap(), None);
        assert_eq!(c.lookup("unknown.example", "a").unwrap(), None);
        // Caller-given credentials beat files.
        c.insert("reg.example:5000", Credential::basic("me", "mine"));
        assert_eq!(
            c.lookup("reg.example:5000", "team/app").unwrap(),
            Some(Credential::basic("me", "mine"))
        );
        assert!(
            !format!("{:?}", c).contains("mine"),
            "secrets in Debug output"
        );
    }

    #[test]
    fn legacy_dockercfg_and_unpadded_base64() {
        let dir = tempfile::tempdir().unwrap();
        let unpadded = b64("ab:c").trim_end_matches('=').to_string();
        let legacy = file(
            dir.path(),
            ".dockercfg",
            &format!(r#"{{"https://old.example/v1/": {{"auth": "{unpadded}", "email": "x@y"}}}}"#),
        );
        let mut c = Credentials::none();
        c.add_file_as(&legacy, true).unwrap();
        assert_eq!(
            c.lookup("old.example", "a/b").unwrap(),
            Some(Credential::basic("ab", "c"))
        );
    }

    #[test]
    fn broken_files_are_errors_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = file(dir.path(), "bad.json", "{not json");
        let e = Credentials::none().add_file(&p).unwrap_err().to_string();
        assert!(e.contains("bad.json"), "{e}");
        let p = file(
            dir.path(),
            "nocolon.json",
            &format!(
                r#"{{"auths":{{"r.example":{{"auth":"{}"}}}}}}"#,
                b64("nocolon")
            ),
        );
        let e = Credentials::none().add_file(&p).unwrap_err().to_string();
        assert!(e.contains("nocolon.json") && e.contains("r.example"), "{e}");
        let p = file(
            dir.path(),
            "nob64.json",
            r#"{"auths":{"r.example":{"auth":"!!!"}}}"#,
        );
        assert!(Credentials::none().add_file(&p).is_err());
        let e = Credentials::none()
            .add_file(&dir.path().join("missing.json"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("missing.json"), "{e}");
    }

    #[test]
    fn search_order_follows_containers_auth_json() {
        let home = Path::new("/home/u");
        let e = env_of(&[("XDG_RUNTIME_DIR", "/run/user/1")]);
        let paths: Vec<(PathBuf, bool)> = default_paths(&e, Some(home));
        let want: Vec<(PathBuf, bool)> = vec![
            ("/run/user/1/containers/auth.json".into(), false),
            ("/home/u/.config/containers/auth.json".into(), false),
            ("/home/u/.docker/config.json".into(), false),
            ("/home/u/.dockercfg".into(), true),
        ];
        assert_eq!(paths, want);
        let e = env_of(&[
            ("REGISTRY_AUTH_FILE", "/tmp/auth.json"),
            ("XDG_RUNTIME_DIR", "/run/user/1"),
            ("DOCKER_CONFIG", "/etc/dockercfg"),
        ]);
        let paths: Vec<PathBuf> = default_paths(&e, Some(home))
            .into_iter()
            .map(|p| p.0)
            .collect();
        assert_eq!(
            paths,
            [
                PathBuf::from("/tmp/auth.json"),
                "/etc/dockercfg/config.json".into(),
                "/home/u/.dockercfg".into()
            ]
        );
    }

    #[test]
    fn credential_helpers() {
        let dir = tempfile::tempdir().unwrap();
        let helper = dir.path().join("docker-credential-fake");
        std::fs::write(
            &helper,
            "#!/bin/sh\nread server\ncase \"$server\" in\n  reg.example) echo '{\"Username\":\"hu\",\"Secret\":\"hs\"}' ;;\n  https://index.docker.io/v1/) echo '{\"Username\":\"<token>\",\"Secret\":\"rt\"}' ;;\n  broken.example) echo 'boom' >&2; exit 2 ;;\n  *) echo 'credentials not found in native keychain'; exit 1 ;;\nesac\n",
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
        let cfg = file(
            dir.path(),
            "config.json",
            &format!(
                r#"{{"auths": {{"other.example": {{"auth": "{}"}}}}, "credHelpers": {{"reg.example": "fake", "broken.example": "fake"}}, "credsStore": "fake"}}"#,
                b64("o:p")
            ),
        );
        let mut c = Credentials::none();
        c.helper_dir = Some(dir.path().to_path_buf());
        c.add_file(&cfg).unwrap();
        assert_eq!(
            c.lookup("reg.example", "a").unwrap(),
            Some(Credential::basic("hu", "hs"))
        );
        assert_eq!(
            c.lookup("docker.io", "library/x").unwrap(),
            Some(Credential::IdentityToken("rt".into()))
        );
        assert_eq!(
            c.lookup("other.example", "a").unwrap(),
            Some(Credential::basic("o", "p"))
        );
        assert_eq!(c.lookup("nobody.example", "a").unwrap(), None);
        let e = c.lookup("broken.example", "a").unwrap_err().to_string();
        assert!(
            e.contains("docker-credential-fake") && e.contains("boom"),
            "{e}"
        );
    }

    #[test]
    fn keys_normalise() {
        assert_eq!(normalize_key("https://index.docker.io/v1/"), "docker.io");
        assert_eq!(normalize_key("registry-1.docker.io"), "docker.io");
        assert_eq!(normalize_key("http://reg.example:5000"), "reg.example:5000");
        assert_eq!(normalize_key("reg.example/ns/repo"), "reg.example/ns/repo");
        assert_eq!(normalize_key("docker.io/user"), "docker.io/user");
    }
}
