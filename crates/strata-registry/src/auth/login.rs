//! `login` and `logout`: checking credentials against a registry, and writing or removing
//! them in a containers `auth.json` (the file podman and skopeo write), keeping every other
//! entry and every key this module does not know.

use crate::client::failure::{describe, error_body, http_error, transport, Failure};
use crate::client::Client;
use crate::{Error, Result};
use base64::Engine as _;
use serde_json::{Map, Value};
use std::io::Write;
use std::path::{Path, PathBuf};

/// The file `login` writes and `logout` edits when no `--authfile` is given: as podman,
/// `$REGISTRY_AUTH_FILE`, else `$XDG_RUNTIME_DIR/containers/auth.json`. Without
/// `XDG_RUNTIME_DIR` podman falls back to `/run/containers/$UID/auth.json`, which only root
/// can create and which nothing else reads; this uses `$XDG_CONFIG_HOME/containers/auth.json`
/// (else `~/.config/containers/auth.json`) instead, a file podman, skopeo and this crate's
/// [`Credentials::from_default_files`](crate::Credentials::from_default_files) all read.
pub fn default_auth_file() -> Option<PathBuf> {
    let env = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    let home = std::env::var_os("HOME").map(PathBuf::from);
    auth_file_from(&env, home.as_deref())
}

fn auth_file_from(env: &dyn Fn(&str) -> Option<PathBuf>, home: Option<&Path>) -> Option<PathBuf> {
    if let Some(p) = env("REGISTRY_AUTH_FILE") {
        return Some(p);
    }
    if let Some(run) = env("XDG_RUNTIME_DIR") {
        return Some(run.join("containers/auth.json"));
    }
    env("XDG_CONFIG_HOME")
        .or_else(|| home.map(|h| h.join(".config")))
        .map(|c| c.join("containers/auth.json"))
}

/// The key `login REGISTRY` writes under: the registry as given (`host[:port][/namespace]`),
/// without a URL scheme or trailing slash, as podman writes it.
pub fn login_key(registry: &str) -> String {
    let r = registry.trim();
    let r = r
        .strip_prefix("https://")
        .or_else(|| r.strip_prefix("http://"))
        .unwrap_or(r);
    r.trim_end_matches('/').to_string()
}

/// The registry a login key is for, named as references name it (`docker.io` for Docker
/// Hub's aliases): what [`Client::check_login`] is given.
pub fn registry_of_key(key: &str) -> String {
    let key = login_key(key);
    crate::reference::normalize_registry(key.split('/').next().unwrap_or(&key))
}

fn read_doc(path: &Path) -> Result<Map<String, Value>> {
    let bad = |detail: String| Error::AuthFile {
        path: path.to_path_buf(),
        detail,
    };
    match std::fs::read(path) {
        Ok(bytes) if bytes.iter().all(u8::is_ascii_whitespace) => Ok(Map::new()),
        Ok(bytes) => match serde_json::from_slice::<Value>(&bytes) {
            Ok(Value::Object(m)) => Ok(m),
            Ok(_) => Err(bad("not a JSON object".into())),
            Err(e) => Err(bad(e.to_string())),
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Map::new()),
        Err(e) => Err(bad(e.to_string())),
    }
}

/// Replaces `path` atomically: a temporary file (mode 0600) in the same directory, renamed
/// over it. The directory is created (mode 0700) if missing.
fn write_doc(path: &Path, doc: &Map<String, Value>) -> Result<()> {
    let bad = |detail: String| Error::AuthFile {
        path: path.to_path_buf(),
        detail,
    };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if !dir.exists() {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .map_err(|e| bad(format!("creating {}: {e}", dir.display())))?;
    }
    let mut text =
        serde_json::to_vec_pretty(&Value::Object(doc.clone())).map_err(|e| bad(e.to_string()))?;
    text.push(b'\n');
    // NamedTempFile is created 0600.
    let mut tmp = tempfile::Builder::new()
        .prefix(".auth.json.")
        .tempfile_in(&dir)
        .map_err(|e| {
            bad(format!(
                "creating a temporary file in {}: {e}",
                dir.display()
            ))
        })?;
    tmp.write_all(&text)
        .and_then(|_| tmp.as_file().sync_all())
        .map_err(|e| bad(format!("writing: {e}")))?;
    tmp.persist(path)
        .map_err(|e| bad(format!("replacing it: {}", e.error)))?;
    Ok(())
}

/// Records `username`/`password` for `registry` in the auth file at `path` as
/// `auths[KEY].auth = base64(user:pass)`, replacing that entry only.
pub fn store_login(path: &Path, registry: &str, username: &str, password: &str) -> Result<()> {
    let mut doc = read_doc(path)?;
    let auths = doc
        .entry("auths")
        .or_insert_with(|| Value::Object(Map::new()));
    let Value::Object(auths) = auths else {
        return Err(Error::AuthFile {
            path: path.to_path_buf(),
            detail: "\"auths\" is not an object".into(),
        });
    };
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"));
    let mut entry = Map::new();
    entry.insert("auth".into(), Value::String(auth));
    auths.insert(login_key(registry), Value::Object(entry));
    write_doc(path, &doc)
}

