//! `strata-compose` turns one locked image into an image in the store: it installs the
//! locked RPMs into a staging root — on a tmpfs while small, else on disk, its room checked
//! before anything is extracted — (files, owners, scriptlets, triggers: `strata-install`),
//! writes the rpmdb (`strata-rpmdb`), turns what each group of packages placed into the
//! package layers the fleet's plan (`strata-layers`) names — reused from the store when a
//! layer with the same content key exists — and the rest of the root (rpmdb, scriptlet
//! output, unowned files, deletions) into a top layer, builds the config, and commits
//! everything to the OCI store (`strata-oci`) with a compose record, tagging it last so a
//! killed build never lists an image.
//!
//! A file whose content does not match its package header's digest fails the image; when
//! the cached RPM turns out damaged ([`RpmLocator::recheck`]) it is fetched again and the
//! image composed once more.
//!
//! An image whose inputs (locked packages, image spec, its part of the plan, strata's
//! version) are unchanged since the stored one is not rebuilt.

mod cache;
mod config;
mod contents;
mod dbpath;
mod image;
mod normalize;
mod pkglayer;
mod record;
#[cfg(test)]
mod retry_tests;
mod staging;
mod staging_place;
mod top;

pub use cache::{prune_metadata, LayerCache};
pub use contents::installed_packages;
pub use image::{compose_image, ComposeOptions, Composed, ComposedLayer, ImageJob, RpmLocator};
pub use record::{ComposeRecord, Previous, RecordLayer};
pub use staging::remove_stale_staging;
pub use staging_place::{StagingArea, TMPFS_MAX};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("image {image}: {message}")]
    Image { image: String, message: String },
    #[error("{0}")]
    Layer(String),
    /// No room to stage the image (needed vs available), or its staging place is unusable.
    /// The caller names the image, so the message does not.
    #[error("{0}")]
    Staging(String),
    /// A package of the image is corrupt (with what rechecking its cached RPM found).
    #[error("{0}")]
    Corrupt(String),
    /// A file's content differs from its package header's digest; `index` is the package's
    /// in the image's lock entry.
    #[error("{package}: {mismatch}")]
    Digest { package: String, index: usize, mismatch: strata_package::DigestMismatch },
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
/// Config label holding the input hash (the same value as [`INPUTS_ANNOTATION`]).
pub const INPUTS_LABEL: &str = "dev.strata.inputs";
