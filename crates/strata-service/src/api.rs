//! The HTTP handlers under `/api/`, each annotated for the OpenAPI document, and the
//! bearer-token check every one of them starts with.

use crate::db::{LeaseError, NewBuild, Outcome};
use crate::{git, AppState};
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use strata_client::{QueryHit, Build, Complete, ErrorBody, Fail, Heartbeat, Lease, LeaseRef, LeaseRequest, LogAppend, LogAppended, LogChunk, SubmitRequest, TokenCreated, TokenRequest};

/// An error answer: a status and a reason, as `{"error": "..."}`.
#[derive(Debug)]
pub struct ApiError(pub StatusCode, pub String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let detail = AuditDetail(self.1.clone());
        (self.0, axum::Extension(detail), axum::Json(ErrorBody { error: self.1 })).into_response()
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> ApiError {
        tracing::error!("database: {e}");
        ApiError(StatusCode::INTERNAL_SERVER_ERROR, format!("database: {e}"))
    }
}

impl From<LeaseError> for ApiError {
    fn from(e: LeaseError) -> ApiError {
        match e {
            LeaseError::Lost(_) => ApiError(StatusCode::CONFLICT, e.to_string()),
            LeaseError::Db(e) => e.into(),
        }
    }
}

type ApiResult<T> = Result<T, ApiError>;

pub use crate::auth::{Admin, Reader, Submitter, Worker, ROLES};
use crate::audit::{AuditDetail, AuditTarget};

// axum's own rejections (a body that is not JSON or not the type, a path or query parameter
// that does not parse) answered as ErrorBody JSON, 400 unless they say 413 or 415.
fn rejected(status: StatusCode, text: String) -> ApiError {
    let status = if status == StatusCode::UNPROCESSABLE_ENTITY { StatusCode::BAD_REQUEST } else { status };
    ApiError(status, text)
}
impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> ApiError {
        rejected(r.status(), r.body_text())
    }
}
impl From<PathRejection> for ApiError {
    fn from(r: PathRejection) -> ApiError {
        rejected(StatusCode::BAD_REQUEST, r.body_text())
    }
}
impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> ApiError {
        rejected(StatusCode::BAD_REQUEST, r.body_text())
    }
}

pub struct Json<T>(pub T);
impl<T: serde::Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}
impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Json<T> {
    type Rejection = ApiError;
    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        Ok(Json(axum::Json::<T>::from_request(req, state).await?.0))
    }
}
pub struct Path<T>(pub T);
impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for Path<T> {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Ok(Path(axum::extract::Path::<T>::from_request_parts(parts, state).await?.0))
    }
}
pub struct Query<T>(pub T);
impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Ok(Query(axum::extract::Query::<T>::from_request_parts(parts, state).await?.0))
    }
}

fn not_found(id: i64) -> ApiError {
    ApiError(StatusCode::NOT_FOUND, format!("no build {id}"))
}

/// Names of images: registry repository path components (lowercase, digits, `._-`,
/// `/`-separated), at most 128 characters.
pub fn valid_image_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && name.split('/').all(|part| {
            !part.is_empty()
                && part.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
                && part.as_bytes()[0].is_ascii_alphanumeric()
        })
}

