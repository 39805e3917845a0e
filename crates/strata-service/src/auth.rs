//! Who is calling: the bearer token (or the web UI's cookie holding one), its role under
//! the policy, and the extractors that check a role before any body is read — a reader
//! learns that it may not submit, not what is wrong with its request.

use crate::api::ApiError;
use crate::AppState;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::StatusCode;

pub use strata_policy::ROLES;

/// The token's name and its effective role (the policy's `[roles]` over the role the token
/// was made with).
#[derive(Debug, Clone)]
pub struct Caller {
    pub name: String,
    pub role: String,
}

impl Caller {
    pub fn require(&self, roles: &[&str], what: &str) -> Result<(), ApiError> {
        if self.role == "admin" || roles.contains(&self.role.as_str()) {
            Ok(())
        } else {
            let needs = if roles.is_empty() { "an admin token".to_string() } else { format!("the role {} (or admin)", roles.join(" or ")) };
            Err(ApiError(StatusCode::FORBIDDEN, format!("{what} needs {needs}; this token ({}) is {}", self.name, self.role)))
        }
    }

    /// The caller a token names, if it is a valid (not revoked) token.
    pub async fn from_token(state: &AppState, token: &str) -> Result<Option<Caller>, ApiError> {
        let hash = crate::hash_secret(token.trim());
        let (name, role) = match state.tokens.get(&hash) {
            Some(found) => found,
            None => match state.db.token(&hash).await? {
                Some((name, role)) => {
                    state.tokens.put(&hash, &name, &role);
                    (name, role)
                }
                None => return Ok(None),
            },
        };
        let role = state.policy().role_of(&name, &role).to_string();
        Ok(Some(Caller { name, role }))
    }

    /// The bearer token of a request, if it sends one (`Err`: a malformed header).
    pub fn bearer(parts: &Parts) -> Result<Option<&str>, ApiError> {
        let Some(header) = parts.headers.get("authorization") else { return Ok(None) };
        header
            .to_str()
            .ok()
            .and_then(|h| h.strip_prefix("Bearer "))
            .map(Some)
            .ok_or_else(|| ApiError(StatusCode::UNAUTHORIZED, "the Authorization header is not Bearer TOKEN".into()))
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Caller, ApiError> {
        let unauthorized = |m: &str| ApiError(StatusCode::UNAUTHORIZED, m.to_string());
        let token = Caller::bearer(parts)?.ok_or_else(|| unauthorized("no token: send Authorization: Bearer TOKEN"))?;
        Caller::from_token(state, token).await?.ok_or_else(|| unauthorized("unknown or revoked token"))
    }
}

/// A caller allowed to read: any valid token, or anyone at all when the server runs with
/// `--anonymous-read` (a request without a token; a bad token is still refused).
pub struct Reader(pub Caller);

impl FromRequestParts<AppState> for Reader {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Reader, ApiError> {
        if state.config.anonymous_read && Caller::bearer(parts)?.is_none() {
            return Ok(Reader(Caller { name: "anonymous".into(), role: "reader".into() }));
        }
        Caller::from_request_parts(parts, state).await.map(Reader)
    }
}

/// A caller whose role allows a kind of call.
macro_rules! role_extractor {
    ($name:ident, [$($role:literal),*], $what:literal) => {
        pub struct $name(pub Caller);

        impl FromRequestParts<AppState> for $name {
            type Rejection = ApiError;

            async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<$name, ApiError> {
                let caller = Caller::from_request_parts(parts, state).await?;
                caller.require(&[$($role),*], $what)?;
                Ok($name(caller))
            }
        }
    };
}

role_extractor!(Submitter, ["submitter"], "submitting, canceling, promoting or refreshing");
role_extractor!(Worker, ["worker"], "running builds");
role_extractor!(Admin, [], "managing tokens, the policy and the audit log");