/// Removes `registry`'s entry (or, with `registry` `None`, every entry of `auths`) from the
/// auth file at `path`. Returns whether there was anything to remove; the file is not
/// touched when there was not.
pub fn remove_login(path: &Path, registry: Option<&str>) -> Result<bool> {
    if !path.exists() {
        return Ok(false);
    }
    let mut doc = read_doc(path)?;
    let Some(Value::Object(auths)) = doc.get_mut("auths") else {
        return Ok(false);
    };
    let removed = match registry {
        Some(r) => {
            let key = login_key(r);
            // Docker-style keys for the same registry count too.
            let variants = [
                key.clone(),
                format!("https://{key}"),
                format!("http://{key}"),
                format!("https://{key}/"),
            ];
            let before = auths.len();
            auths.retain(|k, _| !variants.contains(k));
            auths.len() != before
        }
        None => {
            let any = !auths.is_empty();
            auths.clear();
            any
        }
    };
    if removed {
        write_doc(path, &doc)?;
    }
    Ok(removed)
}

impl Client {
    /// Checks that this client's credentials for `registry` are accepted: `GET /v2/` with
    /// them, through the registry's own auth flow (Basic, or a bearer token fetched with
    /// them, as `docker login` does). A registry that asks for no authentication passes.
    /// Refused credentials are an [`Error::Unauthorized`] naming the registry.
    pub fn check_login(&self, registry: &str) -> Result<()> {
        let reg = self.registry(registry);
        self.with_retries(
            || {
                let ep = reg.endpoint(self)?;
                let unauthorized = |detail: String| Error::Unauthorized {
                    registry: registry.to_string(),
                    repository: String::new(),
                    realm: None,
                    detail,
                };
                let header = match reg.authorization(self, "", &[], true) {
                    Ok(Some(h)) => h,
                    // The registry asks for no authentication (its `/v2/` answered 200).
                    Ok(None) => return Ok(()),
                    Err(f) => return Err(f),
                };
                let url = ep.base.join("v2/").expect("constant path joins");
                let request = describe("GET", &url);
                let mut resp = self
                    .agent(ep.verify)
                    .get(url.as_str())
                    .header("authorization", &header)
                    .call()
                    .map_err(|e| transport(registry, &request, e))?;
                let status = resp.status().as_u16();
                match status {
                    200..=299 => Ok(()),
                    401 | 403 => {
                        let (_, detail) = error_body(&mut resp);
                        Err(Failure::fatal(unauthorized(format!(
                            "credentials refused: {detail}"
                        ))))
                    }
                    _ => {
                        let (_, detail) = error_body(&mut resp);
                        let e = http_error(registry, &request, Some(status), detail);
                        Err(match status {
                            408 | 429 | 500..=599 => Failure::transient(e),
                            _ => Failure::fatal(e),
                        })
                    }
                }
            },
            |_, _| {},
        )
    }
}

/// Whether `e` says the registry refused credentials (or wanted some).
pub fn is_unauthorized(e: &Error) -> bool {
    matches!(e.root(), Error::Unauthorized { .. })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn default_file_follows_podman() {
        let env_of = crate::auth::credentials::tests::env_of;
        let home = Some(Path::new("/home/u"));
        let e = env_of(&[
            ("REGISTRY_AUTH_FILE", "/a.json"),
            ("XDG_RUNTIME_DIR", "/run/user/1"),
        ]);
        assert_eq!(auth_file_from(&e, home), Some("/a.json".into()));
        let e = env_of(&[("XDG_RUNTIME_DIR", "/run/user/1")]);
        assert_eq!(
            auth_file_from(&e, home),
            Some("/run/user/1/containers/auth.json".into())
        );
        let e = env_of(&[]);
        assert_eq!(
            auth_file_from(&e, home),
            Some("/home/u/.config/containers/auth.json".into())
        );
        let e = env_of(&[("XDG_CONFIG_HOME", "/cfg")]);
        assert_eq!(
            auth_file_from(&e, home),
            Some("/cfg/containers/auth.json".into())
        );
    }

    #[test]
    fn store_and_remove_keep_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("new/containers/auth.json");
        std::fs::create_dir_all(dir.path().join("new")).unwrap();
        store_login(&path, "https://reg.example:5000/", "u", "p:w").unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let dmode = std::fs::metadata(path.parent().unwrap())
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(dmode, 0o700);
        // Other entries and unknown keys survive.
        std::fs::write(
            &path,
            r#"{"auths":{"other.example":{"auth":"eDp5","email":"e@x"},"reg.example:5000":{"auth":"old"}},"credHelpers":{"h.example":"pass"},"x":1}"#,
        )
        .unwrap();
        store_login(&path, "reg.example:5000", "u", "p:w").unwrap();
        let v: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(
            v["auths"]["reg.example:5000"]["auth"],
            base64::engine::general_purpose::STANDARD.encode("u:p:w")
        );
        assert_eq!(v["auths"]["other.example"]["email"], "e@x");
        assert_eq!(v["credHelpers"]["h.example"], "pass");
        assert_eq!(v["x"], 1);
        let mut c = crate::Credentials::none();
        c.add_file(&path).unwrap();
        assert_eq!(
            c.lookup("reg.example:5000", "a").unwrap(),
            Some(crate::Credential::basic("u", "p:w"))
        );
        assert!(remove_login(&path, Some("reg.example:5000")).unwrap());
        assert!(!remove_login(&path, Some("reg.example:5000")).unwrap());
        let v: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert!(v["auths"].get("reg.example:5000").is_none());
        assert_eq!(v["auths"]["other.example"]["auth"], "eDp5");
        assert!(remove_login(&path, None).unwrap());
        let v: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(v["auths"], serde_json::json!({}));
        assert_eq!(v["x"], 1);
        assert!(!remove_login(&dir.path().join("missing.json"), None).unwrap());
        // A broken file is reported, not overwritten.
        std::fs::write(&path, "{nope").unwrap();
        let e = store_login(&path, "r", "u", "p").unwrap_err().to_string();
        assert!(e.contains("auth.json"), "{e}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "{nope");
    }
}
