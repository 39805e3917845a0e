//! `strata-rpmdb` owns rpm's package database in composed images: it writes the SQLite
//! rpmdb (rpm ≥ 4.16 `sqlite` backend) for packages that `strata compose` unpacked
//! without running rpm, and reads installed NEVRAs back from any such database.
//!
//! The written database is what `rpm -i` would have produced for the same packages:
//! - `Packages(hnum, blob)` holds each package's header in rpm's installed form — the
//!   package's immutable region byte for byte (so its signatures and digests still
//!   verify), then the signature-header tags rpm merges in and the install-time tags
//!   (`INSTALLTIME`, `INSTALLTID`, `INSTALLCOLOR`, `FILESTATES`), appended by tag at
//!   increasing, aligned offsets ([`InstalledPackage::installed_blob`]);
//! - one `(key, hnum, idx)` index table per indexed tag, created with rpm's own DDL and
//!   filled with rpm's rules ([`index`]).
//!
//! Output is deterministic: fixed install time and tid, caller-given install order,
//! no clock or hash ordering, modes fixed whatever the umask, and only empty `-wal`/`-shm`
//! files beside it (rpm's persistent WAL, which readers without write access need).
//!
//! ```no_run
//! use strata_rpmdb::{write_rpmdb, read_installed, InstalledPackage, InstallOptions};
//! # fn main() -> Result<(), strata_rpmdb::Error> {
//! let pkgs = vec![InstalledPackage::from_rpm_file("hello-1.0-1.noarch.rpm".as_ref())?];
//! let db = std::path::Path::new("/tmp/root/var/lib/rpm/rpmdb.sqlite");
//! write_rpmdb(db, &pkgs, &InstallOptions::at(1_700_000_000))?;
//! for record in read_installed(db)? {
//!     println!("{}", record.nevra);
//! }
//! # Ok(()) }
//! ```

pub mod header;
pub mod index;
mod install;
mod read;
mod rich;
mod write;

pub use index::ByteOrder;
pub use install::{FileState, InstallOptions, InstalledPackage};
pub use read::{read_blobs, read_installed, InstalledRecord, Nevra};
pub use write::{schema_statements, write_rpmdb, DB_DIR_MODE, DB_FILE, DB_FILE_MODE, DEFAULT_DBPATH, WAL_SIDE_FILES};

/// Everything that can go wrong reading headers or writing and reading an rpmdb.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A header (or `.rpm` file) is malformed or not usable as a package header.
    #[error("rpm header: {0}")]
    Header(String),
    /// Inputs that do not fit together (e.g. file states for the wrong file count).
    #[error("invalid input: {0}")]
    Input(String),
    #[error("{0}: {1}")]
    Io(String, #[source] std::io::Error),
    /// SQLite failed; the message names the step.
    #[error("rpmdb: {0}")]
    Database(String),
}

impl Error {
    pub(crate) fn header(msg: impl Into<String>) -> Self {
        Error::Header(msg.into())
    }
}
