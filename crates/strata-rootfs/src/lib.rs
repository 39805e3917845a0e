//! A build stage's root filesystem: from image layers to the directory a `RUN` step runs in,
//! and from what the step changed back to a layer.
//!
//! This crate owns:
//! - [`extract()`]: applying an OCI layer tar (plain, gzip or zstd, told by its magic) onto a
//!   directory as containerd does — every entry type, numeric owners, modes, times, image
//!   xattrs, OCI whiteouts and opaque directories — without ever writing outside it (every
//!   path resolved with `openat2(RESOLVE_IN_ROOT)`, `..` names refused). Whiteouts are either
//!   applied or kept as overlayfs markers.
//! - [`LayerCache`]: `CACHE/layers/<diff_id hex>/`, each layer unpacked once with overlay
//!   markers, its diff_id verified, published by an atomic rename.
//! - [`Stage`]: the root a step runs in — an overlay over cached layers (any count overlayfs
//!   accepts, through `fsconfig(lowerdir+)` or a short-name `mount(2)`), or, where overlayfs
//!   is unavailable, a plain copy of the merged layers with a snapshot; unmounted and removed
//!   on drop, stale ones removed by [`Stage::remove_stale`].
//! - [`Diff`]: the step's changes as a `strata_oci::layer::LayerBuilder` — from the overlay
//!   upper directory or by walking the plain copy; both give the same layer for the same
//!   change. An empty diff means "no layer"; mount points the caller names are left out
//!   when the step did not really create them; mtimes are clamped to SOURCE_DATE_EPOCH.
//!
//! Running the step (the OCI runtime, its config, bind mounts) is `strata build`'s job;
//! writing the layer blob is `strata-oci`'s.

mod cache;
mod diff;
mod error;
mod extract;
mod fsx;
mod lower;
mod mount;
mod plain;
mod stage;
mod tarball;
#[cfg(test)]
mod tests;

pub use cache::LayerCache;
pub use diff::{Change, ChangeKind, Diff, DiffOptions};
pub use error::{Error, Result};
pub use extract::{extract, DeviceNodes, ExtractOptions, Extracted, Whiteouts};
pub use mount::{MountApi, MAX_LOWERS};
pub use stage::{Backend, Stage, StageOptions};
pub use tarball::decompress;
