//! What a client learns about one registry and keeps: the scheme it answers on, how it
//! wants to be authenticated, and the bearer tokens it handed out (per repository and
//! action set).

use super::failure::{describe, error_body, http_error, retry_after, transport, Failure};
use super::Client;
use crate::auth::challenge::{self, Challenge};
use crate::auth::token::{self, basic_header, Token, TokenRequest};
use crate::auth::Credential;
use crate::reference::api_host;
use crate::Error;
use std::collections::HashMap;
use std::sync::Mutex;
use url::Url;

/// How to reach a registry once its `/v2/` answered.
#[derive(Debug, Clone)]
pub(crate) struct Endpoint {
    /// `https://host[:port]/` or, for insecure registries without TLS, `http://...`.
    pub base: Url,
    /// Whether TLS certificates are verified (false for insecure registries).
    pub verify: bool,
}

/// The auth scheme a registry asked for.
#[derive(Debug, Clone)]
pub(crate) enum AuthScheme {
    Anonymous,
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
    },
}

pub(crate) struct RegistryState {
    pub name: String,
    host: String,
    pub insecure: bool,
    endpoint: Mutex<Option<Endpoint>>,
    auth: Mutex<AuthScheme>,
    /// Keyed by the sorted, space-joined scopes the token was asked for.
    tokens: Mutex<HashMap<String, Token>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl RegistryState {
    pub fn new(name: &str, insecure: bool) -> RegistryState {
        RegistryState {
            name: name.to_string(),
            host: api_host(name).to_string(),
            insecure,
            endpoint: Mutex::new(None),
            auth: Mutex::new(AuthScheme::Anonymous),
            tokens: Mutex::new(HashMap::new()),
        }
    }

    /// The endpoint, pinging `/v2/` the first time. A failed ping is not remembered, so
    /// the next attempt pings again.
    pub fn endpoint(&self, client: &Client) -> Result<Endpoint, Failure> {
        let mut slot = lock(&self.endpoint);
        if let Some(e) = &*slot {
            return Ok(e.clone());
        }
        let e = self.ping(client)?;
        *slot = Some(e.clone());
        Ok(e)
    }

    /// `GET /v2/`: the registry's scheme and auth challenge, before any request whose body
    /// would have to be sent twice. Insecure registries are tried over HTTPS first (without
    /// verification), then plain HTTP, as podman does with `--tls-verify=false`.
    fn ping(&self, client: &Client) -> Result<Endpoint, Failure> {
        let schemes: &[(&str, bool)] = if self.insecure {
            &[("https", false), ("http", false)]
        } else {
            &[("https", true)]
        };
        let mut https_failure: Option<String> = None;
        for &(scheme, verify) in schemes {
            let base = Url::parse(&format!("{scheme}://{}/", self.host)).map_err(|e| {
                Failure::fatal(http_error(
                    &self.name,
                    &self.host,
                    None,
                    format!("bad registry host: {e}"),
                ))
            })?;
            let url = base.join("v2/").expect("constant path joins");
            let request = describe("GET", &url);
            let mut resp = match client.agent(verify).get(url.as_str()).call() {
                Ok(r) => r,
                Err(e) => {
                    let f = transport(&self.name, &request, e);
                    if scheme == "https" && self.insecure {
                        https_failure = Some(failure_text(&f));
                        continue;
                    }
                    return Err(match (f, &https_failure) {
                        (Failure::Transient { error, retry_after }, Some(h)) => {
                            Failure::Transient {
                                error: Box::new(http_error(
                                    &self.name,
                                    &request,
                                    None,
                                    format!("{}; over HTTPS: {h}", inner_detail(&error)),
                                )),
                                retry_after,
                            }
                        }
                        (f, _) => f,
                    });
                }
            };
            let status = resp.status().as_u16();
            match status {
                200 => *lock(&self.auth) = AuthScheme::Anonymous,
                401 => *lock(&self.auth) = scheme_of(&challenges(&resp)),
                408 | 429 | 500..=599 => {
                    let (_, detail) = error_body(&mut resp);
                    return Err(Failure::Transient {
                        error: Box::new(http_error(&self.name, &request, Some(status), detail)),
                        retry_after: retry_after(&resp),
                    });
                }
                _ => {
                    let (_, detail) = error_body(&mut resp);
                    return Err(Failure::fatal(http_error(
                        &self.name,
                        &request,
                        Some(status),
                        format!("not an OCI distribution registry ({detail})"),
                    )));
                }
            }
            return Ok(Endpoint { base, verify });
        }
        unreachable!("the last scheme always returns")
    }

    /// Records the scheme of a 401 that arrived after the ping said "anonymous" (a
    /// registry may allow `/v2/` but protect repositories).
    pub fn learn(&self, challenges: &[Challenge]) {
        *lock(&self.auth) = scheme_of(challenges);
    }

    pub fn auth_scheme(&self) -> AuthScheme {
        lock(&self.auth).clone()
    }

    /// The `Authorization` header for a request needing `scopes`, or none. `fresh`
    /// bypasses the token cache (the registry just refused the cached token).
    pub fn authorization(
        &self,
        client: &Client,
        repository: &str,
        scopes: &[String],
        fresh: bool,
    ) -> Result<Option<String>, Failure> {
        let credential = client.config().credentials.lookup(&self.name, repository)?;
        match self.auth_scheme() {
            AuthScheme::Anonymous => Ok(None),
            AuthScheme::Basic => Ok(match &credential {
                Some(Credential::Basic { username, password }) => {
                    Some(basic_header(username, password))
                }
                Some(Credential::RegistryToken(t)) => Some(format!("Bearer {t}")),
                _ => None,
            }),
            AuthScheme::Bearer { realm, service } => {
                if let Some(Credential::RegistryToken(t)) = &credential {
                    return Ok(Some(format!("Bearer {t}")));
                }
                let mut sorted = scopes.to_vec();
                sorted.sort();
                sorted.dedup();
                let key = sorted.join(" ");
                // Held across the fetch: concurrent blob requests for one repository then
                // share one token request instead of each asking.
                let mut tokens = lock(&self.tokens);
                if !fresh {
                    if let Some(t) = tokens.get(&key).filter(|t| t.usable()) {
                        return Ok(Some(format!("Bearer {}", t.value)));
                    }
                }
                let realm_host = Url::parse(&realm).ok().and_then(|u| {
                    u.host_str().map(|h| {
                        format!(
                            "{h}{}",
                            u.port().map(|p| format!(":{p}")).unwrap_or_default()
                        )
                    })
                });
                // The realm of an insecure registry on its own host may have the same
                // self-signed certificate; any other realm is verified.
                let verify = !(self.insecure && realm_host.as_deref() == Some(self.host.as_str()));
                let t = token::fetch(
                    client.agent(verify),
                    &TokenRequest {
                        registry: &self.name,
                        repository,
                        realm: &realm,
                        service: service.as_deref(),
                        scopes: &sorted,
                        credential: credential.as_ref(),
                        plain_http_ok: self.insecure,
                    },
                )?;
                let header = format!("Bearer {}", t.value);
                tokens.insert(key, t);
                Ok(Some(header))
            }
        }
    }
}

pub(crate) fn challenges(resp: &ureq::http::Response<ureq::Body>) -> Vec<Challenge> {
    resp.headers()
        .get_all("www-authenticate")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(challenge::parse)
        .collect()
}

/// Bearer when offered (it carries per-repository scopes), else Basic.
fn scheme_of(challenges: &[Challenge]) -> AuthScheme {
    if let Some(c) = challenges
        .iter()
        .find(|c| c.scheme == "bearer" && c.realm().is_some())
    {
        return AuthScheme::Bearer {
            realm: c.realm().unwrap_or_default().to_string(),
            service: c.param("service").map(str::to_string),
        };
    }
    AuthScheme::Basic
}

fn failure_text(f: &Failure) -> String {
    match f {
        Failure::Transient { error, .. } | Failure::Fatal(error) => inner_detail(error),
    }
}

fn inner_detail(e: &Error) -> String {
    match e {
        Error::Http { detail, .. } => detail.clone(),
        other => other.to_string(),
    }
}
