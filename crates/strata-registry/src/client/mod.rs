//! The client: configuration, HTTP agents, and per-registry state (scheme, auth scheme,
//! tokens) shared by every pull and push it runs.

mod endpoint;
mod exchange;
pub(crate) mod failure;

pub(crate) use exchange::{Access, Body, Repo, Request};
pub(crate) use failure::{Failure, Subject};

use crate::auth::Credentials;
use endpoint::RegistryState;
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

/// How a [`Client`] reaches registries.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Who we are to each registry; anonymous where nothing matches.
    pub credentials: Credentials,
    /// Registries (`host[:port]` as references name them) contacted like podman's
    /// `--tls-verify=false` or an `insecure = true` entry of registries.conf: HTTPS without
    /// certificate verification, falling back to plain HTTP when the registry does not
    /// speak TLS. Everything else needs HTTPS with a certificate the system trusts.
    ///
    /// Docker also treats `127.0.0.0/8` as insecure implicitly; podman does not, and
    /// neither does this client: plain HTTP is always the caller's explicit choice.
    pub insecure_registries: BTreeSet<String>,
    /// Retries of transient failures (connection errors, timeouts, 5xx, 429, a body cut
    /// short).
    pub retry: RetryPolicy,
    pub user_agent: String,
    /// Certificate authorities trusted besides the system's (DER), for registries with a
    /// private CA (`--cert-dir`).
    pub ca_certs: Vec<Vec<u8>>,
}

impl Default for ClientConfig {
    fn default() -> ClientConfig {
        ClientConfig {
            credentials: Credentials::none(),
            insecure_registries: BTreeSet::new(),
            retry: RetryPolicy::default(),
            user_agent: concat!("strata/", env!("CARGO_PKG_VERSION")).to_string(),
            ca_certs: Vec::new(),
        }
    }
}

impl ClientConfig {
    /// Marks a registry insecure; see [`ClientConfig::insecure_registries`].
    pub fn insecure(mut self, registry: &str) -> ClientConfig {
        self.insecure_registries.insert(registry.to_string());
        self
    }

    /// Trusts the CA certificates in `dir`'s `*.crt` files (PEM) besides the system's, as
    /// podman's and skopeo's `--cert-dir` do. A folder without one is an error: a typo would
    /// otherwise surface later as an unknown-issuer failure.
    pub fn cert_dir(mut self, dir: &std::path::Path) -> std::result::Result<ClientConfig, String> {
        let entries = std::fs::read_dir(dir).map_err(|e| format!("--cert-dir {}: {e}", dir.display()))?;
        let mut files: Vec<std::path::PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.extension().is_some_and(|x| x == "crt")).collect();
        files.sort();
        let before = self.ca_certs.len();
        for f in &files {
            let pem = std::fs::read(f).map_err(|e| format!("{}: {e}", f.display()))?;
            for item in ureq::tls::parse_pem(&pem) {
                if let ureq::tls::PemItem::Certificate(c) = item.map_err(|e| format!("{}: {e}", f.display()))? {
                    self.ca_certs.push(c.der().to_vec());
                }
            }
        }
        if self.ca_certs.len() == before {
            return Err(format!("--cert-dir {}: no CA certificate in a *.crt file there", dir.display()));
        }
        Ok(self)
    }
}

/// When to try again.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Pause before retry `i`; its length is the number of retries.
    pub backoff: Vec<Duration>,
    /// The longest a `Retry-After` header may make us wait (a registry asking for an hour
    /// is better reported than obeyed).
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> RetryPolicy {
        RetryPolicy {
            backoff: vec![
                Duration::from_millis(500),
                Duration::from_secs(2),
                Duration::from_secs(5),
            ],
            max_retry_after: Duration::from_secs(60),
        }
    }
}

/// A registry client. One per process is enough: it pools connections and caches each
/// registry's scheme, auth scheme and tokens (per repository and action) across calls.
/// It is `Sync`; pulls and pushes may run on several threads at once.
pub struct Client {
    config: ClientConfig,
    verified: OnceLock<ureq::Agent>,
    unverified: OnceLock<ureq::Agent>,
    registries: Mutex<HashMap<String, Arc<RegistryState>>>,
}

/// Connect timeout: long enough for a slow registry, short enough to report a dead one.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// A registry silent this long between two reads is stalled. Per read, so a big layer
/// over a slow link still completes.
const READ_TIMEOUT: Duration = Duration::from_secs(60);
/// Headers after a request body: a registry may verify a large upload before answering.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(300);

impl Client {
    pub fn new(config: ClientConfig) -> Client {
        Client {
            config,
            verified: OnceLock::new(),
            unverified: OnceLock::new(),
            registries: Mutex::new(HashMap::new()),
        }
    }

    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    pub(crate) fn registry(&self, name: &str) -> Arc<RegistryState> {
        let mut map = self.registries.lock().unwrap_or_else(|p| p.into_inner());
        map.entry(name.to_string())
            .or_insert_with(|| {
                Arc::new(RegistryState::new(
                    name,
                    self.config.insecure_registries.contains(name),
                ))
            })
            .clone()
    }

    /// The agent verifying certificates against the system roots (built on first use:
    /// loading the trust store costs a few milliseconds).
    pub(crate) fn agent(&self, verify: bool) -> &ureq::Agent {
        let cell = if verify {
            &self.verified
        } else {
            &self.unverified
        };
        cell.get_or_init(|| {
            let tls = ureq::tls::TlsConfig::builder()
                .root_certs(if verify {
                    root_certs(&self.config.ca_certs)
                } else {
                    ureq::tls::RootCerts::WebPki
                })
                .disable_verification(!verify)
                .build();
            let config = ureq::Agent::config_builder()
                .timeout_connect(Some(CONNECT_TIMEOUT))
                .timeout_recv_response(Some(RESPONSE_TIMEOUT))
                .timeout_per_read(Some(READ_TIMEOUT))
                // Statuses are classified by us (retry 5xx, map 404 to "unknown"), not
                // turned into opaque errors.
                .http_status_as_error(false)
                .tls_config(tls)
                .user_agent(self.config.user_agent.as_str())
                .build();
            ureq::Agent::new_with_config(config)
        })
    }
}

/// The system trust store when it has certificates (corporate CAs live there), else the
/// webpki roots compiled into ureq, as strata-repo does; and the caller's own CAs.
fn root_certs(extra: &[Vec<u8>]) -> ureq::tls::RootCerts {
    let found = rustls_native_certs::load_native_certs();
    if found.certs.is_empty() && extra.is_empty() {
        return ureq::tls::RootCerts::WebPki;
    }
    let certs: Vec<_> = found
        .certs
        .iter()
        .map(|c| ureq::tls::Certificate::from_der(c.as_ref()).to_owned())
        .chain(extra.iter().map(|d| ureq::tls::Certificate::from_der(d).to_owned()))
        .collect();
    ureq::tls::RootCerts::new_with_certs(&certs)
}
