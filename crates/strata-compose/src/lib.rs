//! `strata-compose` turns one locked image into an image in the store: it installs the
//! locked RPMs into a staging root (files, owners, scriptlets, triggers: `strata-install`),
//! writes the rpmdb (`strata-rpmdb`), turns the root into a deterministic layer, builds the
//! config (entrypoint, env, ports, labels, history, `created`), and commits everything to
//! the OCI store (`strata-oci`), tagging it last so a killed build never lists an image.
//!
//! An image whose inputs (locked package checksums, image spec, compose format) are
//! unchanged since the stored one is not rebuilt.

mod config;
mod dbpath;
mod image;
mod normalize;

pub use image::{compose_image, remove_stale_staging, ComposeOptions, Composed, RpmLocator};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("image {image}: {message}")]
    Image { image: String, message: String },
    #[error(transparent)]
    Install(#[from] strata_install::Error),
    #[error(transparent)]
    Package(#[from] strata_package::Error),
    #[error(transparent)]
    Oci(#[from] strata_oci::Error),
    #[error("rpmdb: {0}")]
    Rpmdb(#[from] strata_rpmdb::Error),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// Manifest annotation holding the digest of everything an image was built from.
pub const INPUTS_ANNOTATION: &str = "dev.strata.inputs";
/// Config label holding the digest of the image's locked package list.
pub const LOCK_LABEL: &str = "dev.strata.lock.digest";