#[utoipa::path(post, path = "/api/builds", request_body = SubmitRequest, tag = "builds",
    responses((status = 201, body = Build), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 422, description = "the source cannot be read, the ref does not exist, or the folder has neither strata.json nor a Dockerfile; nothing queued", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn submit(Submitter(caller): Submitter, State(st): State<AppState>, Json(req): Json<SubmitRequest>) -> ApiResult<impl IntoResponse> {
    let bad = |m: String| ApiError(StatusCode::BAD_REQUEST, m);
    git::check_url(&req.source.url).map_err(bad)?;
    if let Some(r) = &req.source.r#ref {
        git::check_ref(r).map_err(bad)?;
    }
    if let Some(p) = &req.source.path {
        git::check_path(p).map_err(bad)?;
    }
    if req.images.len() > 64 {
        return Err(bad("at most 64 images per build".into()));
    }
    if let Some(n) = req.images.iter().find(|n| !valid_image_name(n)) {
        return Err(bad(format!("image name {n:?}: lowercase letters, digits and ._- in /-separated parts, at most 128 characters")));
    }
    let timeout_s = req.timeout_seconds.unwrap_or(st.config.default_timeout_s);
    if timeout_s <= 0 {
        return Err(bad("timeout_seconds must be positive".into()));
    }
    let timeout_s = timeout_s.min(st.config.max_timeout_s);
    let network = match req.network.as_deref() {
        None | Some("none") => None,
        Some("host") => Some("host"),
        Some(n) => return Err(bad(format!("network {n:?}: none or host"))),
    };
    let commit = git::resolve(&req.source.url, req.source.r#ref.as_deref(), &st.config.data_dir.join("git"))
        .await
        .map_err(|e| ApiError(StatusCode::UNPROCESSABLE_ENTITY, e))?;
    // What the source builds, read now: the policy decides per image, and a folder with
    // nothing to build is refused before anything is queued.
    let names = crate::source::images_of(&st, &req.source, &commit, &req.images).await.map_err(|e| ApiError(StatusCode::UNPROCESSABLE_ENTITY, e))?;
    if !names.dockerfile && network.is_some() {
        return Err(bad("network host is for Dockerfile builds (a spec's scriptlets never reach a network)".into()));
    }
    let policy = st.policy();
    let mut remote_content = true;
    for image in &names.images {
        let destination = st.config.registry.as_ref().map(|r| format!("{r}/{image}"));
        let grant = policy
            .check_submit(&strata_policy::Submission {
                actor: &caller.name,
                role: &caller.role,
                image,
                source: &req.source.url,
                r#ref: req.source.r#ref.as_deref(),
                destination: destination.as_deref(),
                network_host: network.is_some(),
            })
            .map_err(|r| ApiError(StatusCode::FORBIDDEN, r.to_string()))?;
        remote_content &= grant.remote_content;
    }
    let id = st
        .db
        .submit(&NewBuild {
            submitter: &caller.name,
            trigger: "manual",
            source: &req.source,
            commit: &commit,
            images: &req.images,
            scratch: req.scratch,
            timeout_s,
            max_attempts: st.config.max_attempts,
            track: !req.no_track,
            network,
            remote_content,
        })
        .await?;
    st.queued.notify_waiters();
    let b = st.db.get(id).await?.ok_or_else(|| not_found(id))?;
    let detail = AuditDetail(format!("{} {} ({}) {} images {}", req.source.url, req.source.r#ref.as_deref().unwrap_or("HEAD"), commit, if names.dockerfile { "Dockerfile" } else { "spec" }, names.images.join(",")));
    Ok((StatusCode::CREATED, axum::Extension(detail), axum::Extension(AuditTarget(format!("build {id}"))), Json(b)))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only builds of this image.
    #[param(pattern = "^[a-z0-9][a-z0-9._-]*(/[a-z0-9][a-z0-9._-]*)*$", max_length = 128)]
    image: Option<String>,
    /// Only builds in this state.
    #[param(pattern = "^(queued|running|built|failed|canceled)$")]
    state: Option<String>,
    /// At most this many (default 100, at most 1000).
    limit: Option<i64>,
}

#[utoipa::path(get, path = "/api/builds", params(ListQuery), tag = "builds",
    responses((status = 200, description = "newest first", body = Vec<Build>), (status = 401, body = ErrorBody)), security(("bearer" = [])))]
pub async fn list(_caller: Reader, State(st): State<AppState>, Query(q): Query<ListQuery>) -> ApiResult<Json<Vec<Build>>> {
    if let Some(i) = q.image.as_deref().filter(|i| !valid_image_name(i)) {
        return Err(ApiError(StatusCode::BAD_REQUEST, format!("image {i:?}: not an image name")));
    }
    if let Some(s) = &q.state {
        if !["queued", "running", "built", "failed", "canceled"].contains(&s.as_str()) {
            return Err(ApiError(StatusCode::BAD_REQUEST, format!("state {s:?}: one of queued, running, built, failed, canceled")));
        }
    }
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    Ok(Json(st.lists.list(&st.db, q.image.as_deref(), q.state.as_deref(), limit).await?))
}

#[utoipa::path(get, path = "/api/builds/{id}", params(("id" = i64, Path)), tag = "builds",
    responses((status = 200, body = Build), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)), security(("bearer" = [])))]
pub async fn get(_caller: Reader, State(st): State<AppState>, Path(id): Path<i64>) -> ApiResult<Json<Build>> {
    Ok(Json(st.db.get(id).await?.ok_or_else(|| not_found(id))?))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LogQuery {
    /// Byte offset to read from (the `next` of the previous read).
    #[param(minimum = 0)]
    offset: Option<i64>,
}

#[utoipa::path(get, path = "/api/builds/{id}/log", params(("id" = i64, Path), LogQuery), tag = "builds",
    responses((status = 200, body = LogChunk), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)), security(("bearer" = [])))]
pub async fn read_log(_caller: Reader, State(st): State<AppState>, Path(id): Path<i64>, Query(q): Query<LogQuery>) -> ApiResult<Json<LogChunk>> {
    if !st.db.exists(id).await? {
        return Err(not_found(id));
    }
    let offset = q.offset.unwrap_or(0);
    if offset < 0 {
        return Err(ApiError(StatusCode::BAD_REQUEST, "offset: at least 0".into()));
    }
    let offset = offset as u64;
    let (data, next, complete) = st.db.read_log(id, offset, 1 << 20).await?;
    Ok(Json(LogChunk { offset, data, next, complete }))
}

