//! The strata build service: an HTTP JSON API under `/api/` (its OpenAPI 3 document, made
//! from the handlers' annotations, at `/api/openapi.json`), the database that holds the
//! queue, leases, tokens, build records, events and logs (SQLite in the data dir by
//! default, PostgreSQL for several servers), and the reaper that returns builds of
//! vanished workers to the queue.
//!
//! Workers are not part of this crate: they are clients of the API (`strata-worker`),
//! the in-process one of `strata serve` included, so one code path runs every build.

mod admin;
mod api;
pub mod audit;
mod auth;
pub mod db;
mod git;
pub mod listing;
pub mod mirror;
mod query;
pub mod rebuild;
mod source;
mod web;

pub use api::{valid_image_name, ROLES};
pub use strata_policy::Policy;

use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::{Json, Router};
use sha2::{Digest, Sha256};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use utoipa::OpenApi;

/// The most log a build keeps.
pub const MAX_LOG: i64 = 64 << 20;
/// The largest request body (a log append is the largest legitimate one).
const MAX_BODY: usize = 4 << 20;

#[derive(Debug, Clone)]
pub struct Config {
    pub listen: String,
    /// `sqlite://...` or `postgres://...`; `None`: SQLite in `data_dir`.
    pub database: Option<String>,
    pub data_dir: PathBuf,
    /// Where workers push: `HOST[:PORT][/PREFIX]`.
    pub registry: Option<String>,
    pub insecure_registry: bool,
    pub max_attempts: i64,
    pub heartbeat_s: i64,
    pub default_timeout_s: i64,
    pub max_timeout_s: i64,
    /// How often watched repositories are checked (0: only on refresh or webhook).
    pub repo_interval_s: i64,
    /// The floating tag rebuilds are pushed to.
    pub rebuild_tag: String,
    /// Reading (the web UI's pages and the API's GETs) needs no token.
    pub anonymous_read: bool,
    /// The policy file (`--policy`), read at start and on reload.
    pub policy_file: Option<PathBuf>,
    /// Publish every successful non-scratch build to this mirror tree (`--mirror`).
    pub mirror: Option<mirror::MirrorConfig>,
}

impl Config {
    pub fn new(data_dir: PathBuf) -> Config {
        Config {
            listen: "127.0.0.1:8750".into(),
            database: None,
            data_dir,
            registry: None,
            insecure_registry: false,
            max_attempts: 3,
            heartbeat_s: 5,
            default_timeout_s: 3600,
            max_timeout_s: 6 * 3600,
            repo_interval_s: 300,
            rebuild_tag: "testing".into(),
            anonymous_read: false,
            policy_file: None,
            mirror: None,
        }
    }

    /// A lease lasts three heartbeats: one lost request does not cost a build.
    pub fn lease_ms(&self) -> i64 {
        self.heartbeat_s * 3000
    }

    pub fn database_url(&self) -> String {
        self.database.clone().unwrap_or_else(|| format!("sqlite://{}?mode=rwc", self.data_dir.join("strata.db").display()))
    }
}

#[derive(Clone)]
pub struct AppState {
    pub db: db::Db,
    pub config: Arc<Config>,
    pub tokens: Arc<TokenCache>,
    pub lists: Arc<listing::ListCache>,
    /// Woken whenever a build is queued here (submitted or requeued), for workers waiting
    /// in a lease request. Other servers' submissions are seen by the waiters' periodic
    /// retry.
    pub queued: Arc<tokio::sync::Notify>,
    /// Set when the server stops: waiting lease requests answer at once (and lease
    /// nothing), so they do not hold the shutdown up.
    pub closing: Arc<std::sync::atomic::AtomicBool>,
    /// One refresh (check, plan, execute) at a time in this server.
    pub refreshing: Arc<tokio::sync::Mutex<()>>,
    /// The policy in force; replaced whole by a reload that validates.
    pub policy: Arc<std::sync::RwLock<Arc<Policy>>>,
}

