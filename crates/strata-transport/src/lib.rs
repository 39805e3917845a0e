//! Images to and from the places skopeo and podman name with a transport: registries
//! (`docker://`), OCI layouts (`oci:`), OCI and docker archives (`oci-archive:`,
//! `docker-archive:`), a running docker (`docker-daemon:`) and podman's storage
//! (`containers-storage:`). `strata push`, `strata pull` and `strata save` are this crate's
//! [`export`] and [`import`] behind argument parsing.
//!
//! - [`parse`]: the transport strings, with skopeo's exact syntax rules.
//! - registries: `strata-registry`'s `Client::push`/`pull` (the caller hands the clients in,
//!   so its credential and TLS flags apply).
//! - OCI layouts and archives: `strata-oci`'s layout copy, archive writers and loaders
//!   ([`strata_oci::import`]), files written to a temporary name and renamed.
//! - [`daemon`]: docker's Engine API over its socket, the docker-archive streamed as the
//!   request or response body (no temporary file).
//! - [`podman`]: containers-storage through the `podman` binary, the archive streamed over a
//!   pipe (a Rust containers/storage does not exist; see docs/decisions.md).

pub mod daemon;
mod ops;
pub mod parse;
pub mod podman;

pub use ops::{export, import, ExportOptions, Exported, ImportOptions, Imported, Registries};
pub use parse::{ArchiveImage, StorageSpec, Transport, KNOWN};

/// Shorthand for this crate's results.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can go wrong moving an image.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A transport string that does not parse.
    #[error("{input}: {reason}")]
    Parse { input: String, reason: String },
    /// The store, an OCI layout or an archive.
    #[error(transparent)]
    Oci(#[from] strata_oci::Error),
    /// A registry (boxed: its error is large, and the other variants are small).
    #[error(transparent)]
    Registry(Box<strata_registry::Error>),
    /// The docker daemon refused or failed.
    #[error("docker daemon at {host}: {reason}")]
    Daemon { host: String, reason: String },
    /// podman failed or is absent.
    #[error("{0}")]
    Podman(String),
    /// A file or pipe.
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    /// A combination the transport cannot do.
    #[error("{0}")]
    Unsupported(String),
}

impl From<strata_registry::Error> for Error {
    fn from(e: strata_registry::Error) -> Self {
        Error::Registry(Box::new(e))
    }
}

pub(crate) fn io_err(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
    let what = what.into();
    move |source| Error::Io { what, source }
}
