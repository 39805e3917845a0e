//! Bearer tokens from a registry's token server (the docker token spec): `GET realm
//! ?service=S&scope=repository:NAME:ACTIONS...` with Basic credentials or anonymously, or
//! the OAuth2 `POST realm` refresh-token grant for an identity token.

use super::Credential;
use crate::client::failure::{self, Failure};
use crate::Error;
use base64::Engine as _;
use serde::Deserialize;
use std::io::Read;
use std::time::{Duration, Instant};

/// A token and when to stop using it.
#[derive(Debug, Clone)]
pub(crate) struct Token {
    pub value: String,
    pub expires: Instant,
}

impl Token {
    pub fn usable(&self) -> bool {
        Instant::now() < self.expires
    }
}

/// What the token request is for, to name it in errors.
pub(crate) struct TokenRequest<'a> {
    pub registry: &'a str,
    pub repository: &'a str,
    pub realm: &'a str,
    pub service: Option<&'a str>,
    pub scopes: &'a [String],
    pub credential: Option<&'a Credential>,
    /// Whether secrets may go to an `http://` realm (only for registries the caller marked
    /// insecure).
    pub plain_http_ok: bool,
}

#[derive(Deserialize)]
struct Answer {
    #[serde(default)]
    token: String,
    #[serde(default)]
    access_token: String,
    expires_in: Option<u64>,
}

/// The token spec's minimum lifetime, assumed when a server says less or nothing.
const MIN_LIFETIME: Duration = Duration::from_secs(60);
/// Tokens are renewed this long before they expire, so one never lapses mid-request.
const MARGIN: Duration = Duration::from_secs(10);

pub(crate) fn fetch(agent: &ureq::Agent, r: &TokenRequest<'_>) -> Result<Token, Failure> {
    let unauthorized = |detail: String| Error::Unauthorized {
        registry: r.registry.to_string(),
        repository: r.repository.to_string(),
        realm: Some(r.realm.to_string()),
        detail,
    };
    let mut url = url::Url::parse(r.realm)
        .map_err(|e| unauthorized(format!("the registry's token realm is not a URL: {e}")))?;
    if url.scheme() == "http" && r.credential.is_some() && !r.plain_http_ok {
        return Err(Failure::fatal(unauthorized(
            "refusing to send credentials to a plain-HTTP token realm of a registry not marked insecure"
                .into(),
        )));
    }
    let request = format!("token request to {}", r.realm);
    let sent = match r.credential {
        Some(Credential::IdentityToken(refresh)) => {
            let mut form = url::form_urlencoded::Serializer::new(String::new());
            form.append_pair("grant_type", "refresh_token")
                .append_pair("refresh_token", refresh)
                .append_pair("client_id", "strata")
                .append_pair("scope", &r.scopes.join(" "));
            if let Some(s) = r.service {
                form.append_pair("service", s);
            }
            agent
                .post(url.as_str())
                .header("content-type", "application/x-www-form-urlencoded")
                .send(form.finish())
        }
        cred => {
            {
                let mut q = url.query_pairs_mut();
                if let Some(s) = r.service {
                    q.append_pair("service", s);
                }
                for s in r.scopes {
                    q.append_pair("scope", s);
                }
                if let Some(Credential::Basic { username, .. }) = cred {
                    q.append_pair("account", username);
                }
            }
            let mut req = agent.get(url.as_str());
            if let Some(Credential::Basic { username, password }) = cred {
                req = req.header("authorization", basic_header(username, password));
            }
            req.call()
        }
    };
    let mut resp = sent.map_err(|e| failure::transport(r.registry, &request, e))?;
    let status = resp.status().as_u16();
    if status != 200 {
        let (_, detail) = failure::error_body(&mut resp);
        let who = match r.credential {
            Some(Credential::Basic { username, .. }) => format!("user {username:?}"),
            Some(_) => "the stored token".to_string(),
            None => "anonymous access (no credentials for this registry)".to_string(),
        };
        let error = unauthorized(format!(
            "the token server refused {who} for {}: {detail}",
            r.scopes.join(" ")
        ));
        return Err(if status == 429 || status >= 500 {
            Failure::Transient {
                error: Box::new(error),
                retry_after: failure::retry_after(&resp),
            }
        } else {
            Failure::fatal(error)
        });
    }
    let mut body = Vec::new();
    resp.body_mut()
        .as_reader()
        .take(1 << 20)
        .read_to_end(&mut body)
        .map_err(|e| failure::io_failure(r.registry, &request, &e, "reading the token"))?;
    let a: Answer = serde_json::from_slice(&body)
        .map_err(|e| unauthorized(format!("unreadable token server answer: {e}")))?;
    let value = if a.token.is_empty() {
        a.access_token
    } else {
        a.token
    };
    if value.is_empty() {
        return Err(Failure::fatal(unauthorized(
            "the token server answered without a token".into(),
        )));
    }
    let lifetime = a
        .expires_in
        .map_or(MIN_LIFETIME, Duration::from_secs)
        .max(MIN_LIFETIME);
    Ok(Token {
        value,
        expires: Instant::now() + lifetime - MARGIN,
    })
}

pub(crate) fn basic_header(username: &str, password: &str) -> String {
    let raw = format!("{username}:{password}");
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(raw)
    )
}
