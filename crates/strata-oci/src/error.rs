//! The crate's error type. Variants carry what a user needs to act (which path, which
//! digest, which reference) rather than bare I/O errors.

use std::path::PathBuf;

/// Shorthand for this crate's results.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong building layers, storing images or saving archives.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An I/O operation failed; `what` says on which file or for which step.
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    /// A path given for a layer entry is unsafe or malformed (absolute, `..`, NUL, ...).
    #[error("invalid layer path {path:?}: {reason}")]
    InvalidPath { path: String, reason: &'static str },
    /// An entry's metadata is unusable (mode bits, xattr names, link targets, ...).
    #[error("layer entry {path:?}: {reason}")]
    InvalidEntry { path: String, reason: String },
    /// Two entries, or an entry and the layer structure, contradict each other.
    #[error("layer conflict at {path:?}: {reason}")]
    LayerConflict { path: String, reason: String },
    /// A file's content did not have the size announced when it was added.
    #[error("layer file {path:?}: expected {expected} bytes, source gave {actual}")]
    SizeMismatch {
        path: String,
        expected: u64,
        actual: u64,
    },
    /// A blob's content did not hash to the digest it was stored or announced under.
    #[error("digest mismatch: expected {expected}, got {actual}")]
    DigestMismatch { expected: String, actual: String },
    /// A digest that is not `sha256:<64 lowercase hex>`.
    #[error("unsupported or malformed digest {0:?} (only sha256 is supported)")]
    BadDigest(String),
    /// An image reference that is not `NAME[:TAG]`.
    #[error("invalid image reference {reference:?}: {reason}")]
    InvalidReference {
        reference: String,
        reason: &'static str,
    },
    /// No image with this reference in the store.
    #[error("image {0} not found in the store")]
    ImageNotFound(String),
    /// A blob the operation needs is missing from the store.
    #[error("blob {0} missing from the store")]
    BlobNotFound(String),
    /// A blob written for an image was removed before the image was tagged: a concurrent
    /// `strata gc` whose grace period was shorter than the build.
    #[error("{what} blob {digest} of {image} was removed from the store while the image was being written: a `strata gc` ran concurrently with a --grace shorter than this build\nhint: re-run the command (it writes the blob again); run gc with a --grace longer than your longest build (default 1h)")]
    BlobCollected { digest: String, what: String, image: String },
    /// The directory is not an OCI image layout this crate can use.
    #[error("{path}: not a usable OCI image layout: {reason}")]
    BadLayout { path: PathBuf, reason: String },
    /// JSON that could not be parsed or produced.
    #[error("{what}: {source}")]
    Json {
        what: String,
        #[source]
        source: serde_json::Error,
    },
    /// A value that `oci-spec` refused (e.g. a builder missing a field).
    #[error("OCI spec: {0}")]
    Spec(#[from] oci_spec::OciSpecError),
    /// A manifest or config that is valid JSON but not something we can use.
    #[error("invalid image: {0}")]
    InvalidImage(String),
    /// An archive being loaded is hostile, broken or not of the format asked for; nothing
    /// from it was tagged.
    #[error("refusing the archive: {0}")]
    BadArchive(String),
    /// An OCI layout read as a source does not name the image asked for, or lists several
    /// and none was named. The text says which names it has and how to choose.
    #[error("{0}")]
    NotInLayout(String),
}

impl Error {
    /// Wraps an I/O error with a description of what was being done.
    pub(crate) fn io(what: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            what: what.into(),
            source,
        }
    }

    pub(crate) fn json(what: impl Into<String>, source: serde_json::Error) -> Self {
        Error::Json {
            what: what.into(),
            source,
        }
    }
}

/// Adds context to `io::Result`s in one call.
pub(crate) trait IoContext<T> {
    fn ctx(self, what: impl FnOnce() -> String) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn ctx(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|e| Error::io(what(), e))
    }
}
