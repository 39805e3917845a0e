//! `strata-install` lays RPM packages into an image root the way `rpm -i --root` would:
//! in dependency order, with owners mapped through the image's own `/etc/passwd` and
//! `/etc/group` (an unknown owner or group becomes root and loses setuid or setgid, as in
//! rpm), modes, setuid bits, symlinks, hardlinks and file capabilities as the header says,
//! each file's content checked against the header's digest, `%ghost` files left out, optional doc and language filtering, file
//! conflicts refused (paths compared where they land: a merged-/usr `/bin/x` is
//! `/usr/bin/x`), every write kept inside the root, scriptlets, classic triggers and file
//! triggers run in rpm's order through a [`ScriptRunner`] (a sandbox supplied by the
//! caller), and the image's own rpm macro files ([`Macros`]) read as packages place them.
//!
//! It does not write the rpmdb (that is `strata-rpmdb`) nor turn the root into layers.

mod conflicts;
mod install;
mod macros;
mod order;
pub mod rootfs;
mod scripts;
mod triggers;
mod users;

pub use conflicts::{find_conflicts, Links};
pub use install::{install, InstallOptions, InstallReport, InstalledPackage, PlacedKind, Placed, Placement};
pub use macros::Macros;
pub use order::install_order;
pub use scripts::{ScriptInvocation, ScriptOutcome, ScriptRunner};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Package(#[from] strata_package::Error),
    #[error("{package}: {message}")]
    Install { package: String, message: String },
    /// A file's content differs from the package header's digest for it: the package (or
    /// the cached copy of it) is corrupt. `index` is the package's in the caller's list.
    #[error("{package}: {mismatch}")]
    Digest { package: String, index: usize, mismatch: strata_package::DigestMismatch },
    #[error("file conflicts:\n{}", .0.join("\n"))]
    Conflicts(Vec<String>),
    #[error("{package}: {what} failed ({status}); rpm would not install the package\n{output}")]
    PreFailed { package: String, what: String, status: String, output: String },
    #[error("{0}")]
    Scriptlet(String),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}