impl AppState {
    /// The policy in force now.
    pub fn policy(&self) -> Arc<Policy> {
        self.policy.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Reads the policy file again; on any error the old policy stays in force.
    pub fn reload_policy(&self) -> Result<strata_client::PolicyReloaded, strata_policy::LoadError> {
        let policy = match &self.config.policy_file {
            Some(path) => Policy::load(path)?,
            None => Policy::default(),
        };
        let image_rules = policy.image_rules();
        *self.policy.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(policy);
        // Roles may have changed: tokens are looked up again.
        self.tokens.clear();
        Ok(strata_client::PolicyReloaded { file: self.config.policy_file.as_ref().map(|p| p.display().to_string()), image_rules })
    }
}

/// Tokens the database confirmed in the last [`TokenCache::TTL`]: a status poll checks
/// its token without a database round trip. Only valid tokens are kept (an attacker's
/// random ones never are), so the map is no bigger than the token table; a token's role
/// changing (or, with the policy issue, its revocation) reaches every server within the
/// TTL.
#[derive(Default)]
pub struct TokenCache(std::sync::Mutex<std::collections::HashMap<String, (String, String, std::time::Instant)>>);

impl TokenCache {
    pub const TTL: std::time::Duration = std::time::Duration::from_secs(10);

    /// The (name, role) of the token with this hash, if confirmed within the TTL.
    pub fn get(&self, hash: &str) -> Option<(String, String)> {
        let map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        map.get(hash).filter(|(_, _, at)| at.elapsed() < Self::TTL).map(|(n, r, _)| (n.clone(), r.clone()))
    }

    pub fn put(&self, hash: &str, name: &str, role: &str) {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        map.retain(|_, (_, _, at)| at.elapsed() < Self::TTL);
        map.insert(hash.to_string(), (name.to_string(), role.to_string(), std::time::Instant::now()));
    }

    /// Forgets everything (this server changed a token).
    pub fn clear(&self) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }
}

/// A random secret (tokens, leases): 32 bytes from the OS, hex.
pub fn new_secret() -> String {
    let mut b = [0u8; 32];
    getrandom::fill(&mut b).expect("the OS random source");
    format!("strata_{}", hex::encode(b))
}

/// What the database stores instead of a secret.
pub fn hash_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

#[derive(OpenApi)]
#[openapi(
    info(title = "strata build service", description = "Builds container images from git sources (strata specs or Dockerfiles) and pushes them to a registry."),
    paths(api::submit, api::list, api::get, api::read_log, api::cancel, api::create_token, api::lease, api::heartbeat, api::append_log, api::complete, api::fail, api::query,
        rebuild::api::plan, rebuild::api::refresh, rebuild::api::repos, rebuild::api::events, rebuild::api::images, rebuild::api::promote,
        admin::tokens, admin::revoke, admin::reload, admin::audit),
    modifiers(&Bearer, &CommonErrors)
)]
pub struct ApiDoc;

struct Bearer;

impl utoipa::Modify for Bearer {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme("bearer", SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()));
    }
}

/// The answers any operation can give before its handler runs, added to each: 400 for a
/// path or query parameter or a body that does not parse (or a value the handler refuses),
/// and for a body, 413 (larger than the limit) and 415 (not sent as application/json).
struct CommonErrors;

impl utoipa::Modify for CommonErrors {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
        let error = |what: &str| {
            ResponseBuilder::new().description(what).content("application/json", ContentBuilder::new().schema(Some(Ref::from_schema_name("ErrorBody"))).build()).build()
        };
        for item in doc.paths.paths.values_mut() {
            for op in [&mut item.get, &mut item.post, &mut item.put, &mut item.delete, &mut item.patch].into_iter().flatten() {
                let has_params = op.parameters.as_ref().is_some_and(|p| !p.is_empty());
                let has_body = op.request_body.is_some();
                let r = &mut op.responses.responses;
                if has_params || has_body {
                    r.entry("400".into()).or_insert_with(|| error("a parameter or the body does not parse or is refused").into());
                }
                if has_body {
                    r.entry("413".into()).or_insert_with(|| error("the body is larger than the limit").into());
                    r.entry("415".into()).or_insert_with(|| error("the body is not sent as application/json").into());
                }
            }
        }
    }
}

