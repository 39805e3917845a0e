//! Shared helpers of the end-to-end tests: a real `docker-registry` (distribution) on a
//! free port, skopeo, small images built in a store, and the client configured for them.
//! Missing tools make tests fail with the apt package to install, never skip.

#![allow(dead_code)]

pub mod proxy;
pub mod stub;
pub mod token;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use strata_oci::compress::Compression;
use strata_oci::config::{build_config, ConfigInput, HistoryEntry, ImageSettings};
use strata_oci::layer::{Meta, WriteOptions};
use strata_oci::oci_spec::image::Descriptor;
use strata_oci::reference::ImageRef;
use strata_oci::store::{NewImage, Store};
use strata_registry::{Client, ClientConfig, Credentials, RetryPolicy};

/// Panics, naming the Debian package, when `program` is not installed.
pub fn require(program: &str, package: &str) {
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(program).is_file()))
        .unwrap_or(false);
    assert!(
        found,
        "{program} is not installed; these tests need it: apt-get install {package}"
    );
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// How the registry authenticates.
pub enum Auth {
    None,
    /// htpasswd (bcrypt) with these users.
    Htpasswd(Vec<(String, String)>),
    /// Docker token auth: the token server's realm, and the certificate its tokens carry.
    Token {
        realm: String,
        cert: PathBuf,
    },
}

pub const TOKEN_SERVICE: &str = "strata-test-registry";
pub const TOKEN_ISSUER: &str = "strata-test-issuer";

/// A `docker-registry serve` process with its storage in a temporary directory; stopped
/// (killed and reaped) on drop.
pub struct Registry {
    pub dir: tempfile::TempDir,
    pub port: u16,
    child: Child,
}

