//! Errors of fetching packages. Each names the package, and where it matters the URL and
//! what was expected against what arrived, so a user knows whether to blame the mirror, the
//! lock or this machine.

use std::fmt;
use std::path::PathBuf;
use strata_repo::RepoError;

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("RPM cache {path}: {source}")]
    Cache {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the lock has no image `{image}` (it has: {})", known.join(", "))]
    UnknownImage { image: String, known: Vec<String> },
    #[error(
        "lock is inconsistent: {package} comes from repo `{repo}`, which the lock does not list"
    )]
    UnknownRepo { package: String, repo: String },
    /// Every failed job, in job order; the others are in the cache.
    #[error("{}", FailureList { failed, total: *total })]
    Packages {
        failed: Vec<PackageError>,
        total: usize,
    },
}

struct FailureList<'a> {
    failed: &'a [PackageError],
    total: usize,
}

impl fmt::Display for FailureList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.failed.len();
        write!(
            f,
            "{n} of {} package{} could not be fetched:",
            self.total,
            if self.total == 1 { "" } else { "s" }
        )?;
        for e in self.failed {
            write!(f, "\n  {e}")?;
        }
        Ok(())
    }
}

/// Why one package is not in the cache.
#[derive(Debug, Clone, thiserror::Error)]
pub enum PackageError {
    /// The fetcher's message names the repo, the URL and what went wrong.
    #[error("{name}: {source}")]
    Unreachable {
        name: String,
        source: Box<RepoError>,
    },
    #[error("{name}: {url} has {kind} checksum {actual}, but the lock says {expected}{}; refusing it", attempts_note(*attempts))]
    Checksum {
        name: String,
        url: String,
        kind: &'static str,
        expected: String,
        actual: String,
        attempts: usize,
    },
    #[error("{name}: {url} {}{}; refusing it", size_clause(*actual, *expected), attempts_note(*attempts))]
    Size {
        name: String,
        url: String,
        expected: u64,
        actual: Option<u64>,
        attempts: usize,
    },
    #[error("{name}: {detail}")]
    BadChecksum { name: String, detail: String },
    /// The file is the one the lock names, but not a sound RPM (rpm would refuse it too).
    #[error("{name}: {url} is corrupt: {detail}; refusing it")]
    Corrupt {
        name: String,
        url: String,
        detail: String,
    },
    #[error("package {name} is not signed, but repo {repo} has gpgcheck=1")]
    Unsigned { name: String, repo: String },
    #[error("package {name}: signature made by key {key_id}, which is not among the gpgkeys of repo {repo}")]
    UnknownKey {
        name: String,
        repo: String,
        key_id: String,
    },
    #[error("package {name}: bad signature ({detail}), repo {repo} has gpgcheck=1; refusing it")]
    BadSignature {
        name: String,
        repo: String,
        detail: String,
    },
    #[error("package {name}: repo {repo} has gpgcheck=1, but {detail}")]
    Keys {
        name: String,
        repo: String,
        detail: String,
    },
    #[error("package {name}: cannot write to the RPM cache at {path}: {detail}")]
    Cache {
        name: String,
        path: PathBuf,
        detail: String,
    },
}

fn attempts_note(attempts: usize) -> String {
    if attempts > 1 {
        format!(" (after {attempts} attempts)")
    } else {
        String::new()
    }
}

/// `None` is a body that kept coming past the expected size (cut off there).
fn size_clause(actual: Option<u64>, expected: u64) -> String {
    match actual {
        Some(n) => format!("is {n} bytes, but the lock says {expected}"),
        None => format!("is larger than the {expected} bytes the lock says"),
    }
}

impl PackageError {
    /// The package the error is about.
    pub fn package(&self) -> &str {
        match self {
            PackageError::Unreachable { name, .. }
            | PackageError::Checksum { name, .. }
            | PackageError::Size { name, .. }
            | PackageError::BadChecksum { name, .. }
            | PackageError::Corrupt { name, .. }
            | PackageError::Unsigned { name, .. }
            | PackageError::UnknownKey { name, .. }
            | PackageError::BadSignature { name, .. }
            | PackageError::Keys { name, .. }
            | PackageError::Cache { name, .. } => name,
        }
    }
}
