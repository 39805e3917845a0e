//! Errors of loading repository metadata. Every variant names the repo and the URL or file,
//! so a user knows which repository to look at.

use std::path::PathBuf;

#[derive(Debug, Clone, thiserror::Error)]
pub enum RepoError {
    #[error("repo `{repo}`: cannot fetch {url}: {detail}")]
    Unreachable { repo: String, url: String, detail: String },
    #[error("repo `{repo}`: {file} has {kind} checksum {actual}, but repomd.xml says {expected}; refusing it")]
    ChecksumMismatch { repo: String, file: String, kind: String, expected: String, actual: String },
    #[error("repo `{repo}`: {file} is corrupt: {detail}")]
    Corrupt { repo: String, file: String, detail: String },
    /// Over one of the fixed bounds of hostile input ([`crate::limits`]); not a setting.
    #[error("repo `{repo}`: refusing {file}: {detail}")]
    TooLarge { repo: String, file: String, detail: String },
    #[error("repo `{repo}`: {detail}")]
    NoMetadata { repo: String, detail: String },
    #[error("metadata cache {path}: {detail}")]
    Cache { path: PathBuf, detail: String },
}

impl RepoError {
    pub(crate) fn cache(path: impl Into<PathBuf>, e: impl std::fmt::Display) -> RepoError {
        RepoError::Cache { path: path.into(), detail: e.to_string() }
    }
}
