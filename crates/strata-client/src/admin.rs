//! The wire types of the service's administration: tokens, the audit log, the policy.

use serde::{Deserialize, Serialize};

/// A token as listed (never its secret).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TokenInfo {
    pub id: i64,
    pub name: String,
    /// The role it was made with (the policy's `[roles]` may override it).
    pub role: String,
    pub created: String,
    /// When it was revoked; a revoked token is refused.
    pub revoked: Option<String>,
}

/// One state-changing call, as the audit log holds it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditEntry {
    pub id: i64,
    pub at: String,
    /// The token's name (`anonymous` without one, `unknown token` for a bad one).
    pub actor: String,
    pub role: String,
    /// The caller's address.
    pub address: String,
    /// submit, cancel, promote, token create, token revoke, policy reload, refresh.
    pub action: String,
    /// The build, image or token acted on.
    pub target: Option<String>,
    /// The HTTP status answered.
    pub status: i64,
    /// `ok`, `refused` (401/403), `rejected` (another 4xx) or `error` (5xx).
    pub outcome: String,
    /// What was done, or why not.
    pub detail: Option<String>,
}

/// What `POST /api/policy/reload` did.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PolicyReloaded {
    /// The policy file read (none: the built-in default policy).
    pub file: Option<String>,
    /// `[[image]]` rules in force.
    pub image_rules: usize,
}
