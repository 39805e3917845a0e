//! The build service's client side: the wire types of its HTTP JSON API and a blocking
//! client for them, shared by the `strata` CLI (`submit`, `builds`, `logs`, ...) and by
//! workers, which talk to the service only through this API.
//!
//! The types live here rather than in the server crate so that a CLI or a worker host does
//! not compile a database driver and an HTTP server; the server derives their OpenAPI
//! schemas through the `openapi` feature, so the served document describes exactly these
//! types.

mod admin;
mod rebuild;
mod settings;
mod types;
pub mod int;

pub use admin::*;
pub use rebuild::*;
pub use settings::{Settings, SettingsError};
pub use types::*;

use serde::de::DeserializeOwned;
use serde::Serialize;
use std::time::Duration;

/// What a call to the service can end in besides its answer.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The service answered with an error status and (usually) a reason.
    #[error("{server}: {status}: {message}")]
    Status { server: String, status: u16, message: String },
    #[error("{server}: {source}")]
    Transport { server: String, source: Box<ureq::Error> },
    #[error("{server}: unexpected answer: {message}")]
    Decode { server: String, message: String },
}

impl Error {
    /// The HTTP status, for an error the service answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Status { status, .. } => Some(*status),
            _ => None,
        }
    }
}

pub type Result<T> = std::result::Result<T, Error>;

/// A connection to one service with one token.
#[derive(Clone)]
pub struct Client {
    base: String,
    token: Option<String>,
    agent: ureq::Agent,
}