async fn openapi() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .merge(web::router())
        .route("/api/openapi.json", get(openapi))
        .route("/api/builds", post(api::submit).get(api::list))
        .route("/api/builds/{id}", get(api::get))
        .route("/api/builds/{id}/log", get(api::read_log).post(api::append_log))
        .route("/api/builds/{id}/cancel", post(api::cancel))
        .route("/api/builds/{id}/heartbeat", post(api::heartbeat))
        .route("/api/builds/{id}/complete", post(api::complete))
        .route("/api/builds/{id}/fail", post(api::fail))
        .route("/api/tokens", post(api::create_token).get(admin::tokens))
        .route("/api/tokens/{id}", axum::routing::delete(admin::revoke))
        .route("/api/policy/reload", post(admin::reload))
        .route("/api/audit", get(admin::audit))
        .route("/api/worker/lease", post(api::lease))
        .route("/api/query", get(api::query))
        .route("/api/rebuild-plan", get(rebuild::api::plan))
        .route("/api/repos", get(rebuild::api::repos))
        .route("/api/repos/refresh", post(rebuild::api::refresh))
        .route("/api/events", get(rebuild::api::events))
        .route("/api/images", get(rebuild::api::images))
        .route("/api/images/{name}/promote", post(rebuild::api::promote))
        .layer(axum::middleware::from_fn_with_state(state.clone(), audit::record))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(state)
}

/// A bound, migrated server, not yet answering.
pub struct Server {
    pub addr: SocketAddr,
    pub state: AppState,
    listener: tokio::net::TcpListener,
}

impl Server {
    pub async fn bind(config: Config) -> anyhow::Result<Server> {
        std::fs::create_dir_all(&config.data_dir).map_err(|e| anyhow::anyhow!("data dir {}: {e}", config.data_dir.display()))?;
        let db = db::Db::connect(&config.database_url()).await?;
        let listener = tokio::net::TcpListener::bind(&config.listen).await.map_err(|e| anyhow::anyhow!("listening on {}: {e}", config.listen))?;
        let addr = listener.local_addr()?;
        let policy = match &config.policy_file {
            Some(path) => Policy::load(path).map_err(|e| anyhow::anyhow!("--policy {e}"))?,
            None => Policy::default(),
        };
        Ok(Server { addr, state: AppState { db, config: Arc::new(config), tokens: Arc::default(), lists: Arc::default(), queued: Arc::default(), closing: Arc::default(), refreshing: Arc::default(), policy: Arc::new(std::sync::RwLock::new(Arc::new(policy))) }, listener })
    }

    /// Stores a token the operator chose (`--admin-token`); the same one again is a no-op.
    pub async fn seed_token(&self, secret: &str, role: &str, name: &str) -> anyhow::Result<()> {
        if secret.len() < 16 {
            anyhow::bail!("a seeded token needs at least 16 characters");
        }
        self.state.db.add_token(&hash_secret(secret), role, name).await?;
        self.state.tokens.clear();
        Ok(())
    }

    /// A new random token of `role` that replaces every earlier token of this name: what
    /// a process that starts again (the in-process worker) uses, so old ones do not pile up.
    pub async fn replace_token(&self, role: &str, name: &str) -> anyhow::Result<String> {
        self.state.db.remove_tokens_named(name).await?;
        self.state.tokens.clear();
        self.new_token(role, name).await
    }

    /// A new random token of `role`.
    pub async fn new_token(&self, role: &str, name: &str) -> anyhow::Result<String> {
        let t = new_secret();
        self.state.db.add_token(&hash_secret(&t), role, name).await?;
        Ok(t)
    }

    /// Answers until `shutdown` resolves; the reaper runs beside it.
    pub async fn run(self, shutdown: impl std::future::Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
        let db = self.state.db.clone();
        let queued = self.state.queued.clone();
        let grace = self.state.config.lease_ms();
        let reaper = tokio::spawn(async move {
            loop {
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                match db.reap(grace).await {
                    Ok(0) => {}
                    Ok(n) => {
                        tracing::info!("reaper: {n} build(s) whose lease expired or that ran past their timeout");
                        queued.notify_waiters();
                    }
                    Err(e) => tracing::warn!("reaper: {e}"),
                }
            }
        });
        let watcher = tokio::spawn(rebuild::watch(self.state.clone()));
        let (closing, wake) = (self.state.closing.clone(), self.state.queued.clone());
        let shutdown = async move {
            shutdown.await;
            closing.store(true, std::sync::atomic::Ordering::SeqCst);
            wake.notify_waiters();
        };
        let app = router(self.state).into_make_service_with_connect_info::<SocketAddr>();
        let result = axum::serve(self.listener, app).with_graceful_shutdown(shutdown).await;
        reaper.abort();
        watcher.abort();
        Ok(result?)
    }
}
