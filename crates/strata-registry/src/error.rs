//! The crate's error type. Every variant that comes from talking to a registry names the
//! registry and repository (and the tag or digest where there is one), because "manifest
//! unknown" alone does not tell a user which of the images of a build went wrong.

use std::path::PathBuf;

/// Shorthand for this crate's results.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong resolving, pulling or pushing an image.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A reference that is not `[registry[:port]/]path[:tag][@sha256:hex]`.
    #[error("invalid image reference {reference:?}: {reason}")]
    InvalidReference { reference: String, reason: String },

    /// A platform that is not `OS/ARCH[/VARIANT]`.
    #[error("invalid platform {0:?}: expected OS/ARCH[/VARIANT], e.g. linux/arm64")]
    InvalidPlatform(String),

    /// The registry (or its token server) refused our credentials, or wants some we lack.
    #[error(
        "{registry}/{repository}: unauthorized{}: {detail}",
        realm.as_ref().map(|r| format!(" (realm {r})")).unwrap_or_default()
    )]
    Unauthorized {
        registry: String,
        repository: String,
        realm: Option<String>,
        detail: String,
    },

    /// Authenticated, but not allowed to do `action` (`pull`, `push`) on the repository.
    #[error("{registry}/{repository}: {action} denied: {detail}")]
    Denied {
        registry: String,
        repository: String,
        action: String,
        detail: String,
    },

    /// The repository has no manifest under this tag or digest (or no such repository).
    #[error("{registry}/{repository}: manifest {reference} unknown: {detail}")]
    ManifestUnknown {
        registry: String,
        repository: String,
        reference: String,
        detail: String,
    },

    /// The repository has no blob with this digest.
    #[error("{registry}/{repository}: blob {digest} unknown")]
    BlobUnknown {
        registry: String,
        repository: String,
        digest: String,
    },

    /// Downloaded (or stored) content does not hash to the digest that names it. Nothing
    /// with a mismatching digest is ever stored.
    #[error("{registry}/{repository}: {what} {expected}: content has digest {actual}")]
    DigestMismatch {
        registry: String,
        repository: String,
        /// `manifest`, `config` or `layer`.
        what: &'static str,
        expected: String,
        actual: String,
    },

    /// Content longer or shorter than its descriptor says.
    #[error("{registry}/{repository}: {what} {digest}: expected {expected} bytes, got {actual}")]
    SizeMismatch {
        registry: String,
        repository: String,
        what: &'static str,
        digest: String,
        expected: u64,
        actual: u64,
    },

    /// A manifest (or config, or layer) of a kind this client does not handle, such as a
    /// Docker schema 1 manifest or an artifact that is not a container image.
    #[error(
        "{}: unsupported media type {media_type:?}: {detail}",
        image(registry, repository, reference)
    )]
    UnsupportedMediaType {
        registry: String,
        repository: String,
        reference: String,
        media_type: String,
        detail: String,
    },

    /// A manifest, index or config that is not valid for its media type.
    #[error(
        "{}: invalid manifest: {detail}",
        image(registry, repository, reference)
    )]
    InvalidManifest {
        registry: String,
        repository: String,
        reference: String,
        detail: String,
    },

    /// A multi-platform image without the platform asked for.
    #[error(
        "{}: no image for platform {wanted} (available: {available})",
        image(registry, repository, reference)
    )]
    NoMatchingPlatform {
        registry: String,
        repository: String,
        reference: String,
        wanted: String,
        available: String,
    },

    /// The registry refused a manifest we pushed.
    #[error(
        "{}: the registry refused the {media_type} manifest: {detail}",
        image(registry, repository, reference)
    )]
    ManifestRejected {
        registry: String,
        repository: String,
        reference: String,
        media_type: String,
        detail: String,
        /// What was refused is the OCI media type itself (a schema 2 document may pass).
        type_refused: bool,
    },

    /// Any other HTTP-level failure: an unexpected status, a connection that could not be
    /// made, a response we cannot use. `request` is `METHOD URL`.
    #[error("{registry}: {request}: {detail}")]
    Http {
        registry: String,
        request: String,
        status: Option<u16>,
        detail: String,
    },

    /// A transient failure (connection reset, 5xx, 429, a body cut short) that kept
    /// happening until the retries ran out; `source` is the last one.
    #[error("{source} (gave up after {attempts} attempts)")]
    GaveUp {
        attempts: u32,
        #[source]
        source: Box<Error>,
    },

    /// A setting (an environment variable) whose value cannot be used.
    #[error("{name}={value:?}: {reason}")]
    InvalidSetting {
        name: &'static str,
        value: String,
        reason: String,
    },

    /// An auth file (docker config.json, containers auth.json) that cannot be used.
    #[error("auth file {}: {detail}", path.display())]
    AuthFile { path: PathBuf, detail: String },

    /// A `docker-credential-*` helper failed.
    #[error("credential helper docker-credential-{helper} for {registry}: {detail}")]
    CredentialHelper {
        helper: String,
        registry: String,
        detail: String,
    },

    /// Local I/O outside the store's own calls (reading a blob file to upload it,
    /// updating the store's index).
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },

    /// The local store failed; `context` says what we were doing.
    #[error("{context}: {source}")]
    Store {
        context: String,
        #[source]
        source: strata_oci::Error,
    },
}

impl Error {
    /// The error a retry loop gave up on, or this one: lets callers match on the cause
    /// whether or not retries were involved.
    pub fn root(&self) -> &Error {
        match self {
            Error::GaveUp { source, .. } => source.root(),
            other => other,
        }
    }

    pub(crate) fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
        let what = what.into();
        move |source| Error::Io { what, source }
    }

    pub(crate) fn store(context: impl Into<String>, source: strata_oci::Error) -> Error {
        Error::Store {
            context: context.into(),
            source,
        }
    }
}

/// `registry/repository:tag` or `registry/repository@sha256:...`.
fn image(registry: &str, repository: &str, reference: &str) -> String {
    let sep = if reference.contains(':') { '@' } else { ':' };
    format!("{registry}/{repository}{sep}{reference}")
}
