//! The crate's error type: each variant names the path, layer or mount it is about.

use std::io;
use std::path::PathBuf;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: io::Error,
    },
    /// A layer entry that would write outside the target or otherwise abuse the extractor.
    /// The whole layer is refused: a tar carrying one such entry is not trusted further.
    #[error("refusing layer entry {path:?}: {reason}")]
    Hostile { path: String, reason: String },
    /// Something valid that this crate (or the layer writer) cannot represent.
    #[error("{path:?}: {reason}")]
    Unsupported { path: String, reason: String },
    #[error("layer content does not match its diff_id: expected {expected}, got {actual}")]
    DiffIdMismatch { expected: String, actual: String },
    #[error("layer {0} is not in the unpacked-layer cache")]
    NotCached(String),
    #[error("overlay mount at {target}: {reason}")]
    Mount { target: PathBuf, reason: String },
    #[error(transparent)]
    Layer(#[from] strata_oci::Error),
}

impl Error {
    pub(crate) fn io(what: impl Into<String>, source: io::Error) -> Self {
        Error::Io { what: what.into(), source }
    }

    pub(crate) fn hostile(path: &[u8], reason: impl Into<String>) -> Self {
        Error::Hostile { path: String::from_utf8_lossy(path).into_owned(), reason: reason.into() }
    }

    pub(crate) fn unsupported(path: &[u8], reason: impl Into<String>) -> Self {
        Error::Unsupported { path: String::from_utf8_lossy(path).into_owned(), reason: reason.into() }
    }
}

/// Adds context to `io::Result`s and `rustix` results in one call.
pub(crate) trait Context<T> {
    fn ctx(self, what: impl FnOnce() -> String) -> Result<T>;
}

impl<T> Context<T> for io::Result<T> {
    fn ctx(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|e| Error::io(what(), e))
    }
}

impl<T> Context<T> for std::result::Result<T, rustix::io::Errno> {
    fn ctx(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|e| Error::io(what(), e.into()))
    }
}