#[utoipa::path(post, path = "/api/builds/{id}/cancel", params(("id" = i64, Path)), tag = "builds",
    responses((status = 200, body = Build), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn cancel(Submitter(caller): Submitter, State(st): State<AppState>, Path(id): Path<i64>) -> ApiResult<impl IntoResponse> {
    st.db.cancel(id, &caller.name).await?.ok_or_else(|| not_found(id))?;
    let b = st.db.get(id).await?.ok_or_else(|| not_found(id))?;
    let detail = AuditDetail(format!("{} ({})", b.image, if b.state == "canceled" { "ended at once" } else { "its worker told to stop" }));
    Ok((axum::Extension(detail), Json(b)))
}

#[utoipa::path(post, path = "/api/tokens", request_body = TokenRequest, tag = "tokens",
    responses((status = 201, body = TokenCreated), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn create_token(Admin(caller): Admin, State(st): State<AppState>, Json(req): Json<TokenRequest>) -> ApiResult<impl IntoResponse> {
    if !ROLES.contains(&req.role.as_str()) {
        return Err(ApiError(StatusCode::BAD_REQUEST, format!("role {:?}: one of {}", req.role, ROLES.join(", "))));
    }
    let name = req.name.unwrap_or_else(|| format!("{} token by {}", req.role, caller.name));
    if name.chars().count() > 200 || name.chars().any(char::is_control) {
        return Err(ApiError(StatusCode::BAD_REQUEST, "name: at most 200 characters, no control characters".into()));
    }
    let token = crate::new_secret();
    let id = st.db.add_token(&crate::hash_secret(&token), &req.role, &name).await?;
    st.tokens.clear();
    let audit = (axum::Extension(AuditDetail(format!("{name} ({})", req.role))), axum::Extension(AuditTarget(format!("token {id}"))));
    Ok((StatusCode::CREATED, audit, Json(TokenCreated { id, role: req.role, name, token })))
}

#[utoipa::path(post, path = "/api/worker/lease", request_body = LeaseRequest, tag = "worker",
    responses((status = 200, body = Lease), (status = 204, description = "nothing queued"), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn lease(Worker(caller): Worker, State(st): State<AppState>, Json(req): Json<LeaseRequest>) -> ApiResult<Response> {
    if req.wait_seconds > 30 {
        return Err(ApiError(StatusCode::BAD_REQUEST, "wait_seconds: at most 30".into()));
    }
    if req.worker.is_empty() || req.worker.chars().count() > 200 || req.worker.chars().any(char::is_control) {
        return Err(ApiError(StatusCode::BAD_REQUEST, "worker: 1 to 200 characters, no control characters".into()));
    }
    let secret = crate::new_secret();
    let worker = format!("{} ({})", req.worker, caller.name);
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(req.wait_seconds.min(30));
    let id = loop {
        // Registered before the attempt, so a build queued between the attempt and the
        // wait still wakes it.
        let queued = st.queued.notified();
        tokio::pin!(queued);
        queued.as_mut().enable();
        if st.closing.load(std::sync::atomic::Ordering::SeqCst) {
            return Ok(StatusCode::NO_CONTENT.into_response());
        }
        if let Some(id) = st.db.lease(&worker, &crate::hash_secret(&secret), st.config.lease_ms()).await? {
            break id;
        }
        let now = tokio::time::Instant::now();
        if now >= deadline {
            return Ok(StatusCode::NO_CONTENT.into_response());
        }
        // Builds queued by another server (one PostgreSQL, several servers) wake no one
        // here: look again at least every half second.
        let _ = tokio::time::timeout((deadline - now).min(std::time::Duration::from_millis(500)), queued).await;
    };
    let mut build = st.db.get(id).await?.ok_or_else(|| not_found(id))?;
    if let Some(order) = build.rebuild.as_mut().filter(|o| o.base_from.is_some() && o.base_override.is_none()) {
        // A child rebuild is built on its parent's rebuilt image, by digest.
        let parent = match order.parent_build {
            Some(p) => st.db.get(p).await?,
            None => None,
        };
        let image = parent.as_ref().and_then(|p| p.result.as_ref()).and_then(|r| r.images.first());
        if let (Some(img), Some(registry)) = (image, &st.config.registry) {
            order.base_override = Some(format!("{registry}/{}@{}", img.name, img.manifest_digest));
            st.db.set_rebuild(id, order).await?;
        }
    }
    Ok(Json(Lease {
        build,
        lease: secret,
        heartbeat_seconds: st.config.heartbeat_s,
        registry: st.config.registry.clone(),
        insecure_registry: st.config.insecure_registry,
    })
    .into_response())
}

#[utoipa::path(post, path = "/api/builds/{id}/heartbeat", params(("id" = i64, Path)), request_body = LeaseRef, tag = "worker",
    responses((status = 200, body = Heartbeat), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 409, description = "the lease is lost", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn heartbeat(_caller: Worker, State(st): State<AppState>, Path(id): Path<i64>, Json(req): Json<LeaseRef>) -> ApiResult<Json<Heartbeat>> {
    let (stop, reason) = st.db.heartbeat(id, &crate::hash_secret(&req.lease), st.config.lease_ms()).await?;
    Ok(Json(Heartbeat { stop, reason }))
}

#[utoipa::path(post, path = "/api/builds/{id}/log", params(("id" = i64, Path)), request_body = LogAppend, tag = "worker",
    responses((status = 200, body = LogAppended), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody),
              (status = 413, description = "the log is full", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn append_log(_caller: Worker, State(st): State<AppState>, Path(id): Path<i64>, Json(req): Json<LogAppend>) -> ApiResult<Json<LogAppended>> {
    match st.db.append_log(id, &crate::hash_secret(&req.lease), req.data.as_bytes(), crate::MAX_LOG).await? {
        Some(size) => Ok(Json(LogAppended { size: size as u64 })),
        None => Err(ApiError(StatusCode::PAYLOAD_TOO_LARGE, format!("the log of build {id} is full ({} MiB)", crate::MAX_LOG >> 20))),
    }
}

#[utoipa::path(post, path = "/api/builds/{id}/complete", params(("id" = i64, Path)), request_body = Complete, tag = "worker",
    responses((status = 200, body = Build), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn complete(_caller: Worker, State(st): State<AppState>, Path(id): Path<i64>, Json(req): Json<Complete>) -> ApiResult<Json<Build>> {
    let mut req = req;
    if let Some(n) = req.result.images.iter().find(|i| !valid_image_name(&i.name)) {
        return Err(ApiError(StatusCode::BAD_REQUEST, format!("result: image name {:?}", n.name)));
    }
    // PostgreSQL's text holds no NUL.
    let json = serde_json::to_string(&req.result).unwrap_or_default();
    if json.contains("\\u0000") {
        req.result = serde_json::from_str(&json.replace("\\u0000", "")).map_err(|e| ApiError(StatusCode::BAD_REQUEST, e.to_string()))?;
    }
    st.db.finish(id, &crate::hash_secret(&req.lease), Outcome::Built(&req.result)).await?;
    let build = st.db.get(id).await?.ok_or_else(|| not_found(id))?;
    crate::mirror::after_build(&st, &build);
    Ok(Json(build))
}

#[utoipa::path(post, path = "/api/builds/{id}/fail", params(("id" = i64, Path)), request_body = Fail, tag = "worker",
    responses((status = 200, body = Build), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn fail(_caller: Worker, State(st): State<AppState>, Path(id): Path<i64>, Json(req): Json<Fail>) -> ApiResult<Json<Build>> {
    let reason: String = req.reason.chars().filter(|c| *c != '\0').take(4000).collect();
    st.db.finish(id, &crate::hash_secret(&req.lease), Outcome::Failed { reason: &reason, canceled: req.canceled }).await?;
    Ok(Json(st.db.get(id).await?.ok_or_else(|| not_found(id))?))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct QueryParams {
    /// `NAME` or `NAME OP EVR` (`openssl < 3.0.22`), compared with rpm's rules.
    #[param(pattern = "^[^\\s\\x00-\\x1f\\x7f-\\x9f]+( +(<|<=|=|>=|>) +[^\\s\\x00-\\x1f\\x7f-\\x9f]+)?$", max_length = 512)]
    rpm: String,
    /// Every build, not only each image's current (newest non-scratch) one.
    all: Option<bool>,
}

#[utoipa::path(get, path = "/api/query", params(QueryParams), tag = "builds",
    responses((status = 200, description = "images holding a matching package, newest build first", body = Vec<QueryHit>),
              (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn query(_caller: Reader, State(st): State<AppState>, Query(q): Query<QueryParams>) -> ApiResult<Json<Vec<QueryHit>>> {
    if q.rpm.chars().count() > 512 || q.rpm.chars().any(char::is_control) {
        return Err(ApiError(StatusCode::BAD_REQUEST, "rpm: at most 512 characters".into()));
    }
    let dep = strata_rpm::Dep::parse(&q.rpm).map_err(|e| ApiError(StatusCode::BAD_REQUEST, e.to_string()))?;
    let builds = st.db.built_results().await?;
    let tags = st.db.tags().await?;
    Ok(Json(crate::query::hits(&dep, &builds, q.all.unwrap_or(false), &tags)))
}
