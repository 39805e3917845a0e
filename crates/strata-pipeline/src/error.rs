//! The pipeline's errors. Their texts are exactly what `strata` prints after `error: `
//! (the CLI adds each cause the message does not already hold), so the command line and a
//! service's build log say the same thing.

use std::path::PathBuf;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    // The domain crates' errors are boxed: some are large, and every Result of the pipeline
    // carries this type.
    #[error(transparent)]
    Spec(Box<strata_spec::SpecError>),
    #[error(transparent)]
    Lock(Box<strata_lock::LockError>),
    #[error(transparent)]
    Resolve(Box<strata_lock::ResolveError>),
    #[error(transparent)]
    Fetch(Box<strata_fetch::FetchError>),
    #[error(transparent)]
    Compose(Box<strata_compose::Error>),
    #[error(transparent)]
    Oci(Box<strata_oci::Error>),
    #[error(transparent)]
    Sandbox(Box<strata_sandbox::Error>),
    #[error(transparent)]
    Build(Box<strata_build::Error>),
    #[error(transparent)]
    Rootfs(Box<strata_rootfs::Error>),
    #[error(transparent)]
    Io(#[from] std::io::Error),

    /// The default lock beside the spec is a symlink: the spec's folder may be someone
    /// else's repository, and a committed `strata.lock -> /etc/passwd` would have a root
    /// `strata resolve` replace that file.
    #[error("refusing to use {}: it is a symlink (to {}), and a lock beside the spec is never read or written through a link, which could lead anywhere on this machine\nhint: remove the link, or name the lock file with --lock", path.display(), target.display())]
    LockIsSymlink { path: PathBuf, target: PathBuf },
    /// `--locked`: the lock differs from a fresh resolve.
    #[error("{} does not match the spec and repositories:{}\nrun `strata resolve` without --locked to update it", path.display(), differences.iter().map(|d| format!("\n  {d}")).collect::<String>())]
    LockMismatch { path: PathBuf, differences: Vec<String> },
    #[error("{} has no entry for image {image}; run `strata resolve` first", path.display())]
    LockMissingImage { path: PathBuf, image: String },
    #[error("{} is stale for image {image}: the spec changed since it was resolved; run `strata resolve`", path.display())]
    LockStale { path: PathBuf, image: String },
    /// The lock's layer plan cannot be used (`problem` says why).
    #[error("{} cannot be used as it is: {problem}; run `strata resolve`", path.display())]
    LockPlan { path: PathBuf, problem: String },
    /// An image name that cannot be a store tag.
    #[error("spec {}: image `{image}` cannot be stored as `{image}:{tag}`: {reason}\nhint: image names are lowercase letters, digits and `._-`, in `/`-separated parts (`apps/web`)", spec.display())]
    ImageName { spec: PathBuf, image: String, tag: String, reason: String },
    #[error("repo {repo} has gpgcheck on but no gpgkey; add its key URL, or pass --nogpgcheck")]
    NoGpgKey { repo: String },
    #[error("fetching gpgkey {url} of repo {repo}")]
    GpgKey { url: String, repo: String, #[source] source: Box<strata_repo::RepoError> },
    #[error("opening image store {}", path.display())]
    OpenStore { path: PathBuf, #[source] source: Box<strata_oci::Error> },
    #[error("creating {}", path.display())]
    CreateDir { path: PathBuf, #[source] source: std::io::Error },
    #[error("SOURCE_DATE_EPOCH={value:?} is not a number of seconds")]
    SourceDateEpoch { value: String, #[source] source: std::num::ParseIntError },
    #[error("strata compose needs root, as rpm --root and dnf --installroot do: files get their owners and modes, and scriptlets run in namespaces (try: sudo strata compose ...; `--check` works without)")]
    NeedsRoot,
    /// Some images failed (each with its whole cause chain); `composed` are the ones that
    /// did not, already in the store.
    #[error("{}", failures.iter().map(|f| f.message.as_str()).collect::<Vec<_>>().join("\n"))]
    Images { failures: Vec<crate::ImageFailure>, composed: Vec<crate::ImageResult> },
    #[error("pruning upload records")]
    PruneUploads { #[source] source: std::io::Error },
    #[error("pruning the RPM cache {}", path.display())]
    PruneRpms { path: std::path::PathBuf, #[source] source: std::io::Error },
    /// The operation was stopped through its [`Cancel`](crate::Cancel).
    #[error("canceled")]
    Canceled,
}

macro_rules! boxed_from {
    ($($variant:ident($t:ty)),*) => {$(
        impl From<$t> for Error {
            fn from(e: $t) -> Error {
                Error::$variant(Box::new(e))
            }
        }
    )*};
}
boxed_from!(
    Spec(strata_spec::SpecError),
    Lock(strata_lock::LockError),
    Resolve(strata_lock::ResolveError),
    Fetch(strata_fetch::FetchError),
    Compose(strata_compose::Error),
    Oci(strata_oci::Error),
    Sandbox(strata_sandbox::Error),
    Build(strata_build::Error),
    Rootfs(strata_rootfs::Error)
);

/// An error and all its causes joined by `: `, as anyhow's `{:#}` prints them.
pub fn chain_text(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}
