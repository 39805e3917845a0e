//! The audit log: every state-changing call — submit, cancel, promote, token create and
//! revoke, policy reload, refresh — recorded with who, from where, what, and the outcome,
//! refusals included. A middleware records it from the request and the answer (a handler
//! or an error adds the detail through a response extension), so no handler can forget;
//! the API has no call that changes or removes an entry.

use crate::auth::Caller;
use crate::db::{now_ms, rfc3339, Db};
use crate::AppState;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;
use sqlx::Row;
use std::net::SocketAddr;
use strata_client::AuditEntry;

/// What a handler (or an error) says about the call, for its audit entry.
#[derive(Debug, Clone)]
pub struct AuditDetail(pub String);

/// The action and target a state-changing request is, if it is one the log records.
fn action_of(method: &Method, path: &str) -> Option<(&'static str, Option<String>)> {
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let action = match (method.as_str(), parts.as_slice()) {
        ("POST", ["api", "builds"]) => ("submit", None),
        ("POST", ["api", "builds", id, "cancel"]) => ("cancel", Some(format!("build {id}"))),
        ("POST", ["api", "tokens"]) => ("token create", None),
        ("DELETE", ["api", "tokens", id]) => ("token revoke", Some(format!("token {id}"))),
        ("POST", ["api", "policy", "reload"]) => ("policy reload", None),
        ("POST", ["api", "repos", "refresh"]) => ("refresh", None),
        ("POST", ["api", "images", rest @ .., "promote"]) => ("promote", Some(rest.join("/"))),
        _ => return None,
    };
    Some(action)
}

/// Records the call after it is answered.
pub async fn record(State(st): State<AppState>, request: Request, next: Next) -> Response {
    let Some((action, target)) = action_of(request.method(), request.uri().path()) else {
        return next.run(request).await;
    };
    let address = request.extensions().get::<ConnectInfo<SocketAddr>>().map_or_else(|| "-".to_string(), |c| c.0.ip().to_string());
    let (actor, role) = match request.headers().get("authorization").and_then(|h| h.to_str().ok()).and_then(|h| h.strip_prefix("Bearer ")) {
        None => ("anonymous".to_string(), "-".to_string()),
        Some(token) => match Caller::from_token(&st, token).await {
            Ok(Some(c)) => (c.name, c.role),
            _ => ("unknown token".to_string(), "-".to_string()),
        },
    };
    let response = next.run(request).await;
    let status = response.status().as_u16() as i64;
    let outcome = match status {
        200..=299 => "ok",
        401 | 403 => "refused",
        400..=499 => "rejected",
        _ => "error",
    };
    let detail = response.extensions().get::<AuditDetail>().map(|d| d.0.clone());
    let target = response.extensions().get::<AuditTarget>().map(|t| t.0.clone()).or(target);
    let entry = NewEntry { actor: &actor, role: &role, address: &address, action, target: target.as_deref(), status, outcome, detail: detail.as_deref() };
    if let Err(e) = st.db.audit(&entry).await {
        tracing::error!("audit log: {e} (entry: {actor} {action} {outcome})");
    }
    response
}

/// The target a handler learned (a new build's id), for its audit entry.
#[derive(Debug, Clone)]
pub struct AuditTarget(pub String);

pub struct NewEntry<'a> {
    pub actor: &'a str,
    pub role: &'a str,
    pub address: &'a str,
    pub action: &'a str,
    pub target: Option<&'a str>,
    pub status: i64,
    pub outcome: &'a str,
    pub detail: Option<&'a str>,
}

impl Db {
    pub async fn audit(&self, e: &NewEntry<'_>) -> Result<(), sqlx::Error> {
        sqlx::query("INSERT INTO audit_log (at, actor, role, address, action, target, status, outcome, detail) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)")
            .bind(now_ms())
            .bind(e.actor)
            .bind(e.role)
            .bind(e.address)
            .bind(e.action)
            .bind(e.target)
            .bind(e.status)
            .bind(e.outcome)
            .bind(e.detail.map(|d| d.chars().take(2000).collect::<String>()))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Entries at or after `since_ms`, oldest first, at most `limit`.
    pub async fn audit_entries(&self, since_ms: i64, limit: i64) -> Result<Vec<AuditEntry>, sqlx::Error> {
        let rows = sqlx::query("SELECT id, at, actor, role, address, action, target, status, outcome, detail FROM audit_log WHERE at >= $1 ORDER BY id LIMIT $2")
            .bind(since_ms)
            .bind(limit)
            .fetch_all(&self.read)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(AuditEntry {
                    id: r.try_get(0)?,
                    at: rfc3339(r.try_get(1)?),
                    actor: r.try_get(2)?,
                    role: r.try_get(3)?,
                    address: r.try_get(4)?,
                    action: r.try_get(5)?,
                    target: r.try_get(6)?,
                    status: r.try_get(7)?,
                    outcome: r.try_get(8)?,
                    detail: r.try_get(9)?,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_changing_calls_are_named() {
        let post = Method::POST;
        assert_eq!(action_of(&post, "/api/builds"), Some(("submit", None)));
        assert_eq!(action_of(&post, "/api/builds/7/cancel"), Some(("cancel", Some("build 7".into()))));
        assert_eq!(action_of(&post, "/api/images/team/web/promote"), Some(("promote", Some("team/web".into()))));
        assert_eq!(action_of(&Method::DELETE, "/api/tokens/3"), Some(("token revoke", Some("token 3".into()))));
        assert_eq!(action_of(&Method::GET, "/api/builds"), None);
        assert_eq!(action_of(&post, "/api/worker/lease"), None, "the worker protocol is in build_events");
    }
}