impl Registry {
    pub fn start(auth: Auth) -> Registry {
        require("docker-registry", "docker-registry");
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let auth_yaml = match auth {
            Auth::None => String::new(),
            Auth::Htpasswd(users) => {
                require("htpasswd", "apache2-utils");
                let file = dir.path().join("htpasswd");
                let mut lines = String::new();
                for (u, p) in users {
                    let out = Command::new("htpasswd")
                        .args(["-Bbn", &u, &p])
                        .output()
                        .unwrap();
                    assert!(out.status.success(), "htpasswd failed");
                    lines.push_str(String::from_utf8(out.stdout).unwrap().trim());
                    lines.push('\n');
                }
                std::fs::write(&file, lines).unwrap();
                format!(
                    "auth:\n  htpasswd:\n    realm: strata-test\n    path: {}\n",
                    file.display()
                )
            }
            Auth::Token { realm, cert } => format!(
                "auth:\n  token:\n    realm: {realm}\n    service: {TOKEN_SERVICE}\n    issuer: {TOKEN_ISSUER}\n    rootcertbundle: {}\n",
                cert.display()
            ),
        };
        let config = format!(
            "version: 0.1\nlog:\n  level: info\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n{auth_yaml}",
            dir.path().join("data").display()
        );
        let config_path = dir.path().join("config.yml");
        std::fs::write(&config_path, config).unwrap();
        let log = std::fs::File::create(dir.path().join("registry.log")).unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            // The Debian unit sets this; without it distribution may try /etc paths.
            .env("REGISTRY_CONFIGURATION_PATH", &config_path)
            .spawn()
            .expect("starting docker-registry");
        let mut r = Registry { dir, port, child };
        r.wait_ready();
        r
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("docker-registry exited ({status}):\n{}", self.log());
            }
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "docker-registry did not listen on {}:\n{}",
            self.port,
            self.log()
        );
    }

    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn log(&self) -> String {
        let mut s = String::new();
        if let Ok(mut f) = std::fs::File::open(self.dir.path().join("registry.log")) {
            let _ = f.read_to_string(&mut s);
        }
        s
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Retries shortened so failure tests take milliseconds.
pub fn quick_retry() -> RetryPolicy {
    RetryPolicy {
        backoff: vec![Duration::from_millis(10), Duration::from_millis(20)],
        max_retry_after: Duration::from_secs(3),
    }
}

/// A client that treats `host` as insecure (plain HTTP), with quick retries.
pub fn client(host: &str, credentials: Credentials) -> Client {
    let mut config = ClientConfig::default().insecure(host);
    config.credentials = credentials;
    config.retry = quick_retry();
    Client::new(config)
}

/// Deterministic bytes that do not compress, so a layer has the size we ask for.
pub fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// Builds a one-layer image (`etc/content` plus `files`) for `arch` in `store`, tags it
/// `tag`, and returns its manifest descriptor.
pub fn build_image(store: &Store, tag: &str, arch: &str, files: &[(&str, Vec<u8>)]) -> Descriptor {
    let mut b = store.new_layer();
    let content = format!("{tag} for {arch}\n");
    b.add_file(
        "etc/content",
        &Meta::new(0o644),
        content.len() as u64,
        content.as_bytes(),
    )
    .unwrap();
    for (path, data) in files {
        b.add_file(*path, &Meta::new(0o644), data.len() as u64, &data[..])
            .unwrap();
    }
    let layer = store
        .put_layer(
            b,
            WriteOptions {
                compression: Compression::default(),
                threads: 2,
            },
        )
        .unwrap();
    let input = ConfigInput {
        architecture: arch.into(),
        os: "linux".into(),
        variant: None,
        created: Some(0),
        history: vec![HistoryEntry {
            created_by: Some(format!("test {tag}")),
            ..Default::default()
        }],
        diff_ids: vec![layer.diff_id.clone()],
    };
    let settings = ImageSettings {
        cmd: Some(vec!["/bin/true".into()]),
        ..ImageSettings::default()
    };
    let image = NewImage {
        config: build_config(&settings, &input).unwrap(),
        layers: vec![layer.descriptor()],
        annotations: BTreeMap::new(),
    };
    store
        .put_image(&image, &[ImageRef::parse(tag).unwrap()])
        .unwrap()
}

pub fn new_store(dir: &Path, name: &str) -> Store {
    Store::open_or_create(dir.join(name)).unwrap()
}

/// `skopeo inspect --tls-verify=false docker://HOST/REPO:TAG`'s `Digest`.
pub fn skopeo_digest(image: &str) -> String {
    let v = skopeo_json(&[
        "inspect",
        "--tls-verify=false",
        &format!("docker://{image}"),
    ]);
    v["Digest"].as_str().unwrap().to_string()
}

pub fn skopeo_json(args: &[&str]) -> serde_json::Value {
    let out = skopeo(args);
    serde_json::from_slice(&out).unwrap_or_else(|e| panic!("skopeo {args:?}: {e}"))
}

/// Runs skopeo and returns stdout; panics with its stderr on failure.
pub fn skopeo(args: &[&str]) -> Vec<u8> {
    require("skopeo", "skopeo");
    let out = Command::new("skopeo")
        .arg("--insecure-policy")
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "skopeo {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Files of a store's `.tmp` (a refused download must leave none behind).
pub fn tmp_files(store: &Store) -> Vec<String> {
    std::fs::read_dir(store.root().join(".tmp"))
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// One HTTP/1.0 request to `host` (`127.0.0.1:PORT`) on a fresh connection, past any
/// client logic: the status and the body. For looking at a registry from the outside.
pub fn http(host: &str, method: &str, path: &str, headers: &[(&str, &str)]) -> (u16, Vec<u8>) {
    let mut conn = TcpStream::connect(host).unwrap();
    let mut req = format!("{method} {path} HTTP/1.0\r\nHost: {host}\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    conn.write_all(req.as_bytes()).unwrap();
    let mut raw = Vec::new();
    conn.read_to_end(&mut raw).unwrap();
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").expect("a complete response head");
    let head = String::from_utf8_lossy(&raw[..split]);
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("{method} {path}: {head}"));
    (status, raw[split + 4..].to_vec())
}
