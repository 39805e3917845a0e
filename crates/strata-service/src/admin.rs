//! Administration over the API: tokens listed and revoked, the policy reloaded, the audit
//! log read. Admin tokens only.

use crate::api::{Admin, ApiError};
use crate::audit::{parse_since, AuditDetail};
use crate::db::{now_ms, rfc3339, Db};
use crate::AppState;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use serde::Deserialize;
use sqlx::Row;
use strata_client::{AuditEntry, ErrorBody, PolicyReloaded, TokenInfo};

type ApiResult<T> = Result<T, ApiError>;

impl Db {
    pub async fn list_tokens(&self) -> Result<Vec<TokenInfo>, sqlx::Error> {
        let rows = sqlx::query("SELECT id, name, role, created, revoked FROM tokens ORDER BY id").fetch_all(&self.read).await?;
        rows.iter()
            .map(|r| {
                Ok(TokenInfo {
                    id: r.try_get(0)?,
                    name: r.try_get(1)?,
                    role: r.try_get(2)?,
                    created: rfc3339(r.try_get(3)?),
                    revoked: r.try_get::<Option<i64>, _>(4)?.map(rfc3339),
                })
            })
            .collect()
    }

    /// Marks a token revoked (kept, for the record); `None`: no such token.
    pub async fn revoke_token(&self, id: i64) -> Result<Option<TokenInfo>, sqlx::Error> {
        sqlx::query("UPDATE tokens SET revoked = $1 WHERE id = $2 AND revoked IS NULL").bind(now_ms()).bind(id).execute(&self.pool).await?;
        Ok(self.list_tokens().await?.into_iter().find(|t| t.id == id))
    }
}

#[utoipa::path(get, path = "/api/tokens", tag = "tokens",
    responses((status = 200, description = "every token, revoked ones too; never a secret", body = Vec<TokenInfo>),
              (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn tokens(_admin: Admin, State(st): State<AppState>) -> ApiResult<Json<Vec<TokenInfo>>> {
    Ok(Json(st.db.list_tokens().await?))
}

#[utoipa::path(delete, path = "/api/tokens/{id}", params(("id" = i64, Path)), tag = "tokens",
    responses((status = 200, description = "the token, now revoked: every server refuses it within 10 s", body = TokenInfo),
              (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn revoke(Admin(caller): Admin, State(st): State<AppState>, Path(id): Path<i64>) -> ApiResult<impl IntoResponse> {
    let t = st.db.revoke_token(id).await?.ok_or_else(|| ApiError(StatusCode::NOT_FOUND, format!("no token {id}")))?;
    st.tokens.clear();
    let detail = AuditDetail(format!("revoked {} ({}) by {}", t.name, t.role, caller.name));
    Ok((axum::Extension(detail), Json(t)))
}

#[utoipa::path(post, path = "/api/policy/reload", tag = "policy",
    responses((status = 200, description = "the policy file read again and in force", body = PolicyReloaded),
              (status = 400, description = "the file has an error (named with its line); the old policy stays in force", body = ErrorBody),
              (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn reload(_admin: Admin, State(st): State<AppState>) -> ApiResult<impl IntoResponse> {
    let r = st.reload_policy().map_err(|e| ApiError(StatusCode::BAD_REQUEST, format!("{e}; the old policy stays in force")))?;
    let detail = AuditDetail(format!("{} ({} image rules)", r.file.as_deref().unwrap_or("built-in default policy"), r.image_rules));
    Ok((axum::Extension(detail), Json(r)))
}

#[derive(Deserialize, utoipa::IntoParams)]
pub struct AuditQuery {
    /// Entries at or after this time: RFC 3339 or Unix seconds.
    since: Option<String>,
    /// At most this many (default 1000, at most 10000).
    limit: Option<i64>,
}

#[utoipa::path(get, path = "/api/audit", params(AuditQuery), tag = "policy",
    responses((status = 200, description = "oldest first", body = Vec<AuditEntry>), (status = 400, body = ErrorBody),
              (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn audit(_admin: Admin, State(st): State<AppState>, Query(q): Query<AuditQuery>) -> ApiResult<Json<Vec<AuditEntry>>> {
    let since = q.since.as_deref().map(parse_since).transpose()?.unwrap_or(0);
    Ok(Json(st.db.audit_entries(since, q.limit.unwrap_or(1000).clamp(1, 10_000)).await?))
}
