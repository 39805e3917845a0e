//! The OCI distribution (registry) client of strata: pulling base images into the local
//! store for `strata build` (`FROM registry.example/ns/img:tag`, `FROM name@sha256:...`)
//! and pushing images strata built.
//!
//! This crate owns:
//! - [`reference`]: remote references `[registry[:port]/]path[:tag][@sha256:hex]`,
//!   normalised as docker does (`docker.io`, `library/`, `latest`), without network.
//! - [`auth`]: credentials given by the caller or read from docker's `config.json`,
//!   containers' `auth.json` (`$REGISTRY_AUTH_FILE`), `~/.dockercfg` and
//!   `docker-credential-*` helpers; `WWW-Authenticate` challenges; anonymous, Basic and
//!   bearer-token auth with tokens per repository and action (`pull`, `pull,push`).
//! - [`Client::resolve`]: reference → image manifest for a platform, through OCI indexes
//!   and Docker manifest lists; OCI and Docker v2 schema 2 manifests; schema 1 and
//!   non-image artifacts refused by name. A manifest pulled by digest must hash to it.
//! - [`Client::pull`]: config and layers streamed into the store's blob writer, every
//!   blob's size and digest checked before it is renamed into place (a corrupt or
//!   truncated download is never stored), blobs the store has skipped, transient failures
//!   (connection errors, 5xx, 429 with `Retry-After`) retried, cut-off downloads resumed
//!   with a Range request; the manifest's exact bytes stored and tagged.
//! - [`Client::push`]: blobs the repository lacks uploaded from the store's files (HEAD
//!   first; cross-repository mount; one PUT for small blobs, resumable PATCH chunks for big
//!   ones, continued across processes through upload records under the store, `resume`),
//!   then — once every blob is confirmed there — the manifest's exact bytes, so the remote
//!   digest is the store's and a killed push never leaves a tag at an incomplete image.
//! - Transport: TLS with the system roots; plain HTTP or unverified TLS only for
//!   registries the caller marks insecure (podman's `--tls-verify=false`).
//!
//! Errors name the registry, repository and tag or digest. Nothing is printed: progress
//! goes to a caller's [`Progress`], diagnostics to `tracing` at debug level.
//!
//! The store itself (layout, blobs, tags, gc) is strata-oci's; this crate writes through its
//! blob writer and tags pulled manifests with `Store::tag_manifest`, bytes unchanged.

pub mod auth;
mod client;
mod error;
mod media;
mod parallel;
pub mod platform;
pub mod progress;
mod pull;
mod push;
pub mod reference;
mod resolve;
mod resume;
pub use resume::prune_upload_records;
mod upload;

pub use auth::{Credential, Credentials};
pub use client::{Client, ClientConfig, RetryPolicy};
pub use error::{Error, Result};
pub use media::{DOCKER_LIST, DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST};
pub use platform::Platform;
pub use progress::{BlobEvent, BlobKind, BlobTransfer, Outcome, Progress};
pub use pull::{PullOptions, Pulled};
pub use push::{chunk_size_from_env, ManifestFormat, PushOptions, Pushed, CHUNK_SIZE_ENV};
pub use reference::Reference;
pub use resolve::Resolved;

#[cfg(test)]
mod tests {
    /// The client is shared by the threads of a build and, later, a service.
    #[test]
    fn client_and_errors_cross_threads() {
        fn send_sync<T: Send + Sync>() {}
        send_sync::<crate::Client>();
        send_sync::<crate::Error>();
        send_sync::<crate::Pulled>();
    }
}
