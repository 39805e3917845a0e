//! OCI images on disk: everything between "these files belong in a layer" and "here is an
//! image you can `docker load`".
//!
//! This crate owns:
//! - [`layer`]: the deterministic layer tar writer. Entries may be added in any order; the
//!   tar comes out sorted by path with normalised headers, every parent directory present,
//!   hostile paths refused, and diff_id plus compressed digest computed while writing.
//! - [`compress`]: layer compression. gzip is compressed in fixed 1 MiB chunks on all cores
//!   and emitted as concatenated gzip members, so the bytes never depend on the thread count;
//!   zstd is the option.
//! - [`store`]: the local image store, an OCI image layout directory (`oci-layout`,
//!   `index.json`, `blobs/sha256/`), with crash-safe blob and index writes, tags as
//!   `org.opencontainers.image.ref.name` annotations, resolve, untag and garbage collection.
//! - [`config`]: building image configs and manifests with `oci-spec` types, and the
//!   canonical (sorted-key) JSON every digest here is computed over.
//! - [`archive`]: `save` as docker-archive (`docker load`) and oci-archive.
//! - [`import`]: loading docker-archives and oci-archives into the store, streamed and
//!   checked against hostile input ([`targuard`] bounds the tar's extension headers).
//! - [`reference`]: `NAME[:TAG]` image references as the store names them.
//!
//! Nothing here talks to a registry or a daemon; that is `strata-registry`'s job.

pub mod archive;
pub mod compress;
pub mod config;
mod digest;
mod error;
pub mod import;
#[cfg(test)]
mod interop_tests;
pub mod layer;
pub mod reference;
pub mod store;
pub mod targuard;
mod tarfmt;

pub use digest::{sha256_hex_of, Sha256Writer};
pub use error::{Error, Result};

/// Re-exported so callers build descriptors and configs with the same `oci-spec` version.
pub use oci_spec;
