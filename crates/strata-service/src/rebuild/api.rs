//! The HTTP handlers of automatic rebuilds: the plan, the refresh (also the webhook), the
//! watched repositories, the events, the registered images and promotion.

use crate::api::{ApiError, Json, Path, Reader, Submitter};
use crate::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use strata_client::{ErrorBody, Promoted, PromoteRequest, RebuildEvent, RebuildPlan, Refreshed, TrackedImage, WatchedRepo};

type ApiResult<T> = Result<T, ApiError>;

fn upstream(e: String) -> ApiError {
    ApiError(StatusCode::BAD_GATEWAY, e)
}

#[utoipa::path(get, path = "/api/rebuild-plan", tag = "rebuilds",
    responses((status = 200, description = "what a refresh would rebuild now, in order; nothing is built", body = RebuildPlan),
              (status = 401, body = ErrorBody), (status = 502, description = "a repository or source could not be read", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn plan(_caller: Reader, State(st): State<AppState>) -> ApiResult<Json<RebuildPlan>> {
    Ok(Json(super::prepare(&st, false).await.map_err(upstream)?.plan))
}

#[utoipa::path(post, path = "/api/repos/refresh", tag = "rebuilds",
    responses((status = 200, description = "every watched repository checked; the plan executed as a rebuild event when it rebuilds anything", body = Refreshed),
              (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 502, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn refresh(Submitter(caller): Submitter, State(st): State<AppState>) -> ApiResult<impl axum::response::IntoResponse> {
    let r = super::refresh(&st, false, "refresh", &caller.name).await.map_err(upstream)?;
    let detail = match &r.event {
        Some(e) => format!("{} repositories checked; rebuild event {}: {} rebuilds", r.checked, e.id, e.plan.rebuilds.len()),
        None => format!("{} repositories checked, {} changed; nothing to rebuild", r.checked, r.plan.repos.len()),
    };
    Ok((axum::Extension(crate::audit::AuditDetail(detail)), Json(r)))
}

#[utoipa::path(get, path = "/api/repos", tag = "rebuilds",
    responses((status = 200, body = Vec<WatchedRepo>), (status = 401, body = ErrorBody)), security(("bearer" = [])))]
pub async fn repos(_caller: Reader, State(st): State<AppState>) -> ApiResult<Json<Vec<WatchedRepo>>> {
    Ok(Json(st.db.watched_repos(st.config.repo_interval_s).await?))
}

#[utoipa::path(get, path = "/api/events", tag = "rebuilds",
    responses((status = 200, description = "rebuild events, newest first", body = Vec<RebuildEvent>), (status = 401, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn events(_caller: Reader, State(st): State<AppState>) -> ApiResult<Json<Vec<RebuildEvent>>> {
    Ok(Json(st.db.rebuild_events(100).await?))
}

#[utoipa::path(get, path = "/api/images", tag = "rebuilds",
    responses((status = 200, description = "the images registered for automatic rebuilds", body = Vec<TrackedImage>), (status = 401, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn images(_caller: Reader, State(st): State<AppState>) -> ApiResult<Json<Vec<TrackedImage>>> {
    let registry = st.config.registry.clone();
    Ok(Json(st.db.tracked(|b| super::parent_of(registry.as_deref(), b)).await?))
}

#[utoipa::path(post, path = "/api/images/{name}/promote", params(("name" = String, Path)), request_body = PromoteRequest, tag = "rebuilds",
    responses((status = 200, description = "the `to` tag now names what `from` named, read back from the registry", body = Promoted),
              (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 409, description = "the server has no --registry", body = ErrorBody), (status = 502, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn promote(Submitter(caller): Submitter, State(st): State<AppState>, Path(name): Path<String>, Json(req): Json<PromoteRequest>) -> ApiResult<impl axum::response::IntoResponse> {
    for t in [&req.from, &req.to] {
        if t.is_empty() || t.len() > 128 || t.starts_with(['.', '-']) || !t.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b)) || t.starts_with("build-") || t.starts_with("scratch-") {
            return Err(ApiError(StatusCode::BAD_REQUEST, format!("tag {t:?}: a floating tag (letters, digits, ._-; not build-N or scratch-N)")));
        }
    }
    st.policy().check_promote(&caller.name, &caller.role, &name).map_err(|r| ApiError(StatusCode::FORBIDDEN, r.to_string()))?;
    let registry = st.config.registry.clone().ok_or_else(|| ApiError(StatusCode::CONFLICT, "the server has no --registry".into()))?;
    let tags = st.db.tags().await?;
    let from = tags
        .get(&name)
        .and_then(|t| t.iter().find(|p| p.tag == req.from))
        .cloned()
        .ok_or_else(|| ApiError(StatusCode::NOT_FOUND, format!("{name}:{} was never pushed by this service", req.from)))?;
    let insecure = st.config.insecure_registry;
    let (to, digest) = (req.to.clone(), from.digest.clone());
    let reference = {
        let (registry, name) = (registry.clone(), name.clone());
        tokio::task::spawn_blocking(move || copy_tag(&registry, insecure, &name, &digest, &to))
            .await
            .map_err(|e| upstream(e.to_string()))?
            .map_err(upstream)?
    };
    let detail = format!("{}:{} → {}:{} ({})", name, req.from, name, req.to, from.digest);
    st.db.move_tag(&name, &req.to, from.build_id, &from.digest, &caller.name, &detail).await?;
    let audit = axum::Extension(crate::audit::AuditDetail(format!("{detail}, build {}", from.build_id)));
    Ok((audit, Json(Promoted { image: name, from: req.from, to: req.to, build_id: from.build_id, reference })))
}

/// Puts the manifest `digest` of `REGISTRY/NAME` under tag `to` and reads it back.
fn copy_tag(registry: &str, insecure: bool, name: &str, digest: &str, to: &str) -> Result<String, String> {
    use strata_registry::{Client, ClientConfig, Credentials, Platform, Reference};
    let host = registry.split('/').next().unwrap_or(registry);
    let mut config = ClientConfig { credentials: Credentials::from_default_files().map_err(|e| e.to_string())?, ..ClientConfig::default() };
    if insecure {
        config = config.insecure(host);
    }
    let client = Client::new(config);
    let src = Reference::parse(&format!("{registry}/{name}@{digest}")).map_err(|e| e.to_string())?;
    let dest = Reference::parse(&format!("{registry}/{name}:{to}")).map_err(|e| e.to_string())?;
    let got = client.resolve(&src, &Platform::default()).map_err(|e| format!("reading {src}: {e}"))?;
    if got.digest.to_string() != digest {
        return Err(format!("{src}: the registry answers {}", got.digest));
    }
    let pushed = client.push_manifest(&dest, &got.manifest_bytes, &got.media_type).map_err(|e| format!("pushing {dest}: {e}"))?;
    let back = client.resolve(&dest, &Platform::default()).map_err(|e| format!("reading {dest} back: {e}"))?;
    if back.digest != pushed {
        return Err(format!("{dest}: pushed {pushed} but the registry answers {}", back.digest));
    }
    Ok(format!("{registry}/{name}:{to}@{pushed}"))
}