impl Client {
    /// `server` is the service's base URL (`http://host:port`); every call sends `token` as
    /// a bearer token.
    pub fn new(server: &str, token: Option<String>) -> Client {
        let agent = ureq::Agent::config_builder()
            // Error answers carry the reason in their body; they are read, not thrown.
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(120)))
            .build()
            .into();
        Client { base: server.trim_end_matches('/').to_string(), token, agent }
    }

    pub fn from_settings(s: &Settings) -> Client {
        Client::new(&s.server, s.token.clone())
    }

    pub fn server(&self) -> &str {
        &self.base
    }

    fn call<B: Serialize, T: DeserializeOwned>(&self, method: &str, path: &str, body: Option<&B>) -> Result<Option<T>> {
        let url = format!("{}{path}", self.base);
        let transport = |e: ureq::Error| Error::Transport { server: self.base.clone(), source: Box::new(e) };
        let auth = self.token.as_ref().map(|t| format!("Bearer {t}"));
        let mut resp = match (method, body) {
            ("GET", _) => {
                let mut r = self.agent.get(&url);
                if let Some(a) = &auth {
                    r = r.header("Authorization", a);
                }
                r.call().map_err(transport)?
            }
            ("DELETE", _) => {
                let mut r = self.agent.delete(&url);
                if let Some(a) = &auth {
                    r = r.header("Authorization", a);
                }
                r.call().map_err(transport)?
            }
            (_, body) => {
                let mut r = self.agent.post(&url);
                if let Some(a) = &auth {
                    r = r.header("Authorization", a);
                }
                match body {
                    Some(b) => {
                        let bytes = serde_json::to_vec(b).map_err(|e| Error::Decode { server: self.base.clone(), message: e.to_string() })?;
                        r.header("Content-Type", "application/json").send(&bytes[..]).map_err(transport)?
                    }
                    None => r.send_empty().map_err(transport)?,
                }
            }
        };
        let status = resp.status().as_u16();
        if status == 204 {
            return Ok(None);
        }
        let text = resp.body_mut().with_config().limit(64 << 20).read_to_string().map_err(transport)?;
        if !(200..300).contains(&status) {
            let message = serde_json::from_str::<ErrorBody>(&text).map(|e| e.error).unwrap_or(text);
            return Err(Error::Status { server: self.base.clone(), status, message });
        }
        serde_json::from_str(&text).map(Some).map_err(|e| Error::Decode { server: self.base.clone(), message: format!("{path}: {e}") })
    }

    fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        self.call::<(), T>("GET", path, None)?.ok_or_else(|| self.empty(path))
    }

    fn post<B: Serialize, T: DeserializeOwned>(&self, path: &str, body: &B) -> Result<T> {
        self.call("POST", path, Some(body))?.ok_or_else(|| self.empty(path))
    }

    fn empty(&self, path: &str) -> Error {
        Error::Decode { server: self.base.clone(), message: format!("{path}: no content") }
    }

    pub fn submit(&self, req: &SubmitRequest) -> Result<Build> {
        self.post("/api/builds", req)
    }

    pub fn builds(&self, filter: &BuildFilter) -> Result<Vec<Build>> {
        let mut q = Vec::new();
        if let Some(i) = &filter.image {
            q.push(format!("image={}", encode(i)));
        }
        if let Some(s) = &filter.state {
            q.push(format!("state={}", encode(s)));
        }
        if let Some(l) = filter.limit {
            q.push(format!("limit={l}"));
        }
        let query = if q.is_empty() { String::new() } else { format!("?{}", q.join("&")) };
        self.get(&format!("/api/builds{query}"))
    }

    pub fn build(&self, id: i64) -> Result<Build> {
        self.get(&format!("/api/builds/{id}"))
    }

    pub fn log(&self, id: i64, offset: u64) -> Result<LogChunk> {
        self.get(&format!("/api/builds/{id}/log?offset={offset}"))
    }

    pub fn cancel(&self, id: i64) -> Result<Build> {
        self.post(&format!("/api/builds/{id}/cancel"), &serde_json::json!({}))
    }

    /// Images whose current build (or, with `all`, any build) has a package matching
    /// `rpm` (`NAME` or `NAME OP EVR`, compared with rpm's rules).
    pub fn query_rpm(&self, rpm: &str, all: bool) -> Result<Vec<QueryHit>> {
        self.get(&format!("/api/query?rpm={}&all={all}", encode(rpm)))
    }

    pub fn create_token(&self, req: &TokenRequest) -> Result<TokenCreated> {
        self.post("/api/tokens", req)
    }

    /// A build to run, or `None` when the queue is empty.
    pub fn lease(&self, req: &LeaseRequest) -> Result<Option<Lease>> {
        self.call("POST", "/api/worker/lease", Some(req))
    }

    pub fn heartbeat(&self, id: i64, lease: &str) -> Result<Heartbeat> {
        self.post(&format!("/api/builds/{id}/heartbeat"), &LeaseRef { lease: lease.to_string() })
    }

    pub fn append_log(&self, id: i64, lease: &str, data: &str) -> Result<LogAppended> {
        self.post(&format!("/api/builds/{id}/log"), &LogAppend { lease: lease.to_string(), data: data.to_string() })
    }

    pub fn complete(&self, id: i64, req: &Complete) -> Result<Build> {
        self.post(&format!("/api/builds/{id}/complete"), req)
    }

    pub fn fail(&self, id: i64, req: &Fail) -> Result<Build> {
        self.post(&format!("/api/builds/{id}/fail"), req)
    }

    /// What a refresh would rebuild now, without building.
    pub fn rebuild_plan(&self) -> Result<RebuildPlan> {
        self.get("/api/rebuild-plan")
    }

    /// Checks every watched repository now and executes the plan (a webhook does the same).
    pub fn refresh(&self) -> Result<Refreshed> {
        self.post("/api/repos/refresh", &serde_json::json!({}))
    }

    pub fn repos(&self) -> Result<Vec<WatchedRepo>> {
        self.get("/api/repos")
    }

    /// Rebuild events, newest first.
    pub fn events(&self) -> Result<Vec<RebuildEvent>> {
        self.get("/api/events")
    }

    /// The registered images.
    pub fn tracked(&self) -> Result<Vec<TrackedImage>> {
        self.get("/api/images")
    }

    pub fn promote(&self, image: &str, req: &PromoteRequest) -> Result<Promoted> {
        self.post(&format!("/api/images/{}/promote", encode(image)), req)
    }

    pub fn tokens(&self) -> Result<Vec<TokenInfo>> {
        self.get("/api/tokens")
    }

    pub fn revoke_token(&self, id: i64) -> Result<TokenInfo> {
        self.call::<(), TokenInfo>("DELETE", &format!("/api/tokens/{id}"), None)?.ok_or_else(|| self.empty("/api/tokens"))
    }

    /// Audit entries at or after `since` (Unix seconds), oldest first.
    pub fn audit(&self, since: Option<i64>, limit: u32) -> Result<Vec<AuditEntry>> {
        let since = since.map(|s| format!("&since={s}")).unwrap_or_default();
        self.get(&format!("/api/audit?limit={limit}{since}"))
    }

    pub fn reload_policy(&self) -> Result<PolicyReloaded> {
        self.post("/api/policy/reload", &serde_json::json!({}))
    }
}

/// Percent-encodes a query value (everything but unreserved characters).
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) { (b as char).to_string() } else { format!("%{b:02X}") })
        .collect()
}
