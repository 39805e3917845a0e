//! Administration over the API: tokens listed and revoked, the policy reloaded, the audit
//! log read. Admin tokens only.

use crate::api::{Admin, ApiError, Json, Path, Query};
use crate::audit::AuditDetail;
use crate::db::{now_ms, rfc3339, Db};
use crate::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
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

    /// The id of the (valid) token with this hash.
    pub async fn token_id(&self, hash: &str) -> Result<Option<i64>, sqlx::Error> {
        sqlx::query("SELECT id FROM tokens WHERE hash = $1 AND revoked IS NULL").bind(hash).fetch_optional(&self.read).await?.map(|r| r.try_get(0)).transpose()
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
              (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 409, description = "the token making the call: an admin cannot lock itself out", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn revoke(Admin(caller): Admin, State(st): State<AppState>, Path(id): Path<i64>, headers: axum::http::HeaderMap) -> ApiResult<impl IntoResponse> {
    let own = headers.get("authorization").and_then(|h| h.to_str().ok()).and_then(|h| h.strip_prefix("Bearer ")).map(|t| crate::hash_secret(t.trim()));
    if own.is_some() && st.db.token_id(own.as_deref().unwrap_or_default()).await? == Some(id) {
        return Err(ApiError(StatusCode::CONFLICT, format!("token {id} is the one making this call; revoke it with another admin token")));
    }
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
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Entries at or after this time, in Unix seconds (`strata audit --since` takes RFC
    /// 3339 too).
    #[param(minimum = 0)]
    since: Option<i64>,
    /// At most this many (default 1000).
    #[param(minimum = 1, maximum = 10000)]
    limit: Option<i64>,
}

#[utoipa::path(get, path = "/api/audit", params(AuditQuery), tag = "policy",
    responses((status = 200, description = "oldest first", body = Vec<AuditEntry>), (status = 400, body = ErrorBody),
              (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn audit(_admin: Admin, State(st): State<AppState>, Query(q): Query<AuditQuery>) -> ApiResult<Json<Vec<AuditEntry>>> {
    let bad = |m: &str| ApiError(StatusCode::BAD_REQUEST, m.to_string());
    let since = q.since.unwrap_or(0);
    if since < 0 {
        return Err(bad("since: Unix seconds, at least 0"));
    }
    let limit = q.limit.unwrap_or(1000);
    if !(1..=10_000).contains(&limit) {
        return Err(bad("limit: 1 to 10000"));
    }
    Ok(Json(st.db.audit_entries(since.saturating_mul(1000), limit).await?))
}
